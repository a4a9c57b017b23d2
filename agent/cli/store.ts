/**
 * `lace store serve`: runs the embedded durable API store (SQLite, served
 * with the Kubernetes REST conventions) until SIGTERM or SIGINT.
 * `lace store kubeconfig`: prints a kubeconfig for such a server, so the
 * controller, the agents and kubectl-like tools reach it with client-node.
 *
 * @example
 * lace store serve --db /var/lib/lace/store.db --listen unix:/run/lace/api.sock --kubeconfig /run/lace/kubeconfig
 * lace store kubeconfig --listen 127.0.0.1:6443 > lace.kubeconfig
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Command } from "commander";
import { parseListen, startEmbeddedServer } from "../store/embedded/server.ts";
import { SqliteStore } from "../store/embedded/sqlite_store.ts";
import { embeddedKubeConfig } from "../store/embedded/kubeconfig.ts";

const DEFAULT_LISTEN = "unix:.lace/api.sock";

/** The kubeconfig text for a server listening on `listen` (`unix:<path>` or `127.0.0.1:<port>`). */
export function kubeconfigFor(listen: string): string {
  const a = parseListen(listen);
  if (a.kind === "unix") return embeddedKubeConfig({ url: "http://localhost", socketPath: a.path });
  if (a.port === 0) throw new Error(`Cannot write a kubeconfig for "${listen}": port 0 is only known once the server listens`);
  const host = a.host.includes(":") ? `[${a.host}]` : a.host;
  return embeddedKubeConfig({ url: `http://${host}:${a.port}` });
}

/** Serves until a signal; resolves after a clean shutdown. */
export async function runStoreServe(opts: { db: string; listen: string; kubeconfig?: string; watchHistory?: number }): Promise<void> {
  mkdirSync(dirname(opts.db), { recursive: true });
  const address = parseListen(opts.listen);
  if (address.kind === "unix") mkdirSync(dirname(address.path), { recursive: true });
  const store = SqliteStore.open(opts.db, { watchHistory: opts.watchHistory });
  const server = await startEmbeddedServer({ store, listen: opts.listen });
  if (opts.kubeconfig) {
    mkdirSync(dirname(opts.kubeconfig), { recursive: true });
    writeFileSync(opts.kubeconfig, embeddedKubeConfig(server), { mode: 0o600 });
  }
  console.log(`lace store: serving ${opts.db} on ${server.listen} (resourceVersion ${store.resourceVersion})`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await server.close();
  store.close();
}

/** Registers `store serve` and `store kubeconfig` on the `lace` program. */
export function registerStore(program: Command): void {
  const store = program.command("store").description("The embedded durable API store used when there is no Kubernetes cluster");
  store
    .command("serve")
    .description("Serve a SQLite-backed store with the Kubernetes REST conventions on a unix socket or loopback")
    .requiredOption("--db <path>", "the SQLite database file (created if missing)")
    .option("--listen <address>", "unix:<path> or 127.0.0.1:<port>", DEFAULT_LISTEN)
    .option("--kubeconfig <path>", "also write a kubeconfig for this server to <path>")
    .option("--watch-history <n>", "how many past events a watch may resume from", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`Invalid --watch-history "${v}": expected a positive integer`);
      return n;
    })
    .action((o: { db: string; listen: string; kubeconfig?: string; watchHistory?: number }) => runStoreServe(o));
  store
    .command("kubeconfig")
    .description("Print a kubeconfig that reaches an embedded store at --listen")
    .option("--listen <address>", "unix:<path> or 127.0.0.1:<port>", DEFAULT_LISTEN)
    .action((o: { listen: string }) => {
      process.stdout.write(kubeconfigFor(o.listen));
    });
}
