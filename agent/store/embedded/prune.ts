/**
 * Drops the fields a kind's structural schema does not declare, as a real
 * API server does for `fieldValidation=Ignore` and `Warn` (kubectl
 * `--validate=false` and `--validate=warn`). With `Strict`, the store's
 * default, unknown fields are refused by validation instead.
 *
 * @example
 * pruneUnknownFields(kindInfo("Network"), { ..., spec: { type: "l2", colour: "red" } });
 * // ["spec.colour"], and the object no longer has it
 */
import { OBJECT_META_SCHEMA } from "../../../core/resources/metadata.ts";
import { joinPath } from "../../../core/resources/problem.ts";
import { type OpenAPISchema, SCHEMAS } from "../../../core/resources/schema.ts";
import type { Kind } from "../../../core/resources/types.ts";
import type { KindInfo } from "../kinds.ts";

function prune(value: unknown, schema: OpenAPISchema | undefined, path: string, dropped: string[]): void {
  if (!schema || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => prune(item, schema.items, joinPath(path, i), dropped));
    return;
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const child = schema.properties?.[key] ?? schema.additionalProperties;
    if (child) prune(obj[key], child, joinPath(path, key), dropped);
    else if (schema.properties && !schema["x-kubernetes-preserve-unknown-fields"]) {
      delete obj[key];
      dropped.push(joinPath(path, key));
    }
  }
}

/**
 * Removes, in place, the fields of `obj` its kind does not declare, and
 * returns their paths. Core kinds: only `metadata` and unknown top-level
 * fields of their metadata are pruned (their specs are not modelled here).
 */
export function pruneUnknownFields(info: KindInfo, obj: Record<string, unknown>): string[] {
  const dropped: string[] = [];
  prune(obj.metadata, OBJECT_META_SCHEMA, "metadata", dropped);
  if (!info.custom) return dropped;
  const schema = SCHEMAS[info.kind as Kind];
  for (const key of Object.keys(obj)) {
    if (key === "apiVersion" || key === "kind" || key === "metadata") continue;
    if (key === "spec") prune(obj.spec, schema.spec, "spec", dropped);
    else if (key === "status" && schema.status) prune(obj.status, schema.status, "status", dropped);
    else {
      delete obj[key];
      dropped.push(joinPath("", key));
    }
  }
  return dropped;
}
