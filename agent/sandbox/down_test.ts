/**
 * `lace sandbox down` after a crashed run: the `lace sandbox --keep` process
 * is SIGKILLed while it works, and `down` alone must remove every namespace
 * and process the run left. And `down` never signals a recorded pid that
 * now belongs to another process. The crash test needs root.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultDir, Sandbox } from "./sandbox.ts";
import { alive, ROOT, run, sleep, startTime, waitFor } from "./processes.ts";

const isRoot = process.getuid?.() === 0;
const t = suite("sandbox down");

const lace = [process.execPath, "--import", "tsx", join(ROOT, "agent", "cli", "main.ts")];
const ourNamespaces = (prefix: string) => {
  try {
    return readdirSync("/run/netns").filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
};

(isRoot ? t : t.skip)("down after the sandbox process was SIGKILLed mid-run leaves no namespace and no process", async () => {
  const prefix = `dn${process.pid.toString(36)}-`;
  const dir = defaultDir(prefix);
  let child: ChildProcess | undefined;
  let recorded: number[] = [];
  try {
    child = spawn(lace[0], [...lace.slice(1), "sandbox", "--keep", "--nodes", "1", "--prefix", prefix], { stdio: "ignore" });
    // Killed once the store, the controller and the agent run: the most a crash can leave behind.
    await waitFor("the sandbox to start its agent", () => {
      if (!existsSync(join(dir, "sandbox.json"))) return false;
      const rec = JSON.parse(readFileSync(join(dir, "sandbox.json"), "utf8")) as { pids: Record<string, number> };
      recorded = Object.values(rec.pids);
      return "agent:node-1" in rec.pids;
    }, 60_000);
    child.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
    assert.ok(ourNamespaces(prefix).length >= 2, "the crashed run left its fabric and node namespaces");
    assert.ok(recorded.some(alive), "the crashed run left its processes");

    const down = await run([...lace, "sandbox", "--prefix", prefix, "down"]);
    assert.is(down.status, 0, down.stderr);
    assert.match(down.stdout, /torn down/);
    assert.equal(ourNamespaces(prefix), []);
    assert.equal(recorded.filter(alive), [], "no recorded process survives");
    assert.not.ok(existsSync(dir), `${dir} is removed`);
    const again = await run([...lace, "sandbox", "--prefix", prefix, "down"]);
    assert.match(again.stdout, /no sandbox is up/);
  } finally {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    Sandbox.downFromRecord(dir);
  }
});

t("down leaves alone a recorded pid that now runs another process", async () => {
  const dir = join(ROOT, ".lace", `down-test-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const bystander = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
  try {
    await waitFor("sleep to start", () => startTime(bystander.pid!) !== undefined);
    writeFileSync(join(dir, "sandbox.json"), JSON.stringify({
      controller: false, prefix: `dx${process.pid.toString(36)}-`, dir, nodes: 1, created: new Date().toISOString(),
      pids: { store: bystander.pid }, starts: { store: startTime(bystander.pid!)! - 1 }, pods: [],
    }));
    assert.ok(Sandbox.downFromRecord(dir));
    await sleep(100);
    assert.ok(alive(bystander.pid!), "the process that reused the pid is not signalled");
    assert.not.ok(existsSync(dir));
  } finally {
    bystander.kill("SIGKILL");
  }
});

t.run();
