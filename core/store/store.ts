/**
 * The store: where every resource lives, with Kubernetes semantics.
 *
 * One interface, several back ends: in memory (tests), the embedded durable
 * API server, and a real cluster through `@kubernetes/client-node`. Writes
 * carry `metadata.resourceVersion` for optimistic concurrency: an update
 * whose version is not the stored one fails with a `Conflict` StoreError,
 * and the caller re-reads and retries.
 *
 * @example
 * const net = await store.get<Network>("Network", "backend");
 * net.status = { ...net.status, id: 7 };
 * await store.updateStatus(net);   // StoreError{reason:"Conflict"} if someone wrote first
 */
import type { Resource } from "../resources/types.ts";

/** Why a store call failed, as Kubernetes names it, with the HTTP status it maps to. */
export type StoreErrorReason = "NotFound" | "AlreadyExists" | "Conflict" | "Gone" | "Invalid" | "Unavailable";

const HTTP_STATUS: Record<StoreErrorReason, number> = {
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  Invalid: 422,
  Unavailable: 503,
};

export class StoreError extends Error {
  readonly reason: StoreErrorReason;
  readonly status: number;
  constructor(reason: StoreErrorReason, message: string) {
    super(message);
    this.name = "StoreError";
    this.reason = reason;
    this.status = HTTP_STATUS[reason];
  }
}

/** True when `e` is a StoreError of the given reason. */
export function isStoreError(e: unknown, reason?: StoreErrorReason): e is StoreError {
  return e instanceof StoreError && (reason === undefined || e.reason === reason);
}

export interface ListOptions {
  /** Only objects in this namespace (namespaced kinds). */
  namespace?: string;
  /** Kubernetes label selector text: `team=a,tier in (web,api),!legacy`. Equality form only in memory. */
  labelSelector?: string;
  /** Kubernetes field selector text: `spec.nodeName=node-1,metadata.name!=x` (equality on dotted paths). */
  fieldSelector?: string;
}

export interface ListResult<T> {
  items: T[];
  /** The store's version at the time of the list: watch from here to miss nothing. */
  resourceVersion: string;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";

export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
}

export interface WatchOptions {
  namespace?: string;
  /** Deliver changes after this version. Too old: the watch ends with a `Gone` error. */
  resourceVersion?: string;
  /** Only objects with these labels (see ListOptions); stores that cannot filter deliver all. */
  labelSelector?: string;
  /** Only objects whose fields match (see ListOptions); stores that cannot filter deliver all. */
  fieldSelector?: string;
}

/** A running watch. */
export interface Watch {
  stop(): void;
  /** Settles when the watch ends: resolves on stop, rejects on error (e.g. `Gone`). */
  done: Promise<void>;
}

/** A JSON merge patch (RFC 7386). */
export type MergePatch = Record<string, unknown>;

export interface Store {
  get<T extends Resource>(kind: string, name: string, namespace?: string): Promise<T | undefined>;
  list<T extends Resource>(kind: string, options?: ListOptions): Promise<ListResult<T>>;
  watch<T extends Resource>(kind: string, options: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Watch;
  /** Fails with `AlreadyExists` when the name is taken. */
  create<T extends Resource>(obj: T): Promise<T>;
  /** Replaces spec and metadata; `Conflict` when resourceVersion is stale. Status is left as stored. */
  update<T extends Resource>(obj: T): Promise<T>;
  /** Replaces status only; `Conflict` when resourceVersion is stale. */
  updateStatus<T extends Resource>(obj: T): Promise<T>;
  /** Applies a merge patch; with `resourceVersion` in the patch's metadata, a stale one is a `Conflict`. */
  patch<T extends Resource>(kind: string, name: string, namespace: string | undefined, patch: MergePatch): Promise<T>;
  /** `NotFound` when absent; with `resourceVersion`, a stale one is a `Conflict`. */
  delete(kind: string, name: string, namespace?: string, options?: { resourceVersion?: string }): Promise<void>;
}

/**
 * Runs `fn` until it succeeds without a `Conflict`, re-reading through `fn`
 * each time, with exponential backoff and jitter.
 *
 * @example
 * await retryOnConflict(async () => {
 *   const a = await store.get<Allocation>("Allocation", "backend.node-1");
 *   a!.spec!.blocks.push({ prefix: "10.40.7.0/24" });
 *   return store.update(a!);
 * });
 */
export async function retryOnConflict<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  let delay = 1;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!isStoreError(e, "Conflict") || i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * delay));
      delay = Math.min(delay * 2, 200);
    }
  }
}

/** Applies an RFC 7386 JSON merge patch to a copy of `target`. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = target !== null && typeof target === "object" && !Array.isArray(target)
    ? { ...(target as Record<string, unknown>) }
    : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Tells whether an object matches a field selector. */
export type FieldMatcher = (obj: unknown) => boolean;

/**
 * Parses field selector text, as the API server does from `?fieldSelector=`:
 * comma-separated `path=value`, `path==value` or `path!=value` terms on
 * dotted paths; a missing field reads as "". An unparsable term is an
 * `Invalid` StoreError naming it.
 *
 * @example
 * const onNode = parseFieldSelector("spec.nodeName=node-1");
 * onNode({ spec: { nodeName: "node-1" } }); // true
 */
export function parseFieldSelector(text: string | undefined | null): FieldMatcher {
  if (!text) return () => true;
  const tests: FieldMatcher[] = text.split(",").map((t) => t.trim()).filter((t) => t !== "").map((term) => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new StoreError("Invalid", `Invalid field selector term "${term}": expected path=value or path!=value`);
    const [, path, op, value] = m;
    return op === "!=" ? (o) => fieldValue(o, path) !== value : (o) => fieldValue(o, path) === value;
  });
  return (obj) => tests.every((t) => t(obj));
}

function fieldValue(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return "";
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? "" : String(cur);
}

/** Matches an equality-based label selector (`a=b,c!=d,e,!f`) against labels. */
export function matchesLabelSelectorText(selector: string | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  for (const raw of selector.split(",")) {
    const term = raw.trim();
    if (!term) continue;
    let m: RegExpExecArray | null;
    if ((m = /^([^!=\s]+)\s*!=\s*(\S*)$/.exec(term))) {
      if (l[m[1]] === m[2]) return false;
    } else if ((m = /^([^!=\s]+)\s*==?\s*(\S*)$/.exec(term))) {
      if (l[m[1]] !== m[2]) return false;
    } else if ((m = /^!\s*(\S+)$/.exec(term))) {
      if (m[1] in l) return false;
    } else if (!(term in l)) {
      return false;
    }
  }
  return true;
}
