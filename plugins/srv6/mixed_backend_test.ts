/**
 * A cluster whose nodes run different backends: node 1 carries SRv6 with
 * the kernel's seg6, node 2 with the tc-eBPF programs. The packets on the
 * wire are the same, so pods on the two nodes reach each other, both
 * families, both ways. Needs root and a kernel with seg6 (skipped, with
 * the reason, elsewhere).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Backend } from "./plan.ts";
import { Srv6Dataplane } from "./dataplane.ts";
import { noSeg6Reason } from "./kernel_config.ts";
import { isRoot, ping, TestCluster, type TestNetwork, type TestPod, podMtu } from "./testing.ts";

const t = suite("srv6 mixed-backend cluster");
const seg6Missing = noSeg6Reason();
const test = isRoot && !seg6Missing ? t : t.skip;
if (!isRoot) console.log("srv6 mixed-backend test skipped: it needs root to create network namespaces");
else if (seg6Missing) console.log(`srv6 mixed-backend test skipped: ${seg6Missing}`);

test("a kernel-backend node and a bpf-backend node carry each other's pods' traffic", async () => {
  const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
  const pods: TestPod[] = [{ name: "a", node: 1, network: "red", host: 10 }, { name: "b", node: 2, network: "red", host: 20 }];
  const backends: Backend[] = ["kernel", "bpf"];
  const c = new TestCluster(2);
  const dps: Srv6Dataplane[] = [];
  try {
    c.create();
    for (let n = 1; n <= 2; n++) {
      const backend = backends[n - 1];
      const dp = await Srv6Dataplane.open({ node: `node-${n}`, netns: c.node(n), backend, bpffs: backend === "bpf" ? c.bpffs() : undefined });
      dps.push(dp);
      assert.is((await dp.capabilities()).backend, backend);
      await dp.apply(c.desiredState(n, [red], pods, [], "Reduced", []));
    }
    for (const p of pods) {
      await dps[p.node - 1].attachPod({ netns: c.addPodNs(p.name), ifname: "eth0", hostIfname: `h-${p.name}`, network: "red", ...c.podAddresses(p, red), mtu: podMtu(1500, "Reduced") });
    }
    assert.is(ping(c.podNs("a"), "10.1.2.20"), 2, "kernel node → bpf node, IPv4");
    assert.is(ping(c.podNs("b"), "10.1.1.10"), 2, "bpf node → kernel node, IPv4");
    assert.is(ping(c.podNs("a"), "fd00:1:0:2::20"), 2, "kernel node → bpf node, IPv6");
    assert.is(ping(c.podNs("b"), "fd00:1:0:1::10"), 2, "bpf node → kernel node, IPv6");
  } finally {
    for (const dp of dps) await dp.close();
    c.destroy();
  }
});

t.run();
