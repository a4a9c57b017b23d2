/**
 * Installs the CNI plugin on a node: the `lace-cni` executable into the
 * runtime's CNI bin dir (mode 0755) and its conflist into the runtime's
 * configuration dir (mode 0644). What the agent DaemonSet's init container
 * runs (`lace install-cni`), against the host's `/opt/cni/bin` and
 * `/etc/cni/net.d`.
 *
 * Each file is written beside its destination under a temporary name,
 * flushed, then renamed over it: a kubelet or container runtime reading the
 * directory at any moment sees the old file or the new one, never half of
 * one, and a runtime executing the old binary keeps running it (writing in
 * place would fail with ETXTBSY). Running it again with the same inputs
 * changes nothing. Every argument is checked before anything is written.
 *
 * @example
 * const r = installCni({ executable: "/opt/lace/dist/lace-cni", binDir: "/host/opt/cni/bin", confDir: "/host/etc/cni/net.d" });
 * r.executable; // { path: "/host/opt/cni/bin/lace-cni", changed: true }
 */
import { chmodSync, closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { CNI_CONFLIST_FILE, CNI_EXECUTABLE_NAME, cniConflist } from "./conflist.ts";
import { DEFAULT_AGENT_SOCKET } from "./spec.ts";

export interface InstallCniOptions {
  /** The compiled `lace-cni` executable to copy. */
  executable: string;
  /** The runtime's CNI bin dir (the host's /opt/cni/bin). */
  binDir: string;
  /** The runtime's CNI configuration dir (the host's /etc/cni/net.d). */
  confDir: string;
  /** The agent's CNI socket as seen on the node. Default /run/lace/cni.sock. */
  agentSocket?: string;
}

/** One installed file, and whether this run wrote it (false: it was already identical). */
export interface InstalledFile {
  path: string;
  changed: boolean;
}

export interface InstallCniResult {
  executable: InstalledFile;
  conflist: InstalledFile;
}

/** Installs the executable and the conflist; throws, having written nothing, when an argument is unusable. */
export function installCni(opts: InstallCniOptions): InstallCniResult {
  const agentSocket = opts.agentSocket ?? DEFAULT_AGENT_SOCKET;
  requireDirectory("binDir (--bin-dir)", opts.binDir);
  requireDirectory("confDir (--conf-dir)", opts.confDir);
  if (!isAbsolute(agentSocket)) throw new Error(`Cannot install the CNI plugin: agentSocket (--agent-socket) must be an absolute path, got "${agentSocket}"`);
  let binary: Buffer;
  try {
    if (!statSync(opts.executable).isFile()) throw new Error("it is not a regular file");
    binary = readFileSync(opts.executable);
  } catch (e) {
    throw new Error(`Cannot install the CNI plugin: executable (--executable) "${opts.executable}" cannot be read: ${(e as Error).message}`);
  }
  const conflist = Buffer.from(JSON.stringify(cniConflist(agentSocket), null, 2) + "\n");
  return {
    executable: replaceFile(opts.binDir, CNI_EXECUTABLE_NAME, binary, 0o755),
    conflist: replaceFile(opts.confDir, CNI_CONFLIST_FILE, conflist, 0o644),
  };
}

function requireDirectory(name: string, dir: string): void {
  let ok = false;
  try {
    ok = statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new Error(`Cannot install the CNI plugin: ${name} "${dir}" is not a directory`);
}

/** Puts `content` at dir/name with `mode` by write-then-rename, unless it is already there. */
function replaceFile(dir: string, name: string, content: Buffer, mode: number): InstalledFile {
  const path = join(dir, name);
  // Temporaries a killed earlier run left behind.
  for (const f of readdirSync(dir)) if (f.startsWith(`.${name}.`) && f.endsWith(".tmp")) rmSync(join(dir, f), { force: true });
  if (sameFile(path, content, mode)) return { path, changed: false };
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    for (let off = 0; off < content.length;) off += writeSync(fd, content, off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw new Error(`Cannot install the CNI plugin: writing ${tmp} failed: ${(e as Error).message}`);
  }
  closeSync(fd);
  // The umask may have narrowed the mode given to open.
  chmodSync(tmp, mode);
  renameSync(tmp, path);
  // The rename itself is durable once the directory is flushed.
  const dfd = openSync(dir, "r");
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  return { path, changed: true };
}

function sameFile(path: string, content: Buffer, mode: number): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && (st.mode & 0o777) === mode && st.size === content.length && readFileSync(path).equals(content);
  } catch {
    return false;
  }
}
