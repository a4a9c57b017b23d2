/**
 * IP prefixes (CIDR blocks): strict parsing, containment, overlap and
 * carving into blocks.
 *
 * @example
 * const p = Prefix.parse("10.40.0.0/16");
 * p.block(24, 3n).toString();          // "10.40.3.0/24"
 * p.contains(IPAddress.parse("10.40.9.9")); // true
 * Prefix.tryParse("10.40.0.1/16");     // { ok: false, error: "host bits set ..." }
 */
import { describe, familyBits, type Family, IPAddress, type Parsed } from "./address.ts";

export class Prefix {
  readonly family: Family;
  /** The network address as an integer (host bits zero). */
  readonly network: bigint;
  readonly length: number;

  constructor(family: Family, network: bigint, length: number) {
    const bits = familyBits(family);
    if (!Number.isInteger(length) || length < 0 || length > bits) {
      throw new RangeError(`Prefix length for IPv${family} must be between 0 and ${bits}, got ${length}`);
    }
    if ((network & hostMask(family, length)) !== 0n) {
      throw new RangeError(`Prefix has host bits set: ${new IPAddress(family, network)}/${length}`);
    }
    this.family = family;
    this.network = network;
    this.length = length;
  }

  /**
   * Parses `address/length`. Host bits must be zero: `10.40.0.1/16` is
   * refused with the network it should have been.
   */
  static tryParse(text: unknown): Parsed<Prefix> {
    if (typeof text !== "string") {
      return { ok: false, error: `expected a CIDR prefix string such as "10.0.0.0/16", got ${describe(text)}` };
    }
    const slash = text.indexOf("/");
    if (slash < 0) {
      return { ok: false, error: `expected a CIDR prefix "address/length", got "${text}"` };
    }
    const addr = IPAddress.tryParse(text.slice(0, slash));
    if (!addr.ok) return { ok: false, error: `expected a CIDR prefix "address/length", got "${text}"` };
    const lenText = text.slice(slash + 1);
    const bits = addr.value.bits;
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) {
      return {
        ok: false,
        error: `prefix length must be between 0 and ${bits} for IPv${addr.value.family}, got "${lenText}" in "${text}"`,
      };
    }
    const length = Number(lenText);
    const family = addr.value.family;
    const mask = hostMask(family, length);
    if ((addr.value.value & mask) !== 0n) {
      const net = new IPAddress(family, addr.value.value & ~mask & maxOf(family));
      return { ok: false, error: `host bits set in "${text}": expected the network address ${net}/${length}` };
    }
    return { ok: true, value: new Prefix(family, addr.value.value, length) };
  }

  /** Parses a prefix; throws a TypeError naming the bad text. */
  static parse(text: string): Prefix {
    const r = Prefix.tryParse(text);
    if (!r.ok) throw new TypeError(`Invalid prefix: ${r.error}`);
    return r.value;
  }

  /** The prefix of the given length that contains the address. */
  static containing(addr: IPAddress, length: number): Prefix {
    return new Prefix(addr.family, addr.value & ~hostMask(addr.family, length) & maxOf(addr.family), length);
  }

  get bits(): 32 | 128 {
    return familyBits(this.family);
  }

  /** Number of addresses in the prefix. */
  get size(): bigint {
    return 1n << BigInt(this.bits - this.length);
  }

  /** The network address. */
  get first(): IPAddress {
    return new IPAddress(this.family, this.network);
  }

  /** The last address (the IPv4 broadcast address). */
  get last(): IPAddress {
    return new IPAddress(this.family, this.network | hostMask(this.family, this.length));
  }

  /** The first host address, network address + 1: lace-cni's gateway. */
  get firstHost(): IPAddress {
    return new IPAddress(this.family, this.network + (this.size > 1n ? 1n : 0n));
  }

  contains(addr: IPAddress): boolean {
    return addr.family === this.family &&
      (addr.value & ~hostMask(this.family, this.length)) === this.network;
  }

  /** True when `other` lies entirely inside this prefix. */
  covers(other: Prefix): boolean {
    return other.family === this.family && other.length >= this.length &&
      (other.network & ~hostMask(this.family, this.length)) === this.network;
  }

  overlaps(other: Prefix): boolean {
    return this.covers(other) || other.covers(this);
  }

  /** How many blocks of `length` this prefix holds. */
  blockCount(length: number): bigint {
    this.checkBlockLength(length);
    return 1n << BigInt(length - this.length);
  }

  /** The `index`-th block of `length` inside this prefix. */
  block(length: number, index: bigint): Prefix {
    this.checkBlockLength(length);
    if (index < 0n || index >= this.blockCount(length)) {
      throw new RangeError(`Block index ${index} out of range for /${length} blocks of ${this}`);
    }
    return new Prefix(this.family, this.network + (index << BigInt(this.bits - length)), length);
  }

  /** The index of `block` among the blocks of its length in this prefix. */
  blockIndex(block: Prefix): bigint {
    if (!this.covers(block)) throw new RangeError(`${block} is not inside ${this}`);
    return (block.network - this.network) >> BigInt(this.bits - block.length);
  }

  /** Iterates the blocks of `length`, in address order. */
  *blocks(length: number): Generator<Prefix> {
    const n = this.blockCount(length);
    for (let i = 0n; i < n; i++) yield this.block(length, i);
  }

  /** The address at `offset` from the network address. */
  at(offset: bigint): IPAddress {
    if (offset < 0n || offset >= this.size) throw new RangeError(`Offset ${offset} outside ${this}`);
    return new IPAddress(this.family, this.network + offset);
  }

  equals(other: Prefix): boolean {
    return this.family === other.family && this.network === other.network && this.length === other.length;
  }

  compare(other: Prefix): number {
    if (this.family !== other.family) return this.family - other.family;
    if (this.network !== other.network) return this.network < other.network ? -1 : 1;
    return this.length - other.length;
  }

  toString(): string {
    return `${this.first}/${this.length}`;
  }

  toJSON(): string {
    return this.toString();
  }

  private checkBlockLength(length: number): void {
    if (!Number.isInteger(length) || length < this.length || length > this.bits) {
      throw new RangeError(`Block length must be between ${this.length} and ${this.bits} for ${this}, got ${length}`);
    }
  }
}

function maxOf(family: Family): bigint {
  return family === 4 ? 0xffffffffn : (1n << 128n) - 1n;
}

const masks4: bigint[] = [];
const masks6: bigint[] = [];
for (let l = 0; l <= 32; l++) masks4.push((1n << BigInt(32 - l)) - 1n);
for (let l = 0; l <= 128; l++) masks6.push((1n << BigInt(128 - l)) - 1n);

/** The mask of host bits for a prefix length. */
export function hostMask(family: Family, length: number): bigint {
  return (family === 4 ? masks4 : masks6)[length];
}
