/**
 * Conntrack entries over ctnetlink (NETLINK_NETFILTER, subsystem
 * NFNL_SUBSYS_CTNETLINK): read them with a dump, delete them one by one.
 * The service table (services.ts) needs this for UDP: a client that keeps
 * sending from one source port keeps its conntrack entry, and with it the
 * translation to the endpoint it first got, as long as it sends more
 * often than the UDP timeout, even after that endpoint was removed. TCP
 * is left alone: a connection to a gone endpoint ends by itself (reset or
 * timeout), and the client opens a new one, which is translated afresh.
 *
 * No `conntrack` process (the conntrack-tools package) is needed: the
 * messages are encoded here with the builder of wire.ts, the attribute
 * numbers are those of the kernel's
 * include/uapi/linux/netfilter/nfnetlink_conntrack.h.
 *
 * @example
 * const nf = NetlinkClient.open("/run/netns/node-1", undefined, NETLINK_NETFILTER);
 * // rb (10.1.2.20) is no longer an endpoint of 10.96.0.10:53/UDP: its clients' entries go, the next datagram is translated anew.
 * await flushUdpToEndpoints(nf, [{ clusterIP: "10.96.0.10", port: 53, endpoint: "10.1.2.20" }]); // { deleted: 1, dumped: 3 }
 */
import type { NetlinkClient, WriteRequest } from "./netlink.ts";
import { AF, attrMap, canonicalIp, ipBytes, ipText, MessageBuilder } from "./wire.ts";

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG = { NEW: 0, GET: 1, DELETE: 2 } as const;
/** enum ctattr_type (the attributes of one entry). */
export const CTA = { TUPLE_ORIG: 1, TUPLE_REPLY: 2, STATUS: 3, TIMEOUT: 7, ZONE: 18, FILTER: 25 } as const;
/** enum ctattr_tuple. */
const CTA_TUPLE = { IP: 1, PROTO: 2, ZONE: 3 } as const;
/** enum ctattr_ip. */
const CTA_IP = { V4_SRC: 1, V4_DST: 2, V6_SRC: 3, V6_DST: 4 } as const;
/** enum ctattr_l4proto. */
const CTA_PROTO = { NUM: 1, SRC_PORT: 2, DST_PORT: 3 } as const;
/** enum ctattr_filter. */
const CTA_FILTER_ORIG_FLAGS = 1;
/**
 * Bits of CTA_FILTER_ORIG_FLAGS: which fields of the CTA_TUPLE_ORIG sent
 * with a dump an entry must match (the kernel's net/netfilter/nf_internals.h,
 * part of the ABI since Linux 5.8; older kernels ignore the filter and the
 * entries are matched here anyway).
 */
const FILTER_F = { IP_DST: 1 << 1, PROTO_NUM: 1 << 3, PROTO_DST_PORT: 1 << 5 } as const;
const IPPROTO_UDP = 17;

/** The type of a ctnetlink message: subsystem in the high byte. */
const ctType = (msg: number) => (NFNL_SUBSYS_CTNETLINK << 8) | msg;

/** One direction of a connection: addresses, layer-4 protocol and ports (absent for protocols without ports). */
export interface ConntrackTuple {
  src: string;
  dst: string;
  proto: number;
  sport?: number;
  dport?: number;
}

/** A conntrack entry, in the fields used here. */
export interface ConntrackEntry {
  /** AF_INET or AF_INET6 (the same numbers as NFPROTO_IPV4/IPV6). */
  family: number;
  /** As the first packet had it: for a translated Service connection, client → ClusterIP:port. */
  orig: ConntrackTuple;
  /** As the answers have it: for a translated Service connection, endpoint:target port → client. */
  reply: ConntrackTuple;
  /** The conntrack zone, when the entry has one (CTA_ZONE). */
  zone?: number;
}

/** struct nfgenmsg: family, version 0, resource id 0. */
function nfgenmsg(family: number): Uint8Array {
  return Uint8Array.of(family, 0, 0, 0);
}

function be16(v: number): Uint8Array {
  return Uint8Array.of((v >> 8) & 0xff, v & 0xff);
}

function readBe16(d: Uint8Array | undefined): number | undefined {
  return d && d.length >= 2 ? (d[0] << 8) | d[1] : undefined;
}

/** Writes a tuple as the nested attribute `type` (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY). */
export function tupleAttr(m: MessageBuilder, type: number, t: ConntrackTuple): MessageBuilder {
  const v6 = t.src.includes(":");
  m.begin(type).begin(CTA_TUPLE.IP);
  m.attrBytes(v6 ? CTA_IP.V6_SRC : CTA_IP.V4_SRC, ipBytes(t.src)).attrBytes(v6 ? CTA_IP.V6_DST : CTA_IP.V4_DST, ipBytes(t.dst));
  m.end().begin(CTA_TUPLE.PROTO).u8(CTA_PROTO.NUM, t.proto);
  if (t.sport !== undefined) m.attrBytes(CTA_PROTO.SRC_PORT, be16(t.sport));
  if (t.dport !== undefined) m.attrBytes(CTA_PROTO.DST_PORT, be16(t.dport));
  return m.end().end();
}

/** A tuple from the payload of CTA_TUPLE_ORIG / CTA_TUPLE_REPLY; undefined without addresses or protocol. */
function parseTuple(data: Uint8Array): ConntrackTuple | undefined {
  const a = attrMap(data);
  const ip = a.get(CTA_TUPLE.IP);
  const proto = a.get(CTA_TUPLE.PROTO);
  if (!ip || !proto) return undefined;
  const ipa = attrMap(ip);
  const src = ipa.get(CTA_IP.V4_SRC) ?? ipa.get(CTA_IP.V6_SRC);
  const dst = ipa.get(CTA_IP.V4_DST) ?? ipa.get(CTA_IP.V6_DST);
  const pa = attrMap(proto);
  const num = pa.get(CTA_PROTO.NUM);
  if (!src || !dst || !num?.length) return undefined;
  const t: ConntrackTuple = { src: ipText(src), dst: ipText(dst), proto: num[0] };
  const sport = readBe16(pa.get(CTA_PROTO.SRC_PORT));
  const dport = readBe16(pa.get(CTA_PROTO.DST_PORT));
  if (sport !== undefined) t.sport = sport;
  if (dport !== undefined) t.dport = dport;
  return t;
}

/**
 * The entry in one message of a ctnetlink dump (IPCTNL_MSG_CT_NEW: nfgenmsg,
 * then the entry's attributes); undefined for anything else.
 *
 * @example
 * parseConntrackEntry(msg.type, msg.data)?.reply.src; // "10.1.2.20": the endpoint a translated connection went to
 */
export function parseConntrackEntry(type: number, data: Uint8Array): ConntrackEntry | undefined {
  if (type !== ctType(IPCTNL_MSG.NEW) || data.length < 4) return undefined;
  const a = attrMap(data.subarray(4));
  const orig = a.get(CTA.TUPLE_ORIG);
  const reply = a.get(CTA.TUPLE_REPLY);
  const o = orig && parseTuple(orig);
  const r = reply && parseTuple(reply);
  if (!o || !r) return undefined;
  const entry: ConntrackEntry = { family: data[0], orig: o, reply: r };
  const zone = readBe16(a.get(CTA.ZONE));
  if (zone !== undefined) entry.zone = zone;
  return entry;
}

/**
 * The message deleting one entry: its original tuple, and its zone when it
 * has one (an entry is found by tuple within its zone; without CTA_ZONE the
 * kernel looks in zone 0).
 */
export function deleteMessage(e: ConntrackEntry): MessageBuilder {
  const m = new MessageBuilder(ctType(IPCTNL_MSG.DELETE), 0).bytes(nfgenmsg(e.family));
  tupleAttr(m, CTA.TUPLE_ORIG, e.orig);
  if (e.zone !== undefined) m.attrBytes(CTA.ZONE, be16(e.zone));
  return m;
}

/** What a dump asks for: entries of one protocol, to one address and port when given. */
export interface ConntrackFilter {
  proto: number;
  dst?: string;
  dport?: number;
}

/**
 * Writes a dump's filter attributes: CTA_FILTER with the fields to match,
 * and CTA_TUPLE_ORIG with their values. The kernel needs an address family
 * (not AF_UNSPEC) in the nfgenmsg for it.
 */
export function filterAttrs(m: MessageBuilder, f: ConntrackFilter): MessageBuilder {
  let flags = FILTER_F.PROTO_NUM;
  m.begin(CTA.TUPLE_ORIG);
  if (f.dst !== undefined) {
    flags |= FILTER_F.IP_DST;
    m.begin(CTA_TUPLE.IP).attrBytes(f.dst.includes(":") ? CTA_IP.V6_DST : CTA_IP.V4_DST, ipBytes(f.dst)).end();
  }
  m.begin(CTA_TUPLE.PROTO).u8(CTA_PROTO.NUM, f.proto);
  if (f.dport !== undefined) {
    flags |= FILTER_F.PROTO_DST_PORT;
    m.attrBytes(CTA_PROTO.DST_PORT, be16(f.dport));
  }
  m.end().end();
  return m.begin(CTA.FILTER).u32(CTA_FILTER_ORIG_FLAGS, flags).end();
}

/**
 * The namespace's conntrack entries of one family (AF_INET or AF_INET6)
 * that match `filter`, in one dump.
 *
 * @example
 * await readConntrack(nf, AF.INET, { proto: 17, dst: "10.96.0.10", dport: 53 }); // [{ family: 2, orig: {…}, reply: {…} }]
 */
export async function readConntrack(nf: NetlinkClient, family: number, filter: ConntrackFilter): Promise<ConntrackEntry[]> {
  const what = `conntrack entries (IPv${family === AF.INET6 ? 6 : 4}, protocol ${filter.proto}${filter.dst ? ` to ${filter.dst}` : ""}${filter.dport ? ` port ${filter.dport}` : ""})`;
  // The kernel's IPv6 address filter matched no entry here, to that address or another (Linux 6.18; its comparison,
  // `!ipv6_addr_cmp(…)`, reads inverted too): an IPv6 address is matched below only.
  const asked = family === AF.INET6 ? { ...filter, dst: undefined } : filter;
  const msgs = await nf.dump(ctType(IPCTNL_MSG.GET), nfgenmsg(family), what, (m) => filterAttrs(m, asked));
  const out: ConntrackEntry[] = [];
  for (const msg of msgs) {
    const e = parseConntrackEntry(msg.type, msg.data);
    // Kernels before 5.8 ignore the filter: matched here too.
    if (e && e.family === family && matches(e.orig, filter)) out.push(e);
  }
  return out;
}

function matches(t: ConntrackTuple, f: ConntrackFilter): boolean {
  return t.proto === f.proto && (f.dst === undefined || t.dst === canonicalIp(f.dst)) && (f.dport === undefined || t.dport === f.dport);
}

/** Deletes entries (one batch of requests); an entry already gone (it timed out meanwhile) is fine. */
export async function deleteConntrack(nf: NetlinkClient, entries: readonly ConntrackEntry[]): Promise<void> {
  const reqs: WriteRequest[] = entries.map((e) => ({
    message: deleteMessage(e),
    what: `delete conntrack entry ${describe(e.orig)}${e.zone !== undefined ? ` zone ${e.zone}` : ""}`,
    ignore: ["ENOENT"],
  }));
  await nf.write(reqs);
}

/** `udp 10.1.1.10:40000 -> 10.96.0.10:53`, for errors. */
function describe(t: ConntrackTuple): string {
  const at = (a: string, p?: number) => (p === undefined ? a : a.includes(":") ? `[${a}]:${p}` : `${a}:${p}`);
  return `${t.proto === IPPROTO_UDP ? "udp" : `protocol ${t.proto}`} ${at(t.src, t.sport)} -> ${at(t.dst, t.dport)}`;
}

/** A Service port's endpoint that is gone: UDP flows to `clusterIP:port` that were translated to `endpoint` end. */
export interface RemovedUdpEndpoint {
  clusterIP: string;
  port: number;
  /** The endpoint's address (the translation's target). */
  endpoint: string;
}

/**
 * Deletes every UDP conntrack entry whose original destination is one of
 * the `removed` ClusterIP:port pairs and whose reply source (where the
 * translation sent it) is that pair's removed endpoint, so the client's
 * next datagram is translated again, to an endpoint that exists. One dump
 * per address family that `removed` has (filtered by the kernel on UDP,
 * and on the ClusterIP and port when all of that family share them), then
 * one batch of deletes. Returns how many entries were read and deleted.
 *
 * @example
 * await flushUdpToEndpoints(nf, [{ clusterIP: "10.96.0.10", port: 53, endpoint: "10.1.2.20" }]); // { dumped: 3, deleted: 1 }
 */
export async function flushUdpToEndpoints(nf: NetlinkClient, removed: readonly RemovedUdpEndpoint[]): Promise<{ dumped: number; deleted: number }> {
  let dumped = 0;
  const doomed: ConntrackEntry[] = [];
  for (const family of [AF.INET, AF.INET6]) {
    const mine = removed.filter((r) => r.clusterIP.includes(":") === (family === AF.INET6));
    if (mine.length === 0) continue;
    // `clusterIP port endpoint`, canonical: the dump's addresses are printed canonically.
    const wanted = new Set(mine.map((r) => `${canonicalIp(r.clusterIP)} ${r.port} ${canonicalIp(r.endpoint)}`));
    const one = (k: "clusterIP" | "port") => (mine.every((r) => r[k] === mine[0][k]) ? mine[0][k] : undefined);
    const entries = await readConntrack(nf, family, { proto: IPPROTO_UDP, dst: one("clusterIP") as string | undefined, dport: one("port") as number | undefined });
    dumped += entries.length;
    for (const e of entries) if (wanted.has(`${e.orig.dst} ${e.orig.dport} ${e.reply.src}`)) doomed.push(e);
  }
  if (doomed.length) await deleteConntrack(nf, doomed);
  return { dumped, deleted: doomed.length };
}
