/**
 * Picks the store a lace process talks to: a Kubernetes API server when a
 * kubeconfig is given (or found: `$KUBECONFIG`, in-cluster), otherwise the
 * embedded durable store, started in-process on a SQLite file and reached
 * through the same client-node code over a unix socket.
 *
 * @example
 * const { store, close } = await connectStore({ db: ".lace/store.db" });
 * await store.list("Network");
 * await close();
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { type EmbeddedServer, startEmbeddedServer } from "./embedded/server.ts";
import { SqliteStore } from "./embedded/sqlite_store.ts";
import { KubeStore } from "./kube.ts";
import { embeddedKubeConfig, loadKubeConfig } from "./kubeconfig.ts";

export interface ConnectOptions {
  /** A kubeconfig file: talk to that API server. */
  kubeconfig?: string;
  /** The embedded store's database. Default `.lace/store.db`. */
  db?: string;
  /** Where the embedded server listens. Default `unix:<db dir>/api.sock`. */
  listen?: string;
  /** The environment to look for `KUBECONFIG` / in-cluster settings in. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

export interface ConnectedStore {
  store: KubeStore;
  /** Set when the embedded server was started here. */
  embedded?: EmbeddedServer;
  close(): Promise<void>;
}

/** Connects to a cluster, or starts the embedded store when there is none. */
export async function connectStore(options: ConnectOptions = {}): Promise<ConnectedStore> {
  const env = options.env ?? process.env;
  if (options.kubeconfig) {
    return { store: new KubeStore(loadKubeConfig({ path: options.kubeconfig })), close: () => Promise.resolve() };
  }
  if (env.KUBECONFIG || env.KUBERNETES_SERVICE_HOST) {
    return { store: new KubeStore(loadKubeConfig()), close: () => Promise.resolve() };
  }
  const db = options.db ?? join(".lace", "store.db");
  mkdirSync(dirname(db), { recursive: true });
  const sqlite = SqliteStore.open(db);
  const embedded = await startEmbeddedServer({ store: sqlite, listen: options.listen ?? `unix:${join(dirname(db), "api.sock")}` });
  const kc = loadKubeConfig({ text: embeddedKubeConfig(embedded) });
  return {
    store: new KubeStore(kc),
    embedded,
    close: async () => {
      await embedded.close();
      sqlite.close();
    },
  };
}

/** The connection flags the agent and the live commands share. */
export interface StoreFlags {
  kubeconfig?: string;
  db?: string;
  /** A running embedded store's unix socket (`lace store serve --listen unix:<path>`). */
  storeSocket?: string;
}

/**
 * Connects as `--kubeconfig`, `--db` or `--store-socket` say: a running
 * embedded store on its socket, else {@link connectStore}.
 *
 * @example
 * const { store, close } = await connectFlags({ storeSocket: "/run/lace-sandbox/api.sock" });
 */
export async function connectFlags(flags: StoreFlags): Promise<ConnectedStore> {
  if (flags.storeSocket) {
    const kc = loadKubeConfig({ text: embeddedKubeConfig({ url: "http://localhost", socketPath: flags.storeSocket }) });
    return { store: new KubeStore(kc), close: () => Promise.resolve() };
  }
  return connectStore({ kubeconfig: flags.kubeconfig, db: flags.db });
}
