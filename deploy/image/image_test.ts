/**
 * The lace-cni image, built here from a fresh bundle of this checkout with
 * the host base (no registry), run with podman: `lace --version`, `lace
 * validate`, the agent DaemonSet's init container exactly as the manifest
 * gives it, the userland the agent execs and loads, and the agent itself
 * starting (in the container's own network namespace). Skipped, with the
 * reason, where podman is missing or cannot run a container (not root, no
 * usable OCI runtime); CI installs podman and runc (.ci/run).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { PACKAGE_ROOT, PACKAGE_VERSION } from "../../agent/package_root.ts";
import { cniExecutable } from "../../agent/cni/executable.ts";
import { parseInvocation } from "../../agent/cni/spec.ts";
import { buildImage, podman, podmanProblem, runInImage } from "./build.ts";

const t = suite("image");
const scratch = join(PACKAGE_ROOT, ".lace", `image-test-${process.pid}`);
const TAG = `localhost/lace-cni-test/lace:${process.pid}`;

/** Why no container can run here, or undefined: podman runs the static lace-cni from a bare root directory. */
function containerProblem(): string | undefined {
  const problem = podmanProblem();
  if (problem) return problem;
  const root = mkdtempSync(join(tmpdir(), "lace-image-probe-"));
  try {
    copyFileSync(cniExecutable(PACKAGE_ROOT), join(root, "lace-cni"));
    const r = podman(["run", "--rm", "--network", "none", "--env", "CNI_COMMAND=VERSION", "--rootfs", root, "/lace-cni"], { timeoutMs: 60_000 });
    if (r.status !== 0) return `podman cannot run a container here: ${(r.stderr || r.stdout).trim().split("\n").pop()}`;
    return undefined;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const skipReason = containerProblem();
if (skipReason) console.log(`image suite skipped: ${skipReason}`);
const test = skipReason ? t.skip : t;

t.before(() => {
  if (skipReason) return;
  // A bundle of the sources as they are now, as `npm run build` makes it: rollup, the BPF object, the CNI executable.
  const dist = join(scratch, "dist");
  execFileSync(process.execPath, [join(PACKAGE_ROOT, "node_modules", "rollup", "dist", "bin", "rollup"), "-c", "--silent", "--dir", dist], { cwd: PACKAGE_ROOT, stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  cpSync(join(PACKAGE_ROOT, "dist", "bpf"), join(dist, "bpf"), { recursive: true });
  copyFileSync(cniExecutable(PACKAGE_ROOT), join(dist, "lace-cni"));
  const built = buildImage({ base: "host", tag: TAG, contextDir: join(scratch, "context"), dist });
  console.log(`image: built ${built.tag} from the host base in ${built.seconds.toFixed(1)} s, ${(built.bytes / 1e6).toFixed(0)} MB`);
});

t.after(() => {
  if (!skipReason) podman(["rmi", "--force", TAG]);
  rmSync(scratch, { recursive: true, force: true });
});

test("`lace --version` in the image prints the package's version, also as the controller Deployment runs (its user, read-only root, no capability)", () => {
  const r = runInImage(TAG, ["lace", "--version"]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `${PACKAGE_VERSION}\n`);
  // deno-lint-ignore no-explicit-any
  const [deployment] = parseAllDocuments(readFileSync(join(PACKAGE_ROOT, "deploy", "controller.yaml"), "utf8")).map((d) => d.toJS() as any);
  const sc = deployment.spec.template.spec.containers[0].securityContext;
  assert.ok(sc.runAsNonRoot && sc.runAsUser > 0 && sc.readOnlyRootFilesystem);
  const asController = runInImage(TAG, ["lace", "--version"], ["--user", String(sc.runAsUser), "--read-only", ...sc.capabilities.drop.flatMap((c: string) => ["--cap-drop", c])]);
  assert.is(asController.status, 0, asController.stderr);
  assert.is(asController.stdout, `${PACKAGE_VERSION}\n`);
});

test("`lace validate` in the image: the examples pass (exit 0), also with the deploy ConfigMap's lace.yaml; a bad manifest exits 1 naming the field", () => {
  const ok = runInImage(TAG, ["lace", "validate", "-f", "/examples"], ["--volume", `${join(PACKAGE_ROOT, "examples")}:/examples:ro`]);
  assert.is(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^ok: \d+ resources\n$/);
  // With the configuration the deploy ConfigMap mounts: its plugins (the srv6 dataplane among them) load in the image.
  const dir = join(scratch, "bad");
  mkdirSync(dir, { recursive: true });
  // deno-lint-ignore no-explicit-any
  const [config] = parseAllDocuments(readFileSync(join(PACKAGE_ROOT, "deploy", "config.yaml"), "utf8")).map((d) => d.toJS() as any);
  writeFileSync(join(scratch, "lace.yaml"), config.data["lace.yaml"]);
  const configured = runInImage(TAG, ["lace", "validate", "-f", "/examples", "--config", "/etc/lace/lace.yaml"], [
    "--volume", `${join(PACKAGE_ROOT, "examples")}:/examples:ro`,
    "--volume", `${join(scratch, "lace.yaml")}:/etc/lace/lace.yaml:ro`,
  ]);
  assert.is(configured.status, 0, configured.stdout + configured.stderr);
  assert.is(configured.stdout, ok.stdout);
  writeFileSync(join(dir, "bad.yaml"), "apiVersion: lace-cni.io/v1alpha1\nkind: Network\nmetadata: {name: backend}\nspec: {type: l3, ipv4Subnet: {prefix: 10.40.0.1/16, hostLocalPrefixLength: 24}}\n");
  const bad = runInImage(TAG, ["lace", "validate", "-f", "/in"], ["--volume", `${dir}:/in:ro`]);
  assert.is(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, 'Network/backend: spec.ipv4Subnet.prefix: host bits set in "10.40.0.1/16"');
});

test("the DaemonSet's init container, run as the manifest gives it, installs lace-cni and its conflist into the host dirs; again, it changes nothing", () => {
  // deno-lint-ignore no-explicit-any
  const [ds] = parseAllDocuments(readFileSync(join(PACKAGE_ROOT, "deploy", "agent.yaml"), "utf8")).map((d) => d.toJS() as any);
  const pod = ds.spec.template.spec;
  const [init] = pod.initContainers;
  const host = join(scratch, "node");
  // Each hostPath volume of the init container, on this machine under a temporary root.
  const volumes: string[] = [];
  for (const m of init.volumeMounts) {
    const path = pod.volumes.find((v: { name: string }) => v.name === m.name).hostPath.path;
    mkdirSync(join(host, path), { recursive: true });
    volumes.push("--volume", `${join(host, path)}:${m.mountPath}`);
  }
  const sc = init.securityContext;
  const args = [...volumes, "--user", String(sc.runAsUser), ...(sc.readOnlyRootFilesystem ? ["--read-only"] : []), ...sc.capabilities.drop.flatMap((c: string) => ["--cap-drop", c])];
  const first = runInImage(TAG, init.command, args);
  assert.is(first.status, 0, first.stdout + first.stderr);
  assert.match(first.stdout, "installed: /host/opt/cni/bin/lace-cni");
  const exe = join(host, "opt/cni/bin/lace-cni");
  assert.is(statSync(exe).mode & 0o777, 0o755);
  assert.ok(readFileSync(exe).equals(readFileSync(cniExecutable(PACKAGE_ROOT))), "the node gets the executable the build compiled");
  assert.equal(readdirSync(join(host, "etc/cni/net.d")), ["10-lace.conflist"]);
  const conflist = JSON.parse(readFileSync(join(host, "etc/cni/net.d/10-lace.conflist"), "utf8"));
  assert.is(conflist.cniVersion, "1.1.0");
  const stdin = JSON.stringify({ ...conflist.plugins[0], cniVersion: conflist.cniVersion, name: conflist.name });
  const parsed = parseInvocation({ CNI_COMMAND: "STATUS", CNI_PATH: dirname(exe) }, stdin);
  assert.ok(typeof parsed === "object" && !("code" in parsed), JSON.stringify(parsed));
  // The installed binary answers as a runtime would call it.
  const version = JSON.parse(execFileSync(exe, [], { env: { CNI_COMMAND: "VERSION" }, input: stdin, encoding: "utf8" }));
  assert.ok(version.supportedVersions.includes("1.1.0"));
  const mtime = statSync(exe).mtimeMs;
  const again = runInImage(TAG, init.command, args);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stdout, "unchanged: /host/opt/cni/bin/lace-cni");
  assert.is(statSync(exe).mtimeMs, mtime);
});

test("the image holds what the agent execs and loads: nft (in the container's own netns), mount, libbpf, the native addons, the BPF object", () => {
  const nft = runInImage(TAG, ["sh", "-c", 'nft add table inet lace_image_test && nft add chain inet lace_image_test c "{ type filter hook input priority 0; }" && nft list tables'], ["--cap-add", "NET_ADMIN"]);
  assert.is(nft.status, 0, nft.stderr);
  assert.match(nft.stdout, "table inet lace_image_test");
  const mount = runInImage(TAG, ["mount", "--version"]);
  assert.is(mount.status, 0, mount.stderr);
  const script = [
    'const koffi = require("koffi");',
    'const libbpf = koffi.load("libbpf.so.1");',
    'const major = libbpf.func("uint32_t libbpf_major_version()")();',
    'const db = new (require("better-sqlite3"))(":memory:");',
    'require("netlink");',
    'console.log(JSON.stringify({ major, sqlite: db.prepare("select sqlite_version() as v").get().v }));',
  ].join("\n");
  const natives = runInImage(TAG, ["node", "-e", script], ["--workdir", "/opt/lace"]);
  assert.is(natives.status, 0, natives.stderr);
  const loaded = JSON.parse(natives.stdout);
  assert.is(loaded.major, 1, "libbpf 1.x");
  assert.match(loaded.sqlite, /^3\./);
  const bpf = runInImage(TAG, ["node", "-e", 'process.stdout.write(require("fs").readFileSync("/opt/lace/dist/bpf/srv6.o").toString("base64"))']);
  assert.is(bpf.status, 0, bpf.stderr);
  assert.ok(Buffer.from(bpf.stdout, "base64").equals(readFileSync(join(PACKAGE_ROOT, "dist", "bpf", "srv6.o"))), "the image's BPF object is the built one");
});

test("`lace agent` starts in the image (privileged, in the container's own network namespace, embedded store): a backend chosen, ready, stopped by SIGTERM", () => {
  // Inside the container: start the agent, wait for its ready line, stop it as the kubelet would, report.
  const script = `
const { spawn } = require("child_process");
const p = spawn("lace", ["agent", "--node", "image-test", "--db", "/tmp/store.db", "--metrics", "off", "--cni-socket", "/run/lace/cni.sock"], { stdio: ["ignore", "pipe", "pipe"] });
let log = "";
const stop = setTimeout(() => p.kill("SIGTERM"), 60000);
const onData = (d) => { log += d; if (log.includes("lace agent ready")) { clearTimeout(stop); p.kill("SIGTERM"); } };
p.stdout.on("data", onData);
p.stderr.on("data", onData);
p.on("exit", (code, signal) => console.log(JSON.stringify({ code, signal, log })));
`;
  const r = runInImage(TAG, ["node", "-e", script], ["--privileged"]);
  assert.is(r.status, 0, r.stderr);
  const { code, log } = JSON.parse(r.stdout);
  const lines = (log as string).split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const backend = lines.find((l) => l.plugin === "srv6" && l.backend);
  assert.ok(backend && ["kernel", "bpf"].includes(backend.backend), `the srv6 dataplane picked a backend: ${log}`);
  assert.ok(lines.some((l) => l.msg === "lace agent ready" && l.cniSocket === "/run/lace/cni.sock"), log);
  assert.is(code, 0, `the agent exits 0 on SIGTERM: ${log}`);
});

t.run();
