/**
 * The OpenAPI documents a real API server publishes, generated from
 * `core/resources/schema.ts` (the source the CRDs are generated from):
 * `/openapi/v2` (one Swagger 2.0 document) and `/openapi/v3` (an index of
 * one OpenAPI 3.0 document per group-version). kubectl reads them for
 * `explain`, and to learn that the server validates fields itself
 * (`fieldValidation` on PATCH), so `apply` needs no client-side schema.
 *
 * The built-in kinds (core v1, EndpointSlice) get paths but no schemas: kubectl then uses its own
 * compiled-in types for them (strategic merge patch keys included), as it
 * would if a server published none.
 *
 * @example
 * openApiV3Index();            // { paths: { "apis/lace-cni.io/v1alpha1": { serverRelativeURL: "/openapi/v3/apis/lace-cni.io/v1alpha1?hash=..." }, ... } }
 * openApiV3Document("apis/lace-cni.io/v1alpha1").components.schemas["io.lace-cni.v1alpha1.Network"];
 */
import { createHash } from "node:crypto";
import { OBJECT_META_SCHEMA } from "../../../core/resources/metadata.ts";
import { type OpenAPISchema, SCHEMAS } from "../../../core/resources/schema.ts";
import type { Kind } from "../../../core/resources/types.ts";
import { apiVersionOf, KIND_TABLE, type KindInfo } from "../kinds.ts";

const OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/** The definition name Kubernetes uses: the group reversed, then version and kind. */
function definitionName(info: KindInfo): string {
  const group = info.group ? info.group.split(".").reverse().join(".") : "io.k8s.api.core";
  return `${group}.${info.version}.${info.kind}`;
}

function gvk(info: KindInfo) {
  return { group: info.group, version: info.version, kind: info.kind };
}

/** A copy of `schema` fit for the given OpenAPI version (Swagger 2.0 has no `nullable`). */
function adapt(schema: OpenAPISchema, v2: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (v2 && key === "nullable") continue;
    if (key === "properties") {
      out.properties = Object.fromEntries(Object.entries(value as Record<string, OpenAPISchema>).map(([k, s]) => [k, adapt(s, v2)]));
    } else if (key === "items" || key === "additionalProperties") {
      out[key] = adapt(value as OpenAPISchema, v2);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function ref(name: string, v2: boolean): Record<string, unknown> {
  return { $ref: v2 ? `#/definitions/${name}` : `#/components/schemas/${name}` };
}

/** The schema of one lace-cni kind and of its List. */
function kindSchemas(info: KindInfo, v2: boolean): Record<string, Record<string, unknown>> {
  const schema = SCHEMAS[info.kind as Kind];
  const name = definitionName(info);
  const metaRef = v2 ? ref(OBJECT_META, v2) : { allOf: [ref(OBJECT_META, v2)], description: "Standard object's metadata" };
  const properties: Record<string, unknown> = {
    apiVersion: { type: "string", description: `APIVersion defines the versioned schema of this representation of an object: ${apiVersionOf(info)}` },
    kind: { type: "string", description: `Kind is a string value representing the REST resource this object represents: ${info.kind}` },
    metadata: metaRef,
    spec: adapt(schema.spec, v2),
  };
  if (schema.status) properties.status = adapt(schema.status, v2);
  return {
    [name]: {
      type: "object",
      description: `A lace-cni ${info.kind} (${schema.scope === "Namespaced" ? "namespaced" : "cluster-scoped"})`,
      required: ["spec"],
      properties,
      "x-kubernetes-group-version-kind": [gvk(info)],
    },
    [`${name}List`]: {
      type: "object",
      description: `A list of ${info.kind}`,
      required: ["items"],
      properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        metadata: ref(LIST_META, v2),
        items: { type: "array", items: ref(name, v2) },
      },
      "x-kubernetes-group-version-kind": [{ ...gvk(info), kind: `${info.kind}List` }],
    },
  };
}

function metaSchemas(v2: boolean): Record<string, Record<string, unknown>> {
  return {
    [OBJECT_META]: { ...adapt(OBJECT_META_SCHEMA, v2), required: undefined, description: "Standard object metadata" },
    [LIST_META]: {
      type: "object",
      description: "Standard list metadata",
      properties: { resourceVersion: { type: "string" }, continue: { type: "string" }, remainingItemCount: { type: "integer" } },
    },
  };
}

const QUERY_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force"];
/** Patch types the server takes per kind: built-in kinds also strategic merge, custom resources not (as a real API server). */
function patchTypes(info: KindInfo): string[] {
  const types = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];
  return info.custom ? types : [...types, "application/strategic-merge-patch+json"];
}

function itemPath(info: KindInfo): string {
  const base = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  return `${base}${info.namespaced ? "/namespaces/{namespace}" : ""}/${info.plural}/{name}`;
}

function collectionPath(info: KindInfo): string {
  const base = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  return `${base}${info.namespaced ? "/namespaces/{namespace}" : ""}/${info.plural}`;
}

/** Paths for one kind, with the extensions kubectl looks for (kind of each operation, its query parameters). */
function kindPaths(info: KindInfo, v2: boolean, withSchema: boolean): Record<string, unknown> {
  const ext = { "x-kubernetes-group-version-kind": gvk(info) };
  const schemaRef = withSchema ? ref(definitionName(info), v2) : { type: "object" };
  const queryParams = QUERY_PARAMS.map((name) => (v2 ? { name, in: "query", type: "string", uniqueItems: true } : { name, in: "query", schema: { type: "string", uniqueItems: true } }));
  const body = (types: string[]) =>
    v2 ? { consumes: types, parameters: [{ name: "body", in: "body", required: true, schema: schemaRef }] } : {
      requestBody: { required: true, content: Object.fromEntries(types.map((t) => [t, { schema: schemaRef }])) },
    };
  const response = v2 ? { responses: { "200": { description: "OK", schema: schemaRef } } } : {
    responses: { "200": { description: "OK", content: { "application/json": { schema: schemaRef } } } },
  };
  // kubectl looks for the query parameters on the PATCH operation itself, not on the path.
  const op = (action: string, extra: Record<string, unknown> = {}) => ({
    operationId: `${action}${info.kind}`,
    "x-kubernetes-action": action,
    ...ext,
    ...response,
    ...extra,
    parameters: [...queryParams, ...((extra.parameters as unknown[]) ?? [])],
  });
  return {
    [itemPath(info)]: {
      get: op("get"),
      put: op("put", body(["application/json", "application/yaml"])),
      patch: op("patch", body(patchTypes(info))),
      delete: op("delete"),
    },
    [collectionPath(info)]: {
      get: op("list"),
      post: op("post", body(["application/json", "application/yaml"])),
    },
  };
}

/** The Swagger 2.0 document of `/openapi/v2`: the lace-cni kinds' definitions and the paths of every kind. */
export function openApiV2(): Record<string, unknown> {
  const definitions: Record<string, unknown> = { ...metaSchemas(true) };
  const paths: Record<string, unknown> = {};
  for (const info of KIND_TABLE) {
    if (info.custom) Object.assign(definitions, kindSchemas(info, true));
    Object.assign(paths, kindPaths(info, true, info.custom));
  }
  return { swagger: "2.0", info: { title: "lace-cni embedded store", version: "v1alpha1" }, paths, definitions };
}

/** The group-versions `/openapi/v3` lists, as its paths name them. */
export function openApiV3GroupVersions(): string[] {
  return [...new Set(KIND_TABLE.map((k) => (k.group ? `apis/${k.group}/${k.version}` : `api/${k.version}`)))];
}

/** One group-version's OpenAPI 3.0 document (`/openapi/v3/apis/lace-cni.io/v1alpha1`), or undefined. */
export function openApiV3Document(groupVersion: string): Record<string, unknown> | undefined {
  const kinds = KIND_TABLE.filter((k) => (k.group ? `apis/${k.group}/${k.version}` : `api/${k.version}`) === groupVersion);
  if (kinds.length === 0) return undefined;
  const schemas: Record<string, unknown> = { ...metaSchemas(false) };
  const paths: Record<string, unknown> = {};
  for (const info of kinds) {
    if (info.custom) Object.assign(schemas, kindSchemas(info, false));
    Object.assign(paths, kindPaths(info, false, info.custom));
  }
  return { openapi: "3.0.0", info: { title: "lace-cni embedded store", version: groupVersion }, paths, components: { schemas } };
}

let hashes: Map<string, string> | undefined;

/** The `/openapi/v3` index: each group-version's document, with a hash of its content as real servers give. */
export function openApiV3Index(): Record<string, unknown> {
  hashes ??= new Map(openApiV3GroupVersions().map((gv) => [gv, createHash("sha512").update(JSON.stringify(openApiV3Document(gv))).digest("hex").slice(0, 32).toUpperCase()]));
  return {
    paths: Object.fromEntries([...hashes].map(([gv, hash]) => [gv, { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` }])),
  };
}
