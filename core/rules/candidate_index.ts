/**
 * Which policies could match a subject, in decision order, without asking
 * json-rules-engine about the others.
 *
 * Each policy is filed under one of its requirements (an anchor): a label
 * (or namespace label) key with the values it must have, or a key that must
 * exist; a policy with no such requirement goes to the catch-all list. A
 * subject looks up the lists for its own labels, and the lists are merged
 * lazily in (priority, name) order, so a decision that stops at the first
 * match never reads further than it needs to. Every list a policy is in
 * belongs to the same label key, so a subject (one value per key) meets a
 * policy at most once. Lists are replaced, never changed in place, so a
 * lookup in progress keeps reading the lists as they were when it started.
 *
 * @example
 * const index = new CandidateIndex<{ priority: number; name: string }>();
 * index.add({ priority: 10, name: "web" }, ["l", "app", "web"]);
 * [...index.candidates(index.keysFor("l", { app: "web" }))]; // [{ priority: 10, name: "web" }]
 */

/** What the index orders by: priority, then name. */
export interface Ranked {
  readonly priority: number;
  readonly name: string;
}

/** Decision order: the lowest priority first, ties to the smallest name (by code unit, not locale). */
export function comparePolicies(a: Ranked, b: Ranked): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** An anchor as index keys: scope ("l" labels, "n" namespace labels...), label key, and values (none: the key exists). */
export type AnchorKey = [scope: string, key: string, ...values: string[]];

const SEP = "\u0000";

export class CandidateIndex<T extends Ranked> {
  private readonly buckets = new Map<string, readonly T[]>();
  private catchAll: readonly T[] = [];
  private readonly where = new Map<T, string[] | null>();

  /** Number of policies indexed. */
  get size(): number {
    return this.where.size;
  }

  /** Files `item` under `anchor`, or in the catch-all list when there is none. */
  add(item: T, anchor: AnchorKey | null): void {
    if (this.where.has(item)) this.remove(item);
    if (anchor === null) {
      this.catchAll = withItem(this.catchAll, item);
      this.where.set(item, null);
      return;
    }
    const keys = anchorKeys(anchor);
    for (const k of keys) this.buckets.set(k, withItem(this.buckets.get(k) ?? [], item));
    this.where.set(item, keys);
  }

  /** Files many items at once, sorting each list once rather than per item. */
  addMany(entries: Iterable<{ item: T; anchor: AnchorKey | null }>): void {
    const grown = new Map<string | null, T[]>();
    for (const { item, anchor } of entries) {
      if (this.where.has(item)) this.remove(item);
      const keys = anchor === null ? null : anchorKeys(anchor);
      this.where.set(item, keys);
      for (const k of keys ?? [null]) {
        let list = grown.get(k);
        if (!list) grown.set(k, (list = k === null ? [...this.catchAll] : [...(this.buckets.get(k) ?? [])]));
        list.push(item);
      }
    }
    for (const [k, list] of grown) {
      list.sort(comparePolicies);
      if (k === null) this.catchAll = list;
      else this.buckets.set(k, list);
    }
  }

  remove(item: T): boolean {
    if (!this.where.has(item)) return false;
    const keys = this.where.get(item);
    this.where.delete(item);
    if (keys === null || keys === undefined) {
      this.catchAll = this.catchAll.filter((x) => x !== item);
      return true;
    }
    for (const k of keys) {
      const b = this.buckets.get(k)?.filter((x) => x !== item);
      if (b && b.length > 0) this.buckets.set(k, b);
      else this.buckets.delete(k);
    }
    return true;
  }

  /** The index keys a subject's labels in one scope look up. */
  keysFor(scope: string, labels: Readonly<Record<string, string>> | undefined, out: string[] = []): string[] {
    if (!labels) return out;
    for (const key in labels) {
      out.push(scope + SEP + key, scope + SEP + key + SEP + labels[key]);
    }
    return out;
  }

  /** The policies filed under any of `keys`, plus the catch-all list, merged in decision order. */
  *candidates(keys: readonly string[]): Generator<T> {
    const lists: (readonly T[])[] = this.catchAll.length > 0 ? [this.catchAll] : [];
    for (const k of keys) {
      const b = this.buckets.get(k);
      if (b) lists.push(b);
    }
    if (lists.length === 1) {
      yield* lists[0];
      return;
    }
    const heads = new Array<number>(lists.length).fill(0);
    for (;;) {
      let best = -1;
      for (let i = 0; i < lists.length; i++) {
        if (heads[i] < lists[i].length && (best < 0 || comparePolicies(lists[i][heads[i]], lists[best][heads[best]]) < 0)) best = i;
      }
      if (best < 0) return;
      yield lists[best][heads[best]++];
    }
  }

  /** How many policies are filed under `keys` (for choosing selective anchors). */
  countFor(anchor: AnchorKey): number {
    const [scope, key, ...values] = anchor;
    if (values.length === 0) return this.buckets.get(scope + SEP + key)?.length ?? 0;
    let n = 0;
    for (const v of values) n += this.buckets.get(scope + SEP + key + SEP + v)?.length ?? 0;
    return n;
  }
}

function anchorKeys(anchor: AnchorKey): string[] {
  const [scope, key, ...values] = anchor;
  return values.length === 0 ? [scope + SEP + key] : [...new Set(values)].map((v) => scope + SEP + key + SEP + v);
}

/** A copy of the sorted `list` with `item` in its place. */
function withItem<T extends Ranked>(list: readonly T[], item: T): T[] {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (comparePolicies(list[mid], item) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return [...list.slice(0, lo), item, ...list.slice(lo)];
}
