/**
 * What of its own subnets a network's endpoints may not open connections
 * to (the forwarding context's `denied`), from the reachability table.
 *
 * @example
 * ownDenied([], "vault", [Prefix.parse("10.20.0.0/16")]); // [{ destination: "10.20.0.0/16", policy: null }]
 */
import type { DeniedDestination } from "../dataplane/desired_state.ts";
import { Prefix } from "../ip/mod.ts";
import type { ReachEntry } from "../rules/routing.ts";
import { cutAround } from "./prefix_cut.ts";

/** Shared empty result: unchanged contexts compare by identity. */
const NONE: DeniedDestination[] = [];

/**
 * What of its own subnets the source may not open connections to, as
 * disjoint pieces: its Deny entries there, and every subnet no Allow entry
 * of its own covers (an anonymous network, or a Deny for the whole network:
 * policy null, since the reachability table lists no entry for them). Each
 * piece is cut around the narrower own prefixes a policy allows inside it,
 * and pieces inside another denied piece are dropped. The own blocks stay
 * routed (other networks may be allowed there), so these are not routes.
 */
export function ownDenied(entries: readonly ReachEntry[], source: string, subnets: readonly Prefix[]): DeniedDestination[] {
  const allowed: Prefix[] = [];
  const denied: { prefix: Prefix; policy: string | null }[] = [];
  for (const e of entries) {
    if (e.network !== source || e.prefix === null) continue;
    const p = Prefix.tryParse(e.prefix);
    if (!p.ok) continue;
    if (e.action === "allow") allowed.push(p.value);
    else denied.push({ prefix: p.value, policy: e.policy });
  }
  for (const subnet of subnets) {
    if (!allowed.some((a) => a.covers(subnet))) denied.push({ prefix: subnet, policy: null });
  }
  if (denied.length === 0) return NONE;
  const pieces: { prefix: Prefix; policy: string | null }[] = [];
  for (const d of denied) {
    const holes = allowed.filter((a) => d.prefix.covers(a) && !a.equals(d.prefix));
    for (const piece of cutAround(d.prefix, holes)) pieces.push({ prefix: piece, policy: d.policy });
  }
  pieces.sort((a, b) => a.prefix.compare(b.prefix));
  const out: DeniedDestination[] = [];
  let last: Prefix | undefined;
  for (const x of pieces) {
    // Sorted by address then length: a piece inside an earlier one follows it.
    if (last && last.covers(x.prefix)) continue;
    last = x.prefix;
    out.push({ destination: x.prefix.toString(), policy: x.policy });
  }
  return out;
}
