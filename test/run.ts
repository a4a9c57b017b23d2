/**
 * The project's test runner: finds every `*_test.ts` beside the code, runs
 * them all in one uvu queue, and ends with the plain line
 * `tests: N passed, N failed, N skipped`.
 *
 * Usage:
 *   node --import tsx test/run.ts [--portable] [path-filter ...]
 *   deno run -A test/run.ts --portable
 *
 * `--portable` runs only the suites that must pass on both Node.js and Deno:
 * `core/`, the network-type plugins and `examples/`. Everything else (the
 * kernel dataplane, the agent, stores over HTTP) runs on Node.js only.
 */
import { readdirSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const args = process.argv.slice(2);
const portable = args.includes("--portable");
const filters = args.filter((a) => !a.startsWith("--"));

const PORTABLE_DIRS = ["core", "plugins/l3", "plugins/l2", "plugins/external", "examples"];
const ALL_DIRS = ["core", "plugins", "agent", "examples", "test", "deploy", "bench"];

function walk(dir: string, out: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names.sort()) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (name.endsWith("_test.ts")) out.push(full);
  }
}

const files: string[] = [];
for (const d of portable ? PORTABLE_DIRS : ALL_DIRS) walk(join(root, d), files);
const selected = files.filter((f) => {
  const rel = relative(root, f).split(sep).join("/");
  return filters.length === 0 || filters.some((flt) => rel.includes(flt));
});

const g = globalThis as unknown as { UVU_DEFER: number; UVU_QUEUE: unknown[][]; UVU_INDEX: number };
g.UVU_DEFER = 1;
g.UVU_QUEUE = [];
const uvu = await import("uvu");
for (const [i, file] of selected.entries()) {
  g.UVU_QUEUE.push([relative(root, file)]);
  g.UVU_INDEX = i;
  await import(pathToFileURL(file).href);
}

// uvu prints its own totals; keep a copy to print the plain closing line.
let captured = "";
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  captured += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
  if (captured.length > 4096) captured = captured.slice(-4096);
  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;
await uvu.exec(false);
process.stdout.write = write;

// deno-lint-ignore no-control-regex
const plain = captured.replace(/\x1b\[[0-9;]*m/g, "");
const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const failed = Math.max(0, total - passed);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped (${selected.length} files)`);
if (failed > 0 || selected.length === 0) process.exitCode = 1;
