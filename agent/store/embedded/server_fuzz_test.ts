/**
 * No client input makes the embedded API server answer 500: random JSON
 * (fast-check) as bodies of creates, updates and every patch type, and as
 * the name, labels or spec of an otherwise valid object. Each answer is a
 * 2xx or a 4xx Status, and a refused request changes nothing.
 */
import { request as httpsRequest } from "node:https";
import fc from "fast-check";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type EmbeddedServer, startEmbeddedServer } from "./server.ts";
import { SqliteStore } from "./sqlite_store.ts";

const t = suite("embedded API server: random input never gives a 500");

function call(server: EmbeddedServer, method: string, path: string, payload: string, type: string): Promise<{ status: number; text: string }> {
  const headers = { Authorization: `Bearer ${server.token}`, "Content-Type": type, "Content-Length": String(Buffer.byteLength(payload)) };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(server.url + path, { method, headers, ca: server.certificate }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const NET = "/apis/lace-cni.io/v1alpha1/networks";
const valid = { apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "base" }, spec: { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } } };

t("random bodies, names, labels, specs and patches get a 2xx or 4xx, never a 500", async () => {
  const store = SqliteStore.open(":memory:");
  const server = await startEmbeddedServer({ store, listen: "127.0.0.1:0" });
  try {
    const created = await call(server, "POST", NET, JSON.stringify(valid), "application/json");
    assert.is(created.status, 201);
    const json = fc.jsonValue({ maxDepth: 3 });
    const requests = fc.oneof(
      json.map((b) => ["POST", NET, JSON.stringify(b), "application/json"] as const),
      json.map((b) => ["PUT", `${NET}/base`, JSON.stringify(b), "application/json"] as const),
      json.map((b) => ["PATCH", `${NET}/base`, JSON.stringify(b), "application/merge-patch+json"] as const),
      json.map((b) => ["PATCH", `${NET}/base`, JSON.stringify(b), "application/json-patch+json"] as const),
      json.map((b) => ["PATCH", "/api/v1/namespaces/default", JSON.stringify(b), "application/strategic-merge-patch+json"] as const),
      json.map((b) => ["PATCH", `${NET}/base?fieldManager=f`, JSON.stringify(b), "application/apply-patch+yaml"] as const),
      json.map((b) => ["POST", NET, JSON.stringify({ ...valid, metadata: { name: b } }), "application/json"] as const),
      json.map((b) => ["POST", NET, JSON.stringify({ ...valid, metadata: { name: "x", labels: b } }), "application/json"] as const),
      json.map((b) => ["POST", NET, JSON.stringify({ ...valid, metadata: { name: "y" }, spec: b }), "application/json"] as const),
      fc.array(fc.record({ op: fc.constantFrom("add", "remove", "replace", "move", "copy", "test", "bogus"), path: json, from: json, value: json }, { requiredKeys: ["op"] }))
        .map((ops) => ["PATCH", `${NET}/base`, JSON.stringify(ops), "application/json-patch+json"] as const),
      fc.string().map((s) => ["POST", NET, s, "application/json"] as const),
      fc.string().map((s) => ["POST", NET, s, "application/yaml"] as const),
    );
    await fc.assert(
      fc.asyncProperty(requests, async ([method, path, payload, type]) => {
        const r = await call(server, method, path, payload, type);
        assert.ok(r.status < 500, `${method} ${path} ${type} ${payload.slice(0, 200)} → ${r.status} ${r.text.slice(0, 300)}`);
        if (r.status >= 400) assert.match(r.text, /"kind":"Status"/);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 400) },
    );
  } finally {
    await server.close();
    store.close();
  }
});

t.run();
