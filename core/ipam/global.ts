/**
 * Global (`l2`) IPAM: the controller hands out each endpoint address
 * straight from the network's subnet; the first host address is the
 * gateway. Every address is recorded in the network's pool record
 * (`<network>.pool.lace-cni.io`, one block per family whose prefix is the
 * subnet) with compare-and-swap and group commit, so an address is never
 * handed out twice, across restarts and concurrent controllers alike.
 *
 * @example
 * const ipam = new GlobalAllocator(store, { network: "storage" });
 * (await ipam.allocate({ owner: "vm-db-0" })).addresses[0].address.toString(); // "10.50.0.2"
 */
import { isLaceError, laceError } from "../errors.ts";
import type { Family, IPAddress } from "../ip/mod.ts";
import { type Clock, systemClock } from "../plugin/tokens.ts";
import type { Store } from "../store/store.ts";
import type { GatewayOf } from "./address_block.ts";
import { AddressIndex, assignOp } from "./address_index.ts";
import type { AddressAllocator, AddressRequest, Assignment } from "./allocator.ts";
import { RecordCommitter } from "./committer.ts";
import { checkOwner } from "./host_local.ts";
import { L2_POOL_NODE, l2PoolName, newAllocation } from "./layout.ts";
import { type NetworkPlan, readNetworkPlan, setExhausted } from "./network_plan.ts";

export interface GlobalAllocatorOptions {
  network: string;
  clock?: Clock;
  /** Where the network's type puts a prefix's gateway (its plugin's `gateway` hook); default: the first host. */
  gateway?: GatewayOf;
}

export class GlobalAllocator implements AddressAllocator {
  readonly network: string;
  private readonly clock: Clock;
  private readonly record: RecordCommitter<AddressIndex>;
  private readonly gatewayOf?: GatewayOf;
  private plan?: Promise<NetworkPlan>;
  /** Whether the Network's `Exhausted` condition is known to be false; unknown after a restart. */
  private exhaustedCleared = false;

  constructor(private readonly store: Store, options: GlobalAllocatorOptions) {
    this.gatewayOf = options.gateway;
    this.network = options.network;
    this.clock = options.clock ?? systemClock;
    this.record = new RecordCommitter(store, l2PoolName(this.network), (r) => AddressIndex.of(r, options.gateway));
  }

  /** Store writes made so far (for benchmarks). */
  get writes(): number {
    return this.record.writes;
  }

  private networkPlan(): Promise<NetworkPlan> {
    this.plan ??= readNetworkPlan(this.store, this.network, "global").catch((e) => {
      this.plan = undefined;
      throw e;
    });
    return this.plan;
  }

  async allocate(request: AddressRequest): Promise<Assignment> {
    checkOwner(request.owner);
    const plan = await this.networkPlan();
    const ctx = {
      network: this.network,
      families: plan.families.map((f) => f.family),
      full: (family: Family): never => {
        const subnet = plan.families.find((f) => f.family === family)!.subnet;
        throw laceError("SUBNET_EXHAUSTED", `Network "${this.network}" has no free address left in ${subnet} for owner "${request.owner}"`);
      },
      outside: (address: IPAddress) => {
        const subnet = plan.families.find((f) => f.family === address.family)!.subnet;
        return `is outside the network's subnet ${subnet}`;
      },
    };
    try {
      return await this.record.run((d) => {
        // The pool record and its per-family blocks appear with the first allocation.
        if (!d.record) {
          d.record = newAllocation(this.network, L2_POOL_NODE, true);
          d.state = AddressIndex.of(d.record, this.gatewayOf);
        }
        for (const f of plan.families) {
          if (!d.state.slots.some((s) => s.block.prefix.equals(f.subnet))) {
            const entry = { prefix: f.subnet.toString(), addresses: {} };
            d.record.spec!.blocks.push(entry);
            d.state.addSlot(entry, f.subnet);
            d.dirty = true;
          }
        }
        return assignOp(d, request.owner, request.addresses, ctx);
      });
    } catch (e) {
      if (isLaceError(e, "SUBNET_EXHAUSTED")) {
        this.exhaustedCleared = false;
        await setExhausted(this.store, this.network, true, e.message, this.clock.now());
      }
      throw e;
    }
  }

  async release(owner: string): Promise<boolean> {
    const released = await this.record.run((d) => {
      const r = d.state.release(owner, this.clock.now());
      if (r) d.dirty = true;
      return r;
    });
    if (released && !this.exhaustedCleared) {
      await setExhausted(this.store, this.network, false, `Network "${this.network}" has free addresses again`, this.clock.now());
      this.exhaustedCleared = true;
    }
    return released;
  }

  lookup(owner: string): Promise<Assignment | undefined> {
    return this.record.run((d) => d.state.assignment(this.network, owner));
  }
}
