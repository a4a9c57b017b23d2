import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isLaceError } from "../errors.ts";
import { IPAddress } from "../ip/mod.ts";
import type { Allocation, Network } from "../resources/types.ts";
import { MemoryStore } from "../store/memory.ts";
import { GlobalAllocator, l2PoolName } from "./mod.ts";
import { checkStoreConsistent, l2Network, ManualClock } from "./testing.ts";

const t = suite("ipam/global");

async function setup(net: Network) {
  const store = new MemoryStore();
  await store.create(net);
  const clock = new ManualClock();
  const make = () => new GlobalAllocator(store, { network: net.metadata.name, clock });
  return { store, make };
}

async function code(p: Promise<unknown>): Promise<[string, string]> {
  try {
    await p;
  } catch (e) {
    assert.ok(isLaceError(e), String(e));
    return [(e as { code: string }).code, (e as Error).message];
  }
  throw new Error("expected an error");
}

t("addresses come straight from the subnet; the first host address is the gateway", async () => {
  const { store, make } = await setup(l2Network("storage", "10.50.0.0/24"));
  const a = await make().allocate({ owner: "vm-a" });
  assert.is(a.addresses[0].address.toString(), "10.50.0.2");
  assert.is(a.addresses[0].gateway.toString(), "10.50.0.1");
  assert.is(a.addresses[0].prefix.toString(), "10.50.0.0/24");
  const rec = await store.get<Allocation>("Allocation", l2PoolName("storage"));
  assert.equal(rec!.spec!.blocks, [{ prefix: "10.50.0.0/24", addresses: { "vm-a": "10.50.0.2" } }]);
});

t("never twice, across restarts: a new instance continues after the highest address", async () => {
  const { store, make } = await setup(l2Network("storage", "10.50.0.0/24"));
  const first = make();
  for (let i = 0; i < 5; i++) await first.allocate({ owner: `o${i}` });
  const second = make();
  const next = await second.allocate({ owner: "o5" });
  assert.is(next.addresses[0].address.toString(), "10.50.0.7");
  assert.is((await first.allocate({ owner: "o6" })).addresses[0].address.toString(), "10.50.0.8", "the stale instance reloads on conflict");
  const all = await checkStoreConsistent(store);
  assert.is(all.size, 7);
});

t("a /29 holds five addresses, then SUBNET_EXHAUSTED and an Exhausted condition; a release clears it", async () => {
  const { store, make } = await setup(l2Network("small", "10.9.0.0/29"));
  const ipam = make();
  const got = await Promise.all(Array.from({ length: 5 }, (_, i) => ipam.allocate({ owner: `o${i}` })));
  assert.equal(got.map((g) => g.addresses[0].address.toString()).sort(), ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]);
  const [c, msg] = await code(ipam.allocate({ owner: "o5" }));
  assert.is(c, "SUBNET_EXHAUSTED");
  assert.match(msg, /Network "small".*10\.9\.0\.0\/29.*"o5"/);
  const cond = () => store.get<Network>("Network", "small").then((n) => n!.status?.conditions?.find((x) => x.type === "Exhausted")?.status);
  assert.is(await cond(), "True");
  await ipam.release("o2");
  assert.is(await cond(), "False");
  assert.is((await ipam.allocate({ owner: "o5" })).addresses[0].address.toString(), "10.9.0.4");
});

t("dual-stack, stable owners and requested addresses", async () => {
  const { make } = await setup(l2Network("vms", "10.60.0.0/24", "fd00:60::/64"));
  const ipam = make();
  const a = await ipam.allocate({ owner: "vm-db-0", addresses: [IPAddress.parse("fd00:60::100")] });
  assert.equal(a.addresses.map((x) => x.address.toString()), ["10.60.0.2", "fd00:60::100"]);
  const again = await make().allocate({ owner: "vm-db-0" });
  assert.equal(again.addresses.map((x) => x.address.toString()), ["10.60.0.2", "fd00:60::100"]);
  const [c1, m1] = await code(ipam.allocate({ owner: "x", addresses: [IPAddress.parse("10.61.0.5")] }));
  assert.is(c1, "ADDRESS_UNAVAILABLE");
  assert.match(m1, /10\.61\.0\.5.*outside the network's subnet 10\.60\.0\.0\/24/);
  const [c2, m2] = await code(ipam.allocate({ owner: "x", addresses: [IPAddress.parse("fd00:60::100")] }));
  assert.is(c2, "ADDRESS_UNAVAILABLE");
  assert.match(m2, /already held by owner "vm-db-0"/);
  const [, m3] = await code(ipam.allocate({ owner: "x", addresses: [IPAddress.parse("10.60.0.1")] }));
  assert.match(m3, /gateway/);
});

t.run();
