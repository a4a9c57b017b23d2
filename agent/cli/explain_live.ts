/**
 * `lace explain --from <ns/pod | network> --to <ns/pod | address | network>`
 * on live state (`--kubeconfig`, `--db` or `--store-socket` instead of
 * `-f`): the routing decision over the store's networks and policies, with
 * pods taken where they run (their NetworkEndpoints: network, node,
 * addresses, the binding recorded at creation), and the path (path.ts):
 * the source node's route, SID and destination node, and what its datapath
 * holds, read back by that node's agent, so a datapath that disagrees with
 * the decision shows.
 *
 * A Service destination (`--to svc/<namespace>/<name>`, or one of its
 * ClusterIPs) is resolved as the agents have it: its network is the one
 * the controller recorded (annotation `lace-cni.io/network`), its endpoints
 * the pods its EndpointSlices or selector give that run on that network
 * (their NetworkEndpoints); the decision is source network → the Service's
 * network, and the path is the one a connection translated to its first
 * endpoint takes.
 *
 * Exits 0 with a decision (allow or deny, agreeing or not), 1 when it could
 * not reach one (unknown pod, network or Service, unreadable store).
 *
 * @example
 * lace explain --store-socket /run/lace-sandbox/api.sock --from team-a/api-0 --to team-a/api-1
 * lace explain --kubeconfig ~/.kube/config --from team-a/web-0 --to 192.0.2.10 --json
 * lace explain --store-socket /run/lace-sandbox/api.sock --from team-a/web-0 --to svc/team-a/api
 */
import {
  BindingRules,
  DesiredStateBuilder,
  IPAddress,
  isLaceError,
  laceError,
  type Network,
  type NetworkBindingPolicy,
  type NetworkEndpoint,
  type NetworkRoutingPolicy,
  type NetworkTypeLookup,
  type Resource,
  type RouteTarget,
  type DataplaneTrace,
  type RuleExtensionSet,
  RoutingRules,
  formatRoutingProblems,
  desiredPath,
  typeDeclarations,
} from "../../core/mod.ts";
import type { AgentPath } from "../node/debug.ts";
import { type Endpoint, locateAddress, printText, toJson } from "./explain.ts";
import { askNode, type LiveFlags, readLive } from "./live.ts";
import { agreement, type ExplainedPath, formatPath } from "./path.ts";
import { resolveServiceDestination } from "./service_destination.ts";

export interface LiveExplainOptions {
  flags: LiveFlags;
  from: string;
  to: string;
  json?: boolean;
  extensions?: RuleExtensionSet;
  networkTypes: NetworkTypeLookup;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** A side resolved on live state: for a pod, where it runs. */
interface LiveEndpoint extends Endpoint {
  node?: string;
  interface?: string;
}

/** Runs a live `lace explain`; returns the exit code. */
export async function runLiveExplain(opts: LiveExplainOptions): Promise<number> {
  let resources: Resource[];
  try {
    ({ resources } = await readLive(opts.flags));
  } catch (e) {
    opts.err(`lace explain: cannot read the live state: ${(e as Error).message}`);
    return 1;
  }
  const of = <T extends Resource>(kind: string) => resources.filter((r) => r.kind === kind) as T[];
  const networks = of<Network>("Network");
  const routing = RoutingRules.compile(of<NetworkRoutingPolicy>("NetworkRoutingPolicy"), networks, { extensions: opts.extensions });
  const skipped = formatRoutingProblems(routing);
  for (const line of skipped) opts.err(`warning: left out: ${line}`);
  try {
    const endpoints = of<NetworkEndpoint>("NetworkEndpoint");
    const from = resolveLive(opts.from, "from", networks, endpoints);
    const service = await liveService(opts, resources, endpoints);
    if (service?.service?.network === null) {
      const why = `service ${service.service.service} is bound to no network: the controller recorded none (annotation lace-cni.io/network)${service.service.binding.error ? `; ${service.service.binding.error}` : ""}`;
      opts.err(`lace explain: ${why}`);
      if (opts.json) opts.out(JSON.stringify({ error: why }, null, 2));
      return 1;
    }
    const to = service ?? resolveLive(opts.to, "to", networks, endpoints);
    const target: RouteTarget = to.address ? { address: to.address } : { network: to.network! };
    const explanation = await routing.explain(from.network!, target);
    to.network ??= explanation.toNetwork;
    const where = to.address ? locateAddress(opts.networkTypes, networks, to.network, to.address, resources) : undefined;
    // A Service: the path of a connection translated to its first endpoint.
    const viaEndpoint = to.service?.endpoints.map((pod) => ({ pod, address: liveAddress(endpoints, pod) })).find((e) => e.address);
    const pathTo = to.address ?? viaEndpoint?.address;
    const path = from.node && pathTo
      ? await explainPath(opts, resources, { node: from.node, interface: from.interface, network: from.network!, pod: from.pod }, pathTo)
      : undefined;
    const table = from.node && to.service?.clusterIPs.length ? await serviceTable(opts, from.node, from.network!, to.service.clusterIPs[0], explanation.decision) : undefined;
    const noPath = path
      ? undefined
      : !from.node
      ? "give --from a running pod to see the path (a network runs on no one node)"
      : to.service
      ? "the service has no running endpoint to translate to"
      : "give --to a pod or an address to see the path";
    if (opts.json) {
      opts.out(JSON.stringify({
        ...toJson(explanation, from, to, skipped),
        ...(where ? { location: where } : {}),
        ...(path ? { path: { ...path, agreement: agreement(explanation.decision, path) } } : { path: null, noPath }),
        ...(table ? { serviceTable: table } : {}),
      }, null, 2));
    } else {
      printText(explanation, from, to, opts.out, where);
      opts.out("");
      if (table) {
        for (const line of formatServiceTable(table)) opts.out(line);
        opts.out("");
      }
      if (path && viaEndpoint) opts.out(`(the path of a connection translated to endpoint ${viaEndpoint.pod}, ${viaEndpoint.address})`);
      if (path) for (const line of formatPath(path, explanation.decision)) opts.out(line);
      else opts.out(`path: ${noPath}`);
    }
    return 0;
  } catch (e) {
    if (!isLaceError(e)) throw e;
    opts.err(`lace explain: ${e.message}`);
    return 1;
  }
}

/** The source node's service table for the ClusterIP, read back by its agent, beside the decision. */
interface ServiceTableView {
  node: string;
  clusterIP: string;
  trace?: DataplaneTrace;
  error?: string;
  agreement: { agree: boolean; text: string };
}

async function serviceTable(opts: LiveExplainOptions, node: string, network: string, clusterIP: string, decision: string): Promise<ServiceTableView> {
  const query = `/v1/path?network=${encodeURIComponent(network)}&destination=${encodeURIComponent(clusterIP)}`;
  let trace: DataplaneTrace | undefined;
  let error: string | undefined;
  try {
    const a = await askNode<AgentPath>(opts.flags, node, query);
    trace = a.dataplane;
    error = a.dataplaneError;
  } catch (e) {
    error = (e as Error).message;
  }
  const said = trace && (trace.verdict === "allow" ? "allow" : "deny");
  const agreement = !trace
    ? { agree: false, text: `the service table of ${node} was not read back: ${error ?? "no answer"}` }
    : said === decision
    ? { agree: true, text: `the decision (${decision}) and the service table of ${node} (${said}) agree` }
    : { agree: false, text: `DISAGREE: the decision is ${decision}, but the service table of ${node} ${said === "allow" ? "translates" : "does not translate"} ${clusterIP} for network ${network}` };
  return { node, clusterIP, ...(trace ? { trace } : {}), ...(error && !trace ? { error } : {}), agreement };
}

function formatServiceTable(t: ServiceTableView): string[] {
  const out: string[] = [];
  if (!t.trace) out.push(`service table on ${t.node}: not read back: ${t.error ?? "no answer"}`);
  else {
    out.push(`service table on ${t.node} (${t.clusterIP}): ${t.trace.verdict.toUpperCase()}${t.trace.reason ? `: ${t.trace.reason}` : ""}`);
    const w = Math.max(...t.trace.entries.map((e) => e.kind.length));
    for (const e of t.trace.entries) out.push(`    ${e.kind.padEnd(w)}  ${e.text}`);
  }
  out.push(`service agreement: ${t.agreement.text}`);
  return out;
}

/** A Service destination as the agents have it (service_destination.ts with the recorded networks); undefined: not a Service. */
async function liveService(opts: LiveExplainOptions, resources: Resource[], endpoints: NetworkEndpoint[]): Promise<LiveEndpoint | undefined> {
  if (!opts.to.startsWith("svc/") && !IPAddress.tryParse(opts.to).ok) return undefined;
  const podNetwork = new Map(endpoints.filter((e) => e.spec && !e.spec.detachedAt).map((e) => [
    `${e.spec!.pod?.namespace ?? e.metadata.namespace}/${e.spec!.pod?.name ?? e.metadata.name}`,
    e.spec!.network,
  ]));
  const service = await resolveServiceDestination(opts.to, {
    resources,
    binding: BindingRules.compile(resources.filter((r) => r.kind === "NetworkBindingPolicy") as NetworkBindingPolicy[], { extensions: opts.extensions }),
    namespaces: new Map(resources.filter((r) => r.kind === "Namespace").map((n) => [n.metadata.name, n.metadata.labels ?? {}])),
    recorded: { podNetwork: (pod) => podNetwork.get(pod) },
    source: "store",
  });
  return service ? { network: service.network, service } : undefined;
}

/** The first address of a running pod's NetworkEndpoint, without its prefix length. */
function liveAddress(endpoints: NetworkEndpoint[], pod: string): string | undefined {
  const [namespace, name] = pod.split("/");
  const ep = endpoints.find((e) => (e.spec?.pod?.namespace ?? e.metadata.namespace) === namespace && (e.spec?.pod?.name ?? e.metadata.name) === name);
  return ep?.spec?.detachedAt ? undefined : ep?.spec?.addresses?.[0]?.split("/")[0];
}

function resolveLive(arg: string, side: "from" | "to", networks: Network[], endpoints: NetworkEndpoint[]): LiveEndpoint {
  if (side === "to" && IPAddress.tryParse(arg).ok) return { network: null, address: arg };
  if (!arg.includes("/")) {
    if (!networks.some((n) => n.metadata.name === arg)) {
      throw laceError("INVALID_ARGUMENT", `--${side}: no Network "${arg}" in the store: expected one of ${networks.map((n) => n.metadata.name).sort().join(", ") || "(no networks)"}`);
    }
    return { network: arg };
  }
  const [namespace, name, ...rest] = arg.split("/");
  if (!namespace || !name || rest.length > 0) {
    throw laceError("INVALID_ARGUMENT", `--${side} expects a network name${side === "to" ? ", an IP address" : ""} or namespace/pod, got ${JSON.stringify(arg)}`);
  }
  const ep = endpoints.find((e) => (e.spec?.pod?.namespace ?? e.metadata.namespace) === namespace && (e.spec?.pod?.name ?? e.metadata.name) === name);
  if (!ep?.spec) {
    const known = endpoints.map((e) => `${e.spec?.pod?.namespace ?? e.metadata.namespace}/${e.spec?.pod?.name ?? e.metadata.name}`).sort();
    throw laceError("INVALID_ARGUMENT", `--${side}: pod ${namespace}/${name} has no NetworkEndpoint in the store (not running, or not on a lace network): expected one of ${known.join(", ") || "(no pods)"}`);
  }
  const policy = ep.spec.bindingPolicy ?? null;
  return {
    network: ep.spec.network,
    pod: `${namespace}/${name}`,
    node: ep.spec.node,
    interface: ep.spec.interface,
    ...(side === "to" && ep.spec.addresses?.[0] ? { address: ep.spec.addresses[0].split("/")[0] } : {}),
    // Bound once, at creation: the recorded policy is the answer; the policies are not evaluated again.
    binding: { subject: { kind: "Pod", namespace, name }, network: ep.spec.network, policy, defaulted: policy === null, considered: [] },
  };
}

/** The path: from the source node's agent, else (its desired part) computed here from the store. */
async function explainPath(opts: LiveExplainOptions, resources: Resource[], source: ExplainedPath["source"], destination: string): Promise<ExplainedPath> {
  const query = `/v1/path?network=${encodeURIComponent(source.network)}&destination=${encodeURIComponent(destination)}`;
  try {
    const a = await askNode<AgentPath>(opts.flags, source.node, query);
    return {
      source, destination, desiredFrom: "agent",
      ...(a.desired ? { desired: a.desired } : {}), ...(a.backend ? { backend: a.backend } : {}),
      ...(a.dataplane ? { dataplane: a.dataplane } : { dataplaneError: a.dataplaneError }),
    };
  } catch (e) {
    // `resources` are the agent's kinds (readLive): the same state the node's agent builds from.
    const builder = new DesiredStateBuilder({ node: source.node, extensions: opts.extensions, ...typeDeclarations(opts.networkTypes) });
    await builder.upsertAll(resources);
    await builder.settled();
    const desired = desiredPath(builder.stateFor(source.node), source.network, destination);
    return { source, destination, desiredFrom: "store", ...(desired ? { desired } : {}), dataplaneError: (e as Error).message };
  }
}
