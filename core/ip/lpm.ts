/**
 * A longest-prefix-match table for both families.
 *
 * One hash map per prefix length that is in use; a lookup probes the lengths
 * present from longest to shortest, so it costs at most one probe per bit of
 * the address (33 for IPv4, 129 for IPv6) whatever the number of prefixes,
 * and memory grows with the prefixes stored, not with the address space.
 * A binary trie gives the same bound but costs a node per bit per prefix;
 * a million /24s would need tens of millions of nodes.
 *
 * @example
 * const t = new PrefixTable<string>();
 * t.set(Prefix.parse("192.0.2.0/24"), "corp");
 * t.set(Prefix.parse("192.0.2.128/25"), "lab");
 * t.lookup(IPAddress.parse("192.0.2.200"))?.value; // "lab"
 */
import { familyBits, type Family, IPAddress } from "./address.ts";
import { Prefix } from "./prefix.ts";

/** A match: the prefix that covered the address and its value. */
export interface PrefixMatch<V> {
  prefix: Prefix;
  value: V;
}

class FamilyTable<V> {
  /** Map per prefix length, indexed by length. */
  readonly byLength: (Map<number | bigint, V> | undefined)[];
  /** Lengths in use, longest first. */
  lengths: number[] = [];
  size = 0;

  constructor(readonly family: Family) {
    this.byLength = new Array(familyBits(family) + 1);
  }

  key(value: bigint, length: number): number | bigint {
    // IPv4 keys fit a double exactly and hash faster as numbers.
    return this.family === 4 ? key4(Number(value), length) : value >> BigInt(128 - length);
  }

  set(p: Prefix, v: V): void {
    let m = this.byLength[p.length];
    if (!m) {
      m = new Map();
      this.byLength[p.length] = m;
      this.lengths = [...this.lengths, p.length].sort((a, b) => b - a);
    }
    const k = this.key(p.network, p.length);
    if (!m.has(k)) this.size++;
    m.set(k, v);
  }

  get(p: Prefix): V | undefined {
    return this.byLength[p.length]?.get(this.key(p.network, p.length));
  }

  delete(p: Prefix): boolean {
    const m = this.byLength[p.length];
    if (!m || !m.delete(this.key(p.network, p.length))) return false;
    this.size--;
    if (m.size === 0) {
      this.byLength[p.length] = undefined;
      this.lengths = this.lengths.filter((l) => l !== p.length);
    }
    return true;
  }

  lookup(addr: bigint): PrefixMatch<V> | undefined {
    // The IPv4 path stays in plain numbers: a bigint shift per probe costs more than the probe.
    const v4 = this.family === 4 ? Number(addr) : 0;
    for (const length of this.lengths) {
      const m = this.byLength[length]!;
      const k = this.family === 4 ? key4(v4, length) : addr >> BigInt(128 - length);
      const v = m.get(k);
      if (v !== undefined || m.has(k)) {
        const shift = BigInt(familyBits(this.family) - length);
        return { prefix: new Prefix(this.family, keyValue(k) << shift, length), value: v as V };
      }
    }
    return undefined;
  }

  *entries(): Generator<[Prefix, V]> {
    for (const length of this.lengths) {
      const shift = BigInt(familyBits(this.family) - length);
      for (const [k, v] of this.byLength[length]!) {
        yield [new Prefix(this.family, keyValue(k) << shift, length), v];
      }
    }
  }
}

/**
 * The top `length` bits of an IPv4 address as a signed 32-bit integer: a
 * small integer to V8, which hashes without boxing (`>>> 32` is a no-op in
 * JavaScript, hence the special case).
 */
function key4(v: number, length: number): number {
  return length === 0 ? 0 : (v >>> (32 - length)) | 0;
}

/** The network value of a key, as stored by either family. */
function keyValue(k: number | bigint): bigint {
  return typeof k === "number" ? BigInt(k >>> 0) : k;
}

export class PrefixTable<V> {
  private readonly v4 = new FamilyTable<V>(4);
  private readonly v6 = new FamilyTable<V>(6);

  private table(family: Family): FamilyTable<V> {
    return family === 4 ? this.v4 : this.v6;
  }

  /**
   * The most map probes a lookup in `family` can make: the number of prefix
   * lengths in use, never more than the address bits + 1, whatever the size.
   */
  maxProbes(family: Family): number {
    return this.table(family).lengths.length;
  }

  /** Number of prefixes stored, both families. */
  get size(): number {
    return this.v4.size + this.v6.size;
  }

  /** Adds or replaces the value for an exact prefix. */
  set(prefix: Prefix, value: V): this {
    this.table(prefix.family).set(prefix, value);
    return this;
  }

  /** The value stored for exactly this prefix. */
  get(prefix: Prefix): V | undefined {
    return this.table(prefix.family).get(prefix);
  }

  has(prefix: Prefix): boolean {
    return this.get(prefix) !== undefined;
  }

  delete(prefix: Prefix): boolean {
    return this.table(prefix.family).delete(prefix);
  }

  /** The longest stored prefix that contains the address. */
  lookup(addr: IPAddress): PrefixMatch<V> | undefined {
    return this.table(addr.family).lookup(addr.value);
  }

  /** All prefixes and values, longest prefixes first within each family. */
  *entries(): Generator<[Prefix, V]> {
    yield* this.v4.entries();
    yield* this.v6.entries();
  }
}
