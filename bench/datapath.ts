/**
 * `npm run bench datapath`: what the srv6 datapath costs a packet, with
 * real traffic between pods on two nodes (network namespaces on a fabric
 * bridge, veth everywhere, offloads at their defaults):
 *
 * - TCP throughput pod → pod across nodes with iperf3 (Debian), 3 runs of
 *   5 s each, median; the `bpf` backend, and where the kernel has seg6 the
 *   `kernel` backend too;
 * - ping RTT, p50 of 1,000 echo requests, the same pairs;
 * - baselines in the same run: the same lace namespaces with encapsulation
 *   off (plain routes between the nodes; bridge, nftables and rules kept),
 *   and the same shape over bare veth (pod → node → fabric → node → pod, pod
 *   MTU 1460, plain IPv4 routes, no bridge, no nftables);
 * - the bpf maps: 10,000 remote blocks written through the dataplane's
 *   sync (one batch call per map), against one `bpf()` call per element,
 *   and a full apply of a desired state with 10,000 remote blocks.
 *
 * Needs root, iperf3 and the compiled datapath (`npm run build:bpf`).
 */
import { execFileSync } from "node:child_process";
import type { NodeDesiredState, RemoteBlock } from "../core/mod.ts";
import { Srv6Dataplane } from "../plugins/srv6/dataplane.ts";
import { BpfDatapath, encapKey, encapValue, LAYOUT } from "../plugins/srv6/bpf_datapath.ts";
import { mapDelete, mapUpdate } from "../plugins/srv6/libbpf.ts";
import { noSeg6Reason } from "../plugins/srv6/kernel_config.ts";
import { podMtu, type Backend, type BpfPlan } from "../plugins/srv6/plan.ts";
import { sh, TestCluster, type TestNetwork, type TestPod } from "../plugins/srv6/testing.ts";
import { nowMs, target } from "./_report.ts";
import { formatMeasured as fmt, measure, startIperf, type Measured } from "./_traffic.ts";

if (process.getuid?.() !== 0) {
  console.log("bench datapath needs root (it creates network namespaces); skipped");
  process.exit(0);
}
try {
  execFileSync("iperf3", ["--version"], { stdio: "ignore" });
} catch {
  console.error("bench datapath needs iperf3 (apt-get install iperf3)");
  process.exit(1);
}

const RUNS = 3;
const SECONDS = 5;
const PINGS = 1000;
const BLOCKS = 10_000;
const POD_MTU = podMtu(1500, "Reduced");
const TRAFFIC = { runs: RUNS, seconds: SECONDS, pings: PINGS };

/**
 * Pod A on node 1 and pod B on node 2 of one l3 network, on `backend`.
 * With `alsoUnencapsulated` (bpf), the same namespaces are measured a
 * second time with encapsulation off: the egress programs detached and
 * each node routing the other's block plainly over the fabric (`ip rule iif
 * eth0 to <local block> lookup <table>` on the receiver), so the bridge,
 * nftables and rules stay and only SRv6 is gone.
 */
async function srv6(backend: Backend, alsoUnencapsulated = false): Promise<Measured & { unencapsulated?: Measured }> {
  const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
  const pods: TestPod[] = [{ name: "a", node: 1, network: "red", host: 10 }, { name: "b", node: 2, network: "red", host: 20 }];
  const c = new TestCluster(2);
  const dps: Srv6Dataplane[] = [];
  try {
    c.create();
    for (let n = 1; n <= 2; n++) {
      const dp = await Srv6Dataplane.open({ node: `node-${n}`, netns: c.node(n), backend, bpffs: backend === "bpf" ? c.bpffs() : undefined });
      dps.push(dp);
      await dp.apply(c.desiredState(n, [red], pods, [], "Reduced", []));
    }
    for (const p of pods) {
      await dps[p.node - 1].attachPod({ netns: c.addPodNs(p.name), ifname: "eth0", hostIfname: `h-${p.name}`, network: "red", ...c.podAddresses(p, red), mtu: POD_MTU });
    }
    // As the agent does after a CNI ADD: the next state lists the pods.
    for (let n = 1; n <= 2; n++) await dps[n - 1].apply(c.desiredState(n, [red], pods, [], "Reduced", []));
    const b = "10.1.2.20";
    startIperf(c, c.podNs("b"), c.podNs("a"), b);
    const out: Measured & { unencapsulated?: Measured } = measure(c.podNs("a"), b, TRAFFIC);
    if (alsoUnencapsulated) {
      for (let n = 1; n <= 2; n++) {
        sh("ip", ["netns", "exec", c.node(n), "tc", "filter", "del", "dev", "eth0", "egress"]);
        sh("ip", ["-n", c.node(n), "rule", "add", "iif", "eth0", "to", `10.1.${n}.0/24`, "lookup", "1001", "pref", "900"]);
      }
      out.unencapsulated = measure(c.podNs("a"), b, TRAFFIC);
    }
    return out;
  } finally {
    for (const dp of dps) await dp.close();
    c.destroy();
  }
}

/** The same shape with plain IPv4 routing: pod → node → fabric → node → pod, no encapsulation. */
function plain(): Measured {
  const c = new TestCluster(2);
  try {
    c.create();
    for (let n = 1; n <= 2; n++) {
      const node = c.node(n);
      const pod = c.podNs(`p${n}`);
      sh("ip", ["netns", "add", pod]);
      sh("ip", ["-n", node, "link", "add", `h${n}`, "type", "veth", "peer", "name", "eth0", "netns", pod]);
      sh("ip", ["-n", pod, "link", "set", "lo", "up"]);
      sh("ip", ["-n", pod, "link", "set", "eth0", "mtu", String(POD_MTU), "up"]);
      sh("ip", ["-n", pod, "addr", "add", `10.9.${n}.10/24`, "dev", "eth0"]);
      sh("ip", ["-n", pod, "route", "add", "default", "via", `10.9.${n}.1`]);
      sh("ip", ["-n", node, "link", "set", `h${n}`, "up"]);
      sh("ip", ["-n", node, "addr", "add", `10.9.${n}.1/24`, "dev", `h${n}`]);
      sh("ip", ["netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      const peer = 3 - n;
      sh("ip", ["-n", node, "route", "add", `10.9.${peer}.0/24`, "via", c.underlayAddress4(peer)]);
    }
    const b = "10.9.2.10";
    startIperf(c, c.podNs("p2"), c.podNs("p1"), b);
    return measure(c.podNs("p1"), b, TRAFFIC);
  } finally {
    c.destroy();
  }
}

/** Map writes for BLOCKS remote blocks: the dataplane's batched sync against one bpf() call per element. */
async function maps(): Promise<{ syncMs: number; singleMs: number; applyMs: number; reapplyWrites: number }> {
  const c = new TestCluster(1);
  try {
    c.create();
    const bpffs = c.bpffs();
    const block = (i: number) => `10.${100 + (i >> 8)}.${i & 255}.0/24`;
    const sid = (i: number) => `fd00:1ace:${(i >> 8).toString(16)}:${(i & 255).toString(16)}::1`;
    const plan: BpfPlan = { encap: new Map(), sids: new Map(), source: "fd00:ffff::1" };
    for (let i = 0; i < BLOCKS; i++) plan.encap.set(`1|${block(i)}`, { net: 1, prefix: block(i), sid: sid(i), srh: false });

    const dpSync = BpfDatapath.open(bpffs, "sync");
    const s0 = nowMs();
    const synced = dpSync.sync(plan);
    const syncMs = nowMs() - s0;
    if (synced.added !== BLOCKS) throw new Error(`Expected ${BLOCKS} map elements written, got ${JSON.stringify(synced)}`);
    dpSync.destroy();

    const dpSingle = BpfDatapath.open(bpffs, "single");
    const fd = dpSingle.mapFd("lace_encap4");
    const keys = Array.from({ length: BLOCKS }, (_, i) => encapKey(1, block(i)));
    const values = Array.from({ length: BLOCKS }, (_, i) => encapValue(sid(i), false));
    const t0 = nowMs();
    for (let i = 0; i < BLOCKS; i++) mapUpdate(fd, keys[i], values[i], "bench update");
    const singleMs = nowMs() - t0;
    for (const k of keys) mapDelete(fd, k, "bench delete");
    if (keys[0].length !== LAYOUT.lace_encap4.key) throw new Error("key layout changed");
    dpSingle.destroy();

    // A full apply: plan, routes (one nexthop per peer), maps, programs.
    const remoteBlocks: RemoteBlock[] = Array.from({ length: BLOCKS }, (_, i) => ({ prefix: block(i), node: `node-${(i % 50) + 2}`, sid: `fd00:1ace:${(i % 50) + 2}::1` }));
    const state: NodeDesiredState = {
      node: "node-1", revision: 1, locator: "fd00:1ace:1::/48", encapsulation: "Reduced",
      underlay: { interface: "eth0", mtu: 1500, address: c.underlayAddress(1) },
      networks: [{
        name: "bench", id: 1, type: "l3", forwarding: "routed", anonymous: false, table: 1001, bridge: "lbbench", mtu: POD_MTU,
        sid: "fd00:1ace:1::1", sidBehavior: "decap-lookup", gateways: ["10.99.0.1/24"], localPrefixes: ["10.99.0.0/24"],
        remoteBlocks, paths: [], neighbors: [], fdb: [], egress: [],
      }],
      endpoints: [],
      peers: Array.from({ length: 50 }, (_, i) => ({ node: `node-${i + 2}`, locator: `fd00:1ace:${i + 2}::/48`, address: `fd00:ffff::${(i + 2).toString(16)}` })),
    };
    const dp = await Srv6Dataplane.open({ node: "node-1", netns: c.node(1), backend: "bpf", bpffs });
    try {
      const a0 = nowMs();
      await dp.apply(state);
      const applyMs = nowMs() - a0;
      const again = await dp.apply(state);
      return { syncMs, singleMs, applyMs, reapplyWrites: again.writes };
    } finally {
      await dp.close();
    }
  } finally {
    c.destroy();
  }
}

const seg6 = noSeg6Reason() === undefined;
console.log(`kernel ${sh("uname", ["-r"]).trim()}, seg6 lwtunnel ${seg6 ? "present" : "absent"}; iperf3 TCP ${RUNS} × ${SECONDS} s, ${PINGS} pings, pod MTU ${POD_MTU}`);
const base = plain();
console.log(`baseline, plain routed IPv4 over bare veth:    ${fmt(base)}`);
const bpf = await srv6("bpf", true);
const same = bpf.unencapsulated!;
console.log(`baseline, the same lace nodes, no encapsulation: ${fmt(same)}`);
console.log(`srv6 bpf backend (H.Encaps.Red, tc-eBPF):      ${fmt(bpf)}`);
const kernel = seg6 ? await srv6("kernel") : undefined;
if (kernel) console.log(`srv6 kernel backend (seg6 lwtunnel):           ${fmt(kernel)}`);
else console.log(`srv6 kernel backend: not measured, ${noSeg6Reason()}`);
const m = await maps();
const rate = (ms: number) => Math.round(BLOCKS / (ms / 1000));
console.log(`bpf maps, ${BLOCKS} remote blocks: the dataplane's sync (read the map, diff, encode, one batch call per map) ${m.syncMs.toFixed(1)} ms = ${rate(m.syncMs).toLocaleString("en-US")}/s; ` +
  `baseline, the same elements pre-encoded, one bpf() call each ${m.singleMs.toFixed(1)} ms = ${rate(m.singleMs).toLocaleString("en-US")}/s (sync takes ${(m.syncMs / m.singleMs).toFixed(1)}× as long)`);
console.log(`bpf backend, full apply of ${BLOCKS} remote blocks (plan, routes, maps, programs): ${m.applyMs.toFixed(0)} ms = ${rate(m.applyMs).toLocaleString("en-US")} blocks/s; re-apply: ${m.reapplyWrites} writes`);

target("TCP pod → pod across nodes, bpf / the same namespaces routed without encapsulation", Number((bpf.gbps / same.gbps).toFixed(3)), 0.9, "×", true);
target("TCP pod → pod across nodes, bpf / plain routing over bare veth", Number((bpf.gbps / base.gbps).toFixed(3)), 0.9, "×", true);
if (kernel) target("TCP pod → pod across nodes, bpf / kernel seg6", Number((bpf.gbps / kernel.gbps).toFixed(3)), 1.0, "×", true);
target("bpf map updates for 10,000 remote blocks", rate(m.syncMs), 100_000, "/s", true);
target("ping RTT p50, bpf / the same namespaces routed without encapsulation", Number((bpf.rttP50 / same.rttP50).toFixed(3)), 1.2, "×", false);
target("ping RTT p50, bpf / plain routing over bare veth", Number((bpf.rttP50 / base.rttP50).toFixed(3)), 1.2, "×", false);
