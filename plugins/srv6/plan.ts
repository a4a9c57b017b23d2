/**
 * What the kernel of one node must hold for a NodeDesiredState: the
 * bridges, addresses, nexthops, routes, rules, sysctls and nftables ruleset,
 * as canonical objects (objects.ts). Pure: no kernel access, so it is
 * tested on its own and printed by `lace plan`.
 *
 * Design without VRF (this kernel has none; End.DT4/DT46 give EINVAL):
 * - each `routed` network has a table; `ip rule iif <bridge>` selects it for
 *   the network's local side and `unreachable default` stops a miss from
 *   falling into the main table (and so into another network);
 * - the network's SID decapsulates IPv4 with End.DX4 nh4 0.0.0.0, and
 *   nftables marks packets by outer SID so `ip rule fwmark` picks the table
 *   for the inner lookup; IPv6 uses End.DT6 table T on a sibling SID (see
 *   {@link ipv6Sid}) because one SID has one behaviour;
 * - remote blocks route through nexthop objects with seg6 encap (IPv4 seg6
 *   routes with one SID each insert quadratically; nexthops do not).
 * - paths to external networks route out of the underlay (SNAT by default);
 *   answers to a pod (from its gateway, or replies from outside) find the
 *   network's table again by a return mark (see {@link returnMark});
 * - the node itself reaches its local blocks by `iif lo` rules, never by
 *   the main table (see {@link RULE_PRIORITY_NODE}).
 *
 * @example
 * const plan = planNode(state, "eth0");
 * plan.routes.get("4|1001|10.40.5.0/24"); // { nexthop: "4|eth0|3|fd00:1ace:0:2::1", … }
 */
import { IPAddress, Prefix, type NetworkForwarding, type NodeDesiredState } from "../../core/plugin/mod.ts";
import type { AddrObj, KernelObjects, NeighborObj, NexthopObj, ProxyObj, RouteObj, RuleObj } from "./objects.ts";
import { addrKey, nexthopSig, routeKey, ruleKey } from "./objects.ts";
import { canonicalIp, canonicalPrefix, SEG6_ACTION, SEG6_MODE } from "./wire.ts";
import { bridgeFor, bridgeMac, localBridge, networkMark, podMac, tableFor } from "./naming.ts";
export { bridgeMac, MARK_BASE, networkMark, podMac } from "./naming.ts";
import { planL2, type BpfL2Plan, type FdbObj, type ManagedNeighborObj, type TunnelObj } from "./plan_l2.ts";

/**
 * Rule preferences: before the main table (32766), after local (0). The
 * locator rules come first: seg6 encapsulation of a forwarded packet looks
 * the outer destination up as input from the pod's bridge, which the iif
 * rule would otherwise send into the network's table.
 */
export const RULE_PRIORITY_LOCATOR = 999;
export const RULE_PRIORITY_IIF = 1000;
export const RULE_PRIORITY_MARK = 1001;
/** New connections from an external network into a network that allows them (`iif <underlay> from … to …`). */
export const RULE_PRIORITY_INGRESS = 1002;
/**
 * The node's own traffic to its local pods (kubelet probes): `iif lo to
 * <local block> lookup T`. `iif lo` matches only what the node itself
 * sends, never a forwarded packet, so neither pods of other networks nor
 * the underlay gain a path into the network. After the mark rules, so the
 * node's answers to a pod (which carry its network's reflected return
 * mark) keep their own network where blocks overlap.
 */
export const RULE_PRIORITY_NODE = 1003;
/**
 * Packet marks for traffic returning into a network from outside it:
 * RETURN_MARK_BASE | network id. Kept apart from the SID marks, whose
 * IPv4 rule must not catch the outer IPv6 packet of a SID.
 */
export const RETURN_MARK_BASE = 0x4d000000;
/** The link-local IPv6 gateway every pod uses (on every bridge). */
export const LINK_LOCAL_GATEWAY = "fe80::1";
/** Bit set in a SID to form its IPv6 (End.DT6) sibling: the top bit of the low 64 bits. */
const IPV6_SID_BIT = 1n << 63n;

/**
 * The IPv6 sibling of a network SID. Without VRF there is no End.DT46, and
 * a SID has exactly one behaviour, so IPv4 uses the SID as given (End.DX4)
 * and IPv6 uses this one (End.DT6). Locators are at most /64, so the bit is
 * inside the SID's function part on every node.
 *
 * @example
 * ipv6Sid("fd00:1ace:0:2::1"); // "fd00:1ace:0:2:8000::1"
 */
export function ipv6Sid(sid: string): string {
  const a = IPAddress.parse(sid);
  return canonicalIp(new IPAddress(6, a.value | IPV6_SID_BIT).toString());
}


/**
 * The mark that routes traffic back into a network through its table
 * (`ip rule fwmark M lookup T`, both families): the node's replies to a
 * pod that pinged its gateway and its ICMP errors for a pod's packets (every
 * packet from the bridge carries the mark, and `fwmark_reflect` copies
 * it), and replies from an external network to a pod's
 * egress connection (restored from the connection's ct mark). Works with
 * overlapping subnets, where the destination address alone is ambiguous.
 *
 * @example
 * returnMark(1); // 0x4d000001
 */
export function returnMark(id: number): number {
  return (RETURN_MARK_BASE | (id & 0xffffff)) >>> 0;
}

/**
 * What the plan needs to know of the underlay beyond the desired state: the
 * main table's default gateways per family (next hop of egress routes, and
 * of SRv6 traffic to a peer that is not on-link), and for the bpf backend
 * the underlay's own IPv6 prefixes (which peers are on-link) and address.
 */
export interface UnderlayGateways {
  4?: string;
  6?: string;
  /** IPv6 prefixes configured on the underlay device (`fd00:ffff::/64`). */
  onLink6?: string[];
  /** A global IPv6 address of the underlay device (the outer source when the state names none). */
  address6?: string;
}

/** How the srv6 dataplane carries SRv6: the kernel's seg6 lwtunnel, or tc-eBPF programs on the underlay. */
export type Backend = "kernel" | "bpf";

/** One entry of the bpf encapsulation map: a network's traffic to `prefix` is encapsulated to `sid`. */
export interface BpfEncap {
  net: number;
  prefix: string;
  sid: string;
  srh: boolean;
}

/** What the bpf backend writes into its maps (the routes and rules it needs are in the plan's other fields). */
export interface BpfPlan {
  /** By `net|prefix`. */
  encap: Map<string, BpfEncap>;
  /** Local SID → the mark of its network and the inner family it decapsulates (2: an l2 SID, plan_l2.ts). */
  sids: Map<string, { mark: number; family: 4 | 6 | 2 }>;
  /** l2 networks' maps (plan_l2.ts); absent: none. */
  l2?: BpfL2Plan;
  /** The outer IPv6 source address; absent when the node has none (the apply refuses). */
  source?: string;
}

/** The kernel objects a node should hold (as `KernelObjects`, less the ruleset text), and what the ruleset is rendered from. */
export interface Plan extends Omit<KernelObjects, "nft"> {
  underlay: string;
  /** Networks this dataplane does not program (not `routed`), with the reason. */
  skipped: { network: string; reason: string }[];
  /** SID → mark, for the nftables map. */
  sidMarks: Map<string, number>;
  /** Source-address validation: (host interface, address) pairs allowed to send. */
  allowed: { ifname: string; address: string; family: 4 | 6 }[];
  /**
   * Host-side pod interfaces present on the node (filled from the kernel by
   * the dataplane; informational). Not part of the ruleset, which must not
   * depend on what the kernel holds: pod ports are matched by interface group.
   */
  podPorts: string[];
  /** Prefixes of every locator (own and peers): only the underlay may send to them. */
  locators: string[];
  /** Per bridge, the addresses its pods may reach on the node itself (their gateways). */
  localAllowed: Map<string, string[]>;
  /** reply-only paths: (local bridge, destination) pairs where new connections are dropped. */
  replyOnly: { bridge: string; destination: string; family: 4 | 6 }[];
  /** Per bridge, the mark that routes traffic back into its network (see {@link returnMark}). */
  returnMarks: Map<string, number>;
  /** Allowed egress to external prefixes through the underlay, and whether the source is NATed to the node. */
  egress: { bridge: string; destination: string; family: 4 | 6; snat: boolean }[];
  /** The node's underlay address (SNAT source of its family; the other family masquerades). */
  snatAddress?: string;
  backend: Backend;
  /** The bpf backend's map contents; absent for the kernel backend. */
  bpf?: BpfPlan;
  /**
   * Each local pod's addresses, permanent on its host interface (with the
   * `/32`, `/128` routes in `routes`), by `ifname|ip`. Routed traffic into a
   * pod leaves through its own veth, not the bridge:
   * - bpf: a bridge has no offloads for packets that were encapsulated, so
   *   the kernel would segment every decapsulated TSO packet in software on
   *   the way through it;
   * - a checked bridge (see {@link sameNodeChecked}) answers ARP for a pod
   *   only where the route to it leaves by another device (proxy_arp), and
   *   a packet routed back out of the bridge it came from would draw an
   *   ICMP redirect.
   */
  neighbors: Map<string, NeighborObj>;
  /** Bridges whose pods reach each other through the node (their ports isolated). */
  checked: Set<string>;
  /** IPv6 proxy neighbour entries on checked bridges, by `bridge|ip`. */
  proxies: Map<string, ProxyObj>;
  /** l2: each bridged network's tunnel port, by port name (plan_l2.ts). */
  tunnels: Map<string, TunnelObj>;
  /** l2: static FDB entries, by `port|mac`. */
  fdb: Map<string, FdbObj>;
  /**
   * l2: bridge ports with `neigh_suppress` (the tunnel ports): the bridge answers ARP/NS from its other
   * ports for neighbours whose MAC sits behind one, and floods no request it answered (or could) to one.
   */
  suppress: Set<string>;
  /** Underlay next hops the kernel keeps resolved (managed neighbour entries), by `ifname|ip`. */
  managed: Map<string, ManagedNeighborObj>;
}


function family(prefixOrAddr: string): 4 | 6 {
  return prefixOrAddr.includes(":") ? 6 : 4;
}

/**
 * Builds the plan for one node. `underlay` is the resolved underlay device
 * (the desired state may leave it empty: the device of the default route).
 */
export function planNode(state: NodeDesiredState, underlay: string, gateways: UnderlayGateways = {}, backend: Backend = "kernel"): Plan {
  const plan: Plan = {
    underlay, backend,
    bridges: new Map(), addrs: new Map(), nexthops: new Map(), routes: new Map(), rules: new Map(),
    sysctls: new Map(), skipped: [], sidMarks: new Map(), allowed: [], podPorts: [], locators: [], replyOnly: [], localAllowed: new Map(),
    returnMarks: new Map(), egress: [], neighbors: new Map(), checked: new Set(), proxies: new Map(),
    tunnels: new Map(), fdb: new Map(), suppress: new Set(), managed: new Map(),
  };
  if (state.underlay.address) plan.snatAddress = canonicalIp(state.underlay.address);
  const mode = state.encapsulation === "SRH" ? SEG6_MODE.ENCAP : SEG6_MODE.ENCAP_RED;
  const bpf = backend === "bpf" ? bpfPlan(state, gateways) : undefined;
  plan.bpf = bpf;

  const addRoute = (r: RouteObj) => {
    const k = routeKey(r);
    if (!plan.routes.has(k)) plan.routes.set(k, r);
  };
  const peerHop = bpf ? peerNextHops(state, gateways) : undefined;
  const nexthopTo = (sid: string, fam: 4 | 6, node?: string): string => {
    // bpf: one plain nexthop per peer (routes leave towards it; the underlay's program encapsulates).
    const n: NexthopObj = peerHop
      ? { family: 6, oif: underlay, mode: -1, segments: [], gateway: peerHop(sid, node) }
      : { family: fam, oif: underlay, mode, segments: [fam === 4 ? canonicalIp(sid) : ipv6Sid(sid)] };
    const sig = nexthopSig(n);
    plan.nexthops.set(sig, n);
    return sig;
  };
  /** `prefix` is canonical already (canonicalPrefix): it is the route's destination too. */
  const encapTo = (net: NetworkForwarding, p: string, sid: string): void => {
    if (!bpf) return;
    bpf.encap.set(`${net.id}|${p}`, { net: net.id, prefix: p, sid: family(p) === 4 ? canonicalIp(sid) : ipv6Sid(sid), srh: state.encapsulation === "SRH" });
  };

  const kernelOnly: [string, string][] = backend === "kernel"
    ? [
      ["net/ipv6/conf/all/seg6_enabled", "1"],
      [`net/ipv6/conf/${underlay}/seg6_enabled`, "1"],
      // Decapsulated packets must pass conntrack, or reply-only paths cannot tell replies from new connections.
      // (bpf decapsulates before the stack: its packets pass conntrack as any other.)
      ["net/netfilter/nf_hooks_lwtunnel", "1"],
    ]
    : [];
  for (const [k, v] of [
    ["net/ipv4/ip_forward", "1"],
    ["net/ipv6/conf/all/forwarding", "1"],
    ["net/ipv4/conf/all/rp_filter", "0"],
    ["net/ipv4/conf/default/rp_filter", "0"],
    [`net/ipv4/conf/${underlay}/rp_filter`, "0"],
    ...kernelOnly,
    // The node's answers to a pod (echo replies, TCP) carry the request's return mark, so they route through the pod's table.
    ["net/ipv4/fwmark_reflect", "1"],
    ["net/ipv6/fwmark_reflect", "1"],
    ["net/ipv4/tcp_fwmark_accept", "1"],
  ] as const) plan.sysctls.set(k, v);

  plan.locators.push(state.locator);
  for (const p of state.peers ?? []) {
    plan.locators.push(p.locator);
    // seg6 encapsulates as a network's packet is routed in: the outer lookup needs the main table.
    // (bpf encapsulates on the underlay, after routing: the network's own table has already decided.)
    if (!bpf) {
      const toLocator: RuleObj = { family: 6, priority: RULE_PRIORITY_LOCATOR, table: 254, dst: canonicalPrefix(p.locator) };
      plan.rules.set(ruleKey(toLocator), toLocator);
    }
    if (p.address) addRoute({ family: 6, table: 254, dst: canonicalPrefix(p.locator), type: "unicast", oif: underlay, gateway: p.address });
  }

  const bridgeOf = new Map<string, string>();
  for (const net of state.networks) {
    const br = localBridge(net);
    if (br) bridgeOf.set(net.name, br);
  }

  for (const net of state.networks) {
    // An external network has nothing on the node itself: its prefixes are paths of the networks that reach it.
    if (net.forwarding === "underlay") continue;
    // A bridged network is routed like any other to and from other networks (its subnet on its bridge,
    // its gateway anycast on every node); plan_l2.ts adds its frames.
    planRoutedNetwork(plan, net, underlay, gateways, addRoute, nexthopTo, encapTo, bridgeOf);
    if (net.forwarding === "bridged") planL2(plan, net, state, peerHop);
  }

  planNodeAccess(plan, state);

  const netByName = new Map(state.networks.map((n) => [n.name, n]));
  for (const ep of state.endpoints) {
    const net = netByName.get(ep.network);
    const br = net && localBridge(net);
    if (!net || !br) continue;
    const objs = podObjects(podNetwork(net, br, plan.checked.has(br)), ep);
    plan.allowed.push(...objs.allowed);
    for (const r of objs.routes) addRoute(r);
    for (const n of objs.neighbors) plan.neighbors.set(`${n.ifname}|${n.ip}`, n);
    for (const p of objs.proxies) plan.proxies.set(`${p.ifname}|${p.ip}`, p);
  }
  return plan;
}

/** What the node knows of a pod's network when it plugs the pod in (from the plan it applied). */
export interface PodNetwork {
  id: number;
  forwarding: NetworkForwarding["forwarding"];
  /** The network's bridge on the node. */
  bridge: string;
  /** Whether the bridge is checked (sameNodeChecked): its pods' IPv6 addresses get proxy entries. */
  checked: boolean;
  /** The network's gateway addresses on the node, one per family: the node's own packets to its pods come from them. */
  gateways: string[];
}

/** The pod-facing side of a network on the node, for `podObjects`. */
export function podNetwork(net: NetworkForwarding, bridge: string, checked: boolean): PodNetwork {
  return { id: net.id, forwarding: net.forwarding, bridge, checked, gateways: net.gateways.map((g) => canonicalIp(g.split("/")[0])) };
}

/** The pod-facing side of each network of `state` that has one on the node, by network name. */
export function podNetworks(state: NodeDesiredState): Map<string, PodNetwork> {
  return new Map(state.networks.flatMap((n) => {
    const br = localBridge(n);
    return br ? [[n.name, podNetwork(n, br, isChecked(n))] as const] : [];
  }));
}

/** Whether the network's bridge is checked on the node (see sameNodeChecked; a bridged network never is). */
function isChecked(net: NetworkForwarding): boolean {
  return net.forwarding !== "bridged" && sameNodeChecked(net);
}

/**
 * A pod's own kernel objects: its source pairs, and on a routed network its
 * /32 and /128 routes through its port, its permanent neighbour entries and,
 * on a checked bridge, its IPv6 proxy entries. The plan lists them for every
 * endpoint of the state; attach writes them for one pod at once, so the
 * apply that follows its ADD finds nothing to write.
 *
 * @example
 * podObjects({ id: 3, forwarding: "routed", bridge: "lb3", checked: false, gateways: ["10.1.1.1"] }, { interface: "h-ra", addresses: ["10.1.1.10/32"] }).routes;
 * // [{ family: 4, table: tableFor(3), dst: "10.1.1.10/32", type: "unicast", oif: "h-ra", scope: "link", prefsrc: "10.1.1.1" }]
 */
export function podObjects(
  net: PodNetwork, ep: { interface: string; addresses: string[]; mac?: string },
): { allowed: Plan["allowed"]; routes: RouteObj[]; neighbors: NeighborObj[]; proxies: ProxyObj[] } {
  const out = { allowed: [] as Plan["allowed"], routes: [] as RouteObj[], neighbors: [] as NeighborObj[], proxies: [] as ProxyObj[] };
  const mac = ep.mac ?? podMac(ep.addresses);
  for (const a of ep.addresses) {
    const ip = canonicalIp(a.split("/")[0]);
    const fam = family(ip);
    out.allowed.push({ ifname: ep.interface, address: ip, family: fam });
    if (net.forwarding !== "routed") continue;
    // The node's own packets to the pod (kubelet probes) leave from the network's gateway, which the pod
    // answers on its bridge: the port itself has no address, and another one of the node's (the
    // underlay's) is not one a pod may reach.
    const prefsrc = net.gateways.find((g) => family(g) === fam);
    out.routes.push({
      family: fam, table: tableFor(net.id), dst: `${ip}/${fam === 4 ? 32 : 128}`, type: "unicast", oif: ep.interface, scope: linkScope(fam),
      ...(prefsrc ? { prefsrc } : {}),
    });
    out.neighbors.push({ ifname: ep.interface, ip, mac });
    // A checked bridge answers its pods' neighbour solicitations for each other itself (IPv4: proxy_arp
    // by route, IPv6: one proxy entry per address), so pod-to-pod traffic comes to the node.
    if (fam === 6 && net.checked) out.proxies.push({ ifname: net.bridge, ip });
  }
  return out;
}

/**
 * Whether traffic between two pods of `net` on one node must pass the
 * node's routing and filters instead of the bridge: when some of the
 * network's own local addresses are closed to its own endpoints (an
 * anonymous network, or a Deny routing policy for a prefix inside its
 * subnets that overlaps a block of this node). Other networks keep
 * delivering same-node traffic over L2, and pay nothing.
 *
 * @example
 * sameNodeChecked({ ...net, localPrefixes: ["10.43.1.0/24"], denied: [{ destination: "10.43.0.0/16", policy: null }] }); // true
 */
export function sameNodeChecked(net: NetworkForwarding): boolean {
  if (!net.denied?.length || !net.localPrefixes.length) return false;
  const local = net.localPrefixes.map((p) => Prefix.parse(canonicalPrefix(p)));
  return net.denied.some((d) => {
    const p = Prefix.parse(canonicalPrefix(d.destination));
    return local.some((l) => l.overlaps(p));
  });
}


function planRoutedNetwork(
  plan: Plan,
  net: NetworkForwarding,
  underlay: string,
  gateways: UnderlayGateways,
  addRoute: (r: RouteObj) => void,
  nexthopTo: (sid: string, fam: 4 | 6, node?: string) => string,
  encapTo: (net: NetworkForwarding, prefix: string, sid: string) => void,
  bridgeOf: Map<string, string>,
): void {
  const br = bridgeFor(net.id);
  const T = tableFor(net.id);
  plan.bridges.set(br, { name: br, up: true, mac: bridgeMac(net.id) });
  plan.sysctls.set(`net/ipv4/conf/${br}/rp_filter`, "0");
  // Same-node delivery: over L2 where the network's pods may all reach each other, else through the node
  // (isolated ports; the bridge answers ARP and NDP for its pods, at once: no proxy delay).
  // (A bridged network's pods share one L2 domain: never through the node.)
  const checked = isChecked(net);
  if (checked) plan.checked.add(br);
  plan.sysctls.set(`net/ipv4/conf/${br}/proxy_arp`, checked ? "1" : "0");
  plan.sysctls.set(`net/ipv4/neigh/${br}/proxy_delay`, "0");
  plan.sysctls.set(`net/ipv6/conf/${br}/proxy_ndp`, checked ? "1" : "0");
  plan.sysctls.set(`net/ipv6/neigh/${br}/proxy_delay`, "0");
  for (const g of net.gateways) {
    const a: AddrObj = { ifname: br, cidr: canonicalCidr(g), family: family(g) };
    plan.addrs.set(addrKey(a), a);
  }
  // The link-local gateway keeps its fe80::/64 route on the bridge: the node's answers to a pod's
  // link-local address (a ping to fe80::1) need it. Block prefixes never get one in the main table.
  const ll: AddrObj = { ifname: br, cidr: `${LINK_LOCAL_GATEWAY}/64`, family: 6, prefixRoute: true };
  plan.addrs.set(addrKey(ll), ll);
  plan.localAllowed.set(br, net.gateways.map((g) => canonicalCidr(g).split("/")[0]));
  addRoute({ family: 4, table: T, dst: "0.0.0.0/0", type: "unreachable" });
  addRoute({ family: 6, table: T, dst: "::/0", type: "unreachable" });
  for (const p of net.localPrefixes) {
    addRoute({ family: family(p), table: T, dst: canonicalPrefix(p), type: "unicast", oif: br, scope: linkScope(family(p)) });
  }
  for (const b of net.remoteBlocks) {
    const fam = family(b.prefix);
    const dst = canonicalPrefix(b.prefix);
    addRoute({ family: fam, table: T, dst, type: "unicast", nexthop: nexthopTo(b.sid, fam, b.node) });
    encapTo(net, dst, b.sid);
  }
  const snatOf = new Map(net.egress.map((e) => [canonicalPrefix(e.prefix), e.snat]));
  const egressTo = new Set<string>();
  const viaUnderlay = (fam: 4 | 6, dst: string) => {
    const gw = gateways[fam];
    addRoute(gw
      ? { family: fam, table: T, dst, type: "unicast", oif: underlay, gateway: gw }
      : { family: fam, table: T, dst, type: "unicast", oif: underlay, scope: linkScope(fam) });
  };
  for (const p of net.paths) {
    const fam = family(p.destination);
    const dst = canonicalPrefix(p.destination);
    if (p.via === "local") {
      const dev = p.toNetworkId !== undefined ? bridgeFor(p.toNetworkId) : bridgeOf.get(p.toNetwork);
      if (dev) addRoute({ family: fam, table: T, dst, type: "unicast", oif: dev, scope: linkScope(fam) });
    } else if (p.via === "sid" && p.sid) {
      addRoute({ family: fam, table: T, dst, type: "unicast", nexthop: nexthopTo(p.sid, fam) });
      encapTo(net, dst, p.sid);
    } else if (p.via === "underlay") {
      viaUnderlay(fam, dst);
      if (p.mode === "allow") egressTo.add(dst);
      if (p.mode === "reply-only" || p.inbound) {
        // The external network may open connections into this one: steer them from the underlay into the table.
        for (const local of net.localPrefixes) {
          if (family(local) !== fam) continue;
          const r: RuleObj = { family: fam, priority: RULE_PRIORITY_INGRESS, table: T, iifname: underlay, src: dst, dst: canonicalPrefix(local) };
          plan.rules.set(ruleKey(r), r);
        }
      }
    }
    if (p.mode === "reply-only") plan.replyOnly.push({ bridge: br, destination: dst, family: fam });
  }
  // Denied prefixes inside the network's own subnets: the block routes stay (other networks allowed
  // to reach them use this table too), but the network's own endpoints may not open connections
  // there. Same as a reply-only path. Where one overlaps a local block, the bridge is checked (see
  // sameNodeChecked): its pods reach each other through the node, so this rule sees them too.
  for (const d of net.denied ?? []) {
    plan.replyOnly.push({ bridge: br, destination: canonicalPrefix(d.destination), family: family(d.destination) });
  }
  // Egress listed without its path still leaves through the underlay (the path is what the egress entry stands for).
  for (const e of net.egress) {
    const dst = canonicalPrefix(e.prefix);
    if (!egressTo.has(dst)) viaUnderlay(family(dst), dst);
    egressTo.add(dst);
  }
  // SNAT to the node is the default (DESIGN "External networks"); an egress entry may turn it off.
  for (const dst of egressTo) plan.egress.push({ bridge: br, destination: dst, family: family(dst), snat: snatOf.get(dst) ?? true });
  for (const fam of [4, 6] as const) {
    const r: RuleObj = { family: fam, priority: RULE_PRIORITY_IIF, table: T, iifname: br };
    plan.rules.set(ruleKey(r), r);
  }
  const mark: RuleObj = { family: 4, priority: RULE_PRIORITY_MARK, table: T, fwmark: networkMark(net.id) };
  plan.rules.set(ruleKey(mark), mark);
  plan.returnMarks.set(br, returnMark(net.id));
  for (const fam of [4, 6] as const) {
    const r: RuleObj = { family: fam, priority: RULE_PRIORITY_MARK, table: T, fwmark: returnMark(net.id) };
    plan.rules.set(ruleKey(r), r);
  }
  if (net.forwarding === "bridged") {
    // Its SID delivers frames into the bridge (plan_l2.ts); what other networks route to it is decapsulated
    // with its mark and looked up in its table, both families.
    const mark6: RuleObj = { family: 6, priority: RULE_PRIORITY_MARK, table: T, fwmark: networkMark(net.id) };
    plan.rules.set(ruleKey(mark6), mark6);
  } else if (net.sid && plan.bpf) {
    // The underlay's program decapsulates (End.DX4 / End.DT6) and marks; the mark picks the table, both families.
    const mark6: RuleObj = { family: 6, priority: RULE_PRIORITY_MARK, table: T, fwmark: networkMark(net.id) };
    plan.rules.set(ruleKey(mark6), mark6);
    plan.bpf.sids.set(canonicalIp(net.sid), { mark: networkMark(net.id), family: 4 });
    plan.bpf.sids.set(ipv6Sid(net.sid), { mark: networkMark(net.id), family: 6 });
  } else if (net.sid) {
    const sid4 = canonicalIp(net.sid);
    const sid6 = ipv6Sid(net.sid);
    addRoute({ family: 6, table: 254, dst: `${sid4}/128`, type: "unicast", oif: br, encap: { kind: "seg6local", action: SEG6_ACTION.END_DX4, nh4: "0.0.0.0" } });
    addRoute({ family: 6, table: 254, dst: `${sid6}/128`, type: "unicast", oif: br, encap: { kind: "seg6local", action: SEG6_ACTION.END_DT6, table: T } });
    plan.sidMarks.set(sid4, networkMark(net.id));
  }
}

/**
 * Rules that let the node itself reach its local pods (RULE_PRIORITY_NODE).
 * The main table never gets the blocks: it also serves packets from the
 * underlay, which would make the node a transit into the network. Where
 * local blocks of two networks overlap on this node, an address names two
 * pods and the node can reach only one: the block of the network with the
 * lowest id wins (deterministic across restarts and nodes), a block that
 * overlaps one of a lower id gets no rule.
 */
function planNodeAccess(plan: Plan, state: NodeDesiredState): void {
  const blocks: { prefix: Prefix; text: string; id: number; table: number }[] = [];
  for (const net of state.networks) {
    if (net.forwarding === "underlay") continue;
    for (const p of net.localPrefixes) {
      const text = canonicalPrefix(p);
      blocks.push({ prefix: Prefix.parse(text), text, id: net.id, table: tableFor(net.id) });
    }
  }
  for (const b of blocks) {
    if (blocks.some((o) => o.id < b.id && o.prefix.overlaps(b.prefix))) continue;
    const r: RuleObj = { family: family(b.text), priority: RULE_PRIORITY_NODE, table: b.table, iifname: "lo", dst: b.text };
    plan.rules.set(ruleKey(r), r);
  }
}

function bpfPlan(state: NodeDesiredState, gateways: UnderlayGateways): BpfPlan {
  const own = state.underlay.address && state.underlay.address.includes(":") ? canonicalIp(state.underlay.address) : gateways.address6;
  return { encap: new Map(), sids: new Map(), l2: { nets: new Map(), fdb: new Map(), neighbors: new Map(), podPorts: new Map() }, ...(own ? { source: own } : {}) };
}

/**
 * Where the bpf backend sends a network's packet for a SID before its
 * program encapsulates it: the peer owning the SID when it is on-link on
 * the underlay (its IPv6 address inside one of the underlay's prefixes),
 * else the underlay's IPv6 default gateway, which routes the outer packet
 * by its destination, as the kernel backend's main-table lookup would.
 */
function peerNextHops(state: NodeDesiredState, gateways: UnderlayGateways): (sid: string, node?: string) => string {
  const onLink = (gateways.onLink6 ?? []).map((cidr) => {
    const [ip, len] = cidr.split("/");
    return Prefix.containing(IPAddress.parse(ip), Number(len));
  });
  const peers = (state.peers ?? []).map((p) => ({ ...p, prefix: Prefix.parse(canonicalPrefix(p.locator)) }));
  const byNode = new Map(peers.map((p) => [p.node, p]));
  // By peer (a remote block names its owner: no address parsing per block), else by SID.
  const cache = new Map<string, string>();
  return (sid: string, node?: string) => {
    const key = node !== undefined && byNode.has(node) ? `node:${node}` : sid;
    const hit = cache.get(key);
    if (hit) return hit;
    const peer = node !== undefined && byNode.has(node) ? byNode.get(node) : peers.find((p) => p.prefix.contains(IPAddress.parse(sid)));
    const peerAddr = peer?.address?.includes(":") ? IPAddress.parse(peer.address) : undefined;
    let hop: string | undefined;
    if (peerAddr && onLink.some((p) => p.contains(peerAddr))) hop = canonicalIp(peer!.address!);
    else hop = gateways[6];
    if (!hop) {
      throw new Error(`Cannot plan node ${state.node}: SID ${sid} belongs to ${peer ? `peer ${peer.node}, whose underlay address ${peer.address ?? "is unknown"} is not on-link` : "no known peer"}, and the underlay has no IPv6 default gateway to send it through`);
    }
    cache.set(key, hop);
    return hop;
  };
}

/** IPv6 routes have no scope (the kernel reports universe), IPv4 device routes are link-scoped. */
function linkScope(fam: 4 | 6): "link" | undefined {
  return fam === 4 ? "link" : undefined;
}


function canonicalCidr(cidr: string): string {
  const i = cidr.lastIndexOf("/");
  const ip = i < 0 ? cidr : cidr.slice(0, i);
  const len = i < 0 ? (ip.includes(":") ? 128 : 32) : Number(cidr.slice(i + 1));
  return `${canonicalIp(ip)}/${len}`;
}
