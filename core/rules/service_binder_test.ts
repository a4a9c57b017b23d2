import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NetworkBindingPolicy, NetworkBindingPolicySpec } from "../resources/types.ts";
import { BindingRules } from "./binding.ts";
import { ServiceBinder, type ServiceBindingChange } from "./service_binder.ts";

const t = suite("rules/service_binder");

function policy(name: string, spec: Partial<NetworkBindingPolicySpec>): NetworkBindingPolicy {
  return {
    apiVersion: "lace-cni.io/v1alpha1",
    kind: "NetworkBindingPolicy",
    metadata: { name },
    spec: { network: `net-${name}`, matchKind: "Service", ...spec },
  };
}

/** Changes as `ns/name: old -> new (policy)`, sorted. */
function show(changes: ServiceBindingChange[]): string[] {
  return changes
    .map((c) => `${c.service.namespace}/${c.service.name}: ${c.oldNetwork} -> ${c.newNetwork} (${c.policy})`)
    .sort();
}

async function binderWith(policies: NetworkBindingPolicy[], defaultNetwork?: string): Promise<ServiceBinder> {
  const binder = new ServiceBinder(BindingRules.compile(policies, { defaultNetwork }));
  await binder.setNamespace("shop", { team: "a" });
  await binder.setNamespace("bank", { team: "b" });
  await binder.setService({ namespace: "shop", name: "cart", labels: { tier: "backend", app: "cart" } });
  await binder.setService({ namespace: "shop", name: "web", labels: { tier: "frontend", app: "web" } });
  await binder.setService({ namespace: "bank", name: "ledger", labels: { tier: "backend", app: "ledger" } });
  await binder.setService({ namespace: "bank", name: "db", labels: { app: "db" } });
  return binder;
}

const basePolicies = [
  policy("backend", { priority: 10, selector: { matchLabels: { tier: "backend" } } }),
  policy("frontend", { priority: 10, selector: { matchLabels: { tier: "frontend" } } }),
];

interface Case {
  name: string;
  change: (b: ServiceBinder) => Promise<ServiceBindingChange[]>;
  want: string[];
  /** How many evaluations the change may cost: exactly the affected services. */
  evaluations: number;
}

const cases: Case[] = [
  {
    name: "a service rebinds when its labels change",
    change: (b) => b.setService({ namespace: "shop", name: "web", labels: { tier: "backend", app: "web" } }),
    want: ["shop/web: net-frontend -> net-backend (backend)"],
    evaluations: 1,
  },
  {
    name: "a service whose labels change without effect emits nothing",
    change: (b) => b.setService({ namespace: "shop", name: "web", labels: { tier: "frontend", app: "web", v: "2" } }),
    want: [],
    evaluations: 1,
  },
  {
    name: "a new policy of lower priority takes over only the services it matches",
    change: (b) => b.setPolicy(policy("ledger", { priority: 1, selector: { matchLabels: { app: "ledger" } } })),
    want: ["bank/ledger: net-backend -> net-ledger (ledger)"],
    evaluations: 1,
  },
  {
    name: "a new policy of higher priority changes nothing and evaluates nothing",
    change: (b) => b.setPolicy(policy("late", { priority: 99, selector: { matchLabels: { tier: "backend" } } })),
    want: [],
    evaluations: 0,
  },
  {
    name: "a Pod policy does not touch services",
    change: (b) => b.setPolicy(policy("pods", { priority: 0, matchKind: "Pod" })),
    want: [],
    evaluations: 0,
  },
  {
    name: "a new namespace-wide policy evaluates the namespace's services only",
    change: (b) => b.setPolicy(policy("bank", { priority: 1, namespaceSelector: { matchLabels: { team: "b" } } })),
    want: ["bank/db: default -> net-bank (bank)", "bank/ledger: net-backend -> net-bank (bank)"],
    evaluations: 2,
  },
  {
    name: "removing a policy rebinds exactly the services it bound",
    change: (b) => b.removePolicy("backend"),
    want: ["bank/ledger: net-backend -> default (null)", "shop/cart: net-backend -> default (null)"],
    evaluations: 2,
  },
  {
    name: "changing a policy's network moves its services",
    change: (b) => b.setPolicy(policy("frontend", { priority: 10, network: "edge", selector: { matchLabels: { tier: "frontend" } } })),
    want: ["shop/web: net-frontend -> edge (frontend)"],
    evaluations: 1,
  },
  {
    name: "a namespace's labels changing rebinds the services in it",
    change: async (b) => {
      await b.setPolicy(policy("team-b", { priority: 1, namespaceSelector: { matchLabels: { team: "b" } } }));
      b.evaluations = 0;
      return b.setNamespace("shop", { team: "b" });
    },
    want: ["shop/cart: net-backend -> net-team-b (team-b)", "shop/web: net-frontend -> net-team-b (team-b)"],
    evaluations: 2,
  },
  {
    name: "a removed service reports its binding gone",
    change: (b) => b.removeService("shop", "cart"),
    want: ["shop/cart: net-backend -> null (null)"],
    evaluations: 0,
  },
];

for (const c of cases) {
  t(c.name, async () => {
    const binder = await binderWith(basePolicies, "default");
    assert.is(binder.binding("shop", "web")?.network, "net-frontend");
    assert.is(binder.binding("bank", "db")?.network, "default");
    binder.evaluations = 0;
    const changes = await c.change(binder);
    assert.equal(show(changes), c.want);
    assert.is(binder.evaluations, c.evaluations);
    // Whatever the binder did incrementally must equal deciding every service from scratch.
    for (const [svc, binding] of binder.bindings()) {
      const fresh = await binder.rules.decide({
        kind: "Service",
        namespace: svc.namespace,
        name: svc.name,
        labels: svc.labels,
        namespaceLabels: binder.namespaceLabels(svc.namespace),
      });
      assert.equal({ network: binding.network, policy: binding.policy }, fresh, `${svc.namespace}/${svc.name}`);
    }
  });
}

t("without a default network an unmatched service has no network and says why", async () => {
  const binder = await binderWith(basePolicies);
  const b = binder.binding("bank", "db");
  assert.is(b?.network, null);
  assert.match(b?.error ?? "", /No binding policy matched Service bank\/db/);
  const changes = await binder.setService({ namespace: "bank", name: "db", labels: { app: "db", tier: "backend" } });
  assert.equal(show(changes), ["bank/db: null -> net-backend (backend)"]);
});

t("concurrent calls are applied in order", async () => {
  const binder = await binderWith(basePolicies, "default");
  const [a, b] = await Promise.all([
    binder.setService({ namespace: "shop", name: "web", labels: { tier: "backend" } }),
    binder.setService({ namespace: "shop", name: "web", labels: { tier: "frontend" } }),
  ]);
  assert.equal(show(a), ["shop/web: net-frontend -> net-backend (backend)"]);
  assert.equal(show(b), ["shop/web: net-backend -> net-frontend (frontend)"]);
});

t("random changes: the incremental bindings always equal deciding every service afresh", async () => {
  let seed = 3;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const vals = ["a", "b", "c"];
  const binder = new ServiceBinder(BindingRules.compile([], { defaultNetwork: "default" }));
  const randomPolicy = () => {
    const spec: Partial<NetworkBindingPolicySpec> = { priority: rnd(5), matchKind: rnd(5) === 0 ? "Pod" : "Service" };
    const shape = rnd(3);
    if (shape !== 1) spec.selector = { matchLabels: { app: vals[rnd(3)] } };
    if (rnd(3) === 0) spec.selector = { ...spec.selector, matchExpressions: [{ key: "env", operator: rnd(2) ? "Exists" : "DoesNotExist" }] };
    if (shape !== 0) spec.namespaceSelector = { matchLabels: { team: vals[rnd(3)] } };
    return policy(`p${rnd(8)}`, { ...spec, network: `n${rnd(4)}` });
  };
  let nsChanges = 0;
  for (let step = 0; step < 300; step++) {
    const op = rnd(5);
    if (op === 0) await binder.setPolicy(randomPolicy());
    else if (op === 1) await binder.removePolicy(`p${rnd(8)}`);
    else if (op === 2) nsChanges += (await binder.setNamespace(`ns${rnd(3)}`, rnd(4) ? { team: vals[rnd(3)] } : {})).length;
    else if (op === 3) await binder.removeService(`ns${rnd(3)}`, `s${rnd(6)}`);
    else {
      const labels: Record<string, string> = { app: vals[rnd(3)] };
      if (rnd(2)) labels.env = "prod";
      await binder.setService({ namespace: `ns${rnd(3)}`, name: `s${rnd(6)}`, labels });
    }
    for (const [svc, binding] of binder.bindings()) {
      const fresh = await binder.rules.decide({
        kind: "Service",
        namespace: svc.namespace,
        name: svc.name,
        labels: svc.labels,
        namespaceLabels: binder.namespaceLabels(svc.namespace),
      });
      assert.equal({ network: binding.network, policy: binding.policy }, fresh, `step ${step}: ${svc.namespace}/${svc.name}`);
    }
  }
  assert.ok(nsChanges > 0, "namespace changes moved no service: the sequence does not exercise them");
});

t.run();
