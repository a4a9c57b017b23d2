/**
 * Conntrack entries over ctnetlink: the messages byte for byte, a dump
 * message read back, and (as root) entries made in a namespace of our own,
 * dumped and deleted by the kernel.
 */
import { execFileSync } from "node:child_process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ConntrackEntry, CTA, deleteMessage, filterAttrs, flushUdpToEndpoints, parseConntrackEntry, readConntrack, tupleAttr } from "./conntrack.ts";
import { NetlinkClient } from "./netlink.ts";
import { NETLINK_NETFILTER } from "./nfsets.ts";
import { isRoot, sh } from "./testing.ts";
import { AF, attrs, hex, MessageBuilder, NLM_F } from "./wire.ts";

const t = suite("srv6 conntrack entries");

const CT_NEW = 1 << 8;
const CT_DELETE = (1 << 8) | 2;

/** A client's datagram to a ClusterIP, translated to an endpoint. */
const translated = (client: string, sport: number, vip: string, port: number, endpoint: string, target: number, zone?: number): ConntrackEntry => ({
  family: client.includes(":") ? AF.INET6 : AF.INET,
  orig: { src: client, dst: vip, proto: 17, sport, dport: port },
  reply: { src: endpoint, dst: client, proto: 17, sport: target, dport: sport },
  ...(zone === undefined ? {} : { zone }),
});

/** An entry as the kernel writes it in a dump (and as IPCTNL_MSG_CT_NEW creates it), with a timeout. */
function entryMessage(e: ConntrackEntry, flags = 0): MessageBuilder {
  const m = new MessageBuilder(CT_NEW, flags).bytes(Uint8Array.of(e.family, 0, 0, 0));
  tupleAttr(m, CTA.TUPLE_ORIG, e.orig);
  tupleAttr(m, CTA.TUPLE_REPLY, e.reply);
  m.attrBytes(CTA.TIMEOUT, Uint8Array.of(0, 0, 0, 120));
  if (e.zone !== undefined) m.attrBytes(CTA.ZONE, Uint8Array.of(e.zone >> 8, e.zone & 0xff));
  return m;
}

t("a delete names the original tuple, nested as the kernel's nfnetlink_conntrack.h numbers it, ports in network order", () => {
  const wire = deleteMessage(translated("10.1.1.10", 40000, "10.96.0.10", 53, "10.1.2.20", 8080)).finish(7);
  const v = new DataView(wire.buffer, wire.byteOffset, wire.byteLength);
  assert.is(v.getUint16(4, true), CT_DELETE, "IPCTNL_MSG_CT_DELETE of subsystem 1");
  assert.is(hex(wire.subarray(16, 20)), "02000000", "nfgenmsg: AF_INET, version 0, res_id 0");
  assert.is(
    hex(wire.subarray(20)),
    // CTA_TUPLE_ORIG (1, nested) { CTA_TUPLE_IP (1) { V4_SRC, V4_DST }, CTA_TUPLE_PROTO (2) { NUM 17, SRC_PORT 40000, DST_PORT 53 } }
    "34000180" + "14000180" + "080001000a01010a" + "080002000a60000a" + "1c000280" + "0500010011000000" + "060002009c400000" + "0600030000350000",
  );
});

t("a delete of an entry in a zone carries CTA_ZONE; IPv6 uses the V6 address attributes", () => {
  const wire = deleteMessage(translated("fd00:1:0:1::10", 40000, "fd00:96::10", 53, "fd00:1:0:2::20", 8080, 7)).finish(1);
  const top = [...attrs(wire.subarray(20))];
  assert.equal(top.map(([type]) => type), [CTA.TUPLE_ORIG, CTA.ZONE]);
  assert.is(hex(top[1][1]), "0007", "the zone, big endian");
  const ip = [...attrs([...attrs(top[0][1])][0][1])];
  assert.equal(ip.map(([type, d]) => [type, d.length]), [[3, 16], [4, 16]], "CTA_IP_V6_SRC, CTA_IP_V6_DST");
});

t("an entry of a dump reads back with both tuples and its zone; other messages are not entries", () => {
  for (const e of [translated("10.1.1.10", 40000, "10.96.0.10", 53, "10.1.2.20", 8080), translated("fd00:1:0:1::10", 1, "fd00:96::10", 53, "fd00:1:0:2::20", 8080, 3)]) {
    const wire = entryMessage(e).finish(1);
    assert.equal(parseConntrackEntry(CT_NEW, wire.subarray(16)), e);
  }
  assert.is(parseConntrackEntry(CT_DELETE, new Uint8Array(8)), undefined);
  assert.is(parseConntrackEntry(CT_NEW, Uint8Array.of(2, 0, 0, 0)), undefined, "no tuples");
});

t("a dump's filter asks for UDP, and for the ClusterIP and port when given", () => {
  const udp = new MessageBuilder(0, 0);
  filterAttrs(udp, { proto: 17 });
  // CTA_TUPLE_ORIG { CTA_TUPLE_PROTO { NUM 17 } }, CTA_FILTER (25) { ORIG_FLAGS: CTA_FILTER_F_CTA_PROTO_NUM }
  assert.is(hex(udp.finish(0).subarray(16)), "10000180" + "0c000280" + "0500010011000000" + "0c001980" + "0800010008000000");
  const one = new MessageBuilder(0, 0);
  filterAttrs(one, { proto: 17, dst: "10.96.0.10", dport: 53 });
  const top = [...attrs(one.finish(0).subarray(16))];
  assert.is(hex(top[1][1]), "080001002a000000", "flags: IP_DST | PROTO_NUM | PROTO_DST_PORT");
  assert.is(hex([...attrs(top[0][1])][0][1]), "080002000a60000a", "CTA_IP_V4_DST 10.96.0.10");
});

t("entries made in a namespace of their own: the flush deletes those to removed endpoints, in every zone, and nothing else", async () => {
  if (!isRoot) return console.log("  skipped: needs root (a network namespace and its conntrack table)");
  const ns = `lct${process.pid % 100000}`;
  execFileSync("ip", ["netns", "add", ns]);
  const nf = NetlinkClient.open(`/run/netns/${ns}`, ns, NETLINK_NETFILTER);
  try {
    const gone = [
      translated("10.1.1.10", 40000, "10.96.0.10", 53, "10.1.2.20", 8080),
      translated("10.1.1.11", 40001, "10.96.0.10", 53, "10.1.2.20", 8080, 7),
      translated("fd00:1:0:1::10", 40000, "fd00:96::10", 53, "fd00:1:0:2::20", 8080),
    ];
    const kept = [
      translated("10.1.1.12", 40002, "10.96.0.10", 53, "10.1.1.50", 8080), // another endpoint of the same port
      translated("10.1.1.13", 40003, "10.96.0.11", 53, "10.1.2.20", 8080), // the endpoint, behind another ClusterIP
      translated("10.1.1.14", 40004, "10.96.0.10", 54, "10.1.2.20", 8080), // another port
      { ...translated("10.1.1.15", 40005, "10.96.0.10", 53, "10.1.2.20", 8080), orig: { src: "10.1.1.15", dst: "10.96.0.10", proto: 6, sport: 40005, dport: 53 }, reply: { src: "10.1.2.20", dst: "10.1.1.15", proto: 6, sport: 8080, dport: 40005 } },
    ];
    // TCP needs its state to be created; the others are created as they are.
    const create = (e: ConntrackEntry) => {
      const m = entryMessage(e, NLM_F.CREATE);
      if (e.orig.proto === 6) m.begin(4).begin(1).u8(1, 3).end().end(); // CTA_PROTOINFO { TCP { STATE: ESTABLISHED } }
      return { message: m, what: `create conntrack entry to ${e.orig.dst}` };
    };
    await nf.write([...gone, ...kept].map(create));
    const udp4 = await readConntrack(nf, AF.INET, { proto: 17 });
    assert.is(udp4.length, 5, "the UDP entries of IPv4, none of TCP");
    assert.ok(udp4.some((e) => e.zone === 7), "the one in zone 7 says so");
    assert.is((await readConntrack(nf, AF.INET, { proto: 17, dst: "10.96.0.10", dport: 53 })).length, 3, "to one ClusterIP and port");
    assert.is((await readConntrack(nf, AF.INET6, { proto: 17, dst: "fd00:96::10" })).length, 1, "an IPv6 ClusterIP (matched in user space)");

    const t0 = performance.now();
    const r = await flushUdpToEndpoints(nf, [
      { clusterIP: "10.96.0.10", port: 53, endpoint: "10.1.2.20" },
      { clusterIP: "fd00:96::10", port: 53, endpoint: "fd00:1:0:2::20" },
    ]);
    console.log(`  flush of ${r.deleted} entries (${r.dumped} dumped) took ${(performance.now() - t0).toFixed(2)} ms`);
    assert.is(r.deleted, 3);
    const left = [...(await readConntrack(nf, AF.INET, { proto: 17 })), ...(await readConntrack(nf, AF.INET, { proto: 6 })), ...(await readConntrack(nf, AF.INET6, { proto: 17 }))];
    assert.equal(left.map((e) => `${e.orig.src} ${e.orig.dst}:${e.orig.dport}`).sort(), kept.map((e) => `${e.orig.src} ${e.orig.dst}:${e.orig.dport}`).sort());
    assert.equal(await flushUdpToEndpoints(nf, [{ clusterIP: "10.96.0.10", port: 53, endpoint: "10.1.2.20" }]), { dumped: 1, deleted: 0 }, "twice: nothing left to delete");
    if (hasConntrackCli()) {
      const listed = sh("ip", ["netns", "exec", ns, "conntrack", "-L", "-p", "udp"]);
      assert.not.match(listed, "10.1.2.20 dst=10.1.1.10", `conntrack -L agrees: ${listed}`);
    }
  } finally {
    nf.close();
    execFileSync("ip", ["netns", "del", ns]);
  }
});

function hasConntrackCli(): boolean {
  try {
    execFileSync("conntrack", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

t.run();
