/**
 * What the controller says on a Service about its network, as status
 * conditions (types prefixed `lace-cni.io/`, so they sit beside other
 * owners' conditions without clashing):
 *
 * - `lace-cni.io/NetworkBound`: True with the network and the deciding
 *   policy (or the default network); False, reason `NoBindingPolicy`, when
 *   no policy matches any more (the network annotation is then removed, with
 *   a Warning event naming the network it had), the message saying why.
 * - `lace-cni.io/PodsOnNetwork`: for a bound service, over the pods that
 *   give its endpoints (those its EndpointSlices name when it has slices or
 *   no selector, else those its selector picks: the rule of
 *   `endpointsFromSlices`), True when every such pod that has a binding is
 *   on the service's network; False, reason `PodsOnOtherNetwork`, naming
 *   the pods bound elsewhere and their networks. Absent when there is no
 *   such pod.
 *
 * @example
 * const pods = new PodsBySelector(allPods, endpoints, endpointSlices);
 * const { selected, off } = pods.offNetwork(service, "backend");  // off: [{ network: "frontend", pods: ["shop/web-0"] }]
 * const conditions = serviceConditions({ service: "shop/cart", network: "backend", policy: "p", selected, offNetwork: off });
 */
import { type Condition, endpointsFromSlices, type NetworkEndpoint, podHasFinished, readEndpointSlice, type Resource } from "../../core/mod.ts";

export const NETWORK_BOUND = "lace-cni.io/NetworkBound";
export const PODS_ON_NETWORK = "lace-cni.io/PodsOnNetwork";
/** The condition types the controller owns on a Service. */
export const SERVICE_CONDITIONS = [NETWORK_BOUND, PODS_ON_NETWORK] as const;

/** How many pods a message names before it counts the rest. */
const NAMED = 10;

/** Selected pods bound to a network other than the service's. */
export interface OffNetwork {
  network: string;
  /** `namespace/name`, sorted. */
  pods: string[];
}

/** Finds the pods a service's endpoints come from (its selector's, or its EndpointSlices') and the networks their endpoints record. */
export class PodsBySelector {
  /** `namespace\0key\0value` → pods carrying that label. */
  private readonly byLabel = new Map<string, Resource[]>();
  /** `namespace/name` → the network of the pod's own endpoint. */
  private readonly networks = new Map<string, string>();
  /** Service `namespace/name` → how many slices it has, and the pods they name. */
  private readonly sliced = new Map<string, { slices: number; pods: Set<string> }>();

  constructor(pods: Iterable<Resource>, endpoints: Iterable<NetworkEndpoint>, slices: Iterable<Resource> = []) {
    const uids = new Map<string, string | undefined>();
    for (const p of pods) {
      if (p.metadata.deletionTimestamp || podHasFinished(p)) continue;
      const ns = p.metadata.namespace ?? "default";
      uids.set(`${ns}/${p.metadata.name}`, p.metadata.uid);
      for (const [k, v] of Object.entries(p.metadata.labels ?? {})) {
        const key = `${ns}\0${k}\0${v}`;
        const list = this.byLabel.get(key);
        if (list) list.push(p);
        else this.byLabel.set(key, [p]);
      }
    }
    for (const e of endpoints) {
      const ref = e.spec?.pod;
      if (!ref || !e.spec) continue;
      const key = `${ref.namespace}/${ref.name}`;
      // A deleted namesake's endpoint says nothing about the pod of today.
      if (!uids.has(key) || (ref.uid && uids.get(key) && ref.uid !== uids.get(key))) continue;
      this.networks.set(key, e.spec.network);
    }
    for (const r of slices) {
      const slice = readEndpointSlice(r);
      if (!slice) continue;
      let s = this.sliced.get(slice.service);
      if (!s) this.sliced.set(slice.service, s = { slices: 0, pods: new Set() });
      s.slices++;
      for (const e of slice.endpoints) if (e.pod) s.pods.add(e.pod);
    }
  }

  /**
   * The pods the service's endpoints come from that are bound to a network
   * other than `network`, grouped by network: the pods its EndpointSlices
   * name (ready or not) when it has slices or no selector, else the pods
   * its selector picks. Pods without a binding yet are not counted; a
   * service without a selector or slices selects none.
   */
  offNetwork(service: Resource, network: string): { selected: number; off: OffNetwork[] } {
    const selector = (service.spec as { selector?: unknown } | undefined)?.selector;
    const hasSelector = isLabelMap(selector) && Object.keys(selector).length > 0;
    const ns = service.metadata.namespace ?? "default";
    const sliced = this.sliced.get(`${ns}/${service.metadata.name}`);
    let candidates: Iterable<string>;
    if (endpointsFromSlices(hasSelector, sliced?.slices ?? 0)) {
      candidates = sliced?.pods ?? [];
    } else {
      const [first, ...rest] = Object.entries(selector as Record<string, string>);
      candidates = (this.byLabel.get(`${ns}\0${first[0]}\0${first[1]}`) ?? [])
        .filter((p) => rest.every(([k, v]) => p.metadata.labels?.[k] === v))
        .map((p) => `${ns}/${p.metadata.name}`);
    }
    const off = new Map<string, string[]>();
    let selected = 0;
    for (const key of candidates) {
      const on = this.networks.get(key);
      if (on === undefined) continue;
      selected++;
      if (on === network) continue;
      const list = off.get(on);
      if (list) list.push(key);
      else off.set(on, [key]);
    }
    return {
      selected,
      off: [...off].map(([n, pods]) => ({ network: n, pods: pods.sort() })).sort((a, b) => a.network.localeCompare(b.network)),
    };
  }
}

function isLabelMap(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
}

/** What the controller knows about one service this pass. */
export interface ServiceFacts {
  /** `namespace/name`. */
  service: string;
  /** The service's network now; null when nothing binds it. */
  network: string | null;
  policy: string | null;
  /** Why nothing binds it. */
  error?: string;
  /** How many of the pods its endpoints come from have a binding (0 without a selector or slices). */
  selected?: number;
  /** Those of them on other networks. */
  offNetwork?: OffNetwork[];
}

/** The service's lace-cni conditions, without transition times. */
export function serviceConditions(f: ServiceFacts): Condition[] {
  const out: Condition[] = [];
  if (f.network === null) {
    out.push({ type: NETWORK_BOUND, status: "False", reason: "NoBindingPolicy", message: `Service "${f.service}" has no network: ${f.error ?? "no binding policy matches it"}` });
    return out;
  }
  const by = f.policy ? `policy "${f.policy}"` : "the default network";
  out.push({ type: NETWORK_BOUND, status: "True", reason: f.policy ? "PolicyMatched" : "DefaultNetwork", message: `Service "${f.service}" is bound to network "${f.network}" by ${by}` });
  // No selector, or no selected pod bound yet: nothing to compare.
  if (!f.selected) return out;
  const off = f.offNetwork ?? [];
  if (off.length === 0) {
    // No count in the message: a scaling workload would rewrite the status at every pass.
    out.push({ type: PODS_ON_NETWORK, status: "True", reason: "AllPodsOnNetwork", message: `The pods service "${f.service}" selects are bound to its network "${f.network}"` });
  } else {
    out.push({ type: PODS_ON_NETWORK, status: "False", reason: "PodsOnOtherNetwork", message: offNetworkMessage(f.service, f.network, off) });
  }
  return out;
}

/**
 * Names the pods (the first ten, then a count) and both networks:
 * `Service "shop/cart" is on network "b", but 3 of the pods it selects are bound to another network: shop/a, shop/c to network "a"; shop/d to network "c"`.
 */
export function offNetworkMessage(service: string, network: string, off: OffNetwork[]): string {
  let named = 0;
  const parts = off.map((o) => {
    const shown = o.pods.slice(0, Math.max(0, NAMED - named));
    named += shown.length;
    const more = o.pods.length - shown.length;
    const who = shown.length ? shown.join(", ") + (more ? ` and ${more} more` : "") : `${more} pods`;
    return `${who} to network "${o.network}"`;
  });
  const count = off.reduce((n, o) => n + o.pods.length, 0);
  return `Service "${service}" is on network "${network}", but ${count} of the pods it selects ${count === 1 ? "is" : "are"} bound to another network: ${parts.join("; ")}`;
}
