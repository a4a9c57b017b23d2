/**
 * The path a node's desired state gives a new connection from one of its
 * networks to an address: the route that carries it (longest prefix of the
 * network's paths), where it goes (delivered on this node, encapsulated to
 * another node's SID, or out of the underlay), and the verdict the state
 * means for it. What `lace explain` shows as the decided path, and what the
 * agent compares with the datapath's own answer.
 *
 * @example
 * const p = desiredPath(state, "backend", "10.40.2.2");
 * // { node: "node-1", network: "backend", networkId: 3, verdict: "allow", via: "sid",
 * //   sid: "fd00:1ace:3::3", toNode: "node-3", route: { destination: "10.40.2.0/24", … } }
 */
import { IPAddress, Prefix } from "../ip/mod.ts";
import type { DeniedDestination, NodeDesiredState, PathRoute } from "./desired_state.ts";

export interface DesiredPath {
  node: string;
  network: string;
  networkId: number;
  /** The desired state's revision this was read from. */
  revision: number;
  verdict: "allow" | "reply-only" | "deny";
  /** The path route that carries it (none: no route, denied). */
  route?: PathRoute;
  via?: PathRoute["via"];
  /** The SID it is encapsulated to (`via: "sid"`). */
  sid?: string;
  /** The node that owns the SID (`via: "sid"`), or this node (`via: "local"` to a block of its own); absent when no node holds the address. */
  toNode?: string;
  /** A Deny policy that closes the destination inside the network's own subnets. */
  denied?: DeniedDestination;
  /** Bridged networks: the destination's MAC (its Neighbor), which the FDB places on `toNode`. */
  mac?: string;
}

/**
 * The path `state` gives new connections from `network` to `destination`;
 * undefined when the network has no forwarding context on the node.
 */
export function desiredPath(state: NodeDesiredState, network: string, destination: string): DesiredPath | undefined {
  const fwd = state.networks.find((n) => n.name === network);
  if (!fwd) return undefined;
  const dst = IPAddress.parse(destination);
  const longest = <T>(items: T[], prefix: (x: T) => string): T | undefined => {
    let best: { item: T; length: number } | undefined;
    for (const item of items) {
      const p = Prefix.tryParse(prefix(item));
      if (p.ok && p.value.contains(dst) && (!best || p.value.length > best.length)) best = { item, length: p.value.length };
    }
    return best?.item;
  };
  const route = longest(fwd.paths, (p) => p.destination);
  const denied = longest(fwd.denied ?? [], (d) => d.destination);
  const out: DesiredPath = { node: state.node, network, networkId: fwd.id, revision: state.revision, verdict: "deny" };
  if (!route) return denied ? { ...out, denied } : out;
  out.route = route;
  out.via = route.via;
  // Within the destination network, a block another node owns is encapsulated to that node's SID.
  const target = state.networks.find((n) => n.name === route.toNetwork);
  const remote = route.via !== "underlay" ? longest(target?.remoteBlocks ?? [], (b) => b.prefix) : undefined;
  const neighbor = target?.forwarding === "bridged" ? target.neighbors.find((n) => n.ip === dst.toString()) : undefined;
  if (neighbor) {
    // Bridged: frames go by MAC, IP → MAC (Neighbor) then MAC → node (FDB); a SID when the MAC is elsewhere.
    out.mac = neighbor.mac;
    const fdb = target!.fdb.find((f) => f.mac.toLowerCase() === neighbor.mac.toLowerCase());
    if (fdb?.sid) [out.via, out.sid, out.toNode] = ["sid", fdb.sid, fdb.node];
    else if (fdb) [out.via, out.toNode] = ["local", fdb.node];
  } else if (remote) [out.via, out.sid, out.toNode] = ["sid", remote.sid, remote.node];
  else if (route.via === "local") {
    if (longest(target?.localPrefixes ?? [], (p) => p)) out.toNode = state.node;
  } else if (route.via === "sid" && route.sid) {
    out.sid = route.sid;
    const sid = IPAddress.parse(route.sid);
    out.toNode = (state.peers ?? []).find((p) => Prefix.tryParse(p.locator).ok && Prefix.parse(p.locator).contains(sid))?.node;
  }
  if (denied) out.denied = denied;
  out.verdict = denied ? "deny" : route.mode;
  return out;
}
