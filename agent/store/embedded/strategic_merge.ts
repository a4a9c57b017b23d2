/**
 * Strategic merge patch (`application/strategic-merge-patch+json`), what
 * `kubectl apply`, `edit` and `label` send for the core kinds the embedded
 * store serves (Pod, Service, Node, Namespace, Event, EndpointSlice). Lists that Kubernetes
 * declares with a patch merge key are merged element by element (Pod
 * containers by `name`, ports by `containerPort`, env by `name`, Service
 * ports by `port`, ...); other lists are replaced; maps merge, `null`
 * deletes. The directives `$patch` (merge, replace, delete),
 * `$retainKeys`, `$setElementOrder/<list>` and
 * `$deleteFromPrimitiveList/<list>` are honoured and never stored.
 *
 * The lace-cni kinds are custom resources: like a real API server, the
 * embedded one refuses a strategic merge patch for them with 415 (kubectl
 * then sends a JSON merge patch), so this module only knows core kinds.
 *
 * @example
 * strategicMergePatch("Pod", pod, {
 *   spec: { $setElementOrder/containers: [{ name: "a" }, { name: "b" }], containers: [{ name: "b", image: "b:2" }] },
 * }); // container "a" kept, container "b" now runs b:2
 */
import { describe } from "../../../core/ip/mod.ts";
import { StoreError } from "../../../core/mod.ts";

/** How a list is patched: merged by a key, merged as a set of primitives, or (absent) replaced. */
type ListMeta = { mergeKey: string } | { primitiveSet: true };

const CONTAINER_LISTS: Record<string, ListMeta> = {
  "": { mergeKey: "name" },
  ports: { mergeKey: "containerPort" },
  env: { mergeKey: "name" },
  volumeMounts: { mergeKey: "mountPath" },
  volumeDevices: { mergeKey: "devicePath" },
};

function containerLists(base: string): Record<string, ListMeta> {
  const out: Record<string, ListMeta> = {};
  for (const [field, meta] of Object.entries(CONTAINER_LISTS)) out[field ? `${base}[].${field}` : base] = meta;
  return out;
}

const METADATA: Record<string, ListMeta> = {
  "metadata.finalizers": { primitiveSet: true },
  "metadata.ownerReferences": { mergeKey: "uid" },
};

/** The patch strategy of each list of each core kind, by path (`[]` steps into list items), from the Kubernetes API types. */
const LISTS: Record<string, Record<string, ListMeta>> = {
  Pod: {
    ...METADATA,
    ...containerLists("spec.containers"),
    ...containerLists("spec.initContainers"),
    ...containerLists("spec.ephemeralContainers"),
    "spec.volumes": { mergeKey: "name" },
    "spec.imagePullSecrets": { mergeKey: "name" },
    "spec.hostAliases": { mergeKey: "ip" },
    "spec.topologySpreadConstraints": { mergeKey: "topologyKey" },
    "spec.resourceClaims": { mergeKey: "name" },
    "spec.schedulingGates": { mergeKey: "name" },
    "status.conditions": { mergeKey: "type" },
    "status.podIPs": { mergeKey: "ip" },
    "status.hostIPs": { mergeKey: "ip" },
  },
  Service: { ...METADATA, "spec.ports": { mergeKey: "port" } },
  Node: {
    ...METADATA,
    "spec.podCIDRs": { primitiveSet: true },
    "status.addresses": { mergeKey: "type" },
    "status.conditions": { mergeKey: "type" },
  },
  Namespace: { ...METADATA, "status.conditions": { mergeKey: "type" } },
  Event: { ...METADATA },
  // Its endpoints and ports are atomic lists in the API types: replaced whole.
  EndpointSlice: { ...METADATA },
};

/** The kinds this module can patch (the core ones the store serves). */
export function supportsStrategicMerge(kind: string): boolean {
  return kind in LISTS;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function invalid(message: string): StoreError {
  return new StoreError("Invalid", `Strategic merge patch: ${message}`);
}

class Patcher {
  constructor(private readonly lists: Record<string, ListMeta>) {}

  /** Merges `patch` into `original` (a map) at `path`; undefined means "delete this map". */
  map(original: Obj | undefined, patch: Obj, path: string): Obj | undefined {
    const directive = patch.$patch;
    if (directive !== undefined) {
      if (directive === "delete") return undefined;
      if (directive === "replace") {
        const { $patch: _, ...rest } = patch;
        return this.map(undefined, rest, path);
      }
      if (directive !== "merge") throw invalid(`${path || "the object"}: $patch must be merge, replace or delete, got ${describe(directive)}`);
    }
    const out: Obj = structuredClone(original ?? {});
    const orders: Record<string, unknown> = {};
    const deletions: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(patch)) {
      if (key === "$patch" || key === "$retainKeys") continue;
      if (key.startsWith("$setElementOrder/")) {
        orders[key.slice("$setElementOrder/".length)] = value;
        continue;
      }
      if (key.startsWith("$deleteFromPrimitiveList/")) {
        deletions[key.slice("$deleteFromPrimitiveList/".length)] = value;
        continue;
      }
      if (key.startsWith("$")) throw invalid(`${join(path, key)}: unknown directive ${describe(key)}`);
      const at = join(path, key);
      if (value === null) {
        delete out[key];
      } else if (isObj(value)) {
        const merged = this.map(isObj(out[key]) ? out[key] as Obj : undefined, value, at);
        if (merged === undefined) delete out[key];
        else out[key] = merged;
      } else if (Array.isArray(value)) {
        out[key] = this.list(out[key], value, at);
      } else {
        out[key] = value;
      }
    }
    for (const [field, values] of Object.entries(deletions)) {
      if (!Array.isArray(values)) throw invalid(`${join(path, "$deleteFromPrimitiveList/" + field)}: expected a list, got ${describe(values)}`);
      if (Array.isArray(out[field])) {
        out[field] = (out[field] as unknown[]).filter((v) => !values.some((d) => d === v));
      }
    }
    for (const [field, order] of Object.entries(orders)) {
      if (!Array.isArray(order)) throw invalid(`${join(path, "$setElementOrder/" + field)}: expected a list, got ${describe(order)}`);
      if (Array.isArray(out[field])) out[field] = this.ordered(out[field] as unknown[], order, join(path, field), original?.[field]);
    }
    const retain = patch.$retainKeys;
    if (retain !== undefined) {
      if (!Array.isArray(retain) || retain.some((k) => typeof k !== "string")) {
        throw invalid(`${join(path, "$retainKeys")}: expected a list of field names, got ${describe(retain)}`);
      }
      for (const key of Object.keys(out)) if (!retain.includes(key)) delete out[key];
    }
    return out;
  }

  private keyOf(item: unknown, mergeKey: string, path: string): unknown {
    if (!isObj(item) || item[mergeKey] === undefined) {
      throw invalid(`${path}: every item needs its merge key "${mergeKey}", got ${describe(item)}`);
    }
    return item[mergeKey];
  }

  list(original: unknown, patch: unknown[], path: string): unknown[] {
    const meta = this.lists[listPath(path)];
    const base = Array.isArray(original) ? original : [];
    if (!meta) {
      // A list without a patch strategy is replaced; its new items may still carry directives.
      return patch.map((item, i) => (isObj(item) ? this.map(undefined, item, `${path}[${i}]`) ?? {} : item));
    }
    if ("primitiveSet" in meta) {
      const out = [...base];
      for (const v of patch) if (!out.some((o) => o === v)) out.push(v);
      return out;
    }
    const { mergeKey } = meta;
    if (patch.some((item) => isObj(item) && item.$patch === "replace" && item[mergeKey] === undefined)) {
      const rest = patch.filter((item) => !(isObj(item) && item.$patch === "replace" && item[mergeKey] === undefined));
      return rest.map((item, i) => this.map(undefined, item as Obj, `${path}[${i}]`) ?? {});
    }
    const out = structuredClone(base);
    for (const item of patch) {
      const key = this.keyOf(item, mergeKey, path);
      const i = out.findIndex((o) => isObj(o) && o[mergeKey] === key);
      const at = `${path}[${mergeKey}=${String(key)}]`;
      if ((item as Obj).$patch === "delete") {
        if (i >= 0) out.splice(i, 1);
        continue;
      }
      const merged = this.map(i >= 0 ? out[i] as Obj : undefined, item as Obj, at);
      if (i >= 0) {
        if (merged === undefined) out.splice(i, 1);
        else out[i] = merged;
      } else if (merged !== undefined) {
        out.push(merged);
      }
    }
    return out;
  }

  /**
   * Orders a merged list by `$setElementOrder`: the listed items in that
   * order, the items only the server had kept at their old relative place.
   */
  private ordered(merged: unknown[], order: unknown[], path: string, original: unknown): unknown[] {
    const meta = this.lists[listPath(path)];
    const keyOf = (v: unknown) => (meta && "mergeKey" in meta ? (isObj(v) ? v[meta.mergeKey] : v) : v);
    const wanted = order.map(keyOf);
    const listed = wanted.map((k) => merged.find((m) => keyOf(m) === k)).filter((m) => m !== undefined);
    const serverOnly = merged.filter((m) => !wanted.includes(keyOf(m)));
    const before = Array.isArray(original) ? original.map(keyOf) : [];
    const out: unknown[] = [];
    let a = 0;
    let b = 0;
    while (a < listed.length || b < serverOnly.length) {
      if (a === listed.length) out.push(serverOnly[b++]);
      else if (b === serverOnly.length) out.push(listed[a++]);
      else {
        const ia = before.indexOf(keyOf(listed[a]));
        const ib = before.indexOf(keyOf(serverOnly[b]));
        if (ia >= 0 && ib < ia) out.push(serverOnly[b++]);
        else out.push(listed[a++]);
      }
    }
    return out;
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** `spec.containers[name=a].ports` → `spec.containers[].ports`: the key of {@link LISTS}. */
function listPath(path: string): string {
  return path.replace(/\[[^\]]*\]/g, "[]");
}

/**
 * Applies a strategic merge patch to a copy of `original`, a `kind` object.
 * Throws an `Invalid` StoreError for a malformed patch or a kind without
 * patch strategies (check {@link supportsStrategicMerge} first).
 */
export function strategicMergePatch(kind: string, original: unknown, patch: unknown): unknown {
  const lists = LISTS[kind];
  if (!lists) throw invalid(`${kind} has no patch strategies: expected one of ${Object.keys(LISTS).join(", ")}`);
  if (!isObj(patch)) throw invalid(`expected a JSON object, got ${describe(patch)}`);
  return new Patcher(lists).map(isObj(original) ? original : undefined, patch, "") ?? {};
}
