/**
 * What an l2 network learns on this node: addresses and MACs that appear
 * without a pod of ours (a VM's second address, a guest behind a bridge in
 * the VM), reported by the dataplane, written as Neighbor (IP → MAC) and
 * FDBEntry (MAC → node) resources with `source: learned`, so every node's
 * datapath follows them. A MAC seen here that lived on another node moves
 * here with a higher sequence number (the new location wins everywhere);
 * a MAC that moves more often than the flap limit is frozen where it is
 * for a hold time (and the agent is told); an entry of this node that
 * stays silent for `ageMs` is removed.
 *
 * Static entries (a pod's own MAC and addresses, from its NetworkEndpoint)
 * are never learned over, moved or aged.
 *
 * @example
 * const learner = new L2Learner(store, "node-1", { ageMs: 300_000 });
 * await learner.observe([{ network: "storage", mac: "02:00:00:00:00:99", ip: "10.50.0.99" }]);
 * await learner.expire(); // removes this node's learned entries silent for longer than ageMs
 */
import { l2EntryName } from "../../core/controller/mod.ts";
import { type Clock, type FDBEntry, isStoreError, type Neighbor, type Store, systemClock } from "../../core/mod.ts";

/** One sighting the dataplane reports (PodDataplane.sightings). */
export interface L2Sighting {
  network: string;
  mac: string;
  ip?: string;
}

export interface L2LearnerOptions {
  /** How long a learned entry of this node lives without a sighting. Default 5 minutes. */
  ageMs?: number;
  /** A MAC that moves more than `moves` times within `windowMs` is frozen where it is for `holdMs`. Default 5 in 10 s, held 60 s. */
  flap?: { moves?: number; windowMs?: number; holdMs?: number };
  clock?: Clock;
  /** Told when a MAC is frozen for flapping (the agent logs it). */
  onFlap?: (network: string, mac: string, node: string, until: string) => void;
}

const API = "lace-cni.io/v1alpha1";

export { l2EntryName };

export class L2Learner {
  readonly ageMs: number;
  private readonly clock: Clock;
  private readonly flap: { moves: number; windowMs: number; holdMs: number };
  private readonly onFlap?: L2LearnerOptions["onFlap"];

  constructor(private readonly store: Store, private readonly node: string, options: L2LearnerOptions = {}) {
    this.ageMs = options.ageMs ?? 300_000;
    this.clock = options.clock ?? systemClock;
    this.flap = { moves: options.flap?.moves ?? 5, windowMs: options.flap?.windowMs ?? 10_000, holdMs: options.flap?.holdMs ?? 60_000 };
    this.onFlap = options.onFlap;
  }

  /** Writes what the sightings teach; returns how many resources it created or changed. */
  async observe(sightings: readonly L2Sighting[]): Promise<number> {
    let writes = 0;
    for (const s of sightings) {
      const mac = s.mac.toLowerCase();
      writes += await this.learnMac(s.network, mac);
      if (s.ip) writes += await this.learnAddress(s.network, s.ip, mac);
    }
    return writes;
  }

  /** Removes this node's learned entries that were not seen for `ageMs`, and the addresses of those MACs. */
  async expire(): Promise<number> {
    const cutoff = this.clock.now() - this.ageMs;
    const gone = new Set<string>();
    for (const e of (await this.store.list<FDBEntry>("FDBEntry")).items) {
      if (e.spec?.source !== "learned" || e.spec.node !== this.node || !silentSince(e.spec.lastSeen, cutoff)) continue;
      if (await this.remove("FDBEntry", e)) gone.add(`${e.spec.network}|${e.spec.mac.toLowerCase()}`);
    }
    let removed = gone.size;
    for (const n of (await this.store.list<Neighbor>("Neighbor")).items) {
      if (n.spec?.source !== "learned") continue;
      if (gone.has(`${n.spec.network}|${n.spec.mac.toLowerCase()}`) || (silentSince(n.spec.lastSeen, cutoff) && this.seenHere(n))) {
        if (await this.remove("Neighbor", n)) removed++;
      }
    }
    return removed;
  }

  private seenHere(n: Neighbor): boolean {
    return n.metadata.labels?.["lace-cni.io/node"] === this.node;
  }

  private async learnMac(network: string, mac: string): Promise<number> {
    const name = l2EntryName(network, mac);
    const now = new Date(this.clock.now()).toISOString();
    const have = await this.store.get<FDBEntry>("FDBEntry", name);
    if (!have?.spec) {
      return this.write(() => this.store.create<FDBEntry>({
        apiVersion: API, kind: "FDBEntry", metadata: { name, labels: { "lace-cni.io/network": network, "lace-cni.io/node": this.node } },
        spec: { network, mac, node: this.node, source: "learned", sequence: 0, lastSeen: now },
      }));
    }
    // A static entry (configured by hand) pins the MAC where it says.
    if (have.spec.source !== "learned") return 0;
    if (have.spec.node === this.node && !this.needsRefresh(have.spec.lastSeen)) return 0;
    // Seen here: here it lives. A move carries the next sequence number, so every node takes the new place.
    const moved = have.spec.node !== this.node;
    if (!moved) {
      return this.write(() => this.store.update<FDBEntry>({ ...have, spec: { ...have.spec!, lastSeen: now } }));
    }
    // A MAC that flaps between nodes is frozen where it is for a while, instead of ping-ponging.
    if (have.spec.frozenUntil && Date.parse(have.spec.frozenUntil) > this.clock.now()) return 0;
    const recent = [...(have.spec.recentMoves ?? []).filter((t) => Date.parse(t) > this.clock.now() - this.flap.windowMs), now];
    if (recent.length > this.flap.moves) {
      const until = new Date(this.clock.now() + this.flap.holdMs).toISOString();
      // The count starts again after the hold (a hold shorter than the window must not freeze it again at once).
      const wrote = await this.write(() => this.store.update<FDBEntry>({ ...have, spec: { ...have.spec!, recentMoves: [], frozenUntil: until } }));
      if (wrote) this.onFlap?.(network, mac, have.spec.node, until);
      return wrote;
    }
    const { frozenUntil: _expired, ...spec } = have.spec;
    return this.write(() => this.store.update<FDBEntry>({
      ...have,
      metadata: { ...have.metadata, labels: { ...have.metadata.labels, "lace-cni.io/node": this.node } },
      spec: { ...spec, node: this.node, sequence: (have.spec!.sequence ?? 0) + 1, lastSeen: now, recentMoves: recent.slice(-32) },
    }));
  }

  private async learnAddress(network: string, ip: string, mac: string): Promise<number> {
    const name = l2EntryName(network, ip);
    const now = new Date(this.clock.now()).toISOString();
    const have = await this.store.get<Neighbor>("Neighbor", name);
    const labels = { "lace-cni.io/network": network, "lace-cni.io/node": this.node };
    if (!have?.spec) {
      return this.write(() => this.store.create<Neighbor>({
        apiVersion: API, kind: "Neighbor", metadata: { name, labels }, spec: { network, ip, mac, source: "learned", lastSeen: now },
      }));
    }
    if (have.spec.source !== "learned") return 0;
    if (have.spec.mac.toLowerCase() === mac && this.seenHere(have) && !this.needsRefresh(have.spec.lastSeen)) return 0;
    return this.write(() => this.store.update<Neighbor>({
      ...have, metadata: { ...have.metadata, labels: { ...have.metadata.labels, ...labels } }, spec: { ...have.spec!, mac, lastSeen: now },
    }));
  }

  /** A learned entry's `lastSeen` is rewritten at most every tenth of the age: not on every sighting. */
  private needsRefresh(lastSeen: string | undefined): boolean {
    return silentSince(lastSeen, this.clock.now() - this.ageMs / 10);
  }

  private async write(fn: () => Promise<unknown>): Promise<number> {
    try {
      await fn();
      return 1;
    } catch (e) {
      // Another node learned or moved it at the same moment: the next sighting settles it.
      if (isStoreError(e, "Conflict") || isStoreError(e, "AlreadyExists")) return 0;
      throw e;
    }
  }

  private async remove(kind: "FDBEntry" | "Neighbor", r: FDBEntry | Neighbor): Promise<boolean> {
    try {
      await this.store.delete(kind, r.metadata.name, undefined, { resourceVersion: r.metadata.resourceVersion });
      return true;
    } catch (e) {
      if (isStoreError(e, "NotFound") || isStoreError(e, "Conflict")) return false;
      throw e;
    }
  }
}

function silentSince(lastSeen: string | undefined, cutoff: number): boolean {
  const t = lastSeen ? Date.parse(lastSeen) : Number.NaN;
  return Number.isNaN(t) || t < cutoff;
}
