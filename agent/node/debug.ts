/**
 * The agent's debug endpoint: plain HTTP on a root-only unix socket
 * (`--debug-socket`, default beside the CNI socket), read by `lace status`
 * and `lace explain` on live state.
 *
 * - `GET /v1/status`: the node, its dataplane backend, whether the agent
 *   is ready, the revision of its desired state and the networks on it;
 * - `GET /v1/path?network=<name>&destination=<address>`: the path the
 *   node's desired state gives new connections from the network to the
 *   address, and what the datapath itself holds for them (the dataplane's
 *   `trace`), so a disagreement between the two is visible.
 *
 * @example
 * const debug = await DebugServer.listen("/run/lace/debug.sock", { node: "node-1", dataplane, state: () => states.stateFor("node-1"), ready: () => agent.ready });
 * // curl --unix-socket /run/lace/debug.sock 'http://lace/v1/path?network=backend&destination=10.40.2.2'
 * await debug.close();
 */
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { listenOwnerOnly } from "../cni/owner_socket.ts";
import { desiredPath, IPAddress, type DataplaneTrace, type DesiredPath, type NodeDesiredState, type PodDataplane } from "../../core/mod.ts";

export interface DebugSource {
  node: string;
  dataplane: Pick<PodDataplane, "capabilities" | "trace">;
  /** The node's current desired state. */
  state: () => NodeDesiredState;
  ready: () => boolean;
}

/** `/v1/status`. */
export interface AgentStatus {
  node: string;
  backend?: string;
  ready: boolean;
  revision: number;
  locator: string;
  networks: { name: string; id: number; endpoints: number }[];
}

/** `/v1/path`: the desired path, and the datapath's answer (or why there is none). */
export interface AgentPath {
  node: string;
  backend?: string;
  desired?: DesiredPath;
  dataplane?: DataplaneTrace;
  /** Why `dataplane` is missing. */
  dataplaneError?: string;
}

/** The answers, apart from HTTP (tests call them directly). */
export async function agentStatus(src: DebugSource): Promise<AgentStatus> {
  const s = src.state();
  const caps = await src.dataplane.capabilities();
  return {
    node: src.node, backend: caps.backend, ready: src.ready(), revision: s.revision, locator: s.locator,
    networks: s.networks.map((n) => ({ name: n.name, id: n.id, endpoints: s.endpoints.filter((e) => e.network === n.name).length })),
  };
}

export async function agentPath(src: DebugSource, network: string, destination: string): Promise<AgentPath> {
  if (!IPAddress.tryParse(destination).ok) throw new RangeError(`destination: expected an IPv4 or IPv6 address, got "${destination}"`);
  const desired = desiredPath(src.state(), network, destination);
  const backend = (await src.dataplane.capabilities()).backend;
  const out: AgentPath = { node: src.node, ...(backend ? { backend } : {}), ...(desired ? { desired } : {}) };
  if (!desired) {
    out.dataplaneError = `network "${network}" has no forwarding context on node ${src.node}: no endpoint of it here, and no path from one`;
  } else if (!src.dataplane.trace) {
    out.dataplaneError = "this dataplane cannot read its state back (no trace)";
  } else {
    try {
      out.dataplane = await src.dataplane.trace({ networkId: desired.networkId, destination });
    } catch (e) {
      out.dataplaneError = (e as Error).message;
    }
  }
  return out;
}

export class DebugServer {
  private constructor(readonly path: string, private readonly server: Server) {}

  /** Listens on `path` (0600, replacing a stale socket). */
  static async listen(path: string, src: DebugSource): Promise<DebugServer> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://lace");
      const send = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body) + "\n");
      let answer: Promise<unknown>;
      if (url.pathname === "/v1/status") answer = agentStatus(src);
      else if (url.pathname === "/v1/path") {
        const network = url.searchParams.get("network");
        const destination = url.searchParams.get("destination");
        if (!network || !destination) {
          send(400, { error: "/v1/path needs ?network=<name>&destination=<address>" });
          return;
        }
        answer = agentPath(src, network, destination);
      } else {
        send(404, { error: `Not found: ${url.pathname}: expected /v1/status or /v1/path` });
        return;
      }
      answer.then((body) => send(200, body), (e) => send(e instanceof RangeError ? 400 : 500, { error: (e as Error).message }));
    });
    await listenOwnerOnly(server, path);
    return new DebugServer(path, server);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}

/**
 * Asks the agent behind `socket` (a `GET` of `path`); rejects with the
 * reason when nothing answers there.
 *
 * @example
 * await askAgent<AgentStatus>("/run/lace/debug.sock", "/v1/status");
 */
export async function askAgent<T>(socket: string, path: string, timeoutMs = 5000): Promise<T> {
  const { request } = await import("node:http");
  return new Promise<T>((resolve, reject) => {
    // A fresh connection each time: a kept-alive one may be to an agent that has since gone.
    const req = request({ socketPath: socket, path, timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        try {
          const json = JSON.parse(body) as T & { error?: string };
          if (res.statusCode !== 200) reject(new Error(json.error ?? `HTTP ${res.statusCode}`));
          else resolve(json);
        } catch {
          reject(new Error(`not a lace agent's answer: ${body.slice(0, 80)}`));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => reject(new Error(`no agent answers at ${socket}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    req.end();
  });
}
