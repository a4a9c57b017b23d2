/**
 * IPAM: host-local blocks for `l3` networks, global addresses for `l2`,
 * stable owner handles, leak collection. All state lives in the store as
 * Allocations (layout in `layout.ts`); every change is a compare-and-swap.
 *
 * @example
 * import { BlockAllocator, HostLocalAllocator, addressRequestFor } from "./mod.ts";
 * const controller = new BlockAllocator(store);
 * const ipam = new HostLocalAllocator(store, { network: "backend", node: "node-1", blocks: controller });
 * const { addresses } = await ipam.allocate(addressRequestFor(pod));
 */
export { AddressBlock, blockCapacity, type GatewayOf } from "./address_block.ts";
export type { AddressAllocator, AddressRequest, AssignedAddress, Assignment, EarlyAssignment } from "./allocator.ts";
export { BlockAllocator, type BlockAllocatorOptions, type BlockSource } from "./block_allocator.ts";
export { AddressCollector, type AddressCollectorOptions, type OwnerLiveness, type Reclaimed } from "./collector.ts";
export { GlobalAllocator, type GlobalAllocatorOptions } from "./global.ts";
export { HostLocalAllocator, type HostLocalAllocatorOptions } from "./host_local.ts";
export {
  allocationName,
  BLOCKS_PER_SHARD,
  heldBlocks,
  isPoolRecord,
  L2_POOL_NODE,
  l2PoolName,
  NETWORK_LABEL,
  POOL_LABEL,
  poolShardName,
  poolShardNode,
} from "./layout.ts";
export { addressRequestFor, IP_ANNOTATION, OWNER_ANNOTATION, podHasFinished } from "./owner.ts";
export { GoneSightings } from "./sightings.ts";
export { networkUsage, type NetworkUsage } from "./usage.ts";
