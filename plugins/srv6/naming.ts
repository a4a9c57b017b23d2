/**
 * The Linux names and numbers the srv6 dataplane gives a network's
 * forwarding context on a node, from the network's id alone: its routing
 * table and its bridge. The desired state carries only the id (it is the
 * same for every dataplane); these are this dataplane's choice.
 *
 * @example
 * tableFor(3);  // 1003
 * bridgeFor(3); // "lb3"
 */
import type { NetworkForwarding } from "../../core/plugin/mod.ts";

/** Network tables start here, clear of the kernel's own (253–255) and of common local ones. */
export const TABLE_BASE = 1000;

/** Routing table of the network's forwarding context. */
export function tableFor(id: number): number {
  return TABLE_BASE + id;
}

/** The per-node bridge of the network: short, so it fits the 15-character interface name limit. */
export function bridgeFor(id: number): string {
  return `lb${id}`;
}

/** The network's local bridge on the node: routed and bridged networks have one, underlay (external) ones none. */
export function localBridge(net: Pick<NetworkForwarding, "id" | "forwarding">): string | undefined {
  return net.forwarding === "underlay" ? undefined : bridgeFor(net.id);
}
