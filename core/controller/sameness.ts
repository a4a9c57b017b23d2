/**
 * Equality of the builder's values, so an unchanged input keeps its
 * previous object (and a listener sees no change).
 *
 * @example
 * deepEqual({ a: [1, 2] }, { a: [1, 2] }); // true
 * sameList([1, 2], [1, 2], (x, y) => x === y); // true
 */
import type { LocalEndpoint } from "../dataplane/desired_state.ts";

export function sameList<T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !same(a[i], b[i])) return false;
  return true;
}

export function sameLocalEndpoint(a: LocalEndpoint, b: LocalEndpoint): boolean {
  return a.id === b.id && a.network === b.network && a.interface === b.interface && a.mac === b.mac && a.netns === b.netns &&
    sameList(a.addresses, b.addresses, (x, y) => x === y);
}

/** Structural equality of plain JSON values, with shared (identical) parts skipped. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b as object, k) || !deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
