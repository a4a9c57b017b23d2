import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type Allocation, API_VERSION, type Network, type Resource, type Topology } from "../../core/mod.ts";
import { network } from "../../core/controller/testing.ts";
import { connectStore } from "../store/connect.ts";
import { runController } from "./controller.ts";

const t = suite("cli/controller");

t("lace controller --once converges the embedded store: ids, locators, blocks, conditions, events", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-controller-"));
  const db = join(dir, "store.db");
  try {
    const seed = await connectStore({ db, env: {} });
    const objects: Resource[] = [
      { apiVersion: API_VERSION, kind: "Topology", metadata: { name: "default" }, spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48 } },
      { apiVersion: "v1", kind: "Node", metadata: { name: "node-1" } },
      network("backend", { ipv4: "10.40.0.0/16" }),
      { apiVersion: API_VERSION, kind: "NetworkBindingPolicy", metadata: { name: "all" }, spec: { network: "backend", priority: 1, matchKind: "Pod" } },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "web-0", namespace: "shop" }, spec: { nodeName: "node-1", containers: [{ name: "c", image: "pause" }] } },
    ];
    for (const o of objects) await seed.store.create(o);
    await seed.close();

    const code = await runController({ db, once: true, resync: 30_000, nodeGrace: 300_000, logLevel: "silent" });
    assert.is(code, 0);

    const check = await connectStore({ db, env: {} });
    try {
      const net = (await check.store.get<Network>("Network", "backend"))!;
      assert.is(net.status?.id, 1);
      assert.equal(net.status?.conditions?.map((c) => `${c.type}=${c.status}`), ["Accepted=True", "Ready=True"]);
      const topo = (await check.store.get<Topology>("Topology", "default"))!;
      assert.equal(topo.status?.locators, { "node-1": "fd00:1ace:1::/48" });
      const alloc = (await check.store.get<Allocation>("Allocation", "backend.node-1"))!;
      assert.equal(alloc.spec?.blocks.map((b) => b.prefix), ["10.40.0.0/24"]);
      const events = (await check.store.list<Resource & { reason: string }>("Event", { namespace: "default" })).items;
      assert.ok(events.some((e) => e.reason === "Accepted"), "an event says the network was accepted");
    } finally {
      await check.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
