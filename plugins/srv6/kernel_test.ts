/** Reading links back from a real kernel, in a throwaway namespace (root only). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { readLink, readLinks } from "./kernel.ts";
import { NetlinkClient } from "./netlink.ts";

const t = suite("srv6 kernel reads");
const root = process.getuid?.() === 0;
const ns = `lat-kt-${process.pid}`;

(root ? t : t.skip)("readLink finds one link by name as the dump sees it, and undefined for a missing one", async () => {
  execFileSync("ip", ["netns", "add", ns]);
  const nl = NetlinkClient.open(`/run/netns/${ns}`);
  try {
    execFileSync("ip", ["-n", ns, "link", "add", "v0", "mtu", "1400", "type", "veth", "peer", "name", "v1"]);
    execFileSync("ip", ["-n", ns, "link", "set", "v0", "alias", "lace-cni:pod:x", "up"]);
    const one = await readLink(nl, "v0");
    assert.ok(one, "v0 found");
    assert.equal(one, (await readLinks(nl)).byName.get("v0"));
    assert.is(one!.mtu, 1400);
    assert.is(one!.alias, "lace-cni:pod:x");
    assert.is(one!.kind, "veth");
    assert.is(await readLink(nl, "nope0"), undefined);
  } finally {
    nl.close();
    execFileSync("ip", ["netns", "del", ns]);
  }
});

t.run();
