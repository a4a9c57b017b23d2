/**
 * lace-cni plugin API, version 1.
 *
 * This one file is everything a plugin can provide and everything the core
 * promises it. Read it top to bottom. The built-in `l3`, `l2`, `external`
 * and `srv6` plugins use exactly this API and nothing else.
 *
 * A plugin is a module whose default export (or export named `plugin`) is a
 * {@link PluginDefinition}. Operators enable plugins in the configuration file:
 *
 * ```yaml
 * # lace.yaml
 * plugins:
 *   - lace-cni/l3                 # a built-in, by name
 *   - ./plugins/acme-vlan/mod.ts  # a path, relative to this file
 *   - name: "@acme/lace-vxlan"    # a package, with options
 *     options: { vniBase: 4000 }
 * ```
 *
 * How the core calls a plugin:
 * - `setup` runs once, in configuration order, after every plugin has been
 *   checked; it receives the plugin's own tsyringe child container.
 * - Network-type hooks (`validate`, `gateway`, `locate`) are called by the
 *   core only, and always synchronously; an exception from one is reported
 *   with the plugin's name and the hook's name. Plugins never need to add
 *   their own name to a message.
 *
 * @example
 * import { definePlugin, PLUGIN_API_VERSION } from "lace-cni/plugin";
 * export default definePlugin({
 *   name: "acme-vlan",
 *   apiVersion: "^1.0.0",
 *   networkTypes: [{ type: "vlan", addressing: "global", forwarding: "bridged",
 *     validate(spec, report) { if (typeof spec.options?.vlanId !== "number") report("options.vlanId", "expected a number"); },
 *     gateway: (net, prefix) => prefix.firstHost,
 *     locate: () => undefined }],
 * });
 */
import type { DependencyContainer } from "tsyringe";
import type { IPAddress, Prefix } from "../ip/mod.ts";
import type { PodDataplane } from "../dataplane/desired_state.ts";
import type {
  Allocation,
  FDBEntry,
  Neighbor,
  Network,
  NetworkEndpoint,
  NetworkSpec,
} from "../resources/types.ts";

/** The plugin API version this core provides. Plugins declare a semver range over it. */
export const PLUGIN_API_VERSION = "1.0.0";

/** What a plugin module exports. */
export interface PluginDefinition {
  /** Unique name: a package name or a short kebab-case name (`acme-vlan`). */
  name: string;
  /** Semver range of the plugin API it was written for: `^1.0.0`. */
  apiVersion: string;
  /** Names of plugins that must be loaded before this one. */
  dependencies?: string[];
  /** Network types this plugin defines. A type may be defined by one plugin only. */
  networkTypes?: NetworkTypeDefinition[];
  /** Dataplane features: something that can apply a node's desired state. */
  dataplanes?: DataplaneDefinition[];
  /** Facts the rules engine can use in policy `conditions`. */
  ruleFacts?: RuleFactDefinition[];
  /** Operators the rules engine can use in policy `conditions`. */
  ruleOperators?: RuleOperatorDefinition[];
  /**
   * Runs once after loading. `ctx.container` is this plugin's own child
   * container: register what the plugin needs there; tokens listed in
   * `exports` are shared into the root container afterwards.
   */
  setup?(ctx: PluginContext): void | Promise<void>;
  /** Tokens this plugin registers in its container and shares with the core and other plugins. */
  exports?: symbol[];
}

/** Identity helper that gives a plugin definition its type. */
export function definePlugin(def: PluginDefinition): PluginDefinition {
  return def;
}

/** What `setup` receives. */
export interface PluginContext {
  /** The plugin's own child container (parent: the core's root container). */
  container: DependencyContainer;
  /** The options given to this plugin in the configuration file, or `{}`. */
  options: Record<string, unknown>;
  /** A logger whose lines carry the plugin's name. */
  log: PluginLogger;
}

export interface PluginLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

// ---------------------------------------------------------------- network types

/**
 * How addresses are handed out in a network of this type:
 * - `host-local`: the subnet is cut into per-node blocks (`hostLocalPrefixLength`);
 * - `global`: each endpoint's address comes straight from the subnet;
 * - `none`: the network has no IPAM (external prefixes).
 */
export type AddressingKind = "host-local" | "global" | "none";

/**
 * How the dataplane forwards within a network of this type:
 * routed between blocks (l3), bridged by MAC (l2), or over the underlay (external).
 */
export type ForwardingKind = "routed" | "bridged" | "underlay";

/** Reports one problem at a field path relative to `spec` (`ipv4Subnet.prefix`). */
export type ProblemReporter = (path: string, message: string) => void;

/** A network type: what a Network of `spec.type` means. */
export interface NetworkTypeDefinition {
  /** The value of `spec.type`: `l3`, `vlan`. */
  type: string;
  addressing: AddressingKind;
  forwarding: ForwardingKind;
  /** One line for `lace` help and docs. */
  description?: string;
  /**
   * Checks a Network's spec for this type. Report every problem; do not
   * throw. Paths are relative to `spec`. The core has already checked
   * `type` and `anonymous`.
   */
  validate(spec: NetworkSpec, report: ProblemReporter): void;
  /**
   * The gateway address for `prefix`: a node's block (host-local) or the
   * network's subnet (global). lace-cni's own types return the first host
   * address. Undefined when the type has no gateway.
   */
  gateway(network: Network, prefix: Prefix): IPAddress | undefined;
  /**
   * Where an address lives, as seen in `view`: the node owning the block,
   * the node behind the MAC, or the external network. Undefined: not in
   * this network.
   */
  locate(network: Network, address: IPAddress, view: ClusterView): Location | undefined;
}

/** Where an address lives. */
export type Location =
  | { kind: "node"; node: string; network: string; block?: string }
  | { kind: "mac"; mac: string; node?: string; network: string }
  | { kind: "external"; network: string; prefix: string };

/**
 * A read-only view of cluster state that network types resolve addresses
 * against. The core keeps it current; lookups are cheap.
 */
export interface ClusterView {
  network(name: string): Network | undefined;
  networks(): Iterable<Network>;
  /** The Allocations of an `l3`-like network, one per node. */
  allocations(network: string): Iterable<Allocation>;
  endpoints(network: string): Iterable<NetworkEndpoint>;
  neighbor(network: string, ip: string): Neighbor | undefined;
  fdbEntry(network: string, mac: string): FDBEntry | undefined;
  /** Longest prefix match over every `external` network's prefixes. */
  externalNetworkFor(address: IPAddress): { network: string; prefix: string } | undefined;
}

// ---------------------------------------------------------------- dataplanes

/**
 * A dataplane feature, such as `srv6`: the configuration's `dataplane`
 * selects one, and the agent reaches the kernel only through what `create`
 * returns (apply the node's desired state; attach, detach and check pods).
 */
export interface DataplaneDefinition {
  /** The feature name operators select: `srv6`. */
  feature: string;
  description?: string;
  /** Builds the dataplane for one node, resolving what it needs from the container. */
  create(container: DependencyContainer, options: DataplaneOptions): Promise<PodDataplane>;
}

export interface DataplaneOptions {
  node: string;
  /** Path of the node's network namespace, when the node is not the host itself (sandbox, tests). */
  netns?: string;
  /**
   * Apply without holding up the caller's event loop (the agent serves CNI
   * requests while a state is applied): a dataplane whose apply blocks
   * (srv6 runs `nft`) then applies in a worker thread of its own.
   */
  background?: boolean;
  /**
   * The dataplane's settings from the configuration (`dataplane: {feature:
   * srv6, backend: bpf}` gives `{backend: "bpf"}`); the plugin checks them and
   * names the bad field as `dataplane.<key>`.
   */
  settings?: Record<string, unknown>;
}

// ---------------------------------------------------------------- rules

/**
 * A fact for policy conditions, computed from the facts the core provides
 * (`kind`, `namespace`, `name`, `labels`, `annotations`, `namespaceLabels`,
 * `node`, and for routing `sourceNetwork`, `destinationNetwork`,
 * `destinationPrefix`, `sourceType`, `destinationType`).
 */
export interface RuleFactDefinition {
  name: string;
  description?: string;
  /** Which policies may use it; default both. */
  appliesTo?: ("binding" | "routing")[];
  compute(facts: Readonly<Record<string, unknown>>, params: Record<string, unknown> | undefined): unknown;
}

/**
 * An operator for policy conditions: `{ fact: "destinationPrefix", operator: "cidrWithin", value: "10.0.0.0/8" }`
 * (the fact first, as json-rules-engine's own `contains`: `cidrContains` reads "the fact contains the value").
 */
export interface RuleOperatorDefinition {
  name: string;
  description?: string;
  /** `factValue` is the fact's value, `value` the condition's `value`. */
  evaluate(factValue: unknown, value: unknown): boolean;
}
