/**
 * Listens on a unix socket only its owner (root) can open: the directory
 * 0700, the socket 0600 from the moment it exists (no window in which
 * others can connect), a stale socket of an earlier process replaced. The
 * agent's CNI and debug sockets both listen this way.
 *
 * @example
 * await listenOwnerOnly(createServer(handler), "/run/lace/debug.sock");
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";

/** A server that can listen on a path (net and http servers alike). */
interface Listener {
  once(event: "error", fn: (e: Error) => void): unknown;
  listen(path: string, fn: () => void): unknown;
}

export async function listenOwnerOnly(server: Listener, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  chmodSync(dirname(path), 0o700);
  rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const mask = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(mask);
    }
  });
  chmodSync(path, 0o600);
}
