/**
 * The agent's writes of an l2 endpoint's own Neighbor and FDBEntry
 * resources (core/controller/l2_entries.ts says which): published when it
 * attaches the endpoint, withdrawn when the attachment ends. Every node's
 * datapath follows these resources, so an endpoint is forwardable once
 * they are written and not after they are gone.
 *
 * An FDBEntry that names another node is taken over with the next sequence
 * number (the endpoint moved here: live migration), so every node takes the
 * new place; withdrawing leaves an entry that already names another node
 * (the endpoint's new place wrote it), and the Neighbors with it.
 *
 * @example
 * const written = await publishL2Entries(store, endpoint);   // [Neighbor…, FDBEntry]: feed them to the state engine
 * const removed = await withdrawL2Entries(store, endpoint, "node-1");
 */
import { endpointL2Entries } from "../../core/controller/mod.ts";
import { type FDBEntry, isStoreError, type Neighbor, type NetworkEndpoint, type Store } from "../../core/mod.ts";

/** Writes the endpoint's static Neighbors and FDBEntry; returns what the store holds afterwards. */
export async function publishL2Entries(store: Store, ep: NetworkEndpoint): Promise<(Neighbor | FDBEntry)[]> {
  const want = endpointL2Entries(ep);
  if (!want) return [];
  const fdb = await upsert<FDBEntry>(store, want.fdb, (have) => {
    const s = have.spec!;
    const w = want.fdb.spec!;
    if (s.source === "static" && s.node === w.node && s.mac === w.mac) return undefined;
    // Here now (moved, or learned here before its pod's ADD): a move carries the next sequence number.
    return { ...w, sequence: (s.sequence ?? 0) + (s.node === w.node ? 0 : 1) };
  });
  const neighbors = await Promise.all(want.neighbors.map((n) => upsert<Neighbor>(store, n, (have) => {
    const s = have.spec!;
    return s.source === "static" && s.mac === n.spec!.mac && s.ip === n.spec!.ip ? undefined : n.spec;
  })));
  return [...neighbors, fdb];
}

/**
 * Removes the endpoint's entries while its MAC still lives on `node`;
 * returns the removed resources (to unfeed).
 */
export async function withdrawL2Entries(store: Store, ep: NetworkEndpoint, node: string): Promise<(Neighbor | FDBEntry)[]> {
  const want = endpointL2Entries({ ...ep, spec: { ...ep.spec!, node, detachedAt: undefined } });
  if (!want) return [];
  const removed: (Neighbor | FDBEntry)[] = [];
  const fdb = await store.get<FDBEntry>("FDBEntry", want.fdb.metadata.name);
  if (fdb?.spec && fdb.spec.node !== node) return removed;
  if (fdb && await remove(store, fdb)) removed.push(fdb);
  for (const n of want.neighbors) {
    const have = await store.get<Neighbor>("Neighbor", n.metadata.name);
    // Only the endpoint's own: an address that another MAC took since stays.
    if (have?.spec?.mac.toLowerCase() === want.fdb.spec!.mac && await remove(store, have)) removed.push(have);
  }
  return removed;
}

/** Creates `r`, or updates what is there with `change(have)` (undefined: as it is); retries a conflict. */
async function upsert<T extends Neighbor | FDBEntry>(store: Store, r: T, change: (have: T) => T["spec"] | undefined): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const have = await store.get<T>(r.kind, r.metadata.name);
      if (!have?.spec) return await store.create<T>(r);
      const spec = change(have);
      if (!spec) return have;
      return await store.update<T>({ ...have, metadata: { ...have.metadata, labels: r.metadata.labels }, spec } as T);
    } catch (e) {
      if (attempt < 5 && (isStoreError(e, "Conflict") || isStoreError(e, "AlreadyExists"))) continue;
      throw e;
    }
  }
}

async function remove(store: Store, r: Neighbor | FDBEntry): Promise<boolean> {
  try {
    await store.delete(r.kind, r.metadata.name, undefined, { resourceVersion: r.metadata.resourceVersion });
    return true;
  } catch (e) {
    if (isStoreError(e, "NotFound") || isStoreError(e, "Conflict")) return false;
    throw e;
  }
}
