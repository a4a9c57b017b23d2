import { suite } from "uvu";
import * as assert from "uvu/assert";
import { IPAddress, type Network, type NetworkSpec, Prefix, SnapshotClusterView } from "../../core/mod.ts";
import plugin, { l3NetworkType as l3 } from "./mod.ts";

const t = suite("plugins/l3");

const network: Network = {
  apiVersion: "lace-cni.io/v1alpha1",
  kind: "Network",
  metadata: { name: "backend" },
  spec: {
    type: "l3",
    ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 },
    ipv6Subnet: { prefix: "fd00:40::/48", hostLocalPrefixLength: 64 },
  },
};
const allocation = (node: string, ...blocks: string[]) => ({
  apiVersion: "lace-cni.io/v1alpha1",
  kind: "Allocation",
  metadata: { name: `backend.${node}` },
  spec: { network: "backend", node, blocks: blocks.map((prefix) => ({ prefix })) },
});

function problems(spec: NetworkSpec): string[] {
  const out: string[] = [];
  l3.validate(spec, (path, message) => out.push(`${path}: ${message}`));
  return out;
}

t("definition: name, API range, host-local routed type", () => {
  assert.is(plugin.name, "lace-cni/l3");
  assert.is(plugin.apiVersion, "^1.0.0");
  assert.equal(plugin.networkTypes?.map((d) => [d.type, d.addressing, d.forwarding]), [["l3", "host-local", "routed"]]);
});

t("gateway: the first host address of a node's block", () => {
  assert.is(l3.gateway(network, Prefix.parse("10.40.3.0/24"))?.toString(), "10.40.3.1");
  assert.is(l3.gateway(network, Prefix.parse("fd00:40:0:7::/64"))?.toString(), "fd00:40:0:7::1");
});

t("locate: the node whose Allocation holds the covering block", () => {
  const view = new SnapshotClusterView([
    network,
    allocation("node-1", "10.40.1.0/24", "10.40.9.0/24"),
    allocation("node-2", "10.40.2.0/24", "fd00:40:0:2::/64"),
  ] as never);
  assert.equal(l3.locate(network, IPAddress.parse("10.40.9.77"), view), {
    kind: "node",
    node: "node-1",
    network: "backend",
    block: "10.40.9.0/24",
  });
  assert.is((l3.locate(network, IPAddress.parse("fd00:40:0:2::99"), view) as { node: string }).node, "node-2");
  assert.is(l3.locate(network, IPAddress.parse("10.40.5.1"), view), undefined, "no block holds it");
  assert.is(l3.locate(network, IPAddress.parse("10.41.1.1"), view), undefined, "outside the subnet");
});

t("locate follows the view as allocations change", () => {
  const view = new SnapshotClusterView([network, allocation("node-1", "10.40.1.0/24")] as never);
  view.update(allocation("node-1", "10.40.4.0/24") as never);
  assert.is(l3.locate(network, IPAddress.parse("10.40.1.5"), view), undefined);
  assert.is((l3.locate(network, IPAddress.parse("10.40.4.5"), view) as { node: string }).node, "node-1");
  view.remove(allocation("node-1") as never);
  assert.is(l3.locate(network, IPAddress.parse("10.40.4.5"), view), undefined);
});

t("locate ignores IPAM pool records and blocks still being claimed", () => {
  const pool = {
    ...allocation("pool-0.lace-cni.io", "10.40.7.0/24"),
    metadata: { name: "backend.pool-0.lace-cni.io", labels: { "lace-cni.io/network": "backend", "lace-cni.io/pool": "true" } },
  };
  pool.spec.blocks[0] = { prefix: "10.40.7.0/24", node: "node-3" } as never;
  const claiming = allocation("node-3", "10.40.7.0/24");
  (claiming.spec.blocks[0] as { pending?: boolean }).pending = true;
  const view = new SnapshotClusterView([network, pool, claiming] as never);
  assert.is(l3.locate(network, IPAddress.parse("10.40.7.9"), view), undefined, "pending: not routable yet");
  view.update(allocation("node-3", "10.40.7.0/24") as never);
  assert.is((l3.locate(network, IPAddress.parse("10.40.7.9"), view) as { node: string }).node, "node-3");
});

t("validate: a valid dual-stack spec has no problems", () => {
  assert.equal(problems(network.spec!), []);
});

t("validate: paths are relative to spec and every problem is reported", () => {
  assert.equal(problems({ type: "l3", ipv4Subnet: { prefix: "10.40.0.0/16" }, ipv6Subnet: { prefix: "fd00::/48", hostLocalPrefixLength: 48 }, snat: true }), [
    "snat: not allowed on an l3 network: snat is for external networks",
    "ipv4Subnet.hostLocalPrefixLength: is required for an l3 network: the length of each node's block, between 17 and 30 for a /16 IPv4 subnet",
    "ipv6Subnet.hostLocalPrefixLength: must be between 49 and 126 for a /48 IPv6 subnet (a block needs room for the gateway and a pod), got 48",
  ]);
});

t("validate: the narrowest usable block leaves the gateway and one pod", () => {
  assert.equal(problems({ type: "l3", ipv4Subnet: { prefix: "10.40.0.0/29", hostLocalPrefixLength: 30 } }), []);
  assert.equal(problems({ type: "l3", ipv6Subnet: { prefix: "fd00::/120", hostLocalPrefixLength: 126 } }), []);
});

t.run();
