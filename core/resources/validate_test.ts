import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NetworkTypeRegistry } from "../plugin/registry.ts";
import type { NetworkTypeDefinition } from "../plugin/api.ts";
import { l3NetworkType } from "../../plugins/l3/mod.ts";
import { l2NetworkType } from "../../plugins/l2/mod.ts";
import { externalNetworkType } from "../../plugins/external/mod.ts";
import { formatProblem, type Problem, validateAll, validateResource } from "./validate.ts";

const registry = new NetworkTypeRegistry();
registry.register("lace-cni/l3", l3NetworkType);
registry.register("lace-cni/l2", l2NetworkType);
registry.register("lace-cni/external", externalNetworkType);
const ctx = { networkTypes: registry };

const API = "lace-cni.io/v1alpha1";
type Obj = Record<string, unknown>;

const net = (spec: unknown, metadata: Obj = { name: "n" }): Obj => ({ apiVersion: API, kind: "Network", metadata, spec });
const l3 = (over: Obj = {}): Obj => ({ type: "l3", ipv4Subnet: { prefix: "10.40.0.0/16", hostLocalPrefixLength: 24 }, ...over });
const l2 = (over: Obj = {}): Obj => ({ type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" }, ...over });
const ext = (over: Obj = {}): Obj => ({ type: "external", externalPrefixes: ["192.0.2.0/24"], ...over });
const v4 = (prefix: unknown, hostLocalPrefixLength?: unknown): Obj =>
  hostLocalPrefixLength === undefined ? { prefix } : { prefix, hostLocalPrefixLength };

const bp = (over: Obj = {}, metadata: Obj = { name: "p" }): Obj => ({
  apiVersion: API,
  kind: "NetworkBindingPolicy",
  metadata,
  spec: { network: "backend", priority: 100, matchKind: "Pod", ...over },
});
const rp = (over: Obj = {}): Obj => ({
  apiVersion: API,
  kind: "NetworkRoutingPolicy",
  metadata: { name: "r" },
  spec: { priority: 100, from: { networks: ["a"] }, to: { networks: ["b"] }, action: "Allow", ...over },
});
const topo = (over: Obj = {}, name = "default"): Obj => ({
  apiVersion: API,
  kind: "Topology",
  metadata: { name },
  spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48, encapsulation: "Reduced", mtu: 0, ...over },
});
const alloc = (over: Obj = {}, name = "backend.node-1"): Obj => ({
  apiVersion: API,
  kind: "Allocation",
  metadata: { name },
  spec: { network: "backend", node: "node-1", blocks: [{ prefix: "10.40.1.0/24", addresses: { "pod-a": "10.40.1.2" } }], ...over },
});
const nep = (over: Obj = {}): Obj => ({
  apiVersion: API,
  kind: "NetworkEndpoint",
  metadata: { name: "api-0", namespace: "team-a" },
  spec: { network: "backend", node: "node-1", addresses: ["10.40.1.2"], mac: "02:42:0a:28:01:02", ...over },
});
const neigh = (over: Obj = {}): Obj => ({
  apiVersion: API,
  kind: "Neighbor",
  metadata: { name: "storage.10.50.0.10" },
  spec: { network: "storage", ip: "10.50.0.10", mac: "02:00:00:00:00:0a", source: "static", ...over },
});
const fdb = (over: Obj = {}): Obj => ({
  apiVersion: API,
  kind: "FDBEntry",
  metadata: { name: "storage.02-00-00-00-00-0a" },
  spec: { network: "storage", mac: "02:00:00:00:00:0a", node: "node-1", source: "learned", sequence: 1, ...over },
});
const without = (o: Obj, key: string): Obj => {
  const copy = { ...o };
  delete copy[key];
  return copy;
};
const specWithout = (o: Obj, key: string): Obj => ({ ...o, spec: without(o.spec as Obj, key) });

// ---------------------------------------------------------------- baselines

const t = suite("validateResource");

const baselines: [string, Obj][] = [
  ["l3", net(l3())],
  ["dual-stack l3", net(l3({ ipv6Subnet: { prefix: "fd00:60::/48", hostLocalPrefixLength: 64 } }))],
  ["l2", net(l2())],
  ["external", net(ext({ externalPrefixes: ["192.0.2.0/24", "2001:db8::/32"], snat: false }))],
  ["anonymous l3", net(l3({ anonymous: true }))],
  ["binding policy", bp({ selector: { matchExpressions: [{ key: "tier", operator: "In", values: ["a"] }] } })],
  ["routing policy", rp({ to: { networks: ["b"], prefixes: ["10.0.0.0/8"] } })],
  ["topology", topo()],
  ["allocation", alloc()],
  ["network endpoint", nep()],
  ["neighbor", neigh()],
  ["fdb entry", fdb()],
  ["pod", { apiVersion: "v1", kind: "Pod", metadata: { name: "api-0", namespace: "team-a", labels: { app: "api" } }, spec: {} }],
  ["namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } }],
  ["endpoint slice", {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "api-x7k2p", namespace: "team-a", labels: { "kubernetes.io/service-name": "api" } },
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.40.1.5"], conditions: { ready: true }, targetRef: { kind: "Pod", name: "api-0" } }],
    ports: [{ name: "", protocol: "TCP", port: 8080 }],
  }],
];
for (const [name, obj] of baselines) {
  t(`valid: ${name}`, () => {
    assert.equal(validateResource(obj, ctx).map(formatProblem), []);
  });
}

// ---------------------------------------------------------------- invalid cases

/** [case, object, expected problem paths (exactly these, sorted), message fragment of the first]. */
type Case = [string, unknown, string | string[], string];

const cases: Case[] = [
  // Network: CIDRs
  ["malformed CIDR", net(l3({ ipv4Subnet: v4("10.40.0/16", 24) })), "spec.ipv4Subnet.prefix", 'expected a CIDR prefix "address/length", got "10.40.0/16"'],
  ["CIDR without length", net(l3({ ipv4Subnet: v4("10.40.0.0", 24) })), "spec.ipv4Subnet.prefix", 'expected a CIDR prefix "address/length"'],
  ["IPv4 prefix length 33", net(l3({ ipv4Subnet: v4("10.40.0.0/33", 24) })), "spec.ipv4Subnet.prefix", "prefix length must be between 0 and 32"],
  ["IPv6 prefix length 129", net(l3({ ipv4Subnet: undefined, ipv6Subnet: v4("fd00::/129", 64) })), "spec.ipv6Subnet.prefix", "between 0 and 128"],
  ["host bits set", net(l3({ ipv4Subnet: v4("10.40.0.1/16", 24) })), "spec.ipv4Subnet.prefix", 'host bits set in "10.40.0.1/16": expected the network address 10.40.0.0/16'],
  ["IPv6 under ipv4Subnet", net(l3({ ipv4Subnet: v4("fd00::/48", 24) })), "spec.ipv4Subnet.prefix", 'expected an IPv4 prefix, got the IPv6 prefix "fd00::/48"'],
  ["IPv4 under ipv6Subnet", net(l3({ ipv6Subnet: v4("10.41.0.0/16", 24) })), "spec.ipv6Subnet.prefix", "expected an IPv6 prefix, got the IPv4 prefix"],
  ["prefix not a string", net(l3({ ipv4Subnet: v4(10, 24) })), "spec.ipv4Subnet.prefix", "expected a string, got 10"],
  ["subnet prefix missing", net(l3({ ipv4Subnet: { hostLocalPrefixLength: 24 } })), "spec.ipv4Subnet.prefix", "is required"],
  ["subnet not an object", net(l3({ ipv4Subnet: "10.40.0.0/16" })), "spec.ipv4Subnet", 'expected an object, got "10.40.0.0/16"'],
  // Network: hostLocalPrefixLength
  ["l3 without hostLocalPrefixLength", net(l3({ ipv4Subnet: v4("10.40.0.0/16") })), "spec.ipv4Subnet.hostLocalPrefixLength", "is required for an l3 network: the length of each node's block, between 17 and 30"],
  ["l3 IPv6 without hostLocalPrefixLength", net(l3({ ipv6Subnet: v4("fd00::/48") })), "spec.ipv6Subnet.hostLocalPrefixLength", "between 49 and 126 for a /48 IPv6 subnet"],
  ["hostLocalPrefixLength on l2", net(l2({ ipv4Subnet: v4("10.50.0.0/24", 28) })), "spec.ipv4Subnet.hostLocalPrefixLength", "not allowed on an l2 network"],
  ["hostLocalPrefixLength equal to the subnet", net(l3({ ipv4Subnet: v4("10.40.0.0/16", 16) })), "spec.ipv4Subnet.hostLocalPrefixLength", "must be between 17 and 30 for a /16 IPv4 subnet (a block needs room for the gateway and a pod), got 16"],
  ["hostLocalPrefixLength shorter than the subnet", net(l3({ ipv4Subnet: v4("10.40.0.0/16", 12) })), "spec.ipv4Subnet.hostLocalPrefixLength", "got 12"],
  ["hostLocalPrefixLength 31 leaves no pod", net(l3({ ipv4Subnet: v4("10.40.0.0/16", 31) })), "spec.ipv4Subnet.hostLocalPrefixLength", "got 31"],
  ["hostLocalPrefixLength 32", net(l3({ ipv4Subnet: v4("10.40.0.0/16", 32) })), "spec.ipv4Subnet.hostLocalPrefixLength", "got 32"],
  ["hostLocalPrefixLength 33", net(l3({ ipv4Subnet: v4("10.40.0.0/16", 33) })), "spec.ipv4Subnet.hostLocalPrefixLength", "got 33"],
  ["IPv6 hostLocalPrefixLength 127", net(l3({ ipv6Subnet: v4("fd00::/48", 127) })), "spec.ipv6Subnet.hostLocalPrefixLength", "must be between 49 and 126 for a /48 IPv6 subnet"],
  ["hostLocalPrefixLength fractional", net(l3({ ipv4Subnet: v4("10.40.0.0/16", 24.5) })), "spec.ipv4Subnet.hostLocalPrefixLength", "expected an integer, got 24.5"],
  ["hostLocalPrefixLength a string", net(l3({ ipv4Subnet: v4("10.40.0.0/16", "24") })), "spec.ipv4Subnet.hostLocalPrefixLength", 'expected an integer, got "24"'],
  ["range still checked beside host bits", net(l3({ ipv4Subnet: v4("10.40.0.1/16", 8) })), ["spec.ipv4Subnet.hostLocalPrefixLength", "spec.ipv4Subnet.prefix"], "between 17 and 30"],
  ["l3 subnet too small for blocks", net(l3({ ipv4Subnet: v4("10.40.0.0/30", 31) })), "spec.ipv4Subnet.prefix", "a /30 IPv4 subnet cannot be cut into blocks"],
  // Network: subnets and prefixes per type
  ["l3 without a subnet", net({ type: "l3" }), "spec", "an l3 network needs ipv4Subnet, ipv6Subnet or both, got neither"],
  ["l2 without a subnet", net({ type: "l2" }), "spec", "an l2 network needs ipv4Subnet, ipv6Subnet or both"],
  ["l2 subnet with no room for a pod", net(l2({ ipv4Subnet: v4("10.50.0.0/31") })), "spec.ipv4Subnet.prefix", "a /31 IPv4 subnet has no room for a gateway and a pod"],
  ["external with a subnet", net(ext({ ipv4Subnet: v4("10.0.0.0/8") })), "spec.ipv4Subnet", "not allowed on an external network"],
  ["external without prefixes", net({ type: "external" }), "spec.externalPrefixes", "is required for an external network"],
  ["external with an empty prefix list", net(ext({ externalPrefixes: [] })), "spec.externalPrefixes", "expected at least one CIDR prefix, got an empty list"],
  ["external prefix with host bits", net(ext({ externalPrefixes: ["192.0.2.0/24", "198.51.100.7/24"] })), "spec.externalPrefixes[1]", 'host bits set in "198.51.100.7/24"'],
  ["external prefix malformed", net(ext({ externalPrefixes: ["192.0.2.0/24", "not-a-prefix"] })), "spec.externalPrefixes[1]", "expected a CIDR prefix"],
  ["external duplicate prefix", net(ext({ externalPrefixes: ["192.0.2.0/24", "192.0.2.0/24"] })), "spec.externalPrefixes[1]", "duplicate of externalPrefixes[0]"],
  ["external prefixes not a list", net(ext({ externalPrefixes: "192.0.2.0/24" })), "spec.externalPrefixes", "expected a list"],
  ["externalPrefixes on l3", net(l3({ externalPrefixes: ["192.0.2.0/24"] })), "spec.externalPrefixes", "not allowed on an l3 network"],
  ["snat on l2", net(l2({ snat: true })), "spec.snat", "not allowed on an l2 network"],
  ["options on a built-in type", net(ext({ options: { mtu: 9000 } })), "spec.options", "not allowed on an external network: options are for third-party network types"],
  // Network: type, anonymous, unknown fields
  ["unknown type", net({ type: "l4" }), "spec.type", 'expected one of the known network types "external", "l2", "l3", got "l4"'],
  ["missing type", net({ ipv4Subnet: v4("10.0.0.0/8") }), "spec.type", 'is required: expected one of the known network types "external", "l2", "l3"'],
  ["type not a string", net({ type: 3 }), "spec.type", "got 3"],
  ["non-boolean anonymous", net(l3({ anonymous: "yes" })), "spec.anonymous", 'expected true or false, got "yes"'],
  ["unknown spec field", net(l3({ subnet: "10.0.0.0/8" })), "spec.subnet", "unknown field, expected one of: type, ipv4Subnet"],
  ["missing spec", without(net(null), "spec"), "spec", "is required"],
  // Object basics
  ["uppercase name", net(l3(), { name: "Backend" }), "metadata.name", 'expected a DNS-1123 subdomain (lowercase letters, digits, \'-\' and \'.\', starting and ending with a letter or digit), got "Backend"'],
  ["name with underscore", net(l3(), { name: "back_end" }), "metadata.name", "DNS-1123 subdomain"],
  ["name ending in a dash", bp({}, { name: "team-" }), "metadata.name", "DNS-1123 subdomain"],
  ["missing name", net(l3(), {}), "metadata.name", "is required"],
  ["name too long", net(l3(), { name: "a".repeat(254) }), "metadata.name", "must be at most 253 characters long, got 254"],
  ["network name longer than a label value", net(l3(), { name: "n".repeat(64) }), "metadata.name", "a Network name is at most 63 characters (it is used as a label value), got 64"],
  ["missing metadata", without(net(l3()), "metadata"), "metadata", "is required"],
  ["wrong apiVersion", { ...net(l3()), apiVersion: "lace-cni.io/v1" }, "apiVersion", 'expected "lace-cni.io/v1alpha1" for a Network, got "lace-cni.io/v1"'],
  ["missing apiVersion", without(net(l3()), "apiVersion"), "apiVersion", 'is required (expected "lace-cni.io/v1alpha1")'],
  ["unknown kind", { ...net(l3()), kind: "Networks" }, "kind", 'expected one of Topology, Network'],
  ["namespace on a cluster-scoped kind", net(l3(), { name: "n", namespace: "default" }), "metadata.namespace", "Network is cluster-scoped: expected no namespace"],
  ["bad label value", net(l3(), { name: "n", labels: { tier: "back end" } }), "metadata.labels.tier", "expected a label value"],
  ["bad label key", net(l3(), { name: "n", labels: { "-tier": "a" } }), 'metadata.labels["-tier"]', "expected a label key"],
  ["label value not a string", net(l3(), { name: "n", labels: { replicas: 3 } }), "metadata.labels.replicas", "expected a string, got 3"],
  ["unknown top-level field", { ...net(l3()), specs: {} }, "specs", "unknown field, expected one of: apiVersion, kind, metadata, spec, status"],
  ["core Pod with a wrong apiVersion", { apiVersion: "apps/v1", kind: "Pod", metadata: { name: "p" } }, "apiVersion", 'expected "v1" for a Pod, got "apps/v1"'],
  ["EndpointSlice with a core apiVersion", { apiVersion: "v1", kind: "EndpointSlice", metadata: { name: "s", namespace: "a" } }, "apiVersion", 'expected "discovery.k8s.io/v1" for an EndpointSlice, got "v1"'],
  ["EndpointSlice name not a DNS-1123 subdomain", { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "Bad_Name", namespace: "a" } }, "metadata.name", "DNS-1123"],
  ["Namespace with a namespace", { apiVersion: "v1", kind: "Namespace", metadata: { name: "a", namespace: "b" } }, "metadata.namespace", "cluster-scoped"],
  ["Namespace name with a dot", { apiVersion: "v1", kind: "Namespace", metadata: { name: "team.a" } }, "metadata.name", "DNS-1123 label"],
  // NetworkBindingPolicy
  ["binding policy without network", specWithout(bp(), "network"), "spec.network", "is required (expected a string"],
  ["binding policy unknown matchKind", bp({ matchKind: "Job" }), "spec.matchKind", 'expected one of "Pod", "Service", got "Job"'],
  ["binding policy negative priority", bp({ priority: -1 }), "spec.priority", "must be at least 0, got -1"],
  ["binding policy fractional priority", bp({ priority: 1.5 }), "spec.priority", "expected an integer, got 1.5"],
  ["binding policy priority a string", bp({ priority: "high" }), "spec.priority", 'expected an integer, got "high"'],
  ["binding policy bad network name", bp({ network: "Backend" }), "spec.network", "DNS-1123 subdomain"],
  ["In without values", bp({ selector: { matchExpressions: [{ key: "tier", operator: "In" }] } }), "spec.selector.matchExpressions[0].values", "must list at least one value for operator In"],
  ["Exists with values", bp({ selector: { matchExpressions: [{ key: "tier", operator: "Exists", values: ["a"] }] } }), "spec.selector.matchExpressions[0].values", "must be absent for operator Exists"],
  ["unknown selector operator", bp({ selector: { matchExpressions: [{ key: "tier", operator: "Has" }] } }), "spec.selector.matchExpressions[0].operator", 'expected one of "In", "NotIn", "Exists", "DoesNotExist", got "Has"'],
  ["matchLabels value not a string", bp({ namespaceSelector: { matchLabels: { team: 1 } } }), "spec.namespaceSelector.matchLabels.team", "expected a string, got 1"],
  ["conditions not a condition tree", bp({ conditions: { foo: 1 } }), "spec.conditions", "expected a json-rules-engine condition tree"],
  ["conditions with two roots", bp({ conditions: { all: [], any: [] } }), "spec.conditions", "expected exactly one of"],
  // NetworkRoutingPolicy
  ["routing policy unknown action", rp({ action: "Permit" }), "spec.action", 'expected one of "Allow", "Deny", got "Permit"'],
  ["routing policy without action", specWithout(rp(), "action"), "spec.action", "is required"],
  ["routing policy malformed prefix", rp({ to: { prefixes: ["10.0.0/8"] } }), "spec.to.prefixes[0]", "expected a CIDR prefix"],
  ["routing policy prefix with host bits", rp({ to: { networks: ["b"], prefixes: ["10.0.0.0/8", "10.1.2.3/16"] } }), "spec.to.prefixes[1]", "host bits set"],
  ["routing policy without from", specWithout(rp(), "from"), "spec.from", "is required"],
  ["routing policy without to", specWithout(rp(), "to"), "spec.to", "is required"],
  ["routing policy with an empty from", rp({ from: {} }), "spec.from", "expected networks or networkSelector naming the source networks, got neither"],
  ["routing policy with an empty to", rp({ to: { networks: [] } }), "spec.to", "expected networks, networkSelector or prefixes naming the destination"],
  ["prefixes on the source side", rp({ from: { networks: ["a"], prefixes: ["10.0.0.0/8"] } }), "spec.from.prefixes", "unknown field, expected one of: networks, networkSelector"],
  ["duplicate source network", rp({ from: { networks: ["a", "a"] } }), "spec.from.networks[1]", 'duplicate network "a"'],
  ["routing policy negative priority", rp({ priority: -5 }), "spec.priority", "must be at least 0"],
  // Topology
  ["IPv4 locator pool", topo({ locatorPool: "10.0.0.0/8", locatorLength: 16 }), "spec.locatorPool", 'expected an IPv6 prefix, got the IPv4 prefix "10.0.0.0/8"'],
  ["locator pool with host bits", topo({ locatorPool: "fd00:1ace::1/32" }), "spec.locatorPool", "host bits set"],
  ["locatorLength equal to the pool", topo({ locatorLength: 32 }), "spec.locatorLength", "must be longer than the locatorPool's /32: expected 33 to 112, got 32"],
  ["locatorLength shorter than the pool", topo({ locatorLength: 24 }), "spec.locatorLength", "got 24"],
  ["locatorLength too long for SID functions", topo({ locatorLength: 120 }), "spec.locatorLength", "must be at most 112, got 120"],
  ["locatorLength missing", specWithout(topo(), "locatorLength"), "spec.locatorLength", "is required"],
  ["unknown encapsulation", topo({ encapsulation: "GRE" }), "spec.encapsulation", 'expected one of "Reduced", "SRH", got "GRE"'],
  ["topology not named default", topo({}, "prod"), "metadata.name", 'expected "default" (the Topology is a singleton), got "prod"'],
  ["mtu below the IPv6 minimum", topo({ mtu: 1000 }), "spec.mtu", "at least 1280, the IPv6 minimum, got 1000"],
  ["negative mtu", topo({ mtu: -1 }), "spec.mtu", "must be at least 0, got -1"],
  ["underlay interface name too long", topo({ underlay: { interface: "a-very-long-ifname0" } }), "spec.underlay.interface", "an interface name of at most 15 characters"],
  // Allocation
  ["allocation misnamed", alloc({}, "backend-node-1"), "metadata.name", 'expected "backend.node-1" (an Allocation is named <network>.<node>), got "backend-node-1"'],
  ["allocation block with host bits", alloc({ blocks: [{ prefix: "10.40.1.1/24" }] }), "spec.blocks[0].prefix", "host bits set"],
  ["allocation overlapping blocks", alloc({ blocks: [{ prefix: "10.40.0.0/23" }, { prefix: "10.40.1.0/24" }] }), "spec.blocks[1].prefix", 'overlaps spec.blocks[0].prefix "10.40.0.0/23"'],
  [
    "allocation overlapping blocks, the larger one last, another family between",
    alloc({ blocks: [{ prefix: "10.40.1.0/24" }, { prefix: "fd00::/64" }, { prefix: "10.40.2.0/24" }, { prefix: "10.40.0.0/23" }] }),
    "spec.blocks[3].prefix",
    'overlaps spec.blocks[0].prefix "10.40.1.0/24"',
  ],
  ["allocation address outside its block", alloc({ blocks: [{ prefix: "10.40.1.0/24", addresses: { "pod-a": "10.40.2.5" } }] }), "spec.blocks[0].addresses.pod-a", "expected an address inside the block 10.40.1.0/24"],
  ["allocation hands out the network address", alloc({ blocks: [{ prefix: "10.40.1.0/24", addresses: { "pod-a": "10.40.1.0" } }] }), "spec.blocks[0].addresses.pod-a", "the network address of 10.40.1.0/24 is never handed out"],
  ["allocation hands out the broadcast address", alloc({ blocks: [{ prefix: "10.40.1.0/24", addresses: { "pod-a": "10.40.1.255" } }] }), "spec.blocks[0].addresses.pod-a", "broadcast address"],
  ["allocation address twice", alloc({ blocks: [{ prefix: "10.40.1.0/24", addresses: { "pod-a": "10.40.1.2", "pod-b": "10.40.1.2" } }] }), "spec.blocks[0].addresses.pod-b", 'already handed out to owner "pod-a"'],
  ["allocation without blocks", specWithout(alloc(), "blocks"), "spec.blocks", "is required"],
  // NetworkEndpoint
  ["endpoint with a malformed address", nep({ addresses: ["10.40.1.300"] }), "spec.addresses[0]", 'expected an IPv4 or IPv6 address, got "10.40.1.300"'],
  ["endpoint with two IPv4 addresses", nep({ addresses: ["10.40.1.2", "10.40.1.3"] }), "spec.addresses[1]", "expected at most one IPv4 address"],
  ["endpoint without addresses", nep({ addresses: [] }), "spec.addresses", "expected at least 1 item, got 0"],
  ["endpoint with a malformed MAC", nep({ mac: "02:42:0a:28:01" }), "spec.mac", "expected a MAC address such as 02:00:00:00:00:01"],
  ["endpoint with a multicast MAC", nep({ mac: "01:00:5e:00:00:01" }), "spec.mac", "expected a unicast MAC address"],
  ["endpoint pod without a name", nep({ pod: { namespace: "team-a" } }), "spec.pod.name", "is required"],
  ["endpoint detached at a date without a time", nep({ detachedAt: "2026-12-06" }), "spec.detachedAt", 'expected an RFC 3339 time such as 2026-12-06T18:00:00Z, got "2026-12-06"'],
  // Neighbor, FDBEntry
  ["neighbor with an unknown source", neigh({ source: "dynamic" }), "spec.source", 'expected one of "static", "learned", got "dynamic"'],
  ["neighbor with a malformed ip", neigh({ ip: "10.50.0" }), "spec.ip", "expected an IPv4 or IPv6 address"],
  ["fdb entry with a negative sequence", fdb({ sequence: -1 }), "spec.sequence", "must be at least 0, got -1"],
  ["fdb entry without a MAC", specWithout(fdb(), "mac"), "spec.mac", "is required"],
  ["not an object at all", "network: backend", "", "expected a Kubernetes object"],
];

for (const [name, obj, paths, fragment] of cases) {
  t(`invalid: ${name}`, () => {
    const problems = validateResource(obj, ctx);
    const expected = (Array.isArray(paths) ? paths : [paths]).slice().sort();
    assert.equal(problems.map((p) => p.path), expected, problems.map(formatProblem).join("\n"));
    const first = problems.find((p) => p.path === expected[0])!;
    assert.ok(first.message.includes(fragment), `"${first.message}" does not include "${fragment}"`);
  });
}

t("a pending block may overlap an active one while the controller settles its claim", () => {
  const pending = alloc({ blocks: [{ prefix: "10.40.1.0/24" }, { prefix: "10.40.1.0/24", claim: "c1", pending: true }] });
  assert.equal(validateResource(pending, ctx).map(formatProblem), []);
});

t("at least 60 invalid cases", () => {
  assert.ok(cases.length >= 60, `${cases.length}`);
});

t("every problem, not the first: one object with many mistakes", () => {
  const obj = {
    apiVersion: "lace-cni.io/v1",
    kind: "NetworkBindingPolicy",
    metadata: { name: "Team_A" },
    spec: { priority: -1, matchKind: "Job", selector: { matchExpressions: [{ key: "a", operator: "In" }] } },
  };
  assert.equal(validateResource(obj, ctx).map(formatProblem), [
    'NetworkBindingPolicy/Team_A: apiVersion: expected "lace-cni.io/v1alpha1" for a NetworkBindingPolicy, got "lace-cni.io/v1"',
    "NetworkBindingPolicy/Team_A: metadata.name: expected a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit), got \"Team_A\"",
    'NetworkBindingPolicy/Team_A: spec.matchKind: expected one of "Pod", "Service", got "Job"',
    "NetworkBindingPolicy/Team_A: spec.network: is required (expected a string: the network matching resources bind to)",
    "NetworkBindingPolicy/Team_A: spec.priority: must be at least 0, got -1",
    "NetworkBindingPolicy/Team_A: spec.selector.matchExpressions[0].values: must list at least one value for operator In",
  ]);
});

t("a namespaced object is named Kind/namespace/name", () => {
  const problems = validateResource(nep({ mac: "nope" }), ctx);
  assert.equal(problems[0].object, "NetworkEndpoint/team-a/api-0");
});

t("a throwing network type is reported with its plugin and hook, beside other problems", () => {
  const reg = new NetworkTypeRegistry();
  const boom: NetworkTypeDefinition = {
    type: "boom",
    addressing: "global",
    forwarding: "bridged",
    validate() {
      throw new Error("options.vlan is undefined");
    },
    gateway: () => undefined,
    locate: () => undefined,
  };
  reg.register("acme-boom", boom);
  const problems = validateResource(net({ type: "boom" }, { name: "N" }), { networkTypes: reg });
  assert.equal(problems.map((p) => p.path), ["metadata.name", "spec"]);
  assert.ok(problems[1].message.includes('Plugin "acme-boom" failed in hook "validate"'), problems[1].message);
  assert.ok(problems[1].message.includes("options.vlan is undefined"), problems[1].message);
});

t("a plugin's own type is validated by that plugin", () => {
  const reg = new NetworkTypeRegistry();
  reg.register("acme-vlan", {
    type: "vlan",
    addressing: "global",
    forwarding: "bridged",
    validate(spec, report) {
      if (typeof spec.options?.vlanId !== "number") report("options.vlanId", "expected a number");
    },
    gateway: () => undefined,
    locate: () => undefined,
  });
  const problems = validateResource(net({ type: "vlan", options: {} }), { networkTypes: reg });
  assert.equal(problems.map(formatProblem), ["Network/n: spec.options.vlanId: expected a number"]);
});

t.run();

// ---------------------------------------------------------------- across objects

const x = suite("validateAll");

const paths = (problems: Problem[]) => problems.map((p) => `${p.object} ${p.path}`);

x("overlapping l3 and l2 subnets: the message names both networks", () => {
  const problems = validateAll([
    net(l3(), { name: "backend" }),
    net(l2({ ipv4Subnet: v4("10.40.128.0/24") }), { name: "storage" }),
  ], ctx);
  assert.equal(problems.map(formatProblem), [
    'Network/storage: spec.ipv4Subnet.prefix: 10.40.128.0/24 overlaps 10.40.0.0/16 of Network "backend": networks "backend" and "storage" cannot share addresses',
  ]);
});

x("IPv6 subnets overlap too; disjoint ones and external prefixes do not", () => {
  const problems = validateAll([
    net(l3({ ipv6Subnet: { prefix: "fd00:60::/48", hostLocalPrefixLength: 64 } }), { name: "a" }),
    net(l3({ ipv4Subnet: v4("10.41.0.0/16", 24), ipv6Subnet: { prefix: "fd00:60:0:1::/64", hostLocalPrefixLength: 80 } }), { name: "b" }),
    net(ext({ externalPrefixes: ["10.40.0.0/16"] }), { name: "c" }),
  ], ctx);
  assert.equal(paths(problems), ["Network/b spec.ipv6Subnet.prefix"]);
  assert.ok(problems[0].message.includes('networks "a" and "b"'));
});

x("duplicate names per kind and namespace", () => {
  const problems = validateAll([
    net(l3(), { name: "backend" }),
    net(l3({ ipv4Subnet: v4("10.41.0.0/16", 24) }), { name: "backend" }),
    bp({}, { name: "backend" }),
    nep(),
    { ...nep({ addresses: ["10.40.1.8"] }), metadata: { name: "api-0", namespace: "team-b" } },
    { ...nep(), metadata: { name: "api-0", namespace: "team-a" }, spec: { ...(nep().spec as Obj), addresses: ["10.40.1.9"] } },
  ], ctx);
  assert.equal(paths(problems), ["Network/backend metadata.name", "NetworkEndpoint/team-a/api-0 metadata.name"]);
  assert.ok(problems[0].message.includes('duplicate Network name "backend"'), problems[0].message);
  assert.ok(problems[1].message.includes('in namespace "team-a"'), problems[1].message);
});

x("one external prefix in two external networks", () => {
  const problems = validateAll([
    net(ext(), { name: "corp" }),
    net(ext({ externalPrefixes: ["192.0.2.128/25", "192.0.2.0/24"] }), { name: "lab" }),
  ], ctx);
  assert.equal(problems.map(formatProblem), [
    'Network/lab: spec.externalPrefixes[1]: 192.0.2.0/24 is also a prefix of Network "corp": longest prefix match cannot choose between "corp" and "lab"',
  ]);
});

x("allocations must match their network", () => {
  const problems = validateAll([
    net(l3(), { name: "backend" }),
    net(l2(), { name: "storage" }),
    alloc({ blocks: [{ prefix: "10.41.0.0/24" }, { prefix: "10.40.4.0/25" }, { prefix: "fd00::/64" }] }),
    alloc({ node: "node-2", blocks: [{ prefix: "10.40.1.0/24" }] }, "backend.node-2"),
    alloc({ node: "node-3", blocks: [{ prefix: "10.40.1.0/24" }] }, "backend.node-3"),
    alloc({ network: "storage" }, "storage.node-1"),
  ], ctx);
  assert.equal(problems.map(formatProblem), [
    'Allocation/backend.node-1: spec.blocks[0].prefix: expected a /24 block inside 10.40.0.0/16 of Network "backend", got "10.41.0.0/24"',
    'Allocation/backend.node-1: spec.blocks[1].prefix: expected a /24 block inside 10.40.0.0/16 of Network "backend", got "10.40.4.0/25"',
    'Allocation/backend.node-1: spec.blocks[2].prefix: Network "backend" has no IPv6 subnet, got the block "fd00::/64"',
    "Allocation/backend.node-3: spec.blocks[0].prefix: 10.40.1.0/24 overlaps 10.40.1.0/24, already held by Allocation/backend.node-2",
    'Allocation/storage.node-1: spec.network: Network "storage" is of type "l2", which has no per-node blocks: expected a host-local network such as an l3 one',
  ]);
});

x("endpoints, neighbours, FDB entries and binding policies must fit their network", () => {
  const problems = validateAll([
    net(l3(), { name: "backend" }),
    net(l2(), { name: "storage" }),
    net(ext(), { name: "corp" }),
    nep({ addresses: ["10.41.0.5"] }),
    { ...nep(), metadata: { name: "api-1", namespace: "team-a" }, spec: { ...(nep().spec as Obj), addresses: ["fd00::5"] } },
    { ...nep(), metadata: { name: "api-2", namespace: "team-a" }, spec: { ...(nep().spec as Obj), network: "corp" } },
    { ...nep(), metadata: { name: "api-3", namespace: "team-a" } },
    { ...nep(), metadata: { name: "api-4", namespace: "team-a" } },
    neigh({ network: "backend" }),
    { ...neigh({ ip: "10.51.0.1" }), metadata: { name: "storage.10.51.0.1" } },
    fdb({ network: "backend" }),
    bp({ network: "corp" }),
    bp({ network: "not-in-this-set" }, { name: "elsewhere" }),
  ], ctx);
  assert.equal(problems.map(formatProblem), [
    'NetworkEndpoint/team-a/api-0: spec.addresses[0]: expected an address inside 10.40.0.0/16 of Network "backend", got "10.41.0.5"',
    'NetworkEndpoint/team-a/api-1: spec.addresses[0]: Network "backend" has no IPv6 subnet, got "fd00::5"',
    'NetworkEndpoint/team-a/api-2: spec.network: Network "corp" is of type "external", which has no endpoints of its own',
    "NetworkEndpoint/team-a/api-4: spec.addresses[0]: address 10.40.1.2 of Network \"backend\" is already used by NetworkEndpoint/team-a/api-3",
    'Neighbor/storage.10.50.0.10: spec.network: Network "backend" is of type "l3", which is not bridged: Neighbor resources are for l2 networks',
    'Neighbor/storage.10.51.0.1: spec.ip: expected an address inside 10.50.0.0/24 of Network "storage", got "10.51.0.1"',
    'FDBEntry/storage.02-00-00-00-00-0a: spec.network: Network "backend" is of type "l3", which is not bridged: FDBEntry resources are for l2 networks',
    'NetworkBindingPolicy/p: spec.network: Network "corp" is of type "external", which has no addresses to give: expected a network pods and services can bind to',
  ]);
});

x("per-object problems and cross-object problems come together, grouped by object", () => {
  const problems = validateAll([
    net(l3({ anonymous: 1 }), { name: "a" }),
    net(l3({ anonymous: 2 }), { name: "b" }),
  ], ctx);
  assert.equal(paths(problems), [
    "Network/a spec.anonymous",
    "Network/b spec.anonymous",
    "Network/b spec.ipv4Subnet.prefix",
  ]);
});

x.run();
