/**
 * What loaded plugins provide, held so that only the core calls it: network
 * types and rule extensions. Every hook handed out here is wrapped, so an
 * exception from a plugin always names the plugin and the hook and plugin
 * authors never add their own name to messages.
 *
 * @example
 * const types = new NetworkTypeRegistry();
 * types.register("acme-vlan", vlanType);
 * types.get("vlan")?.validate(spec, report); // a throw becomes PLUGIN_HOOK_FAILED
 */
import { isLaceError, LaceError } from "../errors.ts";
import type { ForwardingKind, NetworkTypeDefinition, RuleFactDefinition, RuleOperatorDefinition } from "./api.ts";
import type { IPAddress, Prefix } from "../ip/mod.ts";
import type { Network } from "../resources/types.ts";

/** The message of anything thrown, without assuming it is an Error. */
function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === "string" ? e : String(e);
}

/**
 * Runs `fn` as plugin code: a throw becomes `PLUGIN_HOOK_FAILED` naming the
 * plugin and the hook, with the original error as `cause`.
 *
 * @example
 * callHook("acme-vlan", "validate", () => def.validate(spec, report));
 */
export function callHook<T>(plugin: string, hook: string, fn: () => T, subject = ""): T {
  try {
    return fn();
  } catch (e) {
    throw hookFailed(plugin, hook, e, subject);
  }
}

/**
 * The error for a plugin hook that threw or rejected.
 *
 * @example
 * hookFailed("acme-vlan", "setup", new Error("boom")).message;
 * // 'Plugin "acme-vlan" failed in hook "setup": boom'
 */
export function hookFailed(plugin: string, hook: string, e: unknown, subject = ""): LaceError {
  // A hook failure from a nested plugin call already names the right plugin.
  if (isLaceError(e, "PLUGIN_HOOK_FAILED")) return e;
  const where = subject === "" ? "" : ` of ${subject}`;
  return new LaceError("PLUGIN_HOOK_FAILED", `Plugin "${plugin}" failed in hook "${hook}"${where}: ${messageOf(e)}`, {
    plugin,
    hook,
    cause: e,
  });
}

// ---------------------------------------------------------------- network types

/** One registered network type and the plugin that provides it. */
export interface NetworkTypeEntry {
  type: string;
  plugin: string;
  /** The wrapped definition the core calls. */
  definition: NetworkTypeDefinition;
}

function wrapNetworkType(plugin: string, def: NetworkTypeDefinition): NetworkTypeDefinition {
  const subject = `network type "${def.type}"`;
  return Object.freeze({
    type: def.type,
    addressing: def.addressing,
    forwarding: def.forwarding,
    description: def.description,
    validate: (spec, report) => callHook(plugin, "validate", () => def.validate(spec, report), subject),
    gateway: (network, prefix) => callHook(plugin, "gateway", () => def.gateway(network, prefix), subject),
    locate: (network, address, view) => callHook(plugin, "locate", () => def.locate(network, address, view), subject),
  } satisfies NetworkTypeDefinition);
}

/**
 * Every loaded network type, by `spec.type`. Satisfies the validator's
 * `NetworkTypeLookup` (`get` + `types`).
 *
 * @example
 * registry.get("l3")?.addressing; // "host-local"
 * registry.types();               // ["l3", "l2", "external", "vlan"]
 */
export class NetworkTypeRegistry {
  readonly #entries = new Map<string, NetworkTypeEntry>();

  /** Adds `def` for `plugin`; refuses a type another plugin already provides. */
  register(plugin: string, def: NetworkTypeDefinition): void {
    const taken = this.#entries.get(def.type);
    if (taken !== undefined) {
      throw new LaceError(
        "PLUGIN_DUPLICATE_NETWORK_TYPE",
        `Cannot load plugin "${plugin}": network type "${def.type}" is already provided by plugin "${taken.plugin}"`,
        { plugin },
      );
    }
    this.#entries.set(def.type, { type: def.type, plugin, definition: wrapNetworkType(plugin, def) });
  }

  /** The wrapped definition of `type`, or undefined when no plugin provides it. */
  get(type: string): NetworkTypeDefinition | undefined {
    return this.#entries.get(type)?.definition;
  }

  has(type: string): boolean {
    return this.#entries.has(type);
  }

  /** The name of the plugin providing `type`. */
  pluginFor(type: string): string | undefined {
    return this.#entries.get(type)?.plugin;
  }

  /** Every type, in load order. */
  types(): string[] {
    return [...this.#entries.keys()];
  }

  /** Every type with its plugin, in load order. */
  entries(): NetworkTypeEntry[] {
    return [...this.#entries.values()];
  }
}

/**
 * What the desired-state builder asks of network types, answered by their
 * declarations and hooks: how a type forwards, and where it puts a
 * prefix's gateway.
 *
 * @example
 * new DesiredStateBuilder({ node: "node-1", ...typeDeclarations(rt.networkTypes) });
 */
export function typeDeclarations(types: Pick<NetworkTypeRegistry, "get">): {
  forwardingOf: (type: string) => ForwardingKind | undefined;
  gatewayOf: (network: Network, prefix: Prefix) => IPAddress | undefined;
} {
  return {
    forwardingOf: (type) => types.get(type)?.forwarding,
    gatewayOf: (network, prefix) => types.get(network.spec?.type ?? "")?.gateway(network, prefix),
  };
}

/**
 * Where a network's type puts a prefix's gateway, for IPAM (the
 * allocators' `gateway` option); undefined when no loaded plugin provides
 * the type.
 *
 * @example
 * new HostLocalAllocator(store, { network: "shop", node: "node-1", blocks, gateway: networkGateway(types, shop) });
 */
export function networkGateway(types: Pick<NetworkTypeRegistry, "get">, network: Network): ((prefix: Prefix) => IPAddress | undefined) | undefined {
  const def = types.get(network.spec?.type ?? "");
  return def ? (prefix) => def.gateway(network, prefix) : undefined;
}

// ---------------------------------------------------------------- rule extensions

/** Operators json-rules-engine has built in; a plugin may not replace them. */
export const BUILT_IN_RULE_OPERATORS: readonly string[] = [
  "equal",
  "notEqual",
  "in",
  "notIn",
  "contains",
  "doesNotContain",
  "lessThan",
  "lessThanInclusive",
  "greaterThan",
  "greaterThanInclusive",
];

/** Facts the core provides to policy conditions (see `RuleFactDefinition`). */
export const CORE_RULE_FACTS: readonly string[] = [
  "kind",
  "namespace",
  "name",
  "labels",
  "annotations",
  "namespaceLabels",
  "node",
  "sourceNetwork",
  "destinationNetwork",
  "destinationPrefix",
  "sourceType",
  "destinationType",
];

/** A plugin's rule operator, with its `evaluate` wrapped. */
export interface RuleOperatorEntry {
  name: string;
  plugin: string;
  definition: RuleOperatorDefinition;
}

/** A plugin's rule fact, with its `compute` wrapped. */
export interface RuleFactEntry {
  name: string;
  plugin: string;
  definition: RuleFactDefinition;
}

/**
 * Facts and operators contributed by plugins, for the rules engine. Names
 * are unique across plugins, and may not shadow json-rules-engine's
 * operators or the core's facts.
 *
 * @example
 * const ext = new RuleExtensions();
 * ext.addOperator("acme-geo", { name: "inCountry", evaluate: (f, v) => f === v });
 * ext.operator("inCountry")?.definition.evaluate("fr", "fr"); // true
 */
export class RuleExtensions {
  readonly #operators = new Map<string, RuleOperatorEntry>();
  readonly #facts = new Map<string, RuleFactEntry>();
  readonly #reservedOperators: ReadonlySet<string>;
  readonly #reservedFacts: ReadonlySet<string>;

  constructor(reserved: { operators?: readonly string[]; facts?: readonly string[] } = {}) {
    this.#reservedOperators = new Set(reserved.operators ?? BUILT_IN_RULE_OPERATORS);
    this.#reservedFacts = new Set(reserved.facts ?? CORE_RULE_FACTS);
  }

  addOperator(plugin: string, def: RuleOperatorDefinition): void {
    this.#refuseTaken(plugin, "operator", def.name, this.#reservedOperators, this.#operators.get(def.name)?.plugin);
    const subject = `operator "${def.name}"`;
    const definition: RuleOperatorDefinition = Object.freeze({
      name: def.name,
      description: def.description,
      evaluate: (factValue: unknown, value: unknown) =>
        callHook(plugin, "evaluate", () => def.evaluate(factValue, value), subject),
    });
    this.#operators.set(def.name, { name: def.name, plugin, definition });
  }

  addFact(plugin: string, def: RuleFactDefinition): void {
    this.#refuseTaken(plugin, "fact", def.name, this.#reservedFacts, this.#facts.get(def.name)?.plugin);
    const subject = `fact "${def.name}"`;
    const definition: RuleFactDefinition = Object.freeze({
      name: def.name,
      description: def.description,
      appliesTo: def.appliesTo,
      compute: (facts: Readonly<Record<string, unknown>>, params: Record<string, unknown> | undefined) =>
        callHook(plugin, "compute", () => def.compute(facts, params), subject),
    });
    this.#facts.set(def.name, { name: def.name, plugin, definition });
  }

  operator(name: string): RuleOperatorEntry | undefined {
    return this.#operators.get(name);
  }

  fact(name: string): RuleFactEntry | undefined {
    return this.#facts.get(name);
  }

  /** Every plugin operator, in load order. */
  operators(): RuleOperatorEntry[] {
    return [...this.#operators.values()];
  }

  /** Every plugin fact in load order; with `policy`, only those usable there. */
  facts(policy?: "binding" | "routing"): RuleFactEntry[] {
    const all = [...this.#facts.values()];
    if (policy === undefined) return all;
    return all.filter((f) => f.definition.appliesTo === undefined || f.definition.appliesTo.includes(policy));
  }

  /**
   * The wrapped definitions as plain lists, the shape the rules engine takes
   * (`RuleExtensionSet`).
   *
   * @example
   * BindingRules.compile(policies, { extensions: loaded.ruleExtensions.definitions() });
   */
  definitions(): { operators: RuleOperatorDefinition[]; facts: RuleFactDefinition[] } {
    return { operators: this.operators().map((o) => o.definition), facts: this.facts().map((f) => f.definition) };
  }

  #refuseTaken(plugin: string, what: "operator" | "fact", name: string, reserved: ReadonlySet<string>, owner?: string) {
    let by: string | undefined;
    if (reserved.has(name)) by = what === "operator" ? "json-rules-engine itself" : "the core";
    else if (owner !== undefined) by = `plugin "${owner}"`;
    if (by === undefined) return;
    throw new LaceError(
      "PLUGIN_DUPLICATE_RULE_EXTENSION",
      `Cannot load plugin "${plugin}": rule ${what} "${name}" is already provided by ${by}`,
      { plugin },
    );
  }
}
