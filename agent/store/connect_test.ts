import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { API_VERSION } from "../../core/mod.ts";
import { connectStore } from "./connect.ts";
import { embeddedKubeConfig } from "./kubeconfig.ts";

const t = suite("connectStore");

t("without a kubeconfig it starts the embedded store; with one it talks to that server", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-connect-"));
  const first = await connectStore({ db: join(dir, "state", "store.db"), env: {} });
  try {
    assert.ok(first.embedded, "the embedded server was started");
    assert.is(first.embedded.socketPath, join(dir, "state", "api.sock"));
    await first.store.create({ apiVersion: API_VERSION, kind: "Network", metadata: { name: "backend" }, spec: { type: "l3", ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 } } });
    // A second process would be handed a kubeconfig for the running server.
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, embeddedKubeConfig(first.embedded));
    const second = await connectStore({ kubeconfig, env: {} });
    assert.is(second.embedded, undefined);
    assert.equal((await second.store.list("Network")).items.map((n) => n.metadata.name), ["backend"]);
    await second.close();
  } finally {
    await first.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
