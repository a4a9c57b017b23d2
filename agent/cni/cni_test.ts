/**
 * The CNI plugin executable (dist/lace-cni, compiled from shim/lace-cni.c)
 * spawned the way a runtime does, against a recording agent on a temporary
 * unix socket: every case runs for each supported cniVersion and checks
 * stdout and the exit status.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cniExecutable } from "./executable.ts";
import { CniServer } from "./server.ts";
import { type AgentReply, CNI_ERRORS, type CniRequest, type CniResult, SUPPORTED_VERSIONS } from "./spec.ts";

const t = suite("cni plugin");
const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const dir = mkdtempSync(join(tmpdir(), "lace-cni-test-"));
const socket = join(dir, "agent", "cni.sock");
const received: CniRequest[] = [];
let reply: AgentReply = { ok: true };
let server: CniServer;
const exe = cniExecutable(root);

/**
 * Runs the executable with exactly `env` (plus LACE_CNI_SOCKET, the socket to use
 * when the configuration names none) and `stdin`; asynchronous, because the
 * recording agent answers from this very process.
 */
function runPlugin(env: Record<string, string>, stdin: string, argv = [exe]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(argv[0], argv.slice(1), { env: { LACE_CNI_SOCKET: socket, ...env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (status) => done({ exitCode: status ?? -1, stdout, stderr }));
    p.stdin.on("error", () => undefined);
    p.stdin.end(stdin);
  });
}

const RESULT: CniResult = {
  interfaces: [{ name: "lace1a2b3c4d5e6", mac: "aa:bb:cc:dd:ee:01" }, { name: "eth0", mac: "aa:bb:cc:dd:ee:02", mtu: 1460, sandbox: "/run/netns/p1" }],
  ips: [{ address: "10.40.0.2/32", gateway: "10.40.0.1", interface: 1 }, { address: "fd00:40::2/128", gateway: "fe80::1", interface: 1 }],
  routes: [{ dst: "0.0.0.0/0", gw: "10.40.0.1" }, { dst: "::/0", gw: "fe80::1" }],
  dns: {},
};

t.before(async () => {
  server = await CniServer.listen(socket, (req) => {
    received.push(req);
    return Promise.resolve(reply);
  });
});

t.after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const conf = (version: string, extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: version, name: "lace", type: "lace-cni", agentSocket: socket, ...extra });
const env = (command: string, extra: Record<string, string> = {}) => ({
  CNI_COMMAND: command, CNI_CONTAINERID: "c0ffee01", CNI_NETNS: "/run/netns/p1", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
  CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=api-0;K8S_POD_UID=u-1", ...extra,
});
const parsed = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

t("the socket is only open to root: socket 0600 in a directory 0700", () => {
  assert.is(statSync(socket).mode & 0o777, 0o600);
  assert.is(statSync(join(dir, "agent")).mode & 0o777, 0o700);
});

t("VERSION lists the supported versions without asking the agent", async () => {
  received.length = 0;
  const out = await runPlugin({ CNI_COMMAND: "VERSION" }, conf("1.1.0"));
  assert.is(out.exitCode, 0);
  assert.equal(parsed(out.stdout), { cniVersion: "1.1.0", supportedVersions: ["0.4.0", "1.0.0", "1.1.0"] });
  // The input's version is echoed; no input at all is fine too.
  assert.is(parsed((await runPlugin({ CNI_COMMAND: "VERSION" }, conf("0.4.0"))).stdout).cniVersion, "0.4.0");
  assert.is((await runPlugin({ CNI_COMMAND: "VERSION" }, "")).exitCode, 0);
  assert.is(received.length, 0);
});

for (const version of SUPPORTED_VERSIONS) {
  t(`${version}: ADD forwards env, CNI_ARGS and config, and prints the result in the ${version} shape`, async () => {
    received.length = 0;
    reply = { ok: true, result: RESULT };
    const out = await runPlugin(env("ADD"), conf(version, { extra: { x: 1 } }));
    assert.is(out.exitCode, 0, out.stdout);
    const req = received[0];
    assert.is(req.command, "ADD");
    assert.is(req.containerId, "c0ffee01");
    assert.is(req.netns, "/run/netns/p1");
    assert.is(req.ifname, "eth0");
    assert.equal(req.path, ["/opt/cni/bin", "/usr/lib/cni"]);
    assert.equal(req.args, { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "team-a", K8S_POD_NAME: "api-0", K8S_POD_UID: "u-1" });
    assert.equal(req.config.extra, { x: 1 });
    const r = parsed(out.stdout) as { cniVersion: string; ips: Record<string, unknown>[]; interfaces: Record<string, unknown>[]; routes: unknown[] };
    assert.is(r.cniVersion, version);
    assert.is(r.ips.length, 2);
    assert.is(r.ips[0].address, "10.40.0.2/32");
    assert.is(r.ips[0].interface, 1);
    assert.is(r.ips[0].version, version === "0.4.0" ? "4" : undefined);
    assert.is(r.ips[1].version, version === "0.4.0" ? "6" : undefined);
    assert.is(r.interfaces[1].sandbox, "/run/netns/p1");
    assert.is(r.interfaces[1].mtu, version === "1.1.0" ? 1460 : undefined);
    assert.equal(r.routes, RESULT.routes);
  });

  t(`${version}: DEL and CHECK succeed with empty stdout; DEL needs no CNI_NETNS`, async () => {
    reply = { ok: true };
    received.length = 0;
    const del = await runPlugin(env("DEL", { CNI_NETNS: "" }), conf(version));
    assert.equal([del.exitCode, del.stdout], [0, ""]);
    assert.is(received[0].command, "DEL");
    assert.is(received[0].netns, undefined);
    const check = await runPlugin(env("CHECK"), conf(version));
    assert.equal([check.exitCode, check.stdout], [0, ""]);
  });

  t(`${version}: missing or malformed environment is error 4 naming the variable`, async () => {
    received.length = 0;
    const cases: [string, Record<string, string>, RegExp][] = [
      ["ADD", { CNI_CONTAINERID: "" }, /CNI_CONTAINERID is not set/],
      ["ADD", { CNI_NETNS: "" }, /CNI_NETNS is not set/],
      ["ADD", { CNI_IFNAME: "" }, /CNI_IFNAME is not set/],
      ["ADD", { CNI_PATH: "" }, /CNI_PATH is not set/],
      ["ADD", { CNI_IFNAME: "a-very-long-interface" }, /CNI_IFNAME "a-very-long-interface" is not a valid interface name: it is 21 characters long/],
      ["ADD", { CNI_CONTAINERID: "-bad" }, /CNI_CONTAINERID "-bad" is not a valid container id/],
      ["ADD", { CNI_ARGS: "K8S_POD_NAME" }, /CNI_ARGS is malformed: entry "K8S_POD_NAME" is not KEY=VALUE/],
      ["ADD", { CNI_NETNS: "relative" }, /CNI_NETNS "relative" is not a path/],
      ["DEL", { CNI_IFNAME: "" }, /CNI_IFNAME is not set/],
      ["BOGUS", {}, /CNI_COMMAND "BOGUS" is not a CNI command/],
    ];
    for (const [cmd, e, msg] of cases) {
      const out = await runPlugin(env(cmd, e), conf(version));
      assert.is(out.exitCode, 1);
      const err = parsed(out.stdout);
      assert.is(err.code, CNI_ERRORS.INVALID_ENVIRONMENT, JSON.stringify(err));
      assert.match(String(err.msg), msg);
      if (cmd !== "BOGUS") assert.is(err.cniVersion, version);
    }
    assert.is(received.length, 0, "nothing reached the agent");
  });

  t(`${version}: undecodable stdin is error 6, an invalid configuration error 7`, async () => {
    const cases: [string, number, RegExp][] = [
      ["{not json", 6, /it is not JSON/],
      ["[1,2]", 6, /expected a JSON object/],
      [JSON.stringify({ cniVersion: version, type: "lace-cni" }), 7, /name must start with a letter or digit/],
      [JSON.stringify({ cniVersion: version, name: "lace" }), 7, /type must name the plugin/],
      [JSON.stringify({ cniVersion: version, name: "lace", type: "lace-cni", agentSocket: "run/x.sock" }), 7, /agentSocket must be an absolute path/],
      [JSON.stringify({ name: "lace", type: "lace-cni" }), 7, /cniVersion must be a version/],
    ];
    for (const [stdin, code, msg] of cases) {
      const out = await runPlugin(env("ADD"), stdin);
      assert.is(out.exitCode, 1);
      const err = parsed(out.stdout);
      assert.is(err.code, code, `${stdin}: ${out.stdout}`);
      assert.match(String(err.msg), msg);
    }
  });

  t(`${version}: the agent's own errors pass through with their code; an absent agent is 11 (50 for STATUS)`, async () => {
    reply = { ok: false, code: CNI_ERRORS.NO_ADDRESS, msg: "Network \"backend\" has no free address", details: "node-1" };
    const out = await runPlugin(env("ADD"), conf(version));
    assert.is(out.exitCode, 1);
    assert.equal(parsed(out.stdout), { cniVersion: version, code: 102, msg: "Network \"backend\" has no free address", details: "node-1" });

    const gone = conf(version, { agentSocket: join(dir, "nobody.sock") });
    const add = parsed((await runPlugin(env("ADD"), gone)).stdout);
    assert.is(add.code, CNI_ERRORS.TRY_AGAIN_LATER);
    assert.match(String(add.msg), /The lace agent is not reachable on .*nobody\.sock \(ENOENT\)/);
    if (version === "1.1.0") {
      const status = parsed((await runPlugin({ CNI_COMMAND: "STATUS" }, gone)).stdout);
      assert.is(status.code, CNI_ERRORS.UNAVAILABLE);
    }
  });

  t(`${version}: STATUS and GC exist from 1.1.0 on; GC forwards the valid attachments`, async () => {
    reply = { ok: true };
    received.length = 0;
    const valid = [{ containerID: "c1", ifname: "eth0" }];
    const status = await runPlugin({ CNI_COMMAND: "STATUS" }, conf(version));
    const gc = await runPlugin({ CNI_COMMAND: "GC", CNI_PATH: "/opt/cni/bin" }, conf(version, { "cni.dev/valid-attachments": valid }));
    if (version === "1.1.0") {
      assert.equal([status.exitCode, status.stdout], [0, ""]);
      assert.equal([gc.exitCode, gc.stdout], [0, ""]);
      assert.equal(received.map((r) => r.command), ["STATUS", "GC"]);
      assert.equal(received[1].config["cni.dev/valid-attachments"], valid);
    } else {
      for (const [cmd, out] of [["STATUS", status], ["GC", gc]] as const) {
        assert.is(out.exitCode, 1);
        const err = parsed(out.stdout);
        assert.is(err.code, CNI_ERRORS.INCOMPATIBLE_VERSION);
        assert.is(err.msg, `CNI version ${version} does not have ${cmd}`);
      }
      assert.is(received.length, 0);
    }
  });
}

t("an unsupported cniVersion is error 1 naming the versions this plugin supports", async () => {
  const out = await runPlugin(env("ADD"), conf("0.3.1"));
  const err = parsed(out.stdout);
  assert.is(err.code, CNI_ERRORS.INCOMPATIBLE_VERSION);
  assert.is(err.details, "this plugin supports 0.4.0, 1.0.0, 1.1.0");
});

t("CNI_* variables and stdin reach the agent byte for byte: quotes, backslashes, control characters, UTF-8", async () => {
  reply = { ok: true };
  received.length = 0;
  const odd = "é \" \\ \n \u0001 \u2028 ☃";
  const out = await runPlugin(env("DEL", { CNI_ARGS: `K8S_POD_NAME=${"x".repeat(3000)}`, NOT_CNI: "1" }), conf("1.1.0", { odd, big: "y".repeat(200_000) }));
  assert.is(out.exitCode, 0, out.stdout);
  assert.is(received[0].config.odd, odd);
  assert.is((received[0].config.big as string).length, 200_000);
  assert.is(received[0].args.K8S_POD_NAME.length, 3000);
});

t("an agent that fails or hangs up mid-answer is 100 or 11, with the reason", async () => {
  const failing = await CniServer.listen(join(dir, "failing", "cni.sock"), () => Promise.reject(new Error("Cannot reach the store: ECONNRESET")));
  try {
    const out = await runPlugin(env("ADD"), conf("1.0.0", { agentSocket: failing.path }));
    assert.is(out.exitCode, 1);
    assert.equal(JSON.parse(out.stdout), { cniVersion: "1.0.0", code: CNI_ERRORS.AGENT_FAILED, msg: "Cannot reach the store: ECONNRESET" });
  } finally {
    await failing.close();
  }
  // resume(): the request must be read, or the connection never sees the end and close() waits forever.
  const rude = createServer((c) => c.resume().end("0"));
  const rudePath = join(dir, "rude.sock");
  await new Promise<void>((r) => rude.listen(rudePath, r));
  try {
    const out = await runPlugin(env("ADD"), conf("1.0.0", { agentSocket: rudePath }));
    assert.is(out.exitCode, 1);
    const err = parsed(out.stdout);
    assert.is(err.code, CNI_ERRORS.TRY_AGAIN_LATER);
    assert.match(String(err.msg), /closed the connection without a complete answer to ADD/);
  } finally {
    await new Promise((r) => rude.close(r));
  }
});

t("the agent refuses a request it cannot decode with error 6", async () => {
  const { connect } = await import("node:net");
  const answer = await new Promise<string>((done) => {
    const c = connect(socket, () => c.write("{\"command\":\"ADD\"}\n"));
    let buf = "";
    c.on("data", (d) => (buf += d));
    c.on("end", () => done(buf));
  });
  const [status, body] = [answer.slice(0, answer.indexOf("\n")), answer.slice(answer.indexOf("\n") + 1)];
  assert.is(status, "1");
  assert.is(parsed(body).code, CNI_ERRORS.DECODE_FAILURE);
  assert.match(String(parsed(body).details), /expected \{env, stdin\}/);
});

// Node.js's own spawn hands a child blocking stdio; python3 passes a non-blocking pipe as is, as some runtimes might.
const hasPython = (() => {
  try {
    execFileSync("python3", ["-c", "pass"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const NONBLOCKING_PARENT = `
import os, subprocess, sys, time
r, w = os.pipe()
os.set_blocking(r, False)
p = subprocess.Popen(sys.argv[2:], stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(r)
time.sleep(0.3)
os.write(w, sys.argv[1].encode())
os.close(w)
out, err = p.communicate()
sys.stdout.write(out.decode()); sys.stderr.write(err.decode())
sys.exit(p.returncode)
`;

(hasPython ? t : t.skip)("the executable waits for stdin that is not there yet on a non-blocking pipe (EAGAIN)", async () => {
  reply = { ok: true, result: RESULT };
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    const p = spawn("python3", ["-c", NONBLOCKING_PARENT, conf("1.1.0"), exe], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env("ADD") },
    });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (status) => done({ status, stdout, stderr }));
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.is((JSON.parse(r.stdout) as { ips: unknown[] }).ips.length, 2);
});

t("the executable answers VERSION with nothing on stdin, and with stdin closed", async () => {
  for (const stdin of ["ignore", "closed"] as const) {
    // "closed": the shell's <&- leaves descriptor 0 closed (EBADF), which reads as empty.
    const argv = stdin === "ignore" ? [exe] : ["sh", "-c", `exec "${exe}" <&-`];
    const none = spawn(argv[0], argv.slice(1), { env: { CNI_COMMAND: "VERSION" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    none.stdout!.on("data", (d) => (out += d));
    assert.is(await new Promise((r) => none.on("close", r)), 0, stdin);
    assert.equal(JSON.parse(out).supportedVersions, [...SUPPORTED_VERSIONS]);
  }
});

t("the executable is a compiled program that needs no Node.js (its cost is measured by npm run bench cni, not here)", () => {
  const elf = readFileSync(exe);
  assert.equal([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${exe} is an ELF executable, not a script`);
  // Static: no program header asks for a dynamic loader (PT_INTERP), so no libc version on the node's host to match.
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const types = Array.from({ length: elf.readUInt16LE(0x38) }, (_, i) => elf.readUInt32LE(phoff + i * elf.readUInt16LE(0x36)));
  assert.ok(types.includes(1), "it has loadable segments (the headers were read right)");
  assert.not.ok(types.includes(3), "no program interpreter");
});

t.run();
