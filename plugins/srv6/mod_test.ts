/** The plugin definition: loadable without the kernel, creates a working dataplane on Node. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import "reflect-metadata";
import { container } from "tsyringe";
import plugin, { chooseBackend, srv6Settings } from "./mod.ts";
import { isRoot, sh } from "./testing.ts";
import { noSeg6Reason } from "./kernel_config.ts";

const t = suite("srv6 plugin definition");

t("provides the srv6 dataplane feature under plugin API ^1", () => {
  assert.is(plugin.name, "srv6");
  assert.is(plugin.apiVersion, "^1.0.0");
  assert.equal(plugin.dataplanes?.map((d) => d.feature), ["srv6"]);
});

(isRoot ? t : t.skip)("create() returns a Dataplane for the node's namespace", async () => {
  const ns = `lm${process.pid.toString(36)}`;
  sh("ip", ["netns", "add", ns]);
  try {
    const dp = await plugin.dataplanes![0].create(container.createChildContainer(), { node: "node-1", netns: `/run/netns/${ns}`, settings: { backend: "auto" } });
    try {
      const caps = await dp.capabilities();
      // The probe agrees with the kernel build, and auto picks seg6 where it is there, else tc-eBPF.
      const seg6 = noSeg6Reason() === undefined;
      assert.is(caps.seg6local, seg6);
      assert.is(caps.backend, seg6 ? "kernel" : "bpf");
    } finally {
      await dp.close();
    }
  } finally {
    sh("ip", ["netns", "del", ns]);
  }
});

t("the settings name each bad field with its value", () => {
  assert.equal(srv6Settings(undefined), { backend: "auto" });
  assert.equal(srv6Settings({ backend: "bpf", bpffs: "/sys/fs/bpf" }), { backend: "bpf", bpffs: "/sys/fs/bpf" });
  assert.throws(() => srv6Settings({ backend: "ebpf", bpffs: "relative", mode: 1 }), (e: unknown) => e instanceof Error && e.message ===
    'Invalid srv6 dataplane settings: dataplane.backend: expected one of auto, kernel, bpf, got "ebpf"; ' +
      'dataplane.bpffs: expected an absolute path (a bpffs mount, or where to mount one), got "relative"; ' +
      "dataplane.mode: unknown setting of the srv6 dataplane, expected backend or bpffs");
});

t("auto picks kernel seg6 where the kernel has it, else bpf; a kernel with neither is refused with the options it lacks", () => {
  const caps = (seg6: boolean, bpf: boolean) => ({ seg6, seg6local: seg6, bpf });
  assert.is(chooseBackend("auto", caps(true, true), "n1"), "kernel");
  assert.is(chooseBackend("auto", caps(false, true), "n1"), "bpf");
  assert.is(chooseBackend("bpf", caps(true, true), "n1"), "bpf");
  assert.throws(() => chooseBackend("kernel", caps(false, true), "n1"), /node n1 with backend kernel: the kernel has no seg6 lwtunnel \(CONFIG_IPV6_SEG6_LWTUNNEL is not set\)/);
  assert.throws(() => chooseBackend("auto", caps(false, false), "n1"), /CONFIG_IPV6_SEG6_LWTUNNEL is not set.*CONFIG_BPF_SYSCALL, CONFIG_BPF_JIT, CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF/);
  assert.throws(() => chooseBackend("xdp" as never, caps(true, true), "n1"), /Invalid dataplane backend "xdp": expected one of auto, kernel, bpf/);
});

t.run();
