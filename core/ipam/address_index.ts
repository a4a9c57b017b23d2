/**
 * The in-memory index of an Allocation's addresses: one AddressBlock per
 * usable block, and owner → addresses. Rebuilt from the record whenever it
 * is (re)loaded, changed together with the record by the operations of a
 * RecordCommitter; the record stays the only source of truth.
 *
 * @example
 * const idx = AddressIndex.of(allocation);
 * idx.holdings("pod-uid");   // [{ slot, offset }] per family
 */
import { laceError } from "../errors.ts";
import { type Family, IPAddress, Prefix } from "../ip/mod.ts";
import type { Allocation, AllocationBlock } from "../resources/types.ts";
import { AddressBlock, type GatewayOf } from "./address_block.ts";
import type { AssignedAddress, Assignment } from "./allocator.ts";
import { timestamp } from "./layout.ts";

/** A usable block of the record and its index. */
export interface Slot {
  entry: AllocationBlock;
  block: AddressBlock;
}

export interface Holding {
  slot: Slot;
  offset: bigint;
}

/**
 * Owner → address lives only in the record (`entry.addresses`): a second
 * map here would double the memory per address for a lookup that costs one
 * property probe per block.
 */
export class AddressIndex {
  readonly slots: Slot[] = [];

  /** `gatewayOf`: where the network's type puts a block's gateway (default: its first host). */
  constructor(private readonly gatewayOf?: GatewayOf) {}

  /** Indexes the record's blocks that are not pending; skips entries it cannot parse. */
  static of(record: Allocation | undefined, gatewayOf?: GatewayOf): AddressIndex {
    const idx = new AddressIndex(gatewayOf);
    for (const entry of record?.spec?.blocks ?? []) {
      if (entry.pending) continue;
      const p = Prefix.tryParse(entry.prefix);
      if (!p.ok) continue;
      const slot = idx.addSlot(entry, p.value);
      for (const [owner, text] of Object.entries(entry.addresses ?? {})) {
        const offset = offsetIn(p.value, text);
        if (offset !== undefined) slot.block.load(offset, owner);
      }
    }
    return idx;
  }

  addSlot(entry: AllocationBlock, prefix: Prefix): Slot {
    const gateway = this.gatewayOf ? this.gatewayOf(prefix) : prefix.firstHost;
    if (gateway === undefined) {
      throw laceError("INVALID_RESOURCE", `The network's type gives ${prefix} no gateway: pods there would have no way out`);
    }
    let block: AddressBlock;
    try {
      block = new AddressBlock(prefix, gateway);
    } catch (e) {
      throw laceError("INVALID_RESOURCE", `The network's type gives a bad gateway: ${(e as Error).message}`);
    }
    const slot = { entry, block };
    this.slots.push(slot);
    return slot;
  }

  /** The owner's addresses, one per family it holds; undefined when none. */
  holdings(owner: string): Holding[] | undefined {
    let out: Holding[] | undefined;
    for (const slot of this.slots) {
      const addresses = slot.entry.addresses;
      if (!addresses || !Object.hasOwn(addresses, owner)) continue;
      const offset = offsetIn(slot.block.prefix, addresses[owner]);
      // The index is the judge: an entry it could not load is not a holding.
      if (offset === undefined || slot.block.ownerAt(offset) !== owner) continue;
      (out ??= []).push({ slot, offset });
    }
    return out;
  }

  /** Number of addresses handed out. */
  get size(): number {
    let n = 0;
    for (const s of this.slots) n += s.block.used;
    return n;
  }

  /** The block holding `address`, if any. */
  slotFor(address: IPAddress): Slot | undefined {
    return this.slots.find((s) => s.block.prefix.contains(address));
  }

  /** The first free address of the family, in block order; undefined when all are full. */
  nextFree(family: Family): Holding | undefined {
    for (const slot of this.slots) {
      if (slot.block.prefix.family !== family) continue;
      const offset = slot.block.nextFree();
      if (offset !== undefined) return { slot, offset };
    }
    return undefined;
  }

  /**
   * Why `address` cannot go to `owner` inside `slot`, or undefined when it
   * can (it is free, or already the owner's).
   */
  unavailable(slot: Slot, address: IPAddress, owner: string): string | undefined {
    const offset = slot.block.offsetOf(address)!;
    const reserved = slot.block.reserved(offset);
    if (reserved) return reserved;
    const holder = slot.block.ownerAt(offset);
    if (holder !== undefined && holder !== owner) return `is already held by owner "${holder}"`;
    return undefined;
  }

  /** Gives `picks` to `owner` in the index and the record. The caller checked each is free. */
  assign(owner: string, picks: Holding[]): void {
    for (const h of picks) {
      h.slot.block.take(h.offset, owner);
      (h.slot.entry.addresses ??= {})[owner] = h.slot.block.address(h.offset).toString();
      delete h.slot.entry.emptySince;
    }
  }

  /** Takes the owner's addresses back; a block left empty records when. False when it held none. */
  release(owner: string, now: number): boolean {
    const list = this.holdings(owner);
    if (!list) return false;
    for (const h of list) {
      h.slot.block.free(h.offset);
      if (h.slot.entry.addresses) delete h.slot.entry.addresses[owner];
      if (h.slot.block.used === 0) h.slot.entry.emptySince = timestamp(now);
    }
    return true;
  }

  /** The owner's assignment, IPv4 first; `list` saves re-reading the record when the caller has the holdings. */
  assignment(network: string, owner: string, list = this.holdings(owner)): Assignment | undefined {
    if (!list) return undefined;
    const addresses: AssignedAddress[] = list.map((h) => ({
      address: h.slot.block.address(h.offset),
      prefix: h.slot.block.prefix,
      gateway: h.slot.block.gateway,
    })).sort((a, b) => a.address.family - b.address.family);
    return { network, owner, addresses };
  }

  /** Families the owner holds an address of. */
  familiesOf(owner: string): Set<Family> {
    return new Set((this.holdings(owner) ?? []).map((h) => h.slot.block.prefix.family));
  }
}

/** The offset of address `text` inside `prefix`, or undefined when it is malformed or outside. */
function offsetIn(prefix: Prefix, text: unknown): bigint | undefined {
  if (typeof text !== "string") return undefined;
  let value: bigint | undefined;
  if (prefix.family === 4) {
    value = parseIPv4(text);
  } else {
    const r = IPAddress.tryParse(text);
    value = r.ok && r.value.family === 6 ? r.value.value : undefined;
  }
  if (value === undefined) return undefined;
  const offset = value - prefix.network;
  return offset >= 0n && offset < prefix.size ? offset : undefined;
}

/**
 * Strict dotted-quad IPv4 to its value, or undefined. A reload parses every
 * address of a record (tens of thousands after a Conflict on a busy `l2`
 * pool); ipaddr.js accepts many forms and costs about ten times this, and
 * these strings are the canonical ones IPAM wrote itself.
 */
function parseIPv4(text: string): bigint | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return BigInt(value * 256 + part);
}

const NONE: readonly Holding[] = [];

/** What an assignment needs to know of its allocator. */
export interface AssignContext {
  network: string;
  /** The network's families, IPv4 first. */
  families: readonly Family[];
  /** Called when a family has no free address left: throws. */
  full(family: Family): never;
  /** Why a requested address lies in none of the record's blocks (`is not inside a block held by node "n1"`). */
  outside(address: IPAddress): string;
}

/**
 * The operation behind `allocate`: returns the owner's addresses, handing
 * out (and recording) one per family it does not hold yet. Checks every
 * family before changing anything, so a failure leaves the draft untouched.
 */
export function assignOp(d: { state: AddressIndex; dirty: boolean }, owner: string, requested: readonly IPAddress[] | undefined, ctx: AssignContext): Assignment {
  const idx = d.state;
  const held = idx.holdings(owner) ?? NONE;
  const refuse = (address: IPAddress, why: string): never => {
    throw laceError("ADDRESS_UNAVAILABLE", `Cannot give address ${address} to owner "${owner}" in network "${ctx.network}": it ${why}`);
  };
  const wanted = requested?.length ? new Map<Family, IPAddress>() : undefined;
  for (const r of requested ?? []) {
    if (!ctx.families.includes(r.family)) refuse(r, `is IPv${r.family} and the network has no IPv${r.family} subnet`);
    const mine = held.find((h) => h.slot.block.prefix.family === r.family);
    if (mine && mine.slot.block.address(mine.offset).value !== r.value) {
      throw laceError(
        "ADDRESS_UNAVAILABLE",
        `Cannot give address ${r} to owner "${owner}" in network "${ctx.network}": the owner already holds ${mine.slot.block.address(mine.offset)}`,
      );
    }
    wanted!.set(r.family, r);
  }
  const picks: Holding[] = [];
  for (const family of ctx.families) {
    if (held.some((h) => h.slot.block.prefix.family === family)) continue;
    const r = wanted?.get(family);
    if (r) {
      const slot = idx.slotFor(r) ?? refuse(r, ctx.outside(r));
      const why = idx.unavailable(slot, r, owner);
      if (why) refuse(r, why);
      picks.push({ slot, offset: slot.block.offsetOf(r)! });
    } else {
      picks.push(idx.nextFree(family) ?? ctx.full(family));
    }
  }
  if (picks.length) {
    idx.assign(owner, picks);
    d.dirty = true;
  }
  return idx.assignment(ctx.network, owner, [...held, ...picks])!;
}
