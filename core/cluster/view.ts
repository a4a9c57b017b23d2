/**
 * A {@link ClusterView} over a set of resources, indexed once and kept
 * current by `update` / `remove` (the controller feeds it watch events).
 *
 * External networks are those with `spec.externalPrefixes` (only the
 * `external` type may have them); their prefixes go into one
 * longest-prefix-match table, rebuilt on the next lookup after an external
 * network changes. When two external networks list the same prefix, the
 * smaller name wins so the answer is stable.
 *
 * @example
 * const view = new SnapshotClusterView([corp, lab, backend, allocation]);
 * view.externalNetworkFor(IPAddress.parse("192.0.2.200")); // { network: "lab", prefix: "192.0.2.128/25" }
 * view.update(otherAllocation);
 */
import { IPAddress, Prefix, PrefixTable } from "../ip/mod.ts";
import type { ClusterView } from "../plugin/api.ts";
import type { Allocation, FDBEntry, Neighbor, Network, NetworkEndpoint, Resource } from "../resources/types.ts";

type Index<R> = Map<string, Map<string, R>>;

function keyOf(r: Resource): string {
  return `${r.kind}/${r.metadata.namespace ?? ""}/${r.metadata.name}`;
}

function canonicalIp(ip: string): string {
  const r = IPAddress.tryParse(ip);
  return r.ok ? r.value.toString() : ip;
}

function indexAdd<R>(index: Index<R>, group: string, key: string, r: R): void {
  let m = index.get(group);
  if (!m) index.set(group, m = new Map());
  m.set(key, r);
}

function indexDelete<R>(index: Index<R>, group: string, key: string): void {
  const m = index.get(group);
  if (!m) return;
  m.delete(key);
  if (m.size === 0) index.delete(group);
}

function isExternal(n: Resource): boolean {
  return n.kind === "Network" && Array.isArray((n as Network).spec?.externalPrefixes);
}

export class SnapshotClusterView implements ClusterView {
  private readonly objects = new Map<string, Resource>();
  private readonly networksByName = new Map<string, Network>();
  private readonly allocationsByNetwork: Index<Allocation> = new Map();
  private readonly endpointsByNetwork: Index<NetworkEndpoint> = new Map();
  /** `network/ip` → Neighbors claiming it. */
  private readonly neighbors: Index<Neighbor> = new Map();
  /** `network/mac` → FDBEntries claiming it. */
  private readonly fdb: Index<FDBEntry> = new Map();
  private external: PrefixTable<{ network: string; prefix: string }> | undefined;

  constructor(resources: Iterable<Resource> = []) {
    for (const r of resources) this.update(r);
  }

  /** Adds or replaces one resource (matched by kind, namespace and name). */
  update(r: Resource): void {
    const key = keyOf(r);
    const old = this.objects.get(key);
    if (old) this.unindex(old, key);
    this.objects.set(key, r);
    this.index(r, key);
  }

  /** Removes one resource; unknown resources are ignored. */
  remove(r: Pick<Resource, "kind" | "metadata">): void {
    const key = keyOf(r as Resource);
    const old = this.objects.get(key);
    if (!old) return;
    this.unindex(old, key);
    this.objects.delete(key);
  }

  network(name: string): Network | undefined {
    return this.networksByName.get(name);
  }

  networks(): Iterable<Network> {
    return this.networksByName.values();
  }

  allocations(network: string): Iterable<Allocation> {
    return this.allocationsByNetwork.get(network)?.values() ?? [];
  }

  endpoints(network: string): Iterable<NetworkEndpoint> {
    return this.endpointsByNetwork.get(network)?.values() ?? [];
  }

  /** The Neighbor for `ip`; a static entry wins over a learned one. */
  neighbor(network: string, ip: string): Neighbor | undefined {
    const m = this.neighbors.get(`${network}/${canonicalIp(ip)}`);
    if (!m) return undefined;
    let best: Neighbor | undefined;
    for (const n of m.values()) {
      if (!best || (n.spec?.source === "static" && best.spec?.source !== "static")) best = n;
    }
    return best;
  }

  /** The FDBEntry for `mac`; the highest mobility sequence number wins. */
  fdbEntry(network: string, mac: string): FDBEntry | undefined {
    const m = this.fdb.get(`${network}/${mac.toLowerCase()}`);
    if (!m) return undefined;
    let best: FDBEntry | undefined;
    for (const e of m.values()) {
      if (!best || (e.spec?.sequence ?? 0) > (best.spec?.sequence ?? 0)) best = e;
    }
    return best;
  }

  externalNetworkFor(address: IPAddress): { network: string; prefix: string } | undefined {
    if (!this.external) this.external = this.buildExternal();
    return this.external.lookup(address)?.value;
  }

  private buildExternal(): PrefixTable<{ network: string; prefix: string }> {
    const table = new PrefixTable<{ network: string; prefix: string }>();
    const names = [...this.networksByName.keys()].sort().reverse();
    // Smallest name last, so it overwrites larger ones on a shared prefix.
    for (const name of names) {
      const n = this.networksByName.get(name)!;
      if (!isExternal(n)) continue;
      for (const text of n.spec!.externalPrefixes!) {
        const p = Prefix.tryParse(text);
        if (p.ok) table.set(p.value, { network: name, prefix: p.value.toString() });
      }
    }
    return table;
  }

  private index(r: Resource, key: string): void {
    const spec = r.spec as Record<string, unknown> | undefined;
    switch (r.kind) {
      case "Network":
        this.networksByName.set(r.metadata.name, r as Network);
        if (isExternal(r)) this.external = undefined;
        return;
      case "Allocation":
        if (typeof spec?.network === "string") indexAdd(this.allocationsByNetwork, spec.network, key, r as Allocation);
        return;
      case "NetworkEndpoint":
        if (typeof spec?.network === "string") indexAdd(this.endpointsByNetwork, spec.network, key, r as NetworkEndpoint);
        return;
      case "Neighbor":
        if (typeof spec?.network === "string" && typeof spec.ip === "string") {
          indexAdd(this.neighbors, `${spec.network}/${canonicalIp(spec.ip)}`, key, r as Neighbor);
        }
        return;
      case "FDBEntry":
        if (typeof spec?.network === "string" && typeof spec.mac === "string") {
          indexAdd(this.fdb, `${spec.network}/${spec.mac.toLowerCase()}`, key, r as FDBEntry);
        }
        return;
    }
  }

  private unindex(r: Resource, key: string): void {
    const spec = r.spec as Record<string, unknown> | undefined;
    switch (r.kind) {
      case "Network":
        if (this.networksByName.get(r.metadata.name) === r) this.networksByName.delete(r.metadata.name);
        if (isExternal(r)) this.external = undefined;
        return;
      case "Allocation":
        if (typeof spec?.network === "string") indexDelete(this.allocationsByNetwork, spec.network, key);
        return;
      case "NetworkEndpoint":
        if (typeof spec?.network === "string") indexDelete(this.endpointsByNetwork, spec.network, key);
        return;
      case "Neighbor":
        if (typeof spec?.network === "string" && typeof spec.ip === "string") {
          indexDelete(this.neighbors, `${spec.network}/${canonicalIp(spec.ip)}`, key);
        }
        return;
      case "FDBEntry":
        if (typeof spec?.network === "string" && typeof spec.mac === "string") {
          indexDelete(this.fdb, `${spec.network}/${spec.mac.toLowerCase()}`, key);
        }
        return;
    }
  }
}
