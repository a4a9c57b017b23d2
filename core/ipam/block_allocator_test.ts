import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Allocation, Resource } from "../resources/types.ts";
import { MemoryStore } from "../store/memory.ts";
import type { Store } from "../store/store.ts";
import { BlockAllocator, heldBlocks, HostLocalAllocator, poolShardName } from "./mod.ts";
import { checkStoreConsistent, l3Network, ManualClock } from "./testing.ts";

const t = suite("ipam/block-allocator");

const get = (store: Store, name: string) => store.get<Allocation>("Allocation", name);

t("blocks past the first 1,024 are claimed in the next pool shard", async () => {
  const store = new MemoryStore();
  await store.create(l3Network("net", "10.0.0.0/16", 30));
  const clock = new ManualClock();
  // Shard 0 is full: blocks 0..1023 all held by node "other".
  const blocks = Array.from({ length: 1024 }, (_, i) => ({ prefix: `10.0.${i >> 6}.${(i & 63) * 4}/30`, claim: `c${i}` }));
  await store.create<Allocation>({
    apiVersion: "lace-cni.io/v1alpha1", kind: "Allocation",
    metadata: { name: poolShardName("net", 0n), labels: { "lace-cni.io/network": "net", "lace-cni.io/pool": "true" } },
    spec: { network: "net", node: "pool-0.lace-cni.io", blocks: blocks.map((b) => ({ ...b, node: "other" })) },
  });
  await store.create<Allocation>({
    apiVersion: "lace-cni.io/v1alpha1", kind: "Allocation",
    metadata: { name: "net.other", labels: { "lace-cni.io/network": "net" } },
    spec: { network: "net", node: "other", blocks },
  });
  const got = await new BlockAllocator(store, { clock }).acquire("net", "n1", 4);
  assert.equal(got.map(String), ["10.0.16.0/30"]);
  const shard1 = await get(store, poolShardName("net", 1n));
  assert.equal(shard1!.spec!.blocks.map((b) => [b.prefix, b.node]), [["10.0.16.0/30", "n1"]]);
  await checkStoreConsistent(store);
});

t("a pool claim that no node holds is dropped by the sweep, and its block is claimed again", async () => {
  const store = new MemoryStore();
  await store.create(l3Network("net", "10.0.0.0/29", 30));
  const clock = new ManualClock();
  await store.create<Allocation>({
    apiVersion: "lace-cni.io/v1alpha1", kind: "Allocation",
    metadata: { name: poolShardName("net", 0n), labels: { "lace-cni.io/network": "net", "lace-cni.io/pool": "true" } },
    spec: { network: "net", node: "pool-0.lace-cni.io", blocks: [{ prefix: "10.0.0.0/30", node: "ghost", claim: "lost" }] },
  });
  const blocks = new BlockAllocator(store, { clock });
  assert.equal((await blocks.acquire("net", "n1", 4)).map(String), ["10.0.0.4/30"], "the orphan still holds its block");
  await blocks.returnEmptyBlocks("net");
  assert.equal((await get(store, poolShardName("net", 0n)))!.spec!.blocks.map((b) => b.node), ["n1"]);
  assert.equal((await blocks.acquire("net", "n2", 4)).map(String), ["10.0.0.0/30"]);
  await checkStoreConsistent(store);
});

t("releaseNode deletes the node's Allocation and returns its blocks", async () => {
  const store = new MemoryStore();
  await store.create(l3Network("net", "10.0.0.0/29", 30));
  const clock = new ManualClock();
  const blocks = new BlockAllocator(store, { clock });
  const n1 = new HostLocalAllocator(store, { network: "net", node: "n1", blocks, clock });
  await n1.allocate({ owner: "a" });
  await n1.allocate({ owner: "b" });
  await blocks.releaseNode("n1");
  assert.is(await get(store, "net.n1"), undefined);
  assert.equal((await get(store, poolShardName("net", 0n)))!.spec!.blocks, []);
  const n2 = new HostLocalAllocator(store, { network: "net", node: "n2", blocks, clock });
  const got = await Promise.all([n2.allocate({ owner: "c" }), n2.allocate({ owner: "d" })]);
  assert.equal(got.map((g) => g.addresses[0].address.toString()).sort(), ["10.0.0.2", "10.0.0.6"]);
  await checkStoreConsistent(store);
});

/** A store that runs `hook` once, right after the first write matching `when`. */
class HookedStore extends MemoryStore {
  constructor(private when: (o: Resource) => boolean, private hook?: (s: MemoryStore) => Promise<void>) {
    super();
  }
  override async update<T extends Resource>(obj: T): Promise<T> {
    const r = await super.update(obj);
    if (this.hook && this.when(obj)) {
      const h = this.hook;
      this.hook = undefined;
      await h(this);
    }
    return r;
  }
  override async create<T extends Resource>(obj: T): Promise<T> {
    const r = await super.create(obj);
    if (this.hook && this.when(obj)) {
      const h = this.hook;
      this.hook = undefined;
      await h(this);
    }
    return r;
  }
}

t("a claim whose pending entry was swept before activation is given up, never activated", async () => {
  const clock = new ManualClock();
  // Between the pool claim (step 2) and activation (step 3) of n1's block, a
  // second controller sweeps (the pending entry has outlived its grace, so
  // the claim is an orphan) and gives the block to n2.
  const store: HookedStore = new HookedStore((o) => o.metadata.name === poolShardName("net", 0n), async () => {
    clock.advance(120_000);
    const other = new BlockAllocator(store, { clock, pendingGrace: 60_000 });
    await other.returnEmptyBlocks("net");
    assert.equal((await other.acquire("net", "n2", 4)).map(String), ["10.0.0.0/30"]);
  });
  await store.create(l3Network("net", "10.0.0.0/28", 30));
  const got = await new BlockAllocator(store, { clock }).acquire("net", "n1", 4);
  assert.equal(got.map(String), ["10.0.0.4/30"], "n1 gave up the swept claim and claimed another block");
  const node = (await store.get<Allocation>("Allocation", "net.n1"))!;
  assert.equal(node.spec!.blocks.map((b) => [b.prefix, b.pending]), [["10.0.0.4/30", undefined]]);
  await checkStoreConsistent(store);
});

t("two controllers claiming for many nodes at once never give a block twice", async () => {
  const store = new MemoryStore(100);
  await store.create(l3Network("net", "10.0.0.0/22", 28));
  const clock = new ManualClock();
  const controllers = [new BlockAllocator(store, { clock }), new BlockAllocator(store, { clock }), new BlockAllocator(store, { clock })];
  const got = await Promise.all(Array.from({ length: 60 }, (_, i) => controllers[i % 3].acquire("net", `n${i % 20}`, 4, 30)));
  const prefixes = got.flat().map(String);
  assert.is(new Set(prefixes).size, prefixes.length);
  await checkStoreConsistent(store);
});

t("heldBlocks shows routing only the active blocks of node records", async () => {
  const store = new MemoryStore();
  await store.create(l3Network("net", "10.0.0.0/28", 30));
  const clock = new ManualClock();
  await new BlockAllocator(store, { clock }).acquire("net", "n1", 4);
  const node = (await get(store, "net.n1"))!;
  node.spec!.blocks.push({ prefix: "10.0.0.8/30", claim: "x", pending: true });
  assert.equal(heldBlocks(node).map((b) => b.prefix), ["10.0.0.0/30"]);
  assert.equal(heldBlocks((await get(store, poolShardName("net", 0n)))!), []);
});

t.run();
