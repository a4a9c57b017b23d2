/**
 * The image root assembled from this machine's userland (./rootfs.ts),
 * checked without a container tool: programs copied into it run under
 * chroot with only what was copied (root needed for chroot; skipped with
 * the reason otherwise).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assembleRootfs, sharedLibraries, which } from "./rootfs.ts";
import { cniExecutable } from "../../agent/cni/executable.ts";
import { PACKAGE_ROOT } from "../../agent/package_root.ts";

const t = suite("image rootfs");
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot) console.log("image rootfs: the chroot cases skipped: they need root");
let root = "";

t.before.each(() => {
  root = mkdtempSync(join(tmpdir(), "lace-rootfs-test-"));
});
t.after.each(() => {
  rmSync(root, { recursive: true, force: true });
});

t("ldd's libraries of a dynamic executable, none of a static one", () => {
  const libs = sharedLibraries(which("env"));
  assert.ok(libs.some((l) => /\/libc\.so\.6$/.test(l)), libs.join(" "));
  assert.ok(libs.some((l) => /ld-linux/.test(l)), "the program interpreter is named");
  assert.equal(sharedLibraries(cniExecutable(PACKAGE_ROOT)), [], "lace-cni is static");
});

t("a command or library that is not on this machine is refused by name", () => {
  assert.throws(() => assembleRootfs(root, { executables: ["no-such-command-lace"], libraries: [], elfFiles: [] }), /"no-such-command-lace".*no such command in PATH/);
  assert.throws(() => assembleRootfs(root, { executables: ["sh"], libraries: ["libno-such-lace.so.9"], elfFiles: [] }), /library "libno-such-lace.so.9".*not found/);
  assert.equal(readdirSync(root), [], "nothing was written");
});

(isRoot ? t : t.skip)("programs run under chroot with only the root's files: sh, env -> node, nft; dlopen finds libbpf; symlinks stay symlinks", () => {
  assembleRootfs(root, { executables: [process.execPath, "sh", "env", "nft"], libraries: ["libbpf.so.1"], elfFiles: [] });
  const inRoot = (args: string[]) => spawnSync("chroot", [root, ...args], { encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
  const sh = inRoot(["sh", "-c", "echo from-sh"]);
  assert.is(sh.stdout, "from-sh\n", sh.stderr);
  const node = inRoot(["env", "node", "-e", "console.log(process.version)"]);
  assert.is(node.stdout.trim(), process.version, node.stderr);
  const nft = inRoot(["nft", "--version"]);
  assert.is(nft.status, 0, nft.stderr);
  // glibc's dlopen, as koffi.load("libbpf.so.1") calls it, searches the multiarch directory without a cache.
  const dl = inRoot(["node", "-e", "process.dlopen({ exports: {} }, '/no-such.node')"]);
  assert.match(dl.stderr, /no-such\.node/, "node runs its dlopen inside the root");
  assert.ok(lstatSync(join(root, "lib64")).isSymbolicLink(), "merged /usr: /lib64 is a symlink as on the host");
  assert.not.throws(() => assembleRootfs(root, { executables: ["sh"], libraries: [], elfFiles: [] }), "assembling into the same root again adds to it");
  const libbpf = lstatSync(join(root, "usr/lib/x86_64-linux-gnu/libbpf.so.1"));
  assert.ok(libbpf.isSymbolicLink(), "the soname link is kept");
  assert.ok(lstatSync(join(root, "usr/lib/x86_64-linux-gnu", readlinkSync(join(root, "usr/lib/x86_64-linux-gnu/libbpf.so.1")))).isFile(), "and what it points at is copied");
});

t.run();
