/**
 * `npm run bench store`: create rate of the embedded API store over HTTP,
 * sequential and with 8 concurrent clients, on a real file database with
 * the store's own durability settings (WAL, synchronous=FULL).
 *
 * Each create is a `POST` of a small Network, as kubectl or client-node
 * would send it; a create counts only once its 201 arrived (committed).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "node:https";
import { startEmbeddedServer } from "../agent/store/embedded/server.ts";
import { SqliteStore } from "../agent/store/embedded/sqlite_store.ts";

const N = Number(process.env.BENCH_STORE_N ?? 1000);
const dir = mkdtempSync(join(tmpdir(), "lace-bench-store-"));
const store = SqliteStore.open(join(dir, "store.db"));
const server = await startEmbeddedServer({ store, listen: "127.0.0.1:0" });
const { port } = new URL(server.url);
const headers: Record<string, string> = { "Content-Type": "application/json" };
if (server.token) headers.Authorization = `Bearer ${server.token}`;

// TLS (the store's own certificate) and keep-alive, as kubectl and client-node connect.
const keepAlive = new Agent({ keepAlive: true, maxSockets: 16, ca: server.certificate });

function post(i: number): Promise<void> {
  const body = JSON.stringify({
    apiVersion: "lace-cni.io/v1alpha1",
    kind: "Network",
    metadata: { name: `net-${i}` },
    spec: { type: "l2", ipv4Subnet: { prefix: `10.${i >> 8 & 255}.${i & 255}.0/24` } },
  });
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/apis/lace-cni.io/v1alpha1/networks", headers, agent: keepAlive }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 201 ? resolve() : reject(new Error(`create net-${i}: HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

try {
  let t0 = performance.now();
  for (let i = 0; i < N; i++) await post(i);
  const sequential = N / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  let next = N;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < 2 * N) await post(next++);
  }));
  const concurrent = N / ((performance.now() - t0) / 1000);
  console.log(`store creates, sequential:   ${Math.round(sequential)} /s (${N} Networks, synchronous=FULL)`);
  console.log(`store creates, 8 clients:    ${Math.round(concurrent)} /s (${(concurrent / sequential).toFixed(2)}x sequential)`);
} finally {
  keepAlive.destroy();
  await server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
