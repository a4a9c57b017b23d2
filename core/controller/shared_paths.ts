/**
 * The path routes of one network's forwarding context, the same on every
 * node: from the reachability table's entries and replies for the network,
 * routes to each allowed destination (blocks by SID, bridged networks on
 * their bridge, external prefixes over the underlay) cut around the
 * narrower denied prefixes and other external networks' longer prefixes,
 * the egress it implies, and what of its own subnets is denied to it.
 *
 * @example
 * const shared = computeSharedPaths("frontend", context);
 * shared.paths; // [{ destination: "10.40.0.0/24", toNetwork: "backend", via: "sid", ... }]
 */
import type { ReachabilityTable } from "../rules/routing.ts";
import { Prefix } from "../ip/mod.ts";
import type { PathRoute } from "../dataplane/desired_state.ts";
import type { Block, NetInfo, SharedPaths } from "./model.ts";
import { ownDenied } from "./own_denied.ts";
import { cutAround } from "./prefix_cut.ts";

const EMPTY: never[] = [];

/** What the computation reads of the builder's current inputs. */
export interface PathContext {
  nets(): ReadonlyMap<string, NetInfo>;
  table(): ReachabilityTable;
  /** Every held block of a network, with its owner. */
  blocksOf(network: string): Block[];
  /** The owner's SID for a block of the network, once the owner has a locator. */
  blockSid(b: Block, network: string): string | undefined;
}

export function computeSharedPaths(source: string, ctx: PathContext): SharedPaths {
  const s: SharedPaths = { paths: [], owners: [], egress: [], routedTargets: [], denied: EMPTY, localized: new Map(), ids: new Map() };
  const self = ctx.nets().get(source);
  const routed = new Set<string>();
  // Denied prefixes inside an allowed destination: its routes are cut around them, or the wider route would carry them.
  const denies = new Map<string, Prefix[]>();
  for (const e of ctx.table().sources.get(source) ?? EMPTY) {
    if (e.action !== "deny" || e.prefix === null) continue;
    const q = Prefix.tryParse(e.prefix);
    if (!q.ok) continue;
    const list = denies.get(e.network);
    if (list) list.push(q.value);
    else denies.set(e.network, [q.value]);
  }
  // Every external network's prefixes, made on first need: an address belongs to the external network
  // with the longest matching prefix, so a route to one network is cut around the longer prefixes of others.
  let externals: { network: string; prefix: Prefix }[] | undefined;
  const externalPrefixes = () =>
    externals ??= [...ctx.nets().values()].filter((n) => n.forwarding === "underlay").flatMap((n) =>
      (n.resource.spec?.externalPrefixes ?? []).flatMap((text) => {
        const r = Prefix.tryParse(text);
        return r.ok ? [{ network: n.name, prefix: r.value }] : [];
      })
    );
  const add = (dest: NetInfo, prefix: string, mode: PathRoute["mode"], policy: string | null) => {
    if (dest.id === undefined) return;
    const p = Prefix.tryParse(prefix);
    if (!p.ok) return;
    if (dest.name === source) {
      // The own network: its blocks are already routed (localPrefixes, remoteBlocks); one route says it is reachable.
      if (self?.forwarding !== "underlay") {
        s.paths.push({ destination: prefix, toNetwork: source, via: "local", toNetworkId: dest.id, mode, policy });
        s.owners.push(undefined);
      }
      return;
    }
    const carve = mode === "allow" ? (denies.get(dest.name) ?? EMPTY).filter((q: Prefix) => p.value.covers(q) && !q.equals(p.value)) : EMPTY;
    switch (dest.forwarding) {
      case "routed": {
        routed.add(dest.name);
        s.ids.set(dest.name, dest.id);
        for (const b of ctx.blocksOf(dest.name)) {
          const inside = p.value.covers(b.prefix);
          if (!inside && !b.prefix.covers(p.value)) continue;
          const sid = ctx.blockSid(b, dest.name);
          if (!sid) continue;
          const whole = inside ? b.prefix : p.value;
          for (const piece of cutAround(whole, carve)) {
            s.paths.push({ destination: piece === b.prefix ? b.text : piece.toString(), toNetwork: dest.name, via: "sid", sid, mode, policy });
            s.owners.push(b.node);
          }
        }
        return;
      }
      case "bridged":
        for (const piece of cutAround(p.value, carve)) {
          s.paths.push({ destination: piece.toString(), toNetwork: dest.name, via: "local", toNetworkId: dest.id, mode, policy });
          s.owners.push(undefined);
        }
        return;
      case "underlay": {
        const others = externalPrefixes()
          .filter((x) => x.network !== dest.name && p.value.covers(x.prefix) && !x.prefix.equals(p.value))
          .map((x) => x.prefix);
        // Both directions allowed: the reverse is not a reply-only path, so say so on the route.
        const inbound = mode === "allow" &&
          (ctx.table().sources.get(dest.name) ?? EMPTY).some((e) => e.action === "allow" && e.network === source);
        for (const piece of cutAround(p.value, others.length ? [...carve, ...others] : carve)) {
          const text = piece.toString();
          s.paths.push(inbound
            ? { destination: text, toNetwork: dest.name, via: "underlay", mode, policy, inbound }
            : { destination: text, toNetwork: dest.name, via: "underlay", mode, policy });
          s.owners.push(undefined);
          if (mode === "allow") s.egress.push({ prefix: text, network: dest.name, snat: dest.snat });
        }
        return;
      }
    }
  };
  for (const e of ctx.table().sources.get(source) ?? EMPTY) {
    if (e.action !== "allow" || e.prefix === null) continue;
    const dest = ctx.nets().get(e.network);
    if (dest) add(dest, e.prefix, "allow", e.policy);
  }
  for (const r of ctx.table().replies.get(source) ?? EMPTY) {
    const dest = ctx.nets().get(r.network);
    if (dest) add(dest, r.prefix, "reply-only", r.policy);
  }
  s.routedTargets = [...routed];
  if (self && self.forwarding !== "underlay") s.denied = ownDenied(ctx.table().sources.get(source) ?? EMPTY, source, self.subnets);
  return s;
}
