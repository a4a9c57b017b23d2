/**
 * Node locators: each node gets one `locatorLength` prefix of the
 * Topology's pool, recorded in Topology `status.locators`. A node keeps its
 * locator for as long as it is in the map; new nodes take the lowest free
 * index (index 0 is skipped so no locator is the pool's own address).
 *
 * @example
 * assignLocators(topology, ["node-1", "node-2"]);
 * // { locators: { "node-1": "fd00:1ace:1::/48", "node-2": "fd00:1ace:2::/48" }, added: [...], exhausted: [] }
 */
import { Prefix, type Topology } from "../../core/mod.ts";

export interface LocatorAssignment {
  locators: Record<string, string>;
  /** Nodes given a locator now. */
  added: string[];
  /** Nodes left without one: the pool is full. */
  exhausted: string[];
}

/** Gives every node in `nodes` a locator, keeping the ones already recorded (also for nodes not listed). */
export function assignLocators(topology: Topology, nodes: Iterable<string>): LocatorAssignment {
  const pool = Prefix.parse(topology.spec!.locatorPool);
  const length = topology.spec!.locatorLength;
  const locators: Record<string, string> = { ...(topology.status?.locators ?? {}) };
  const used = new Set<bigint>();
  for (const text of Object.values(locators)) {
    const p = Prefix.tryParse(text);
    if (p.ok && p.value.length === length && pool.covers(p.value)) used.add(pool.blockIndex(p.value));
  }
  const count = pool.blockCount(length);
  const added: string[] = [];
  const exhausted: string[] = [];
  let next = 1n;
  for (const node of [...nodes].sort()) {
    if (locators[node]) continue;
    while (used.has(next)) next++;
    if (next >= count) {
      exhausted.push(node);
      continue;
    }
    used.add(next);
    locators[node] = pool.block(length, next).toString();
    added.push(node);
  }
  return { locators, added, exhausted };
}
