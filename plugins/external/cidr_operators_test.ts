import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BindingRules, type Network, type NetworkRoutingPolicy, RoutingRules } from "../../core/mod.ts";
import { cidrOperators } from "./cidr_operators.ts";

const t = suite("external/cidr_operators");

const op = (name: string) => cidrOperators.find((o) => o.name === name)!;

const cases: [operator: string, fact: unknown, value: unknown, want: boolean][] = [
  ["cidrWithin", "10.1.2.0/24", "10.0.0.0/8", true],
  ["cidrWithin", "10.1.2.3", "10.0.0.0/8", true],
  ["cidrWithin", "10.0.0.0/8", "10.0.0.0/8", true],
  ["cidrWithin", "10.0.0.0/7", "10.0.0.0/8", false],
  ["cidrWithin", "11.0.0.1", ["10.0.0.0/8", "11.0.0.0/8"], true],
  ["cidrWithin", "fd00::1", "10.0.0.0/8", false],
  ["cidrWithin", "fd00:1::/64", "fd00::/16", true],
  ["cidrWithin", "not an address", "10.0.0.0/8", false],
  ["cidrWithin", "10.0.0.1", "10.0.0.1/8", false],
  ["cidrWithin", null, "10.0.0.0/8", false],
  ["cidrContains", "192.0.2.0/24", "192.0.2.10", true],
  ["cidrContains", "192.0.2.0/24", "192.0.2.128/25", true],
  ["cidrContains", "192.0.2.128/25", "192.0.2.0/24", false],
  ["cidrContains", "192.0.2.0/24", ["198.51.100.1", "192.0.2.1"], true],
  ["cidrContains", "192.0.2.0/24", 42, false],
];

for (const [name, fact, value, want] of cases) {
  t(`${name}(${JSON.stringify(fact)}, ${JSON.stringify(value)}) is ${want}`, () => {
    assert.is(op(name).evaluate(fact, value), want);
  });
}

const networks: Network[] = [
  { apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "backend" }, spec: { type: "l3", ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 } } },
  { apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "corp" }, spec: { type: "external", externalPrefixes: ["192.0.2.0/24", "198.51.100.0/24"] } },
];

t("a routing policy uses cidrWithin through the plugin API", async () => {
  const policy: NetworkRoutingPolicy = {
    apiVersion: "lace-cni.io/v1alpha1",
    kind: "NetworkRoutingPolicy",
    metadata: { name: "corp-doc-range" },
    spec: {
      from: { networks: ["backend"] },
      to: { networks: ["corp"] },
      action: "Allow",
      conditions: { all: [{ fact: "destinationPrefix", operator: "cidrWithin", value: "192.0.2.0/24" }] },
    },
  };
  const rules = RoutingRules.compile([policy], networks, { extensions: { operators: cidrOperators, facts: [] } });
  assert.equal(rules.problems, []);
  assert.equal((await rules.decide("backend", { address: "192.0.2.7" })).policy, "corp-doc-range");
  assert.equal((await rules.decide("backend", { address: "198.51.100.7" })).decision, "deny");
  const without = RoutingRules.compile([policy], networks);
  assert.is(without.problems[0]?.path, "spec.conditions.all[0].operator");
});

t("a binding policy uses cidrContains on an annotation", async () => {
  const rules = BindingRules.compile(
    [{
      apiVersion: "lace-cni.io/v1alpha1",
      kind: "NetworkBindingPolicy",
      metadata: { name: "pinned" },
      spec: {
        network: "backend",
        conditions: { all: [{ fact: "annotation", params: { key: "example.com/cidr" }, operator: "cidrContains", value: "10.40.1.1" }] },
      },
    }],
    { extensions: { operators: cidrOperators, facts: [] }, defaultNetwork: "default" },
  );
  const subject = { kind: "Pod" as const, namespace: "ns", name: "p" };
  assert.is((await rules.decide({ ...subject, annotations: { "example.com/cidr": "10.40.0.0/16" } })).policy, "pinned");
  assert.is((await rules.decide({ ...subject, annotations: { "example.com/cidr": "10.41.0.0/16" } })).policy, null);
});

t.run();
