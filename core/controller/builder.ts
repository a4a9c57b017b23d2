/**
 * The incremental desired-state engine: fed resource events, it keeps
 * indexes of networks, blocks, endpoints, l2 entries, routing policies and
 * locators, and recomputes only the (node, network) pairs an event can
 * affect. Listeners hear about a node only when its state really changed,
 * with its `revision` increased.
 *
 * Representation (so 5,000 nodes' states fit in memory):
 * - what is the same on every node is built once per network and shared by
 *   reference: every block with its owner's SID, the path routes to other
 *   networks' blocks, the l2 neighbour table and FDB. A node's
 *   `remoteBlocks`, `paths` and `fdb` are enumerable getters that cut the
 *   shared list for that node when read (its own blocks leave the remote
 *   list; a path to a block it holds is delivered on the local bridge; an
 *   FDB entry for a local MAC has no SID), so nothing per node is copied
 *   until a dataplane asks; JSON, spreading and structuredClone see plain
 *   properties;
 * - each node keeps one NetworkForwarding per network it has, rebuilt only
 *   when an event touches that network (or a network its paths lead to),
 *   and compared with the previous one by its shared inputs' identity;
 * - shared lists are rebuilt reusing every unchanged entry (and the whole
 *   list when nothing changed), which keeps those comparisons cheap;
 * - `peers` is cut from one shared list when read.
 *
 * What affects whom:
 * - an endpoint: its node's endpoint list (l2: every node that has the
 *   network);
 * - a Neighbor or FDBEntry (an endpoint's own, written by its agent, or a
 *   learned one): the network's neighbours and FDB on every node with it;
 * - an Allocation's blocks: every node with the network, and every node
 *   whose networks have paths to it (their routes name the owner's SID);
 * - a Network or a NetworkRoutingPolicy: the reachability table is updated
 *   incrementally (`ReachabilityIndex`: the changed policy is compiled
 *   alone and only the pairs it can match are decided again), and only
 *   sources whose entries or reply-only routes changed are rebuilt;
 * - the Topology (locators, encapsulation, MTU) or a Node's address: every node.
 *
 * States are read-only: arrays are shared between nodes and revisions.
 *
 * @example
 * const builder = new DesiredStateBuilder();
 * builder.onChange((node, state) => console.log(node, state.revision));
 * await builder.upsertAll(resources);
 * builder.stateFor("node-1").networks.map((n) => n.name); // ["backend", "frontend"]
 * await builder.remove("NetworkRoutingPolicy", "fe-to-be"); // routes to backend go away
 */
import type {
  FdbEntry,
  LocalEndpoint,
  NeighborEntry,
  NetworkForwarding,
  NodeDesiredState,
  PathRoute,
  Peer,
  RemoteBlock,
  ServiceForwarding,
} from "../dataplane/desired_state.ts";
import { IPAddress, Prefix } from "../ip/mod.ts";
import type {
  Allocation,
  FDBEntry,
  Neighbor,
  Network,
  NetworkEndpoint,
  NetworkRoutingPolicy,
  Resource,
  Topology,
} from "../resources/types.ts";
import type { RuleExtensionSet } from "../rules/engine.ts";
import type { ReachabilityTable } from "../rules/routing.ts";
import { ReachabilityIndex } from "../rules/reachability_index.ts";
import { DEFAULT_UNDERLAY_MTU, interfaceName, mtuFor, sidFor } from "./naming.ts";
import { mapAdd, mapDelete, mapSetAdd, mapSetDelete } from "./multimap.ts";
import type { Block, NetInfo, SharedPaths } from "./model.ts";
import { computeSharedPaths, type PathContext } from "./shared_paths.ts";
import { deepEqual, sameList, sameLocalEndpoint } from "./sameness.ts";
import { ServiceIndex } from "./services.ts";

export interface DesiredStateBuilderOptions {
  /** Keep only this node's state (an agent); every node's when absent (the controller, `lace plan`). */
  node?: string;
  /** Underlay MTU the pod MTU is derived from. Default 1500. */
  underlayMtu?: number;
  /** Plugin facts and operators for routing policy conditions. */
  extensions?: RuleExtensionSet;
  /**
   * How a network type forwards: its plugin's declaration (the agent and
   * the controller pass the plugin registry's). Undefined: no loaded
   * plugin provides the type, and its networks are left out.
   */
  forwardingOf: (type: string) => NetworkForwarding["forwarding"] | undefined;
  /** Where a network's type puts a prefix's gateway (its plugin's `gateway` hook); default: the first host. */
  gatewayOf?: (network: Network, prefix: Prefix) => IPAddress | undefined;
}

/** Called with a node whose state changed, and its new state. */
export type StateListener = (node: string, state: NodeDesiredState) => void;

interface EndpointInfo {
  /** Built on first use; dropped when the network changes (l2 addresses carry its subnet's length). */
  local?: LocalEndpoint;
  key: string;
  network: string;
  node: string;
  addresses: string[];
  mac?: string;
  /** The recorded host interface; the derived name is made only for the LocalEndpoint. */
  iface?: string;
  netns?: string;
}

interface L2Entry {
  network: string;
  kind: "Neighbor" | "FDBEntry";
  ip?: string;
  mac: string;
  node?: string;
  source: "static" | "learned";
  sequence: number;
}

/** What a NetworkForwarding's shared lists are cut from. */
interface Lazy {
  node: string;
  /** Every block of the network with its owner's SID (empty when the network may not reach itself). */
  remote: RemoteBlock[];
  /** Whether this node holds blocks of the network (then they leave the remote list). */
  holds: boolean;
  shared: SharedPaths;
  /** Whether this node holds blocks some path leads to (then those are delivered locally). */
  localize: boolean;
  l2?: SharedL2;
  /** Whether some FDB entry is for a MAC on this node (then it has no SID here). */
  l2Local: boolean;
}

const LAZY = Symbol("lace-cni.forwarding");

type WithLazy = { [LAZY]: Lazy };

/** The same getter functions on every object, so V8 keeps them all in one shape. */
const LAZY_PROPERTIES: PropertyDescriptorMap = {
  remoteBlocks: {
    enumerable: true,
    get(this: WithLazy): RemoteBlock[] {
      const z = this[LAZY];
      return z.holds ? z.remote.filter((r) => r.node !== z.node) : z.remote;
    },
  },
  paths: {
    enumerable: true,
    get(this: WithLazy): PathRoute[] {
      const z = this[LAZY];
      if (!z.localize) return z.shared.paths;
      const s = z.shared;
      return s.paths.map((p, i) => {
        if (s.owners[i] !== z.node) return p;
        let l = s.localized.get(p);
        if (!l) {
          l = { destination: p.destination, toNetwork: p.toNetwork, via: "local", toNetworkId: s.ids.get(p.toNetwork), mode: p.mode, policy: p.policy };
          s.localized.set(p, l);
        }
        return l;
      });
    },
  },
  fdb: {
    enumerable: true,
    get(this: WithLazy): FdbEntry[] {
      const z = this[LAZY];
      if (!z.l2) return EMPTY;
      const l2 = z.l2;
      return z.l2Local ? l2.fdb.map((e) => e.node === z.node ? l2.local.get(e)! : e) : l2.fdb;
    },
  },
};

interface SharedL2 {
  neighbors: NeighborEntry[];
  fdb: FdbEntry[];
  /** The SID-less variant of an entry, for the node the MAC is on. */
  local: Map<FdbEntry, FdbEntry>;
}

interface NodeCache {
  revision: number;
  nets: Map<string, NetworkForwarding>;
  /** `nets` sorted by name, for states; null when the set of networks changed. */
  list: NetworkForwarding[] | null;
  /** Whether `list` holds outdated members of an unchanged set (cheaper to patch than to sort). */
  listStale: string[] | null;
  endpoints: LocalEndpoint[];
  peersVersion: number;
  /** The networks the node should have, and the membership epoch they were computed in. */
  desired: Set<string> | null;
  desiredEpoch: number;
  /** The Services the node forwards, sorted by id. */
  services: ServiceForwarding[];
}

const EMPTY: never[] = [];

export class DesiredStateBuilder {
  private readonly only?: string;
  private readonly underlayMtu: number;
  private readonly extensions?: RuleExtensionSet;
  private readonly forwardingOfType: (type: string) => NetworkForwarding["forwarding"] | undefined;
  private readonly gatewayOfType?: (network: Network, prefix: Prefix) => IPAddress | undefined;
  private readonly listeners = new Set<StateListener>();

  // Inputs.
  private encapsulation: "Reduced" | "SRH" = "Reduced";
  private topologyMtu = 0;
  private underlayInterface = "";
  private readonly locators = new Map<string, Prefix>();
  private readonly nodeAddresses = new Map<string, string>();
  private readonly nets = new Map<string, NetInfo>();
  /** Routing policies and networks → the reachability table, kept up to date pair by pair. */
  private readonly routing: ReachabilityIndex;
  /** Allocation name → its network, node and active blocks. */
  private readonly allocs = new Map<string, { network: string; node: string; blocks: Block[] }>();
  /** network → node → blocks. */
  private readonly blocks = new Map<string, Map<string, Block[]>>();
  private readonly endpoints = new Map<string, EndpointInfo>();
  private readonly endpointsByNode = new Map<string, Map<string, EndpointInfo>>();
  private readonly endpointsByNet = new Map<string, Map<string, EndpointInfo>>();
  private readonly l2 = new Map<string, L2Entry>();
  private readonly l2ByNet = new Map<string, Map<string, L2Entry>>();
  /** Services, Pods and endpoints → each bound Service's forwarding. */
  private readonly svc = new ServiceIndex();
  private servicesPending = false;

  // Derived.
  /** node → network → endpoints there (+1 while the node holds blocks of it). */
  private readonly presence = new Map<string, Map<string, number>>();
  /** network → nodes where it is present through endpoints or blocks. */
  private readonly netNodes = new Map<string, Set<string>>();
  /** The routing index's live table. */
  private readonly table: ReachabilityTable;
  /** source network → destination networks its paths (allowed or reply-only) lead to. */
  private readonly targets = new Map<string, Set<string>>();
  /** destination network → source networks with paths to it. */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly selfReach = new Set<string>();
  private readonly sortedBlocks = new Map<string, Block[]>();
  private readonly remoteAll = new Map<string, RemoteBlock[]>();
  private readonly remoteStale = new Map<string, RemoteBlock[]>();
  private readonly pathCache = new Map<string, SharedPaths>();
  private readonly pathStale = new Map<string, SharedPaths>();
  private readonly l2Cache = new Map<string, SharedL2>();
  private readonly l2Stale = new Map<string, SharedL2>();
  private peerList: Peer[] = [];
  private peersVersion = 0;
  private peersStale = true;
  private committedPeers = -1;

  // Pending work.
  private readonly caches = new Map<string, NodeCache>();
  /** Nodes whose set of networks may have changed (a network appeared or went there). */
  private readonly membershipDirty = new Set<string>();
  /** Bumped when any node's set may have changed (networks, the reachability table): every rebuilt node recomputes its set. */
  private membershipEpoch = 0;
  private readonly dirtyNets = new Map<string, Set<string>>();
  /** node → the Services that changed there. */
  private readonly dirtyServices = new Map<string, Set<string>>();
  /** node → the endpoint keys that changed there, or null: rebuild its whole list. */
  private readonly dirtyEndpoints = new Map<string, Set<string> | null>();
  private everything = true;
  private routingDirty = true;
  private chain: Promise<void> = Promise.resolve();

  constructor(options: DesiredStateBuilderOptions) {
    this.only = options.node;
    this.underlayMtu = options.underlayMtu ?? DEFAULT_UNDERLAY_MTU;
    this.extensions = options.extensions;
    this.forwardingOfType = options.forwardingOf;
    this.gatewayOfType = options.gatewayOf;
    this.routing = new ReachabilityIndex({ extensions: this.extensions });
    this.table = this.routing.table;
  }

  // ------------------------------------------------------------ public API

  /**
   * Adds or replaces a resource and publishes what changed. Kinds it does
   * not use (binding policies, Namespaces) are ignored; Services, Pods and
   * EndpointSlices feed the Services' forwarding (services.ts).
   */
  upsert(resource: Resource): Promise<void> {
    this.apply(resource);
    return this.schedule();
  }

  /** Removes a resource by kind and name; unknown ones are ignored. */
  remove(kind: string, name: string, namespace?: string): Promise<void> {
    this.drop(kind, name, namespace);
    return this.schedule();
  }

  /** Adds many resources and publishes once: the first load, a relist. */
  upsertAll(resources: Iterable<Resource>): Promise<void> {
    for (const r of resources) this.apply(r);
    return this.schedule();
  }

  /** Resolves once every event given so far is reflected in the states. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** Listens for nodes whose state changed; returns the function that stops listening. */
  onChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The node's desired state as of the last completed update. */
  stateFor(node: string): NodeDesiredState {
    const c = this.caches.get(node);
    const address = this.nodeAddresses.get(node);
    const state = {
      node,
      revision: c?.revision ?? 0,
      locator: this.locators.get(node)?.toString() ?? "",
      encapsulation: this.encapsulation,
      underlay: { interface: this.underlayInterface, mtu: this.underlayMtu, ...(address ? { address } : {}) },
      networks: c ? this.listOf(c) : [],
      endpoints: c?.endpoints ?? [],
      ...(c?.services.length ? { services: c.services } : {}),
      // The peer list is cut from the shared one only when read: most listeners of a pod event never look.
      [PEERS]: this.peers(),
    };
    Object.defineProperties(state, PEERS_PROPERTY);
    return state as unknown as NodeDesiredState;
  }

  private listOf(c: NodeCache): NetworkForwarding[] {
    if (!c.list) c.list = [...c.nets.values()].sort(byName);
    else if (c.listStale) {
      // A few contexts replaced (a policy, a block): swap them in a copy rather than look up every network again.
      const list = c.list.slice();
      for (const name of c.listStale) {
        let lo = 0;
        let hi = list.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (list[mid].name < name) lo = mid + 1;
          else hi = mid;
        }
        const next = c.nets.get(name);
        if (next && list[lo]?.name === name) list[lo] = next;
      }
      c.list = list;
    }
    c.listStale = null;
    return c.list;
  }

  /** Every node the builder knows: with a locator, an address, endpoints or blocks. */
  nodes(): string[] {
    const all = new Set<string>([...this.locators.keys(), ...this.nodeAddresses.keys(), ...this.presence.keys(), ...this.caches.keys()]);
    return [...all].filter((n) => !this.only || n === this.only).sort();
  }

  /** The reachability table the routes were computed from. */
  reachability(): ReachabilityTable {
    return this.table;
  }

  // ------------------------------------------------------------ events in

  private apply(r: Resource): void {
    if (ServiceIndex.reads(r.kind)) {
      this.svc.set(r);
      this.servicesPending = true;
    }
    switch (r.kind) {
      case "Topology":
        if (r.metadata.name === "default") this.setTopology(r as Topology);
        return;
      case "Node":
        this.setNodeAddress(r.metadata.name, nodeAddressOf(r));
        return;
      case "Network":
        // A network of a type no loaded plugin declares forwards nowhere: as if it did not exist.
        if (this.forwardingOfType((r as Network).spec?.type ?? "") === undefined) this.drop("Network", r.metadata.name);
        else this.setNetwork(r as Network);
        return;
      case "NetworkRoutingPolicy":
        this.routing.setPolicy(r as NetworkRoutingPolicy);
        this.routingDirty = true;
        return;
      case "Allocation":
        this.setAllocation(r as Allocation);
        return;
      case "NetworkEndpoint":
        this.setEndpoint(r as NetworkEndpoint);
        return;
      case "Neighbor":
      case "FDBEntry":
        this.setL2(r as Neighbor | FDBEntry);
        return;
    }
  }

  private drop(kind: string, name: string, namespace?: string): void {
    if (ServiceIndex.reads(kind)) {
      this.svc.remove(kind, name, namespace);
      this.servicesPending = true;
    }
    switch (kind) {
      case "Topology":
        if (name === "default") this.setTopology(undefined);
        return;
      case "Node":
        this.setNodeAddress(name, undefined);
        return;
      case "Network": {
        const old = this.nets.get(name);
        if (!old) return;
        this.affectNetwork(name);
        this.nets.delete(name);
        for (const e of this.endpointsByNet.get(name)?.values() ?? []) {
          e.local = undefined;
          this.dirtyEndpoints.set(e.node, null);
        }
        this.forgetNetworkCaches(name);
        this.routing.removeNetwork(name);
        this.routingDirty = true;
        this.svc.invalidateSources();
        this.servicesPending = true;
        this.membershipEpoch++;
        return;
      }
      case "NetworkRoutingPolicy":
        this.routing.removePolicy(name);
        this.routingDirty = true;
        return;
      case "Allocation":
        this.replaceBlocks(name, undefined);
        return;
      case "NetworkEndpoint":
        this.replaceEndpoint(`${namespace ?? ""}/${name}`, undefined);
        return;
      case "Neighbor":
      case "FDBEntry":
        this.replaceL2(`${kind}/${name}`, undefined);
        return;
    }
  }

  private setTopology(t: Topology | undefined): void {
    this.encapsulation = t?.spec?.encapsulation === "SRH" ? "SRH" : "Reduced";
    this.topologyMtu = typeof t?.spec?.mtu === "number" ? t.spec.mtu : 0;
    this.underlayInterface = t?.spec?.underlay?.interface ?? "";
    const next = new Map<string, Prefix>();
    for (const [node, text] of Object.entries(t?.status?.locators ?? {})) {
      const p = Prefix.tryParse(text);
      if (p.ok && p.value.family === 6) next.set(node, p.value);
    }
    this.locators.clear();
    for (const [k, v] of next) this.locators.set(k, v);
    this.peersStale = true;
    this.peersVersion++;
    // Locators, encapsulation and MTU reach into every network on every node.
    this.everything = true;
    this.remoteAll.clear();
    this.pathCache.clear();
    this.l2Cache.clear();
  }

  private setNodeAddress(node: string, address: string | undefined): void {
    if (this.nodeAddresses.get(node) === address) return;
    if (address) this.nodeAddresses.set(node, address);
    else this.nodeAddresses.delete(node);
    this.peersStale = true;
    this.peersVersion++;
  }

  private setNetwork(n: Network): void {
    const name = n.metadata.name;
    const spec = n.spec ?? { type: "" };
    const subnets: Prefix[] = [];
    for (const s of [spec.ipv4Subnet, spec.ipv6Subnet]) {
      const p = s ? Prefix.tryParse(s.prefix) : undefined;
      if (p?.ok) subnets.push(p.value);
    }
    const info: NetInfo = {
      name,
      id: typeof n.status?.id === "number" ? n.status.id : undefined,
      type: spec.type,
      forwarding: this.forwardingOfType(spec.type)!,
      anonymous: spec.anonymous === true,
      snat: spec.snat !== false,
      subnets,
      routingKey: JSON.stringify([spec.type, spec.ipv4Subnet?.prefix, spec.ipv6Subnet?.prefix, spec.externalPrefixes, spec.anonymous === true, n.metadata.labels ?? {}]),
      // Options too: a type's gateway hook may read them.
      shapeKey: JSON.stringify([spec.type, spec.ipv4Subnet?.prefix, spec.ipv6Subnet?.prefix, spec.externalPrefixes, spec.anonymous === true, spec.options ?? null]),
      resource: n,
    };
    const old = this.nets.get(name);
    this.nets.set(name, info);
    if (old && old.routingKey === info.routingKey && old.id === info.id && old.forwarding === info.forwarding && old.snat === info.snat) {
      return; // a status write (conditions, usage): nothing forwarding depends on
    }
    this.svc.invalidateSources();
    this.servicesPending = true;
    if (!old || old.routingKey !== info.routingKey) {
      this.routing.setNetwork(n);
      this.routingDirty = true;
    }
    // Only labels moved: policies may match it differently (the routing update rebuilds whom that changes), its contexts stay.
    if (old && old.shapeKey === info.shapeKey && old.id === info.id && old.forwarding === info.forwarding && old.snat === info.snat) return;
    this.membershipEpoch++;
    this.forgetNetworkCaches(name);
    this.affectNetwork(name);
    for (const e of this.endpointsByNet.get(name)?.values() ?? []) {
      e.local = undefined;
      this.dirtyEndpoints.set(e.node, null);
    }
  }

  private setAllocation(a: Allocation): void {
    const spec = a.spec;
    // Pool records (`*.lace-cni.io` node names) belong to no node.
    if (!spec || a.metadata.labels?.["lace-cni.io/pool"] === "true" || spec.node.endsWith(".lace-cni.io")) return;
    const blocks: Block[] = [];
    for (const b of spec.blocks ?? []) {
      if (b.pending) continue;
      const p = Prefix.tryParse(b.prefix);
      if (p.ok) blocks.push({ prefix: p.value, text: p.value.toString(), node: spec.node });
    }
    this.replaceBlocks(a.metadata.name, { network: spec.network, node: spec.node, blocks });
  }

  private replaceBlocks(name: string, next: { network: string; node: string; blocks: Block[] } | undefined): void {
    const old = this.allocs.get(name);
    if (old && next && old.network === next.network && old.node === next.node && sameTexts(old.blocks, next.blocks)) return;
    if (!old && !next) return;
    if (old) {
      this.affectNetwork(old.network);
      this.allocs.delete(name);
      const m = this.blocks.get(old.network);
      m?.delete(old.node);
      if (m?.size === 0) this.blocks.delete(old.network);
      if (old.blocks.length) this.addPresence(old.node, old.network, -1);
      this.blocksChanged(old.network);
    }
    if (next) {
      this.allocs.set(name, next);
      if (next.blocks.length) {
        let m = this.blocks.get(next.network);
        if (!m) this.blocks.set(next.network, m = new Map());
        m.set(next.node, next.blocks);
        this.addPresence(next.node, next.network, +1);
      }
      this.blocksChanged(next.network);
      this.affectNetwork(next.network);
    }
  }

  private blocksChanged(network: string): void {
    this.sortedBlocks.delete(network);
    this.staleRemote(network);
    for (const a of this.dependents.get(network) ?? []) this.invalidatePaths(a);
  }

  /**
   * Drops a source's shared paths, keeping them aside: the rebuild reuses
   * every route that did not change, so comparing the new state with the
   * old one is mostly comparing references.
   */
  private invalidatePaths(source: string): void {
    const old = this.pathCache.get(source);
    if (!old) return;
    this.pathCache.delete(source);
    this.pathStale.set(source, old);
  }

  private staleRemote(network: string): void {
    const old = this.remoteAll.get(network);
    if (!old) return;
    this.remoteAll.delete(network);
    this.remoteStale.set(network, old);
  }

  private setEndpoint(e: NetworkEndpoint): void {
    const spec = e.spec;
    if (!spec || typeof spec.network !== "string" || typeof spec.node !== "string") return;
    const key = `${e.metadata.namespace ?? ""}/${e.metadata.name}`;
    if (spec.detachedAt) {
      // A pod between sandboxes: its binding and addresses are kept, but nothing is there to forward to.
      this.replaceEndpoint(key, undefined);
      return;
    }
    if (this.only !== undefined && spec.node !== this.only && this.nets.get(spec.network)?.forwarding === "routed") {
      // An agent needs other nodes' endpoints only in l2 networks (their MACs); routed ones reach it as blocks.
      this.replaceEndpoint(key, undefined);
      return;
    }
    const info: EndpointInfo = {
      key,
      network: spec.network,
      node: spec.node,
      // The stored strings are kept as they are when they carry no prefix length: 550,000 copies add up.
      addresses: (spec.addresses ?? []).map((a) => a.includes("/") ? a.slice(0, a.indexOf("/")) : a),
      iface: spec.interface || undefined,
    };
    if (spec.mac) info.mac = spec.mac.toLowerCase();
    const netns = e.metadata.annotations?.["lace-cni.io/netns"];
    if (netns) info.netns = netns;
    this.replaceEndpoint(key, info);
  }

  private replaceEndpoint(key: string, next: EndpointInfo | undefined): void {
    const old = this.endpoints.get(key);
    if (old && next && sameEndpoint(old, next)) return;
    if (!old && !next) return;
    if (old) {
      this.endpoints.delete(key);
      mapDelete(this.endpointsByNode, old.node, key);
      mapDelete(this.endpointsByNet, old.network, key);
      this.endpointChanged(old.node, key);
      this.addPresence(old.node, old.network, -1);
      this.l2EndpointsChanged(old.network);
    }
    if (next) {
      this.endpoints.set(key, next);
      mapAdd(this.endpointsByNode, next.node, key, next);
      mapAdd(this.endpointsByNet, next.network, key, next);
      this.endpointChanged(next.node, key);
      this.addPresence(next.node, next.network, +1);
      this.l2EndpointsChanged(next.network);
    }
  }

  /** Which nodes have an l2 network follows its endpoints (its neighbours and FDB follow the l2 resources). */
  private l2EndpointsChanged(network: string): void {
    if (this.nets.get(network)?.forwarding !== "bridged") return;
    this.affectNetwork(network, false);
  }

  private staleL2(network: string): void {
    const old = this.l2Cache.get(network);
    if (!old) return;
    this.l2Cache.delete(network);
    this.l2Stale.set(network, old);
  }

  private setL2(r: Neighbor | FDBEntry): void {
    const spec = r.spec as Record<string, unknown> | undefined;
    if (!spec || typeof spec.network !== "string" || typeof spec.mac !== "string") return;
    const entry: L2Entry = {
      network: spec.network,
      kind: r.kind as "Neighbor" | "FDBEntry",
      mac: spec.mac.toLowerCase(),
      source: spec.source === "learned" ? "learned" : "static",
      sequence: typeof spec.sequence === "number" ? spec.sequence : 0,
    };
    if (r.kind === "Neighbor") {
      if (typeof spec.ip !== "string") return;
      entry.ip = canonicalIp(spec.ip);
    } else {
      if (typeof spec.node !== "string") return;
      entry.node = spec.node;
    }
    this.replaceL2(`${r.kind}/${r.metadata.name}`, entry);
  }

  private replaceL2(key: string, next: L2Entry | undefined): void {
    const old = this.l2.get(key);
    if (old && next && JSON.stringify(old) === JSON.stringify(next)) return;
    if (old) {
      this.l2.delete(key);
      mapDelete(this.l2ByNet, old.network, key);
      this.staleL2(old.network);
      this.affectNetwork(old.network, false);
    }
    if (next) {
      this.l2.set(key, next);
      mapAdd(this.l2ByNet, next.network, key, next);
      this.staleL2(next.network);
      this.affectNetwork(next.network, false);
    }
  }

  private addPresence(node: string, network: string, delta: number): void {
    let m = this.presence.get(node);
    if (!m) this.presence.set(node, m = new Map());
    const n = (m.get(network) ?? 0) + delta;
    if (n > 0) {
      m.set(network, n);
      if (n === delta) {
        let s = this.netNodes.get(network);
        if (!s) this.netNodes.set(network, s = new Set());
        s.add(node);
        this.markNet(node, network);
        this.membershipDirty.add(node);
      }
      return;
    }
    m.delete(network);
    if (m.size === 0) this.presence.delete(node);
    const s = this.netNodes.get(network);
    s?.delete(node);
    if (s?.size === 0) this.netNodes.delete(network);
    this.markNet(node, network);
    this.membershipDirty.add(node);
  }

  // ------------------------------------------------------------ what is affected

  private markNet(node: string, network: string): void {
    // A full rebuild is pending (first load, Topology change): marks would add nothing.
    if (this.everything) return;
    if (this.only !== undefined && node !== this.only) return;
    let s = this.dirtyNets.get(node);
    if (!s) this.dirtyNets.set(node, s = new Set());
    s.add(network);
  }

  /**
   * Marks every (node, network) pair that shows `network`: the nodes that
   * have it, and, when `paths` is set, the nodes whose networks route to
   * it (their routes name its blocks' owners).
   */
  private affectNetwork(network: string, paths = true): void {
    if (this.everything) return;
    const bridged = this.nets.get(network)?.forwarding === "bridged";
    if (this.only !== undefined) {
      // One node: cheaper to check it than to walk the network's nodes.
      const m = this.presence.get(this.only);
      if (m?.has(network)) this.markNet(this.only, network);
      if (paths || bridged) {
        for (const a of this.dependents.get(network) ?? []) {
          if (m?.has(a)) {
            this.markNet(this.only, a);
            if (bridged) this.markNet(this.only, network);
          }
        }
      }
      return;
    }
    for (const node of this.netNodes.get(network) ?? []) this.markNet(node, network);
    if (!paths && !bridged) return;
    for (const a of this.dependents.get(network) ?? []) {
      for (const node of this.netNodes.get(a) ?? []) {
        if (paths) this.markNet(node, a);
        // A bridged destination has a forwarding context on every node routing to it.
        if (bridged) this.markNet(node, network);
      }
    }
  }

  private forgetNetworkCaches(network: string): void {
    this.sortedBlocks.delete(network);
    this.staleRemote(network);
    this.invalidatePaths(network);
    this.l2Cache.delete(network);
    for (const a of this.dependents.get(network) ?? []) this.invalidatePaths(a);
  }

  // ------------------------------------------------------------ publishing

  private schedule(): Promise<void> {
    const p = this.chain.then(() => this.commit());
    this.chain = p.catch(() => {});
    return p;
  }

  private async commit(): Promise<void> {
    if (this.routingDirty) {
      this.routingDirty = false;
      await this.recomputeRouting();
      this.svc.invalidateSources();
      this.servicesPending = true;
    }
    if (this.servicesPending) {
      this.servicesPending = false;
      this.servicesChanged();
    }
    const nodes = new Set<string>();
    const full = this.everything;
    // A node that came or went changes every node's peer list, but none of their networks.
    if (full || this.committedPeers !== this.peersVersion) for (const n of this.nodes()) nodes.add(n);
    this.everything = false;
    this.committedPeers = this.peersVersion;
    for (const n of this.dirtyNets.keys()) nodes.add(n);
    for (const n of this.dirtyEndpoints.keys()) nodes.add(n);
    for (const n of this.dirtyServices.keys()) nodes.add(n);
    const changed: string[] = [];
    for (const node of nodes) {
      if (this.only !== undefined && node !== this.only) continue;
      if (this.rebuild(node, full)) changed.push(node);
    }
    this.dirtyNets.clear();
    this.dirtyEndpoints.clear();
    this.dirtyServices.clear();
    this.membershipDirty.clear();
    if (this.listeners.size === 0) return;
    for (const node of changed) {
      const state = this.stateFor(node);
      for (const l of this.listeners) l(node, state);
    }
  }

  private rebuild(node: string, full: boolean): boolean {
    let c = this.caches.get(node);
    if (!c) {
      c = { revision: 0, nets: new Map(), list: null, listStale: null, endpoints: [], peersVersion: -1, desired: null, desiredEpoch: -1, services: [] };
      this.caches.set(node, c);
    }
    let changed = c.revision === 0 || c.peersVersion !== this.peersVersion;
    c.peersVersion = this.peersVersion;
    const dirty = this.dirtyNets.get(node);
    // Only endpoints moved (the common pod event): the networks stay as they are.
    if (full || dirty) {
      // Which networks a node has changes rarely (a first pod, a last one, a policy): recompute it only then.
      let desired = c.desired;
      if (full || !desired || c.desiredEpoch !== this.membershipEpoch || this.membershipDirty.has(node)) {
        desired = this.desiredNetworks(node);
        c.desired = desired;
        c.desiredEpoch = this.membershipEpoch;
      }
      for (const name of c.nets.keys()) {
        if (!desired.has(name)) {
          c.nets.delete(name);
          c.list = null;
          changed = true;
        }
      }
      const names = full ? desired : dirty!;
      for (const name of names) {
        if (!desired.has(name)) continue;
        const old = c.nets.get(name);
        if (old && !full && !dirty?.has(name)) continue;
        const next = this.forwarding(name, node);
        if (old && sameForwarding(old, next)) continue;
        c.nets.set(name, next);
        if (!old) c.list = null;
        else (c.listStale ??= []).push(name);
        changed = true;
      }
      // Networks in the set that have no context yet (a membership change not marked network by network).
      if (!full && c.nets.size !== desired.size) {
        for (const name of desired) {
          if (c.nets.has(name)) continue;
          c.nets.set(name, this.forwarding(name, node));
          c.list = null;
          changed = true;
        }
      }
    }
    if (full || this.dirtyEndpoints.has(node)) {
      const keys = full ? null : this.dirtyEndpoints.get(node)!;
      const eps = keys ? this.patchEndpoints(node, c.endpoints, keys) : this.localEndpoints(node);
      if (!sameList(c.endpoints, eps, sameLocalEndpoint)) {
        c.endpoints = eps;
        changed = true;
      }
    }
    const svcKeys = this.dirtyServices.get(node);
    if (full || this.membershipDirty.has(node) || svcKeys) {
      const next = full || this.membershipDirty.has(node) ? this.nodeServices(node) : this.patchServices(node, c.services, svcKeys!);
      if (!sameList(c.services, next, (a, b) => a === b)) {
        c.services = next;
        changed = true;
      }
    }
    if (changed) c.revision++;
    return changed;
  }

  // ------------------------------------------------------------ services

  /** Rebuilds the Services events touched and marks the nodes whose lists they are on (before or after). */
  private servicesChanged(): void {
    const changes = this.svc.update(this.table, (n) => {
      const net = this.nets.get(n);
      return net && net.id !== undefined && net.forwarding !== "underlay" ? net.subnets.map((p) => p.toString()) : undefined;
    });
    for (const ch of changes) {
      const sources = new Set([...ch.before?.sources ?? [], ...ch.after?.sources ?? []]);
      const nodes = new Set<string>();
      if (this.only !== undefined) {
        const m = this.presence.get(this.only);
        if (m && [...sources].some((s) => m.has(s))) nodes.add(this.only);
      } else {
        for (const s of sources) for (const n of this.netNodes.get(s) ?? []) nodes.add(n);
      }
      for (const n of nodes) {
        let set = this.dirtyServices.get(n);
        if (!set) this.dirtyServices.set(n, set = new Set());
        set.add(ch.key);
      }
    }
  }

  /** Whether the node has endpoints (or blocks) of one of the Service's source networks. */
  private forwardsService(node: string, s: ServiceForwarding): boolean {
    const m = this.presence.get(node);
    return m !== undefined && s.sources.some((x) => m.has(x));
  }

  private nodeServices(node: string): ServiceForwarding[] {
    const out: ServiceForwarding[] = [];
    for (const s of this.svc.list()) if (this.forwardsService(node, s)) out.push(s);
    return out.sort(byId);
  }

  private patchServices(node: string, current: ServiceForwarding[], keys: Set<string>): ServiceForwarding[] {
    const out = current.slice();
    for (const key of keys) {
      let i = lowerBound(out, key);
      if (i < out.length && out[i].id === key) out.splice(i, 1);
      const s = this.svc.get(key);
      if (!s || !this.forwardsService(node, s)) continue;
      i = lowerBound(out, key);
      out.splice(i, 0, s);
    }
    return out;
  }

  /** The node's networks: those it has endpoints or blocks of, plus bridged networks they route to. */
  private desiredNetworks(node: string): Set<string> {
    const out = new Set<string>();
    const m = this.presence.get(node);
    if (!m) return out;
    for (const name of m.keys()) {
      const n = this.nets.get(name);
      if (n && n.id !== undefined && n.forwarding !== "underlay") out.add(name);
    }
    for (const name of [...out]) {
      for (const d of this.targets.get(name) ?? []) {
        const n = this.nets.get(d);
        if (n && n.id !== undefined && n.forwarding === "bridged") out.add(d);
      }
    }
    return out;
  }

  // ------------------------------------------------------------ routing

  /**
   * Brings the reachability table up to date (only the pairs the changed
   * policies and networks can match are decided again) and marks the
   * sources whose entries or reply-only routes changed.
   */
  private async recomputeRouting(): Promise<void> {
    const changed = await this.routing.update();
    const table = this.table;
    for (const a of changed) {
      const before = this.targets.get(a);
      for (const d of before ?? []) mapSetDelete(this.dependents, d, a);
      const t = new Set<string>();
      for (const e of table.sources.get(a) ?? EMPTY) if (e.action === "allow" && e.network !== a) t.add(e.network);
      for (const r of table.replies.get(a) ?? EMPTY) if (r.network !== a) t.add(r.network);
      if (t.size) this.targets.set(a, t);
      else this.targets.delete(a);
      for (const d of t) mapSetAdd(this.dependents, d, a);
      if ((table.sources.get(a) ?? EMPTY).some((e) => e.action === "allow" && e.network === a)) this.selfReach.add(a);
      else this.selfReach.delete(a);
      this.invalidatePaths(a);
      // An external network's own entries decide whether the networks it reaches mark their egress `inbound`.
      if (this.nets.get(a)?.forwarding === "underlay") {
        for (const d of new Set([...before ?? [], ...t])) {
          this.invalidatePaths(d);
          for (const node of this.netNodes.get(d) ?? []) this.markNet(node, d);
        }
      }
      // A node's set of networks follows the bridged networks its networks route to: only a change there moves it.
      const bridged = (set: Set<string> | undefined) => [...set ?? []].filter((d) => this.nets.get(d)?.forwarding === "bridged").sort().join(",");
      const moved = bridged(before) !== bridged(t);
      for (const node of this.netNodes.get(a) ?? []) {
        this.markNet(node, a);
        if (moved) this.membershipDirty.add(node);
      }
    }
  }

  // ------------------------------------------------------------ building one network on one node

  /**
   * One network's forwarding on one node. The lists that are the same on
   * every node (remote blocks, path routes, FDB) are not copied here: they
   * are read through enumerable getters from the shared per-network lists,
   * cut for this node only when asked for. JSON, spreading and
   * structuredClone see ordinary properties.
   */
  private forwarding(name: string, node: string): NetworkForwarding {
    const net = this.nets.get(name)!;
    const id = net.id!;
    const locator = this.locators.get(node);
    const own = this.blocks.get(name)?.get(node) ?? EMPTY as Block[];
    const routed = net.forwarding === "routed";
    const bridged = net.forwarding === "bridged";
    const shared = this.sharedPaths(name);
    const l2 = bridged ? this.sharedL2(name) : undefined;
    const lazy: Lazy = {
      node,
      remote: routed && this.selfReach.has(name) ? this.remoteAllOf(name) : EMPTY,
      holds: own.length > 0,
      shared,
      localize: shared.routedTargets.some((d) => this.blocks.get(d)?.has(node)),
      l2,
      l2Local: l2 ? this.endpointsByNode.get(node) !== undefined && l2.fdb.some((e) => e.node === node) : false,
    };
    const nf = {
      name,
      id,
      type: net.type,
      forwarding: net.forwarding,
      anonymous: net.anonymous,
      mtu: mtuFor(net.forwarding, this.encapsulation, this.topologyMtu, this.underlayMtu),
      // The node's SID for the network is its blocks' SID: reuse that string rather than make one per context.
      ...(locator ? { sid: own.length ? this.blockSid(own[0], name) : this.sidOf(node, name), sidBehavior: bridged ? "decap-bridge" as const : "decap-lookup" as const } : {}),
      gateways: routed ? this.gateways(net, own.map((b) => b.prefix)) : bridged ? this.gateways(net, net.subnets) : [],
      localPrefixes: routed ? own.map((b) => b.text) : bridged ? net.subnets.map((p) => p.toString()) : [],
      neighbors: l2 ? l2.neighbors : EMPTY,
      egress: shared.egress,
      denied: shared.denied,
      [LAZY]: lazy,
    };
    Object.defineProperties(nf, LAZY_PROPERTIES);
    return nf as unknown as NetworkForwarding;
  }

  private blocksOf(network: string): Block[] {
    let list = this.sortedBlocks.get(network);
    if (!list) {
      list = [];
      for (const bs of this.blocks.get(network)?.values() ?? []) list.push(...bs);
      list.sort((a, b) => a.prefix.compare(b.prefix));
      this.sortedBlocks.set(network, list);
    }
    return list;
  }

  private sidOf(node: string, network: string): string | undefined {
    const id = this.nets.get(network)?.id;
    const loc = this.locators.get(node);
    return id !== undefined && loc ? sidFor(loc, id) : undefined;
  }

  /** The block owner's SID; formatting an IPv6 address costs microseconds and a block change asks for hundreds, so blocks keep theirs. */
  private blockSid(b: Block, network: string): string | undefined {
    const id = this.nets.get(network)?.id;
    const loc = this.locators.get(b.node);
    if (id === undefined || !loc) return undefined;
    if (b.sidLocator !== loc || b.sidId !== id) {
      b.sid = sidFor(loc, id);
      b.sidLocator = loc;
      b.sidId = id;
    }
    return b.sid;
  }

  private remoteAllOf(network: string): RemoteBlock[] {
    let all = this.remoteAll.get(network);
    if (!all) {
      all = [];
      const prev = new Map<string, RemoteBlock>();
      for (const r of this.remoteStale.get(network) ?? EMPTY) prev.set(`${r.prefix}|${r.node}|${r.sid}`, r);
      for (const b of this.blocksOf(network)) {
        const sid = this.blockSid(b, network);
        if (sid) all.push(prev.get(`${b.text}|${b.node}|${sid}`) ?? { prefix: b.text, node: b.node, sid });
      }
      const old = this.remoteStale.get(network);
      if (old && sameList(old, all, () => false)) all = old;
      this.remoteStale.delete(network);
      this.remoteAll.set(network, all);
    }
    return all;
  }

  /**
   * The gateways of a network's prefixes on a node (its blocks, or a bridged
   * network's subnets), with their length: where the type's `gateway` hook
   * puts them, else the first host. A prefix the hook gives no gateway has
   * none listed.
   */
  private gateways(net: NetInfo, prefixes: readonly Prefix[]): string[] {
    const out: string[] = [];
    for (const p of prefixes) {
      const g = this.gatewayOfType ? this.gatewayOfType(net.resource, p) : p.firstHost;
      if (g) out.push(`${g}/${p.length}`);
    }
    return out;
  }

  private sharedPaths(source: string): SharedPaths {
    let s = this.pathCache.get(source);
    if (s) return s;
    s = computeSharedPaths(source, this.pathContext);
    const prev = this.pathStale.get(source);
    if (prev) {
      this.pathStale.delete(source);
      internInto(s, prev);
    }
    this.pathCache.set(source, s);
    return s;
  }

  /** What the path computation reads of the builder (shared_paths.ts). */
  private readonly pathContext: PathContext = {
    nets: () => this.nets,
    table: () => this.table,
    blocksOf: (network) => this.blocksOf(network),
    blockSid: (b, network) => this.blockSid(b, network),
  };

  private sharedL2(network: string): SharedL2 {
    let s = this.l2Cache.get(network);
    if (s) return s;
    const neighbors = new Map<string, NeighborEntry>();
    const fdb = new Map<string, { node: string; source: "static" | "learned"; sequence: number }>();
    // The Neighbor and FDBEntry resources are the one source: an attached endpoint's own entries are
    // resources too (the agent writes them, l2_entries.ts), never derived here from its MAC as well.
    for (const r of this.l2ByNet.get(network)?.values() ?? []) {
      if (r.kind === "Neighbor") {
        const cur = neighbors.get(r.ip!);
        if (!cur || cur.source !== "static" || r.source === "static") neighbors.set(r.ip!, { ip: r.ip!, mac: r.mac, source: r.source });
      } else {
        const cur = fdb.get(r.mac);
        if (!cur || r.sequence >= cur.sequence) fdb.set(r.mac, { node: r.node!, source: r.source, sequence: r.sequence });
      }
    }
    // Entries that did not change keep their identity, so nodes compare by reference.
    const prev = this.l2Stale.get(network);
    this.l2Stale.delete(network);
    const oldFdb = new Map<string, FdbEntry>();
    const oldNeighbors = new Map<string, NeighborEntry>();
    for (const e of prev?.fdb ?? EMPTY) oldFdb.set(`${e.mac}|${e.node}|${e.sid}|${e.source}|${e.sequence}`, e);
    for (const e of prev?.neighbors ?? EMPTY) oldNeighbors.set(`${e.ip}|${e.mac}|${e.source}`, e);
    const local = new Map<FdbEntry, FdbEntry>();
    const entries: FdbEntry[] = [];
    for (const [mac, v] of [...fdb].sort((a, b) => a[0] < b[0] ? -1 : 1)) {
      const sid = this.sidOf(v.node, network);
      const old = oldFdb.get(`${mac}|${v.node}|${sid}|${v.source}|${v.sequence}`);
      const e: FdbEntry = old ?? { mac, node: v.node, ...(sid ? { sid } : {}), source: v.source, sequence: v.sequence };
      local.set(e, (old && prev!.local.get(old)) ?? { mac, node: v.node, source: v.source, sequence: v.sequence });
      entries.push(e);
    }
    const nbrs = [...neighbors.values()].sort((a, b) => compareIp(a.ip, b.ip)).map((n) => oldNeighbors.get(`${n.ip}|${n.mac}|${n.source}`) ?? n);
    s = {
      neighbors: prev && sameList(prev.neighbors, nbrs, () => false) ? prev.neighbors : nbrs,
      fdb: prev && sameList(prev.fdb, entries, () => false) ? prev.fdb : entries,
      local,
    };
    this.l2Cache.set(network, s);
    return s;
  }

  private endpointChanged(node: string, key: string): void {
    if (this.only !== undefined && node !== this.only) return;
    const cur = this.dirtyEndpoints.get(node);
    if (cur === null) return;
    if (cur) cur.add(key);
    else this.dirtyEndpoints.set(node, new Set([key]));
  }

  /**
   * The node's sorted endpoint list with only `keys` redone: a pod event
   * moves a few pointers instead of rebuilding and sorting the whole list.
   */
  private patchEndpoints(node: string, current: LocalEndpoint[], keys: Set<string>): LocalEndpoint[] {
    const out = current.slice();
    const here = this.endpointsByNode.get(node);
    for (const key of keys) {
      let i = lowerBound(out, key);
      if (i < out.length && out[i].id === key) out.splice(i, 1);
      const e = here?.get(key);
      const ep = e && this.localEndpoint(e);
      if (!ep) continue;
      i = lowerBound(out, key);
      out.splice(i, 0, ep);
    }
    return out;
  }

  private localEndpoint(e: EndpointInfo): LocalEndpoint | undefined {
    if (e.local) return e.local;
    const net = this.nets.get(e.network);
    if (!net) return undefined;
    const ep: LocalEndpoint = {
      id: e.key,
      network: e.network,
      addresses: e.addresses.map((a) => withLength(a, net)),
      interface: e.iface ?? interfaceName(e.key),
    };
    if (e.mac) ep.mac = e.mac;
    if (e.netns) ep.netns = e.netns;
    e.local = ep;
    return ep;
  }

  private localEndpoints(node: string): LocalEndpoint[] {
    const out: LocalEndpoint[] = [];
    for (const e of this.endpointsByNode.get(node)?.values() ?? []) {
      const ep = this.localEndpoint(e);
      if (ep) out.push(ep);
    }
    return out.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  }

  private peers(): Peer[] {
    if (this.peersStale) {
      this.peerList = [...this.locators].sort((a, b) => a[0] < b[0] ? -1 : 1).map(([node, loc]) => {
        const address = this.nodeAddresses.get(node);
        return address ? { node, locator: loc.toString(), address } : { node, locator: loc.toString() };
      });
      this.peersStale = false;
    }
    return this.peerList;
  }
}

// ------------------------------------------------------------ helpers

const PEERS = Symbol("lace-cni.peers");

const PEERS_PROPERTY: PropertyDescriptorMap = {
  peers: {
    enumerable: true,
    get(this: { node: string; [PEERS]: Peer[] }): Peer[] {
      return withoutNode(this[PEERS], this.node);
    },
  },
};

/** The sorted peer list without `node`: two slices, not a filter, since it runs for every published state. */
/** The first index whose endpoint id is not below `id`. */
function lowerBound(list: { id: string }[], id: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function withoutNode(peers: Peer[], node: string): Peer[] {
  let lo = 0;
  let hi = peers.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (peers[mid].node < node) lo = mid + 1;
    else hi = mid;
  }
  if (lo < peers.length && peers[lo].node === node) return peers.slice(0, lo).concat(peers.slice(lo + 1));
  return peers.slice();
}

const pathKey = (p: PathRoute) => `${p.destination}|${p.toNetwork}|${p.via}|${p.sid ?? p.toNetworkId ?? ""}|${p.mode}|${p.policy}|${p.inbound ? "in" : ""}`;

/** Reuses the previous build's route objects (and arrays, when nothing changed) wherever they are equal. */
function internInto(s: SharedPaths, prev: SharedPaths): void {
  const old = new Map<string, PathRoute>();
  for (const p of prev.paths) old.set(pathKey(p), p);
  let same = s.paths.length === prev.paths.length;
  for (let i = 0; i < s.paths.length; i++) {
    const o = old.get(pathKey(s.paths[i]));
    if (o) {
      s.paths[i] = o;
      const l = prev.localized.get(o);
      if (l) s.localized.set(o, l);
    }
    if (s.paths[i] !== prev.paths[i]) same = false;
  }
  if (same) s.paths = prev.paths;
  if (deepEqual(s.egress, prev.egress)) s.egress = prev.egress;
  if (deepEqual(s.denied, prev.denied)) s.denied = prev.denied;
}

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function byName(a: NetworkForwarding, b: NetworkForwarding): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** l3 endpoints carry host routes (/32, /128); l2 ones the subnet's length. */
function withLength(address: string, net: NetInfo): string {
  const a = IPAddress.tryParse(address);
  if (!a.ok) return address;
  if (net.forwarding === "bridged") {
    const s = net.subnets.find((p) => p.contains(a.value));
    if (s) return `${a.value}/${s.length}`;
  }
  return `${a.value}/${a.value.bits}`;
}

function canonicalIp(ip: string): string {
  const a = IPAddress.tryParse(ip);
  return a.ok ? a.value.toString() : ip;
}

function compareIp(a: string, b: string): number {
  const x = IPAddress.tryParse(a);
  const y = IPAddress.tryParse(b);
  if (x.ok && y.ok) return x.value.compare(y.value);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Reads a core Node's underlay address: an IPv6 InternalIP first (SRv6 runs over IPv6), then any InternalIP. */
function nodeAddressOf(r: Resource): string | undefined {
  const addresses = (r.status as { addresses?: { type?: string; address?: string }[] } | undefined)?.addresses ?? [];
  const internal = addresses.filter((a) => a.type === "InternalIP" && typeof a.address === "string");
  return (internal.find((a) => a.address!.includes(":")) ?? internal[0])?.address;
}

function sameTexts(a: Block[], b: Block[]): boolean {
  return a.length === b.length && a.every((x, i) => x.text === b[i].text);
}

function sameEndpoint(a: EndpointInfo, b: EndpointInfo): boolean {
  return a.network === b.network && a.node === b.node && a.mac === b.mac && a.iface === b.iface && a.netns === b.netns &&
    a.addresses.length === b.addresses.length && a.addresses.every((x, i) => x === b.addresses[i]);
}

/** Equal scalars and small lists, and the very same shared inputs cut the same way. */
function sameForwarding(a: NetworkForwarding, b: NetworkForwarding): boolean {
  const x = (a as unknown as WithLazy)[LAZY];
  const y = (b as unknown as WithLazy)[LAZY];
  if (!x || !y) return deepEqual(a, b);
  return a.id === b.id && a.type === b.type && a.forwarding === b.forwarding && a.anonymous === b.anonymous && a.mtu === b.mtu &&
    a.sid === b.sid && a.sidBehavior === b.sidBehavior &&
    deepEqual(a.gateways, b.gateways) && deepEqual(a.localPrefixes, b.localPrefixes) &&
    a.neighbors === b.neighbors && a.egress === b.egress &&
    x.remote === y.remote && x.holds === y.holds &&
    x.shared.paths === y.shared.paths && a.denied === b.denied && x.localize === y.localize &&
    x.l2?.fdb === y.l2?.fdb && x.l2Local === y.l2Local;
}
