/**
 * The Linux names and numbers the srv6 dataplane gives a network's
 * forwarding context on a node, from the network's id alone (its routing
 * table, its bridge and the bridge's MAC, its packet mark), and the MAC a
 * pod's interface gets from its addresses. The desired state carries only the id (it is the
 * same for every dataplane); these are this dataplane's choice.
 *
 * @example
 * tableFor(3);  // 1003
 * bridgeFor(3); // "lb3"
 */
import { IPAddress, type NetworkForwarding } from "../../core/plugin/mod.ts";

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

/** Packet marks for SID → table: MARK_BASE | network id. */
export const MARK_BASE = 0x4c000000;

/** The mark nftables sets for a network's SID. */
export function networkMark(id: number): number {
  return (MARK_BASE | (id & 0xffffff)) >>> 0;
}

/**
 * The fixed MAC of a network's bridge: `0a:4c:` and the network id (32
 * bits). Locally administered, unique per network on a node, and stable,
 * so pods' neighbour entries for their gateway (and, on a checked bridge,
 * for each other) never go stale as ports come and go.
 *
 * @example
 * bridgeMac(7); // "0a:4c:00:00:00:07"
 */
export function bridgeMac(id: number): string {
  const hex = (n: number) => (n & 0xff).toString(16).padStart(2, "0");
  return ["0a", "4c", hex(id >>> 24), hex(id >>> 16), hex(id >>> 8), hex(id)].join(":");
}

/**
 * The MAC a pod's interface gets when none is given: `0a:58:` and its IPv4
 * address (the convention of other CNIs), else `0a:59:` and the last four
 * bytes of its IPv6 address. Known from the addresses alone, so the plan
 * can write the pod's neighbour entry without reading the kernel. Unique on
 * a bridge (one network's addresses are unique).
 *
 * @example
 * podMac(["10.40.3.5/32", "fd00:40:0:3::5/128"]); // "0a:58:0a:28:03:05"
 */
export function podMac(addresses: string[]): string {
  const v4 = addresses.find((a) => !a.includes(":"));
  const hex = (b: number) => b.toString(16).padStart(2, "0");
  if (v4) return ["0a", "58", ...v4.split("/")[0].split(".").map((x) => hex(Number(x)))].join(":");
  const v6 = addresses.find((a) => a.includes(":"));
  if (!v6) throw new Error("Cannot derive a pod MAC: the pod has no address");
  const low = IPAddress.parse(v6.split("/")[0]).value & 0xffffffffn;
  return ["0a", "59", ...[24n, 16n, 8n, 0n].map((s) => hex(Number((low >> s) & 0xffn)))].join(":");
}
