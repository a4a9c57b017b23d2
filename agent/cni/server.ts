/**
 * The agent's end of the CNI socket: a unix socket only root can open
 * (socket 0600 in a directory 0700). The `lace-cni` executable
 * (agent/cni/shim/lace-cni.c) writes one JSON line per invocation,
 * `{"env":{"CNI_COMMAND":"ADD",...},"stdin":"<config>"}`; the server answers
 * `<exit status>\n<stdout>` and closes, and the executable prints that.
 *
 * @example
 * const server = await CniServer.listen("/run/lace/cni.sock", (req) => agent.handle(req));
 * await server.close();
 */
import { rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { listenOwnerOnly } from "./owner_socket.ts";
import { answerInvocation, type CniHandler, type InvocationAnswer } from "./invocation.ts";
import { CNI_ERRORS, cniError } from "./spec.ts";

export type { CniHandler } from "./invocation.ts";

/** One forwarded invocation, as the executable writes it. */
interface Forwarded {
  env: Record<string, string>;
  stdin: string;
}

export class CniServer {
  private readonly open = new Set<Socket>();
  private constructor(readonly path: string, private readonly server: Server) {}

  /** Listens on `path`, replacing a stale socket left by an earlier agent. */
  static async listen(path: string, handler: CniHandler): Promise<CniServer> {
    const server = createServer();
    const cni = new CniServer(path, server);
    server.on("connection", (conn) => cni.serve(conn, handler));
    await listenOwnerOnly(server, path);
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
      const answer = (a: InvocationAnswer) => conn.end(`${a.exitCode}\n${a.stdout}`);
      let fwd: Forwarded;
      try {
        fwd = JSON.parse(buf.slice(0, nl)) as Forwarded;
        if (typeof fwd?.env !== "object" || fwd.env === null || typeof fwd.stdin !== "string") throw new Error("expected {env, stdin}");
      } catch (e) {
        const err = cniError(CNI_ERRORS.DECODE_FAILURE, "The agent cannot decode the request from the CNI plugin: is lace-cni the same version as the agent?", (e as Error).message);
        answer({ exitCode: 1, stdout: JSON.stringify(err) + "\n" });
        return;
      }
      void answerInvocation(fwd.env, fwd.stdin, handler).then(answer);
    });
  }

  async close(): Promise<void> {
    for (const c of this.open) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
