/**
 * The image's build context (./context.ts), staged without a container
 * tool: the application directory holds the bundle and the production
 * dependencies only, with their native addons, and runs on its own; the
 * `lace` link points into it; an unknown base is refused before anything
 * is staged (./build.ts).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT, PACKAGE_VERSION } from "../../agent/package_root.ts";
import { APP_DIR, type Base, stageContext } from "./context.ts";
import { buildImage } from "./build.ts";

const t = suite("image context");
// Outside the checkout, so that Node.js cannot fall back on the checkout's node_modules.
const dir = join(mkdtempSync(join(tmpdir(), "lace-image-context-test-")), "context");
const hasBundle = ["lace.js", "lace-cni", "bpf/srv6.o"].every((f) => existsSync(join(PACKAGE_ROOT, "dist", f)));
if (!hasBundle) console.log("image context: skipped: dist/ is not built (npm run build)");

t.after(() => {
  rmSync(join(dir, ".."), { recursive: true, force: true });
});

(hasBundle ? t : t.skip)("the staged application holds the bundle and the production dependencies only, and runs from there", () => {
  const { nativeAddons } = stageContext(dir, { base: "node-slim" });
  const app = join(dir, "app");
  for (const f of ["package.json", "lace.yaml", "bin/lace.js", "dist/lace.js", "dist/lace-cni", "dist/bpf/srv6.o", "dist/plugins/srv6.js"]) assert.ok(existsSync(join(app, f)), f);
  assert.equal(nativeAddons.sort(), [
    "node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node",
    "node_modules/better-sqlite3/build/Release/better_sqlite3.node",
    "node_modules/netlink/prebuilds/linux-x64/node.napi.node",
  ]);
  for (const dev of ["typescript", "rollup", "deno", "tsx", "uvu", "esbuild"]) assert.not.ok(existsSync(join(app, "node_modules", dev)), `dev dependency ${dev} left out`);
  assert.not.ok(existsSync(join(app, "node_modules/better-sqlite3/deps")), "better-sqlite3's sources left out");
  assert.not.ok(existsSync(join(dir, "rootfs")), "the node-slim base needs no root of ours");
  assert.is(readlinkSync(join(dir, "links/usr/local/bin/lace")), `${APP_DIR}/bin/lace.js`);
  // The staged copy works on its own: its node_modules are enough for the command line and the built-in plugins.
  const run = (args: string[]) => spawnSync(process.execPath, [join(app, "bin/lace.js"), ...args], { cwd: dir, encoding: "utf8" });
  assert.is(run(["--version"]).stdout, `${PACKAGE_VERSION}\n`);
  const v = run(["validate", "-f", join(PACKAGE_ROOT, "examples"), "--config", join(app, "lace.yaml")]);
  assert.is(v.status, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^ok: \d+ resources\n$/);
});

t("an unknown base is refused, naming it, before anything is staged", () => {
  assert.throws(() => buildImage({ base: "alpine" as Base, contextDir: dir + "-never" }), /base must be one of host, node-slim, got "alpine"/);
  assert.not.ok(existsSync(dir + "-never"));
});

t.run();
