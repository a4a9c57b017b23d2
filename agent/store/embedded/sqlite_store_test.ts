import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isStoreError, type Resource } from "../../../core/mod.ts";
import { storeConformance } from "../../../core/store/conformance.ts";
import { SqliteStore } from "./sqlite_store.ts";

// The store itself, without HTTP: the same contract as every other back end.
storeConformance("SqliteStore (in-process)", ({ watchHistory }) => {
  const store = SqliteStore.open(":memory:", { watchHistory });
  return Promise.resolve({ store, close: () => Promise.resolve(store.close()) });
});

const t = suite("SqliteStore ownership");

t("one process owns the database: a second open fails while the first holds it", () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-sqlite-"));
  const path = join(dir, "store.db");
  try {
    const first = SqliteStore.open(path);
    let err: unknown;
    try {
      SqliteStore.open(path).close();
    } catch (e) {
      err = e;
    }
    assert.ok(isStoreError(err, "Unavailable"), `expected Unavailable, got ${err}`);
    assert.match((err as Error).message, /is another lace store serving it/);
    first.close();
    SqliteStore.open(path).close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const g = suite("SqliteStore group commit");

const net = (name: string) => ({
  apiVersion: "lace-cni.io/v1alpha1",
  kind: "Network",
  metadata: { name },
  spec: { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } },
});

/** Counts the COMMITs the store issues, and can make the next one fail. */
function spyOnCommits(store: SqliteStore): { commits: number; failNext: boolean } {
  const db = (store as unknown as { db: { exec(sql: string): unknown } }).db;
  const real = db.exec.bind(db);
  const spy = { commits: 0, failNext: false };
  db.exec = (sql: string) => {
    if (sql === "COMMIT") {
      spy.commits++;
      if (spy.failNext) {
        spy.failNext = false;
        throw new Error("disk I/O error (injected)");
      }
    }
    return real(sql);
  };
  return spy;
}

g("the writes of one turn share one commit; watchers and callers hear of them only after it", async () => {
  const store = SqliteStore.open(":memory:");
  try {
    const spy = spyOnCommits(store);
    const seen: string[] = [];
    store.subscribe("Network", {}, (e) => seen.push(`${e.type} ${e.object.metadata.name}`));
    const writes = ["a", "b", "c"].map((n) => store.create(net(n)));
    assert.equal(seen, [], "nothing is announced before the commit");
    assert.is(spy.commits, 0);
    await Promise.all(writes);
    assert.is(spy.commits, 1, "one commit for the three writes");
    assert.equal(seen, ["ADDED a", "ADDED b", "ADDED c"]);
  } finally {
    store.close();
  }
});

g("a failed commit fails every write of the batch and keeps none", async () => {
  const store = SqliteStore.open(":memory:");
  try {
    const spy = spyOnCommits(store);
    const before = store.resourceVersion;
    const seen: string[] = [];
    store.subscribe("Network", {}, (e) => seen.push(e.object.metadata.name));
    spy.failNext = true;
    const results = await Promise.allSettled([store.create(net("a")), store.create(net("b"))]);
    assert.equal(results.map((r) => r.status), ["rejected", "rejected"]);
    const err = (results[0] as PromiseRejectedResult).reason;
    assert.ok(isStoreError(err, "Unavailable"), String(err));
    assert.match(err.message, /could not commit 2 write\(s\), none was kept: disk I\/O error/);
    assert.is(store.resourceVersion, before, "the version did not move");
    assert.is(await store.get("Network", "a"), undefined);
    assert.equal(seen, []);
    await store.create(net("a"));
    assert.equal(seen, ["a"], "the store goes on after a failed batch");
  } finally {
    store.close();
  }
});

g("a watch started during an open batch gets its events once, after the commit", async () => {
  const store = SqliteStore.open(":memory:");
  try {
    const listed = store.createSync(net("a") as Resource);
    const seen: string[] = [];
    // From the version a list during the batch reports: "a" is in that list, so no event for it.
    store.subscribe("Network", { resourceVersion: listed.metadata.resourceVersion }, (e) => seen.push(e.object.metadata.name));
    store.createSync(net("b"));
    const early: string[] = [];
    store.subscribe("Network", { resourceVersion: "1" }, (e) => early.push(e.object.metadata.name));
    assert.equal(early, [], "history replays only what is on disk");
    await store.durable();
    assert.equal(seen, ["b"]);
    assert.equal(early, ["a", "b"]);
  } finally {
    store.close();
  }
});

t.run();
g.run();
