/**
 * IPv4 and IPv6 addresses as immutable values.
 *
 * Parsing goes through ipaddr.js (strict forms only: four-part decimal IPv4,
 * no IPv6 zone index); arithmetic is on a bigint so both families share one
 * code path for carving and containment.
 *
 * @example
 * const a = IPAddress.parse("10.40.0.1");
 * a.family;            // 4
 * a.add(1n).toString(); // "10.40.0.2"
 */
import ipaddr from "ipaddr.js";

/** 4 for IPv4, 6 for IPv6. */
export type Family = 4 | 6;

/** Number of bits in an address of the family. */
export function familyBits(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** The result of a parse that did not throw: a value or a sentence saying what was wrong. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const MAX4 = (1n << 32n) - 1n;
const MAX6 = (1n << 128n) - 1n;

/** Largest address value of the family. */
export function maxValue(family: Family): bigint {
  return family === 4 ? MAX4 : MAX6;
}

export class IPAddress {
  readonly family: Family;
  /** The address as an unsigned integer of 32 or 128 bits. */
  readonly value: bigint;

  constructor(family: Family, value: bigint) {
    if (value < 0n || value > maxValue(family)) {
      throw new RangeError(`Address value out of range for IPv${family}: ${value}`);
    }
    this.family = family;
    this.value = value;
  }

  /** Parses a textual address, or reports why it is not one. */
  static tryParse(text: unknown): Parsed<IPAddress> {
    if (typeof text !== "string") {
      return { ok: false, error: `expected an IP address string, got ${describe(text)}` };
    }
    if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
      const bytes = ipaddr.IPv4.parse(text).toByteArray();
      return { ok: true, value: new IPAddress(4, bytesToBigint(bytes)) };
    }
    if (!text.includes("%") && ipaddr.IPv6.isValid(text)) {
      const bytes = ipaddr.IPv6.parse(text).toByteArray();
      return { ok: true, value: new IPAddress(6, bytesToBigint(bytes)) };
    }
    return { ok: false, error: `expected an IPv4 or IPv6 address, got "${text}"` };
  }

  /** Parses a textual address; throws a TypeError naming the bad text. */
  static parse(text: string): IPAddress {
    const r = IPAddress.tryParse(text);
    if (!r.ok) throw new TypeError(`Invalid IP address: ${r.error}`);
    return r.value;
  }

  static fromBytes(bytes: ArrayLike<number>): IPAddress {
    if (bytes.length !== 4 && bytes.length !== 16) {
      throw new RangeError(`Expected 4 or 16 address bytes, got ${bytes.length}`);
    }
    return new IPAddress(bytes.length === 4 ? 4 : 6, bytesToBigint(bytes));
  }

  get bits(): 32 | 128 {
    return familyBits(this.family);
  }

  /** The address `n` places further on (n may be negative). Throws past the end of the family. */
  add(n: bigint): IPAddress {
    return new IPAddress(this.family, this.value + n);
  }

  equals(other: IPAddress): boolean {
    return this.family === other.family && this.value === other.value;
  }

  /** Orders IPv4 before IPv6, then by value. */
  compare(other: IPAddress): number {
    if (this.family !== other.family) return this.family - other.family;
    return this.value < other.value ? -1 : this.value > other.value ? 1 : 0;
  }

  toBytes(): Uint8Array {
    const n = this.family === 4 ? 4 : 16;
    const out = new Uint8Array(n);
    let v = this.value;
    for (let i = n - 1; i >= 0; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return out;
  }

  /** Canonical text: dotted decimal, or RFC 5952 compressed IPv6. */
  toString(): string {
    if (this.family === 4) {
      const v = Number(this.value);
      return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    }
    return ipaddr.fromByteArray(Array.from(this.toBytes())).toString();
  }

  toJSON(): string {
    return this.toString();
  }
}

function bytesToBigint(bytes: ArrayLike<number>): bigint {
  let v = 0n;
  for (let i = 0; i < bytes.length; i++) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

/** A short description of a value for error messages: strings quoted, others by JSON. */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return `"${value}"`;
  if (typeof value === "bigint") return `${value}`;
  try {
    const s = JSON.stringify(value);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(value);
  }
}
