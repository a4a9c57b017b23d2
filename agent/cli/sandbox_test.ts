/**
 * `lace sandbox` from the command line: the refusal without root, and (as
 * root) a whole run with --json on a small manifest, checked against the
 * shape the issue fixes.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { formatMatrix } from "./sandbox.ts";

const t = suite("lace sandbox (command line)");
const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const isRoot = process.getuid?.() === 0;

function lace(args: string[], uid?: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(root, "agent/cli/main.ts"), ...args], {
      cwd: root, uid, gid: uid, env: { ...process.env, HOME: "/tmp" },
    });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (status) => done({ status, stdout, stderr }));
  });
}

t("the matrix table marks each mismatch", () => {
  const text = formatMatrix([
    { from: "a/x", to: "a/y", family: "ipv4", expected: "allow", observed: "allow" },
    { from: "a/y", to: "a/x", family: "ipv6", expected: "deny", observed: "allow" },
  ]);
  assert.equal(text.split("\n"), [
    "from  to   family  expected  observed",
    "a/x   a/y  ipv4    allow     allow     ok",
    "a/y   a/x  ipv6    deny      allow     MISMATCH",
  ]);
  const withService = formatMatrix([
    { from: "a/x", to: "a/y", family: "ipv4", expected: "allow", observed: "allow" },
    { from: "a/x", to: "svc/a/s", family: "ipv4", expected: "allow", observed: "allow", answeredBy: ["p-0", "p-1"] },
    { from: "b/z", to: "svc/a/s", family: "ipv4", expected: "deny", observed: "deny", answeredBy: [] },
  ]);
  assert.equal(withService.split("\n"), [
    "from  to       family  expected  observed      answered by",
    "a/x   a/y      ipv4    allow     allow     ok",
    "a/x   svc/a/s  ipv4    allow     allow     ok  p-0,p-1",
    "b/z   svc/a/s  ipv4    deny      deny      ok  -",
  ]);
});

t("without root it stops at once with a clear message", async () => {
  // As root, drop to nobody for this run; otherwise we already are not root.
  const r = await lace(["sandbox", "-f", "examples/"], isRoot ? 65534 : undefined);
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /lace sandbox needs root: it creates network namespaces/);
});

(isRoot ? t : t.skip)("--json ends with {pods, matrix}; l3 and l2 pods on two nodes, every pair and every pod ⇄ external network matches", async () => {
  const r = await lace(["sandbox", "-f", "agent/cli/testdata/sandbox/two-pods.yaml", "--nodes", "2", "--backend", "bpf", "--json", "--prefix", `lc${process.pid.toString(36)}-`]);
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
    pods: { namespace: string; name: string; node: string; network: string; addresses: string[] }[];
    matrix: { from: string; to: string; family: string; expected: string; observed: string }[];
  };
  assert.equal(Object.keys(out), ["pods", "matrix"]);
  const byName = new Map(out.pods.map((p) => [p.name, p]));
  assert.equal(Object.keys(byName.get("g-1")!), ["namespace", "name", "node", "network", "addresses"]);
  assert.is(byName.get("g-1")!.node, "node-1");
  assert.is(byName.get("g-2")!.node, "node-2");
  assert.is(byName.get("g-1")!.addresses.length, 2);
  // The l2 pods run on the bpf backend (the only one this machine may have): one address each, from the subnet.
  assert.equal(byName.get("f-1")!.addresses.length, 1);
  assert.ok(byName.get("f-1")!.addresses[0].startsWith("10.46.0."), byName.get("f-1")!.addresses[0]);
  assert.match(r.stderr, /external network wan: a host on the fabric \(lc[0-9a-z]+-lace-ext-wan\) at 192\.0\.2\.1 fd00:e0::1/);
  assert.equal(out.matrix.map((m) => `${m.from}>${m.to}:${m.family}:${m.expected}:${m.observed}`).sort(), [
    // l2 across nodes: the frames cross in SRv6; the two networks stay apart.
    "default/f-1>default/f-2:ipv4:allow:allow", "default/f-1>default/g-1:ipv4:deny:deny", "default/f-1>default/g-2:ipv4:deny:deny",
    "default/f-1>external/wan:ipv4:deny:deny",
    "default/f-2>default/f-1:ipv4:allow:allow", "default/f-2>default/g-1:ipv4:deny:deny", "default/f-2>default/g-2:ipv4:deny:deny",
    "default/f-2>external/wan:ipv4:deny:deny",
    "default/g-1>default/f-1:ipv4:deny:deny", "default/g-1>default/f-2:ipv4:deny:deny",
    "default/g-1>default/g-2:ipv4:allow:allow", "default/g-1>default/g-2:ipv6:allow:allow",
    "default/g-1>external/wan:ipv4:allow:allow", "default/g-1>external/wan:ipv6:allow:allow",
    "default/g-2>default/f-1:ipv4:deny:deny", "default/g-2>default/f-2:ipv4:deny:deny",
    "default/g-2>default/g-1:ipv4:allow:allow", "default/g-2>default/g-1:ipv6:allow:allow",
    "default/g-2>external/wan:ipv4:allow:allow", "default/g-2>external/wan:ipv6:allow:allow",
    // Only green → wan is allowed: wan opens no connection in.
    "external/wan>default/f-1:ipv4:deny:deny", "external/wan>default/f-2:ipv4:deny:deny",
    "external/wan>default/g-1:ipv4:deny:deny", "external/wan>default/g-1:ipv6:deny:deny",
    "external/wan>default/g-2:ipv4:deny:deny", "external/wan>default/g-2:ipv6:deny:deny",
  ]);
});

(isRoot ? t : t.skip)("a pod that should run and does not, and a run that tested nothing, fail the command and say why", async () => {
  const r = await lace(["sandbox", "-f", "agent/cli/testdata/sandbox/unbound-pod.yaml", "--nodes", "1", "--prefix", `lf${process.pid.toString(36)}-`]);
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /pod default\/stray: NOT RUN — /);
  assert.match(r.stdout, /FAILED: 1 pod\(s\) could not be run: default\/stray/);
  assert.match(r.stdout, /FAILED: no pair of running pods was tested/);
});

(isRoot ? t : t.skip)("sandbox migrate moves an l2 pod live, keeping MAC and addresses, under a 10 ms ping: few pings lost; wrong requests fail with the reason", async () => {
  const prefix = `lm${process.pid.toString(36)}-`;
  const up = await lace(["sandbox", "-f", "agent/cli/testdata/sandbox/two-pods.yaml", "--nodes", "2", "--backend", "bpf", "--keep", "--json", "--prefix", prefix]);
  try {
    assert.is(up.status, 0, up.stderr);
    const before = (JSON.parse(up.stdout.trim().split("\n").pop()!) as { pods: { name: string; node: string; addresses: string[] }[] }).pods.find((p) => p.name === "f-1")!;
    for (const [to, from] of [["node-2", "node-1"], ["node-1", "node-2"]]) {
      const r = await lace(["sandbox", "migrate", "default/f-1", "--to", to, "--json", "--prefix", prefix]);
      assert.is(r.status, 0, r.stderr);
      const m = JSON.parse(r.stdout.trim()) as { pod: string; from: string; to: string; lost: number; convergenceMs: number };
      assert.equal([m.pod, m.from, m.to], ["default/f-1", from, to]);
      // How many pings a migration loses, and how fast it converges, is bench migration's to measure
      // (median of 10); here: the numbers are reported, and the ping came back.
      // The command pings 100 times a second and watches for 2 s after the move: had the ping not come
      // back at the new place, 200 or more would be lost.
      assert.ok(Number.isInteger(m.lost) && m.lost >= 0 && m.lost < 150, `lost ${m.lost}: the ping did not come back`);
      assert.ok(Number.isFinite(m.convergenceMs) && m.convergenceMs >= 0, `convergence ${m.convergenceMs} ms`);
    }
    const l3 = await lace(["sandbox", "migrate", "default/g-1", "--to", "node-2", "--prefix", prefix]);
    assert.is(l3.status, 1);
    assert.match(l3.stderr, /only pods of bridged \(l2\) networks keep their addresses on another node; network "green" forwards routed/);
    const bad = await lace(["sandbox", "migrate", "default/f-1", "--to", "node-7", "--prefix", prefix]);
    assert.is(bad.status, 1);
    assert.match(bad.stderr, /--to: expected one of node-1, node-2, got "node-7"/);
    assert.ok(before.addresses.length === 1, "the pod had its address before");
  } finally {
    await lace(["sandbox", "down", "--prefix", prefix]);
  }
});

t.run();
