/**
 * A Service as the destination of `lace explain` (`--to svc/<namespace>/<name>`
 * or one of its ClusterIPs), resolved from manifests with the same rules the
 * controller and the dataplane use: the Service's network from the binding
 * policies (matchKind Service), its endpoints the pods bound to that network
 * among those its EndpointSlices name (ready ones) when the manifests hold
 * slices of it or it has no selector, else among those its selector picks
 * (`endpointsFromSlices`); the decision is then the routing decision
 * source network → the Service's network, as for pod → pod (the dataplane
 * installs a ClusterIP's translation for exactly the networks allowed so).
 * Kept apart from the command so live explain can reuse it.
 *
 * @example
 * const svc = await resolveServiceDestination("svc/shop/cart", { resources, binding, namespaces });
 * svc?.network; // "backend"
 * svc?.endpoints; // ["shop/cart-0"]
 */
import {
  type BindingExplanation,
  type BindingRules,
  endpointsFromSlices,
  laceError,
  podSubject,
  readEndpointSlice,
  type Resource,
  SERVICE_NETWORK_ANNOTATION,
} from "../../core/mod.ts";

/** What `lace explain` shows about a Service destination. */
export interface ServiceDestination {
  /** `namespace/name`. */
  service: string;
  /** The network its binding policies give it; null: none (the decision is then deny). */
  network: string | null;
  binding: BindingExplanation;
  clusterIPs: string[];
  /**
   * The pods (`namespace/name`) bound to its network that its endpoints come
   * from: those its selector picks, or the ready ones its EndpointSlices
   * name (slice endpoints naming no pod are not listed).
   */
  endpoints: string[];
  /** Those pods bound to another network: not endpoints. */
  offNetwork: { pod: string; network: string }[];
}

export interface ServiceLookup {
  resources: Resource[];
  binding: BindingRules;
  namespaces: Map<string, Record<string, string>>;
  /**
   * Live state (a store, not manifests): the networks as recorded, which the
   * agents act on. A Service's network is its `lace-cni.io/network`
   * annotation (the policies explain it only when there is none); a pod's
   * is its NetworkEndpoint's (undefined: not running on a lace network).
   */
  recorded?: { podNetwork(pod: string): string | undefined };
  /** Where the Services were read, for errors: "manifests" (default) or "store". */
  source?: string;
}

/**
 * The Service `arg` names (`svc/<namespace>/<name>`, or an address that is
 * one of a Service's ClusterIPs), or undefined when `arg` is neither form.
 * Throws INVALID_ARGUMENT for a `svc/` argument naming no Service.
 */
export async function resolveServiceDestination(arg: string, l: ServiceLookup): Promise<ServiceDestination | undefined> {
  const services = l.resources.filter((r) => r.kind === "Service" && !r.apiVersion.startsWith("lace-cni.io/"));
  let svc: Resource | undefined;
  if (arg.startsWith("svc/")) {
    const [namespace, name, ...rest] = arg.slice(4).split("/");
    if (!namespace || !name || rest.length) throw laceError("INVALID_ARGUMENT", `--to expects svc/<namespace>/<name>, got ${JSON.stringify(arg)}`);
    svc = services.find((s) => (s.metadata.namespace ?? "default") === namespace && s.metadata.name === name);
    if (!svc) {
      const known = services.map((s) => `svc/${s.metadata.namespace ?? "default"}/${s.metadata.name}`).sort();
      throw laceError("INVALID_ARGUMENT", `--to: no Service ${namespace}/${name} in the ${l.source ?? "manifests"}: expected one of ${known.length ? known.join(", ") : "(no services)"}`);
    }
  } else {
    svc = services.find((s) => clusterIPsOf(s).includes(arg));
    if (!svc) return undefined;
  }
  const namespace = svc.metadata.namespace ?? "default";
  const binding = await l.binding.explain({
    kind: "Service",
    namespace,
    name: svc.metadata.name,
    labels: svc.metadata.labels,
    annotations: svc.metadata.annotations,
    namespaceLabels: l.namespaces.get(namespace),
  });
  const recordedNetwork = svc.metadata.annotations?.[SERVICE_NETWORK_ANNOTATION];
  const network = l.recorded ? recordedNetwork || null : binding.network;
  const selector = (svc.spec as { selector?: Record<string, string> } | undefined)?.selector ?? {};
  const endpoints: string[] = [];
  const offNetwork: { pod: string; network: string }[] = [];
  const slices = l.resources.filter((r) => r.kind === "EndpointSlice").map(readEndpointSlice)
    .filter((s) => s?.service === `${namespace}/${svc!.metadata.name}`);
  /** The pods its endpoints come from (`namespace/name` → ready); undefined: its selector's. */
  let named: Map<string, boolean> | undefined;
  if (endpointsFromSlices(Object.keys(selector).length > 0, slices.length)) {
    named = new Map();
    for (const e of slices.flatMap((s) => s!.endpoints)) if (e.pod) named.set(e.pod, (named.get(e.pod) ?? false) || e.ready);
  }
  for (const pod of l.resources.filter((r) => r.kind === "Pod")) {
    const ns = pod.metadata.namespace ?? "default";
    const key = `${ns}/${pod.metadata.name}`;
    if (named ? !named.has(key) : ns !== namespace || !Object.keys(selector).length || !Object.entries(selector).every(([k, v]) => pod.metadata.labels?.[k] === v)) continue;
    const on = l.recorded
      ? l.recorded.podNetwork(key)
      : (await l.binding.explain(podSubject({ metadata: { ...pod.metadata, namespace: ns } }, l.namespaces.get(ns), (pod.spec as { nodeName?: string } | undefined)?.nodeName))).network;
    if (on === network) {
      if (!named || named.get(key)) endpoints.push(key);
    } else if (on) offNetwork.push({ pod: key, network: on });
  }
  return { service: `${namespace}/${svc.metadata.name}`, network, binding, clusterIPs: clusterIPsOf(svc), endpoints: endpoints.sort(), offNetwork };
}

/** A Service's ClusterIPs as its spec gives them (none for a headless one or one not allocated yet). */
export function clusterIPsOf(svc: Resource): string[] {
  const spec = svc.spec as { clusterIP?: string; clusterIPs?: string[] } | undefined;
  const ips = spec?.clusterIPs ?? (spec?.clusterIP ? [spec.clusterIP] : []);
  return ips.filter((ip) => ip && ip !== "None");
}
