/**
 * What a `bridged` (l2) network adds to a node's plan, beside what it
 * shares with routed networks (its bridge, the gateway addresses, its
 * table, rules, paths and nftables: plan.ts `planRoutedNetwork`):
 *
 * - a distributed anycast gateway: the network's gateway addresses and one
 *   MAC (`bridgeMac(id)`) on its bridge on every node;
 * - ARP/ND suppression: the Neighbor table as permanent neighbour entries
 *   on the bridge (which the node's routing into the network uses too),
 *   static FDB entries for every known MAC, and `neigh_suppress` on the
 *   tunnel port: the bridge answers a pod's ARP request or neighbour
 *   solicitation for an address whose MAC sits behind the tunnel port
 *   itself, and floods no request to that port that it answered (the
 *   kernel's rule, made for EVPN: requests arriving on a suppressing port
 *   are not answered, so the pods' ports do not suppress);
 * - bpf backend: a tunnel port on the bridge (a veth pair `lt<id>`/`lu<id>`;
 *   the bridge's static FDB sends remote MACs there and floods reach it),
 *   whose egress program encapsulates (bpf/l2.h), and the maps: the
 *   network (tunnel port, gateway MAC, Reduced or SRH, flood members), the
 *   FDB (MAC → remote SID, or the local pod port), the Neighbor table, and
 *   the flood members (every other node with an endpoint of the network),
 *   and the pods' ports (whose ingress program reports unknown source MACs
 *   and addresses: learning);
 *   the underlay next hops of those members as managed neighbour entries
 *   (kept resolved by the kernel: frames sent whole take their MACs from
 *   the FIB, see bpf/l2.h);
 * - kernel backend: the same bridge, gateway, suppression and FDB, but no
 *   cross-node frames (seg6's `l2encap` sees no ARP): reported in `skipped`.
 *
 * @example
 * planL2(plan, net, state, "eth0", hopOf); // plan.tunnels.get("lt7"), plan.bpf.l2.nets.get(7)
 */
import type { NetworkForwarding, NodeDesiredState } from "../../core/plugin/mod.ts";
import type { NeighborObj } from "./objects.ts";
import { bridgeFor, bridgeMac, networkMark, podMac } from "./naming.ts";
import { canonicalIp } from "./wire.ts";

/** A network's tunnel port: a veth pair whose `name` end is a port of `bridge`. */
export interface TunnelObj {
  name: string;
  peer: string;
  bridge: string;
}

/** A static FDB entry (`bridge fdb add MAC dev PORT master static`). */
export interface FdbObj {
  port: string;
  mac: string;
}

/** A managed neighbour entry: the kernel keeps `ip` on `ifname` resolved. */
export interface ManagedNeighborObj {
  ifname: string;
  ip: string;
}

/** The bpf maps of l2 networks (bpf/maps.h `lace_l2_*`), by name where user space resolves ifindexes. */
export interface BpfL2Plan {
  /** Network id → its tunnel port, gateway MAC, encapsulation and flood members (l2 SIDs). */
  nets: Map<number, { port: string; gatewayMac: string; srh: boolean; members: string[] }>;
  /** `net|mac` → a remote MAC's SID, or the local pod port it sits behind. */
  fdb: Map<string, { net: number; mac: string; sid?: string; port?: string }>;
  /** `net|ip` → MAC; `learned`: the datapath reports it while it talks (its Neighbor's lastSeen). */
  neighbors: Map<string, { net: number; ip: string; mac: string; learned?: boolean }>;
  /** Local pod ports of l2 networks → network id: their ingress program reports what it does not know (learning). */
  podPorts: Map<string, number>;
}

/** The sid-map family of an l2 SID (bpf/l2.h SID_FAMILY_L2). */
export const SID_FAMILY_L2 = 2;

/**
 * The names of a network's tunnel port pair: short enough for the
 * 15-character limit with any 24-bit id.
 *
 * @example
 * tunnelNames(7); // { name: "lt7", peer: "lu7" }
 */
export function tunnelNames(id: number): { name: string; peer: string } {
  return { name: `lt${id}`, peer: `lu${id}` };
}

/**
 * Adds what a bridged network needs beyond its routed part. `hopOf` gives
 * the underlay next hop towards a SID (bpf only). Call after
 * planRoutedNetwork for the same network.
 */
/** What planL2 writes of the node's plan (plan.ts Plan has these fields). */
export interface L2PlanTarget {
  backend: "kernel" | "bpf";
  underlay: string;
  skipped: { network: string; reason: string }[];
  neighbors: Map<string, NeighborObj>;
  fdb: Map<string, FdbObj>;
  tunnels: Map<string, TunnelObj>;
  suppress: Set<string>;
  managed: Map<string, ManagedNeighborObj>;
  /** Source-address validation: (pod port, address) pairs allowed to send. */
  allowed: { ifname: string; address: string; family: 4 | 6 }[];
  bpf?: { sids: Map<string, { mark: number; family: 4 | 6 | 2 }>; l2?: BpfL2Plan };
}

export function planL2(plan: L2PlanTarget, net: NetworkForwarding, state: NodeDesiredState, hopOf?: (sid: string, node?: string) => string): void {
  const br = bridgeFor(net.id);
  for (const n of net.neighbors) {
    const ip = canonicalIp(n.ip);
    plan.neighbors.set(`${br}|${ip}`, { ifname: br, ip, mac: n.mac.toLowerCase() });
  }
  const local = new Map<string, string>();
  // The FDB (the FDBEntry resources) says where a MAC lives; a local endpoint whose MAC it places on another
  // node (a live migration between its two writes) gets no static entry here, which would fight the tunnel's.
  const elsewhere = new Set(net.fdb.filter((e) => e.node !== state.node && e.sid).map((e) => e.mac.toLowerCase()));
  for (const ep of state.endpoints) {
    if (ep.network !== net.name) continue;
    const mac = (ep.mac ?? podMac(ep.addresses)).toLowerCase();
    local.set(mac, ep.interface);
    if (!elsewhere.has(mac)) plan.fdb.set(`${ep.interface}|${mac}`, { port: ep.interface, mac });
  }
  allowLearned(plan, net, state, local);
  if (plan.backend !== "bpf" || !plan.bpf) {
    plan.skipped.push({
      network: net.name,
      reason: `bridged network "${net.name}": frames between nodes need the bpf backend (the kernel's seg6 l2encap carries no ARP); bridge, gateway and suppression are programmed`,
    });
    return;
  }
  const { name: port, peer } = tunnelNames(net.id);
  plan.tunnels.set(port, { name: port, peer, bridge: br });
  plan.suppress.add(port);
  const l2 = plan.bpf.l2 ??= { nets: new Map(), fdb: new Map(), neighbors: new Map(), podPorts: new Map() };
  const members = new Set<string>();
  for (const e of net.fdb) {
    const mac = e.mac.toLowerCase();
    if (e.node === state.node || !e.sid) {
      const podPort = local.get(mac);
      l2.fdb.set(`${net.id}|${mac}`, { net: net.id, mac, ...(podPort ? { port: podPort } : {}) });
      continue;
    }
    const sid = canonicalIp(e.sid);
    members.add(sid);
    l2.fdb.set(`${net.id}|${mac}`, { net: net.id, mac, sid });
    plan.fdb.set(`${port}|${mac}`, { port, mac });
    if (hopOf) {
      const hop = hopOf(sid, e.node);
      plan.managed.set(`${plan.underlay}|${hop}`, { ifname: plan.underlay, ip: hop });
    }
  }
  for (const mac of local.keys()) if (!l2.fdb.has(`${net.id}|${mac}`)) l2.fdb.set(`${net.id}|${mac}`, { net: net.id, mac, port: local.get(mac) });
  for (const podPort of local.values()) l2.podPorts.set(podPort, net.id);
  for (const n of net.neighbors) {
    const ip = canonicalIp(n.ip);
    l2.neighbors.set(`${net.id}|${ip}`, { net: net.id, ip, mac: n.mac.toLowerCase(), ...(n.source === "learned" ? { learned: true } : {}) });
  }
  l2.nets.set(net.id, { port, gatewayMac: bridgeMac(net.id), srh: state.encapsulation === "SRH", members: [...members].sort() });
  if (net.sid) plan.bpf.sids.set(canonicalIp(net.sid), { mark: networkMark(net.id), family: SID_FAMILY_L2 });
}

/**
 * A learned address whose MAC lives on this node may be sent from: from
 * the port of the pod that owns the MAC (a VM's second address), or, for a
 * learned MAC (a guest behind a bridge in a VM), from any pod port of the
 * network here (the FDB names the node, not the port). Learning trusts
 * what the network's pods announce; the ports of other networks never
 * get these addresses.
 */
function allowLearned(plan: L2PlanTarget, net: NetworkForwarding, state: NodeDesiredState, local: Map<string, string>): void {
  const here = new Set(net.fdb.filter((e) => e.node === state.node).map((e) => e.mac.toLowerCase()));
  for (const n of net.neighbors) {
    const mac = n.mac.toLowerCase();
    if (n.source !== "learned" || !here.has(mac)) continue;
    const ip = canonicalIp(n.ip);
    const fam = ip.includes(":") ? 6 : 4;
    const port = local.get(mac);
    for (const ifname of port ? [port] : [...new Set(local.values())]) plan.allowed.push({ ifname, address: ip, family: fam });
  }
}
