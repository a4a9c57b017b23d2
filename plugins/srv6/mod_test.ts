/** The plugin definition: loadable without the kernel, creates a working dataplane on Node. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import "reflect-metadata";
import { container } from "tsyringe";
import plugin from "./mod.ts";
import { isRoot, sh } from "./testing.ts";

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
    const dp = await plugin.dataplanes![0].create(container.createChildContainer(), { node: "node-1", netns: `/run/netns/${ns}` });
    try {
      const caps = await dp.capabilities();
      assert.is(caps.seg6local, true);
    } finally {
      await dp.close();
    }
  } finally {
    sh("ip", ["netns", "del", ns]);
  }
});

t.run();
