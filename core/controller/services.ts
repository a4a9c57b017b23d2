/**
 * The Services a node load-balances, computed from Services, Pods,
 * NetworkEndpoints and EndpointSlices: for each Service bound to a network
 * N (annotation `lace-cni.io/network`, written by the controller's binder),
 * its ClusterIPs and ports, its endpoints (below) and the source networks
 * that may use it: those the reachability table allows to reach N's
 * subnets, the same decision as pod → pod.
 *
 * Endpoints come, per Service, from one of two sources
 * (endpoint_slices.ts, `endpointsFromSlices`), whatever the store:
 * - its EndpointSlices, when it has at least one or has no selector (none
 *   then means no endpoints). This is the case on Kubernetes, whose
 *   endpoint controller writes them. A ready slice endpoint (no `ready`
 *   condition counts as ready) is an endpoint of N when the Pod its
 *   `targetRef` names is bound to N (its NetworkEndpoint on N holds the
 *   address), or, naming no pod, when its address lies in one of N's
 *   subnets. Its node is the slice's `nodeName`, else the pod's endpoint's;
 *   its target ports are the slice's ports, matched to the Service's by
 *   name and protocol (a port the slice lacks is not served: 0); serving
 *   terminating endpoints stand in while none is ready;
 * - else its selector: the ready pods it picks that are bound to N, with
 *   each service port's target port resolved against the pod's container
 *   ports. This is the case on the embedded store, which has no endpoint
 *   controller.
 *
 * Incremental: an event marks the Services it can change (a pod: the
 * Services of its namespace whose selector matches its old or new labels;
 * a slice: its Service; a NetworkEndpoint: also the Services whose slices
 * name its pod); `update` rebuilds only those and returns them with their
 * old and new forwarding, so the builder republishes only the nodes they
 * concern.
 *
 * @example
 * const idx = new ServiceIndex();
 * idx.set(service); idx.set(pod); idx.set(endpoint);
 * const changed = idx.update(table, (n) => subnetsOf(n));
 * changed[0].after?.endpoints; // [{ pod: "shop/cart-0", ... }]
 */
import type { ServiceEndpoint, ServiceForwarding, ServicePortForwarding } from "../dataplane/desired_state.ts";
import { IPAddress, Prefix } from "../ip/mod.ts";
import { podHasFinished } from "../ipam/owner.ts";
import type { Resource } from "../resources/types.ts";
import type { ReachabilityTable } from "../rules/routing.ts";
import { type EndpointSliceInfo, endpointsFromSlices, readEndpointSlice } from "./endpoint_slices.ts";
import { mapSetAdd, mapSetDelete } from "./multimap.ts";

/** The annotation a Service's network is recorded in (by the controller's ServiceBinder). */
export const SERVICE_NETWORK_ANNOTATION = "lace-cni.io/network";

interface SvcInput {
  key: string;
  namespace: string;
  network?: string;
  selector?: [string, string][];
  clusterIPs: string[];
  ports: { name?: string; protocol: "TCP" | "UDP"; port: number; target: number | string }[];
  affinity: "None" | "ClientIP";
}

interface PodInput {
  key: string;
  namespace: string;
  labels: Record<string, string>;
  ready: boolean;
  /** Being deleted, not finished, and its Ready condition still True: an endpoint only while its Service has no ready one. */
  terminatingServing: boolean;
  /** Named container ports: `name/PROTOCOL` → port. */
  named: Map<string, number>;
}

interface EpInput {
  network: string;
  node: string;
  addresses: string[];
}

/** A Service whose forwarding changed: absent `before` is new, absent `after` is gone. */
export interface ServiceChange {
  key: string;
  before?: ServiceForwarding;
  after?: ServiceForwarding;
}

export class ServiceIndex {
  private readonly services = new Map<string, SvcInput>();
  private readonly byNamespace = new Map<string, Set<string>>();
  private readonly pods = new Map<string, PodInput>();
  private readonly podsByNamespace = new Map<string, Set<string>>();
  private readonly endpoints = new Map<string, EpInput>();
  /** `namespace/name` of a slice → what it says. */
  private readonly slices = new Map<string, EndpointSliceInfo>();
  /** Service → its slices. */
  private readonly slicesOf = new Map<string, Set<string>>();
  /** Pod → the slices naming it (so its NetworkEndpoint's changes reach their Services). */
  private readonly slicesNaming = new Map<string, Set<string>>();
  private readonly built = new Map<string, ServiceForwarding>();
  private readonly dirty = new Set<string>();
  private all = false;

  /** Whether `kind` is one this index reads. */
  static reads(kind: string): boolean {
    return kind === "Service" || kind === "Pod" || kind === "NetworkEndpoint" || kind === "EndpointSlice";
  }

  /** Adds or replaces a Service, Pod, NetworkEndpoint or EndpointSlice. */
  set(r: Resource): void {
    if (r.kind === "Service") this.setService(r);
    else if (r.kind === "Pod") this.setPod(r);
    else if (r.kind === "NetworkEndpoint") this.setEndpoint(r);
    else if (r.kind === "EndpointSlice") this.setSlice(`${r.metadata.namespace ?? "default"}/${r.metadata.name}`, readEndpointSlice(r));
  }

  /** Removes one by kind and name. */
  remove(kind: string, name: string, namespace = "default"): void {
    const key = `${namespace}/${name}`;
    if (kind === "Service") {
      if (!this.services.delete(key)) return;
      this.byNamespace.get(namespace)?.delete(key);
      this.dirty.add(key);
    } else if (kind === "Pod") {
      const old = this.pods.get(key);
      if (!old) return;
      this.pods.delete(key);
      this.podsByNamespace.get(namespace)?.delete(key);
      this.podMoved(old, undefined);
    } else if (kind === "NetworkEndpoint") {
      if (!this.endpoints.delete(key)) return;
      this.endpointMoved(key);
    } else if (kind === "EndpointSlice") {
      this.setSlice(key, undefined);
    }
  }

  /** Every Service has to be decided again (the reachability table changed). */
  invalidateSources(): void {
    this.all = true;
  }

  /**
   * Rebuilds the marked Services against `table`; `subnets(network)` gives
   * a network's subnet prefixes (text). Returns those whose forwarding changed.
   */
  update(table: ReachabilityTable, subnets: (network: string) => string[] | undefined): ServiceChange[] {
    const keys = this.all ? new Set([...this.services.keys(), ...this.built.keys()]) : this.dirty;
    const out: ServiceChange[] = [];
    const sourcesOf = new Map<string, string[]>();
    for (const key of keys) {
      const before = this.built.get(key);
      const after = this.build(key, table, subnets, sourcesOf);
      if (before && after && sameService(before, after)) continue;
      if (!before && !after) continue;
      if (after) this.built.set(key, after);
      else this.built.delete(key);
      out.push({ key, before, after });
    }
    this.dirty.clear();
    this.all = false;
    return out;
  }

  /** The current forwarding of every bound Service. */
  list(): Iterable<ServiceForwarding> {
    return this.built.values();
  }

  get(key: string): ServiceForwarding | undefined {
    return this.built.get(key);
  }

  // ------------------------------------------------------------ inputs

  private setService(r: Resource): void {
    const namespace = r.metadata.namespace ?? "default";
    const key = `${namespace}/${r.metadata.name}`;
    const spec = (r.spec ?? {}) as Record<string, unknown>;
    const selector = spec.selector && typeof spec.selector === "object" && !Array.isArray(spec.selector)
      ? Object.entries(spec.selector as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === "string")
      : undefined;
    const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : typeof spec.clusterIP === "string" ? [spec.clusterIP] : [];
    const clusterIPs = [...new Set(ips.filter((x): x is string => typeof x === "string" && x !== "" && x !== "None"))]
      .sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")) || (a < b ? -1 : a > b ? 1 : 0));
    const ports: SvcInput["ports"] = [];
    for (const p of Array.isArray(spec.ports) ? spec.ports as Record<string, unknown>[] : []) {
      if (typeof p?.port !== "number") continue;
      const protocol = p.protocol === "UDP" ? "UDP" : p.protocol === undefined || p.protocol === "TCP" ? "TCP" : undefined;
      if (!protocol) continue; // SCTP: not forwarded
      const target = typeof p.targetPort === "number" || (typeof p.targetPort === "string" && p.targetPort !== "") ? p.targetPort : p.port;
      ports.push({ ...(typeof p.name === "string" && p.name ? { name: p.name } : {}), protocol, port: p.port, target: /^\d+$/.test(String(target)) ? Number(target) : target as string });
    }
    const network = r.metadata.annotations?.[SERVICE_NETWORK_ANNOTATION];
    const info: SvcInput = {
      key,
      namespace,
      network: typeof network === "string" && network ? network : undefined,
      selector: selector && selector.length ? selector : undefined,
      clusterIPs,
      ports,
      affinity: spec.sessionAffinity === "ClientIP" ? "ClientIP" : "None",
    };
    const old = this.services.get(key);
    if (old && JSON.stringify(old) === JSON.stringify(info)) return; // a status write
    this.services.set(key, info);
    let s = this.byNamespace.get(namespace);
    if (!s) this.byNamespace.set(namespace, s = new Set());
    s.add(key);
    this.dirty.add(key);
  }

  private setPod(r: Resource): void {
    const namespace = r.metadata.namespace ?? "default";
    const key = `${namespace}/${r.metadata.name}`;
    const status = r.status as { conditions?: { type?: string; status?: string }[] } | undefined;
    const readyCond = status?.conditions?.find((c) => c.type === "Ready");
    const named = new Map<string, number>();
    const spec = r.spec as { containers?: { ports?: { name?: string; containerPort?: number; protocol?: string }[] }[] } | undefined;
    for (const c of spec?.containers ?? []) {
      for (const p of c.ports ?? []) {
        if (p.name && typeof p.containerPort === "number") named.set(`${p.name}/${p.protocol ?? "TCP"}`, p.containerPort);
      }
    }
    const info: PodInput = {
      key,
      namespace,
      labels: { ...(r.metadata.labels ?? {}) },
      // Without a kubelet (the embedded store) a pod has no Ready condition: a running pod counts as ready.
      ready: !r.metadata.deletionTimestamp && !podHasFinished(r) && (readyCond ? readyCond.status === "True" : true),
      terminatingServing: !!r.metadata.deletionTimestamp && !podHasFinished(r) && readyCond?.status === "True",
      named,
    };
    const old = this.pods.get(key);
    if (old && samePod(old, info)) return;
    this.pods.set(key, info);
    let s = this.podsByNamespace.get(namespace);
    if (!s) this.podsByNamespace.set(namespace, s = new Set());
    s.add(key);
    this.podMoved(old, info);
  }

  private setEndpoint(r: Resource): void {
    const key = `${r.metadata.namespace ?? "default"}/${r.metadata.name}`;
    const spec = r.spec as { network?: string; node?: string; addresses?: string[]; detachedAt?: string } | undefined;
    if (!spec || typeof spec.network !== "string" || typeof spec.node !== "string" || spec.detachedAt) {
      this.remove("NetworkEndpoint", r.metadata.name, r.metadata.namespace ?? "default");
      return;
    }
    const info: EpInput = { network: spec.network, node: spec.node, addresses: (spec.addresses ?? []).map((a) => a.split("/")[0]) };
    const old = this.endpoints.get(key);
    if (old && old.network === info.network && old.node === info.node && old.addresses.join() === info.addresses.join()) return;
    this.endpoints.set(key, info);
    this.endpointMoved(key);
  }

  /** Marks the Services a pod's NetworkEndpoint can change: those selecting the pod, and those whose slices name it. */
  private endpointMoved(podKey: string): void {
    const pod = this.pods.get(podKey);
    if (pod) this.podMoved(pod, undefined);
    for (const sliceKey of this.slicesNaming.get(podKey) ?? []) this.dirty.add(this.slices.get(sliceKey)!.service);
  }

  /** Replaces (undefined: removes) a slice; marks its Service, before and after. */
  private setSlice(key: string, info: EndpointSliceInfo | undefined): void {
    const old = this.slices.get(key);
    if (!old && !info) return;
    if (old && info && JSON.stringify(old) === JSON.stringify(info)) return;
    if (old) {
      this.slices.delete(key);
      mapSetDelete(this.slicesOf, old.service, key);
      for (const e of old.endpoints) if (e.pod) mapSetDelete(this.slicesNaming, e.pod, key);
      this.dirty.add(old.service);
    }
    if (info) {
      this.slices.set(key, info);
      mapSetAdd(this.slicesOf, info.service, key);
      for (const e of info.endpoints) if (e.pod) mapSetAdd(this.slicesNaming, e.pod, key);
      this.dirty.add(info.service);
    }
  }

  /** Marks the Services of the pod's namespace whose selector matches it before or after. */
  private podMoved(before: PodInput | undefined, after: PodInput | undefined): void {
    const ns = (before ?? after)!.namespace;
    for (const key of this.byNamespace.get(ns) ?? []) {
      const sel = this.services.get(key)?.selector;
      if (!sel) continue;
      if ((before && matches(sel, before.labels)) || (after && matches(sel, after.labels))) this.dirty.add(key);
    }
  }

  // ------------------------------------------------------------ building

  private build(key: string, table: ReachabilityTable, subnets: (n: string) => string[] | undefined, sourcesOf: Map<string, string[]>): ServiceForwarding | undefined {
    const s = this.services.get(key);
    if (!s || !s.network || s.clusterIPs.length === 0 || s.ports.length === 0) return undefined;
    const own = subnets(s.network);
    if (!own) return undefined; // a network no loaded type forwards
    let sources = sourcesOf.get(s.network);
    if (!sources) sourcesOf.set(s.network, sources = sourcesFor(table, s.network, own));
    const slices = this.slicesOf.get(key);
    let endpoints: ServiceEndpoint[];
    if (endpointsFromSlices(s.selector !== undefined, slices?.size ?? 0)) {
      const from = this.sliceEndpoints(s, s.network, slices ?? [], own);
      // A Service without a selector none of whose endpoints, ready or not, is on N is not ours to forward:
      // the API server's `default/kubernetes` (its endpoints are host addresses), or one whose slices are yet to come.
      // Left out, its ClusterIP is left to kube-proxy rather than dropped.
      if (s.selector === undefined && !from.onNetwork) return undefined;
      endpoints = from.endpoints;
    } else endpoints = this.selectedEndpoints(s, s.network, s.selector!);
    return {
      id: key,
      network: s.network,
      clusterIPs: s.clusterIPs,
      ports: s.ports.map(({ name, protocol, port }): ServicePortForwarding => ({ ...(name ? { name } : {}), protocol, port })),
      sessionAffinity: s.affinity,
      sources,
      endpoints,
    };
  }

  /** The ready pods `selector` picks that are bound to `network`, target ports resolved per pod; sorted by pod. */
  private selectedEndpoints(s: SvcInput, network: string, selector: [string, string][]): ServiceEndpoint[] {
    const endpoints: ServiceEndpoint[] = [];
    // Terminating pods still serving, kept for a Service left without a ready one (as kube-proxy does).
    const terminating: ServiceEndpoint[] = [];
    for (const podKey of this.podsByNamespace.get(s.namespace) ?? []) {
      const pod = this.pods.get(podKey)!;
      if (!(pod.ready || pod.terminatingServing) || !matches(selector, pod.labels)) continue;
      const ep = this.endpoints.get(podKey);
      // Pods the selector picks on another network are not endpoints (the PodsOnNetwork condition names them).
      if (!ep || ep.network !== network || ep.addresses.length === 0) continue;
      (pod.ready ? endpoints : terminating).push({
        pod: podKey,
        node: ep.node,
        addresses: ep.addresses,
        ports: s.ports.map((p) => typeof p.target === "number" ? p.target : pod.named.get(`${p.target}/${p.protocol}`) ?? 0),
      });
    }
    return (endpoints.length ? endpoints : terminating).sort((a, b) => a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0);
  }

  /**
   * The ready endpoints of the Service's slices that count for `network`:
   * those whose pod is bound to it with the address, and those naming no
   * pod whose address lies in one of its subnets. A pod's entries of both
   * families (two slices) become one endpoint when their ports agree; an
   * endpoint two slices repeat (while the endpoint controller moves it)
   * counts once. Sorted by pod, then address (those naming no pod first).
   */
  private sliceEndpoints(s: SvcInput, network: string, sliceKeys: Iterable<string>, subnets: string[]): { endpoints: ServiceEndpoint[]; onNetwork: boolean } {
    const byKey = new Map<string, ServiceEndpoint>();
    // Serving but terminating: endpoints only while none is ready (as kube-proxy does).
    const terminating = new Map<string, ServiceEndpoint>();
    let prefixes: Prefix[] | undefined;
    let onNetwork = false;
    for (const sliceKey of sliceKeys) {
      const slice = this.slices.get(sliceKey)!;
      // Kubernetes names a slice port after its Service port ("" when unnamed); its number is the resolved target port.
      const ports = s.ports.map((p) => slice.ports.find((q) => q.name === (p.name ?? "") && q.protocol === p.protocol)?.port ?? 0);
      for (const e of slice.endpoints) {
        let node = e.node;
        if (e.pod) {
          const ep = this.endpoints.get(e.pod);
          // A pod on another network is not an endpoint (the PodsOnNetwork condition names it).
          if (!ep || ep.network !== network || !ep.addresses.some((a) => a === e.address || canonical(a) === e.address)) continue;
          node ??= ep.node;
        } else {
          prefixes ??= subnets.flatMap((t) => {
            const p = Prefix.tryParse(t);
            return p.ok ? [p.value] : [];
          });
          const a = IPAddress.tryParse(e.address);
          if (!a.ok || !prefixes.some((p) => p.contains(a.value))) continue;
        }
        onNetwork = true;
        const into = e.ready ? byKey : e.serving && e.terminating ? terminating : undefined;
        if (!into) continue;
        const pod = e.pod ?? "";
        const k = `${pod || e.address}|${ports.join()}`;
        const had = into.get(k);
        if (!had) into.set(k, { pod, node: node ?? "", addresses: [e.address], ports });
        else if (!had.addresses.includes(e.address)) had.addresses = [...had.addresses, e.address].sort(byFamily);
      }
    }
    const endpoints = [...(byKey.size ? byKey : terminating).values()].sort((a, b) =>
      a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : a.addresses[0] < b.addresses[0] ? -1 : a.addresses[0] > b.addresses[0] ? 1 : 0
    );
    return { endpoints, onNetwork };
  }
}

function canonical(address: string): string | undefined {
  const a = IPAddress.tryParse(address);
  return a.ok ? a.value.toString() : undefined;
}

/** IPv4 before IPv6, then by text. */
function byFamily(a: string, b: string): number {
  return Number(a.includes(":")) - Number(b.includes(":")) || (a < b ? -1 : a > b ? 1 : 0);
}


/**
 * The networks that may open connections to `network`'s endpoints: those
 * whose reachability entries allow one of its subnets as a whole (the same
 * entries that install pod → pod routes).
 *
 * @example
 * sourcesFor(table, "backend", ["10.40.0.0/16"]); // ["backend", "frontend"]
 */
export function sourcesFor(table: ReachabilityTable, network: string, subnets: string[]): string[] {
  const out: string[] = [];
  for (const [source, entries] of table.sources) {
    if (entries.some((e) => e.network === network && e.action === "allow" && (e.prefix === null || subnets.includes(e.prefix)))) out.push(source);
  }
  return out.sort();
}

function matches(selector: [string, string][], labels: Record<string, string>): boolean {
  return selector.every(([k, v]) => labels[k] === v);
}

function samePod(a: PodInput, b: PodInput): boolean {
  return a.ready === b.ready && a.terminatingServing === b.terminatingServing && JSON.stringify(a.labels) === JSON.stringify(b.labels) && JSON.stringify([...a.named]) === JSON.stringify([...b.named]);
}

/** Whether two forwardings are the same (endpoints compared entry by entry). */
export function sameService(a: ServiceForwarding, b: ServiceForwarding): boolean {
  return a.network === b.network && a.sessionAffinity === b.sessionAffinity && a.clusterIPs.join() === b.clusterIPs.join() &&
    a.sources.join() === b.sources.join() && JSON.stringify(a.ports) === JSON.stringify(b.ports) &&
    a.endpoints.length === b.endpoints.length &&
    a.endpoints.every((e, i) => {
      const f = b.endpoints[i];
      return e.pod === f.pod && e.node === f.node && e.addresses.join() === f.addresses.join() && e.ports.join() === f.ports.join();
    });
}
