/**
 * `lace explain -f <file|dir> --from <network | namespace/pod> --to
 * <network | address | namespace/pod | svc/namespace/name> [--json]`: says whether the source may
 * open connections to the destination, which routing policy decided (or
 * which default applied), and how every policy fared, condition by
 * condition. Pods are placed on networks by the binding policies in the
 * same manifests, so `--from team-a/web-0` works offline.
 *
 * Exits 0 when it reached a decision (allow or deny) and 1 when it could
 * not (unknown network or pod, a pod no binding policy places, unreadable
 * manifests).
 *
 * @example
 * lace explain -f examples/ --from team-a/web-0 --to team-a/api-0
 * lace explain -f examples/ --from backend --to 192.0.2.200 --json
 * lace explain -f examples/ --from team-a/web-0 --to svc/team-a/api
 *
 * A Service destination (`svc/<namespace>/<name>`, or one of its ClusterIPs)
 * is decided as source network → the Service's network, the decision the
 * dataplane applies to its ClusterIPs (service_destination.ts).
 */
import type { Command } from "commander";
import {
  type BindingExplanation,
  BindingRules,
  type BindingSubject,
  podSubject,
  type ConditionOutcome,
  formatBindingProblems,
  formatRoutingProblems,
  IPAddress,
  isLaceError,
  laceError,
  type Location,
  type Network,
  type NetworkBindingPolicy,
  type NetworkEndpoint,
  type NetworkRoutingPolicy,
  type NetworkTypeLookup,
  type Resource,
  type RouteExplanation,
  type RouteTarget,
  type RuleExtensionSet,
  RoutingRules,
  SnapshotClusterView,
} from "../../core/mod.ts";
import { loadRuntime } from "../config/runtime.ts";
import { formatProblem } from "../../core/resources/problem.ts";
import { readManifestFiles } from "./files.ts";
import { isLive, type LiveFlags, withLiveFlags } from "./live.ts";
import { resolveServiceDestination, type ServiceDestination } from "./service_destination.ts";


export interface ExplainOptions {
  paths: string[];
  from: string;
  to: string;
  json?: boolean;
  defaultNetwork?: string;
  extensions?: RuleExtensionSet;
  /** The loaded network types: their `locate` hooks say where a destination address lives. */
  networkTypes?: NetworkTypeLookup;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** One side of the path as resolved from the command line. */
export interface Endpoint {
  network: string | null;
  pod?: string;
  address?: string;
  binding?: BindingExplanation;
  /** A Service destination: the decision is source → the Service's network. */
  service?: ServiceDestination;
}

/** Runs `lace explain`; returns the exit code. */
export async function runExplain(opts: ExplainOptions): Promise<number> {
  const { resources, problems } = await readManifestFiles(opts.paths);
  if (problems.length > 0) {
    for (const p of problems) opts.err(formatProblem(p));
    return 1;
  }
  const of = <T extends Resource>(kind: string, core = false) =>
    resources.filter((r) => r.kind === kind && (core ? !r.apiVersion.startsWith("lace-cni.io/") : true)) as T[];
  const networks = of<Network>("Network");
  const binding = BindingRules.compile(of<NetworkBindingPolicy>("NetworkBindingPolicy"), {
    extensions: opts.extensions,
    defaultNetwork: opts.defaultNetwork,
  });
  const routing = RoutingRules.compile(of<NetworkRoutingPolicy>("NetworkRoutingPolicy"), networks, { extensions: opts.extensions });
  const skipped = [...formatBindingProblems(binding), ...formatRoutingProblems(routing)];
  for (const line of skipped) opts.err(`warning: left out: ${line}`);
  const pods = new Map(of<Resource>("Pod", true).map((p) => [`${p.metadata.namespace ?? "default"}/${p.metadata.name}`, p]));
  const namespaces = new Map(of<Resource>("Namespace", true).map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
  const endpoints = of<NetworkEndpoint>("NetworkEndpoint");

  try {
    const from = await resolveEndpoint(opts.from, "from", { pods, namespaces, binding, endpoints });
    const service = await resolveServiceDestination(opts.to, { resources, binding, namespaces });
    const to: Endpoint = service
      ? { network: service.network, service, ...(service.network === null ? { binding: service.binding } : {}) }
      : await resolveEndpoint(opts.to, "to", { pods, namespaces, binding, endpoints });
    for (const side of [from, to]) {
      if (side.network === null && side.binding) {
        opts.err(`lace explain: ${side.binding.error}`);
        if (opts.json) opts.out(JSON.stringify({ error: side.binding.error, binding: side.binding }, null, 2));
        return 1;
      }
    }
    const target: RouteTarget = to.address ? { address: to.address } : { network: to.network! };
    const explanation = await routing.explain(from.network!, target);
    if (to.network === null) to.network = explanation.toNetwork;
    const where = opts.networkTypes && to.address ? locateAddress(opts.networkTypes, networks, to.network, to.address, resources) : undefined;
    if (opts.json) opts.out(JSON.stringify({ ...toJson(explanation, from, to, skipped), ...(where ? { location: where } : {}) }, null, 2));
    else printText(explanation, from, to, opts.out, where);
    return 0;
  } catch (e) {
    if (!isLaceError(e)) throw e;
    opts.err(`lace explain: ${e.message}`);
    return 1;
  }
}

interface Lookup {
  pods: Map<string, Resource>;
  namespaces: Map<string, Record<string, string>>;
  binding: BindingRules;
  endpoints: NetworkEndpoint[];
}

async function resolveEndpoint(arg: string, side: "from" | "to", l: Lookup): Promise<Endpoint> {
  if (side === "to" && IPAddress.tryParse(arg).ok) return { network: null, address: arg };
  if (!arg.includes("/")) return { network: arg };
  const [namespace, name, ...rest] = arg.split("/");
  if (!namespace || !name || rest.length > 0) {
    throw laceError(
      "INVALID_ARGUMENT",
      `--${side} expects a network name${side === "to" ? ", an IP address" : ""} or namespace/pod, got ${JSON.stringify(arg)}`,
    );
  }
  const pod = l.pods.get(`${namespace}/${name}`);
  if (!pod) {
    const known = [...l.pods.keys()].sort();
    throw laceError(
      "INVALID_ARGUMENT",
      `--${side}: no Pod ${namespace}/${name} in the manifests: expected one of ${known.length ? known.join(", ") : "(no pods)"}`,
    );
  }
  const subject: BindingSubject = podSubject(
    { metadata: { ...pod.metadata, namespace } },
    l.namespaces.get(namespace),
    (pod.spec as { nodeName?: string } | undefined)?.nodeName,
  );
  const binding = await l.binding.explain(subject);
  const out: Endpoint = { network: binding.network, pod: `${namespace}/${name}`, binding };
  // A pod with a recorded endpoint is reached at its address, so prefix-narrowed policies apply.
  const ep = l.endpoints.find((e) => e.spec?.pod?.namespace === namespace && e.spec.pod.name === name && e.spec.network === binding.network);
  if (side === "to" && ep?.spec?.addresses?.[0]) out.address = ep.spec.addresses[0].split("/")[0];
  return out;
}

export function toJson(e: RouteExplanation, from: Endpoint, to: Endpoint, skipped: string[]): Record<string, unknown> {
  const side = (s: Endpoint, prefix?: string | null) => ({
    network: s.network,
    ...(prefix !== undefined ? { prefix } : {}),
    ...(s.address ? { address: s.address } : {}),
    ...(s.pod ? { pod: s.pod } : {}),
    ...(s.service
      ? {
        service: {
          name: s.service.service, clusterIPs: s.service.clusterIPs, endpoints: s.service.endpoints, offNetwork: s.service.offNetwork,
          binding: { policy: s.service.binding.policy, defaulted: s.service.binding.defaulted },
        },
      }
      : {}),
    ...(s.binding
      ? { binding: { policy: s.binding.policy, defaulted: s.binding.defaulted, considered: s.binding.considered } }
      : {}),
  });
  return {
    decision: e.decision,
    policy: e.policy,
    reason: e.reason,
    ...(e.default ? { default: e.default } : {}),
    from: side(from),
    to: side(to, e.prefix),
    considered: e.considered,
    ...(e.prefixes.length > 0 ? { prefixes: e.prefixes } : {}),
    reverse: e.reverse && { decision: e.reverse.decision, policy: e.reverse.policy, reason: e.reverse.reason },
    ...(skipped.length > 0 ? { leftOut: skipped } : {}),
  };
}

/**
 * Where the destination address lives, as its network's type says (the
 * type's `locate` hook over the manifests): a node and its block, a MAC,
 * or an external prefix. A string when it cannot be located, saying why.
 */
export function locateAddress(types: NetworkTypeLookup, networks: Network[], network: string | null, address: string, resources: Resource[]): Location | string {
  const net = networks.find((n) => n.metadata.name === network);
  if (!net) return "in no network";
  const def = types.get(net.spec?.type ?? "");
  if (!def) return `network ${network} is of type "${net.spec?.type}", which no loaded plugin provides`;
  const a = IPAddress.tryParse(address);
  if (!a.ok) return `not an address: ${address}`;
  return def.locate(net, a.value, new SnapshotClusterView(resources)) ?? `no node holds it in these manifests (no Allocation, Neighbor or FDBEntry of network ${network} covers it)`;
}

export function describeLocation(l: Location | string): string {
  if (typeof l === "string") return l;
  if (l.kind === "node") return `node ${l.node}${l.block ? `, block ${l.block}` : ""}`;
  if (l.kind === "mac") return `MAC ${l.mac}${l.node ? ` on node ${l.node}` : ""}`;
  return `external network ${l.network}, prefix ${l.prefix}`;
}

export function printText(e: RouteExplanation, from: Endpoint, to: Endpoint, out: (line: string) => void, where?: Location | string): void {
  out(`from: ${describeEndpoint(from)}`);
  out(`to:   ${describeEndpoint(to)}${e.prefix ? ` (destination ${e.prefix})` : ""}`);
  if (where !== undefined) out(`where: ${describeLocation(where)}`);
  if (to.service) {
    const svc = to.service;
    out(`endpoints: ${svc.endpoints.length ? svc.endpoints.join(", ") : "none (no ready pod its selector picks or its EndpointSlices name is bound to its network)"}`);
    for (const o of svc.offNetwork) out(`  not an endpoint: ${o.pod} is bound to network ${o.network}`);
  }
  const by = e.policy ? `by policy ${e.policy}` : `by default: ${e.default}`;
  out(`decision: ${e.decision.toUpperCase()} ${by}`);
  for (const p of e.prefixes) out(`  ${p.prefix}: ${p.decision}${p.policy ? ` (${p.policy})` : " (default)"}`);
  if (e.reverse) {
    const r = e.reverse;
    const how = r.decision === "allow"
      ? `allowed${r.policy ? ` by ${r.policy}` : ""}`
      : `denied${r.policy ? ` by ${r.policy}` : ""}${e.decision === "allow" ? "; replies to allowed connections still return" : ""}`;
    out(`reverse (${r.from} -> ${r.toNetwork}, new connections): ${how}`);
  }
  out("");
  out(e.considered.length === 0 ? "routing policies considered: none" : "routing policies considered, in decision order:");
  for (const c of e.considered) {
    const verdict = c.decided ? "DECIDES" : c.matched ? "matches, but a policy before it decided" : "does not match";
    out(`  ${c.policy} (priority ${c.priority}, ${c.action}): ${verdict}`);
    for (const o of c.conditions) out(`      ${outcomeLine(o)}`);
  }
  for (const [label, s] of [["from", from], ["to", to]] as const) {
    if (!s.binding) continue;
    out("");
    const b = s.binding;
    out(`binding of ${label} pod ${s.pod}: ${b.policy ? `network ${b.network} by policy ${b.policy}` : `default network ${b.network}`}`);
    for (const c of b.considered) {
      const verdict = c.decided ? "DECIDES" : c.matched ? "matches, but a policy before it decided" : "does not match";
      out(`  ${c.policy} (priority ${c.priority}, ${c.matchKind} -> ${c.network}): ${verdict}`);
      for (const o of c.conditions) if (!c.matched || c.decided) out(`      ${outcomeLine(o)}`);
    }
  }
}

function describeEndpoint(s: Endpoint): string {
  const parts = [];
  if (s.service) {
    parts.push(`service ${s.service.service}`);
    if (s.service.clusterIPs.length) parts.push(`(ClusterIP ${s.service.clusterIPs.join(", ")})`);
    parts.push(`network ${s.network}`);
    parts.push(s.service.binding.policy ? `(bound by ${s.service.binding.policy})` : "(default network)");
    return parts.join(" ");
  }
  if (s.pod) parts.push(`pod ${s.pod}`);
  if (s.address) parts.push(`address ${s.address}`);
  parts.push(s.network === null ? "in no network" : `network ${s.network}`);
  if (s.binding) parts.push(s.binding.policy ? `(bound by ${s.binding.policy})` : "(default network)");
  return parts.join(" ");
}

function outcomeLine(o: ConditionOutcome): string {
  const mark = o.passed === null ? "skip" : o.passed ? "pass" : "FAIL";
  const got = o.passed === false ? `, got ${JSON.stringify(o.actual)}` : "";
  return `${mark}  ${o.source}: ${o.test}${got}`;
}

/** Registers `explain` on the `lace` program. */
export function registerExplain(program: Command): void {
  withLiveFlags(program
    .command("explain")
    .description("Explain whether a network, pod or address may reach another, and which policy decided; on live state (connection flags instead of -f) also the path and what the source node's datapath holds")
    .option(
      "-f, --filename <path>",
      "a manifest file or a directory of them (networks, policies, namespaces, pods; repeatable)",
      (value: string, previous: string[] = []) => [...previous, value],
    ))
    .requiredOption("--from <source>", "a network name or namespace/pod")
    .requiredOption("--to <destination>", "a network name, an IP address (a Service's ClusterIP included), namespace/pod or svc/namespace/name")
    .option("--json", "print one JSON object (decision, policy, every policy considered)")
    .option("--default-network <name>", "the network pods no binding policy matches go to (default: the configuration's)")
    .option("--config <file>", "lace configuration whose plugins provide rule facts and operators (default: the built-in plugins)")
    .action(async (o: { filename?: string[]; from: string; to: string; json?: boolean; defaultNetwork?: string; config?: string } & LiveFlags) => {
      const { extensions, defaultNetwork, networkTypes } = await loadRuntime(o.config);
      if (!o.filename === !isLive(o)) {
        console.error("lace explain: give either -f <manifests> or one of --kubeconfig, --db, --store-socket (live state)");
        process.exitCode = 1;
        return;
      }
      if (!o.filename) {
        const { runLiveExplain } = await import("./explain_live.ts");
        process.exitCode = await runLiveExplain({
          flags: o, from: o.from, to: o.to, json: o.json, extensions, networkTypes, out: (line) => console.log(line), err: (line) => console.error(line),
        });
        return;
      }
      process.exitCode = await runExplain({
        networkTypes,
        paths: o.filename,
        from: o.from,
        to: o.to,
        json: o.json,
        defaultNetwork: o.defaultNetwork ?? defaultNetwork,
        extensions,
        out: (line) => console.log(line),
        err: (line) => console.error(line),
      });
    });
}
