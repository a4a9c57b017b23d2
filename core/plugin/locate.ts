/**
 * Where an address of a host-local network lives: the node whose
 * Allocation holds the block covering it. What a routed type's `locate`
 * hook usually is (the built-in `l3` type's, the example `segment` type's).
 *
 * @example
 * locate: (network, address, view) => locateInBlocks(network, address, view),
 */
import type { IPAddress } from "../ip/mod.ts";
import { Prefix } from "../ip/mod.ts";
import { heldBlocks } from "../ipam/layout.ts";
import type { Network } from "../resources/types.ts";
import type { ClusterView, Location } from "./api.ts";

export function locateInBlocks(network: Network, address: IPAddress, view: ClusterView): Location | undefined {
  const name = network.metadata.name;
  const subnet = address.family === 4 ? network.spec?.ipv4Subnet : network.spec?.ipv6Subnet;
  const parsed = Prefix.tryParse(subnet?.prefix);
  if (!parsed.ok || !parsed.value.contains(address)) return undefined;
  for (const allocation of view.allocations(name)) {
    // Pool records and blocks still being claimed are not where an address lives.
    for (const block of heldBlocks(allocation)) {
      const b = Prefix.tryParse(block.prefix);
      if (b.ok && b.value.contains(address)) return { kind: "node", node: allocation.spec!.node, network: name, block: b.value.toString() };
    }
  }
  return undefined;
}
