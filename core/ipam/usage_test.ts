import { suite } from "uvu";
import * as assert from "uvu/assert";
import { MemoryStore } from "../store/memory.ts";
import { BlockAllocator, GlobalAllocator, HostLocalAllocator, networkUsage } from "./mod.ts";
import { l2Network, l3Network, ManualClock } from "./testing.ts";

const t = suite("ipam/usage");

t("host-local usage counts held blocks and handed-out addresses against the whole subnet", async () => {
  const store = new MemoryStore();
  await store.create(l3Network("net", "10.0.0.0/24", 26));
  const clock = new ManualClock();
  const blocks = new BlockAllocator(store, { clock });
  const n1 = new HostLocalAllocator(store, { network: "net", node: "n1", blocks, clock });
  const n2 = new HostLocalAllocator(store, { network: "net", node: "n2", blocks, clock });
  await Promise.all([n1.allocate({ owner: "a" }), n1.allocate({ owner: "b" }), n2.allocate({ owner: "c" })]);
  // 4 blocks of /26, 61 addresses each: 2 held, 3 addresses out, 244 - 3 free.
  assert.equal(await networkUsage(store, "net", "host-local"), { blocksUsed: 2, blocksFree: "2", addressesUsed: 3, addressesFree: "241" });
});

t("global usage counts addresses against the subnets, one family or two", async () => {
  const store = new MemoryStore();
  await store.create(l2Network("vms", "10.9.0.0/29", "fd00:9::/64"));
  const ipam = new GlobalAllocator(store, { network: "vms", clock: new ManualClock() });
  await ipam.allocate({ owner: "a" });
  // 5 IPv4 + 2^64 - 2 IPv6 addresses, two of them out.
  assert.equal(await networkUsage(store, "vms", "global"), { addressesUsed: 2, addressesFree: String(5n + (1n << 64n) - 2n - 2n) });
});

t.run();
