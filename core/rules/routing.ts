/**
 * NetworkRoutingPolicies as json-rules-engine rules, and the reachability
 * table they produce.
 *
 * A decision is about a directional pair: a source network and a
 * destination, where a destination is one prefix of a network (a subnet,
 * an external prefix) or a narrower prefix that a policy's `to.prefixes`
 * names inside one. Each policy compiles to one rule over the facts
 * `sourceNetwork`, `destinationNetwork`, `destinationPrefix`, `sourceType`,
 * `destinationType` (plus `sourceLabels`/`destinationLabels` and the keyed
 * `sourceNetworkLabel`/`destinationNetworkLabel` for `networkSelector`s).
 * The pair is decided by the first rule that holds in (priority, name)
 * order; with none, a network reaches itself unless it is `anonymous`, and
 * different networks are denied.
 *
 * The table is computed without asking json-rules-engine about pairs no
 * policy names: each policy's sources and destinations are resolved first
 * (names directly, selectors through a label index), so only the pairs some
 * policy could decide reach the engine, each with its candidates in order.
 *
 * @example
 * const rules = RoutingRules.compile(policies, networks);
 * const table = await rules.reachability();
 * table.sources.get("frontend"); // [..., { network: "backend", prefix: "10.40.0.0/16", action: "allow", policy: "fe-to-be" }, ...]
 * table.replies.get("backend");  // [{ network: "frontend", prefix: "10.10.0.0/16", policy: "fe-to-be" }]: reply-only routes
 * (await rules.decide("backend", { address: "192.0.2.200" })).decision; // "deny"
 */
import { laceError } from "../errors.ts";
import { IPAddress, type Prefix } from "../ip/mod.ts";
import type { RuleOperatorDefinition } from "../plugin/api.ts";
import type { LabelSelector, Network, NetworkRoutingPolicy, NetworkSet } from "../resources/types.ts";
import { comparePolicies, type Ranked } from "./candidate_index.ts";
import { type ConditionOutcome, conditionOutcomes, prepareConditions } from "./conditions.ts";
import { type CompiledRule, type CoreParamFact, NO_RULE_EXTENSIONS, PolicyEngine, type RuleExtensionSet } from "./engine.ts";
import { addressOrPrefix, cachedPrefix, type NetworkInfo, networkInfo, NetworkLocator } from "./network_locator.ts";
import { formatProblem, invalidPolicy, policyHead, type PolicyProblem, priorityOf } from "./policy_problem.ts";
import { type FieldProblem, selectorAnchors, selectorConditions } from "./selector.ts";

/** The facts routing conditions may use, besides the keyed ones and plugins'. */
export const ROUTING_FACTS = [
  "sourceNetwork",
  "destinationNetwork",
  "destinationPrefix",
  "sourceType",
  "destinationType",
  "sourceLabels",
  "destinationLabels",
] as const;

/** Keyed facts: `{ fact: "destinationNetworkLabel", params: { key: "zone" } }` is the label's value, or null. */
export const ROUTING_KEYED_FACTS: readonly CoreParamFact[] = [
  { name: "sourceNetworkLabel", compute: (f, p) => valueOf(f.sourceLabels, p.key) },
  { name: "destinationNetworkLabel", compute: (f, p) => valueOf(f.destinationLabels, p.key) },
];

/**
 * The core operator `to.prefixes` compiles to: the fact (a prefix or an
 * address) lies within one of the value's prefixes.
 *
 * @example
 * WITHIN_PREFIXES.evaluate("10.1.2.0/24", ["10.0.0.0/8"]); // true
 */
export const WITHIN_PREFIXES: RuleOperatorDefinition = {
  name: "withinPrefixes",
  description: "The fact (a prefix or address) lies within one of the given prefixes",
  evaluate(factValue, value) {
    const p = addressOrPrefix(factValue);
    if (!p) return false;
    for (const v of Array.isArray(value) ? value : [value]) {
      const q = cachedPrefix(v);
      if (q && q.covers(p)) return true;
    }
    return false;
  },
};

/** Allow or deny. */
export type RouteAction = "allow" | "deny";

/** Why a pair was decided as it was. */
export type RouteReason = "policy" | "same-network" | "anonymous" | "different-networks" | "no-network";

/** One destination in a source network's reachability. */
export interface ReachEntry {
  network: string;
  /** The destination prefix; null for a network without prefixes. */
  prefix: string | null;
  action: RouteAction;
  /** The deciding policy; null for the default. */
  policy: string | null;
}

/** A route back to a source so replies return; new connections that way are not allowed. */
export interface ReplyEntry {
  /** The network the replies go back to (the source of the allowed path). */
  network: string;
  prefix: string;
  /** The policy that allowed the forward path. */
  policy: string | null;
}

/**
 * The reachability table: per source network, the destinations it may open
 * connections to (plus denied carve-outs inside them, so narrower denied
 * prefixes get routes that drop), and per network the reply-only routes
 * back to the sources that may reach it.
 */
export interface ReachabilityTable {
  sources: Map<string, ReachEntry[]>;
  replies: Map<string, ReplyEntry[]>;
  stats: { networks: number; destinations: number; pairs: number; evaluations: number };
}

/** Where a route goes: a network (all its prefixes) or an address. */
export type RouteTarget = { network: string } | { address: string };

/** The decision for one pair. */
export interface RouteDecision {
  from: string;
  toNetwork: string | null;
  prefix: string | null;
  decision: RouteAction;
  policy: string | null;
  reason: RouteReason;
}

/** One policy's evaluation against a pair. */
export interface RoutingPolicyEvaluation {
  policy: string;
  priority: number;
  action: "Allow" | "Deny";
  matched: boolean;
  decided: boolean;
  conditions: ConditionOutcome[];
}

/** Everything `lace explain` shows about a path. */
export interface RouteExplanation extends RouteDecision {
  /** The default that applied, in words, when no policy decided. */
  default?: string;
  /** Every policy in decision order. */
  considered: RoutingPolicyEvaluation[];
  /** For a network with several prefixes: the decision for each. */
  prefixes: RouteDecision[];
  /** The reverse direction: whether the destination may open connections back (if not, replies still return). */
  reverse: RouteDecision | null;
}

export interface RoutingOptions {
  extensions?: RuleExtensionSet;
}

interface Net extends NetworkInfo {
  idx: number;
  units: Unit[];
}

interface Unit {
  idx: number;
  net: Net;
  prefix: Prefix | null;
  text: string | null;
  /** The network's own prefix this one narrows; undefined for a network's own prefixes. */
  parent?: Unit;
}

interface CompiledRoutingPolicy extends Ranked, CompiledRoutingRule {
  /** Candidate source networks (indices, no repeats); null: every network. */
  sources: number[] | null;
  /** Candidate destinations (unit indices, no repeats); null: every destination. */
  units: number[] | null;
  /** The same as sets, built on the first single decision. */
  sourceSet?: Set<number>;
  unitSet?: Set<number>;
}

interface Outcome {
  action: RouteAction;
  policy: string | null;
  reason: RouteReason;
}

const SEP = "\u0000";

/** A compiled, indexed set of routing policies over a fixed set of networks. Recompile when either changes. */
export class RoutingRules {
  readonly engine: PolicyEngine;
  /** Policies left out because they could not be compiled. */
  readonly problems: PolicyProblem[] = [];
  private readonly nets: Net[] = [];
  private readonly netByName = new Map<string, Net>();
  private units: Unit[] = [];
  private readonly policies: CompiledRoutingPolicy[] = [];
  private readonly locator: NetworkLocator;
  private readonly netsByLabel = new Map<string, number[]>();

  private constructor(networks: Iterable<Network>, options: RoutingOptions) {
    this.engine = routingEngine(options.extensions);
    for (const n of networks) {
      if (typeof n?.metadata?.name !== "string" || this.netByName.has(n.metadata.name)) continue;
      const net: Net = { ...networkInfo(n), idx: this.nets.length, units: [] };
      this.nets.push(net);
      this.netByName.set(net.name, net);
      for (const k in net.labels) {
        push(this.netsByLabel, k, net.idx);
        push(this.netsByLabel, k + SEP + net.labels[k], net.idx);
      }
    }
    this.locator = new NetworkLocator(this.nets);
  }

  /** Compiles the policies against the networks; policies that cannot be compiled are left out and listed in `problems`. */
  static compile(policies: Iterable<NetworkRoutingPolicy>, networks: Iterable<Network>, options: RoutingOptions = {}): RoutingRules {
    const rules = new RoutingRules(networks, options);
    const seen = new Set<string>();
    for (const p of policies) {
      const problems: FieldProblem[] = [];
      const compiled = rules.compileOne(p, problems);
      if (compiled && seen.has(compiled.name)) {
        rules.problems.push({ kind: "NetworkRoutingPolicy", policy: compiled.name, path: "metadata.name", message: "the name is used by another policy: this one is left out" });
        continue;
      }
      if (compiled) {
        seen.add(compiled.name);
        rules.policies.push(compiled);
      } else for (const q of problems) rules.problems.push({ kind: "NetworkRoutingPolicy", policy: p?.metadata?.name ?? "", ...q });
    }
    rules.policies.sort(comparePolicies);
    rules.buildUnits();
    for (const p of rules.policies) rules.resolveCandidates(p);
    return rules;
  }

  /** Compiles one policy on its own; throws INVALID_RESOURCE with every problem. For admission checks. */
  static check(policy: NetworkRoutingPolicy, options: RoutingOptions = {}): void {
    const rules = new RoutingRules([], options);
    const problems: FieldProblem[] = [];
    if (!rules.compileOne(policy, problems)) throw invalidPolicy("NetworkRoutingPolicy", policy?.metadata?.name ?? "", problems);
  }

  /** Number of policies compiled. */
  get size(): number {
    return this.policies.length;
  }

  /** The network an address lives in: l3/l2 by subnet, external by longest prefix match. */
  networkFor(address: string): { network: string; prefix: string } | undefined {
    const a = IPAddress.tryParse(address);
    if (!a.ok) throw laceError("INVALID_ARGUMENT", `Expected an IP address, got ${JSON.stringify(address)}: ${a.error}`);
    const m = this.locator.networkFor(a.value);
    return m && { network: m.network, prefix: m.prefix.toString() };
  }

  /**
   * Decides one path: the first matching candidate policy, else the
   * default. A network target stands for its first prefix (`explain`
   * decides each); an address for the narrowest destination holding it.
   */
  async decide(from: string, to: RouteTarget): Promise<RouteDecision> {
    const s = this.sourceNet(from);
    const target = this.target(to);
    if (!target) return { from, toNetwork: null, prefix: null, decision: "deny", policy: null, reason: "no-network" };
    return await this.decideUnit(s, target[0]);
  }

  /** Decides one path and shows every policy's evaluation, the defaults and the reverse direction. */
  async explain(from: string, to: RouteTarget): Promise<RouteExplanation> {
    const s = this.sourceNet(from);
    const target = this.target(to);
    if (!target) {
      const address = "address" in to ? to.address : "";
      return {
        from, toNetwork: null, prefix: null, decision: "deny", policy: null, reason: "no-network",
        default: `the address ${address} is in no network: nothing routes to it`,
        considered: [], prefixes: [], reverse: null,
      };
    }
    const u = target[0];
    const almanac = this.engine.almanac(this.factsOf(s, u));
    const considered: RoutingPolicyEvaluation[] = [];
    let decider: CompiledRoutingPolicy | undefined;
    for (const p of this.policies) {
      const r = await this.engine.evaluate(p.rule, almanac);
      const decided = r.result && !decider;
      if (decided) decider = p;
      considered.push({ policy: p.name, priority: p.priority, action: p.action, matched: r.result, decided, conditions: conditionOutcomes(r.conditions) });
    }
    const base: RouteDecision = decider
      ? { from: s.name, toNetwork: u.net.name, prefix: u.text, decision: decider.action === "Allow" ? "allow" : "deny", policy: decider.name, reason: "policy" }
      : this.decision(s, u, this.defaultFor(s, u.net));
    const out: RouteExplanation = { ...base, considered, prefixes: [], reverse: null };
    if (!decider) out.default = DEFAULT_TEXT[base.reason];
    if (target.length > 1) for (const t of target) out.prefixes.push(await this.decideUnit(s, t));
    if (u.net !== s) {
      const back = s.units.find((x) => !x.parent);
      out.reverse = back ? await this.decideUnit(u.net, back) : null;
    }
    return out;
  }

  private async decideUnit(s: Net, u: Unit): Promise<RouteDecision> {
    let almanac: ReturnType<PolicyEngine["almanac"]> | undefined;
    for (const p of this.policies) {
      if (p.sources && !(p.sourceSet ??= new Set(p.sources)).has(s.idx)) continue;
      if (p.units && !(p.unitSet ??= new Set(p.units)).has(u.idx)) continue;
      almanac ??= this.engine.almanac(this.factsOf(s, u));
      if ((await this.engine.evaluate(p.rule, almanac)).result) {
        return this.decision(s, u, { action: p.action === "Allow" ? "allow" : "deny", policy: p.name, reason: "policy" });
      }
    }
    return this.decision(s, u, this.defaultFor(s, u.net));
  }

  private decision(s: Net, u: Unit, o: Outcome): RouteDecision {
    return { from: s.name, toNetwork: u.net.name, prefix: u.text, decision: o.action, policy: o.policy, reason: o.reason };
  }

  private defaultFor(s: Net, d: Net): Outcome {
    return s !== d ? DIFFERENT_NETWORKS : s.anonymous ? ANONYMOUS : SAME_NETWORK;
  }

  private sourceNet(name: string): Net {
    const s = this.netByName.get(name);
    if (!s) throw laceError("UNKNOWN_NETWORK", `Unknown source network ${JSON.stringify(name)}: expected one of ${this.networkNames()}`);
    return s;
  }

  /** The destinations a target stands for, most relevant first; undefined for an address in no network. */
  private target(to: RouteTarget): Unit[] | undefined {
    if ("network" in to) {
      const d = this.netByName.get(to.network);
      if (!d) throw laceError("UNKNOWN_NETWORK", `Unknown destination network ${JSON.stringify(to.network)}: expected one of ${this.networkNames()}`);
      return d.units.filter((u) => !u.parent);
    }
    const a = IPAddress.tryParse(to.address);
    if (!a.ok) throw laceError("INVALID_ARGUMENT", `Expected a destination address, got ${JSON.stringify(to.address)}: ${a.error}`);
    const m = this.locator.networkFor(a.value);
    if (!m) return undefined;
    let best: Unit | undefined;
    for (const u of this.netByName.get(m.network)!.units) {
      if (u.prefix?.contains(a.value) && (!best || u.prefix.length > best.prefix!.length)) best = u;
    }
    return best ? [best] : undefined;
  }

  private networkNames(): string {
    const names = this.nets.map((n) => n.name).sort();
    return names.length === 0 ? "(no networks)" : names.length > 20 ? `${names.slice(0, 20).join(", ")}, ...` : names.join(", ");
  }

  private factsOf(s: Net, u: Unit): Record<string, unknown> {
    return {
      sourceNetwork: s.name,
      destinationNetwork: u.net.name,
      destinationPrefix: u.text,
      sourceType: s.type,
      destinationType: u.net.type,
      sourceLabels: s.labels,
      destinationLabels: u.net.labels,
    };
  }

  /** Destinations: every network prefix, plus the policies' narrower prefixes inside one. */
  private buildUnits(): void {
    const units: Unit[] = [];
    const base = new Map<string, Unit>();
    for (const n of this.nets) {
      if (n.prefixes.length === 0) units.push({ idx: 0, net: n, prefix: null, text: null });
      for (const p of n.prefixes) {
        const u: Unit = { idx: 0, net: n, prefix: p, text: p.toString() };
        units.push(u);
        base.set(n.name + SEP + u.text, u);
      }
    }
    const narrowed = new Set<string>();
    for (const pol of this.policies) {
      for (const p of pol.prefixes) {
        const m = this.locator.networkForPrefix(p);
        if (!m || m.prefix.length >= p.length) continue;
        const key = m.network + SEP + p.toString();
        if (narrowed.has(key)) continue;
        narrowed.add(key);
        const net = this.netByName.get(m.network)!;
        units.push({ idx: 0, net, prefix: p, text: p.toString(), parent: base.get(m.network + SEP + m.prefix.toString()) });
      }
    }
    units.sort(byPrefix);
    units.forEach((u, i) => {
      u.idx = i;
      u.net.units.push(u);
    });
    this.units = units;
  }

  /** Destinations within `p` (units are sorted by family, address, then length). */
  private *unitsWithin(p: Prefix): Generator<Unit> {
    const units = this.units;
    let lo = 0;
    let hi = units.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const q = units[mid].prefix;
      if (q === null || q.family > p.family || (q.family === p.family && q.network >= p.network)) hi = mid;
      else lo = mid + 1;
    }
    const last = p.last.value;
    for (let i = lo; i < units.length; i++) {
      const q = units[i].prefix;
      if (q === null || q.family !== p.family || q.network > last) return;
      if (q.length >= p.length) yield units[i];
    }
  }

  private resolveCandidates(p: CompiledRoutingPolicy): void {
    const spec = p.resource.spec!;
    p.sources = this.networksOf(spec.from);
    const toNets = this.networksOf(spec.to);
    if (p.prefixes.length > 0) {
      const wanted = toNets && new Set(toNets);
      const units = new Set<number>();
      for (const q of p.prefixes) for (const u of this.unitsWithin(q)) if (!wanted || wanted.has(u.net.idx)) units.add(u.idx);
      p.units = [...units];
    } else if (toNets) {
      // Networks are listed once and units belong to one network, so no unit repeats.
      const units: number[] = [];
      for (const n of toNets) for (const u of this.nets[n].units) units.push(u.idx);
      p.units = units;
    } else p.units = null;
  }

  /** The networks a side could match; null: any network. A selector narrows through its most selective label. */
  private networksOf(side: NetworkSet | undefined): number[] | null {
    const names = Array.isArray(side?.networks) ? side.networks : undefined;
    const selector = side?.networkSelector;
    if (!names && !selector) return null;
    const fromSelector = selector ? this.networksBySelector(selector) : [];
    if (fromSelector === null) return null;
    if (!names || names.length === 0) return fromSelector;
    if (names.length === 1 && fromSelector.length === 0) {
      const n = this.netByName.get(names[0]);
      return n ? [n.idx] : [];
    }
    const out = new Set<number>(fromSelector);
    for (const name of names) {
      const n = this.netByName.get(name);
      if (n) out.add(n.idx);
    }
    return [...out];
  }

  private networksBySelector(selector: LabelSelector): number[] | null {
    let best: number[] | null = null;
    for (const a of selectorAnchors(selector)) {
      // Each network has one value per key, so the lists for different values never share a network.
      const list = a.values
        ? [...new Set(a.values)].flatMap((v) => this.netsByLabel.get(a.key + SEP + v) ?? [])
        : this.netsByLabel.get(a.key) ?? [];
      if (best === null || list.length < best.length) best = list;
    }
    return best;
  }

  private compileOne(policy: NetworkRoutingPolicy, problems: FieldProblem[]): CompiledRoutingPolicy | undefined {
    const c = compileRoutingPolicy(this.engine, policy, problems);
    return c && { ...c, sources: null, units: null };
  }
}

/** One routing policy compiled on its own: its json-rules-engine rule and what indexes need. */
export interface CompiledRoutingRule {
  readonly name: string;
  readonly priority: number;
  readonly action: "Allow" | "Deny";
  readonly rule: CompiledRule;
  readonly resource: NetworkRoutingPolicy;
  /** `spec.to.prefixes`, parsed. */
  readonly prefixes: Prefix[];
}

/**
 * Compiles one routing policy against a routing engine (see
 * {@link routingEngine}); returns undefined and fills `problems` when it
 * cannot. What `RoutingRules.compile` does per policy, for callers that
 * keep policies one by one (the controller's incremental table).
 *
 * @example
 * const problems: FieldProblem[] = [];
 * const c = compileRoutingPolicy(routingEngine(), policy, problems);
 */
export function compileRoutingPolicy(engine: PolicyEngine, policy: NetworkRoutingPolicy, problems: FieldProblem[]): CompiledRoutingRule | undefined {
  const head = policyHead(policy, problems, "a spec with from, to and action");
  if (!head) return undefined;
  const { name, spec } = head;
  const priority = priorityOf(spec.priority, problems);
  if (spec.action !== "Allow" && spec.action !== "Deny") {
    problems.push({ path: "spec.action", message: `expected Allow or Deny, got ${JSON.stringify(spec.action)}` });
  }
  const all: unknown[] = [];
  const side = (set: NetworkSet | undefined, which: "from" | "to") => {
    const path = `spec.${which}`;
    if (set === undefined) return;
    if (typeof set !== "object" || set === null || Array.isArray(set)) {
      problems.push({ path, message: `expected networks, networkSelector${which === "to" ? " or prefixes" : ""}, got ${JSON.stringify(set)}` });
      return;
    }
    const fact = which === "from" ? "sourceNetwork" : "destinationNetwork";
    const parts: unknown[] = [];
    if (set.networks !== undefined) {
      if (!Array.isArray(set.networks) || set.networks.some((n) => typeof n !== "string")) {
        problems.push({ path: `${path}.networks`, message: `expected a list of network names, got ${JSON.stringify(set.networks)}` });
      } else if (set.networks.length === 1) {
        // One name: a scalar test, which json-rules-engine clones more cheaply per evaluation than a list.
        parts.push({ name: `${path}.networks`, fact, operator: "equal", value: set.networks[0] });
      } else parts.push({ name: `${path}.networks`, fact, operator: "in", value: [...set.networks] });
    }
    if (set.networkSelector !== undefined) {
      const leaves = selectorConditions(set.networkSelector, `${fact}Label`, `${path}.networkSelector`, problems);
      parts.push(leaves.length === 1 ? leaves[0] : { name: `${path}.networkSelector`, all: leaves });
    }
    // Both given: either picks the network.
    if (parts.length === 2) all.push({ name: path, any: parts });
    else all.push(...parts);
  };
  side(spec.from, "from");
  side(spec.to, "to");
  const prefixes: Prefix[] = [];
  const texts = spec.to?.prefixes;
  if (texts !== undefined) {
    if (!Array.isArray(texts)) problems.push({ path: "spec.to.prefixes", message: `expected a list of CIDR prefixes, got ${JSON.stringify(texts)}` });
    else {
      texts.forEach((t, i) => {
        const p = cachedPrefix(t);
        if (p) prefixes.push(p);
        else problems.push({ path: `spec.to.prefixes[${i}]`, message: `expected a CIDR prefix with host bits zero such as "10.0.0.0/8", got ${JSON.stringify(t)}` });
      });
      if (texts.length > 0) all.push({ name: "spec.to.prefixes", fact: "destinationPrefix", operator: WITHIN_PREFIXES.name, value: [...texts] });
    }
  }
  const own = prepareConditions(spec.conditions, "spec.conditions", engine, problems);
  if (own) all.push(own);
  if (problems.length > 0) return undefined;
  return { name, priority, action: spec.action, rule: engine.rule(name, { all } as never), resource: policy, prefixes };
}

/** The json-rules-engine side of routing decisions: routing facts, keyed label facts, `withinPrefixes`, and plugins' extensions. */
export function routingEngine(extensions: RuleExtensionSet = NO_RULE_EXTENSIONS): PolicyEngine {
  return new PolicyEngine("routing", ROUTING_FACTS, extensions, ROUTING_KEYED_FACTS, [WITHIN_PREFIXES]);
}

/** Formats the problems of a compile for logs and the command line. */
export function formatRoutingProblems(rules: RoutingRules): string[] {
  return rules.problems.map(formatProblem);
}

const DIFFERENT_NETWORKS: Outcome = Object.freeze({ action: "deny", policy: null, reason: "different-networks" });
const ANONYMOUS: Outcome = Object.freeze({ action: "deny", policy: null, reason: "anonymous" });
const SAME_NETWORK: Outcome = Object.freeze({ action: "allow", policy: null, reason: "same-network" });

const DEFAULT_TEXT: Record<RouteReason, string> = {
  policy: "",
  "same-network": "no policy matched: a network reaches itself (the implicit route)",
  anonymous: "no policy matched: the network is anonymous, so even its own endpoints need a policy to reach it",
  "different-networks": "no policy matched: different networks are isolated",
  "no-network": "the address is in no network",
};

function byPrefix(a: Unit, b: Unit): number {
  if (!a.prefix || !b.prefix) return a.prefix ? -1 : b.prefix ? 1 : a.net.idx - b.net.idx;
  if (a.prefix.family !== b.prefix.family) return a.prefix.family - b.prefix.family;
  if (a.prefix.network !== b.prefix.network) return a.prefix.network < b.prefix.network ? -1 : 1;
  if (a.prefix.length !== b.prefix.length) return a.prefix.length - b.prefix.length;
  return a.net.idx - b.net.idx;
}


function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function valueOf(labels: unknown, key: unknown): string | null {
  if (typeof key !== "string" || !labels || typeof labels !== "object") return null;
  const v = (labels as Record<string, unknown>)[key];
  return typeof v === "string" ? v : null;
}
