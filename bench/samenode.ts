/**
 * `npm run bench samenode`: what it costs two pods of one network on one
 * node when their traffic must pass the node's rules (plan.ts
 * `sameNodeChecked`: an anonymous network, or a Deny for a prefix inside
 * the network overlapping the node's block), against the same pods talking
 * over the bridge, measured in the same run on the same namespaces:
 *
 * - open: the network's pods reach each other over L2 (the baseline);
 * - checked: the same pods with a Deny for an unused /32 of their block, so
 *   the bridge isolates its ports and every packet is routed by the node
 *   (ARP/NDP proxy, policy rules, nftables, conntrack);
 * - open beside a checked network: another network on the node is checked,
 *   the measured one is not (it must pay nothing).
 *
 * TCP with iperf3 (Debian), 3 runs of 5 s, median; ping RTT p50 of 1,000
 * echo requests. Needs root and iperf3; runs on either backend (bpf where
 * the kernel has no seg6).
 */
import { execFileSync } from "node:child_process";
import type { NodeDesiredState } from "../core/mod.ts";
import { Srv6Dataplane } from "../plugins/srv6/dataplane.ts";
import { noSeg6Reason } from "../plugins/srv6/kernel_config.ts";
import { podMtu } from "../plugins/srv6/plan.ts";
import { inNs, sh, TestCluster, type TestNetwork, type TestPod } from "../plugins/srv6/testing.ts";
import { target } from "./_report.ts";
import { formatMeasured as fmt, measure, waitIperf, type Measured } from "./_traffic.ts";

if (process.getuid?.() !== 0) {
  console.log("bench samenode needs root (it creates network namespaces); skipped");
  process.exit(0);
}
try {
  execFileSync("iperf3", ["--version"], { stdio: "ignore" });
} catch {
  console.error("bench samenode needs iperf3 (apt-get install iperf3)");
  process.exit(1);
}

const RUNS = 3;
const SECONDS = 5;
const PINGS = 1000;
const POD_MTU = podMtu(1500, "Reduced");
const backend = noSeg6Reason() === undefined ? "kernel" : "bpf";

/** The TTL of one echo reply: 64 over the bridge, 63 routed by the node. */
function replyTtl(clientNs: string, dst: string): number {
  return Number(/ttl=(\d+)/.exec(inNs(clientNs, ["ping", "-n", "-c", "1", "-W", "1", dst]).out)?.[1] ?? 0);
}

const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
const vault: TestNetwork = { name: "vault", id: 2, v4: 2, v6: 2 };
const pods: TestPod[] = [
  { name: "a", node: 1, network: "red", host: 10 }, { name: "b", node: 1, network: "red", host: 20 },
  { name: "v", node: 1, network: "vault", host: 10 }, { name: "w", node: 1, network: "vault", host: 20 },
];
const c = new TestCluster(1);
let dp: Srv6Dataplane | undefined;
const results = new Map<string, Measured>();
try {
  c.create();
  dp = await Srv6Dataplane.open({ node: "node-1", netns: c.node(1), backend, bpffs: backend === "bpf" ? c.bpffs() : undefined });
  const state = (denied: Record<string, string[]>): NodeDesiredState => {
    const s = c.desiredState(1, [red, vault], pods, [], "Reduced", []);
    for (const n of s.networks) if (denied[n.name]) n.denied = denied[n.name].map((destination) => ({ destination, policy: "bench" }));
    return s;
  };
  await dp.apply(state({}));
  for (const p of pods) {
    const net = p.network === "red" ? red : vault;
    await dp.attachPod({ netns: c.addPodNs(p.name), ifname: "eth0", hostIfname: `h-${p.name}`, network: p.network, ...c.podAddresses(p, net), mtu: POD_MTU });
  }
  const b = "10.1.1.20";
  c.start(c.podNs("b"), ["iperf3", "-s", "-B", b]);
  const cases: [string, Record<string, string[]>, number][] = [
    ["open", {}, 64],
    ["open beside a checked network", { vault: ["10.2.1.99/32"] }, 64],
    ["checked", { red: ["10.1.1.99/32"] }, 63],
  ];
  for (const [name, denied, ttl] of cases) {
    await dp.apply(state(denied));
    waitIperf(c.podNs("a"), b);
    const got = replyTtl(c.podNs("a"), b);
    if (got !== ttl) throw new Error(`${name}: the echo reply came back with TTL ${got}, expected ${ttl} (${ttl === 64 ? "over the bridge" : "routed by the node"})`);
    results.set(name, measure(c.podNs("a"), b, { runs: RUNS, seconds: SECONDS, pings: PINGS }));
  }
} finally {
  await dp?.close();
  c.destroy();
}

console.log(`kernel ${sh("uname", ["-r"]).trim()}, ${backend} backend; iperf3 TCP ${RUNS} × ${SECONDS} s, ${PINGS} pings, two pods of one network on one node`);
for (const [name, m] of results) console.log(`${name.padEnd(30)} ${fmt(m)}`);
const open = results.get("open")!, beside = results.get("open beside a checked network")!, checked = results.get("checked")!;
target("TCP same node, open network beside a checked one / open", Number((beside.gbps / open.gbps).toFixed(3)), 0.95, "×", true);
target("TCP same node, checked / open (over the bridge)", Number((checked.gbps / open.gbps).toFixed(3)), 0.7, "×", true);
target("ping RTT p50 same node, checked / open", Number((checked.rttP50 / open.rttP50).toFixed(3)), 1.5, "×", false);
