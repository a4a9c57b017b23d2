/**
 * The discovery documents kubectl and client-node read before they talk to
 * resources: API versions and groups, each group-version's resources with
 * their verbs, short names and categories, the server version, and the
 * OpenAPI documents (openapi.ts).
 *
 * @example
 * discovery("/apis/lace-cni.io/v1alpha1"); // { kind: "APIResourceList", resources: [{ name: "networks", categories: ["lace"], ... }] }
 * discovery("/apis/discovery.k8s.io/v1");  // { kind: "APIResourceList", resources: [{ name: "endpointslices", ... }] }
 */
import { KIND_TABLE, type KindInfo } from "../kinds.ts";
import { openApiV2, openApiV3Document, openApiV3Index } from "./openapi.ts";

function resourceList(groupVersion: string, kinds: KindInfo[]): Record<string, unknown> {
  const verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
  const resources: Record<string, unknown>[] = [];
  for (const k of kinds) {
    resources.push({
      name: k.plural,
      singularName: k.singular,
      namespaced: k.namespaced,
      kind: k.kind,
      verbs,
      shortNames: k.shortNames,
      ...(k.categories ? { categories: k.categories } : {}),
    });
    if (k.statusSubresource) {
      resources.push({ name: `${k.plural}/status`, singularName: "", namespaced: k.namespaced, kind: k.kind, verbs: ["get", "patch", "update"] });
    }
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources };
}

/** One APIGroup per named group the stores serve (each has one version here). */
const API_GROUPS = [...new Map(KIND_TABLE.filter((k) => k.group !== "").map((k) => [k.group, k.version]))].map(([group, version]) => ({
  kind: "APIGroup",
  apiVersion: "v1",
  name: group,
  versions: [{ groupVersion: `${group}/${version}`, version }],
  preferredVersion: { groupVersion: `${group}/${version}`, version },
}));

/** The documents client-node and kubectl read before talking to resources. */
export function discovery(path: string): unknown {
  if (path.startsWith("/openapi/v3/")) return openApiV3Document(path.slice("/openapi/v3/".length));
  for (const g of API_GROUPS) {
    if (path === `/apis/${g.name}`) return g;
    const gv = g.preferredVersion.groupVersion;
    if (path === `/apis/${gv}`) return resourceList(gv, KIND_TABLE.filter((k) => k.group === g.name && k.version === g.preferredVersion.version));
  }
  switch (path) {
    case "/api":
      return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "" }] };
    case "/api/v1":
      return resourceList("v1", KIND_TABLE.filter((k) => k.group === ""));
    case "/apis":
      return { kind: "APIGroupList", apiVersion: "v1", groups: API_GROUPS };
    case "/version":
      return { major: "1", minor: "31", gitVersion: "v1.31.0-lace-embedded", platform: "linux" };
    case "/openapi/v2":
      return openApiV2();
    case "/openapi/v3":
      return openApiV3Index();
    default:
      return undefined;
  }
}

