/**
 * The agent's end of the CNI socket: a unix socket only root can open
 * (socket 0600 in a directory 0700) that reads one JSON request line from
 * the `lace-cni` executable and answers one JSON reply.
 *
 * @example
 * const server = await CniServer.listen("/run/lace/cni.sock", (req) => agent.handle(req));
 * await server.close();
 */
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { type AgentReply, CNI_ERRORS, type CniRequest } from "./spec.ts";

export type CniHandler = (request: CniRequest) => Promise<AgentReply>;

export class CniServer {
  private readonly open = new Set<Socket>();
  private constructor(readonly path: string, private readonly server: Server) {}

  /** Listens on `path`, replacing a stale socket left by an earlier agent. */
  static async listen(path: string, handler: CniHandler): Promise<CniServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    chmodSync(dirname(path), 0o700);
    rmSync(path, { force: true });
    const server = createServer();
    const cni = new CniServer(path, server);
    server.on("connection", (conn) => cni.serve(conn, handler));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // The socket is created 0600 from the start: no window in which others can connect.
      const mask = process.umask(0o177);
      try {
        server.listen(path, () => resolve());
      } finally {
        process.umask(mask);
      }
    });
    chmodSync(path, 0o600);
    return cni;
  }

  private serve(conn: Socket, handler: CniHandler): void {
    this.open.add(conn);
    conn.on("close", () => this.open.delete(conn));
    conn.on("error", () => undefined);
    conn.setEncoding("utf8");
    let buf = "";
    let done = false;
    conn.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0 || done) return;
      done = true;
      let request: CniRequest;
      try {
        request = JSON.parse(buf.slice(0, nl)) as CniRequest;
      } catch (e) {
        conn.end(JSON.stringify({ ok: false, code: CNI_ERRORS.DECODE_FAILURE, msg: "The agent cannot decode the request from the CNI plugin", details: (e as Error).message }));
        return;
      }
      handler(request).then(
        (reply) => conn.end(JSON.stringify(reply)),
        (e) => conn.end(JSON.stringify({ ok: false, code: CNI_ERRORS.AGENT_FAILED, msg: (e as Error).message })),
      );
    });
  }

  async close(): Promise<void> {
    for (const c of this.open) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
