/**
 * The controller side of host-local (`l3`) IPAM: cuts each subnet, per
 * family, into blocks of `hostLocalPrefixLength` and gives them to nodes.
 *
 * Who holds a block is decided by a compare-and-swap on the network's pool
 * records (see `layout.ts`); the node's Allocation lists what it holds. The
 * two are kept safe without transactions by one rule and one ordering:
 *
 * 1. a claim first appears in the node's Allocation as `pending` (never
 *    used for addresses), with a fresh claim id;
 * 2. the claim is then made in the pool (fails if the block is taken);
 * 3. only then does the block become active in the node's Allocation, and
 *    only if the pending entry is still there.
 *
 * A claim is removed from the pool only after the block with that claim id
 * is seen absent from the node's Allocation in a read made after reading
 * the pool. Since a claim id is written to an Allocation once (step 1,
 * before the pool claim) and never re-added, an active block always has
 * its pool claim, so no two nodes ever use overlapping blocks, whatever
 * crashes, restarts or concurrent controllers do.
 *
 * @example
 * const blocks = new BlockAllocator(store, { clock, emptyBlockGrace: 600_000 });
 * await blocks.acquire("backend", "node-1", 4);   // Prefix 10.40.0.0/24
 * await blocks.returnEmptyBlocks("backend");      // periodic: empty blocks back to the pool
 * await blocks.releaseNode("node-1");             // node deleted
 */
import { laceError } from "../errors.ts";
import { type Family, Prefix } from "../ip/mod.ts";
import { type Clock, systemClock } from "../plugin/tokens.ts";
import type { Allocation, AllocationBlock } from "../resources/types.ts";
import { isStoreError, type Store, StoreError } from "../store/store.ts";
import { blockCapacity } from "./address_block.ts";
import { backoff, RecordCommitter } from "./committer.ts";
import {
  allocationName,
  BLOCKS_PER_SHARD,
  isPoolRecord,
  NETWORK_LABEL,
  newAllocation,
  newClaimId,
  parseTimestamp,
  POOL_LABEL,
  poolShardName,
  poolShardNode,
  timestamp,
} from "./layout.ts";
import { type FamilyPlan, type NetworkPlan, readNetworkPlan, setExhausted } from "./network_plan.ts";

/** Where a node gets another block when its own are full. */
export interface BlockSource {
  /**
   * Makes sure `node`'s blocks of `family` in `network` have room for
   * `room` more addresses (default 1), claiming blocks as needed; resolves
   * to the blocks claimed (none when there was room already). Fails with
   * SUBNET_EXHAUSTED naming the network and the node when there is no room
   * at all and no block left; with some room but not enough, it returns
   * what it could claim.
   */
  acquire(network: string, node: string, family: Family, room?: number): Promise<Prefix[]>;
}

export interface BlockAllocatorOptions {
  clock?: Clock;
  /** How long (ms) an empty block that is not the node's last stays with it before returning to the pool. Default 10 minutes. */
  emptyBlockGrace?: number;
  /** How long (ms) an unfinished (pending) claim may stay before a sweep removes it. Default 1 minute. */
  pendingGrace?: number;
}

interface Claim {
  node: string;
  claim: string;
  prefix: string;
}

/** The claims of one pool shard: per family, block index inside the shard → claim. */
export class ShardClaims {
  private readonly families = new Map<Family, Map<number, Claim>>();
  private readonly cursors = new Map<Family, number>();
  readonly byClaim = new Map<string, { family: Family; local: number }>();

  static of(record: Allocation | undefined, plans: readonly FamilyPlan[], shard: bigint): ShardClaims {
    const s = new ShardClaims();
    for (const b of record?.spec?.blocks ?? []) {
      const p = Prefix.tryParse(b.prefix);
      if (!p.ok) continue;
      const plan = plans.find((f) => f.family === p.value.family);
      if (!plan || p.value.length !== plan.blockLength || !plan.subnet.covers(p.value)) continue;
      const local = plan.subnet.blockIndex(p.value) - shard * BLOCKS_PER_SHARD;
      if (local < 0n || local >= BLOCKS_PER_SHARD) continue;
      s.add(p.value.family, Number(local), { node: b.node ?? "", claim: b.claim ?? "", prefix: b.prefix });
    }
    return s;
  }

  claims(family: Family): Map<number, Claim> {
    let m = this.families.get(family);
    if (!m) this.families.set(family, m = new Map());
    return m;
  }

  add(family: Family, local: number, c: Claim): void {
    this.claims(family).set(local, c);
    this.byClaim.set(c.claim, { family, local });
    // Every block below the cursor is claimed; keep it so.
    if (local === (this.cursors.get(family) ?? 0)) this.cursors.set(family, local + 1);
  }

  remove(claim: string): Claim | undefined {
    const at = this.byClaim.get(claim);
    if (!at) return undefined;
    const m = this.claims(at.family);
    const c = m.get(at.local);
    m.delete(at.local);
    this.byClaim.delete(claim);
    if (at.local < (this.cursors.get(at.family) ?? 0)) this.cursors.set(at.family, at.local);
    return c;
  }

  /** The lowest unclaimed block of the `count` in this shard that `skip` does not exclude. */
  findFree(family: Family, count: number, skip: (local: number) => boolean): number | undefined {
    const m = this.claims(family);
    if (m.size >= count) return undefined;
    let i = this.cursors.get(family) ?? 0;
    while (i < count && m.has(i)) i++;
    this.cursors.set(family, i);
    for (; i < count; i++) if (!m.has(i) && !skip(i)) return i;
    return undefined;
  }
}

interface Candidate {
  shard: bigint;
  local: number;
  index: bigint;
}

/** The per-network pool shards, built for one plan of the network. */
interface Pool {
  key: string;
  plans: readonly FamilyPlan[];
  shards: Map<bigint, RecordCommitter<ShardClaims>>;
  /** Per family: the lowest shard that may still have a free block. */
  hint: Map<Family, bigint>;
}

export class BlockAllocator implements BlockSource {
  private readonly clock: Clock;
  private readonly emptyBlockGrace: number;
  private readonly pendingGrace: number;
  private readonly pools = new Map<string, Pool>();
  private readonly inflight = new Map<string, Promise<Prefix[]>>();
  /** Blocks an acquire in this process is claiming: a hint so concurrent acquires pick different blocks. */
  private readonly tentative = new Set<string>();
  private readonly exhausted = new Map<string, boolean>();

  constructor(private readonly store: Store, options: BlockAllocatorOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.emptyBlockGrace = options.emptyBlockGrace ?? 600_000;
    this.pendingGrace = options.pendingGrace ?? 60_000;
  }

  acquire(network: string, node: string, family: Family, room = 1): Promise<Prefix[]> {
    const key = `${network}\0${node}\0${family}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.acquireOnce(network, node, family, room).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private pool(plan: NetworkPlan): Pool {
    const key = plan.families.map((f) => `${f.subnet}/${f.blockLength}`).join(",");
    let pool = this.pools.get(plan.network);
    if (!pool || pool.key !== key) {
      pool = { key, plans: plan.families, shards: new Map(), hint: new Map() };
      this.pools.set(plan.network, pool);
    }
    return pool;
  }

  private shard(network: string, pool: Pool, shard: bigint): RecordCommitter<ShardClaims> {
    let c = pool.shards.get(shard);
    if (!c) {
      c = new RecordCommitter(this.store, poolShardName(network, shard), (r) => ShardClaims.of(r, pool.plans, shard));
      pool.shards.set(shard, c);
    }
    return c;
  }

  private async candidate(network: string, pool: Pool, fp: FamilyPlan): Promise<Candidate | undefined> {
    const total = fp.subnet.blockCount(fp.blockLength!);
    const shards = (total + BLOCKS_PER_SHARD - 1n) / BLOCKS_PER_SHARD;
    for (let s = pool.hint.get(fp.family) ?? 0n; s < shards; s++) {
      const rest = total - s * BLOCKS_PER_SHARD;
      const count = Number(rest < BLOCKS_PER_SHARD ? rest : BLOCKS_PER_SHARD);
      const base = s * BLOCKS_PER_SHARD;
      const local = await this.shard(network, pool, s).peek((d) => {
        const found = d.state.findFree(fp.family, count, (i) => this.tentative.has(`${network}/${fp.family}/${base + BigInt(i)}`));
        if (found === undefined && d.state.claims(fp.family).size >= count) pool.hint.set(fp.family, s + 1n);
        // Marked here, synchronously, so a concurrent search cannot pick the same block.
        if (found !== undefined) this.tentative.add(`${network}/${fp.family}/${base + BigInt(found)}`);
        return found;
      });
      if (local !== undefined) return { shard: s, local, index: base + BigInt(local) };
    }
    return undefined;
  }

  private async acquireOnce(network: string, node: string, family: Family, wanted: number): Promise<Prefix[]> {
    const plan = await readNetworkPlan(this.store, network, "host-local");
    const fp = plan.families.find((f) => f.family === family);
    if (!fp) {
      throw laceError("INVALID_ARGUMENT", `Network "${network}" has no IPv${family} subnet: node "${node}" cannot get an IPv${family} block`);
    }
    const blockLength = fp.blockLength!;
    if (blockCapacity(fp.subnet.block(blockLength, 0n)) === 0n) {
      throw laceError("INVALID_RESOURCE", `Network "${network}": /${blockLength} blocks of ${fp.subnet} hold no pod address (network, gateway and broadcast use them up)`);
    }
    const pool = this.pool(plan);
    let confirmed = false;
    const claimed: Prefix[] = [];
    for (let attempt = 1; attempt <= 200 + wanted; attempt++) {
      const current = await this.store.get<Allocation>("Allocation", allocationName(network, node));
      const room = freeRoom(current, family);
      if (room >= wanted) return claimed;
      const cand = await this.candidate(network, pool, fp);
      if (!cand) {
        if (room > 0) return claimed;
        if ([...this.tentative].some((t) => t.startsWith(`${network}/${family}/`))) {
          // Another acquire here may still give its block back.
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        if (!confirmed) {
          for (const c of pool.shards.values()) c.invalidate();
          pool.hint.delete(family);
          confirmed = true;
          continue;
        }
        const message = `Network "${network}" has no free /${blockLength} block left in ${fp.subnet} for node "${node}"`;
        this.exhausted.set(network, true);
        await setExhausted(this.store, network, true, message, this.clock.now());
        throw laceError("SUBNET_EXHAUSTED", message);
      }
      const tkey = `${network}/${family}/${cand.index}`;
      try {
        const prefix = fp.subnet.block(blockLength, cand.index);
        const text = prefix.toString();
        const claim = newClaimId();
        // Step 1: pending in the node's Allocation, before the claim exists anywhere else.
        await this.updateNode(network, node, true, (a) => {
          a.spec!.blocks.push({ prefix: text, claim, pending: true, emptySince: timestamp(this.clock.now()) });
          return true;
        });
        // Step 2: the claim in the pool.
        const won = await this.shard(network, pool, cand.shard).run((d) => {
          const m = d.state.claims(family);
          if (m.has(cand.local)) return false;
          d.record ??= newAllocation(network, poolShardNode(cand.shard), true);
          d.record.spec!.blocks.push({ prefix: text, node, claim });
          d.state.add(family, cand.local, { node, claim, prefix: text });
          d.dirty = true;
          return true;
        });
        if (!won) {
          await this.updateNode(network, node, false, (a) => removeClaim(a, claim));
          continue;
        }
        // Step 3: active, if the pending entry survived.
        const active = await this.updateNode(network, node, false, (a) => {
          const b = a.spec!.blocks.find((x) => x.claim === claim && x.pending);
          if (!b) return false;
          delete b.pending;
          b.emptySince = timestamp(this.clock.now());
          return true;
        });
        if (!active) {
          await this.dropClaim(network, pool, cand.shard, claim);
          continue;
        }
        if (this.exhausted.get(network) !== false) {
          await setExhausted(this.store, network, false, `Network "${network}" has free blocks again`, this.clock.now());
          this.exhausted.set(network, false);
        }
        claimed.push(prefix);
      } finally {
        this.tentative.delete(tkey);
      }
    }
    throw new StoreError("Conflict", `Network "${network}": node "${node}" could not claim an IPv${family} block, the pool kept changing under ${200 + wanted} attempts`);
  }

  private dropClaim(network: string, pool: Pool, shard: bigint, claim: string): Promise<boolean> {
    return this.shard(network, pool, shard).run((d) => {
      if (!d.record || !d.state.remove(claim)) return false;
      d.record.spec!.blocks = d.record.spec!.blocks.filter((b) => b.claim !== claim);
      d.dirty = true;
      pool.hint.clear();
      return true;
    });
  }

  /**
   * Changes the node's Allocation with compare-and-swap; `change` returns
   * false to leave it alone. Creates the Allocation when `create` is set.
   */
  private async updateNode(network: string, node: string, create: boolean, change: (a: Allocation) => boolean): Promise<boolean> {
    const name = allocationName(network, node);
    for (let attempt = 1;; attempt++) {
      let a = await this.store.get<Allocation>("Allocation", name);
      const isNew = !a;
      if (!a) {
        if (!create) return false;
        a = newAllocation(network, node, false);
      }
      if (!change(a)) return false;
      try {
        if (isNew) await this.store.create(a);
        else await this.store.update(a);
        return true;
      } catch (e) {
        const retry = isStoreError(e, "Conflict") || isStoreError(e, "AlreadyExists") || isStoreError(e, "NotFound");
        if (!retry || attempt >= 200) throw e;
        await backoff(attempt);
      }
    }
  }

  /**
   * Periodic sweep of one network: returns to the pool every empty block
   * that is not its node's last of that family once it has been empty for
   * the grace period, removes claims left pending longer than their grace,
   * and drops pool claims that no node holds. Returns the blocks returned.
   */
  async returnEmptyBlocks(network: string): Promise<string[]> {
    const plan = await readNetworkPlan(this.store, network, "host-local");
    const now = this.clock.now();
    const returned: string[] = [];
    const { items } = await this.store.list<Allocation>("Allocation", { labelSelector: `${NETWORK_LABEL}=${network}` });
    for (const a of items) {
      if (isPoolRecord(a) || !a.spec) continue;
      await this.updateNode(network, a.spec.node, false, (cur) => {
        const gone = new Set<string>();
        const byFamily = new Map<Family, AllocationBlock[]>();
        for (const b of cur.spec!.blocks) {
          const age = now - parseTimestamp(b.emptySince);
          if (b.pending) {
            if (age >= this.pendingGrace) gone.add(b.claim ?? b.prefix);
            continue;
          }
          const p = Prefix.tryParse(b.prefix);
          if (!p.ok) continue;
          const list = byFamily.get(p.value.family) ?? [];
          list.push(b);
          byFamily.set(p.value.family, list);
        }
        for (const blocks of byFamily.values()) {
          const idle = blocks.filter((b) => Object.keys(b.addresses ?? {}).length === 0 && now - parseTimestamp(b.emptySince) >= this.emptyBlockGrace);
          // The node keeps its last block of each family, empty or not.
          const returnable = idle.length === blocks.length ? idle.slice(1) : idle;
          for (const b of returnable) {
            gone.add(b.claim ?? b.prefix);
            returned.push(b.prefix);
          }
        }
        if (gone.size === 0) return false;
        cur.spec!.blocks = cur.spec!.blocks.filter((b) => !gone.has(b.claim ?? b.prefix));
        return true;
      });
    }
    await this.dropOrphans(plan);
    if (returned.length && this.exhausted.get(network) !== false) {
      await setExhausted(this.store, network, false, `Network "${network}" has free blocks again`, now);
      this.exhausted.set(network, false);
    }
    return returned;
  }

  /** Drops pool claims whose block no node's Allocation holds under that claim id. */
  private async dropOrphans(plan: NetworkPlan): Promise<void> {
    const network = plan.network;
    const pool = this.pool(plan);
    // The pool is read first, the nodes' Allocations after: see the rule at the top of this file.
    const claims = (await this.store.list<Allocation>("Allocation", { labelSelector: `${NETWORK_LABEL}=${network},${POOL_LABEL}=true` })).items;
    const held = new Set<string>();
    for (const a of (await this.store.list<Allocation>("Allocation", { labelSelector: `${NETWORK_LABEL}=${network}` })).items) {
      if (isPoolRecord(a)) continue;
      for (const b of a.spec?.blocks ?? []) if (b.claim) held.add(`${a.spec!.node}\0${b.claim}`);
    }
    for (const rec of claims) {
      const m = /^pool-(\d+)\.lace-cni\.io$/.exec(rec.spec?.node ?? "");
      if (!m) continue;
      for (const b of rec.spec!.blocks) {
        if (b.claim && !held.has(`${b.node}\0${b.claim}`)) await this.dropClaim(network, pool, BigInt(m[1]), b.claim);
      }
    }
  }

  /**
   * Forgets a node that left the cluster: deletes its Allocations (of
   * `networks`, or of every network) and returns their blocks to the pools.
   */
  async releaseNode(node: string, networks?: string[]): Promise<void> {
    const all = (await this.store.list<Allocation>("Allocation")).items;
    const nets = networks ?? [...new Set(all.filter((a) => a.spec?.node === node && !isPoolRecord(a)).map((a) => a.spec!.network))];
    for (const network of nets) {
      try {
        await this.store.delete("Allocation", allocationName(network, node));
      } catch (e) {
        if (!isStoreError(e, "NotFound")) throw e;
      }
      let plan: NetworkPlan;
      try {
        plan = await readNetworkPlan(this.store, network, "host-local");
      } catch {
        continue; // the network itself is gone; its pool goes with it
      }
      await this.dropOrphans(plan);
    }
  }
}

/** How many more addresses of the family the Allocation's active blocks can hand out (capped, it only needs comparing). */
function freeRoom(a: Allocation | undefined, family: Family): number {
  let room = 0n;
  for (const b of a?.spec?.blocks ?? []) {
    if (b.pending) continue;
    const p = Prefix.tryParse(b.prefix);
    if (!p.ok || p.value.family !== family) continue;
    room += blockCapacity(p.value) - BigInt(Object.keys(b.addresses ?? {}).length);
    if (room > 1n << 40n) break;
  }
  return Number(room);
}

function removeClaim(a: Allocation, claim: string): boolean {
  const before = a.spec!.blocks.length;
  a.spec!.blocks = a.spec!.blocks.filter((b) => b.claim !== claim);
  return a.spec!.blocks.length !== before;
}
