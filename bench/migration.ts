/**
 * `npm run bench migration`: live migration of an l2 endpoint (a VM's
 * launcher pod) between nodes of the sandbox cluster, under a ping every
 * 10 ms from another endpoint of the network (`Sandbox.migrate`, the same
 * as `lace sandbox migrate`): pings lost and the longest time without a
 * reply, over 10 migrations round the three nodes. The bpf backend (the
 * only one that carries l2 frames between nodes). Needs root.
 */
import type { Resource } from "../core/mod.ts";
import { Sandbox } from "../agent/sandbox/sandbox.ts";
import { percentile, target } from "./_report.ts";

if (process.getuid?.() !== 0) {
  console.log("bench migration needs root (it builds the sandbox cluster); skipped");
  process.exit(0);
}

const MIGRATIONS = 10;
const L = "lace-cni.io/v1alpha1";
const pod = (name: string, node: number): Resource => ({
  apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "vms", labels: { vm: "yes" } },
  spec: { nodeName: `node-${node}`, containers: [{ name: "compute", image: "pause" }] },
});

const sb = await Sandbox.up({ nodes: 3, prefix: `lbm${process.pid.toString(36)}-`, backend: "bpf" });
const results: { lost: number; convergenceMs: number }[] = [];
try {
  await sb.apply([
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "vms" } },
    { apiVersion: L, kind: "Topology", metadata: { name: "default" }, spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48, encapsulation: "Reduced", mtu: 0 } },
    { apiVersion: L, kind: "Network", metadata: { name: "storage" }, spec: { type: "l2", ipv4Subnet: { prefix: "10.51.0.0/24" } } },
    { apiVersion: L, kind: "NetworkBindingPolicy", metadata: { name: "vms" }, spec: { network: "storage", priority: 10, matchKind: "Pod", selector: { matchLabels: { vm: "yes" } } } },
    pod("vm-a", 1), pod("prober", 3),
  ]);
  const notRunning = sb.listPods().filter((p) => p.state !== "running");
  if (notRunning.length) throw new Error(`pods not running: ${JSON.stringify(notRunning)}`);
  let node = 1;
  for (let i = 0; i < MIGRATIONS; i++) {
    node = (node % 3) + 1;
    const r = await sb.migrate("vms", "vm-a", `node-${node}`);
    results.push(r);
    console.log(`migration ${i + 1}: ${r.from} → ${r.to}: ${r.lost} ping(s) lost, ${r.convergenceMs} ms without a reply`);
  }
} finally {
  await sb.down();
}

const lost = results.map((r) => r.lost);
const conv = results.map((r) => r.convergenceMs);
console.log(`${MIGRATIONS} migrations of one l2 endpoint round three nodes (one of them the prober's), ping every 10 ms`);
console.log(`pings lost: median ${percentile([...lost], 50)}, max ${Math.max(...lost)}; without a reply: p50 ${percentile([...conv], 50)} ms, p99 ${percentile([...conv], 99)} ms`);
target("pings lost per live migration, median of 10", percentile([...lost], 50), 10, "", false);
target("live migration convergence p99", percentile([...conv], 99), 1000, " ms", false);
