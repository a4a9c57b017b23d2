import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isLaceError } from "../errors.ts";
import type { RuleOperatorDefinition } from "../plugin/api.ts";
import type { Network, NetworkRoutingPolicy, NetworkRoutingPolicySpec, NetworkSpec } from "../resources/types.ts";
import { BindingRules } from "./binding.ts";
import { CORE_RULE_FACT_NAMES, CORE_RULE_OPERATOR_NAMES } from "./reserved_names.ts";
import { type RouteTarget, RoutingRules } from "./routing.ts";
import { reachabilityTable } from "./reachability_index.ts";

const t = suite("rules/routing");

function network(name: string, spec: NetworkSpec, labels?: Record<string, string>): Network {
  return { apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name, labels }, spec };
}

function policy(name: string, spec: Partial<NetworkRoutingPolicySpec>): NetworkRoutingPolicy {
  return {
    apiVersion: "lace-cni.io/v1alpha1",
    kind: "NetworkRoutingPolicy",
    metadata: { name },
    spec: { from: {}, to: {}, action: "Allow", ...spec },
  };
}

const NETWORKS = [
  network("frontend", { type: "l3", ipv4Subnet: { prefix: "10.10.0.0/16", hostLocalPrefixLength: 24 } }, { zone: "eu" }),
  network("backend", {
    type: "l3",
    ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 },
    ipv6Subnet: { prefix: "fd00:40::/48", hostLocalPrefixLength: 64 },
  }, { zone: "eu" }),
  network("secret", { type: "l3", anonymous: true, ipv4Subnet: { prefix: "10.60.0.0/16", hostLocalPrefixLength: 24 } }),
  network("storage", { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } }, { zone: "us" }),
  network("corp", { type: "external", externalPrefixes: ["192.0.2.0/24"] }),
  network("lab", { type: "external", externalPrefixes: ["192.0.2.128/25"] }),
];

const allow = (name: string, from: string, to: string, more: Partial<NetworkRoutingPolicySpec> = {}) =>
  policy(name, { from: { networks: [from] }, to: { networks: [to] }, action: "Allow", ...more });
const deny = (name: string, from: string, to: string, more: Partial<NetworkRoutingPolicySpec> = {}) =>
  policy(name, { from: { networks: [from] }, to: { networks: [to] }, action: "Deny", ...more });

interface Case {
  name: string;
  policies: NetworkRoutingPolicy[];
  from: string;
  to: RouteTarget;
  want: [decision: "allow" | "deny", policy: string | null, reason?: string];
}

const cases: Case[] = [
  { name: "a network reaches itself", policies: [], from: "frontend", to: { network: "frontend" }, want: ["allow", null, "same-network"] },
  { name: "different networks are isolated", policies: [], from: "frontend", to: { network: "backend" }, want: ["deny", null, "different-networks"] },
  { name: "an anonymous network does not reach itself", policies: [], from: "secret", to: { network: "secret" }, want: ["deny", null, "anonymous"] },
  {
    name: "an anonymous network reaches itself with a policy",
    policies: [allow("secret-self", "secret", "secret")],
    from: "secret",
    to: { address: "10.60.3.4" },
    want: ["allow", "secret-self", "policy"],
  },
  {
    name: "an Allow opens a path",
    policies: [allow("fe-be", "frontend", "backend")],
    from: "frontend",
    to: { network: "backend" },
    want: ["allow", "fe-be"],
  },
  {
    name: "paths are directional: the reverse stays closed",
    policies: [allow("fe-be", "frontend", "backend")],
    from: "backend",
    to: { network: "frontend" },
    want: ["deny", null, "different-networks"],
  },
  {
    name: "a Deny of lower value overrides an Allow",
    policies: [allow("fe-be", "frontend", "backend", { priority: 100 }), deny("block", "frontend", "backend", { priority: 10 })],
    from: "frontend",
    to: { network: "backend" },
    want: ["deny", "block"],
  },
  {
    name: "a Deny of higher value does not override an Allow",
    policies: [allow("fe-be", "frontend", "backend", { priority: 10 }), deny("block", "frontend", "backend", { priority: 100 })],
    from: "frontend",
    to: { network: "backend" },
    want: ["allow", "fe-be"],
  },
  {
    name: "a policy can close a network's own path",
    policies: [deny("self", "frontend", "frontend", { priority: 0 })],
    from: "frontend",
    to: { network: "frontend" },
    want: ["deny", "self"],
  },
  {
    name: "ties at the same priority go to the smallest name",
    policies: [allow("b-allow", "frontend", "backend", { priority: 5 }), deny("a-deny", "frontend", "backend", { priority: 5 })],
    from: "frontend",
    to: { network: "backend" },
    want: ["deny", "a-deny"],
  },
  {
    name: "an external address belongs to the longest prefix: 192.0.2.200 is in the /25",
    policies: [allow("to-corp", "backend", "corp")],
    from: "backend",
    to: { address: "192.0.2.200" },
    want: ["deny", null, "different-networks"],
  },
  {
    name: "an external address outside the /25 is in the /24",
    policies: [allow("to-corp", "backend", "corp")],
    from: "backend",
    to: { address: "192.0.2.10" },
    want: ["allow", "to-corp"],
  },
  {
    name: "the /25 network is reached by its own policy",
    policies: [allow("to-lab", "backend", "lab")],
    from: "backend",
    to: { address: "192.0.2.200" },
    want: ["allow", "to-lab"],
  },
  {
    name: "an address in no network is denied",
    policies: [policy("everything", { from: { networks: ["backend"] }, to: { prefixes: ["0.0.0.0/0"] } })],
    from: "backend",
    to: { address: "203.0.113.9" },
    want: ["deny", null, "no-network"],
  },
  {
    name: "to.prefixes narrows the destination: inside",
    policies: [allow("corp-dns", "backend", "corp", { to: { networks: ["corp"], prefixes: ["192.0.2.0/28"] } })],
    from: "backend",
    to: { address: "192.0.2.5" },
    want: ["allow", "corp-dns"],
  },
  {
    name: "to.prefixes narrows the destination: outside",
    policies: [allow("corp-dns", "backend", "corp", { to: { networks: ["corp"], prefixes: ["192.0.2.0/28"] } })],
    from: "backend",
    to: { address: "192.0.2.20" },
    want: ["deny", null],
  },
  {
    name: "to.prefixes alone picks the network by where the prefix lives",
    policies: [policy("be-prefix", { from: { networks: ["frontend"] }, to: { prefixes: ["10.40.7.0/24"] } })],
    from: "frontend",
    to: { address: "10.40.7.7" },
    want: ["allow", "be-prefix"],
  },
  {
    name: "a networkSelector picks sources by label",
    policies: [policy("eu-to-corp", { from: { networkSelector: { matchLabels: { zone: "eu" } } }, to: { networks: ["corp"] } })],
    from: "frontend",
    to: { network: "corp" },
    want: ["allow", "eu-to-corp"],
  },
  {
    name: "a networkSelector refuses other labels",
    policies: [policy("eu-to-corp", { from: { networkSelector: { matchLabels: { zone: "eu" } } }, to: { networks: ["corp"] } })],
    from: "storage",
    to: { network: "corp" },
    want: ["deny", null],
  },
  {
    name: "a networkSelector with every operator",
    policies: [
      policy("sel", {
        from: {
          networkSelector: {
            matchExpressions: [
              { key: "zone", operator: "In", values: ["eu", "us"] },
              { key: "zone", operator: "NotIn", values: ["eu"] },
              { key: "zone", operator: "Exists" },
              { key: "pci", operator: "DoesNotExist" },
            ],
          },
        },
        to: { networks: ["corp"] },
      }),
    ],
    from: "storage",
    to: { network: "corp" },
    want: ["allow", "sel"],
  },
  {
    name: "conditions over source and destination types",
    policies: [
      policy("l2-out", {
        from: { networkSelector: {} },
        to: { networkSelector: {} },
        conditions: { all: [{ fact: "sourceType", operator: "equal", value: "l2" }, { fact: "destinationType", operator: "equal", value: "external" }] },
      }),
    ],
    from: "storage",
    to: { network: "corp" },
    want: ["allow", "l2-out"],
  },
];

for (const c of cases) {
  t(c.name, async () => {
    const rules = RoutingRules.compile(c.policies, NETWORKS);
    assert.equal(rules.problems, []);
    const d = await rules.decide(c.from, c.to);
    assert.equal([d.decision, d.policy, ...(c.want[2] ? [d.reason] : [])], c.want);
    // The explanation evaluates every rule without the index: it must agree.
    const e = await rules.explain(c.from, c.to);
    assert.equal([e.decision, e.policy], [c.want[0], c.want[1]]);
  });
}

t("networkFor: subnets, then the longest external prefix", () => {
  const rules = RoutingRules.compile([], NETWORKS);
  assert.equal(rules.networkFor("192.0.2.200"), { network: "lab", prefix: "192.0.2.128/25" });
  assert.equal(rules.networkFor("192.0.2.127"), { network: "corp", prefix: "192.0.2.0/24" });
  assert.equal(rules.networkFor("fd00:40::9"), { network: "backend", prefix: "fd00:40::/48" });
  assert.is(rules.networkFor("198.51.100.1"), undefined);
});

t("the table: directional paths with reply-only routes back", async () => {
  const table = await reachabilityTable([allow("fe-be", "frontend", "backend")], NETWORKS);
  assert.equal(table.sources.get("frontend"), [
    { network: "backend", prefix: "10.40.0.0/16", action: "allow", policy: "fe-be" },
    { network: "backend", prefix: "fd00:40::/48", action: "allow", policy: "fe-be" },
    { network: "frontend", prefix: "10.10.0.0/16", action: "allow", policy: null },
  ]);
  assert.equal(table.sources.get("backend")?.map((e) => e.network), ["backend", "backend"]);
  assert.equal(table.replies.get("backend"), [{ network: "frontend", prefix: "10.10.0.0/16", policy: "fe-be" }]);
  assert.is(table.replies.get("frontend"), undefined);
  assert.is(table.sources.get("secret"), undefined, "an anonymous network has no implicit route");
  assert.ok(table.stats.evaluations <= 2, `evaluations ${table.stats.evaluations}`);
});

t("the table: both directions allowed need no reply-only routes", async () => {
  const table = await reachabilityTable([allow("fe-be", "frontend", "backend"), allow("be-fe", "backend", "frontend")], NETWORKS);
  assert.is(table.replies.size, 0);
});

t("the table: a denied prefix inside an allowed one is listed so it can be dropped", async () => {
  const table = await reachabilityTable(
    [
      allow("fe-be", "frontend", "backend", { priority: 100 }),
      policy("no-db", { priority: 10, action: "Deny", from: { networks: ["frontend"] }, to: { prefixes: ["10.40.9.0/24"] } }),
      allow("be-corp", "backend", "corp"),
    ],
    NETWORKS,
  );
  assert.equal(table.sources.get("frontend")?.filter((e) => e.network === "backend"), [
    { network: "backend", prefix: "10.40.0.0/16", action: "allow", policy: "fe-be" },
    { network: "backend", prefix: "10.40.9.0/24", action: "deny", policy: "no-db" },
    { network: "backend", prefix: "fd00:40::/48", action: "allow", policy: "fe-be" },
  ]);
  // corp's /24 is allowed, lab's /25 inside it is not: the /25 is carved out.
  assert.equal(table.sources.get("backend")?.filter((e) => e.network !== "backend"), [
    { network: "corp", prefix: "192.0.2.0/24", action: "allow", policy: "be-corp" },
    { network: "lab", prefix: "192.0.2.128/25", action: "deny", policy: null },
  ]);
});

t("the table agrees with full evaluation on random policies", async () => {
  let seed = 11;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const names = NETWORKS.map((n) => n.metadata.name);
  const prefixes = ["10.40.9.0/24", "192.0.2.0/28", "192.0.2.192/26", "10.0.0.0/8", "10.10.0.0/16"];
  const policies: NetworkRoutingPolicy[] = [];
  for (let i = 0; i < 40; i++) {
    const spec: Partial<NetworkRoutingPolicySpec> = {
      priority: rnd(10),
      action: rnd(2) ? "Allow" : "Deny",
      from: rnd(4) === 0 ? { networkSelector: { matchLabels: { zone: rnd(2) ? "eu" : "us" } } } : { networks: [names[rnd(6)]] },
      to: rnd(3) === 0 ? { prefixes: [prefixes[rnd(5)]] } : { networks: [names[rnd(6)]] },
    };
    if (rnd(5) === 0) spec.to = { ...spec.to, prefixes: [prefixes[rnd(5)]] };
    policies.push(policy(`r${i}`, spec));
  }
  const rules = RoutingRules.compile(policies, NETWORKS);
  assert.equal(rules.problems, []);
  const table = await reachabilityTable(policies, NETWORKS);
  const probes = ["10.10.1.1", "10.40.9.9", "10.40.1.1", "fd00:40::1", "10.60.0.1", "10.50.0.9", "192.0.2.1", "192.0.2.100", "192.0.2.130", "192.0.2.200"];
  for (const from of names) {
    for (const address of probes) {
      const e = await rules.explain(from, { address });
      // The table's verdict for an address: its longest matching entry, or denied.
      let best: { len: number; action: string } | undefined;
      for (const entry of table.sources.get(from) ?? []) {
        const [net, len] = entry.prefix!.split("/");
        if (contains(net, Number(len), address) && (!best || Number(len) > best.len)) best = { len: Number(len), action: entry.action };
      }
      assert.is(best?.action ?? "deny", e.decision, `${from} -> ${address}`);
      const d = await rules.decide(from, { address });
      assert.equal([d.decision, d.policy], [e.decision, e.policy], `${from} -> ${address}`);
    }
  }
});

function contains(net: string, len: number, address: string): boolean {
  if (net.includes(":") !== address.includes(":")) return false;
  if (net.includes(":")) return address.startsWith("fd00:40:") && net === "fd00:40::" && len === 48;
  const v = (s: string) => s.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - len);
  return Math.floor(v(address) / size) === Math.floor(v(net) / size);
}

t("a plugin-provided operator in routing conditions", async () => {
  const zoneIs: RuleOperatorDefinition = {
    name: "labelIs",
    evaluate: (fact, value) => typeof fact === "object" && fact !== null && (fact as Record<string, string>).zone === value,
  };
  const rules = RoutingRules.compile(
    [policy("eu-only", { from: { networkSelector: {} }, to: { networks: ["corp"] }, conditions: { all: [{ fact: "sourceLabels", operator: "labelIs", value: "eu" }] } })],
    NETWORKS,
    { extensions: { operators: [zoneIs], facts: [] } },
  );
  assert.is((await rules.decide("backend", { network: "corp" })).decision, "allow");
  assert.is((await rules.decide("storage", { network: "corp" })).decision, "deny");
});

t("explain shows every policy with its conditions, the default, and the reverse", async () => {
  const rules = RoutingRules.compile([deny("z-block", "storage", "backend"), allow("fe-be", "frontend", "backend", { priority: 50 })], NETWORKS);
  const e = await rules.explain("frontend", { network: "backend" });
  assert.equal(e.considered.map((c) => [c.policy, c.matched, c.decided]), [["fe-be", true, true], ["z-block", false, false]]);
  assert.equal(e.considered[1].conditions[0], {
    source: "spec.from.networks",
    test: 'sourceNetwork equal "storage"',
    passed: false,
    actual: "frontend",
  });
  assert.equal(e.prefixes.map((p) => [p.prefix, p.decision]), [["10.40.0.0/16", "allow"], ["fd00:40::/48", "allow"]]);
  assert.equal([e.reverse?.decision, e.reverse?.reason], ["deny", "different-networks"]);
  const d = await rules.explain("secret", { network: "secret" });
  assert.match(d.default ?? "", /anonymous/);
});

t("invalid policies are left out with field paths", () => {
  const rules = RoutingRules.compile(
    [
      policy("act", { action: "Maybe" as never, from: { networks: ["a"] } }),
      policy("pfx", { to: { prefixes: ["10.0.0.1/8"] } }),
      policy("cond", { conditions: { all: [{ fact: "colour", operator: "equal", value: 1 }] } }),
      policy("sel", { from: { networkSelector: { matchExpressions: [{ key: "k", operator: "Near" as never }] } } }),
    ],
    NETWORKS,
  );
  assert.is(rules.size, 0);
  assert.equal(rules.problems.map((p) => `${p.policy} ${p.path}`), [
    "act spec.action",
    "pfx spec.to.prefixes[0]",
    "cond spec.conditions.all[0].fact",
    "sel spec.from.networkSelector.matchExpressions[0].operator",
  ]);
  try {
    RoutingRules.check(policy("pfx", { to: { prefixes: ["10.0.0.1/8"] } }));
    assert.unreachable("expected an error");
  } catch (e) {
    assert.ok(isLaceError(e, "INVALID_RESOURCE"));
  }
});

t("unknown networks and bad addresses are coded errors", async () => {
  const rules = RoutingRules.compile([], NETWORKS);
  for (const [from, to, code] of [
    ["nope", { network: "backend" }, "UNKNOWN_NETWORK"],
    ["backend", { network: "nope" }, "UNKNOWN_NETWORK"],
    ["backend", { address: "10.0.0.300" }, "INVALID_ARGUMENT"],
  ] as const) {
    try {
      await rules.decide(from, to);
      assert.unreachable("expected an error");
    } catch (e) {
      assert.ok(isLaceError(e, code), String(e));
    }
  }
});

t("every reserved name clashes with the core when a plugin uses it", () => {
  const clashes = (make: () => unknown) => {
    try {
      make();
      return false;
    } catch (e) {
      return isLaceError(e, "PLUGIN_DUPLICATE_RULE_EXTENSION");
    }
  };
  for (const name of CORE_RULE_FACT_NAMES) {
    const facts = [{ name, compute: () => 1 }];
    const binding = clashes(() => new BindingRules({ extensions: { operators: [], facts } }));
    const routing = clashes(() => RoutingRules.compile([], [], { extensions: { operators: [], facts } }));
    assert.ok(binding || routing, name);
  }
  for (const name of CORE_RULE_OPERATOR_NAMES) {
    const operators = [{ name, evaluate: () => true }];
    assert.ok(clashes(() => RoutingRules.compile([], [], { extensions: { operators, facts: [] } })), name);
  }
});

t.run();
