/**
 * The store conformance suite: one set of tests that every Store back end
 * must pass (in memory, the embedded SQLite API server, a real cluster
 * through `@kubernetes/client-node`). Back ends differ only in the factory.
 *
 * Portable: web-standard APIs only, so the memory run works on Node and Deno.
 *
 * @example
 * storeConformance("MemoryStore", ({ watchHistory }) =>
 *   Promise.resolve({ store: new MemoryStore(watchHistory), close: () => Promise.resolve() }));
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Network, NetworkEndpoint, Resource } from "../resources/types.ts";
import { API_VERSION } from "../resources/types.ts";
import { isStoreError, retryOnConflict, type Store, type StoreErrorReason, type WatchEvent } from "./store.ts";

/** A store under test and how to dispose of it. */
export interface StoreHarness {
  store: Store;
  close(): Promise<void>;
}

/** Options a factory must honour. */
export interface StoreFactoryOptions {
  /** How many past events a watch may resume from; older versions are `Gone`. Default: the back end's. */
  watchHistory?: number;
}

/** Makes a fresh, empty store for one test. */
export type StoreFactory = (options: StoreFactoryOptions) => Promise<StoreHarness>;

/** How long to wait for watch events before failing: a bound, not a measurement. */
const EVENT_WAIT_MS = 5_000;

function network(name: string, labels?: Record<string, string>): Network {
  return {
    apiVersion: API_VERSION,
    kind: "Network",
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: { type: "l3", ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 } },
  };
}

function endpoint(namespace: string, name: string): NetworkEndpoint {
  return {
    apiVersion: API_VERSION,
    kind: "NetworkEndpoint",
    metadata: { name, namespace },
    spec: { network: "backend", node: "node-1", addresses: ["10.40.0.2"] },
  };
}

/** Namespaced objects need their Namespace: an API server refuses them in one that does not exist. */
async function createNamespaces(store: Store, ...names: string[]): Promise<void> {
  for (const name of names) await store.create({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
}

async function rejects(p: Promise<unknown>, reason: StoreErrorReason, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isStoreError(e, reason), `${what}: expected a StoreError ${reason}, got ${String(e)}`);
    return;
  }
  assert.unreachable(`${what}: expected a StoreError ${reason}, but it succeeded`);
}

async function eventually(cond: () => boolean, what: string): Promise<void> {
  const until = Date.now() + EVENT_WAIT_MS;
  while (!cond()) {
    if (Date.now() > until) assert.unreachable(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function summary(events: WatchEvent<Resource>[]): string[] {
  return events.map((e) => `${e.type} ${e.object.metadata.namespace ? e.object.metadata.namespace + "/" : ""}${e.object.metadata.name}`);
}

/**
 * Registers and runs the conformance suite against stores made by `factory`.
 * Each test gets a fresh store and closes it afterwards.
 */
export function storeConformance(name: string, factory: StoreFactory): void {
  const t = suite<{ h?: StoreHarness }>(`store conformance: ${name}`, {});
  const open = async (ctx: { h?: StoreHarness }, options: StoreFactoryOptions = {}): Promise<Store> => {
    ctx.h = await factory(options);
    return ctx.h.store;
  };
  t.after.each(async (ctx) => {
    await ctx.h?.close();
    ctx.h = undefined;
  });

  t("create stamps uid, resourceVersion, generation and creationTimestamp; get returns the object", async (ctx) => {
    const store = await open(ctx);
    const created = await store.create(network("backend"));
    assert.ok(created.metadata.uid, "uid is set");
    assert.ok(/^\d+$/.test(created.metadata.resourceVersion ?? ""), `resourceVersion is numeric: ${created.metadata.resourceVersion}`);
    assert.is(created.metadata.generation, 1);
    assert.ok(created.metadata.creationTimestamp && !Number.isNaN(Date.parse(created.metadata.creationTimestamp)));
    const got = await store.get<Network>("Network", "backend");
    assert.ok(got);
    assert.equal(got.spec, network("backend").spec);
    assert.is(got.metadata.resourceVersion, created.metadata.resourceVersion);
    assert.is(got.metadata.uid, created.metadata.uid);
    assert.is(await store.get("Network", "absent"), undefined);
  });

  t("create of a taken name fails with AlreadyExists", async (ctx) => {
    const store = await open(ctx);
    await store.create(network("backend"));
    await rejects(store.create(network("backend")), "AlreadyExists", "second create");
  });

  t("namespaced kinds: the same name in two namespaces, get and list by namespace", async (ctx) => {
    const store = await open(ctx);
    await createNamespaces(store, "team-a", "team-b");
    await store.create(endpoint("team-a", "web"));
    await store.create(endpoint("team-b", "web"));
    await rejects(store.create(endpoint("team-a", "web")), "AlreadyExists", "duplicate in team-a");
    assert.is((await store.get<NetworkEndpoint>("NetworkEndpoint", "web", "team-b"))?.metadata.namespace, "team-b");
    assert.is(await store.get("NetworkEndpoint", "web", "team-c"), undefined);
    const all = await store.list<NetworkEndpoint>("NetworkEndpoint");
    assert.equal(all.items.map((i) => i.metadata.namespace).sort(), ["team-a", "team-b"]);
    const a = await store.list<NetworkEndpoint>("NetworkEndpoint", { namespace: "team-a" });
    assert.equal(a.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`), ["team-a/web"]);
  });

  t("list returns the store's resourceVersion and filters by label selector", async (ctx) => {
    const store = await open(ctx);
    await store.create(network("a", { team: "a", tier: "web" }));
    await store.create(network("b", { team: "b" }));
    const last = await store.create(network("c"));
    const all = await store.list<Network>("Network");
    assert.equal(all.items.map((i) => i.metadata.name).sort(), ["a", "b", "c"]);
    assert.ok(Number(all.resourceVersion) >= Number(last.metadata.resourceVersion), "list version covers the last write");
    const names = async (labelSelector: string) =>
      (await store.list<Network>("Network", { labelSelector })).items.map((i) => i.metadata.name).sort();
    assert.equal(await names("team=a"), ["a"]);
    assert.equal(await names("team!=a"), ["b", "c"]);
    assert.equal(await names("team"), ["a", "b"]);
    assert.equal(await names("!team"), ["c"]);
    assert.equal(await names("team=a,tier=web"), ["a"]);
    assert.equal(await names("team=a,tier=db"), []);
    assert.equal((await store.list("NetworkRoutingPolicy")).items, []);
  });

  t("update replaces spec and metadata, keeps status, bumps resourceVersion and generation", async (ctx) => {
    const store = await open(ctx);
    const created = await store.create(network("backend"));
    const withStatus = await store.updateStatus({ ...created, status: { id: 7 } });
    const changed: Network = {
      ...withStatus,
      metadata: { ...withStatus.metadata, labels: { team: "a" } },
      spec: { type: "l3", ipv4Subnet: { prefix: "10.50.0.0/16", hostLocalPrefixLength: 24 } },
      status: { id: 99 },
    };
    const updated = await store.update(changed);
    assert.is(updated.spec?.ipv4Subnet?.prefix, "10.50.0.0/16");
    assert.equal(updated.metadata.labels, { team: "a" });
    assert.equal(updated.status, { id: 7 }, "update ignores status");
    assert.is(updated.metadata.generation, 2);
    assert.is(updated.metadata.uid, created.metadata.uid);
    assert.ok(Number(updated.metadata.resourceVersion) > Number(withStatus.metadata.resourceVersion));
    const relabelled = await store.update({ ...updated, metadata: { ...updated.metadata, labels: { team: "b" } } });
    assert.is(relabelled.metadata.generation, 2, "a metadata-only change keeps the generation");
    assert.equal((await store.get<Network>("Network", "backend"))?.status, { id: 7 });
  });

  t("update with a stale resourceVersion is a Conflict; of a missing object NotFound", async (ctx) => {
    const store = await open(ctx);
    const created = await store.create(network("backend"));
    await store.update({ ...created, metadata: { ...created.metadata, labels: { v: "2" } } });
    await rejects(store.update({ ...created, metadata: { ...created.metadata, labels: { v: "3" } } }), "Conflict", "stale update");
    assert.equal((await store.get<Network>("Network", "backend"))?.metadata.labels, { v: "2" });
    const ghost = network("ghost");
    ghost.metadata.resourceVersion = created.metadata.resourceVersion;
    await rejects(store.update(ghost), "NotFound", "update of a missing object");
  });

  t("updateStatus replaces status only, keeps spec and generation; stale version is a Conflict", async (ctx) => {
    const store = await open(ctx);
    const created = await store.create(network("backend"));
    const sneaky: Network = {
      ...created,
      spec: { type: "l2", ipv4Subnet: { prefix: "10.99.0.0/16" } },
      status: { id: 3, conditions: [{ type: "Accepted", status: "True", reason: "Valid", message: "ok" }] },
    };
    const updated = await store.updateStatus(sneaky);
    assert.equal(updated.status, sneaky.status);
    assert.equal(updated.spec, created.spec, "updateStatus ignores spec");
    assert.is(updated.metadata.generation, 1);
    assert.ok(Number(updated.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
    await rejects(store.updateStatus({ ...created, status: { id: 4 } }), "Conflict", "stale updateStatus");
    assert.equal((await store.get<Network>("Network", "backend"))?.status, sneaky.status);
    await rejects(store.updateStatus({ ...network("ghost"), status: { id: 1 } }), "NotFound", "updateStatus of a missing object");
  });

  t("patch merges (null removes), honours a resourceVersion precondition", async (ctx) => {
    const store = await open(ctx);
    await createNamespaces(store, "team-a", "team-b");
    const created = await store.create(network("backend", { team: "a", tier: "web" }));
    const patched = await store.patch<Network>("Network", "backend", undefined, {
      metadata: { labels: { tier: null, zone: "z1" } },
      spec: { anonymous: true },
    });
    assert.equal(patched.metadata.labels, { team: "a", zone: "z1" });
    assert.is(patched.spec?.anonymous, true);
    assert.is(patched.spec?.ipv4Subnet?.prefix, "10.40.0.0/16", "untouched fields stay");
    assert.ok(Number(patched.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
    await rejects(
      store.patch("Network", "backend", undefined, { metadata: { resourceVersion: created.metadata.resourceVersion }, spec: { anonymous: false } }),
      "Conflict",
      "patch with a stale resourceVersion",
    );
    const again = await store.patch<Network>("Network", "backend", undefined, {
      metadata: { resourceVersion: patched.metadata.resourceVersion },
      spec: { anonymous: false },
    });
    assert.is(again.spec?.anonymous, false);
    await rejects(store.patch("Network", "ghost", undefined, { spec: { anonymous: true } }), "NotFound", "patch of a missing object");
    const ep = await store.create(endpoint("team-a", "web"));
    const epPatched = await store.patch<NetworkEndpoint>("NetworkEndpoint", "web", "team-a", { spec: { mac: "02:00:00:00:00:01" } });
    assert.is(epPatched.spec?.mac, "02:00:00:00:00:01");
    assert.equal(epPatched.spec?.addresses, ep.spec?.addresses);
  });

  t("delete removes; NotFound when absent; a stale resourceVersion is a Conflict", async (ctx) => {
    const store = await open(ctx);
    await createNamespaces(store, "team-a", "team-b");
    const created = await store.create(network("backend"));
    const updated = await store.update({ ...created, metadata: { ...created.metadata, labels: { v: "2" } } });
    await rejects(store.delete("Network", "backend", undefined, { resourceVersion: created.metadata.resourceVersion }), "Conflict", "stale delete");
    assert.ok(await store.get("Network", "backend"), "still there after a refused delete");
    await store.delete("Network", "backend", undefined, { resourceVersion: updated.metadata.resourceVersion });
    assert.is(await store.get("Network", "backend"), undefined);
    await rejects(store.delete("Network", "backend"), "NotFound", "second delete");
    await store.create(endpoint("team-a", "web"));
    await rejects(store.delete("NetworkEndpoint", "web", "team-b"), "NotFound", "delete in the wrong namespace");
    await store.delete("NetworkEndpoint", "web", "team-a");
    assert.equal((await store.list("NetworkEndpoint")).items, []);
  });

  t("watch from a resourceVersion delivers ADDED, MODIFIED, DELETED of that kind, in order", async (ctx) => {
    const store = await open(ctx);
    await createNamespaces(store, "team-a", "team-b");
    await store.create(network("before"));
    const { resourceVersion } = await store.list("Network");
    const events: WatchEvent<Resource>[] = [];
    const w = store.watch("Network", { resourceVersion }, (e) => {
      if (e.type !== "BOOKMARK") events.push(e);
    });
    try {
      const a = await store.create(network("a"));
      await store.create(endpoint("team-a", "other-kind"));
      const a2 = await store.update({ ...a, metadata: { ...a.metadata, labels: { x: "1" } } });
      await store.updateStatus({ ...a2, status: { id: 1 } });
      await store.patch("Network", "a", undefined, { metadata: { labels: { y: "2" } } });
      await store.delete("Network", "a");
      await eventually(() => events.length >= 5, "five Network events");
      assert.equal(summary(events), ["ADDED a", "MODIFIED a", "MODIFIED a", "MODIFIED a", "DELETED a"]);
      const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
      assert.ok(rvs.every((rv, i) => i === 0 || rv > rvs[i - 1]), `versions increase: ${rvs}`);
      assert.ok(rvs[0] > Number(resourceVersion));
      assert.equal((events[3].object as Network).metadata.labels, { x: "1", y: "2" });
    } finally {
      w.stop();
    }
    await w.done;
  });

  t("watch from an older resourceVersion replays what happened since", async (ctx) => {
    const store = await open(ctx);
    const { resourceVersion } = await store.list("Network");
    await store.create(network("a"));
    await store.create(network("b"));
    await store.delete("Network", "a");
    const events: WatchEvent<Resource>[] = [];
    const w = store.watch("Network", { resourceVersion }, (e) => {
      if (e.type !== "BOOKMARK") events.push(e);
    });
    try {
      await eventually(() => events.length >= 3, "three replayed events");
      await store.create(network("c"));
      await eventually(() => events.length >= 4, "the live event after the replay");
      assert.equal(summary(events), ["ADDED a", "ADDED b", "DELETED a", "ADDED c"]);
    } finally {
      w.stop();
    }
    await w.done;
  });

  t("watch scoped to a namespace sees only that namespace", async (ctx) => {
    const store = await open(ctx);
    await createNamespaces(store, "team-a", "team-b");
    const { resourceVersion } = await store.list("NetworkEndpoint");
    const events: WatchEvent<Resource>[] = [];
    const w = store.watch("NetworkEndpoint", { namespace: "team-a", resourceVersion }, (e) => {
      if (e.type !== "BOOKMARK") events.push(e);
    });
    try {
      await store.create(endpoint("team-b", "x"));
      await store.create(endpoint("team-a", "y"));
      await store.delete("NetworkEndpoint", "x", "team-b");
      await store.delete("NetworkEndpoint", "y", "team-a");
      await store.create(endpoint("team-a", "z"));
      await eventually(() => events.length >= 3, "three team-a events");
      assert.equal(summary(events), ["ADDED team-a/y", "DELETED team-a/y", "ADDED team-a/z"]);
    } finally {
      w.stop();
    }
    await w.done;
  });

  t("stop ends the watch: done resolves and no further events arrive", async (ctx) => {
    const store = await open(ctx);
    const { resourceVersion } = await store.list("Network");
    const events: WatchEvent<Resource>[] = [];
    const w = store.watch("Network", { resourceVersion }, (e) => {
      if (e.type !== "BOOKMARK") events.push(e);
    });
    await store.create(network("a"));
    await eventually(() => events.length === 1, "the first event");
    w.stop();
    await w.done;
    await store.create(network("b"));
    // A second watch proves the write was published before we look.
    const seen: string[] = [];
    const probe = store.watch("Network", { resourceVersion }, (e) => {
      if (e.type !== "BOOKMARK") seen.push(e.object.metadata.name);
    });
    await eventually(() => seen.length >= 2, "the probe watch");
    probe.stop();
    await probe.done;
    assert.equal(summary(events), ["ADDED a"]);
  });

  t("watch from a version older than the kept history ends with Gone", async (ctx) => {
    const store = await open(ctx, { watchHistory: 2 });
    const { resourceVersion } = await store.list("Network");
    for (const n of ["a", "b", "c", "d", "e"]) await store.create(network(n));
    const w = store.watch("Network", { resourceVersion }, () => {});
    try {
      await w.done;
      assert.unreachable("expected the watch to end with Gone");
    } catch (e) {
      assert.ok(isStoreError(e, "Gone"), `expected a StoreError Gone, got ${String(e)}`);
    } finally {
      w.stop();
    }
  });

  t("concurrent read-modify-write through retryOnConflict loses no update", async (ctx) => {
    const store = await open(ctx);
    await store.create({ ...network("counter"), metadata: { name: "counter", annotations: { n: "0" } } });
    const bump = () =>
      retryOnConflict(async () => {
        const cur = await store.get<Network>("Network", "counter");
        const n = Number(cur!.metadata.annotations!.n) + 1;
        return store.update({ ...cur!, metadata: { ...cur!.metadata, annotations: { n: String(n) } } });
      }, 100);
    const writer = async () => {
      for (let i = 0; i < 5; i++) await bump();
    };
    await Promise.all([writer(), writer(), writer()]);
    assert.is((await store.get<Network>("Network", "counter"))?.metadata.annotations?.n, "15");
  });

  t("core kinds: Namespace is cluster-scoped, Pod and Service are namespaced, Node is cluster-scoped", async (ctx) => {
    const store = await open(ctx);
    await store.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a", labels: { team: "a" } } });
    await store.create({ apiVersion: "v1", kind: "Node", metadata: { name: "node-1" } });
    await store.create({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-0", namespace: "team-a", labels: { tier: "web" } },
      spec: { nodeName: "node-1", containers: [{ name: "c", image: "busybox" }] },
    });
    await store.create({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace: "team-a" },
      spec: { selector: { tier: "web" }, ports: [{ port: 80, protocol: "TCP" }] },
    });
    assert.is((await store.get("Namespace", "team-a"))?.metadata.labels?.team, "a");
    assert.is((await store.get("Node", "node-1"))?.metadata.name, "node-1");
    const pod = await store.get<Resource<{ nodeName: string }>>("Pod", "web-0", "team-a");
    assert.is(pod?.spec?.nodeName, "node-1");
    assert.equal((await store.list("Pod", { namespace: "team-a", labelSelector: "tier=web" })).items.map((p) => p.metadata.name), ["web-0"]);
    // A node's agent lists only its own pods.
    assert.equal((await store.list("Pod", { fieldSelector: "spec.nodeName=node-1" })).items.map((p) => p.metadata.name), ["web-0"]);
    assert.equal((await store.list("Pod", { fieldSelector: "spec.nodeName=node-2" })).items, []);
    assert.equal((await store.list("Pod", { fieldSelector: "spec.nodeName!=node-2" })).items.map((p) => p.metadata.name), ["web-0"]);
    assert.equal((await store.list("Service", { namespace: "team-b" })).items, []);
    assert.is((await store.get("Service", "web", "team-a"))?.kind, "Service");
  });

  t.run();
}
