import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { cidrOperators } from "../../plugins/external/cidr_operators.ts";
import { runExplain } from "./explain.ts";
import { builtInNetworkTypes } from "../../test/built_in_types.ts";

const t = suite("lace explain");
const root = fileURLToPath(new URL("../..", import.meta.url));
const fixtures = fileURLToPath(new URL("testdata/explain/", import.meta.url));

async function explain(from: string, to: string, more: { json?: boolean; defaultNetwork?: string; networkTypes?: ReturnType<typeof builtInNetworkTypes> } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runExplain({
    paths: [fixtures],
    from,
    to,
    ...more,
    extensions: { operators: cidrOperators, facts: [] },
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  });
  return { code, out, err, json: () => JSON.parse(out.join("\n")) };
}

interface Case {
  name: string;
  from: string;
  to: string;
  decision: "allow" | "deny";
  policy: string | null;
  reason: string;
  toNetwork: string;
}

const cases: Case[] = [
  { name: "pod to pod through a policy", from: "shop/web-1", to: "shop/db-1", decision: "allow", policy: "web-to-db", reason: "policy", toNetwork: "db" },
  { name: "the reverse direction is closed", from: "shop/db-1", to: "shop/web-1", decision: "deny", policy: null, reason: "different-networks", toNetwork: "web" },
  { name: "a Deny of lower value overrides the Allow for a pod in the denied prefix", from: "shop/web-1", to: "shop/admin-1", decision: "deny", policy: "no-db-admin", reason: "policy", toNetwork: "db" },
  { name: "an address in the denied prefix", from: "web", to: "10.2.9.200", decision: "deny", policy: "no-db-admin", reason: "policy", toNetwork: "db" },
  { name: "a network reaches itself", from: "web", to: "web", decision: "allow", policy: null, reason: "same-network", toNetwork: "web" },
  { name: "an anonymous network does not", from: "hsm", to: "hsm", decision: "deny", policy: null, reason: "anonymous", toNetwork: "hsm" },
  { name: "a networkSelector source to an external network", from: "shop/db-1", to: "192.0.2.10", decision: "allow", policy: "db-to-corp", reason: "policy", toNetwork: "corp" },
  { name: "192.0.2.200 is in the /25 network, not the /24", from: "db", to: "192.0.2.200", decision: "deny", policy: null, reason: "different-networks", toNetwork: "lab" },
  { name: "an address in no network", from: "db", to: "203.0.113.1", decision: "deny", policy: null, reason: "no-network", toNetwork: "" },
];

for (const c of cases) {
  t(`--json: ${c.name}`, async () => {
    const r = await explain(c.from, c.to, { json: true });
    assert.is(r.code, 0, r.err.join("\n"));
    const j = r.json();
    assert.is(j.decision, c.decision);
    assert.is(j.policy, c.policy);
    assert.is(j.reason, c.reason);
    assert.is(j.to.network ?? "", c.toNetwork);
    assert.is(j.considered.length, c.reason === "no-network" ? 0 : 3);
    assert.is(j.considered.filter((p: { decided: boolean }) => p.decided).length, c.policy ? 1 : 0);
  });
}

t("--json: a pod's binding and every condition's outcome", async () => {
  const j = (await explain("shop/web-1", "shop/db-1", { json: true })).json();
  assert.equal(j.from, {
    network: "web",
    pod: "shop/web-1",
    binding: j.from.binding,
  });
  assert.is(j.from.binding.policy, "shop-web");
  assert.equal(j.considered.map((c: { policy: string }) => c.policy), ["no-db-admin", "db-to-corp", "web-to-db"]);
  assert.equal(j.considered[0].conditions, [
    { source: "spec.from.networks", test: 'sourceNetwork equal "web"', passed: true, actual: "web" },
    { source: "spec.to.prefixes", test: 'destinationPrefix withinPrefixes ["10.2.9.0/24"]', passed: false, actual: "10.2.0.0/16" },
  ]);
  assert.equal(j.reverse, { decision: "deny", policy: null, reason: "different-networks" });
});

t("text: the decision, the deciding policy, and each policy's conditions", async () => {
  const r = await explain("shop/web-1", "shop/admin-1");
  assert.is(r.code, 0);
  const text = r.out.join("\n");
  assert.match(text, "from: pod shop/web-1 network web (bound by shop-web)");
  assert.match(text, "to:   pod shop/admin-1 address 10.2.9.5 network db (bound by shop-db) (destination 10.2.9.0/24)");
  assert.match(text, "decision: DENY by policy no-db-admin");
  assert.match(text, "  no-db-admin (priority 10, Deny): DECIDES\n      pass  spec.from.networks: sourceNetwork equal \"web\"");
  assert.match(text, "  web-to-db (priority 100, Allow): matches, but a policy before it decided");
  assert.match(text, '      FAIL  spec.from.networkSelector.matchLabels.zone: sourceNetworkLabel("zone") equal "core", got "dmz"');
  assert.match(text, "binding of from pod shop/web-1: network web by policy shop-web");
});

t("text: the default that applied", async () => {
  const r = await explain("hsm", "hsm");
  assert.match(r.out.join("\n"), "decision: DENY by default: no policy matched: the network is anonymous");
  const same = await explain("db", "db");
  assert.match(same.out.join("\n"), "decision: ALLOW by default: no policy matched: a network reaches itself (the implicit route)");
});

t("a pod no binding policy places: an error naming the closest candidates, or the default network", async () => {
  const r = await explain("shop/stray", "db");
  assert.is(r.code, 1);
  assert.match(r.err.join("\n"), /No binding policy matched Pod shop\/stray and no default network is configured; closest candidates: "shop-db" failed spec\.selector\.matchExpressions\[0\]/);
  const d = await explain("shop/stray", "db", { json: true, defaultNetwork: "db" });
  assert.is(d.code, 0);
  assert.equal([d.json().decision, d.json().from.network, d.json().from.binding.defaulted], ["allow", "db", true]);
});

t("unknown pods and networks are errors that list what exists", async () => {
  const pod = await explain("shop/nope", "db");
  assert.is(pod.code, 1);
  assert.match(pod.err[0], "--from: no Pod shop/nope in the manifests: expected one of shop/admin-1, shop/db-1, shop/stray, shop/web-1");
  const net = await explain("web", "nowhere");
  assert.is(net.code, 1);
  assert.match(net.err[0], 'Unknown destination network "nowhere": expected one of corp, db, hsm, lab, web');
  const bad = await explain("a/b/c", "web");
  assert.match(bad.err[0], '--from expects a network name or namespace/pod, got "a/b/c"');
});

t("lace explain is registered on the program", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "agent/cli/main.ts", "explain", "-f", fixtures, "--from", "shop/web-1", "--to", "shop/db-1", "--json"], {
    cwd: root,
    encoding: "utf8",
  });
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal([j.decision, j.policy], ["allow", "web-to-db"]);
});

t("an address destination: where it lives, as its network type's locate hook says", async () => {
  const networkTypes = builtInNetworkTypes();
  const inBlock = await explain("web", "10.2.9.200", { networkTypes });
  assert.is(inBlock.code, 0, inBlock.err.join("\n"));
  assert.ok(inBlock.out.includes("where: node node-2, block 10.2.9.0/24"), inBlock.out.join("\n"));
  const json = (await explain("web", "10.2.9.200", { networkTypes, json: true })).json();
  assert.equal(json.location, { kind: "node", node: "node-2", network: "db", block: "10.2.9.0/24" });
  const outside = await explain("web", "10.2.1.5", { networkTypes });
  assert.ok(outside.out.some((l) => l.startsWith("where: no node holds it in these manifests")), outside.out.join("\n"));
  const external = await explain("web", "192.0.2.200", { networkTypes });
  assert.ok(external.out.includes("where: external network lab, prefix 192.0.2.128/25"), external.out.join("\n"));
});

t("a Service as destination: decided as source network → the Service's network, by name or ClusterIP", async () => {
  const byName = await explain("shop/web-1", "svc/shop/db", { json: true });
  assert.is(byName.code, 0, byName.err.join("\n"));
  const j = byName.json();
  assert.is(j.decision, "allow");
  assert.is(j.policy, "web-to-db");
  assert.is(j.to.network, "db");
  assert.equal(j.to.service, { name: "shop/db", clusterIPs: ["10.96.0.20"], endpoints: ["shop/admin-1", "shop/db-1"], offNetwork: [], binding: { policy: "shop-db-services", defaulted: false } });
  const byIp = await explain("shop/web-1", "10.96.0.20", { json: true });
  assert.equal(byIp.json().to, j.to);
  const reverse = await explain("db", "svc/shop/db");
  assert.is(reverse.code, 0);
  assert.ok(reverse.out.some((l) => l.startsWith("decision: ALLOW by default")), reverse.out.join("\n"));
  assert.ok(reverse.out.some((l) => l.startsWith("to:   service shop/db (ClusterIP 10.96.0.20) network db (bound by shop-db-services) (destination 10.2.0.0/16)")), reverse.out.join("\n"));
  assert.ok(reverse.out.includes("endpoints: shop/admin-1, shop/db-1"));
  const denied = await explain("hsm", "svc/shop/db", { json: true });
  assert.is(denied.json().decision, "deny");
});

t("a Service with an EndpointSlice (here without a selector): its endpoints are the ready pods the slice names on its network", async () => {
  const r = await explain("shop/web-1", "svc/shop/db-ext", { json: true });
  assert.is(r.code, 0, r.err.join("\n"));
  assert.equal(r.json().to.service, {
    name: "shop/db-ext", clusterIPs: ["10.96.0.40"], endpoints: ["shop/db-1"], offNetwork: [{ pod: "shop/web-1", network: "web" }],
    binding: { policy: "shop-db-services", defaulted: false },
  });
});

t("a Service no binding policy places, or one not in the manifests, is an error", async () => {
  const unbound = await explain("web", "svc/shop/batch");
  assert.is(unbound.code, 1);
  assert.match(unbound.err.join("\n"), /no binding policy|matched/i);
  const missing = await explain("web", "svc/shop/nope");
  assert.is(missing.code, 1);
  assert.match(missing.err.join("\n"), /no Service shop\/nope in the manifests: expected one of svc\/shop\/batch, svc\/shop\/db, svc\/shop\/db-ext/);
});

t.run();
