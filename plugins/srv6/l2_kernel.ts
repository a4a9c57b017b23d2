/**
 * The kernel objects of l2 (bridged) networks, over rtnetlink: tunnel
 * ports (a veth pair, one end a port of the network's bridge, found again
 * by its alias), `neigh_suppress` on bridge ports, static FDB entries, and
 * managed neighbour entries on the underlay (the kernel keeps them
 * resolved, so the bpf program's FIB lookups find the next hop's MAC).
 *
 * @example
 * await nl.write([...tunnelAdd(links, { name: "lt7", peer: "lu7", bridge: "lb7" })]);
 * await nl.write([setNeighSuppress(links, "lt7", true), fdbAdd(links, { port: "lt7", mac: "0a:58:0a:32:00:05" })]);
 * await readFdb(nl, links, new Set(["lt7"])); // [{ port: "lt7", mac: "0a:58:0a:32:00:05" }]
 */
import type { NetlinkClient, WriteRequest } from "./netlink.ts";
import { dumpNeighbours, ifindex, macBytes, macText, type Links } from "./kernel.ts";
import type { FdbObj, ManagedNeighborObj, TunnelObj } from "./plan_l2.ts";
import {
  AF, IFF_UP, ifinfomsg, IFLA, IFLA_BRPORT, IFLA_INFO, ipBytes, ipText, MessageBuilder, NDA, ndmsg, NLM_F, NTF, NTF_EXT, NUD, readU32, RTM, RTPROT_LACE,
} from "./wire.ts";

/** The alias that marks a tunnel port as lace-cni's. */
export const TUNNEL_ALIAS = "lace-cni:l2-tunnel";
const VETH_INFO_PEER = 1;
const IFLA_INET6_ADDR_GEN_MODE = 8;
const ADDR_GEN_MODE_NONE = 1;

/** Our tunnel ports among `links`, by name. */
export function ourTunnels(links: Links): Set<string> {
  return new Set([...links.byName.values()].filter((l) => l.alias === TUNNEL_ALIAS).map((l) => l.name));
}

/**
 * Creates a tunnel port: the veth pair up (a port whose peer is down has
 * no carrier and the bridge would not forward to it), `name` a port of the
 * bridge, with the alias that marks it ours.
 */
export function tunnelAdd(links: Links, t: TunnelObj): WriteRequest[] {
  const what = `add tunnel port ${t.name} (peer ${t.peer}) to bridge ${t.bridge}`;
  const m = new MessageBuilder(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL).bytes(ifinfomsg(0));
  m.str(IFLA.IFNAME, t.name).u32(IFLA.MASTER, ifindex(links, t.bridge, what));
  m.begin(IFLA.LINKINFO).str(IFLA_INFO.KIND, "veth").begin(IFLA_INFO.DATA).begin(VETH_INFO_PEER);
  m.bytes(ifinfomsg(0)).str(IFLA.IFNAME, t.peer);
  m.end().end().end();
  // Neither end may send anything of its own (an IPv6 link-local would: MLD, router solicitations), or the
  // port's program would flood it to every node. The generation mode is set once the links exist.
  const alias = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(0)).str(IFLA.IFNAME, t.name).str(IFLA.IFALIAS, TUNNEL_ALIAS);
  alias.begin(IFLA.AF_SPEC).begin(AF.INET6).u8(IFLA_INET6_ADDR_GEN_MODE, ADDR_GEN_MODE_NONE).end().end();
  const peer = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(0)).str(IFLA.IFNAME, t.peer);
  peer.begin(IFLA.AF_SPEC).begin(AF.INET6).u8(IFLA_INET6_ADDR_GEN_MODE, ADDR_GEN_MODE_NONE).end().end();
  const up = (name: string) => new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(0, IFF_UP, IFF_UP)).str(IFLA.IFNAME, name);
  return [
    { message: m, what },
    { message: alias, what: `set alias and addrgenmode none on ${t.name}` },
    { message: peer, what: `set addrgenmode none on ${t.peer}` },
    { message: up(t.peer), what: `set link ${t.peer} up` },
    { message: up(t.name), what: `set link ${t.name} up` },
  ];
}

/** Turns a bridge port's ARP/ND suppression on or off. */
export function setNeighSuppress(links: Links | undefined, name: string, on: boolean): WriteRequest {
  const what = `set ${name} bridge port neigh_suppress ${on ? "on" : "off"}`;
  const m = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(links ? ifindex(links, name, what) : 0));
  if (!links) m.str(IFLA.IFNAME, name);
  m.begin(IFLA.LINKINFO).str(IFLA_INFO.SLAVE_KIND, "bridge").begin(IFLA_INFO.SLAVE_DATA).u8(IFLA_BRPORT.NEIGH_SUPPRESS, on ? 1 : 0).end().end();
  return { message: m, what };
}

/** Adds (or deletes) a static FDB entry on a bridge port (`bridge fdb add MAC dev PORT master static`). */
export function fdbAdd(links: Links, f: FdbObj, del = false): WriteRequest {
  const what = `${del ? "delete" : "add"} fdb ${f.mac} dev ${f.port} master static`;
  const m = new MessageBuilder(del ? RTM.DELNEIGH : RTM.NEWNEIGH, del ? 0 : NLM_F.CREATE | NLM_F.REPLACE)
    .bytes(ndmsg(AF.BRIDGE, ifindex(links, f.port, what), NUD.NOARP, NTF.MASTER));
  m.attrBytes(NDA.LLADDR, macBytes(f.mac));
  return { message: m, what, ignore: del ? ["ENOENT"] : undefined };
}

/** Static FDB entries (NUD_NOARP, not local) on the given ports. */
export async function readFdb(nl: NetlinkClient, links: Links, on: Set<string>): Promise<FdbObj[]> {
  const out: FdbObj[] = [];
  for (const n of await dumpNeighbours(nl, links, on, AF.BRIDGE)) {
    const ll = n.attrs.get(NDA.LLADDR);
    if ((n.state & (NUD.NOARP | NUD.PERMANENT)) !== NUD.NOARP || !ll || n.attrs.get(NDA.MASTER) === undefined) continue;
    out.push({ port: n.ifname, mac: macText(ll) });
  }
  return out;
}

/**
 * Adds a managed neighbour entry (`ip neigh add IP dev DEV managed protocol
 * 76`): the kernel resolves it and keeps it so. The protocol marks it ours.
 */
export function managedAdd(links: Links, n: ManagedNeighborObj, del = false): WriteRequest {
  const what = `${del ? "delete" : "add"} managed neighbour ${n.ip} dev ${n.ifname}`;
  const m = new MessageBuilder(del ? RTM.DELNEIGH : RTM.NEWNEIGH, del ? 0 : NLM_F.CREATE | NLM_F.REPLACE)
    .bytes(ndmsg(n.ip.includes(":") ? AF.INET6 : AF.INET, ifindex(links, n.ifname, what), 0));
  m.attrBytes(NDA.DST, ipBytes(n.ip));
  if (!del) m.u8(NDA.PROTOCOL, RTPROT_LACE).u32(NDA.FLAGS_EXT, NTF_EXT.MANAGED);
  return { message: m, what, ignore: del ? ["ENOENT"] : undefined };
}

/** Our managed neighbour entries (protocol 76), on any link. */
export async function readManaged(nl: NetlinkClient, links: Links): Promise<ManagedNeighborObj[]> {
  const out: ManagedNeighborObj[] = [];
  for (const n of await dumpNeighbours(nl, links, new Set(links.byName.keys()))) {
    const dst = n.attrs.get(NDA.DST);
    if (!dst || n.attrs.get(NDA.PROTOCOL)?.[0] !== RTPROT_LACE) continue;
    if (((readU32(n.attrs.get(NDA.FLAGS_EXT)) ?? 0) & NTF_EXT.MANAGED) !== 0) out.push({ ifname: n.ifname, ip: ipText(dst) });
  }
  return out;
}
