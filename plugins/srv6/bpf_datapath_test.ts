/**
 * The bpf backend's maps: the layouts user space writes are those the
 * compiled object declares (read back from the kernel), a sync writes only
 * the difference, and pinned maps keep their entries for the next process.
 * The encodings are checked without root; the rest needs root (a bpffs of
 * the test's own under a temporary directory).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BpfDatapath, decodeSighting, detachLeftovers, encapKey, encapValue, l2FdbValue, l2MacKey, l2MemberKey, l2NeighborKey, l2NetValue, LAYOUT, MAPS, sidValue,
} from "./bpf_datapath.ts";
import { attachedProgram, mapDelete, mapEntries, mapInfo } from "./libbpf.ts";
import { inNetns } from "./netns.ts";
import type { BpfPlan } from "./plan.ts";
import { isRoot, sh } from "./testing.ts";

const t = suite("srv6 bpf datapath maps");
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

t("keys put the network id before the address, and count it in the prefix length", () => {
  // prefixlen 32 + 24 (host order), network 7 (big endian), 10.1.2.0
  assert.is(hex(encapKey(7, "10.1.2.0/24")), "38000000" + "00000007" + "0a010200");
  assert.is(hex(encapKey(1, "fd00:1::/64")), "60000000" + "00000001" + "fd000001000000000000000000000000");
  assert.is(hex(encapValue("fd00:1ace:2::1", true)), "fd001ace000200000000000000000001" + "01000000");
  assert.is(hex(sidValue(0x4c000003, 6)), "0300004c" + "06000000");
});

t("l2 layouts: network and MAC keys, neighbour keys by family, the network's value, a learning report", () => {
  assert.is(hex(l2MacKey(5, "0a:58:0a:32:00:14")), "05000000" + "0a580a320014" + "0000");
  assert.is(hex(l2FdbValue("fd00:1ace:2::5", 0)), "fd001ace000200000000000000000005" + "00000000");
  assert.is(hex(l2FdbValue(undefined, 11)), "00".repeat(16) + "0b000000");
  assert.is(hex(l2NeighborKey(5, "10.50.0.20")), "05000000" + "04000000" + "0a320014" + "00".repeat(12));
  assert.is(hex(l2NeighborKey(5, "fd00:50::20")), "05000000" + "06000000" + "fd000050000000000000000000000020");
  assert.is(hex(l2NetValue(8, 2, true, "0a:4c:00:00:00:05")), "08000000" + "02000000" + "01000000" + "0a4c00000005" + "0000");
  assert.is(hex(l2MemberKey(5, 1)), "05000000" + "01000000");
  const ev = Uint8Array.from(Buffer.from("05000000" + "0b000000" + "020000000099" + "04" + "00" + "0a320063" + "00".repeat(12), "hex"));
  assert.equal(decodeSighting(ev), { net: 5, ifindex: 11, mac: "02:00:00:00:00:99", ip: "10.50.0.99" });
  ev[14] = 0;
  assert.equal(decodeSighting(ev), { net: 5, ifindex: 11, mac: "02:00:00:00:00:99" }, "no address");
});

const kt = isRoot ? t : t.skip;
if (!isRoot) console.log("srv6 bpf map tests skipped: they need root to load BPF programs");

kt("the kernel's maps have the sizes user space encodes; a sync writes the difference; pins survive the process", () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-bpf-test-"));
  sh("mount", ["-t", "bpf", "bpf", dir]);
  try {
    let dp = BpfDatapath.open(dir, "n1");
    for (const [name, size] of Object.entries(LAYOUT)) {
      const info = mapInfo(dp.mapFd(name as (typeof MAPS)[number]));
      assert.equal({ key: info.keySize, value: info.valueSize }, size, name);
    }
    const plan: BpfPlan = {
      source: "fd00:ffff::1",
      encap: new Map([
        ["1|10.1.2.0/24", { net: 1, prefix: "10.1.2.0/24", sid: "fd00:1ace:2::1", srh: false }],
        ["1|fd00:1:0:2::/64", { net: 1, prefix: "fd00:1:0:2::/64", sid: "fd00:1ace:2:0:8000::1", srh: false }],
      ]),
      sids: new Map([["fd00:1ace:1::1", { mark: 0x4c000001, family: 4 as const }]]),
    };
    assert.equal(dp.sync(plan), { added: 3, changed: 1, removed: 0 }, "two encap entries and a SID added, the config written");
    assert.equal(dp.sync(plan), { added: 0, changed: 0, removed: 0 }, "nothing to write the second time");
    dp.close();

    // A new process (here: a new load) finds the pinned maps with their entries.
    dp = BpfDatapath.open(dir, "n1");
    assert.equal(dp.sync(plan), { added: 0, changed: 0, removed: 0 }, "a restarted agent writes nothing");
    const v4 = mapEntries(dp.mapFd("lace_encap4"), LAYOUT.lace_encap4.key, LAYOUT.lace_encap4.value);
    assert.equal(v4.map(([k, v]) => [hex(k), hex(v)]), [[hex(encapKey(1, "10.1.2.0/24")), hex(encapValue("fd00:1ace:2::1", false))]]);

    // SRH on, one block gone: one value changed, one element removed.
    plan.encap.delete("1|fd00:1:0:2::/64");
    plan.encap.set("1|10.1.2.0/24", { net: 1, prefix: "10.1.2.0/24", sid: "fd00:1ace:2::1", srh: true });
    assert.equal(dp.sync(plan), { added: 0, changed: 1, removed: 1 });
    assert.is(mapEntries(dp.mapFd("lace_encap6"), LAYOUT.lace_encap6.key, LAYOUT.lace_encap6.value).length, 0);

    // An element deleted behind the datapath's back: a sync trusts what it wrote last (no read-back of
    // thousands of elements) until it verifies, every verifyEveryMs or after distrust().
    mapDelete(dp.mapFd("lace_encap4"), encapKey(1, "10.1.2.0/24"), "test: remove an element behind the datapath's back");
    assert.equal(dp.sync(plan), { added: 0, changed: 0, removed: 0 }, "not read back: the shadow is trusted");
    dp.distrust();
    assert.equal(dp.sync(plan), { added: 1, changed: 0, removed: 0 }, "read back after distrust: repaired");
    assert.is(mapEntries(dp.mapFd("lace_encap4"), LAYOUT.lace_encap4.key, LAYOUT.lace_encap4.value).length, 1);
    mapDelete(dp.mapFd("lace_encap4"), encapKey(1, "10.1.2.0/24"), "test: and again");
    dp.verifyEveryMs = 0;
    assert.equal(dp.sync(plan), { added: 1, changed: 0, removed: 0 }, "verified on every sync when asked to");
    dp.verifyEveryMs = 60_000;

    // Another node's pins are its own.
    const other = BpfDatapath.open(dir, "n2");
    assert.is(mapEntries(other.mapFd("lace_encap4"), LAYOUT.lace_encap4.key, LAYOUT.lace_encap4.value).length, 0);
    other.destroy();
    dp.destroy();
  } finally {
    sh("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

kt("programs attach once (the same code is kept, by tag, also from a new load) and a kernel-backend clean-up removes them", () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-bpf-test-"));
  const ns = `lbt${process.pid.toString(36)}`;
  sh("mount", ["-t", "bpf", "bpf", dir]);
  sh("ip", ["netns", "add", ns]);
  try {
    sh("ip", ["-n", ns, "link", "add", "name", "u0", "type", "veth", "peer", "name", "u1"]);
    const index = Number(sh("ip", ["netns", "exec", ns, "cat", "/sys/class/net/u0/ifindex"]).trim());
    const path = `/run/netns/${ns}`;
    let dp = BpfDatapath.open(dir, "n1");
    assert.is(inNetns(path, () => dp.attach(index)), 2, "encap on egress, decap on ingress");
    assert.is(inNetns(path, () => dp.attach(index)), 0, "already there");
    dp.close();
    dp = BpfDatapath.open(dir, "n1");
    assert.is(inNetns(path, () => dp.attach(index)), 0, "a new load of the same object keeps the attached programs");
    const filters = sh("ip", ["netns", "exec", ns, "tc", "filter", "show", "dev", "u0", "egress"]) + sh("ip", ["netns", "exec", ns, "tc", "filter", "show", "dev", "u0", "ingress"]);
    assert.match(filters, /lace_encap/);
    assert.match(filters, /lace_decap/);
    assert.is(inNetns(path, () => detachLeftovers(index)), 2);
    assert.is(inNetns(path, () => attachedProgram(index, "egress")), undefined);
    assert.is(inNetns(path, () => detachLeftovers(index)), 0, "nothing left the second time");
    dp.destroy();
  } finally {
    sh("ip", ["netns", "del", ns]);
    sh("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

kt("a plan without an outer source address is refused, naming what is missing", () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-bpf-test-"));
  sh("mount", ["-t", "bpf", "bpf", dir]);
  try {
    const dp = BpfDatapath.open(dir, "n1");
    assert.throws(() => dp.sync({ encap: new Map(), sids: new Map() }), /the underlay has no IPv6 address to use as the outer source of SRv6 packets/);
    dp.destroy();
  } finally {
    sh("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
