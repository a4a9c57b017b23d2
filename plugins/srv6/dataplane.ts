/**
 * The srv6 Dataplane: makes one node's kernel match its NodeDesiredState.
 * `apply` reads what the kernel holds of ours, diffs it against the plan
 * and writes only the difference, in dependency order (bridges, addresses,
 * nexthops, routes, rules, nftables; then removals in reverse). A second
 * apply of the same state, or a fresh process applying it, makes zero
 * writes (`ApplyReport.writes`), so traffic is never disturbed.
 *
 * @example
 * const dp = await Srv6Dataplane.open({ node: "node-1", netns: "/run/netns/node-1" });
 * const report = await dp.apply(state); // { added, changed, removed, writes, durationMs }
 * await dp.close();
 */
import type { ApplyReport, Dataplane, DataplaneCapabilities, NodeDesiredState } from "../../core/plugin/mod.ts";
import { NetlinkClient, type WriteRequest } from "./netlink.ts";
import { inNetns, netnsPath, setSysctl } from "./netns.ts";
import {
  addrAdd, bridgeAdd, linkDel, linkUp, neighborAdd, proxyAdd, readNeighbors, readProxies, setLinkMac, setPortIsolated, NEXTHOP_ID_BASE, NEXTHOP_ID_SPAN, POD_ALIAS_PREFIX, POD_LINK_GROUP, nexthopAdd, nexthopDel, ourBridges, readAddrs,
  readLinks, readNexthops, readRoutes, readRules, routeAdd, routeDel, ruleAdd, setMaster, setPodGroup, type Links,
} from "./kernel.ts";
import { addrKey, nexthopSig, routeKey, routeSig, ruleKey, type RouteObj } from "./objects.ts";
import { planNode, type Backend, type Plan, type PodNetwork, podNetworks, type UnderlayGateways } from "./plan.ts";
import { BpfDatapath, detachLeftovers, type BpfStats, type MAPS } from "./bpf_datapath.ts";
import { loadedRulesetHashOver, loadRuleset, removeRuleset, renderRuleset, rulesetHash } from "./nft.ts";
import { readPodSources, syncPodSources } from "./pod_sources.ts";
import { probeCapabilities } from "./capabilities.ts";
import { attachPod, detachPod, forgetNeighbours, type NodeHandle, type PodAttachment } from "./pods.ts";
import { bridgeFor, localBridge } from "./naming.ts";
import { NETLINK_NETFILTER, NFPROTO, podSourceKey, writeSetElements } from "./nfsets.ts";
import { planServices, removeServiceTable, ServiceTable } from "./services.ts";
import { FULL_RECONCILE_EVERY_MS, onlyServicesChanged, sameState } from "./state_sameness.ts";
import { AF, RTA, RTM, rtmsg, attrMap, ipText, readU32 } from "./wire.ts";
import { fdbAdd, managedAdd, ourTunnels, readFdb, readManaged, setNeighSuppress, tunnelAdd } from "./l2_kernel.ts";

export interface Srv6Options {
  node: string;
  /** Path (or `ip netns` name) of the node's network namespace; undefined: this process's. */
  netns?: string;
  /**
   * How SRv6 is carried: `kernel` (seg6 lwtunnel routes), `bpf` (tc-eBPF on
   * the underlay), or `auto` (default): kernel where the kernel has seg6,
   * else bpf. Both put the same packets on the wire.
   */
  backend?: BackendChoice;
  /** The bpffs the bpf backend pins its maps in (mounted when it is not one). Default /sys/fs/bpf. */
  bpffs?: string;
}

export type BackendChoice = "auto" | Backend;
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "kernel", "bpf"];

/** The srv6 dataplane's settings in lace.yaml (`dataplane: {feature: srv6, backend: …, bpffs: …}`). */
export interface Srv6Settings {
  backend: BackendChoice;
  bpffs?: string;
}

/**
 * Checks the srv6 dataplane's settings from the configuration; every bad
 * field is named with its value.
 *
 * @example
 * srv6Settings({ backend: "bpf" }); // { backend: "bpf" }
 * srv6Settings({ backend: "ebpf" }); // throws: dataplane.backend: expected one of auto, kernel, bpf, got "ebpf"
 */
export function srv6Settings(raw: Record<string, unknown> = {}): Srv6Settings {
  const problems: string[] = [];
  const out: Srv6Settings = { backend: "auto" };
  for (const [key, value] of Object.entries(raw)) {
    if (key === "backend") {
      if (typeof value === "string" && (BACKEND_CHOICES as readonly string[]).includes(value)) out.backend = value as BackendChoice;
      else problems.push(`dataplane.backend: expected one of ${BACKEND_CHOICES.join(", ")}, got ${JSON.stringify(value) ?? "nothing"}`);
    } else if (key === "bpffs") {
      if (typeof value === "string" && value.startsWith("/")) out.bpffs = value;
      else problems.push(`dataplane.bpffs: expected an absolute path (a bpffs mount, or where to mount one), got ${JSON.stringify(value) ?? "nothing"}`);
    } else {
      problems.push(`dataplane.${key}: unknown setting of the srv6 dataplane, expected backend or bpffs`);
    }
  }
  if (problems.length) throw new Error(`Invalid srv6 dataplane settings: ${problems.join("; ")}`);
  return out;
}

/**
 * The backend `choice` resolves to with these capabilities, or an error
 * naming the kernel options that are missing.
 *
 * @example
 * chooseBackend("auto", { seg6: false, seg6local: false, bpf: true }, "node-1"); // "bpf"
 */
export function chooseBackend(choice: BackendChoice, caps: Pick<DataplaneCapabilities, "seg6" | "seg6local" | "bpf">, node: string): Backend {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new Error(`Invalid dataplane backend "${choice}": expected one of ${BACKEND_CHOICES.join(", ")}`);
  }
  const kernel = caps.seg6 && caps.seg6local;
  const noKernel = "the kernel has no seg6 lwtunnel (CONFIG_IPV6_SEG6_LWTUNNEL is not set), which the kernel backend needs";
  const noBpf = "the kernel lacks what the bpf backend needs (the bpf() syscall with JIT, clsact and cls_bpf: CONFIG_BPF_SYSCALL, CONFIG_BPF_JIT, CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF)";
  if (choice === "kernel" && !kernel) throw new Error(`Cannot run the srv6 dataplane on node ${node} with backend kernel: ${noKernel}`);
  if (choice === "bpf" && !caps.bpf) throw new Error(`Cannot run the srv6 dataplane on node ${node} with backend bpf: ${noBpf}`);
  if (choice !== "auto") return choice;
  if (kernel) return "kernel";
  if (caps.bpf) return "bpf";
  throw new Error(`Cannot run the srv6 dataplane on node ${node}: ${noKernel}, and ${noBpf}`);
}

/** Why the kernel backend refuses pods of bridged (l2) networks (capabilities' `notForwarded`). */
export const KERNEL_BACKEND_NO_L2 =
  "the srv6 kernel backend (seg6) carries no l2 frames between nodes (seg6 l2encap sees routed IP only, no ARP): bridged (l2) networks need the bpf backend on every node with their pods (dataplane.backend: bpf, or lace agent --backend bpf)";

export class Srv6Dataplane implements Dataplane {
  private caps?: DataplaneCapabilities;
  /** Network → bridge, from the last applied state. */
  private bridges = new Map<string, string>();
  private busy: Promise<unknown> = Promise.resolve();
  /** Netfilter netlink socket for pod attach (opened on first use). */
  private nf?: NetlinkClient;
  private serviceTable?: ServiceTable;
  /** The bpf backend's programs and maps (loaded on the first apply). */
  private bpfDatapath?: BpfDatapath;
  /** The underlay device the bpf programs are attached to. */
  private bpfUnderlay?: number;
  readonly netns: string | undefined;
  readonly label: string;
  /** The backend this node runs (chosen at open). */
  backend: Backend = "kernel";
  private bpffs = "/sys/fs/bpf";
  /** Whether the kernel backend looked for programs a bpf run left on the underlay. */
  private leftoversChecked = false;
  /** Network id → name, as last applied (sightings name their network). */
  private networkNames = new Map<number, string>();
  /** Each network's local side as of the last successful apply: attach writes a pod's own objects from it. */
  private podNetworks = new Map<string, PodNetwork>();
  /**
   * The last state reconciled in full (everything read back and diffed), and
   * when. An apply within {@link FULL_RECONCILE_EVERY_MS} of it whose state
   * differs only in its Services writes the Services' table alone.
   */
  private lastFull?: { state: NodeDesiredState; at: number };

  private constructor(readonly node: string, netns: string | undefined, private readonly nl: NetlinkClient) {
    this.netns = netns;
    this.label = netns ? netns.split("/").pop()! : "host";
  }

  /**
   * Opens the node's netlink socket, probes the kernel's capabilities and
   * chooses the backend; a kernel that can run neither is refused with the
   * options it lacks.
   */
  static async open(opts: Srv6Options): Promise<Srv6Dataplane> {
    const path = opts.netns === undefined ? undefined : netnsPath(opts.netns);
    const dp = new Srv6Dataplane(opts.node, path, NetlinkClient.open(path));
    try {
      const caps = await probeCapabilities(path);
      dp.backend = chooseBackend(opts.backend ?? "auto", caps, opts.node);
      // Marks keep overlapping networks apart on either backend (bpf marks at decapsulation).
      dp.caps = {
        ...caps, backend: dp.backend, overlappingSubnets: caps.seg6local || dp.backend === "bpf",
        // Frames of bridged networks cross nodes only through the bpf programs (plan_l2.ts).
        forwarding: dp.backend === "bpf" ? ["routed", "bridged", "underlay"] : caps.forwarding,
        ...(dp.backend === "bpf" ? {} : { notForwarded: { bridged: KERNEL_BACKEND_NO_L2 } }),
      };
    } catch (e) {
      dp.nl.close();
      throw e;
    }
    if (opts.bpffs) dp.bpffs = opts.bpffs;
    return dp;
  }

  /** The bpf backend's datapath: loaded on first use, maps pinned per node. */
  private bpf(): BpfDatapath {
    this.bpfDatapath ??= BpfDatapath.open(this.bpffs, this.netns ? this.label : this.node);
    return this.bpfDatapath;
  }

  /** The bpf datapath's counters (encapsulated, decapsulated, dropped by reason); undefined on the kernel backend. */
  bpfStats(): BpfStats | undefined {
    return this.backend === "bpf" ? this.bpf().stats() : undefined;
  }

  /**
   * What the l2 datapath saw on local ports since the last call and does not
   * know: a MAC without an FDB entry, an address without a Neighbor (or
   * with another MAC's). Reported by the bpf programs through a ring buffer,
   * at most once a second per (network, MAC, address); the agent turns them
   * into learned Neighbor/FDBEntry resources. Empty on the kernel backend.
   *
   * @example
   * await dp.l2Sightings(); // [{ network: "storage", port: "h-vm1", mac: "02:00:00:00:00:99", ip: "10.50.0.99" }]
   */
  /**
   * Names the networks of an applied state for `l2Sightings`: an apply made
   * by another Srv6Dataplane on the same node (the agent's apply worker)
   * leaves this one's names unset, and a sighting of an unnamed network is
   * dropped.
   */
  rememberNetworks(state: NodeDesiredState): void {
    this.networkNames = new Map(state.networks.map((n) => [n.id, n.name]));
    this.podNetworks = podNetworks(state);
  }

  /** The networks' pod-facing sides, from a thread that applied the state (see pod_dataplane.ts). */
  usePodNetworks(networks: Map<string, PodNetwork>): void {
    this.podNetworks = networks;
  }

  async l2Sightings(): Promise<{ network: string; port: string; mac: string; ip?: string }[]> {
    if (this.backend !== "bpf") return [];
    const seen = this.bpf().sightings();
    if (!seen.length) return [];
    const links = await readLinks(this.nl);
    return seen.flatMap((s) => {
      const network = this.networkNames.get(s.net);
      if (!network) return [];
      return [{ network, port: links.byIndex.get(s.ifindex)?.name ?? `#${s.ifindex}`, mac: s.mac, ...(s.ip ? { ip: s.ip } : {}) }];
    });
  }

  /**
   * A map of the bpf datapath, for tests and benchmarks that look inside or
   * change it behind the dataplane's back (the next apply puts it right).
   * Undefined on the kernel backend.
   *
   * @example
   * mapEntries(dp.bpfMapFd("lace_l2_fdb")!, LAYOUT.lace_l2_fdb.key, LAYOUT.lace_l2_fdb.value);
   */
  bpfMapFd(name: (typeof MAPS)[number]): number | undefined {
    if (this.backend !== "bpf") return undefined;
    // The next apply reads the maps back rather than trusting what it wrote last.
    this.bpf().distrust();
    this.lastFull = undefined;
    return this.bpf().mapFd(name);
  }

  /** The netlink client (tests and the benchmark read its write counter). */
  get netlink(): NetlinkClient {
    return this.nl;
  }

  async capabilities(): Promise<DataplaneCapabilities> {
    this.caps ??= await probeCapabilities(this.netns);
    return this.caps;
  }

  async close(): Promise<void> {
    this.bpfDatapath?.close();
    this.bpfDatapath = undefined;
    this.nl.close();
    this.nf?.close();
    this.nf = undefined;
  }

  private podNode(): NodeHandle {
    this.nf ??= NetlinkClient.open(this.netns, this.label, NETLINK_NETFILTER);
    return { netlink: this.nl, netns: this.netns, label: this.label, netfilter: this.nf };
  }

  /** Removes everything of ours from the node (for teardown; not part of reconcile). */
  async purge(): Promise<void> {
    const empty: NodeDesiredState = {
      node: this.node, revision: 0, locator: "::/128", encapsulation: "Reduced",
      underlay: { interface: "lo", mtu: 1500 }, networks: [], endpoints: [],
    };
    this.lastFull = undefined;
    await this.reconcile(empty, false);
    removeRuleset(this.netns);
    removeServiceTable(this.netns);
    this.serviceTable = undefined;
    if (this.backend === "bpf") {
      const bpf = this.bpf();
      // Every device of the node: a fresh process does not know which one was the underlay.
      const links = await readLinks(this.nl);
      inNetns(this.netns, () => {
        for (const l of links.byName.values()) bpf.detach(l.index);
      });
      bpf.destroy();
      this.bpfDatapath = undefined;
    }
  }

  async apply(state: NodeDesiredState): Promise<ApplyReport> {
    return this.serial(async () => {
      const last = this.lastFull;
      this.lastFull = undefined;
      if (last && performance.now() - last.at < FULL_RECONCILE_EVERY_MS && onlyServicesChanged(last.state, state)) {
        // Only the Services changed since a full reconcile a moment ago: the Services' table alone.
        const report = await this.applyServices(state);
        // Beside its Services the state is the one reconciled then.
        this.lastFull = { state, at: last.at };
        return report;
      }
      const report = await this.reconcile(state, true);
      // The same state again (a retry, the agent's resync): the service table, which the reconcile trusts, is
      // counted too, and loaded afresh when something changed it behind our back.
      if (last && sameState(last.state, state) && this.serviceTable && !(await this.serviceTable.verify())) {
        const svc = await this.applyServices(state);
        report.added += svc.added;
        report.writes += svc.writes;
      }
      this.lastFull = { state, at: performance.now() };
      this.bridges = new Map(state.networks.flatMap((n) => {
        const br = localBridge(n);
        return br ? [[n.name, br] as const] : [];
      }));
      this.rememberNetworks(state);
      return report;
    });
  }

  /** Step 7b of a reconcile, also on its own: the Services' elements (services.ts), nothing read back. */
  private async applyServices(state: NodeDesiredState): Promise<ApplyReport> {
    const t0 = performance.now();
    this.nf ??= NetlinkClient.open(this.netns, this.label, NETLINK_NETFILTER);
    this.serviceTable ??= new ServiceTable(this.nf, this.netns, this.label);
    const svc = await this.serviceTable.apply(planServices(state));
    return { added: svc.added, changed: 0, removed: svc.removed, writes: svc.added + svc.removed ? 1 : 0, durationMs: performance.now() - t0 };
  }

  /** One apply (or pod change) at a time: a reconcile reads, diffs and writes as one step. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }

  /**
   * Attaches a pod to a network applied earlier (see pods.ts). The agent
   * calls this on CNI ADD; the endpoint must also appear in the next desired
   * state, or the next apply withdraws its source addresses.
   */
  async attachPod(pod: PodAttachment): Promise<void> {
    const bridge = pod.networkId !== undefined ? bridgeFor(pod.networkId) : this.bridges.get(pod.network);
    if (!bridge) throw new Error(`Cannot attach pod ${pod.netns}: network "${pod.network}" is not in the applied state of node ${this.node}`);
    await this.serial(() => attachPod(this.podNode(), pod, bridge, this.podNetworks.get(pod.network)));
  }

  /** Detaches a pod; a missing link or namespace is success (CNI DEL may repeat). */
  async detachPod(pod: { hostIfname: string; netns?: string }): Promise<void> {
    await this.serial(() => detachPod(this.podNode(), pod));
  }

  private async resolveUnderlay(state: NodeDesiredState, links: Links): Promise<string> {
    if (state.underlay.interface) {
      if (!links.byName.has(state.underlay.interface)) {
        throw new Error(`Cannot apply the desired state of node ${state.node}: underlay.interface "${state.underlay.interface}" does not exist in netns ${this.label}`);
      }
      return state.underlay.interface;
    }
    for (const family of [AF.INET6, AF.INET]) {
      const msgs = await this.nl.dump(RTM.GETROUTE, rtmsg({ family, dstLen: 0, table: 254, protocol: 0, type: 0 }), "routes");
      for (const m of msgs) {
        if (m.type !== RTM.NEWROUTE || m.data[1] !== 0 || m.data[4] !== 254) continue;
        const oif = readU32(attrMap(m.data.subarray(12)).get(RTA.OIF));
        const name = oif === undefined ? undefined : links.byIndex.get(oif)?.name;
        if (name) return name;
      }
    }
    throw new Error(`Cannot apply the desired state of node ${state.node}: underlay.interface is empty and netns ${this.label} has no default route to take it from`);
  }

  /**
   * The main table's default gateways through the underlay (the next hop of
   * egress to external networks), and the underlay's IPv6 prefixes and address.
   */
  private async underlayGateways(underlay: string, links: Links): Promise<UnderlayGateways> {
    const out: UnderlayGateways = {};
    const own = (await readAddrs(this.nl, links, new Set([underlay]))).filter((a) => a.family === 6 && !/^fe[89ab]/i.test(a.cidr));
    out.onLink6 = own.map((a) => a.cidr);
    if (own.length) out.address6 = own[0].cidr.split("/")[0];
    const index = links.byName.get(underlay)?.index;
    for (const [family, fam] of [[AF.INET, 4], [AF.INET6, 6]] as const) {
      const msgs = await this.nl.dump(RTM.GETROUTE, rtmsg({ family, dstLen: 0, table: 254, protocol: 0, type: 0 }), "routes");
      for (const m of msgs) {
        if (m.type !== RTM.NEWROUTE || m.data[1] !== 0 || m.data[4] !== 254) continue;
        const a = attrMap(m.data.subarray(12));
        const gw = a.get(RTA.GATEWAY);
        if (gw && readU32(a.get(RTA.OIF)) === index) {
          out[fam] = ipText(gw);
          break;
        }
      }
    }
    return out;
  }

  private async reconcile(state: NodeDesiredState, withSysctlsAndNft: boolean): Promise<ApplyReport> {
    const t0 = performance.now();
    const writesBefore = this.nl.writes;
    let sysWrites = 0;
    let added = 0, changed = 0, removed = 0;

    let links = await readLinks(this.nl);
    const underlay = withSysctlsAndNft ? await this.resolveUnderlay(state, links) : "lo";
    const bpf = withSysctlsAndNft && this.backend === "bpf";
    const needsGateways = bpf || (withSysctlsAndNft && state.networks.some((n) => n.egress.length > 0 || n.paths.some((p) => p.via === "underlay")));
    const plan: Plan = planNode(state, underlay, needsGateways ? await this.underlayGateways(underlay, links) : {}, bpf ? "bpf" : "kernel");
    plan.podPorts = [...links.byName.values()].filter((l) => l.alias?.startsWith(POD_ALIAS_PREFIX)).map((l) => l.name);
    // A pod's own route and neighbour wait for its interface (attachPod comes first; a listed pod may be gone).
    const podPorts = new Set(plan.podPorts);
    for (const [k, n] of plan.neighbors) if (!podPorts.has(n.ifname) && !plan.bridges.has(n.ifname)) plan.neighbors.delete(k);
    const endpointPorts = new Set(state.endpoints.map((e) => e.interface));
    for (const [k, r] of plan.routes) if (r.oif && endpointPorts.has(r.oif) && !podPorts.has(r.oif)) plan.routes.delete(k);

    // 1. sysctls that do not depend on our links.
    const later: [string, string][] = [];
    if (withSysctlsAndNft) {
      for (const [k, v] of plan.sysctls) {
        const dev = /^net\/ipv[46]\/(?:conf|neigh)\/([^/]+)\//.exec(k)?.[1];
        if (dev && dev !== "all" && dev !== "default" && !links.byName.has(dev)) { later.push([k, v]); continue; }
        if (k.startsWith("net/netfilter/")) { later.push([k, v]); continue; }
        if (this.trySysctl(k, v)) sysWrites++;
      }
    }

    // 2. bridges.
    const haveBridges = ourBridges(links);
    const reqs: WriteRequest[] = [];
    for (const b of plan.bridges.values()) {
      const have = haveBridges.get(b.name);
      if (!have) {
        if (links.byName.has(b.name)) throw new Error(`Cannot add bridge ${b.name} in netns ${this.label}: a link of that name exists and is not lace-cni's`);
        reqs.push(...bridgeAdd(b.name, undefined, b.mac)); added++;
        continue;
      }
      if (!have.up) { reqs.push(linkUp(links, b.name)); changed++; }
      if (b.mac && have.mac !== b.mac) { reqs.push(setLinkMac(links, b.name, b.mac)); changed++; }
    }
    if (reqs.length) {
      await this.nl.write(reqs);
      links = await readLinks(this.nl);
    }
    for (const [k, v] of later) if (!k.startsWith("net/netfilter/") && this.trySysctl(k, v)) sysWrites++;

    // l2: each bridged network's tunnel port (plan_l2.ts).
    const tunnelReqs: WriteRequest[] = [];
    const haveTunnels = ourTunnels(links);
    for (const t of plan.tunnels.values()) {
      const have = links.byName.get(t.name);
      if (have && haveTunnels.has(t.name)) {
        const br = links.byName.get(t.bridge);
        if (br && have.master !== br.index) { tunnelReqs.push(setMaster(links, t.name, br.index)); changed++; }
        continue;
      }
      if (have) throw new Error(`Cannot add tunnel port ${t.name} in netns ${this.label}: a link of that name exists and is not lace-cni's`);
      tunnelReqs.push(...tunnelAdd(links, t)); added++;
    }
    if (tunnelReqs.length) {
      await this.nl.write(tunnelReqs);
      links = await readLinks(this.nl);
    }

    // Pod ports whose bridge was recreated are ports again.
    const portReqs: WriteRequest[] = [];
    const bridgeOfNet = new Map(state.networks.flatMap((n) => {
      const br = localBridge(n);
      return br ? [[n.name, br] as const] : [];
    }));
    for (const ep of state.endpoints) {
      const port = links.byName.get(ep.interface);
      const br = links.byName.get(bridgeOfNet.get(ep.network) ?? "");
      if (!port || !br || !port.alias?.startsWith(POD_ALIAS_PREFIX) || port.master === br.index) continue;
      portReqs.push(setMaster(links, ep.interface, br.index)); changed++;
    }
    // Pod ports attached before ports had a group join it (source validation matches the group).
    for (const l of links.byName.values()) {
      if (l.alias?.startsWith(POD_ALIAS_PREFIX) && l.group !== POD_LINK_GROUP) { portReqs.push(setPodGroup(links, l.name)); changed++; }
    }
    await this.nl.write(portReqs);
    if (portReqs.length) links = await readLinks(this.nl);

    // Ports of a checked bridge are isolated, every other pod port is not (plan.ts sameNodeChecked).
    const isolateReqs: WriteRequest[] = [];
    const switched = new Set<string>();
    for (const l of links.byName.values()) {
      if (!l.alias?.startsWith(POD_ALIAS_PREFIX) || l.master === undefined) continue;
      const want = plan.checked.has(links.byIndex.get(l.master)?.name ?? "");
      if ((l.isolated ?? false) !== want) { isolateReqs.push(setPortIsolated(l.name, want, links)); switched.add(l.name); changed++; }
    }
    // l2: the tunnel ports suppress ARP/ND for the neighbours behind them (plan_l2.ts).
    for (const name of plan.suppress) {
      const l = links.byName.get(name);
      if (l && !l.neighSuppress) { isolateReqs.push(setNeighSuppress(links, name, true)); changed++; }
    }
    await this.nl.write(isolateReqs);

    // 3. addresses on our bridges.
    const ourNames = new Set([...ourBridges(links).keys()]);
    const haveAddrs = new Map((await readAddrs(this.nl, links, ourNames)).map((a) => [addrKey(a), a]));
    const addrReqs: WriteRequest[] = [];
    for (const [k, a] of plan.addrs) if (!haveAddrs.has(k)) { addrReqs.push(addrAdd(links, a)); added++; }
    await this.nl.write(addrReqs);

    // 3b. bpf: maps, then the programs on the underlay, before any route sends a packet their way.
    let bpfWrites = 0;
    if (bpf) {
      const dp = this.bpf();
      const byName = (name: string) => links.byName.get(name)?.index;
      const synced = dp.sync(plan.bpf!, byName, underlay);
      bpfWrites += synced.added + synced.changed + synced.removed;
      changed += synced.changed;
      removed += synced.removed;
      added += synced.added;
      const index = links.byName.get(underlay)!.index;
      if (this.bpfUnderlay !== undefined && this.bpfUnderlay !== index) {
        const old = this.bpfUnderlay;
        inNetns(this.netns, () => dp.detach(old));
      }
      const podPorts = [...plan.bpf!.l2?.podPorts.keys() ?? []].map(byName).filter((i): i is number => i !== undefined);
      const attached = inNetns(this.netns, () =>
        dp.attach(index) +
        [...plan.tunnels.keys()].reduce((n, t) => n + dp.attachPort(byName(t)!, "tunnel"), 0) +
        podPorts.reduce((n, i) => n + dp.attachPort(i, "pod"), 0)
      );
      bpfWrites += attached;
      changed += attached;
      this.bpfUnderlay = index;
    } else if (withSysctlsAndNft && !this.leftoversChecked) {
      // A node that ran the bpf backend before (a kernel upgrade, a changed setting) may still have our
      // programs on the underlay: they would decapsulate ahead of seg6local. Once per process.
      this.leftoversChecked = true;
      const index = links.byName.get(underlay)!.index;
      try {
        bpfWrites += inNetns(this.netns, () => detachLeftovers(index));
      } catch {
        // No libbpf on this node: it never ran the bpf backend.
      }
      changed += bpfWrites;
    }

    // 4. nexthops: reuse the kernel's id for an identical nexthop, allocate free ids for new ones.
    const haveNh = await readNexthops(this.nl, links);
    const nhBySig = new Map<string, number>();
    const nhById = new Map<number, string>();
    const usedIds = new Set<number>();
    for (const n of haveNh) {
      usedIds.add(n.id!);
      const sig = nexthopSig(n);
      nhById.set(n.id!, sig);
      if (!nhBySig.has(sig)) nhBySig.set(sig, n.id!);
    }
    let nextId = NEXTHOP_ID_BASE;
    const nhReqs: WriteRequest[] = [];
    for (const [sig, n] of plan.nexthops) {
      if (nhBySig.has(sig)) continue;
      while (usedIds.has(nextId)) nextId++;
      if (nextId >= NEXTHOP_ID_BASE + NEXTHOP_ID_SPAN) throw new Error(`Cannot add nexthop in netns ${this.label}: the id range of lace-cni is full`);
      usedIds.add(nextId);
      nhBySig.set(sig, nextId);
      nhReqs.push(nexthopAdd(links, n, nextId)); added++;
    }
    await this.nl.write(nhReqs);

    // 4b. each pod's permanent neighbour entry on its own interface (its route follows), and the proxy
    // entries of checked bridges.
    const haveNeigh = new Map((await readNeighbors(this.nl, links, new Set([...podPorts, ...ourNames]))).map((n) => [`${n.ifname}|${n.ip}`, n]));
    const neighReqs: WriteRequest[] = [];
    for (const [k, n] of plan.neighbors) {
      const have = haveNeigh.get(k);
      if (have?.mac === n.mac) continue;
      neighReqs.push(neighborAdd(links, n));
      if (have) changed++; else added++;
    }
    const haveProxies = new Map((await readProxies(this.nl, links, ourNamesNow(links))).map((p) => [`${p.ifname}|${p.ip}`, p]));
    for (const [k, p] of plan.proxies) if (!haveProxies.has(k)) { neighReqs.push(proxyAdd(links, p)); added++; }
    // l2: static FDB entries on existing ports, and the underlay next hops kept resolved.
    const fdbPorts = new Set([...plan.tunnels.keys(), ...podPorts]);
    for (const [k, f] of plan.fdb) if (!links.byName.has(f.port) || !fdbPorts.has(f.port)) plan.fdb.delete(k);
    const haveFdb = new Map((await readFdb(this.nl, links, new Set([...ourTunnels(links), ...podPorts]))).map((f) => [`${f.port}|${f.mac}`, f]));
    for (const [k, f] of plan.fdb) if (!haveFdb.has(k)) { neighReqs.push(fdbAdd(links, f)); added++; }
    const haveManaged = new Map((await readManaged(this.nl, links)).map((n) => [`${n.ifname}|${n.ip}`, n]));
    for (const [k, n] of plan.managed) if (!haveManaged.has(k)) { neighReqs.push(managedAdd(links, n)); added++; }
    await this.nl.write(neighReqs);
    // Pods whose port switched forget the neighbours they learned the other way (after the proxies exist).
    if (switched.size) {
      const local = new Map(state.networks.map((n) => [n.name, n.localPrefixes]));
      for (const ep of state.endpoints) {
        if (!switched.has(ep.interface) || !ep.netns) continue;
        await forgetNeighbours(ep.netns, local.get(ep.network) ?? []).catch(() => 0);
      }
    }

    // 5. routes.
    const haveRoutes = new Map<string, RouteObj>();
    for (const r of await readRoutes(this.nl, links)) {
      if (r.nhid !== undefined) r.nexthop = nhById.get(r.nhid) ?? `#${r.nhid}`;
      delete r.nhid;
      haveRoutes.set(routeKey(r), r);
    }
    const routeReqs: WriteRequest[] = [];
    for (const [k, r] of plan.routes) {
      const have = haveRoutes.get(k);
      if (have && routeSig(have) === routeSig(r)) continue;
      routeReqs.push(routeAdd(links, r, r.nexthop ? nhBySig.get(r.nexthop) : undefined, have !== undefined));
      if (have) changed++; else added++;
    }
    await this.nl.write(routeReqs);

    // 6. rules.
    const haveRules = new Map((await readRules(this.nl)).map((r) => [ruleKey(r), r]));
    const ruleReqs: WriteRequest[] = [];
    for (const [k, r] of plan.rules) if (!haveRules.has(k)) { ruleReqs.push(ruleAdd(r)); added++; }
    await this.nl.write(ruleReqs);

    // 7. nftables: the ruleset when its text changed (a pod never changes it), then the pod source pairs
    // element by element (pod_sources.ts).
    // Pods attach from another thread while this apply runs (the agent's worker applies): the ports as they
    // are now, so what an attach since the start wrote (its pairs, route, neighbour) is kept, not undone.
    const linksNow = await readLinks(this.nl);
    const portsNow = new Set([...linksNow.byName.values()].filter((l) => l.alias?.startsWith(POD_ALIAS_PREFIX)).map((l) => l.name));
    if (withSysctlsAndNft) {
      const text = renderRuleset(plan);
      this.nf ??= NetlinkClient.open(this.netns, this.label, NETLINK_NETFILTER);
      const before = await readPodSources(this.nf);
      if (await loadedRulesetHashOver(this.nf) !== rulesetHash(text)) {
        loadRuleset(this.netns, text, this.label);
        // The reload emptied the sets: every pair is written back, with those of pods attached while
        // this state was on its way (their ADD wrote them; the state does not list them yet).
        await syncPodSources(this.nf, plan.allowed, portsNow, [], before);
        sysWrites++;
        changed++;
      } else {
        const n = await syncPodSources(this.nf, plan.allowed, portsNow, before);
        sysWrites += n;
        changed += n;
      }
      // Conntrack's sysctls exist once the ruleset (which uses ct) has loaded it.
      for (const [k, v] of later) if (k.startsWith("net/netfilter/") && this.trySysctl(k, v)) sysWrites++;

      // 7b. Services: ClusterIP load-balancing, element by element (services.ts).
      const svc = await this.applyServices(state);
      added += svc.added;
      removed += svc.removed;
      sysWrites += svc.writes;
    }

    // 8. removals, in reverse dependency order.
    // A pod attached while this state was on its way (the state does not list its port) keeps the route and
    // neighbour its attach wrote; the kernel removes them with the port when the pod goes.
    const unlisted = new Set([...portsNow].filter((p) => {
      const master = linksNow.byName.get(p)?.master;
      return !endpointPorts.has(p) && master !== undefined && plan.bridges.has(linksNow.byIndex.get(master)?.name ?? "");
    }));
    const del: WriteRequest[] = [];
    for (const [k, r] of haveRules) if (!plan.rules.has(k)) { del.push(ruleAdd(r, true)); removed++; }
    // (A port made since the routes were read shows there as `#index`.)
    const oifNow = (oif: string | undefined) => oif?.startsWith("#") ? linksNow.byIndex.get(Number(oif.slice(1)))?.name : oif;
    for (const [k, r] of haveRoutes) if (!plan.routes.has(k) && !unlisted.has(oifNow(r.oif) ?? "")) { del.push(routeDel(r)); removed++; }
    await this.nl.write(del);
    const delNeigh: WriteRequest[] = [];
    for (const [k, n] of haveNeigh) if (!plan.neighbors.has(k) && !unlisted.has(n.ifname)) { delNeigh.push(neighborAdd(links, n, true)); removed++; }
    for (const [k, p] of haveProxies) if (!plan.proxies.has(k)) { delNeigh.push(proxyAdd(links, p, true)); removed++; }
    for (const [k, f] of haveFdb) if (!plan.fdb.has(k)) { delNeigh.push(fdbAdd(links, f, true)); removed++; }
    for (const [k, n] of haveManaged) if (!plan.managed.has(k)) { delNeigh.push(managedAdd(links, n, true)); removed++; }
    await this.nl.write(delNeigh);
    const delNh: WriteRequest[] = [];
    const wanted = new Set([...plan.nexthops.keys()].map((s) => nhBySig.get(s)));
    for (const n of haveNh) if (!wanted.has(n.id)) { delNh.push(nexthopDel(n.id!)); removed++; }
    await this.nl.write(delNh);
    const delAddr: WriteRequest[] = [];
    for (const [k, a] of haveAddrs) if (!plan.addrs.has(k) && plan.bridges.has(a.ifname)) { delAddr.push(addrAdd(links, a, true)); removed++; }
    await this.nl.write(delAddr);
    const delLinks: WriteRequest[] = [];
    for (const name of ourTunnels(links)) if (!plan.tunnels.has(name)) { delLinks.push(linkDel(links, name)); removed++; }
    for (const name of ourNames) if (!plan.bridges.has(name)) { delLinks.push(linkDel(links, name)); removed++; }
    await this.nl.write(delLinks);

    return {
      added, changed, removed,
      writes: this.nl.writes - writesBefore + sysWrites + bpfWrites,
      durationMs: performance.now() - t0,
    };
  }

  private trySysctl(key: string, value: string): boolean {
    try {
      return setSysctl(this.netns, key, value);
    } catch (e) {
      // nf_hooks_lwtunnel only exists when conntrack is loaded; the rest must succeed.
      if (key === "net/netfilter/nf_hooks_lwtunnel") return false;
      throw new Error(`Cannot set sysctl ${key.replaceAll("/", ".")}=${value} in netns ${this.label}: ${(e as Error).message}`);
    }
  }
}

/** Names of our bridges among `links`. */
function ourNamesNow(links: Links): Set<string> {
  return new Set(ourBridges(links).keys());
}

export { inNetns };
export { NetlinkError } from "./netlink.ts";
export type { PodAttachment } from "./pods.ts";
