/**
 * SIGKILL loses no acknowledged write: `lace store serve` runs as a child
 * process, takes N writes over HTTP, is killed with SIGKILL, and restarted
 * on the same database; every acknowledged write is there, and a watcher
 * can still resume from a version before the crash.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { API_VERSION, type Network, type WatchEvent } from "../../../core/mod.ts";
import { KubeStore } from "../kube.ts";
import { loadKubeConfig } from "../kubeconfig.ts";

const root = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
const t = suite("embedded store durability");

/** Starts `lace store serve` and resolves once it says it is serving. */
function serve(db: string, sock: string, kubeconfig: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(root, "agent/cli/main.ts"), "store", "serve", "--db", db, "--listen", `unix:${sock}`, "--kubeconfig", kubeconfig],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`lace store serve did not start within 20 s: ${out}${err}`)), 20_000);
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("lace store: serving")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`lace store serve exited with ${code}: ${out}${err}`));
    });
  });
}

function kill(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/**
 * A store server on a database in a fresh directory, for `fn`: `crash`
 * kills it (SIGKILL), `serveAgain` starts a new one on the same database.
 * The last server is killed and the directory removed afterwards.
 */
async function withServer(fn: (s: { store: KubeStore; crash(): Promise<void>; serveAgain(): Promise<void> }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lace-durable-"));
  const db = join(dir, "store.db");
  const sock = join(dir, "api.sock");
  const kubeconfig = join(dir, "kubeconfig");
  let child: ChildProcess | undefined;
  try {
    child = await serve(db, sock, kubeconfig);
    const store = new KubeStore(loadKubeConfig({ path: kubeconfig }));
    await fn({ store, crash: () => kill(child), serveAgain: async () => void (child = await serve(db, sock, kubeconfig)) });
  } finally {
    await kill(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

t("every acknowledged write survives SIGKILL of the server", async () => {
  await withServer(async ({ store, crash, serveAgain }) => {
    const start = (await store.list("Network")).resourceVersion;
    const N = 80;
    const acked = new Map<string, string>();
    // 8 concurrent writers: the server commits their writes in shared batches (group commit).
    await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(async (w) => {
      for (let i = w; i < N; i += 8) {
        const name = `net-${i}`;
        const created = await store.create<Network>({
          apiVersion: API_VERSION,
          kind: "Network",
          metadata: { name },
          spec: { type: "l3", ipv4Subnet: { prefix: `10.${i}.0.0/16`, hostLocalPrefixLength: 24 } },
        });
        const labelled = i % 2 === 0
          ? await store.update<Network>({ ...created, metadata: { ...created.metadata, labels: { n: String(i) } } })
          : created;
        acked.set(name, labelled.metadata.resourceVersion!);
      }
    }));
    const lastAcked = Math.max(...[...acked.values()].map(Number));
    await crash();
    await serveAgain();
    const after = await store.list<Network>("Network");
    assert.is(after.items.length, N, "every created Network is there");
    for (const o of after.items) {
      assert.is(o.metadata.resourceVersion, acked.get(o.metadata.name), `${o.metadata.name} is at its acknowledged version`);
      const i = Number(o.metadata.name.slice(4));
      assert.equal(o.metadata.labels, i % 2 === 0 ? { n: String(i) } : undefined);
    }
    assert.ok(Number(after.resourceVersion) >= lastAcked, "the store's version did not go back");
    // The watch history is durable too: resume from before the crash.
    const events: WatchEvent<Network>[] = [];
    const w = store.watch<Network>("Network", { resourceVersion: start }, (e) => {
      if (e.type !== "BOOKMARK") events.push(e);
    });
    const until = Date.now() + 5_000;
    while (events.length < N + N / 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    w.stop();
    assert.is(events.length, N + N / 2, "N creates and N/2 updates replayed");
    const created = await store.create<Network>({ apiVersion: API_VERSION, kind: "Network", metadata: { name: "after-restart" }, spec: { type: "l2", ipv4Subnet: { prefix: "10.200.0.0/16" } } });
    assert.ok(Number(created.metadata.resourceVersion) > lastAcked, "versions keep increasing after a restart");
  });
});

t("SIGKILL in the middle of 8 writers' stream loses no acknowledged create (group commit)", async () => {
  await withServer(async ({ store, crash, serveAgain }) => {
    const acked: string[] = [];
    let stop = false;
    let next = 0;
    const writers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const i = next++;
        try {
          await store.create<Network>({
            apiVersion: API_VERSION,
            kind: "Network",
            metadata: { name: `w-${i}` },
            spec: { type: "l2", ipv4Subnet: { prefix: `10.${(i >> 8) & 255}.${i & 255}.0/24` } },
          });
          acked.push(`w-${i}`);
        } catch {
          return; // the server died under this request: not acknowledged
        }
      }
    });
    // Kill while writes are in flight, once a good number were acknowledged.
    while (acked.length < 200) await new Promise((r) => setTimeout(r, 5));
    await crash();
    stop = true;
    await Promise.all(writers);
    await serveAgain();
    const stored = new Set((await store.list<Network>("Network")).items.map((o) => o.metadata.name));
    const lost = acked.filter((n) => !stored.has(n));
    console.log(`  kill -9 mid-stream: ${acked.length} creates acknowledged, ${stored.size} stored, ${lost.length} acknowledged lost`);
    assert.equal(lost, [], "every acknowledged create is stored");
    assert.ok(stored.size >= acked.length);
  });
});

t.run();
