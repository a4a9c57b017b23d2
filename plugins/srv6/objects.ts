/**
 * The kernel objects the srv6 dataplane owns, in one canonical form used
 * for both sides of a reconcile: what the desired state asks for
 * (plan.ts) and what the kernel holds (kernel.ts). Each object has a `key`
 * (its identity: two objects with the same key are the same kernel object)
 * and a `sig` (everything we set on it: same key and different sig means
 * "change it").
 *
 * @example
 * const r: RouteObj = { kind: "route", family: 4, table: 1001, dst: "10.40.3.0/24",
 *   type: "unicast", oif: "lace-br-1", scope: "link" };
 * routeKey(r); // "4|1001|10.40.3.0/24"
 */

/** A bridge for one network's local side. */
export interface BridgeObj {
  name: string;
  up: boolean;
  /** A fixed MAC (plan.ts `bridgeMac`); absent: whatever the kernel chose. */
  mac?: string;
}

/** An address on one of our bridges. */
export interface AddrObj {
  ifname: string;
  /** `10.40.3.1/24` */
  cidr: string;
  family: 4 | 6;
  /** Whether the kernel adds the prefix route in the main table (only the link-local gateway wants it). */
  prefixRoute?: boolean;
}

/**
 * A nexthop object: a seg6 encapsulation (kernel backend), or a plain
 * gateway on the underlay (bpf backend: the packet leaves towards the peer
 * and the tc program on the underlay encapsulates it).
 */
export interface NexthopObj {
  id?: number;
  family: 4 | 6;
  oif: string;
  /** SEG6_MODE value; -1 for a plain gateway. */
  mode: number;
  segments: string[];
  /** The next hop's address (plain gateway nexthops only). */
  gateway?: string;
}

export type RouteEncap =
  | { kind: "seg6local"; action: number; table?: number; nh4?: string };

export interface RouteObj {
  family: 4 | 6;
  table: number;
  /** `10.40.3.0/24`, `default` is written `0.0.0.0/0` / `::/0`. */
  dst: string;
  type: "unicast" | "unreachable";
  oif?: string;
  gateway?: string;
  scope?: "link" | "universe";
  /** The source address the node's own packets along this route take. */
  prefsrc?: string;
  /** Signature of the nexthop object this route uses (resolved to an id when written). */
  nexthop?: string;
  encap?: RouteEncap;
}

/** A permanent neighbour entry (IP → MAC on a link). */
export interface NeighborObj {
  ifname: string;
  ip: string;
  mac: string;
}

/** A proxy neighbour entry: the node answers for `ip` on the link with the link's own MAC. */
export interface ProxyObj {
  ifname: string;
  ip: string;
}

export interface RuleObj {
  family: 4 | 6;
  priority: number;
  table: number;
  iifname?: string;
  fwmark?: number;
  /** Destination prefix selector (`to fd00:1ace:2::/48`). */
  dst?: string;
  /** Source prefix selector (`from 192.0.2.0/24`). */
  src?: string;
}

export function nexthopSig(n: NexthopObj): string {
  return `${n.family}|${n.oif}|${n.mode}|${n.segments.join(",")}|${n.gateway ?? ""}`;
}

export function routeKey(r: RouteObj): string {
  return `${r.family}|${r.table}|${r.dst}`;
}

export function routeSig(r: RouteObj): string {
  const encap = r.encap ? `${r.encap.action}/${r.encap.table ?? ""}/${r.encap.nh4 ?? ""}` : "";
  // The kernel reports `lo` as the device of IPv6 unreachable routes; it is not ours to compare.
  const oif = r.type === "unreachable" ? "" : (r.oif ?? "");
  return `${r.type}|${oif}|${r.gateway ?? ""}|${r.scope ?? "universe"}|${r.nexthop ?? ""}|${encap}|${r.prefsrc ?? ""}`;
}

export function ruleKey(r: RuleObj): string {
  return `${r.family}|${r.priority}|${r.table}|${r.iifname ?? ""}|${r.fwmark ?? ""}|${r.dst ?? ""}|${r.src ?? ""}`;
}

export function addrKey(a: AddrObj): string {
  return `${a.ifname}|${a.cidr}`;
}

/** Everything the dataplane owns on a node, as one comparable set. */
export interface KernelObjects {
  bridges: Map<string, BridgeObj>;
  addrs: Map<string, AddrObj>;
  /** By signature. */
  nexthops: Map<string, NexthopObj>;
  routes: Map<string, RouteObj>;
  rules: Map<string, RuleObj>;
  sysctls: Map<string, string>;
  /** The nftables ruleset text (without its content-hash comment). */
  nft: string;
}
