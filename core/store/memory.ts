/**
 * An in-memory Store with the same semantics as the durable ones:
 * one global resourceVersion counter, optimistic concurrency, watch from a
 * version (replayed from a bounded event log; older than the log is `Gone`).
 *
 * @example
 * const store = new MemoryStore();
 * const created = await store.create(network);
 * created.metadata.resourceVersion; // "1"
 */
import { CLUSTER_SCOPED, type Resource } from "../resources/types.ts";
import {
  type ListOptions,
  type ListResult,
  matchesLabelSelectorText,
  parseFieldSelector,
  type MergePatch,
  mergePatch,
  type Store,
  StoreError,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from "./store.ts";

/** Core kinds without a namespace, besides lace-cni's own cluster-scoped kinds. */
const CORE_CLUSTER_SCOPED = new Set(["Namespace", "Node", "CustomResourceDefinition"]);

/** Whether objects of the kind live in a namespace. */
export function isNamespaced(kind: string): boolean {
  return !CLUSTER_SCOPED.has(kind) && !CORE_CLUSTER_SCOPED.has(kind);
}

interface Subscriber {
  kind: string;
  namespace?: string;
  onEvent: (e: WatchEvent<Resource>) => void;
}

interface LoggedEvent {
  rv: number;
  kind: string;
  event: WatchEvent<Resource>;
}

export class MemoryStore implements Store {
  private rv = 0;
  private readonly objects = new Map<string, Map<string, Resource>>();
  private readonly log: LoggedEvent[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private uidCounter = 0;

  /** @param logSize how many events are kept for watches that start from an old version. */
  constructor(private readonly logSize = 10_000) {}

  /** The current resourceVersion of the whole store. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  private bucket(kind: string): Map<string, Resource> {
    let b = this.objects.get(kind);
    if (!b) {
      b = new Map();
      this.objects.set(kind, b);
    }
    return b;
  }

  private key(kind: string, name: string, namespace?: string): string {
    if (isNamespaced(kind)) {
      if (!namespace) throw new StoreError("Invalid", `${kind}/${name}: a ${kind} needs metadata.namespace`);
      return `${namespace}/${name}`;
    }
    return name;
  }

  get<T extends Resource>(kind: string, name: string, namespace?: string): Promise<T | undefined> {
    const o = this.bucket(kind).get(this.key(kind, name, namespace));
    return Promise.resolve(o ? (structuredClone(o) as T) : undefined);
  }

  list<T extends Resource>(kind: string, options: ListOptions = {}): Promise<ListResult<T>> {
    const items: T[] = [];
    const fields = parseFieldSelector(options.fieldSelector);
    for (const o of this.bucket(kind).values()) {
      if (options.namespace && o.metadata.namespace !== options.namespace) continue;
      if (!matchesLabelSelectorText(options.labelSelector, o.metadata.labels)) continue;
      if (!fields(o)) continue;
      items.push(structuredClone(o) as T);
    }
    items.sort((a, b) => (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") ||
      a.metadata.name.localeCompare(b.metadata.name));
    return Promise.resolve({ items, resourceVersion: String(this.rv) });
  }

  watch<T extends Resource>(kind: string, options: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Watch {
    let stop!: () => void;
    let fail!: (e: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      stop = resolve;
      fail = reject;
    });
    const sub: Subscriber = { kind, namespace: options.namespace, onEvent: onEvent as Subscriber["onEvent"] };
    const from = options.resourceVersion === undefined || options.resourceVersion === ""
      ? this.rv
      : Number(options.resourceVersion);
    const oldest = this.log.length ? this.log[0].rv - 1 : this.rv;
    if (!Number.isInteger(from) || from < oldest) {
      queueMicrotask(() =>
        fail(new StoreError("Gone", `Watch of ${kind} from resourceVersion ${options.resourceVersion}: too old, the oldest kept is ${oldest}`))
      );
      return { stop: () => {}, done };
    }
    for (const e of this.log) {
      if (e.rv > from && e.kind === kind && this.inScope(sub, e.event.object)) {
        sub.onEvent(structuredClone(e.event));
      }
    }
    this.subscribers.add(sub);
    return {
      stop: () => {
        this.subscribers.delete(sub);
        stop();
      },
      done,
    };
  }

  private inScope(sub: Subscriber, o: Resource): boolean {
    return !sub.namespace || o.metadata.namespace === sub.namespace;
  }

  private emit(kind: string, type: WatchEvent<Resource>["type"], object: Resource): void {
    const event = { type, object: structuredClone(object) };
    this.log.push({ rv: this.rv, kind, event });
    if (this.log.length > this.logSize) this.log.splice(0, this.log.length - this.logSize);
    for (const s of this.subscribers) {
      if (s.kind === kind && this.inScope(s, object)) s.onEvent(structuredClone(event));
    }
  }

  create<T extends Resource>(obj: T): Promise<T> {
    const { kind } = obj;
    const name = obj.metadata?.name;
    if (!name) return Promise.reject(new StoreError("Invalid", `${kind}: metadata.name is required`));
    const key = this.key(kind, name, obj.metadata.namespace);
    const b = this.bucket(kind);
    if (b.has(key)) return Promise.reject(new StoreError("AlreadyExists", `${kind} "${key}" already exists`));
    const stored = structuredClone(obj);
    this.rv++;
    stored.metadata = {
      ...stored.metadata,
      uid: stored.metadata.uid ?? `uid-${++this.uidCounter}-${this.rv}`,
      resourceVersion: String(this.rv),
      generation: 1,
      creationTimestamp: stored.metadata.creationTimestamp ?? new Date().toISOString(),
    };
    if (!isNamespaced(kind)) delete stored.metadata.namespace;
    b.set(key, stored);
    this.emit(kind, "ADDED", stored);
    return Promise.resolve(structuredClone(stored));
  }

  private current(kind: string, name: string, namespace: string | undefined, rv?: string): [string, Resource] {
    const key = this.key(kind, name, namespace);
    const cur = this.bucket(kind).get(key);
    if (!cur) throw new StoreError("NotFound", `${kind} "${key}" not found`);
    if (rv !== undefined && rv !== "" && rv !== cur.metadata.resourceVersion) {
      throw new StoreError(
        "Conflict",
        `${kind} "${key}" was modified: resourceVersion ${rv} is stale, the stored one is ${cur.metadata.resourceVersion}`,
      );
    }
    return [key, cur];
  }

  private write<T extends Resource>(kind: string, key: string, cur: Resource, next: Resource): T {
    this.rv++;
    const specChanged = JSON.stringify(cur.spec) !== JSON.stringify(next.spec);
    next.metadata = {
      ...next.metadata,
      name: cur.metadata.name,
      namespace: cur.metadata.namespace,
      uid: cur.metadata.uid,
      creationTimestamp: cur.metadata.creationTimestamp,
      resourceVersion: String(this.rv),
      generation: (cur.metadata.generation ?? 1) + (specChanged ? 1 : 0),
    };
    if (!isNamespaced(kind)) delete next.metadata.namespace;
    this.bucket(kind).set(key, next);
    this.emit(kind, "MODIFIED", next);
    return structuredClone(next) as T;
  }

  update<T extends Resource>(obj: T): Promise<T> {
    try {
      const [key, cur] = this.current(obj.kind, obj.metadata.name, obj.metadata.namespace, obj.metadata.resourceVersion);
      const next = structuredClone(obj) as Resource;
      if (cur.status === undefined) delete next.status;
      else next.status = structuredClone(cur.status);
      return Promise.resolve(this.write<T>(obj.kind, key, cur, next));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  updateStatus<T extends Resource>(obj: T): Promise<T> {
    try {
      const [key, cur] = this.current(obj.kind, obj.metadata.name, obj.metadata.namespace, obj.metadata.resourceVersion);
      const next = structuredClone(cur);
      next.status = structuredClone(obj.status);
      return Promise.resolve(this.write<T>(obj.kind, key, cur, next));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  patch<T extends Resource>(kind: string, name: string, namespace: string | undefined, patch: MergePatch): Promise<T> {
    try {
      const rv = (patch.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
      const [key, cur] = this.current(kind, name, namespace, rv);
      const next = mergePatch(cur, patch) as Resource;
      next.kind = cur.kind;
      next.apiVersion = cur.apiVersion;
      return Promise.resolve(this.write<T>(kind, key, cur, next));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  delete(kind: string, name: string, namespace?: string, options: { resourceVersion?: string } = {}): Promise<void> {
    try {
      const [key, cur] = this.current(kind, name, namespace, options.resourceVersion);
      this.bucket(kind).delete(key);
      this.rv++;
      const gone = structuredClone(cur);
      gone.metadata.resourceVersion = String(this.rv);
      this.emit(kind, "DELETED", gone);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
