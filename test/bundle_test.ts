// Node.js only: builds the rollup bundle and runs the `lace` bin from it.
// The build goes to a scratch directory under .lace/ (git-ignored) so the
// test never disturbs dist/; being inside the checkout, the bundle still
// finds its external packages in node_modules/.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const t = suite("bundle");

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const scratch = join(root, ".lace", `bundle-test-${process.pid}`);
const dist = join(scratch, "dist");
const bin = join(scratch, "bin", "lace.js");

function run(script: string, args: string[]) {
  return spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: "utf8", timeout: 30_000 });
}

t.before(() => {
  mkdirSync(join(scratch, "bin"), { recursive: true });
  copyFileSync(join(root, "bin", "lace.js"), bin);
  // `rollup -c`, exactly as `npm run build` runs it, with the output redirected.
  execFileSync(process.execPath, [join(root, "node_modules", "rollup", "dist", "bin", "rollup"), "-c", "--silent", "--dir", dist], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
});

t.after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

t("builds the command line, the library and the built-in plugins", () => {
  for (const file of ["lace.js", "lace-core.js", "plugins/l3.js", "plugins/l2.js", "plugins/external.js"]) {
    assert.ok(existsSync(join(dist, file)), `dist/${file} was not built`);
  }
});

t("`lace --help` exits 0 from the bundle", () => {
  const r = run(bin, ["--help"]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: lace /);
  assert.match(r.stdout, /\bvalidate\b/);
});

t("`node dist/lace.js --help` runs the program itself, not only when imported", () => {
  // The entry-point check in agent/cli/main.ts only works if main.ts is bundled
  // into dist/lace.js itself rather than into a shared chunk behind a facade.
  const r = run(join(dist, "lace.js"), ["--help"]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: lace /);
  assert.match(r.stdout, /\bsandbox\b/);
});

t("the bundled command line finds the bundled built-in plugins", () => {
  const r = run(bin, ["validate", "-f", "examples/"]);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok: \d+ resources/m);
});

t("the bundled library loads built-ins by name", async () => {
  const lib = await import(pathToFileURL(join(dist, "lace-core.js")).href);
  const config = lib.parseConfig("plugins: [lace-cni/l3, lace-cni/l2, lace-cni/external]", "lace.yaml");
  const loaded = await lib.loadPlugins(config, { baseUrl: pathToFileURL(join(root, "lace.yaml")) });
  assert.equal(loaded.networkTypes.types(), ["l3", "l2", "external"]);
  assert.equal(loaded.plugins.map((p: { source: string }) => p.source.slice(pathToFileURL(dist).href.length)), [
    "/plugins/l3.js",
    "/plugins/l2.js",
    "/plugins/external.js",
  ]);
});

t("lace-cni/plugin is a bundle of its own: the plugin API, resource helpers, IP types and field checks, no controller or IPAM", async () => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: Record<string, string> };
  assert.is(pkg.exports["./plugin"], "./dist/lace-plugin.js");
  assert.is.not(pkg.exports["./plugin"], pkg.exports["."]);
  const api = await import(pathToFileURL(join(dist, "lace-plugin.js")).href);
  for (const name of ["definePlugin", "PLUGIN_API_VERSION", "checkSubnets", "forbidFields", "checkPrefix", "longestUsablePrefix", "heldBlocks", "IPAddress", "Prefix"]) {
    assert.ok(name in api, `lace-cni/plugin exports ${name}`);
  }
  for (const name of ["DesiredStateBuilder", "HostLocalAllocator", "GlobalAllocator", "BlockAllocator", "BindingRules", "loadPlugins"]) {
    assert.not.ok(name in api, `lace-cni/plugin does not export ${name}`);
  }
});

t("the bundled command line loads a third-party plugin written in TypeScript (the example segment type)", () => {
  const dir = join(root, "examples", "plugins", "segment", "testdata");
  const r = run(bin, ["validate", "-f", join(dir, "shop.yaml"), "--config", join(dir, "lace.yaml")]);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok: 1 resource/m);
  const without = run(bin, ["validate", "-f", join(dir, "shop.yaml")]);
  assert.is(without.status, 1, "without the plugin, the type is unknown");
  assert.match(without.stdout + without.stderr, /spec\.type: expected one of the known network types "external", "l2", "l3", got "segment"/);
});

t("the bin says to build when dist/ is missing", () => {
  const lonely = join(scratch, "no-dist", "bin", "lace.js");
  mkdirSync(join(scratch, "no-dist", "bin"), { recursive: true });
  copyFileSync(join(root, "bin", "lace.js"), lonely);
  const r = run(lonely, ["--help"]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /dist\/lace\.js is missing: run `npm run build`/);
});

t.run();
