/**
 * The in-memory index of one prefix's handed-out addresses: a node's block
 * (`l3`) or a whole subnet (`l2`).
 *
 * Only used addresses are stored (offset → owner), so memory follows what is
 * handed out, never the size of the prefix: a /64 costs what a /24 costs.
 * Free addresses are found by scanning forward from a round-robin cursor
 * over that sparse set; the scan is bounded by the number of used
 * addresses, and round robin keeps a released address out of use for as
 * long as possible (a new pod does not inherit a stale conntrack entry).
 *
 * @example
 * const b = new AddressBlock(Prefix.parse("10.40.3.0/30"));
 * b.gateway.toString();        // "10.40.3.1"
 * b.capacity;                  // 1n (10.40.3.2: .0 network, .1 gateway, .3 broadcast)
 * b.take(b.nextFree()!, "pod-a");
 * b.nextFree();                // undefined: full
 * // A network type whose gateway is elsewhere (its `gateway` hook):
 * new AddressBlock(Prefix.parse("10.40.3.0/24"), IPAddress.parse("10.40.3.254")).reserved(254n); // "is the gateway of 10.40.3.0/24"
 */
/**
 * The gateway of a prefix as a network type declares it (its plugin's
 * `gateway` hook); undefined: the type gives none.
 */
export type GatewayOf = (prefix: Prefix) => IPAddress | undefined;
import { IPAddress, type Prefix } from "../ip/mod.ts";

/**
 * How many addresses a block can hand out: all but the network address,
 * the gateway and, for IPv4, the broadcast address.
 *
 * @example
 * blockCapacity(Prefix.parse("10.0.0.0/30")); // 1n
 */
export function blockCapacity(prefix: Prefix): bigint {
  const reserved = prefix.family === 4 ? 3n : 2n;
  return prefix.size > reserved ? prefix.size - reserved : 0n;
}

/** Offsets of blocks up to 2^52 addresses are plain numbers (faster to hash); larger ones bigints. */
type Key = number | bigint;

export class AddressBlock {
  readonly prefix: Prefix;
  /** The gateway: the first host address (network + 1) unless the network's type puts it elsewhere. */
  readonly gateway: IPAddress;
  /** How many addresses can be handed out. */
  readonly capacity: bigint;
  /** Offset → owner of every address handed out. */
  private readonly owners = new Map<Key, string>();
  private readonly wide: boolean;
  private readonly firstUsable: bigint;
  private readonly lastUsable: bigint;
  private readonly gatewayOffset: bigint;
  private cursor: bigint;

  /** `gateway` must be a host address of `prefix` (not its network or IPv4 broadcast address). */
  constructor(prefix: Prefix, gateway: IPAddress = prefix.firstHost) {
    this.prefix = prefix;
    this.wide = prefix.bits - prefix.length > 52;
    const size = prefix.size;
    // IPv4 keeps its broadcast address out; IPv6 has none.
    this.lastUsable = prefix.family === 4 ? size - 2n : size - 1n;
    const g = prefix.contains(gateway) ? gateway.value - prefix.network : -1n;
    if (g < 1n || g > this.lastUsable) {
      throw new RangeError(`Invalid gateway ${gateway} for ${prefix}: expected a host address of the prefix (not its network or broadcast address)`);
    }
    this.gateway = gateway;
    this.gatewayOffset = g;
    this.firstUsable = g === 1n ? 2n : 1n;
    this.capacity = blockCapacity(prefix);
    this.cursor = this.firstUsable;
  }

  /** Number of addresses handed out. */
  get used(): number {
    return this.owners.size;
  }

  get full(): boolean {
    return BigInt(this.owners.size) >= this.capacity;
  }

  private key(offset: bigint): Key {
    return this.wide ? offset : Number(offset);
  }

  /** The offset of `address` in the block, or undefined when it is outside. */
  offsetOf(address: IPAddress): bigint | undefined {
    return this.prefix.contains(address) ? address.value - this.prefix.network : undefined;
  }

  address(offset: bigint): IPAddress {
    return new IPAddress(this.prefix.family, this.prefix.network + offset);
  }

  /** The owner of the address at `offset`, if it is handed out. */
  ownerAt(offset: bigint): string | undefined {
    return this.owners.get(this.key(offset));
  }

  /**
   * Why the address at `offset` can never be handed out (`is the gateway`),
   * or undefined when it can be.
   */
  reserved(offset: bigint): string | undefined {
    if (offset === 0n) return `is the network address of ${this.prefix}`;
    if (offset === this.gatewayOffset) return `is the gateway of ${this.prefix}`;
    if (offset > this.lastUsable) return `is the broadcast address of ${this.prefix}`;
    return undefined;
  }

  /** The next free offset after the cursor, wrapping once; undefined when the block is full. */
  nextFree(): bigint | undefined {
    if (this.full) return undefined;
    let o = this.cursor;
    // At most `used` offsets are taken, so a free one turns up within used + 1 steps.
    for (let steps = 0; steps <= this.owners.size; steps++) {
      if (o > this.lastUsable) o = this.firstUsable;
      if (o === this.gatewayOffset) o++;
      if (o > this.lastUsable) o = this.firstUsable;
      if (!this.owners.has(this.key(o))) return o;
      o++;
    }
    return undefined;
  }

  /** Records `owner` at `offset` and moves the cursor past it. The caller checked it is free. */
  take(offset: bigint, owner: string): void {
    this.owners.set(this.key(offset), owner);
    this.cursor = offset + 1n;
  }

  /** Forgets the address at `offset`, keeping the cursor where it is. */
  free(offset: bigint): void {
    this.owners.delete(this.key(offset));
  }

  /** Records an address loaded from the store; the cursor ends after the highest one. */
  load(offset: bigint, owner: string): void {
    this.owners.set(this.key(offset), owner);
    if (offset >= this.cursor) this.cursor = offset + 1n;
  }
}
