/**
 * Whether two desired states of a node differ only in their Services (and
 * revision): then an apply needs to write the Services' table alone, not
 * read back and diff links, routes, rules and neighbours. A state whose
 * Services are the same objects too is not "only Services changed": its
 * apply is a request to reconcile (a retry, a resync) and goes in full.
 * The rest is compared by structure, identical parts skipped (the agent's
 * apply worker keeps unchanged parts' identity: state_transfer.ts).
 *
 * @example
 * onlyServicesChanged(applied, { ...applied, revision: 8, services: [svc] }); // true
 * onlyServicesChanged(applied, { ...applied, revision: 8 });                 // false: a resync
 * onlyServicesChanged(applied, { ...applied, endpoints: [], services: [svc] }); // false
 */
import { deepEqual, type NodeDesiredState } from "../../core/plugin/mod.ts";

/** How often a state is reconciled in full at least, however few its changes: kernel drift is repaired then. */
export const FULL_RECONCILE_EVERY_MS = 30_000;

const IGNORED = new Set(["services", "revision"]);

export function onlyServicesChanged(a: NodeDesiredState, b: NodeDesiredState): boolean {
  if (a === b || sameObjects(a.services ?? [], b.services ?? [])) return false;
  return sameBesideServices(a, b);
}

/** The same state again (its Services the same objects, the rest the same structure): a retry or a resync. */
export function sameState(a: NodeDesiredState, b: NodeDesiredState): boolean {
  return a === b || (sameObjects(a.services ?? [], b.services ?? []) && sameBesideServices(a, b));
}

function sameBesideServices(a: NodeDesiredState, b: NodeDesiredState): boolean {
  const ka = Object.keys(a).filter((k) => !IGNORED.has(k));
  const kb = Object.keys(b).filter((k) => !IGNORED.has(k));
  if (ka.length !== kb.length) return false;
  const ra = a as unknown as Record<string, unknown>;
  const rb = b as unknown as Record<string, unknown>;
  for (const k of ka) if (!Object.hasOwn(rb, k) || !deepEqual(ra[k], rb[k])) return false;
  return true;
}

function sameObjects<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
