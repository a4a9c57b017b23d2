/** The plugin definition: loadable without the kernel, creates a working dataplane on Node. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import "reflect-metadata";
import { container } from "tsyringe";
import plugin from "./mod.ts";
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
    const create = () => plugin.dataplanes![0].create(container.createChildContainer(), { node: "node-1", netns: `/run/netns/${ns}` });
    if (noSeg6Reason()) {
      // Without seg6 the kernel backend refuses at once and says why.
      const err = await create().then(() => undefined, (e: Error) => e);
      assert.match(err?.message ?? "", /the kernel has no seg6 lwtunnel \(CONFIG_IPV6_SEG6_LWTUNNEL is not set\)/);
      return;
    }
    const dp = await create();
    try {
      const caps = await dp.capabilities();
      // The probe agrees with the kernel build: seg6local exactly where CONFIG_IPV6_SEG6_LWTUNNEL is set.
      assert.is(caps.seg6local, noSeg6Reason() === undefined);
    } finally {
      await dp.close();
    }
  } finally {
    sh("ip", ["netns", "del", ns]);
  }
});

t.run();
