/**
 * Test support for l2 (bridged) networks on a TestCluster: hand-built
 * desired states that add l2 networks (one subnet across nodes, a Neighbor
 * and an FDB entry per pod, the anycast gateway) to the routed ones that
 * `TestCluster.desiredState` builds, with paths between the two kinds.
 *
 * @example
 * const storage: TestL2Network = { name: "storage", id: 5, v4: 50, v6: 50 };
 * const s = l2DesiredState(cluster, 1, { l3: [red], l2: [storage], pods: [...] });
 */
import type { NetworkForwarding, NodeDesiredState, PathRoute } from "../../core/plugin/mod.ts";
import { podMac } from "./plan.ts";
import { TestCluster, type TestNetwork, type TestPod } from "./testing.ts";

/** An l2 network: subnets 10.<v4>.0.0/24 and fd00:<v6>::/64, gateway .1 / ::1. */
export interface TestL2Network {
  name: string;
  id: number;
  v4: number;
  v6: number;
}

/** An l2 pod: host number in the subnet (10.<v4>.0.<host>). */
export type TestL2Pod = TestPod;

export interface L2Topology {
  l3: TestNetwork[];
  l2: TestL2Network[];
  /** Pods of both kinds (by their network's name). */
  pods: TestPod[];
  /** Allowed paths `from → to` (their reverse is reply-only), between any two networks. */
  paths?: { from: string; to: string }[];
  encapsulation?: "Reduced" | "SRH";
}

/**
 * The networks and pods the l2 tests and benchmark share: l3 `red`, l2
 * `storage` (two pods on node 1, one on node 2) and l2 `vault` (one pod on
 * each of nodes 1 and 2), red pods on nodes 1 and 3; red may open
 * connections to storage, vault to red.
 */
export const L2_FIXTURE = (() => {
  const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
  const storage: TestL2Network = { name: "storage", id: 5, v4: 50, v6: 50 };
  const vault: TestL2Network = { name: "vault", id: 6, v4: 60, v6: 60 };
  const pod = (name: string, node: number, network: string, host: number): TestPod => ({ name, node, network, host });
  const pods = [
    pod("sa", 1, "storage", 10), pod("sb", 1, "storage", 11), pod("sc", 2, "storage", 20),
    pod("va", 1, "vault", 10), pod("vb", 2, "vault", 20), pod("ra", 1, "red", 10), pod("rc", 3, "red", 30),
  ];
  const topo: L2Topology = { l3: [red], l2: [storage, vault], pods, paths: [{ from: "red", to: "storage" }, { from: "vault", to: "red" }] };
  return { red, storage, vault, pods, topo };
})();

export const l2Subnets = (net: TestL2Network): string[] => [`10.${net.v4}.0.0/24`, `fd00:${net.v6}::/64`];

/** An l2 pod's addresses (with the subnet's length), gateways, MAC and MTU, as attachPod takes them. */
export function l2PodAddresses(pod: TestPod, net: TestL2Network, encapsulation: "Reduced" | "SRH" = "Reduced") {
  const addresses = [`10.${net.v4}.0.${pod.host}/24`, `fd00:${net.v6}::${pod.host}/64`];
  return {
    addresses,
    gateways: [`10.${net.v4}.0.1/24`, `fd00:${net.v6}::1/64`],
    mac: podMac(addresses),
    mtu: 1500 - 40 - 14 - (encapsulation === "SRH" ? 24 : 0),
  };
}

/**
 * The desired state of node `n`: the routed networks as TestCluster builds
 * them, plus every l2 network on every node (the builder puts one on nodes
 * with its endpoints or a path to it; a node without either holds only its
 * bridge), with its Neighbors, FDB and the paths of `topo.paths`.
 */
export function l2DesiredState(cluster: TestCluster, n: number, topo: L2Topology): NodeDesiredState {
  const l2ByName = new Map(topo.l2.map((x) => [x.name, x]));
  const l3ByName = new Map(topo.l3.map((x) => [x.name, x]));
  const encapsulation = topo.encapsulation ?? "Reduced";
  const l3Paths = (topo.paths ?? []).filter((p) => l3ByName.has(p.from) && l3ByName.has(p.to));
  const l3Pods = topo.pods.filter((p) => l3ByName.has(p.network));
  const state = cluster.desiredState(n, topo.l3, l3Pods, l3Paths, encapsulation);
  const blocks = (net: TestNetwork, m: number) => [`10.${net.v4}.${m}.0/24`, `fd00:${net.v6}:0:${m}::/64`];

  // Routes to a network from another, as the builder makes them: l2 subnets on the local bridge, l3 blocks by SID.
  const routesTo = (to: string, mode: PathRoute["mode"]): PathRoute[] => {
    const l2 = l2ByName.get(to);
    if (l2) return l2Subnets(l2).map((destination) => ({ destination, toNetwork: to, via: "local", toNetworkId: l2.id, mode, policy: "test" }));
    const l3 = l3ByName.get(to)!;
    const out: PathRoute[] = [];
    for (let m = 1; m <= cluster.nodeCount; m++) {
      for (const destination of blocks(l3, m)) {
        out.push(m === n
          ? { destination, toNetwork: to, via: "local", toNetworkId: l3.id, mode, policy: "test" }
          : { destination, toNetwork: to, via: "sid", sid: cluster.sid(m, l3), mode, policy: "test" });
      }
    }
    return out;
  };
  const mixed = (topo.paths ?? []).filter((p) => l2ByName.has(p.from) || l2ByName.has(p.to));

  for (const net of topo.l2) {
    const pods = topo.pods.filter((p) => p.network === net.name);
    const fwd: NetworkForwarding = {
      name: net.name, id: net.id, type: "l2", forwarding: "bridged", anonymous: false,
      mtu: l2PodAddresses(pods[0] ?? { name: "", node: n, network: net.name, host: 2 }, net, encapsulation).mtu,
      sid: cluster.sid(n, net), sidBehavior: "decap-bridge",
      gateways: [`10.${net.v4}.0.1/24`, `fd00:${net.v6}::1/64`],
      localPrefixes: l2Subnets(net), remoteBlocks: [],
      paths: l2Subnets(net).map((destination) => ({ destination, toNetwork: net.name, via: "local", toNetworkId: net.id, mode: "allow", policy: null })),
      neighbors: pods.flatMap((p) => {
        const a = l2PodAddresses(p, net, encapsulation);
        return a.addresses.map((cidr) => ({ ip: cidr.split("/")[0], mac: a.mac, source: "static" as const }));
      }),
      fdb: pods.map((p) => ({
        mac: l2PodAddresses(p, net, encapsulation).mac, node: `node-${p.node}`,
        ...(p.node === n ? {} : { sid: cluster.sid(p.node, net) }), source: "static" as const, sequence: 0,
      })),
      egress: [],
    };
    state.networks.push(fwd);
    for (const p of pods.filter((x) => x.node === n)) {
      const a = l2PodAddresses(p, net, encapsulation);
      state.endpoints.push({
        id: `default/${p.name}`, network: net.name, addresses: a.addresses, mac: a.mac,
        interface: `h-${p.name}`, netns: `/run/netns/${cluster.podNs(p.name)}`,
      });
    }
  }
  for (const p of mixed) {
    const from = state.networks.find((x) => x.name === p.from)!;
    const to = state.networks.find((x) => x.name === p.to)!;
    from.paths.push(...routesTo(p.to, "allow"));
    to.paths.push(...routesTo(p.from, "reply-only"));
  }
  return state;
}
