/**
 * Reading lace-cni's objects back from the kernel and building the
 * rtnetlink requests that create, change and remove them. Ownership is
 * marked in the kernel itself, so a fresh process finds exactly what an
 * earlier one made: routes, rules and nexthops carry RTPROT_LACE; bridges
 * carry the interface alias `lace-cni:bridge`; nexthop ids live in
 * [NEXTHOP_ID_BASE, NEXTHOP_ID_BASE + 2^24).
 *
 * @example
 * const links = await readLinks(nl);
 * const routes = await readRoutes(nl, links);
 */
import type { NetlinkClient, WriteRequest } from "./netlink.ts";
import {
  AF, attrMap, NDA, ndmsg, NTF, NUD, fibRuleHdr, FR_ACT, FRA, IFA, IFA_F, ifaddrmsg, ifinfomsg, IFF_UP, IFLA, IFLA_BRPORT, IFLA_INFO, ipBytes, ipText,
  LWTUNNEL_ENCAP, MessageBuilder, NHA, nhmsg, NLM_F, parseSeg6Encap, parseSeg6Local, readStr, readU32, RT_SCOPE, RTA,
  rtmsg, RTM, RTN, RTPROT_LACE, SEG6_ACTION, SEG6_IPTUNNEL_SRH, seg6EncapPayload, seg6LocalAttrs,
} from "./wire.ts";
import type { AddrObj, BridgeObj, NeighborObj, NexthopObj, ProxyObj, RouteObj, RuleObj } from "./objects.ts";

export const BRIDGE_ALIAS = "lace-cni:bridge";
export const POD_ALIAS_PREFIX = "lace-cni:pod:";
/**
 * The interface group of every pod's host-side interface (IFLA_GROUP, set
 * when the veth is created). The bridge ruleset validates the source
 * address of every port in this group, with no per-pod nftables element to
 * say that a port is a pod's.
 */
export const POD_LINK_GROUP = 0x1ace;
export const NEXTHOP_ID_BASE = 0x1ace0000;
export const NEXTHOP_ID_SPAN = 1 << 24;

/** A link as read from the kernel. */
export interface LinkInfo {
  index: number;
  name: string;
  alias?: string;
  up: boolean;
  master?: number;
  mtu: number;
  kind?: string;
  /** Interface group (IFLA_GROUP); 0 is the default group. */
  group?: number;
  /** The link's MAC address (`0a:4c:00:00:00:01`), where it has one. */
  mac?: string;
  /** A bridge port only: whether it is isolated (forwards only to and from the bridge itself). */
  isolated?: boolean;
  /** A bridge port only: whether the bridge answers ARP/ND arriving on it for known neighbours (`neigh_suppress`). */
  neighSuppress?: boolean;
}

export interface Links {
  byName: Map<string, LinkInfo>;
  byIndex: Map<number, LinkInfo>;
}

export async function readLinks(nl: NetlinkClient): Promise<Links> {
  const msgs = await nl.dump(RTM.GETLINK, ifinfomsg(0), "links");
  const byName = new Map<string, LinkInfo>();
  const byIndex = new Map<number, LinkInfo>();
  for (const m of msgs) {
    if (m.type !== RTM.NEWLINK) continue;
    const link = parseLink(m.data);
    byName.set(link.name, link);
    byIndex.set(link.index, link);
  }
  return { byName, byIndex };
}

/**
 * One link by name, or undefined when there is none: one request instead of
 * a dump of every link (which grows with the pods on the node).
 *
 * @example
 * const br = await readLink(nl, "lace-br1");
 */
export async function readLink(nl: NetlinkClient, name: string): Promise<LinkInfo | undefined> {
  try {
    const m = await nl.get(RTM.GETLINK, ifinfomsg(0), `link ${name}`, (b) => b.str(IFLA.IFNAME, name));
    return m.type === RTM.NEWLINK ? parseLink(m.data) : undefined;
  } catch (e) {
    if ((e as { code?: string }).code === "ENODEV") return undefined;
    throw e;
  }
}

/** An RTM_NEWLINK message's payload (ifinfomsg + attributes) as a LinkInfo. */
function parseLink(data: Uint8Array): LinkInfo {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const index = v.getInt32(4, true);
  const flags = v.getUint32(8, true);
  const a = attrMap(data.subarray(16));
  const info = a.get(IFLA.LINKINFO);
  const infoAttrs = info ? attrMap(info) : undefined;
  const slave = infoAttrs?.get(IFLA_INFO.SLAVE_DATA);
  const port = slave && readStr(infoAttrs!.get(IFLA_INFO.SLAVE_KIND)) === "bridge" ? attrMap(slave) : undefined;
  const isolated = port?.get(IFLA_BRPORT.ISOLATED);
  const suppress = port?.get(IFLA_BRPORT.NEIGH_SUPPRESS);
  const mac = a.get(IFLA.ADDRESS);
  return {
    index,
    name: readStr(a.get(IFLA.IFNAME)) ?? "",
    alias: readStr(a.get(IFLA.IFALIAS)),
    up: (flags & IFF_UP) !== 0,
    master: readU32(a.get(IFLA.MASTER)),
    mtu: readU32(a.get(IFLA.MTU)) ?? 0,
    kind: infoAttrs ? readStr(infoAttrs.get(IFLA_INFO.KIND)) : undefined,
    group: readU32(a.get(IFLA.GROUP)),
    ...(mac?.length === 6 ? { mac: macText(mac) } : {}),
    ...(isolated ? { isolated: isolated[0] === 1 } : {}),
    ...(suppress ? { neighSuppress: suppress[0] === 1 } : {}),
  };
}

export function ourBridges(links: Links): Map<string, BridgeObj> {
  const out = new Map<string, BridgeObj>();
  for (const l of links.byName.values()) {
    if (l.alias === BRIDGE_ALIAS) out.set(l.name, { name: l.name, up: l.up, ...(l.mac ? { mac: l.mac } : {}) });
  }
  return out;
}

/** Addresses on the given links (all of them are ours: our bridges have no automatic addresses). */
export async function readAddrs(nl: NetlinkClient, links: Links, on: Set<string>): Promise<AddrObj[]> {
  const msgs = await nl.dump(RTM.GETADDR, ifaddrmsg(AF.UNSPEC, 0, 0, 0, 0), "addresses");
  const out: AddrObj[] = [];
  for (const m of msgs) {
    if (m.type !== RTM.NEWADDR) continue;
    const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    const family = v.getUint8(0);
    const len = v.getUint8(1);
    const index = v.getUint32(4, true);
    const name = links.byIndex.get(index)?.name;
    if (!name || !on.has(name)) continue;
    const a = attrMap(m.data.subarray(8));
    const addr = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS);
    if (!addr) continue;
    out.push({ ifname: name, cidr: `${ipText(addr)}/${len}`, family: family === AF.INET ? 4 : 6 });
  }
  return out;
}

export async function readNexthops(nl: NetlinkClient, links: Links): Promise<NexthopObj[]> {
  const msgs = await nl.dump(RTM.GETNEXTHOP, nhmsg(AF.UNSPEC, 0), "nexthops");
  const out: NexthopObj[] = [];
  for (const m of msgs) {
    if (m.type !== RTM.NEWNEXTHOP) continue;
    if (m.data[2] !== RTPROT_LACE) continue;
    const a = attrMap(m.data.subarray(8));
    const id = readU32(a.get(NHA.ID));
    const encap = a.get(NHA.ENCAP);
    const seg = encap ? parseSeg6Encap(encap) : undefined;
    const gw = a.get(NHA.GATEWAY);
    out.push({
      ...(gw ? { gateway: ipText(gw) } : {}),
      id,
      family: m.data[0] === AF.INET ? 4 : 6,
      oif: links.byIndex.get(readU32(a.get(NHA.OIF)) ?? -1)?.name ?? "",
      mode: seg?.mode ?? -1,
      segments: seg?.segments ?? [],
    });
  }
  return out;
}

/** Our routes (RTPROT_LACE) in every table, with nexthop ids as given by the kernel. */
export async function readRoutes(nl: NetlinkClient, links: Links): Promise<(RouteObj & { nhid?: number })[]> {
  const out: (RouteObj & { nhid?: number })[] = [];
  for (const family of [AF.INET, AF.INET6]) {
    const msgs = await nl.dump(RTM.GETROUTE, rtmsg({ family, dstLen: 0, table: 0, protocol: 0, type: 0 }), "routes");
    for (const m of msgs) {
      if (m.type !== RTM.NEWROUTE) continue;
      const d = m.data;
      if (d[5] !== RTPROT_LACE) continue;
      const a = attrMap(d.subarray(12));
      const fam: 4 | 6 = d[0] === AF.INET ? 4 : 6;
      const dstBytes = a.get(RTA.DST);
      const dst = `${dstBytes ? ipText(dstBytes) : fam === 4 ? "0.0.0.0" : "::"}/${d[1]}`;
      const type = d[7] === RTN.UNREACHABLE ? "unreachable" : "unicast";
      const r: RouteObj & { nhid?: number } = {
        family: fam,
        table: readU32(a.get(RTA.TABLE)) ?? d[4],
        dst,
        type,
      };
      const oif = readU32(a.get(RTA.OIF));
      if (oif !== undefined) r.oif = links.byIndex.get(oif)?.name ?? `#${oif}`;
      const gw = a.get(RTA.GATEWAY);
      if (gw) r.gateway = ipText(gw);
      const src = a.get(RTA.PREFSRC);
      if (src) r.prefsrc = ipText(src);
      if (d[6] === RT_SCOPE.LINK) r.scope = "link";
      const nhid = readU32(a.get(RTA.NH_ID));
      if (nhid !== undefined) {
        r.nhid = nhid;
        // With a nexthop object the kernel also reports its device (and an IPv6 route its gateway); the route itself has neither.
        delete r.oif;
        delete r.gateway;
      }
      const encapType = a.get(RTA.ENCAP_TYPE);
      const encap = a.get(RTA.ENCAP);
      if (encapType && encap && new DataView(encapType.buffer, encapType.byteOffset, 2).getUint16(0, true) === LWTUNNEL_ENCAP.SEG6_LOCAL) {
        const s = parseSeg6Local(encap);
        r.encap = { kind: "seg6local", action: s.action, table: s.table, nh4: s.nh4 };
      }
      out.push(r);
    }
  }
  return out;
}

export async function readRules(nl: NetlinkClient): Promise<RuleObj[]> {
  const out: RuleObj[] = [];
  for (const family of [AF.INET, AF.INET6]) {
    const msgs = await nl.dump(RTM.GETRULE, fibRuleHdr(family, 0, 0), "rules");
    for (const m of msgs) {
      if (m.type !== RTM.NEWRULE) continue;
      const a = attrMap(m.data.subarray(12));
      const proto = a.get(FRA.PROTOCOL);
      if (!proto || proto[0] !== RTPROT_LACE) continue;
      const r: RuleObj = {
        family: m.data[0] === AF.INET ? 4 : 6,
        priority: readU32(a.get(FRA.PRIORITY)) ?? 0,
        table: readU32(a.get(FRA.TABLE)) ?? m.data[4],
      };
      const iif = readStr(a.get(FRA.IIFNAME));
      if (iif) r.iifname = iif;
      const mark = readU32(a.get(FRA.FWMARK));
      if (mark !== undefined) r.fwmark = mark;
      const dst = a.get(FRA.DST);
      if (dst) r.dst = `${ipText(dst)}/${m.data[1]}`;
      const src = a.get(FRA.SRC);
      if (src) r.src = `${ipText(src)}/${m.data[2]}`;
      out.push(r);
    }
  }
  return out;
}

// ------------------------------------------------------------------ requests

/** The index of link `name`, or an error saying what could not be done without it. */
export function ifindex(links: Links, name: string, what: string): number {
  const l = links.byName.get(name);
  if (!l) throw new Error(`Cannot ${what}: there is no link named "${name}"`);
  return l.index;
}

/**
 * Creates a bridge: down, without automatic IPv6 link-local (every address
 * on it is ours), then up. A given MAC is fixed: a bridge without one takes
 * the lowest MAC among its ports and changes it as pods come and go, which
 * would leave the pods' neighbour entries for their gateway stale.
 */
export function bridgeAdd(name: string, mtu?: number, mac?: string): WriteRequest[] {
  const m = new MessageBuilder(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL).bytes(ifinfomsg(0));
  m.str(IFLA.IFNAME, name);
  if (mtu) m.u32(IFLA.MTU, mtu);
  if (mac) m.attrBytes(IFLA.ADDRESS, macBytes(mac));
  m.begin(IFLA.LINKINFO).str(IFLA_INFO.KIND, "bridge").end();
  // The address generation mode can only be set once the device exists (EAFNOSUPPORT at creation).
  // So is the alias (creation ignores IFLA_IFALIAS).
  const gen = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(0)).str(IFLA.IFNAME, name).str(IFLA.IFALIAS, BRIDGE_ALIAS);
  gen.begin(IFLA.AF_SPEC).begin(AF.INET6).u8(8 /* IFLA_INET6_ADDR_GEN_MODE */, 1 /* none */).end().end();
  const up = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(0, IFF_UP, IFF_UP)).str(IFLA.IFNAME, name);
  return [
    { message: m, what: `add bridge ${name}` },
    { message: gen, what: `set alias and addrgenmode none on bridge ${name}` },
    { message: up, what: `set link ${name} up` },
  ];
}

/** Sets a link's MAC address (a bridge created before bridges had a fixed one). */
export function setLinkMac(links: Links, name: string, mac: string): WriteRequest {
  const what = `set address ${mac} on ${name}`;
  const m = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(ifindex(links, name, what))).attrBytes(IFLA.ADDRESS, macBytes(mac));
  return { message: m, what };
}

/**
 * Isolates a bridge port (or ends its isolation): an isolated port
 * exchanges frames with the bridge itself only, never with another
 * isolated port, so pods on it reach each other only through the node's
 * routing and filters.
 */
export function setPortIsolated(name: string, on: boolean, links?: Links): WriteRequest {
  const what = `set ${name} bridge port isolated ${on ? "on" : "off"}`;
  const m = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(links ? ifindex(links, name, what) : 0));
  if (!links) m.str(IFLA.IFNAME, name);
  m.begin(IFLA.LINKINFO).str(IFLA_INFO.SLAVE_KIND, "bridge").begin(IFLA_INFO.SLAVE_DATA).u8(IFLA_BRPORT.ISOLATED, on ? 1 : 0).end().end();
  return { message: m, what };
}

export function linkUp(links: Links, name: string): WriteRequest {
  const m = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(ifindex(links, name, `set link ${name} up`), IFF_UP, IFF_UP));
  return { message: m, what: `set link ${name} up` };
}

export function setMaster(links: Links, name: string, master: number): WriteRequest {
  const what = `set master of ${name}`;
  const m = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(ifindex(links, name, what), IFF_UP, IFF_UP)).u32(IFLA.MASTER, master);
  return { message: m, what };
}

/** Puts a pod port into POD_LINK_GROUP (ports attached before ports had a group). */
export function setPodGroup(links: Links, name: string): WriteRequest {
  const what = `set group of ${name}`;
  const m = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(ifindex(links, name, what))).u32(IFLA.GROUP, POD_LINK_GROUP);
  return { message: m, what };
}

export function linkDel(links: Links, name: string): WriteRequest {
  const m = new MessageBuilder(RTM.DELLINK, 0).bytes(ifinfomsg(ifindex(links, name, `delete link ${name}`)));
  return { message: m, what: `delete link ${name}`, ignore: ["ENODEV"] };
}

function splitCidr(cidr: string): [string, number] {
  const i = cidr.lastIndexOf("/");
  return [cidr.slice(0, i), Number(cidr.slice(i + 1))];
}

export function addrAdd(links: Links, a: AddrObj, del = false): WriteRequest {
  const [ip, len] = splitCidr(a.cidr);
  const what = `${del ? "delete" : "add"} address ${a.cidr} on ${a.ifname}`;
  const fam = a.family === 4 ? AF.INET : AF.INET6;
  const flags = IFA_F.NODAD | (a.prefixRoute ? 0 : IFA_F.NOPREFIXROUTE);
  const m = new MessageBuilder(del ? RTM.DELADDR : RTM.NEWADDR, del ? 0 : NLM_F.CREATE | NLM_F.REPLACE)
    .bytes(ifaddrmsg(fam, len, flags, 0, ifindex(links, a.ifname, what)));
  const b = ipBytes(ip);
  m.attrBytes(IFA.LOCAL, b).attrBytes(IFA.ADDRESS, b);
  if (!del) m.u32(IFA.FLAGS, flags);
  return { message: m, what, ignore: del ? ["EADDRNOTAVAIL"] : undefined };
}

function seg6Encap(m: MessageBuilder, attrType: number, mode: number, segments: string[]): void {
  m.begin(attrType).attrBytes(SEG6_IPTUNNEL_SRH, seg6EncapPayload(mode, segments)).end();
}

export function nexthopAdd(links: Links, n: NexthopObj, id: number): WriteRequest {
  const what = n.gateway ? `add nexthop ${id} via ${n.gateway} dev ${n.oif}` : `add nexthop ${id} encap seg6 ${n.segments.join(",")}`;
  const m = new MessageBuilder(RTM.NEWNEXTHOP, NLM_F.CREATE | NLM_F.REPLACE)
    .bytes(nhmsg(n.family === 4 ? AF.INET : AF.INET6, RTPROT_LACE));
  m.u32(NHA.ID, id).u32(NHA.OIF, ifindex(links, n.oif, what));
  if (n.gateway) {
    m.attrBytes(NHA.GATEWAY, ipBytes(n.gateway));
  } else {
    m.u16(NHA.ENCAP_TYPE, LWTUNNEL_ENCAP.SEG6);
    seg6Encap(m, NHA.ENCAP, n.mode, n.segments);
  }
  return { message: m, what };
}

export function nexthopDel(id: number): WriteRequest {
  const m = new MessageBuilder(RTM.DELNEXTHOP, 0).bytes(nhmsg(AF.UNSPEC, 0)).u32(NHA.ID, id);
  return { message: m, what: `delete nexthop ${id}`, ignore: ["ENOENT"] };
}

const V6_METRIC = 1024;

function routeHeader(m: MessageBuilder, r: RouteObj, protocol: number): void {
  const [ip, len] = splitCidr(r.dst);
  const family = r.family === 4 ? AF.INET : AF.INET6;
  m.bytes(rtmsg({
    family, dstLen: len, table: r.table, protocol,
    scope: r.scope === "link" ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE,
    type: r.type === "unreachable" ? RTN.UNREACHABLE : RTN.UNICAST,
  }));
  m.u32(RTA.TABLE, r.table);
  if (len > 0) m.attrBytes(RTA.DST, ipBytes(ip));
  // IPv6 routes are keyed by metric too; fix it so replace and delete find them.
  if (r.family === 6) m.u32(RTA.PRIORITY, V6_METRIC);
}

export function describeRoute(r: RouteObj): string {
  return `${r.type === "unreachable" ? "unreachable " : ""}${r.dst} table ${r.table}`;
}

export function routeAdd(links: Links, r: RouteObj, nhid: number | undefined, replace: boolean): WriteRequest {
  const what = `${replace ? "replace" : "add"} route ${describeRoute(r)}`;
  const m = new MessageBuilder(RTM.NEWROUTE, NLM_F.CREATE | (replace ? NLM_F.REPLACE : NLM_F.EXCL));
  routeHeader(m, r, RTPROT_LACE);
  if (nhid !== undefined) m.u32(RTA.NH_ID, nhid);
  else if (r.type === "unicast" && r.oif) m.u32(RTA.OIF, ifindex(links, r.oif, what));
  if (r.gateway) m.attrBytes(RTA.GATEWAY, ipBytes(r.gateway));
  if (r.prefsrc) m.attrBytes(RTA.PREFSRC, ipBytes(r.prefsrc));
  if (r.encap) {
    m.u16(RTA.ENCAP_TYPE, LWTUNNEL_ENCAP.SEG6_LOCAL);
    m.begin(RTA.ENCAP);
    seg6LocalAttrs(m, { action: r.encap.action, table: r.encap.table, nh4: r.encap.nh4 });
    m.end();
  }
  return { message: m, what };
}

export function routeDel(r: RouteObj): WriteRequest {
  const m = new MessageBuilder(RTM.DELROUTE, 0);
  routeHeader(m, r, RTPROT_LACE);
  return { message: m, what: `delete route ${describeRoute(r)}`, ignore: ["ESRCH", "ENOENT"] };
}

export function ruleAdd(r: RuleObj, del = false): WriteRequest {
  const m = new MessageBuilder(del ? RTM.DELRULE : RTM.NEWRULE, del ? 0 : NLM_F.CREATE | NLM_F.EXCL)
    .bytes(fibRuleHdr(r.family === 4 ? AF.INET : AF.INET6, r.table, FR_ACT.TO_TBL, r.dst ? Number(r.dst.split("/")[1]) : 0, r.src ? Number(r.src.split("/")[1]) : 0));
  m.u32(FRA.PRIORITY, r.priority).u32(FRA.TABLE, r.table);
  if (r.iifname) m.str(FRA.IIFNAME, r.iifname);
  if (r.fwmark !== undefined) m.u32(FRA.FWMARK, r.fwmark).u32(FRA.FWMASK, 0xffffffff);
  if (r.dst) m.attrBytes(FRA.DST, ipBytes(r.dst.split("/")[0]));
  if (r.src) m.attrBytes(FRA.SRC, ipBytes(r.src.split("/")[0]));
  m.u8(FRA.PROTOCOL, RTPROT_LACE);
  const sel = [
    r.iifname ? `iif ${r.iifname}` : "",
    r.fwmark !== undefined ? `fwmark 0x${r.fwmark.toString(16)}` : "",
    r.src ? `from ${r.src}` : "",
    r.dst ? `to ${r.dst}` : "",
  ].filter(Boolean).join(" ") || "all";
  return { message: m, what: `${del ? "delete" : "add"} rule pref ${r.priority} ${sel} lookup ${r.table}`, ignore: del ? ["ENOENT"] : undefined };
}

export type { NeighborObj, ProxyObj };

export function macText(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

export function macBytes(mac: string): Uint8Array {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new TypeError(`Invalid MAC address: expected six hex octets "aa:bb:cc:dd:ee:ff", got "${mac}"`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function neighborAdd(links: Links, n: NeighborObj, del = false): WriteRequest {
  const what = `${del ? "delete" : "add"} neighbour ${n.ip} lladdr ${n.mac} dev ${n.ifname}`;
  const m = new MessageBuilder(del ? RTM.DELNEIGH : RTM.NEWNEIGH, del ? 0 : NLM_F.CREATE | NLM_F.REPLACE)
    .bytes(ndmsg(n.ip.includes(":") ? AF.INET6 : AF.INET, ifindex(links, n.ifname, what), NUD.PERMANENT));
  m.attrBytes(NDA.DST, ipBytes(n.ip));
  if (!del) m.attrBytes(NDA.LLADDR, macBytes(n.mac));
  return { message: m, what, ignore: del ? ["ENOENT"] : undefined };
}

/** A neighbour (or FDB) entry as dumped: its link, NUD state, ndm flags and attributes. */
export interface NeighbourMessage {
  ifname: string;
  state: number;
  flags: number;
  attrs: Map<number, Uint8Array>;
}

/**
 * Dumps the neighbour table of `family` (AF_BRIDGE: the FDB), keeping the
 * entries on the given links.
 *
 * @example
 * const fdb = await dumpNeighbours(nl, links, new Set(["lt5"]), AF.BRIDGE);
 */
export async function dumpNeighbours(nl: NetlinkClient, links: Links, on: Set<string>, family: number = AF.UNSPEC): Promise<NeighbourMessage[]> {
  const out: NeighbourMessage[] = [];
  for (const m of await nl.dump(RTM.GETNEIGH, ndmsg(family, 0, 0), family === AF.BRIDGE ? "fdb entries" : "neighbours")) {
    if (m.type !== RTM.NEWNEIGH) continue;
    const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    const ifname = links.byIndex.get(v.getInt32(4, true))?.name;
    if (!ifname || !on.has(ifname)) continue;
    out.push({ ifname, state: v.getUint16(8, true), flags: v.getUint8(10), attrs: attrMap(m.data.subarray(12)) });
  }
  return out;
}

/** Permanent neighbour entries on the given links. */
export async function readNeighbors(nl: NetlinkClient, links: Links, on: Set<string>): Promise<NeighborObj[]> {
  const out: NeighborObj[] = [];
  for (const n of await dumpNeighbours(nl, links, on)) {
    const dst = n.attrs.get(NDA.DST);
    const ll = n.attrs.get(NDA.LLADDR);
    if ((n.state & NUD.PERMANENT) === 0 || !dst || !ll) continue;
    out.push({ ifname: n.ifname, ip: ipText(dst), mac: macText(ll) });
  }
  return out;
}

/**
 * Adds (or deletes) a proxy neighbour entry: the node answers neighbour
 * solicitations for `ip` on `ifname` with the link's own MAC (proxy_ndp
 * must be on for the link).
 */
export function proxyAdd(links: Links, p: ProxyObj, del = false): WriteRequest {
  const what = `${del ? "delete" : "add"} neighbour proxy ${p.ip} dev ${p.ifname}`;
  const m = new MessageBuilder(del ? RTM.DELNEIGH : RTM.NEWNEIGH, del ? 0 : NLM_F.CREATE | NLM_F.REPLACE)
    .bytes(ndmsg(p.ip.includes(":") ? AF.INET6 : AF.INET, ifindex(links, p.ifname, what), NUD.PERMANENT, NTF.PROXY));
  m.attrBytes(NDA.DST, ipBytes(p.ip));
  return { message: m, what, ignore: del ? ["ENOENT"] : undefined };
}

/** Proxy neighbour entries (both families) on the given links. */
export async function readProxies(nl: NetlinkClient, links: Links, on: Set<string>): Promise<ProxyObj[]> {
  const out: ProxyObj[] = [];
  for (const family of [AF.INET, AF.INET6]) {
    const msgs = await nl.dump(RTM.GETNEIGH, ndmsg(family, 0, 0, NTF.PROXY), "proxy neighbours");
    for (const m of msgs) {
      if (m.type !== RTM.NEWNEIGH) continue;
      const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      if ((v.getUint8(10) & NTF.PROXY) === 0) continue;
      const name = links.byIndex.get(v.getInt32(4, true))?.name;
      const dst = attrMap(m.data.subarray(12)).get(NDA.DST);
      if (!name || !on.has(name) || !dst) continue;
      out.push({ ifname: name, ip: ipText(dst) });
    }
  }
  return out;
}

export { SEG6_ACTION };
