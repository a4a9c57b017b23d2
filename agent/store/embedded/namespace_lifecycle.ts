/**
 * Deleting a Namespace, as a real API server and its namespace controller
 * do: everything in it is deleted (objects with finalizers are marked and
 * go when their finalizers do), and the Namespace itself stays, marked
 * `Terminating` (no new object may be created in it), until it is empty.
 * `default`, `kube-system` and `kube-public` cannot be deleted.
 *
 * The Namespace is held by a finalizer of the store's own
 * ({@link CONTENTS_FINALIZER}) while objects remain; the last object's
 * deletion removes it, and with it the Namespace.
 *
 * @example
 * const lifecycle = namespaceLifecycle(store);
 * lifecycle.delete("team-a"); // the Namespace, marked or gone
 */
import { type Resource, StoreError } from "../../../core/mod.ts";
import { KIND_TABLE } from "../kinds.ts";
import type { SqliteStore } from "./sqlite_store.ts";

/** Holds a terminating Namespace until the objects in it are gone. */
export const CONTENTS_FINALIZER = "lace-cni.io/namespace-contents";

const UNDELETABLE = new Set(["default", "kube-system", "kube-public"]);
const NAMESPACED = KIND_TABLE.filter((k) => k.namespaced).map((k) => k.kind);

export interface NamespaceLifecycle {
  /** Deletes the Namespace `name` and its contents; returns the Namespace as stored after (marked) or as it was (gone). */
  delete(name: string, preconditions?: { resourceVersion?: string; uid?: string }): Resource;
  /** Stops following deletions. */
  close(): void;
}

/** Installs namespace deletion on `store`: call its `delete` for a DELETE of a Namespace. */
export function namespaceLifecycle(store: SqliteStore): NamespaceLifecycle {
  const remaining = (ns: string) => NAMESPACED.reduce((n, kind) => n + store.listSync(kind, { namespace: ns }).items.length, 0);

  /** When a terminating Namespace has become empty, let it go. */
  const release = (ns: string) => {
    const cur = store.getSync("Namespace", ns);
    if (!cur?.metadata.deletionTimestamp || !(cur.metadata.finalizers ?? []).includes(CONTENTS_FINALIZER)) return;
    if (remaining(ns) > 0) return;
    const next = structuredClone(cur);
    next.metadata.finalizers = (cur.metadata.finalizers ?? []).filter((f) => f !== CONTENTS_FINALIZER);
    store.applySync(cur, next);
  };

  // Deletions are announced after they are committed; the release is a write of its own.
  const unsubscribes = NAMESPACED.map((kind) =>
    store.subscribe(kind, {}, (e) => {
      if (e.type === "DELETED" && e.object.metadata.namespace) release(e.object.metadata.namespace);
    })
  );

  return {
    delete(name, preconditions = {}) {
      if (UNDELETABLE.has(name)) {
        throw new StoreError("Invalid", `Namespace "${name}" cannot be deleted: the system needs it (as on a Kubernetes API server)`);
      }
      const cur = store.getSync("Namespace", name);
      if (!cur) throw new StoreError("NotFound", `namespaces "${name}" not found`);
      if (cur.metadata.deletionTimestamp) return cur;
      // Check preconditions before anything inside is touched.
      if (preconditions.resourceVersion && preconditions.resourceVersion !== cur.metadata.resourceVersion) {
        throw new StoreError("Conflict", `Precondition failed for Namespace "${name}": resourceVersion ${preconditions.resourceVersion}, the stored one is ${cur.metadata.resourceVersion}`);
      }
      if (preconditions.uid && preconditions.uid !== cur.metadata.uid) {
        throw new StoreError("Conflict", `Precondition failed for Namespace "${name}": UID in precondition ${preconditions.uid}, UID in object meta ${cur.metadata.uid}`);
      }
      for (const kind of NAMESPACED) {
        for (const o of store.listSync(kind, { namespace: name }).items) store.deleteSync(kind, o.metadata.name, name);
      }
      if (remaining(name) === 0) return store.deleteSync("Namespace", name);
      const held = structuredClone(cur);
      held.metadata.finalizers = [...(cur.metadata.finalizers ?? []), CONTENTS_FINALIZER];
      const withFinalizer = store.applySync(cur, held);
      const terminating = structuredClone(withFinalizer);
      terminating.status = { ...(withFinalizer.status as Record<string, unknown> ?? {}), phase: "Terminating" };
      store.applySync(withFinalizer, terminating, "status");
      return store.deleteSync("Namespace", name);
    },
    close() {
      for (const u of unsubscribes) u();
    },
  };
}
