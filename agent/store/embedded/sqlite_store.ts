/**
 * The embedded durable store: the Store interface on SQLite (better-sqlite3),
 * with Kubernetes semantics. Writes are committed with `synchronous=FULL`
 * in WAL mode, and a write is acknowledged (its promise resolves, the HTTP
 * server answers) only once its commit is on disk, so an acknowledged
 * write survives SIGKILL and power loss. The watch history is a table too:
 * a watcher can resume from a resourceVersion across restarts.
 *
 * Group commit: the writes made in one turn of the event loop share one
 * transaction, committed (one fsync) when the turn ends. Until then no
 * watcher hears of them and no caller is answered ({@link SqliteStore.durable});
 * if the commit fails, every write of the batch fails together.
 *
 * better-sqlite3 is synchronous and Node runs one thread, so a read followed
 * by a write in the same tick is atomic: the HTTP server relies on that for
 * JSON patches and preconditions.
 *
 * @example
 * const store = SqliteStore.open("/var/lib/lace/store.db");
 * await store.create(network);
 * store.close();
 */
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import Database from "better-sqlite3";
import {
  isNamespaced,
  type ListOptions,
  type ListResult,
  type MergePatch,
  mergePatch,
  type Resource,
  type Store,
  StoreError,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from "../../../core/mod.ts";
import { KIND_TABLE } from "../kinds.ts";
import { type FieldMatcher, type LabelMatcher, parseFieldSelector, parseLabelSelector } from "./selector.ts";
import { recordUpdate } from "./server_side_apply.ts";

/** What a page of a list needs: at most `limit` items, after the `continue` token of the previous page. */
export interface PageRequest {
  limit?: number;
  continue?: string;
}

export interface SqliteStoreOptions {
  /** How many past events are kept for watches that resume from a version. Default 100 000. */
  watchHistory?: number;
  /** Share one transaction and one fsync among the writes of one event-loop turn. Default true. */
  groupCommit?: boolean;
}

interface Notice {
  rv: number;
  kind: string;
  type: EventRow["type"];
  body: string;
  prevBody: string | null;
}

/** The writes of one event-loop turn, in one open transaction. */
interface Batch {
  startRv: number;
  startCompacted: number;
  notices: Notice[];
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** A watch request as the server sees it: scope, selectors and a starting version. */
export interface WatchRequest {
  namespace?: string;
  resourceVersion?: string;
  label?: LabelMatcher;
  field?: FieldMatcher;
}

interface Subscriber extends WatchRequest {
  kind: string;
  /** Events at or below this version were replayed (or listed): only later ones are sent. */
  from: number;
  onEvent: (e: WatchEvent<Resource>) => void;
}

interface ContinueToken {
  /** The version the first page was listed at. */
  rv: number;
  namespace: string;
  name: string;
}

interface EventRow {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  body: string;
  prev: string | null;
}

const STATUS_SUBRESOURCE = new Set(KIND_TABLE.filter((k) => k.statusSubresource).map((k) => k.kind));
const CRD_KINDS = new Set(KIND_TABLE.filter((k) => k.custom).map((k) => k.kind));

/** Whether `/status` is a separate subresource for the kind (the main resource then ignores status). */
export function hasStatusSubresource(kind: string): boolean {
  return STATUS_SUBRESOURCE.has(kind);
}

function withoutMetaAndStatus(o: Resource): string {
  const { metadata: _m, status: _s, ...rest } = o;
  return JSON.stringify(rest);
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly subscribers = new Set<Subscriber>();
  private readonly watchHistory: number;
  private rv: number;
  /** The newest version on disk; `rv` runs ahead of it while a batch is open. */
  private committedRv: number;
  private compacted: number;
  private readonly groupCommit: boolean;
  private batch?: Batch;
  private readonly stmt: {
    get: Database.Statement<[string, string, string], { body: string }>;
    listKind: Database.Statement<[string], { body: string }>;
    listNs: Database.Statement<[string, string], { body: string }>;
    listKindAfter: Database.Statement<[string, string, string], { body: string }>;
    listNsAfter: Database.Statement<[string, string, string], { body: string }>;
    upsert: Database.Statement<[string, string, string, number, string]>;
    remove: Database.Statement<[string, string, string]>;
    event: Database.Statement<[number, string, string, string, string | null]>;
    events: Database.Statement<[string, number], EventRow>;
    prune: Database.Statement<[number]>;
    setMeta: Database.Statement<[string, number]>;
  };

  private constructor(db: Database.Database, options: SqliteStoreOptions) {
    this.db = db;
    this.watchHistory = options.watchHistory ?? 100_000;
    this.groupCommit = options.groupCommit ?? true;
    // One process owns the database: a second server would keep its own
    // version counter and hand out duplicate resourceVersions.
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    // Take the lock now (exclusive mode keeps it until close), not at the first write.
    db.exec("BEGIN EXCLUSIVE; COMMIT;");
    db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
        rv INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (kind, namespace, name));
      CREATE TABLE IF NOT EXISTS events (
        rv INTEGER PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL,
        body TEXT NOT NULL, prev TEXT);
      CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, rv);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `);
    const meta = (key: string) =>
      (db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: number } | undefined)?.value ?? 0;
    // Never report version 0: to an API server client, "0" means "any version", not "the beginning".
    this.rv = Math.max(meta("rv"), 1);
    this.committedRv = this.rv;
    this.compacted = meta("compacted");
    this.stmt = {
      get: db.prepare("SELECT body FROM objects WHERE kind = ? AND namespace = ? AND name = ?"),
      listKind: db.prepare("SELECT body FROM objects WHERE kind = ? ORDER BY namespace, name"),
      listNs: db.prepare("SELECT body FROM objects WHERE kind = ? AND namespace = ? ORDER BY name"),
      listKindAfter: db.prepare("SELECT body FROM objects WHERE kind = ? AND (namespace, name) > (?, ?) ORDER BY namespace, name"),
      listNsAfter: db.prepare("SELECT body FROM objects WHERE kind = ? AND namespace = ? AND name > ? ORDER BY name"),
      upsert: db.prepare(
        "INSERT INTO objects (kind, namespace, name, rv, body) VALUES (?, ?, ?, ?, ?) " +
          "ON CONFLICT (kind, namespace, name) DO UPDATE SET rv = excluded.rv, body = excluded.body",
      ),
      remove: db.prepare("DELETE FROM objects WHERE kind = ? AND namespace = ? AND name = ?"),
      event: db.prepare("INSERT INTO events (rv, kind, type, body, prev) VALUES (?, ?, ?, ?, ?)"),
      events: db.prepare("SELECT rv, type, body, prev FROM events WHERE kind = ? AND rv > ? ORDER BY rv"),
      prune: db.prepare("DELETE FROM events WHERE rv <= ?"),
      setMeta: db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    };
  }

  /**
   * Opens (creating if needed) the database at `path`; `":memory:"` for a
   * throwaway one. The file is made readable by its owner only (0600):
   * SQLite gives the WAL and shared-memory files the mode of the database.
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    if (path !== ":memory:" && path !== "") {
      if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
      chmodSync(path, 0o600);
      for (const side of [`${path}-wal`, `${path}-shm`]) if (existsSync(side)) chmodSync(side, 0o600);
    }
    const db = new Database(path, { timeout: 250 });
    try {
      return new SqliteStore(db, options);
    } catch (e) {
      db.close();
      throw new StoreError("Unavailable", `Cannot open the store database "${path}": ${(e as Error).message} (is another lace store serving it?)`);
    }
  }

  /** The current resourceVersion of the whole store (including an open batch's writes). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** The newest resourceVersion on disk: what a watch bookmark may promise. */
  get durableResourceVersion(): string {
    return String(this.committedRv);
  }

  /**
   * Runs `fn` (one or more writes) as a dry run, as `?dryRun=All` asks: every
   * check runs and the result is what would be stored, but nothing is
   * written and no watcher hears of it.
   *
   * @example
   * const wouldBe = store.dryRun(() => store.createSync(network)); // not stored
   */
  dryRun<T>(fn: () => T): T {
    this.dryRunning = true;
    try {
      return fn();
    } finally {
      this.dryRunning = false;
    }
  }

  private dryRunning = false;
  private writer?: { manager: string; subresource?: "status" };

  /**
   * Runs `fn` (writes other than server-side apply) on behalf of a field
   * manager: each object it writes records the fields it changed under
   * that manager in `metadata.managedFields` (operation `Update`).
   *
   * @example
   * store.writeAs("kubectl-edit", () => store.updateSync(edited));
   */
  writeAs<T>(manager: string, fn: () => T, subresource?: "status"): T {
    const before = this.writer;
    this.writer = { manager, subresource };
    try {
      return fn();
    } finally {
      this.writer = before;
    }
  }
  private admit?: (next: Resource, prev?: Resource) => void;

  /**
   * Installs the check every created or updated object must pass before it
   * is stored (the API server's validation and admission); it throws to
   * refuse, and nothing is written. Returns a function that removes it.
   *
   * @example
   * store.setAdmission(admission({ networkTypes, namespaceOf: (ns) => store.getSync("Namespace", ns) }));
   */
  setAdmission(check: ((next: Resource, prev?: Resource) => void) | undefined): () => void {
    this.admit = check;
    // Removes this check only, not one a later caller installed.
    return () => {
      if (this.admit === check) this.admit = undefined;
    };
  }

  /**
   * Resolves once every write made so far is on disk (at once when none is
   * pending); rejects when their commit failed. Answer a client only after it.
   *
   * @example
   * const created = store.createSync(network);
   * await store.durable();
   * reply(201, created);
   */
  durable(): Promise<void> {
    return this.batch ? this.batch.done : Promise.resolve();
  }

  private openBatch(): Batch {
    // A batch nobody waits for must not become an unhandled rejection.
    const { promise: done, resolve, reject } = settledLater();
    this.db.exec("BEGIN");
    const batch: Batch = { startRv: this.rv, startCompacted: this.compacted, notices: [], done, resolve, reject };
    this.batch = batch;
    setImmediate(() => this.flush());
    return batch;
  }

  /** Commits the open batch (one fsync), then tells the watchers and the waiting callers. */
  private flush(): void {
    const b = this.batch;
    if (!b) return;
    this.batch = undefined;
    try {
      this.db.exec("COMMIT");
    } catch (e) {
      try {
        this.db.exec("ROLLBACK");
      } catch {
        // The commit's failure is the one to report.
      }
      this.rv = b.startRv;
      this.compacted = b.startCompacted;
      b.reject(new StoreError("Unavailable", `The store could not commit ${b.notices.length} write(s), none was kept: ${(e as Error).message}`));
      return;
    }
    this.committedRv = this.rv;
    for (const n of b.notices) this.notify(n);
    b.resolve();
  }

  close(): void {
    if (this.db.open) this.flush();
    this.subscribers.clear();
    this.db.close();
  }

  // ------------------------------------------------------------ reads

  private nsKey(kind: string, name: string, namespace?: string): string {
    if (!isNamespaced(kind)) return "";
    if (!namespace) throw new StoreError("Invalid", `${kind} "${name}": metadata.namespace is required for a namespaced kind`);
    return namespace;
  }

  getSync<T extends Resource>(kind: string, name: string, namespace?: string): T | undefined {
    const row = this.stmt.get.get(kind, this.nsKey(kind, name, namespace), name);
    return row ? (JSON.parse(row.body) as T) : undefined;
  }

  /**
   * Lists `kind`, optionally one page at a time: with `limit`, at most that
   * many items and, when more remain, a `continue` token for the next page.
   * A page lists the objects as they are when it is read (not a snapshot
   * of the first page's version, as etcd gives); a token older than the
   * kept history is `Gone`, as the API server answers 410.
   */
  listSync<T extends Resource>(
    kind: string,
    options: { namespace?: string; label?: LabelMatcher; field?: FieldMatcher } & PageRequest = {},
  ): ListResult<T> & { continue?: string } {
    const byNs = Boolean(options.namespace && isNamespaced(kind));
    const after = options.continue ? this.decodeContinue(options.continue, kind) : undefined;
    const rows = after
      ? (byNs ? this.stmt.listNsAfter.iterate(kind, options.namespace!, after.name) : this.stmt.listKindAfter.iterate(kind, after.namespace, after.name))
      : (byNs ? this.stmt.listNs.iterate(kind, options.namespace!) : this.stmt.listKind.iterate(kind));
    const limit = options.limit && options.limit > 0 ? options.limit : Infinity;
    const items: T[] = [];
    let more = false;
    for (const { body } of rows) {
      const o = JSON.parse(body) as T;
      if (options.label && !options.label(o.metadata.labels)) continue;
      if (options.field && !options.field(o)) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(o);
    }
    const rv = after?.rv ?? this.rv;
    const result: ListResult<T> & { continue?: string } = { items, resourceVersion: String(rv) };
    if (more) {
      const last = items[items.length - 1].metadata;
      const token: ContinueToken = { rv, namespace: last.namespace ?? "", name: last.name };
      result.continue = Buffer.from(JSON.stringify(token)).toString("base64url");
    }
    return result;
  }

  private decodeContinue(text: string, kind: string): ContinueToken {
    let token: ContinueToken;
    try {
      token = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as ContinueToken;
    } catch {
      token = {} as ContinueToken;
    }
    if (!Number.isInteger(token.rv) || typeof token.namespace !== "string" || typeof token.name !== "string") {
      throw new StoreError("Invalid", `List of ${kind}: invalid continue token ${JSON.stringify(text)}: expected the metadata.continue of a previous page`);
    }
    if (token.rv < this.compacted) {
      throw new StoreError("Gone", `List of ${kind}: the continue token is too old (resourceVersion ${token.rv}, the oldest kept is ${this.compacted}); list again from the start`);
    }
    return token;
  }

  get<T extends Resource>(kind: string, name: string, namespace?: string): Promise<T | undefined> {
    return this.settle(() => this.getSync<T>(kind, name, namespace));
  }

  list<T extends Resource>(kind: string, options: ListOptions = {}): Promise<ListResult<T>> {
    return this.settle(() => this.listSync<T>(kind, { namespace: options.namespace, label: parseLabelSelector(options.labelSelector), field: parseFieldSelector(options.fieldSelector) }));
  }

  // ------------------------------------------------------------ watch

  /**
   * Subscribes to changes of `kind` after `resourceVersion` (unset: from now),
   * replaying the kept history first. Throws `Gone` when the version is older
   * than the kept history.
   */
  subscribe(kind: string, request: WatchRequest, onEvent: (e: WatchEvent<Resource>) => void): () => void {
    const raw = request.resourceVersion;
    const from = raw === undefined || raw === "" ? this.rv : Number(raw);
    if (!Number.isInteger(from) || from < 0) {
      throw new StoreError("Invalid", `Watch of ${kind}: resourceVersion must be a non-negative integer, got "${raw}"`);
    }
    if (from < this.compacted) {
      throw new StoreError("Gone", `Watch of ${kind} from resourceVersion ${from}: too old, the oldest kept is ${this.compacted}`);
    }
    // Replay only what is on disk; the open batch's events follow when it commits.
    const sub: Subscriber = { ...request, kind, onEvent, from: Math.max(from, this.committedRv) };
    for (const row of this.stmt.events.all(kind, from)) {
      if (row.rv > this.committedRv) break;
      const e = this.visible(sub, row.type, JSON.parse(row.body) as Resource, row.prev ? JSON.parse(row.prev) as Resource : undefined);
      if (e) onEvent(e);
    }
    this.subscribers.add(sub);
    return () => this.subscribers.delete(sub);
  }

  watch<T extends Resource>(kind: string, options: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Watch {
    // A caller that never awaits `done` must not crash the process on a rejection.
    const { promise: done, resolve, reject } = settledLater();
    let unsubscribe = () => {};
    try {
      unsubscribe = this.subscribe(
        kind,
        { namespace: options.namespace, resourceVersion: options.resourceVersion, label: parseLabelSelector(options.labelSelector), field: parseFieldSelector(options.fieldSelector) },
        onEvent as (e: WatchEvent<Resource>) => void,
      );
    } catch (e) {
      queueMicrotask(() => reject(e));
    }
    return {
      stop: () => {
        unsubscribe();
        resolve();
      },
      done,
    };
  }

  /** What a subscriber sees of a change: selectors turn a MODIFIED into ADDED/DELETED as an object enters or leaves. */
  private visible(sub: WatchRequest, type: EventRow["type"], obj: Resource, prev?: Resource): WatchEvent<Resource> | undefined {
    if (sub.namespace && obj.metadata.namespace !== sub.namespace) return undefined;
    const matches = (o: Resource) => (!sub.label || sub.label(o.metadata.labels)) && (!sub.field || sub.field(o));
    const now = matches(obj);
    if (type !== "MODIFIED" || !prev) return now ? { type, object: obj } : undefined;
    const before = matches(prev);
    if (now && before) return { type, object: obj };
    if (now) return { type: "ADDED", object: obj };
    if (before) return { type: "DELETED", object: obj };
    return undefined;
  }

  // ------------------------------------------------------------ writes

  /** Commits one change and its event in one transaction, then tells the watchers. */
  private commit(kind: string, type: EventRow["type"], obj: Resource, prev?: Resource): void {
    if (type !== "DELETED" && this.writer) recordUpdate(prev, obj, this.writer.manager, new Date(), this.writer.subresource);
    if (type !== "DELETED") this.admit?.(obj, prev);
    if (this.dryRunning) {
      // As the API server: a dry-run create has no version yet, a dry-run update keeps the stored one.
      if (type === "ADDED") delete obj.metadata.resourceVersion;
      else if (prev) obj.metadata.resourceVersion = prev.metadata.resourceVersion;
      return;
    }
    if (this.groupCommit && !this.batch) this.openBatch();
    const rv = this.rv + 1;
    obj.metadata.resourceVersion = String(rv);
    const ns = obj.metadata.namespace ?? "";
    const body = JSON.stringify(obj);
    const prevBody = prev ? JSON.stringify(prev) : null;
    const cut = rv - this.watchHistory;
    // Inside an open batch this is a savepoint: a failing write undoes only itself.
    this.db.transaction(() => {
      if (type === "DELETED") this.stmt.remove.run(kind, ns, obj.metadata.name);
      else this.stmt.upsert.run(kind, ns, obj.metadata.name, rv, body);
      this.stmt.event.run(rv, kind, type, body, prevBody);
      this.stmt.setMeta.run("rv", rv);
      if (cut > this.compacted) {
        this.stmt.prune.run(cut);
        this.stmt.setMeta.run("compacted", cut);
      }
    })();
    this.rv = rv;
    if (cut > this.compacted) this.compacted = cut;
    const notice: Notice = { rv, kind, type, body, prevBody };
    if (this.batch) this.batch.notices.push(notice);
    else {
      this.committedRv = rv;
      this.notify(notice);
    }
  }

  private notify(n: Notice): void {
    for (const s of this.subscribers) {
      if (s.kind !== n.kind || n.rv <= s.from) continue;
      const e = this.visible(s, n.type, JSON.parse(n.body) as Resource, n.prevBody ? JSON.parse(n.prevBody) as Resource : undefined);
      if (e) s.onEvent(e);
    }
  }

  /**
   * Creates `input`. A missing name is made from `metadata.generateName`
   * plus five random characters, as the API server does; the system fields
   * (uid, timestamps, generation, version) are the store's, whatever the
   * client sent.
   */
  createSync<T extends Resource>(input: T): T {
    const { kind } = input;
    if (!kind) throw new StoreError("Invalid", `Object: kind is required`);
    const generateName = (input.metadata as { generateName?: unknown } | undefined)?.generateName;
    const name = input.metadata?.name || (typeof generateName === "string" && generateName ? generateName + randomSuffix() : "");
    if (!name) throw new StoreError("Invalid", `${kind}: metadata.name is required (or metadata.generateName)`);
    const ns = this.nsKey(kind, name, input.metadata.namespace);
    if (this.stmt.get.get(kind, ns, name)) {
      throw new StoreError("AlreadyExists", `${kind} "${ns ? ns + "/" : ""}${name}" already exists`);
    }
    const obj = structuredClone(input) as Resource;
    // As for a CRD with a status subresource: create cannot set status.
    if (CRD_KINDS.has(kind) && hasStatusSubresource(kind)) delete obj.status;
    // As the API server: a new Namespace is Active.
    if (kind === "Namespace") obj.status = { phase: "Active" };
    obj.metadata = {
      ...obj.metadata,
      name,
      uid: crypto.randomUUID(),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    if (ns) obj.metadata.namespace = ns;
    else delete obj.metadata.namespace;
    // Only a DELETE starts a deletion: a client cannot create an object already being deleted.
    delete obj.metadata.deletionTimestamp;
    delete (obj.metadata as { deletionGracePeriodSeconds?: number }).deletionGracePeriodSeconds;
    delete obj.metadata.resourceVersion;
    this.commit(kind, "ADDED", obj);
    return obj as T;
  }

  private current(kind: string, name: string, namespace: string | undefined, rv?: string): Resource {
    const ns = this.nsKey(kind, name, namespace);
    const row = this.stmt.get.get(kind, ns, name);
    const key = `${ns ? ns + "/" : ""}${name}`;
    if (!row) throw new StoreError("NotFound", `${kind} "${key}" not found`);
    const cur = JSON.parse(row.body) as Resource;
    if (rv !== undefined && rv !== "" && rv !== cur.metadata.resourceVersion) {
      throw new StoreError(
        "Conflict",
        `Operation cannot be fulfilled on ${kind} "${key}": the object has been modified (resourceVersion ${rv} is stale, the stored one is ${cur.metadata.resourceVersion}); read it again and retry`,
      );
    }
    return cur;
  }

  /** Writes `next` over `cur`, keeping identity fields; generation follows changes outside metadata and status. */
  private replace<T extends Resource>(cur: Resource, next: Resource): T {
    next.kind = cur.kind;
    next.apiVersion = cur.apiVersion;
    next.metadata = {
      ...next.metadata,
      name: cur.metadata.name,
      uid: cur.metadata.uid,
      creationTimestamp: cur.metadata.creationTimestamp,
      generation: (cur.metadata.generation ?? 1) + (withoutMetaAndStatus(cur) !== withoutMetaAndStatus(next) ? 1 : 0),
    };
    if (cur.metadata.namespace) next.metadata.namespace = cur.metadata.namespace;
    else delete next.metadata.namespace;
    // deletionTimestamp is the server's: kept once set, never taken from the client.
    const grace = "deletionGracePeriodSeconds" as const;
    const meta = next.metadata as Resource["metadata"] & { [grace]?: number };
    if (cur.metadata.deletionTimestamp) {
      meta.deletionTimestamp = cur.metadata.deletionTimestamp;
      meta[grace] = (cur.metadata as typeof meta)[grace];
      const before = new Set(cur.metadata.finalizers ?? []);
      const added = (meta.finalizers ?? []).filter((f) => !before.has(f));
      if (added.length > 0) {
        throw new StoreError(
          "Invalid",
          `${cur.kind} "${keyOf(cur)}" is invalid: metadata.finalizers: no new finalizers can be added while the object is being deleted, got ${JSON.stringify(added)}`,
        );
      }
      if ((meta.finalizers ?? []).length === 0) {
        // The last finalizer is gone: the deletion the DELETE asked for happens now.
        this.commit(cur.kind, "DELETED", next, cur);
        return next as T;
      }
    } else {
      delete meta.deletionTimestamp;
      delete meta[grace];
    }
    this.commit(cur.kind, "MODIFIED", next, cur);
    return next as T;
  }

  updateSync<T extends Resource>(obj: T): T {
    const cur = this.current(obj.kind, obj.metadata?.name, obj.metadata?.namespace, obj.metadata?.resourceVersion);
    const next = structuredClone(obj) as Resource;
    if (hasStatusSubresource(obj.kind)) {
      if (cur.status === undefined) delete next.status;
      else next.status = cur.status;
    }
    return this.replace<T>(cur, next);
  }

  updateStatusSync<T extends Resource>(obj: T): T {
    const cur = this.current(obj.kind, obj.metadata?.name, obj.metadata?.namespace, obj.metadata?.resourceVersion);
    const next = structuredClone(cur);
    if (obj.status === undefined) delete next.status;
    else next.status = structuredClone(obj.status);
    return this.replace<T>(cur, next);
  }

  /**
   * Applies a merge patch. With `subresource: "status"` only the patched
   * status is kept; on the main resource of a kind with a status
   * subresource, the status part of the patch is ignored.
   */
  patchSync<T extends Resource>(
    kind: string,
    name: string,
    namespace: string | undefined,
    patch: MergePatch,
    subresource?: "status",
  ): T {
    const rv = (patch.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
    const cur = this.current(kind, name, namespace, rv);
    return this.applySync<T>(cur, mergePatch(cur, patch) as Resource, subresource);
  }

  /** Writes a patched copy of `cur` (from any patch format), honouring the subresource rules. */
  applySync<T extends Resource>(cur: Resource, patched: Resource, subresource?: "status"): T {
    if (patched.metadata?.resourceVersion !== undefined && patched.metadata.resourceVersion !== cur.metadata.resourceVersion) {
      this.current(cur.kind, cur.metadata.name, cur.metadata.namespace, patched.metadata.resourceVersion);
    }
    let next: Resource;
    if (subresource === "status") {
      next = structuredClone(cur);
      if (patched.status === undefined) delete next.status;
      else next.status = patched.status;
    } else {
      next = patched;
      if (hasStatusSubresource(cur.kind)) {
        if (cur.status === undefined) delete next.status;
        else next.status = structuredClone(cur.status);
      }
    }
    return this.replace<T>(cur, next);
  }

  /**
   * Deletes an object. One with finalizers is only marked (deletionTimestamp
   * set, returned with `pending: true`); it goes when an update removes its
   * last finalizer.
   */
  deleteSync(kind: string, name: string, namespace?: string, options: { resourceVersion?: string; uid?: string } = {}): Resource {
    const cur = this.current(kind, name, namespace, options.resourceVersion);
    if (options.uid && options.uid !== cur.metadata.uid) {
      throw new StoreError("Conflict", `Precondition failed for ${kind} "${name}": UID in precondition ${options.uid}, UID in object meta ${cur.metadata.uid}`);
    }
    if ((cur.metadata.finalizers ?? []).length > 0) {
      if (cur.metadata.deletionTimestamp) return cur;
      const marked = structuredClone(cur);
      marked.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      (marked.metadata as { deletionGracePeriodSeconds?: number }).deletionGracePeriodSeconds = 0;
      this.commit(kind, "MODIFIED", marked, cur);
      return marked;
    }
    const gone = structuredClone(cur);
    this.commit(kind, "DELETED", gone);
    return gone;
  }

  create<T extends Resource>(obj: T): Promise<T> {
    return this.settle(() => this.createSync(obj));
  }

  update<T extends Resource>(obj: T): Promise<T> {
    return this.settle(() => this.updateSync(obj));
  }

  updateStatus<T extends Resource>(obj: T): Promise<T> {
    return this.settle(() => this.updateStatusSync(obj));
  }

  patch<T extends Resource>(kind: string, name: string, namespace: string | undefined, patch: MergePatch): Promise<T> {
    return this.settle(() => this.patchSync<T>(kind, name, namespace, patch));
  }

  delete(kind: string, name: string, namespace?: string, options: { resourceVersion?: string } = {}): Promise<void> {
    return this.settle(() => {
      this.deleteSync(kind, name, namespace, options);
    });
  }
  /** Runs `fn` now and settles once what it wrote (and what it read) is on disk. */
  private async settle<T>(fn: () => T): Promise<T> {
    const result = structuredClone(fn());
    await this.durable();
    return result;
  }

}

function keyOf(o: Resource): string {
  return `${o.metadata.namespace ? o.metadata.namespace + "/" : ""}${o.metadata.name}`;
}

const SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** Five characters from the API server's alphabet for `generateName` (no vowels: no words by accident). */
function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(5));
  return Array.from(bytes, (b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join("");
}

/**
 * A promise with its resolve and reject, whose rejection is never
 * unhandled (a caller may not wait for it).
 *
 * @example
 * const { promise, resolve } = settledLater();
 * resolve(); // promise fulfils
 */
function settledLater(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}
