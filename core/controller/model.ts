/**
 * The builder's own view of its inputs, shared by its parts: a network as
 * forwarding needs it, a block of a node, and the path routes a network's
 * forwarding context shares across nodes.
 *
 * @example
 * const net: NetInfo = { name: "red", id: 1, type: "l3", forwarding: "routed", ... };
 */
import type { DeniedDestination, EgressRoute, NetworkForwarding, PathRoute } from "../dataplane/desired_state.ts";
import type { Prefix } from "../ip/mod.ts";
import type { Network } from "../resources/types.ts";

export interface NetInfo {
  name: string;
  id: number | undefined;
  type: string;
  forwarding: NetworkForwarding["forwarding"];
  anonymous: boolean;
  snat: boolean;
  /** l3/l2 subnets, IPv4 first. */
  subnets: Prefix[];
  /** What the routing table depends on (labels included). */
  routingKey: string;
  /** What forwarding contexts depend on besides id and forwarding (labels excluded). */
  shapeKey: string;
  resource: Network;
}

export interface Block {
  prefix: Prefix;
  text: string;
  node: string;
  /** The owner's SID for the block's network, and the locator and id it was made from. */
  sid?: string;
  sidLocator?: Prefix;
  sidId?: number;
}

/** Per-network path routes, the same on every node. */
export interface SharedPaths {
  paths: PathRoute[];
  /** For each path, the node holding the destination block (routed destinations only). */
  owners: (string | undefined)[];
  egress: EgressRoute[];
  /** Routed destinations: a node holding one of their blocks needs its own copy. */
  routedTargets: string[];
  /** Prefixes of the own network its endpoints may not open connections to. */
  denied: DeniedDestination[];
  /** Each path's variant delivered on the local bridge, made once. */
  localized: Map<PathRoute, PathRoute>;
  /** Routed destinations' network ids, for those variants (a local path names its destination network). */
  ids: Map<string, number>;
}
