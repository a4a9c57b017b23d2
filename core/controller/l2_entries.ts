/**
 * The Neighbor and FDBEntry resources an endpoint of a bridged (l2)
 * network stands for: one Neighbor (IP → MAC) per address and one
 * FDBEntry (MAC → node). The agent writes them when it attaches the
 * endpoint and removes them on DEL; every node's desired state reads l2
 * forwarding from these resources alone (builder.ts `sharedL2`), whether
 * an agent wrote them for its pod (`source: static`) or learned them from
 * the datapath (`source: learned`). `lace plan` feeds the same entries for
 * the endpoints it simulates.
 *
 * Both kinds are named after their key in the network, so a MAC or an
 * address has one resource, static or learned: `l2EntryName`.
 *
 * @example
 * const { neighbors, fdb } = endpointL2Entries(endpoint)!;
 * // neighbors[0].metadata.name === "storage.10-50-0-2", fdb.metadata.name === "storage.02-00-00-00-00-02"
 */
import { API_VERSION, type FDBEntry, type Neighbor, type NetworkEndpoint } from "../resources/types.ts";

/**
 * The resource name of a network's entry for a MAC or an address.
 *
 * @example
 * l2EntryName("storage", "02:00:00:00:00:99"); // "storage.02-00-00-00-00-99"
 * l2EntryName("storage", "10.50.0.99");        // "storage.10-50-0-99"
 */
export function l2EntryName(network: string, key: string): string {
  return `${network}.${key.toLowerCase().replaceAll(":", "-").replaceAll(".", "-")}`;
}

/** The label naming the endpoint (`namespace/name` as `namespace.name`) a static entry was written for. */
export const L2_ENDPOINT_LABEL = "lace-cni.io/endpoint";

/**
 * The static Neighbors and FDBEntry of an attached endpoint with a MAC;
 * undefined for an endpoint without one (a routed network's) or a detached one.
 */
export function endpointL2Entries(ep: NetworkEndpoint): { neighbors: Neighbor[]; fdb: FDBEntry } | undefined {
  const spec = ep.spec;
  if (!spec?.mac || spec.detachedAt) return undefined;
  const mac = spec.mac.toLowerCase();
  const labels = {
    "lace-cni.io/network": spec.network,
    "lace-cni.io/node": spec.node,
    [L2_ENDPOINT_LABEL]: `${ep.metadata.namespace ?? ""}.${ep.metadata.name}`,
  };
  const neighbors = (spec.addresses ?? []).map((a): Neighbor => {
    const ip = a.includes("/") ? a.slice(0, a.indexOf("/")) : a;
    return {
      apiVersion: API_VERSION, kind: "Neighbor", metadata: { name: l2EntryName(spec.network, ip), labels: { ...labels } },
      spec: { network: spec.network, ip, mac, source: "static" },
    };
  });
  const fdb: FDBEntry = {
    apiVersion: API_VERSION, kind: "FDBEntry", metadata: { name: l2EntryName(spec.network, mac), labels },
    spec: { network: spec.network, mac, node: spec.node, source: "static", sequence: 0 },
  };
  return { neighbors, fdb };
}
