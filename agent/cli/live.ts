/**
 * What the live commands (`lace status`, `lace explain` and `lace graph`
 * without `-f`) share: the agent's connection flags (`--kubeconfig`,
 * `--db`, `--store-socket`), one read of the cluster's state, and the way
 * to each node's agent debug endpoint (`--agent-socket`).
 *
 * @example
 * const live = await readLive({ storeSocket: "/run/lace-sandbox/api.sock" });
 * live.resources.filter((r) => r.kind === "Network");
 * await askNode<AgentStatus>(flags, "node-1", "/v1/status");
 */
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { existsSync } from "node:fs";
import type { Resource, Store } from "../../core/mod.ts";
import { SqliteStore } from "../store/embedded/sqlite_store.ts";
import { connectFlags, type StoreFlags } from "../store/connect.ts";
import { askAgent } from "../node/debug.ts";
import { STATE_KINDS } from "../node/agent.ts";

export interface LiveFlags extends StoreFlags {
  /** Where a node's agent debug endpoint is: a path, `{node}` standing for the node's name. */
  agentSocket?: string;
}

/**
 * The kinds a live command reads: the agent's (what a node's desired state
 * is built from). Pods are read as their NetworkEndpoints: where they run,
 * on which network.
 */
// The agent's kinds, and those it binds with (a Service's binding is explained from the policies when none is recorded).
const LIVE_KINDS = [...STATE_KINDS, "NetworkBindingPolicy", "Namespace"];

/** Adds the connection flags to a command. */
export function withLiveFlags(cmd: Command): Command {
  return cmd
    .option("--kubeconfig <path>", "read the live state of this Kubernetes API server")
    .option("--db <path>", "read the live state of the embedded store on this SQLite file")
    .option("--store-socket <path>", "read the live state of a running embedded store on this unix socket")
    .option("--agent-socket <path>", "each node's agent debug socket, {node} standing for the node (default: <store socket dir>/{node}/debug.sock with --store-socket, else /run/lace/debug.sock)");
}

/** Whether any connection flag was given (else the command works on manifests). */
export function isLive(flags: LiveFlags): boolean {
  return Boolean(flags.kubeconfig || flags.db || flags.storeSocket);
}

/** Every object of the kinds the live commands read, in one pass. */
export async function readLive(flags: StoreFlags): Promise<{ resources: Resource[] }> {
  const { store, close } = await openForReading(flags);
  try {
    const resources: Resource[] = [];
    for (const kind of LIVE_KINDS) {
      const list = await store.list<Resource>(kind);
      for (const r of list.items) resources.push({ ...r, kind });
    }
    return { resources };
  } finally {
    await close();
  }
}

/**
 * `--db` alone is read straight from the SQLite file: starting an embedded
 * server there (as the agent does) would take over the socket of a store
 * that may be serving it right now.
 */
async function openForReading(flags: StoreFlags): Promise<{ store: Store; close(): Promise<void> }> {
  if (flags.db && !flags.kubeconfig && !flags.storeSocket) {
    if (!existsSync(flags.db)) throw new Error(`--db: no store database at ${flags.db}`);
    const sqlite = SqliteStore.open(flags.db);
    return { store: sqlite, close: () => Promise.resolve(sqlite.close()) };
  }
  return connectFlags(flags);
}

/** The debug socket of `node`'s agent, as the flags say. */
export function agentSocketFor(flags: LiveFlags, node: string): string {
  if (flags.agentSocket) return flags.agentSocket.replaceAll("{node}", node);
  // The sandbox's layout: the store's socket, and a directory per node beside it.
  if (flags.storeSocket) return join(dirname(flags.storeSocket), node, "debug.sock");
  return "/run/lace/debug.sock";
}

/**
 * Asks `node`'s agent; rejects with the reason when it cannot be reached,
 * or when the agent there is another node's.
 */
export async function askNode<T extends { node: string }>(flags: LiveFlags, node: string, path: string): Promise<T> {
  const socket = agentSocketFor(flags, node);
  const answer = await askAgent<T>(socket, path);
  if (answer.node !== node) throw new Error(`the agent at ${socket} is node ${answer.node}'s, not ${node}'s (give --agent-socket with {node})`);
  return answer;
}
