/**
 * Where the `lace-cni` executable is: dist/lace-cni, compiled from
 * agent/cni/shim/lace-cni.c by `npm run build`. In a checkout it is
 * (re)built on first use when missing or older than its source, so tests
 * and the sandbox never run a stale one.
 *
 * @example
 * execFileSync(cniExecutable(ROOT), [], { env: { CNI_COMMAND: "VERSION" } });
 */
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

/** The path of the built executable under `root` (a checkout or the installed package). */
export function cniExecutable(root: string): string {
  const exe = join(root, "dist", "lace-cni");
  const source = join(root, "agent", "cni", "shim", "lace-cni.c");
  if (!existsSync(source)) {
    if (existsSync(exe)) return exe;
    throw new Error(`The lace-cni executable is missing: expected ${exe} (npm run build compiles it)`);
  }
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(source).mtimeMs) {
    try {
      execFileSync("sh", [join(root, "agent", "cni", "shim", "build.sh")], { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
    } catch (e) {
      throw new Error(`Cannot build the lace-cni executable from ${source}: ${((e as { stderr?: string }).stderr || (e as Error).message).trim()}`);
    }
  }
  return exe;
}
