/**
 * The node agent over an in-memory store, with a recording dataplane and a
 * minimal desired-state source: binding, allocation, endpoint publication,
 * undo on failure, idempotent DEL, CHECK, GC and STATUS.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type Allocation, MemoryStore, type Network, type NetworkBindingPolicy, type NetworkEndpoint, type Resource } from "../../core/mod.ts";
import { CNI_ERRORS, type CniRequest } from "../cni/spec.ts";
import { hostIfnameFor, NodeAgent } from "./agent.ts";
import { LocalStateSource, RecordingDataplane } from "./testing.ts";

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

async function setUp() {
  const store = new MemoryStore();
  for (const o of [
    network("backend", "l3", 1, "10.40.0.0/16"), network("frontend", "l3", 2, "10.60.0.0/16"), network("storage", "l2", 3, "10.50.0.0/24"),
    policy("backend", "backend", "backend"), policy("frontend", "frontend", "web"), policy("storage", "storage", "disk"),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a", labels: { team: "a" } } },
    pod("api-0", "backend"), pod("api-1", "backend"), pod("web-0", "web"), pod("disk-0", "disk"), pod("lost-0", "none"),
  ] as Resource[]) await store.create(o);
  const dp = new RecordingDataplane();
  const states = new LocalStateSource();
  const agent = new NodeAgent({ store, node: "node-1", dataplane: dp, states });
  await agent.start();
  return { store, dp, states, agent };
}

t("STATUS is 50 until the agent has synced and applied, then success", async () => {
  const store = new MemoryStore();
  const agent = new NodeAgent({ store, node: "node-1", dataplane: new RecordingDataplane(), states: new LocalStateSource() });
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
  const agent = new NodeAgent({ store, node: "node-1", dataplane: dp, states: new LocalStateSource() });
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
  assert.is(att.bridge, "lb1");
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

t("a pod is bound once: a new sandbox keeps the network even after the policies change", async () => {
  const { store, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await store.delete("NetworkBindingPolicy", "backend");
  await store.create(policy("backend-moved", "frontend", "backend"));
  await new Promise((r) => setTimeout(r, 10));
  await agent.handle(req("DEL", "api-0", "c-old"));
  const r = await agent.handle(req("ADD", "api-0", "c9"));
  assert.ok(r.ok, JSON.stringify(r));
  assert.is(r.ok && r.result!.ips[0].address, "10.40.0.2/32");
  // A pod created now follows the new policy.
  const r2 = await agent.handle(req("ADD", "api-1", "c10"));
  assert.is(r2.ok && r2.result!.ips[0].address, "10.60.0.2/32");
  await agent.stop();
});

t("ADD fails with our codes: no binding policy (101), an l2 network the dataplane cannot forward (103), an unknown pod (105)", async () => {
  const { store, agent } = await setUp();
  const lost = await agent.handle(req("ADD", "lost-0", "c1"));
  assert.is(lost.ok ? 0 : lost.code, CNI_ERRORS.NO_NETWORK);
  assert.match(lost.ok ? "" : lost.msg, /no/i);
  const disk = await agent.handle(req("ADD", "disk-0", "c2"));
  assert.is(disk.ok ? 0 : disk.code, CNI_ERRORS.UNSUPPORTED_NETWORK);
  assert.is(disk.ok ? "" : disk.msg, `Network "storage" is l2: the dataplane on node node-1 does not forward bridged networks yet`);
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

t("DEL is idempotent, releases the address and removes the endpoint; an old sandbox's DEL leaves the new one alone", async () => {
  const { store, dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
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

t("DEL answers once the store is released, before the slow link removal; a new ADD of the attachment waits for the removal", async () => {
  const { store, dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  const host = hostIfnameFor("c1", "eth0");
  let finish!: () => void;
  dp.holdDetach = new Promise((r) => (finish = r));
  assert.equal(await agent.handle(req("DEL", "api-0", "c1")), { ok: true });
  assert.is(await store.get("NetworkEndpoint", "api-0", "team-a"), undefined, "the endpoint is gone when DEL answers");
  assert.equal(await owners(store), [], "the addresses are released when DEL answers");
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
  const restarted = new NodeAgent({ store, node: "node-1", dataplane: dp, states: new LocalStateSource() });
  await restarted.start();
  assert.equal([...dp.attached.keys()], [hostIfnameFor("c1", "eth0")]);
  await restarted.stop();
});

t("DEL without CNI_ARGS finds the endpoint by container id", async () => {
  const { store, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(await agent.handle(req("DEL", "api-0", "c1", { args: {} })), { ok: true });
  assert.is(await store.get("NetworkEndpoint", "api-0", "team-a"), undefined);
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
  await agent.stop();
});

t("GC removes the attachments not in the valid list, and stray pod ports", async () => {
  const { store, dp, agent } = await setUp();
  await agent.handle(req("ADD", "api-0", "c1"));
  await agent.handle(req("ADD", "api-1", "c2"));
  await agent.handle(req("ADD", "web-0", "c3"));
  dp.attached.set("lcstray", { netns: "/x", ifname: "eth0", hostIfname: "lcstray", network: "backend", addresses: [], gateways: [], mtu: 1460 });
  await new Promise((r) => setTimeout(r, 10));
  const r = await agent.handle(req("GC", "", "", {
    containerId: undefined, ifname: undefined, netns: undefined, args: {},
    config: { cniVersion: "1.1.0", name: "lace", type: "lace-cni", "cni.dev/valid-attachments": [{ containerID: "c2", ifname: "eth0" }] },
  }));
  assert.equal(r, { ok: true });
  assert.equal((await store.list<NetworkEndpoint>("NetworkEndpoint")).items.map((e) => e.metadata.name), ["api-1"]);
  assert.equal([...dp.attached.keys()], [hostIfnameFor("c2", "eth0")]);
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

t.run();
