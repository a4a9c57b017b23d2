/**
 * The node agent over an in-memory store, with a recording dataplane and a
 * minimal desired-state source: binding, allocation, endpoint publication,
 * undo on failure, idempotent DEL, CHECK, GC and STATUS; and, with the real
 * desired-state builder, a Service's endpoints from an EndpointSlice.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  type Allocation, BlockAllocator, HostLocalAllocator, IPAddress, MemoryStore, type Network, type NetworkBindingPolicy, type NetworkEndpoint,
  type Resource, type Store, type WatchEvent, type WatchOptions,
} from "../../core/mod.ts";
import { ManualClock } from "../../core/ipam/testing.ts";
import { DesiredStateBuilder } from "../../core/controller/mod.ts";
import * as fixtures from "../../core/controller/testing.ts";
import { CNI_ERRORS, type CniRequest } from "../cni/spec.ts";
import { Controller } from "../controller/controller.ts";
import { APPLY_COALESCE_MS, CONTAINER_ID_ANNOTATION, hostIfnameFor, NodeAgent } from "./agent.ts";
import { LocalStateSource, RecordingDataplane } from "./testing.ts";
import { builtInNetworkTypes } from "../../test/built_in_types.ts";

const t = suite("node agent");

const network = (name: string, type: string, id: number, v4: string): Network => ({
  apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name },
  spec: type === "l3" ? { type, ipv4Subnet: { prefix: v4, hostLocalPrefixLength: 24 }, ipv6Subnet: { prefix: `fd00:${id}::/48`, hostLocalPrefixLength: 64 } } : { type, ipv4Subnet: { prefix: v4 } },
  status: { id },
});
const policy = (name: string, net: string, tier: string, priority = 100): NetworkBindingPolicy => ({
  apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkBindingPolicy", metadata: { name },
  spec: { network: net, priority, matchKind: "Pod", selector: { matchLabels: { tier } } },
});
const pod = (name: string, tier: string, uid = `uid-${name}`): Resource => ({
  apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "team-a", uid, labels: { tier } }, spec: {},
});
const req = (command: CniRequest["command"], podName: string, containerId: string, extra: Partial<CniRequest> = {}): CniRequest => ({
  command, containerId, ifname: "eth0", netns: `/run/netns/${containerId}`, path: ["/opt/cni/bin"],
  args: { K8S_POD_NAMESPACE: "team-a", K8S_POD_NAME: podName }, config: { cniVersion: "1.1.0", name: "lace", type: "lace-cni" }, ...extra,
});

/** The owners holding addresses in node-1's backend blocks. */
async function owners(store: MemoryStore): Promise<string[]> {
  const a = await store.get<Allocation>("Allocation", "backend.node-1");
  return (a?.spec?.blocks ?? []).flatMap((b) => Object.keys(b.addresses ?? {}));
}

/** The endpoint of team-a/`name`, as stored. */
const endpointOf = (store: MemoryStore, name: string) => store.get<NetworkEndpoint>("NetworkEndpoint", name, "team-a");

/** A reply's addresses, or its error. */
const ips = (r: Awaited<ReturnType<NodeAgent["handle"]>>) => r.ok ? r.result!.ips.map((i) => i.address) : `error ${r.code}: ${r.msg}`;

/** Gives the informers a moment to bring store changes to the agent. */
const settle = () => new Promise((r) => setTimeout(r, 10));

/** Moves every tier=backend pod created from now on to network frontend. */
async function moveBackendPodsToFrontend(store: MemoryStore): Promise<void> {
  await store.delete("NetworkBindingPolicy", "backend");
  await store.create(policy("backend-moved", "frontend", "backend"));
  await settle();
}

async function setUp(clock = new ManualClock(), wrap: (s: MemoryStore) => Store = (s) => s) {
  const store = new MemoryStore();
  for (const o of [
    network("backend", "l3", 1, "10.40.0.0/16"), network("frontend", "l3", 2, "10.60.0.0/16"), network("storage", "l2", 3, "10.50.0.0/24"),
    policy("backend", "backend", "backend"), policy("frontend", "frontend", "web"), policy("storage", "storage", "disk"),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a", labels: { team: "a" } } },
    pod("api-0", "backend"), pod("api-1", "backend"), pod("web-0", "web"), pod("disk-0", "disk"), pod("lost-0", "none"),
  ] as Resource[]) await store.create(o);
  const dp = new RecordingDataplane();
  const states = new LocalStateSource();
  const agent = new NodeAgent({ store: wrap(store), node: "node-1", networkTypes: builtInNetworkTypes(), dataplane: dp, states, clock });
  await agent.start();
  return { store, dp, states, agent, clock };
}

t("STATUS is 50 until the agent has synced and applied, then success", async () => {
  const store = new MemoryStore();
  const agent = new NodeAgent({ store, node: "node-1", networkTypes: builtInNetworkTypes(), dataplane: new RecordingDataplane(), states: new LocalStateSource() });
  const before = await agent.handle(req("STATUS", "x", "c"));
  assert.equal(before.ok ? 0 : before.code, CNI_ERRORS.UNAVAILABLE);
  const add = await agent.handle(req("ADD", "x", "c"));
  assert.equal(add.ok ? 0 : add.code, CNI_ERRORS.TRY_AGAIN_LATER);
  await agent.start();
  assert.equal(await agent.handle(req("STATUS", "x", "c")), { ok: true });
  await agent.stop();
});

t("a failing apply is reported by STATUS and retried until it succeeds", async () => {
  const store = new MemoryStore();
  const dp = new RecordingDataplane();
  dp.failApply = "Cannot add bridge lb1 in netns node-1: a link of that name exists and is not lace-cni's";
  const agent = new NodeAgent({ store, node: "node-1", networkTypes: builtInNetworkTypes(), dataplane: dp, states: new LocalStateSource() });
  await agent.start();
  const r = await agent.handle(req("STATUS", "x", "c"));
  assert.is(r.ok ? 0 : r.code, CNI_ERRORS.UNAVAILABLE);
  assert.is(r.ok ? "" : r.details, dp.failApply);
  dp.failApply = undefined;
  await new Promise((done) => setTimeout(done, 1200));
  assert.equal(await agent.handle(req("STATUS", "x", "c")), { ok: true });
  await agent.stop();
});

t("ADD binds through the policies, allocates from the node's block, publishes the endpoint and attaches the pod", async () => {
  const { store, dp, agent } = await setUp();
  const r = await agent.handle(req("ADD", "api-0", "c1"));
  assert.ok(r.ok, JSON.stringify(r));
  const result = r.ok ? r.result! : undefined;
  assert.equal(result!.ips.map((i) => [i.address, i.gateway]), [["10.40.0.2/32", "10.40.0.1"], ["fd00:1::2/128", "fe80::1"]]);
  const host = hostIfnameFor("c1", "eth0");
  assert.ok(host.length <= 15);
  const att = dp.attached.get(host)!;
  assert.equal(att.gateways, ["10.40.0.1/24", "fd00:1::1/64"]);
  assert.is(att.networkId, 1);
  assert.is(att.mtu, 1460);
  assert.is(att.netns, "/run/netns/c1");
  const ep = await store.get<NetworkEndpoint>("NetworkEndpoint", "api-0", "team-a");
  assert.equal(ep!.spec!.addresses, ["10.40.0.2", "fd00:1::2"]);
  assert.is(ep!.spec!.network, "backend");
  assert.is(ep!.spec!.bindingPolicy, "backend");
  assert.is(ep!.spec!.owner, "uid-api-0");
  assert.is(ep!.spec!.interface, host);
  // The next apply carries the endpoint, so source validation knows its addresses.
  await agent.flush();
  const last = dp.applied.at(-1)!;
  assert.equal(last.endpoints.map((e) => e.addresses), [["10.40.0.2/32", "fd00:1::2/128"]]);
  assert.equal(last.networks.map((n) => n.name), ["backend"]);
  // A second pod gets the next address.
  const r2 = await agent.handle(req("ADD", "api-1", "c2"));
  assert.is(r2.ok ? r2.result!.ips[0].address : "", "10.40.0.3/32");
  await agent.stop();
});

t("ADD repeated for the same container returns the same addresses", async () => {
  const { agent } = await setUp();
  const a = await agent.handle(req("ADD", "api-0", "c1"));
  const b = await agent.handle(req("ADD", "api-0", "c1"));
  assert.ok(a.ok && b.ok);
  assert.equal(a.ok && a.result!.ips, b.ok && b.result!.ips);
  await agent.stop();
});

/** api-0 between two sandboxes (ADD c1, DEL c1), and a controller collecting after a 60 s grace period on the same clock. */
async function detachedApi0() {
  const env = await setUp();
  const controller = new Controller(env.store, { networkTypes: builtInNetworkTypes(), clock: env.clock, addressGrace: 60_000 });
  await env.agent.handle(req("ADD", "api-0", "c1"));
  await env.agent.handle(req("DEL", "api-0", "c1"));
  return { ...env, controller };
}

t("a pod is bound once: its next sandbox (a new container id) gets the same network and addresses after the policies changed", async () => {
  const { store, dp, agent } = await setUp();
  const first = await agent.handle(req("ADD", "api-0", "c1"));
  assert.equal(ips(first), ["10.40.0.2/32", "fd00:1::2/128"]);
  // The sandbox dies (node reboot, sandbox crash): the runtime DELs it; the pod lives on.
  assert.equal(await agent.handle(req("DEL", "api-0", "c1")), { ok: true });
  const kept = (await endpointOf(store, "api-0"))!;
  assert.is(kept.spec!.network, "backend", "the binding is kept");
  assert.is(kept.spec!.detachedAt, "2026-01-01T00:00:00.000Z");
  assert.is(kept.spec!.interface, undefined, "no sandbox, no interface");
  assert.is(kept.metadata.annotations?.[CONTAINER_ID_ANNOTATION], undefined);
  assert.equal(await owners(store), ["uid-api-0", "uid-api-0"], "the addresses stay with the pod");
  await agent.detached();
  assert.is(dp.attached.size, 0, "the dead sandbox's link is removed");
  await agent.flush();
  assert.equal(dp.applied.at(-1)!.endpoints, [], "a detached endpoint is not in the node's state");
  // While it is detached, its addresses are not handed to another pod of the network.
  assert.equal(ips(await agent.handle(req("ADD", "api-1", "c2"))), ["10.40.0.3/32", "fd00:1::3/128"]);

  await moveBackendPodsToFrontend(store);
  await store.create(pod("api-2", "backend"));
  assert.equal(ips(await agent.handle(req("ADD", "api-2", "c3"))), ["10.60.0.2/32", "fd00:2::2/128"], "a pod created now follows the new policy");
  // The re-created sandbox of api-0: the network it was bound to, the addresses it had.
  const again = await agent.handle(req("ADD", "api-0", "c4"));
  assert.equal(ips(again), ["10.40.0.2/32", "fd00:1::2/128"]);
  const back = (await endpointOf(store, "api-0"))!;
  assert.equal([back.spec!.network, back.spec!.bindingPolicy, back.spec!.detachedAt], ["backend", "backend", undefined]);
  assert.is(back.spec!.interface, hostIfnameFor("c4", "eth0"));
  assert.is(back.metadata.annotations?.[CONTAINER_ID_ANNOTATION], "c4");
  assert.is(dp.attached.get(hostIfnameFor("c4", "eth0"))?.network, "backend");
  await agent.flush();
  assert.ok(dp.applied.at(-1)!.endpoints.some((e) => e.id === "team-a/api-0"), "attached again, it is in the node's state");
  await agent.stop();
});

t("ADD reads its pod and the pod's kept endpoint from the watch caches; a cache behind the store costs one retry on fresh reads", async () => {
  let podGets = 0;
  let frozen = false;
  // The agent's view of the store: counts Pod reads, and can stop NetworkEndpoint events reaching its cache.
  const wrap = (s: MemoryStore): Store => {
    const w = Object.create(s) as MemoryStore;
    w.get = (kind, name, namespace) => {
      if (kind === "Pod") podGets++;
      return s.get(kind, name, namespace);
    };
    w.watch = <T extends Resource>(kind: string, options: WatchOptions, onEvent: (e: WatchEvent<T>) => void) =>
      s.watch<T>(kind, options, (e) => (frozen && kind === "NetworkEndpoint") ? undefined : onEvent(e));
    return w;
  };
  const { store, dp, agent } = await setUp(new ManualClock(), wrap);
  await store.create({ ...pod("api-9", "backend"), spec: { nodeName: "node-1" } });
  await settle();
  const first = await agent.handle(req("ADD", "api-9", "c1"));
  assert.equal(ips(first), ["10.40.0.2/32", "fd00:1::2/128"]);
  assert.is(podGets, 0, "the pod came from the node's pod cache");
  assert.equal(await agent.handle(req("DEL", "api-9", "c1")), { ok: true }, "DEL reads the pod from the store: is it still there?");
  await agent.detached();
  podGets = 0;
  await settle();
  // Someone writes the kept endpoint; the agent's cache does not hear of it.
  frozen = true;
  await store.patch("NetworkEndpoint", "api-9", "team-a", { metadata: { labels: { touched: "yes" } } });
  const again = await agent.handle(req("ADD", "api-9", "c2"));
  assert.equal(ips(again), ["10.40.0.2/32", "fd00:1::2/128"], "the kept binding, read afresh");
  assert.is(podGets, 1, "one fresh read after the conflict");
  const ep = (await endpointOf(store, "api-9"))!;
  assert.equal([ep.spec!.interface, ep.metadata.labels?.touched], [hostIfnameFor("c2", "eth0"), "yes"]);
  assert.ok(dp.attached.has(hostIfnameFor("c2", "eth0")));
  await agent.stop();
});

t("DEL of the old sandbox repeated, or of a container that never was, leaves the binding as it is", async () => {
  const { store, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await agent.handle(req("DEL", "api-0", "c1"));
  const detached = (await endpointOf(store, "api-0"))!;
  assert.equal(await agent.handle(req("DEL", "api-0", "c1")), { ok: true });
  assert.equal(await agent.handle(req("DEL", "api-0", "c-never")), { ok: true });
  assert.is((await endpointOf(store, "api-0"))!.metadata.resourceVersion, detached.metadata.resourceVersion, "not written again");
  await agent.stop();
});

t("a kept binding whose addresses were lost gets them again where they are still free", async () => {
  const { store, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await agent.handle(req("DEL", "api-0", "c1"));
  // Something released api-0's addresses (an operator, a collector), and another owner took the IPv4 one.
  const ipam = new HostLocalAllocator(store, { network: "backend", node: "node-1", blocks: new BlockAllocator(store) });
  assert.ok(await ipam.release("uid-api-0"));
  await ipam.allocate({ owner: "someone-else", addresses: [IPAddress.parse("10.40.0.2")] });
  const r = await agent.handle(req("ADD", "api-0", "c2"));
  assert.equal(ips(r), ["10.40.0.3/32", "fd00:1::2/128"], "the free IPv6 address is the same, the taken IPv4 one is not");
  assert.equal((await endpointOf(store, "api-0"))!.spec!.addresses, ["10.40.0.3", "fd00:1::2"]);
  await agent.stop();
});

t("a pod deleted between sandboxes: its binding and addresses are released after the grace period; a new pod of the name is bound fresh", async () => {
  const { store, agent, clock, controller } = await detachedApi0();
  await controller.reconcile();
  assert.ok(await endpointOf(store, "api-0"), "a live pod's detached binding is never collected");
  clock.advance(120_000);
  await controller.reconcile();
  assert.ok(await endpointOf(store, "api-0"), "however long it waits");
  assert.equal(await owners(store), ["uid-api-0", "uid-api-0"]);

  // No sandbox is left to DEL: the pod's deletion is the Pod object going.
  await store.delete("Pod", "api-0", "team-a");
  await controller.reconcile();
  clock.advance(30_000);
  await controller.reconcile();
  assert.ok(await endpointOf(store, "api-0"), "inside the grace period the binding stays");
  assert.equal(await owners(store), ["uid-api-0", "uid-api-0"]);
  clock.advance(30_000);
  await controller.reconcile();
  assert.is(await endpointOf(store, "api-0"), undefined, "after the grace period the endpoint is gone");
  assert.equal(await owners(store), [], "and so are its addresses");

  await moveBackendPodsToFrontend(store);
  await store.create(pod("api-0", "backend", "uid-api-0-second"));
  const fresh = await agent.handle(req("ADD", "api-0", "c2", { args: { K8S_POD_NAMESPACE: "team-a", K8S_POD_NAME: "api-0", K8S_POD_UID: "uid-api-0-second" } }));
  assert.equal(ips(fresh), ["10.60.0.2/32", "fd00:2::2/128"], "bound by today's policies");
  assert.is((await endpointOf(store, "api-0"))!.spec!.pod?.uid, "uid-api-0-second");
  await agent.stop();
});

t("a pod that finishes after its last DEL: the controller releases its binding and addresses after the grace period", async () => {
  const { store, agent, clock, controller } = await detachedApi0();
  assert.ok((await endpointOf(store, "api-0"))?.spec?.detachedAt, "still Running when its sandbox went: kept");
  const p = (await store.get<Resource<unknown, { phase?: string }>>("Pod", "api-0", "team-a"))!;
  await store.updateStatus({ ...p, status: { phase: "Failed" } });
  await controller.reconcile();
  clock.advance(60_000);
  const r = await controller.reconcile();
  assert.equal([r.bindingsReleased, r.addressesReclaimed], [["team-a/api-0"], 2]);
  assert.is(await endpointOf(store, "api-0"), undefined);
  assert.equal(await owners(store), []);
  await agent.stop();
});

t("a new pod of a deleted pod's name is bound fresh even before the old binding is collected", async () => {
  const { store, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await agent.handle(req("DEL", "api-0", "c1"));
  await store.delete("Pod", "api-0", "team-a");
  await moveBackendPodsToFrontend(store);
  await store.create(pod("api-0", "backend", "uid-api-0-second"));
  const r = await agent.handle(req("ADD", "api-0", "c2"));
  assert.equal(ips(r), ["10.60.0.2/32", "fd00:2::2/128"]);
  const ep = (await endpointOf(store, "api-0"))!;
  assert.equal([ep.spec!.network, ep.spec!.bindingPolicy, ep.spec!.owner, ep.spec!.pod?.uid, ep.spec!.detachedAt], [
    "frontend", "backend-moved", "uid-api-0-second", "uid-api-0-second", undefined,
  ]);
  // The new pod's sandbox ends: its own binding is kept, not the old one.
  await agent.handle(req("DEL", "api-0", "c2"));
  assert.is((await endpointOf(store, "api-0"))!.spec!.network, "frontend");
  await agent.stop();
});

t("DEL releases the binding of a pod being deleted, finished or gone", async () => {
  const { store, agent } = await setUp();
  for (const name of ["api-0", "api-1", "web-0"]) assert.ok((await agent.handle(req("ADD", name, `c-${name}`))).ok);
  await store.patch("Pod", "api-0", "team-a", { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" } });
  const finished = (await store.get<Resource<unknown, { phase?: string }>>("Pod", "api-1", "team-a"))!;
  await store.updateStatus({ ...finished, status: { phase: "Succeeded" } });
  await store.delete("Pod", "web-0", "team-a");
  for (const name of ["api-0", "api-1", "web-0"]) {
    assert.equal(await agent.handle(req("DEL", name, `c-${name}`)), { ok: true });
    assert.is(await endpointOf(store, name), undefined, `${name}'s endpoint is deleted`);
  }
  assert.equal(await owners(store), [], "the addresses are released");
  await agent.stop();
});

t("ADD on an l2 network, where the dataplane forwards bridged networks: a stable MAC on the endpoint and the interface, the subnet's length", async () => {
  const { store, dp, agent } = await setUp();
  dp.forwarding = ["routed", "bridged"];
  const r = await agent.handle(req("ADD", "disk-0", "c1"));
  assert.ok(r.ok, JSON.stringify(r));
  const ep = (await store.get<NetworkEndpoint>("NetworkEndpoint", "disk-0", "team-a"))!;
  assert.match(ep.spec!.mac ?? "", /^02:00:([0-9a-f]{2}:){3}[0-9a-f]{2}$/, "a locally administered unicast MAC");
  const att = dp.attached.get(hostIfnameFor("c1", "eth0"))!;
  assert.is(att.mac, ep.spec!.mac, "the pod's interface gets the endpoint's MAC");
  assert.ok(att.addresses[0].startsWith("10.50.0.") && att.addresses[0].endsWith("/24"), att.addresses[0]);
  const result = r.ok ? r.result! : undefined;
  assert.equal(result?.interfaces[1].mac, ep.spec!.mac);
  assert.ok(result?.ips[0].address.endsWith("/24"), result?.ips[0].address);
  // A re-created sandbox keeps the MAC (and the address).
  await agent.handle(req("DEL", "disk-0", "c1"));
  const again = await agent.handle(req("ADD", "disk-0", "c2"));
  assert.ok(again.ok, JSON.stringify(again));
  assert.is(dp.attached.get(hostIfnameFor("c2", "eth0"))!.mac, ep.spec!.mac);
  await agent.stop();
});

t("ADD fails with our codes: no binding policy (101), an l2 network the dataplane cannot forward (103), an unknown pod (105)", async () => {
  const { store, agent } = await setUp();
  const lost = await agent.handle(req("ADD", "lost-0", "c1"));
  assert.is(lost.ok ? 0 : lost.code, CNI_ERRORS.NO_NETWORK);
  assert.match(lost.ok ? "" : lost.msg, /no/i);
  const disk = await agent.handle(req("ADD", "disk-0", "c2"));
  assert.is(disk.ok ? 0 : disk.code, CNI_ERRORS.UNSUPPORTED_NETWORK);
  assert.is(disk.ok ? "" : disk.msg, `Network "storage" is l2: the dataplane on node node-1 does not forward bridged networks`);
  const ghost = await agent.handle(req("ADD", "ghost", "c3"));
  assert.is(ghost.ok ? 0 : ghost.code, CNI_ERRORS.UNKNOWN_POD);
  const noArgs = await agent.handle(req("ADD", "api-0", "c4", { args: {} }));
  assert.is(noArgs.ok ? 0 : noArgs.code, CNI_ERRORS.INVALID_ENVIRONMENT);
  assert.is((await store.list("NetworkEndpoint")).items.length, 0, "no endpoint left behind");
  await agent.stop();
});

t("a failed ADD undoes its work: no endpoint, the address is free again, nothing attached", async () => {
  const { store, dp, agent } = await setUp();
  dp.failAttach = "Cannot attach pod: the veth could not be created";
  const r = await agent.handle(req("ADD", "api-0", "c1"));
  assert.is(r.ok ? 0 : r.code, CNI_ERRORS.AGENT_FAILED);
  assert.is(r.ok ? "" : r.msg, "Cannot attach pod: the veth could not be created");
  assert.is(await store.get("NetworkEndpoint", "api-0", "team-a"), undefined);
  assert.is(dp.attached.size, 0);
  await agent.flush();
  assert.equal(dp.applied.at(-1)!.endpoints, []);
  assert.equal(await owners(store), [], "the address it held is released");
  await agent.stop();
});

t("a failed ADD on a node that already has the network (endpoint and attach in parallel) also undoes both", async () => {
  const { store, dp, agent } = await setUp();
  assert.ok((await agent.handle(req("ADD", "api-0", "c1"))).ok);
  dp.failAttach = "Cannot attach pod: no room";
  const r = await agent.handle(req("ADD", "api-1", "c2"));
  assert.is(r.ok ? "" : r.msg, "Cannot attach pod: no room");
  assert.is(await store.get("NetworkEndpoint", "api-1", "team-a"), undefined);
  assert.equal(await owners(store), ["uid-api-0", "uid-api-0"], "only api-0 holds addresses");
  assert.equal([...dp.attached.keys()], [hostIfnameFor("c1", "eth0")]);
  await agent.stop();
});

t("DEL of a pod being deleted is idempotent, releases the address and removes the endpoint; an old sandbox's DEL leaves the new one alone", async () => {
  const { store, dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await store.patch("Pod", "api-0", "team-a", { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" } });
  assert.equal(await agent.handle(req("DEL", "api-0", "c-stale")), { ok: true });
  assert.ok(await store.get("NetworkEndpoint", "api-0", "team-a"), "the stale DEL kept the endpoint");
  assert.ok(dp.attached.has(hostIfnameFor("c1", "eth0")));
  assert.equal(await owners(store), ["uid-api-0", "uid-api-0"], "one address per family held");
  for (let i = 0; i < 2; i++) assert.equal(await agent.handle(req("DEL", "api-0", "c1")), { ok: true });
  assert.is(await store.get("NetworkEndpoint", "api-0", "team-a"), undefined);
  await agent.detached();
  assert.is(dp.attached.size, 0);
  // Without CNI_ARGS and CNI_NETNS (allowed for DEL): still success.
  assert.equal(await agent.handle(req("DEL", "api-0", "c1", { args: {}, netns: undefined })), { ok: true });
  assert.equal(await owners(store), [], "the address is released");
  await agent.stop();
});

t("DEL answers once the store is written, before the slow link removal; a new ADD of the attachment waits for the removal", async () => {
  const { store, dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  const host = hostIfnameFor("c1", "eth0");
  let finish!: () => void;
  dp.holdDetach = new Promise((r) => (finish = r));
  assert.equal(await agent.handle(req("DEL", "api-0", "c1")), { ok: true });
  assert.ok((await endpointOf(store, "api-0"))?.spec?.detachedAt, "the endpoint is detached when DEL answers");
  assert.ok(dp.attached.has(host), "the link is still being removed");
  const again = agent.handle(req("ADD", "api-0", "c1"));
  await new Promise((r) => setTimeout(r, 20));
  assert.is(dp.calls.filter((c) => c === `attach ${host}`).length, 1, "the new ADD waits for the link removal");
  finish();
  const r = await again;
  assert.ok(r.ok, JSON.stringify(r));
  const order = dp.calls.filter((c) => c.endsWith(host));
  assert.equal(order, [`attach ${host}`, `detach ${host}`, `detached ${host}`, `attach ${host}`]);
  assert.ok(dp.attached.has(host));
  await agent.stop();
});

t("start removes the pod ports no endpoint claims (a crash between DEL's answer and the link removal) and keeps the others", async () => {
  const { store, dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await agent.stop();
  // What a crash leaves: a port whose endpoint is gone.
  dp.attached.set("lcstray", { netns: "/x", ifname: "eth0", hostIfname: "lcstray", network: "backend", addresses: [], gateways: [], mtu: 1460 });
  const restarted = new NodeAgent({ store, node: "node-1", networkTypes: builtInNetworkTypes(), dataplane: dp, states: new LocalStateSource() });
  await restarted.start();
  assert.equal([...dp.attached.keys()], [hostIfnameFor("c1", "eth0")]);
  await restarted.stop();
});

t("DEL without CNI_ARGS finds the endpoint by container id", async () => {
  const { store, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(await agent.handle(req("DEL", "api-0", "c1", { args: {} })), { ok: true });
  assert.ok((await endpointOf(store, "api-0"))?.spec?.detachedAt, "found, and detached: the pod lives on");
  await agent.handle(req("ADD", "api-1", "c2"));
  await store.delete("Pod", "api-1", "team-a");
  await settle();
  assert.equal(await agent.handle(req("DEL", "api-1", "c2", { args: {} })), { ok: true });
  assert.is(await endpointOf(store, "api-1"), undefined, "found, and released: the pod is gone");
  await agent.stop();
});

t("CHECK succeeds for an attached pod and fails with 104 once it is gone", async () => {
  const { dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  assert.equal(await agent.handle(req("CHECK", "api-0", "c1")), { ok: true });
  dp.attached.delete(hostIfnameFor("c1", "eth0"));
  const broken = await agent.handle(req("CHECK", "api-0", "c1"));
  assert.is(broken.ok ? 0 : broken.code, CNI_ERRORS.CHECK_FAILED);
  assert.match(broken.ok ? "" : broken.msg, /does not exist/);
  await agent.handle(req("DEL", "api-0", "c1"));
  const gone = await agent.handle(req("CHECK", "api-0", "c1"));
  assert.is(gone.ok ? 0 : gone.code, CNI_ERRORS.CHECK_FAILED);
  assert.match(gone.ok ? "" : gone.msg, /No attachment of container c1/);
  await agent.stop();
});

t("a pod attached while an apply is in flight gets the next apply at once, not after the gathering delay", async () => {
  const { dp, agent } = await setUp();
  assert.ok((await agent.handle(req("ADD", "api-0", "c0"))).ok);
  await new Promise((r) => setTimeout(r, 2 * APPLY_COALESCE_MS));
  // An apply that waits: it was planned before api-1 existed, as a slow apply of a busy node is.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const apply = dp.apply.bind(dp);
  let gated = true;
  dp.apply = async (state) => {
    if (gated) {
      gated = false;
      await gate;
    }
    return apply(state);
  };
  const inFlight = agent.requestApply();
  await settle();
  assert.ok((await agent.handle(req("ADD", "api-1", "c1"))).ok);
  const before = dp.applied.length;
  release();
  await inFlight;
  await new Promise((r) => setTimeout(r, APPLY_COALESCE_MS / 2));
  const after = dp.applied.slice(before);
  assert.ok(after.length >= 2, `expected the in-flight apply and the one after it within ${APPLY_COALESCE_MS / 2} ms, got ${after.length}`);
  assert.ok(after[after.length - 1].endpoints.some((e) => e.interface === hostIfnameFor("c1", "eth0")), "the follow-up lists api-1");
  await agent.stop();
});

t("CHECK reads the attachment from the watch cache, from the store when the cache does not hold it, and fails after DEL", async () => {
  const { store, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await settle();
  const reads: string[] = [];
  const get = store.get.bind(store);
  store.get = ((kind: string, name: string, ns?: string) => {
    reads.push(kind);
    return get(kind, name, ns);
  }) as typeof store.get;
  assert.equal(await agent.handle(req("CHECK", "api-0", "c1")), { ok: true });
  assert.equal(reads, [], "no store read: the cache holds the endpoint");
  // Another container of the pod: the cached endpoint is not its attachment, the store decides.
  const other = await agent.handle(req("CHECK", "api-0", "c2"));
  assert.is(other.ok ? 0 : other.code, CNI_ERRORS.CHECK_FAILED);
  assert.equal(reads, ["NetworkEndpoint"]);
  await agent.handle(req("DEL", "api-0", "c1"));
  const gone = await agent.handle(req("CHECK", "api-0", "c1"));
  assert.is(gone.ok ? 0 : gone.code, CNI_ERRORS.CHECK_FAILED);
  await agent.stop();
});

t("GC removes the attachments not in the valid list and stray pod ports; a live pod's binding is kept, detached, a gone pod's released", async () => {
  const { store, dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await agent.handle(req("ADD", "api-1", "c2"));
  await agent.handle(req("ADD", "web-0", "c3"));
  await store.delete("Pod", "web-0", "team-a");
  dp.attached.set("lcstray", { netns: "/x", ifname: "eth0", hostIfname: "lcstray", network: "backend", addresses: [], gateways: [], mtu: 1460 });
  await settle();
  const r = await agent.handle(req("GC", "", "", {
    containerId: undefined, ifname: undefined, netns: undefined, args: {},
    config: { cniVersion: "1.1.0", name: "lace", type: "lace-cni", "cni.dev/valid-attachments": [{ containerID: "c2", ifname: "eth0" }] },
  }));
  assert.equal(r, { ok: true });
  const eps = (await store.list<NetworkEndpoint>("NetworkEndpoint")).items;
  assert.equal(eps.map((e) => [e.metadata.name, e.spec!.detachedAt !== undefined]), [["api-0", true], ["api-1", false]]);
  assert.equal(await owners(store), ["uid-api-0", "uid-api-1", "uid-api-0", "uid-api-1"], "api-0 keeps its addresses");
  assert.equal([...dp.attached.keys()], [hostIfnameFor("c2", "eth0")]);
  // A second GC finds nothing more to do: the detached binding names no sandbox.
  assert.equal(await agent.handle(req("GC", "", "", {
    containerId: undefined, ifname: undefined, netns: undefined, args: {},
    config: { cniVersion: "1.1.0", name: "lace", type: "lace-cni", "cni.dev/valid-attachments": [{ containerID: "c2", ifname: "eth0" }] },
  })), { ok: true });
  assert.ok((await endpointOf(store, "api-0"))?.spec?.detachedAt);
  await agent.stop();
});

t("concurrent ADDs of different pods get different addresses", async () => {
  const { agent } = await setUp();
  const rs = await Promise.all([agent.handle(req("ADD", "api-0", "c1")), agent.handle(req("ADD", "api-1", "c2"))]);
  const addrs = rs.map((r) => r.ok && r.result!.ips[0].address);
  assert.ok(rs.every((r) => r.ok), JSON.stringify(rs));
  assert.is(new Set(addrs).size, 2);
  await agent.stop();
});

t("with the real builder, a Service's endpoints in the node's state come from an EndpointSlice written into the store", async () => {
  const store = new MemoryStore();
  for (const o of [
    fixtures.topology(fixtures.locatorsFor(["node-1", "node-2"])),
    fixtures.network("backend", { ipv4: "10.40.0.0/16" }, 1),
    fixtures.allocation("backend", "node-1", ["10.40.1.0/24"]),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } },
    pod("api-0", "backend"),
    fixtures.endpoint("team-a", "api-0", "backend", "node-2", ["10.40.2.5"]),
    fixtures.service("team-a", "api", "backend", { selector: { tier: "backend" }, clusterIP: "10.96.0.10", ports: [{ name: "web", port: 80 }] }),
  ] as Resource[]) await store.create(o);
  const dp = new RecordingDataplane();
  const states = new DesiredStateBuilder({ node: "node-1", forwardingOf: fixtures.builtInForwarding });
  const agent = new NodeAgent({ store, node: "node-1", networkTypes: builtInNetworkTypes(), dataplane: dp, states });
  await agent.start();
  const endpoints = () => dp.applied.at(-1)?.services?.find((x) => x.id === "team-a/api")?.endpoints;
  const until = async (cond: () => boolean, what: string) => {
    for (const end = Date.now() + 5_000; !cond();) {
      if (Date.now() > end) assert.unreachable(`Timed out waiting for ${what}: ${JSON.stringify(endpoints())}`);
      await settle();
    }
  };
  try {
    // No slice (the embedded store has no endpoint controller): the selector's pod, on the service's port.
    await until(() => endpoints()?.length === 1, "the selector's endpoint");
    assert.equal(endpoints(), [{ pod: "team-a/api-0", node: "node-2", addresses: ["10.40.2.5"], ports: [80] }]);
    // The endpoint controller's slice (as on Kubernetes): its resolved target port.
    await store.create(fixtures.endpointSlice("team-a", "api-x7k2p", "api", [{ address: "10.40.2.5", pod: "api-0", node: "node-2" }], [{ name: "web", port: 8080 }]));
    await until(() => endpoints()?.[0]?.ports[0] === 8080, "the slice's endpoint");
    assert.equal(endpoints(), [{ pod: "team-a/api-0", node: "node-2", addresses: ["10.40.2.5"], ports: [8080] }]);
    await store.delete("EndpointSlice", "api-x7k2p", "team-a");
    await until(() => endpoints()?.[0]?.ports[0] === 80, "the selector again");
  } finally {
    await agent.stop();
  }
});

t.run();
