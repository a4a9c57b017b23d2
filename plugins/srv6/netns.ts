/**
 * Running code inside another network namespace. The `netlink` package has
 * no namespace support: a socket belongs to the namespace of the thread that
 * creates it. So we switch the calling (main) thread with setns(2) through
 * koffi, run a synchronous function (create a socket, write a sysctl, spawn
 * a process) and switch back before returning. Nothing async may run in
 * between, which is why `inNetns` only takes synchronous functions.
 *
 * @example
 * const sock = inNetns("/run/netns/node-1", () => new RawNetlinkSocket(0));
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import koffi from "koffi";

const CLONE_NEWNET = 0x40000000;

let setnsFn: ((fd: number, nstype: number) => number) | undefined;
let errnoFn: (() => number) | undefined;

function setns(fd: number): void {
  if (!setnsFn) {
    const libc = koffi.load("libc.so.6");
    setnsFn = libc.func("int setns(int fd, int nstype)") as (fd: number, nstype: number) => number;
    const loc = libc.func("int *__errno_location()") as () => unknown;
    errnoFn = () => koffi.decode(loc(), "int") as number;
  }
  if (setnsFn(fd, CLONE_NEWNET) !== 0) {
    throw new Error(`Cannot enter network namespace: setns failed with errno ${errnoFn!()}`);
  }
}

/** Path of a named namespace (`ip netns add NAME`), or the path itself when it already is one. */
export function netnsPath(nameOrPath: string): string {
  return nameOrPath.includes("/") ? nameOrPath : `/run/netns/${nameOrPath}`;
}

/**
 * Runs `fn` with the current thread inside the network namespace at `path`
 * (undefined: the current namespace), then switches back.
 *
 * @example
 * inNetns("/run/netns/pod-a", () => writeFileSync("/proc/sys/net/ipv6/conf/all/forwarding", "1"));
 */
export function inNetns<T>(path: string | undefined, fn: () => T): T {
  if (path === undefined) return fn();
  const target = openNetns(path);
  const home = openSync("/proc/thread-self/ns/net", "r");
  try {
    setns(target);
    try {
      return fn();
    } finally {
      setns(home);
    }
  } finally {
    closeSync(home);
    closeSync(target);
  }
}

function openNetns(path: string): number {
  try {
    return openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    throw new Error(`Cannot open network namespace "${path}": ${code}`);
  }
}

/** Whether a namespace path exists (a missing pod netns on detach is success). */
export function netnsExists(path: string): boolean {
  return existsSync(path);
}

/**
 * Sets a sysctl inside a namespace through /proc/sys (which shows the
 * namespace of the thread that opens it). Returns whether it was written,
 * so callers count only real writes.
 *
 * @example
 * setSysctl(ns, "net/ipv4/conf/all/rp_filter", "0");
 */
export function setSysctl(path: string | undefined, key: string, value: string): boolean {
  return inNetns(path, () => {
    const file = `/proc/sys/${key}`;
    const current = readFileSync(file, "utf8").trim();
    if (current === value) return false;
    writeFileSync(file, value);
    return true;
  });
}

/** Reads a sysctl inside a namespace; undefined when it does not exist. */
export function getSysctl(path: string | undefined, key: string): string | undefined {
  return inNetns(path, () => {
    try {
      return readFileSync(`/proc/sys/${key}`, "utf8").trim();
    } catch {
      return undefined;
    }
  });
}
