/**
 * The embedded API server's answers to the requests of issue 15, over
 * HTTPS as a client sends them: every bad input gets its status and changes
 * nothing; dry runs, finalizers, pages, Tables and OpenAPI; who may connect.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type EmbeddedServer, startEmbeddedServer } from "./server.ts";
import { SqliteStore } from "./sqlite_store.ts";

interface Ctx {
  dir: string;
  db: SqliteStore;
  server: EmbeddedServer;
}

const t = suite<Ctx>("embedded API server: Kubernetes semantics and safety", {} as Ctx);

t.before.each(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "lace-server-"));
  ctx.db = SqliteStore.open(join(ctx.dir, "store.db"));
  ctx.server = await startEmbeddedServer({ store: ctx.db, listen: "127.0.0.1:0" });
});

t.after.each(async (ctx) => {
  await ctx.server?.close();
  ctx.db?.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  body: any; // deno-lint-ignore no-explicit-any
  text: string;
}

/** One HTTPS request; `headers` replace the defaults (JSON, the server's token). */
function call(ctx: Ctx, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const all: Record<string, string> = {
    Authorization: `Bearer ${ctx.server.token}`,
    // Node sends a DELETE body without chunked encoding: say its length.
    ...(payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(payload)) }),
    ...headers,
  };
  for (const [k, v] of Object.entries(all)) if (v === "") delete all[k];
  return new Promise((resolve, reject) => {
    // The path goes as written: a URL object would resolve dot segments before sending.
    const { hostname, port } = new URL(ctx.server.url);
    const options = { host: hostname, port, path, method, headers: all, ca: ctx.server.certificate, servername: "localhost" };
    const req = httpsRequest(options, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => {
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const NETS = "/apis/lace-cni.io/v1alpha1/networks";
const net = (name: unknown, spec: unknown = { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } }, meta: Record<string, unknown> = {}) => ({
  apiVersion: "lace-cni.io/v1alpha1",
  kind: "Network",
  metadata: { name, ...meta },
  spec,
});

async function count(ctx: Ctx, path = NETS): Promise<number> {
  return (await call(ctx, "GET", path)).body.items.length;
}

t("bad Networks are 422 Invalid with a cause naming the field and the value; nothing is stored", async (ctx) => {
  const cases: [unknown, string, RegExp][] = [
    [net("a", { type: "l3", ipv4Subnet: { prefix: "10.40.0.1/16", hostLocalPrefixLength: 24 } }), "spec.ipv4Subnet.prefix", /10\.40\.0\.1\/16/],
    [net("a", { type: "bogus-type" }), "spec.type", /"bogus-type"/],
    [{ apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "a" } }, "spec", /is required/],
    [net("a", "hello"), "spec", /"hello"/],
    [net("a", { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" }, colour: "red" }), "spec.colour", /unknown field/],
    [net("a", undefined, { labels: { team: { nested: 1 } } }), "metadata.labels.team", /\{"nested":1\}/],
  ];
  for (const [body, field, value] of cases) {
    const r = await call(ctx, "POST", NETS, body);
    assert.is(r.status, 422, `${JSON.stringify(body)}: ${r.text}`);
    assert.is(r.body.reason, "Invalid");
    const cause = r.body.details.causes.find((c: { field: string }) => c.field === field);
    assert.ok(cause, `a cause at ${field}: ${r.text}`);
    assert.match(cause.message, value);
  }
  assert.is(await count(ctx), 0);
});

t("unknown fields: refused by default and with Strict, dropped with Ignore, dropped with a Warning header with Warn", async (ctx) => {
  const body = (name: string) => net(name, { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24", colour: "red" }, "tüpe": 1 });
  assert.is((await call(ctx, "POST", NETS, body("a"))).status, 422);
  assert.is((await call(ctx, "POST", `${NETS}?fieldValidation=Strict`, body("a"))).status, 422);
  const ignored = await call(ctx, "POST", `${NETS}?fieldValidation=Ignore`, body("a"));
  assert.is(ignored.status, 201, ignored.text);
  assert.equal(ignored.body.spec, { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } });
  const warned = await new Promise<string | string[] | undefined>((resolve, reject) => {
    const payload = JSON.stringify(body("b"));
    const { hostname, port } = new URL(ctx.server.url);
    const req = httpsRequest({
      host: hostname, port, path: `${NETS}?fieldValidation=Warn`, method: "POST", ca: ctx.server.certificate, servername: "localhost",
      headers: { Authorization: `Bearer ${ctx.server.token}`, "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(payload)) },
    }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.headers.warning));
    });
    req.on("error", reject);
    req.end(payload);
  });
  assert.match(String(warned), /299 - "unknown field \\"spec\.ipv4Subnet\.colour\\""/);
  assert.is((await call(ctx, "GET", `${NETS}/b`)).body.spec.ipv4Subnet.colour, undefined);
  assert.is((await call(ctx, "POST", `${NETS}?fieldValidation=Lax`, body("c"))).status, 400);
});

t("names: DNS-1123 or 422, never a 500; non-string names are 422 too", async (ctx) => {
  for (const name of ["../x", "a/b", "UPPER_case", "x".repeat(100_000), "a\nb", "net-😀", "", "-a"]) {
    const r = await call(ctx, "POST", NETS, net(name));
    assert.is(r.status, 422, `name ${JSON.stringify(name.slice(0, 20))}: ${r.text.slice(0, 200)}`);
    assert.is(r.body.details.causes[0].field, "metadata.name");
  }
  for (const name of [123, true, { a: 1 }, ["x"]]) {
    const r = await call(ctx, "POST", NETS, net(name));
    assert.is(r.status, 422, `name ${JSON.stringify(name)}: ${r.text}`);
    assert.match(r.body.message, /metadata\.name: expected a string/);
  }
  // A Namespace's name is a DNS-1123 label: no dots.
  assert.is((await call(ctx, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "a.b" } })).status, 422);
  assert.is(await count(ctx), 0);
});

t("namespaced objects need an existing namespace; the system namespaces exist from the start", async (ctx) => {
  const ns = (await call(ctx, "GET", "/api/v1/namespaces")).body.items.map((n: { metadata: { name: string } }) => n.metadata.name);
  assert.equal(ns, ["default", "kube-node-lease", "kube-public", "kube-system"]);
  const created = await call(ctx, "POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" }, status: { phase: "Terminating" } });
  assert.is(created.body.status.phase, "Active", "a new Namespace is Active, whatever the client said");
  const pod = (namespace: string) => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace }, spec: { containers: [] } });
  const r = await call(ctx, "POST", "/api/v1/namespaces/ghost/pods", pod("ghost"));
  assert.is(r.status, 404);
  assert.match(r.body.message, /namespaces "ghost" not found/);
  assert.is((await call(ctx, "POST", "/api/v1/namespaces/default/pods", pod("default"))).status, 201);
});

t("deleting a Namespace deletes its contents and waits for their finalizers; system namespaces stay", async (ctx) => {
  const NS = "/api/v1/namespaces";
  await call(ctx, "POST", NS, { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } });
  const pod = (name: string, finalizers?: string[]) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, finalizers }, spec: { containers: [] } });
  await call(ctx, "POST", `${NS}/team-a/pods`, pod("free"));
  await call(ctx, "POST", `${NS}/team-a/pods`, pod("held", ["example.com/hold"]));
  const del = await call(ctx, "DELETE", `${NS}/team-a`);
  assert.is(del.status, 200, del.text);
  const ns = (await call(ctx, "GET", `${NS}/team-a`)).body;
  assert.ok(ns.metadata.deletionTimestamp, "the Namespace waits for the held Pod");
  assert.is(ns.status.phase, "Terminating");
  assert.is((await call(ctx, "GET", `${NS}/team-a/pods/free`)).status, 404, "the free Pod is gone");
  const refused = await call(ctx, "POST", `${NS}/team-a/pods`, pod("late"));
  assert.is(refused.status, 422, "nothing new in a terminating namespace");
  assert.match(refused.body.message, /being terminated/);
  const held = (await call(ctx, "GET", `${NS}/team-a/pods/held`)).body;
  assert.ok(held.metadata.deletionTimestamp);
  await call(ctx, "PATCH", `${NS}/team-a/pods/held`, { metadata: { finalizers: null } }, { "Content-Type": "application/merge-patch+json" });
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    gone = (await call(ctx, "GET", `${NS}/team-a`)).status === 404;
    if (!gone) await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(gone, "the Namespace goes with its last object");
  assert.is((await call(ctx, "DELETE", `${NS}/default`)).status, 422);
  assert.is((await call(ctx, "DELETE", NS)).status, 405);
});

t("generateName, server-owned fields on create, PUT needs a resourceVersion, no renames by patch", async (ctx) => {
  const gen = await call(ctx, "POST", NETS, { ...net(undefined), metadata: { generateName: "auto-" } });
  assert.is(gen.status, 201, gen.text);
  assert.match(gen.body.metadata.name, /^auto-[a-z0-9]{5}$/);
  const created = await call(ctx, "POST", NETS, net("a", undefined, { deletionTimestamp: "2020-01-01T00:00:00Z", uid: "mine" }));
  assert.is(created.status, 201);
  assert.is(created.body.metadata.deletionTimestamp, undefined, "a client cannot create an object being deleted");
  assert.is.not(created.body.metadata.uid, "mine");
  assert.is((await call(ctx, "POST", NETS, net("b", undefined, { resourceVersion: "5" }))).status, 400);
  const { resourceVersion: _, ...metaWithoutVersion } = created.body.metadata;
  const put = await call(ctx, "PUT", `${NETS}/a`, { ...created.body, metadata: metaWithoutVersion });
  assert.is(put.status, 422);
  assert.is(put.body.details.causes[0].field, "metadata.resourceVersion");
  const rename = await call(ctx, "PATCH", `${NETS}/a`, [{ op: "replace", path: "/metadata/name", value: "b" }], { "Content-Type": "application/json-patch+json" });
  assert.is(rename.status, 400);
  assert.match(rename.body.message, /metadata\.name/);
  const renameMerge = await call(ctx, "PATCH", `${NETS}/a`, { metadata: { name: "b" } }, { "Content-Type": "application/merge-patch+json" });
  assert.is(renameMerge.status, 400);
  assert.is((await call(ctx, "GET", `${NETS}/b`)).status, 404);
  const smp = await call(ctx, "PATCH", `${NETS}/a`, { spec: { anonymous: true } }, { "Content-Type": "application/strategic-merge-patch+json" });
  assert.is(smp.status, 415, "strategic merge on a custom resource, as a real API server");
  assert.match(smp.body.message, /application\/merge-patch\+json/);
});

t("dryRun=All on POST, PUT, PATCH and DELETE answers as if written and writes nothing", async (ctx) => {
  const before = ctx.db.resourceVersion;
  const dryCreate = await call(ctx, "POST", `${NETS}?dryRun=All`, net("dry"));
  assert.is(dryCreate.status, 201);
  assert.is(dryCreate.body.metadata.name, "dry");
  assert.is((await call(ctx, "GET", `${NETS}/dry`)).status, 404);
  assert.is(ctx.db.resourceVersion, before, "no version used");
  const a = (await call(ctx, "POST", NETS, net("a"))).body;
  const put = await call(ctx, "PUT", `${NETS}/a?dryRun=All`, { ...a, spec: { ...a.spec, anonymous: true } });
  assert.is(put.status, 200);
  assert.is(put.body.spec.anonymous, true);
  const patch = await call(ctx, "PATCH", `${NETS}/a?dryRun=All`, { metadata: { labels: { x: "1" } } }, { "Content-Type": "application/merge-patch+json" });
  assert.equal(patch.body.metadata.labels, { x: "1" });
  assert.is((await call(ctx, "DELETE", `${NETS}/a?dryRun=All`)).status, 200);
  assert.is((await call(ctx, "DELETE", `${NETS}/a`, { dryRun: ["All"] })).status, 200, "dryRun in DeleteOptions");
  const stored = (await call(ctx, "GET", `${NETS}/a`)).body;
  assert.equal(stored, a, "unchanged by every dry run");
  assert.is((await call(ctx, "POST", `${NETS}?dryRun=Some`, net("x"))).status, 400);
  const invalid = await call(ctx, "POST", `${NETS}?dryRun=All`, net("Bad"));
  assert.is(invalid.status, 422, "a dry run validates too");
});

t("finalizers: DELETE marks, an update removing the last finalizer deletes; none can be added while deleting", async (ctx) => {
  await call(ctx, "POST", NETS, net("held", undefined, { finalizers: ["example.com/a"] }));
  const del = await call(ctx, "DELETE", `${NETS}/held`);
  assert.is(del.status, 200);
  assert.ok(del.body.metadata.deletionTimestamp);
  const marked = (await call(ctx, "GET", `${NETS}/held`)).body;
  assert.is(marked.metadata.deletionTimestamp, del.body.metadata.deletionTimestamp);
  const add = await call(ctx, "PATCH", `${NETS}/held`, { metadata: { finalizers: ["example.com/a", "example.com/b"] } }, { "Content-Type": "application/merge-patch+json" });
  assert.is(add.status, 422);
  const clear = await call(ctx, "PATCH", `${NETS}/held`, { metadata: { finalizers: null } }, { "Content-Type": "application/merge-patch+json" });
  assert.is(clear.status, 200);
  assert.is((await call(ctx, "GET", `${NETS}/held`)).status, 404);
});

t("limit and continue page through a list; a bad token is refused", async (ctx) => {
  for (let i = 0; i < 5; i++) await call(ctx, "POST", NETS, net(`n${i}`, { type: "l2", ipv4Subnet: { prefix: `10.${i}.0.0/24` } }));
  const names: string[] = [];
  let token = "";
  let pages = 0;
  do {
    const r = await call(ctx, "GET", `${NETS}?limit=2${token ? `&continue=${encodeURIComponent(token)}` : ""}`);
    assert.is(r.status, 200);
    names.push(...r.body.items.map((i: { metadata: { name: string } }) => i.metadata.name));
    token = r.body.metadata.continue ?? "";
    pages++;
  } while (token);
  assert.equal(names, ["n0", "n1", "n2", "n3", "n4"]);
  assert.is(pages, 3);
  assert.is((await call(ctx, "GET", `${NETS}?limit=2&continue=garbage`)).status, 422);
  assert.is((await call(ctx, "GET", `${NETS}?limit=-1`)).status, 400);
});

t("Table responses carry the CRD's printer columns; OpenAPI v2 and v3 describe the kinds", async (ctx) => {
  await call(ctx, "POST", NETS, net("a"));
  const table = await call(ctx, "GET", NETS, undefined, { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" });
  assert.is(table.body.kind, "Table");
  assert.equal(table.body.columnDefinitions.map((c: { name: string }) => c.name), ["Name", "Type", "IPv4", "IPv6", "ID", "Ready", "Age"]);
  assert.equal(table.body.rows[0].cells.slice(0, 6), ["a", "l2", "10.50.0.0/24", null, null, null]);
  assert.is(table.body.rows[0].object.kind, "PartialObjectMetadata");
  const v2 = (await call(ctx, "GET", "/openapi/v2")).body;
  assert.ok(v2.definitions["io.lace-cni.v1alpha1.Network"].properties.spec.properties.ipv4Subnet);
  const index = (await call(ctx, "GET", "/openapi/v3")).body;
  const url = index.paths["apis/lace-cni.io/v1alpha1"].serverRelativeURL;
  const v3 = (await call(ctx, "GET", url)).body;
  assert.equal(v3.components.schemas["io.lace-cni.v1alpha1.Network"]["x-kubernetes-group-version-kind"], [{ group: "lace-cni.io", version: "v1alpha1", kind: "Network" }]);
  const discovery = (await call(ctx, "GET", "/apis/lace-cni.io/v1alpha1")).body;
  assert.equal(discovery.resources.find((r: { name: string }) => r.name === "networks").categories, ["lace"]);
});

t("paths: dot segments and broken percent-encoding are 400, never resolved", async (ctx) => {
  assert.is((await call(ctx, "DELETE", "/api/v1/namespaces/default/pods/%2e%2e")).status, 400);
  assert.is((await call(ctx, "DELETE", "/api/v1/namespaces/default/pods/..")).status, 400);
  assert.is((await call(ctx, "GET", `${NETS}/%E0%A4%A`)).status, 400);
  assert.is((await call(ctx, "GET", "/api/v1/namespaces/default")).status, 200, "the namespace is still there");
  const del = await call(ctx, "DELETE", "/api/v1/namespaces/default", { preconditions: { resourceVersion: 5 } });
  assert.is(del.status, 400);
});

t("TCP needs the bearer token; browsers and other media types are refused", async (ctx) => {
  assert.is((await call(ctx, "GET", NETS, undefined, { Authorization: "" })).status, 401);
  assert.is((await call(ctx, "GET", NETS, undefined, { Authorization: "Bearer wrong" })).status, 401);
  const textPlain = await call(ctx, "POST", NETS, JSON.stringify(net("x")), { "Content-Type": "text/plain" });
  assert.is(textPlain.status, 415);
  assert.match(textPlain.body.message, /text\/plain/);
  assert.is((await call(ctx, "POST", NETS, net("x"), { Origin: "https://evil.example" })).status, 403);
  assert.is((await call(ctx, "GET", NETS, undefined, { Host: "evil.example" })).status, 403);
  assert.is(await count(ctx), 0);
  // Plain HTTP to the TLS port is not served.
  const port = new URL(ctx.server.url).port;
  const plain = await new Promise<number>((resolve) => {
    const req = httpRequest({ host: "127.0.0.1", port, path: NETS }, (res) => resolve(res.statusCode ?? 0));
    req.on("error", () => resolve(-1));
    req.end();
  });
  assert.ok(plain === -1 || plain === 400, `plain HTTP refused, got ${plain}`);
});

t("the database and its WAL are 0600", async (ctx) => {
  await call(ctx, "POST", NETS, net("a"));
  for (const f of ["store.db", "store.db-wal"]) assert.is(statSync(join(ctx.dir, f)).mode & 0o777, 0o600, f);
});

t("a unix socket path must be free or a dead socket: a file or a live server is refused", async (ctx) => {
  const file = join(ctx.dir, "not-a-socket");
  writeFileSync(file, "keep me");
  const other = SqliteStore.open(":memory:");
  try {
    let err = "";
    await startEmbeddedServer({ store: other, listen: `unix:${file}` }).catch((e) => (err = (e as Error).message));
    assert.match(err, /exists and is a regular file/);
    assert.is(statSync(file).size, 7, "the file is untouched");
    const sock = join(ctx.dir, "live.sock");
    const live = await startEmbeddedServer({ store: ctx.db, listen: `unix:${sock}` });
    try {
      err = "";
      await startEmbeddedServer({ store: other, listen: `unix:${sock}` }).catch((e) => (err = (e as Error).message));
      assert.match(err, /another server is listening on this socket/);
    } finally {
      await live.close();
    }
    // A socket nobody answers on (a crashed server's) is taken over.
    const stale = join(ctx.dir, "stale.sock");
    const dead = createNetServer();
    await new Promise<void>((r) => dead.listen(stale, r));
    // Close the listener but leave the file, as a killed process does.
    (dead as unknown as { _handle: { close(): void } })._handle.close();
    const taken = await startEmbeddedServer({ store: other, listen: `unix:${stale}` });
    assert.is(statSync(stale).mode & 0o777, 0o600);
    await taken.close();
  } finally {
    other.close();
  }
});

t.run();
