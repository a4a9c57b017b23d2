import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { isLaceError } from "../errors.ts";
import { Prefix } from "../ip/mod.ts";
import type { Allocation } from "../resources/types.ts";
import { MemoryStore } from "../store/memory.ts";
import { type Assignment, AddressCollector, BlockAllocator, type BlockSource, GlobalAllocator, HostLocalAllocator, isPoolRecord } from "./mod.ts";
import { checkStoreConsistent, l2Network, l3Network, ManualClock } from "./testing.ts";

const t = suite("ipam/property");

const NODES = 4;
const OWNERS = 6;

type Cmd =
  | { op: "alloc"; node: number; owner: number; want?: number }
  | { op: "release"; node: number; owner: number }
  | { op: "forget"; node: number; owner: number }
  | { op: "restartNode"; node: number }
  | { op: "restartController" }
  | { op: "loseNode"; node: number }
  | { op: "sweep"; advance: number }
  | { op: "gc"; advance: number };

const node = fc.integer({ min: 0, max: NODES - 1 });
const owner = fc.integer({ min: 0, max: OWNERS - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant("alloc" as const), node, owner }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("alloc" as const), node, owner, want: fc.integer({ min: 0, max: 31 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("release" as const), node, owner }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("forget" as const), node, owner }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("restartNode" as const), node }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("restartController" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("loseNode" as const), node }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("sweep" as const), advance: fc.integer({ min: 0, max: 90_000 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("gc" as const), advance: fc.integer({ min: 0, max: 90_000 }) }) },
);
/** Commands in groups; the commands of a group run concurrently, groups one after another. */
const program = fc.array(fc.array(cmd, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 });

const EXPECTED = new Set(["SUBNET_EXHAUSTED", "ADDRESS_UNAVAILABLE"]);

/** Owner → address text per record, as the store has it. */
async function holdings(store: MemoryStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const a of (await store.list<Allocation>("Allocation")).items) {
    if (isPoolRecord(a) && a.spec!.node !== "pool.lace-cni.io") continue;
    for (const b of a.spec!.blocks) for (const [o, addr] of Object.entries(b.addresses ?? {})) out.set(`${a.spec!.node}/${o}`, addr);
  }
  return out;
}

t("host-local: interleaved allocate, release, restarts, node loss, sweeps and GC never duplicate an address or overlap blocks", async () => {
  await fc.assert(
    fc.asyncProperty(program, async (groups) => {
      const store = new MemoryStore(50);
      await store.create(l3Network("net", "10.0.0.0/27", 29));
      const subnet = Prefix.parse("10.0.0.0/27");
      const clock = new ManualClock();
      let controller = new BlockAllocator(store, { clock, emptyBlockGrace: 30_000, pendingGrace: 30_000 });
      // Node agents reach whichever controller instance is current, as they would through the API.
      const source: BlockSource = { acquire: (...a) => controller.acquire(...a) };
      const agent = (n: number) => new HostLocalAllocator(store, { network: "net", node: `n${n}`, blocks: source, clock });
      const agents = Array.from({ length: NODES }, (_, n) => agent(n));
      const dead = new Set<string>();
      const gc = new AddressCollector(store, { isAlive: (o) => !dead.has(o), grace: 30_000, clock });
      for (const group of groups) {
        const before = await holdings(store);
        const disturbed = new Set<string>();
        for (const c of group) {
          if (c.op === "release" || c.op === "forget") disturbed.add(`n${c.node}/n${c.node}-o${c.owner}`);
          if (c.op === "loseNode") disturbed.add(`n${c.node}/*`);
          if (c.op === "gc") disturbed.add("*");
        }
        const results: { key: string; a: Assignment }[] = [];
        await Promise.all(group.map(async (c) => {
          try {
            switch (c.op) {
              case "alloc": {
                const o = `n${c.node}-o${c.owner}`;
                dead.delete(o);
                const addresses = c.want === undefined ? undefined : [subnet.at(BigInt(c.want))];
                results.push({ key: `n${c.node}/${o}`, a: await agents[c.node].allocate({ owner: o, addresses }) });
                break;
              }
              case "release":
                await agents[c.node].release(`n${c.node}-o${c.owner}`);
                break;
              case "forget": // the owner dies without a release: only GC gets its address back
                dead.add(`n${c.node}-o${c.owner}`);
                break;
              case "restartNode":
                agents[c.node] = agent(c.node);
                break;
              case "restartController":
                controller = new BlockAllocator(store, { clock, emptyBlockGrace: 30_000, pendingGrace: 30_000 });
                break;
              case "loseNode":
                for (let o = 0; o < OWNERS; o++) dead.add(`n${c.node}-o${o}`);
                agents[c.node] = agent(c.node);
                await controller.releaseNode(`n${c.node}`);
                break;
              case "sweep":
                clock.advance(c.advance);
                await controller.returnEmptyBlocks("net");
                break;
              case "gc":
                clock.advance(c.advance);
                await gc.collect();
                break;
            }
          } catch (e) {
            if (!isLaceError(e) || !EXPECTED.has(e.code)) throw e;
          }
        }));
        await checkStoreConsistent(store);
        const after = await holdings(store);
        for (const { key, a } of results) {
          const addr = a.addresses[0].address.toString();
          const [n] = key.split("/");
          if (before.has(key) && !disturbed.has(key) && !disturbed.has(`${n}/*`) && !disturbed.has("*")) {
            assert.is(addr, before.get(key), `${key} kept its address`);
          }
          if (!disturbed.has(key) && !disturbed.has(`${n}/*`) && !disturbed.has("*")) {
            assert.is(after.get(key), addr, `${key} got ${addr}, which the store records`);
          }
        }
      }
    }),
    { numRuns: 150 },
  );
});

t("global: interleaved allocate, release, restarts and GC across allocator instances never duplicate an address", async () => {
  const gcmd = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant("alloc" as const), inst: fc.nat(2), owner: fc.nat(15) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("release" as const), inst: fc.nat(2), owner: fc.nat(15) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("forget" as const), inst: fc.nat(2), owner: fc.nat(15) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("restart" as const), inst: fc.nat(2), owner: fc.constant(0) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("gc" as const), inst: fc.constant(0), owner: fc.constant(0) }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(gcmd, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 12 }), async (groups) => {
      const store = new MemoryStore(50);
      await store.create(l2Network("vms", "10.9.0.0/28", "fd00:9::/124"));
      const clock = new ManualClock();
      const make = () => new GlobalAllocator(store, { network: "vms", clock });
      const inst = [make(), make(), make()];
      const dead = new Set<string>();
      const gc = new AddressCollector(store, { isAlive: (o) => !dead.has(o), grace: 0, clock });
      const stable = new Map<string, string>();
      for (const group of groups) {
        const touched = new Set(group.filter((c) => c.op !== "alloc" && c.op !== "restart").map((c) => c.op === "gc" ? "*" : `o${c.owner}`));
        await Promise.all(group.map(async (c) => {
          const o = `o${c.owner}`;
          try {
            if (c.op === "alloc") {
              dead.delete(o);
              const a = await inst[c.inst].allocate({ owner: o });
              const text = a.addresses.map((x) => x.address.toString()).join(",");
              assert.is(a.addresses.length, 2, "one address per family");
              if (stable.has(o) && !touched.has(o) && !touched.has("*")) assert.is(text, stable.get(o), `${o} kept its addresses`);
              stable.set(o, text);
            } else if (c.op === "release") {
              await inst[c.inst].release(o);
              stable.delete(o);
            } else if (c.op === "forget") {
              dead.add(o);
            } else if (c.op === "restart") {
              inst[c.inst] = make();
            } else {
              await gc.collect();
              await gc.collect();
            }
          } catch (e) {
            if (!isLaceError(e, "SUBNET_EXHAUSTED")) throw e;
          }
        }));
        if (touched.size) stable.clear();
        await checkStoreConsistent(store);
      }
    }),
    { numRuns: 150 },
  );
});

t.run();
