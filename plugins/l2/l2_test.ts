import { suite } from "uvu";
import * as assert from "uvu/assert";
import { IPAddress, type Network, type NetworkSpec, Prefix, type Resource, SnapshotClusterView } from "../../core/mod.ts";
import plugin, { l2NetworkType as l2 } from "./mod.ts";

const t = suite("plugins/l2");

const API = "lace-cni.io/v1alpha1";
const network: Network = {
  apiVersion: API,
  kind: "Network",
  metadata: { name: "storage" },
  spec: { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" }, ipv6Subnet: { prefix: "fd00:50::/64" } },
};
const neighbor = (ip: string, mac: string, source = "static"): Resource => ({
  apiVersion: API,
  kind: "Neighbor",
  metadata: { name: `storage.${ip.replaceAll(":", "-")}` },
  spec: { network: "storage", ip, mac, source },
});
const fdb = (name: string, mac: string, node: string, sequence: number): Resource => ({
  apiVersion: API,
  kind: "FDBEntry",
  metadata: { name },
  spec: { network: "storage", mac, node, source: "learned", sequence },
});

function problems(spec: NetworkSpec): string[] {
  const out: string[] = [];
  l2.validate(spec, (path, message) => out.push(`${path}: ${message}`));
  return out;
}

t("definition: global bridged type", () => {
  assert.is(plugin.name, "lace-cni/l2");
  assert.equal(plugin.networkTypes?.map((d) => [d.type, d.addressing, d.forwarding]), [["l2", "global", "bridged"]]);
});

t("gateway: the first host address of the network's prefix", () => {
  assert.is(l2.gateway(network, Prefix.parse("10.50.0.0/24"))?.toString(), "10.50.0.1");
  assert.is(l2.gateway(network, Prefix.parse("fd00:50::/64"))?.toString(), "fd00:50::1");
});

t("locate: the address's MAC through its Neighbor, then the MAC's node through its FDBEntry", () => {
  const view = new SnapshotClusterView([
    network,
    neighbor("10.50.0.10", "02:00:0A:32:00:0A"),
    neighbor("fd00:50:0:0::10", "02:00:0a:32:00:0a"),
    fdb("storage.a", "02:00:0a:32:00:0a", "node-2", 3),
  ]);
  const where = { kind: "mac", mac: "02:00:0a:32:00:0a", node: "node-2", network: "storage" };
  assert.equal(l2.locate(network, IPAddress.parse("10.50.0.10"), view), where);
  assert.equal(l2.locate(network, IPAddress.parse("fd00:50::10"), view), where, "IPv6 in any textual form");
});

t("locate: a moved MAC is where the highest sequence number says", () => {
  const view = new SnapshotClusterView([
    network,
    neighbor("10.50.0.10", "02:00:0a:32:00:0a"),
    fdb("storage.a-old", "02:00:0a:32:00:0a", "node-1", 4),
    fdb("storage.a-new", "02:00:0a:32:00:0a", "node-3", 5),
  ]);
  assert.is((l2.locate(network, IPAddress.parse("10.50.0.10"), view) as { node: string }).node, "node-3");
  view.remove(fdb("storage.a-new", "", "", 0));
  assert.is((l2.locate(network, IPAddress.parse("10.50.0.10"), view) as { node: string }).node, "node-1");
});

t("locate: a MAC without an FDBEntry has no node; an address without a Neighbor is not located", () => {
  const view = new SnapshotClusterView([network, neighbor("10.50.0.10", "02:00:0a:32:00:0a")]);
  assert.equal(l2.locate(network, IPAddress.parse("10.50.0.10"), view), { kind: "mac", mac: "02:00:0a:32:00:0a", network: "storage" });
  assert.is(l2.locate(network, IPAddress.parse("10.50.0.11"), view), undefined);
  assert.is(l2.locate(network, IPAddress.parse("10.51.0.10"), view), undefined, "outside the subnet");
});

t("validate: no per-node blocks, a subnet with room for the gateway and a pod", () => {
  assert.equal(problems(network.spec!), []);
  assert.equal(problems({ type: "l2", ipv4Subnet: { prefix: "10.50.0.0/30" } }), []);
  assert.equal(problems({ type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24", hostLocalPrefixLength: 28 }, ipv6Subnet: { prefix: "fd00::/127" } }), [
    "ipv4Subnet.hostLocalPrefixLength: not allowed on an l2 network: its addresses come straight from the subnet (global IPAM), there are no per-node blocks",
    "ipv6Subnet.prefix: a /127 IPv6 subnet has no room for a gateway and a pod: expected a prefix length of at most 126",
  ]);
  assert.equal(problems({ type: "l2" }), [": an l2 network needs ipv4Subnet, ipv6Subnet or both, got neither"]);
});

t.run();
