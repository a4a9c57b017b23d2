/**
 * Real traffic between pod namespaces for the datapath benchmarks: iperf3
 * TCP throughput and ping RTT, and the checks that the machine can run
 * them (root, iperf3).
 *
 * @example
 * requireTrafficTools("samenode");
 * iperfServer(cluster, serverNs, clientNs, "10.1.1.20");
 * const runs = throughput(clientNs, "10.1.1.20"); // Gbit/s of each run
 */
import { execFileSync } from "node:child_process";
import { inNs, sh, type TestCluster } from "../plugins/srv6/testing.ts";
import { percentile } from "./_report.ts";

/** iperf3 runs per measurement, and seconds each. */
export const RUNS = 3;
export const SECONDS = 5;
/** Echo requests per RTT measurement. */
export const PINGS = 1000;

export interface Measured {
  gbps: number;
  runs: number[];
  rttP50: number;
}

/** Exits (0, saying why) without root, or (1) without one of `tools` (Debian package names alike). */
export function requireTrafficTools(bench: string, tools: string[] = ["iperf3"]): void {
  if (process.getuid?.() !== 0) {
    console.log(`bench ${bench} needs root (it creates network namespaces); skipped`);
    process.exit(0);
  }
  for (const tool of tools) {
    try {
      execFileSync(tool, ["--version"], { stdio: "ignore" });
    } catch {
      console.error(`bench ${bench} needs ${tool} (apt-get install ${tool})`);
      process.exit(1);
    }
  }
}

export const median = (xs: number[]) => percentile([...xs], 50);

/** Starts an iperf3 server at `server` in `serverNs` (killed with the cluster) and waits, at most 10 s, until `clientNs` reaches it. */
export function iperfServer(c: TestCluster, serverNs: string, clientNs: string, server: string): void {
  c.start(serverNs, ["iperf3", "-s", "-B", server]);
  waitForIperf(clientNs, server);
}

/** Waits, at most 10 s, until `clientNs` reaches the iperf3 server at `server`. */
export function waitForIperf(clientNs: string, server: string): void {
  const end = Date.now() + 10_000;
  while (inNs(clientNs, ["iperf3", "-c", server, "-n", "1M"], 3000).status !== 0) {
    if (Date.now() > end) throw new Error(`iperf3 in ${clientNs} cannot reach its server at ${server}`);
    sh("sleep", ["0.1"]);
  }
}

/** iperf3 TCP from `clientNs` to `server`: Gbit/s of each of RUNS runs. */
export function throughput(clientNs: string, server: string): number[] {
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const res = inNs(clientNs, ["iperf3", "-J", "-c", server, "-t", String(SECONDS)], (SECONDS + 15) * 1000);
    if (res.status !== 0) throw new Error(`iperf3 from ${clientNs} to ${server} failed: ${res.out.slice(0, 300)}`);
    const bps = (JSON.parse(res.out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    runs.push(bps / 1e9);
  }
  return runs;
}

/** p50 RTT (ms) of PINGS echo requests, 2 ms apart. */
export function rttP50(clientNs: string, dst: string): number {
  const out = inNs(clientNs, ["ping", "-n", "-c", String(PINGS), "-i", "0.002", dst], 60_000).out;
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (rtts.length < PINGS * 0.99) throw new Error(`Only ${rtts.length} of ${PINGS} pings to ${dst} were answered`);
  return percentile(rtts, 50);
}

/** Throughput (median of RUNS) and RTT p50 from `clientNs` to `server`. */
export function measure(clientNs: string, server: string): Measured {
  const runs = throughput(clientNs, server);
  return { gbps: median(runs), runs, rttP50: rttP50(clientNs, server) };
}

/** One line: `12.12 Gbit/s (runs …), RTT p50 6 µs`. */
export const formatMeasured = (m: Measured) => `${m.gbps.toFixed(2)} Gbit/s (runs ${m.runs.map((r) => r.toFixed(2)).join(", ")}), RTT p50 ${(m.rttP50 * 1000).toFixed(0)} µs`;
