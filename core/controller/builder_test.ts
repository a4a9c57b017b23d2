import fc from "fast-check";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NetworkForwarding, NodeDesiredState } from "../dataplane/desired_state.ts";
import { Prefix } from "../ip/mod.ts";
import type { NetworkEndpoint, Resource } from "../resources/types.ts";
import { DesiredStateBuilder } from "./builder.ts";
import { endpointL2Entries } from "./l2_entries.ts";
import { cutAround } from "./prefix_cut.ts";
import { allocation, builtInForwarding, endpoint, locatorsFor, network, routingPolicy, topology } from "./testing.ts";

const t = suite("controller/builder");

const NODES = ["node-1", "node-2", "node-3"];

function net(state: NodeDesiredState, name: string): NetworkForwarding {
  const n = state.networks.find((x) => x.name === name);
  if (!n) throw new Error(`${state.node} has no network ${name}: ${state.networks.map((x) => x.name).join(", ")}`);
  return n;
}

/** Records the nodes each event changed. */
function recorder(b: DesiredStateBuilder): { take(): string[] } {
  let fired: string[] = [];
  b.onChange((node) => fired.push(node));
  return {
    take() {
      const out = fired.sort();
      fired = [];
      return out;
    },
  };
}

t("dual-stack l3: gateways, local and remote blocks per family, SIDs in the owner's locator", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("backend", { ipv4: "10.40.0.0/16", ipv6: "fd10:40::/56", block4: 24, block6: 64 }, 3),
    allocation("backend", "node-1", ["10.40.0.0/24", "fd10:40::/64"]),
    allocation("backend", "node-2", ["10.40.1.0/24", "fd10:40:0:1::/64"]),
    endpoint("shop", "web-1", "backend", "node-1", ["10.40.0.2", "fd10:40::2"]),
    endpoint("shop", "web-2", "backend", "node-2", ["10.40.1.2", "fd10:40:0:1::2"]),
  ]);
  const s1 = b.stateFor("node-1");
  assert.is(s1.locator, "fd00:1ace:1::/48");
  const be = net(s1, "backend");
  assert.equal(be.gateways, ["10.40.0.1/24", "fd10:40::1/64"]);
  assert.equal(be.localPrefixes, ["10.40.0.0/24", "fd10:40::/64"]);
  assert.is(be.id, 3);
  assert.is(be.sid, "fd00:1ace:1::3");
  assert.is(be.sidBehavior, "decap-lookup");
  assert.equal(be.remoteBlocks, [
    { prefix: "10.40.1.0/24", node: "node-2", sid: "fd00:1ace:2::3" },
    { prefix: "fd10:40:0:1::/64", node: "node-2", sid: "fd00:1ace:2::3" },
  ]);
  // The implicit own-network route, one per subnet, decided by no policy.
  assert.equal(be.paths.map((p) => [p.destination, p.policy, p.mode]), [["10.40.0.0/16", null, "allow"], ["fd10:40::/56", null, "allow"]]);
  assert.equal(s1.endpoints, [{ id: "shop/web-1", network: "backend", addresses: ["10.40.0.2/32", "fd10:40::2/128"], interface: s1.endpoints[0].interface }]);
  assert.equal(s1.peers?.map((p) => p.node), ["node-2", "node-3"]);
  // node-3 has nothing of backend: no forwarding context there.
  assert.equal(b.stateFor("node-3").networks, []);
});

t("an anonymous network is reached only through a policy, and replies get reply-only routes", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("app", { ipv4: "10.10.0.0/16" }, 1),
    network("vault", { ipv4: "10.20.0.0/16", anonymous: true }, 2),
    allocation("app", "node-1", ["10.10.0.0/24"]),
    allocation("vault", "node-2", ["10.20.0.0/24"]),
    allocation("vault", "node-3", ["10.20.1.0/24"]),
    endpoint("a", "web", "app", "node-1", ["10.10.0.2"]),
    endpoint("v", "db-0", "vault", "node-2", ["10.20.0.2"]),
    endpoint("v", "db-1", "vault", "node-3", ["10.20.1.2"]),
  ]);
  let vault = net(b.stateFor("node-2"), "vault");
  assert.is(vault.anonymous, true);
  assert.equal(vault.paths, [], "no implicit route inside an anonymous network");
  assert.equal(vault.remoteBlocks, [], "vault's endpoints do not even reach each other");
  assert.equal(net(b.stateFor("node-1"), "app").paths.filter((p) => p.toNetwork === "vault"), []);

  await b.upsert(routingPolicy("app-to-vault", ["app"], ["vault"]));
  const app = net(b.stateFor("node-1"), "app");
  assert.equal(app.paths.filter((p) => p.toNetwork === "vault"), [
    { destination: "10.20.0.0/24", toNetwork: "vault", via: "sid", sid: "fd00:1ace:2::2", mode: "allow", policy: "app-to-vault" },
    { destination: "10.20.1.0/24", toNetwork: "vault", via: "sid", sid: "fd00:1ace:3::2", mode: "allow", policy: "app-to-vault" },
  ]);
  vault = net(b.stateFor("node-2"), "vault");
  assert.equal(vault.paths, [
    { destination: "10.10.0.0/24", toNetwork: "app", via: "sid", sid: "fd00:1ace:1::1", mode: "reply-only", policy: "app-to-vault" },
  ]);
  assert.equal(vault.remoteBlocks, [], "the policy opens app → vault, not vault → vault");
});

t("a network's own subnets no policy opens to it are denied to its endpoints: anonymous, or a Deny for the whole network", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("app", { ipv4: "10.10.0.0/16", ipv6: "fd10:10::/48", block6: 64 }, 1),
    network("vault", { ipv4: "10.20.0.0/16", anonymous: true }, 2),
    allocation("app", "node-1", ["10.10.0.0/24", "fd10:10::/64"]),
    allocation("vault", "node-1", ["10.20.0.0/24"]),
    endpoint("a", "web", "app", "node-1", ["10.10.0.2", "fd10:10::2"]),
    endpoint("v", "db-0", "vault", "node-1", ["10.20.0.2"]),
  ]);
  // Same-node pods of vault would otherwise reach each other over their bridge: the dataplane needs to know.
  assert.equal(net(b.stateFor("node-1"), "vault").denied, [{ destination: "10.20.0.0/16", policy: null }]);
  assert.equal(net(b.stateFor("node-1"), "app").denied, []);
  await b.upsert(routingPolicy("vault-to-vault", ["vault"], ["vault"]));
  assert.equal(net(b.stateFor("node-1"), "vault").denied, [], "a policy opens vault to itself");
  await b.upsert(routingPolicy("no-app", ["app"], ["app"], "Deny", 10));
  assert.equal(net(b.stateFor("node-1"), "app").denied, [
    { destination: "10.10.0.0/16", policy: null }, { destination: "fd10:10::/48", policy: null },
  ], "a Deny for the whole network closes both subnets");
});

t("a policy added and removed: routes appear and disappear, only sources' nodes change", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("fe", { ipv4: "10.1.0.0/16" }, 1),
    network("be", { ipv4: "10.2.0.0/16" }, 2),
    network("other", { ipv4: "10.3.0.0/16" }, 3),
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("be", "node-2", ["10.2.0.0/24"]),
    allocation("other", "node-3", ["10.3.0.0/24"]),
  ]);
  const rec = recorder(b);
  const before = b.stateFor("node-1").revision;
  await b.upsert(routingPolicy("fe-to-be", ["fe"], ["be"]));
  assert.equal(rec.take(), ["node-1", "node-2"], "fe gets routes, be gets reply-only routes; node-3 is untouched");
  const s1 = b.stateFor("node-1");
  assert.is(s1.revision, before + 1);
  assert.equal(net(s1, "fe").paths.filter((p) => p.toNetwork === "be").map((p) => [p.destination, p.via, p.policy]), [["10.2.0.0/24", "sid", "fe-to-be"]]);

  await b.upsert(routingPolicy("fe-to-be", ["fe"], ["be"])); // the same again
  assert.equal(rec.take(), [], "an unchanged policy publishes nothing");

  await b.remove("NetworkRoutingPolicy", "fe-to-be");
  assert.equal(rec.take(), ["node-1", "node-2"]);
  assert.equal(net(b.stateFor("node-1"), "fe").paths.filter((p) => p.toNetwork === "be"), []);
  assert.equal(net(b.stateFor("node-2"), "be").paths.filter((p) => p.mode === "reply-only"), []);
});

t("incremental: a pod event changes only its node; a new block reaches the network's nodes and those routing to it", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(["node-1", "node-2", "node-3", "node-4"])),
    network("fe", { ipv4: "10.1.0.0/16" }, 1),
    network("be", { ipv4: "10.2.0.0/16" }, 2),
    network("other", { ipv4: "10.3.0.0/16" }, 3),
    routingPolicy("fe-to-be", ["fe"], ["be"]),
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("be", "node-2", ["10.2.0.0/24"]),
    allocation("other", "node-4", ["10.3.0.0/24"]),
  ]);
  const rec = recorder(b);
  await b.upsert(endpoint("a", "web-1", "fe", "node-1", ["10.1.0.2"]));
  assert.equal(rec.take(), ["node-1"]);
  await b.upsert(endpoint("a", "web-1", "fe", "node-1", ["10.1.0.2"]));
  assert.equal(rec.take(), [], "a resync of an unchanged endpoint publishes nothing");
  await b.remove("NetworkEndpoint", "web-1", "a");
  assert.equal(rec.take(), ["node-1"]);
  assert.equal(b.stateFor("node-1").endpoints, []);

  // be grows onto node-3: be's nodes see a new remote block, fe's nodes a new route; node-4 hears nothing.
  await b.upsert(allocation("be", "node-3", ["10.2.1.0/24"]));
  assert.equal(rec.take(), ["node-1", "node-2", "node-3"]);
  assert.equal(net(b.stateFor("node-2"), "be").remoteBlocks.map((r) => r.prefix), ["10.2.1.0/24"]);
  assert.equal(net(b.stateFor("node-1"), "fe").paths.filter((p) => p.toNetwork === "be").map((p) => p.destination), ["10.2.0.0/24", "10.2.1.0/24"]);

  // A status write on a Network (conditions, usage) changes nothing forwarding depends on.
  const be = network("be", { ipv4: "10.2.0.0/16" }, 2);
  be.status!.conditions = [{ type: "Ready", status: "True", reason: "Converged", message: "" }];
  await b.upsert(be);
  assert.equal(rec.take(), []);
});

/** An l2 network with a VM on node-1 and one on node-2. */
function storageOfTwoVms(): Resource[] {
  return [
    topology(locatorsFor(NODES)),
    network("storage", { type: "l2", ipv4: "10.50.0.0/24" }, 5),
    ...withL2Entries(endpoint("vm", "db-0", "storage", "node-1", ["10.50.0.2"], "02:00:00:00:00:02")),
    ...withL2Entries(endpoint("vm", "db-1", "storage", "node-2", ["10.50.0.3"], "02:00:00:00:00:03")),
  ];
}

/** An l2 endpoint and the Neighbor and FDBEntry resources its agent writes for it. */
function withL2Entries(ep: Resource): Resource[] {
  const e = endpointL2Entries(ep as NetworkEndpoint)!;
  return [ep, ...e.neighbors, e.fdb];
}

t("a detached endpoint (a pod between sandboxes) leaves the node's state; its l2 neighbours go with their resources; reattached, it is back", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    ...storageOfTwoVms(),
  ]);
  const rec = recorder(b);
  const attached = endpoint("vm", "db-0", "storage", "node-1", ["10.50.0.2"], "02:00:00:00:00:02");
  const detached = { ...attached, spec: { ...attached.spec!, detachedAt: "2026-12-06T18:00:00Z" } };
  await b.upsert(detached);
  assert.equal(rec.take(), ["node-1"], "node-2's state is unchanged: the l2 entries are resources of their own");
  assert.equal(b.stateFor("node-1").endpoints, []);
  // The neighbours and FDB follow the resources alone: the agent removes them with the attachment.
  assert.equal(net(b.stateFor("node-2"), "storage").neighbors.map((n) => n.ip), ["10.50.0.2", "10.50.0.3"], "the endpoint's MAC does not drive them");
  const { neighbors, fdb } = endpointL2Entries(attached as NetworkEndpoint)!;
  for (const r of [...neighbors, fdb]) await b.remove(r.kind, r.metadata.name);
  assert.equal(net(b.stateFor("node-2"), "storage").neighbors.map((n) => n.ip), ["10.50.0.3"]);
  assert.equal(net(b.stateFor("node-2"), "storage").fdb.map((e) => e.mac), ["02:00:00:00:00:03"]);
  await b.upsertAll(withL2Entries(attached));
  assert.equal(b.stateFor("node-1").endpoints.map((e) => e.addresses), [["10.50.0.2/24"]]);
  assert.equal(net(b.stateFor("node-2"), "storage").neighbors.map((n) => n.ip), ["10.50.0.2", "10.50.0.3"]);
});

t("a denied prefix inside an allowed network: the routes are cut around it", async () => {
  const deny = routingPolicy("no-admin", ["fe"], ["be"], "Deny", 10);
  deny.spec!.to.prefixes = ["10.2.0.0/26"];
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("fe", { ipv4: "10.1.0.0/16" }, 1),
    network("be", { ipv4: "10.2.0.0/16" }, 2),
    routingPolicy("fe-to-be", ["fe"], ["be"]),
    deny,
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("be", "node-2", ["10.2.0.0/24", "10.2.1.0/24"]),
  ]);
  const paths = net(b.stateFor("node-1"), "fe").paths.filter((p) => p.toNetwork === "be");
  assert.equal(paths.map((p) => [p.destination, p.policy]), [["10.2.0.128/25", "fe-to-be"], ["10.2.0.64/26", "fe-to-be"], ["10.2.1.0/24", "fe-to-be"]]);
  assert.equal(cutAround(Prefix.parse("10.0.0.0/8"), [Prefix.parse("10.0.0.0/8")]), []);
  assert.equal(cutAround(Prefix.parse("10.0.0.0/8"), [Prefix.parse("11.0.0.0/8")]).map(String), ["10.0.0.0/8"]);
});

t("a Deny inside the source's own subnet: the network's endpoints are denied the prefix, its routes stay", async () => {
  const deny = routingPolicy("be-no-admin", ["be"], ["be"], "Deny", 10);
  deny.spec!.to.prefixes = ["10.40.5.0/24"];
  const open = routingPolicy("be-admin-api", ["be"], ["be"], "Allow", 5);
  open.spec!.to.prefixes = ["10.40.5.128/26"];
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("fe", { ipv4: "10.1.0.0/16" }, 1),
    network("be", { ipv4: "10.40.0.0/16" }, 2),
    routingPolicy("fe-to-be", ["fe"], ["be"]),
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("be", "node-1", ["10.40.0.0/24"]),
    allocation("be", "node-2", ["10.40.5.0/24"]),
  ]);
  const rec = recorder(b);
  assert.equal(net(b.stateFor("node-1"), "be").denied, [], "nothing denied yet");
  await b.upsert(deny);
  assert.equal(rec.take(), ["node-1", "node-2"], "every node with be hears");
  for (const node of ["node-1", "node-2"]) {
    const be = net(b.stateFor(node), "be");
    assert.equal(be.denied, [{ destination: "10.40.5.0/24", policy: "be-no-admin" }], node);
    // The blocks are still routed: fe may still reach 10.40.5.0/24, and replies return.
    assert.equal(be.paths.map((p) => [p.destination, p.toNetwork, p.mode, p.policy]), [["10.40.0.0/16", "be", "allow", null], ["10.1.0.0/24", "fe", "reply-only", "fe-to-be"]]);
  }
  assert.equal(net(b.stateFor("node-1"), "be").remoteBlocks.map((r) => r.prefix), ["10.40.5.0/24"]);
  assert.equal(net(b.stateFor("node-1"), "fe").denied, [], "fe is not affected");
  assert.equal(net(b.stateFor("node-1"), "fe").paths.filter((p) => p.toNetwork === "be").map((p) => p.destination), ["10.40.0.0/24", "10.40.5.0/24"]);

  // A narrower Allow inside the denied prefix is cut out of it.
  await b.upsert(open);
  assert.equal(net(b.stateFor("node-2"), "be").denied, [
    { destination: "10.40.5.0/25", policy: "be-no-admin" },
    { destination: "10.40.5.192/26", policy: "be-no-admin" },
  ]);
  assert.ok(JSON.stringify(b.stateFor("node-2")).includes('"denied":[{"destination":"10.40.5.0/25"'), "plain data");

  await b.remove("NetworkRoutingPolicy", "be-no-admin");
  rec.take();
  await b.remove("NetworkRoutingPolicy", "be-admin-api");
  assert.equal(net(b.stateFor("node-2"), "be").denied, []);
});

t("reply-only routes name the policy that allowed their forward path, whatever the table's order", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("ab", { ipv4: "10.0.0.0/16" }, 1),
    network("fe", { ipv4: "10.1.0.0/16" }, 2),
    network("be", { ipv4: "10.2.0.0/16" }, 3),
    // Decided in priority order (be first), listed in address order (ab first).
    routingPolicy("z-fe-to-be", ["fe"], ["be"], "Allow", 1),
    routingPolicy("a-fe-to-ab", ["fe"], ["ab"], "Allow", 2),
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("ab", "node-2", ["10.0.0.0/24"]),
    allocation("be", "node-3", ["10.2.0.0/24"]),
  ]);
  assert.equal(net(b.stateFor("node-3"), "be").paths.map((p) => [p.toNetwork, p.mode, p.policy]), [["be", "allow", null], ["fe", "reply-only", "z-fe-to-be"]]);
  assert.equal(net(b.stateFor("node-2"), "ab").paths.map((p) => [p.toNetwork, p.mode, p.policy]), [["ab", "allow", null], ["fe", "reply-only", "a-fe-to-ab"]]);
});

t("a path to a block on the same node is delivered on that network's bridge", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("fe", { ipv4: "10.1.0.0/16" }, 1),
    network("be", { ipv4: "10.2.0.0/16" }, 2),
    routingPolicy("fe-to-be", ["fe"], ["be"]),
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("be", "node-1", ["10.2.0.0/24"]),
    allocation("be", "node-2", ["10.2.1.0/24"]),
  ]);
  const paths = net(b.stateFor("node-1"), "fe").paths.filter((p) => p.toNetwork === "be");
  assert.equal(paths.map((p) => [p.destination, p.via, p.toNetworkId ?? p.sid]), [["10.2.0.0/24", "local", 2], ["10.2.1.0/24", "sid", "fd00:1ace:2::2"]]);
});

t("l2: the subnet on every node, neighbours and FDB from endpoints and resources, SIDs for remote MACs", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    ...storageOfTwoVms(),
    {
      apiVersion: "lace-cni.io/v1alpha1",
      kind: "FDBEntry",
      metadata: { name: "storage.02-00-00-00-00-03" },
      spec: { network: "storage", mac: "02:00:00:00:00:03", node: "node-3", source: "learned", sequence: 2 },
    },
  ]);
  const rec = recorder(b);
  const s1 = net(b.stateFor("node-1"), "storage");
  assert.is(s1.forwarding, "bridged");
  assert.is(s1.sidBehavior, "decap-bridge");
  assert.equal(s1.gateways, ["10.50.0.1/24"]);
  assert.equal(s1.neighbors, [
    { ip: "10.50.0.2", mac: "02:00:00:00:00:02", source: "static" },
    { ip: "10.50.0.3", mac: "02:00:00:00:00:03", source: "static" },
  ]);
  assert.equal(s1.fdb, [
    { mac: "02:00:00:00:00:02", node: "node-1", source: "static", sequence: 0 },
    // The VM moved: the learned entry with the higher sequence number wins.
    { mac: "02:00:00:00:00:03", node: "node-3", sid: "fd00:1ace:3::5", source: "learned", sequence: 2 },
  ]);
  assert.equal(b.stateFor("node-1").endpoints[0].addresses, ["10.50.0.2/24"]);
  // A new VM on node-2 reaches every node with the network: its MAC is in their FDB.
  await b.upsertAll(withL2Entries(endpoint("vm", "db-2", "storage", "node-2", ["10.50.0.4"], "02:00:00:00:00:04")));
  assert.equal(rec.take(), ["node-1", "node-2"]);
  assert.ok(net(b.stateFor("node-1"), "storage").fdb.some((e) => e.mac === "02:00:00:00:00:04" && e.node === "node-2"));
});

t("external egress: an allowed path to an external network leaves through the underlay", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("app", { ipv4: "10.10.0.0/16" }, 1),
    network("corp", { external: ["192.0.2.0/24"] }, 2),
    routingPolicy("app-to-corp", ["app"], ["corp"]),
    allocation("app", "node-1", ["10.10.0.0/24"]),
  ]);
  const s = b.stateFor("node-1");
  assert.equal(s.networks.map((n) => n.name), ["app"], "an external network has no forwarding context of its own");
  const app = net(s, "app");
  assert.equal(app.egress, [{ prefix: "192.0.2.0/24", network: "corp", snat: true }]);
  assert.equal(app.paths.find((p) => p.toNetwork === "corp"), { destination: "192.0.2.0/24", toNetwork: "corp", via: "underlay", mode: "allow", policy: "app-to-corp" });
});

t("external egress is cut around a longer prefix of another external network", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("app", { ipv4: "10.10.0.0/16" }, 1),
    network("wan", { external: ["192.0.2.0/24"] }, 2),
    network("wan-lab", { external: ["192.0.2.128/25"] }, 3),
    routingPolicy("app-to-wan", ["app"], ["wan"]),
    allocation("app", "node-1", ["10.10.0.0/24"]),
  ]);
  // 192.0.2.129 belongs to wan-lab (longest prefix), which app may not reach: only wan's own half is routed.
  let app = net(b.stateFor("node-1"), "app");
  assert.equal(app.paths.filter((p) => p.via === "underlay").map((p) => `${p.destination} ${p.toNetwork}`), ["192.0.2.0/25 wan"]);
  assert.equal(app.egress, [{ prefix: "192.0.2.0/25", network: "wan", snat: true }]);
  // Allowed to both: each keeps its own route.
  await b.upsert(routingPolicy("app-to-lab", ["app"], ["wan-lab"]));
  app = net(b.stateFor("node-1"), "app");
  assert.equal(
    app.paths.filter((p) => p.via === "underlay").map((p) => `${p.destination} ${p.toNetwork}`).sort(),
    ["192.0.2.0/25 wan", "192.0.2.128/25 wan-lab"],
  );
});

t("both directions allowed to an external network: the egress route says inbound, and follows the reverse policy", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  const rec = recorder(b);
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("app", { ipv4: "10.10.0.0/16" }, 1),
    network("corp", { external: ["192.0.2.0/24"] }, 2),
    routingPolicy("app-to-corp", ["app"], ["corp"]),
    allocation("app", "node-1", ["10.10.0.0/24"]),
  ]);
  const corpPath = () => net(b.stateFor("node-1"), "app").paths.find((p) => p.toNetwork === "corp")!;
  assert.is(corpPath().inbound, undefined, "outbound only");
  rec.take();
  await b.upsert(routingPolicy("corp-to-app", ["corp"], ["app"]));
  assert.equal(corpPath(), { destination: "192.0.2.0/24", toNetwork: "corp", via: "underlay", mode: "allow", policy: "app-to-corp", inbound: true });
  assert.ok(rec.take().includes("node-1"), "node-1 republished");
  await b.remove("NetworkRoutingPolicy", "corp-to-app");
  assert.is(corpPath().inbound, undefined, "inbound closed again");
});

t("a node-restricted builder (an agent) keeps and publishes only its node", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding, node: "node-2" });
  const rec = recorder(b);
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("be", { ipv4: "10.2.0.0/16" }, 2),
    allocation("be", "node-1", ["10.2.0.0/24"]),
    allocation("be", "node-2", ["10.2.1.0/24"]),
  ]);
  assert.equal(rec.take(), ["node-2"]);
  assert.equal(b.nodes(), ["node-2"]);
  await b.upsert(allocation("be", "node-3", ["10.2.2.0/24"]));
  assert.equal(rec.take(), ["node-2"]);
  assert.equal(net(b.stateFor("node-2"), "be").remoteBlocks.map((r) => r.node), ["node-1", "node-3"]);
  await b.upsert(endpoint("a", "x", "be", "node-1", ["10.2.0.2"]));
  assert.equal(rec.take(), [], "another node's pod is not this node's business");
});

t("a network without an id yet has no forwarding context; it appears when the id is assigned", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([topology(locatorsFor(NODES)), network("be", { ipv4: "10.2.0.0/16" }), allocation("be", "node-1", ["10.2.0.0/24"])]);
  assert.equal(b.stateFor("node-1").networks, []);
  const rec = recorder(b);
  await b.upsert(network("be", { ipv4: "10.2.0.0/16" }, 9));
  assert.equal(rec.take(), ["node-1"]);
  assert.is(net(b.stateFor("node-1"), "be").id, 9);
});

t("endpoint lists patched event by event equal one built from scratch", async () => {
  const base = [topology(locatorsFor(NODES)), network("be", { ipv4: "10.2.0.0/16" }, 2), allocation("be", "node-1", ["10.2.0.0/24"])];
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll(base);
  const names = Array.from({ length: 40 }, (_, i) => `p${(i * 17) % 40}`);
  for (const [i, n] of names.entries()) await b.upsert(endpoint("ns", n, "be", "node-1", [`10.2.0.${i + 2}`]));
  for (const n of names.filter((_, i) => i % 3 === 0)) await b.remove("NetworkEndpoint", n, "ns");
  const fresh = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await fresh.upsertAll([...base, ...names.map((n, i) => endpoint("ns", n, "be", "node-1", [`10.2.0.${i + 2}`])).filter((_, i) => i % 3 !== 0)]);
  const ids = b.stateFor("node-1").endpoints.map((e) => e.id);
  assert.equal(ids, fresh.stateFor("node-1").endpoints.map((e) => e.id));
  assert.is(ids.length, 26);
  assert.equal(ids, [...ids].sort());
});

t("policy and network changes event by event give every node the state a builder fed the end result gives", async () => {
  const nets = [
    network("fe", { ipv4: "10.1.0.0/16", labels: { zone: "x" } }, 1),
    network("be", { ipv4: "10.2.0.0/16" }, 2),
    network("vault", { ipv4: "10.3.0.0/16", anonymous: true, labels: { zone: "x" } }, 3),
    network("lan", { type: "l2", ipv4: "10.4.0.0/24" }, 4),
    network("corp", { external: ["192.0.2.0/24", "10.2.5.0/24"] }, 5),
  ];
  const fixed = [
    topology(locatorsFor(NODES)),
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("be", "node-2", ["10.2.0.0/24", "10.2.5.0/24"]),
    allocation("vault", "node-3", ["10.3.0.0/24"]),
    allocation("be", "node-1", ["10.2.1.0/24"]),
    endpoint("a", "vm", "lan", "node-3", ["10.4.0.2"], "02:00:00:00:00:02"),
  ];
  const name = fc.constantFrom("fe", "be", "vault", "lan", "corp");
  const policy = fc.record({
    id: fc.nat(4),
    from: fc.subarray(["fe", "be", "vault", "lan"], { minLength: 1, maxLength: 2 }),
    to: fc.subarray(["fe", "be", "vault", "lan", "corp"], { minLength: 1, maxLength: 2 }),
    prefixes: fc.constantFrom([], [], ["10.2.5.0/24"], ["10.2.0.0/25"], ["192.0.2.0/25"]),
    action: fc.constantFrom("Allow" as const, "Allow" as const, "Deny" as const),
    priority: fc.nat(3),
  }).map((r) => {
    const p = routingPolicy(`p${r.id}`, r.from, r.to, r.action, r.priority);
    if (r.prefixes.length) p.spec!.to.prefixes = [...r.prefixes];
    return p;
  });
  const op = fc.oneof(
    fc.record({ policy }),
    fc.record({ drop: fc.nat(4) }),
    fc.record({ relabel: name, zone: fc.constantFrom("x", "y") }),
  );
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
    const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
    await b.upsertAll([...fixed, ...nets]);
    const current = new Map<string, Resource>(nets.map((n) => [`Network/${n.metadata.name}`, n]));
    for (const o of ops) {
      if ("policy" in o) {
        current.set(`NetworkRoutingPolicy/${o.policy.metadata.name}`, o.policy);
        await b.upsert(o.policy);
      } else if ("drop" in o) {
        current.delete(`NetworkRoutingPolicy/p${o.drop}`);
        await b.remove("NetworkRoutingPolicy", `p${o.drop}`);
      } else {
        const n = nets.find((x) => x.metadata.name === o.relabel)!;
        const next = { ...n, metadata: { ...n.metadata, labels: { zone: o.zone } } };
        current.set(`Network/${o.relabel}`, next);
        await b.upsert(next);
      }
    }
    const fresh = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
    await fresh.upsertAll([...fixed, ...current.values()]);
    for (const node of NODES) {
      const x = JSON.parse(JSON.stringify({ ...b.stateFor(node), revision: 0 }));
      const y = JSON.parse(JSON.stringify({ ...fresh.stateFor(node), revision: 0 }));
      assert.equal(x, y, node);
    }
  }), { numRuns: 40, seed: 7 });
});

t("states are plain data: JSON and structuredClone carry the shared lists and the peers", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("fe", { ipv4: "10.1.0.0/16" }, 1),
    network("be", { ipv4: "10.2.0.0/16" }, 2),
    routingPolicy("fe-to-be", ["fe"], ["be"]),
    allocation("fe", "node-1", ["10.1.0.0/24"]),
    allocation("fe", "node-2", ["10.1.1.0/24"]),
    allocation("be", "node-2", ["10.2.0.0/24"]),
  ]);
  const s = b.stateFor("node-1");
  const json = JSON.parse(JSON.stringify(s));
  assert.equal(json.peers.map((p: { node: string }) => p.node), ["node-2", "node-3"]);
  assert.equal(json.networks[0].remoteBlocks, [{ prefix: "10.1.1.0/24", node: "node-2", sid: "fd00:1ace:2::1" }]);
  assert.equal(json.networks[0].paths.map((p: { destination: string }) => p.destination).sort(), ["10.1.0.0/16", "10.2.0.0/24"]);
  assert.equal(structuredClone(s), json);
  assert.equal({ ...s.networks[0] }.remoteBlocks, json.networks[0].remoteBlocks);
});

t.run();
