/**
 * The build context of the lace-cni image (see `Containerfile`), staged
 * from a built checkout into one directory:
 * - `app/`: what goes to /opt/lace — package.json, lace.yaml, bin/lace.js,
 *   dist/ (the bundles, the BPF object dist/bpf/srv6.o, the CNI executable
 *   dist/lace-cni) and the production dependencies with their native
 *   prebuilds (netlink, better-sqlite3, koffi), copied from the checkout's
 *   node_modules as `npm ls --omit=dev` lists them, so staging needs no
 *   registry and no compiler;
 * - `links/`: /usr/local/bin/lace, a symlink to /opt/lace/bin/lace.js;
 * - `rootfs/` (base `host` only): the userland the image runs, taken from
 *   this machine (./rootfs.ts): node, the commands the agent execs (nft,
 *   mount), ip and tc for an operator, sh and env, and libbpf.
 *
 * @example
 * stageContext("/work/.lace/image", { base: "host" });
 * // podman build -f Containerfile --build-arg BASE=host /work/.lace/image
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { PACKAGE_ROOT } from "../../agent/package_root.ts";
import { assembleRootfs } from "./rootfs.ts";

/** The bases the Containerfile offers: this machine's userland, or the official node:20-slim image. */
export const BASES = ["host", "node-slim"] as const;
export type Base = typeof BASES[number];

/** Where the application lives in the image. */
export const APP_DIR = "/opt/lace";

/**
 * What the agent and the controller run besides node: `nft` (plugins/srv6/nft.ts), `mount` (bpffs,
 * plugins/srv6/libbpf.ts), `env` (bin/lace.js's `#!/usr/bin/env node`); `ip`, `tc`, `umount` and `sh`
 * for an operator inside the container.
 */
export const HOST_EXECUTABLES = ["nft", "mount", "umount", "ip", "tc", "env", "sh"];
/** Loaded with dlopen through koffi: the bpf backend's libbpf (Debian's libbpf1). */
export const HOST_LIBRARIES = ["libbpf.so.1"];

/** Parts of dependencies that only building them needs (better-sqlite3's sources and objects). */
const PRUNED = [/^better-sqlite3\/(deps|src)(\/|$)/, /^better-sqlite3\/build\/(?!Release(\/better_sqlite3\.node)?$)/, /\/prebuilds\/(?!linux-x64)[^/]+$/, /^@koromix\/koffi-linux-x64\/musl_x64$/];

/** The production dependencies' directories, relative to the root's node_modules. */
export function productionPackages(root = PACKAGE_ROOT): string[] {
  const out = execFileSync("npm", ["ls", "--omit=dev", "--parseable", "--all"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const modules = join(root, "node_modules");
  return out.split("\n").filter((p) => p.startsWith(modules + "/")).map((p) => relative(modules, p));
}

/**
 * Stages the context in `dir` (emptied first) from the checkout `root` (default this one), taking the
 * bundle from `dist` (default root/dist); returns the native addons it copied.
 */
export function stageContext(dir: string, opts: { base: Base; root?: string; dist?: string }): { nativeAddons: string[] } {
  const root = opts.root ?? PACKAGE_ROOT;
  const dist = opts.dist ?? join(root, "dist");
  for (const f of ["lace.js", "lace-cni", "bpf/srv6.o"]) {
    if (!existsSync(join(dist, f))) throw new Error(`Cannot stage the image: ${join(dist, f)} is missing; run \`npm run build\` first`);
  }
  rmSync(dir, { recursive: true, force: true });
  const app = join(dir, "app");
  mkdirSync(join(app, "bin"), { recursive: true });
  for (const f of ["package.json", "lace.yaml", "bin/lace.js"]) cpSync(join(root, f), join(app, f));
  cpSync(dist, join(app, "dist"), { recursive: true });

  const modules = join(root, "node_modules");
  const packages = productionPackages(root);
  for (const pkg of packages) {
    cpSync(join(modules, pkg), join(app, "node_modules", pkg), {
      recursive: true,
      dereference: true,
      // Nested node_modules are listed (and copied) as packages of their own, dev ones left out.
      filter: (src) => {
        const rel = relative(modules, src);
        return !(rel !== pkg && rel.startsWith(pkg + "/node_modules")) && !PRUNED.some((re) => re.test(rel));
      },
    });
  }
  // Nested dependencies of a package copied above (…/x/node_modules/y) come after it in the list.
  const nativeAddons = findFiles(join(app, "node_modules"), (f) => f.endsWith(".node"));

  mkdirSync(join(dir, "links/usr/local/bin"), { recursive: true });
  symlinkSync(`${APP_DIR}/bin/lace.js`, join(dir, "links/usr/local/bin/lace"));

  if (opts.base === "host") {
    assembleRootfs(join(dir, "rootfs"), { executables: [process.execPath, ...HOST_EXECUTABLES], libraries: HOST_LIBRARIES, elfFiles: nativeAddons });
  }
  return { nativeAddons: nativeAddons.map((f) => relative(app, f)) };
}

function findFiles(dir: string, match: (f: string) => boolean, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) findFiles(full, match, out);
    else if (match(full)) out.push(full);
  }
  return out;
}
