import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  type Allocation,
  API_VERSION,
  type Condition,
  HostLocalAllocator,
  MemoryStore,
  type Network,
  type NetworkEndpoint,
  type Resource,
  type Topology,
} from "../../core/mod.ts";
import { network, routingPolicy } from "../../core/controller/testing.ts";
import { Controller, SERVICE_NETWORK_ANNOTATION } from "./controller.ts";
import type { KubeEvent } from "./events.ts";
import { NETWORK_BOUND, PODS_ON_NETWORK } from "./service_status.ts";
import { builtInNetworkTypes } from "../../test/built_in_types.ts";

const t = suite("controller/controller");

class ManualClock {
  constructor(public ms = Date.parse("2026-11-27T10:00:00Z")) {}
  now(): number {
    return this.ms;
  }
}

const topology: Topology = {
  apiVersion: API_VERSION,
  kind: "Topology",
  metadata: { name: "default" },
  spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48 },
};

const node = (name: string): Resource => ({ apiVersion: "v1", kind: "Node", metadata: { name } });
const pod = (namespace: string, name: string, nodeName: string, labels: Record<string, string> = {}): Resource => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { namespace, name, uid: `uid-${namespace}-${name}`, labels },
  spec: { nodeName },
});
const bindAll = (net: string, name = `all-to-${net}`, selector: Record<string, string> = {}, kind: "Pod" | "Service" = "Pod"): Resource => ({
  apiVersion: API_VERSION,
  kind: "NetworkBindingPolicy",
  metadata: { name },
  spec: { network: net, priority: 100, matchKind: kind, selector: { matchLabels: selector } },
});

async function storeWith(resources: Resource[]): Promise<MemoryStore> {
  const store = new MemoryStore();
  for (const r of resources) await store.create(structuredClone(r));
  return store;
}

/** What the agent does at CNI ADD: an address from the node's blocks, recorded as a NetworkEndpoint. */
async function agentAdd(store: MemoryStore, controller: Controller, p: Resource, net: string): Promise<NetworkEndpoint> {
  const nodeName = (p.spec as { nodeName: string }).nodeName;
  const ipam = new HostLocalAllocator(store, { network: net, node: nodeName, blocks: { acquire: () => Promise.resolve([]) } });
  const a = await ipam.allocate({ owner: p.metadata.uid! });
  const ep: NetworkEndpoint = {
    apiVersion: API_VERSION,
    kind: "NetworkEndpoint",
    metadata: { name: p.metadata.name, namespace: p.metadata.namespace },
    spec: { network: net, node: nodeName, addresses: a.addresses.map((x) => x.address.toString()), pod: { namespace: p.metadata.namespace!, name: p.metadata.name }, owner: p.metadata.uid },
  };
  await store.create(ep);
  void controller;
  return ep;
}

/** The store's allocation state, without the random claim ids. */
async function snapshot(store: MemoryStore): Promise<unknown> {
  const nets = (await store.list<Network>("Network")).items.map((n) => [n.metadata.name, n.status?.id]).sort();
  const topo = (await store.get<Topology>("Topology", "default"))?.status?.locators;
  const allocs = (await store.list<Allocation>("Allocation")).items
    .map((a) => [a.metadata.name, a.spec!.blocks.map((b) => [b.prefix, b.node ?? "", Object.values(b.addresses ?? {}).sort().join(",")])])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  return { nets, topo, allocs };
}

t("dual-stack: ids, locators, a block per family on each node, conditions, and the nodes' desired state", async () => {
  const store = await storeWith([
    topology,
    node("node-1"),
    node("node-2"),
    network("backend", { ipv4: "10.40.0.0/16", ipv6: "fd10:40::/56", block4: 24, block6: 64 }),
    bindAll("backend"),
    pod("shop", "web-1", "node-1"),
    pod("shop", "web-2", "node-2"),
  ]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  const report = await controller.reconcile();
  assert.equal(report.locatorsAssigned, ["node-1", "node-2"]);
  assert.equal(report.blocksAcquired.sort(), [
    "backend/node-1/10.40.0.0/24",
    "backend/node-1/fd10:40::/64",
    "backend/node-2/10.40.1.0/24",
    "backend/node-2/fd10:40:0:1::/64",
  ]);
  const net = (await store.get<Network>("Network", "backend"))!;
  assert.is(net.status?.id, 1);
  assert.equal(net.status?.conditions?.map((c) => [c.type, c.status, c.reason]), [["Accepted", "True", "Valid"], ["Ready", "True", "Allocated"]]);

  await agentAdd(store, controller, pod("shop", "web-1", "node-1"), "backend");
  await agentAdd(store, controller, pod("shop", "web-2", "node-2"), "backend");
  await controller.reconcile();
  const s1 = controller.builder.stateFor("node-1");
  assert.is(s1.locator, "fd00:1ace:1::/48");
  const be = s1.networks.find((n) => n.name === "backend")!;
  assert.equal(be.gateways, ["10.40.0.1/24", "fd10:40::1/64"]);
  assert.equal(be.remoteBlocks.map((r) => `${r.prefix} ${r.sid}`), ["10.40.1.0/24 fd00:1ace:2::1", "fd10:40:0:1::/64 fd00:1ace:2::1"]);
  assert.equal(s1.endpoints.map((e) => e.addresses), [["10.40.0.2/32", "fd10:40::2/128"]]);
  assert.equal(s1.peers, [{ node: "node-2", locator: "fd00:1ace:2::/48" }]);

  const again = await controller.reconcile();
  assert.is(again.networkStatusWrites, 0, "a converged cluster needs no writes");
  assert.equal(again.blocksAcquired, []);
  assert.equal(again.usageWrites, [], "usage did not move");
});

t("network usage: blocks and addresses counted by IPAM are written to status, and only when they move", async () => {
  const store = await storeWith([
    topology,
    node("node-1"),
    node("node-2"),
    network("backend", { ipv4: "10.40.0.0/16", block4: 24 }),
    network("storage", { type: "l2", ipv4: "10.50.0.0/24" }),
    bindAll("backend", "be", { app: "web" }),
    bindAll("storage", "st", { app: "vm" }),
    pod("shop", "web-1", "node-1", { app: "web" }),
    pod("shop", "web-2", "node-2", { app: "web" }),
    pod("shop", "vm-1", "node-1", { app: "vm" }),
  ]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  const first = await controller.reconcile();
  assert.equal(first.usageWrites.sort(), ["backend", "storage"]);
  const usage = async (name: string) => (await store.get<Network>("Network", name))!.status?.usage;
  // Two /24 blocks of 256 taken from a /16, no address handed out yet; a /24 holds 253 (network, gateway and broadcast excluded).
  assert.equal(await usage("backend"), { blocksUsed: 2, blocksFree: "254", addressesUsed: 0, addressesFree: String(256 * 253) });
  // l2: global addresses, no blocks; vm-1 holds one of the /24's addresses.
  const st = await usage("storage");
  assert.is(st?.addressesUsed, 1);
  assert.is(st?.blocksUsed, undefined);
  // Conditions and id are still there beside usage.
  assert.equal((await store.get<Network>("Network", "backend"))!.status?.conditions?.map((c) => c.type), ["Accepted", "Ready"]);

  await agentAdd(store, controller, pod("shop", "web-1", "node-1"), "backend");
  const second = await controller.reconcile();
  assert.equal(second.usageWrites, ["backend"]);
  assert.is((await usage("backend"))?.addressesUsed, 1);
  assert.is((await controller.reconcile()).usageWrites.length, 0, "unchanged usage is not written again");
});

t("a node added and removed: its blocks go back to the pool after the grace period", async () => {
  const clock = new ManualClock();
  const store = await storeWith([topology, node("node-1"), network("backend", { ipv4: "10.40.0.0/16" }), bindAll("backend"), pod("a", "p1", "node-1")]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), clock, nodeGrace: 60_000 });
  await controller.reconcile();
  await store.create(node("node-3"));
  await store.create(pod("a", "p3", "node-3"));
  const added = await controller.reconcile();
  assert.equal(added.locatorsAssigned, ["node-3"]);
  assert.equal(added.blocksAcquired, ["backend/node-3/10.40.1.0/24"]);
  assert.ok(controller.builder.stateFor("node-1").peers?.some((p) => p.node === "node-3"));

  await store.delete("Pod", "p3", "a");
  await store.delete("Node", "node-3");
  clock.ms += 1_000;
  assert.equal((await controller.reconcile()).nodesReleased, [], "seen gone once: not yet");
  clock.ms += 30_000;
  assert.equal((await controller.reconcile()).nodesReleased, [], "within the grace period the node may come back");
  assert.ok(await store.get("Allocation", "backend.node-3"));
  clock.ms += 30_000;
  assert.equal((await controller.reconcile()).nodesReleased, ["node-3"]);
  assert.is(await store.get("Allocation", "backend.node-3"), undefined);
  const pools = (await store.list<Allocation>("Allocation")).items.filter((a) => a.metadata.labels?.["lace-cni.io/pool"] === "true");
  assert.equal(pools.flatMap((p) => p.spec!.blocks.map((b) => b.node)), ["node-1"], "the pool no longer records node-3's block");
  assert.equal(Object.keys((await store.get<Topology>("Topology", "default"))!.status!.locators!), ["node-1"]);
  assert.equal(controller.builder.stateFor("node-1").peers, []);
  assert.ok(controller.events.recent.some((e) => e.reason === "NodeReleased" && e.message.includes("node-3")));
  // The block is free again: a new node gets it.
  await store.create(node("node-4"));
  await store.create(pod("a", "p4", "node-4"));
  assert.equal((await controller.reconcile()).blocksAcquired, ["backend/node-4/10.40.1.0/24"]);
});

t("a controller restarted mid-way converges to the same state as one that was not", async () => {
  const initial = [
    topology,
    node("node-1"),
    node("node-2"),
    node("node-3"),
    network("fe", { ipv4: "10.1.0.0/16" }),
    network("be", { ipv4: "10.2.0.0/16", ipv6: "fd02::/56" }),
    network("storage", { type: "l2", ipv4: "10.50.0.0/24" }),
    bindAll("fe", "fe", { app: "web" }),
    bindAll("be", "be", { app: "db" }),
    bindAll("storage", "storage", { app: "vm" }),
    routingPolicy("fe-to-be", ["fe"], ["be"]),
  ];
  const later = [
    pod("a", "web-1", "node-1", { app: "web" }),
    pod("a", "db-1", "node-2", { app: "db" }),
    pod("a", "vm-1", "node-3", { app: "vm" }),
    pod("a", "web-2", "node-3", { app: "web" }),
  ];
  // Uninterrupted.
  const s1 = await storeWith(initial);
  const c1 = new Controller(s1, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  await c1.reconcile();
  for (const p of later) await s1.create(structuredClone(p));
  await c1.reconcile();
  // Interrupted: the first controller stops after its first pass; a new one takes over.
  const s2 = await storeWith(initial);
  await new Controller(s2, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() }).reconcile();
  for (const p of later) await s2.create(structuredClone(p));
  const c2 = new Controller(s2, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  await c2.reconcile();
  assert.equal(await snapshot(s2), await snapshot(s1));
  for (const n of ["node-1", "node-2", "node-3"]) {
    const a = { ...c1.builder.stateFor(n), revision: 0 };
    const b = { ...c2.builder.stateFor(n), revision: 0 };
    assert.equal(JSON.parse(JSON.stringify(b)), JSON.parse(JSON.stringify(a)), n);
  }
  // And a third over the converged store writes nothing.
  const c3 = new Controller(s2, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  const r3 = await c3.reconcile();
  assert.equal([r3.networkStatusWrites, r3.locatorsAssigned.length, r3.blocksAcquired.length], [0, 0, 0]);
  assert.equal(await snapshot(s2), await snapshot(s1));
});

t("exhaustion and overlap: conditions with reasons, and warning events", async () => {
  const store = await storeWith([
    topology,
    node("node-1"),
    node("node-2"),
    node("node-3"),
    network("tiny", { ipv4: "10.9.0.0/29", block4: 30 }),
    network("wide", { ipv4: "10.9.0.0/24" }),
    bindAll("tiny"),
    pod("a", "p1", "node-1"),
    pod("a", "p2", "node-2"),
    pod("a", "p3", "node-3"),
  ]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  const report = await controller.reconcile();
  assert.is(report.blocksAcquired.length, 2, "a /29 holds two /30 blocks");
  const tiny = (await store.get<Network>("Network", "tiny"))!;
  const exhausted = tiny.status?.conditions?.find((c) => c.type === "Exhausted");
  assert.is(exhausted?.status, "True");
  assert.match(exhausted!.message, /"tiny".*node-3/);
  assert.is(tiny.status?.conditions?.find((c) => c.type === "Ready")?.status, "True");
  const warning = controller.events.recent.find((e) => e.reason === "SubnetExhausted");
  assert.ok(warning);
  assert.equal(warning!.involvedObject, { apiVersion: "v1", kind: "Pod", name: "p3", namespace: "a", uid: "uid-a-p3" });
  const events = (await store.list<KubeEvent>("Event", { namespace: "a" })).items;
  assert.ok(events.some((e) => e.reason === "SubnetExhausted"), "the event is in the store");

  const clash = (await store.get<Network>("Network", "wide"))!;
  assert.is(clash.status?.id, undefined, "a refused network gets no id");
  const accepted = clash.status?.conditions?.find((c) => c.type === "Accepted");
  assert.equal([accepted?.status, accepted?.reason], ["False", "SubnetOverlap"]);
  assert.match(accepted!.message, /10\.9\.0\.0\/24 of Network "wide" overlaps 10\.9\.0\.0\/29 of Network "tiny"/);
});

t("services are bound continuously: annotation and an event when the network moves", async () => {
  const store = await storeWith([
    topology,
    network("a", { ipv4: "10.1.0.0/16" }),
    network("b", { ipv4: "10.2.0.0/16" }),
    bindAll("a", "svc-to-a", {}, "Service"),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } },
    { apiVersion: "v1", kind: "Service", metadata: { name: "cart", namespace: "shop", labels: { tier: "backend" } } },
  ]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  assert.is((await controller.reconcile()).servicesMoved, 1);
  let svc = (await store.get<Resource>("Service", "cart", "shop"))!;
  assert.is(svc.metadata.annotations?.[SERVICE_NETWORK_ANNOTATION], "a");
  assert.is((await controller.reconcile()).servicesMoved, 0);

  await store.create(structuredClone({ ...bindAll("b", "backend-to-b", { tier: "backend" }, "Service"), spec: { network: "b", priority: 10, matchKind: "Service", selector: { matchLabels: { tier: "backend" } } } }) as Resource);
  assert.is((await controller.reconcile()).servicesMoved, 1);
  svc = (await store.get<Resource>("Service", "cart", "shop"))!;
  assert.is(svc.metadata.annotations?.[SERVICE_NETWORK_ANNOTATION], "b");
  const moved = controller.events.recent.filter((e) => e.reason === "NetworkChanged").map((e) => e.message);
  assert.equal(moved, ['Service "shop/cart" bound to network "a" by policy "svc-to-a"', 'Service "shop/cart" moved from network "a" to "b" by policy "backend-to-b"']);
});

t("services: the pods they select on another network are named, with both networks; no policy any more removes the annotation", async () => {
  const endpointOf = (name: string, net: string): NetworkEndpoint => ({
    apiVersion: API_VERSION,
    kind: "NetworkEndpoint",
    metadata: { name, namespace: "shop" },
    spec: { network: net, node: "node-1", addresses: [net === "a" ? "10.1.0.2" : "10.2.0.2"], pod: { namespace: "shop", name, uid: `uid-shop-${name}` } },
  });
  const store = await storeWith([
    topology,
    network("a", { ipv4: "10.1.0.0/16" }),
    network("b", { ipv4: "10.2.0.0/16" }),
    bindAll("a", "backend-services-to-a", { tier: "backend" }, "Service"),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } },
    pod("shop", "api-0", "node-1", { app: "cart" }),
    pod("shop", "api-1", "node-1", { app: "cart" }),
    pod("shop", "web-0", "node-1", { app: "web" }),
    endpointOf("api-0", "a"),
    endpointOf("api-1", "b"),
    endpointOf("web-0", "b"),
    {
      apiVersion: "v1", kind: "Service", metadata: { name: "cart", namespace: "shop", labels: { tier: "backend" } }, spec: { selector: { app: "cart" } },
      status: { conditions: [{ type: "example.com/Exposed", status: "True", reason: "Ok", message: "another owner's" }] },
    },
  ]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  const svc = async () => (await store.get<Resource<unknown, { conditions?: Condition[] }>>("Service", "cart", "shop"))!;
  const condition = async (type: string) => (await svc()).status?.conditions?.find((c) => c.type === type);
  const warnings = async (reason: string) => (await store.list<KubeEvent>("Event", { namespace: "shop" })).items.filter((e) => e.reason === reason).map((e) => e.message);
  const mismatch = 'Service "shop/cart" is on network "a", but 1 of the pods it selects is bound to another network: shop/api-1 to network "b"';

  const first = await controller.reconcile();
  assert.is((await svc()).metadata.annotations?.[SERVICE_NETWORK_ANNOTATION], "a");
  assert.equal(await condition(NETWORK_BOUND), {
    type: NETWORK_BOUND, status: "True", reason: "PolicyMatched", message: 'Service "shop/cart" is bound to network "a" by policy "backend-services-to-a"',
    lastTransitionTime: "2026-11-27T10:00:00.000Z", observedGeneration: 1,
  });
  const off = await condition(PODS_ON_NETWORK);
  assert.equal([off?.status, off?.reason, off?.message], ["False", "PodsOnOtherNetwork", mismatch]);
  assert.equal(await warnings("PodsOnOtherNetwork"), [mismatch]);
  assert.is(first.serviceStatusWrites, 1);
  assert.is((await condition("example.com/Exposed"))?.message, "another owner's", "other owners' conditions stay");

  const again = await controller.reconcile();
  assert.is(again.serviceStatusWrites, 0, "unchanged conditions are not written again");
  assert.equal(await warnings("PodsOnOtherNetwork"), [mismatch], "nor is the event repeated");

  // api-1 is deleted and re-created on network a: the service's pods all match it now.
  await store.delete("NetworkEndpoint", "api-1", "shop");
  await store.create(endpointOf("api-1", "a"));
  await controller.reconcile();
  const on = await condition(PODS_ON_NETWORK);
  assert.equal([on?.status, on?.reason, on?.message], ["True", "AllPodsOnNetwork", 'The pods service "shop/cart" selects are bound to its network "a"']);

  // The policy goes: no policy binds the service, its annotation is removed and the conditions say why.
  await store.delete("NetworkBindingPolicy", "backend-services-to-a");
  const unbound = await controller.reconcile();
  assert.is(unbound.servicesUnbound, 1);
  assert.is((await svc()).metadata.annotations?.[SERVICE_NETWORK_ANNOTATION], undefined);
  const bound = await condition(NETWORK_BOUND);
  assert.equal([bound?.status, bound?.reason], ["False", "NoBindingPolicy"]);
  assert.match(bound!.message, /^Service "shop\/cart" has no network: /);
  assert.is(await condition(PODS_ON_NETWORK), undefined, "no network, nothing to compare the pods with");
  const removed = await warnings("NetworkRemoved");
  assert.is(removed.length, 1);
  assert.match(removed[0], /^Service "shop\/cart" matches no binding policy any more: its network "a" is removed/);
  assert.is((await controller.reconcile()).servicesUnbound, 0, "removed once");
});

t("services with EndpointSlices: the pods the slices name on another network are reported; the builder reads the slices", async () => {
  const endpointOf = (name: string, net: string): NetworkEndpoint => ({
    apiVersion: API_VERSION,
    kind: "NetworkEndpoint",
    metadata: { name, namespace: "shop" },
    spec: { network: net, node: "node-1", addresses: [net === "a" ? "10.1.0.2" : "10.2.0.2"], pod: { namespace: "shop", name, uid: `uid-shop-${name}` } },
  });
  const slice = (names: string[]): Resource => ({
    apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice",
    metadata: { name: "cart-x1", namespace: "shop", labels: { "kubernetes.io/service-name": "cart" } },
    addressType: "IPv4",
    endpoints: names.map((n) => ({ addresses: [n === "api-0" ? "10.1.0.2" : "10.2.0.2"], targetRef: { kind: "Pod", namespace: "shop", name: n } })),
    ports: [{ name: "", protocol: "TCP", port: 8080 }],
  } as Resource);
  const store = await storeWith([
    topology,
    node("node-1"),
    network("a", { ipv4: "10.1.0.0/16" }),
    network("b", { ipv4: "10.2.0.0/16" }),
    bindAll("a", "backend-services-to-a", { tier: "backend" }, "Service"),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } },
    pod("shop", "api-0", "node-1"),
    pod("shop", "api-1", "node-1"),
    endpointOf("api-0", "a"),
    endpointOf("api-1", "b"),
    // No selector: its endpoints are whatever its slices say.
    { apiVersion: "v1", kind: "Service", metadata: { name: "cart", namespace: "shop", labels: { tier: "backend" } }, spec: { clusterIP: "10.96.0.7", ports: [{ port: 80 }] } },
    slice(["api-0", "api-1"]),
  ]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), clock: new ManualClock() });
  const condition = async () => (await store.get<Resource<unknown, { conditions?: Condition[] }>>("Service", "cart", "shop"))!.status?.conditions?.find((c) => c.type === PODS_ON_NETWORK);
  await controller.reconcile();
  const off = await condition();
  assert.equal([off?.status, off?.reason, off?.message], ["False", "PodsOnOtherNetwork", 'Service "shop/cart" is on network "a", but 1 of the pods it selects is bound to another network: shop/api-1 to network "b"']);
  const svc = controller.builder.stateFor("node-1").services?.find((x) => x.id === "shop/cart");
  assert.equal(svc?.endpoints, [{ pod: "shop/api-0", node: "node-1", addresses: ["10.1.0.2"], ports: [8080] }]);
  await store.update(slice(["api-0"]));
  await controller.reconcile();
  assert.equal((await condition())?.status, "True");
});

t("started: informers feed the builder event by event and events trigger allocation", async () => {
  const store = await storeWith([topology, node("node-1"), network("backend", { ipv4: "10.40.0.0/16" }), bindAll("backend")]);
  const controller = new Controller(store, { networkTypes: builtInNetworkTypes(), debounceMs: 5, resyncMs: 60_000 });
  const published: string[] = [];
  controller.builder.onChange((n) => published.push(n));
  await controller.start();
  try {
    await store.create(structuredClone(pod("a", "web-0", "node-1")));
    const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
      for (let i = 0; i < 500 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(await ok(), what);
    };
    await until("a block for node-1", async () => (await store.get("Allocation", "backend.node-1")) !== undefined);
    await until("node-1's state has backend", () => controller.builder.stateFor("node-1").networks.some((n) => n.localPrefixes.includes("10.40.0.0/24")));
    await agentAdd(store, controller, pod("a", "web-0", "node-1"), "backend");
    await until("the endpoint in node-1's state", () => controller.builder.stateFor("node-1").endpoints.length === 1);
    assert.ok(published.includes("node-1"));
  } finally {
    await controller.stop();
  }
});

t.run();
