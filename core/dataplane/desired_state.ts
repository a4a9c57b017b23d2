/**
 * The dataplane-neutral desired state of one node: what the controller
 * computes from resources and rules, and what a dataplane plugin (such as
 * `plugins/srv6`) applies to the kernel. Nothing here names a Linux object
 * that a dataplane could not choose differently: bridges, tables and SIDs
 * are given as names and numbers the dataplane is free to map.
 *
 * Addresses and prefixes are canonical text (`10.40.3.0/24`, `fd00:1ace:0:1::`),
 * so the state is plain JSON: it can be stored, diffed, printed by
 * `lace plan` and sent between processes unchanged.
 *
 * @example
 * const state: NodeDesiredState = {
 *   node: "node-1", revision: 1, locator: "fd00:1ace:0:1::/48",
 *   encapsulation: "Reduced", underlay: { interface: "" , mtu: 1500 },
 *   networks: [], endpoints: [],
 * };
 */

/** The whole desired state for one node. */
export interface NodeDesiredState {
  node: string;
  /** Increases every time the controller publishes a changed state for the node. */
  revision: number;
  /** The node's locator, cut from the Topology pool: `fd00:1ace:0:1::/48`. */
  locator: string;
  /** Reduced: one segment without an SRH. SRH: always an SRH. */
  encapsulation: "Reduced" | "SRH";
  underlay: {
    /** The underlay device; empty: the device of the default route. */
    interface: string;
    /** The underlay MTU the pod MTU is derived from. */
    mtu: number;
    /** The node's own underlay address, when known (for SNAT and the locator route). */
    address?: string;
  };
  /** Every network with something on this node: endpoints, or an allowed path from one. */
  networks: NetworkForwarding[];
  /** The pods (and VMs) on this node. */
  endpoints: LocalEndpoint[];
  /** The other nodes: where their locators are reached over the underlay. */
  peers?: Peer[];
  /**
   * The Services this node load-balances: those bound to a network that one
   * of the node's networks may reach (sorted by id). Absent: none.
   */
  services?: ServiceForwarding[];
}

/**
 * A Service bound to a network, as a node forwards it: a connection a pod of
 * one of `sources` opens to a ClusterIP and port goes to one of
 * `endpoints`; connections to the ClusterIPs from any other network are
 * dropped. The sources follow the same reachability decision as pod → pod
 * (the service's own network unless anonymous, or a routing policy
 * allowing source → network).
 *
 * @example
 * const svc: ServiceForwarding = {
 *   id: "shop/cart", network: "backend", clusterIPs: ["10.96.0.10"], sessionAffinity: "None",
 *   ports: [{ protocol: "TCP", port: 80 }], sources: ["backend", "frontend"],
 *   endpoints: [{ pod: "shop/cart-0", node: "node-1", addresses: ["10.40.1.5"], ports: [8080] }],
 * };
 */
export interface ServiceForwarding {
  /** `namespace/name` of the Service. */
  id: string;
  /** The network the Service is bound to (its `lace-cni.io/network` annotation). */
  network: string;
  /** The Service's ClusterIPs (no prefix length), IPv4 first. */
  clusterIPs: string[];
  ports: ServicePortForwarding[];
  /** `ClientIP`: one client address keeps reaching the same endpoint while the endpoints stay the same. */
  sessionAffinity: "None" | "ClientIP";
  /** The networks whose endpoints may open connections to the Service, sorted. */
  sources: string[];
  /**
   * The ready endpoints bound to `network`, from the Service's EndpointSlices
   * or its selector (core/controller/services.ts), sorted by pod, then address.
   */
  endpoints: ServiceEndpoint[];
}

export interface ServicePortForwarding {
  name?: string;
  protocol: "TCP" | "UDP";
  port: number;
}

/** One endpoint of a Service. */
export interface ServiceEndpoint {
  /** `namespace/name` of the pod; `""` for an EndpointSlice endpoint that names no pod (an address alone). */
  pod: string;
  /** Where it runs; `""` when an EndpointSlice endpoint names neither a pod nor a node. */
  node: string;
  /** The pod's addresses in the service's network (no prefix length). */
  addresses: string[];
  /** The target port for each of the Service's `ports`, in order; 0 where a named target port is not among the pod's. */
  ports: number[];
}

/** Another node, as seen from this one. */
export interface Peer {
  node: string;
  locator: string;
  /** The peer's underlay address, when the dataplane needs a next hop. */
  address?: string;
}

/** One network's forwarding context on one node. */
export interface NetworkForwarding {
  /** The Network's name. */
  name: string;
  /** The Network's id (status.id): small, stable, unique. */
  id: number;
  /** The network type: `l3`, `l2`, `external`, or a plugin's. */
  type: string;
  /** How this type forwards: routed between blocks, bridged by MAC, or over the underlay. */
  forwarding: "routed" | "bridged" | "underlay";
  anonymous: boolean;
  /** MTU for the network's pods: underlay MTU minus encapsulation overhead. */
  mtu: number;
  /** This node's decapsulation SID for the network (an address in the node's locator). */
  sid?: string;
  /** What the SID does: decapsulate and look up in the table, or deliver the frame into the bridge. */
  sidBehavior?: "decap-lookup" | "decap-bridge";
  /** Gateway addresses with their prefix length, on the bridge: `10.40.3.1/24`. */
  gateways: string[];
  /** Blocks this node owns (l3) or the network's subnets (l2). */
  localPrefixes: string[];
  /** Blocks owned by other nodes, reached by encapsulating to their SID. */
  remoteBlocks: RemoteBlock[];
  /** Routes for allowed paths to other networks (and the implicit own-network route). */
  paths: PathRoute[];
  /** l2: IP → MAC entries answered locally. */
  neighbors: NeighborEntry[];
  /** l2: MAC → location. */
  fdb: FdbEntry[];
  /** external: prefixes that leave through the underlay, and whether to SNAT. */
  egress: EgressRoute[];
  /**
   * Prefixes inside this network's own subnets that a Deny routing policy
   * closes to the network's own endpoints (from `backend` to
   * `10.40.5.0/24` inside backend's `10.40.0.0/16`). Absent or empty: none.
   * See {@link DeniedDestination} for what a dataplane does with them.
   */
  denied?: DeniedDestination[];
}

/**
 * A destination inside the network's own subnets that its endpoints may
 * not open connections to. Routes are left as they are: the blocks there
 * are still the network's, other networks a policy allows there still get
 * through (their traffic is looked up in this network's table after
 * decapsulation), and replies to connections opened from the prefix still
 * return. So a dataplane drops only new connections that this network's
 * local endpoints open to `destination` (srv6: like a `reply-only` path,
 * `iifname <bridge> daddr <destination> ct state new drop`), not with a
 * blackhole route in the shared table. Pieces are disjoint and never
 * cover a narrower prefix a policy allows.
 */
export interface DeniedDestination {
  destination: string;
  /** The deciding Deny policy (null: the default of an anonymous network). */
  policy: string | null;
}

/** A block owned by another node. */
export interface RemoteBlock {
  prefix: string;
  node: string;
  /** The owner node's SID for this network. */
  sid: string;
}

/**
 * A route installed in this network's table because a path to `toNetwork`
 * is allowed. `mode: "reply-only"` means the reverse of an allowed path:
 * the route exists so replies return, but new connections are dropped.
 */
export interface PathRoute {
  destination: string;
  toNetwork: string;
  /** `local`: a block on this node; `sid`: encapsulate to `sid`; `underlay`: leave through the underlay. */
  via: "local" | "sid" | "underlay";
  sid?: string;
  /** Where `via: "local"`, the id of the destination network (whose local side on this node holds the block). */
  toNetworkId?: number;
  mode: "allow" | "reply-only";
  /** The deciding routing policy, or null for the implicit own-network route. */
  policy: string | null;
  /**
   * `via: "underlay"` with `mode: "allow"` only: the external network may also open
   * connections into this one (a policy allows both directions). A `reply-only`
   * underlay path implies it.
   */
  inbound?: boolean;
}

export interface NeighborEntry {
  ip: string;
  mac: string;
  source: "static" | "learned";
}

export interface FdbEntry {
  mac: string;
  node: string;
  /** Set when the MAC is on another node: the SID frames are encapsulated to. */
  sid?: string;
  source: "static" | "learned";
  sequence: number;
}

export interface EgressRoute {
  prefix: string;
  /** The external network the prefix belongs to. */
  network: string;
  snat: boolean;
}

/** A pod or VM interface on this node. */
export interface LocalEndpoint {
  /** `namespace/name` of the NetworkEndpoint. */
  id: string;
  network: string;
  /** Addresses with prefix length (`/32`, `/128` for l3; the subnet's for l2). */
  addresses: string[];
  mac?: string;
  /** Host-side interface name. */
  interface: string;
  /** The pod's network namespace path, where known. */
  netns?: string;
}

/** What a dataplane reports it can do. */
export interface DataplaneCapabilities {
  vrf: boolean;
  seg6: boolean;
  seg6local: boolean;
  nexthopObjects: boolean;
  bpf: boolean;
  /** Whether networks with overlapping subnets can be kept apart on one node. */
  overlappingSubnets: boolean;
  /** Kinds of network forwarding this dataplane can program. */
  forwarding: ("routed" | "bridged" | "underlay")[];
  /** The backend the dataplane chose on this node, where it has several (srv6: `kernel` or `bpf`). */
  backend?: string;
  /**
   * Why a kind of forwarding is missing from `forwarding` on this node, in
   * a sentence the agent passes on when it refuses a pod of such a network
   * (srv6's kernel backend: bridged).
   */
  notForwarded?: Partial<Record<"routed" | "bridged" | "underlay", string>>;
}

/** The outcome of one `apply`. */
export interface ApplyReport {
  /** Kernel (or other) objects created, changed and removed. */
  added: number;
  changed: number;
  removed: number;
  /** Writes made to the system; zero when it already matched. */
  writes: number;
  durationMs: number;
}

/**
 * A dataplane: turns desired state into system state, idempotently.
 * Plugins provide one through `PluginDefinition.dataplanes`.
 */
export interface Dataplane {
  capabilities(): Promise<DataplaneCapabilities>;
  /** Makes the node match `state`, changing only the difference and removing stale objects of its own. */
  apply(state: NodeDesiredState): Promise<ApplyReport>;
  close(): Promise<void>;
}

/** What the agent knows about a pod's interface when it plugs the pod in (CNI ADD). */
export interface PodAttachment {
  /** The pod's network namespace (path or `ip netns` name). */
  netns: string;
  /** Interface name inside the pod: `eth0`. */
  ifname: string;
  /** The node-side interface name (the endpoint's `interface` in the desired state). */
  hostIfname: string;
  /** The pod's network. */
  network: string;
  /** The network's id (NetworkForwarding.id): the dataplane finds the network's local side by it. */
  networkId?: number;
  /** Addresses with prefix length: `10.40.3.5/32`, `fd00:40:0:3::5/128`. */
  addresses: string[];
  /** The network's gateways on this node, with the block's length: `10.40.3.1/24`. */
  gateways: string[];
  /** The pod's MTU (NetworkForwarding.mtu). */
  mtu: number;
  mac?: string;
}

/** What CHECK found wrong with a pod's interface, or undefined when all is as attached. */
export type PodCheck = string | undefined;

/**
 * A dataplane that also plugs pods in: what a dataplane plugin's `create`
 * returns, and all the agent uses.
 *
 * @example
 * const dp = await selectDataplane(loaded, config).definition.create(loaded.container, { node: "node-1" });
 * await dp.apply(state);
 * await dp.attachPod({ netns: "/run/netns/pod-a", ifname: "eth0", hostIfname: "lace1a2b3c", network: "red",
 *   addresses: ["10.40.3.5/32"], gateways: ["10.40.3.1/24"], mtu: 1460 });
 */
export interface PodDataplane extends Dataplane {
  /** Creates and configures the pod's interface on a network applied earlier. */
  attachPod(pod: PodAttachment): Promise<void>;
  /** Removes it. A missing link or namespace is success (CNI DEL may repeat). */
  detachPod(pod: { hostIfname: string; netns?: string }): Promise<void>;
  /** Verifies the node side and the pod side (interface, addresses, MTU). */
  checkPod(pod: PodAttachment): Promise<PodCheck>;
  /** Node-side names of every pod interface this dataplane has on the node (for GC). */
  podPorts(): Promise<string[]>;
  /** The datapath's packet counters by event, where it keeps any (exported as metrics). */
  counters?(): Record<string, number> | undefined;
  /**
   * What the datapath saw on bridged networks since the last call: MACs
   * (and addresses) that no endpoint of ours has. The agent writes them as
   * learned Neighbor and FDBEntry resources. A dataplane that does not
   * learn leaves it out.
   */
  sightings?(): Promise<{ network: string; mac: string; ip?: string }[]>;
  /**
   * What the node's datapath holds, read back from it (not from the desired
   * state), for a new connection from the network with id `networkId` to
   * `destination`: the verdict it would give and the entries that carry it
   * (table routes, map entries, filter rules), named as this dataplane
   * names them. `lace explain` shows it beside the routing decision, so a
   * datapath that disagrees with the decision is visible. A dataplane that
   * cannot read itself back leaves it out.
   */
  trace?(query: TraceQuery): Promise<DataplaneTrace>;
}

/** What {@link PodDataplane.trace} is asked. */
export interface TraceQuery {
  /** The source network's id (NetworkForwarding.id). */
  networkId: number;
  /** The destination address: `10.40.2.2`, `fd00:60::2`. */
  destination: string;
}

/**
 * A datapath's own answer for one (network, destination): `allow` (new
 * connections leave towards the destination), `reply-only` (a route exists
 * so replies return, new connections are dropped), `deny` (no route, or a
 * drop), `unknown` (the dataplane holds nothing for the network).
 *
 * @example
 * const t: DataplaneTrace = { verdict: "allow", via: "sid", sid: "fd00:1ace:3::3",
 *   entries: [{ kind: "route", text: "table 1003: 10.40.2.0/24 dev lace-fabric" },
 *             { kind: "map", text: "lace_encap4[net 3, 10.40.2.0/24] = SID fd00:1ace:3::3" }] };
 */
export interface DataplaneTrace {
  verdict: "allow" | "reply-only" | "deny" | "unknown";
  /** How it leaves the node, when it does: delivered on this node, encapsulated to a SID, or out of the underlay. */
  via?: "local" | "sid" | "underlay";
  /** The SID it is encapsulated to (`via: "sid"`). */
  sid?: string;
  /** The entries that carry (or stop) it, in the order a packet meets them; `kind` is the dataplane's word (`rule`, `route`, `nexthop`, `map`, `nft`). */
  entries: { kind: string; text: string }[];
  /** Why the verdict is what it is, in one sentence, where the entries alone do not say. */
  reason?: string;
}
