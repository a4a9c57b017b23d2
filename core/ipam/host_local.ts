/**
 * The node side of host-local (`l3`) IPAM: hands out pod addresses from
 * this node's own blocks only, recording each in the node's Allocation
 * (`<network>.<node>`, block → owner → address) with compare-and-swap.
 * Concurrent requests are group-committed: one store write carries every
 * allocation that arrived while the previous write was in flight, and each
 * request resolves only once the write that carries it has succeeded.
 *
 * When the node's blocks of a family are full it asks its BlockSource (the
 * controller) for another block. Nothing is kept outside the store: a new
 * instance over the same store continues where the last one stopped.
 *
 * @example
 * const ipam = new HostLocalAllocator(store, { network: "backend", node: "node-1", blocks: controller });
 * const a = await ipam.allocate({ owner: pod.metadata.uid! });
 * a.addresses[0].address.toString();  // "10.40.0.2"
 * a.addresses[0].gateway.toString();  // "10.40.0.1"
 */
import { laceError } from "../errors.ts";
import type { Family } from "../ip/mod.ts";
import { type Clock, systemClock } from "../plugin/tokens.ts";
import type { Store } from "../store/store.ts";
import type { GatewayOf } from "./address_block.ts";
import { AddressIndex, type AssignContext, assignOp } from "./address_index.ts";
import { type AddressAllocator, type AddressRequest, type Assignment, type EarlyAssignment, NeedBlock } from "./allocator.ts";
import type { BlockSource } from "./block_allocator.ts";
import { RecordCommitter } from "./committer.ts";
import { allocationName } from "./layout.ts";
import { readNetworkPlan } from "./network_plan.ts";

export interface HostLocalAllocatorOptions {
  network: string;
  node: string;
  /** Where more blocks come from. */
  blocks: BlockSource;
  clock?: Clock;
  /** Where the network's type puts a prefix's gateway (its plugin's `gateway` hook); default: the first host. */
  gateway?: GatewayOf;
}

export class HostLocalAllocator implements AddressAllocator {
  readonly network: string;
  readonly node: string;
  private readonly blocks: BlockSource;
  private readonly clock: Clock;
  private readonly record: RecordCommitter<AddressIndex>;
  private ctx?: Promise<AssignContext>;
  private readonly acquiring = new Map<Family, { waiters: number; done: Promise<void> }>();

  constructor(private readonly store: Store, options: HostLocalAllocatorOptions) {
    this.network = options.network;
    this.node = options.node;
    this.blocks = options.blocks;
    this.clock = options.clock ?? systemClock;
    this.record = new RecordCommitter(store, allocationName(this.network, this.node), (r) => AddressIndex.of(r, options.gateway));
  }

  /** Store writes made so far (for benchmarks). */
  get writes(): number {
    return this.record.writes;
  }

  /** The assignment context, built once the network's families are known. */
  private context(): Promise<AssignContext> {
    this.ctx ??= readNetworkPlan(this.store, this.network, "host-local").then(
      (p) => ({
        network: this.network,
        families: p.families.map((f) => f.family),
        full: (family: Family): never => {
          throw NeedBlock.of(family);
        },
        outside: () => `is not inside a block held by node "${this.node}"`,
      }),
      (e) => {
        this.ctx = undefined;
        throw e;
      },
    );
    return this.ctx;
  }

  async allocate(request: AddressRequest): Promise<Assignment> {
    checkOwner(request.owner);
    const ctx = await this.context();
    for (let round = 1; round <= 100; round++) {
      try {
        return await this.record.run((d) => assignOp(d, request.owner, request.addresses, ctx));
      } catch (e) {
        if (!(e instanceof NeedBlock)) throw e;
        await this.acquire(e.family);
      }
    }
    throw laceError("SUBNET_EXHAUSTED", `Network "${this.network}": node "${this.node}" kept finding its blocks full after 100 new blocks for owner "${request.owner}"`);
  }

  /**
   * Chooses from the cached record without a store round trip (once the
   * record is loaded); the write follows in the next group commit.
   */
  async allocateEarly(request: AddressRequest): Promise<EarlyAssignment> {
    checkOwner(request.owner);
    const ctx = await this.context();
    for (let round = 1; round <= 100; round++) {
      const { answer, durable } = this.record.runEarly(
        (d) => assignOp(d, request.owner, request.addresses, ctx),
        // Run again after a conflict: the same addresses, or a failure, never others.
        (a) => (d) => assignOp(d, request.owner, a.addresses.map((x) => x.address), ctx),
      );
      try {
        return { assignment: await answer, durable };
      } catch (e) {
        if (!(e instanceof NeedBlock)) throw e;
        await this.acquire(e.family);
      }
    }
    throw laceError("SUBNET_EXHAUSTED", `Network "${this.network}": node "${this.node}" kept finding its blocks full after 100 new blocks for owner "${request.owner}"`);
  }

  /**
   * One block request per family at a time. Every request that found the
   * blocks full joins it, and it asks for room for all of them at once, so
   * a burst needs one round of block claims rather than one per block.
   */
  private acquire(family: Family): Promise<void> {
    const cur = this.acquiring.get(family);
    if (cur) {
      cur.waiters++;
      return cur.done;
    }
    const entry = { waiters: 1, done: Promise.resolve() };
    entry.done = (async () => {
      try {
        // Let the other requests rejected by the same batch join before asking.
        for (let i = 0; i < 4; i++) await Promise.resolve();
        await this.blocks.acquire(this.network, this.node, family, entry.waiters);
      } finally {
        this.record.invalidate();
        this.acquiring.delete(family);
      }
    })();
    this.acquiring.set(family, entry);
    return entry.done;
  }

  release(owner: string): Promise<boolean> {
    return this.record.run((d) => {
      const released = d.state.release(owner, this.clock.now());
      if (released) d.dirty = true;
      return released;
    });
  }

  lookup(owner: string): Promise<Assignment | undefined> {
    return this.record.run((d) => d.state.assignment(this.network, owner));
  }
}

/** Refuses an empty owner handle: every allocation must be traceable to its owner. */
export function checkOwner(owner: unknown): void {
  if (typeof owner !== "string" || owner.trim() === "") {
    throw laceError("INVALID_ARGUMENT", `Address request: owner must be a non-empty owner handle (pod UID or annotation lace-cni.io/owner), got ${JSON.stringify(owner)}`);
  }
  // Owners are keys of a plain JSON object in the record; this one would set its prototype instead.
  if (owner === "__proto__") {
    throw laceError("INVALID_ARGUMENT", `Address request: owner "__proto__" cannot be recorded as an owner handle: expected a pod UID or another name`);
  }
}
