/**
 * The agent process: loads the configuration's plugins, connects to the
 * store, opens the dataplane the configuration selects (through its
 * plugin's `create`: the agent imports no plugin), runs the desired-state
 * builder for this node with the loaded network types, serves the CNI
 * socket and the metrics, and logs as JSON (pino). Stops on SIGTERM/SIGINT.
 * A SIGKILL leaves the kernel forwarding as it was; the next agent
 * rebuilds from the store and the kernel, and writes only what differs.
 *
 * @example
 * const agent = await startAgent({ node: "node-1", storeSocket: "/run/lace/api.sock" });
 * await agent.stop();
 */
import { pino } from "pino";
import { DesiredStateBuilder } from "../../core/controller/mod.ts";
import { type Store, typeDeclarations } from "../../core/mod.ts";
import { connectFlags } from "../store/connect.ts";
import { loadRuntime } from "../config/runtime.ts";
import { CniServer } from "../cni/server.ts";
import { DEFAULT_AGENT_SOCKET } from "../cni/spec.ts";
import { NodeAgent } from "./agent.ts";
import { AgentMetrics } from "./metrics.ts";
import { DebugServer } from "./debug.ts";
import { dirname, join } from "node:path";

export interface AgentRunOptions {
  node: string;
  kubeconfig?: string;
  /** The embedded store's database (a single machine without Kubernetes). */
  db?: string;
  /** A running embedded store (`lace store serve --listen unix:<path>`). */
  storeSocket?: string;
  /** The node's network namespace; default: the agent's own. */
  netns?: string;
  /** Default /run/lace/cni.sock. */
  cniSocket?: string;
  /** The debug endpoint (`lace status`, live `lace explain`): a unix socket path, or `off`. Default: debug.sock beside the CNI socket. */
  debugSocket?: string;
  /** `127.0.0.1:<port>`, `unix:<path>`, or `off`. Default 127.0.0.1:9471. */
  metrics?: string;
  /** lace.yaml: plugins (network types, rule facts and operators, the dataplane) and defaultNetwork. Default: the built-in plugins. */
  config?: string;
  /** Overrides the configuration's defaultNetwork. */
  defaultNetwork?: string;
  logLevel?: string;
  /** Overrides the configuration's `dataplane.backend` (srv6: auto, kernel or bpf; checked by the plugin). */
  backend?: string;
  /** Overrides the configuration's `dataplane.bpffs` (checked by the plugin). */
  bpffs?: string;
  /** l2 learning: how long a silent learned entry lives (ms; default 5 minutes). */
  learningAge?: string;
  /** l2 learning: `<moves>/<window ms>/<hold ms>`: a MAC that moves more than that often is frozen where it is (default 5/10000/60000). */
  flap?: string;
  /** How often the unchanged state is applied again, repairing what changed behind the agent's back (ms; 0: never; default 30000). */
  resync?: string;
}

/**
 * The agent's resync interval from its command-line string; an invalid one
 * throws, naming the option and the value.
 *
 * @example
 * resyncMs("0"); // 0: never
 */
export function resyncMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Number(value);
  if (!Number.isInteger(ms) || (ms !== 0 && ms < 1000)) throw new Error(`Invalid --resync "${value}": expected 0 (never) or a whole number of milliseconds, at least 1000`);
  return ms;
}

/**
 * The agent's l2 learning settings from its command-line strings; an
 * invalid one throws, naming the option and the value.
 *
 * @example
 * learningOptions({ learningAge: "3000", flap: "2/10000/4000" }); // { ageMs: 3000, flap: { moves: 2, windowMs: 10000, holdMs: 4000 } }
 */
export function learningOptions(o: Pick<AgentRunOptions, "learningAge" | "flap">): { ageMs?: number; flap?: { moves: number; windowMs: number; holdMs: number } } {
  const out: ReturnType<typeof learningOptions> = {};
  if (o.learningAge !== undefined) {
    const ms = Number(o.learningAge);
    if (!Number.isInteger(ms) || ms < 100) throw new Error(`Invalid --learning-age "${o.learningAge}": expected a whole number of milliseconds, at least 100`);
    out.ageMs = ms;
  }
  if (o.flap !== undefined) {
    const parts = o.flap.split("/").map(Number);
    if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new Error(`Invalid --flap "${o.flap}": expected <moves>/<window ms>/<hold ms>, positive whole numbers, e.g. 5/10000/60000`);
    }
    out.flap = { moves: parts[0], windowMs: parts[1], holdMs: parts[2] };
  }
  return out;
}

export interface RunningAgent {
  agent: NodeAgent;
  store: Store;
  stop(): Promise<void>;
}

export async function startAgent(opts: AgentRunOptions): Promise<RunningAgent> {
  const learning = learningOptions(opts);
  const resync = resyncMs(opts.resync);
  const log = pino({ level: opts.logLevel ?? "info", base: { node: opts.node } });
  const rt = await loadRuntime(opts.config, { dataplane: true });
  const { store, close: closeStore } = await connectFlags(opts);
  const settings = {
    ...rt.settings,
    ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
    ...(opts.bpffs !== undefined ? { bpffs: opts.bpffs } : {}),
  };
  const { definition, plugin } = rt.dataplane!;
  const dataplane = await definition.create(rt.loaded.container, { node: opts.node, netns: opts.netns, settings, background: true });
  const caps = await dataplane.capabilities();
  const metrics = new AgentMetrics(opts.node);
  if (caps.backend) metrics.backend(caps.backend);
  metrics.datapathCounters(() => dataplane.counters?.());
  log.info({ dataplane: definition.feature, plugin, backend: caps.backend, settings, seg6: caps.seg6, bpf: caps.bpf }, `dataplane ${definition.feature}${caps.backend ? ` (${caps.backend} backend)` : ""}`);
  // Said once at start, and again to every pod such a network would get (CNI error 103).
  for (const [kind, why] of Object.entries(caps.notForwarded ?? {})) log.warn({ forwarding: kind, backend: caps.backend }, `pods of ${kind} networks are refused on this node: ${why}`);
  const types = rt.networkTypes;
  const states = new DesiredStateBuilder({ node: opts.node, extensions: rt.extensions, ...typeDeclarations(types) });
  const agent = new NodeAgent({
    store, node: opts.node, dataplane, states, networkTypes: types, metrics, log, extensions: rt.extensions, defaultNetwork: opts.defaultNetwork ?? rt.defaultNetwork,
    learning,
    ...(resync !== undefined ? { resyncMs: resync } : {}),
  });
  await agent.start();
  const cniSocket = opts.cniSocket ?? DEFAULT_AGENT_SOCKET;
  const server = await CniServer.listen(cniSocket, (req) => agent.handle(req));
  const metricsAddress = opts.metrics ?? "127.0.0.1:9471";
  const http = metricsAddress === "off" ? undefined : await metrics.serve(metricsAddress);
  const debugSocket = opts.debugSocket ?? join(dirname(cniSocket), "debug.sock");
  const debug = debugSocket === "off" ? undefined : await DebugServer.listen(debugSocket, {
    node: opts.node, dataplane, state: () => states.stateFor(opts.node), ready: () => agent.ready,
  });
  log.info({ cniSocket, metrics: metricsAddress, debugSocket, netns: opts.netns ?? "own" }, "lace agent ready");
  return {
    agent,
    store,
    async stop() {
      await server.close();
      await debug?.close();
      http?.close();
      await agent.stop();
      await dataplane.close();
      await closeStore();
    },
  };
}
