/**
 * The srv6 dataplane with real packets: a 3-node cluster of network
 * namespaces on an IPv6 fabric, pods in their own namespaces, desired
 * states built by hand. Needs root (skipped otherwise, with the reason).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NodeDesiredState } from "../../core/mod.ts";
import { Srv6Dataplane } from "./dataplane.ts";
import { podMtu } from "./plan.ts";
import { inEchos, isRoot, ping, sh, TestCluster, type TestNetwork, type TestPod } from "./testing.ts";
import { sendSpoofedEcho, sendToSid, startTcpServer, tcpConnect } from "./probes.ts";

const t = suite("srv6 dataplane (namespaces)");
const test = isRoot ? t : t.skip;
if (!isRoot) console.log("srv6 dataplane tests skipped: they need root to create network namespaces");

const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
const blue: TestNetwork = { name: "blue", id: 2, v4: 2, v6: 2 };
// green reuses red's IPv4 subnet: overlapping networks on the same nodes.
const green: TestNetwork = { name: "green", id: 3, v4: 1, v6: 3 };
const networks = [red, blue, green];
const pods: TestPod[] = [
  { name: "ra", node: 1, network: "red", host: 10 },
  { name: "rb", node: 2, network: "red", host: 20 },
  { name: "rc", node: 3, network: "red", host: 30 },
  { name: "ba", node: 1, network: "blue", host: 10 },
  { name: "bb", node: 2, network: "blue", host: 20 },
  { name: "ga", node: 1, network: "green", host: 11 },
  { name: "gb", node: 2, network: "green", host: 20 },
];
const POD_MTU = podMtu(1500, "Reduced");

const cluster = new TestCluster(3);
const dps: Srv6Dataplane[] = [];
let paths: { from: string; to: string }[] = [];
let encapsulation: "Reduced" | "SRH" = "Reduced";
const state = (n: number, nets = networks, ps = pods): NodeDesiredState => cluster.desiredState(n, nets, ps, paths, encapsulation);
const ns = (pod: string) => cluster.podNs(pod);
const podByName = new Map(pods.map((p) => [p.name, p]));
const v4 = (pod: string) => {
  const p = podByName.get(pod)!;
  return `10.${networks.find((x) => x.name === p.network)!.v4}.${p.node}.${p.host}`;
};
const v6 = (pod: string) => {
  const p = podByName.get(pod)!;
  return `fd00:${networks.find((x) => x.name === p.network)!.v6}:0:${p.node}::${p.host}`;
};

process.on("exit", () => cluster.destroy());

t.before(async () => {
  if (!isRoot) return;
  try {
    await setUp();
  } catch (e) {
    // uvu reports a failing hook only as failed tests; say why.
    console.error("srv6 dataplane test set-up failed:", e);
    throw e;
  }
});

async function setUp(): Promise<void> {
  cluster.create();
  for (let n = 1; n <= 3; n++) {
    const dp = await Srv6Dataplane.open({ node: `node-${n}`, netns: cluster.node(n) });
    dps.push(dp);
    await dp.apply(state(n));
  }
  for (const p of pods) {
    const net = networks.find((x) => x.name === p.network)!;
    await dps[p.node - 1].attachPod({
      netns: cluster.addPodNs(p.name), ifname: "eth0", hostIfname: `h-${p.name}`, network: p.network,
      ...cluster.podAddresses(p, net), mtu: POD_MTU,
    });
  }
}

t.after(async () => {
  for (const dp of dps) await dp.close();
  cluster.destroy();
});

test("reports the kernel's capabilities: seg6, seg6local and nexthop objects, no VRF here", async () => {
  const caps = await dps[0].capabilities();
  assert.is(caps.seg6, true);
  assert.is(caps.seg6local, true);
  assert.is(caps.nexthopObjects, true);
  assert.is(typeof caps.vrf, "boolean");
  assert.equal(caps.forwarding, ["routed"]);
});

test("pods ping each other across nodes in IPv4 and IPv6", () => {
  assert.is(ping(ns("ra"), v4("rb")), 2, "ra → rb IPv4");
  assert.is(ping(ns("ra"), v6("rb")), 2, "ra → rb IPv6");
  assert.is(ping(ns("rc"), v4("ra")), 2, "rc → ra IPv4");
  assert.is(ping(ns("rb"), v6("rc")), 2, "rb → rc IPv6");
});

test("two networks without a path deliver nothing, spoofed or aimed at the other's SID", () => {
  const before4 = inEchos(ns("bb"), 4);
  const before6 = inEchos(ns("bb"), 6);
  assert.is(ping(ns("ra"), v4("bb")), 0, "red → blue IPv4 across nodes");
  assert.is(ping(ns("ra"), v6("bb")), 0, "red → blue IPv6 across nodes");
  assert.is(ping(ns("ra"), v4("ba")), 0, "red → blue on the same node");
  // A red pod claiming a blue address.
  sendSpoofedEcho(ns("ra"), v4("ba"), v4("bb"));
  // A red pod sending straight to blue's SID on node 2, carrying a packet for bb.
  sendToSid(ns("ra"), cluster.sid(2, blue), v4("ra"), v4("bb"));
  assert.is(inEchos(ns("bb"), 4), before4, "nothing reached bb over IPv4");
  assert.is(inEchos(ns("bb"), 6), before6, "nothing reached bb over IPv6");

  // Control: the same SID packet sent from the underlay side (node 1 itself) is delivered, so the probe is sound.
  sendToSid(cluster.node(1), cluster.sid(2, blue), v4("ba"), v4("bb"), 1);
  assert.ok(inEchos(ns("bb"), 4) > before4, "the SID probe works from the underlay");
});

test("pods do not reach the node's own addresses, except their own gateway", () => {
  // Counted where the echo requests would arrive: the node's own ICMP counters.
  const node = cluster.node(1);
  const v4Before = inEchos(node, 4);
  const v6Before = inEchos(node, 6);
  ping(ns("ra"), cluster.underlayAddress(1));
  ping(ns("ra"), "10.2.1.1");
  ping(ns("ra"), "fd00:2:0:1::1");
  assert.is(inEchos(node, 6), v6Before, "node 1's underlay address and blue's IPv6 gateway are not reachable from red");
  assert.is(inEchos(node, 4), v4Before, "blue's IPv4 gateway is not reachable from red");
  // Control: red's own gateway receives the pod's echo requests.
  ping(ns("ra"), "10.1.1.1");
  assert.is(inEchos(node, 4), v4Before + 2, "red's gateway is reachable from red");
});

test("a pod cannot send from an address it was not given", () => {
  const before = inEchos(ns("rb"), 4);
  sendSpoofedEcho(ns("ra"), "10.1.1.99", v4("rb"));
  assert.is(inEchos(ns("rb"), 4), before, "spoofed source dropped");
  sendSpoofedEcho(ns("ra"), v4("ra"), v4("rb"), 1);
  assert.is(inEchos(ns("rb"), 4), before + 1, "the same probe with the pod's own address arrives");
});

test("overlapping IPv4 subnets in two networks on the same nodes stay apart", () => {
  assert.is(v4("rb"), v4("gb"));
  const red0 = inEchos(ns("rb"), 4);
  const green0 = inEchos(ns("gb"), 4);
  assert.is(ping(ns("ra"), v4("rb"), { count: 3 }), 3);
  assert.is(inEchos(ns("rb"), 4), red0 + 3, "red's pod answered red's ping");
  assert.is(inEchos(ns("gb"), 4), green0, "green's pod with the same address saw none of it");
  assert.is(ping(ns("ga"), v4("gb"), { count: 2 }), 2);
  assert.is(inEchos(ns("gb"), 4), green0 + 2);
  assert.is(inEchos(ns("rb"), 4), red0 + 3);
});

test("a full-size DF packet at the pod MTU arrives (IPv4 and IPv6)", () => {
  assert.is(ping(ns("ra"), v4("rb"), { count: 2, size: POD_MTU - 28, df: true }), 2);
  assert.is(ping(ns("ra"), v6("rb"), { count: 2, size: POD_MTU - 48, df: true }), 2);
});

test("SRH encapsulation carries traffic too, with room for the SRH at its pod MTU", async () => {
  encapsulation = "SRH";
  try {
    for (let n = 1; n <= 3; n++) {
      const r = await dps[n - 1].apply(state(n));
      // Make before break: new nexthops, routes switched to them, the old ones removed.
      assert.ok(r.added > 0 && r.changed > 0 && r.removed > 0, `node ${n}: ${JSON.stringify(r)}`);
    }
    assert.match(sh("ip", ["-n", cluster.node(1), "nexthop"]), /encap seg6 mode encap segs 1/);
    assert.is(ping(ns("ra"), v4("rb")), 2, "IPv4 over an SRH");
    assert.is(ping(ns("ra"), v6("rc")), 2, "IPv6 over an SRH");
    const srhMtu = podMtu(1500, "SRH");
    assert.is(ping(ns("ra"), v4("rb"), { count: 2, size: srhMtu - 28, df: true }), 2, "DF packet at the SRH pod MTU");
  } finally {
    encapsulation = "Reduced";
    for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
  }
  assert.match(sh("ip", ["-n", cluster.node(1), "nexthop"]), /encap seg6 mode encap\.red/);
});

test("a second identical apply makes zero writes, also from a fresh dataplane", async () => {
  for (let n = 1; n <= 3; n++) {
    const r = await dps[n - 1].apply(state(n));
    assert.is(r.writes, 0, `node ${n}: ${JSON.stringify(r)}`);
  }
  const fresh = await Srv6Dataplane.open({ node: "node-1", netns: cluster.node(1) });
  try {
    const r = await fresh.apply(state(1));
    assert.is(r.writes, 0, JSON.stringify(r));
    assert.is(r.added + r.changed + r.removed, 0);
  } finally {
    await fresh.close();
  }
});

test("stale objects of ours are removed, others' are kept", async () => {
  const n1 = cluster.node(1);
  sh("ip", ["-n", n1, "route", "add", "192.0.2.0/24", "dev", "eth0", "table", "1001", "proto", "static"]);
  const withoutGreen = networks.filter((x) => x !== green);
  const r = await dps[0].apply(state(1, withoutGreen, pods.filter((p) => p.network !== "green")));
  assert.ok(r.removed > 0 && r.writes > 0, JSON.stringify(r));
  assert.is(sh("ip", ["-n", n1, "-4", "route", "show", "table", "1003"]).trim(), "", "green's IPv4 table is gone");
  assert.is(sh("ip", ["-n", n1, "-6", "route", "show", "table", "1003"]).trim(), "");
  assert.not.match(sh("ip", ["-n", n1, "rule"]), /lookup 1003/);
  assert.not.match(sh("ip", ["-n", n1, "nexthop"]), /fd00:1ace:2::3/, "nexthop to green's SID removed");
  assert.not.match(sh("ip", ["-n", n1, "link"]), /lb3/, "green's bridge removed");
  assert.match(sh("ip", ["-n", n1, "route", "show", "table", "1001"]), /192\.0\.2\.0\/24 dev eth0 proto static/, "a route we do not own stays");

  // Back to the full state: green works again, its pod re-attached to the new bridge.
  const back = await dps[0].apply(state(1));
  assert.ok(back.added > 0, JSON.stringify(back));
  assert.is(ping(ns("ga"), v4("gb")), 2);
  assert.is((await dps[0].apply(state(1))).writes, 0);
  sh("ip", ["-n", n1, "route", "del", "192.0.2.0/24", "table", "1001"]);
});

test("a directional path: red → blue opens, blue → red only carries replies", async () => {
  paths = [{ from: "red", to: "blue" }];
  for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
  startTcpServer(cluster, ns("bb"), v4("bb"), 7000);
  startTcpServer(cluster, ns("ra"), v4("ra"), 7000);
  startTcpServer(cluster, ns("ba"), v4("ba"), 7000);
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(tcpConnect(ns("ra"), v4("bb"), 7000), "red → blue across nodes connects");
  assert.ok(tcpConnect(ns("ra"), v4("ba"), 7000), "red → blue on the same node connects");
  assert.not.ok(tcpConnect(ns("bb"), v4("ra"), 7000), "blue → red across nodes: new connection dropped");
  assert.not.ok(tcpConnect(ns("ba"), v4("ra"), 7000), "blue → red on the same node: new connection dropped");
  assert.is(ping(ns("ra"), v6("bb")), 2, "red → blue IPv6 echo and its replies flow");
  assert.is(ping(ns("bb"), v6("ra")), 0, "blue → red IPv6 echo is a new flow: dropped");
  paths = [];
  for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
  assert.not.ok(tcpConnect(ns("ra"), v4("bb"), 7000), "without the path, red → blue is closed again");
});

test("continuous ping while a fresh process rebuilds the node from the same state: zero lost", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-srv6-"));
  try {
    const file = join(dir, "state.json");
    writeFileSync(file, JSON.stringify(state(1)));
    const pinger = cluster.start(ns("ra"), ["ping", "-n", "-q", "-i", "0.01", "-c", "250", "-W", "1", v4("rb")]);
    let out = "";
    pinger.stdout!.on("data", (d) => (out += d));
    const pingDone = new Promise((r) => pinger.on("exit", r));
    await new Promise((r) => setTimeout(r, 300));
    const cli = fileURLToPath(new URL("./apply_cli.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", cli, cluster.node(1), file], { stdio: ["ignore", "pipe", "pipe"] });
    let report = "";
    let err = "";
    child.stdout.on("data", (d) => (report += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((r) => child.on("exit", r));
    assert.is(code, 0, err);
    assert.is(JSON.parse(report).writes, 0, report);
    await pingDone;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    assert.ok(m, out);
    assert.is(m![2], m![1], out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("detaching a pod removes its interface, and detaching again (or a missing netns) succeeds", async () => {
  await dps[2].detachPod({ hostIfname: "h-rc", netns: `/run/netns/${ns("rc")}` });
  assert.not.match(sh("ip", ["-n", cluster.node(3), "link"]), /h-rc/);
  await dps[2].detachPod({ hostIfname: "h-rc", netns: `/run/netns/${ns("rc")}` });
  await dps[2].detachPod({ hostIfname: "h-none", netns: "/run/netns/does-not-exist" });
});

test("purge removes every object of ours from a node", async () => {
  const n3 = cluster.node(3);
  assert.match(sh("ip", ["-n", n3, "route", "show", "table", "all", "proto", "76"]), /./, "there was something to purge");
  await dps[2].purge();
  assert.is(sh("ip", ["-n", n3, "route", "show", "table", "all", "proto", "76"]).trim(), "");
  assert.is(sh("ip", ["-n", n3, "-6", "route", "show", "table", "all", "proto", "76"]).trim(), "");
  assert.is(sh("ip", ["-n", n3, "nexthop", "show", "proto", "76"]).trim(), "");
  assert.not.match(sh("ip", ["-n", n3, "rule"]) + sh("ip", ["-n", n3, "-6", "rule"]), /proto 76/);
  assert.not.match(sh("ip", ["-n", n3, "link"]), /lace-cni:bridge/);
  assert.not.match(sh("ip", ["netns", "exec", n3, "nft", "list", "tables"]), /lace/);
});

t.run();
