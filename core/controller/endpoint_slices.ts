/**
 * EndpointSlices (`discovery.k8s.io/v1`) as the core reads them: plain
 * Resources, like Pod and Service, read into what the Service index needs.
 * A slice belongs to the Service its label `kubernetes.io/service-name`
 * names, in its own namespace; only slices of address type IPv4 or IPv6
 * count.
 *
 * Which source gives a Service's endpoints ({@link endpointsFromSlices}):
 * its slices when it has at least one, or when it has no selector (then
 * someone else manages its slices; none means no endpoints); else its
 * selector. On Kubernetes the endpoint controller writes slices for every
 * Service with a selector, so slices are used there; the embedded store has
 * no endpoint controller, so the selector is. No flag says which store it is.
 *
 * @example
 * const s = readEndpointSlice(slice);
 * s?.service;                // "shop/api"
 * s?.endpoints[0];           // { address: "10.40.1.5", ready: true, serving: true, terminating: false, pod: "shop/api-1", node: "node-1" }
 * endpointsFromSlices(true, 0); // false: the selector gives the endpoints
 */
import { IPAddress } from "../ip/mod.ts";
import type { Resource } from "../resources/types.ts";

/** The label that names an EndpointSlice's Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** One endpoint of a slice. */
export interface SliceEndpoint {
  /**
   * Its first address, canonical. The API defines no meaning for further
   * addresses (the endpoint controller writes one, kube-proxy reads the first).
   */
  address: string;
  /** `conditions.ready`; absent counts as ready, as the API documents. */
  ready: boolean;
  /** `conditions.serving`; absent defers to `ready`, as the API documents. */
  serving: boolean;
  /** `conditions.terminating` is true. */
  terminating: boolean;
  /** `namespace/name` of the Pod its `targetRef` names, if it names one. */
  pod?: string;
  /** `nodeName`, when the slice gives it. */
  node?: string;
}

/** A slice port: the already resolved target port of the Service port of that name. */
export interface SlicePort {
  /** The Service port's name; `""` for an unnamed one. */
  name: string;
  protocol: string;
  port: number;
}

/** What the core reads of one EndpointSlice. */
export interface EndpointSliceInfo {
  /** `namespace/name` of the Service it belongs to. */
  service: string;
  ports: SlicePort[];
  endpoints: SliceEndpoint[];
}

/**
 * Reads an EndpointSlice; undefined when it belongs to no Service (no
 * service-name label) or is of an address type other than IPv4 and IPv6.
 * Endpoints whose first address is not of the slice's family are left out.
 */
export function readEndpointSlice(r: Resource): EndpointSliceInfo | undefined {
  const raw = r as Resource & { addressType?: unknown; endpoints?: unknown; ports?: unknown };
  const namespace = r.metadata.namespace ?? "default";
  const service = r.metadata.labels?.[SERVICE_NAME_LABEL];
  const family = raw.addressType === "IPv4" ? 4 : raw.addressType === "IPv6" ? 6 : undefined;
  if (typeof service !== "string" || !service || family === undefined) return undefined;
  const ports: SlicePort[] = [];
  for (const p of Array.isArray(raw.ports) ? raw.ports as Record<string, unknown>[] : []) {
    // A port without a number stands for "all ports" in the API: no Service port is served by it here.
    if (typeof p?.port !== "number") continue;
    ports.push({ name: typeof p.name === "string" ? p.name : "", protocol: typeof p.protocol === "string" ? p.protocol : "TCP", port: p.port });
  }
  const endpoints: SliceEndpoint[] = [];
  for (const e of Array.isArray(raw.endpoints) ? raw.endpoints as Record<string, unknown>[] : []) {
    const first = Array.isArray(e?.addresses) ? e.addresses[0] : undefined;
    const parsed = IPAddress.tryParse(first);
    if (!parsed.ok || parsed.value.family !== family) continue;
    const conditions = e.conditions as { ready?: unknown; serving?: unknown; terminating?: unknown } | undefined;
    const ref = e.targetRef as { kind?: unknown; name?: unknown; namespace?: unknown } | undefined;
    const pod = ref?.kind === "Pod" && typeof ref.name === "string" && ref.name
      ? `${typeof ref.namespace === "string" && ref.namespace ? ref.namespace : namespace}/${ref.name}`
      : undefined;
    endpoints.push({
      address: parsed.value.toString(),
      ready: conditions?.ready !== false,
      serving: typeof conditions?.serving === "boolean" ? conditions.serving : conditions?.ready !== false,
      terminating: conditions?.terminating === true,
      ...(pod ? { pod } : {}),
      ...(typeof e.nodeName === "string" && e.nodeName ? { node: e.nodeName } : {}),
    });
  }
  return { service: `${namespace}/${service}`, ports, endpoints };
}

/**
 * Whether a Service's endpoints come from its EndpointSlices: when it has
 * at least one, or when it has no selector (its slices are then managed by
 * someone else, and none means no endpoints). Else its selector gives them.
 *
 * @example
 * endpointsFromSlices(true, 2);  // true: the endpoint controller wrote them (Kubernetes)
 * endpointsFromSlices(true, 0);  // false: no endpoint controller (the embedded store)
 * endpointsFromSlices(false, 0); // true: no selector, no slices: no endpoints
 */
export function endpointsFromSlices(hasSelector: boolean, slices: number): boolean {
  return slices > 0 || !hasSelector;
}
