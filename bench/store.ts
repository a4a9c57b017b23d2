/**
 * `npm run bench store`: create rate of the embedded API store, as users
 * run it: `lace store serve` in its own process on a real file database
 * (WAL, synchronous=FULL, group commit), reached over HTTPS with its token,
 * sequentially and by 8 concurrent clients, in one run with the same
 * settings. A create counts once its 201 arrived, and the store answers
 * only after the write is on disk.
 *
 * The targets: 8 clients create at least 3x the sequential rate.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const N = Number(process.env.BENCH_STORE_N ?? 2000);
const CLIENTS = 8;
const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const dir = mkdtempSync(join(tmpdir(), "lace-bench-store-"));

interface Served {
  child: ChildProcess;
  url: string;
  token: string;
  ca: string;
}

function serve(name: string, extraArgs: string[]): Promise<Served> {
  const kubeconfig = join(dir, `${name}.kubeconfig`);
  const extra = process.env.BENCH_STORE_NODE_ARGS ? process.env.BENCH_STORE_NODE_ARGS.split(" ") : [];
  const child = spawn(process.execPath, [...extra, "--import", "tsx", join(root, "agent/cli/main.ts"), "store", "serve", "--db", join(dir, name, "store.db"), "--listen", "127.0.0.1:0", "--kubeconfig", kubeconfig, ...extraArgs], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      if (!out.includes("lace store: serving")) return;
      const kc = parse(readFileSync(kubeconfig, "utf8"));
      resolve({
        child,
        url: kc.clusters[0].cluster.server,
        token: kc.users[0].user.token,
        ca: Buffer.from(kc.clusters[0].cluster["certificate-authority-data"], "base64").toString(),
      });
    });
    child.on("exit", (code) => reject(new Error(`lace store serve exited with ${code}: ${out}`)));
  });
}

function post(server: Served, agent: Agent, i: number): Promise<void> {
  const body = JSON.stringify({
    apiVersion: "lace-cni.io/v1alpha1",
    kind: "Network",
    metadata: { name: `net-${i}` },
    spec: { type: "l2", ipv4Subnet: { prefix: `10.${i >> 8 & 255}.${i & 255}.0/24` } },
  });
  const headers = { "Content-Type": "application/json", Authorization: `Bearer ${server.token}` };
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}/apis/lace-cni.io/v1alpha1/networks`, { method: "POST", headers, agent }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 201 ? resolve() : reject(new Error(`create net-${i}: HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Sequential and concurrent create rates of one server. */
async function measure(name: string, extraArgs: string[]): Promise<{ sequential: number; concurrent: number }> {
  const server = await serve(name, extraArgs);
  // TLS with the store's own certificate, and keep-alive, as kubectl and client-node connect.
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS, ca: server.ca });
  try {
    for (let i = 0; i < 50; i++) await post(server, agent, 1_000_000 + i); // warm up: connections, JIT
    let t0 = performance.now();
    for (let i = 0; i < N; i++) await post(server, agent, i);
    const sequential = N / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    let next = N;
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (next < 2 * N) await post(server, agent, next++);
    }));
    const concurrent = N / ((performance.now() - t0) / 1000);
    return { sequential, concurrent };
  } finally {
    agent.destroy();
    server.child.kill("SIGTERM");
    await new Promise((r) => server.child.once("exit", r));
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
try {
  const single = await measure("single", ["--no-group-commit"]);
  const grouped = await measure("grouped", []);
  console.log(`store creates (${N} Networks each, synchronous=FULL, HTTPS, lace store serve in its own process):`);
  console.log(`  one commit per write:  sequential ${fmt(single.sequential)}/s, ${CLIENTS} clients ${fmt(single.concurrent)}/s`);
  console.log(`  group commit:          sequential ${fmt(grouped.sequential)}/s, ${CLIENTS} clients ${fmt(grouped.concurrent)}/s`);
  const ratio = grouped.concurrent / grouped.sequential;
  console.log(`target ${CLIENTS} clients vs sequential (group commit): ${ratio.toFixed(2)}x vs >= 3x — ${ratio >= 3 ? "met" : "missed"}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
