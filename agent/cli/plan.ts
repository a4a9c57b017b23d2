/**
 * `lace plan -f <file|dir> --node <name> [--json]`: the desired state the
 * controller would give one node for the given manifests — its networks,
 * tables, bridges, SIDs, blocks, routes (with the policy that decided each),
 * l2 neighbours and FDB, egress and endpoints. The operator's and plugin
 * author's view of what the dataplane will do.
 *
 * Everything runs offline, in memory: the controller allocates ids,
 * locators and blocks; pods are bound by the binding policies and given
 * addresses by IPAM, as the agent would at CNI ADD. A pod runs on its
 * `spec.nodeName`, on the node of its NetworkEndpoint when the manifests
 * have one, and otherwise round-robin over the Nodes (from the manifests,
 * or `node-1` … `node-N` with `--nodes N`, default 3).
 *
 * Exits 0 with a plan, 1 when the manifests cannot be read or the node is unknown.
 *
 * @example
 * lace plan -f examples/ --node node-1
 * lace plan -f examples/ --node node-2 --json
 */
import type { Command } from "commander";
import {
  type NetworkTypeLookup,
  networkGateway,
  addressRequestFor,
  type Allocation,
  API_VERSION,
  type AllocationBlock,
  BindingRules,
  BlockAllocator,
  BLOCKS_PER_SHARD,
  GlobalAllocator,
  HostLocalAllocator,
  isPoolRecord,
  L2_POOL_NODE,
  MemoryStore,
  type Network,
  type NetworkBindingPolicy,
  type NetworkEndpoint,
  type NetworkForwarding,
  type NodeDesiredState,
  NETWORK_LABEL,
  POOL_LABEL,
  poolShardName,
  bindPod,
  poolShardNode,
  Prefix,
  type Resource,
  type RuleExtensionSet,
  type Topology,
} from "../../core/mod.ts";
import { endpointL2Entries, endpointMac, interfaceName } from "../../core/controller/mod.ts";
import { formatProblem } from "../../core/resources/problem.ts";
import { Controller } from "../controller/controller.ts";
import { loadRuntime } from "../config/runtime.ts";
import { readManifestFiles } from "./files.ts";

export interface PlanOptions {
  paths: string[];
  node: string;
  /** Nodes to make up when the manifests have none. Default 3. */
  nodes?: number;
  json?: boolean;
  defaultNetwork?: string;
  extensions?: RuleExtensionSet;
  /** The loaded network types (from the configuration's plugins). */
  networkTypes: NetworkTypeLookup;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The Topology used when the manifests have none. */
const DEFAULT_TOPOLOGY: Topology = {
  apiVersion: API_VERSION,
  kind: "Topology",
  metadata: { name: "default" },
  spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48, encapsulation: "Reduced" },
};

interface PodLike extends Resource {
  spec?: { nodeName?: string; hostNetwork?: boolean };
}

/** Computes the node's plan from manifests: the states of every node, and the notes made on the way. */
export async function planFromManifests(
  resources: Resource[],
  opts: { nodes?: number; defaultNetwork?: string; extensions?: RuleExtensionSet; networkTypes: NetworkTypeLookup },
): Promise<{ controller: Controller; nodes: string[]; notes: string[] }> {
  const notes: string[] = [];
  const store = new MemoryStore();
  const manifestNodes = resources.filter((r) => r.kind === "Node").map((r) => r.metadata.name).sort();
  const nodes = manifestNodes.length ? manifestNodes : Array.from({ length: opts.nodes ?? 3 }, (_, i) => `node-${i + 1}`);
  for (const r of resources) {
    if (r.kind === "Pod") continue; // placed below
    await store.create(structuredClone(r));
  }
  if (!manifestNodes.length) for (const n of nodes) await store.create({ apiVersion: "v1", kind: "Node", metadata: { name: n } });
  if (!resources.some((r) => r.kind === "Topology" && r.metadata.name === "default")) {
    await store.create(structuredClone(DEFAULT_TOPOLOGY));
    notes.push(`no Topology in the manifests: using locator pool ${DEFAULT_TOPOLOGY.spec!.locatorPool}, /${DEFAULT_TOPOLOGY.spec!.locatorLength} per node`);
  }
  await claimManifestBlocks(store, resources);

  // Placement: spec.nodeName, else the node of an existing endpoint, else round-robin.
  const endpointNode = new Map<string, string>();
  for (const e of resources.filter((r) => r.kind === "NetworkEndpoint") as NetworkEndpoint[]) {
    const pod = e.spec?.pod;
    if (e.spec?.node) endpointNode.set(`${pod?.namespace ?? e.metadata.namespace}/${pod?.name ?? e.metadata.name}`, e.spec.node);
  }
  let next = 0;
  const pods: PodLike[] = [];
  for (const r of resources.filter((r) => r.kind === "Pod") as PodLike[]) {
    const p = structuredClone(r);
    const ns = p.metadata.namespace ?? "default";
    p.metadata.namespace = ns;
    p.spec = { ...p.spec, nodeName: p.spec?.nodeName ?? endpointNode.get(`${ns}/${p.metadata.name}`) ?? nodes[next++ % nodes.length] };
    pods.push(await store.create(p));
  }

  const controller = new Controller(store, { defaultNetwork: opts.defaultNetwork, extensions: opts.extensions, networkTypes: opts.networkTypes });
  await controller.reconcile();

  // What each node's agent does at CNI ADD: an address for the pod, recorded as its NetworkEndpoint.
  const rules = BindingRules.compile((await store.list<NetworkBindingPolicy>("NetworkBindingPolicy")).items, {
    defaultNetwork: opts.defaultNetwork,
    extensions: opts.extensions,
  });
  const namespaces = new Map((await store.list<Resource>("Namespace")).items.map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
  const blocks = new BlockAllocator(store);
  for (const pod of pods) {
    const ns = pod.metadata.namespace!;
    const node = pod.spec!.nodeName!;
    if (pod.spec?.hostNetwork || endpointNode.has(`${ns}/${pod.metadata.name}`)) continue;
    try {
      const decision = await bindPod(rules, pod, { namespaceLabels: namespaces.get(ns), node });
      const net = await store.get<Network>("Network", decision.network);
      const request = addressRequestFor(pod);
      const def = opts.networkTypes.get(net?.spec?.type ?? "");
      const gateway = net && networkGateway(opts.networkTypes, net);
      const ipam = def?.addressing === "global"
        ? new GlobalAllocator(store, { network: decision.network, gateway })
        : new HostLocalAllocator(store, { network: decision.network, node, blocks, gateway });
      const assignment = await ipam.allocate(request);
      const key = `${ns}/${pod.metadata.name}`;
      const ep: NetworkEndpoint = {
        apiVersion: API_VERSION,
        kind: "NetworkEndpoint",
        metadata: { name: pod.metadata.name, namespace: ns },
        spec: {
          network: decision.network,
          node,
          addresses: assignment.addresses.map((a) => a.address.toString()),
          pod: { namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid },
          owner: request.owner,
          bindingPolicy: decision.policy,
          interface: interfaceName(key),
          ...(opts.networkTypes.get(net?.spec?.type ?? "")?.forwarding === "bridged" ? { mac: endpointMac(key) } : {}),
        },
      };
      await store.create(ep);
      // What the agent writes when it attaches an l2 endpoint: its Neighbors and FDBEntry drive every node's FDB.
      const l2 = endpointL2Entries(ep);
      for (const r of l2 ? [...l2.neighbors, l2.fdb] : []) await store.create(r);
    } catch (e) {
      notes.push(`pod ${ns}/${pod.metadata.name} gets no endpoint: ${(e as Error).message}`);
    }
  }
  await controller.reconcile();
  return { controller, nodes, notes };
}

/** Runs `lace plan`; returns the exit code. */
export async function runPlan(opts: PlanOptions): Promise<number> {
  const { resources, problems } = await readManifestFiles(opts.paths);
  if (problems.length > 0) {
    for (const p of problems) opts.err(formatProblem(p));
    return 1;
  }
  let result: Awaited<ReturnType<typeof planFromManifests>>;
  try {
    result = await planFromManifests(resources, opts);
  } catch (e) {
    opts.err(`lace plan: ${(e as Error).message}`);
    return 1;
  }
  if (!result.nodes.includes(opts.node)) {
    opts.err(`lace plan: --node: expected one of the nodes ${result.nodes.join(", ")}, got "${opts.node}"`);
    return 1;
  }
  for (const n of result.notes) opts.err(`note: ${n}`);
  const state = result.controller.builder.stateFor(opts.node);
  if (opts.json) opts.out(JSON.stringify(state, null, 2));
  else for (const line of formatPlan(state)) opts.out(line);
  return 0;
}

/** The readable form of a node's desired state. */
export function formatPlan(state: NodeDesiredState): string[] {
  const out: string[] = [];
  out.push(`Node ${state.node}  locator ${state.locator || "(none yet)"}  encapsulation ${state.encapsulation}  revision ${state.revision}`);
  const peers = state.peers ?? [];
  out.push(`Peers: ${peers.length ? peers.map((p) => `${p.node} ${p.locator}`).join(", ") : "none"}`);
  if (!state.networks.length) out.push("", "No networks on this node: no pod here, and no path from one.");
  for (const n of state.networks) out.push("", ...formatNetwork(n));
  out.push("", `Endpoints (${state.endpoints.length}):`);
  if (!state.endpoints.length) out.push("  none");
  const width = Math.max(0, ...state.endpoints.map((e) => e.id.length));
  for (const e of state.endpoints) {
    out.push(`  ${e.id.padEnd(width)}  ${e.network}  ${e.addresses.join(", ")}${e.mac ? `  mac ${e.mac}` : ""}  interface ${e.interface}`);
  }
  return out;
}

function formatNetwork(n: NetworkForwarding): string[] {
  const out: string[] = [];
  out.push(`Network ${n.name} (${n.type}, id ${n.id}, ${n.forwarding}${n.anonymous ? ", anonymous" : ""})  mtu ${n.mtu}`);
  out.push(`  SID         ${n.sid ? `${n.sid} (${n.sidBehavior})` : "none (the node has no locator yet)"}`);
  out.push(`  gateways    ${n.gateways.join(", ") || "none"}`);
  out.push(`  local       ${n.localPrefixes.join(", ") || "none"}`);
  const remote = n.remoteBlocks;
  out.push(`  remote blocks (${remote.length})${remote.length ? ":" : ""}`);
  for (const r of remote) out.push(`    ${r.prefix} → ${r.node} via SID ${r.sid}`);
  const paths = n.paths;
  out.push(`  routes (${paths.length})${paths.length ? ":" : ""}`);
  const dw = Math.max(0, ...paths.map((p) => p.destination.length));
  for (const p of paths) {
    const via = p.via === "local" ? `local (network id ${p.toNetworkId ?? "?"})` : p.via === "sid" ? `SID ${p.sid}` : "underlay";
    const why = p.policy === null ? "implicit: own network" : `policy ${p.policy}`;
    out.push(`    ${p.destination.padEnd(dw)} → ${p.toNetwork} via ${via}  ${p.mode}  (${why})`);
  }
  if (n.denied?.length) out.push(`  denied      ${n.denied.map((d) => `${d.destination} (${d.policy !== null ? `policy ${d.policy}` : n.anonymous ? "anonymous" : "no policy allows it"}): new connections from the network's endpoints dropped`).join(", ")}`);
  if (n.egress.length) out.push(`  egress      ${n.egress.map((e) => `${e.prefix} (${e.network}${e.snat ? ", SNAT" : ""})`).join(", ")}`);
  if (n.forwarding === "bridged") {
    out.push(`  neighbours (${n.neighbors.length})${n.neighbors.length ? ":" : ""}`);
    for (const x of n.neighbors) out.push(`    ${x.ip} → ${x.mac} (${x.source})`);
    const fdb = n.fdb;
    out.push(`  fdb (${fdb.length})${fdb.length ? ":" : ""}`);
    for (const x of fdb) out.push(`    ${x.mac} → ${x.node}${x.sid ? ` via SID ${x.sid}` : " (local)"} (${x.source}, sequence ${x.sequence})`);
  }
  return out;
}

/**
 * Manifest Allocations (state written by an earlier controller) get their
 * pool claims, so blocks they hold are not handed to another node.
 */
async function claimManifestBlocks(store: MemoryStore, resources: Resource[]): Promise<void> {
  for (const a of resources.filter((r) => r.kind === "Allocation") as Allocation[]) {
    if (isPoolRecord(a) || !a.spec || a.spec.node === L2_POOL_NODE) continue;
    const net = await store.get<Network>("Network", a.spec.network);
    if (!net?.spec) continue;
    const stored = (await store.get<Allocation>("Allocation", a.metadata.name))!;
    let changed = false;
    for (const b of stored.spec!.blocks) {
      const p = Prefix.tryParse(b.prefix);
      if (!p.ok) continue;
      const subnet = p.value.family === 4 ? net.spec.ipv4Subnet : net.spec.ipv6Subnet;
      const s = subnet ? Prefix.tryParse(subnet.prefix) : undefined;
      if (!s?.ok || !s.value.covers(p.value)) continue;
      b.claim ??= `manifest${Math.random().toString(16).slice(2, 10)}`;
      changed = true;
      const shard = s.value.blockIndex(p.value) / BLOCKS_PER_SHARD;
      const name = poolShardName(a.spec.network, shard);
      const pool = await store.get<Allocation>("Allocation", name);
      const entry: AllocationBlock = { prefix: p.value.toString(), node: a.spec.node, claim: b.claim };
      if (pool) {
        pool.spec!.blocks.push(entry);
        await store.update(pool);
      } else {
        await store.create<Allocation>({
          apiVersion: API_VERSION,
          kind: "Allocation",
          metadata: { name, labels: { [NETWORK_LABEL]: a.spec.network, [POOL_LABEL]: "true" } },
          spec: { network: a.spec.network, node: poolShardNode(shard), blocks: [entry] },
        });
      }
    }
    if (changed) {
      stored.metadata.labels = { ...stored.metadata.labels, [NETWORK_LABEL]: a.spec.network };
      await store.update(stored);
    }
  }
}


export function registerPlan(program: Command): void {
  program
    .command("plan")
    .description("Print the desired state (networks, tables, SIDs, routes, endpoints) the controller would give a node")
    .requiredOption(
      "-f, --filename <path>",
      "a manifest file or a directory of them (networks, policies, topology, nodes, pods; repeatable)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .requiredOption("--node <name>", "the node to plan")
    .option("--nodes <count>", "nodes to make up (node-1 … node-N) when the manifests have none", (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--nodes: expected a whole number of at least 1, got "${v}"`);
      return n;
    }, 3)
    .option("--json", "print the desired state as JSON")
    .option("--default-network <name>", "the network pods no binding policy matches go to (default: the configuration's)")
    .option("--config <file>", "lace configuration whose plugins provide rule facts and operators (default: the built-in plugins)")
    .action(async (o: { filename: string[]; node: string; nodes: number; json?: boolean; defaultNetwork?: string; config?: string }) => {
      const { extensions, defaultNetwork, networkTypes } = await loadRuntime(o.config);
      process.exitCode = await runPlan({
        networkTypes,
        paths: o.filename,
        node: o.node,
        nodes: o.nodes,
        json: o.json,
        defaultNetwork: o.defaultNetwork ?? defaultNetwork,
        extensions,
        out: (line) => console.log(line),
        err: (line) => console.error(line),
      });
    });
}
