/**
 * How a Network's id and a node's locator become what every dataplane
 * shares: the SID and the pods' MTU. (Tables, bridges and other kernel
 * names are a dataplane's own choice: plugins/srv6/naming.ts.)
 *
 * @example
 * sidFor(Prefix.parse("fd00:1ace:0:2::/48"), 3); // "fd00:1ace:0:2::3"
 */
import { IPAddress, type Prefix } from "../ip/mod.ts";
import type { NetworkForwarding } from "../dataplane/desired_state.ts";

/** The underlay MTU assumed when nothing better is known (the agent may know its device's). */
export const DEFAULT_UNDERLAY_MTU = 1500;

/** The node's SID for the network: the locator's address with the network id as function. */
export function sidFor(locator: Prefix, id: number): string {
  return new IPAddress(6, locator.network + BigInt(id)).toString();
}

/**
 * The MTU of the network's pods: the Topology's when set, otherwise the
 * underlay's minus the outer IPv6 header (40), an SRH with one segment
 * (24) when SRH is forced, and the inner Ethernet header (14) for bridged
 * networks, which carry frames.
 *
 * @example
 * mtuFor("routed", "Reduced", 0, 1500);  // 1460
 * mtuFor("bridged", "SRH", 0, 1500);     // 1422
 */
export function mtuFor(forwarding: NetworkForwarding["forwarding"], encapsulation: "Reduced" | "SRH", topologyMtu: number, underlayMtu: number): number {
  if (forwarding === "underlay") return underlayMtu;
  if (topologyMtu > 0) return topologyMtu;
  return underlayMtu - 40 - (encapsulation === "SRH" ? 24 : 0) - (forwarding === "bridged" ? 14 : 0);
}

/** A stable host-side interface name when the agent has not recorded one: `lc` + 8 hex digits of FNV-1a. */
export function interfaceName(key: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return `lc${(h >>> 0).toString(16).padStart(8, "0")}`;
}

/**
 * A stable, locally administered unicast MAC for an endpoint of a bridged
 * network, from its owner handle (a pod's UID, or `lace-cni.io/owner`: a
 * VM keeps its MAC wherever it runs). The same key always gives the same MAC.
 *
 * @example
 * endpointMac("vm-disk-0"); // "02:00:…" (four bytes of FNV-1a)
 */
export function endpointMac(key: string): string {
  const n = Number.parseInt(interfaceName(key).slice(2), 16);
  return `02:00:${[24, 16, 8, 0].map((s) => ((n >>> s) & 255).toString(16).padStart(2, "0")).join(":")}`;
}

