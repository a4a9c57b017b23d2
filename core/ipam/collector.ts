/**
 * Leak collection: reclaims addresses whose owner is gone (a pod deleted
 * while its node was down, a CNI DEL that never came, a pod deleted between
 * two sandboxes). An address is reclaimed only after its owner was seen
 * gone on two separate passes and at least `grace` ms after the first
 * (GoneSightings), so an owner that is merely slow to appear (a pod whose
 * API object lags its sandbox) keeps its address.
 *
 * The sightings are the only state kept in memory, on purpose: losing them
 * in a restart only delays a reclaim, it never reclaims early. The reclaim
 * itself is a compare-and-swap on the Allocation that still names the same
 * owner at the same address.
 *
 * @example
 * const gc = new AddressCollector(store, { isAlive: (owner) => pods.has(owner), grace: 60_000 });
 * await gc.collect();  // run periodically; returns what it reclaimed
 */
import { type Clock, systemClock } from "../plugin/tokens.ts";
import type { Allocation } from "../resources/types.ts";
import { isStoreError, type Store } from "../store/store.ts";
import { isPoolRecord, L2_POOL_NODE, NETWORK_LABEL, timestamp } from "./layout.ts";
import { GoneSightings } from "./sightings.ts";

/** Whether an owner handle still exists: `network` is where the address is held. */
export type OwnerLiveness = (owner: string, network: string) => boolean | Promise<boolean>;

export interface AddressCollectorOptions {
  isAlive: OwnerLiveness;
  /** Minimum ms between the first sighting of a gone owner and the reclaim. Default 5 minutes. */
  grace?: number;
  clock?: Clock;
}

/** One address taken back. */
export interface Reclaimed {
  network: string;
  /** The Allocation it was recorded in. */
  allocation: string;
  owner: string;
  address: string;
}

export class AddressCollector {
  private readonly isAlive: OwnerLiveness;
  private readonly clock: Clock;
  private readonly sightings: GoneSightings;

  constructor(private readonly store: Store, options: AddressCollectorOptions) {
    this.isAlive = options.isAlive;
    this.sightings = new GoneSightings(options.grace ?? 300_000);
    this.clock = options.clock ?? systemClock;
  }

  /** One pass over every IPAM Allocation, or over one network's. */
  async collect(network?: string): Promise<Reclaimed[]> {
    const now = this.clock.now();
    const { items } = await this.store.list<Allocation>("Allocation", network ? { labelSelector: `${NETWORK_LABEL}=${network}` } : {});
    const seen = new Set<string>();
    const due = new Map<string, { owner: string; address: string }[]>();
    for (const a of items) {
      const spec = a.spec;
      if (!spec || (isPoolRecord(a) && spec.node !== L2_POOL_NODE)) continue;
      for (const b of spec.blocks) {
        for (const [owner, address] of Object.entries(b.addresses ?? {})) {
          const key = `${a.metadata.name}\0${owner}\0${address}`;
          seen.add(key);
          if (await this.isAlive(owner, spec.network)) {
            this.sightings.forget(key);
            continue;
          }
          if (this.sightings.gone(key, now)) {
            const list = due.get(a.metadata.name) ?? [];
            list.push({ owner, address });
            due.set(a.metadata.name, list);
          }
        }
      }
    }
    this.sightings.retain(seen);
    const reclaimed: Reclaimed[] = [];
    for (const [name, list] of due) {
      for (const r of await this.reclaim(name, list, now)) {
        this.sightings.forget(`${name}\0${r.owner}\0${r.address}`);
        reclaimed.push(r);
      }
    }
    return reclaimed;
  }

  /** Removes the listed owner → address entries that are still exactly so. */
  private async reclaim(name: string, list: { owner: string; address: string }[], now: number): Promise<Reclaimed[]> {
    for (let attempt = 1;; attempt++) {
      const a = await this.store.get<Allocation>("Allocation", name);
      if (!a?.spec) return [];
      const done: Reclaimed[] = [];
      for (const b of a.spec.blocks) {
        for (const { owner, address } of list) {
          if (b.addresses?.[owner] !== address) continue;
          delete b.addresses[owner];
          if (Object.keys(b.addresses).length === 0) b.emptySince = timestamp(now);
          done.push({ network: a.spec.network, allocation: name, owner, address });
        }
      }
      if (!done.length) return [];
      try {
        await this.store.update(a);
        return done;
      } catch (e) {
        if (!isStoreError(e, "Conflict") || attempt >= 50) throw e;
      }
    }
  }
}
