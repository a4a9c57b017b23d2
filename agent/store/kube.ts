/**
 * The Store interface on `@kubernetes/client-node`: the kinds of a named
 * group through `CustomObjectsApi`, whose calls are plain REST on
 * group/version/plural (the lace-cni kinds in `lace-cni.io/v1alpha1`, and
 * EndpointSlice in `discovery.k8s.io/v1`, as plain JSON), Namespace, Node,
 * Pod, Service and Event through `CoreV1Api`, watches through client-node's
 * `Watch`.
 * The same code talks to a real API server and to the embedded one.
 *
 * Errors come back as StoreErrors: 404 NotFound, 409 AlreadyExists or
 * Conflict (from the `Status` reason), 410 Gone, 400/422 Invalid, anything
 * unreachable Unavailable.
 *
 * @example
 * const store = new KubeStore(loadKubeConfig({ path: "~/.kube/config" }));
 * const nets = await store.list<Network>("Network");
 * await store.modify<Network>("Network", "backend", undefined, (n) => { n.metadata.labels = { team: "a" }; });
 */
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch as KubeWatch,
} from "@kubernetes/client-node";
import {
  isStoreError,
  type ListOptions,
  type ListResult,
  type MergePatch,
  type Resource,
  retryOnConflict,
  type Store,
  StoreError,
  type StoreErrorReason,
  type Watch,
  type WatchEvent,
  type WatchOptions,
} from "../../core/mod.ts";
import { apiVersionOf, kindInfo, type KindInfo } from "./kinds.ts";

type AnyApi = Record<string, (param: Record<string, unknown>, options?: unknown) => Promise<unknown>>;

const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** Maps a client-node failure (ApiException, watch error, fetch error) to a StoreError. */
export function toStoreError(e: unknown, what: string): StoreError {
  if (isStoreError(e)) return e;
  const code = e instanceof ApiException ? e.code : (e as { statusCode?: number; code?: unknown })?.statusCode;
  let body = e instanceof ApiException ? e.body : undefined;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      // not a Status: keep the text
    }
  }
  const status = body && typeof body === "object" ? body as { reason?: string; message?: string } : undefined;
  const detail = status?.message ?? (typeof body === "string" && body ? body : (e as Error)?.message ?? String(e));
  let reason: StoreErrorReason;
  switch (code) {
    case 404:
      reason = "NotFound";
      break;
    case 409:
      reason = status?.reason === "AlreadyExists" ? "AlreadyExists" : "Conflict";
      break;
    case 410:
      reason = "Gone";
      break;
    case 400:
    case 422:
      reason = "Invalid";
      break;
    default:
      reason = "Unavailable";
  }
  return new StoreError(reason, `${what}: ${detail}`);
}

function plain<T>(o: unknown, info: KindInfo): T {
  // CoreV1Api hands back model classes with Date fields; the store deals in plain JSON.
  const out = JSON.parse(JSON.stringify(o)) as Resource;
  out.apiVersion ??= apiVersionOf(info);
  out.kind ??= info.kind;
  return out as T;
}

function coreMethod(verb: string, info: KindInfo, namespaced: boolean, suffix = ""): string {
  return `${verb}${namespaced ? "Namespaced" : ""}${info.kind}${suffix}`;
}

export interface KubeStoreOptions {
  /** Ask watches for bookmarks so a quiet kind still advances its resourceVersion. Default true. */
  bookmarks?: boolean;
  /** First delay when a watch must reconnect; doubles up to 30 s. Default 100 ms. */
  reconnectDelayMs?: number;
}

export class KubeStore implements Store {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly bookmarks: boolean;
  private readonly reconnectDelayMs: number;

  constructor(readonly kubeConfig: KubeConfig, options: KubeStoreOptions = {}) {
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.bookmarks = options.bookmarks ?? true;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 100;
  }

  private ref(info: KindInfo, name?: string, namespace?: string): string {
    return `${info.kind}${name ? ` "${namespace && info.namespaced ? namespace + "/" : ""}${name}"` : ""}`;
  }

  private needNamespace(info: KindInfo, name: string, namespace?: string): void {
    if (info.namespaced && !namespace) {
      throw new StoreError("Invalid", `${info.kind} "${name}": metadata.namespace is required for a namespaced kind`);
    }
  }

  /** Calls the CustomObjectsApi or CoreV1Api method for `verb` on the kind. */
  private async call(
    verb: "get" | "list" | "create" | "replace" | "replaceStatus" | "patch" | "patchStatus" | "delete",
    info: KindInfo,
    args: { name?: string; namespace?: string; body?: unknown; labelSelector?: string; fieldSelector?: string },
    options?: unknown,
  ): Promise<unknown> {
    const namespaced = info.namespaced && args.namespace !== undefined;
    if (info.group) {
      const api = this.custom as unknown as AnyApi;
      const base = verb.replace("Status", "");
      const method = `${base}${namespaced ? "Namespaced" : "Cluster"}CustomObject${verb.endsWith("Status") ? "Status" : ""}`;
      return api[method]({ group: info.group, version: info.version, plural: info.plural, ...args }, options);
    }
    const api = this.core as unknown as AnyApi;
    const suffix = verb.endsWith("Status") ? "Status" : "";
    const base = verb.replace("Status", "");
    const coreVerb = base === "get" ? "read" : base;
    if (base === "list" && info.namespaced && !namespaced) {
      return api[`list${info.kind}ForAllNamespaces`]({ labelSelector: args.labelSelector, fieldSelector: args.fieldSelector });
    }
    return api[coreMethod(coreVerb, info, namespaced, suffix)](args, options);
  }

  async get<T extends Resource>(kind: string, name: string, namespace?: string): Promise<T | undefined> {
    const info = kindInfo(kind);
    this.needNamespace(info, name, namespace);
    try {
      return plain<T>(await this.call("get", info, { name, namespace: info.namespaced ? namespace : undefined }), info);
    } catch (e) {
      const err = toStoreError(e, `Get ${this.ref(info, name, namespace)}`);
      if (err.reason === "NotFound") return undefined;
      throw err;
    }
  }

  async list<T extends Resource>(kind: string, options: ListOptions = {}): Promise<ListResult<T>> {
    const info = kindInfo(kind);
    try {
      const list = await this.call("list", info, {
        namespace: info.namespaced ? options.namespace : undefined,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
      }) as { items?: unknown[]; metadata?: { resourceVersion?: string } };
      return {
        items: (list.items ?? []).map((o) => plain<T>(o, info)),
        resourceVersion: list.metadata?.resourceVersion ?? "",
      };
    } catch (e) {
      throw toStoreError(e, `List ${info.kind}`);
    }
  }

  async create<T extends Resource>(obj: T): Promise<T> {
    const info = kindInfo(obj.kind);
    this.needNamespace(info, obj.metadata?.name, obj.metadata?.namespace);
    try {
      const body = { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(info) };
      return plain<T>(await this.call("create", info, { namespace: info.namespaced ? obj.metadata.namespace : undefined, body }), info);
    } catch (e) {
      throw toStoreError(e, `Create ${this.ref(info, obj.metadata?.name, obj.metadata?.namespace)}`);
    }
  }

  private async replace<T extends Resource>(obj: T, verb: "replace" | "replaceStatus"): Promise<T> {
    const info = kindInfo(obj.kind);
    const { name, namespace } = obj.metadata;
    this.needNamespace(info, name, namespace);
    try {
      return plain<T>(await this.call(verb, info, { name, namespace: info.namespaced ? namespace : undefined, body: obj }), info);
    } catch (e) {
      throw toStoreError(e, `${verb === "replace" ? "Update" : "Update status of"} ${this.ref(info, name, namespace)}`);
    }
  }

  update<T extends Resource>(obj: T): Promise<T> {
    return this.replace(obj, "replace");
  }

  updateStatus<T extends Resource>(obj: T): Promise<T> {
    if (!kindInfo(obj.kind).statusSubresource) {
      return Promise.reject(new StoreError("Invalid", `Update status of ${obj.kind} "${obj.metadata?.name}": ${obj.kind} has no status subresource; use update`));
    }
    return this.replace(obj, "replaceStatus");
  }

  async patch<T extends Resource>(kind: string, name: string, namespace: string | undefined, patch: MergePatch): Promise<T> {
    return this.patchAs<T>(kind, name, namespace, patch, "patch");
  }

  /** A merge patch of the status subresource. */
  patchStatus<T extends Resource>(kind: string, name: string, namespace: string | undefined, patch: MergePatch): Promise<T> {
    if (!kindInfo(kind).statusSubresource) {
      return Promise.reject(new StoreError("Invalid", `Patch status of ${kind} "${name}": ${kind} has no status subresource; use patch`));
    }
    return this.patchAs<T>(kind, name, namespace, patch, "patchStatus");
  }

  private async patchAs<T extends Resource>(
    kind: string,
    name: string,
    namespace: string | undefined,
    patch: MergePatch,
    verb: "patch" | "patchStatus",
  ): Promise<T> {
    const info = kindInfo(kind);
    this.needNamespace(info, name, namespace);
    try {
      return plain<T>(await this.call(verb, info, { name, namespace: info.namespaced ? namespace : undefined, body: patch }, MERGE_PATCH), info);
    } catch (e) {
      throw toStoreError(e, `Patch ${this.ref(info, name, namespace)}`);
    }
  }

  async delete(kind: string, name: string, namespace?: string, options: { resourceVersion?: string } = {}): Promise<void> {
    const info = kindInfo(kind);
    this.needNamespace(info, name, namespace);
    try {
      const body = options.resourceVersion ? { preconditions: { resourceVersion: options.resourceVersion } } : undefined;
      await this.call("delete", info, { name, namespace: info.namespaced ? namespace : undefined, body });
    } catch (e) {
      throw toStoreError(e, `Delete ${this.ref(info, name, namespace)}`);
    }
  }

  /**
   * Read-modify-write with conflict retries: reads the object, lets `mutate`
   * change it (or return a replacement), writes it back with the read
   * resourceVersion, and on a Conflict starts over with backoff.
   * `status: true` writes through the status subresource.
   */
  modify<T extends Resource>(
    kind: string,
    name: string,
    namespace: string | undefined,
    mutate: (obj: T) => T | void | Promise<T | void>,
    options: { status?: boolean; attempts?: number } = {},
  ): Promise<T> {
    return retryOnConflict(async () => {
      const cur = await this.get<T>(kind, name, namespace);
      if (!cur) throw new StoreError("NotFound", `Modify ${this.ref(kindInfo(kind), name, namespace)}: not found`);
      const next = (await mutate(cur)) ?? cur;
      return options.status ? this.updateStatus(next) : this.update(next);
    }, options.attempts ?? 20);
  }

  /** The REST path of a kind's collection: what a watch or informer reads. */
  collectionPath(kind: string, namespace?: string): string {
    const info = kindInfo(kind);
    const base = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
    return info.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${info.plural}` : `${base}/${info.plural}`;
  }

  /**
   * Watches changes after `resourceVersion` (unset: after a fresh list).
   * When the server ends the stream, the watch resumes from the last version
   * it saw (bookmarks included); `done` rejects with `Gone` when that
   * version is too old, and with `Unavailable` after the server stays
   * unreachable through the reconnect backoff.
   */
  watch<T extends Resource>(kind: string, options: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Watch {
    const info = kindInfo(kind);
    const path = this.collectionPath(kind, options.namespace);
    const kw = new KubeWatch(this.kubeConfig);
    let stopped = false;
    let controller: AbortController | undefined;
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    // A caller that never awaits `done` must not crash the process on a rejection.
    done.catch(() => {});
    let rv = options.resourceVersion;
    let failures = 0;

    const finish = (err?: unknown) => {
      if (stopped) return;
      stopped = true;
      controller?.abort();
      if (err) settle.reject(err);
      else settle.resolve();
    };

    const connect = async (): Promise<void> => {
      if (stopped) return;
      try {
        if (rv === undefined || rv === "") rv = (await this.list(kind, { namespace: options.namespace, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector })).resourceVersion;
      } catch (e) {
        return retry(e);
      }
      let ended = false;
      let heard = false;
      let failure: unknown;
      const query: Record<string, string | number | boolean | undefined> = { resourceVersion: rv };
      if (this.bookmarks) query.allowWatchBookmarks = true;
      if (options.labelSelector) query.labelSelector = options.labelSelector;
      if (options.fieldSelector) query.fieldSelector = options.fieldSelector;
      const c = await kw.watch(path, query, (type: string, obj: Record<string, unknown>) => {
        if (stopped || ended) return;
        failures = 0;
        heard = true;
        if (type === "ERROR") {
          const status = obj as { code?: number; reason?: string; message?: string };
          const reason: StoreErrorReason = status.code === 410 ? "Gone" : status.code === 404 ? "NotFound" : "Unavailable";
          failure = new StoreError(reason, status.message ?? `Watch of ${info.kind} from resourceVersion ${rv}: ${status.reason}`);
          ended = true;
          return;
        }
        const object = plain<T>(obj, info);
        const v = object.metadata?.resourceVersion;
        if (v) rv = v;
        onEvent({ type: type as WatchEvent<T>["type"], object });
      }, (err: unknown) => {
        if (stopped) return;
        ended = true;
        if (failure) return finish(failure);
        if (err && (err as { name?: string }).name !== "AbortError") {
          const e = toStoreError(err, `Watch of ${info.kind}`);
          if (e.reason === "Gone" || e.reason === "NotFound" || e.reason === "Invalid") return finish(e);
          return retry(e);
        }
        // The server closed the stream (timeout, restart): pick up where we were,
        // at once if it had been talking, after a pause if it hangs up straight away.
        if (heard) queueMicrotask(() => void connect());
        else setTimeout(() => void connect(), this.reconnectDelayMs);
      });
      controller = c;
      if (stopped) c.abort();
    };

    const retry = (e: unknown) => {
      if (stopped) return;
      failures++;
      if (failures > 8) return finish(toStoreError(e, `Watch of ${info.kind}`));
      const delay = Math.min(this.reconnectDelayMs * 2 ** (failures - 1), 30_000);
      setTimeout(() => void connect(), delay * (0.5 + Math.random() / 2));
    };

    void connect();
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        controller?.abort();
        settle.resolve();
      },
      done,
    };
  }
}
