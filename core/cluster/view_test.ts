import { suite } from "uvu";
import * as assert from "uvu/assert";
import { IPAddress } from "../ip/mod.ts";
import type { ClusterView } from "../plugin/api.ts";
import type { Resource } from "../resources/types.ts";
import { SnapshotClusterView } from "./view.ts";

const t = suite("SnapshotClusterView");
const API = "lace-cni.io/v1alpha1";

const network = (name: string, spec: Record<string, unknown>): Resource => ({ apiVersion: API, kind: "Network", metadata: { name }, spec });
const endpoint = (name: string, network: string, address: string): Resource => ({
  apiVersion: API,
  kind: "NetworkEndpoint",
  metadata: { name, namespace: "team-a" },
  spec: { network, node: "node-1", addresses: [address] },
});
const neighbor = (name: string, ip: string, mac: string, source: string): Resource => ({
  apiVersion: API,
  kind: "Neighbor",
  metadata: { name },
  spec: { network: "storage", ip, mac, source },
});
const names = (it: Iterable<Resource>) => [...it].map((r) => r.metadata.name).sort();

t("satisfies the plugin API's ClusterView", () => {
  const view: ClusterView = new SnapshotClusterView();
  assert.equal([...view.networks()], []);
  assert.is(view.externalNetworkFor(IPAddress.parse("192.0.2.1")), undefined);
});

t("networks by name; update replaces, remove forgets", () => {
  const view = new SnapshotClusterView([network("backend", { type: "l3" }), network("storage", { type: "l2" })]);
  assert.equal(names(view.networks()), ["backend", "storage"]);
  view.update(network("backend", { type: "l3", anonymous: true }));
  assert.is(view.network("backend")?.spec?.anonymous, true);
  view.remove({ kind: "Network", metadata: { name: "storage" } });
  assert.is(view.network("storage"), undefined);
  assert.equal(names(view.networks()), ["backend"]);
});

t("endpoints are indexed by network and move when their network changes", () => {
  const view = new SnapshotClusterView([endpoint("a", "backend", "10.40.1.2"), endpoint("b", "backend", "10.40.1.3")]);
  assert.equal(names(view.endpoints("backend")), ["a", "b"]);
  view.update(endpoint("b", "frontend", "10.60.1.3"));
  assert.equal(names(view.endpoints("backend")), ["a"]);
  assert.equal(names(view.endpoints("frontend")), ["b"]);
  assert.equal(names(view.endpoints("nowhere")), []);
});

t("neighbor: canonical IP lookup, a static entry wins over a learned one", () => {
  const view = new SnapshotClusterView([
    neighbor("learned", "fd00:50::a", "02:00:00:00:00:01", "learned"),
    neighbor("static", "fd00:50:0::a", "02:00:00:00:00:02", "static"),
  ]);
  assert.is(view.neighbor("storage", "fd00:50:0:0:0:0:0:a")?.metadata.name, "static");
  view.remove(neighbor("static", "", "", ""));
  assert.is(view.neighbor("storage", "fd00:50::a")?.metadata.name, "learned");
  assert.is(view.neighbor("other", "fd00:50::a"), undefined);
});

t("externalNetworkFor: longest prefix wins; a shared prefix goes to the smaller name", () => {
  const view = new SnapshotClusterView([
    network("corp", { type: "external", externalPrefixes: ["192.0.2.0/24"] }),
    network("lab", { type: "external", externalPrefixes: ["192.0.2.128/25"] }),
    network("b-twin", { type: "external", externalPrefixes: ["198.51.100.0/24"] }),
    network("a-twin", { type: "external", externalPrefixes: ["198.51.100.0/24"] }),
    network("backend", { type: "l3", ipv4Subnet: { prefix: "203.0.113.0/24", hostLocalPrefixLength: 26 } }),
  ]);
  assert.equal(view.externalNetworkFor(IPAddress.parse("192.0.2.200")), { network: "lab", prefix: "192.0.2.128/25" });
  assert.equal(view.externalNetworkFor(IPAddress.parse("192.0.2.1")), { network: "corp", prefix: "192.0.2.0/24" });
  assert.equal(view.externalNetworkFor(IPAddress.parse("198.51.100.1")), { network: "a-twin", prefix: "198.51.100.0/24" });
  assert.is(view.externalNetworkFor(IPAddress.parse("203.0.113.1")), undefined, "l3 subnets are not external");
  view.update(network("lab", { type: "external", externalPrefixes: ["192.0.2.240/28"] }));
  assert.equal(view.externalNetworkFor(IPAddress.parse("192.0.2.200")), { network: "corp", prefix: "192.0.2.0/24" });
  view.remove({ kind: "Network", metadata: { name: "a-twin" } });
  assert.equal(view.externalNetworkFor(IPAddress.parse("198.51.100.1")), { network: "b-twin", prefix: "198.51.100.0/24" });
});

t.run();
