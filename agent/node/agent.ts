/**
 * The node agent: serves CNI requests for its node and keeps the node's
 * dataplane equal to its desired state.
 *
 * - Informers over the store feed the desired-state engine (restricted to
 *   this node) and the binding rules; a changed state is applied, one apply
 *   at a time, never before every informer has synced (an early apply of a
 *   half-known state would tear down running pods after a restart).
 * - ADD binds the pod once: the NetworkEndpoint of the pod's UID keeps its
 *   network (and its addresses, or the same ones again where they are still
 *   free) for every sandbox the pod gets; an endpoint a deleted pod of the
 *   same name left is replaced by a fresh binding. It allocates from the
 *   node's block (l3) or the network's subnet (l2), publishes the
 *   NetworkEndpoint, applies, attaches the pod; on failure it undoes each
 *   step it made, in reverse.
 * - DEL (and GC) end an attachment: while the pod will get another sandbox
 *   the endpoint is kept, detached (`spec.detachedAt`), with its network and
 *   addresses; for a pod being deleted, finished or gone the endpoint is
 *   deleted and its addresses released. The controller collects what a pod
 *   deleted between sandboxes leaves (see binding_lifetime.ts). DEL is
 *   idempotent: a missing link, namespace or endpoint is success. It
 *   answers once the store is written; the slow veth deletion follows.
 * - Nothing lives only in memory: a restarted agent rebuilds from the store
 *   and the kernel, and its first apply of an unchanged state writes nothing.
 *
 * @example
 * const agent = new NodeAgent({ store, node: "node-1", dataplane, states: builder });
 * await agent.start();
 * const reply = await agent.handle(cniRequest);
 */
import { createHash } from "node:crypto";
import {
  type AddressAllocator, type DataplaneCapabilities, type AddressRequest, addressRequestFor, type Assignment, BindingRules, type EarlyAssignment, BlockAllocator, type BlockSource,
  type Clock, GlobalAllocator, HostLocalAllocator, IPAddress, isLaceError, isStoreError, type Network, type NetworkBindingPolicy,
  bindPod, type NetworkEndpoint, type NetworkTypeDefinition, type NetworkTypeLookup, networkGateway, type Resource, type RuleExtensionSet, type Store, systemClock,
} from "../../core/mod.ts";
import { endpointMac } from "../../core/controller/mod.ts";
import { Informer } from "../store/informer.ts";
import { L2Learner, type L2LearnerOptions } from "./l2_learning.ts";
import { publishL2Entries, withdrawL2Entries } from "./l2_entries.ts";
import { type AgentReply, CNI_ERRORS, type CniRequest, type CniResult } from "../cni/spec.ts";
import type { NodeStateSource, PodAttachment, PodDataplane } from "./contracts.ts";
import type { AgentMetrics } from "./metrics.ts";
import {
  addressPreferences, CONTAINER_ID_ANNOTATION, detachedEndpoint, endpointOwnedBy, IFNAME_ANNOTATION, NETNS_ANNOTATION, podOutlivesSandbox,
} from "./binding_lifetime.ts";

export { CONTAINER_ID_ANNOTATION, IFNAME_ANNOTATION, NETNS_ANNOTATION };

/** The kinds the desired state is computed from (EndpointSlice: a Service's endpoints, where it has slices). */
export const STATE_KINDS = ["Topology", "Network", "Allocation", "NetworkEndpoint", "NetworkRoutingPolicy", "Neighbor", "FDBEntry", "Node", "Pod", "Service", "EndpointSlice"] as const;

/** How long changes may gather before they are applied together. */
export const APPLY_COALESCE_MS = 50;

/** The structured logger the agent writes to (pino's shape). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} };

export interface NodeAgentOptions {
  store: Store;
  node: string;
  dataplane: PodDataplane;
  states: NodeStateSource;
  /** The loaded network types (the plugin registry): a type's declared addressing and forwarding decide what the agent does. */
  networkTypes: NetworkTypeLookup;
  /** Where l3 blocks come from. Default: a BlockAllocator over the store (compare-and-swap, safe beside the controller). */
  blocks?: BlockSource;
  /** Where pods that no binding policy matches go. */
  defaultNetwork?: string;
  /** Plugin facts and operators for binding policy conditions. */
  extensions?: RuleExtensionSet;
  log?: Logger;
  metrics?: AgentMetrics;
  /** The time a detached endpoint records. Default: the system clock. */
  clock?: Clock;
  /** l2 learning: how often the dataplane's sightings are read (ms; 0: never), how long a silent learned entry lives, and when a moving MAC is frozen. */
  learning?: { everyMs?: number; ageMs?: number; flap?: L2LearnerOptions["flap"] };
  /**
   * How often the node's state is applied again when nothing changed (ms; 0: never): the dataplane
   * then reads the kernel back and repairs what was changed behind its back. Default 30 s.
   */
  resyncMs?: number;
}

/** The host-side interface name of an attachment: stable, unique, at most 15 characters. */
export function hostIfnameFor(containerId: string, ifname: string): string {
  return "lc" + createHash("sha256").update(`${containerId}/${ifname}`).digest("hex").slice(0, 12);
}

/** A failure with the CNI error code the runtime should see. */
export class CniFailure extends Error {
  constructor(readonly code: number, message: string, readonly details?: string) {
    super(message);
    this.name = "CniFailure";
  }
}

type Pod = Resource<unknown, { phase?: string }>;

export class NodeAgent {
  readonly node: string;
  private readonly store: Store;
  private readonly dp: PodDataplane;
  private readonly states: NodeStateSource;
  private readonly types: NetworkTypeLookup;
  private readonly blocks: BlockSource;
  private readonly log: Logger;
  private readonly metrics?: AgentMetrics;
  private readonly clock: Clock;
  private readonly informers: Informer<Resource>[] = [];
  private readonly binding: BindingRules;
  private readonly allocators = new Map<string, AddressAllocator>();
  /** Last resourceVersion fed to the state engine per object, so a late event never rolls it back. */
  private readonly fed = new Map<string, { rv: number; deleted: boolean }>();
  private readonly podLocks = new Map<string, Promise<unknown>>();
  private readonly phases = new WeakMap<CniRequest, Record<string, number>>();
  private synced = false;
  private applied = false;
  /** Network → gateways on the node, as of the last successful apply. */
  private appliedNets = new Map<string, Set<string>>();
  private lastApplyError?: string;
  private applyChain: Promise<void> = Promise.resolve();
  private queuedApply?: Promise<void>;
  private forwarding?: Set<string>;
  private caps?: DataplaneCapabilities;
  /** An apply of the dataplane is under way (its state was taken before it started). */
  private applying = false;
  private applyTimer?: ReturnType<typeof setTimeout>;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private learnTimer?: ReturnType<typeof setInterval>;
  private resyncTimer?: ReturnType<typeof setInterval>;
  private readonly resyncMs: number;
  private readonly learner: L2Learner;
  private readonly learnEveryMs: number;
  private learning = false;
  private lastExpiry = 0;
  private stopped = false;

  constructor(opts: NodeAgentOptions) {
    this.node = opts.node;
    this.store = opts.store;
    this.dp = opts.dataplane;
    this.states = opts.states;
    this.types = opts.networkTypes;
    this.learner = new L2Learner(opts.store, opts.node, {
      ageMs: opts.learning?.ageMs, flap: opts.learning?.flap, clock: opts.clock,
      onFlap: (network, mac, node, until) => this.log.warn({ network, mac, node, until }, "a MAC flaps between nodes: frozen where it is"),
    });
    // A sighting read costs one ring-buffer poll (a syscall) when nothing was seen: cheap enough to ask often.
    this.learnEveryMs = opts.learning?.everyMs ?? 20;
    this.resyncMs = opts.resyncMs ?? 30_000;
    this.blocks = opts.blocks ?? new BlockAllocator(opts.store);
    this.log = opts.log ?? silent;
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? systemClock;
    this.binding = new BindingRules({ defaultNetwork: opts.defaultNetwork, extensions: opts.extensions });
    this.states.onChange((node) => {
      if (node === this.node && this.synced) this.applySoon();
    });
  }

  /** Lists and watches the store; resolves once every cache is complete and the node's state applied. */
  async start(): Promise<void> {
    const kinds: string[] = [...STATE_KINDS, "NetworkBindingPolicy", "Namespace"];
    for (const kind of kinds) {
      const inf = new Informer<Resource>(this.store, kind, { resyncMs: 0 });
      inf.on("add", (o) => this.feed(o));
      inf.on("update", (o) => this.feed(o));
      inf.on("delete", (o) => this.unfeed(o));
      inf.on("error", (e) => this.log.warn({ kind, err: String((e as Error)?.message ?? e) }, "store watch failed; relisting"));
      this.informers.push(inf);
    }
    await Promise.all(this.informers.map((i) => i.start()));
    this.synced = true;
    this.log.info({ node: this.node }, "store caches synced");
    // A failed first apply is retried (and reported by STATUS); the agent keeps serving.
    await this.requestApply().catch(() => undefined);
    await this.removeStrayPorts();
    if (this.dp.sightings && this.learnEveryMs > 0) this.learnTimer = setInterval(() => void this.learn(), this.learnEveryMs);
    if (this.resyncMs > 0) this.resyncTimer = setInterval(() => this.applySoon(), this.resyncMs);
  }

  /**
   * One round of l2 learning: what the dataplane saw becomes learned
   * Neighbor and FDBEntry resources (l2_learning.ts); now and then, this
   * node's silent learned entries age out. Rounds never overlap.
   */
  async learn(): Promise<void> {
    if (this.learning || this.stopped || !this.dp.sightings) return;
    this.learning = true;
    try {
      const seen = await this.dp.sightings();
      if (seen.length) await this.learner.observe(seen);
      if (this.clock.now() - this.lastExpiry >= this.learner.ageMs / 10) {
        this.lastExpiry = this.clock.now();
        await this.learner.expire();
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "l2 learning round failed; the next one retries");
    } finally {
      this.learning = false;
    }
  }

  /**
   * Removes the pod ports no endpoint of this node claims: what a crash left
   * between a DEL's reply and the removal of its link, or in the middle of
   * an ADD the runtime saw fail. Runs before the CNI socket opens, so no ADD
   * is under way.
   */
  private async removeStrayPorts(): Promise<void> {
    const claimed = new Set<string>();
    for (const ep of this.cache<NetworkEndpoint>("NetworkEndpoint")?.list() ?? []) {
      if (ep.spec?.node !== this.node) continue;
      if (ep.spec.interface) claimed.add(ep.spec.interface);
      const cid = ep.metadata.annotations?.[CONTAINER_ID_ANNOTATION];
      if (cid) claimed.add(hostIfnameFor(cid, ep.metadata.annotations?.[IFNAME_ANNOTATION] ?? "eth0"));
    }
    try {
      for (const port of await this.dp.podPorts()) {
        if (claimed.has(port)) continue;
        await this.dp.detachPod({ hostIfname: port });
        this.log.info({ hostIfname: port }, "removed a pod port no endpoint claims");
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "could not remove stray pod ports; CNI GC removes them later");
    }
  }

  async stop(): Promise<void> {
    for (const i of this.informers) i.stop();
    clearTimeout(this.applyTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.learnTimer);
    clearInterval(this.resyncTimer);
    this.applyTimer = this.retryTimer = this.learnTimer = this.resyncTimer = undefined;
    this.stopped = true;
    await this.detached();
    await this.applyChain;
  }

  /** Whether the last apply put the network's forwarding context, with these gateways, on the node. */
  private hasApplied(network: string, gateways: string[]): boolean {
    const have = this.appliedNets.get(network);
    return !!have && gateways.every((g) => have.has(g));
  }

  /** The network's forwarding context as applied on the node, holding these gateways; TRY_AGAIN_LATER when not yet. */
  private appliedForwarding(network: string, gateways: string[]): { networkId: number; mtu: number } {
    const state = this.states.stateFor(this.node);
    const fwd = state.networks.find((n) => n.name === network);
    if (!fwd || fwd.forwarding === "underlay" || !state.locator || !this.hasApplied(network, gateways)) {
      throw new CniFailure(CNI_ERRORS.TRY_AGAIN_LATER, `Network "${network}" is not in the applied state of node ${this.node} yet`, this.lastApplyError ?? "the controller has not given the network an id or the node a locator yet");
    }
    return { networkId: fwd.id, mtu: fwd.mtu };
  }

  /** Resolves once every event fed so far has been applied (tests, shutdown). */
  async flush(): Promise<void> {
    await this.states.settled?.();
    await this.requestApply();
  }

  /** Whether the agent can serve ADD: caches synced and the node's state applied. */
  get ready(): boolean {
    return this.synced && this.applied;
  }

  private cache<T extends Resource>(kind: string): Informer<T> | undefined {
    return this.informers.find((i) => i.kind === kind) as Informer<T> | undefined;
  }

  private keyOf(o: Resource): string {
    return `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  }

  /** Feeds an object to the state engine unless a newer version was fed already. */
  private feed(o: Resource): void {
    if (o.kind === "NetworkBindingPolicy") {
      try {
        this.binding.upsert(o as NetworkBindingPolicy);
      } catch (e) {
        this.log.warn({ policy: o.metadata.name, err: (e as Error).message }, "binding policy left out");
      }
      return;
    }
    if (o.kind === "Namespace") return;
    const key = this.keyOf(o);
    const rv = Number(o.metadata.resourceVersion);
    const seen = this.fed.get(key);
    if (seen && Number.isFinite(rv) && rv <= seen.rv) return;
    this.fed.set(key, { rv: Number.isFinite(rv) ? rv : 0, deleted: false });
    void this.states.upsert(o);
  }

  private unfeed(o: Resource): void {
    if (o.kind === "NetworkBindingPolicy") {
      this.binding.remove(o.metadata.name);
      return;
    }
    if (o.kind === "Namespace") return;
    const key = this.keyOf(o);
    const rv = Number(o.metadata.resourceVersion);
    const seen = this.fed.get(key);
    this.fed.set(key, { rv: Math.max(seen?.rv ?? 0, Number.isFinite(rv) ? rv : 0), deleted: true });
    if (seen?.deleted) return;
    void this.states.remove(o.kind, o.metadata.name, o.metadata.namespace);
  }

  /**
   * Applies soon: changes that arrive together (a burst of pods, a policy
   * touching many networks) share one apply, and a pod's own ADD or DEL does
   * not wait for the apply that follows it.
   */
  private applySoon(): void {
    if (this.applyTimer || this.stopped) return;
    this.applyTimer = setTimeout(() => {
      this.applyTimer = undefined;
      void this.requestApply().catch(() => undefined);
    }, APPLY_COALESCE_MS);
  }

  /**
   * Applies the node's current desired state. Requests made while an apply
   * waits to start share it; one apply runs at a time.
   */
  requestApply(): Promise<void> {
    if (this.queuedApply) return this.queuedApply;
    const run = this.applyChain.then(() => {
      this.queuedApply = undefined;
      return this.applyOnce();
    });
    this.queuedApply = run;
    this.applyChain = run.catch(() => undefined);
    return run;
  }

  private async applyOnce(): Promise<void> {
    if (!this.synced) return;
    await this.states.settled?.();
    const state = this.states.stateFor(this.node);
    if (!state.locator) {
      // Without a locator there are no SIDs: applying would only tear down. The controller assigns one.
      this.lastApplyError = `node ${this.node} has no locator in Topology/default status yet`;
      return;
    }
    const t0 = performance.now();
    this.applying = true;
    try {
      const report = await this.dp.apply(state);
      this.applied = true;
      this.appliedNets = new Map(state.networks.map((n) => [n.name, new Set(n.gateways)]));
      this.lastApplyError = undefined;
      this.metrics?.applied("ok", (performance.now() - t0) / 1000, report.writes);
      if (report.writes > 0) this.log.info({ revision: state.revision, ...report }, "applied the node's desired state");
    } catch (e) {
      this.lastApplyError = (e as Error).message;
      this.metrics?.applied("error", (performance.now() - t0) / 1000, 0);
      this.log.error({ revision: state.revision, err: this.lastApplyError }, "apply failed; retrying in 1 s");
      if (!this.retryTimer && !this.stopped) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.applySoon();
        }, 1000);
      }
      throw e;
    } finally {
      this.applying = false;
    }
  }

  /** Serves one CNI request; never throws. */
  async handle(req: CniRequest): Promise<AgentReply> {
    const t0 = performance.now();
    let reply: AgentReply;
    try {
      reply = await this.dispatch(req);
    } catch (e) {
      reply = toReply(e);
    }
    const outcome = reply.ok ? "ok" : `error_${reply.code}`;
    this.metrics?.cni(req.command, outcome, (performance.now() - t0) / 1000);
    // ADD's steps, as ms since the request at which each ended: where a slow pod start went.
    const fields = { command: req.command, containerId: req.containerId, pod: podRef(req), ms: Math.round(performance.now() - t0), phases: this.phases.get(req) };
    if (reply.ok) this.log.info(fields, `CNI ${req.command} done`);
    else this.log.warn({ ...fields, code: reply.code, msg: reply.msg }, `CNI ${req.command} failed`);
    return reply;
  }

  private dispatch(req: CniRequest): Promise<AgentReply> {
    switch (req.command) {
      case "STATUS":
        return Promise.resolve(this.status());
      case "GC":
        return this.gc(req);
      default: {
        const key = `${req.containerId}/${req.ifname}`;
        return this.locked(key, () => req.command === "ADD" ? this.add(req) : req.command === "DEL" ? this.del(req) : this.check(req));
      }
    }
  }

  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.podLocks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    this.podLocks.set(key, run);
    try {
      return await run;
    } finally {
      if (this.podLocks.get(key) === run) this.podLocks.delete(key);
    }
  }

  private status(): AgentReply {
    if (!this.synced) return { ok: false, code: CNI_ERRORS.UNAVAILABLE, msg: `The lace agent on ${this.node} has not synced with the store yet` };
    if (!this.applied) {
      return { ok: false, code: CNI_ERRORS.UNAVAILABLE, msg: `The lace agent on ${this.node} has not applied the node's desired state yet`, details: this.lastApplyError };
    }
    return { ok: true };
  }

  // ------------------------------------------------------------------ ADD

  /**
   * ADD reads the pod and the endpoint an earlier sandbox of it may have
   * left from the watch caches when the pod is there (the usual case: the
   * scheduler bound it to this node before the runtime asked). A cache
   * behind the store shows as a write conflict; the ADD, undone, then runs
   * again on fresh reads.
   */
  private async add(req: CniRequest): Promise<AgentReply> {
    if (!this.synced) throw new CniFailure(CNI_ERRORS.TRY_AGAIN_LATER, `The lace agent on ${this.node} is still syncing with the store`);
    const { namespace, name } = podOf(req);
    const cached = this.cache<Pod>("Pod")?.get(name, namespace);
    if (cached && (!req.args.K8S_POD_UID || cached.metadata.uid === req.args.K8S_POD_UID)) {
      try {
        return await this.addWith(req, cached, this.cache<NetworkEndpoint>("NetworkEndpoint")?.get(name, namespace), performance.now());
      } catch (e) {
        if (!isStoreError(e, "Conflict") && !isStoreError(e, "AlreadyExists")) throw e;
        this.log.info({ pod: `${namespace}/${name}`, err: (e as Error).message }, "ADD from the watch caches met a newer store: again on fresh reads");
      }
    }
    const t0 = performance.now();
    // Two independent store round trips: the pod and the endpoint an earlier sandbox of it may have left.
    const [pod, existing] = await Promise.all([
      this.store.get<Pod>("Pod", name, namespace),
      this.store.get<NetworkEndpoint>("NetworkEndpoint", name, namespace),
    ]);
    return this.addWith(req, pod, existing, t0);
  }

  private async addWith(req: CniRequest, pod: Pod | undefined, existing: NetworkEndpoint | undefined, t0: number): Promise<AgentReply> {
    const { namespace, name } = podOf(req);
    const containerId = req.containerId!;
    const ifname = req.ifname!;
    const netns = req.netns!;
    const hostIfname = hostIfnameFor(containerId, ifname);
    if (!pod) throw new CniFailure(CNI_ERRORS.UNKNOWN_POD, `Pod ${namespace}/${name} does not exist in the store`, "the runtime asked for a pod the API server does not know");
    if (req.args.K8S_POD_UID && pod.metadata.uid && req.args.K8S_POD_UID !== pod.metadata.uid) {
      throw new CniFailure(CNI_ERRORS.TRY_AGAIN_LATER, `Pod ${namespace}/${name} in the store has UID ${pod.metadata.uid}, the runtime asked for ${req.args.K8S_POD_UID}`);
    }

    const undo: { what: string; run: () => Promise<unknown> }[] = [];
    const phases: Record<string, number> = {};
    const mark = (what: string) => (phases[what] = Math.round((performance.now() - t0) * 10) / 10);
    // The pod's own binding, from an earlier sandbox; an endpoint of another UID is a deleted namesake's.
    const kept = existing?.spec && endpointOwnedBy(existing, pod) ? existing : undefined;
    mark("read");
    try {
      // 1. The network: bound once, then kept for the pod's life (the endpoint records it).
      const ns = kept ? undefined : this.cache<Resource>("Namespace")?.get(namespace) ?? await this.store.get<Resource>("Namespace", namespace);
      const { network, policy: bindingPolicy } = await bindPod(this.binding, pod, { endpoint: kept, namespaceLabels: ns?.metadata.labels, node: this.node });
      const net = this.cache<Network>("Network")?.get(network) ?? await this.store.get<Network>("Network", network);
      mark("bound");
      if (!net) throw new CniFailure(CNI_ERRORS.NO_NETWORK, `Pod ${namespace}/${name} binds to network "${network}", which does not exist`);
      await this.checkForwarding(net);

      // 2. Addresses: the same owner gets the same addresses again.
      const allocator = this.allocatorFor(net);
      const request = addressRequestFor(pod);
      const { assignment, durable } = await this.allocate(allocator, request, kept);
      // Without a binding of its own the addresses are this ADD's (or leaked by a crash): a failure gives them back.
      if (!kept) undo.push({ what: "release addresses", run: () => allocator.release(request.owner) });
      mark("allocated");

      // 3. The endpoint (published before any apply, so the state lists it) and 4. the pod's interface.
      // A bridged network's endpoint has a MAC of its own, kept for the pod's life (a VM's, from its owner handle, wherever it runs).
      const bridged = this.typeOf(net).forwarding === "bridged";
      const mac = bridged ? kept?.spec?.mac ?? endpointMac(request.owner) : undefined;
      const endpoint = this.endpointFor(pod, network, bindingPolicy, assignment, request.owner, hostIfname, containerId, ifname, netns, kept, mac);
      const gateways = assignment.addresses.map((a) => `${a.gateway}/${a.prefix.length}`);
      const publish = async () => {
        const written = existing
          ? await this.store.update<NetworkEndpoint>({ ...endpoint, metadata: { ...endpoint.metadata, resourceVersion: existing.metadata.resourceVersion } })
          : await this.store.create<NetworkEndpoint>(endpoint);
        if (existing) {
          undo.push({ what: "restore the endpoint", run: () => this.store.update({ ...existing, metadata: { ...existing.metadata, resourceVersion: written.metadata.resourceVersion } }) });
        } else {
          undo.push({ what: "delete the endpoint", run: () => this.deleteEndpoint(written) });
        }
        this.feed(written);
        // An l2 endpoint's Neighbors and FDBEntry: what every node's datapath forwards to it by.
        if (mac) {
          undo.push({ what: "remove the l2 entries", run: () => this.withdrawL2(written) });
          for (const r of await publishL2Entries(this.store, written)) this.feed(r);
        }
        mark("stored");
      };
      const attach = async () => {
        const fwd = this.appliedForwarding(network, gateways);
        const attachment: PodAttachment = {
          netns, ifname, hostIfname, network, networkId: fwd.networkId, mtu: fwd.mtu, addresses: podAddresses(assignment, bridged), gateways,
          ...(mac ? { mac } : {}),
        };
        await this.dp.attachPod(attachment);
        undo.push({ what: "detach the pod", run: () => this.dp.detachPod({ hostIfname, netns }) });
        mark("attached");
        return attachment;
      };
      let attachment: PodAttachment;
      await this.states.settled?.();
      if (this.hasApplied(network, gateways)) {
        // The usual case: the network, with the pod's block, is on the node already. Writing the
        // addresses, publishing the endpoint and plugging the pod in do not depend on each other: the
        // two writes meet in one group commit of the store.
        const [written, published, attached] = await Promise.allSettled([durable, publish(), attach()]);
        for (const r of [written, published, attached]) if (r.status === "rejected") throw r.reason;
        attachment = (attached as PromiseFulfilledResult<PodAttachment>).value;
      } else {
        await durable;
        await publish();
        if (this.typeOf(net).addressing === "host-local" && !this.states.stateFor(this.node).networks.find((n) => n.name === network && gateways.every((g) => n.gateways.includes(g)))) {
          // A new block: the informer may not have brought the Allocation yet.
          const alloc = await this.store.get<Resource>("Allocation", `${network}.${this.node}`);
          if (alloc) this.feed(alloc);
          await this.states.settled?.();
        }
        await this.requestApply();
        mark("applied");
        attachment = await attach();
      }
      // The next apply lists the endpoint (attach already allowed its source addresses): it need not delay the pod.
      // An apply in flight now was planned without this pod and rewrites what attach allowed (its source
      // addresses in the bridge ruleset): the one after it must follow at once, not after the gathering delay.
      if (this.applying) void this.requestApply().catch(() => undefined);
      else this.applySoon();
      this.phases.set(req, phases);
      return { ok: true, result: resultFor(attachment, assignment) };
    } catch (e) {
      for (const step of undo.reverse()) {
        try {
          await step.run();
        } catch (u) {
          this.log.error({ pod: `${namespace}/${name}`, step: step.what, err: (u as Error).message }, "could not undo a step of a failed ADD");
        }
      }
      if (undo.length) await this.requestApply().catch(() => undefined);
      throw e;
    }
  }

  /** The declarations of the network's type; a type no loaded plugin provides fails the ADD with its name. */
  private typeOf(net: Network): NetworkTypeDefinition {
    const type = net.spec?.type ?? "";
    const def = this.types.get(type);
    if (!def) {
      throw new CniFailure(CNI_ERRORS.UNSUPPORTED_NETWORK, `Network "${net.metadata.name}" is of type "${type}", which no loaded plugin provides`, `loaded types: ${this.types.types().join(", ") || "none"}`);
    }
    return def;
  }

  private async checkForwarding(net: Network): Promise<void> {
    const def = this.typeOf(net);
    if (def.forwarding === "underlay" || def.addressing === "none") {
      throw new CniFailure(CNI_ERRORS.NO_NETWORK, `Network "${net.metadata.name}" is ${def.type} (forwarding ${def.forwarding}, addressing ${def.addressing}): pods cannot be placed on it`, "bind the pod to a routed or bridged network and allow a path to this one");
    }
    this.caps ??= await this.dp.capabilities();
    this.forwarding ??= new Set(this.caps.forwarding);
    if (!this.forwarding.has(def.forwarding)) {
      const backend = this.caps.backend ? ` (${this.caps.backend} backend)` : "";
      const why = this.caps.notForwarded?.[def.forwarding as keyof NonNullable<DataplaneCapabilities["notForwarded"]>];
      throw new CniFailure(
        CNI_ERRORS.UNSUPPORTED_NETWORK,
        `Network "${net.metadata.name}" is ${def.type}: the dataplane on node ${this.node}${backend} does not forward ${def.forwarding} networks`,
        why ? `${why}; it forwards: ${[...this.forwarding].join(", ") || "nothing"}` : `it forwards: ${[...this.forwarding].join(", ") || "nothing"}`,
      );
    }
  }

  private allocatorFor(net: Network): AddressAllocator {
    const name = net.metadata.name;
    let a = this.allocators.get(name);
    if (!a) {
      const def = this.typeOf(net);
      // The type's gateway hook decides which address of a block or subnet IPAM keeps for the gateway.
      const gateway = networkGateway(this.types, net);
      a = def.addressing === "global"
        ? new GlobalAllocator(this.store, { network: name, gateway })
        : new HostLocalAllocator(this.store, { network: name, node: this.node, blocks: this.blocks, gateway });
      this.allocators.set(name, a);
    }
    return a;
  }

  /**
   * The pod's addresses. A kept binding asks for the addresses it recorded
   * (its owner still holds them, unless something released them), then for
   * each alone, then for any: the same addresses where they are still free.
   */
  private async allocate(allocator: AddressAllocator, request: AddressRequest, kept: NetworkEndpoint | undefined): Promise<EarlyAssignment> {
    if (!kept || request.addresses) {
      if (allocator.allocateEarly) return allocator.allocateEarly(request);
      const assignment = await allocator.allocate(request);
      return { assignment, durable: Promise.resolve(assignment) };
    }
    const recorded = (kept.spec?.addresses ?? []).filter((a) => IPAddress.tryParse(a).ok);
    const tries = addressPreferences(recorded);
    for (let i = 0;; i++) {
      try {
        const assignment = await allocator.allocate(tries[i].length ? { owner: request.owner, addresses: tries[i].map((a) => IPAddress.parse(a)) } : request);
        return { assignment, durable: Promise.resolve(assignment) };
      } catch (e) {
        if (i === tries.length - 1 || !isLaceError(e, "ADDRESS_UNAVAILABLE")) throw e;
      }
    }
  }

  private endpointFor(
    pod: Pod, network: string, bindingPolicy: string | null, a: Assignment, owner: string, hostIfname: string,
    containerId: string, ifname: string, netns: string, existing: NetworkEndpoint | undefined, mac?: string,
  ): NetworkEndpoint {
    return {
      apiVersion: "lace-cni.io/v1alpha1",
      kind: "NetworkEndpoint",
      metadata: {
        name: pod.metadata.name,
        namespace: pod.metadata.namespace,
        labels: { ...existing?.metadata.labels, "lace-cni.io/network": network, "lace-cni.io/node": this.node },
        annotations: { ...existing?.metadata.annotations, [CONTAINER_ID_ANNOTATION]: containerId, [IFNAME_ANNOTATION]: ifname, [NETNS_ANNOTATION]: netns },
      },
      spec: {
        network,
        node: this.node,
        addresses: a.addresses.map((x) => x.address.toString()),
        pod: { namespace: pod.metadata.namespace!, name: pod.metadata.name, uid: pod.metadata.uid },
        owner,
        bindingPolicy,
        interface: hostIfname,
        ...(mac ? { mac } : {}),
      },
    };
  }

  private async withdrawL2(ep: NetworkEndpoint): Promise<void> {
    if (!ep.spec?.mac) return;
    for (const r of await withdrawL2Entries(this.store, ep, this.node)) this.unfeed(r);
  }

  private async deleteEndpoint(ep: NetworkEndpoint): Promise<void> {
    try {
      await this.store.delete("NetworkEndpoint", ep.metadata.name, ep.metadata.namespace, { resourceVersion: ep.metadata.resourceVersion });
    } catch (e) {
      if (!isStoreError(e, "NotFound")) throw e;
    }
    this.unfeed(ep);
  }

  // ------------------------------------------------------------------ DEL

  /** The endpoint of this attachment: by the pod's name when the runtime gave it, else by container id. */
  private async endpointOf(req: CniRequest): Promise<NetworkEndpoint | undefined> {
    const ns = req.args.K8S_POD_NAMESPACE;
    const name = req.args.K8S_POD_NAME;
    const mine = this.attachmentOf(req);
    if (ns && name) {
      const e = await this.store.get<NetworkEndpoint>("NetworkEndpoint", name, ns);
      return mine(e) ? e : undefined;
    }
    return this.cache<NetworkEndpoint>("NetworkEndpoint")?.list().find(mine);
  }

  /** Whether a cached object is at least as new as what this agent wrote or saw of it (and not deleted since). */
  private upToDate(o: Resource): boolean {
    const seen = this.fed.get(this.keyOf(o));
    return !seen || (!seen.deleted && seen.rv <= Number(o.metadata.resourceVersion));
  }

  /** Whether an endpoint records this request's attachment (this node, container and interface). */
  private attachmentOf(req: CniRequest): (e: NetworkEndpoint | undefined) => e is NetworkEndpoint {
    return (e): e is NetworkEndpoint =>
      e?.spec?.node === this.node && e.metadata.annotations?.[CONTAINER_ID_ANNOTATION] === req.containerId &&
      (e.metadata.annotations?.[IFNAME_ANNOTATION] ?? "eth0") === req.ifname;
  }

  /**
   * DEL gives back what the store holds (addresses, the endpoint) and
   * replies; deleting the veth pair follows the reply. The kernel takes
   * tens of milliseconds to delete a veth (it waits for an RCU grace
   * period), most of a DEL, and the runtime gains nothing by waiting: the
   * spec asks DEL to release the attachment's resources and to be safe to
   * repeat, and the pod is already stopped. The deletion holds the
   * attachment's lock, so an ADD or DEL of the same attachment waits for it;
   * GC and the next start remove a port that a crash left behind (a pod port
   * no endpoint claims), and a released address is not handed out again
   * soon (IPAM's round robin).
   */
  private async del(req: CniRequest): Promise<AgentReply> {
    const hostIfname = hostIfnameFor(req.containerId!, req.ifname!);
    // An endpoint that records another container belongs to a newer sandbox of the pod: leave it.
    try {
      const ns = req.args.K8S_POD_NAMESPACE;
      const name = req.args.K8S_POD_NAME;
      // The pod decides whether the binding outlives this sandbox; with its name known, both reads go together.
      const [ep, pod] = await Promise.all([this.endpointOf(req), ns && name ? this.store.get<Pod>("Pod", name, ns) : undefined]);
      if (ep) await this.endAttachment(ep, ns && name ? pod : await this.podOfEndpoint(ep));
    } finally {
      // Also when the store failed: the runtime repeats the DEL, which finds the endpoint again.
      this.detachLater(`${req.containerId}/${req.ifname}`, hostIfname, req.netns);
    }
    return { ok: true };
  }

  private readonly detaching = new Set<Promise<void>>();

  /** Removes the pod's link after the current holder of the attachment's lock (the DEL replying now). */
  private detachLater(key: string, hostIfname: string, netns: string | undefined): void {
    const done = this.locked(key, () => this.dp.detachPod({ hostIfname, netns })).catch((e) => {
      this.log.warn({ hostIfname, err: (e as Error).message }, "could not remove a deleted pod's link; GC or the next start removes it");
    });
    this.detaching.add(done);
    void done.finally(() => this.detaching.delete(done));
  }

  /** Resolves once the links of every DEL answered so far are gone. */
  async detached(): Promise<void> {
    while (this.detaching.size) await Promise.all([...this.detaching]);
  }

  private podOfEndpoint(ep: NetworkEndpoint): Promise<Pod | undefined> {
    const ref = ep.spec?.pod ?? { namespace: ep.metadata.namespace ?? "", name: ep.metadata.name };
    return this.store.get<Pod>("Pod", ref.name, ref.namespace);
  }

  /**
   * The sandbox of `ep` is gone. While the pod will get another one, the
   * binding stays, detached, in one compare-and-swap write (a crash before
   * it leaves the attachment for the runtime's repeated DEL). Otherwise the
   * binding is released.
   */
  private async endAttachment(ep: NetworkEndpoint, pod: Pod | undefined): Promise<void> {
    // Detached or released, nothing is here to forward to: the l2 entries go (unless the MAC lives elsewhere now).
    await this.withdrawL2(ep);
    if (podOutlivesSandbox(pod) && endpointOwnedBy(ep, pod)) {
      const written = await this.store.update<NetworkEndpoint>(detachedEndpoint(ep, new Date(this.clock.now())));
      this.feed(written);
      this.applySoon();
      return;
    }
    await this.release(ep);
  }

  /**
   * The endpoint goes first (compare-and-swap: a newer sandbox's endpoint
   * stays), then its addresses: a crash between the two leaves addresses of
   * a deleting, finished or gone pod, which the controller's collector
   * reclaims once the pod is gone or finished, never an endpoint naming
   * addresses another pod may get.
   */
  private async release(ep: NetworkEndpoint): Promise<void> {
    await this.deleteEndpoint(ep);
    const net = this.cache<Network>("Network")?.get(ep.spec!.network) ?? await this.store.get<Network>("Network", ep.spec!.network);
    if (net && ep.spec!.owner) await this.allocatorFor(net).release(ep.spec!.owner);
    this.applySoon();
  }

  // ------------------------------------------------------------------ CHECK

  private async check(req: CniRequest): Promise<AgentReply> {
    // From the watch cache when it holds the attachment (CHECK only reads, and a store round trip was a
    // quarter of it); the store answers when the cache has not seen the endpoint yet.
    const cached = req.args.K8S_POD_NAMESPACE && req.args.K8S_POD_NAME
      ? this.cache<NetworkEndpoint>("NetworkEndpoint")?.get(req.args.K8S_POD_NAME, req.args.K8S_POD_NAMESPACE)
      : undefined;
    const ep = this.attachmentOf(req)(cached) && this.upToDate(cached) ? cached : await this.endpointOf(req);
    if (!ep?.spec) {
      throw new CniFailure(CNI_ERRORS.CHECK_FAILED, `No attachment of container ${req.containerId} (${req.ifname}) on node ${this.node}`, "ADD was not run for it, or DEL was");
    }
    const state = this.states.stateFor(this.node);
    const fwd = state.networks.find((n) => n.name === ep.spec!.network);
    if (!fwd) throw new CniFailure(CNI_ERRORS.CHECK_FAILED, `Network "${ep.spec.network}" of ${podRef(req)} is not in the desired state of node ${this.node}`);
    const problem = await this.dp.checkPod({
      netns: req.netns!, ifname: req.ifname!, hostIfname: hostIfnameFor(req.containerId!, req.ifname!), network: fwd.name, networkId: fwd.id,
      mtu: fwd.mtu, addresses: ep.spec.addresses.map((a) => `${a}/${a.includes(":") ? 128 : 32}`), gateways: [],
    });
    if (problem) throw new CniFailure(CNI_ERRORS.CHECK_FAILED, `CHECK of ${podRef(req)} failed: ${problem}`);
    return { ok: true };
  }

  // ------------------------------------------------------------------ GC

  private async gc(req: CniRequest): Promise<AgentReply> {
    const valid = req.config["cni.dev/valid-attachments"] ?? [];
    const keep = new Set(valid.map((a) => hostIfnameFor(a.containerID, a.ifname)));
    const endpoints = this.cache<NetworkEndpoint>("NetworkEndpoint")?.list() ?? [];
    let removed = 0;
    for (const ep of endpoints) {
      const cid = ep.metadata.annotations?.[CONTAINER_ID_ANNOTATION];
      if (ep.spec?.node !== this.node || !cid) continue;
      const hostIfname = hostIfnameFor(cid, ep.metadata.annotations?.[IFNAME_ANNOTATION] ?? "eth0");
      if (keep.has(hostIfname)) continue;
      await this.locked(`${cid}/${ep.metadata.annotations?.[IFNAME_ANNOTATION] ?? "eth0"}`, async () => {
        await this.dp.detachPod({ hostIfname });
        await this.endAttachment(ep, await this.podOfEndpoint(ep));
      });
      removed++;
    }
    for (const port of await this.dp.podPorts()) {
      if (keep.has(port)) continue;
      await this.dp.detachPod({ hostIfname: port });
      removed++;
    }
    this.log.info({ valid: valid.length, removed }, "CNI GC");
    return { ok: true };
  }
}

function podOf(req: CniRequest): { namespace: string; name: string } {
  const namespace = req.args.K8S_POD_NAMESPACE;
  const name = req.args.K8S_POD_NAME;
  if (!namespace || !name) {
    throw new CniFailure(CNI_ERRORS.INVALID_ENVIRONMENT, "CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME", `got ${JSON.stringify(req.args)}`);
  }
  return { namespace, name };
}

function podRef(req: CniRequest): string {
  const ns = req.args.K8S_POD_NAMESPACE;
  const name = req.args.K8S_POD_NAME;
  return ns && name ? `${ns}/${name}` : `container ${req.containerId ?? "?"}`;
}

/** l3 addresses are host routes (/32, /128); l2 addresses keep the subnet's length. */
/** The pod's addresses with their length: host routes (/32, /128) on a routed network, the subnet's on a bridged one. */
function podAddresses(a: Assignment, bridged: boolean): string[] {
  return a.addresses.map((x) => `${x.address}/${bridged ? x.prefix.length : x.address.family === 4 ? 32 : 128}`);
}

function resultFor(pod: PodAttachment, a: Assignment): CniResult {
  // IPv6 pods route through the link-local gateway every network bridge carries (the srv6 plugin's).
  const gw6 = "fe80::1";
  return {
    interfaces: [{ name: pod.hostIfname }, { name: pod.ifname, mtu: pod.mtu, sandbox: pod.netns, ...(pod.mac ? { mac: pod.mac } : {}) }],
    ips: a.addresses.map((x, i) => ({ address: pod.addresses[i] ?? `${x.address}/${x.address.family === 4 ? 32 : 128}`, gateway: x.address.family === 4 ? x.gateway.toString() : gw6, interface: 1 })),
    routes: a.addresses.map((x) => x.address.family === 4 ? { dst: "0.0.0.0/0", gw: x.gateway.toString() } : { dst: "::/0", gw: gw6 }),
    dns: {},
  };
}

function toReply(e: unknown): AgentReply {
  if (e instanceof CniFailure) return { ok: false, code: e.code, msg: e.message, details: e.details };
  if (isLaceError(e)) {
    const code = e.code === "SUBNET_EXHAUSTED" || e.code === "ADDRESS_UNAVAILABLE" ? CNI_ERRORS.NO_ADDRESS
      : e.code === "NO_BINDING_POLICY" || e.code === "UNKNOWN_NETWORK" ? CNI_ERRORS.NO_NETWORK
      : CNI_ERRORS.AGENT_FAILED;
    return { ok: false, code, msg: e.message, details: e.code };
  }
  if (isStoreError(e, "Unavailable")) return { ok: false, code: CNI_ERRORS.TRY_AGAIN_LATER, msg: `The store is unavailable: ${e.message}` };
  if (isStoreError(e, "Conflict")) return { ok: false, code: CNI_ERRORS.TRY_AGAIN_LATER, msg: `A concurrent change got in the way: ${e.message}` };
  return { ok: false, code: CNI_ERRORS.AGENT_FAILED, msg: (e as Error)?.message ?? String(e) };
}

