/**
 * Cutting holes out of a prefix: what is left of a route once the narrower
 * prefixes it must not carry are taken out.
 *
 * @example
 * cutAround(Prefix.parse("10.2.0.0/24"), [Prefix.parse("10.2.0.0/26")]).map(String); // ["10.2.0.128/25", "10.2.0.64/26"]
 */
import { Prefix } from "../ip/mod.ts";

/**
 * `whole` without the `holes` inside it, as the fewest prefixes: each hole
 * costs one prefix per bit it is longer than `whole`. Returns `[whole]`
 * itself (same object) when no hole touches it.
 *
 * @example
 * cutAround(10.2.0.0/24, [10.2.0.0/26]); // [10.2.0.128/25, 10.2.0.64/26]
 */
export function cutAround(whole: Prefix, holes: readonly Prefix[]): Prefix[] {
  let pieces = [whole];
  for (const q of holes) {
    const next: Prefix[] = [];
    for (const r of pieces) {
      if (q.covers(r)) continue;
      if (!r.covers(q)) {
        next.push(r);
        continue;
      }
      let cur = r;
      while (cur.length < q.length) {
        const half = 1n << BigInt(cur.bits - cur.length - 1);
        const low = new Prefix(cur.family, cur.network, cur.length + 1);
        const high = new Prefix(cur.family, cur.network + half, cur.length + 1);
        const qInHigh = high.covers(q);
        next.push(qInHigh ? low : high);
        cur = qInHigh ? high : low;
      }
    }
    pieces = next;
  }
  return pieces;
}
