import { suite } from "uvu";
import * as assert from "uvu/assert";
import { API_VERSION, MemoryStore, type Network, type Resource } from "../../core/mod.ts";
import { Informer } from "./informer.ts";

const t = suite("Informer over any Store");

const net = (name: string, labels?: Record<string, string>): Network => ({
  apiVersion: API_VERSION,
  kind: "Network",
  metadata: { name, ...(labels ? { labels } : {}) },
  spec: { type: "l3" },
});

async function eventually(cond: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > until) assert.unreachable(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t("resync re-delivers every cached object as an update with itself as the old version", async () => {
  const store = new MemoryStore();
  await store.create(net("a"));
  await store.create(net("b"));
  const updates: string[] = [];
  const inf = new Informer<Network>(store, "Network", { resyncMs: 10 }).on("update", (o, old) => {
    assert.is(o, old);
    updates.push(o.metadata.name);
  });
  try {
    await inf.start();
    await eventually(() => updates.length >= 4, "two resyncs");
    assert.equal(updates.slice(0, 2).sort(), ["a", "b"]);
  } finally {
    inf.stop();
  }
});

t("a label selector holds even on a store whose watch cannot filter: leaving it is a delete", async () => {
  const store = new MemoryStore();
  await store.create(net("a", { team: "x" }));
  await store.create(net("b", { team: "y" }));
  const seen: string[] = [];
  const inf = new Informer<Network>(store, "Network", { labelSelector: "team=x" })
    .on("add", (o) => seen.push(`add ${o.metadata.name}`))
    .on("delete", (o) => seen.push(`delete ${o.metadata.name}`));
  try {
    await inf.start();
    await store.patch("Network", "b", undefined, { metadata: { labels: { team: "x" } } });
    await store.patch("Network", "a", undefined, { metadata: { labels: { team: "z" } } });
    await eventually(() => seen.length >= 3, "three events");
    assert.equal(seen, ["add a", "add b", "delete a"]);
    assert.equal(inf.list().map((o) => o.metadata.name), ["b"]);
  } finally {
    inf.stop();
  }
});

t("a field selector keeps a node's pods only, on a store whose watch cannot filter too", async () => {
  const store = new MemoryStore();
  await store.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "a" } });
  const pod = (name: string, nodeName: string) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "a" }, spec: { nodeName } });
  await store.create(pod("p1", "node-1"));
  await store.create(pod("p2", "node-2"));
  const inf = new Informer<Resource>(store, "Pod", { fieldSelector: "spec.nodeName=node-1" });
  try {
    await inf.start();
    assert.equal(inf.list().map((o) => o.metadata.name), ["p1"]);
    await store.create(pod("p3", "node-2"));
    await store.create(pod("p4", "node-1"));
    await eventually(() => inf.list().length >= 2, "p4 in the cache");
    assert.equal(inf.list().map((o) => o.metadata.name).sort(), ["p1", "p4"]);
  } finally {
    inf.stop();
  }
  assert.throws(() => new Informer<Resource>(store, "Pod", { fieldSelector: "spec.nodeName~node-1" }), /field selector term "spec.nodeName~node-1"/);
});

t("a failing list is reported and retried with backoff until it succeeds", async () => {
  const store = new MemoryStore();
  await store.create(net("a"));
  let failuresLeft = 2;
  const flaky = Object.create(store) as MemoryStore;
  flaky.list = (kind, options) => failuresLeft-- > 0 ? Promise.reject(new Error("connection refused")) : store.list(kind, options);
  const errors: string[] = [];
  const inf = new Informer<Network>(flaky, "Network", { backoffMs: 1 }).on("error", (e) => errors.push((e as Error).message));
  try {
    await inf.start();
    assert.equal(errors, ["connection refused", "connection refused"]);
    assert.is(inf.lists, 3);
    assert.ok(inf.get("a"));
  } finally {
    inf.stop();
  }
});

t.run();
