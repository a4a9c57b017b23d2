/**
 * l2 (bridged) networks on the kernel (seg6) backend: it does not carry
 * their frames between nodes (seg6's l2encap sees routed IP only, no ARP;
 * docs/l2-datapath.md), so it says so: its capabilities leave `bridged`
 * out with the reason the agent passes on when it refuses such a pod, and
 * a bridged network in its state is reported in the plan's `skipped`.
 * Needs root and a kernel with seg6 (skipped, with the reason, elsewhere);
 * the bpf backend's l2 tests are l2_dataplane_test.ts and the sandbox's
 * l2_frames_test.ts.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { KERNEL_BACKEND_NO_L2, Srv6Dataplane } from "./dataplane.ts";
import { noSeg6Reason } from "./kernel_config.ts";
import { planNode } from "./plan.ts";
import { L2_FIXTURE, l2DesiredState } from "./l2_testing.ts";
import { isRoot, TestCluster } from "./testing.ts";

const t = suite("srv6 l2 networks on the kernel backend");
const seg6Missing = noSeg6Reason();
const test = isRoot && !seg6Missing ? t : t.skip;
if (!isRoot) console.log("srv6 l2 kernel-backend test skipped: it needs root to create network namespaces");
else if (seg6Missing) console.log(`srv6 l2 kernel-backend test skipped (l2 runs on the bpf backend here): ${seg6Missing}`);

test("the kernel backend leaves bridged forwarding out of its capabilities, with the reason", async () => {
  const c = new TestCluster(1);
  let dp: Srv6Dataplane | undefined;
  try {
    c.create();
    dp = await Srv6Dataplane.open({ node: "node-1", netns: c.node(1), backend: "kernel" });
    const caps = await dp.capabilities();
    assert.is(caps.backend, "kernel");
    assert.not.ok(caps.forwarding.includes("bridged"));
    assert.is(caps.notForwarded?.bridged, KERNEL_BACKEND_NO_L2);
  } finally {
    await dp?.close();
    c.destroy();
  }
});

t("a bridged network in a kernel-backend plan is reported skipped, naming the backend it needs (no kernel needed)", () => {
  const plan = planNode(l2DesiredState(new TestCluster(3), 1, L2_FIXTURE.topo), "eth0", undefined, "kernel");
  assert.equal(plan.skipped.map((s) => s.network).sort(), ["storage", "vault"]);
  assert.ok(plan.skipped.every((s) => /need the bpf backend/.test(s.reason)), JSON.stringify(plan.skipped));
});

t.run();
