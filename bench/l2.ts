/**
 * `npm run bench l2`: TCP between two endpoints of an l2 (bridged) network
 * on two nodes against two endpoints of an l3 (routed) network on the same
 * two nodes, in the same run, on the srv6 bpf backend (network namespaces
 * on a fabric bridge, veth everywhere, offloads at their defaults):
 *
 * - l3: pod → pod across nodes (H.Encaps.Red, IPv4 inside);
 * - l2, the IP fast path (IP in SRv6, next header 4 / 41, Ethernet restored
 *   from the Neighbor table on the receiver), IPv4 and IPv6;
 * - l2, whole frames only (H.Encaps.L2, next header 143): the same pods
 *   with the fast path turned off (the sending node's Neighbor map emptied)
 *   and, as it needs, TSO and GSO off in the sending pod and GRO off on the
 *   host veths (the kernel has no GSO handler for next header 143); the
 *   measurement that chose the fast path;
 * - ping RTT p50 of each.
 *
 * iperf3 TCP, 3 runs of 5 s, median. Needs root, iperf3, ethtool and the
 * compiled datapath (`npm run build:bpf`).
 */
import { Srv6Dataplane } from "../plugins/srv6/dataplane.ts";
import { LAYOUT } from "../plugins/srv6/bpf_datapath.ts";
import { mapDelete, mapEntries } from "../plugins/srv6/libbpf.ts";
import { L2_FIXTURE, l2DesiredState, l2PodAddresses, type L2Topology } from "../plugins/srv6/l2_testing.ts";
import { inNs, podMtu, sh, TestCluster, type TestPod } from "../plugins/srv6/testing.ts";
import { target } from "./_report.ts";
import { formatMeasured as fmt, iperfServer as startIperf, measure, type Measured, PINGS, requireTrafficTools, RUNS, SECONDS } from "./_traffic.ts";

requireTrafficTools("l2", ["iperf3", "ethtool"]);


const { red, storage } = L2_FIXTURE;
const pods: TestPod[] = [
  { name: "ra", node: 1, network: "red", host: 10 },
  { name: "rb", node: 2, network: "red", host: 20 },
  { name: "sa", node: 1, network: "storage", host: 10 },
  { name: "sb", node: 2, network: "storage", host: 20 },
];
const topo: L2Topology = { l3: [red], l2: [storage], pods };
const c = new TestCluster(2);
const dps: Srv6Dataplane[] = [];
let l3: Measured, l2v4: Measured, l2v6: Measured, whole: Measured;
let stats: Record<string, number>[] = [];
try {
  c.create();
  for (let n = 1; n <= 2; n++) {
    const dp = await Srv6Dataplane.open({ node: `node-${n}`, netns: c.node(n), backend: "bpf", bpffs: c.bpffs() });
    dps.push(dp);
    await dp.apply(l2DesiredState(c, n, topo));
  }
  for (const p of pods) {
    const a = p.network === "storage" ? l2PodAddresses(p, storage) : { ...c.podAddresses(p, red), mtu: podMtu(1500, "Reduced") };
    await dps[p.node - 1].attachPod({ netns: c.addPodNs(p.name), ifname: "eth0", hostIfname: `h-${p.name}`, network: p.network, ...a });
  }
  for (let n = 1; n <= 2; n++) await dps[n - 1].apply(l2DesiredState(c, n, topo));

  const pair = (client: string, server: string, address: string) => {
    startIperf(c, c.podNs(server), c.podNs(client), address);
    return measure(c.podNs(client), address);
  };
  l3 = pair("ra", "rb", "10.1.2.20");
  l2v4 = pair("sa", "sb", "10.50.0.20");
  l2v6 = pair("sa", "sb", "fd00:50::20");
  stats = dps.map((d) => ({ ...d.bpfStats()! }));

  // Whole frames only: no Neighbor on the sending node (the fast path needs both addresses' MACs), and the
  // offloads that produce GSO frames off, which could not go whole.
  const nbrs = dps[0].bpfMapFd("lace_l2_nbrs")!;
  for (const [k] of mapEntries(nbrs, LAYOUT.lace_l2_nbrs.key, LAYOUT.lace_l2_nbrs.value)) mapDelete(nbrs, k, "bench: empty the Neighbor map");
  inNs(c.podNs("sa"), ["ethtool", "-K", "eth0", "tso", "off", "gso", "off"]);
  for (const [n, port] of [[1, "h-sa"], [2, "h-sb"]] as const) inNs(c.node(n), ["ethtool", "-K", port, "gro", "off"]);
  whole = measure(c.podNs("sa"), "10.50.0.20");
} finally {
  for (const dp of dps) await dp.close();
  c.destroy();
}

console.log(`kernel ${sh("uname", ["-r"]).trim()}; srv6 bpf backend, Reduced; iperf3 TCP ${RUNS} × ${SECONDS} s, ${PINGS} pings; veth offloads at their defaults`);
console.log(`l3 pod → pod across nodes (IPv4 in SRv6):                        ${fmt(l3)}`);
console.log(`l2 pod → pod across nodes, IPv4 (fast path, next header 4):      ${fmt(l2v4)}`);
console.log(`l2 pod → pod across nodes, IPv6 (fast path, next header 41):     ${fmt(l2v6)}`);
console.log(`l2 whole frames only (next header 143; pod TSO/GSO off, GRO off): ${fmt(whole)}`);
console.log(`datapath counters during the fast-path runs: node 1 ${JSON.stringify(pick(stats[0]))}, node 2 ${JSON.stringify(pick(stats[1]))}`);

target("TCP l2 / l3 across the same two nodes, IPv4 (issue 12: ≥ 0.8×)", Number((l2v4.gbps / l3.gbps).toFixed(3)), 0.8, "×", true);
target("TCP l2 / l3 across the same two nodes, IPv6 inside l2 (≥ 0.8×)", Number((l2v6.gbps / l3.gbps).toFixed(3)), 0.8, "×", true);
target("ping RTT p50 l2 / l3 across the same two nodes", Number((l2v4.rttP50 / l3.rttP50).toFixed(3)), 1.2, "×", false);
target("TCP l2 fast path / whole frames only (why the fast path)", Number((l2v4.gbps / whole.gbps).toFixed(3)), 1.0, "×", true);

function pick(s: Record<string, number> | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(s ?? {}).filter(([k, v]) => k.startsWith("l2_") && v > 0));
}
