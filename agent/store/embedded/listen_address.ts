/**
 * Where the embedded API server listens: `--listen unix:<path>` or a
 * loopback `host:port`, and the checks that make a socket path safe to
 * take (never a file deleted by mistake, never a live server taken over).
 *
 * @example
 * parseListen("127.0.0.1:6443"); // { kind: "tcp", host: "127.0.0.1", port: 6443 }
 * await freeSocketPath("/run/lace/api.sock");
 */
import { lstatSync, unlinkSync } from "node:fs";
import { connect } from "node:net";

export type ListenAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

const LOOPBACK = new Set(["127.0.0.1", "::1", "[::1]", "localhost"]);

/** Parses `--listen`; anything but a unix socket or a loopback address is refused. */
export function parseListen(text: string): ListenAddress {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (!path) throw new Error(`Invalid listen address "${text}": expected unix:<path>`);
    return { kind: "unix", path };
  }
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`Invalid listen address "${text}": expected unix:<path> or 127.0.0.1:<port>`);
  const [, host, port] = m;
  if (!LOOPBACK.has(host)) {
    throw new Error(`Refusing to listen on "${text}": the embedded store serves this machine only, so it listens on a unix socket or loopback only`);
  }
  const n = Number(port);
  if (n > 65535) throw new Error(`Invalid listen address "${text}": port must be 0-65535, got ${port}`);
  return { kind: "tcp", host: host.replace(/^\[|\]$/g, ""), port: n };
}

/**
 * Makes `path` free for a new socket: nothing there, or a stale socket no
 * server answers on (removed). Refuses anything else, so a mistyped
 * `--listen` never deletes a file and a second server never takes over.
 */
export async function freeSocketPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (!st.isSocket()) {
    const what = st.isDirectory() ? "a directory" : st.isSymbolicLink() ? "a symbolic link" : st.isFile() ? "a regular file" : "not a socket";
    throw new Error(`Refusing to listen on unix:${path}: the path exists and is ${what}, expected a socket or nothing; remove it or choose another path`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    const done = (answer: boolean) => {
      probe.destroy();
      resolve(answer);
    };
    probe.once("connect", () => done(true));
    probe.once("error", () => done(false));
    probe.setTimeout(1000, () => done(true));
  });
  if (live) throw new Error(`Refusing to listen on unix:${path}: another server is listening on this socket; stop it first or choose another path`);
  unlinkSync(path);
}

