/**
 * l2 networks end to end by real frames, across nodes: a three-node sandbox
 * (network namespaces, the embedded store, the controller, one real agent
 * per node on the bpf backend, pods set up by the CNI executable), so the
 * Neighbor and FDBEntry resources are the agents' own (written on ADD,
 * learned by their learn loop from the datapath's sightings), and every
 * node's datapath follows them. Covers ARP/ND suppression, floods kept to
 * the network, learning (a VM's second address; a guest with its own MAC
 * behind a VM), ageing, mobility by sequence number, and flap freezing.
 * The agents run with a short learning age and flap limits
 * (`--learning-age`, `--flap`) so the test sees them act.
 *
 * Needs root; the kernel (seg6) backend carries no l2 frames between nodes
 * (plan_l2.ts), so this runs on the bpf backend only, which every kernel
 * here has.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { l2EntryName } from "../../core/controller/mod.ts";
import type { FDBEntry, Neighbor, Network, NetworkEndpoint, Resource } from "../../core/mod.ts";
import { Sandbox, type SandboxPod } from "./sandbox.ts";
import { sh, sleep, waitFor } from "./processes.ts";
import { addGuest, captureIn, neighbourOf, sendBroadcast, sendGratuitousArp, tcpdumpPackets } from "../../plugins/srv6/l2_probes.ts";
import { captureFabric, inEchos, inNs, ping } from "../../plugins/srv6/testing.ts";

const isRoot = process.getuid?.() === 0;
const t = suite("l2 networks end to end (sandbox, bpf backend, real frames)");
const test = isRoot ? t : t.skip;
if (!isRoot) console.log("l2 end-to-end frame tests skipped: they need root to create network namespaces");

const AGE_MS = 3000;
/** More than 2 moves within 20 s freeze a MAC for 4 s. */
const FLAP = { moves: 2, windowMs: 20_000, holdMs: 4000 };
const L = "lace-cni.io/v1alpha1";
const PREFIX = `l2f${process.pid.toString(36)}-`;

const l2net = (name: string, v4: string, v6?: string): Resource => ({
  apiVersion: L, kind: "Network", metadata: { name },
  spec: { type: "l2", ipv4Subnet: { prefix: v4 }, ...(v6 ? { ipv6Subnet: { prefix: v6 } } : {}) },
});
const bind = (network: string): Resource => ({
  apiVersion: L, kind: "NetworkBindingPolicy", metadata: { name: `bind-${network}` },
  spec: { network, priority: 100, matchKind: "Pod", selector: { matchLabels: { net: network } } },
});
const pod = (name: string, network: string, node: number): Resource => ({
  apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "vms", labels: { net: network } },
  spec: { nodeName: `node-${node}`, containers: [{ name: "compute", image: "pause" }] },
});

let sb: Sandbox;
let storageId = 0;
const P = (name: string): SandboxPod => sb.pod("vms", name)!;
const ns = (name: string) => P(name).netns!;
const v4 = (name: string) => P(name).addresses.find((a) => !a.includes(":"))!;
const v6 = (name: string) => P(name).addresses.find((a) => a.includes(":"))!;
const node = (k: number) => sb.nodeNs(`node-${k}`);
const macOf = async (name: string) => (await sb.store.get<NetworkEndpoint>("NetworkEndpoint", name, "vms"))!.spec!.mac!;
const fdbEntry = (mac: string) => sb.store.get<FDBEntry>("FDBEntry", l2EntryName("storage", mac));
const neighbor = (ip: string) => sb.store.get<Neighbor>("Neighbor", l2EntryName("storage", ip));

/** Where node k's kernel bridge sends `mac` (its port), or undefined: read back from the kernel. */
function bridgePortOf(k: number, mac: string): string | undefined {
  const line = sh("bridge", ["-n", node(k), "fdb", "show", "br", `lb${storageId}`]).split("\n").find((l) => l.startsWith(`${mac} `) && !l.includes(" self"));
  return /dev (\S+)/.exec(line ?? "")?.[1];
}
/** The MAC node k's bridge answers ARP with for `ip` (its permanent neighbour entry), or undefined. */
function bridgeNeighbourOf(k: number, ip: string): string | undefined {
  return /lladdr ([0-9a-f:]{17})/.exec(sh("ip", ["-n", node(k), "neigh", "show", "dev", `lb${storageId}`, "to", ip]))?.[1];
}

/** A guest with a MAC of its own behind VM `vm` (l2_probes addGuest), in a namespace the sandbox's down removes too. */
function guestBehind(vm: string, name: string, mac: string, cidr: string): string {
  const gns = `${PREFIX}pod-guest-${name}`;
  addGuest(ns(vm), gns, mac, cidr);
  return gns;
}
function removeGuest(gns: string): void {
  sh("ip", ["netns", "del", gns]);
}

/** Polls `check` every 100 ms until it holds; fails naming `what` after `ms`. */
const eventually = (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) => waitFor(what, check, ms);

t.before(async () => {
  if (!isRoot) return;
  sb = await Sandbox.up({
    nodes: 3, prefix: PREFIX, backend: "bpf",
    agentArgs: ["--learning-age", String(AGE_MS), "--flap", `${FLAP.moves}/${FLAP.windowMs}/${FLAP.holdMs}`],
  });
  try {
    await sb.apply([
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "vms" } },
      { apiVersion: L, kind: "Topology", metadata: { name: "default" }, spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48, encapsulation: "Reduced", mtu: 0 } },
      l2net("storage", "10.61.0.0/24", "fd00:61::/64"), l2net("vault", "10.62.0.0/24"), bind("storage"), bind("vault"),
      // storage on nodes 1 (two VMs) and 2; vault on nodes 1, 2 and 3. Node 3 has no storage endpoint (yet).
      pod("sa", "storage", 1), pod("sb", "storage", 1), pod("sc", "storage", 2),
      pod("va", "vault", 1), pod("vb", "vault", 2), pod("vc", "vault", 3),
    ]);
    const notRunning = sb.listPods().filter((p) => p.state !== "running");
    if (notRunning.length) throw new Error(`pods not running: ${JSON.stringify(notRunning)}`);
    storageId = (await sb.store.get<Network>("Network", "storage"))!.status!.id!;
    // Every node's datapath has every storage endpoint (the agents' Neighbors and FDBEntries).
    for (const p of ["sa", "sb", "sc"]) {
      const mac = await macOf(p);
      await eventually(`${p}'s MAC in node 1's and node 2's bridges`, () => !!bridgePortOf(1, mac) && !!bridgePortOf(2, mac));
    }
  } catch (e) {
    await sb.down();
    throw e;
  }
});

t.after(async () => {
  if (!isRoot || !sb) return;
  await sb.down();
});

test("the agents wrote each l2 endpoint's Neighbors and FDBEntry; node 2's bridge sends node 1's MACs to the tunnel port", async () => {
  for (const p of ["sa", "sb", "sc"]) {
    const mac = await macOf(p);
    const e = await fdbEntry(mac);
    assert.equal([e?.spec?.node, e?.spec?.source, e?.spec?.sequence], [P(p).node, "static", 0], `${p}'s FDBEntry`);
    for (const a of P(p).addresses) assert.is((await neighbor(a))?.spec?.mac, mac, `${p}'s Neighbor for ${a}`);
  }
  assert.is(bridgePortOf(2, await macOf("sa")), `lt${storageId}`);
  assert.is(bridgeNeighbourOf(2, v4("sa")), await macOf("sa"));
});

test("ARP suppression: ARP and NS for a known address are answered on the sender's node; nothing but the echo crosses the fabric", async () => {
  inNs(ns("sa"), ["ip", "neigh", "flush", "all"]);
  const out = await captureFabric({ fabric: sb.fabricNs, bridge: "fabric0" }, ["ip6"], () => {
    assert.is(ping(ns("sa"), v4("sc"), { count: 1 }), 1, "IPv4 after a fresh ARP");
    assert.is(ping(ns("sa"), v6("sc"), { count: 1 }), 1, "IPv6 after a fresh NS");
  });
  const mac = await macOf("sc");
  assert.is(neighbourOf(ns("sa"), v4("sc")), mac, "answered with sc's own MAC");
  assert.is(neighbourOf(ns("sa"), v6("sc")), mac);
  const resolution = tcpdumpPackets(out).filter((p) => /ARP|neighbor solicitation|neighbor advertisement/.test(p));
  assert.equal(resolution, [], `no ARP, NS or NA crossed the fabric:\n${out}`);
  assert.match(out, /next-header IPIP \(4\)/, "the echo did cross (IP in SRv6)");
});

test("a broadcast reaches every storage endpoint, on its node and the other, and no other network's, and no node without storage", async () => {
  const caps = {
    sb: captureIn(undefined, ns("sb"), ["-i", "eth0", "ether", "proto", "0x88b5"]),
    sc: captureIn(undefined, ns("sc"), ["-i", "eth0", "ether", "proto", "0x88b5"]),
    va: captureIn(undefined, ns("va"), ["-i", "eth0", "ether", "proto", "0x88b5"]),
    vb: captureIn(undefined, ns("vb"), ["-i", "eth0", "ether", "proto", "0x88b5"]),
    // Whole frames (next header 143, Reduced) whose inner ethertype is the probe's.
    node2: captureIn(undefined, node(2), ["-i", "eth0", "ip6", "proto", "143", "and", "ip6[52:2]", "=", "0x88b5"]),
    node3: captureIn(undefined, node(3), ["-i", "eth0", "ip6", "proto", "143", "and", "ip6[52:2]", "=", "0x88b5"]),
  };
  await Promise.all(Object.values(caps).map((c) => c.ready));
  assert.is(sendBroadcast(ns("sa"), 3), 0);
  const got = Object.fromEntries(await Promise.all(Object.entries(caps).map(async ([k, c]) => [k, await c.stop()])));
  assert.ok(got.sb >= 3 && got.sc >= 3, `storage pods on node 1 and node 2 got the broadcasts: ${JSON.stringify(got)}`);
  assert.is(got.node2, 3, "node 2 got one whole-frame copy (143) of each");
  assert.equal([got.va, got.vb, got.node3], [0, 0, 0], `vault's pods and node 3 (no storage endpoint) got none: ${JSON.stringify(got)}`);
});

const GUEST_MAC = "02:aa:00:00:00:01";
const GUEST_IP = "10.61.0.99";
let guest = "";

test("learning: a VM's second address and a guest's own MAC behind a VM are learned by node 1's agent and forwarded to from node 2", async () => {
  // A second address in the VM, announced by a gratuitous ARP.
  inNs(ns("sa"), ["ip", "addr", "add", "10.61.0.98/24", "dev", "eth0"]);
  sendGratuitousArp(ns("sa"), await macOf("sa"), "10.61.0.98", 1);
  // A guest with a MAC of its own behind the VM.
  guest = guestBehind("sa", "g1", GUEST_MAC, `${GUEST_IP}/24`);
  sendGratuitousArp(guest, GUEST_MAC, GUEST_IP, 1, "gst");

  await eventually("the learned FDBEntry and Neighbors", async () => !!(await fdbEntry(GUEST_MAC)) && !!(await neighbor(GUEST_IP)) && !!(await neighbor("10.61.0.98")));
  const e = (await fdbEntry(GUEST_MAC))!.spec!;
  assert.equal([e.node, e.source, e.sequence], ["node-1", "learned", 0]);
  assert.equal([(await neighbor(GUEST_IP))!.spec!.mac, (await neighbor(GUEST_IP))!.spec!.source], [GUEST_MAC, "learned"]);
  assert.equal([(await neighbor("10.61.0.98"))!.spec!.mac, (await neighbor("10.61.0.98"))!.spec!.source], [await macOf("sa"), "learned"]);

  // Node 2's datapath follows: its bridge sends the guest's MAC to the tunnel port and answers ARP for both addresses.
  await eventually("node 2's bridge to know the guest", () => bridgePortOf(2, GUEST_MAC) === `lt${storageId}` && bridgeNeighbourOf(2, GUEST_IP) === GUEST_MAC);
  const echos = inEchos(guest);
  await eventually("sc (node 2) to ping the guest", () => ping(ns("sc"), GUEST_IP, { count: 1 }) === 1);
  assert.ok(inEchos(guest) > echos, "the guest itself answered");
  await eventually("sc (node 2) to ping the VM's second address", () => ping(ns("sc"), "10.61.0.98", { count: 1 }) === 1);
});

test("a learned entry that keeps talking outlives the age; one gone silent ages out, from the store and from every node's kernel", async () => {
  // Pinged every 200 ms for longer than the age: the guest's replies keep its entries.
  const r = inNs(ns("sc"), ["ping", "-n", "-q", "-c", String(Math.ceil((AGE_MS * 1.6) / 200)), "-i", "0.2", "-W", "1", GUEST_IP], 30_000).out;
  assert.match(r, / 0% packet loss/, `no reply missed while it talked:\n${r}`);
  assert.ok(await fdbEntry(GUEST_MAC), "still learned after more than the age");

  removeGuest(guest);
  const lastSeen = Date.parse((await fdbEntry(GUEST_MAC))!.spec!.lastSeen!);
  await eventually("the guest's learned entries to age out", async () => !(await fdbEntry(GUEST_MAC)) && !(await neighbor(GUEST_IP)), AGE_MS + 10_000);
  assert.ok(Date.now() >= lastSeen + AGE_MS, `not before the age: ${Date.now() - lastSeen} ms after it was last seen`);
  await eventually("node 2's bridge to forget the guest", () => bridgePortOf(2, GUEST_MAC) === undefined && bridgeNeighbourOf(2, GUEST_IP) === undefined);
  await eventually("the silent second address to age out", async () => !(await neighbor("10.61.0.98")), AGE_MS + 10_000);
});

const MOVER = "02:aa:00:00:00:02";
const MOVER_IP = "10.61.0.97";
const guests: Record<number, string> = {};

test("mobility: a guest MAC announced from another node moves there with the next sequence number; every node converges", async () => {
  // A third node joins storage, to see every node converge.
  await sb.addPod(pod("sd", "storage", 3));
  assert.is(P("sd").state, "running");
  guests[1] = guestBehind("sa", "m1", MOVER, `${MOVER_IP}/24`);
  sendGratuitousArp(guests[1], MOVER, MOVER_IP, 1, "gst");
  await eventually("the mover learned on node 1", async () => (await fdbEntry(MOVER))?.spec?.node === "node-1");
  await eventually("node 3 to send the mover to node 1", () => bridgePortOf(3, MOVER) === `lt${storageId}`);
  await eventually("node 3 to reach it on node 1", () => ping(ns("sd"), MOVER_IP, { count: 1 }) === 1);

  // The guest moves to a VM on node 2 and announces itself there (a GARP, as after a live migration).
  removeGuest(guests[1]);
  guests[2] = guestBehind("sc", "m2", MOVER, `${MOVER_IP}/24`);
  sendGratuitousArp(guests[2], MOVER, MOVER_IP, 1, "gst");
  await eventually("the mover's FDBEntry to name node 2", async () => (await fdbEntry(MOVER))?.spec?.node === "node-2");
  const e = (await fdbEntry(MOVER))!.spec!;
  assert.equal([e.sequence, e.source], [1, "learned"], "the next sequence number wins");
  assert.equal((await sb.store.list<FDBEntry>("FDBEntry")).items.filter((x) => x.spec?.mac === MOVER).length, 1, "one entry: the old place is gone");
  // Node 1 now sends it to the tunnel; node 3 follows; node 2 delivers it locally.
  await eventually("node 1's bridge to send the mover to the tunnel port", () => bridgePortOf(1, MOVER) === `lt${storageId}`);
  const echos = inEchos(guests[2]);
  await eventually("node 3 and node 1 to reach the mover on node 2", () => ping(ns("sd"), MOVER_IP, { count: 1 }) === 1 && ping(ns("sb"), MOVER_IP, { count: 1 }) === 1);
  assert.ok(inEchos(guests[2]) > echos, "the moved guest answered");
  assert.ok(![undefined, `lt${storageId}`].includes(bridgePortOf(2, MOVER)), "node 2's bridge holds it on a pod port");
});

test("flap freezing: a MAC moving between nodes more often than the limit is frozen where it is, logged, and moves again after the hold", async () => {
  // The mover is on node 2 (one move). A guest with the same MAC on node 1 too: each side's announcement pulls it.
  guests[1] = guestBehind("sa", "m1b", MOVER, `${MOVER_IP}/24`);
  const announce = (k: 1 | 2) => sendGratuitousArp(guests[k], MOVER, MOVER_IP, 1, "gst");
  // Talking to it keeps its entry from ageing out (the age is short here) wherever it is.
  const talker = spawn("ip", ["netns", "exec", ns("sb"), "ping", "-n", "-q", "-i", "0.3", MOVER_IP], { stdio: "ignore" });
  try {
    // Second move (to node 1): within the limit.
    await sleep(1100); // the datapath reports a (MAC, address) at most once a second per node
    announce(1);
    await eventually("the second move, to node 1", async () => (await fdbEntry(MOVER))?.spec?.node === "node-1");
    assert.is((await fdbEntry(MOVER))!.spec!.sequence, 2);
    // Third move within the window: more than 2, so it is frozen where it is (node 1).
    await sleep(1100);
    announce(2);
    await eventually("the entry to be frozen", async () => !!(await fdbEntry(MOVER))?.spec?.frozenUntil);
    const frozen = (await fdbEntry(MOVER))!.spec!;
    assert.equal([frozen.node, frozen.sequence], ["node-1", 2], "not moved");
    // The agent that saw the move it refused says so (a warning naming the MAC).
    const logs = [1, 2, 3].map((k) => readFileSync(join(sb.dir, `node-${k}`, "agent.log"), "utf8")).join("\n").split("\n");
    const warned = logs.filter((l) => l.includes("a MAC flaps between nodes: frozen where it is"));
    assert.ok(warned.some((l) => l.includes(MOVER)), `an agent logged the flapping MAC:\n${warned.join("\n")}`);
    // During the hold, announcements from node 2 are ignored.
    await sleep(1100);
    announce(2);
    await sleep(800);
    assert.equal([(await fdbEntry(MOVER))!.spec!.node, (await fdbEntry(MOVER))!.spec!.sequence], ["node-1", 2], "held");
    assert.is(bridgePortOf(3, MOVER), `lt${storageId}`);
    // After the hold, the next announcement moves it again.
    await sleep(Math.max(0, Date.parse(frozen.frozenUntil!) - Date.now()) + 100);
    announce(2);
    await eventually("a move after the hold", async () => (await fdbEntry(MOVER))?.spec?.node === "node-2");
    assert.is((await fdbEntry(MOVER))!.spec!.sequence, 3);
  } finally {
    talker.kill("SIGKILL");
    removeGuest(guests[1]);
    removeGuest(guests[2]);
  }
});

test("DEL removes an endpoint's Neighbors and FDBEntry, and every node forgets its MAC", async () => {
  const mac = await macOf("sd");
  const addresses = P("sd").addresses;
  await sb.deletePod("vms", "sd");
  await eventually("sd's entries to go", async () => !(await fdbEntry(mac)) && (await Promise.all(addresses.map(neighbor))).every((n) => !n));
  await eventually("node 1's bridge to forget sd", () => bridgePortOf(1, mac) === undefined && bridgeNeighbourOf(1, addresses[0]) === undefined);
});

t.run();
