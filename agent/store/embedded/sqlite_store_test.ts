import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isStoreError } from "../../../core/mod.ts";
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

t.run();
