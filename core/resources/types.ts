/**
 * The lace-cni resource model: group `lace-cni.io`, version `v1alpha1`.
 *
 * These are the shapes as stored (plain JSON, as a Kubernetes API server
 * holds them). Validation lives beside them in `validate.ts`; network types
 * add their own spec checks through the plugin API.
 *
 * @example
 * const backend: Network = {
 *   apiVersion: API_VERSION, kind: "Network", metadata: { name: "backend" },
 *   spec: { type: "l3", ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 } },
 * };
 */

export const GROUP = "lace-cni.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** Every lace-cni kind, in the order manifests are usually applied. */
export const KINDS = [
  "Topology",
  "Network",
  "NetworkBindingPolicy",
  "NetworkRoutingPolicy",
  "Allocation",
  "NetworkEndpoint",
  "Neighbor",
  "FDBEntry",
] as const;
export type Kind = typeof KINDS[number];

/** Kinds without a namespace. NetworkEndpoint lives in its pod's namespace. */
export const CLUSTER_SCOPED: ReadonlySet<string> = new Set<string>(KINDS.filter((k) => k !== "NetworkEndpoint"));

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

/** Any stored object: lace-cni kinds and the core kinds the product reads. */
export interface Resource<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
}

/** A status condition, as in Kubernetes `metav1.Condition`. */
export interface Condition {
  type: "Accepted" | "Ready" | "Exhausted" | string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

// ---------------------------------------------------------------- Network

/** A subnet of an `l3` or `l2` network. */
export interface Subnet {
  /** CIDR, host bits zero: `10.40.0.0/16`. */
  prefix: string;
  /** Length of the per-node blocks; `l3` only, required there. */
  hostLocalPrefixLength?: number;
}

export interface NetworkSpec {
  /** A registered network type: `l3`, `l2`, `external`, or a plugin's. */
  type: string;
  ipv4Subnet?: Subnet;
  ipv6Subnet?: Subnet;
  /** `external` only: the underlay prefixes the network stands for. */
  externalPrefixes?: string[];
  /** When true, even the network's own endpoints need a routing policy to reach it. */
  anonymous?: boolean;
  /** `external` only: source-NAT egress to the node's underlay address (default true). */
  snat?: boolean;
  /** Type-specific options of third-party network types. */
  options?: Record<string, unknown>;
}

export interface NetworkStatus {
  /** Small numeric id, stable across restarts; used for SIDs and tables. */
  id?: number;
  conditions?: Condition[];
  usage?: {
    blocksUsed?: number;
    blocksFree?: string;
    addressesUsed?: number;
    addressesFree?: string;
  };
}

export type Network = Resource<NetworkSpec, NetworkStatus> & { kind: "Network" };

// ---------------------------------------------------------------- Allocation

export interface AllocationBlock {
  /** The block: `10.40.3.0/24`. */
  prefix: string;
  /** Owner handle → address; the addresses handed out from this block. */
  addresses?: Record<string, string>;
  /** When the block became empty (RFC 3339); it returns to the pool after a grace period. */
  emptySince?: string;
  /**
   * Pool records only (`<network>.pool.lace-cni.io`): the node that holds
   * this block of an `l3` network.
   */
  node?: string;
  /** The id of the claim that gave this block to its node; the same id in the node's Allocation and the pool. */
  claim?: string;
  /** True while the controller is still claiming the block: no address may be handed out from it yet. */
  pending?: boolean;
}

export interface AllocationSpec {
  network: string;
  node: string;
  blocks: AllocationBlock[];
}

/** The prefixes one node holds for one `l3` network. Name: `<network>.<node>`. */
export type Allocation = Resource<AllocationSpec, { conditions?: Condition[] }> & { kind: "Allocation" };

// ---------------------------------------------------------------- NetworkEndpoint

export interface NetworkEndpointSpec {
  network: string;
  node: string;
  /** Addresses, one per family the network has. */
  addresses: string[];
  mac?: string;
  /** The pod (or VM) this endpoint belongs to. */
  pod?: { namespace: string; name: string; uid?: string };
  /** The IPAM owner handle: pod UID or annotation `lace-cni.io/owner`. */
  owner?: string;
  /** The binding policy that decided the network, or null for the default. */
  bindingPolicy?: string | null;
  /** Host-side interface on the node. */
  interface?: string;
  /**
   * When the pod's last sandbox was deleted while the pod lived on (RFC 3339).
   * Absent while a sandbox is attached. A detached endpoint keeps the pod's
   * network and addresses for its next sandbox and is left out of the dataplane.
   */
  detachedAt?: string;
}

export type NetworkEndpoint = Resource<NetworkEndpointSpec, { conditions?: Condition[] }> & {
  kind: "NetworkEndpoint";
};

// ---------------------------------------------------------------- Neighbor / FDBEntry

export type LearnSource = "static" | "learned";

export interface NeighborSpec {
  network: string;
  ip: string;
  mac: string;
  source: LearnSource;
  /** Learned entries: when the datapath last saw the address (RFC 3339); silent ones age out. */
  lastSeen?: string;
}

/** IP → MAC in an `l2` network. */
export type Neighbor = Resource<NeighborSpec> & { kind: "Neighbor" };

export interface FDBEntrySpec {
  network: string;
  mac: string;
  node: string;
  source: LearnSource;
  /** Mobility sequence number: a move carries a higher one. */
  sequence?: number;
  /** Learned entries: when the datapath last saw the MAC (RFC 3339); silent ones age out. */
  lastSeen?: string;
  /** Learned entries: when the MAC moved between nodes lately (flap detection). */
  recentMoves?: string[];
  /** A flapping MAC stays where it is until then (RFC 3339): moves are ignored. */
  frozenUntil?: string;
}

/** MAC → node in an `l2` network. */
export type FDBEntry = Resource<FDBEntrySpec> & { kind: "FDBEntry" };

// ---------------------------------------------------------------- Policies

/** A Kubernetes label selector. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

/** A json-rules-engine condition tree (`all` / `any` / `not` / a fact test). */
export type ConditionTree = Record<string, unknown>;

export interface NetworkBindingPolicySpec {
  network: string;
  /** Lowest wins; ties go to the smallest name. Non-negative integer. */
  priority?: number;
  matchKind?: "Pod" | "Service";
  namespaceSelector?: LabelSelector;
  selector?: LabelSelector;
  conditions?: ConditionTree;
}

export type NetworkBindingPolicy = Resource<NetworkBindingPolicySpec, { conditions?: Condition[] }> & {
  kind: "NetworkBindingPolicy";
};

export interface NetworkSet {
  networks?: string[];
  networkSelector?: LabelSelector;
  /** Destination only: narrows the destination to these prefixes. */
  prefixes?: string[];
}

export interface NetworkRoutingPolicySpec {
  priority?: number;
  from: NetworkSet;
  to: NetworkSet;
  action: "Allow" | "Deny";
  conditions?: ConditionTree;
}

export type NetworkRoutingPolicy = Resource<NetworkRoutingPolicySpec, { conditions?: Condition[] }> & {
  kind: "NetworkRoutingPolicy";
};

// ---------------------------------------------------------------- Topology

export interface TopologySpec {
  /** IPv6 pool that node locators are cut from. */
  locatorPool: string;
  /** Length of each node's locator; longer than the pool's. */
  locatorLength: number;
  /** `Reduced`: no SRH for one segment. `SRH`: always an SRH. */
  encapsulation?: "Reduced" | "SRH";
  underlay?: { interface?: string };
  /** 0: underlay MTU minus encapsulation overhead. */
  mtu?: number;
}

export interface TopologyStatus {
  /** Node name → locator prefix. */
  locators?: Record<string, string>;
  conditions?: Condition[];
}

/** The singleton `default`. */
export type Topology = Resource<TopologySpec, TopologyStatus> & { kind: "Topology" };

/** Any lace-cni kind. */
export type LaceResource =
  | Network
  | Allocation
  | NetworkEndpoint
  | Neighbor
  | FDBEntry
  | NetworkBindingPolicy
  | NetworkRoutingPolicy
  | Topology;

/** `Kind/name` or `Kind/namespace/name`: how messages name an object. */
export function refOf(r: { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } }): string {
  const kind = typeof r.kind === "string" && r.kind ? r.kind : "<unknown kind>";
  const name = typeof r.metadata?.name === "string" && r.metadata.name ? r.metadata.name : "<unnamed>";
  const ns = typeof r.metadata?.namespace === "string" && r.metadata.namespace ? `${r.metadata.namespace}/` : "";
  return `${kind}/${ns}${name}`;
}
