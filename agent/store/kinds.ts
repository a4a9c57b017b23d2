/**
 * Where each kind lives in the Kubernetes REST API: group, version, plural,
 * scope and whether it has a status subresource. One table serves the
 * client side (`kube.ts`) and the embedded API server, so both agree.
 *
 * The lace-cni entries are read from `core/resources/schema.ts`, the source
 * the CRDs in `deploy/` are generated from. The others are Kubernetes'
 * built-in kinds the product reads (and Event, which it writes): core v1,
 * and EndpointSlice in `discovery.k8s.io/v1`.
 *
 * @example
 * kindInfo("Network").plural;       // "networks"
 * kindByPlural("", "v1", "pods");   // the Pod entry
 */
import { GROUP, KINDS, StoreError, VERSION } from "../../core/mod.ts";
import { SCHEMAS } from "../../core/resources/schema.ts";

export interface KindInfo {
  kind: string;
  /** `""` for the core group. */
  group: string;
  version: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  /** A `/status` subresource exists: the main resource ignores status, `/status` ignores the rest. */
  statusSubresource: boolean;
  /**
   * A custom resource (the lace-cni kinds, served as the CRDs declare): its
   * schema is ours, updates need a resourceVersion, no strategic merge
   * patch. The others are built-in kinds whose specs are Kubernetes'.
   */
  custom: boolean;
  shortNames?: string[];
  /** Names that stand for several kinds in `kubectl get` (`lace`, `all`). */
  categories?: string[];
}

// Plurals, scope, short names and the status subresource come from the same
// schema source as the CRDs, so the stores serve exactly what deploy/ declares.
const LACE: KindInfo[] = KINDS.map((kind) => {
  const schema = SCHEMAS[kind];
  return {
    kind,
    group: GROUP,
    version: VERSION,
    plural: schema.plural,
    singular: kind.toLowerCase(),
    namespaced: schema.scope === "Namespaced",
    statusSubresource: schema.status !== undefined,
    custom: true,
    shortNames: schema.shortNames,
    // As the CRDs declare (deploy/generate.ts): `kubectl get lace` lists every lace-cni kind.
    categories: ["lace"],
  };
});

const CORE: KindInfo[] = [
  { kind: "Namespace", plural: "namespaces", namespaced: false, shortNames: ["ns"] },
  { kind: "Node", plural: "nodes", namespaced: false, shortNames: ["no"] },
  { kind: "Pod", plural: "pods", namespaced: true, shortNames: ["po"], categories: ["all"] },
  { kind: "Service", plural: "services", namespaced: true, shortNames: ["svc"], categories: ["all"] },
  // Written, not read: the controller reports what it did as events.
  { kind: "Event", plural: "events", namespaced: true, shortNames: ["ev"], statusSubresource: false },
].map((k) => ({ statusSubresource: true, ...k, group: "", version: "v1", singular: k.kind.toLowerCase(), custom: false }));

/** Built-in kinds of named groups. */
const BUILT_IN: KindInfo[] = [
  // Read: a Service's endpoints on Kubernetes, written by its endpoint controller (core/controller/endpoint_slices.ts).
  { kind: "EndpointSlice", group: "discovery.k8s.io", version: "v1", plural: "endpointslices", singular: "endpointslice", namespaced: true, statusSubresource: false, custom: false },
];

/** Every kind the stores serve: lace-cni's own, then the built-in kinds the product reads. */
export const KIND_TABLE: readonly KindInfo[] = [...LACE, ...CORE, ...BUILT_IN];

const BY_KIND = new Map(KIND_TABLE.map((k) => [k.kind, k]));

/** The REST coordinates of `kind`; an `Invalid` StoreError for a kind the stores do not serve. */
export function kindInfo(kind: string): KindInfo {
  const info = BY_KIND.get(kind);
  if (!info) {
    throw new StoreError("Invalid", `Unknown kind "${kind}": expected one of ${KIND_TABLE.map((k) => k.kind).join(", ")}`);
  }
  return info;
}

/** The kind served at `group/version/plural`, if any. */
export function kindByPlural(group: string, version: string, plural: string): KindInfo | undefined {
  return KIND_TABLE.find((k) => k.group === group && k.version === version && k.plural === plural);
}

/** `apiVersion` as written in objects: `v1` or `lace-cni.io/v1alpha1`. */
export function apiVersionOf(info: KindInfo): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}
