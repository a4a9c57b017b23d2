/**
 * `lace install-cni` (agent/cni/install.ts) into temporary directories that
 * stand for a node's /opt/cni/bin and /etc/cni/net.d: the files and their
 * modes, a conflist the installed executable follows to the agent's socket,
 * a second run that changes nothing, the replacement of a binary that is
 * running, and arguments refused before anything is written.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../cli/main.ts";
import { PACKAGE_ROOT } from "../package_root.ts";
import { CNI_CONFLIST_FILE, CNI_EXECUTABLE_NAME } from "./conflist.ts";
import { cniExecutable } from "./executable.ts";
import { installCni } from "./install.ts";
import { CniServer } from "./server.ts";
import { type CniRequest, parseInvocation, SUPPORTED_VERSIONS } from "./spec.ts";

const t = suite("install-cni");
const exe = cniExecutable(PACKAGE_ROOT);
let dir = "";
let binDir = "";
let confDir = "";

t.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), "lace-install-cni-test-"));
  binDir = join(dir, "opt/cni/bin");
  confDir = join(dir, "etc/cni/net.d");
  mkdirSync(binDir, { recursive: true });
  mkdirSync(confDir, { recursive: true });
});

t.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `file` as a runtime runs a plugin: `env` only, `stdin` on standard input. */
function run(file: string, env: Record<string, string>, stdin: string): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => {
    const p = spawn(file, [], { env });
    let stdout = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.on("close", (code) => done({ code: code ?? -1, stdout }));
    p.stdin.end(stdin);
  });
}

t("installs the executable (0755) and a CNI 1.1.0 conflist (0644) that leads the executable to the agent's socket", async () => {
  const socket = join(dir, "run/lace/cni.sock");
  const r = installCni({ executable: exe, binDir, confDir, agentSocket: socket });
  assert.equal(r.executable, { path: join(binDir, CNI_EXECUTABLE_NAME), changed: true });
  assert.equal(r.conflist, { path: join(confDir, CNI_CONFLIST_FILE), changed: true });
  assert.is(statSync(r.executable.path).mode & 0o777, 0o755);
  assert.is(statSync(r.conflist.path).mode & 0o777, 0o644);
  assert.ok(readFileSync(r.executable.path).equals(readFileSync(exe)), "the installed executable is the built one");
  assert.equal(readdirSync(binDir), [CNI_EXECUTABLE_NAME], "no temporary file is left");
  assert.equal(readdirSync(confDir), [CNI_CONFLIST_FILE]);

  const conflist = JSON.parse(readFileSync(r.conflist.path, "utf8"));
  assert.is(conflist.cniVersion, "1.1.0");
  assert.ok((SUPPORTED_VERSIONS as readonly string[]).includes(conflist.cniVersion));
  assert.is(conflist.plugins.length, 1);
  assert.is(conflist.plugins[0].type, CNI_EXECUTABLE_NAME, "the plugin type names the installed file");
  // What a runtime hands each plugin of a list: its entry plus the list's cniVersion and name.
  const stdin = JSON.stringify({ ...conflist.plugins[0], cniVersion: conflist.cniVersion, name: conflist.name });
  const parsed = parseInvocation({ CNI_COMMAND: "STATUS", CNI_PATH: binDir }, stdin);
  assert.ok(typeof parsed === "object" && !("code" in parsed), `the plugin's parser refuses the conflist: ${JSON.stringify(parsed)}`);

  // The installed executable, run as a runtime would, reaches an agent on the conflist's socket.
  const received: CniRequest[] = [];
  mkdirSync(join(dir, "run/lace"), { recursive: true });
  const server = await CniServer.listen(socket, (req) => {
    received.push(req);
    return Promise.resolve({ ok: true });
  });
  try {
    const out = await run(r.executable.path, { CNI_COMMAND: "STATUS", CNI_PATH: binDir }, stdin);
    assert.is(out.code, 0, `STATUS through the installed plugin: ${out.stdout}`);
    assert.is(received.length, 1, "the agent on the conflist's socket got the call");
    assert.is(received[0].command, "STATUS");
    assert.is(received[0].config.agentSocket, socket);
  } finally {
    await server.close();
  }
});

t("a second run with the same inputs writes nothing", () => {
  const first = installCni({ executable: exe, binDir, confDir });
  const before = [statSync(first.executable.path), statSync(first.conflist.path)].map((s) => [s.ino, s.mtimeMs]);
  const again = installCni({ executable: exe, binDir, confDir });
  assert.is(again.executable.changed, false);
  assert.is(again.conflist.changed, false);
  const after = [statSync(first.executable.path), statSync(first.conflist.path)].map((s) => [s.ino, s.mtimeMs]);
  assert.equal(after, before, "same inodes, same modification times");
  // A different socket is a different conflist: only that file is replaced.
  const moved = installCni({ executable: exe, binDir, confDir, agentSocket: "/run/lace-2/cni.sock" });
  assert.equal([moved.executable.changed, moved.conflist.changed], [false, true]);
  assert.is(JSON.parse(readFileSync(moved.conflist.path, "utf8")).plugins[0].agentSocket, "/run/lace-2/cni.sock");
});

t("replaces a binary that is running by rename, and the running one goes on; a killed run's temporary is removed", async () => {
  const dest = join(binDir, CNI_EXECUTABLE_NAME);
  copyFileSync("/bin/sleep", dest);
  writeFileSync(join(binDir, `.${CNI_EXECUTABLE_NAME}.4242.tmp`), "half a binary");
  const old = spawn(dest, ["30"], { stdio: "ignore" });
  try {
    await new Promise((r) => old.once("spawn", r));
    // Writing into an executing file fails with ETXTBSY: only write-then-rename can succeed here.
    const r = installCni({ executable: exe, binDir, confDir });
    assert.is(r.executable.changed, true);
    assert.ok(readFileSync(dest).equals(readFileSync(exe)), "the new binary is in place");
    assert.is(old.exitCode, null, "the old binary is still running");
    assert.is(old.signalCode, null);
    assert.equal(readdirSync(binDir), [CNI_EXECUTABLE_NAME], "the stale temporary is gone");
  } finally {
    old.kill("SIGKILL");
  }
});

t("refuses an unusable argument, naming it and its value, before writing anything", () => {
  const cases: [Parameters<typeof installCni>[0], RegExp][] = [
    [{ executable: exe, binDir: join(dir, "missing"), confDir }, /binDir \(--bin-dir\) ".*\/missing" is not a directory/],
    [{ executable: exe, binDir, confDir: join(dir, "missing") }, /confDir \(--conf-dir\) ".*\/missing" is not a directory/],
    [{ executable: exe, binDir, confDir, agentSocket: "run/lace/cni.sock" }, /agentSocket \(--agent-socket\) must be an absolute path, got "run\/lace\/cni.sock"/],
    [{ executable: join(dir, "no-such-lace-cni"), binDir, confDir }, /executable \(--executable\) ".*no-such-lace-cni" cannot be read/],
    [{ executable: binDir, binDir, confDir }, /executable \(--executable\) ".*" cannot be read: it is not a regular file/],
  ];
  for (const [opts, message] of cases) {
    assert.throws(() => installCni(opts), message);
    assert.equal(readdirSync(binDir), [], `nothing written to the bin dir for ${message}`);
    assert.equal(readdirSync(confDir), [], `nothing written to the conf dir for ${message}`);
  }
});

t("`lace install-cni` prints what it did and exits non-zero when it cannot do it", async () => {
  const lines: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (l: string) => lines.push(l);
  console.error = (l: string) => lines.push(l);
  try {
    const args = ["install-cni", "--bin-dir", binDir, "--conf-dir", confDir, "--executable", exe];
    assert.is(await main(args), 0);
    assert.is(await main(args), 0);
    assert.is(await main(["install-cni", "--bin-dir", join(dir, "nope"), "--conf-dir", confDir, "--executable", exe]), 1);
  } finally {
    console.log = log;
    console.error = error;
  }
  assert.equal(lines, [
    `installed: ${join(binDir, CNI_EXECUTABLE_NAME)}`,
    `installed: ${join(confDir, CNI_CONFLIST_FILE)}`,
    `unchanged: ${join(binDir, CNI_EXECUTABLE_NAME)}`,
    `unchanged: ${join(confDir, CNI_CONFLIST_FILE)}`,
    `lace: Cannot install the CNI plugin: binDir (--bin-dir) "${join(dir, "nope")}" is not a directory`,
  ]);
  assert.ok(existsSync(join(binDir, CNI_EXECUTABLE_NAME)));
});

t.run();
