import { suite } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { IPAddress, Prefix, PrefixTable } from "./mod.ts";

const addr = suite("IPAddress");

addr("parses and formats both families canonically", () => {
  assert.is(IPAddress.parse("10.40.0.1").toString(), "10.40.0.1");
  assert.is(IPAddress.parse("10.40.0.1").family, 4);
  assert.is(IPAddress.parse("FD00:1ACE:0:0::1").toString(), "fd00:1ace::1");
  assert.is(IPAddress.parse("fd00::1").family, 6);
  assert.is(IPAddress.parse("255.255.255.255").value, 0xffffffffn);
});

addr("refuses loose and malformed forms with the bad text", () => {
  for (const bad of ["10.1", "010.0.0.1", "1.2.3.256", "fe80::1%eth0", "1:2:3", "", "10.0.0.0/8", " 1.2.3.4"]) {
    const r = IPAddress.tryParse(bad);
    assert.is(r.ok, false, bad);
    if (!r.ok) assert.ok(r.error.includes(`"${bad}"`), r.error);
  }
  const r = IPAddress.tryParse(42);
  assert.is(r.ok, false);
  if (!r.ok) assert.match(r.error, /got 42/);
});

addr("add, compare, bytes round trip", () => {
  const a = IPAddress.parse("10.0.0.255");
  assert.is(a.add(1n).toString(), "10.0.1.0");
  assert.is(IPAddress.fromBytes(a.toBytes()).toString(), "10.0.0.255");
  assert.ok(IPAddress.parse("10.0.0.1").compare(IPAddress.parse("::1")) < 0);
  assert.throws(() => IPAddress.parse("255.255.255.255").add(1n), /out of range/);
});

addr("IPv6 text round-trips for any value", () => {
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
    const a = new IPAddress(6, v);
    return IPAddress.parse(a.toString()).value === v;
  }));
});

const pfx = suite("Prefix");

pfx("parses strictly: host bits, lengths, families", () => {
  assert.is(Prefix.parse("10.40.0.0/16").toString(), "10.40.0.0/16");
  const cases: [string, RegExp][] = [
    ["10.40.0.1/16", /host bits set in "10.40.0.1\/16": expected the network address 10.40.0.0\/16/],
    ["10.40.0.0/33", /between 0 and 32 for IPv4, got "33"/],
    ["fd00::/129", /between 0 and 128 for IPv6, got "129"/],
    ["10.40.0.0", /address\/length/],
    ["10.40.0.0/", /got ""/],
    ["10.40.0.0/-1", /got "-1"/],
    ["nonsense/8", /address\/length/],
  ];
  for (const [text, re] of cases) {
    const r = Prefix.tryParse(text);
    assert.is(r.ok, false, text);
    if (!r.ok) assert.match(r.error, re);
  }
});

pfx("carves blocks and finds them again", () => {
  const p = Prefix.parse("10.40.0.0/16");
  assert.is(p.blockCount(24), 256n);
  assert.is(p.block(24, 3n).toString(), "10.40.3.0/24");
  assert.is(p.blockIndex(Prefix.parse("10.40.200.0/24")), 200n);
  assert.is([...Prefix.parse("10.0.0.0/29").blocks(30)].map(String).join(","), "10.0.0.0/30,10.0.0.4/30");
  assert.throws(() => p.block(24, 256n), /out of range/);
  assert.throws(() => p.block(8, 0n), /between 16 and 32/);
  assert.is(Prefix.parse("fd00::/48").block(64, 5n).toString(), "fd00:0:0:5::/64");
});

pfx("first host, last, size, containment and overlap", () => {
  const b = Prefix.parse("10.40.3.0/24");
  assert.is(b.firstHost.toString(), "10.40.3.1");
  assert.is(b.last.toString(), "10.40.3.255");
  assert.is(b.size, 256n);
  assert.ok(b.contains(IPAddress.parse("10.40.3.77")));
  assert.not.ok(b.contains(IPAddress.parse("10.40.4.0")));
  assert.not.ok(b.contains(IPAddress.parse("::1")));
  assert.ok(Prefix.parse("10.40.0.0/16").covers(b));
  assert.ok(b.overlaps(Prefix.parse("10.0.0.0/8")));
  assert.not.ok(b.overlaps(Prefix.parse("10.40.4.0/24")));
  assert.is(Prefix.containing(IPAddress.parse("10.40.3.77"), 24).toString(), "10.40.3.0/24");
});

const lpm = suite("PrefixTable");

lpm("longest prefix wins, per family", () => {
  const t = new PrefixTable<string>();
  t.set(Prefix.parse("192.0.2.0/24"), "corp");
  t.set(Prefix.parse("192.0.2.128/25"), "lab");
  t.set(Prefix.parse("0.0.0.0/0"), "default");
  t.set(Prefix.parse("fd00::/16"), "v6");
  assert.is(t.lookup(IPAddress.parse("192.0.2.200"))?.value, "lab");
  assert.is(t.lookup(IPAddress.parse("192.0.2.200"))?.prefix.toString(), "192.0.2.128/25");
  assert.is(t.lookup(IPAddress.parse("192.0.2.10"))?.value, "corp");
  assert.is(t.lookup(IPAddress.parse("8.8.8.8"))?.value, "default");
  assert.is(t.lookup(IPAddress.parse("fd00:1::1"))?.value, "v6");
  assert.is(t.lookup(IPAddress.parse("fe80::1")), undefined);
  assert.ok(t.delete(Prefix.parse("192.0.2.128/25")));
  assert.is(t.lookup(IPAddress.parse("192.0.2.200"))?.value, "corp");
  assert.is(t.size, 3);
  assert.is(t.maxProbes(4), 2, "lengths /24 and /0 remain");
  assert.is(t.maxProbes(6), 1);
});

lpm("agrees with a linear scan on random tables", () => {
  const prefixArb = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
    .map(([v, len]) => Prefix.containing(new IPAddress(4, BigInt(v >>> 0)), len));
  fc.assert(fc.property(fc.array(prefixArb, { maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 20 }), (prefixes, addrs) => {
    const t = new PrefixTable<number>();
    prefixes.forEach((p, i) => t.set(p, i));
    for (const a of addrs) {
      const ip = new IPAddress(4, BigInt(a >>> 0));
      let best: Prefix | undefined;
      for (const p of prefixes) if (p.contains(ip) && (!best || p.length > best.length)) best = p;
      const got = t.lookup(ip);
      if (best === undefined ? got !== undefined : got?.prefix.toString() !== best.toString()) return false;
    }
    return true;
  }));
});

addr.run();
pfx.run();
lpm.run();
