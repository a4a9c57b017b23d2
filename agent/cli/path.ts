/**
 * The path part of a live `lace explain`: where a new connection starts
 * (node, interface), the route of the node's desired state that carries
 * it, the SID and node it is encapsulated to, what the node's datapath
 * holds for it (read back by the agent), and whether the routing decision,
 * the desired state and the datapath agree.
 *
 * @example
 * const p: ExplainedPath = { source: { node: "node-1", interface: "lace1a2b", network: "backend" }, destination: "10.40.2.2", desired, dataplane };
 * formatPath(p, "allow"); // ["path from node node-1 …", …, "agreement: …"]
 */
import type { DataplaneTrace, DesiredPath } from "../../core/mod.ts";

export interface ExplainedPath {
  source: { node: string; interface?: string; network: string; pod?: string };
  destination: string;
  /** The node's desired state's path (from its agent, else computed here from the store). */
  desired?: DesiredPath;
  /** Where `desired` came from. */
  desiredFrom?: "agent" | "store";
  backend?: string;
  /** The datapath's own answer, read back by the node's agent. */
  dataplane?: DataplaneTrace;
  /** Why there is no `dataplane`. */
  dataplaneError?: string;
}

export interface Agreement {
  agree: boolean;
  /** One sentence; names each side that differs. */
  text: string;
}

/** Whether a verdict carries the decision: allow is allow; deny holds for a reply-only path too (no new connections). */
function carries(decision: "allow" | "deny", verdict: string): boolean {
  return decision === "allow" ? verdict === "allow" : verdict === "deny" || verdict === "reply-only";
}

/** Compares the routing decision with the desired state and the datapath. */
export function agreement(decision: "allow" | "deny", p: ExplainedPath): Agreement {
  const sides: [string, string | undefined][] = [
    [`the node's desired state (revision ${p.desired?.revision ?? "?"})`, p.desired?.verdict],
    [`the datapath of ${p.source.node}`, p.dataplane?.verdict],
  ];
  const known = sides.filter((s): s is [string, string] => s[1] !== undefined);
  const differ = known.filter(([, v]) => !carries(decision, v));
  if (differ.length) {
    return { agree: false, text: `DISAGREE: the policies decide ${decision}, but ${differ.map(([who, v]) => `${who} says ${v}`).join(" and ")}` };
  }
  // Both carry it, but maybe not the same way: a datapath that delivers locally what the state sends to a SID loses it.
  const d = p.desired;
  const t = p.dataplane;
  if (d?.via && t?.via && d.verdict !== "deny" && t.verdict !== "deny" && (d.via !== t.via || (d.via === "sid" && d.sid !== t.sid))) {
    return { agree: false, text: `DISAGREE: the node's desired state sends it ${viaText(d.via, d.sid)}, but the datapath of ${p.source.node} ${viaText(t.via, t.sid)}` };
  }
  const unread = sides.filter((s) => s[1] === undefined).map(([who]) => who);
  return {
    agree: true,
    text: `the decision (${decision})${known.map(([who, v]) => `, ${who} (${v})`).join("")} agree${unread.length ? `; not read: ${unread.join(", ")}` : ""}`,
  };
}

function viaText(via: "local" | "sid" | "underlay", sid?: string): string {
  return via === "sid" ? `via SID ${sid}` : via === "local" ? "via this node" : "via the underlay";
}

/** The readable form, ending with the agreement line. */
export function formatPath(p: ExplainedPath, decision: "allow" | "deny"): string[] {
  const out: string[] = [];
  const d = p.desired;
  out.push(`path from node ${p.source.node}${d ? ` (desired state revision ${d.revision}, from the ${p.desiredFrom ?? "agent"})` : ""}:`);
  out.push(`  source:      ${p.source.pod ? `pod ${p.source.pod} ` : ""}on node ${p.source.node}${p.source.interface ? `, interface ${p.source.interface}` : ""}, network ${p.source.network}${d ? ` (id ${d.networkId})` : ""}`);
  if (!d) out.push(`  route:       none: network ${p.source.network} has no forwarding context on node ${p.source.node}`);
  else if (!d.route) out.push(`  route:       none to ${p.destination}${d.denied ? `; closed by ${d.denied.policy ? `policy ${d.denied.policy}` : "the network being anonymous"}` : ""}`);
  else {
    const r = d.route;
    out.push(`  route:       ${r.destination} → network ${r.toNetwork} ${viaText(d.via!, d.sid)}, ${r.mode} (${r.policy === null ? "implicit: own network" : `policy ${r.policy}`})`);
    if (d.denied) out.push(`  closed:      ${d.denied.destination} by ${d.denied.policy ? `policy ${d.denied.policy}` : "the network being anonymous"}: new connections dropped`);
    const mac = d.mac ? `MAC ${d.mac}, ` : "";
    const where = d.via === "sid" ? `node ${d.toNode ?? "?"} (${mac}SID ${d.sid})`
      : d.via === "local" ? (d.toNode ? `node ${d.toNode} (${mac}delivered on this node)` : `no node holds ${p.destination} (no block of network ${r.toNetwork} covers it)`)
      : `${p.destination} out of the underlay`;
    out.push(`  destination: ${where}`);
  }
  if (p.dataplane) {
    const t = p.dataplane;
    out.push(`datapath on ${p.source.node}${p.backend ? ` (${p.backend} backend)` : ""}: ${t.verdict.toUpperCase()}${t.via ? ` ${viaText(t.via, t.sid)}` : ""}${t.reason ? `: ${t.reason}` : ""}`);
    const w = Math.max(0, ...t.entries.map((e) => e.kind.length));
    for (const e of t.entries) out.push(`    ${e.kind.padEnd(w)}  ${e.text}`);
  } else {
    out.push(`datapath on ${p.source.node}: not read back: ${p.dataplaneError ?? "no answer"}`);
  }
  out.push(`agreement: ${agreement(decision, p).text}`);
  return out;
}
