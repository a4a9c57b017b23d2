/**
 * The `l2` network type: one flat L2 domain per network, addresses handed
 * out straight from the subnet (global IPAM). The gateway is the first host
 * address of the subnet (the same on every node); an address resolves to a
 * MAC through its Neighbor, then to a node through the MAC's FDBEntry.
 *
 * @example
 * # lace.yaml
 * plugins: [lace-cni/l2]
 */
import {
  checkSubnets,
  type ClusterView,
  definePlugin,
  forbidFields,
  type IPAddress,
  type Location,
  longestUsablePrefix,
  type Network,
  type NetworkSpec,
  type NetworkTypeDefinition,
  Prefix,
  type ProblemReporter,
} from "../../core/plugin/mod.ts";

function validate(spec: NetworkSpec, report: ProblemReporter): void {
  forbidFields(spec, "an l2 network", {
    externalPrefixes: "externalPrefixes are for external networks",
    snat: "snat is for external networks",
    options: "options are for third-party network types",
  }, report);
  for (const { field, family, subnet, length } of checkSubnets(spec, "an l2 network", report)) {
    if (subnet.hostLocalPrefixLength !== undefined) {
      report(
        `${field}.hostLocalPrefixLength`,
        `not allowed on an l2 network: its addresses come straight from the subnet (global IPAM), there are no per-node blocks`,
      );
    }
    const longest = longestUsablePrefix(family);
    if (length !== undefined && length > longest) {
      report(
        `${field}.prefix`,
        `a /${length} IPv${family} subnet has no room for a gateway and a pod: expected a prefix length of at most ${longest}`,
      );
    }
  }
}

/** The MAC behind `address` (Neighbor), and the node behind that MAC (FDBEntry) when known. */
function locate(network: Network, address: IPAddress, view: ClusterView): Location | undefined {
  const name = network.metadata.name;
  const subnet = address.family === 4 ? network.spec?.ipv4Subnet : network.spec?.ipv6Subnet;
  const parsed = Prefix.tryParse(subnet?.prefix);
  if (!parsed.ok || !parsed.value.contains(address)) return undefined;
  const neighbor = view.neighbor(name, address.toString());
  if (!neighbor?.spec) return undefined;
  const mac = neighbor.spec.mac.toLowerCase();
  const fdb = view.fdbEntry(name, mac);
  return fdb?.spec ? { kind: "mac", mac, node: fdb.spec.node, network: name } : { kind: "mac", mac, network: name };
}

/** The `l2` network type definition. */
export const l2NetworkType: NetworkTypeDefinition = {
  type: "l2",
  addressing: "global",
  forwarding: "bridged",
  description: "Flat L2 domain across nodes, forwarded by MAC; suited to VM workloads",
  validate,
  gateway: (_network, subnet) => subnet.firstHost,
  locate,
};

export default definePlugin({
  name: "lace-cni/l2",
  apiVersion: "^1.0.0",
  networkTypes: [l2NetworkType],
});
