/**
 * Validation of lace-cni resources: every problem, each naming the object,
 * the field path and what was expected versus found.
 *
 * Three layers, all reported together:
 * - structure, by walking the schemas in `schema.ts` (the CRDs carry the same);
 * - semantics per kind, in code (`semantics.ts`); a Network's spec is checked
 *   by the plugin that defines its `type`;
 * - across objects (`validateAll`): duplicate names, overlapping subnets,
 *   references that contradict the referenced object.
 *
 * @example
 * const problems = validateAll(resources, { networkTypes: registry });
 * problems.map(formatProblem);
 * // ["Network/backend: spec.ipv4Subnet.prefix: host bits set in \"10.40.0.1/16\": expected the network address 10.40.0.0/16"]
 */
import { isLaceError } from "../errors.ts";
import { describe } from "../ip/mod.ts";
import type { NetworkTypeDefinition, ProblemReporter } from "../plugin/api.ts";
import { crossObjectProblems } from "./cross.ts";
import { checkLabels, OBJECT_META_SCHEMA } from "./metadata.ts";
import { isWithin, joinPath, type Problem } from "./problem.ts";
import { DNS1123_LABEL, SCHEMAS } from "./schema.ts";
import { checkSchema } from "./schema_check.ts";
import { KIND_CHECKS } from "./semantics.ts";
import { API_VERSION, type Kind, KINDS, refOf } from "./types.ts";

export { formatProblem, type Problem } from "./problem.ts";
import type { ValidationContext } from "./context.ts";

export type { NetworkTypeLookup, ValidationContext } from "./context.ts";

/** Built-in Kubernetes kinds accepted in manifests with a minimal check: their apiVersion, and whether they are namespaced. */
const CORE_KINDS: Readonly<Record<string, { apiVersion: string; namespaced: boolean; nameIsLabel: boolean }>> = {
  Namespace: { apiVersion: "v1", namespaced: false, nameIsLabel: true },
  Node: { apiVersion: "v1", namespaced: false, nameIsLabel: false },
  Pod: { apiVersion: "v1", namespaced: true, nameIsLabel: false },
  Service: { apiVersion: "v1", namespaced: true, nameIsLabel: true },
  EndpointSlice: { apiVersion: "discovery.k8s.io/v1", namespaced: true, nameIsLabel: false },
};

const LACE_KINDS: ReadonlySet<string> = new Set(KINDS);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Collects problems for one object; drops the echoes beneath a field of the wrong type and repeats at one path. */
class Collector {
  private readonly items: { path: string; message: string; wrongType: boolean }[] = [];

  constructor(private readonly object: string) {}

  readonly report = (path: string, message: string, wrongType = false): void => {
    this.items.push({ path, message, wrongType });
  };

  /** A reporter for paths relative to `base` (a plugin's spec-relative paths). */
  under(base: string): ProblemReporter {
    return (path, message) => this.report(path ? (/^[[]/.test(path) ? `${base}${path}` : `${base}.${path}`) : base, message);
  }

  problems(): Problem[] {
    const broken = this.items.filter((i) => i.wrongType).map((i) => i.path);
    const seen = new Set<string>();
    const out: Problem[] = [];
    for (const item of this.items) {
      if (!item.wrongType && broken.some((b) => isWithin(item.path, b))) continue;
      if (seen.has(item.path)) continue;
      seen.add(item.path);
      out.push({ object: this.object, path: item.path, message: item.message });
    }
    return out.sort((a, b) => a.path.localeCompare(b.path, "en", { numeric: true }));
  }
}

function checkNetworkSpec(spec: unknown, ctx: ValidationContext, c: Collector): void {
  if (!isObj(spec)) return;
  const known = ctx.networkTypes.types().slice().sort();
  const list = known.map((t) => `"${t}"`).join(", ");
  const type = spec.type;
  let def: NetworkTypeDefinition | undefined;
  if (type === undefined) {
    c.report("spec.type", `is required: expected one of the known network types ${list}`);
  } else if (typeof type !== "string") {
    c.report("spec.type", `expected one of the known network types ${list}, got ${describe(type)}`, true);
  } else {
    def = ctx.networkTypes.get(type);
    if (!def) c.report("spec.type", `expected one of the known network types ${list}, got ${describe(type)}`);
  }
  if (!def) return;
  try {
    def.validate(spec as never, c.under("spec"));
  } catch (e) {
    // The plugin registry wraps hooks so the error already names the plugin; a bare definition still gets a precise line.
    const message = e instanceof Error ? e.message : String(e);
    c.report("spec", isLaceError(e) ? message : `network type "${def.type}" failed in hook "validate": ${message}`);
  }
}

function checkMetadata(obj: Record<string, unknown>, kind: string, namespaced: boolean, nameIsLabel: boolean, c: Collector): void {
  const meta = obj.metadata;
  if (meta === undefined) {
    c.report("metadata", "is required (expected an object with at least name)");
    return;
  }
  checkSchema(meta, OBJECT_META_SCHEMA, "metadata", c.report);
  if (!isObj(meta)) return;
  if (nameIsLabel && typeof meta.name === "string" && !new RegExp(DNS1123_LABEL).test(meta.name)) {
    c.report("metadata.name", `expected a DNS-1123 label (lowercase letters, digits and '-', at most 63), got ${describe(meta.name)}`);
  } else if (nameIsLabel && typeof meta.name === "string" && meta.name.length > 63) {
    c.report("metadata.name", `must be at most 63 characters long, got ${meta.name.length}`);
  }
  if (!namespaced && meta.namespace !== undefined) {
    c.report("metadata.namespace", `${kind} is cluster-scoped: expected no namespace, got ${describe(meta.namespace)}`);
  }
  checkLabels(meta.labels, "metadata.labels", c.report);
}

/**
 * Validates one object on its own. Built-in Kubernetes kinds (v1
 * Namespace, Pod, Service, Node; discovery.k8s.io/v1 EndpointSlice) get a
 * minimal check (apiVersion, metadata) so manifests can mix them in.
 *
 * @example
 * validateResource({ apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "x" }, spec: {} }, ctx);
 * // [{ object: "Network/x", path: "spec.type", message: "is required: expected one of the known network types ..." }]
 */
export function validateResource(obj: unknown, ctx: ValidationContext): Problem[] {
  if (!isObj(obj)) {
    return [{
      object: "<unknown>",
      path: "",
      message: `expected a Kubernetes object with apiVersion, kind and metadata, got ${describe(obj)}`,
    }];
  }
  const c = new Collector(refOf(obj as never));
  const kind = obj.kind;
  const core = typeof kind === "string" ? CORE_KINDS[kind] : undefined;
  if (core) {
    if (obj.apiVersion !== core.apiVersion) c.report("apiVersion", `expected "${core.apiVersion}" for ${/^[AEIOU]/.test(kind as string) ? "an" : "a"} ${kind}, got ${describe(obj.apiVersion)}`);
    checkMetadata(obj, kind as string, core.namespaced, core.nameIsLabel, c);
    return c.problems();
  }
  if (typeof kind !== "string" || !LACE_KINDS.has(kind)) {
    const expected = `one of ${KINDS.join(", ")}, a core v1 Namespace, Pod, Service or Node, or a discovery.k8s.io/v1 EndpointSlice`;
    c.report("kind", kind === undefined ? `is required (expected ${expected})` : `expected ${expected}, got ${describe(kind)}`);
    if (obj.apiVersion !== undefined && obj.apiVersion !== API_VERSION && obj.apiVersion !== "v1") {
      c.report("apiVersion", `expected "${API_VERSION}", got ${describe(obj.apiVersion)}`);
    }
    return c.problems();
  }
  const schema = SCHEMAS[kind as Kind];
  if (obj.apiVersion !== API_VERSION) {
    c.report("apiVersion", obj.apiVersion === undefined
      ? `is required (expected "${API_VERSION}")`
      : `expected "${API_VERSION}" for a ${kind}, got ${describe(obj.apiVersion)}`);
  }
  checkMetadata(obj, kind, schema.scope === "Namespaced", false, c);
  const name = (obj.metadata as { name?: unknown } | undefined)?.name;
  if (kind === "Network" && typeof name === "string" && name.length > 63) {
    c.report("metadata.name", `a Network name is at most 63 characters (it is used as a label value), got ${name.length}`);
  }
  // Semantic checks first: where both layers speak about one field, the more specific message wins.
  if (kind === "Network") checkNetworkSpec(obj.spec, ctx, c);
  KIND_CHECKS[kind as Kind]?.(obj, c.report);
  if (obj.spec === undefined) c.report("spec", `is required (expected an object)`);
  else checkSchema(obj.spec, schema.spec, "spec", c.report);
  if (obj.status !== undefined && schema.status) checkSchema(obj.status, schema.status, "status", c.report);
  for (const field of Object.keys(obj)) {
    if (!["apiVersion", "kind", "metadata", "spec", "status"].includes(field)) {
      c.report(joinPath("", field), `unknown field, expected one of: apiVersion, kind, metadata, spec${schema.status ? ", status" : ""}`);
    }
  }
  if (obj.status !== undefined && !schema.status) c.report("status", `${kind} has no status`);
  return c.problems();
}

/**
 * Validates a set of objects: each on its own, then across objects
 * (duplicate names per kind and namespace, overlapping `l3`/`l2` subnets
 * naming both networks, references that contradict their target).
 *
 * @example
 * validateAll([backend, backendCopy], ctx).map(formatProblem);
 * // ["Network/backend: metadata.name: duplicate Network name \"backend\": already defined by object 1 of 2"]
 */
export function validateAll(objs: unknown[], ctx: ValidationContext): Problem[] {
  const perObject = objs.map((obj) => validateResource(obj, ctx));
  for (const { index, problem } of crossObjectProblems(objs, ctx)) {
    if (!perObject[index].some((p) => p.path === problem.path)) perObject[index].push(problem);
  }
  return perObject.flat();
}
