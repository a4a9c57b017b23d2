/**
 * Traffic between namespaces for benchmarks: iperf3 TCP throughput, ping
 * RTT, and waiting until an iperf3 server answers. Shared by the datapath,
 * samenode and l2 benchmarks.
 *
 * @example
 * startIperf(cluster, serverNs, clientNs, "10.1.2.20");
 * const m = measure(clientNs, "10.1.2.20", { runs: 3, seconds: 5, pings: 1000 }); // { gbps, runs, rttP50 }
 */
import { inNs, sh, type TestCluster } from "../plugins/srv6/testing.ts";
import { percentile } from "./_report.ts";

/** Throughput (median and each run, Gbit/s) and the p50 ping RTT (ms) of one pair. */
export interface Measured {
  gbps: number;
  runs: number[];
  rttP50: number;
}

/** Waits (at most 10 s) until an iperf3 client in `clientNs` completes a 1 MB transfer to `server`. */
export function waitIperf(clientNs: string, server: string): void {
  const end = Date.now() + 10_000;
  while (inNs(clientNs, ["iperf3", "-c", server, "-n", "1M"], 3000).status !== 0) {
    if (Date.now() > end) throw new Error(`iperf3 in ${clientNs} cannot reach its server at ${server}`);
    sh("sleep", ["0.1"]);
  }
}

/** Starts an iperf3 server at `server` in `serverNs` (killed with the cluster) and waits until `clientNs` reaches it. */
export function startIperf(c: TestCluster, serverNs: string, clientNs: string, server: string): void {
  c.start(serverNs, ["iperf3", "-s", "-B", server]);
  waitIperf(clientNs, server);
}

/** iperf3 TCP from `clientNs` to `server`: Gbit/s of each of `runs` runs of `seconds`. */
export function throughput(clientNs: string, server: string, runs: number, seconds: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const res = inNs(clientNs, ["iperf3", "-J", "-c", server, "-t", String(seconds)], (seconds + 15) * 1000);
    if (res.status !== 0) throw new Error(`iperf3 from ${clientNs} to ${server} failed: ${res.out.slice(0, 300)}`);
    const bps = (JSON.parse(res.out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    out.push(bps / 1e9);
  }
  return out;
}

/** p50 RTT (ms) of `pings` echo requests, 2 ms apart; fails when more than 1% go unanswered. */
export function rttP50(clientNs: string, dst: string, pings: number): number {
  const out = inNs(clientNs, ["ping", "-n", "-c", String(pings), "-i", "0.002", dst], 60_000).out;
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (rtts.length < pings * 0.99) throw new Error(`Only ${rtts.length} of ${pings} pings to ${dst} were answered`);
  return percentile(rtts, 50);
}

/** Throughput and RTT of one pair whose iperf3 server runs. */
export function measure(clientNs: string, server: string, o: { runs: number; seconds: number; pings: number }): Measured {
  const runs = throughput(clientNs, server, o.runs, o.seconds);
  return { gbps: percentile([...runs], 50), runs, rttP50: rttP50(clientNs, server, o.pings) };
}

/** `10.92 Gbit/s (runs 10.70, 11.04, 10.92), RTT p50 11 µs` */
export function formatMeasured(m: Measured): string {
  return `${m.gbps.toFixed(2)} Gbit/s (runs ${m.runs.map((r) => r.toFixed(2)).join(", ")}), RTT p50 ${(m.rttP50 * 1000).toFixed(0)} µs`;
}
