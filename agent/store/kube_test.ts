/**
 * Kubernetes-specific behaviour of KubeStore and the Informer, against the
 * embedded server's real HTTP responses: 410 → relist, bookmarks, conflict
 * retries, the status subresource, selectors, discovery, JSON patch.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { KubernetesObjectApi } from "@kubernetes/client-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { API_VERSION, isStoreError, type Network, type Resource, type WatchEvent } from "../../core/mod.ts";
import { type EmbeddedServer, parseListen, startEmbeddedServer } from "./embedded/server.ts";
import { SqliteStore } from "./embedded/sqlite_store.ts";
import { Informer } from "./informer.ts";
import { KubeStore } from "./kube.ts";
import { embeddedKubeConfig, loadKubeConfig } from "./kubeconfig.ts";

interface Ctx {
  dir: string;
  db: SqliteStore;
  server: EmbeddedServer;
  store: KubeStore;
  cleanup: (() => void)[];
}

const t = suite<Ctx>("KubeStore and Informer against the embedded API server", {} as Ctx);

async function setUp(ctx: Ctx, opts: { watchHistory?: number; bookmarkIntervalMs?: number } = {}): Promise<void> {
  ctx.dir = mkdtempSync(join(tmpdir(), "lace-kube-"));
  ctx.db = SqliteStore.open(join(ctx.dir, "store.db"), { watchHistory: opts.watchHistory });
  // TCP here (the conformance suite covers the unix socket).
  ctx.server = await startEmbeddedServer({ store: ctx.db, listen: "127.0.0.1:0", bookmarkIntervalMs: opts.bookmarkIntervalMs });
  ctx.store = new KubeStore(loadKubeConfig({ text: embeddedKubeConfig(ctx.server) }), { reconnectDelayMs: 10 });
  ctx.cleanup = [];
}

t.after.each(async (ctx) => {
  for (const c of ctx.cleanup ?? []) c();
  await ctx.server?.close();
  ctx.db?.close();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

const net = (name: string, labels?: Record<string, string>): Network => ({
  apiVersion: API_VERSION,
  kind: "Network",
  metadata: { name, ...(labels ? { labels } : {}) },
  spec: { type: "l3", ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 } },
});

async function eventually(cond: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > until) assert.unreachable(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  return assert.unreachable("expected a failure") as never;
}

/** A version older than `o`'s: stale for any write. */
const created_rv = (o: Resource) => String(Number(o.metadata.resourceVersion) - 1);

async function http(ctx: Ctx, method: string, path: string, body?: unknown, contentType = "application/json") {
  const headers: Record<string, string> = {
    ...(body === undefined ? {} : { "Content-Type": contentType }),
    ...(ctx.server.token ? { Authorization: `Bearer ${ctx.server.token}` } : {}),
  };
  // HTTPS with the server's own certificate as the only trusted root.
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpsRequest(ctx.server.url + path, { method, headers, ca: ctx.server.certificate }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
  return { status, body: text ? JSON.parse(text.split("\n")[0]) : undefined, text };
}

t("the informer lists, then follows adds, updates and deletes", async (ctx) => {
  await setUp(ctx);
  await ctx.store.create(net("a"));
  const seen: string[] = [];
  const inf = new Informer<Network>(ctx.store, "Network")
    .on("add", (o) => seen.push(`add ${o.metadata.name}`))
    .on("update", (o) => seen.push(`update ${o.metadata.name}`))
    .on("delete", (o) => seen.push(`delete ${o.metadata.name}`));
  ctx.cleanup.push(() => inf.stop());
  await inf.start();
  assert.equal(seen, ["add a"]);
  await ctx.store.create(net("b"));
  await ctx.store.patch("Network", "a", undefined, { metadata: { labels: { x: "1" } } });
  await ctx.store.delete("Network", "b");
  await eventually(() => seen.length >= 4, "four informer events");
  assert.equal(seen, ["add a", "add b", "update a", "delete b"]);
  assert.equal(inf.list().map((o) => o.metadata.name), ["a"]);
  assert.equal(inf.get("a")?.metadata.labels, { x: "1" });
  assert.is(inf.lists, 1);
});

t("a watch that cannot resume (410 Expired) makes the informer relist, and it catches up with deletions", async (ctx) => {
  await setUp(ctx, { watchHistory: 3 });
  await ctx.store.create(net("keep"));
  await ctx.store.create(net("doomed"));
  const deleted: string[] = [];
  const errors: unknown[] = [];
  const inf = new Informer<Network>(ctx.store, "Network").on("delete", (o) => deleted.push(o.metadata.name)).on("error", (e) => errors.push(e));
  ctx.cleanup.push(() => inf.stop());
  await inf.start();
  const before = inf.resourceVersion;
  // In one tick: the server drops the watch streams and moves on by more than
  // its history before any client can reconnect, so the resume gets a 410.
  ctx.server.closeWatches();
  ctx.db.deleteSync("Network", "doomed");
  for (const n of ["c", "d", "e", "f"]) ctx.db.createSync(net(n));
  await eventually(() => inf.lists >= 2 && inf.list().length === 5, "the relist");
  assert.equal(inf.list().map((o) => o.metadata.name).sort(), ["c", "d", "e", "f", "keep"]);
  assert.equal(deleted, ["doomed"]);
  assert.ok(Number(inf.resourceVersion) > Number(before));
  assert.equal(errors, [], "a 410 is a relist, not an error");
  // And it keeps following after the relist.
  await ctx.store.create(net("g"));
  await eventually(() => inf.get("g") !== undefined, "an event after the relist");
});

t("the server answers a too-old watch with an ERROR event carrying a 410 Expired Status", async (ctx) => {
  await setUp(ctx, { watchHistory: 2 });
  for (const n of ["a", "b", "c", "d"]) await ctx.store.create(net(n));
  const r = await http(ctx, "GET", "/apis/lace-cni.io/v1alpha1/networks?watch=1&resourceVersion=1");
  assert.is(r.status, 200);
  assert.is(r.body.type, "ERROR");
  assert.is(r.body.object.kind, "Status");
  assert.is(r.body.object.code, 410);
  assert.is(r.body.object.reason, "Expired");
  const w = ctx.store.watch("Network", { resourceVersion: "1" }, () => {});
  const err = await w.done.then(() => undefined, (e) => e);
  assert.ok(isStoreError(err, "Gone"), `KubeStore maps it to Gone: ${err}`);
});

t("bookmarks advance a watcher's version while its kind is quiet", async (ctx) => {
  await setUp(ctx, { bookmarkIntervalMs: 20 });
  const { resourceVersion } = await ctx.store.list("Network");
  const events: WatchEvent<Resource>[] = [];
  const w = ctx.store.watch("Network", { resourceVersion }, (e) => events.push(e));
  ctx.cleanup.push(() => w.stop());
  const pod: Resource = await ctx.store.create<Resource>({ apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "default" }, spec: { containers: [] } });
  await eventually(
    () => events.some((e) => e.type === "BOOKMARK" && Number(e.object.metadata.resourceVersion) >= Number(pod.metadata.resourceVersion)),
    "a bookmark past the Pod write",
  );
  assert.ok(events.every((e) => e.type === "BOOKMARK"), "no Network events, only bookmarks");
});

t("modify retries on a real 409 Conflict and keeps both writers' changes", async (ctx) => {
  await setUp(ctx);
  await ctx.store.create(net("backend"));
  const other = new KubeStore(loadKubeConfig({ text: embeddedKubeConfig(ctx.server) }));
  let attempts = 0;
  const out = await ctx.store.modify<Network>("Network", "backend", undefined, async (n) => {
    attempts++;
    if (attempts === 1) {
      // Someone else writes between our read and our write.
      await other.patch("Network", "backend", undefined, { metadata: { labels: { other: "yes" } } });
    }
    n.metadata.labels = { ...n.metadata.labels, mine: "yes" };
  });
  assert.is(attempts, 2);
  assert.equal(out.metadata.labels, { other: "yes", mine: "yes" });
  const stale = await http(ctx, "PUT", "/apis/lace-cni.io/v1alpha1/networks/backend", {
    ...net("backend"),
    metadata: { name: "backend", resourceVersion: created_rv(out) },
  });
  assert.is(stale.status, 409);
  assert.is(stale.body.kind, "Status");
  assert.is(stale.body.reason, "Conflict");
  const dup = await http(ctx, "POST", "/apis/lace-cni.io/v1alpha1/networks", net("backend"));
  assert.is(dup.status, 409);
  assert.is(dup.body.reason, "AlreadyExists");
  const missing = await http(ctx, "GET", "/apis/lace-cni.io/v1alpha1/networks/absent");
  assert.is(missing.status, 404);
  assert.is(missing.body.reason, "NotFound");
});

t("status subresource over HTTP: create drops status, PUT ignores it, /status ignores spec, patchStatus", async (ctx) => {
  await setUp(ctx);
  const created = await ctx.store.create({ ...net("backend"), status: { id: 9 } });
  assert.is(created.status, undefined, "create cannot set status of a lace kind");
  const s1 = await ctx.store.patchStatus<Network>("Network", "backend", undefined, { status: { id: 3 } });
  assert.equal(s1.status, { id: 3 });
  const s2 = await ctx.store.patch<Network>("Network", "backend", undefined, { status: { id: 4 }, metadata: { labels: { a: "b" } } });
  assert.equal(s2.status, { id: 3 }, "a main-resource patch ignores status");
  assert.equal(s2.metadata.labels, { a: "b" });
  const put = await ctx.store.update<Network>({ ...s2, status: { id: 5 } });
  assert.equal(put.status, { id: 3 }, "PUT on the main resource ignores status");
  const r = await http(ctx, "GET", "/apis/lace-cni.io/v1alpha1/networks/backend/status");
  assert.is(r.status, 200);
  assert.equal(r.body.status, { id: 3 });
  const noStatus = await http(ctx, "PUT", "/apis/lace-cni.io/v1alpha1/fdbentries/x/status", {});
  assert.is(noStatus.status, 404, "FDBEntry has no status subresource");
});

t("JSON patch, set-based label selectors and field selectors", async (ctx) => {
  await setUp(ctx);
  await ctx.store.create(net("a", { tier: "web" }));
  await ctx.store.create(net("b", { tier: "api" }));
  await ctx.store.create(net("c", { tier: "db" }));
  const names = async (labelSelector: string) => (await ctx.store.list("Network", { labelSelector })).items.map((i) => i.metadata.name);
  assert.equal(await names("tier in (web,api)"), ["a", "b"]);
  assert.equal(await names("tier notin (web,api)"), ["c"]);
  const p = await http(ctx, "PATCH", "/apis/lace-cni.io/v1alpha1/networks/a", [
    { op: "test", path: "/spec/type", value: "l3" },
    { op: "add", path: "/metadata/labels/zone", value: "z1" },
    { op: "replace", path: "/spec/anonymous", value: true },
  ], "application/json-patch+json");
  assert.is(p.status, 422, "replace of a missing path is refused");
  const ok = await http(ctx, "PATCH", "/apis/lace-cni.io/v1alpha1/networks/a", [
    { op: "add", path: "/metadata/labels/zone", value: "z1" },
    { op: "add", path: "/spec/anonymous", value: true },
  ], "application/json-patch+json");
  assert.is(ok.status, 200);
  assert.equal(ok.body.metadata.labels, { tier: "web", zone: "z1" });
  assert.is(ok.body.spec.anonymous, true);
  for (const [name, node] of [["p1", "node-1"], ["p2", "node-2"]]) {
    await ctx.store.create({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "default" }, spec: { nodeName: node, containers: [] } });
  }
  const onNode1 = await http(ctx, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1");
  assert.is(onNode1.body.kind, "PodList");
  assert.equal(onNode1.body.items.map((i: Resource) => i.metadata.name), ["p1"]);
});

t("discovery is enough for client-node's generic KubernetesObjectApi", async (ctx) => {
  await setUp(ctx);
  await ctx.store.create(net("backend"));
  const api = KubernetesObjectApi.makeApiClient(loadKubeConfig({ text: embeddedKubeConfig(ctx.server) }));
  const got = await api.read({ apiVersion: API_VERSION, kind: "Network", metadata: { name: "backend" } });
  assert.is(got.metadata?.name, "backend");
  const ns = await api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } });
  assert.is(ns.metadata?.name, "team-a");
  const groups = await http(ctx, "GET", "/apis");
  assert.is(groups.body.groups[0].name, "lace-cni.io");
});

t("core kinds through CoreV1Api: update, status, patch, delete of a Pod; Events", async (ctx) => {
  await setUp(ctx);
  type Pod = Resource<{ nodeName?: string; containers: unknown[] }, { phase?: string }>;
  await ctx.store.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } });
  const pod = await ctx.store.create<Pod>({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "team-a" },
    spec: { nodeName: "node-1", containers: [{ name: "c", image: "busybox" }] },
  });
  const withStatus = await ctx.store.updateStatus<Pod>({ ...pod, status: { phase: "Running" } });
  assert.is(withStatus.status?.phase, "Running");
  const labelled = await ctx.store.update<Pod>({ ...withStatus, metadata: { ...withStatus.metadata, labels: { tier: "web" } } });
  assert.equal(labelled.metadata.labels, { tier: "web" });
  assert.is(labelled.status?.phase, "Running");
  const patched = await ctx.store.patch<Pod>("Pod", "web", "team-a", { metadata: { annotations: { "lace-cni.io/network": "backend" } } });
  assert.is(patched.metadata.annotations?.["lace-cni.io/network"], "backend");
  assert.is(typeof patched.metadata.creationTimestamp, "string", "plain JSON, not client-node model classes");
  await ctx.store.delete("Pod", "web", "team-a", { resourceVersion: patched.metadata.resourceVersion });
  assert.is(await ctx.store.get("Pod", "web", "team-a"), undefined);
  const event = await ctx.store.create<Resource>({
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: "web.1", namespace: "team-a" },
    involvedObject: { kind: "Pod", name: "web", namespace: "team-a" },
    reason: "Bound",
    message: "bound to network backend",
    type: "Normal",
  } as Resource);
  assert.is((event as unknown as { reason: string }).reason, "Bound");
  assert.equal((await ctx.store.list("Event", { namespace: "team-a" })).items.map((e) => e.metadata.name), ["web.1"]);
  assert.match(await failure(ctx.store.updateStatus(event)), /has no status subresource/);
  assert.match(await failure(ctx.store.get("Pod", "web")), /metadata.namespace is required/);
  assert.match(await failure(ctx.store.get("Gadget", "x")), /Unknown kind "Gadget"/);
});

t("EndpointSlices (discovery.k8s.io/v1) round-trip: create, get, list by service, update, watch; discovery lists the group", async (ctx) => {
  await setUp(ctx);
  await ctx.store.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } });
  const slice = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "api-x7k2p", namespace: "shop", labels: { "kubernetes.io/service-name": "api" } },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.40.1.5"], conditions: { ready: true }, nodeName: "node-1", targetRef: { kind: "Pod", namespace: "shop", name: "api-0" } }],
    ports: [{ name: "web", protocol: "TCP", port: 8080 }],
  } as unknown as Resource;
  const seen: string[] = [];
  const inf = new Informer<Resource>(ctx.store, "EndpointSlice", { resyncMs: 0 });
  inf.on("add", (o) => seen.push(`add ${o.metadata.name}`));
  inf.on("update", (o) => seen.push(`update ${(o as unknown as { endpoints: unknown[] }).endpoints.length}`));
  await inf.start();
  ctx.cleanup.push(() => inf.stop());
  const created = await ctx.store.create(slice);
  const { metadata: _m, ...fields } = slice as unknown as Record<string, unknown>;
  const got = await ctx.store.get<Resource>("EndpointSlice", "api-x7k2p", "shop");
  assert.equal({ ...got, metadata: undefined }, { ...fields, metadata: undefined }, "every field of the slice as written");
  assert.is(created.metadata.resourceVersion, got?.metadata.resourceVersion);
  const listed = await ctx.store.list<Resource>("EndpointSlice", { labelSelector: "kubernetes.io/service-name=api" });
  assert.equal(listed.items.map((o) => [o.kind, o.apiVersion, o.metadata.name]), [["EndpointSlice", "discovery.k8s.io/v1", "api-x7k2p"]]);
  assert.equal((await ctx.store.list("EndpointSlice", { labelSelector: "kubernetes.io/service-name=db" })).items, []);
  // A built-in kind, not a custom resource: an update needs no resourceVersion, and there is no status subresource.
  const { resourceVersion: _rv, ...meta } = got!.metadata;
  await ctx.store.update({ ...got!, metadata: meta, endpoints: [] } as Resource);
  await eventually(() => seen.includes("update 0"), "the informer to see the update");
  assert.equal(seen, ["add api-x7k2p", "update 0"]);
  assert.match(await failure(ctx.store.updateStatus(got!)), /has no status subresource/);
  const groups = await http(ctx, "GET", "/apis");
  assert.equal(groups.body.groups.map((g: { name: string }) => g.name), ["lace-cni.io", "discovery.k8s.io"]);
  const resources = await http(ctx, "GET", "/apis/discovery.k8s.io/v1");
  assert.equal(resources.body.resources.map((r: { name: string }) => r.name), ["endpointslices"]);
});

t("the unix socket is private to its owner", async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "lace-kube-"));
  ctx.db = SqliteStore.open(":memory:");
  ctx.cleanup = [];
  ctx.server = await startEmbeddedServer({ store: ctx.db, listen: `unix:${join(ctx.dir, "api.sock")}` });
  assert.is(statSync(join(ctx.dir, "api.sock")).mode & 0o777, 0o600);
});

t("the server refuses to listen anywhere but a unix socket or loopback", () => {
  assert.equal(parseListen("unix:/run/lace/api.sock"), { kind: "unix", path: "/run/lace/api.sock" });
  assert.equal(parseListen("127.0.0.1:6443"), { kind: "tcp", host: "127.0.0.1", port: 6443 });
  assert.equal(parseListen("[::1]:6443"), { kind: "tcp", host: "::1", port: 6443 });
  assert.throws(() => parseListen("0.0.0.0:6443"), /unix socket or loopback only/);
  assert.throws(() => parseListen("10.0.0.1:6443"), /unix socket or loopback only/);
  assert.throws(() => parseListen("6443"), /expected unix:<path> or 127.0.0.1:<port>/);
});

t.run();
