/**
 * An l2 endpoint's own Neighbor and FDBEntry resources, written by the
 * agent against the embedded store (SQLite): they appear on ADD, move with
 * a higher sequence number when the pod is added on another node (live
 * migration), stay when the old node's DEL follows, disappear on the last
 * DEL; and the desired state's neighbours and FDB follow them.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DesiredStateBuilder, l2EntryName } from "../../core/controller/mod.ts";
import { builtInForwarding, endpoint, locatorsFor, topology } from "../../core/controller/testing.ts";
import type { FDBEntry, Neighbor, Network, NetworkEndpoint, Resource, Store } from "../../core/mod.ts";
import type { CniRequest } from "../cni/spec.ts";
import { SqliteStore } from "../store/embedded/sqlite_store.ts";
import { NodeAgent } from "./agent.ts";
import { LocalStateSource, RecordingDataplane } from "./testing.ts";
import { builtInNetworkTypes } from "../../test/built_in_types.ts";

const t = suite("node agent: l2 entries");

const storage: Network = {
  apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "storage" },
  spec: { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" }, ipv6Subnet: { prefix: "fd00:50::/64" } }, status: { id: 5 },
};
const req = (command: CniRequest["command"], containerId: string): CniRequest => ({
  command, containerId, ifname: "eth0", netns: `/run/netns/${containerId}`, path: ["/opt/cni/bin"],
  args: { K8S_POD_NAMESPACE: "vms", K8S_POD_NAME: "vm-0" }, config: { cniVersion: "1.1.0", name: "lace", type: "lace-cni" },
});

async function agentOn(store: Store, node: string): Promise<NodeAgent> {
  const dp = new RecordingDataplane();
  dp.forwarding = ["routed", "bridged"];
  const agent = new NodeAgent({ store, node, networkTypes: builtInNetworkTypes(), dataplane: dp, states: new LocalStateSource(), learning: { everyMs: 0 } });
  await agent.start();
  return agent;
}

async function l2Entries(store: Store): Promise<{ neighbors: Neighbor["spec"][]; fdb: FDBEntry["spec"][] }> {
  const neighbors = (await store.list<Neighbor>("Neighbor")).items.map((n) => n.spec).sort((a, b) => a!.ip < b!.ip ? -1 : 1);
  const fdb = (await store.list<FDBEntry>("FDBEntry")).items.map((e) => e.spec);
  return { neighbors, fdb };
}

/** node-3's desired state for storage, built from everything in the store (what every node's datapath follows). */
async function stateOfStorage(store: Store) {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  // An endpoint on node-3 (without l2 entries of its own) puts the network there.
  const all: Resource[] = [topology(locatorsFor(["node-1", "node-2", "node-3"])), endpoint("vms", "probe", "storage", "node-3", ["10.50.0.200"])];
  for (const kind of ["Network", "NetworkEndpoint", "Neighbor", "FDBEntry"]) all.push(...(await store.list<Resource>(kind)).items);
  await b.upsertAll(all);
  return b.stateFor("node-3").networks.find((n) => n.name === "storage");
}

/** The storage network (id 5), a binding policy for pods labelled vm=yes, and one such pod, vms/vm-0. */
async function seedVm(store: SqliteStore): Promise<void> {
  for (const o of [
    storage,
    { apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkBindingPolicy", metadata: { name: "vms" }, spec: { network: "storage", priority: 10, matchKind: "Pod", selector: { matchLabels: { vm: "yes" } } } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "vms" } },
    { apiVersion: "v1", kind: "Pod", metadata: { name: "vm-0", namespace: "vms", uid: "uid-vm-0", labels: { vm: "yes" } }, spec: {} },
  ] as Resource[]) await store.create(o);
  // The controller's part: the network's id (a status, which create leaves out).
  await store.updateStatus({ ...(await store.get<Network>("Network", "storage"))!, status: { id: 5 } });
}

t("ADD writes the endpoint's Neighbors and FDBEntry, a second node's ADD takes them over with the next sequence, the last DEL removes them", async () => {
  const store = SqliteStore.open(":memory:");
  const agents: NodeAgent[] = [];
  try {
    await seedVm(store);
    const [a1, a2] = [await agentOn(store, "node-1"), await agentOn(store, "node-2")];
    agents.push(a1, a2);

    const add1 = await a1.handle(req("ADD", "c1"));
    assert.ok(add1.ok, JSON.stringify(add1));
    const ep = (await store.get<NetworkEndpoint>("NetworkEndpoint", "vm-0", "vms"))!;
    const mac = ep.spec!.mac!;
    const [v4, v6] = ep.spec!.addresses;
    assert.equal(await l2Entries(store), {
      neighbors: [{ network: "storage", ip: v4, mac, source: "static" }, { network: "storage", ip: v6, mac, source: "static" }].sort((a, b) => a.ip < b.ip ? -1 : 1),
      fdb: [{ network: "storage", mac, node: "node-1", source: "static", sequence: 0 }],
    });
    assert.ok(await store.get("FDBEntry", l2EntryName("storage", mac)), "named after the network and the MAC");
    let s = await stateOfStorage(store);
    assert.equal(s?.fdb.map((e) => [e.mac, e.node, e.sequence]), [[mac, "node-1", 0]], "another node's FDB follows the resource");
    assert.equal(s?.neighbors.map((n) => n.mac), [mac, mac]);

    // DEL while the pod lives on (its binding stays, detached): nothing is there to forward to.
    assert.ok((await a1.handle(req("DEL", "c1"))).ok);
    assert.equal(await l2Entries(store), { neighbors: [], fdb: [] });
    assert.ok((await store.get<NetworkEndpoint>("NetworkEndpoint", "vm-0", "vms"))?.spec?.detachedAt, "the binding is kept, detached");
    s = await stateOfStorage(store);
    assert.equal([s?.fdb, s?.neighbors], [[], []], "gone from every node's state");
    const again = await a1.handle(req("ADD", "c1b"));
    assert.ok(again.ok, JSON.stringify(again));
    assert.equal((await l2Entries(store)).fdb, [{ network: "storage", mac, node: "node-1", source: "static", sequence: 0 }], "back, with the same MAC");

    // Live migration: ADD on node-2 first, then the old sandbox's DEL on node-1.
    assert.ok((await a2.handle(req("ADD", "c2"))).ok);
    assert.equal((await l2Entries(store)).fdb, [{ network: "storage", mac, node: "node-2", source: "static", sequence: 1 }], "moved with the next sequence");
    assert.ok((await a1.handle(req("DEL", "c1b"))).ok);
    const moved = await l2Entries(store);
    assert.equal(moved.fdb, [{ network: "storage", mac, node: "node-2", source: "static", sequence: 1 }], "node-1's DEL leaves the entry node-2 wrote");
    assert.is(moved.neighbors.length, 2, "and the Neighbors");
    s = await stateOfStorage(store);
    assert.equal(s?.fdb.map((e) => [e.mac, e.node, e.sequence]), [[mac, "node-2", 1]]);

    // Released for good: the Pod is deleted, then its last sandbox.
    await store.delete("Pod", "vm-0", "vms");
    assert.ok((await a2.handle(req("DEL", "c2"))).ok);
    assert.equal(await l2Entries(store), { neighbors: [], fdb: [] });
    assert.is(await store.get("NetworkEndpoint", "vm-0", "vms"), undefined);
  } finally {
    for (const a of agents) await a.stop();
    store.close();
  }
});

t("a MAC the datapath learned before its pod's ADD became static (the pod's own) keeps its sequence", async () => {
  const store = SqliteStore.open(":memory:");
  try {
    const { publishL2Entries } = await import("./l2_entries.ts");
    const ep: NetworkEndpoint = {
      apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkEndpoint", metadata: { name: "vm-1", namespace: "vms" },
      spec: { network: "storage", node: "node-1", addresses: ["10.50.0.7"], mac: "02:00:00:00:00:07", owner: "vm-1", bindingPolicy: null },
    } as NetworkEndpoint;
    await store.create<FDBEntry>({
      apiVersion: "lace-cni.io/v1alpha1", kind: "FDBEntry", metadata: { name: l2EntryName("storage", "02:00:00:00:00:07") },
      spec: { network: "storage", mac: "02:00:00:00:00:07", node: "node-1", source: "learned", sequence: 3, lastSeen: "2026-12-06T20:00:00Z" },
    });
    await publishL2Entries(store, ep);
    assert.equal((await l2Entries(store)).fdb, [{ network: "storage", mac: "02:00:00:00:00:07", node: "node-1", source: "static", sequence: 3 }]);
    // Published again: nothing to change.
    const rv = (await store.get<FDBEntry>("FDBEntry", l2EntryName("storage", "02:00:00:00:00:07")))!.metadata.resourceVersion;
    await publishL2Entries(store, ep);
    assert.is((await store.get<FDBEntry>("FDBEntry", l2EntryName("storage", "02:00:00:00:00:07")))!.metadata.resourceVersion, rv);
  } finally {
    store.close();
  }
});

t("a dataplane that does not forward bridged networks (srv6's kernel backend) refuses an l2 pod naming its backend and why, and writes nothing", async () => {
  const store = SqliteStore.open(":memory:");
  try {
    await seedVm(store);
    const dp = new RecordingDataplane();
    dp.forwarding = ["routed", "underlay"];
    dp.backend = "kernel";
    dp.notForwarded = { bridged: "the srv6 kernel backend (seg6) carries no l2 frames between nodes" };
    const agent = new NodeAgent({ store, node: "node-1", networkTypes: builtInNetworkTypes(), dataplane: dp, states: new LocalStateSource(), learning: { everyMs: 0 } });
    await agent.start();
    try {
      const r = await agent.handle(req("ADD", "c1"));
      assert.equal(r.ok ? undefined : [r.code, r.msg, r.details], [
        103, `Network "storage" is l2: the dataplane on node node-1 (kernel backend) does not forward bridged networks`,
        "the srv6 kernel backend (seg6) carries no l2 frames between nodes; it forwards: routed, underlay",
      ]);
      assert.equal(await l2Entries(store), { neighbors: [], fdb: [] });
      assert.is(await store.get("NetworkEndpoint", "vm-0", "vms"), undefined);
    } finally {
      await agent.stop();
    }
  } finally {
    store.close();
  }
});

t.run();
