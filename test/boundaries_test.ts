/**
 * The project's import boundaries and the rule that a network type's
 * declarations, not its name, decide what the core and the agent do, read
 * from the sources (tests and test helpers excepted):
 * - `core/` imports neither `agent/` nor `plugins/`;
 * - `agent/` reaches network types and dataplanes only through the plugin
 *   registry: it imports nothing from `plugins/`;
 * - plugins import the core only through `lace-cni/plugin` (core/plugin/mod.ts);
 * - outside `plugins/`, no code compares a network type with the built-in
 *   names (`"l3"`, `"l2"`, `"external"`).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const t = suite("boundaries");
const root = fileURLToPath(new URL("..", import.meta.url));

/** Production sources under `dir`: `.ts` files that are not tests, test suites or test helpers. */
function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (name === "node_modules" || name === "testdata" || name.startsWith(".")) continue;
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith(".ts") && !/(_test|_suite)\.ts$/.test(name) && name !== "testing.ts" && !name.endsWith(".d.ts")) out.push(full);
    }
  };
  walk(join(root, dir));
  return out;
}

/** `file:line: text` of every line of `files` matching `pattern`. */
function offending(files: string[], pattern: RegExp): string[] {
  const hits: string[] = [];
  for (const f of files) {
    readFileSync(f, "utf8").split("\n").forEach((line, i) => {
      if (pattern.test(line)) hits.push(`${relative(root, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  return hits;
}

const IMPORT_FROM = (what: string) => new RegExp(`^\\s*(import|export)\\b.*from\\s+["'](\\.\\./)+${what}/`);

t("core/ imports nothing from agent/ or plugins/", () => {
  const files = sources("core");
  assert.ok(files.length > 50, `found ${files.length} core sources`);
  assert.equal(offending(files, IMPORT_FROM("(agent|plugins)")), []);
});

t("agent/ imports nothing from plugins/: network types and dataplanes come from the registry", () => {
  const files = sources("agent");
  assert.ok(files.length > 30, `found ${files.length} agent sources`);
  assert.equal(offending(files, IMPORT_FROM("plugins")), []);
});

t("plugins (built-in and the example) import the core only through lace-cni/plugin (core/plugin/mod.ts)", () => {
  const files = [...sources("plugins"), ...sources("examples/plugins")];
  assert.ok(files.length > 20, `found ${files.length} plugin sources`);
  const core = /^\s*(import|export)\b.*from\s+["'](\.\.\/)+core\/(?!plugin\/mod\.ts["'])/;
  assert.equal(offending(files, core), []);
  // Nor does one plugin reach into another (or into the agent).
  assert.equal(offending(files, /^\s*(import|export)\b.*from\s+["']\.\.\/(\.\.\/)?(agent|l3|l2|external|srv6)\//), []);
});

t("no code outside plugins/ branches on a built-in type's name", () => {
  const files = [...sources("core"), ...sources("agent")];
  // Double quotes: the code's. (The CRD's CEL rules for the built-in types, in core/resources/schema.ts, quote
  // with single quotes inside a string: the API server checks them where no plugin runs.)
  const compare = /(===|!==|==|!=)\s*"(l3|l2|external)"|"(l3|l2|external)"\s*(===|!==|==|!=)|case\s+"(l3|l2|external)"/;
  assert.equal(offending(files, compare), []);
  // The check finds what it looks for: the sample line below.
  const self = offending([fileURLToPath(import.meta.url)], compare);
  assert.ok(self.some((l) => l.endsWith("// sample: if (spec.type === \"l2\") …")), self.join("\n"));
});

// sample: if (spec.type === "l2") …

t.run();
