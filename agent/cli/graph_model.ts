/**
 * Who reaches whom, as a graph: networks are the nodes; an edge from A to
 * B is a routing decision between them: `allow` (A's endpoints may open
 * connections to B), `deny` (a Deny policy closes it, where a policy and
 * not the default decided), or `reply` (the way back of an allowed path
 * that B may not open itself: replies only). Decided by the same rules as
 * `lace explain`, pair by pair; a policy that narrows a destination to
 * some of its prefixes labels the edge with them.
 *
 * @example
 * const g = await reachabilityGraph(resources, { networkTypes });
 * g.edges.filter((e) => e.kind === "allow"); // [{ from: "backend", to: "corp", kind: "allow", policy: "backend-to-corp" }, …]
 */
import {
  type Network,
  type NetworkRoutingPolicy,
  type NetworkTypeLookup,
  Prefix,
  type Resource,
  type RuleExtensionSet,
  RoutingRules,
} from "../../core/mod.ts";

export interface GraphNetwork {
  name: string;
  type: string;
  /** Underlay networks (external prefixes) are drawn as clouds. */
  forwarding?: "routed" | "bridged" | "underlay";
  anonymous: boolean;
  prefixes: string[];
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: "allow" | "deny" | "reply";
  /** The deciding policy (for `reply`, the one that allowed the way out). */
  policy: string | null;
  /** The destination prefixes the decision covers, when only some of the destination's. */
  prefixes?: string[];
}

export interface ReachabilityGraph {
  networks: GraphNetwork[];
  edges: GraphEdge[];
}

/** Decides every ordered pair of networks in `resources`. */
export async function reachabilityGraph(
  resources: Resource[],
  opts: { networkTypes?: NetworkTypeLookup; extensions?: RuleExtensionSet },
): Promise<ReachabilityGraph> {
  const networks = (resources.filter((r) => r.kind === "Network") as Network[]).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const policies = resources.filter((r) => r.kind === "NetworkRoutingPolicy") as NetworkRoutingPolicy[];
  const rules = RoutingRules.compile(policies, networks, { extensions: opts.extensions });
  const nodes: GraphNetwork[] = networks.map((n) => ({
    name: n.metadata.name,
    type: n.spec?.type ?? "?",
    ...(opts.networkTypes?.get(n.spec?.type ?? "") ? { forwarding: opts.networkTypes.get(n.spec!.type)!.forwarding } : {}),
    anonymous: n.spec?.anonymous === true,
    prefixes: [n.spec?.ipv4Subnet?.prefix, n.spec?.ipv6Subnet?.prefix, ...(n.spec?.externalPrefixes ?? [])].filter((p): p is string => Boolean(p)),
  }));
  const narrowed = [...new Set(policies.flatMap((p) => p.spec?.to?.prefixes ?? []))].flatMap((t) => {
    const p = Prefix.tryParse(t);
    return p.ok ? [p.value] : [];
  });
  const edges: GraphEdge[] = [];
  const allowed = new Set<string>();
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      const e = await rules.explain(a.name, { network: b.name });
      // Per prefix where the destination is cut in pieces; else the one decision.
      const pieces = e.prefixes.length ? e.prefixes : [e];
      for (const kind of ["allow", "deny"] as const) {
        const hits = pieces.filter((p) => p.decision === kind && (kind === "allow" || p.policy !== null));
        const byPolicy = new Map<string | null, string[]>();
        for (const h of hits) byPolicy.set(h.policy, [...(byPolicy.get(h.policy) ?? []), ...(h.prefix ? [h.prefix] : [])]);
        for (const [policy, prefixes] of byPolicy) {
          const partial = e.prefixes.length > 0 && hits.length < pieces.length;
          edges.push({ from: a.name, to: b.name, kind, policy, ...(partial ? { prefixes } : {}) });
          if (kind === "allow") allowed.add(`${a.name}>${b.name}`);
        }
      }
      // A policy narrowed to some prefixes of b (a Deny of a /28 in an allowed /25) decides those alone.
      for (const narrow of narrowed) {
        const whole = b.prefixes.map((t) => Prefix.tryParse(t)).find((t) => t.ok && t.value.covers(narrow) && !t.value.equals(narrow));
        if (!whole?.ok) continue;
        const piece = pieces.find((x) => x.prefix === whole.value.toString()) ?? e;
        const n = await rules.explain(a.name, { address: narrow.first.toString() });
        if (n.toNetwork !== b.name || (n.decision === piece.decision && n.policy === piece.policy)) continue;
        if (n.decision === "deny" && n.policy === null) continue;
        edges.push({ from: a.name, to: b.name, kind: n.decision, policy: n.policy, prefixes: [narrow.toString()] });
        if (n.decision === "allow") allowed.add(`${a.name}>${b.name}`);
      }
    }
  }
  for (const e of edges.filter((x) => x.kind === "allow")) {
    if (!allowed.has(`${e.to}>${e.from}`) && !edges.some((r) => r.kind === "reply" && r.from === e.to && r.to === e.from)) {
      edges.push({ from: e.to, to: e.from, kind: "reply", policy: e.policy });
    }
  }
  return { networks: nodes, edges };
}
