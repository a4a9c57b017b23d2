/**
 * A container root assembled from this machine's own Debian userland, for
 * an image built without a registry (`FROM scratch`): the executables the
 * image runs and the libraries it loads at run time, each with every shared
 * library `ldd` names, at the paths the host has them (merged-/usr
 * symlinks and library symlinks kept), plus the few files under /etc a
 * process expects.
 *
 * @example
 * assembleRootfs(".lace/image/rootfs", {
 *   executables: [process.execPath, "nft", "sh"],
 *   libraries: ["libbpf.so.1"],          // loaded with dlopen, so ldd of the executables never names them
 *   elfFiles: ["node_modules/better-sqlite3/build/Release/better_sqlite3.node"],
 * });
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, delimiter, dirname, isAbsolute, join, resolve } from "node:path";

export interface RootfsSpec {
  /** Commands (looked up in PATH) or absolute paths of executables to include. */
  executables: string[];
  /** Shared libraries loaded with dlopen (by soname), looked up in the system library directories. */
  libraries: string[];
  /** Other ELF files shipped elsewhere in the image (native addons): only their libraries are added. */
  elfFiles: string[];
}

/** The directories the dynamic loader searches without a cache (Debian's multiarch first). */
const LIBRARY_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"];

/** The absolute path of `command`: itself when absolute, else the first match in PATH. */
export function which(command: string, path = process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"): string {
  if (isAbsolute(command)) {
    if (existsSync(command)) return command;
    throw new Error(`Cannot add "${command}" to the image root: it does not exist`);
  }
  for (const dir of [...path.split(delimiter), "/usr/sbin", "/sbin"]) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  throw new Error(`Cannot add "${command}" to the image root: no such command in PATH (is its Debian package installed?)`);
}

/** The shared libraries (and the program interpreter) `ldd` names for `file`; none for a static file. */
export function sharedLibraries(file: string): string[] {
  let out: string;
  try {
    out = execFileSync("ldd", [file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const text = `${(e as { stdout?: string }).stdout ?? ""}${(e as { stderr?: string }).stderr ?? ""}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new Error(`Cannot list the shared libraries of "${file}": ${text.trim() || (e as Error).message}`);
  }
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const missing = /^\s*(\S+) => not found/.exec(line);
    if (missing) throw new Error(`Cannot add "${file}" to the image root: its library ${missing[1]} is not installed on this machine`);
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

/** The file a soname resolves to in the system library directories. */
export function findLibrary(soname: string): string {
  for (const dir of LIBRARY_DIRS) if (existsSync(join(dir, soname))) return join(dir, soname);
  throw new Error(`Cannot add library "${soname}" to the image root: not found in ${LIBRARY_DIRS.join(", ")} (is its Debian package installed?)`);
}

/**
 * Copies `path` into `root` at the same place, keeping symlinks as symlinks
 * (and copying what they point at), so `/usr/sbin/ip -> /usr/bin/ip` and
 * `libbpf.so.1 -> libbpf.so.1.1.2` resolve inside the root as on the host.
 */
export function copyIntoRoot(root: string, path: string, seen = new Set<string>()): void {
  // Directories resolved (merged /usr: /lib is /usr/lib), the last component kept as it is.
  const dir = realpathSync(dirname(path));
  const here = join(dir, basename(path));
  if (seen.has(here)) return;
  seen.add(here);
  const st = lstatSync(here);
  const target = join(root, here);
  mkdirSync(join(root, dir), { recursive: true });
  if (st.isSymbolicLink()) {
    const link = readlinkSync(here);
    if (!present(target)) symlinkSync(link, target);
    copyIntoRoot(root, resolve(dir, link), seen);
  } else {
    copyFileSync(here, target);
    chmodSync(target, st.mode & 0o7777);
  }
}

/** Whether `path` exists, a dangling symlink included. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Builds the root under `root` (which should be empty) from `spec`. */
export function assembleRootfs(root: string, spec: RootfsSpec): { files: number } {
  // Everything is looked up before anything is written: a missing piece leaves `root` as it was.
  const elves = [...spec.executables.map((c) => which(c)), ...spec.libraries.map(findLibrary)];
  const libraries = [...elves, ...spec.elfFiles].flatMap(sharedLibraries);
  mkdirSync(root, { recursive: true });
  // The merged-/usr links at the top (/bin -> usr/bin, /lib64 -> usr/lib64, …), as the host has them.
  for (const name of readdirSync("/")) {
    const st = lstatSync(join("/", name));
    if (st.isSymbolicLink() && /^(bin|sbin|lib[0-9a-z]*)$/.test(name) && !present(join(root, name))) symlinkSync(readlinkSync(join("/", name)), join(root, name));
  }
  const seen = new Set<string>();
  for (const file of [...elves, ...libraries]) copyIntoRoot(root, file, seen);
  for (const d of ["tmp", "run", "proc", "sys", "dev", "etc", "var/lib/lace", "usr/local/bin"]) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, "tmp"), 0o1777);
  // Names for the users the manifests run as (root; 65532 for the controller) and for protocols nft prints.
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\nnonroot:x:65532:\n");
  writeFileSync(join(root, "etc/nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\nprotocols: files\nservices: files\n");
  for (const f of ["/etc/protocols", "/etc/services"]) if (existsSync(f)) copyFileSync(f, join(root, f));
  return { files: seen.size };
}
