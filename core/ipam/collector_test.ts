import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Allocation } from "../resources/types.ts";
import { MemoryStore } from "../store/memory.ts";
import { AddressCollector, BlockAllocator, GlobalAllocator, HostLocalAllocator } from "./mod.ts";
import { l2Network, l3Network, ManualClock } from "./testing.ts";

const t = suite("ipam/collector");

async function setup() {
  const store = new MemoryStore();
  await store.create(l3Network("backend", "10.40.0.0/16", 24));
  await store.create(l2Network("vms", "10.60.0.0/24"));
  const clock = new ManualClock();
  const blocks = new BlockAllocator(store, { clock });
  const l3 = new HostLocalAllocator(store, { network: "backend", node: "n1", blocks, clock });
  const l2 = new GlobalAllocator(store, { network: "vms", clock });
  const alive = new Set<string>();
  const gc = new AddressCollector(store, { isAlive: (owner) => alive.has(owner), grace: 60_000, clock });
  return { store, clock, l3, l2, alive, gc };
}

t("an owner seen gone twice, a grace period apart, loses its address; a live one never does", async () => {
  const { store, clock, l3, l2, alive, gc } = await setup();
  alive.add("live");
  await l3.allocate({ owner: "live" });
  await l3.allocate({ owner: "gone" });
  await l2.allocate({ owner: "gone-vm" });
  assert.equal(await gc.collect(), [], "first sighting");
  clock.advance(30_000);
  assert.equal(await gc.collect(), [], "second sighting, but inside the grace period");
  clock.advance(30_000);
  const r = await gc.collect();
  assert.equal(r.map((x) => `${x.network} ${x.owner} ${x.address}`).sort(), ["backend gone 10.40.0.3", "vms gone-vm 10.60.0.2"]);
  const rec = await store.get<Allocation>("Allocation", "backend.n1");
  assert.equal(rec!.spec!.blocks[0].addresses, { live: "10.40.0.2" });
  // The allocators notice through compare-and-swap: the address is free again, the live one stays.
  assert.is(await l3.release("gone"), false);
  assert.is((await l3.allocate({ owner: "live" })).addresses[0].address.toString(), "10.40.0.2");
});

t("one sighting is never enough, however long ago", async () => {
  const { clock, l3, gc } = await setup();
  await l3.allocate({ owner: "slow" });
  clock.advance(10 * 60_000);
  assert.equal(await gc.collect(), []);
});

t("an owner that reappears starts over", async () => {
  const { clock, l3, alive, gc } = await setup();
  await l3.allocate({ owner: "flaky" });
  await gc.collect();
  clock.advance(60_000);
  alive.add("flaky");
  await gc.collect();
  alive.delete("flaky");
  clock.advance(60_000);
  assert.equal(await gc.collect(), [], "the count restarted at one");
  clock.advance(60_000);
  assert.is((await gc.collect()).length, 1);
});

t("a restarted collector starts counting again rather than reclaiming early", async () => {
  const { store, clock, l3, gc } = await setup();
  await l3.allocate({ owner: "gone" });
  await gc.collect();
  clock.advance(60_000);
  const fresh = new AddressCollector(store, { isAlive: () => false, grace: 60_000, clock });
  assert.equal(await fresh.collect(), []);
});

t.run();
