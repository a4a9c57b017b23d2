/**
 * ClusterIP load-balancing in the srv6 dataplane, the same on both
 * backends: on both, a pod's packet to an address its bridge does not
 * deliver goes up the node's stack (netfilter prerouting, then the
 * network's table; the bpf backend's programs sit on the underlay only),
 * so destination NAT in netfilter is the shared design.
 *
 * One nftables table of its own, `inet lace_svc`, whose structure never
 * changes (loaded once as nft text) and whose contents are map elements
 * written over netfilter netlink (nfsets.ts), so one endpoint change is a
 * handful of elements in one nf_tables transaction with no process spawned:
 *
 * - `svc4`/`svc6`: (source bridge, ClusterIP, protocol, port) → `goto`
 *   the chain that picks one of N endpoints. Only bridges of networks the
 *   Service's sources name get elements: that is the reachability decision;
 * - `lb<family>-<r|a>-<N>`: one shared chain per endpoint count N and
 *   mode, `dnat to <ClusterIP . protocol . port . numgen random mod N>`
 *   looked up in `ep4`/`ep6` (`jhash ip saddr mod N` for ClientIP
 *   affinity, which keeps a client on one endpoint while the endpoints
 *   stay the same). New connections spread; conntrack keeps a connection
 *   on its endpoint and reverse-translates the replies;
 * - `ep4`/`ep6`: (ClusterIP, protocol, port, index) → (endpoint, target port);
 * - `vips4`/`vips6`: every ClusterIP; a packet to one that was not
 *   translated (a source network that may not use it, a port it does not
 *   have, no endpoints) is dropped.
 *
 * - `hairpin4`/`hairpin6`: (source network's return mark, endpoint on
 *   this node) → the network's gateway here. A pod whose connection was
 *   translated to a pod of its own network on this node would get the
 *   answer straight over L2, untranslated; its source becomes the gateway
 *   so the answer comes back through the node. The source network is known
 *   by the return mark the main ruleset puts on its pods' packets (the input
 *   device is unknown in postrouting).
 *
 * @example
 * const plan = planServices(state);
 * const table = new ServiceTable(nf, "/run/netns/node-1", "node-1");
 * await table.apply(plan); // the elements that changed, in one transaction
 */
import { spawnSync } from "node:child_process";
import type { NetworkForwarding, NodeDesiredState, ServiceForwarding } from "../../core/plugin/mod.ts";
import { bridgeFor } from "./naming.ts";
import { returnMark } from "./plan.ts";
import type { NetlinkClient } from "./netlink.ts";
import { inNetns } from "./netns.ts";
import { changeElements, concatKey, type ElementChanges, ifnameKey, listTables, type MapElement, NFPROTO } from "./nfsets.ts";
import { canonicalIp, ipBytes } from "./wire.ts";

/** The table's name (family inet). */
export const SERVICE_TABLE = "lace_svc";
/** Endpoints one Service port forwards to, per family; more are left out (the first by pod name). */
export const MAX_SERVICE_ENDPOINTS = 128;
/** Capacity of the maps (elements); the kernel refuses more. */
const MAP_SIZE = 262144;
const VERSION = "lace-cni services 1";
const PROTO = { TCP: 6, UDP: 17 } as const;

/** One entry of a map or set, as text (for `lace plan` and tests) and as what goes on the wire. */
export interface ServiceElement {
  set: string;
  /** The key as text: `lb1 . 10.96.0.10 . tcp . 80`. */
  key: string;
  /** The value as text (`10.40.1.5 . 8080`, `goto lb4-r-2`), or "" for a set. */
  value: string;
  element: MapElement;
}

/** What the node's Services need: each Service's elements (several Services may share one, such as a hairpin entry). */
export interface ServicePlan {
  /** By Service id; an unchanged Service keeps the very same object from one plan to the next. */
  services: Map<string, ServiceElements>;
  /** Service ports with more endpoints than {@link MAX_SERVICE_ENDPOINTS}: `shop/cart 80/TCP: 200 endpoints`. */
  truncated: string[];
}

/** One Service's elements, by `set|key`. */
export interface ServiceElements {
  elements: Map<string, ServiceElement>;
  truncated: string[];
}

/** Each Service's elements as last planned, with the node context they were planned in. */
const planned = new WeakMap<ServiceForwarding, { context: string; plan: ServiceElements }>();

/**
 * The elements for a node's Services. Pure; a Service object planned before
 * in the same node context (the builder hands unchanged Services over as the
 * same objects) gets its previous elements back, so an apply that changes
 * one Service of 10,000 plans one.
 *
 * @example
 * planServices(state).services.get("shop/api")?.elements.get("svc4|lb1 . 10.96.0.10 . tcp . 80")?.value; // "goto lb4-r-2"
 */
export function planServices(state: NodeDesiredState): ServicePlan {
  const plan: ServicePlan = { services: new Map(), truncated: [] };
  const services = state.services ?? [];
  if (services.length === 0) return plan;
  const nets = new Map(state.networks.filter((n) => n.forwarding !== "underlay").map((n) => [n.name, n]));
  // What a Service's elements depend on besides the Service: the node, and its networks' ids and gateways.
  const context = JSON.stringify([state.node, [...nets.values()].map((n) => [n.name, n.id, n.gateways])]);
  for (const svc of services) {
    const cached = planned.get(svc);
    let one = cached?.context === context ? cached.plan : undefined;
    if (!one) {
      one = planService(svc, state.node, nets);
      planned.set(svc, { context, plan: one });
    }
    plan.services.set(svc.id, one);
    plan.truncated.push(...one.truncated);
  }
  return plan;
}

function planService(svc: ServiceForwarding, node: string, nets: Map<string, NetworkForwarding>): ServiceElements {
  const out: ServiceElements = { elements: new Map(), truncated: [] };
  const add = (set: string, key: string, value: string, element: MapElement) => out.elements.set(`${set}|${key}`, { set, key, value, element });
  const bridges = svc.sources.map((s) => nets.get(s)).filter((n) => n !== undefined).map((n) => bridgeFor(n.id));
  if (bridges.length === 0) return out;
  for (const vip of svc.clusterIPs) {
    const ip = canonicalIp(vip);
    const fam = ip.includes(":") ? 6 : 4;
    add(`vips${fam}`, ip, "", { key: ipBytes(ip) });
    svc.ports.forEach((port, i) => {
      const proto = PROTO[port.protocol];
      const name = port.protocol.toLowerCase();
      let targets = svc.endpoints.flatMap((e) => {
        const address = e.addresses.find((a) => a.includes(":") === (fam === 6));
        return address && e.ports[i] > 0 ? [{ address: canonicalIp(address), port: e.ports[i] }] : [];
      });
      if (targets.length === 0) return;
      if (targets.length > MAX_SERVICE_ENDPOINTS) {
        out.truncated.push(`${svc.id} ${port.port}/${port.protocol}: ${targets.length} endpoints`);
        targets = targets.slice(0, MAX_SERVICE_ENDPOINTS);
      }
      const chain = lbChain(fam, svc.sessionAffinity === "ClientIP", targets.length);
      for (const br of bridges) {
        add(`svc${fam}`, `${br} . ${ip} . ${name} . ${port.port}`, `goto ${chain}`, {
          key: concatKey([ifnameKey(br), ipBytes(ip), Uint8Array.of(proto), be16(port.port)]),
          goto: chain,
        });
      }
      targets.forEach((t, index) => {
        add(`ep${fam}`, `${ip} . ${name} . ${port.port} . ${index}`, `${t.address} . ${t.port}`, {
          key: concatKey([ipBytes(ip), Uint8Array.of(proto), be16(port.port), hostU32(index)]),
          value: concatKey([ipBytes(t.address), be16(t.port)]),
        });
      });
    });
  }
  // Hairpin: this node's endpoints, reached by the Service network's own pods.
  const net = nets.get(svc.network);
  if (net) {
    const mark = returnMark(net.id);
    for (const e of svc.endpoints) {
      if (e.node !== node) continue;
      for (const a of e.addresses) {
        const target = canonicalIp(a);
        const fam = target.includes(":") ? 6 : 4;
        const gw = net.gateways.map((g) => canonicalIp(g.split("/")[0])).find((g) => g.includes(":") === (fam === 6));
        if (gw) add(`hairpin${fam}`, `${hex(mark)} . ${target}`, gw, { key: concatKey([hostU32(mark), ipBytes(target)]), value: ipBytes(gw) });
      }
    }
  }
  return out;
}

/** The chain that picks one of `n` endpoints: `lb4-r-3` (random), `lb6-a-2` (by client address). */
export function lbChain(fam: 4 | 6, affinity: boolean, n: number): string {
  return `lb${fam}-${affinity ? "a" : "r"}-${n}`;
}

/**
 * The table's structure (no elements): the maps and sets, the shared
 * chains for 1 … MAX_SERVICE_ENDPOINTS endpoints, the DNAT lookup and the
 * drop of untranslated ClusterIP traffic.
 */
export function renderServiceTable(): string {
  const lines = [`table inet ${SERVICE_TABLE} {`, `  comment "${VERSION}"`];
  for (const fam of [4, 6] as const) {
    const ip = fam === 4 ? "ip" : "ip6";
    lines.push(`  map svc${fam} { type ifname . ${fam === 4 ? "ipv4_addr" : "ipv6_addr"} . inet_proto . inet_service : verdict; size ${MAP_SIZE}; }`);
    lines.push(`  map ep${fam} { typeof ${ip} daddr . meta l4proto . th dport . numgen random mod 1 : ${ip} daddr . th dport; size ${MAP_SIZE}; }`);
    lines.push(`  set vips${fam} { type ${fam === 4 ? "ipv4_addr" : "ipv6_addr"}; size ${MAP_SIZE}; }`);
    lines.push(`  map hairpin${fam} { type mark . ${fam === 4 ? "ipv4_addr" : "ipv6_addr"} : ${fam === 4 ? "ipv4_addr" : "ipv6_addr"}; size ${MAP_SIZE}; }`);
    for (let n = 1; n <= MAX_SERVICE_ENDPOINTS; n++) {
      for (const affinity of [false, true]) {
        const pick = affinity ? `jhash ${ip} saddr mod ${n}` : `numgen random mod ${n}`;
        lines.push(`  chain ${lbChain(fam, affinity, n)} { meta l4proto { tcp, udp } dnat ${ip} to ${ip} daddr . meta l4proto . th dport . ${pick} map @ep${fam}; }`);
      }
    }
  }
  lines.push("  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;");
  lines.push("    meta l4proto { tcp, udp } iifname . ip daddr . meta l4proto . th dport vmap @svc4");
  lines.push("    meta l4proto { tcp, udp } iifname . ip6 daddr . meta l4proto . th dport vmap @svc6");
  lines.push("  }");
  lines.push("  chain hairpin {", "    type nat hook postrouting priority srcnat; policy accept;");
  lines.push("    ct status dnat snat ip to meta mark . ip daddr map @hairpin4");
  lines.push("    ct status dnat snat ip6 to meta mark . ip6 daddr map @hairpin6");
  lines.push("  }");
  // After DNAT (a translated packet no longer has the ClusterIP as destination).
  lines.push("  chain untranslated {", "    type filter hook prerouting priority dstnat + 1; policy accept;");
  lines.push("    ip daddr @vips4 drop", "    ip6 daddr @vips6 drop", "  }");
  lines.push("}");
  return lines.join("\n") + "\n";
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

function be16(v: number): Uint8Array {
  return Uint8Array.of((v >> 8) & 0xff, v & 0xff);
}

/** numgen and jhash write a host-order 32-bit register. */
function hostU32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function nft(netns: string | undefined, args: string[], input?: string): { status: number; stderr: string } {
  const r = inNetns(netns, () => spawnSync("nft", args, { input, encoding: "utf8" }));
  if (r.error) throw new Error(`Cannot run nft: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message} (install the nftables package)`);
  return { status: r.status ?? 1, stderr: r.stderr };
}

/**
 * The node's service table, kept in step with plans by element changes.
 * The first apply of a process loads the table afresh (its elements are
 * not read back), then writes every element; later applies compare only
 * the Services whose plan changed (by identity) and write the elements
 * that differ. Elements several Services share are counted, so one stays
 * while any Service still has it. With no Services the table is removed.
 */
export class ServiceTable {
  /** What the kernel holds: each Service's plan as applied, and every element with how many Services have it. */
  private applied?: Map<string, ServiceElements>;
  private counts = new Map<string, { e: ServiceElement; n: number }>();

  constructor(private readonly nf: NetlinkClient, private readonly netns: string | undefined, private readonly label: string) {}

  /** Makes the table hold `plan`'s elements; returns the number of elements removed and added. */
  async apply(plan: ServicePlan): Promise<{ added: number; removed: number; loaded: boolean }> {
    let loaded = false;
    const empty = [...plan.services.values()].every((p) => p.elements.size === 0);
    if (empty) {
      if (this.applied?.size === 0) return { added: 0, removed: 0, loaded };
      if (this.applied !== undefined || (await listTables(this.nf)).some((t) => t.family === NFPROTO.INET && t.name === SERVICE_TABLE)) this.remove();
      this.applied = new Map();
      this.counts = new Map();
      return { added: 0, removed: 0, loaded };
    }
    let applied = this.applied;
    if (!applied || applied.size === 0 || this.counts.size === 0) {
      const r = nft(this.netns, ["-f", "-"], `table inet ${SERVICE_TABLE}\ndelete table inet ${SERVICE_TABLE}\n${renderServiceTable()}`);
      if (r.status !== 0) throw new Error(`Cannot load the service table in netns ${this.label}: ${r.stderr.trim()}`);
      applied = new Map();
      this.counts = new Map();
      loaded = true;
    }
    const counts = this.counts;
    const removed = new Map<string, ServiceElement>();
    const added = new Map<string, ServiceElement>();
    const drop = (k: string) => {
      const c = counts.get(k)!;
      if (--c.n > 0) return;
      counts.delete(k);
      if (added.get(k) === c.e) added.delete(k);
      else removed.set(k, c.e);
    };
    const take = (k: string, e: ServiceElement) => {
      const c = counts.get(k);
      if (c) {
        c.n++;
        if (c.e.value === e.value) return;
        // Another value for the key: the last planned wins.
        if (!added.has(k)) removed.set(k, c.e);
        c.e = e;
        added.set(k, e);
        return;
      }
      counts.set(k, { e, n: 1 });
      const was = removed.get(k);
      if (was && was.value === e.value) removed.delete(k);
      else added.set(k, e);
    };
    for (const [id, before] of applied) {
      const after = plan.services.get(id);
      if (after === before) continue;
      for (const k of before.elements.keys()) drop(k);
    }
    for (const [id, after] of plan.services) {
      const before = applied.get(id);
      if (after === before) continue;
      for (const [k, e] of after.elements) take(k, e);
    }
    const bySet = new Map<string, ElementChanges>();
    const changes = (set: string) => {
      let c = bySet.get(set);
      if (!c) bySet.set(set, c = { family: NFPROTO.INET, table: SERVICE_TABLE, set, remove: [], add: [], what: "service elements" });
      return c;
    };
    for (const e of removed.values()) changes(e.set).remove.push(e.element);
    for (const e of added.values()) changes(e.set).add.push(e.element);
    // Until the write succeeded the kernel's contents are unknown: the next apply reloads.
    this.applied = undefined;
    await changeElements(this.nf, [...bySet.values()]);
    this.applied = new Map(plan.services);
    return { added: added.size, removed: removed.size, loaded };
  }

  /** Removes the table (no Services left). A missing table is fine. */
  remove(): void {
    removeServiceTable(this.netns);
    this.applied = undefined;
    this.counts = new Map();
  }
}

/** Removes the service table from a node (teardown). A missing table is fine. */
export function removeServiceTable(netns: string | undefined): void {
  nft(netns, ["-f", "-"], `table inet ${SERVICE_TABLE}\ndelete table inet ${SERVICE_TABLE}\n`);
}
