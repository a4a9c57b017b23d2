/**
 * `npm run bench services`: ClusterIP load-balancing in the srv6 dataplane
 * (plugins/srv6/services.ts), on this kernel's backend (bpf where there is
 * no seg6):
 *
 * - connection set-up rate, pod → ClusterIP against pod → the endpoint's
 *   address directly, in the same run on the same namespaces: a client pod
 *   on node 1 opens TCP connections one after another (connect, read the
 *   endpoint's one-line answer, close) to a Service whose only endpoint is
 *   a pod on node 2, 3 runs of 3 s each way, median;
 * - programming 10,000 Services × 10 endpoints on one node, and then one
 *   endpoint change (one Service object replaced, the others handed over
 *   unchanged, as the builder does), 200 times: measured on the services
 *   part of the dataplane (planServices + ServiceTable.apply, in a node
 *   namespace of its own, first and so with a cold JIT) and on the whole
 *   apply on node 1 as the agent makes it (Srv6PodDataplane with its apply
 *   worker: the state crosses to the worker thread as the changes since
 *   the last one), with the same apply when nothing changed beside it (a
 *   resync: reads links, routes, rules and neighbours back). Programming's
 *   target is the whole apply (what an agent does); the endpoint change has
 *   a target line for each.
 *
 * Needs root and python3.
 */
import type { NodeDesiredState, ServiceForwarding } from "../core/mod.ts";
import { Srv6Dataplane } from "../plugins/srv6/dataplane.ts";
import { Srv6PodDataplane } from "../plugins/srv6/pod_dataplane.ts";
import { noSeg6Reason } from "../plugins/srv6/kernel_config.ts";
import { inNs, podMtu, sh, TestCluster, type TestNetwork, type TestPod } from "../plugins/srv6/testing.ts";
import { startNameServer, waitListening } from "../plugins/srv6/probes.ts";
import { NetlinkClient } from "../plugins/srv6/netlink.ts";
import { NETLINK_NETFILTER } from "../plugins/srv6/nfsets.ts";
import { planServices, ServiceTable } from "../plugins/srv6/services.ts";
import { nowMs, percentile, target } from "./_report.ts";
import { median } from "./_traffic.ts";

if (process.getuid?.() !== 0) {
  console.error("bench services needs root (it creates network namespaces)");
  process.exit(1);
}
const backend = noSeg6Reason() === undefined ? "kernel" : "bpf";
const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
const pods: TestPod[] = [{ name: "client", node: 1, network: "red", host: 10 }, { name: "server", node: 2, network: "red", host: 20 }];
const VIP = "10.96.0.10";
const SERVICES = 10_000;
const ENDPOINTS = 10;
const CHANGES = 200;
const RUNS = 5;
const SECONDS = 2;

/** Connections per second from `ns` to ip:port over `seconds` (sequential connect, read, close). */
function connectionRate(ns: string, ip: string, port: number, seconds: number): number {
  const code = `
import socket, time, sys
n = 0; failed = 0; end = time.monotonic() + ${seconds}; t0 = time.monotonic()
while time.monotonic() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(1)
    try:
        s.connect(("${ip}", ${port})); s.recv(16); n += 1
    except Exception:
        failed += 1
    finally:
        s.close()
sys.stdout.write("%f %d" % (n / (time.monotonic() - t0), failed))
`;
  const r = inNs(ns, ["python3", "-c", code], (seconds + 10) * 1000);
  const [rate, failed] = r.out.split(" ").map(Number);
  if (r.status !== 0 || !(rate > 0)) throw new Error(`The connection loop to ${ip}:${port} failed: ${r.out}`);
  if (failed) console.log(`(${failed} connection(s) to ${ip}:${port} failed or timed out in this run)`);
  return rate;
}

const c = new TestCluster(3);
const dps: (Srv6Dataplane | Srv6PodDataplane)[] = [];
let rates: { direct: number[]; clusterIP: number[] } = { direct: [], clusterIP: [] };
let programMs = 0;
let firstTable = 0;
const changeMs: number[] = [];
/** Of each change, the time the dataplane itself reports (in the worker, without the trip there and back). */
const changeInDataplaneMs: number[] = [];
const unchangedMs: number[] = [];
let tableProgramMs = 0;
let tableGrowMs = 0;
const tableChangeMs: number[] = [];
try {
  c.create();
  // The ClusterIP's target port is the endpoint's second listener, 8081: the direct runs use 8080. On one port the two
  // sides would share the server's TIME_WAIT tuples (the server closes first), and a SYN through the ClusterIP carries
  // timestamps of another offset (per destination address) than the direct connection that left the tuple: the
  // server answers it with the old connection's ACK, the client resets and resends its SYN a second later.
  const endpoint = { pod: "default/server", node: "node-2", addresses: ["10.1.2.20"], ports: [8081] };
  const svc: ServiceForwarding = {
    id: "default/bench", network: "red", clusterIPs: [VIP], sessionAffinity: "None", ports: [{ protocol: "TCP", port: 80 }], sources: ["red"], endpoints: [endpoint],
  };
  const state = (n: number, services: ServiceForwarding[]): NodeDesiredState => ({ ...c.desiredState(n, [red], pods), services });
  for (let n = 1; n <= 2; n++) {
    const opts = { node: `node-${n}`, netns: c.node(n), backend, bpffs: backend === "bpf" ? c.bpffs() : undefined } as const;
    // Node 1 as the agent runs it: applies in a worker thread of their own.
    dps.push(n === 1 ? await Srv6PodDataplane.open({ ...opts, applyInWorker: true }) : await Srv6Dataplane.open(opts));
    await dps[n - 1].apply(state(n, [svc]));
  }
  for (const p of pods) {
    await dps[p.node - 1].attachPod({ netns: c.addPodNs(p.name), ifname: "eth0", hostIfname: `h-${p.name}`, network: "red", networkId: red.id, ...c.podAddresses(p, red), mtu: podMtu(1500, "Reduced") });
  }
  for (let n = 1; n <= 2; n++) await dps[n - 1].apply(state(n, [svc]));
  for (const port of [8080, 8081]) startNameServer(c, c.podNs("server"), "10.1.2.20", port, "server");
  for (const port of [8080, 8081]) await waitListening(c.podNs("server"), "10.1.2.20", port);
  connectionRate(c.podNs("client"), VIP, 80, 1); // warm-up (ARP, caches)
  // Alternating runs: the machine is shared, so noise hits both sides alike.
  for (let i = 0; i < RUNS; i++) {
    rates.direct.push(connectionRate(c.podNs("client"), "10.1.2.20", 8080, SECONDS));
    rates.clusterIP.push(connectionRate(c.podNs("client"), VIP, 80, SECONDS));
  }

  // 10,000 Services × 10 endpoints on node 1: endpoints spread over node 1's block and other nodes' blocks. Sorted by
  // id, as the builder hands them over ("bench/s00000" … before "default/bench").
  const many: ServiceForwarding[] = [];
  for (let i = 0; i < SERVICES; i++) {
    many.push({
      id: `bench/s${String(i).padStart(5, "0")}`, network: "red", clusterIPs: [`10.100.${(i >> 8) & 0xff}.${i & 0xff}`], sessionAffinity: "None",
      ports: [{ protocol: "TCP", port: 80 }], sources: ["red"],
      endpoints: Array.from({ length: ENDPOINTS }, (_, j) => ({ pod: `bench/p${i}-${j}`, node: j === 0 ? "node-1" : `node-${j + 2}`, addresses: [`10.1.${j === 0 ? 1 : 100 + j}.${(i % 250) + 2}`], ports: [8080] })),
    });
  }
  const changed = (list: ServiceForwarding[], k: number) => {
    const i = (k * 37) % SERVICES; // one of the 10,000 (the list may end with the one the client uses)
    const endpoints = list[i].endpoints.slice();
    endpoints[3] = { ...endpoints[3], addresses: [`10.1.200.${k % 250 + 2}`] };
    list[i] = { ...list[i], endpoints };
  };

  // The services part alone, in node 3's namespace (no dataplane there).
  {
    const nf = NetlinkClient.open(`/run/netns/${c.node(3)}`, c.node(3), NETLINK_NETFILTER);
    try {
      const table = new ServiceTable(nf, `/run/netns/${c.node(3)}`, c.node(3));
      const base = c.desiredState(3, [red], pods);
      const current = many.map((s) => ({ ...s }));
      let t0 = nowMs();
      await table.apply(planServices({ ...base, services: current }));
      tableProgramMs = nowMs() - t0;
      for (let k = 0; k < CHANGES; k++) {
        changed(current, k);
        t0 = nowMs();
        await table.apply(planServices({ ...base, services: current.slice() }));
        tableChangeMs.push(nowMs() - t0);
      }
      // One Service grown past the table's first chains (32 endpoints): its chain is added to the loaded table.
      current[5] = { ...current[5], endpoints: Array.from({ length: 40 }, (_, j) => ({ ...current[5].endpoints[j % ENDPOINTS], pod: `bench/grown-${j}` })) };
      t0 = nowMs();
      const grown = await table.apply(planServices({ ...base, services: current.slice() }));
      tableGrowMs = nowMs() - t0;
      if (grown.loaded) throw new Error("The table was loaded afresh for a chain it lacked");
    } finally {
      nf.close();
    }
  }

  // The whole dataplane apply on node 1.
  const dp = dps[0];
  const all = state(1, [...many, svc]);
  let t0 = nowMs();
  await dp.apply(all);
  programMs = nowMs() - t0;
  firstTable = Number(inNs(c.node(1), ["sh", "-c", "nft list map inet lace_svc ep4 | grep -o ' : ' | wc -l"]).out.trim());
  const current = [...many, svc];
  // (Each state is made before the clock starts: the agent has it from its builder.)
  for (let k = 0; k < 50; k++) {
    const next = state(1, current.slice());
    t0 = nowMs();
    await dp.apply(next);
    unchangedMs.push(nowMs() - t0);
  }
  for (let k = 0; k < CHANGES; k++) {
    changed(current, k);
    const next = state(1, current.slice());
    t0 = nowMs();
    const report = await dp.apply(next);
    changeMs.push(nowMs() - t0);
    changeInDataplaneMs.push(report.durationMs);
  }
  // Still forwarding after it all.
  const check = connectionRate(c.podNs("client"), VIP, 80, 1);
  if (!(check > 0)) throw new Error("The ClusterIP stopped answering");
} finally {
  for (const dp of dps) await dp.close();
  c.destroy();
}

console.log(`kernel ${sh("uname", ["-r"]).trim()}, ${backend} backend; TCP connect+read+close, ${RUNS} alternating runs × ${SECONDS} s each way, client on node 1, endpoint on node 2`);
console.log(`pod → endpoint directly  ${median(rates.direct).toFixed(0)} conn/s (runs ${rates.direct.map((r) => r.toFixed(0)).join(", ")})`);
console.log(`pod → ClusterIP          ${median(rates.clusterIP).toFixed(0)} conn/s (runs ${rates.clusterIP.map((r) => r.toFixed(0)).join(", ")})`);
const ms = (xs: number[], p: number) => percentile(xs.slice(), p).toFixed(2);
console.log(`services part (planServices + ServiceTable.apply): ${SERVICES.toLocaleString("en-US")} Services × ${ENDPOINTS} endpoints programmed in ${tableProgramMs.toFixed(0)} ms; one endpoint change (${CHANGES}): p50 ${ms(tableChangeMs, 50)} ms, p99 ${ms(tableChangeMs, 99)} ms, max ${Math.max(...tableChangeMs).toFixed(2)} ms; one Service grown to 40 endpoints (a chain added to the loaded table): ${tableGrowMs.toFixed(1)} ms`);
console.log(`whole apply on node 1 (the agent's apply worker): the same Services in ${programMs.toFixed(0)} ms (${firstTable.toLocaleString("en-US")} elements in ep4); unchanged state (50): p50 ${ms(unchangedMs, 50)} ms, p99 ${ms(unchangedMs, 99)} ms; one endpoint change (${CHANGES}): p50 ${ms(changeMs, 50)} ms, p99 ${ms(changeMs, 99)} ms (in the worker's dataplane: p50 ${ms(changeInDataplaneMs, 50)} ms, p99 ${ms(changeInDataplaneMs, 99)} ms)`);
target("connection set-up rate pod → ClusterIP / pod → endpoint", Number((median(rates.clusterIP) / median(rates.direct)).toFixed(3)), 0.8, "×", true);
target(`programming ${SERVICES.toLocaleString("en-US")} Services × ${ENDPOINTS} endpoints on one node (whole dataplane apply)`, Number((programMs / 1000).toFixed(2)), 2, " s", false);
target("one endpoint change applied, p99 (services part)", Number(percentile(tableChangeMs.slice(), 99).toFixed(2)), 10, " ms", false);
target("one endpoint change, whole dataplane apply, p99", Number(percentile(changeMs.slice(), 99).toFixed(2)), 10, " ms", false);
