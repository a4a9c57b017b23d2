/**
 * A network's IPAM usage, counted from its Allocations, in the shape of
 * `NetworkStatus.usage` (free counts are decimal strings: a /48 cut into
 * /64s has more free addresses than a JSON number holds exactly).
 *
 * @example
 * net.status = { ...net.status, usage: await networkUsage(store, "backend") };
 * // { blocksUsed: 3, blocksFree: "253", addressesUsed: 17, addressesFree: "64498" }
 */
import { Prefix } from "../ip/mod.ts";
import type { Allocation, NetworkStatus } from "../resources/types.ts";
import type { Store } from "../store/store.ts";
import { blockCapacity } from "./address_block.ts";
import { isPoolRecord, L2_POOL_NODE, NETWORK_LABEL } from "./layout.ts";
import { readNetworkPlan } from "./network_plan.ts";

export type NetworkUsage = NonNullable<NetworkStatus["usage"]>;

/**
 * Counts `network`'s usage. `host-local`: blocks held by nodes (pending
 * claims excluded) against the blocks the subnets hold, and addresses
 * handed out against what every block could hold. `global`: addresses
 * against the subnets' capacity; no blocks.
 */
export async function networkUsage(store: Store, network: string, addressing: "host-local" | "global"): Promise<NetworkUsage> {
  const plan = await readNetworkPlan(store, network, addressing);
  const { items } = await store.list<Allocation>("Allocation", { labelSelector: `${NETWORK_LABEL}=${network}` });
  let addressesUsed = 0;
  if (addressing === "global") {
    const pool = items.find((a) => isPoolRecord(a) && a.spec?.node === L2_POOL_NODE);
    for (const b of pool?.spec?.blocks ?? []) addressesUsed += Object.keys(b.addresses ?? {}).length;
    const capacity = plan.families.reduce((n, f) => n + blockCapacity(f.subnet), 0n);
    return { addressesUsed, addressesFree: String(capacity - BigInt(addressesUsed)) };
  }
  let blocksUsed = 0;
  let capacityOfUsed = 0n;
  const usedPerFamily = new Map<number, number>();
  for (const a of items) {
    if (isPoolRecord(a)) continue;
    for (const b of a.spec?.blocks ?? []) {
      const p = Prefix.tryParse(b.prefix);
      if (b.pending || !p.ok) continue;
      blocksUsed++;
      usedPerFamily.set(p.value.family, (usedPerFamily.get(p.value.family) ?? 0) + 1);
      capacityOfUsed += blockCapacity(p.value);
      addressesUsed += Object.keys(b.addresses ?? {}).length;
    }
  }
  let blocksFree = 0n;
  let capacityOfFree = 0n;
  for (const f of plan.families) {
    const free = f.subnet.blockCount(f.blockLength!) - BigInt(usedPerFamily.get(f.family) ?? 0);
    blocksFree += free;
    capacityOfFree += free * blockCapacity(f.subnet.block(f.blockLength!, 0n));
  }
  return {
    blocksUsed,
    blocksFree: String(blocksFree),
    addressesUsed,
    addressesFree: String(capacityOfUsed - BigInt(addressesUsed) + capacityOfFree),
  };
}
