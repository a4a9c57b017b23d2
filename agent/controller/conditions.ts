/**
 * Status conditions the controller owns on an object that may carry other
 * owners' conditions too: its own types are replaced by what it wants now,
 * the rest are left alone. A condition whose status did not change keeps
 * its transition time, as `metav1.Condition` asks.
 *
 * @example
 * mergeConditions(net.status?.conditions ?? [], ["Accepted", "Ready"], wanted, new Date().toISOString(), net.metadata.generation);
 */
import type { Condition } from "../../core/mod.ts";

/** `current` with the `owned` types replaced by `wanted` (an owned type not wanted goes). */
export function mergeConditions(current: Condition[], owned: readonly string[], wanted: Condition[], now: string, generation?: number): Condition[] {
  const out = current.filter((c) => !owned.includes(c.type));
  for (const w of wanted) {
    const cur = current.find((c) => c.type === w.type);
    out.push(cur && sameCondition(cur, w) ? cur : {
      ...w,
      lastTransitionTime: cur && cur.status === w.status ? cur.lastTransitionTime ?? now : now,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
  }
  return out;
}

/** Whether the `owned` conditions of `current` already say exactly `wanted`. */
export function conditionsSay(current: Condition[], owned: readonly string[], wanted: Condition[]): boolean {
  const mine = current.filter((c) => owned.includes(c.type));
  return mine.length === wanted.length && wanted.every((w) => mine.some((c) => c.type === w.type && sameCondition(c, w)));
}

function sameCondition(a: Condition, b: Condition): boolean {
  return a.status === b.status && a.reason === b.reason && a.message === b.message;
}
