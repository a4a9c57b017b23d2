/**
 * Longest-prefix match: a table of a million prefixes, and lookup cost that
 * depends on the address length, not on the number of prefixes. The same
 * lookups run against a 1,000-prefix table with the same length mix (the
 * baseline), and a linear scan shows what the table saves.
 */
import { IPAddress, Prefix, PrefixTable } from "../core/ip/mod.ts";
import { heapMiB, nowMs, target } from "./_report.ts";

// xorshift32: a full-period 32-bit generator (a float LCG collapses into short cycles).
let seed = 2463534242;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
};

function build(n: number): { table: PrefixTable<number>; sample: Prefix[] } {
  const table = new PrefixTable<number>();
  const sample: Prefix[] = [];
  for (let i = 0; table.size < n; i++) {
    const p = Prefix.containing(new IPAddress(4, BigInt(rand())), 16 + (rand() % 17)); // /16 .. /32
    table.set(p, i);
    if (sample.length < 1000) sample.push(p);
  }
  return { table, sample };
}

function rate(table: PrefixTable<number>, addrs: IPAddress[]): number {
  let hits = 0;
  const t = nowMs();
  for (const a of addrs) if (table.lookup(a)) hits++;
  return addrs.length / ((nowMs() - t) / 1000) + hits * 0;
}

const addrs = Array.from({ length: 300_000 }, () => new IPAddress(4, BigInt(rand())));

const small = build(1000);
rate(small.table, addrs.slice(0, 20_000)); // warm up
const smallRate = rate(small.table, addrs);

const before = heapMiB();
const t0 = nowMs();
const big = build(1_000_000);
const buildS = (nowMs() - t0) / 1000;
const mem = heapMiB() - before;
const bigRate = rate(big.table, addrs);

// Linear scan over the 1,000-prefix table: the cost a table avoids.
const t2 = nowMs();
const scanN = 20_000;
for (let i = 0; i < scanN; i++) {
  let best: Prefix | undefined;
  for (const p of small.sample) if (p.contains(addrs[i]) && (!best || p.length > best.length)) best = p;
}
const scanRate = scanN / ((nowMs() - t2) / 1000);

const t6 = new PrefixTable<number>();
for (let i = 0; i < 200_000; i++) {
  const v = (BigInt(rand()) << 96n) | (BigInt(rand()) << 64n);
  t6.set(Prefix.containing(new IPAddress(6, v), 32 + (rand() % 33)), i);
}
const a6 = Array.from({ length: 50_000 }, () => new IPAddress(6, (BigInt(rand()) << 96n) | BigInt(rand())));
const t3 = nowMs();
for (const a of a6) t6.lookup(a);
const rate6 = a6.length / ((nowMs() - t3) / 1000);

const f = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(`built 1,000,000 IPv4 prefixes (/16../32) in ${buildS.toFixed(2)} s, heap +${mem.toFixed(0)} MiB`);
console.log(`IPv4 lookups: ${f(bigRate)}/s at 1,000,000 prefixes, ${f(smallRate)}/s at 1,000 (ratio ${(bigRate / smallRate).toFixed(2)})`);
console.log(`linear scan over 1,000 prefixes: ${f(scanRate)}/s (table is ${(smallRate / scanRate).toFixed(0)}x faster at 1,000)`);
console.log(`IPv6 lookups: ${f(rate6)}/s at 200,000 prefixes of 33 lengths`);
target("prefixes held", big.table.size, 1_000_000, "", true);
target("most probes per IPv4 lookup at 1M prefixes", big.table.maxProbes(4), 33, "", false);
target("lookup rate at 1M prefixes relative to 1k prefixes", Number((bigRate / smallRate).toFixed(2)), 0.5, "x", true);
