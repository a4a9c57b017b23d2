import fc from "fast-check";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { API_VERSION, type Network, type NetworkRoutingPolicy, type NetworkRoutingPolicySpec, type NetworkSet } from "../resources/types.ts";
import { type ReachabilityTable, RoutingRules } from "./routing.ts";
import { ReachabilityIndex } from "./reachability_index.ts";
import { network, routingPolicy } from "../controller/testing.ts";

const t = suite("controller/reachability_index");

// ---- a small world where everything overlaps: l3 subnets, external prefixes around them, narrower policy prefixes

/** Each network name has a few versions (prefix, labels, anonymous); no two names share a prefix. */
const NETWORK_VERSIONS: Record<string, Network[]> = {
  a: [
    network("a", { ipv4: "10.1.0.0/16", ipv6: "fd00:1::/48", labels: { zone: "x" } }),
    network("a", { ipv4: "10.1.0.0/16", labels: { zone: "y" } }),
    network("a", { ipv4: "10.1.0.0/20", anonymous: true, labels: { zone: "x" } }),
  ],
  b: [
    network("b", { ipv4: "10.2.0.0/16", labels: { zone: "y" } }),
    network("b", { ipv4: "10.2.0.0/16", anonymous: true }),
    network("b", { type: "l2", ipv4: "10.2.0.0/24", labels: { zone: "x", tier: "db" } }),
  ],
  c: [
    network("c", { ipv4: "10.3.0.0/16", ipv6: "fd00:3::/48" }),
    network("c", { ipv4: "10.3.0.0/16", labels: { tier: "db" } }),
  ],
  ext: [
    network("ext", { external: ["10.0.0.0/8"], labels: { zone: "x" } }),
    network("ext", { external: ["0.0.0.0/0", "::/0"] }),
    network("ext", { external: ["192.0.2.0/24", "10.3.0.0/16"] }),
  ],
  corp: [
    network("corp", { external: ["198.51.100.0/24"] }),
    network("corp", { external: ["198.51.100.0/24", "10.1.5.0/24"], labels: { zone: "y" } }),
  ],
};
const NAMES = Object.keys(NETWORK_VERSIONS);
const PREFIXES = ["10.1.5.0/24", "10.2.0.0/24", "10.2.0.128/25", "10.0.0.0/8", "10.3.0.0/16", "192.0.2.128/25", "fd00:1:0:1::/64", "198.51.100.0/25"];
const POLICY_NAMES = ["p0", "p1", "p2", "p3", "p4", "p5", "p6"];

const side: fc.Arbitrary<NetworkSet | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.subarray(NAMES, { minLength: 1, maxLength: 2 }).map((networks) => ({ networks })),
  fc.constantFrom("x", "y").map((zone) => ({ networkSelector: { matchLabels: { zone } } })),
  fc.constant(null).map((): NetworkSet => ({ networkSelector: { matchExpressions: [{ key: "tier", operator: "Exists" }] } })),
);
const conditions = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant({ all: [{ fact: "destinationType", operator: "equal", value: "external" }] }) },
  { weight: 1, arbitrary: fc.constant({ any: [{ fact: "sourceNetworkLabel", params: { key: "zone" }, operator: "equal", value: "x" }, { fact: "destinationPrefix", operator: "withinPrefixes", value: ["10.2.0.0/16"] }] }) },
);
const policyArb = fc.record({
  name: fc.constantFrom(...POLICY_NAMES),
  from: side,
  to: side,
  prefixes: fc.oneof({ weight: 2, arbitrary: fc.constant([] as string[]) }, { weight: 1, arbitrary: fc.subarray(PREFIXES, { minLength: 1, maxLength: 2 }) }),
  action: fc.constantFrom("Allow" as const, "Allow" as const, "Deny" as const),
  priority: fc.integer({ min: 1, max: 3 }),
  conditions,
}).map((r): NetworkRoutingPolicy => {
  // from and to may be left out: any network.
  const spec = { priority: r.priority, action: r.action } as NetworkRoutingPolicySpec;
  if (r.from) spec.from = r.from;
  if (r.to || r.prefixes.length) spec.to = { ...(r.to ?? {}), ...(r.prefixes.length ? { prefixes: r.prefixes } : {}) };
  if (r.conditions) spec.conditions = r.conditions;
  return { apiVersion: API_VERSION, kind: "NetworkRoutingPolicy", metadata: { name: r.name }, spec };
});

type Op =
  | { kind: "net"; name: string; version: number }
  | { kind: "dropNet"; name: string }
  | { kind: "pol"; policy: NetworkRoutingPolicy }
  | { kind: "dropPol"; name: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("net" as const), name: fc.constantFrom(...NAMES), version: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("dropNet" as const), name: fc.constantFrom(...NAMES) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("pol" as const), policy: policyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("dropPol" as const), name: fc.constantFrom(...POLICY_NAMES) }) },
);

/** The world the ops describe, to feed a fresh index or RoutingRules. */
class World {
  nets = new Map<string, Network>();
  pols = new Map<string, NetworkRoutingPolicy>();
  apply(op: Op, index: ReachabilityIndex): void {
    switch (op.kind) {
      case "net": {
        const versions = NETWORK_VERSIONS[op.name];
        const n = versions[op.version % versions.length];
        this.nets.set(op.name, n);
        index.setNetwork(n);
        return;
      }
      case "dropNet":
        this.nets.delete(op.name);
        index.removeNetwork(op.name);
        return;
      case "pol":
        this.pols.set(op.policy.metadata.name, op.policy);
        index.setPolicy(op.policy);
        return;
      case "dropPol":
        this.pols.delete(op.name);
        index.removePolicy(op.name);
    }
  }
}

function plain(table: ReachabilityTable): unknown {
  return {
    sources: [...table.sources].sort((a, b) => a[0] < b[0] ? -1 : 1),
    replies: [...table.replies].sort((a, b) => a[0] < b[0] ? -1 : 1),
  };
}


t("incremental updates give exactly the table a full recompute gives, after random adds, changes and deletes", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 4, maxLength: 12 }), fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }), async (initial, batches) => {
      const world = new World();
      const index = new ReachabilityIndex({ fullThreshold: 1000 });
      for (const op of initial) world.apply(op, index);
      await index.update(); // the first load is a full recompute
      for (const batch of batches) {
        const before = plain(index.table) as { sources: [string, unknown][]; replies: [string, unknown][] };
        for (const op of batch) world.apply(op, index);
        const changed = await index.update();
        // What changed is reported (the builder rebuilds only those networks).
        const after = plain(index.table) as { sources: [string, unknown][]; replies: [string, unknown][] };
        for (const key of ["sources", "replies"] as const) {
          const a = new Map(before[key].map(([k, v]) => [k, JSON.stringify(v)]));
          const b = new Map(after[key].map(([k, v]) => [k, JSON.stringify(v)]));
          for (const name of new Set([...a.keys(), ...b.keys()])) {
            if (a.get(name) !== b.get(name)) assert.ok(changed.has(name), `${key} of ${name} changed but was not reported`);
          }
        }
        // The reference: a fresh index over the same inputs, computed in full.
        const fresh = new ReachabilityIndex();
        for (const n of world.nets.values()) fresh.setNetwork(n);
        for (const p of world.pols.values()) fresh.setPolicy(p);
        await fresh.recomputeAll();
        assert.equal(plain(index.table), plain(fresh.table));
      }
      // And the same decisions as RoutingRules (what lace explain says), compiled from scratch: every
      // network to every network's first destination is allowed exactly where the table lists it.
      const names = [...world.nets.keys()].sort();
      const rules = RoutingRules.compile(world.pols.values(), names.map((n) => world.nets.get(n)!));
      for (const from of names) {
        const entries = index.table.sources.get(from) ?? [];
        for (const to of names) {
          const d = await rules.decide(from, { network: to });
          const listed = entries.find((e) => e.network === to && e.prefix === d.prefix && e.action === "allow");
          assert.is(listed !== undefined, d.decision === "allow", `${from} → ${to} (${d.prefix}): explain says ${d.decision} by ${d.policy}, the table ${listed ? "allows" : "does not list it"}`);
          if (listed) assert.is(listed.policy, d.policy, `${from} → ${to}: the deciding policy`);
        }
      }
      assert.equal(index.problems(), rules.problems);
    }),
    { numRuns: 150, seed: 0x1ace },
  );
});

t("a policy change re-decides only the pairs it can match", async () => {
  const index = new ReachabilityIndex();
  const nets = Array.from({ length: 50 }, (_, i) => network(`n${i}`, { ipv4: `10.${i}.0.0/16` }));
  for (const n of nets) index.setNetwork(n);
  for (let i = 0; i < 49; i++) index.setPolicy(routingPolicy(`p${i}`, [`n${i}`], [`n${i + 1}`]));
  await index.update();
  assert.is(index.table.stats.pairs, 49);
  index.setPolicy(routingPolicy("extra", ["n3"], ["n7"]));
  const changed = await index.update();
  assert.is(index.table.stats.pairs, 1, "one source × one destination");
  assert.equal([...changed].sort(), ["n3", "n7"], "the source's entries and the destination's reply-only routes");
  assert.equal(index.table.sources.get("n3")!.map((e) => [e.network, e.policy]), [["n3", null], ["n4", "p3"], ["n7", "extra"]]);
  assert.equal(index.table.replies.get("n7")!.map((r) => [r.network, r.policy]), [["n3", "extra"], ["n6", "p6"]]);
  index.removePolicy("extra");
  assert.equal([...(await index.update())].sort(), ["n3", "n7"]);
  assert.equal(index.table.replies.get("n7")!.map((r) => [r.network, r.policy]), [["n6", "p6"]]);
  // A status-only network write (same prefixes, labels, type) decides nothing again.
  index.setNetwork({ ...nets[3], status: { id: 4, usage: { addressesUsed: 9 } } });
  assert.equal([...(await index.update())], []);
  assert.is(index.table.stats.pairs, 0);
  // So does a relist handing over equal policies as new objects.
  index.setPolicy(structuredClone(routingPolicy("p5", ["n5"], ["n6"])));
  assert.is(index.pending, false);
});

t("a policy that does not compile is left out and reported; fixing it brings it in", async () => {
  const index = new ReachabilityIndex();
  index.setNetwork(network("fe", { ipv4: "10.1.0.0/16" }));
  index.setNetwork(network("be", { ipv4: "10.2.0.0/16" }));
  await index.update();
  const bad = routingPolicy("fe-to-be", ["fe"], ["be"]);
  (bad.spec as { action: string }).action = "Permit";
  index.setPolicy(bad);
  await index.update();
  assert.equal(index.problems().map((p) => [p.policy, p.path]), [["fe-to-be", "spec.action"]]);
  assert.is(index.table.sources.get("fe")!.some((e) => e.network === "be"), false);
  index.setPolicy(routingPolicy("fe-to-be", ["fe"], ["be"]));
  assert.equal([...(await index.update())].sort(), ["be", "fe"]);
  assert.equal(index.problems(), []);
  assert.ok(index.table.sources.get("fe")!.some((e) => e.network === "be" && e.action === "allow"));
});

t.run();
