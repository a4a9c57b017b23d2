/** Pod source pairs synced element by element over netlink, read back by `nft` itself. */
import { execFileSync } from "node:child_process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NetlinkClient } from "./netlink.ts";
import { NETLINK_NETFILTER } from "./nfsets.ts";
import { type PodSource, readPodSources, syncPodSources } from "./pod_sources.ts";
import { isRoot, sh } from "./testing.ts";

const t = suite("srv6 pod source pairs");
const ns = `lps${process.pid % 100000}`;

/** The pairs as `nft` lists them: the kernel's view, not ours. */
function listed(): string[] {
  const out: string[] = [];
  for (const set of ["allow4", "allow6"]) {
    const doc = JSON.parse(sh("ip", ["netns", "exec", ns, "nft", "-j", "list", "set", "bridge", "lace", set])) as { nftables: { set?: { elem?: { concat: string[] }[] } }[] };
    for (const item of doc.nftables) for (const e of item.set?.elem ?? []) out.push(`${e.concat[0]} ${e.concat[1]}`);
  }
  return out.sort();
}

const src = (ifname: string, address: string): PodSource => ({ ifname, address, family: address.includes(":") ? 6 : 4 });

t("an apply adds what is missing, removes what no pod holds, and keeps the pairs of a port the state does not list yet", async () => {
  if (!isRoot) return console.log("  skipped: needs root (network namespaces and nftables)");
  execFileSync("ip", ["netns", "add", ns]);
  const nf = NetlinkClient.open(`/run/netns/${ns}`, ns, NETLINK_NETFILTER);
  try {
    assert.equal(await readPodSources(nf), [], "no table: no pairs, no error");
    sh("ip", ["netns", "exec", ns, "nft", "-f", "-"], "table bridge lace {\n set allow4 { type ifname . ipv4_addr; }\n set allow6 { type ifname . ipv6_addr; }\n}\n");
    const wanted = [src("h-a", "10.1.0.2"), src("h-a", "fd00:1::2"), src("h-b", "10.1.0.3")];
    assert.is(await syncPodSources(nf, wanted, new Set(["h-a", "h-b"]), await readPodSources(nf)), 3);
    assert.equal(listed(), ["h-a 10.1.0.2", "h-a fd00:1::2", "h-b 10.1.0.3"]);
    assert.equal((await readPodSources(nf)).map((p) => `${p.ifname} ${p.address}`).sort(), listed(), "read back as written");
    assert.is(await syncPodSources(nf, wanted, new Set(["h-a", "h-b"]), await readPodSources(nf)), 0, "nothing to do: no write");

    // h-c was attached after the state was taken (its ADD wrote its pair); h-b's pod is gone; h-a got a new v4 address.
    sh("ip", ["netns", "exec", ns, "nft", "add", "element", "bridge", "lace", "allow4", "{ \"h-c\" . 10.1.0.4 }"]);
    const next = [src("h-a", "10.1.0.9"), src("h-a", "fd00:1::2")];
    assert.is(await syncPodSources(nf, next, new Set(["h-a", "h-c"]), await readPodSources(nf)), 3);
    assert.equal(listed(), ["h-a 10.1.0.9", "h-a fd00:1::2", "h-c 10.1.0.4"]);

    // A reload empties the sets: what was read before it comes back with the state's pairs.
    const before = await readPodSources(nf);
    sh("ip", ["netns", "exec", ns, "nft", "flush", "set", "bridge", "lace", "allow4"]);
    sh("ip", ["netns", "exec", ns, "nft", "flush", "set", "bridge", "lace", "allow6"]);
    await syncPodSources(nf, next, new Set(["h-a", "h-c"]), [], before);
    assert.equal(listed(), ["h-a 10.1.0.9", "h-a fd00:1::2", "h-c 10.1.0.4"]);
  } finally {
    nf.close();
    execFileSync("ip", ["netns", "del", ns]);
  }
});

t.run();
