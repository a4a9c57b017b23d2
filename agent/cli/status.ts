/**
 * `lace status [--kubeconfig <f> | --db <f> | --store-socket <s>] [--json]`:
 * the live state an operator looks at first. Networks with their type,
 * prefixes, usage (addresses allocated of the total) and conditions; nodes
 * with their locator, dataplane backend and readiness (asked of each
 * node's agent over its debug socket); the pods on each network.
 *
 * Exits 0 when it read the state, 1 when the store cannot be read.
 *
 * @example
 * lace status --store-socket /run/lace-sandbox/api.sock
 * lace status --kubeconfig ~/.kube/config --json
 */
import type { Command } from "commander";
import type { Condition, Network, NetworkEndpoint, Resource, Topology } from "../../core/mod.ts";
import type { AgentStatus } from "../node/debug.ts";
import { askNode, type LiveFlags, readLive, withLiveFlags } from "./live.ts";

export interface NetworkStatusLine {
  name: string;
  type: string;
  anonymous: boolean;
  prefixes: string[];
  /** Addresses handed out, and how many the subnets hold (as text: IPv6 totals exceed 2^53); absent until the controller counts. */
  usage?: { allocated: number; total: string };
  conditions: { type: string; status: string; reason: string; message: string }[];
  pods: { pod: string; node: string; addresses: string[] }[];
}

export interface NodeStatusLine {
  name: string;
  locator?: string;
  backend?: string;
  /** From the agent; absent when it could not be asked (see `agent`). */
  ready?: boolean;
  revision?: number;
  /** Why the agent was not asked, or did not answer. */
  agent?: string;
  /** The Node's own Ready condition (kubelet's, on a Kubernetes cluster), where it has one. */
  nodeReady?: string;
  pods: number;
}

export interface ClusterStatus {
  networks: NetworkStatusLine[];
  nodes: NodeStatusLine[];
}

/** The status from the store's objects and what each node's agent answered (or why it did not). */
export function clusterStatus(resources: Resource[], agents: Map<string, AgentStatus | string>): ClusterStatus {
  const of = <T extends Resource>(kind: string) => resources.filter((r) => r.kind === kind) as T[];
  const endpoints = of<NetworkEndpoint>("NetworkEndpoint");
  const networks = of<Network>("Network").sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).map((n): NetworkStatusLine => {
    const s = n.spec;
    const u = n.status?.usage;
    const used = u?.addressesUsed;
    return {
      name: n.metadata.name,
      type: s?.type ?? "?",
      anonymous: s?.anonymous === true,
      prefixes: [s?.ipv4Subnet?.prefix, s?.ipv6Subnet?.prefix, ...(s?.externalPrefixes ?? [])].filter((p): p is string => Boolean(p)),
      ...(used !== undefined && u?.addressesFree !== undefined ? { usage: { allocated: used, total: (BigInt(used) + BigInt(u.addressesFree)).toString() } } : {}),
      conditions: (n.status?.conditions ?? []).map((c: Condition) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
      pods: endpoints.filter((e) => e.spec?.network === n.metadata.name).map((e) => ({
        pod: `${e.spec?.pod?.namespace ?? e.metadata.namespace}/${e.spec?.pod?.name ?? e.metadata.name}`,
        node: e.spec?.node ?? "?",
        addresses: (e.spec?.addresses ?? []).map((a) => a.split("/")[0]),
      })).sort((a, b) => a.pod.localeCompare(b.pod)),
    };
  });
  const locators = of<Topology>("Topology").find((t) => t.metadata.name === "default")?.status?.locators ?? {};
  const nodeObjects = new Map(of<Resource>("Node").map((n) => [n.metadata.name, n]));
  const names = new Set([...nodeObjects.keys(), ...Object.keys(locators), ...agents.keys()]);
  const nodes = [...names].sort().map((name): NodeStatusLine => {
    const a = agents.get(name);
    const pods = endpoints.filter((e) => e.spec?.node === name).length;
    const kubelet = (nodeObjects.get(name)?.status as { conditions?: Condition[] } | undefined)?.conditions?.find((c) => c.type === "Ready");
    const base = { name, ...(locators[name] ? { locator: locators[name] } : {}), ...(kubelet ? { nodeReady: kubelet.status } : {}), pods };
    if (a === undefined) return { ...base, agent: "not asked" };
    if (typeof a === "string") return { ...base, agent: a };
    return { ...base, ...(a.backend ? { backend: a.backend } : {}), ready: a.ready, revision: a.revision };
  });
  return { networks, nodes };
}

/** The readable form. */
export function formatStatus(s: ClusterStatus): string[] {
  const out: string[] = [];
  const table = (head: string[], rows: string[][]) => {
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [head, ...rows]) out.push(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  };
  out.push(`NETWORKS (${s.networks.length})`);
  table(["name", "type", "prefixes", "usage", "conditions"], s.networks.map((n) => [
    `${n.name}${n.anonymous ? " (anonymous)" : ""}`,
    n.type,
    n.prefixes.join(" ") || "-",
    n.usage ? `${n.usage.allocated}/${n.usage.total}` : "-",
    n.conditions.map((c) => `${c.type}=${c.status}${c.status !== "True" ? ` (${c.reason})` : ""}`).join(" ") || "none yet",
  ]));
  for (const n of s.networks) for (const c of n.conditions) if (c.status !== "True") out.push(`  ${n.name}: ${c.type} ${c.reason}: ${c.message}`);
  out.push("", `NODES (${s.nodes.length})`);
  table(["name", "locator", "backend", "ready", "pods"], s.nodes.map((n) => [
    n.name, n.locator ?? "(none yet)", n.backend ?? "?",
    n.ready === undefined ? `?${n.nodeReady ? ` (Node Ready=${n.nodeReady})` : ""} (${n.agent})` : n.ready ? `yes (revision ${n.revision})` : `no (revision ${n.revision})`,
    String(n.pods),
  ]));
  out.push("", "PODS");
  const withPods = s.networks.filter((n) => n.pods.length);
  if (!withPods.length) out.push("  none");
  for (const n of withPods) {
    out.push(`  ${n.name} (${n.pods.length}):`);
    const w = Math.max(...n.pods.map((p) => p.pod.length));
    for (const p of n.pods) out.push(`    ${p.pod.padEnd(w)}  ${p.node}  ${p.addresses.join(" ")}`);
  }
  return out;
}

/** Runs `lace status`; returns the exit code. */
export async function runStatus(flags: LiveFlags & { json?: boolean }, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  let resources: Resource[];
  try {
    ({ resources } = await readLive(flags));
  } catch (e) {
    err(`lace status: cannot read the live state: ${(e as Error).message}`);
    return 1;
  }
  const nodes = new Set([
    ...resources.filter((r) => r.kind === "Node").map((n) => n.metadata.name),
    ...Object.keys((resources.find((r) => r.kind === "Topology" && r.metadata.name === "default") as Topology | undefined)?.status?.locators ?? {}),
  ]);
  const agents = new Map<string, AgentStatus | string>();
  await Promise.all([...nodes].map(async (node) => {
    try {
      agents.set(node, await askNode<AgentStatus>(flags, node, "/v1/status"));
    } catch (e) {
      agents.set(node, (e as Error).message);
    }
  }));
  const status = clusterStatus(resources, agents);
  if (flags.json) out(JSON.stringify(status, null, 2));
  else for (const line of formatStatus(status)) out(line);
  return 0;
}

/** Registers `status` on the `lace` program. */
export function registerStatus(program: Command): void {
  withLiveFlags(program
    .command("status")
    .description("Show the live state: networks (type, prefixes, usage, conditions), nodes (locator, backend, readiness) and the pods on each network"))
    .option("--json", "print one JSON object {networks, nodes}")
    .action(async (o: LiveFlags & { json?: boolean }) => {
      process.exitCode = await runStatus(o, (l) => console.log(l), (l) => console.error(l));
    });
}
