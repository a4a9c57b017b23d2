import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NodeDesiredState } from "../../core/mod.ts";
import { runPlan } from "./plan.ts";
import { builtInNetworkTypes } from "../../test/built_in_types.ts";

const t = suite("cli/plan");

const DIR = new URL("./testdata/plan/", import.meta.url).pathname;

async function plan(args: { paths?: string[]; node: string; json?: boolean; nodes?: number }): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPlan({ networkTypes: builtInNetworkTypes(), paths: args.paths ?? [DIR], node: args.node, json: args.json, nodes: args.nodes, out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

async function planJson(node: string, paths?: string[]): Promise<NodeDesiredState> {
  const r = await plan({ paths, node, json: true });
  assert.is(r.code, 0, r.err.join("\n"));
  return JSON.parse(r.out.join("\n"));
}

t("--json: the node's networks, SIDs, blocks, routes with their policies, endpoints", async () => {
  const s = await planJson("node-b");
  assert.is(s.node, "node-b");
  assert.is(s.locator, "fd00:1ace:2::/48");
  assert.equal(s.peers, [{ node: "node-a", locator: "fd00:1ace:1::/48" }]);
  assert.equal(s.networks.map((n) => n.name), ["be", "fe", "vault"]);
  const be = s.networks.find((n) => n.name === "be")!;
  assert.equal([be.id, be.sid, be.gateways], [1, "fd00:1ace:2::1", ["10.2.0.1/24"]]);
  // be → vault (anonymous) is opened by a policy; vault's block is on this node.
  assert.equal(be.paths.find((p) => p.toNetwork === "vault"), { destination: "10.3.0.0/24", toNetwork: "vault", via: "local", toNetworkId: 5, mode: "allow", policy: "be-to-vault" });
  // fe → be is allowed, so be routes replies back to fe's blocks, and only replies.
  assert.equal(
    be.paths.filter((p) => p.toNetwork === "fe").map((p) => [p.destination, p.via, p.mode, p.policy]),
    [["10.1.0.0/24", "sid", "reply-only", "fe-to-be"], ["10.1.1.0/24", "local", "reply-only", "fe-to-be"], ["fd01::/64", "sid", "reply-only", "fe-to-be"], ["fd01:0:0:1::/64", "local", "reply-only", "fe-to-be"]],
  );
  assert.equal(be.egress, [{ prefix: "192.0.2.0/24", network: "corp", snat: true }]);
  const vault = s.networks.find((n) => n.name === "vault")!;
  assert.is(vault.anonymous, true);
  assert.equal(vault.paths.map((p) => [p.toNetwork, p.mode]), [["be", "reply-only"]], "no implicit route inside an anonymous network");
  // db-0 and secrets-0 are placed by spec.nodeName; web-1 round-robin (node-a, then node-b).
  assert.equal(s.endpoints.map((e) => [e.id, e.network, e.addresses]), [
    ["shop/db-0", "be", ["10.2.0.2/32"]],
    ["shop/secrets-0", "vault", ["10.3.0.2/32"]],
    ["shop/web-1", "fe", ["10.1.1.2/32", "fd01:0:0:1::2/128"]],
  ]);
});

t("l2: the VM's neighbour and FDB entries, and the dual-stack frontend's remote blocks", async () => {
  const s = await planJson("node-a");
  const storage = s.networks.find((n) => n.name === "storage")!;
  assert.is(storage.forwarding, "bridged");
  assert.equal(storage.gateways, ["10.50.0.1/24"]);
  assert.equal(storage.neighbors.map((n) => n.ip), ["10.50.0.2", "10.50.0.3"]);
  assert.equal(storage.fdb.map((f) => [f.node, f.sid ?? null]), [["node-a", null], ["node-a", null]]);
  const fe = s.networks.find((n) => n.name === "fe")!;
  assert.equal(fe.remoteBlocks, [
    { prefix: "10.1.1.0/24", node: "node-b", sid: "fd00:1ace:2::3" },
    { prefix: "fd01:0:0:1::/64", node: "node-b", sid: "fd00:1ace:2::3" },
  ]);
});

t("readable output names every route's deciding policy", async () => {
  const r = await plan({ node: "node-b" });
  assert.is(r.code, 0);
  const text = r.out.join("\n");
  assert.match(text, /^Node node-b  locator fd00:1ace:2::\/48/);
  assert.match(text, /Network vault \(l3, id 5, routed, anonymous\)  mtu \d+/);
  assert.match(text, /10\.3\.0\.0\/24 +→ vault via local \(network id 5\)  allow  \(policy be-to-vault\)/);
  assert.match(text, /10\.2\.0\.0\/16 +→ be via local \(network id 1\)  allow  \(implicit: own network\)/);
  assert.match(text, /egress +192\.0\.2\.0\/24 \(corp, SNAT\)/);
  assert.match(text, /shop\/web-1 +fe +10\.1\.1\.2\/32, fd01:0:0:1::2\/128/);
});

t("the repository's examples plan, with made-up nodes and the recorded state honoured", async () => {
  const examples = new URL("../../examples/", import.meta.url).pathname;
  const s = await planJson("node-1", [examples]);
  const backend = s.networks.find((n) => n.name === "backend")!;
  // examples/state.yaml gives node-1 the block 10.40.1.0/24 and api-0 its address.
  assert.equal(backend.localPrefixes, ["10.40.1.0/24"]);
  assert.ok(s.endpoints.some((e) => e.id === "team-a/api-0" && e.addresses[0] === "10.40.1.2/32"));
  const r = await plan({ paths: [examples], node: "node-3" });
  assert.is(r.code, 0, r.err.join("\n"));
});

t("an unknown node is refused with the known ones listed; --nodes makes up that many", async () => {
  const r = await plan({ node: "node-9" });
  assert.is(r.code, 1);
  assert.equal(r.err, ['lace plan: --node: expected one of the nodes node-a, node-b, got "node-9"']);
  const examples = new URL("../../examples/", import.meta.url).pathname;
  const five = await plan({ paths: [examples], node: "node-5", nodes: 5, json: true });
  assert.is(five.code, 0, five.err.join("\n"));
  assert.is(JSON.parse(five.out.join("\n")).peers.length, 4);
});

t("unreadable manifests exit 1 with the problem", async () => {
  const r = await plan({ paths: ["/nonexistent/manifests"], node: "node-1" });
  assert.is(r.code, 1);
  assert.match(r.err.join("\n"), /no such file or directory/);
});

t.run();
