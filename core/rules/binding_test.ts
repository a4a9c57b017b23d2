import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isLaceError } from "../errors.ts";
import type { RuleFactDefinition, RuleOperatorDefinition } from "../plugin/api.ts";
import type { NetworkBindingPolicy, NetworkBindingPolicySpec } from "../resources/types.ts";
import { type BindingSubject, BindingRules, NoBindingPolicyError } from "./binding.ts";

const t = suite("rules/binding");

function policy(name: string, spec: Partial<NetworkBindingPolicySpec>): NetworkBindingPolicy {
  return {
    apiVersion: "lace-cni.io/v1alpha1",
    kind: "NetworkBindingPolicy",
    metadata: { name },
    spec: { network: `net-${name}`, ...spec },
  };
}

function pod(labels: Record<string, string> = {}, more: Partial<BindingSubject> = {}): BindingSubject {
  return { kind: "Pod", namespace: "team-a", name: "web-1", labels, namespaceLabels: { team: "a" }, node: "node-1", ...more };
}

interface Case {
  name: string;
  policies: NetworkBindingPolicy[];
  subject: BindingSubject;
  /** Expected deciding policy; null: the default network. */
  want: string | null;
}

const cases: Case[] = [
  {
    name: "ties at the same priority go to the smallest name",
    policies: [policy("b", { priority: 10 }), policy("a", { priority: 10 }), policy("c", { priority: 10 })],
    subject: pod(),
    want: "a",
  },
  {
    name: "ties compare by code unit, not locale: uppercase sorts first",
    policies: [policy("a", { priority: 5 }), policy("Z", { priority: 5 })],
    subject: pod(),
    want: "Z",
  },
  {
    name: "the lowest priority wins over a smaller name",
    policies: [policy("a", { priority: 20 }), policy("z", { priority: 3 })],
    subject: pod(),
    want: "z",
  },
  {
    name: "priority 0 is a real priority, not the default",
    policies: [policy("a", { priority: 1 }), policy("zero", { priority: 0 })],
    subject: pod(),
    want: "zero",
  },
  {
    name: "an absent priority is 1000",
    policies: [policy("a", {}), policy("b", { priority: 999 })],
    subject: pod(),
    want: "b",
  },
  {
    name: "matchKind Service does not bind pods",
    policies: [policy("svc", { priority: 0, matchKind: "Service" }), policy("pods", { priority: 9 })],
    subject: pod(),
    want: "pods",
  },
  {
    name: "matchKind Pod (the default) does not bind services",
    policies: [policy("pods", { priority: 0 }), policy("svc", { priority: 9, matchKind: "Service" })],
    subject: pod({}, { kind: "Service", node: null }),
    want: "svc",
  },
  {
    name: "no policy for the kind: the default network",
    policies: [policy("pods", {})],
    subject: pod({}, { kind: "Service" }),
    want: null,
  },
  {
    name: "matchLabels must all match",
    policies: [
      policy("both", { priority: 1, selector: { matchLabels: { tier: "backend", app: "db" } } }),
      policy("tier", { priority: 2, selector: { matchLabels: { tier: "backend" } } }),
    ],
    subject: pod({ tier: "backend", app: "web" }),
    want: "tier",
  },
  {
    name: "In matches one of the values",
    policies: [policy("in", { selector: { matchExpressions: [{ key: "tier", operator: "In", values: ["a", "backend"] }] } })],
    subject: pod({ tier: "backend" }),
    want: "in",
  },
  {
    name: "In does not match an absent label",
    policies: [policy("in", { selector: { matchExpressions: [{ key: "tier", operator: "In", values: ["backend"] }] } })],
    subject: pod({ app: "x" }),
    want: null,
  },
  {
    name: "NotIn refuses a listed value",
    policies: [policy("notin", { selector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["backend"] }] } })],
    subject: pod({ tier: "backend" }),
    want: null,
  },
  {
    name: "NotIn matches an absent label, as in Kubernetes",
    policies: [policy("notin", { selector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["backend"] }] } })],
    subject: pod({}),
    want: "notin",
  },
  {
    name: "Exists matches any value",
    policies: [policy("exists", { selector: { matchExpressions: [{ key: "gpu", operator: "Exists" }] } })],
    subject: pod({ gpu: "" }),
    want: "exists",
  },
  {
    name: "Exists refuses an absent label",
    policies: [policy("exists", { selector: { matchExpressions: [{ key: "gpu", operator: "Exists" }] } })],
    subject: pod({ cpu: "x" }),
    want: null,
  },
  {
    name: "DoesNotExist matches an absent label",
    policies: [policy("dne", { selector: { matchExpressions: [{ key: "legacy", operator: "DoesNotExist" }] } })],
    subject: pod({ tier: "x" }),
    want: "dne",
  },
  {
    name: "DoesNotExist refuses a present label",
    policies: [policy("dne", { selector: { matchExpressions: [{ key: "legacy", operator: "DoesNotExist" }] } })],
    subject: pod({ legacy: "yes" }),
    want: null,
  },
  {
    name: "every operator together",
    policies: [
      policy("all-ops", {
        selector: {
          matchLabels: { app: "web" },
          matchExpressions: [
            { key: "tier", operator: "In", values: ["frontend", "backend"] },
            { key: "env", operator: "NotIn", values: ["dev"] },
            { key: "owner", operator: "Exists" },
            { key: "legacy", operator: "DoesNotExist" },
          ],
        },
      }),
    ],
    subject: pod({ app: "web", tier: "backend", env: "prod", owner: "ann" }),
    want: "all-ops",
  },
  {
    name: "namespaceSelector by the namespace's labels",
    policies: [
      policy("team-b", { priority: 1, namespaceSelector: { matchLabels: { team: "b" } } }),
      policy("team-a", { priority: 2, namespaceSelector: { matchLabels: { team: "a" } } }),
    ],
    subject: pod(),
    want: "team-a",
  },
  {
    name: "namespaceSelector by the namespace name label Kubernetes adds",
    policies: [policy("by-name", { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "team-a" } } })],
    subject: pod(),
    want: "by-name",
  },
  {
    name: "conditions over node and annotations",
    policies: [
      policy("node-2", { priority: 1, conditions: { all: [{ fact: "node", operator: "equal", value: "node-2" }] } }),
      policy("annotated", {
        priority: 2,
        conditions: { any: [{ fact: "annotation", params: { key: "lace-cni.io/network" }, operator: "equal", value: "fast" }] },
      }),
    ],
    subject: pod({}, { annotations: { "lace-cni.io/network": "fast" } }),
    want: "annotated",
  },
  {
    name: "conditions with a JSONPath into labels",
    policies: [policy("jp", { conditions: { all: [{ fact: "labels", path: "$.tier", operator: "equal", value: "db" }] } })],
    subject: pod({ tier: "db" }),
    want: "jp",
  },
  {
    name: "json-rules-engine operator decorators work in conditions",
    policies: [policy("deco", { conditions: { all: [{ fact: "namespace", operator: "not:in", value: ["kube-system", "default"] }] } })],
    subject: pod(),
    want: "deco",
  },
  {
    name: "an empty conditions object is no condition",
    policies: [policy("empty", { conditions: {} })],
    subject: pod(),
    want: "empty",
  },
];

for (const c of cases) {
  t(c.name, async () => {
    const rules = BindingRules.compile(c.policies, { defaultNetwork: "default" });
    assert.equal(rules.problems, []);
    const d = await rules.decide(c.subject);
    assert.is(d.policy, c.want);
    assert.is(d.network, c.want === null ? "default" : `net-${c.want}`);
    // The explanation evaluates every policy without the index: it must agree.
    const e = await rules.explain(c.subject);
    assert.is(e.policy, c.want);
    assert.is(e.defaulted, c.want === null);
  });
}

t("a plugin-provided operator and fact decide a binding", async () => {
  const startsWith: RuleOperatorDefinition = {
    name: "startsWith",
    evaluate: (f, v) => typeof f === "string" && typeof v === "string" && f.startsWith(v),
  };
  const nameLength: RuleFactDefinition = { name: "nameLength", compute: (f) => String(f.name).length };
  const rules = BindingRules.compile(
    [
      policy("canary", { priority: 1, conditions: { all: [{ fact: "name", operator: "startsWith", value: "canary-" }] } }),
      policy("long", { priority: 2, conditions: { all: [{ fact: "nameLength", operator: "greaterThan", value: 10 }] } }),
    ],
    { defaultNetwork: "default", extensions: { operators: [startsWith], facts: [nameLength] } },
  );
  assert.equal(rules.problems, []);
  assert.is((await rules.decide(pod({}, { name: "canary-web" }))).policy, "canary");
  assert.is((await rules.decide(pod({}, { name: "a-very-long-name" }))).policy, "long");
  assert.is((await rules.decide(pod({}, { name: "web" }))).policy, null);
});

t("a routing-only plugin fact is unknown to binding policies", () => {
  const f: RuleFactDefinition = { name: "zone", appliesTo: ["routing"], compute: () => "z" };
  const rules = BindingRules.compile([policy("p", { conditions: { all: [{ fact: "zone", operator: "equal", value: "z" }] } })], {
    extensions: { operators: [], facts: [f] },
  });
  assert.is(rules.size, 0);
  assert.is(rules.problems[0].path, "spec.conditions.all[0].fact");
});

t("a plugin fact may not shadow a core fact", () => {
  try {
    new BindingRules({ extensions: { operators: [], facts: [{ name: "labels", compute: () => ({}) }] } });
    assert.unreachable("expected an error");
  } catch (e) {
    assert.ok(isLaceError(e, "PLUGIN_DUPLICATE_RULE_EXTENSION"), String(e));
    assert.match((e as Error).message, /"labels"/);
  }
});

t("a failing plugin operator is reported with its name", async () => {
  const boom: RuleOperatorDefinition = { name: "boom", evaluate: () => { throw new Error("kaput"); } };
  const rules = BindingRules.compile([policy("p", { conditions: { all: [{ fact: "name", operator: "boom", value: 1 }] } })], {
    extensions: { operators: [boom], facts: [] },
  });
  try {
    await rules.decide(pod());
    assert.unreachable("expected an error");
  } catch (e) {
    assert.ok(isLaceError(e, "PLUGIN_HOOK_FAILED"), String(e));
    assert.match((e as Error).message, /Rule operator "boom" failed.*kaput/);
  }
});

t("invalid policies are left out with field paths; upsert refuses them", () => {
  const bad = [
    policy("op", { conditions: { all: [{ fact: "name", operator: "startsWith", value: "x" }] } }),
    policy("fact", { conditions: { any: [{ fact: "colour", operator: "equal", value: "x" }] } }),
    policy("expr", { selector: { matchExpressions: [{ key: "a", operator: "In", values: [] }] } }),
    policy("exists", { selector: { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] } }),
    policy("kind", { matchKind: "Node" as never }),
    policy("prio", { priority: -1 }),
    { ...policy("net", {}), spec: { network: "" } },
  ];
  const rules = BindingRules.compile(bad);
  assert.is(rules.size, 0);
  const got = rules.problems.map((p) => `${p.policy} ${p.path}`);
  assert.equal(got, [
    "op spec.conditions.all[0].operator",
    "fact spec.conditions.any[0].fact",
    "expr spec.selector.matchExpressions[0].values",
    "exists spec.selector.matchExpressions[0].values",
    "kind spec.matchKind",
    "prio spec.priority",
    "net spec.network",
  ]);
  assert.match(rules.problems[0].message, /unknown operator "startsWith": expected one of .*equal/);
  try {
    rules.upsert(bad[0]);
    assert.unreachable("expected an error");
  } catch (e) {
    assert.ok(isLaceError(e, "INVALID_RESOURCE"));
    assert.match((e as Error).message, /^NetworkBindingPolicy\/op cannot be compiled: spec\.conditions\.all\[0\]\.operator: unknown operator/);
  }
});

t("a second policy with the same name is left out", async () => {
  const rules = BindingRules.compile([policy("p", { network: "first" }), policy("p", { network: "second" })]);
  assert.equal(rules.problems.map((p) => `${p.policy} ${p.path}`), ["p metadata.name"]);
  assert.is((await rules.decide(pod())).network, "first");
});

t("no match and no default: NO_BINDING_POLICY names the closest candidates and the condition each failed", async () => {
  const rules = BindingRules.compile([
    policy("backend", { priority: 1, selector: { matchLabels: { tier: "backend" } } }),
    policy("far", { priority: 2, namespaceSelector: { matchLabels: { team: "z" } }, selector: { matchLabels: { tier: "x", app: "y" } } }),
    policy("svc", { priority: 0, matchKind: "Service" }),
  ]);
  try {
    await rules.decide(pod({ tier: "frontend" }));
    assert.unreachable("expected an error");
  } catch (e) {
    assert.ok(e instanceof NoBindingPolicyError);
    assert.is(e.code, "NO_BINDING_POLICY");
    assert.equal(e.candidates.map((c) => c.policy), ["backend", "far"]);
    assert.match(
      e.message,
      'No binding policy matched Pod team-a/web-1 and no default network is configured; closest candidates: "backend" failed spec.selector.matchLabels.tier: label("tier") equal "backend", got "frontend"',
    );
    assert.is(e.candidates[1].failed.length, 3);
  }
});

t("no policies of the kind at all says so", async () => {
  const rules = BindingRules.compile([policy("p", {})]);
  try {
    await rules.decide(pod({}, { kind: "Service" }));
    assert.unreachable("expected an error");
  } catch (e) {
    assert.ok(isLaceError(e, "NO_BINDING_POLICY"));
    assert.match((e as Error).message, /there are no binding policies with matchKind Service/);
  }
});

t("explain lists every policy in order with each condition's outcome", async () => {
  const rules = BindingRules.compile([
    policy("b-backend", { priority: 5, selector: { matchLabels: { tier: "backend" } } }),
    policy("a-svc", { priority: 5, matchKind: "Service" }),
    policy("c-all", { priority: 7 }),
  ]);
  const e = await rules.explain(pod({ tier: "backend" }));
  assert.equal(e.considered.map((c) => [c.policy, c.matched, c.decided]), [
    ["a-svc", false, false],
    ["b-backend", true, true],
    ["c-all", true, false],
  ]);
  assert.equal(e.considered[0].conditions[0], {
    source: "spec.matchKind",
    test: 'kind equal "Service"',
    passed: false,
    actual: "Pod",
  });
  assert.is(e.network, "net-b-backend");
});

t("upsert and remove change later decisions", async () => {
  const rules = BindingRules.compile([policy("base", { priority: 10 })]);
  rules.upsert(policy("better", { priority: 1, selector: { matchLabels: { app: "x" } } }));
  assert.is((await rules.decide(pod({ app: "x" }))).policy, "better");
  rules.upsert(policy("better", { priority: 20, selector: { matchLabels: { app: "x" } } }));
  assert.is((await rules.decide(pod({ app: "x" }))).policy, "base");
  assert.ok(rules.remove("base"));
  assert.is((await rules.decide(pod({ app: "x" }))).policy, "better");
});

// The index must never change a decision: compare it with evaluating every rule, over random policies and pods.
t("indexed decisions equal every-rule decisions on random policies", async () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const keys = ["app", "tier", "env", "zone"];
  const vals = ["a", "b", "c"];
  const ops = ["In", "NotIn", "Exists", "DoesNotExist"] as const;
  const policies: NetworkBindingPolicy[] = [];
  for (let i = 0; i < 120; i++) {
    const spec: Partial<NetworkBindingPolicySpec> = { priority: rnd(20), matchKind: rnd(4) === 0 ? "Service" : "Pod" };
    if (rnd(2)) spec.selector = { matchLabels: { [keys[rnd(4)]]: vals[rnd(3)] } };
    if (rnd(3) === 0) {
      const op = ops[rnd(4)];
      const expr = { key: keys[rnd(4)], operator: op, ...(op === "In" || op === "NotIn" ? { values: [vals[rnd(3)], vals[rnd(3)]] } : {}) };
      spec.selector = { ...spec.selector, matchExpressions: [expr] };
    }
    if (rnd(4) === 0) spec.namespaceSelector = { matchLabels: { team: vals[rnd(3)] } };
    policies.push(policy(`p${i}`, spec));
  }
  const rules = BindingRules.compile(policies, { defaultNetwork: "default" });
  assert.is(rules.size, 120);
  for (let i = 0; i < 200; i++) {
    const labels: Record<string, string> = {};
    for (const k of keys) if (rnd(2)) labels[k] = vals[rnd(3)];
    const s = pod(labels, { kind: rnd(3) === 0 ? "Service" : "Pod", namespaceLabels: { team: vals[rnd(3)] } });
    const fast = await rules.decide(s);
    const full = await rules.explain(s);
    assert.is(fast.policy, full.policy, `subject ${JSON.stringify(s)}`);
  }
});

t.run();
