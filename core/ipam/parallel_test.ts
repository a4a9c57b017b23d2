import { suite } from "uvu";
import * as assert from "uvu/assert";
import { MemoryStore } from "../store/memory.ts";
import { type AddressAllocator, BlockAllocator, GlobalAllocator, HostLocalAllocator } from "./mod.ts";
import { checkStoreConsistent, l2Network, l3Network, ManualClock } from "./testing.ts";

const t = suite("ipam/parallel");

/** 10,000 allocations spread over the allocators in overlapping waves; returns every address handed out. */
async function hammer(allocators: AddressAllocator[], total = 10_000, wave = 700): Promise<string[]> {
  const out: string[] = [];
  let n = 0;
  const inflight: Promise<void>[] = [];
  while (n < total) {
    const size = Math.min(wave, total - n);
    const batch = Array.from({ length: size }, (_, i) => {
      const k = n + i;
      // Deterministic but uneven spread, so instances race on the same records.
      return allocators[(k * 7 + (k >> 5)) % allocators.length].allocate({ owner: `owner-${k}` })
        .then((a) => void out.push(...a.addresses.map((x) => x.address.toString())));
    });
    n += size;
    inflight.push(Promise.all(batch).then(() => undefined));
    if (inflight.length > 2) await inflight.shift();
  }
  await Promise.all(inflight);
  return out;
}

t("eight l2 allocators on one network: 10,000 allocations, no address twice", async () => {
  const store = new MemoryStore(100);
  await store.create(l2Network("vms", "10.64.0.0/18"));
  const clock = new ManualClock();
  const allocators = Array.from({ length: 8 }, () => new GlobalAllocator(store, { network: "vms", clock }));
  const got = await hammer(allocators);
  assert.is(got.length, 10_000);
  assert.is(new Set(got).size, 10_000, "duplicate address handed out");
  const recorded = await checkStoreConsistent(store);
  assert.is(recorded.size, 10_000);
});

t("eight l3 node allocators and two controllers on one network: 10,000 allocations, no address twice, no overlapping blocks", async () => {
  const store = new MemoryStore(100);
  await store.create(l3Network("backend", "10.40.0.0/16", 26));
  const clock = new ManualClock();
  const controllers = [new BlockAllocator(store, { clock }), new BlockAllocator(store, { clock })];
  const allocators = Array.from({ length: 8 }, (_, i) =>
    // Nodes 0-5 have one agent each; node-6 has two agent instances racing (a restart overlapping the old one).
    new HostLocalAllocator(store, { network: "backend", node: `node-${Math.min(i, 6)}`, blocks: controllers[i % 2], clock })
  );
  const got = await hammer(allocators);
  assert.is(got.length, 10_000);
  assert.is(new Set(got).size, 10_000, "duplicate address handed out");
  const recorded = await checkStoreConsistent(store);
  assert.is(recorded.size, 10_000);
});

t.run();
