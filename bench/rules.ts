/**
 * Rules: binding decisions with 100, 1,000 and 10,000 policies, indexed
 * against the naive engine (every rule through one json-rules-engine
 * `Engine.run`, then the lowest priority among the matches), and the
 * reachability table for 4,096 networks with 10,000 routing policies.
 *
 * Both binding engines compile the same rules (selectors, matchKind and
 * conditions); the naive one is sampled on fewer decisions because each
 * takes hundreds of milliseconds at 10,000 policies.
 */
import { Engine, Fact, type RuleProperties } from "json-rules-engine";
import {
  BINDING_KEYED_FACTS,
  type BindingSubject,
  BindingRules,
  type Network,
  type NetworkBindingPolicy,
  type NetworkRoutingPolicy,
  reachabilityTable,
  RoutingRules,
  selectorConditions,
} from "../core/mod.ts";
import { nowMs, percentile, target } from "./_report.ts";

// mulberry32: the low bits of a plain LCG repeat too soon for picking among thousands of networks.
let seed = 20261127;
function rnd(n: number): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let x = seed;
  x = Math.imul(x ^ (x >>> 15), x | 1);
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
  return (((x ^ (x >>> 14)) >>> 0) / 4294967296 * n) | 0;
}

// ---------------------------------------------------------------- binding

const TEAMS = 50;

/** A mix shaped like a real cluster: most policies pick an app, some a namespace, a few everything. */
function bindingPolicies(n: number): NetworkBindingPolicy[] {
  const apps = Math.max(1, Math.floor(n / 2));
  const out: NetworkBindingPolicy[] = [];
  for (let i = 0; i < n; i++) {
    const r = i % 100;
    const spec: NetworkBindingPolicy["spec"] & object = { network: `net-${i % 500}`, priority: 100 + rnd(900), matchKind: r < 10 ? "Service" : "Pod" };
    if (r < 80) {
      spec.selector = { matchLabels: { app: `app-${rnd(apps)}` } };
      if (r % 3 === 0) spec.selector.matchExpressions = [{ key: "env", operator: "In", values: ["prod", "staging"] }];
      if (r % 7 === 0) spec.conditions = { all: [{ fact: "annotation", params: { key: "example.com/tier" }, operator: "notEqual", value: "batch" }] };
    } else if (r < 95) {
      spec.namespaceSelector = { matchLabels: { team: `t-${rnd(TEAMS)}` } };
      if (r % 2 === 0) spec.selector = { matchExpressions: [{ key: "tier", operator: "Exists" }] };
    } else if (r < 99) {
      spec.selector = { matchExpressions: [{ key: "legacy", operator: "DoesNotExist" }] };
      spec.priority = 5000 + rnd(1000);
    } else {
      spec.priority = 9000 + rnd(1000);
    }
    out.push({ apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkBindingPolicy", metadata: { name: `bind-${i}` }, spec });
  }
  return out;
}

function subjects(n: number, count: number): BindingSubject[] {
  const apps = Math.max(1, Math.floor(n / 2));
  return Array.from({ length: count }, (_, i) => ({
    kind: "Pod" as const,
    namespace: `ns-${i % 200}`,
    name: `pod-${i}`,
    labels: { app: `app-${rnd(apps)}`, env: ["prod", "staging", "dev"][rnd(3)], tier: "web", "pod-template-hash": `h${rnd(1e6)}` },
    annotations: {},
    namespaceLabels: { team: `t-${rnd(TEAMS)}`, "kubernetes.io/metadata.name": `ns-${i % 200}` },
    node: `node-${rnd(100)}`,
  }));
}

/** The same rules as BindingRules compiles, all in one engine. */
function naiveEngine(policies: NetworkBindingPolicy[]): Engine {
  const engine = new Engine([], { allowUndefinedFacts: false });
  for (const p of policies) {
    const spec = p.spec!;
    const all: unknown[] = [{ fact: "kind", operator: "equal", value: spec.matchKind ?? "Pod" }];
    all.push(...selectorConditions(spec.namespaceSelector, "namespaceLabel", "ns"));
    all.push(...selectorConditions(spec.selector, "label", "sel"));
    if (spec.conditions) all.push(spec.conditions);
    engine.addRule({ name: p.metadata.name, conditions: { all } as never, event: { type: "bind", params: { network: spec.network, priority: spec.priority ?? 1000 } } } as RuleProperties);
  }
  return engine;
}

async function naiveDecide(engine: Engine, s: BindingSubject): Promise<string | null> {
  const facts: Record<string, unknown> = {
    kind: s.kind, namespace: s.namespace, name: s.name, labels: s.labels, annotations: s.annotations ?? {},
    namespaceLabels: s.namespaceLabels, node: s.node ?? null,
  };
  for (const f of BINDING_KEYED_FACTS) facts[f.name] = new Fact(f.name, (params: Record<string, unknown>) => f.compute(facts, params), { cache: false });
  let best: { name: string; priority: number } | null = null;
  const { results } = await engine.run(facts);
  for (const r of results) {
    const priority = (r.event?.params as { priority: number }).priority;
    if (!best || priority < best.priority || (priority === best.priority && r.name < best.name)) best = { name: r.name, priority };
  }
  return best?.name ?? null;
}

async function timeEach<T>(items: T[], f: (x: T) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (const x of items) {
    const t0 = nowMs();
    await f(x);
    out.push((nowMs() - t0) * 1000);
  }
  return out;
}

// ---------------------------------------------------------------- routing

function routingNetworks(count: number): Network[] {
  const out: Network[] = [];
  const external = 96;
  for (let i = 0; i < count - external; i++) {
    const spec = i % 10 === 9
      ? { type: "l2", ipv4Subnet: { prefix: `10.${i >> 8}.${i & 255}.0/24` } }
      : { type: "l3", ipv4Subnet: { prefix: `10.${i >> 8}.${i & 255}.0/24`, hostLocalPrefixLength: 28 }, anonymous: i % 50 === 0 };
    out.push({ apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: `n${i}`, labels: { tenant: `t-${i % 512}`, zone: `z-${i % 16}` } }, spec });
  }
  for (let i = 0; i < external; i++) {
    // Pairs of a /24 and a /25 inside it, so longest prefix match matters.
    const prefix = i % 2 === 0 ? `100.64.${i}.0/24` : `100.64.${i - 1}.128/25`;
    out.push({ apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: `x${i}`, labels: { zone: `z-${i % 16}` } }, spec: { type: "external", externalPrefixes: [prefix] } });
  }
  return out;
}

function routingPolicies(n: number, nets: number): NetworkRoutingPolicy[] {
  const internal = nets - 96;
  const net = () => `n${rnd(internal)}`;
  const out: NetworkRoutingPolicy[] = [];
  for (let i = 0; i < n; i++) {
    const r = i % 100;
    const spec: NetworkRoutingPolicy["spec"] & object = {
      priority: rnd(1000),
      action: rnd(5) === 0 ? "Deny" : "Allow",
      from: { networks: [net()] },
      to: { networks: [net()] },
    };
    if (r < 10) spec.from = { networkSelector: { matchLabels: { tenant: `t-${rnd(512)}` } } };
    else if (r < 20) {
      const j = rnd(internal);
      spec.to = { prefixes: [`10.${j >> 8}.${j & 255}.${64 * rnd(4)}/26`] };
    } else if (r < 25) spec.to = { networks: [`x${rnd(96)}`] };
    else if (r < 30) spec.conditions = { all: [{ fact: "sourceType", operator: "equal", value: "l3" }] };
    else if (r < 32) spec.to = { networks: [`n${rnd(internal)}`, `n${rnd(internal)}`, `x${rnd(96)}`] };
    out.push({ apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkRoutingPolicy", metadata: { name: `route-${i}` }, spec });
  }
  return out;
}

// The table runs first: the binding section leaves a large heap behind (three 10,000-policy engines) that would slow its GC.
console.log("\n## reachability table (4,096 networks, 10,000 routing policies)");
const nets = routingNetworks(4096);
const routes = routingPolicies(10000, 4096);
// Run 0 is cold (JIT warm-up); the target uses the median of the warm runs, as a controller recomputes again and again.
const totals: number[] = [];
for (let run = 0; run < 6; run++) {
  // Compiling for single decisions (lace explain), then the table from scratch (its own compile included).
  const t0 = nowMs();
  RoutingRules.compile(routes, nets);
  const t1 = nowMs();
  const table = await reachabilityTable(routes, nets);
  const t2 = nowMs();
  if (run > 0) totals.push((t2 - t1) / 1000);
  let entries = 0;
  for (const e of table.sources.values()) entries += e.length;
  let replies = 0;
  for (const e of table.replies.values()) replies += e.length;
  console.log(
    `run ${run}${run === 0 ? " (cold)" : ""}: RoutingRules compile (for single decisions) ${(t1 - t0).toFixed(0)} ms; the table from scratch (compile + decide) ${(t2 - t1).toFixed(0)} ms; ` +
      `${table.stats.destinations} destinations, ${table.stats.pairs} candidate pairs, ${table.stats.evaluations} rule evaluations, ` +
      `${entries} entries, ${replies} reply-only routes (all pairs: ${(4096 * table.stats.destinations).toLocaleString("en-US")})`,
  );
}

const fmt = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(1)} µs`);

console.log("\n## binding decisions (µs per pod)");
console.log("| policies | indexed p50 | indexed p99 | naive p50 | naive p99 | naive samples | speed-up (p50) |");
console.log("|---:|---:|---:|---:|---:|---:|---:|");
let p50At10k = NaN;
for (const n of [100, 1000, 10000]) {
  const policies = bindingPolicies(n);
  const rules = BindingRules.compile(policies, { defaultNetwork: "default" });
  if (rules.problems.length > 0) throw new Error(`bench policies do not compile: ${rules.problems[0].message}`);
  const engine = naiveEngine(policies);
  const warm = subjects(n, 500);
  for (const s of warm) await rules.decide(s);
  const pods = subjects(n, 5000);
  const fast = await timeEach(pods, (s) => rules.decide(s));
  const naiveSamples = n >= 10000 ? 10 : n >= 1000 ? 40 : 200;
  const sample = pods.slice(0, naiveSamples);
  // Same answers, or the comparison means nothing.
  for (const s of sample.slice(0, 5)) {
    const a = (await rules.decide(s)).policy;
    const b = await naiveDecide(engine, s);
    if (a !== b) throw new Error(`indexed and naive disagree for ${s.name}: ${a} vs ${b}`);
  }
  const naive = await timeEach(sample, (s) => naiveDecide(engine, s));
  const f50 = percentile(fast, 50);
  const n50 = percentile(naive, 50);
  if (n === 10000) p50At10k = f50;
  console.log(`| ${n.toLocaleString("en-US")} | ${fmt(f50)} | ${fmt(percentile(fast, 99))} | ${fmt(n50)} | ${fmt(percentile(naive, 99))} | ${naiveSamples} | ${Math.round(n50 / f50).toLocaleString("en-US")}× |`);
}

const tableS = percentile(totals, 50);
console.log("");
target("binding p50 at 10000 policies", Math.round(p50At10k * 10) / 10, 50, " µs", false);
target("reachability table 4096 networks 10000 policies", Math.round(tableS * 1000) / 1000, 1, " s", false);
