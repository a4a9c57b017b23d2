/**
 * `npm run image`: stages the build context (./context.ts) and builds the
 * lace-cni image from `Containerfile` with podman, rootful and offline.
 * Podman, not docker: it is a Debian package (`apt-get install podman
 * runc`) that builds and runs images as root with no daemon to start, which
 * is what CI (a fresh machine, a script, no services) can install; the
 * docker found on these machines is a client with no engine. Every podman
 * call here reads ./containers.conf (runc, rlimits this machine allows, no
 * network by default) through CONTAINERS_CONF, unless the caller set one,
 * so /etc/containers is left alone.
 *
 * Usage: `npm run image [-- --base host|node-slim] [--tag <name>]`
 * (`npm run build` first: the image is made from dist/).
 *
 * @example
 * const { tag, seconds } = buildImage({ base: "host" });
 * runInImage(tag, ["lace", "--version"]).stdout; // "0.1.0\n"
 */
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PACKAGE_ROOT, PACKAGE_VERSION } from "../../agent/package_root.ts";
import { type Base, BASES, stageContext } from "./context.ts";

/** The name the deploy manifests give the image, fully qualified the way a node's runtime reads `lace-cni/lace:<v>`. */
export const IMAGE_TAG = `docker.io/lace-cni/lace:${PACKAGE_VERSION}`;

const CONTAINERS_CONF = join(PACKAGE_ROOT, "deploy", "image", "containers.conf");

/** Runs podman with this project's containers.conf. */
export function podman(args: string[], opts: { input?: string; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync("podman", args, {
    encoding: "utf8",
    input: opts.input,
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 << 20,
    // A CONTAINERS_CONF of the caller's own wins: ours is fitted to this kind of machine.
    env: { CONTAINERS_CONF, ...process.env },
  });
}

/** Why podman cannot build images here, or undefined when it can. */
export function podmanProblem(): string | undefined {
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "building the image needs root (rootful podman)";
  const r = podman(["info", "--format", "{{.Host.OCIRuntime.Name}}"], { timeoutMs: 60_000 });
  if (r.error) return `podman is not installed (apt-get install podman runc): ${r.error.message}`;
  if (r.status !== 0) return `podman does not work here: ${(r.stderr || r.stdout).trim().split("\n").pop()}`;
  return undefined;
}

export interface BuildImageOptions {
  base?: Base;
  tag?: string;
  /** The staging directory (emptied). Default .lace/image in the checkout. */
  contextDir?: string;
  /** Build from this checkout or package root (its dist/ and node_modules). */
  root?: string;
  /** The bundle to put in the image. Default root/dist. */
  dist?: string;
}

/** Stages the context and builds the image; throws with podman's own words when it fails. */
export function buildImage(opts: BuildImageOptions = {}): { tag: string; seconds: number; bytes: number } {
  const base = opts.base ?? "host";
  if (!(BASES as readonly string[]).includes(base)) throw new Error(`Cannot build the image: base must be one of ${BASES.join(", ")}, got "${base}"`);
  const tag = opts.tag ?? IMAGE_TAG;
  const contextDir = opts.contextDir ?? join(PACKAGE_ROOT, ".lace", "image");
  const started = performance.now();
  stageContext(contextDir, { base, root: opts.root, dist: opts.dist });
  const args = ["build", "--network", "none", "-f", join(PACKAGE_ROOT, "Containerfile"), "--build-arg", `BASE=${base}`, "--build-arg", `VERSION=${PACKAGE_VERSION}`, "-t", tag, contextDir];
  // The node-slim base is fetched from a registry and its RUN step calls apt-get: the build's
  // containers share the machine's network (no bridge, no firewall rules added). The host base needs none.
  if (base === "node-slim") args.splice(1, 2, "--network", "host");
  const r = podman(args);
  if (r.status !== 0) throw new Error(`Cannot build the image: podman build exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || String(r.error)).trim().split("\n").slice(-5).join("\n")}`);
  const seconds = (performance.now() - started) / 1000;
  const size = podman(["image", "inspect", "--format", "{{.Size}}", tag]);
  return { tag, seconds, bytes: Number(size.stdout.trim()) || 0 };
}

/** Runs `command` in a throwaway container of `image` (no network); `podmanArgs` go before the image. */
export function runInImage(image: string, command: string[], podmanArgs: string[] = []): SpawnSyncReturns<string> {
  return podman(["run", "--rm", "--network", "none", ...podmanArgs, image, ...command], { timeoutMs: 120_000 });
}

function main(argv: string[]): number {
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const problem = podmanProblem();
  if (problem) {
    console.error(`npm run image: ${problem}`);
    return 1;
  }
  try {
    const base = (opt("--base") ?? "host") as Base;
    const { tag, seconds, bytes } = buildImage({ base, tag: opt("--tag") });
    console.log(`built ${tag} (base ${base}) in ${seconds.toFixed(1)} s, ${(bytes / 1e6).toFixed(0)} MB`);
    return 0;
  } catch (e) {
    console.error(`npm run image: ${(e as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
