/**
 * Where IPAM keeps its state in the store. Everything is an Allocation:
 *
 * - `<network>.<node>`: the blocks a node holds for an `l3` network, each
 *   with the addresses handed out from it (owner handle → address). Written
 *   by the controller (blocks) and by the node's agent (addresses), both
 *   with compare-and-swap on resourceVersion.
 * - `<network>.pool-<k>.lace-cni.io`: shard `k` of an `l3` network's block
 *   claims (blocks `k*1024 … k*1024+1023` of the subnet, per family): which
 *   node holds each block, under which claim id. Sharded so no record
 *   outgrows an API server object (a /48 cut into /64s has 65,536 blocks)
 *   and so claims in different shards do not contend.
 * - `<network>.pool.lace-cni.io`: an `l2` network's addresses, one block
 *   per family whose prefix is the subnet.
 *
 * The node names `pool.lace-cni.io` and `pool-<k>.lace-cni.io` are reserved
 * (they sit in the project's own domain, which no cluster names a node in).
 * Every IPAM Allocation carries the label `lace-cni.io/network`; pool
 * records also carry `lace-cni.io/pool: "true"`.
 *
 * @example
 * allocationName("backend", "node-1");   // "backend.node-1"
 * poolShardName("backend", 0n);          // "backend.pool-0.lace-cni.io"
 */
import { type Allocation, API_VERSION, type AllocationBlock } from "../resources/types.ts";

/** Blocks per shard of an `l3` network's claims. */
export const BLOCKS_PER_SHARD = 1024n;

/** The reserved node name of an `l2` network's address pool. */
export const L2_POOL_NODE = "pool.lace-cni.io";

export const NETWORK_LABEL = "lace-cni.io/network";
export const POOL_LABEL = "lace-cni.io/pool";

/** The Allocation of one node for one network. */
export function allocationName(network: string, node: string): string {
  return `${network}.${node}`;
}

/** The reserved node name of shard `shard` of an `l3` network's block claims. */
export function poolShardNode(shard: bigint): string {
  return `pool-${shard}.lace-cni.io`;
}

export function poolShardName(network: string, shard: bigint): string {
  return allocationName(network, poolShardNode(shard));
}

/** The Allocation holding an `l2` network's addresses. */
export function l2PoolName(network: string): string {
  return allocationName(network, L2_POOL_NODE);
}

/** True for the reserved pool records, which belong to no node. */
export function isPoolRecord(a: Allocation): boolean {
  return a.metadata.labels?.[POOL_LABEL] === "true";
}

/**
 * The blocks a node really holds in an Allocation, as routing must see
 * them: none for a pool record (its blocks are claims or an `l2` subnet,
 * not a node's), and never a block still `pending` (its claim may fail).
 *
 * @example
 * for (const a of view.allocations("backend")) for (const b of heldBlocks(a)) route(b.prefix, a.spec!.node);
 */
export function heldBlocks(a: Allocation): AllocationBlock[] {
  if (isPoolRecord(a)) return [];
  return (a.spec?.blocks ?? []).filter((b) => !b.pending);
}

/** A new, unsaved Allocation. */
export function newAllocation(network: string, node: string, pool: boolean, blocks: AllocationBlock[] = []): Allocation {
  const labels: Record<string, string> = { [NETWORK_LABEL]: network };
  if (pool) labels[POOL_LABEL] = "true";
  return {
    apiVersion: API_VERSION,
    kind: "Allocation",
    metadata: { name: allocationName(network, node), labels },
    spec: { network, node, blocks },
  };
}

/** RFC 3339 text of a clock reading. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString();
}

/** Milliseconds of an RFC 3339 timestamp; NaN when absent or malformed. */
export function parseTimestamp(text: string | undefined): number {
  return text ? Date.parse(text) : NaN;
}

/** A fresh claim id: random, so two controllers never make the same one. */
export function newClaimId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}
