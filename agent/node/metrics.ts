/**
 * The agent's Prometheus metrics (prom-client): CNI requests by command and
 * outcome with their latency, and dataplane applies with their duration
 * and kernel writes. Served as text on a loopback port or a unix socket.
 *
 * @example
 * const m = new AgentMetrics("node-1");
 * m.cni("ADD", "ok", 0.012);
 * const server = await m.serve("127.0.0.1:9471");
 */
import { createServer, type Server } from "node:http";
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly cniRequests: Counter<"command" | "outcome">;
  private readonly cniSeconds: Histogram<"command">;
  private readonly applies: Counter<"outcome">;
  private readonly applySeconds: Histogram<string>;
  private readonly applyWrites: Counter<string>;
  private readonly backendInfo: Gauge<"backend">;

  constructor(node: string) {
    this.registry.setDefaultLabels({ node });
    const registers = [this.registry];
    this.cniRequests = new Counter({ name: "lace_cni_requests_total", help: "CNI requests served, by command and outcome (ok or error_<CNI code>)", labelNames: ["command", "outcome"], registers });
    this.cniSeconds = new Histogram({
      name: "lace_cni_request_duration_seconds", help: "Time the agent took to serve a CNI request", labelNames: ["command"], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    this.applies = new Counter({ name: "lace_dataplane_applies_total", help: "Desired-state applies to the node's dataplane, by outcome", labelNames: ["outcome"], registers });
    this.applySeconds = new Histogram({
      name: "lace_dataplane_apply_duration_seconds", help: "Duration of one desired-state apply", registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.applyWrites = new Counter({ name: "lace_dataplane_writes_total", help: "Kernel writes made by applies (zero for an unchanged state)", registers });
    this.backendInfo = new Gauge({ name: "lace_dataplane_backend_info", help: "The dataplane backend this node runs (1 for the one in use)", labelNames: ["backend"], registers });
  }

  /**
   * Exports the datapath's own packet counters (the bpf backend's encaps,
   * decaps and drops by reason) as `lace_datapath_packets_total{event}`,
   * read at each scrape. `read` returns undefined where there are none.
   */
  datapathCounters(read: () => Record<string, number> | undefined): void {
    new Gauge({
      name: "lace_datapath_packets_total",
      help: "Packets the datapath encapsulated, decapsulated or dropped, by event (drop_<reason>); read from the datapath at each scrape",
      labelNames: ["event"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [event, n] of Object.entries(read() ?? {})) this.set({ event }, n);
      },
    });
  }

  /** Records the backend the node's dataplane runs (`kernel`, `bpf`). */
  backend(name: string): void {
    this.backendInfo.reset();
    this.backendInfo.set({ backend: name }, 1);
  }

  cni(command: string, outcome: string, seconds: number): void {
    this.cniRequests.inc({ command, outcome });
    this.cniSeconds.observe({ command }, seconds);
  }

  applied(outcome: "ok" | "error", seconds: number, writes: number): void {
    this.applies.inc({ outcome });
    this.applySeconds.observe(seconds);
    if (writes) this.applyWrites.inc(writes);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Serves `/metrics` on `127.0.0.1:<port>` (loopback only) or `unix:<path>`. */
  async serve(listen: string): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end("Not found: metrics are at /metrics\n");
        return;
      }
      this.text().then(
        (body) => res.writeHead(200, { "content-type": this.registry.contentType }).end(body),
        (e) => res.writeHead(500).end(String(e)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      if (listen.startsWith("unix:")) {
        const path = listen.slice(5);
        mkdirSync(dirname(path), { recursive: true });
        rmSync(path, { force: true });
        server.listen(path, () => {
          chmodSync(path, 0o600);
          resolve();
        });
      } else {
        const m = /^(127\.0\.0\.1|localhost|\[::1\]|::1):(\d+)$/.exec(listen);
        if (!m) {
          reject(new Error(`Invalid metrics address "${listen}": expected 127.0.0.1:<port>, [::1]:<port> or unix:<path> (metrics stay on loopback)`));
          return;
        }
        server.listen(Number(m[2]), m[1].replace(/^\[|\]$/g, ""), () => resolve());
      }
    });
    return server;
  }
}
