import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isLaceError } from "../errors.ts";
import { IPAddress } from "../ip/mod.ts";
import type { Allocation, Network } from "../resources/types.ts";
import { MemoryStore } from "../store/memory.ts";
import { BlockAllocator, HostLocalAllocator } from "./mod.ts";
import { checkStoreConsistent, l3Network, ManualClock } from "./testing.ts";

const t = suite("ipam/host-local");

async function setup(net: Network, options: { grace?: number } = {}) {
  const store = new MemoryStore();
  await store.create(net);
  const clock = new ManualClock();
  const blocks = new BlockAllocator(store, { clock, emptyBlockGrace: options.grace ?? 60_000 });
  const node = (name: string) => new HostLocalAllocator(store, { network: net.metadata.name, node: name, blocks, clock });
  return { store, clock, blocks, node };
}

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isLaceError(e), `expected a LaceError, got ${e}`);
    assert.is((e as { code: string }).code, code);
    assert.match((e as Error).message, re);
    return e as Error;
  }
  throw new Error(`expected a ${code} error`);
}

t("a node's first request gets it a block; the gateway and network address are never handed out", async () => {
  const { store, node } = await setup(l3Network("backend", "10.40.0.0/16", 24));
  const n1 = node("node-1");
  const a = await n1.allocate({ owner: "pod-a" });
  assert.is(a.addresses.length, 1);
  assert.is(a.addresses[0].address.toString(), "10.40.0.2");
  assert.is(a.addresses[0].gateway.toString(), "10.40.0.1");
  assert.is(a.addresses[0].prefix.toString(), "10.40.0.0/24");
  const rec = await store.get<Allocation>("Allocation", "backend.node-1");
  assert.equal(rec!.spec!.blocks.map((b) => [b.prefix, b.addresses, b.pending]), [["10.40.0.0/24", { "pod-a": "10.40.0.2" }, undefined]]);
  const b = await node("node-2").allocate({ owner: "pod-b" });
  assert.is(b.addresses[0].prefix.toString(), "10.40.1.0/24");
  await checkStoreConsistent(store);
});

t("allocateEarly answers from the cached record before the write lands, and durable settles once it has", async () => {
  const { store, node } = await setup(l3Network("backend", "10.40.0.0/16", 24));
  const n1 = node("node-1");
  await n1.allocate({ owner: "warm" }); // the record is loaded and cached
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const update = store.update.bind(store);
  const held: string[] = [];
  store.update = async (o) => {
    held.push(o.metadata.name);
    await gate;
    return update(o);
  };
  const early = await Promise.all([n1.allocateEarly({ owner: "pod-a" }), n1.allocateEarly({ owner: "pod-b" })]);
  assert.equal(early.map((e) => e.assignment.addresses[0].address.toString()), ["10.40.0.3", "10.40.0.4"], "a burst: different addresses");
  assert.equal(held, ["backend.node-1"], "one write for the burst, still held");
  const stored = async () => Object.keys((await store.get<Allocation>("Allocation", "backend.node-1"))!.spec!.blocks[0].addresses ?? {}).sort();
  assert.equal(await stored(), ["warm"], "not durable yet");
  release();
  const durable = await Promise.all(early.map((e) => e.durable));
  assert.equal(durable.map((a) => a.addresses[0].address.toString()), ["10.40.0.3", "10.40.0.4"]);
  assert.equal(await stored(), ["pod-a", "pod-b", "warm"]);
  await checkStoreConsistent(store);
});

t("allocateEarly after a conflict: the batch runs again pinned to the answers given, never other addresses", async () => {
  const { store, node } = await setup(l3Network("backend", "10.40.0.0/16", 24));
  const n1 = node("node-1");
  await n1.allocate({ owner: "warm" });
  const update = store.update.bind(store);
  // Someone else writes the record while our batch's write is on its way: ours then meets a Conflict.
  const racing = (change: (rec: Allocation) => void) => {
    store.update = async (o) => {
      store.update = update;
      const rec = (await store.get<Allocation>("Allocation", "backend.node-1"))!;
      change(rec);
      await update(rec);
      return update(o);
    };
  };
  racing((rec) => (rec.metadata.annotations = { touched: "yes" }));
  const a = await n1.allocateEarly({ owner: "pod-a" });
  assert.is(a.assignment.addresses[0].address.toString(), "10.40.0.3");
  assert.is((await a.durable).addresses[0].address.toString(), "10.40.0.3", "written as answered, after the reload");
  const after = (await store.get<Allocation>("Allocation", "backend.node-1"))!;
  assert.equal([after.spec!.blocks[0].addresses?.["pod-a"], after.metadata.annotations?.touched], ["10.40.0.3", "yes"]);
  // The other writer took the very address answered: durable fails rather than write another one.
  racing((rec) => (rec.spec!.blocks[0].addresses!["intruder"] = "10.40.0.4"));
  const b = await n1.allocateEarly({ owner: "pod-b" });
  assert.is(b.assignment.addresses[0].address.toString(), "10.40.0.4");
  await rejects(b.durable, "ADDRESS_UNAVAILABLE", /Cannot give address 10\.40\.0\.4 to owner "pod-b"/);
  const last = (await store.get<Allocation>("Allocation", "backend.node-1"))!;
  assert.equal(last.spec!.blocks[0].addresses, { warm: "10.40.0.2", "pod-a": "10.40.0.3", intruder: "10.40.0.4" });
});

t("a /29 cut into /30 blocks: one pod address per block, then SUBNET_EXHAUSTED naming network and node, and an Exhausted condition", async () => {
  const { store, node } = await setup(l3Network("tiny", "10.0.0.0/29", 30));
  const n1 = node("n1");
  const n2 = node("n2");
  assert.is((await n1.allocate({ owner: "a" })).addresses[0].address.toString(), "10.0.0.2");
  assert.is((await n2.allocate({ owner: "b" })).addresses[0].address.toString(), "10.0.0.6");
  await rejects(n1.allocate({ owner: "c" }), "SUBNET_EXHAUSTED", /Network "tiny".*10\.0\.0\.0\/29.*node "n1"/);
  const net = await store.get<Network>("Network", "tiny");
  const cond = net!.status!.conditions!.find((c) => c.type === "Exhausted");
  assert.is(cond?.status, "True");
  assert.match(cond!.message, /node "n1"/);
  // Nothing half-done was left behind.
  const addrs = await checkStoreConsistent(store);
  assert.is(addrs.size, 2);
});

t("a full block brings another one; the Allocation lists every prefix the node holds", async () => {
  const { store, node } = await setup(l3Network("backend", "10.40.0.0/24", 29));
  const n1 = node("n1");
  const got = await Promise.all(Array.from({ length: 12 }, (_, i) => n1.allocate({ owner: `p${i}` })));
  assert.is(new Set(got.map((g) => g.addresses[0].address.toString())).size, 12);
  const rec = await store.get<Allocation>("Allocation", "backend.n1");
  assert.equal(rec!.spec!.blocks.map((b) => b.prefix), ["10.40.0.0/29", "10.40.0.8/29", "10.40.0.16/29"]);
  await checkStoreConsistent(store);
});

t("dual-stack: one address per family, from a block of each", async () => {
  const { store, node } = await setup(l3Network("ds", "10.1.0.0/16", 24, "fd00:1::/48", 64));
  const a = await node("n1").allocate({ owner: "vm" });
  assert.equal(a.addresses.map((x) => x.address.toString()), ["10.1.0.2", "fd00:1::2"]);
  assert.equal(a.addresses.map((x) => x.gateway.toString()), ["10.1.0.1", "fd00:1::1"]);
  await checkStoreConsistent(store);
});

t("the same owner gets the same addresses again, from a new allocator instance too", async () => {
  const { node } = await setup(l3Network("ds", "10.1.0.0/16", 24, "fd00:1::/48", 64));
  const first = await node("n1").allocate({ owner: "vm-db-0" });
  await node("n1").allocate({ owner: "other" });
  const again = await node("n1").allocate({ owner: "vm-db-0" });
  assert.equal(again.addresses.map((x) => x.address.toString()), first.addresses.map((x) => x.address.toString()));
  const looked = await node("n1").lookup("vm-db-0");
  assert.equal(looked!.addresses.map((x) => x.address.toString()), first.addresses.map((x) => x.address.toString()));
});

t("a requested address is given when free and inside the node's blocks, refused with the reason otherwise", async () => {
  const { node } = await setup(l3Network("backend", "10.40.0.0/16", 24));
  const n1 = node("n1");
  await n1.allocate({ owner: "first" });
  const want = IPAddress.parse("10.40.0.77");
  assert.is((await n1.allocate({ owner: "a", addresses: [want] })).addresses[0].address.toString(), "10.40.0.77");
  assert.is((await n1.allocate({ owner: "a", addresses: [want] })).addresses[0].address.toString(), "10.40.0.77");
  await rejects(n1.allocate({ owner: "b", addresses: [want] }), "ADDRESS_UNAVAILABLE", /10\.40\.0\.77.*already held by owner "a"/);
  await rejects(n1.allocate({ owner: "b", addresses: [IPAddress.parse("10.40.0.1")] }), "ADDRESS_UNAVAILABLE", /10\.40\.0\.1.*is the gateway/);
  await rejects(n1.allocate({ owner: "b", addresses: [IPAddress.parse("10.40.0.0")] }), "ADDRESS_UNAVAILABLE", /network address/);
  await rejects(n1.allocate({ owner: "b", addresses: [IPAddress.parse("10.40.0.255")] }), "ADDRESS_UNAVAILABLE", /broadcast/);
  await rejects(n1.allocate({ owner: "b", addresses: [IPAddress.parse("10.40.9.9")] }), "ADDRESS_UNAVAILABLE", /10\.40\.9\.9.*not inside a block held by node "n1"/);
  await rejects(n1.allocate({ owner: "b", addresses: [IPAddress.parse("fd00::5")] }), "ADDRESS_UNAVAILABLE", /no IPv6 subnet/);
  await rejects(n1.allocate({ owner: "a", addresses: [IPAddress.parse("10.40.0.78")] }), "ADDRESS_UNAVAILABLE", /already holds 10\.40\.0\.77/);
  assert.is((await n1.allocate({ owner: "b" })).addresses[0].address.toString(), "10.40.0.78");
});

t("release frees the address; round robin hands it out again only after the rest of the block", async () => {
  const { store, node } = await setup(l3Network("tiny", "10.0.0.0/28", 29));
  const n1 = node("n1");
  const a = await n1.allocate({ owner: "a" });
  assert.is(await n1.release("a"), true);
  assert.is(await n1.release("a"), false);
  const b = await n1.allocate({ owner: "b" });
  assert.is.not(b.addresses[0].address.toString(), a.addresses[0].address.toString());
  const rec = await store.get<Allocation>("Allocation", "tiny.n1");
  assert.equal(rec!.spec!.blocks[0].addresses, { b: "10.0.0.3" });
});

t("an empty block that is not the node's last returns to the pool after the grace period", async () => {
  const { store, node, blocks, clock } = await setup(l3Network("tiny", "10.0.0.0/28", 30), { grace: 60_000 });
  const n1 = node("n1");
  await n1.allocate({ owner: "a" });
  await n1.allocate({ owner: "b" });
  await n1.allocate({ owner: "c" });
  const held = async () => (await store.get<Allocation>("Allocation", "tiny.n1"))!.spec!.blocks.map((b) => b.prefix);
  assert.equal(await held(), ["10.0.0.0/30", "10.0.0.4/30", "10.0.0.8/30"]);
  await n1.release("a");
  await n1.release("c");
  clock.advance(30_000);
  assert.equal(await blocks.returnEmptyBlocks("tiny"), []);
  clock.advance(30_000);
  assert.equal(await blocks.returnEmptyBlocks("tiny"), ["10.0.0.0/30", "10.0.0.8/30"]);
  assert.equal(await held(), ["10.0.0.4/30"]);
  await n1.release("b");
  clock.advance(120_000);
  assert.equal(await blocks.returnEmptyBlocks("tiny"), [], "the node keeps its last block");
  // Returned blocks are claimable by another node.
  const other = await node("n2").allocate({ owner: "x" });
  assert.is(other.addresses[0].prefix.toString(), "10.0.0.0/30");
  await checkStoreConsistent(store);
  // And the instance of n1 that cached the returned blocks still allocates correctly.
  const again = await n1.allocate({ owner: "y" });
  assert.is(again.addresses[0].prefix.toString(), "10.0.0.4/30");
  await checkStoreConsistent(store);
});

t("exhaustion clears when a block comes back", async () => {
  const { store, node, blocks, clock } = await setup(l3Network("tiny", "10.0.0.0/29", 30), { grace: 0 });
  await node("n1").allocate({ owner: "a" });
  await node("n2").allocate({ owner: "b" });
  await rejects(node("n3").allocate({ owner: "c" }), "SUBNET_EXHAUSTED", /node "n3"/);
  await blocks.releaseNode("n2");
  clock.advance(1);
  const c = await node("n3").allocate({ owner: "c" });
  assert.is(c.addresses[0].prefix.toString(), "10.0.0.4/30");
  const cond = (await store.get<Network>("Network", "tiny"))!.status!.conditions!.find((x) => x.type === "Exhausted");
  assert.is(cond?.status, "False");
  await checkStoreConsistent(store);
});

t("unknown networks, bad owners and blocks too small for any pod are refused clearly", async () => {
  const { store, node } = await setup(l3Network("tiny", "10.0.0.0/29", 31));
  await rejects(node("n1").allocate({ owner: "a" }), "INVALID_RESOURCE", /\/31 blocks .* hold no pod address/);
  await rejects(new HostLocalAllocator(store, { network: "nope", node: "n1", blocks: new BlockAllocator(store) }).allocate({ owner: "a" }), "UNKNOWN_NETWORK", /"nope"/);
  await rejects(node("n1").allocate({ owner: " " }), "INVALID_ARGUMENT", /owner/);
  await rejects(node("n1").allocate({ owner: "__proto__" }), "INVALID_ARGUMENT", /"__proto__"/);
});

t("a pending claim left by a crashed controller is swept and its block is reused", async () => {
  const { store, node, blocks, clock } = await setup(l3Network("tiny", "10.0.0.0/29", 30));
  // A controller died between writing the pending entry and claiming the block in the pool.
  await store.create<Allocation>({
    apiVersion: "lace-cni.io/v1alpha1", kind: "Allocation",
    metadata: { name: "tiny.n1", labels: { "lace-cni.io/network": "tiny" } },
    spec: { network: "tiny", node: "n1", blocks: [{ prefix: "10.0.0.0/30", claim: "dead", pending: true, emptySince: new Date(clock.now()).toISOString() }] },
  });
  const b = await node("n2").allocate({ owner: "b" });
  assert.is(b.addresses[0].prefix.toString(), "10.0.0.0/30", "a pending entry does not hold the block");
  clock.advance(120_000);
  await blocks.returnEmptyBlocks("tiny");
  const rec = await store.get<Allocation>("Allocation", "tiny.n1");
  assert.equal(rec!.spec!.blocks, []);
  await checkStoreConsistent(store);
});

t.run();
