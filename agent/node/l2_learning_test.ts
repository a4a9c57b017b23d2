import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type FDBEntry, MemoryStore, type Neighbor } from "../../core/mod.ts";
import { ManualClock } from "../../core/ipam/testing.ts";
import { L2Learner, l2EntryName } from "./l2_learning.ts";

const t = suite("l2 learning");
const MAC = "02:00:00:00:00:99";

async function fdb(store: MemoryStore, mac = MAC): Promise<FDBEntry["spec"] | undefined> {
  return (await store.get<FDBEntry>("FDBEntry", l2EntryName("storage", mac)))?.spec;
}

t("a MAC and address seen without a pod of ours become learned FDBEntry and Neighbor resources, once", async () => {
  const store = new MemoryStore();
  const clock = new ManualClock(Date.parse("2026-12-06T20:00:00Z"));
  const learner = new L2Learner(store, "node-1", { ageMs: 60_000, clock });
  assert.is(await learner.observe([{ network: "storage", mac: MAC.toUpperCase(), ip: "10.50.0.99" }]), 2);
  assert.equal(await fdb(store), { network: "storage", mac: MAC, node: "node-1", source: "learned", sequence: 0, lastSeen: "2026-12-06T20:00:00.000Z" });
  const n = await store.get<Neighbor>("Neighbor", l2EntryName("storage", "10.50.0.99"));
  assert.equal(n?.spec, { network: "storage", ip: "10.50.0.99", mac: MAC, source: "learned", lastSeen: "2026-12-06T20:00:00.000Z" });
  // Seen again at once: nothing is rewritten (lastSeen is refreshed at most every tenth of the age).
  clock.advance(1_000);
  assert.is(await learner.observe([{ network: "storage", mac: MAC, ip: "10.50.0.99" }]), 0);
  clock.advance(6_000);
  assert.is(await learner.observe([{ network: "storage", mac: MAC, ip: "10.50.0.99" }]), 2);
  assert.is((await fdb(store))?.lastSeen, "2026-12-06T20:00:07.000Z");
});

t("a MAC seen on another node moves there with the next sequence number; a static entry stays put", async () => {
  const store = new MemoryStore();
  const clock = new ManualClock(Date.parse("2026-12-06T20:00:00Z"));
  await new L2Learner(store, "node-1", { clock }).observe([{ network: "storage", mac: MAC }]);
  await new L2Learner(store, "node-2", { clock }).observe([{ network: "storage", mac: MAC }]);
  assert.equal([(await fdb(store))?.node, (await fdb(store))?.sequence], ["node-2", 1]);
  await new L2Learner(store, "node-1", { clock }).observe([{ network: "storage", mac: MAC }]);
  assert.equal([(await fdb(store))?.node, (await fdb(store))?.sequence], ["node-1", 2], "and back, higher again");
  const pinned = "02:00:00:00:00:aa";
  await store.create<FDBEntry>({
    apiVersion: "lace-cni.io/v1alpha1", kind: "FDBEntry", metadata: { name: l2EntryName("storage", pinned) },
    spec: { network: "storage", mac: pinned, node: "node-3", source: "static" },
  });
  assert.is(await new L2Learner(store, "node-1", { clock }).observe([{ network: "storage", mac: pinned }]), 0);
  assert.is((await fdb(store, pinned))?.node, "node-3");
});

t("this node's learned entries age out when silent; other nodes' and static ones stay", async () => {
  const store = new MemoryStore();
  const clock = new ManualClock(Date.parse("2026-12-06T20:00:00Z"));
  const here = new L2Learner(store, "node-1", { ageMs: 60_000, clock });
  const there = new L2Learner(store, "node-2", { ageMs: 60_000, clock });
  await here.observe([{ network: "storage", mac: MAC, ip: "10.50.0.99" }]);
  await there.observe([{ network: "storage", mac: "02:00:00:00:00:98", ip: "10.50.0.98" }]);
  clock.advance(30_000);
  assert.is(await here.expire(), 0, "not silent long enough");
  clock.advance(31_000);
  assert.is(await here.expire(), 2, "node-1's MAC and its address");
  assert.is(await fdb(store), undefined);
  assert.is(await store.get("Neighbor", l2EntryName("storage", "10.50.0.99")), undefined);
  assert.ok(await fdb(store, "02:00:00:00:00:98"), "node-2's entry is node-2's to age");
  assert.is(await there.expire(), 2);
});

t("a MAC that flaps between nodes is frozen where it is for the hold time, then moves again", async () => {
  const store = new MemoryStore();
  const clock = new ManualClock(Date.parse("2026-12-06T20:00:00Z"));
  const flaps: string[] = [];
  const at = (node: string) => new L2Learner(store, node, { clock, flap: { moves: 3, windowMs: 10_000, holdMs: 30_000 }, onFlap: (_n, mac, where) => flaps.push(`${mac}@${where}`) });
  await at("node-1").observe([{ network: "storage", mac: MAC }]);
  for (const node of ["node-2", "node-1", "node-2"]) {
    clock.advance(500);
    await at(node).observe([{ network: "storage", mac: MAC }]);
  }
  assert.equal([(await fdb(store))?.node, (await fdb(store))?.sequence], ["node-2", 3], "three moves are allowed");
  clock.advance(500);
  assert.is(await at("node-1").observe([{ network: "storage", mac: MAC }]), 1, "the fourth within the window freezes it");
  assert.equal(flaps, [`${MAC}@node-2`]);
  assert.is((await fdb(store))?.node, "node-2", "frozen where it was");
  assert.is((await fdb(store))?.frozenUntil, "2026-12-06T20:00:32.000Z");
  clock.advance(1_000);
  assert.is(await at("node-1").observe([{ network: "storage", mac: MAC }]), 0, "moves are ignored while frozen");
  clock.advance(30_000);
  await at("node-1").observe([{ network: "storage", mac: MAC }]);
  assert.equal([(await fdb(store))?.node, (await fdb(store))?.sequence, (await fdb(store))?.frozenUntil], ["node-1", 4, undefined], "after the hold, it moves again");
});

t.run();
