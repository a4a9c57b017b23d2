/** The kernel objects planned for a desired state (no kernel needed). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { bridgeMac, ipv6Sid, networkMark, planNode, podMac, sameNodeChecked, returnMark, RULE_PRIORITY_IIF, RULE_PRIORITY_INGRESS, RULE_PRIORITY_MARK, RULE_PRIORITY_NODE } from "./plan.ts";
import { renderRuleset } from "./nft.ts";
import { TestCluster, type TestExternal, type TestNetwork } from "./testing.ts";
import { SEG6_ACTION, SEG6_MODE } from "./wire.ts";

const t = suite("srv6 plan");
const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
const blue: TestNetwork = { name: "blue", id: 2, v4: 2, v6: 2 };
const cluster = new TestCluster(3);

t("the IPv6 sibling SID sets the top bit of the low 64 bits", () => {
  assert.is(ipv6Sid("fd00:1ace:2::1"), "fd00:1ace:2:0:8000::1");
  assert.is.not(ipv6Sid("fd00:1ace:2::1"), "fd00:1ace:2::1");
});

t("a routed network gets a table with unreachable default, iif and fwmark rules and two decap SIDs", () => {
  const plan = planNode(cluster.desiredState(1, [red], []), "eth0");
  const r = plan.routes;
  assert.is(r.get("4|1001|0.0.0.0/0")?.type, "unreachable");
  assert.is(r.get("6|1001|::/0")?.type, "unreachable");
  assert.equal(r.get("4|1001|10.1.1.0/24"), { family: 4, table: 1001, dst: "10.1.1.0/24", type: "unicast", oif: "lb1", scope: "link" });
  assert.equal(r.get("6|254|fd00:1ace:1::1/128")?.encap, { kind: "seg6local", action: SEG6_ACTION.END_DX4, nh4: "0.0.0.0" });
  assert.equal(r.get("6|254|fd00:1ace:1:0:8000::1/128")?.encap, { kind: "seg6local", action: SEG6_ACTION.END_DT6, table: 1001 });
  const rules = [...plan.rules.values()];
  assert.ok(rules.some((x) => x.family === 4 && x.iifname === "lb1" && x.table === 1001 && x.priority === RULE_PRIORITY_IIF));
  assert.ok(rules.some((x) => x.family === 6 && x.iifname === "lb1" && x.table === 1001));
  assert.ok(rules.some((x) => x.fwmark === networkMark(1) && x.table === 1001));
  assert.equal(plan.sidMarks.get("fd00:1ace:1::1"), networkMark(1));
});

t("remote blocks go through one nexthop per (SID, family), Reduced or SRH as asked", () => {
  const reduced = planNode(cluster.desiredState(1, [red], []), "eth0");
  // Two remote nodes, two families: four nexthops; v6 ones aim at the sibling SID.
  assert.is(reduced.nexthops.size, 4);
  const route = reduced.routes.get("6|1001|fd00:1:0:2::/64")!;
  const nh = reduced.nexthops.get(route.nexthop!)!;
  assert.equal(nh.segments, ["fd00:1ace:2:0:8000::1"]);
  assert.is(nh.mode, SEG6_MODE.ENCAP_RED);
  const srh = planNode(cluster.desiredState(1, [red], [], [], "SRH"), "eth0");
  assert.ok([...srh.nexthops.values()].every((n) => n.mode === SEG6_MODE.ENCAP));
});

t("bpf: no seg6 object at all; remote blocks leave towards the on-link peer, the maps carry the SIDs", () => {
  const plan = planNode(cluster.desiredState(1, [red], []), "eth0", { onLink6: ["fd00:ffff::1/64"], address6: "fd00:ffff::1" }, "bpf");
  assert.is(plan.backend, "bpf");
  assert.not.ok([...plan.routes.values()].some((r) => r.encap), "no seg6local route");
  assert.ok([...plan.nexthops.values()].every((n) => n.mode === -1 && n.segments.length === 0), "no seg6 nexthop");
  // One nexthop per peer node, its underlay address, shared by both families' routes.
  assert.equal([...plan.nexthops.values()].map((n) => n.gateway).sort(), ["fd00:ffff::2", "fd00:ffff::3"]);
  const v4 = plan.routes.get("4|1001|10.1.2.0/24")!;
  const v6 = plan.routes.get("6|1001|fd00:1:0:2::/64")!;
  assert.is(v4.nexthop, v6.nexthop);
  assert.equal(plan.bpf!.encap.get("1|10.1.2.0/24"), { net: 1, prefix: "10.1.2.0/24", sid: "fd00:1ace:2::1", srh: false });
  assert.equal(plan.bpf!.encap.get("1|fd00:1:0:2::/64"), { net: 1, prefix: "fd00:1:0:2::/64", sid: "fd00:1ace:2:0:8000::1", srh: false });
  assert.equal(plan.bpf!.sids.get("fd00:1ace:1::1"), { mark: networkMark(1), family: 4 });
  assert.equal(plan.bpf!.sids.get("fd00:1ace:1:0:8000::1"), { mark: networkMark(1), family: 6 });
  assert.is(plan.bpf!.source, "fd00:ffff::1");
  // Decapsulated IPv6 finds its table by the mark too (the kernel backend has End.DT6 table T instead).
  assert.ok([...plan.rules.values()].some((x) => x.family === 6 && x.fwmark === networkMark(1) && x.table === 1001));
  assert.not.ok(plan.sysctls.has("net/ipv6/conf/all/seg6_enabled"));
  assert.not.ok(plan.sysctls.has("net/netfilter/nf_hooks_lwtunnel"));
  assert.not.ok([...plan.rules.values()].some((x) => x.dst?.startsWith("fd00:1ace:")), "no rule sends a network's packets to the main table");
  const srh = planNode(cluster.desiredState(1, [red], [], [], "SRH"), "eth0", { onLink6: ["fd00:ffff::1/64"] }, "bpf");
  assert.ok([...srh.bpf!.encap.values()].every((e) => e.srh));
});

t("each local pod is routed through its own interface, with a permanent neighbour entry at its derived MAC (both backends)", () => {
  const pods = [{ name: "ra", node: 1, network: "red", host: 10 }];
  const plan = planNode(cluster.desiredState(1, [red], pods), "eth0", { onLink6: ["fd00:ffff::1/64"], address6: "fd00:ffff::1" }, "bpf");
  const ep = cluster.desiredState(1, [red], pods).endpoints[0];
  // The node's own packets to the pod leave from the network's gateway (the port has no address).
  assert.equal(plan.routes.get("4|1001|10.1.1.10/32"), { family: 4, table: 1001, dst: "10.1.1.10/32", type: "unicast", oif: ep.interface, scope: "link", prefsrc: "10.1.1.1" });
  assert.equal(plan.routes.get("6|1001|fd00:1:0:1::10/128"), { family: 6, table: 1001, dst: "fd00:1:0:1::10/128", type: "unicast", oif: ep.interface, scope: undefined, prefsrc: "fd00:1:0:1::1" });
  assert.equal(plan.neighbors.get(`${ep.interface}|10.1.1.10`), { ifname: ep.interface, ip: "10.1.1.10", mac: "0a:58:0a:01:01:0a" });
  assert.equal(plan.neighbors.get(`${ep.interface}|fd00:1:0:1::10`)?.mac, "0a:58:0a:01:01:0a");
  // The kernel backend too: a checked bridge answers ARP for a pod only where its route leaves by another device.
  const kernel = planNode(cluster.desiredState(1, [red], pods), "eth0");
  assert.is(kernel.neighbors.size, 2);
  assert.equal(kernel.routes.get("4|1001|10.1.1.10/32"), plan.routes.get("4|1001|10.1.1.10/32"));
});

t("same node: a bridge is checked only where a denied prefix of its own network overlaps one of its local blocks", () => {
  const pods = [{ name: "ra", node: 1, network: "red", host: 10 }, { name: "rb", node: 1, network: "red", host: 11 }];
  const plan = (denied?: string[]) => {
    const state = cluster.desiredState(1, [red, blue], pods);
    if (denied) state.networks.find((n) => n.name === "red")!.denied = denied.map((destination) => ({ destination, policy: null }));
    return planNode(state, "eth0");
  };
  const open = plan();
  assert.equal([...open.checked], []);
  assert.is(open.sysctls.get("net/ipv4/conf/lb1/proxy_arp"), "0");
  assert.is(open.sysctls.get("net/ipv6/conf/lb1/proxy_ndp"), "0");
  assert.is(open.proxies.size, 0);
  assert.is(open.bridges.get("lb1")?.mac, "0a:4c:00:00:00:01");
  assert.is(open.bridges.get("lb2")?.mac, "0a:4c:00:00:00:02");
  // Only another node's block denied: same-node traffic cannot reach it, nothing to check here.
  assert.equal([...plan(["10.1.2.0/24"]).checked], []);
  // A /32 inside the local block, or the whole subnet (an anonymous network): checked.
  for (const denied of [["10.1.1.11/32"], ["10.1.0.0/16", "fd00:1::/32"]]) {
    const p = plan(denied);
    assert.equal([...p.checked], ["lb1"], denied.join());
    assert.is(p.sysctls.get("net/ipv4/conf/lb1/proxy_arp"), "1");
    assert.is(p.sysctls.get("net/ipv4/neigh/lb1/proxy_delay"), "0");
    assert.is(p.sysctls.get("net/ipv6/conf/lb1/proxy_ndp"), "1");
    assert.is(p.sysctls.get("net/ipv6/conf/lb2/proxy_ndp"), "0", "blue stays open");
    assert.equal([...p.proxies.values()].sort((a, b) => a.ip.localeCompare(b.ip)), [
      { ifname: "lb1", ip: "fd00:1:0:1::10" }, { ifname: "lb1", ip: "fd00:1:0:1::11" },
    ]);
  }
  assert.is(sameNodeChecked({ ...cluster.desiredState(1, [red], []).networks[0], denied: [] }), false);
  assert.is(bridgeMac(0x01020304), "0a:4c:01:02:03:04");
});

t("an anonymous network's pods still reach their own gateway: denied rules never cover the bridge's gateways", () => {
  const state = cluster.desiredState(1, [red], []);
  state.networks[0].denied = [{ destination: "10.1.0.0/16", policy: null }, { destination: "fd00:1::/32", policy: null }];
  const ruleset = renderRuleset(planNode(state, "eth0"));
  assert.match(ruleset, /iifname "lb1" ip daddr 10\.1\.0\.0\/16 ip daddr != \{ 10\.1\.1\.1 \} ct state new drop/);
  assert.match(ruleset, /iifname "lb1" ip6 daddr fd00:1::\/32 ip6 daddr != \{ fd00:1:0:1::1 \} ct state new drop/);
});

t("a pod's MAC comes from its IPv4 address, else from the end of its IPv6 address", () => {
  assert.is(podMac(["10.40.3.5/32", "fd00:40:0:3::5/128"]), "0a:58:0a:28:03:05");
  assert.is(podMac(["fd00:40:0:3::1:ab/128"]), "0a:59:00:01:00:ab");
  assert.throws(() => podMac([]), /Cannot derive a pod MAC: the pod has no address/);
});

t("bpf: a peer that is not on-link is reached through the underlay's IPv6 default gateway, or the plan says why not", () => {
  const state = cluster.desiredState(1, [red], []);
  const routed = planNode(state, "eth0", { 6: "fd00:ffff::fe", onLink6: ["fd00:aaaa::1/64"] }, "bpf");
  assert.equal([...routed.nexthops.values()].map((n) => n.gateway), ["fd00:ffff::fe"]);
  assert.throws(() => planNode(state, "eth0", { onLink6: ["fd00:aaaa::1/64"] }, "bpf"),
    /SID fd00:1ace:2::1 belongs to peer node-2, whose underlay address fd00:ffff::2 is not on-link, and the underlay has no IPv6 default gateway/);
});

t("a reply-only path installs the route and drops new connections in nftables", () => {
  const plan = planNode(cluster.desiredState(1, [red, blue], [], [{ from: "red", to: "blue" }]), "eth0");
  assert.ok(plan.routes.has("4|1002|10.1.2.0/24"), "blue's table routes back to red");
  assert.ok(plan.routes.has("4|1001|10.2.2.0/24"), "red's table routes to blue");
  assert.ok(plan.replyOnly.some((x) => x.bridge === "lb2" && x.destination === "10.1.1.0/24"));
  assert.not.ok(plan.replyOnly.some((x) => x.bridge === "lb1"));
  assert.match(renderRuleset(plan), /iifname "lb2" ip daddr 10\.1\.1\.0\/24 ip daddr != \{ 10\.2\.1\.1 \} ct state new drop/);
});

t("a denied prefix inside the network's own subnet drops new connections from its endpoints, routes kept", () => {
  const state = cluster.desiredState(1, [red], []);
  const ctx = state.networks.find((n) => n.name === "red")!;
  ctx.denied = [{ destination: "10.1.2.0/25", policy: "no-red-half" }, { destination: "fd00:1:0:2::/64", policy: null }];
  const plan = planNode(state, "eth0");
  assert.ok(plan.routes.has("4|1001|10.1.2.0/24"), "the remote block route stays");
  assert.ok(plan.replyOnly.some((x) => x.bridge === "lb1" && x.destination === "10.1.2.0/25" && x.family === 4));
  assert.ok(plan.replyOnly.some((x) => x.bridge === "lb1" && x.destination === "fd00:1:0:2::/64" && x.family === 6));
  const ruleset = renderRuleset(plan);
  assert.match(ruleset, /iifname "lb1" ip daddr 10\.1\.2\.0\/25 ip daddr != \{ 10\.1\.1\.1 \} ct state new drop/);
  assert.match(ruleset, /iifname "lb1" ip6 daddr fd00:1:0:2::\/64 ip6 daddr != \{ fd00:1:0:1::1 \} ct state new drop/);
  assert.not.match(renderRuleset(planNode(cluster.desiredState(1, [red], []), "eth0")), /ct state new drop/);
});

t("answers from the gateway route back by a return mark, in both families, kept apart from SID marks", () => {
  const plan = planNode(cluster.desiredState(1, [red, blue], []), "eth0");
  for (const fam of [4, 6] as const) {
    assert.ok([...plan.rules.values()].some((x) => x.family === fam && x.fwmark === returnMark(2) && x.table === 1002), `IPv${fam}`);
  }
  assert.is.not(returnMark(1), networkMark(1));
  assert.is(plan.sysctls.get("net/ipv4/fwmark_reflect"), "1");
  assert.is(plan.sysctls.get("net/ipv6/fwmark_reflect"), "1");
  const nft = renderRuleset(plan);
  // Every packet of a pod (ICMP errors answer forwarded ones too), except IPv6 link-local and multicast.
  assert.match(nft, /iifname "lb1" meta nfproto ipv4 meta mark set 0x4d000001/);
  assert.match(nft, /iifname "lb2" ip6 daddr != \{ fe80::\/10, ff00::\/8 \} meta mark set 0x4d000002/);
});

t("the node reaches its local blocks by iif lo rules, after the mark rules; overlapping blocks go to the lowest network id", () => {
  const green: TestNetwork = { name: "green", id: 3, v4: 1, v6: 3 };
  // Listed out of id order: the choice must not depend on it.
  const plan = planNode(cluster.desiredState(1, [green, blue, red], []), "eth0");
  const node = [...plan.rules.values()].filter((x) => x.priority === RULE_PRIORITY_NODE)
    .sort((a, b) => a.table - b.table || a.family - b.family);
  assert.equal(node, [
    { family: 4, priority: RULE_PRIORITY_NODE, table: 1001, iifname: "lo", dst: "10.1.1.0/24" },
    { family: 6, priority: RULE_PRIORITY_NODE, table: 1001, iifname: "lo", dst: "fd00:1:0:1::/64" },
    { family: 4, priority: RULE_PRIORITY_NODE, table: 1002, iifname: "lo", dst: "10.2.1.0/24" },
    { family: 6, priority: RULE_PRIORITY_NODE, table: 1002, iifname: "lo", dst: "fd00:2:0:1::/64" },
    // green's IPv4 block is red's too (red has the lower id); its IPv6 block overlaps nothing.
    { family: 6, priority: RULE_PRIORITY_NODE, table: 1003, iifname: "lo", dst: "fd00:3:0:1::/64" },
  ]);
  assert.ok(RULE_PRIORITY_NODE > RULE_PRIORITY_MARK, "the node's answers to a pod keep their return mark's table");
  assert.not.ok([...plan.routes.values()].some((r) => r.table === 254 && r.dst.startsWith("10.")), "no block in the main table");
});

const corp: TestExternal = { name: "corp", prefixes: ["192.0.2.0/24", "fd00:e0::/64"] };

t("egress to an external network: routes through the underlay (default gateway if any), SNAT unless turned off", () => {
  const state = cluster.desiredState(1, [red, blue], [], [{ from: "red", to: "corp" }], "Reduced", [corp]);
  const plan = planNode(state, "eth0", { 6: "fe80::fe" });
  assert.equal(plan.routes.get("4|1001|192.0.2.0/24"), { family: 4, table: 1001, dst: "192.0.2.0/24", type: "unicast", oif: "eth0", scope: "link" });
  assert.equal(plan.routes.get("6|1001|fd00:e0::/64"), { family: 6, table: 1001, dst: "fd00:e0::/64", type: "unicast", oif: "eth0", gateway: "fe80::fe" });
  assert.not.ok(plan.routes.has("4|1002|192.0.2.0/24"), "blue has no path");
  const nft = renderRuleset(plan);
  assert.match(nft, /iifname "lb1" ip daddr 192\.0\.2\.0\/24 ct state new ct mark set 0x4d000001/);
  assert.match(nft, /oifname "eth0" ct mark 0x4d000001 ip6 daddr fd00:e0::\/64 snat ip6 to fd00:ffff::1/);
  assert.match(nft, /oifname "eth0" ct mark 0x4d000001 ip daddr 192\.0\.2\.0\/24 masquerade/, "the IPv6 underlay address cannot be an IPv4 source");
  assert.not.ok([...plan.rules.values()].some((x) => x.priority === RULE_PRIORITY_INGRESS), "no ingress: the path is one way");

  const off = planNode(cluster.desiredState(1, [red], [], [{ from: "red", to: "corp" }], "Reduced", [{ ...corp, snat: false }]), "eth0");
  assert.ok(off.routes.has("4|1001|192.0.2.0/24"));
  assert.not.match(renderRuleset(off), /snat|masquerade|postrouting/);
});

t("ingress from an external network: rules from its prefixes to the network's local blocks, new connections back dropped", () => {
  const plan = planNode(cluster.desiredState(1, [red], [], [{ from: "corp", to: "red" }], "Reduced", [corp]), "eth0");
  const ingress = [...plan.rules.values()].filter((x) => x.priority === RULE_PRIORITY_INGRESS);
  assert.equal(ingress.sort((a, b) => a.family - b.family), [
    { family: 4, priority: RULE_PRIORITY_INGRESS, table: 1001, iifname: "eth0", src: "192.0.2.0/24", dst: "10.1.1.0/24" },
    { family: 6, priority: RULE_PRIORITY_INGRESS, table: 1001, iifname: "eth0", src: "fd00:e0::/64", dst: "fd00:1:0:1::/64" },
  ]);
  assert.ok(plan.routes.has("4|1001|192.0.2.0/24"), "replies leave through the underlay");
  assert.match(renderRuleset(plan), /iifname "lb1" ip daddr 192\.0\.2\.0\/24 ip daddr != \{ 10\.1\.1\.1 \} ct state new drop/);
  assert.is(plan.egress.length, 0, "no egress, so no SNAT");
});

t("both directions allowed with an external network: egress with SNAT and ingress rules, nothing dropped", () => {
  const state = cluster.desiredState(1, [red], [], [{ from: "red", to: "corp" }], "Reduced", [corp]);
  const ctx = state.networks.find((n) => n.name === "red")!;
  ctx.paths = ctx.paths.map((p) => p.toNetwork === "corp" ? { ...p, inbound: true } : p);
  const plan = planNode(state, "eth0");
  const ingress = [...plan.rules.values()].filter((x) => x.priority === RULE_PRIORITY_INGRESS);
  assert.equal(ingress.map((x) => `${x.src}>${x.dst}`).sort(), ["192.0.2.0/24>10.1.1.0/24", "fd00:e0::/64>fd00:1:0:1::/64"]);
  assert.ok(plan.egress.some((e) => e.destination === "192.0.2.0/24" && e.snat));
  assert.not.match(renderRuleset(plan), /ct state new drop/);
});

t("what the srv6 plugin does not forward is reported: l2 frames between nodes on the kernel backend", () => {
  const state = cluster.desiredState(1, [red], []);
  state.networks.push({ ...state.networks[0], name: "flat", id: 9, forwarding: "bridged" });
  // An external network has nothing of its own on a node (its prefixes are the paths of networks reaching it): not "skipped".
  state.networks.push({ ...state.networks[0], name: "corp", id: 10, type: "external", forwarding: "underlay" });
  const plan = planNode(state, "eth0");
  assert.equal(plan.skipped.map((s) => s.network), ["flat"]);
  assert.match(plan.skipped[0].reason, /frames between nodes need the bpf backend/);
  assert.ok(plan.bridges.has("lb9"), "the l2 network's bridge and gateway are there on the kernel backend too");
  assert.is(plan.tunnels.size, 0, "but no tunnel port");
});

t("the ruleset is a function of the desired state alone: the same text whatever the order of networks, pods, peers and paths", () => {
  const pods = [
    { name: "a", node: 1, network: "red", host: 10 },
    { name: "b", node: 1, network: "blue", host: 11 },
    { name: "c", node: 1, network: "red", host: 12 },
  ];
  const corp: TestExternal = { name: "corp", prefixes: ["192.0.2.0/24", "fd00:e0::/64"] };
  const paths = [{ from: "red", to: "blue" }, { from: "red", to: "corp" }];
  const state = cluster.desiredState(1, [red, blue], pods, paths, "Reduced", [corp]);
  const shuffled = cluster.desiredState(1, [blue, red], [...pods].reverse(), [...paths].reverse(), "Reduced", [corp]);
  shuffled.peers = [...shuffled.peers!].reverse();
  for (const n of shuffled.networks) n.paths = [...n.paths].reverse();
  const text = renderRuleset(planNode(state, "eth0"));
  assert.is(renderRuleset(planNode(shuffled, "eth0")), text);
  // Pod ports are matched by interface group, not listed from the kernel: nothing read back goes in.
  assert.match(text, /meta iifgroup 6862 ether type ip iifname \. ip saddr != @allow4 drop/);
  assert.not.match(text, /podports/);
  // The pods' own source pairs are elements written over netlink (pod_sources.ts): a pod never changes the text.
  assert.not.match(text, /h-a|h-b|h-c/);
  assert.equal(planNode(state, "eth0").allowed.map((a) => `${a.ifname} ${a.address}`).filter((a) => !a.includes(":")).sort(), ["h-a 10.1.1.10", "h-b 10.2.1.11", "h-c 10.1.1.12"]);
  const fewer = cluster.desiredState(1, [red, blue], pods.slice(0, 2), paths, "Reduced", [corp]);
  assert.is(renderRuleset(planNode(fewer, "eth0")), text, "one pod fewer: the same ruleset");
});

t.run();
