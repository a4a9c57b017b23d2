/**
 * The store conformance suite over HTTP: KubeStore (client-node) against the
 * embedded API server on a unix socket, through a generated kubeconfig.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { storeConformance } from "../../core/store/conformance.ts";
import { startEmbeddedServer } from "./embedded/server.ts";
import { SqliteStore } from "./embedded/sqlite_store.ts";
import { KubeStore } from "./kube.ts";
import { embeddedKubeConfig, loadKubeConfig } from "./kubeconfig.ts";

storeConformance("KubeStore over the embedded API server", async ({ watchHistory }) => {
  const dir = mkdtempSync(join(tmpdir(), "lace-store-"));
  const db = SqliteStore.open(join(dir, "store.db"), { watchHistory });
  const server = await startEmbeddedServer({ store: db, listen: `unix:${join(dir, "api.sock")}` });
  const store = new KubeStore(loadKubeConfig({ text: embeddedKubeConfig(server) }));
  return {
    store,
    close: async () => {
      await server.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
