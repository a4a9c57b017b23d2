/**
 * `npm run bench dataplane`: how fast the srv6 dataplane programs remote
 * blocks. In a throwaway network namespace:
 * - ours: 10,000 IPv4 remote blocks, each with its own SID (10,000 seg6
 *   nexthop objects + 10,000 routes) over our batched netlink layer;
 * - the same through a full `Srv6Dataplane.apply` of a desired state
 *   (plan, read, diff, write), and its idempotent re-apply;
 * - baselines in the same run: `ip -batch` with 10,000 plain routes, and
 *   `ip -batch` with the same nexthops + routes as ours.
 * Where the kernel has no seg6 lwtunnel, the seg6 parts are skipped (and
 * say so) and the full apply runs on the bpf backend: routes through one
 * plain nexthop, SIDs in the encapsulation map.
 * Needs root.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeDesiredState, RemoteBlock } from "../core/mod.ts";
import { NetlinkClient } from "../plugins/srv6/netlink.ts";
import { nexthopAdd, readLinks, routeAdd } from "../plugins/srv6/kernel.ts";
import { Srv6Dataplane } from "../plugins/srv6/dataplane.ts";
import { SEG6_MODE } from "../plugins/srv6/wire.ts";
import { noSeg6Reason } from "../plugins/srv6/kernel_config.ts";
import { nowMs, target } from "./_report.ts";

const N = 10_000;
const GOAL = 50_000;

if (process.getuid?.() !== 0) {
  console.log("bench dataplane needs root (it creates a network namespace); skipped");
  process.exit(0);
}

const prefix = `lb${process.pid.toString(36)}`;
const dir = mkdtempSync(join(tmpdir(), "lace-bench-"));
const ip = (...args: string[]) => execFileSync("ip", args, { encoding: "utf8", maxBuffer: 256 << 20 });

const block = (i: number) => `10.${100 + (i >> 8)}.${i & 255}.0/24`;
const sid = (i: number) => `fd00:1ace:${(i >> 8).toString(16)}:${(i & 255).toString(16)}::1`;

function freshNs(name: string): string {
  ip("netns", "add", name);
  ip("-n", name, "link", "set", "lo", "up");
  ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1");
  ip("-n", name, "link", "set", "eth0", "up");
  ip("-n", name, "link", "set", "eth1", "up");
  ip("-n", name, "addr", "add", "fd00:ffff::1/64", "dev", "eth0", "nodad");
  return `/run/netns/${name}`;
}

function timeIpBatch(ns: string, lines: string[]): number {
  const file = join(dir, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, lines.join("\n") + "\n");
  const t0 = nowMs();
  ip("-n", ns, "-batch", file);
  return nowMs() - t0;
}

const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
const made: string[] = [];

try {
  // Baseline 1: ip -batch, 10,000 plain IPv4 routes.
  const nsPlain = `${prefix}-plain`;
  freshNs(nsPlain);
  made.push(nsPlain);
  const plainMs = timeIpBatch(nsPlain, Array.from({ length: N }, (_, i) => `route add ${block(i)} dev eth0 table 1001`));

  const noSeg6 = noSeg6Reason();
  let ipNhMs = NaN;
  let oursMs = NaN;
  if (noSeg6) console.log(`seg6 nexthops (ip -batch and ours) not measured: ${noSeg6}`);
  else {
    // Baseline 2: ip -batch, the same nexthops + routes as ours.
    const nsIpNh = `${prefix}-ipnh`;
    freshNs(nsIpNh);
    made.push(nsIpNh);
    ipNhMs = timeIpBatch(nsIpNh, [
      ...Array.from({ length: N }, (_, i) => `nexthop add id ${0x1ace0000 + i} encap seg6 mode encap.red segs ${sid(i)} dev eth0 proto 76`),
      ...Array.from({ length: N }, (_, i) => `route add ${block(i)} nhid ${0x1ace0000 + i} table 1001 proto 76`),
    ]);

    // Ours: our batched netlink layer.
    const nsOurs = `${prefix}-ours`;
    const pathOurs = freshNs(nsOurs);
    made.push(nsOurs);
    const nl = NetlinkClient.open(pathOurs);
    const links = await readLinks(nl);
    const t0 = nowMs();
    const nhs = [];
    for (let i = 0; i < N; i++) nhs.push(nexthopAdd(links, { family: 4, oif: "eth0", mode: SEG6_MODE.ENCAP_RED, segments: [sid(i)] }, 0x1ace0000 + i));
    await nl.write(nhs);
    const routes = [];
    for (let i = 0; i < N; i++) routes.push(routeAdd(links, { family: 4, table: 1001, dst: block(i), type: "unicast" }, 0x1ace0000 + i, false));
    await nl.write(routes);
    oursMs = nowMs() - t0;
    console.log(`ours: ${nl.writes} writes, ${nl.retried} retried after ENOMEM`);
    nl.close();
    const count = Number(ip("-n", nsOurs, "-4", "route", "show", "table", "1001").split("\n").filter((l) => l.includes("nhid")).length);
    if (count !== N) throw new Error(`Expected ${N} routes in the namespace, found ${count}`);
  }

  // Ours through a full apply of a desired state with 10,000 remote blocks.
  const nsApply = `${prefix}-apply`;
  const pathApply = freshNs(nsApply);
  made.push(nsApply);
  const remoteBlocks: RemoteBlock[] = Array.from({ length: N }, (_, i) => ({ prefix: block(i), node: `node-${i}`, sid: sid(i) }));
  const state: NodeDesiredState = {
    node: "bench", revision: 1, locator: "fd00:1ace:ffff::/48", encapsulation: "Reduced",
    underlay: { interface: "eth0", mtu: 1500 },
    networks: [{
      name: "bench", id: 1, type: "l3", forwarding: "routed", anonymous: false, mtu: 1460,
      sid: "fd00:1ace:ffff::1", sidBehavior: "decap-lookup", gateways: ["10.99.0.1/24"], localPrefixes: ["10.99.0.0/24"],
      remoteBlocks, paths: [], neighbors: [], fdb: [], egress: [],
    }],
    endpoints: [],
  };
  // The bpf backend sends remote blocks towards the underlay's IPv6 gateway (no peer here is on-link).
  ip("-n", nsApply, "-6", "route", "add", "default", "via", "fd00:ffff::fe", "dev", "eth0");
  const bpffs = join(dir, "bpf");
  const dp = await Srv6Dataplane.open({ node: "bench", netns: pathApply, bpffs });
  console.log(`full apply on the ${(await dp.capabilities()).backend} backend`);
  // A node's first apply also loads and attaches the bpf programs, makes the bridge and loads the ruleset:
  // once per node, whatever the number of blocks. Measured apart, then the 10,000 blocks on a node that has them.
  const w0 = nowMs();
  await dp.apply({ ...state, networks: state.networks.map((n) => ({ ...n, remoteBlocks: [] })) });
  const coldMs = nowMs() - w0;
  const a0 = nowMs();
  const first = await dp.apply(state);
  const applyMs = nowMs() - a0;
  const b0 = nowMs();
  const second = await dp.apply(state);
  const reapplyMs = nowMs() - b0;
  await dp.close();

  console.log(`baseline ip -batch, ${N} plain IPv4 routes:            ${plainMs.toFixed(0)} ms = ${rate(N, plainMs)} routes/s`);
  if (!noSeg6) {
    console.log(`baseline ip -batch, ${N} seg6 nexthops + ${N} routes:   ${ipNhMs.toFixed(0)} ms = ${rate(N, ipNhMs)} blocks/s`);
    console.log(`ours, netlink batches, ${N} seg6 nexthops + ${N} routes: ${oursMs.toFixed(0)} ms = ${rate(N, oursMs)} blocks/s (${rate(2 * N, oursMs)} netlink objects/s)`);
  }
  console.log(`ours, a node's first apply, no remote blocks (programs, bridge, ruleset): ${coldMs.toFixed(0)} ms, once per node`);
  console.log(`ours, full apply (plan + read + diff + write):          ${applyMs.toFixed(0)} ms = ${rate(N, applyMs)} blocks/s, ${first.writes} writes`);
  console.log(`ours, idempotent re-apply of the same state:             ${reapplyMs.toFixed(0)} ms, ${second.writes} writes`);
  if (!noSeg6) {
    console.log(`ratio ours / ip -batch plain routes: ${(plainMs / oursMs).toFixed(2)}x; ours / ip -batch same objects: ${(ipNhMs / oursMs).toFixed(2)}x`);
    target("remote-block routes per second", rate(N, oursMs), GOAL, " routes/s", true);
  } else {
    console.log(`ratio full apply / ip -batch plain routes: ${(plainMs / applyMs).toFixed(2)}x`);
  }
  target("remote-block routes per second through a full apply", rate(N, applyMs), GOAL, " routes/s", true);
} finally {
  for (const ns of made) {
    try {
      ip("netns", "del", ns);
    } catch {
      // already gone
    }
  }
  try {
    execFileSync("umount", [join(dir, "bpf")], { stdio: "ignore" });
  } catch {
    // not mounted (kernel backend)
  }
  rmSync(dir, { recursive: true, force: true });
}
