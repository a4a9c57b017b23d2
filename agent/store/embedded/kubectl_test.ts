/**
 * The embedded store as kubectl sees it: a real `kubectl` (PATH, or
 * $KUBECTL) against `lace store serve` on loopback TCP (HTTPS, bearer
 * token) through the kubeconfig the server writes. Apply with validation
 * on, get -o wide, categories, explain, server dry runs and diff, apply of a
 * two-container Pod (strategic merge), an EndpointSlice of
 * discovery.k8s.io, server-side apply with field
 * managers, delete with a finalizer, delete of a namespace, watch, and bad
 * input refused with the field named. Skipped, with the reason, where
 * no kubectl is installed.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";

const root = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
const KUBECTL = process.env.KUBECTL ?? "kubectl";
const found = spawnSync(KUBECTL, ["version", "--client", "-o", "json"], { encoding: "utf8" });
const minor = found.status === 0 ? Number(JSON.parse(found.stdout).clientVersion?.minor?.replace(/\D.*$/, "")) : 0;
const skipReason = found.status !== 0 ? `no kubectl found (${KUBECTL})` : minor < 27 ? `kubectl 1.${minor} is older than 1.27` : undefined;
if (skipReason) console.log(`kubectl suite skipped: ${skipReason}`);

interface Ctx {
  dir: string;
  kubeconfig: string;
  child?: ChildProcess;
}

const t = suite<Ctx>("kubectl against lace store serve", {} as Ctx);
const test = skipReason ? t.skip : t;

/** Starts `lace store serve` on a free loopback port; resolves once it says it is serving. */
function serve(ctx: Ctx): Promise<void> {
  ctx.dir = mkdtempSync(join(tmpdir(), "lace-kubectl-"));
  ctx.kubeconfig = join(ctx.dir, "kubeconfig");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(root, "agent/cli/main.ts"), "store", "serve", "--db", join(ctx.dir, "db", "store.db"), "--listen", "127.0.0.1:0", "--kubeconfig", ctx.kubeconfig],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  ctx.child = child;
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`lace store serve did not start within 20 s: ${out}`)), 20_000);
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("lace store: serving")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on("data", (d) => (out += d));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`lace store serve exited with ${code}: ${out}`));
    });
  });
}

t.before.each(async (ctx) => {
  if (!skipReason) await serve(ctx);
});

t.after.each(async (ctx) => {
  const child = ctx.child;
  if (child && child.exitCode === null && child.signalCode === null) {
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function kubectl(ctx: Ctx, args: string[], input?: string): Run {
  const r = spawnSync(KUBECTL, ["--kubeconfig", ctx.kubeconfig, ...args], { encoding: "utf8", input, cwd: root, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function ok(ctx: Ctx, args: string[], input?: string): string {
  const r = kubectl(ctx, args, input);
  assert.is(r.status, 0, `kubectl ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

const network = (name: string, prefix: string, extra = "") =>
  `apiVersion: lace-cni.io/v1alpha1\nkind: Network\nmetadata: {name: ${name}${extra}}\nspec: {type: l2, ipv4Subnet: {prefix: ${prefix}}}\n`;

test("apply -f examples/ with validation on, then get -o wide with the printer columns, categories and explain", (ctx) => {
  const applied = ok(ctx, ["apply", "-f", "examples/"]);
  assert.match(applied, /network\.lace-cni\.io\/backend created/);
  assert.match(applied, /pod\/web-0 created/);
  assert.match(ok(ctx, ["apply", "-f", "examples/"]), /network\.lace-cni\.io\/backend unchanged/);
  const wide = ok(ctx, ["get", "networks", "-o", "wide"]).split("\n");
  assert.match(wide[0], /^NAME\s+TYPE\s+IPV4\s+IPV6\s+ID\s+READY\s+AGE$/);
  assert.ok(wide.some((l) => /^backend\s+l3\s+10\.40\.0\.0\/16\s/.test(l)), wide.join("\n"));
  const lace = ok(ctx, ["get", "lace"]);
  assert.match(lace, /topology\.lace-cni\.io\/default/);
  assert.match(lace, /networkroutingpolicy\.lace-cni\.io\/backend-to-corp/);
  assert.match(ok(ctx, ["get", "all", "-n", "team-a"]), /pod\/web-0/);
  assert.match(ok(ctx, ["apply", "--server-side", "-f", "examples/networks.yaml"]), /network\.lace-cni\.io\/backend serverside-applied/);
  const explain = ok(ctx, ["explain", "network.spec"]);
  assert.match(explain, /KIND:\s+Network/);
  assert.match(explain, /ipv4Subnet\s+<Object>/);
  assert.match(explain, /type\s+<string> -required-/);
});

test("an EndpointSlice (discovery.k8s.io/v1) applies, round-trips, and get endpointslices -A lists it", (ctx) => {
  const file = join(ctx.dir, "slice.yaml");
  writeFileSync(file, [
    "apiVersion: v1",
    "kind: Namespace",
    "metadata: {name: shop}",
    "---",
    "apiVersion: discovery.k8s.io/v1",
    "kind: EndpointSlice",
    "metadata: {name: api-x7k2p, namespace: shop, labels: {kubernetes.io/service-name: api}}",
    "addressType: IPv4",
    "endpoints:",
    "- addresses: [10.40.1.5]",
    "  conditions: {ready: true}",
    "  nodeName: node-1",
    "  targetRef: {kind: Pod, namespace: shop, name: api-0}",
    "ports: [{name: web, protocol: TCP, port: 8080}]",
    "",
  ].join("\n"));
  assert.match(ok(ctx, ["apply", "-f", file]), /endpointslice\.discovery\.k8s\.io\/api-x7k2p created/);
  assert.match(ok(ctx, ["apply", "-f", file]), /endpointslice\.discovery\.k8s\.io\/api-x7k2p unchanged/);
  const lines = ok(ctx, ["get", "endpointslices", "-A"]).trim().split("\n");
  assert.match(lines[0], /^NAMESPACE\s+NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE$/);
  assert.match(lines[1], /^shop\s+api-x7k2p\s+IPv4\s+8080\s+10\.40\.1\.5\s/);
  const got = JSON.parse(ok(ctx, ["get", "endpointslice", "api-x7k2p", "-n", "shop", "-o", "json"]));
  assert.equal(got.endpoints, [{ addresses: ["10.40.1.5"], conditions: { ready: true }, nodeName: "node-1", targetRef: { kind: "Pod", namespace: "shop", name: "api-0" } }]);
  assert.equal(got.ports, [{ name: "web", protocol: "TCP", port: 8080 }]);
  assert.is(got.metadata.labels["kubernetes.io/service-name"], "api");
  assert.match(ok(ctx, ["get", "endpointslices", "-n", "shop", "-l", "kubernetes.io/service-name=api", "-o", "name"]), /^endpointslice\.discovery\.k8s\.io\/api-x7k2p$/m);
});

test("--dry-run=server and diff write nothing", (ctx) => {
  const file = join(ctx.dir, "dry.yaml");
  writeFileSync(file, network("dry", "10.99.0.0/24"));
  assert.match(ok(ctx, ["apply", "-f", file, "--dry-run=server"]), /created \(server dry run\)/);
  assert.match(ok(ctx, ["create", "-f", file, "--dry-run=server"]), /created \(server dry run\)/);
  const diff = kubectl(ctx, ["diff", "-f", file]);
  assert.is(diff.status, 1, `diff finds the new object: ${diff.stderr}`);
  assert.match(diff.stdout, /\+\s+prefix: 10\.99\.0\.0\/24/);
  assert.is(kubectl(ctx, ["get", "network", "dry"]).status, 1, "not created by dry runs or diff");
  ok(ctx, ["apply", "-f", file]);
  writeFileSync(file, network("dry", "10.98.0.0/24"));
  assert.match(ok(ctx, ["apply", "-f", file, "--dry-run=server"]), /configured \(server dry run\)/);
  assert.is(kubectl(ctx, ["diff", "-f", file]).status, 1);
  assert.match(ok(ctx, ["patch", "network", "dry", "--type=merge", "-p", '{"spec":{"anonymous":true}}', "--dry-run=server"]), /patched/);
  assert.match(ok(ctx, ["delete", "network", "dry", "--dry-run=server"]), /deleted \(server dry run\)/);
  const stored = JSON.parse(ok(ctx, ["get", "network", "dry", "-o", "json"]));
  assert.is(stored.spec.ipv4Subnet.prefix, "10.99.0.0/24");
  assert.is(stored.spec.anonymous, undefined);
});

test("apply changing one image of a two-container Pod keeps the other container (strategic merge)", (ctx) => {
  const pod = (b: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata: {name: two, namespace: default}\nspec:\n  containers:\n  - {name: a, image: "a:1"}\n  - {name: b, image: "${b}"}\n`;
  const file = join(ctx.dir, "pod.yaml");
  writeFileSync(file, pod("b:1"));
  ok(ctx, ["apply", "-f", file]);
  writeFileSync(file, pod("b:2"));
  assert.match(ok(ctx, ["apply", "-f", file]), /pod\/two configured/);
  const stored = ok(ctx, ["get", "pod", "two", "-o", "json"]);
  assert.equal(JSON.parse(stored).spec.containers, [{ name: "a", image: "a:1" }, { name: "b", image: "b:2" }]);
  assert.not.match(stored, /\$setElementOrder/);
});

test("delete waits for finalizers; removing the last one deletes", (ctx) => {
  ok(ctx, ["apply", "-f", "-"], network("held", "10.97.0.0/24", ", finalizers: [example.com/hold]"));
  ok(ctx, ["delete", "network", "held", "--wait=false"]);
  const marked = JSON.parse(ok(ctx, ["get", "network", "held", "-o", "json"]));
  assert.ok(marked.metadata.deletionTimestamp, "marked for deletion");
  ok(ctx, ["patch", "network", "held", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]']);
  assert.match(kubectl(ctx, ["get", "network", "held"]).stderr, /NotFound/);
});

test("apply --server-side: removed fields go, another manager's field is a conflict until --force-conflicts", (ctx) => {
  const config = (labels: string, prefix: string) =>
    `apiVersion: lace-cni.io/v1alpha1\nkind: Network\nmetadata: {name: ssa, labels: {${labels}}}\nspec: {type: l2, ipv4Subnet: {prefix: ${prefix}}}\n`;
  ok(ctx, ["apply", "--server-side", "-f", "-"], config('a: "1", b: "2"', "10.88.0.0/24"));
  ok(ctx, ["apply", "--server-side", "-f", "-"], config('a: "1"', "10.88.0.0/24"));
  assert.equal(JSON.parse(ok(ctx, ["get", "network", "ssa", "-o", "json"])).metadata.labels, { a: "1" });
  const conflict = kubectl(ctx, ["apply", "--server-side", "--field-manager=other", "-f", "-"], config('a: "1"', "10.89.0.0/24"));
  assert.is(conflict.status, 1);
  assert.match(conflict.stderr, /conflict with "kubectl": \.spec\.ipv4Subnet\.prefix/);
  ok(ctx, ["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"], config('a: "1"', "10.89.0.0/24"));
  const stored = JSON.parse(ok(ctx, ["get", "network", "ssa", "-o", "json", "--show-managed-fields"]));
  assert.is(stored.spec.ipv4Subnet.prefix, "10.89.0.0/24");
  assert.equal(stored.metadata.managedFields.map((m: { manager: string }) => m.manager), ["kubectl", "other"]);
});

test("delete namespace removes what is in it", (ctx) => {
  ok(ctx, ["apply", "-f", "examples/cluster.yaml"]);
  ok(ctx, ["delete", "namespace", "team-a"]);
  assert.match(kubectl(ctx, ["get", "namespace", "team-a"]).stderr, /NotFound/);
  assert.match(kubectl(ctx, ["get", "pods", "-n", "team-a"]).stderr, /No resources found/);
});

test("bad input is refused with the field and the value, and nothing is stored", (ctx) => {
  const bad = kubectl(ctx, ["apply", "-f", "-"], network("bad", "10.40.0.1/16"));
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /spec\.ipv4Subnet\.prefix: host bits set in "10\.40\.0\.1\/16"/);
  const name = kubectl(ctx, ["create", "-f", "-"], network("UPPER_case", "10.41.0.0/24"));
  assert.match(name.stderr, /metadata\.name: expected a DNS-1123 subdomain/);
  const rename = kubectl(ctx, ["patch", "namespace", "default", "--type=json", "-p", '[{"op":"replace","path":"/metadata/name","value":"x"}]']);
  assert.match(rename.stderr, /BadRequest/);
  assert.match(kubectl(ctx, ["get", "networks"]).stderr, /No resources found/);
  // --validate=false asks the server to drop unknown fields rather than refuse them.
  const loose = network("loose", "10.42.0.0/24").replace("type: l2,", "type: l2, colour: red,");
  assert.match(kubectl(ctx, ["create", "-f", "-"], loose).stderr, /spec\.colour: unknown field/);
  ok(ctx, ["create", "--validate=false", "-f", "-"], loose);
  assert.is(JSON.parse(ok(ctx, ["get", "network", "loose", "-o", "json"])).spec.colour, undefined);
});

test("get --watch follows changes as Tables", async (ctx) => {
  const watcher = spawn(KUBECTL, ["--kubeconfig", ctx.kubeconfig, "get", "networks", "--watch", "--output-watch-events"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  watcher.stdout.on("data", (d) => (out += d));
  watcher.stderr.on("data", (d) => (out += d));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    ok(ctx, ["apply", "-f", "-"], network("watched", "10.96.0.0/24"));
    ok(ctx, ["delete", "network", "watched"]);
    const until = Date.now() + 15_000;
    while (!/DELETED\s+watched/.test(out) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /ADDED\s+watched\s+l2\s+10\.96\.0\.0\/24/);
    assert.match(out, /DELETED\s+watched/);
  } finally {
    watcher.kill("SIGKILL");
  }
});

t.run();
