/**
 * Releases the bindings of deleted and finished pods. A pod's
 * NetworkEndpoint outlives its sandboxes (the agent keeps it, detached,
 * between two of them), so when the Pod object goes (or the pod finishes)
 * while no sandbox is left to DEL, nothing on the node releases it: this
 * does. An endpoint whose pod (namespace, name and, when recorded, UID) is
 * gone or finished is deleted once it was seen so on two passes
 * a grace period apart (GoneSightings, as for addresses), with a
 * compare-and-swap on the version seen, so a pod of the same name that got
 * the endpoint meanwhile keeps it. Its addresses are the AddressCollector's:
 * their owner is gone too, and they go after the same grace.
 *
 * Endpoints that name no pod (hosts outside the cluster) are never collected.
 *
 * @example
 * const collector = new EndpointCollector(store, { grace: 300_000, clock });
 * await collector.collect(endpoints, livePods(pods));  // ["team-a/web-0"]: the endpoints deleted
 */
import { withdrawL2Entries } from "../node/l2_entries.ts";
import { type Clock, GoneSightings, isStoreError, type NetworkEndpoint, podHasFinished, type Resource, type Store, systemClock } from "../../core/mod.ts";

/** Live pods by `namespace/name`, with their UID. */
export type LivePods = ReadonlyMap<string, string | undefined>;

/**
 * The pods whose bindings live on: every pod but the finished ones
 * (Succeeded, Failed), which never get another sandbox. A pod whose
 * last DEL came before it was marked finished would otherwise hold its
 * binding and addresses until its Pod object is deleted.
 */
export function livePods(pods: Iterable<Resource>): LivePods {
  const out = new Map<string, string | undefined>();
  for (const p of pods) if (!podHasFinished(p)) out.set(`${p.metadata.namespace ?? "default"}/${p.metadata.name}`, p.metadata.uid);
  return out;
}

export interface EndpointCollectorOptions {
  /** Minimum ms between the first sighting of a pod gone and the release. Default 5 minutes. */
  grace?: number;
  clock?: Clock;
}

export class EndpointCollector {
  private readonly sightings: GoneSightings;
  private readonly clock: Clock;

  constructor(private readonly store: Store, options: EndpointCollectorOptions = {}) {
    this.sightings = new GoneSightings(options.grace ?? 300_000);
    this.clock = options.clock ?? systemClock;
  }

  /** The grace period, in ms. */
  get grace(): number {
    return this.sightings.grace;
  }

  /** One pass; returns the endpoints deleted, as `namespace/name`. */
  async collect(endpoints: Iterable<NetworkEndpoint>, pods: LivePods): Promise<string[]> {
    const now = this.clock.now();
    const present = new Set<string>();
    const due: NetworkEndpoint[] = [];
    for (const ep of endpoints) {
      const ref = ep.spec?.pod;
      if (!ref) continue;
      const key = `${ep.metadata.namespace}/${ep.metadata.name}\0${ref.uid ?? ""}`;
      present.add(key);
      const uid = pods.get(`${ref.namespace}/${ref.name}`);
      const alive = pods.has(`${ref.namespace}/${ref.name}`) && (!ref.uid || !uid || uid === ref.uid);
      if (alive) this.sightings.forget(key);
      else if (this.sightings.gone(key, now)) due.push(ep);
    }
    this.sightings.retain(present);
    const deleted: string[] = [];
    for (const ep of due) {
      const name = `${ep.metadata.namespace}/${ep.metadata.name}`;
      this.sightings.forget(`${name}\0${ep.spec!.pod!.uid ?? ""}`);
      try {
        await this.store.delete("NetworkEndpoint", ep.metadata.name, ep.metadata.namespace, { resourceVersion: ep.metadata.resourceVersion });
        deleted.push(name);
        // An l2 endpoint whose node never ran its DEL (a node lost) leaves its Neighbors and FDBEntry: they go too.
        if (ep.spec?.mac) await withdrawL2Entries(this.store, ep, ep.spec.node);
      } catch (e) {
        // Gone already, or written since it was seen (a new pod of the name): not ours to delete.
        if (!isStoreError(e, "NotFound") && !isStoreError(e, "Conflict")) throw e;
      }
    }
    return deleted;
  }
}
