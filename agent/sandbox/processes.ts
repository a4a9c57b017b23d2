/**
 * How the sandbox runs things: shell commands for the namespaces it builds
 * (the sandbox is test tooling around the product, so it may use `ip`),
 * the `lace` command line and the `lace-cni` executable as child processes,
 * from the bundle when built and from the sources otherwise.
 *
 * @example
 * const p = spawnLace(["store", "serve", "--db", db], { log: "/run/lace-sandbox/store.log" });
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { cniExecutable } from "../cni/executable.ts";

/** The checkout (or package) root: agent/sandbox/ in the sources, dist/ in the bundle. */
export const ROOT = resolve(fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "../.." : "..", import.meta.url)));

/** argv that runs the `lace` command line. */
export function laceArgv(): string[] {
  // bin/lace.js calls the bundle's main(); dist/lace.js alone only runs when it is the entry chunk.
  if (!import.meta.url.endsWith(".ts")) return [process.execPath, join(ROOT, "bin", "lace.js")];
  return [process.execPath, "--import", "tsx", join(ROOT, "agent", "cli", "main.ts")];
}

/** argv that runs the CNI plugin executable (dist/lace-cni, built first when missing or stale). */
export function cniArgv(): string[] {
  return [cniExecutable(ROOT)];
}

export function sh(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${(err.stderr || err.message).trim()}`);
  }
}

/** Runs a command; resolves with its exit status and output, never rejects. */
export function run(argv: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = execFile(argv[0], argv.slice(1), { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, encoding: "utf8", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const status = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolvePromise({ status, stdout, stderr });
    });
    // A child that exits without reading its input (ping) must not fail the caller with EPIPE.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(opts.input ?? "");
  });
}

/** Starts a long-running process, detached (its own process group), output to `log`. */
export function startDetached(argv: string[], log: string, netns?: string): ChildProcess {
  const fd = openSync(log, "a");
  const full = netns ? ["ip", "netns", "exec", netns, ...argv] : argv;
  const p = spawn(full[0], full.slice(1), { stdio: ["ignore", fd, fd], detached: true });
  p.unref();
  return p;
}

/** Kills a process group (started by startDetached); a gone one is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals = "SIGTERM"): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * When the process started (clock ticks since boot, /proc/<pid>/stat field
 * 22); undefined when there is no such process. A recorded pid with another
 * start time now belongs to someone else: the number was reused.
 *
 * @example
 * startTime(process.pid); // 123456
 */
export function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command (which may contain spaces and parentheses) start at field 3.
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds, polling; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}
