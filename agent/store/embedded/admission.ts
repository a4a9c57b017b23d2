/**
 * What the embedded API server checks before it stores an object, as a
 * real API server with the lace-cni CRDs installed would:
 *
 * - the body's shape, before it reaches SQLite: `metadata` an object, its
 *   name, namespace and resourceVersion strings (a client's JSON never
 *   causes a 500);
 * - the whole object about to be stored, with the validator `lace validate`
 *   uses (`core/resources/validate.ts`: the CRD schemas, the rules the
 *   CRDs' CEL states, and the network types' own checks): names as DNS-1123
 *   subdomains (labels for Namespace and Service), labels, unknown fields
 *   refused (as `fieldValidation=Strict`, kubectl's default, would);
 * - that the namespace of a namespaced object exists and is not being
 *   deleted.
 *
 * A failure is an {@link InvalidObjectError}: 422 `Invalid` with one
 * `details.causes[]` entry per problem, each naming its field.
 *
 * @example
 * const admit = admission({ networkTypes, namespaceOf: (ns) => store.getSync("Namespace", ns) });
 * admit(network); // throws InvalidObjectError: Network.lace-cni.io "x" is invalid: spec.type: ...
 */
import { describe } from "../../../core/ip/mod.ts";
import { StoreError } from "../../../core/mod.ts";
import { checkLabels, OBJECT_META_SCHEMA } from "../../../core/resources/metadata.ts";
import type { Problem } from "../../../core/resources/problem.ts";
import { checkSchema } from "../../../core/resources/schema_check.ts";
import { type NetworkTypeLookup, validateResource } from "../../../core/resources/validate.ts";
import type { Resource } from "../../../core/mod.ts";
import { kindInfo } from "../kinds.ts";

/** One field's problem, as in a Kubernetes `Status`'s `details.causes`. */
export interface Cause {
  reason: "FieldValueInvalid" | "FieldValueRequired" | "FieldValueForbidden" | "FieldValueNotFound";
  field: string;
  message: string;
}

/** A 422 `Invalid`: the object, and every field that is wrong in it. */
export class InvalidObjectError extends StoreError {
  constructor(readonly kind: string, readonly objectName: string, readonly causes: Cause[]) {
    const info = kindInfo(kind);
    const qualified = info.group ? `${kind}.${info.group}` : kind;
    const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
    super("Invalid", `${qualified} "${objectName}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(", ")}]`}`);
  }
}

function causeOf(p: Problem): Cause {
  const reason = /^is required/.test(p.message)
    ? "FieldValueRequired"
    : /unknown field|is cluster-scoped|has no status/.test(p.message)
    ? "FieldValueForbidden"
    : "FieldValueInvalid";
  return { reason, field: p.path, message: p.message };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks the parts of a request body the server reads before it validates
 * the object: that `metadata` is an object whose identity fields are
 * strings. Throws {@link InvalidObjectError}.
 */
export function checkBodyShape(kind: string, body: Record<string, unknown>): void {
  const causes: Cause[] = [];
  const meta = body.metadata;
  if (meta !== undefined && !isObj(meta)) {
    causes.push({ reason: "FieldValueInvalid", field: "metadata", message: `expected an object, got ${describe(meta)}` });
  } else if (meta) {
    for (const field of ["name", "generateName", "namespace", "resourceVersion", "uid"]) {
      const v = meta[field];
      if (v !== undefined && typeof v !== "string") {
        causes.push({ reason: "FieldValueInvalid", field: `metadata.${field}`, message: `expected a string, got ${describe(v)}` });
      }
    }
  }
  if (causes.length > 0) {
    const name = isObj(meta) && typeof meta.name === "string" ? meta.name : "";
    throw new InvalidObjectError(kind, name, causes);
  }
}

export interface AdmissionOptions {
  /** The network types a Network's `spec.type` may name, and their checks (the plugin registry). */
  networkTypes: NetworkTypeLookup;
  /** The stored Namespace called `name`, if any. */
  namespaceOf(name: string): Resource | undefined;
}

/** Kinds `validateResource` does not know: their metadata is checked, the rest is theirs. */
function checkMetadataOnly(obj: Resource): Problem[] {
  const problems: Problem[] = [];
  const report = (path: string, message: string) => problems.push({ object: obj.kind, path, message });
  checkSchema(obj.metadata, OBJECT_META_SCHEMA, "metadata", report);
  checkLabels(obj.metadata?.labels, "metadata.labels", report);
  return problems;
}

/**
 * A function that checks an object about to be stored (created, or
 * updated from `prev`) and throws {@link InvalidObjectError}, or a
 * `NotFound`/`Forbidden` StoreError for a missing or terminating namespace.
 */
export function admission(options: AdmissionOptions): (next: Resource, prev?: Resource) => void {
  return (next, prev) => {
    const info = kindInfo(next.kind);
    if (info.namespaced && !prev) {
      const ns = next.metadata.namespace ?? "";
      const found = options.namespaceOf(ns);
      if (!found) throw new StoreError("NotFound", `namespaces "${ns}" not found`);
      if (found.metadata.deletionTimestamp) {
        throw new StoreError("Invalid", `Unable to create new content in namespace ${ns}: it is being terminated`);
      }
    }
    const problems = next.kind === "Event" ? checkMetadataOnly(next) : validateResource(next, { networkTypes: options.networkTypes });
    if (problems.length > 0) {
      throw new InvalidObjectError(next.kind, typeof next.metadata?.name === "string" ? next.metadata.name : "", problems.map(causeOf));
    }
  };
}
