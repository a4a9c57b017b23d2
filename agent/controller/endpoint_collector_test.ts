import { suite } from "uvu";
import * as assert from "uvu/assert";
import { API_VERSION, MemoryStore, type NetworkEndpoint, type Resource } from "../../core/mod.ts";
import { ManualClock } from "../../core/ipam/testing.ts";
import { endpointL2Entries } from "../../core/controller/mod.ts";
import { EndpointCollector, livePods } from "./endpoint_collector.ts";

const t = suite("controller/endpoint_collector");

const pod = (name: string, uid: string): Resource => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "a", uid } });
const endpoint = (name: string, podRef?: { uid?: string }): NetworkEndpoint => ({
  apiVersion: API_VERSION,
  kind: "NetworkEndpoint",
  metadata: { name, namespace: "a" },
  spec: {
    network: "backend", node: "node-1", addresses: ["10.40.0.2"],
    ...(podRef ? { pod: { namespace: "a", name, ...podRef }, detachedAt: "2026-01-01T00:00:00Z" } : {}),
  },
});

async function setUp(endpoints: NetworkEndpoint[]) {
  const store = new MemoryStore();
  for (const e of endpoints) await store.create(e);
  const clock = new ManualClock();
  const collector = new EndpointCollector(store, { grace: 60_000, clock });
  const pass = async (pods: Resource[]) => collector.collect((await store.list<NetworkEndpoint>("NetworkEndpoint")).items, livePods(pods));
  const names = async () => (await store.list<NetworkEndpoint>("NetworkEndpoint")).items.map((e) => e.metadata.name).sort();
  return { store, clock, pass, names };
}

t("the endpoint of a deleted pod goes after two sightings a grace period apart; a live pod's and a host's never", async () => {
  const { clock, pass, names } = await setUp([endpoint("live", { uid: "u1" }), endpoint("gone", { uid: "u2" }), endpoint("host")]);
  const pods = [pod("live", "u1")];
  assert.equal(await pass(pods), [], "first sighting");
  clock.advance(30_000);
  assert.equal(await pass(pods), [], "inside the grace period");
  clock.advance(30_000);
  assert.equal(await pass(pods), ["a/gone"]);
  assert.equal(await names(), ["host", "live"]);
  clock.advance(600_000);
  assert.equal(await pass([]), [], "the live pod's endpoint is seen gone once now: not enough");
});

t("an l2 endpoint whose node never ran its DEL (a node lost) goes with its Neighbors and FDBEntry", async () => {
  const vm: NetworkEndpoint = { ...endpoint("vm", { uid: "u1" }), spec: { ...endpoint("vm", { uid: "u1" }).spec!, network: "storage", mac: "02:00:00:00:00:05", detachedAt: undefined } };
  const { store, clock, pass, names } = await setUp([vm]);
  const entries = endpointL2Entries(vm)!;
  for (const r of [...entries.neighbors, entries.fdb]) await store.create(r);
  await pass([]);
  clock.advance(60_000);
  assert.equal(await pass([]), ["a/vm"]);
  assert.equal(await names(), []);
  assert.equal([(await store.list("Neighbor")).items, (await store.list("FDBEntry")).items], [[], []]);
});

t("a finished pod's endpoint goes too: it never gets another sandbox", async () => {
  const { clock, pass, names } = await setUp([endpoint("job", { uid: "u1" })]);
  const finished = { ...pod("job", "u1"), status: { phase: "Succeeded" } };
  await pass([finished]);
  clock.advance(60_000);
  assert.equal(await pass([finished]), ["a/job"]);
  assert.equal(await names(), []);
});

t("an endpoint of another UID is a deleted namesake's: collected, unless a new pod of the name took it meanwhile", async () => {
  const { store, clock, pass, names } = await setUp([endpoint("web", { uid: "old" }), endpoint("api", { uid: "old" })]);
  const pods = [pod("web", "new"), pod("api", "new")];
  await pass(pods);
  clock.advance(60_000);
  // The new api pod's ADD rewrote the endpoint between the passes: its sightings start over.
  const api = (await store.get<NetworkEndpoint>("NetworkEndpoint", "api", "a"))!;
  await store.update({ ...api, spec: { ...api.spec!, pod: { namespace: "a", name: "api", uid: "new" } } });
  assert.equal(await pass(pods), ["a/web"]);
  assert.equal(await names(), ["api"]);
});

t("an endpoint written between the sighting and the delete stays (compare-and-swap)", async () => {
  const { store, clock } = await setUp([endpoint("web", { uid: "old" })]);
  const collector = new EndpointCollector(store, { grace: 0, clock });
  const seen = (await store.list<NetworkEndpoint>("NetworkEndpoint")).items;
  await collector.collect(seen, livePods([]));
  const cur = (await store.get<NetworkEndpoint>("NetworkEndpoint", "web", "a"))!;
  await store.update({ ...cur, spec: { ...cur.spec!, detachedAt: undefined } });
  assert.equal(await collector.collect(seen, livePods([])), [], "the stale version is not deleted");
  assert.ok(await store.get("NetworkEndpoint", "web", "a"));
});

t.run();
