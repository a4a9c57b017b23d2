/** The plan of l2 (bridged) networks (no kernel needed). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bridgeMac, networkMark, planNode, RULE_PRIORITY_IIF, RULE_PRIORITY_MARK } from "./plan.ts";
import { SID_FAMILY_L2, tunnelNames } from "./plan_l2.ts";
import { L2_FIXTURE, l2DesiredState, l2PodAddresses, type L2Topology } from "./l2_testing.ts";
import { TestCluster, type TestPod } from "./testing.ts";

const t = suite("srv6 plan: l2 networks");
const { storage, vault } = L2_FIXTURE;
// The shared fixture, with a storage pod on node 3 too (two flood members from node 1).
const pods: TestPod[] = [...L2_FIXTURE.pods, { name: "sd", node: 3, network: "storage", host: 30 }];
const topo: L2Topology = { ...L2_FIXTURE.topo, pods };
const cluster = new TestCluster(3);
const bpfGateways = { onLink6: ["fd00:ffff::1/64"], address6: "fd00:ffff::1" };
const mac = (name: string) => l2PodAddresses(pods.find((p) => p.name === name)!, name.startsWith("s") ? storage : vault).mac;

t("tunnel port names fit the interface name limit for any 24-bit id", () => {
  assert.equal(tunnelNames(7), { name: "lt7", peer: "lu7" });
  assert.ok(tunnelNames(0xffffff).peer.length <= 15);
});

t("an l2 network has its bridge with the anycast gateway: the same addresses and MAC on every node", () => {
  const plans = [1, 2, 3].map((n) => planNode(l2DesiredState(cluster, n, topo), "eth0", bpfGateways, "bpf"));
  for (const plan of plans) {
    assert.equal(plan.bridges.get("lb5"), { name: "lb5", up: true, mac: bridgeMac(5) });
    assert.ok(plan.addrs.has("lb5|10.50.0.1/24"));
    assert.ok(plan.addrs.has("lb5|fd00:50::1/64"));
  }
});

t("an l2 network is routed like any network: its table, iif and mark rules, its subnet on the bridge", () => {
  const plan = planNode(l2DesiredState(cluster, 1, topo), "eth0", bpfGateways, "bpf");
  assert.equal(plan.routes.get("4|1005|10.50.0.0/24"), { family: 4, table: 1005, dst: "10.50.0.0/24", type: "unicast", oif: "lb5", scope: "link" });
  assert.is(plan.routes.get("4|1005|0.0.0.0/0")?.type, "unreachable");
  const rules = [...plan.rules.values()];
  assert.ok(rules.some((r) => r.iifname === "lb5" && r.table === 1005 && r.priority === RULE_PRIORITY_IIF));
  for (const fam of [4, 6]) assert.ok(rules.some((r) => r.family === fam && r.fwmark === networkMark(5) && r.priority === RULE_PRIORITY_MARK), `mark rule, IPv${fam}`);
  // red reaches storage on the local bridge; storage reaches red's blocks by SID (replies).
  assert.is(plan.routes.get("4|1001|10.50.0.0/24")?.oif, "lb5");
  assert.ok(plan.routes.get("4|1005|10.1.2.0/24")?.nexthop, "storage → red's block on node 2, through a nexthop");
  assert.ok(plan.bpf!.encap.has("5|10.1.2.0/24"), "and its encapsulation, in storage's name");
  assert.ok(plan.replyOnly.some((r) => r.bridge === "lb5" && r.destination === "10.1.2.0/24"), "storage → red: replies only");
});

t("every Neighbor is a permanent entry on the bridge; every known MAC a static FDB entry, remote ones on the tunnel port", () => {
  const plan = planNode(l2DesiredState(cluster, 1, topo), "eth0", bpfGateways, "bpf");
  assert.equal(plan.neighbors.get("lb5|10.50.0.20"), { ifname: "lb5", ip: "10.50.0.20", mac: mac("sc") });
  assert.equal(plan.neighbors.get("lb5|fd00:50::30"), { ifname: "lb5", ip: "fd00:50::30", mac: mac("sd") });
  assert.ok(plan.neighbors.has("lb5|10.50.0.10"), "the local pod's too (the node routes to it)");
  assert.equal(plan.fdb.get(`lt5|${mac("sc")}`), { port: "lt5", mac: mac("sc") });
  assert.equal(plan.fdb.get(`h-sa|${mac("sa")}`), { port: "h-sa", mac: mac("sa") });
  assert.not.ok(plan.fdb.has(`lt6|${mac("sc")}`), "never on another network's port");
  assert.ok(plan.suppress.has("lt5") && plan.suppress.has("lt6"), "the tunnel ports suppress ARP/ND");
  assert.not.ok(plan.suppress.has("h-sa"), "pod ports do not (the kernel answers only requests from non-suppressing ports)");
  assert.equal(plan.tunnels.get("lt5"), { name: "lt5", peer: "lu5", bridge: "lb5" });
});

t("bpf maps: the l2 SID, the FDB, the Neighbors and the flood members (other nodes with endpoints of the network only)", () => {
  const plan = planNode(l2DesiredState(cluster, 1, topo), "eth0", bpfGateways, "bpf");
  const l2 = plan.bpf!.l2!;
  assert.equal(plan.bpf!.sids.get(cluster.sid(1, storage)), { mark: networkMark(5), family: SID_FAMILY_L2 });
  assert.equal(l2.nets.get(5), { port: "lt5", gatewayMac: bridgeMac(5), srh: false, members: [cluster.sid(2, storage), cluster.sid(3, storage)] });
  assert.equal(l2.nets.get(6)!.members, [cluster.sid(2, vault)], "vault: node 2 only, never node 3");
  const vaultAlone = planNode(l2DesiredState(cluster, 1, { ...topo, pods: pods.filter((p) => p.name !== "vb") }), "eth0", bpfGateways, "bpf");
  assert.equal(vaultAlone.bpf!.l2!.nets.get(6)!.members, [], "with endpoints on node 1 only: nothing to flood to");
  assert.equal(l2.fdb.get(`5|${mac("sc")}`), { net: 5, mac: mac("sc"), sid: cluster.sid(2, storage) });
  assert.equal(l2.fdb.get(`5|${mac("sa")}`), { net: 5, mac: mac("sa"), port: "h-sa" });
  assert.equal(l2.neighbors.get("5|10.50.0.30"), { net: 5, ip: "10.50.0.30", mac: mac("sd") });
  assert.equal([...plan.managed.keys()].sort(), ["eth0|fd00:ffff::2", "eth0|fd00:ffff::3"], "the members' next hops are kept resolved");
  assert.equal([...l2.podPorts].sort(), [["h-sa", 5], ["h-sb", 5], ["h-va", 6]], "the l2 pods' ports learn; red's does not");
});

t("SRH encapsulation is the network's flag; a node without endpoints of the network floods nowhere it is not needed", () => {
  const srh = planNode(l2DesiredState(cluster, 2, { ...topo, encapsulation: "SRH" }), "eth0", bpfGateways, "bpf");
  assert.is(srh.bpf!.l2!.nets.get(5)!.srh, true);
  const withoutPods = planNode(l2DesiredState(cluster, 3, { ...topo, pods: pods.filter((p) => p.node !== 3) }), "eth0", bpfGateways, "bpf");
  assert.equal(withoutPods.bpf!.l2!.nets.get(5)!.members, [cluster.sid(1, storage), cluster.sid(2, storage)]);
});

t("the kernel backend programs the bridge, gateway and suppression entries but reports that frames do not cross nodes", () => {
  const plan = planNode(l2DesiredState(cluster, 1, topo), "eth0");
  assert.ok(plan.bridges.has("lb5"));
  assert.ok(plan.neighbors.has("lb5|10.50.0.20"));
  assert.is(plan.tunnels.size, 0);
  assert.ok(plan.skipped.some((s) => s.network === "storage" && /bpf backend/.test(s.reason)));
  assert.not.ok([...plan.routes.values()].some((r) => r.dst === `${cluster.sid(1, storage)}/128`), "no seg6local route for the l2 SID");
});

t("learned addresses whose MAC lives here may be sent from: a pod MAC's from its port, a learned MAC's from the network's ports, nothing elsewhere", () => {
  const learned = (n: number) => {
    const s = l2DesiredState(cluster, n, topo);
    const net = s.networks.find((x) => x.name === "storage")!;
    net.neighbors = [...net.neighbors,
      { ip: "10.50.0.98", mac: mac("sa"), source: "learned" }, // sa's second address
      { ip: "10.50.0.99", mac: "02:00:00:00:00:99", source: "learned" }, // a guest behind a VM on node 1
    ];
    net.fdb = [...net.fdb, { mac: "02:00:00:00:00:99", node: "node-1", ...(n === 1 ? {} : { sid: cluster.sid(1, storage) }), source: "learned", sequence: 0 }];
    return planNode(s, "eth0", bpfGateways, "bpf").allowed;
  };
  const on1 = learned(1).filter((a) => a.address === "10.50.0.98" || a.address === "10.50.0.99");
  assert.equal(on1.map((a) => `${a.ifname} ${a.address}`).sort(), ["h-sa 10.50.0.98", "h-sa 10.50.0.99", "h-sb 10.50.0.99"]);
  assert.equal(learned(2).filter((a) => a.address === "10.50.0.98" || a.address === "10.50.0.99"), [], "node 2 has no port they live behind");
});

t("a local endpoint whose MAC the FDB places on another node (mid-migration) gets only the tunnel's FDB entry: the FDBEntry decides", () => {
  const s = l2DesiredState(cluster, 1, topo);
  const net = s.networks.find((x) => x.name === "storage")!;
  net.fdb = net.fdb.map((e) => e.mac === mac("sa") ? { ...e, node: "node-2", sid: cluster.sid(2, storage), sequence: 1 } : e);
  const plan = planNode(s, "eth0", bpfGateways, "bpf");
  const entries = [...plan.fdb.values()].filter((f) => f.mac === mac("sa"));
  assert.equal(entries, [{ port: "lt5", mac: mac("sa") }]);
  assert.equal(plan.bpf!.l2!.fdb.get(`5|${mac("sa")}`)?.sid, cluster.sid(2, storage));
});

t.run();
