/**
 * Server-side apply (`PATCH` with `application/apply-patch+yaml`), with
 * field managers kept in `metadata.managedFields` as a real API server
 * does:
 *
 * - each apply records the fields its configuration sets, under its
 *   `fieldManager` (operation `Apply`, `fieldsV1` format);
 * - a field the same manager applied before and no longer lists is removed
 *   from the object, unless another apply manager also owns it;
 * - setting a field another apply manager owns to a different value is a
 *   409 conflict naming the manager and the field, unless `force=true`
 *   (then the field changes hands).
 *
 * - other writes (POST, PUT, PATCH) are recorded too ({@link recordUpdate},
 *   operation `Update`): the writer owns the fields it changed, and they
 *   leave their earlier managers, so an applier neither removes them nor
 *   changes them without a conflict.
 *
 * Simplification, documented in docs/store.md: lists are atomic (one
 * field, owned and replaced whole, where Kubernetes merges some lists by
 * key).
 *
 * @example
 * const next = serverSideApply(current, config, { manager: "kubectl", force: false, now: new Date() });
 */
import { type Resource, StoreError } from "../../../core/mod.ts";

/** A field path: map keys from the root, lists being leaves. */
type FieldPath = string[];

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
}

type Obj = Record<string, unknown>;
type Meta = Resource["metadata"] & { managedFields?: ManagedFieldsEntry[] };

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The identity and server-owned metadata an apply configuration does not own. */
const SERVER_META = new Set(["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"]);

/** The leaf fields a configuration sets (maps are walked, lists and scalars are leaves). */
export function fieldsOf(config: Obj): FieldPath[] {
  const out: FieldPath[] = [];
  const walk = (v: unknown, path: FieldPath) => {
    if (isObj(v) && Object.keys(v).length > 0) {
      for (const [k, child] of Object.entries(v)) {
        if (path.length === 0 && (k === "apiVersion" || k === "kind")) continue;
        if (path.length === 1 && path[0] === "metadata" && SERVER_META.has(k)) continue;
        walk(child, [...path, k]);
      }
    } else if (path.length > 0) out.push(path);
  };
  walk(config, []);
  return out;
}

const key = (p: FieldPath) => JSON.stringify(p);

/** `fieldsV1` (`{"f:spec": {"f:type": {}}}`) from field paths. */
export function toFieldsV1(paths: FieldPath[]): Obj {
  const root: Obj = {};
  for (const p of paths) {
    let cur = root;
    for (const k of p) cur = (cur[`f:${k}`] ??= {}) as Obj;
  }
  return root;
}

/** Field paths from `fieldsV1`; entries other than `f:` (list keys, values) end the path there. */
export function fromFieldsV1(fields: unknown): FieldPath[] {
  const out: FieldPath[] = [];
  const walk = (v: unknown, path: FieldPath) => {
    const children = isObj(v) ? Object.keys(v).filter((k) => k.startsWith("f:")) : [];
    if (children.length === 0) {
      if (path.length > 0) out.push(path);
      return;
    }
    for (const k of children) walk((v as Obj)[k], [...path, k.slice(2)]);
  };
  walk(fields, []);
  return out;
}

function valueAt(o: unknown, p: FieldPath): unknown {
  let cur = o;
  for (const k of p) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

function removeAt(o: Obj, p: FieldPath): void {
  const parents: Obj[] = [o];
  let cur: unknown = o;
  for (const k of p.slice(0, -1)) {
    if (!isObj(cur)) return;
    cur = cur[k];
    if (!isObj(cur)) return;
    parents.push(cur);
  }
  delete (parents[parents.length - 1])[p[p.length - 1]];
  // Maps emptied by the removal go too, as the API server leaves no `{}` behind a removed field.
  for (let i = parents.length - 1; i > 0; i--) {
    if (Object.keys(parents[i]).length > 0) break;
    delete parents[i - 1][p[i - 1]];
  }
}

/** `config` merged into `base`: maps recursively, lists and scalars replaced. */
function merge(base: unknown, config: unknown): unknown {
  if (!isObj(base) || !isObj(config)) return structuredClone(config);
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(config)) out[k] = merge(base[k], v);
  return out;
}

/** A 409 naming each conflicting manager and field, as kubectl shows it. */
export class ApplyConflictError extends StoreError {
  constructor(readonly conflicts: { manager: string; field: string }[]) {
    const list = conflicts.map((c) => `conflict with "${c.manager}": ${c.field}`);
    super("Conflict", `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}: ${list.join(", ")}`);
  }
}

export interface ApplyOptions {
  manager: string;
  force: boolean;
  now: Date;
  /** `/status` applies are recorded apart from the main resource's. */
  subresource?: "status";
}

/**
 * The object after `config` is applied to `current` (undefined: a create)
 * by `options.manager`, with its `managedFields` updated. Throws
 * {@link ApplyConflictError} on conflicts without `force`.
 */
export function serverSideApply(current: Resource | undefined, config: Resource, options: ApplyOptions): Resource {
  const entries = ((current?.metadata as Meta | undefined)?.managedFields ?? []).filter(isObj) as ManagedFieldsEntry[];
  const subresource = options.subresource;
  const isMine = (e: ManagedFieldsEntry) => e.manager === options.manager && e.operation === "Apply" && e.subresource === subresource;
  const applied = fieldsOf(config as unknown as Obj);
  const appliedKeys = new Set(applied.map(key));

  // Conflicts: a field another manager (applier or updater) owns, set here to a different value.
  const conflicts: { manager: string; field: string }[] = [];
  const others = entries.filter((e) => !isMine(e)).map((e) => ({ entry: e, fields: fromFieldsV1(e.fieldsV1) }));
  for (const o of others) {
    for (const f of o.fields) {
      if (!appliedKeys.has(key(f))) continue;
      if (JSON.stringify(valueAt(current, f)) === JSON.stringify(valueAt(config, f))) continue;
      if (options.force) o.fields = o.fields.filter((x) => key(x) !== key(f));
      else conflicts.push({ manager: o.entry.manager ?? "", field: `.${f.join(".")}` });
    }
  }
  if (conflicts.length > 0) throw new ApplyConflictError(conflicts);

  // Fields this manager applied before and no longer lists, and no other manager owns: removed.
  const base = structuredClone(current ?? ({ apiVersion: config.apiVersion, kind: config.kind, metadata: { name: config.metadata.name } } as Resource));
  const mine = entries.find(isMine);
  const othersOwn = new Set(others.flatMap((o) => o.fields.map(key)));
  for (const f of mine ? fromFieldsV1(mine.fieldsV1) : []) {
    if (!appliedKeys.has(key(f)) && !othersOwn.has(key(f))) removeAt(base as unknown as Obj, f);
  }

  const { metadata: configMeta, ...configRest } = config;
  const next = merge(base, configRest) as Resource;
  const { managedFields: _ignored, ...metaRest } = (configMeta ?? {}) as Meta;
  next.metadata = merge(base.metadata, metaRest) as Meta;
  const time = options.now.toISOString().replace(/\.\d+Z$/, "Z");
  const kept = others.filter((o) => o.fields.length > 0).map((o) => ({ ...o.entry, fieldsV1: toFieldsV1(o.fields) }));
  (next.metadata as Meta).managedFields = [
    ...kept,
    {
      manager: options.manager,
      operation: "Apply",
      apiVersion: config.apiVersion,
      time,
      fieldsType: "FieldsV1",
      fieldsV1: toFieldsV1(applied),
      ...(subresource ? { subresource } : {}),
    },
  ];
  return next;
}

/**
 * Records a write other than apply by `manager` (operation `Update`) in
 * `next.metadata.managedFields`: the fields that changed from `prev` (all
 * of them for a create) become the manager's and leave every other
 * manager; the manager keeps its earlier fields that still exist.
 */
export function recordUpdate(prev: Resource | undefined, next: Resource, manager: string, now: Date, subresource?: "status"): void {
  const sent = (next.metadata as Meta).managedFields;
  // A client that sends no managedFields keeps the stored ones, as on a real API server.
  const entries = ((Array.isArray(sent) && sent.length > 0 ? sent : (prev?.metadata as Meta | undefined)?.managedFields) ?? [])
    .filter(isObj) as ManagedFieldsEntry[];
  const all = new Map<string, FieldPath>();
  for (const f of [...(prev ? fieldsOf(prev as unknown as Obj) : []), ...fieldsOf(next as unknown as Obj)]) all.set(key(f), f);
  const changed = new Set([...all].filter(([, f]) => JSON.stringify(valueAt(prev, f)) !== JSON.stringify(valueAt(next, f))).map(([k]) => k));
  const isMine = (e: ManagedFieldsEntry) => e.manager === manager && e.operation === "Update" && e.subresource === subresource;
  const exists = (f: FieldPath) => valueAt(next, f) !== undefined;
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    if (isMine(e)) continue;
    const fields = fromFieldsV1(e.fieldsV1).filter((f) => !changed.has(key(f)));
    if (fields.length > 0) out.push({ ...e, fieldsV1: toFieldsV1(fields) });
  }
  const mine = entries.find(isMine);
  const owned = new Map<string, FieldPath>();
  for (const f of mine ? fromFieldsV1(mine.fieldsV1) : []) if (exists(f)) owned.set(key(f), f);
  for (const k of changed) if (exists(all.get(k)!)) owned.set(k, all.get(k)!);
  if (owned.size > 0) {
    out.push({
      manager,
      operation: "Update",
      apiVersion: next.apiVersion,
      time: now.toISOString().replace(/\.\d+Z$/, "Z"),
      fieldsType: "FieldsV1",
      fieldsV1: toFieldsV1([...owned.values()]),
      ...(subresource ? { subresource } : {}),
    });
  }
  if (out.length > 0) (next.metadata as Meta).managedFields = out;
  else delete (next.metadata as Meta).managedFields;
}
