/**
 * The controller: cluster-wide allocation and policy evaluation.
 *
 * One `reconcile()` pass converges the store from what it holds, so a
 * restarted controller (or two in turn) reaches the same state:
 * 1. Networks: accepted or not (subnets parse, no overlap), an id for each
 *    accepted one (kept forever once in status), `Accepted` / `Ready`.
 * 2. Nodes: a locator from the Topology pool for every Node; a Node gone
 *    for longer than `nodeGrace` gives its blocks back and loses its locator
 *    (timed from when this process first saw it gone: a restart can only
 *    delay a release, never hasten it).
 * 3. Pods scheduled to a node: bound to a network by the binding policies
 *    (once: the NetworkEndpoint of the pod's UID keeps its network), then
 *    `l3` blocks with room on that node, or an `l2` address from the subnet.
 * 4. Leaks: the bindings of deleted pods (EndpointCollector) and addresses
 *    whose owner is gone (AddressCollector), each after two sightings and a
 *    grace period; empty blocks back to the pool after their grace.
 * 5. Services: bound continuously (ServiceBinder); the network is recorded
 *    in annotation `lace-cni.io/network`, with an event when it moves, and
 *    removed (Warning event) when no policy binds the service any more.
 *    Status conditions say why, and whether the pods its endpoints come
 *    from (its selector's, or its EndpointSlices') are bound to its
 *    network (service_status.ts); a Warning event names
 *    the pods on another network when that set changes.
 * 6. Usage: each `l3`/`l2` network's `status.usage` (IPAM's `networkUsage`),
 *    written when it changed; only networks whose Allocations moved are
 *    counted again (all of them without informers).
 * 7. The desired-state builder is fed what the store now holds.
 *
 * `start()` runs informers that feed the builder event by event and ask
 * for a (debounced) reconcile when something allocation depends on moves,
 * plus a periodic one.
 *
 * @example
 * const controller = new Controller(store, { defaultNetwork: "default" });
 * await controller.reconcile();
 * controller.builder.stateFor("node-1");
 */
import {
  AddressCollector,
  type AddressingKind,
  networkGateway,
  type NetworkTypeLookup,
  typeDeclarations,
  addressRequestFor,
  type Allocation,
  BindingRules,
  BlockAllocator,
  type Clock,
  type Condition,
  GlobalAllocator,
  isLaceError,
  networkUsage,
  type NetworkUsage,
  isPoolRecord,
  NETWORK_LABEL,
  type Network,
  type NetworkBindingPolicy,
  type NetworkEndpoint,
  podHasFinished,
  bindPod,
  type Resource,
  retryOnConflict,
  type RuleExtensionSet,
  ServiceBinder,
  SERVICE_NETWORK_ANNOTATION,
  type Store,
  systemClock,
  type Topology,
} from "../../core/mod.ts";
import { DesiredStateBuilder } from "../../core/controller/mod.ts";
import { Informer } from "../store/informer.ts";
import { EndpointCollector, livePods } from "./endpoint_collector.ts";
import { EventRecorder } from "./events.ts";
import { assignLocators } from "./locators.ts";
import { conditionsSay, mergeConditions } from "./conditions.ts";
import { judgeNetworks, networkConditions, type NetworkVerdict } from "./network_status.ts";
import { PODS_ON_NETWORK, PodsBySelector, SERVICE_CONDITIONS, serviceConditions } from "./service_status.ts";

/** The annotation a Service's network is recorded in (defined in core, where the Services' forwarding reads it). */
export { SERVICE_NETWORK_ANNOTATION };

export interface ControllerOptions {
  clock?: Clock;
  /** How long (ms) a deleted Node keeps its blocks and locator, in case it comes back. Default 5 minutes. */
  nodeGrace?: number;
  /** How long (ms) an empty block that is not its node's last stays with the node. Default 10 minutes. */
  emptyBlockGrace?: number;
  /** How long (ms) an address whose owner is gone is kept (and it must be seen gone twice). Default 5 minutes. */
  addressGrace?: number;
  /** Where pods and services no binding policy matches go. */
  defaultNetwork?: string;
  extensions?: RuleExtensionSet;
  /** The loaded network types (the plugin registry): a type's declared addressing decides how its networks are addressed. */
  networkTypes: NetworkTypeLookup;
  /** Periodic reconcile (ms) once started. Default 30 s. */
  resyncMs?: number;
  /** Debounce (ms) of the reconcile an event asks for. Default 100 ms. */
  debounceMs?: number;
  log?: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
}

/** What one pass changed. */
export interface ReconcileReport {
  networkStatusWrites: number;
  locatorsAssigned: string[];
  nodesReleased: string[];
  blocksAcquired: string[];
  l2Addresses: number;
  addressesReclaimed: number;
  /** NetworkEndpoints of deleted pods released, as `namespace/name`. */
  bindingsReleased: string[];
  blocksReturned: string[];
  servicesMoved: number;
  /** Services whose network annotation was removed: no policy binds them any more. */
  servicesUnbound: number;
  /** Services whose lace-cni status conditions were written. */
  serviceStatusWrites: number;
  /** Networks whose `status.usage` was written. */
  usageWrites: string[];
}

/** Kinds the desired-state builder is fed. */
const BUILDER_KINDS = ["Topology", "Node", "Network", "NetworkRoutingPolicy", "Allocation", "NetworkEndpoint", "Neighbor", "FDBEntry", "Pod", "Service", "EndpointSlice"] as const;
/** Kinds whose changes call for a reconcile (allocation, ids, locators, bindings, a Service's PodsOnNetwork condition). */
const RECONCILE_KINDS = ["Topology", "Node", "Network", "Pod", "Service", "EndpointSlice", "Namespace", "NetworkBindingPolicy"] as const;

interface PodLike extends Resource {
  spec?: { nodeName?: string; hostNetwork?: boolean };
}

interface ServiceLike extends Resource {
  spec?: { selector?: Record<string, string> };
  status?: { conditions?: Condition[]; [field: string]: unknown };
}

const keyOf = (kind: string, name: string, namespace?: string) => `${kind}/${namespace ?? ""}/${name}`;

export class Controller {
  readonly builder: DesiredStateBuilder;
  readonly events: EventRecorder;
  private readonly clock: Clock;
  private readonly nodeGrace: number;
  private readonly blocks: BlockAllocator;
  private readonly collector: AddressCollector;
  private readonly endpointCollector: EndpointCollector;
  private readonly globals = new Map<string, GlobalAllocator>();
  private readonly goneSince = new Map<string, number>();
  private readonly warned = new Set<string>();
  private readonly fed = new Map<string, { kind: string; name: string; namespace?: string }>();
  private binding?: { key: string; rules: BindingRules; binder: ServiceBinder; services: Set<string> };
  /** Networks whose Allocations changed since their usage was last counted; null: all of them. */
  private usageDirty: Set<string> | null = null;
  private liveOwners = new Set<string>();
  private informers = new Map<string, Informer<Resource>>();
  private running?: Promise<ReconcileReport>;
  private again = false;
  private timer?: ReturnType<typeof setTimeout>;
  private interval?: ReturnType<typeof setInterval>;
  private readonly log: NonNullable<ControllerOptions["log"]>;

  constructor(private readonly store: Store, private readonly options: ControllerOptions) {
    this.clock = options.clock ?? systemClock;
    this.nodeGrace = options.nodeGrace ?? 300_000;
    this.log = options.log ?? (() => {});
    this.builder = new DesiredStateBuilder({ extensions: options.extensions, ...typeDeclarations(options.networkTypes) });
    this.events = new EventRecorder(store, this.clock, "lace-controller", (e) => this.log("warn", `Cannot record an event: ${(e as Error).message}`));
    this.blocks = new BlockAllocator(store, { clock: this.clock, emptyBlockGrace: options.emptyBlockGrace });
    this.collector = new AddressCollector(store, {
      clock: this.clock,
      grace: options.addressGrace,
      isAlive: (owner) => this.liveOwners.has(owner),
    });
    this.endpointCollector = new EndpointCollector(store, { clock: this.clock, grace: options.addressGrace });
  }

  /** One full pass; concurrent calls share the pass in flight and run one more after it. */
  reconcile(): Promise<ReconcileReport> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        let report: ReconcileReport;
        do {
          this.again = false;
          report = await this.pass();
        } while (this.again);
        return report;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Starts informers and the periodic reconcile; resolves after the first pass. */
  async start(): Promise<void> {
    const kinds = new Set<string>([...BUILDER_KINDS, ...RECONCILE_KINDS]);
    for (const kind of kinds) {
      const inf = new Informer<Resource>(this.store, kind);
      const feeds = (BUILDER_KINDS as readonly string[]).includes(kind);
      const triggers = (RECONCILE_KINDS as readonly string[]).includes(kind);
      const changed = (r: Resource) => {
        if (kind === "Allocation") this.allocationMoved(r);
        if (feeds) this.track(r);
        if (feeds) void this.builder.upsert(r).catch((e) => this.log("error", `Desired state update failed: ${(e as Error).message}`));
        if (triggers) this.soon();
      };
      inf.on("add", changed);
      inf.on("update", changed);
      inf.on("delete", (r) => {
        if (kind === "Allocation") this.allocationMoved(r);
        if (feeds) {
          this.fed.delete(keyOf(r.kind, r.metadata.name, r.metadata.namespace));
          void this.builder.remove(r.kind, r.metadata.name, r.metadata.namespace);
        }
        if (triggers || kind === "NetworkEndpoint") this.soon();
      });
      inf.on("error", (e) => this.log("warn", `Watch of ${kind} failed, relisting: ${(e as Error).message}`));
      this.informers.set(kind, inf);
    }
    await Promise.all([...this.informers.values()].map((i) => i.start()));
    await this.reconcile();
    this.interval = setInterval(() => this.soon(), this.options.resyncMs ?? 30_000);
  }

  async stop(): Promise<void> {
    if (this.interval) clearInterval(this.interval);
    if (this.timer) clearTimeout(this.timer);
    for (const i of this.informers.values()) i.stop();
    this.informers.clear();
    await this.running?.catch(() => {});
  }

  private soon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reconcile().catch((e) => this.log("error", `Reconcile failed: ${(e as Error).message}`));
    }, this.options.debounceMs ?? 100);
  }

  private async items<T extends Resource>(kind: string): Promise<T[]> {
    const inf = this.informers.get(kind);
    if (inf) return inf.list() as T[];
    return (await this.store.list<T>(kind)).items;
  }

  private async pass(): Promise<ReconcileReport> {
    const report: ReconcileReport = {
      networkStatusWrites: 0,
      locatorsAssigned: [],
      nodesReleased: [],
      blocksAcquired: [],
      l2Addresses: 0,
      addressesReclaimed: 0,
      bindingsReleased: [],
      blocksReturned: [],
      servicesMoved: 0,
      servicesUnbound: 0,
      serviceStatusWrites: 0,
      usageWrites: [],
    };
    const verdicts = await this.reconcileNetworks(report);
    await this.reconcileNodes(report);
    const pods = await this.items<PodLike>("Pod");
    this.liveOwners = new Set();
    for (const p of pods) {
      // A finished pod never gets another sandbox: its addresses go back after the grace period.
      if (podHasFinished(p)) continue;
      try {
        this.liveOwners.add(addressRequestFor(p).owner);
      } catch {
        // A pod without uid or owner holds no address.
      }
    }
    const policies = await this.items<NetworkBindingPolicy>("NetworkBindingPolicy");
    const rules = this.bindingRules(policies);
    await this.allocateForPods(pods, rules, verdicts, report);
    await this.collect(pods, verdicts, report);
    await this.reconcileUsage(verdicts, report);
    await this.reconcileServices(pods, report);
    if (this.informers.size === 0) await this.feedBuilder();
    await this.builder.settled();
    return report;
  }

  // ------------------------------------------------------------ networks

  private async reconcileNetworks(report: ReconcileReport): Promise<Map<string, NetworkVerdict>> {
    const networks = await this.items<Network>("Network");
    const verdicts = judgeNetworks(networks, this.options.networkTypes);
    const now = new Date(this.clock.now()).toISOString();
    for (const n of networks) {
      const v = verdicts.get(n.metadata.name)!;
      const conditions = networkConditions(n, v, now);
      const idChange = v.accepted && n.status?.id === undefined && v.id !== undefined;
      if (!idChange && JSON.stringify(conditions) === JSON.stringify(n.status?.conditions ?? [])) continue;
      await retryOnConflict(async () => {
        const cur = await this.store.get<Network>("Network", n.metadata.name);
        if (!cur) return;
        const status = { ...cur.status };
        // An id, once recorded, is never changed: SIDs and tables on every node are built from it.
        if (status.id === undefined && v.accepted && v.id !== undefined) status.id = v.id;
        status.conditions = networkConditions(cur, v, now);
        cur.status = status;
        await this.store.updateStatus(cur);
      });
      report.networkStatusWrites++;
      const was = n.status?.conditions?.find((c) => c.type === "Accepted");
      if (!v.accepted && (was?.status !== "False" || was.reason !== v.reason)) {
        await this.events.record(n, "Warning", v.reason, v.message);
      } else if (idChange) {
        await this.events.record(n, "Normal", "Accepted", `Network "${n.metadata.name}" accepted with id ${v.id}`);
      }
    }
    return verdicts;
  }

  // ------------------------------------------------------------ nodes and locators

  private async reconcileNodes(report: ReconcileReport): Promise<void> {
    const now = this.clock.now();
    const nodes = new Set((await this.items<Resource>("Node")).map((n) => n.metadata.name));
    const topology = (await this.items<Topology>("Topology")).find((t) => t.metadata.name === "default");
    const known = new Set<string>(Object.keys(topology?.status?.locators ?? {}));
    for (const a of await this.items<Allocation>("Allocation")) {
      if (!isPoolRecord(a) && a.spec && !a.spec.node.endsWith(".lace-cni.io")) known.add(a.spec.node);
    }
    const released: string[] = [];
    for (const node of known) {
      if (nodes.has(node)) {
        this.goneSince.delete(node);
        continue;
      }
      const since = this.goneSince.get(node);
      if (since === undefined) {
        this.goneSince.set(node, now);
        continue;
      }
      if (now - since < this.nodeGrace) continue;
      await this.blocks.releaseNode(node);
      this.goneSince.delete(node);
      released.push(node);
      report.nodesReleased.push(node);
    }
    if (!topology?.spec) return;
    const assignment = assignLocators(topology, nodes);
    for (const node of released) delete assignment.locators[node];
    if (assignment.exhausted.length) {
      const key = `locators:${assignment.exhausted.join(",")}`;
      if (!this.warned.has(key)) {
        this.warned.add(key);
        await this.events.record(topology, "Warning", "LocatorPoolExhausted", `Topology "default": locator pool ${topology.spec.locatorPool} has no free /${topology.spec.locatorLength} for nodes ${assignment.exhausted.join(", ")}`);
      }
    }
    if (!assignment.added.length && !released.length) return;
    await retryOnConflict(async () => {
      const cur = await this.store.get<Topology>("Topology", "default");
      if (!cur?.spec) return;
      const again = assignLocators(cur, nodes);
      for (const node of released) delete again.locators[node];
      cur.status = { ...cur.status, locators: again.locators };
      await this.store.updateStatus(cur);
    });
    report.locatorsAssigned.push(...assignment.added);
    for (const node of released) {
      await this.events.record(topology, "Normal", "NodeReleased", `Node "${node}" has been gone for ${Math.round(this.nodeGrace / 1000)} s: its blocks went back to the pools and its locator was freed`);
    }
  }

  // ------------------------------------------------------------ pods

  private bindingRules(policies: NetworkBindingPolicy[]): BindingRules {
    const key = policies.map((p) => `${p.metadata.name}@${p.metadata.resourceVersion ?? JSON.stringify(p.spec)}`).sort().join(",");
    if (this.binding?.key === key) return this.binding.rules;
    const rules = BindingRules.compile(policies, { defaultNetwork: this.options.defaultNetwork, extensions: this.options.extensions });
    // The binder owns the rules it is given; it re-decides every service on the next pass.
    this.binding = { key, rules, binder: new ServiceBinder(rules), services: new Set() };
    return rules;
  }

  private async allocateForPods(pods: PodLike[], rules: BindingRules, verdicts: Map<string, NetworkVerdict>, report: ReconcileReport): Promise<void> {
    const endpoints = new Map<string, NetworkEndpoint>();
    for (const e of await this.items<NetworkEndpoint>("NetworkEndpoint")) {
      const pod = e.spec?.pod;
      endpoints.set(`${pod?.namespace ?? e.metadata.namespace}/${pod?.name ?? e.metadata.name}`, e);
    }
    const namespaces = new Map((await this.items<Resource>("Namespace")).map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
    const networks = new Map((await this.items<Network>("Network")).map((n) => [n.metadata.name, n]));
    /** (network, node) → pods there still without an endpoint. */
    const wanted = new Map<string, { network: string; node: string; pods: PodLike[] }>();
    for (const pod of pods) {
      const node = pod.spec?.nodeName;
      if (!node || pod.spec?.hostNetwork || pod.metadata.deletionTimestamp) continue;
      const ns = pod.metadata.namespace ?? "default";
      let network: string;
      try {
        const b = await bindPod(rules, pod, { endpoint: endpoints.get(`${ns}/${pod.metadata.name}`), namespaceLabels: namespaces.get(ns), node });
        // Decided once, at creation: a pod with its own endpoint has its addresses already.
        if (b.kept) continue;
        network = b.network;
      } catch (e) {
        await this.warnOnce(pod, "NoBindingPolicy", (e as Error).message);
        continue;
      }
      if (!verdicts.get(network)?.accepted) {
        await this.warnOnce(pod, "NetworkNotReady", `Pod "${ns}/${pod.metadata.name}" binds to network "${network}", which ${networks.has(network) ? "is not accepted" : "does not exist"}`);
        continue;
      }
      const k = `${network}\0${node}`;
      let w = wanted.get(k);
      if (!w) wanted.set(k, w = { network, node, pods: [] });
      w.pods.push(pod);
    }
    for (const { network, node, pods: waiting } of wanted.values()) {
      const net = networks.get(network)!;
      try {
        const addressing = this.addressingOf(net);
        if (addressing === "host-local") {
          for (const [field, family] of [["ipv4Subnet", 4], ["ipv6Subnet", 6]] as const) {
            if (!net.spec?.[field]) continue;
            const got = await this.blocks.acquire(network, node, family, waiting.length);
            report.blocksAcquired.push(...got.map((p) => `${network}/${node}/${p}`));
          }
        } else if (addressing === "global") {
          let g = this.globals.get(network);
          if (!g) this.globals.set(network, g = new GlobalAllocator(this.store, { network, clock: this.clock, gateway: networkGateway(this.options.networkTypes, net) }));
          for (const pod of waiting) {
            await g.allocate(addressRequestFor(pod));
            report.l2Addresses++;
          }
        }
      } catch (e) {
        if (!isLaceError(e)) throw e;
        for (const pod of waiting) await this.warnOnce(pod, e.code === "SUBNET_EXHAUSTED" ? "SubnetExhausted" : "AllocationFailed", e.message);
      }
    }
  }



  /** How a network's type hands out addresses (its plugin's declaration); undefined for a type no plugin provides. */
  private addressingOf(net: Network): AddressingKind | undefined {
    return this.options.networkTypes.get(net.spec?.type ?? "")?.addressing;
  }

  private async warnOnce(obj: Resource, reason: string, message: string): Promise<void> {
    const key = `${obj.kind}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}/${obj.metadata.uid ?? ""}/${reason}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log("warn", message);
    await this.events.record(obj, "Warning", reason, message);
  }

  // ------------------------------------------------------------ leaks

  private async collect(pods: PodLike[], verdicts: Map<string, NetworkVerdict>, report: ReconcileReport): Promise<void> {
    // Endpoints before addresses: an endpoint never names addresses handed to someone else.
    const endpoints = await this.items<NetworkEndpoint>("NetworkEndpoint");
    report.bindingsReleased = await this.endpointCollector.collect(endpoints, livePods(pods));
    for (const key of report.bindingsReleased) {
      const ep = endpoints.find((e) => `${e.metadata.namespace}/${e.metadata.name}` === key)!;
      await this.events.record(ep, "Normal", "BindingReleased", `Pod "${key}" has been gone for ${Math.round(this.endpointCollector.grace / 1000)} s: its binding to network "${ep.spec!.network}" is released`);
    }
    report.addressesReclaimed = (await this.collector.collect()).length;
    for (const n of await this.items<Network>("Network")) {
      if (this.addressingOf(n) !== "host-local" || !verdicts.get(n.metadata.name)?.accepted) continue;
      report.blocksReturned.push(...(await this.blocks.returnEmptyBlocks(n.metadata.name)).map((p) => `${n.metadata.name}/${p}`));
    }
  }

  // ------------------------------------------------------------ usage

  private allocationMoved(r: Resource): void {
    const network = (r as Allocation).spec?.network ?? r.metadata.labels?.[NETWORK_LABEL];
    if (network && this.usageDirty) this.usageDirty.add(network);
  }

  /** Writes `status.usage` of the accepted `l3` (host-local) and `l2` (global) networks whose usage changed. */
  private async reconcileUsage(verdicts: Map<string, NetworkVerdict>, report: ReconcileReport): Promise<void> {
    // Without informers nothing tells us which Allocations moved: count every network.
    const dirty = this.informers.size === 0 ? null : this.usageDirty;
    this.usageDirty = new Set();
    for (const n of await this.items<Network>("Network")) {
      const name = n.metadata.name;
      const addressing = this.addressingOf(n);
      if (addressing === "none" || addressing === undefined || !verdicts.get(name)?.accepted) continue;
      if (dirty && !dirty.has(name)) continue;
      let usage: NetworkUsage;
      try {
        usage = await networkUsage(this.store, name, addressing);
      } catch (e) {
        if (!isLaceError(e)) throw e;
        this.log("warn", `Cannot count the usage of Network "${name}": ${e.message}`);
        continue;
      }
      if (sameUsage(n.status?.usage, usage)) continue;
      let written = false;
      await retryOnConflict(async () => {
        const cur = await this.store.get<Network>("Network", name);
        if (!cur || sameUsage(cur.status?.usage, usage)) return;
        cur.status = { ...cur.status, usage };
        await this.store.updateStatus(cur);
        written = true;
      });
      if (written) report.usageWrites.push(name);
    }
  }

  // ------------------------------------------------------------ services

  private async reconcileServices(pods: PodLike[], report: ReconcileReport): Promise<void> {
    const b = this.binding!;
    for (const ns of await this.items<Resource>("Namespace")) await b.binder.setNamespace(ns.metadata.name, ns.metadata.labels ?? {});
    const selected = new PodsBySelector(pods, await this.items<NetworkEndpoint>("NetworkEndpoint"), await this.items<Resource>("EndpointSlice"));
    const seen = new Set<string>();
    for (const svc of await this.items<ServiceLike>("Service")) {
      const ns = svc.metadata.namespace ?? "default";
      const key = `${ns}/${svc.metadata.name}`;
      seen.add(key);
      await b.binder.setService({ namespace: ns, name: svc.metadata.name, labels: svc.metadata.labels, annotations: svc.metadata.annotations });
      const binding = b.binder.binding(ns, svc.metadata.name)!;
      const current = svc.metadata.annotations?.[SERVICE_NETWORK_ANNOTATION] ?? null;
      if (binding.network === null && current !== null) {
        // A network no policy gives any more is no context for routing to the service: it goes.
        await this.store.patch("Service", svc.metadata.name, ns, { metadata: { annotations: { [SERVICE_NETWORK_ANNOTATION]: null } } });
        report.servicesUnbound++;
        await this.events.record(svc, "Warning", "NetworkRemoved", `Service "${key}" matches no binding policy any more: its network "${current}" is removed. ${binding.error ?? ""}`.trim());
      } else if (binding.network === null) {
        if (binding.error) await this.warnOnce(svc, "NoBindingPolicy", binding.error);
      } else if (binding.network !== current) {
        await this.store.patch("Service", svc.metadata.name, ns, { metadata: { annotations: { [SERVICE_NETWORK_ANNOTATION]: binding.network } } });
        report.servicesMoved++;
        const why = binding.policy ? `policy "${binding.policy}"` : "the default network";
        await this.events.record(
          svc,
          "Normal",
          "NetworkChanged",
          current === null
            ? `Service "${key}" bound to network "${binding.network}" by ${why}`
            : `Service "${key}" moved from network "${current}" to "${binding.network}" by ${why}`,
        );
      }
      const pods = binding.network === null ? { selected: 0, off: [] } : selected.offNetwork(svc, binding.network);
      const wanted = serviceConditions({ service: key, ...binding, selected: pods.selected, offNetwork: pods.off });
      await this.writeServiceConditions(svc, wanted, report);
    }
    for (const key of b.services) {
      if (seen.has(key)) continue;
      const [ns, name] = key.split("/");
      await b.binder.removeService(ns, name);
    }
    b.services = seen;
  }

  /** Writes the service's lace-cni conditions when they changed, with a Warning event when its pods moved off its network. */
  private async writeServiceConditions(svc: ServiceLike, wanted: Condition[], report: ReconcileReport): Promise<void> {
    const before = svc.status?.conditions ?? [];
    if (conditionsSay(before, SERVICE_CONDITIONS, wanted)) return;
    const now = new Date(this.clock.now()).toISOString();
    await retryOnConflict(async () => {
      const cur = await this.store.get<ServiceLike>("Service", svc.metadata.name, svc.metadata.namespace);
      if (!cur) return;
      cur.status = { ...cur.status, conditions: mergeConditions(cur.status?.conditions ?? [], SERVICE_CONDITIONS, wanted, now, cur.metadata.generation) };
      await this.store.updateStatus(cur);
    });
    report.serviceStatusWrites++;
    const off = wanted.find((c) => c.type === PODS_ON_NETWORK && c.status === "False");
    if (off && before.find((c) => c.type === PODS_ON_NETWORK)?.message !== off.message) {
      await this.events.record(svc, "Warning", off.reason, off.message);
    }
  }

  // ------------------------------------------------------------ desired state

  private track(r: Resource): void {
    this.fed.set(keyOf(r.kind, r.metadata.name, r.metadata.namespace), { kind: r.kind, name: r.metadata.name, namespace: r.metadata.namespace });
  }

  /** Without informers (a one-off pass, `lace plan`): feeds the builder what the store holds now. */
  private async feedBuilder(): Promise<void> {
    const all: Resource[] = [];
    for (const kind of BUILDER_KINDS) all.push(...(await this.store.list<Resource>(kind)).items);
    const present = new Set(all.map((r) => keyOf(r.kind, r.metadata.name, r.metadata.namespace)));
    for (const [key, r] of this.fed) {
      if (present.has(key)) continue;
      this.fed.delete(key);
      void this.builder.remove(r.kind, r.name, r.namespace);
    }
    for (const r of all) this.track(r);
    await this.builder.upsertAll(all);
  }
}

function sameUsage(a: NetworkUsage | undefined, b: NetworkUsage): boolean {
  return (a?.blocksUsed ?? null) === (b.blocksUsed ?? null) && (a?.blocksFree ?? null) === (b.blocksFree ?? null) &&
    (a?.addressesUsed ?? null) === (b.addressesUsed ?? null) && (a?.addressesFree ?? null) === (b.addressesFree ?? null);
}
