/**
 * An informer: a local cache of one kind kept current by list + watch,
 * with handlers for add / update / delete, periodic resync, and a relist
 * whenever the watch cannot resume (410 Gone) or the server goes away.
 * It works over any Store; over KubeStore the watch asks for bookmarks, so
 * a quiet kind still advances its version and a reconnect rarely needs a relist.
 *
 * client-node's own `makeInformer`/`ListWatch` is not used: it has no
 * resync, does not ask for bookmarks, and stops for good on the first
 * non-410 error, where an agent must back off and keep going.
 *
 * @example
 * const pods = new Informer<Pod>(store, "Pod", { namespace: "team-a", resyncMs: 60_000 });
 * pods.on("add", (p) => console.log("new pod", p.metadata.name));
 * await pods.start();           // resolves after the first list
 * pods.get("web-0", "team-a");  // from the cache
 */
import { type FieldMatcher, isStoreError, parseFieldSelector, type Resource, type Store, type Watch, type WatchOptions } from "../../core/mod.ts";
import { type LabelMatcher, parseLabelSelector } from "./embedded/selector.ts";

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  /** Only objects whose fields match, e.g. `spec.nodeName=node-1`. */
  fieldSelector?: string;
  /** Re-deliver every cached object as an `update` this often (0: never). Default 0. */
  resyncMs?: number;
  /** First delay after an error before relisting; doubles up to 30 s. Default 200 ms. */
  backoffMs?: number;
}

export interface InformerHandlers<T> {
  add: (obj: T) => void;
  /** `old` is the cached version; equal to `obj` on a resync. */
  update: (obj: T, old: T) => void;
  delete: (obj: T) => void;
  /** A list or watch failed; the informer backs off and relists. */
  error: (err: unknown) => void;
  /** A list finished and the cache is complete. */
  synced: (resourceVersion: string) => void;
}

type HandlerMap<T> = { [K in keyof InformerHandlers<T>]: InformerHandlers<T>[K][] };

const key = (o: Resource) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;

export class Informer<T extends Resource> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: HandlerMap<T> = { add: [], update: [], delete: [], error: [], synced: [] };
  private watch?: Watch;
  private running = false;
  private resyncTimer?: ReturnType<typeof setInterval>;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private failures = 0;
  private version = "";
  /** How many lists have been made (the first one included). */
  lists = 0;

  private readonly matches: LabelMatcher;
  private readonly fields: FieldMatcher;

  constructor(private readonly store: Store, readonly kind: string, private readonly options: InformerOptions = {}) {
    this.matches = parseLabelSelector(options.labelSelector);
    this.fields = parseFieldSelector(options.fieldSelector);
  }

  on<K extends keyof InformerHandlers<T>>(event: K, handler: InformerHandlers<T>[K]): this {
    this.handlers[event].push(handler);
    return this;
  }

  /** The cached object, if any. */
  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(`${namespace ?? ""}/${name}`);
  }

  /** Every cached object. */
  list(): T[] {
    return [...this.cache.values()];
  }

  /** The last version the cache reflects. */
  get resourceVersion(): string {
    return this.version;
  }

  /** Starts; resolves after the first successful list (retrying until then). */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    const first = new Promise<void>((resolve) => {
      const once = () => {
        this.handlers.synced.splice(this.handlers.synced.indexOf(once), 1);
        resolve();
      };
      this.handlers.synced.push(once);
    });
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => {
        for (const o of this.cache.values()) this.emit("update", o, o);
      }, this.options.resyncMs);
    }
    void this.relist();
    return first;
  }

  stop(): void {
    this.running = false;
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    this.watch?.stop();
    this.watch = undefined;
  }

  private emit<K extends keyof InformerHandlers<T>>(event: K, ...args: Parameters<InformerHandlers<T>[K]>): void {
    for (const h of [...this.handlers[event]]) {
      try {
        (h as (...a: unknown[]) => void)(...args);
      } catch (e) {
        if (event !== "error") this.emit("error", e);
      }
    }
  }

  private async relist(): Promise<void> {
    if (!this.running) return;
    this.watch?.stop();
    let listed;
    try {
      this.lists++;
      listed = await this.store.list<T>(this.kind, { namespace: this.options.namespace, labelSelector: this.options.labelSelector, fieldSelector: this.options.fieldSelector });
    } catch (e) {
      return this.backoff(e);
    }
    if (!this.running) return;
    // Objects that vanished while we were not watching are deletions.
    const seen = new Set<string>();
    for (const o of listed.items) {
      const k = key(o);
      seen.add(k);
      const old = this.cache.get(k);
      this.cache.set(k, o);
      if (!old) this.emit("add", o);
      else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.emit("update", o, old);
    }
    for (const [k, old] of [...this.cache]) {
      if (!seen.has(k)) {
        this.cache.delete(k);
        this.emit("delete", old);
      }
    }
    this.version = listed.resourceVersion;
    this.failures = 0;
    this.emit("synced", listed.resourceVersion);
    this.startWatch();
  }

  private startWatch(): void {
    // Stores that cannot filter a watch (MemoryStore) ignore the selectors; the check below covers them.
    const options: WatchOptions = {
      namespace: this.options.namespace,
      resourceVersion: this.version,
      labelSelector: this.options.labelSelector,
      fieldSelector: this.options.fieldSelector,
    };
    const w = this.store.watch<T>(
      this.kind,
      options,
      (e) => {
        if (this.watch !== w) return;
        const v = e.object.metadata?.resourceVersion;
        if (v) this.version = v;
        if (e.type === "BOOKMARK") return;
        const k = key(e.object);
        const old = this.cache.get(k);
        if (e.type === "DELETED" || !this.matches(e.object.metadata.labels) || !this.fields(e.object)) {
          if (old) {
            this.cache.delete(k);
            this.emit("delete", e.object);
          }
        } else {
          this.cache.set(k, e.object);
          if (old) this.emit("update", e.object, old);
          else this.emit("add", e.object);
        }
      },
    );
    this.watch = w;
    w.done.then(
      () => {
        // A watch that ends on its own (not through stop) is resumed by a relist.
        if (this.watch === w && this.running) void this.relist();
      },
      (e) => {
        if (this.watch !== w || !this.running) return;
        if (isStoreError(e, "Gone")) void this.relist();
        else this.backoff(e);
      },
    );
  }

  private backoff(e: unknown): void {
    if (!this.running) return;
    this.emit("error", e);
    this.failures++;
    const base = this.options.backoffMs ?? 200;
    const delay = Math.min(base * 2 ** (this.failures - 1), 30_000);
    this.retryTimer = setTimeout(() => void this.relist(), delay * (0.5 + Math.random() / 2));
  }
}
