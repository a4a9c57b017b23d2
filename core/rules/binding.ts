/**
 * NetworkBindingPolicies as json-rules-engine rules: which network a pod or
 * a service binds to.
 *
 * Each policy compiles to one rule: `spec.matchKind`, the namespace
 * selector and the selector (as tests of the `namespaceLabel` and `label`
 * facts) and the policy's own `conditions`, all of which must hold. The
 * lowest `priority` wins, ties go to the smallest name. A candidate index
 * (see `candidate_index.ts`) hands json-rules-engine only the policies whose
 * anchoring label the subject has, in decision order, and the decision
 * stops at the first rule that holds.
 *
 * @example
 * const rules = BindingRules.compile(policies, { defaultNetwork: "default" });
 * const d = await rules.decide({ kind: "Pod", namespace: "team-a", name: "web-1", labels: { tier: "backend" } });
 * d.network; // "backend"
 * d.policy;  // "team-a-backend" (null when the default network applied)
 */
import { LaceError, laceError } from "../errors.ts";
import type { NetworkBindingPolicy } from "../resources/types.ts";
import { type AnchorKey, CandidateIndex, comparePolicies, type Ranked } from "./candidate_index.ts";
import { type ConditionOutcome, conditionOutcomes, describeFailure, prepareConditions } from "./conditions.ts";
import { type CompiledRule, type CoreParamFact, NO_RULE_EXTENSIONS, PolicyEngine, type RuleExtensionSet } from "./engine.ts";
import { formatProblem, invalidPolicy, policyHead, type PolicyProblem, priorityOf } from "./policy_problem.ts";
import { type FieldProblem, type SelectorAnchor, selectorAnchors, selectorConditions } from "./selector.ts";

/** The facts binding conditions may use, besides the keyed ones and plugins'. */
export const BINDING_FACTS = ["kind", "namespace", "name", "labels", "annotations", "namespaceLabels", "node"] as const;

/** Keyed facts: `{ fact: "label", params: { key: "tier" } }` is the label's value, or null when absent. */
export const BINDING_KEYED_FACTS: readonly CoreParamFact[] = [
  { name: "label", compute: (f, p) => valueOf(f.labels, p.key) },
  { name: "namespaceLabel", compute: (f, p) => valueOf(f.namespaceLabels, p.key) },
  { name: "annotation", compute: (f, p) => valueOf(f.annotations, p.key) },
];

/** The label Kubernetes puts on every namespace, so selectors can pick a namespace by name. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** What a binding is decided for. */
export interface BindingSubject {
  kind: "Pod" | "Service";
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The namespace's labels; `kubernetes.io/metadata.name` is added when missing. */
  namespaceLabels?: Record<string, string>;
  /** The pod's node; none for services. */
  node?: string | null;
}

/**
 * The binding subject for a Pod object, as the agent, the controller and
 * `lace explain` all build it.
 *
 * @example
 * await rules.decide(podSubject(pod, namespaceLabels.get(pod.metadata.namespace), "node-1"));
 */
export function podSubject(
  pod: { metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } },
  namespaceLabels: Record<string, string> | undefined,
  node: string | null | undefined,
): BindingSubject {
  return {
    kind: "Pod",
    namespace: pod.metadata.namespace ?? "default",
    name: pod.metadata.name,
    labels: pod.metadata.labels,
    annotations: pod.metadata.annotations,
    namespaceLabels,
    node: node ?? null,
  };
}

/** The network a subject binds to and why. */
export interface BindingDecision {
  network: string;
  /** The deciding policy, or null when the default network applied. */
  policy: string | null;
}

export interface BindingOptions {
  /** Plugin facts and operators. */
  extensions?: RuleExtensionSet;
  /** Where subjects no policy matches go; without it they fail with NO_BINDING_POLICY. */
  defaultNetwork?: string;
}

/** One policy's evaluation against a subject. */
export interface BindingPolicyEvaluation {
  policy: string;
  priority: number;
  network: string;
  matchKind: "Pod" | "Service";
  matched: boolean;
  /** True for the policy that decided. */
  decided: boolean;
  conditions: ConditionOutcome[];
}

/** Everything `lace explain` shows about a binding. */
export interface BindingExplanation {
  subject: { kind: string; namespace: string; name: string };
  network: string | null;
  policy: string | null;
  /** Set when the default network applied. */
  defaulted: boolean;
  /** Set when nothing matched and there is no default network. */
  error?: string;
  /** Every policy, in decision order. */
  considered: BindingPolicyEvaluation[];
}

/** A policy that came close, with the tests it failed. */
export interface BindingCandidate {
  policy: string;
  priority: number;
  failed: ConditionOutcome[];
}

/** NO_BINDING_POLICY, with the closest candidates. */
export class NoBindingPolicyError extends LaceError {
  constructor(message: string, readonly candidates: BindingCandidate[]) {
    super("NO_BINDING_POLICY", message);
  }
}

interface CompiledBindingPolicy extends Ranked {
  readonly name: string;
  readonly priority: number;
  readonly network: string;
  readonly matchKind: "Pod" | "Service";
  readonly rule: CompiledRule;
  readonly anchors: { scope: "l" | "n"; anchor: SelectorAnchor }[];
  readonly resource: NetworkBindingPolicy;
  /** The anchor the index files it under; null: the catch-all list. */
  anchor?: AnchorKey | null;
}

const CLOSEST = 3;

/**
 * A compiled, indexed set of binding policies. Change it with `upsert` and
 * `remove`; decisions read it as it is when they start.
 */
export class BindingRules {
  readonly engine: PolicyEngine;
  readonly defaultNetwork: string | undefined;
  /** Policies left out of the set because they could not be compiled. */
  readonly problems: PolicyProblem[] = [];
  private readonly policies = new Map<string, CompiledBindingPolicy>();
  private readonly index = { Pod: new CandidateIndex<CompiledBindingPolicy>(), Service: new CandidateIndex<CompiledBindingPolicy>() };

  constructor(options: BindingOptions = {}) {
    this.engine = new PolicyEngine("binding", BINDING_FACTS, options.extensions ?? NO_RULE_EXTENSIONS, BINDING_KEYED_FACTS);
    this.defaultNetwork = options.defaultNetwork || undefined;
  }

  /** Compiles every policy; those that cannot be compiled are left out and listed in `problems`. */
  static compile(policies: Iterable<NetworkBindingPolicy>, options: BindingOptions = {}): BindingRules {
    const rules = new BindingRules(options);
    const compiled = new Map<string, CompiledBindingPolicy>();
    for (const p of policies) {
      const problems: FieldProblem[] = [];
      const c = rules.compileOne(p, problems);
      if (c && compiled.has(c.name)) {
        rules.problems.push({ kind: "NetworkBindingPolicy", policy: c.name, path: "metadata.name", message: "the name is used by another policy: this one is left out" });
      } else if (c) compiled.set(c.name, c);
      else for (const q of problems) rules.problems.push({ kind: "NetworkBindingPolicy", policy: p.metadata?.name ?? "", ...q });
    }
    // Anchor on the rarest requirement: how many policies share a key=value is known only once all are compiled.
    const frequency = new Map<string, number>();
    for (const c of compiled.values()) {
      for (const { scope, anchor } of c.anchors) {
        for (const k of anchorIds(c.matchKind, [scope, anchor.key, ...(anchor.values ?? [])])) frequency.set(k, (frequency.get(k) ?? 0) + 1);
      }
    }
    for (const kind of ["Pod", "Service"] as const) {
      const entries = [...compiled.values()].filter((c) => c.matchKind === kind).map((c) => {
        c.anchor = chooseAnchor(c, (a) => anchorIds(kind, a).reduce((n, k) => n + (frequency.get(k) ?? 0), 0));
        rules.policies.set(c.name, c);
        return { item: c, anchor: c.anchor };
      });
      rules.index[kind].addMany(entries);
    }
    return rules;
  }

  /** Number of policies in the set. */
  get size(): number {
    return this.policies.size;
  }

  /** Adds or replaces a policy; throws INVALID_RESOURCE when it cannot be compiled. */
  upsert(policy: NetworkBindingPolicy): void {
    const problems: FieldProblem[] = [];
    const compiled = this.compileOne(policy, problems);
    if (!compiled) throw invalidPolicy("NetworkBindingPolicy", policy.metadata?.name ?? "", problems);
    this.remove(compiled.name);
    this.insert(compiled);
  }

  /** Removes a policy by name; false when there was none. */
  remove(name: string): boolean {
    const old = this.policies.get(name);
    if (!old) return false;
    this.policies.delete(name);
    this.index[old.matchKind].remove(old);
    return true;
  }

  /** The policy by name, as given. */
  get(name: string): NetworkBindingPolicy | undefined {
    return this.policies.get(name)?.resource;
  }

  /**
   * Where the index files a policy: `[scope, key, ...values]` with scope
   * "l" (the subject's labels) or "n" (its namespace's labels); null when
   * it is a candidate for every subject; undefined for an unknown policy.
   */
  anchorOf(name: string): { matchKind: "Pod" | "Service"; anchor: AnchorKey | null } | undefined {
    const p = this.policies.get(name);
    return p && { matchKind: p.matchKind, anchor: p.anchor ?? null };
  }

  /** The policies that could match the subject, in decision order (the index's view; json-rules-engine has the last word). */
  candidateNames(subject: BindingSubject): string[] {
    const facts = factsOf(subject);
    return [...this.candidates(subject.kind, facts)].map((p) => p.name);
  }

  /** Whether one policy's rule holds for the subject. */
  async matches(name: string, subject: BindingSubject): Promise<boolean> {
    const p = this.policies.get(name);
    if (!p) return false;
    const facts = factsOf(subject);
    return (await this.engine.evaluate(p.rule, this.engine.almanac(facts))).result;
  }

  /** The policy order: negative when policy `a` decides before `b`. */
  compare(a: string, b: string): number {
    const pa = this.policies.get(a);
    const pb = this.policies.get(b);
    if (!pa || !pb) return pa ? -1 : pb ? 1 : 0;
    return comparePolicies(pa, pb);
  }

  /**
   * Decides the subject's network: the first matching policy in decision
   * order, else the default network, else a NoBindingPolicyError listing the
   * closest candidates.
   */
  async decide(subject: BindingSubject): Promise<BindingDecision> {
    checkSubject(subject);
    const facts = factsOf(subject);
    let almanac: ReturnType<PolicyEngine["almanac"]> | undefined;
    for (const p of this.candidates(subject.kind, facts)) {
      almanac ??= this.engine.almanac(facts);
      const r = await this.engine.evaluate(p.rule, almanac);
      if (r.result) return { network: p.network, policy: p.name };
    }
    if (this.defaultNetwork) return { network: this.defaultNetwork, policy: null };
    throw await this.noMatch(subject, facts);
  }

  /** Evaluates every policy against the subject and says which decided, and why the others did not. */
  async explain(subject: BindingSubject): Promise<BindingExplanation> {
    checkSubject(subject);
    const facts = factsOf(subject);
    const almanac = this.engine.almanac(facts);
    const considered: BindingPolicyEvaluation[] = [];
    let decider: CompiledBindingPolicy | undefined;
    for (const p of [...this.policies.values()].sort(comparePolicies)) {
      const r = await this.engine.evaluate(p.rule, almanac);
      const decided = r.result && !decider;
      if (decided) decider = p;
      considered.push({
        policy: p.name,
        priority: p.priority,
        network: p.network,
        matchKind: p.matchKind,
        matched: r.result,
        decided,
        conditions: conditionOutcomes(r.conditions),
      });
    }
    const out: BindingExplanation = {
      subject: { kind: subject.kind, namespace: subject.namespace, name: subject.name },
      network: decider?.network ?? this.defaultNetwork ?? null,
      policy: decider?.name ?? null,
      defaulted: !decider && this.defaultNetwork !== undefined,
      considered,
    };
    if (!decider && !this.defaultNetwork) out.error = (await this.noMatch(subject, facts)).message;
    return out;
  }

  private *candidates(kind: "Pod" | "Service", facts: SubjectFacts): Generator<CompiledBindingPolicy> {
    const index = this.index[kind];
    const keys = index.keysFor("l", facts.labels);
    index.keysFor("n", facts.namespaceLabels, keys);
    yield* index.candidates(keys);
  }

  private async noMatch(subject: BindingSubject, facts: SubjectFacts): Promise<NoBindingPolicyError> {
    const who = `${subject.kind} ${subject.namespace}/${subject.name}`;
    const scoped = [...this.policies.values()].filter((p) => p.matchKind === subject.kind);
    if (scoped.length === 0) {
      return new NoBindingPolicyError(
        `No binding policy matched ${who}: there are no binding policies with matchKind ${subject.kind} and no default network is configured`,
        [],
      );
    }
    // The error path may read every policy of the kind: the subject cannot start anyway, and the message must help.
    const almanac = this.engine.almanac(facts);
    const ranked: BindingCandidate[] = [];
    for (const p of scoped) {
      const r = await this.engine.evaluate(p.rule, almanac);
      ranked.push({ policy: p.name, priority: p.priority, failed: conditionOutcomes(r.conditions).filter((o) => o.passed === false) });
    }
    ranked.sort((a, b) => a.failed.length - b.failed.length || comparePolicies({ priority: a.priority, name: a.policy }, { priority: b.priority, name: b.policy }));
    const closest = ranked.slice(0, CLOSEST);
    const list = closest.map((c) => `"${c.policy}" failed ${c.failed.map(describeFailure).join(" and ")}`).join("; ");
    return new NoBindingPolicyError(
      `No binding policy matched ${who} and no default network is configured; closest candidates: ${list}`,
      closest,
    );
  }

  private insert(p: CompiledBindingPolicy): void {
    this.policies.set(p.name, p);
    const index = this.index[p.matchKind];
    p.anchor = chooseAnchor(p, (key) => index.countFor(key));
    index.add(p, p.anchor);
  }

  private compileOne(policy: NetworkBindingPolicy, problems: FieldProblem[]): CompiledBindingPolicy | undefined {
    const head = policyHead(policy, problems, "a spec with at least spec.network");
    if (!head) return undefined;
    const { name, spec } = head;
    if (typeof spec.network !== "string" || spec.network === "") {
      problems.push({ path: "spec.network", message: `expected a network name, got ${JSON.stringify(spec.network)}` });
    }
    const priority = priorityOf(spec.priority, problems);
    const matchKind = spec.matchKind ?? "Pod";
    if (matchKind !== "Pod" && matchKind !== "Service") {
      problems.push({ path: "spec.matchKind", message: `expected Pod or Service, got ${JSON.stringify(matchKind)}` });
    }
    const all: unknown[] = [{ name: "spec.matchKind", fact: "kind", operator: "equal", value: matchKind }];
    all.push(...selectorConditions(spec.namespaceSelector, "namespaceLabel", "spec.namespaceSelector", problems));
    all.push(...selectorConditions(spec.selector, "label", "spec.selector", problems));
    const own = prepareConditions(spec.conditions, "spec.conditions", this.engine, problems);
    if (own) all.push(own);
    if (problems.length > 0) return undefined;
    const anchors = [
      ...selectorAnchors(spec.selector).map((anchor) => ({ scope: "l" as const, anchor })),
      ...selectorAnchors(spec.namespaceSelector).map((anchor) => ({ scope: "n" as const, anchor })),
    ];
    return {
      name,
      priority,
      network: spec.network,
      matchKind,
      rule: this.engine.rule(name, { all } as never),
      anchors,
      resource: policy,
    };
  }
}

/**
 * The anchor to file a policy under: a required value is more selective
 * than a required key; among those, the one `crowding` rates emptiest, and
 * the pod's own labels before its namespace's.
 */
function chooseAnchor(p: CompiledBindingPolicy, crowding: (key: AnchorKey) => number): AnchorKey | null {
  let best: AnchorKey | null = null;
  let bestScore = Infinity;
  for (const { scope, anchor } of p.anchors) {
    const key: AnchorKey = [scope, anchor.key, ...(anchor.values ?? [])];
    const score = crowding(key) + (anchor.values ? 0 : 1e9) + (scope === "n" ? 0.5 : 0);
    if (score < bestScore) {
      bestScore = score;
      best = key;
    }
  }
  return best;
}

function anchorIds(kind: string, [scope, key, ...values]: AnchorKey): string[] {
  const base = `${kind}\u0000${scope}\u0000${key}`;
  return values.length > 0 ? values.map((v) => `${base}\u0000${v}`) : [base];
}

/** Formats the problems of a compile for logs and the command line. */
export function formatBindingProblems(rules: BindingRules): string[] {
  return rules.problems.map(formatProblem);
}

interface SubjectFacts {
  kind: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  namespaceLabels: Record<string, string>;
  node: string | null;
  [fact: string]: unknown;
}

function factsOf(s: BindingSubject): SubjectFacts {
  const ns = s.namespaceLabels ?? {};
  return {
    kind: s.kind,
    namespace: s.namespace,
    name: s.name,
    labels: s.labels ?? {},
    annotations: s.annotations ?? {},
    namespaceLabels: NAMESPACE_NAME_LABEL in ns ? ns : { ...ns, [NAMESPACE_NAME_LABEL]: s.namespace },
    node: s.node ?? null,
  };
}

function checkSubject(s: BindingSubject): void {
  if (s?.kind !== "Pod" && s?.kind !== "Service") {
    throw laceError("INVALID_ARGUMENT", `Binding subject kind must be Pod or Service, got ${JSON.stringify(s?.kind)}`);
  }
  if (typeof s.namespace !== "string" || s.namespace === "" || typeof s.name !== "string" || s.name === "") {
    throw laceError(
      "INVALID_ARGUMENT",
      `Binding subject needs a namespace and a name, got ${JSON.stringify(s.namespace)}/${JSON.stringify(s.name)}`,
    );
  }
}

function valueOf(labels: unknown, key: unknown): string | null {
  if (typeof key !== "string" || !labels || typeof labels !== "object") return null;
  const v = (labels as Record<string, unknown>)[key];
  return typeof v === "string" ? v : null;
}
