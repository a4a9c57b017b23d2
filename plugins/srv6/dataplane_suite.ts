/**
 * The srv6 dataplane with real packets: a 3-node cluster of network
 * namespaces on an IPv6 fabric, pods in their own namespaces, desired
 * states built by hand. Needs root (skipped otherwise, with the reason).
 * Run once per backend by dataplane_kernel_test.ts and dataplane_bpf_test.ts.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DeniedDestination, NodeDesiredState } from "../../core/mod.ts";
import { Srv6Dataplane } from "./dataplane.ts";
import { readLinks, readProxies } from "./kernel.ts";
import { ipv6Sid, type Backend } from "./plan.ts";
import { noSeg6Reason } from "./kernel_config.ts";
import { captureFabric, inEchos, inNs, isRoot, ping, pingAsync, sh, TestCluster, type TestExternal, type TestNetwork, type TestPod, podMtu } from "./testing.ts";
import {
  sendSpoofedEcho, sendToSid, startPeerServer, startTcpServer, tcpConnect, tcpConnectAsync, tcpPeer, tcpPeerAsync, waitListening,
} from "./probes.ts";

/** The suite for one backend (kernel: seg6 lwtunnel; bpf: tc-eBPF on the underlay). */
export function dataplaneSuite(backend: Backend): void {
  const t = suite(`srv6 dataplane (namespaces, ${backend} backend)`);
  const seg6Missing = backend === "kernel" ? noSeg6Reason() : undefined;
  const runs = isRoot && !seg6Missing;
  const test = runs ? t : t.skip;
  if (!isRoot) console.log(`srv6 dataplane (${backend} backend) tests skipped: they need root to create network namespaces`);
  else if (seg6Missing) console.log(`srv6 dataplane (kernel backend) tests skipped: ${seg6Missing}`);
  const open = (node: string, netns: string) => Srv6Dataplane.open({ node, netns, backend, bpffs: backend === "bpf" ? cluster.bpffs() : undefined });

  const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
  const blue: TestNetwork = { name: "blue", id: 2, v4: 2, v6: 2 };
  // green reuses red's IPv4 subnet: overlapping networks on the same nodes.
  const green: TestNetwork = { name: "green", id: 3, v4: 1, v6: 3 };
  const networks = [red, blue, green];
  const pods: TestPod[] = [
    { name: "ra", node: 1, network: "red", host: 10 },
    { name: "re", node: 1, network: "red", host: 50 },
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
  let externals: TestExternal[] = [];
  /** Per network, the prefixes inside its own subnets closed to its own pods (an anonymous network, a Deny). */
  let denied: Record<string, DeniedDestination[]> = {};
  const state = (n: number, nets = networks, ps = pods): NodeDesiredState => {
    const s = cluster.desiredState(n, nets, ps, paths, encapsulation, externals);
    for (const net of s.networks) if (denied[net.name]) net.denied = denied[net.name];
    return s;
  };
  // An external network, and a host of it on the fabric. It routes the pod subnets to node 1 (for SNAT off and ingress)
  // from its corp addresses; it also has addresses outside corp (OUTSIDE4/6), on the underlay subnet.
  const corp: TestExternal = { name: "corp", prefixes: ["192.0.2.0/24", "fd00:e0::/64"] };
  const EXT4 = "192.0.2.5";
  const EXT6 = "fd00:e0::5";
  const OUTSIDE4 = "198.51.100.99";
  const OUTSIDE6 = "fd00:ffff::99";
  let ext = "";
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

  /** An IPv4 ICMP input counter of a namespace (/proc/net/snmp `Icmp:` line). */
  function icmpIn(netns: string, name: string): number {
    const lines = inNs(netns, ["cat", "/proc/net/snmp"]).out.split("\n").filter((l) => l.startsWith("Icmp:"));
    return Number(lines[1].split(/\s+/)[lines[0].split(/\s+/).indexOf(name)]);
  }

  /**
   * Probes that must all fail (no echo reply, no connection), run side by
   * side: each one waits for its own timeout, so running them one by one
   * would add up to seconds.
   */
  async function blocked(probes: Record<string, Promise<number | boolean | string | undefined>>): Promise<void> {
    const labels = Object.keys(probes);
    const results = await Promise.all(Object.values(probes));
    results.forEach((r, i) => assert.ok(r === 0 || r === false || r === undefined, `${labels[i]}: got through (${r})`));
  }

  t.before(async () => {
    if (!runs) return;
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
      const dp = await open(`node-${n}`, cluster.node(n));
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
    ext = cluster.addFabricHost("corp", [`${EXT4}/24`, `${EXT6}/64`, `${OUTSIDE4}/24`, `${OUTSIDE6}/64`], [
      ["10.0.0.0/8", cluster.underlayAddress4(1), EXT4],
      ["fd00:1::/32", cluster.underlayAddress(1), EXT6],
      ["fd00:2::/32", cluster.underlayAddress(1), EXT6],
    ]);
    startPeerServer(cluster, ext, EXT4, 7100);
    startPeerServer(cluster, ext, EXT6, 7100);
    await Promise.all([waitListening(ext, EXT4, 7100), waitListening(ext, EXT6, 7100)]);
  }

  t.after(async () => {
    if (!runs) return;
    for (const dp of dps) await dp.close();
    cluster.destroy();
  });

  test("reports the kernel's capabilities and the backend it runs", async () => {
    const caps = await dps[0].capabilities();
    assert.is(caps.backend, backend);
    // The probes agree with the kernel's build: seg6 exactly where CONFIG_IPV6_SEG6_LWTUNNEL is set.
    assert.is(caps.seg6, noSeg6Reason() === undefined);
    assert.is(caps.seg6local, noSeg6Reason() === undefined);
    assert.is(caps.nexthopObjects, true);
    assert.is(caps.bpf, true);
    assert.is(caps.overlappingSubnets, true);
    assert.is(typeof caps.vrf, "boolean");
    assert.equal(caps.forwarding, backend === "bpf" ? ["routed", "bridged", "underlay"] : ["routed", "underlay"]);
  });

  test("pods ping each other across nodes in IPv4 and IPv6", () => {
    assert.is(ping(ns("ra"), v4("rb")), 2, "ra → rb IPv4");
    assert.is(ping(ns("ra"), v6("rb")), 2, "ra → rb IPv6");
    assert.is(ping(ns("rc"), v4("ra")), 2, "rc → ra IPv4");
    assert.is(ping(ns("rb"), v6("rc")), 2, "rb → rc IPv6");
  });

  test("two networks without a path deliver nothing, spoofed or aimed at the other's SID", async () => {
    const before4 = inEchos(ns("bb"), 4);
    const before6 = inEchos(ns("bb"), 6);
    await blocked({
      "red → blue IPv4 across nodes": pingAsync(ns("ra"), v4("bb")),
      "red → blue IPv6 across nodes": pingAsync(ns("ra"), v6("bb")),
      "red → blue on the same node": pingAsync(ns("ra"), v4("ba")),
    });
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

  test("pods do not reach the node's own addresses, except their own gateway", async () => {
    // Counted where the echo requests would arrive: the node's own ICMP counters.
    const node = cluster.node(1);
    const v4Before = inEchos(node, 4);
    const v6Before = inEchos(node, 6);
    await blocked({
      "node 1's IPv6 underlay address": pingAsync(ns("ra"), cluster.underlayAddress(1)),
      "node 1's IPv4 underlay address": pingAsync(ns("ra"), cluster.underlayAddress4(1)),
      "blue's IPv4 gateway": pingAsync(ns("ra"), "10.2.1.1"),
      "blue's IPv6 gateway": pingAsync(ns("ra"), "fd00:2:0:1::1"),
    });
    assert.is(inEchos(node, 6), v6Before, "node 1's underlay address and blue's IPv6 gateway are not reachable from red");
    assert.is(inEchos(node, 4), v4Before, "blue's IPv4 gateway is not reachable from red");
    // Control: red's own gateway receives the pod's echo requests.
    ping(ns("ra"), "10.1.1.1");
    assert.is(inEchos(node, 4), v4Before + 2, "red's gateway is reachable from red");
  });

  test("a pod pings its own gateway in both families, also where another network uses the same gateway address", () => {
    assert.is(ping(ns("ra"), "10.1.1.1"), 2, "red's IPv4 gateway on node 1");
    assert.is(ping(ns("ra"), "fd00:1:0:1::1"), 2, "red's IPv6 gateway on node 1");
    assert.is(ping(ns("ra"), "fe80::1%eth0"), 2, "the link-local IPv6 gateway");
    assert.is(ping(ns("rb"), "10.1.2.1"), 2, "red's IPv4 gateway on node 2");
    // green's gateway on node 1 is 10.1.1.1 too (overlapping subnets): the answer must reach green's pod.
    assert.is(ping(ns("ga"), "10.1.1.1"), 2, "green's IPv4 gateway on node 1");
    assert.is(ping(ns("ga"), "fd00:3:0:1::1"), 2, "green's IPv6 gateway on node 1");
  });

  test("a TCP service on the gateway address answers the pods of each network that has it", async () => {
    startTcpServer(cluster, cluster.node(1), "10.1.1.1", 7001);
    await waitListening(cluster.node(1), "10.1.1.1", 7001);
    assert.ok(tcpConnect(ns("ra"), "10.1.1.1", 7001), "red pod");
    assert.ok(tcpConnect(ns("ga"), "10.1.1.1", 7001), "green pod, same gateway address on another bridge");
    assert.not.ok(tcpConnect(ns("ba"), "10.1.1.1", 7001), "blue pod: not its gateway");
  });

  test("the node itself reaches its local pods (kubelet probes): ping and TCP, both families, with the replies", async () => {
    const node = cluster.node(1);
    startTcpServer(cluster, ns("ra"), v4("ra"), 7003);
    startTcpServer(cluster, ns("ra"), v6("ra"), 7003);
    await Promise.all([waitListening(ns("ra"), v4("ra"), 7003), waitListening(ns("ra"), v6("ra"), 7003)]);
    assert.is(ping(node, v4("ra")), 2, "node 1 → red pod IPv4");
    assert.is(ping(node, v6("ra")), 2, "node 1 → red pod IPv6");
    assert.ok(tcpConnect(node, v4("ra"), 7003), "node 1 → red pod TCP over IPv4");
    assert.ok(tcpConnect(node, v6("ra"), 7003), "node 1 → red pod TCP over IPv6");
    assert.is(ping(node, v4("ba")), 2, "node 1 → blue pod IPv4: every network");
    assert.is(ping(node, v6("ba")), 2, "node 1 → blue pod IPv6");
    assert.is(ping(cluster.node(2), v4("rb")), 2, "node 2 → its red pod");
    // green overlaps red in IPv4 on node 1 (both 10.1.1.0/24): red has the lower id, so 10.1.1.x is red's from the node.
    // green's IPv6 block overlaps nothing: reachable.
    assert.is(ping(node, v6("ga")), 2, "node 1 → green pod IPv6");
    const green4 = inEchos(ns("ga"), 4);
    assert.is(ping(node, v4("ga")), 0, "node 1 → 10.1.1.11 looks in red's block, where there is no such pod");
    assert.is(inEchos(ns("ga"), 4), green4, "green's pod saw none of it");
  });

  test("the node's path to its pods is open neither to other networks' pods nor to the underlay", async () => {
    // The listeners on red's pod were started by the previous test.
    const echos4 = inEchos(ns("ra"), 4);
    const echos6 = inEchos(ns("ra"), 6);
    await blocked({
      "blue pod → red pod IPv4": pingAsync(ns("ba"), v4("ra")),
      "blue pod → red pod IPv6": pingAsync(ns("ba"), v6("ra")),
      "blue pod → red pod TCP IPv4": tcpConnectAsync(ns("ba"), v4("ra"), 7003),
      "blue pod → red pod TCP IPv6": tcpConnectAsync(ns("ba"), v6("ra"), 7003),
      // corp routes 10.0.0.0/8 and fd00:1::/32 to node 1: without a path, node 1 must not forward them in.
      "a host on the underlay → red pod IPv4 through node 1": pingAsync(ext, v4("ra")),
      "a host on the underlay → red pod IPv6 through node 1": pingAsync(ext, v6("ra")),
      "a host on the underlay → red pod TCP through node 1": tcpConnectAsync(ext, v4("ra"), 7003),
    });
    assert.is(inEchos(ns("ra"), 4), echos4, "no IPv4 echo request reached red's pod");
    assert.is(inEchos(ns("ra"), 6), echos6, "no IPv6 echo request reached red's pod");
    // Control: the underlay host does reach node 1 (from its underlay subnet address, which node 1 routes back to).
    assert.is(ping(ext, cluster.underlayAddress4(1), { from: OUTSIDE4 }), 2);
  });

  test("ICMP errors from the node reach the pod's own network, not an overlapping one's", () => {
    // A red pod claims green pod ga's IPv4 address (same block on node 1): the node reaches 10.1.1.11 in red's block.
    sh("ip", ["-n", ns("ra"), "addr", "add", `${v4("ga")}/32`, "dev", "eth0"]);
    // The node may remember that red's bridge had no such address (an earlier probe): ask again.
    const forget = () => sh("ip", ["-n", cluster.node(1), "neigh", "flush", "to", v4("ga")]);
    forget();
    try {
      const red0 = icmpIn(ns("ra"), "InDestUnreachs");
      // Green's table has no route there: the node answers "net unreachable" to 10.1.1.11 (green's).
      const r = inNs(ns("ga"), ["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "10.99.0.1"]);
      assert.match(r.out, /Unreachable/, `green's pod gets the error: ${r.out}`);
      assert.is(icmpIn(ns("ra"), "InDestUnreachs"), red0, "red's pod with the same address saw none of it");
    } finally {
      sh("ip", ["-n", ns("ra"), "addr", "del", `${v4("ga")}/32`, "dev", "eth0"]);
      forget();
    }
    const r6 = inNs(ns("ra"), ["ping", "-n", "-c", "1", "-W", "1", "fd00:99::1"]);
    assert.match(r6.out, /unreachable/i, `IPv6: ${r6.out}`);
  });

  test("a pod cannot send from an address it was not given", () => {
    const before = inEchos(ns("rb"), 4);
    sendSpoofedEcho(ns("ra"), "10.1.1.99", v4("rb"));
    assert.is(inEchos(ns("rb"), 4), before, "spoofed source dropped");
    sendSpoofedEcho(ns("ra"), v4("ra"), v4("rb"), 1);
    assert.is(inEchos(ns("rb"), 4), before + 1, "the same probe with the pod's own address arrives");
  });

  test("a pod cannot send IPv6 from an address it was not given", () => {
    // The pod claims a second address of its own block, as a compromised pod would: its echo requests must not leave the node.
    const spoofed = `fd00:1:0:1::99`;
    sh("ip", ["-n", ns("ra"), "addr", "add", `${spoofed}/128`, "dev", "eth0", "nodad"]);
    try {
      const before = inEchos(ns("rb"), 6);
      assert.is(ping(ns("ra"), v6("rb"), { from: spoofed }), 0, "no reply to the spoofed source");
      assert.is(inEchos(ns("rb"), 6), before, "spoofed IPv6 source dropped on the host side");
      assert.is(ping(ns("ra"), v6("rb"), { from: v6("ra") }), 2, "the same ping from the pod's own address is answered");
      assert.is(inEchos(ns("rb"), 6), before + 2);
    } finally {
      sh("ip", ["-n", ns("ra"), "addr", "del", `${spoofed}/128`, "dev", "eth0"]);
    }
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
        // kernel: make before break (new nexthops, routes switched to them, the old ones removed); bpf: map values change.
        if (backend === "kernel") assert.ok(r.added > 0 && r.changed > 0 && r.removed > 0, `node ${n}: ${JSON.stringify(r)}`);
        else assert.ok(r.changed > 0, `node ${n}: ${JSON.stringify(r)}`);
      }
      if (backend === "kernel") assert.match(sh("ip", ["-n", cluster.node(1), "nexthop"]), /encap seg6 mode encap segs 1/);
      const wire = await captureFabric(cluster, ["-c", "4", "ip6", "and", "dst", "net", "fd00:1ace::/32"], () => pingAsync(ns("ra"), v4("rb")));
      // Outer IPv6 to node 2's SID, next header 43: a type-4 SRH with that one segment, then the IPv4 packet.
      assert.match(wire, new RegExp(`next-header Routing \\(43\\).*\\) ${cluster.underlayAddress(1)} > ${cluster.sid(2, red)}: RT6 \\(len=2, type=4, segleft=0, last-entry=0[^)]*\\[0\\]${cluster.sid(2, red)}\\) IP `), wire);
      assert.is(ping(ns("ra"), v4("rb")), 2, "IPv4 over an SRH");
      assert.is(ping(ns("ra"), v6("rc")), 2, "IPv6 over an SRH");
      const srhMtu = podMtu(1500, "SRH");
      assert.is(ping(ns("ra"), v4("rb"), { count: 2, size: srhMtu - 28, df: true }), 2, "DF packet at the SRH pod MTU");
    } finally {
      encapsulation = "Reduced";
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
    }
    if (backend === "kernel") assert.match(sh("ip", ["-n", cluster.node(1), "nexthop"]), /encap seg6 mode encap\.red/);
  });

  test("on the wire: H.Encaps.Red to the peer's SID, next header 4 for IPv4 and 41 for IPv6 (its End.DT6 SID)", async () => {
    const wire = await captureFabric(cluster, ["-c", "8", "ip6", "and", "dst", "net", "fd00:1ace::/32"], async () => {
      await pingAsync(ns("ra"), v4("rb"));
      await pingAsync(ns("ra"), v6("rb"));
    });
    const sid = cluster.sid(2, red);
    const from = cluster.underlayAddress(1);
    assert.match(wire, new RegExp(`next-header IPIP \\(4\\).*\\) ${from} > ${sid}: IP \\(tos[\\s\\S]*?length 84\\)\\s*${v4("ra")} > ${v4("rb")}: ICMP echo request`), wire);
    assert.match(wire, new RegExp(`next-header IPv6 \\(41\\).*\\) ${from} > ${ipv6Sid(sid)}: IP6 \\(.*?payload length: 64\\) ${v6("ra")} > ${v6("rb")}: \\[icmp6 sum ok\\] ICMP6, echo request`), wire);
  });

  test("a second identical apply makes zero writes, also from a fresh dataplane", async () => {
    for (let n = 1; n <= 3; n++) {
      const r = await dps[n - 1].apply(state(n));
      assert.is(r.writes, 0, `node ${n}: ${JSON.stringify(r)}`);
    }
    const fresh = await open("node-1", cluster.node(1));
    try {
      const r = await fresh.apply(state(1));
      assert.is(r.writes, 0, JSON.stringify(r));
      assert.is(r.added + r.changed + r.removed, 0);
    } finally {
      await fresh.close();
    }
  });

  /** Applies `st` to node 1 from a new process (apply_cli.ts), as a restarted agent does; returns its report. */
  /** The command line of apply_cli.ts applying `file` to node 1 with this suite's backend. */
  function applyCliArgs(file: string): string[] {
    const cli = fileURLToPath(new URL("./apply_cli.ts", import.meta.url));
    return ["--import", "tsx", cli, cluster.node(1), file, "--backend", backend, ...(backend === "bpf" ? ["--bpffs", cluster.bpffs()] : [])];
  }

  /** Runs apply_cli.ts on `file` in a process of its own; its stdout (the ApplyReport), after checking it exited 0. */
  async function runApplyCli(file: string): Promise<string> {
    const child = spawn(process.execPath, applyCliArgs(file), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((r) => child.on("exit", r));
    assert.is(code, 0, err);
    return out;
  }

  async function applyFromFreshProcess(st: NodeDesiredState): Promise<{ added: number; changed: number; removed: number; writes: number }> {
    const dir = mkdtempSync(join(tmpdir(), "lace-srv6-"));
    try {
      const file = join(dir, "state.json");
      writeFileSync(file, JSON.stringify(st));
      return JSON.parse(await runApplyCli(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("a pod attached before the state lists it sends at once, from its own addresses only; fresh processes change nothing after its ADD and DEL", async () => {
    const rd: TestPod = { name: "rd", node: 1, network: "red", host: 40 };
    const ipv4 = "10.1.1.40";
    const n1 = cluster.node(1);
    await dps[0].attachPod({
      netns: cluster.addPodNs(rd.name), ifname: "eth0", hostIfname: "h-rd", network: "red", ...cluster.podAddresses(rd, red), mtu: POD_MTU,
    });
    try {
      // attachPod wrote its (port, address) pairs over netfilter netlink: nft reads back exactly those keys.
      const sets = sh("ip", ["netns", "exec", n1, "nft", "list", "table", "bridge", "lace"]);
      assert.match(sets, /"h-rd" \. 10\.1\.1\.40/);
      assert.match(sets, /"h-rd" \. fd00:1:0:1::40/);
      assert.match(sh("ip", ["-n", n1, "-d", "link", "show", "h-rd"]), /group 6862/, "the port is in lace-cni's interface group");
      assert.is(ping(ns("rd"), v4("rb")), 2, "IPv4 from the pod's own address, before any apply lists it");
      assert.is(ping(ns("rd"), v6("rb")), 2, "IPv6 likewise");
      const before = inEchos(ns("rb"), 4);
      sendSpoofedEcho(ns("rd"), "10.1.1.41", v4("rb"));
      assert.is(inEchos(ns("rb"), 4), before, "a spoofed source from the new pod is dropped");
      sendSpoofedEcho(ns("rd"), ipv4, v4("rb"), 1);
      assert.is(inEchos(ns("rb"), 4), before + 1);

      // A state taken before the ADD (it does not list the pod) reloads the ruleset: the pod keeps sending.
      paths = [{ from: "red", to: "blue" }];
      try {
        assert.ok((await dps[0].apply(state(1))).writes > 0, "a changed ruleset was loaded");
        assert.match(sh("ip", ["netns", "exec", n1, "nft", "list", "table", "bridge", "lace"]), /"h-rd" \. 10\.1\.1\.40/, "its pairs survived the reload");
        assert.is(ping(ns("rd"), v4("rb")), 2, "the pod attached mid-apply still sends");
      } finally {
        paths = [];
        await dps[0].apply(state(1));
      }

      // The agent's next state lists the pod; a fresh process applying it then writes nothing.
      const withRd = state(1, networks, [...pods, rd]);
      const listing = await dps[0].apply(withRd);
      assert.is(listing.writes, 0, `attach wrote all the pod needs: the state that lists it writes nothing (${JSON.stringify(listing)})`);
      assert.match(sh("ip", ["-n", n1, "route", "show", "table", "all", "10.1.1.40"]), /10\.1\.1\.40 dev h-rd .*scope link src 10\.1\.1\.1/, "its route, from attach");
      for (let i = 0; i < 2; i++) {
        const r = await applyFromFreshProcess(withRd);
        assert.is(r.writes, 0, `fresh process ${i + 1}: ${JSON.stringify(r)}`);
        assert.is(r.added + r.changed + r.removed, 0);
      }
      assert.is(ping(ns("rd"), v4("rb")), 2, "the pod still talks");
      // CNI DEL as the agent does it: the state without the endpoint may be applied while the pod's
      // port still exists. Its route and pairs stay with the port (a pod attached while a state was on
      // its way looks the same); DEL removes the port, and nothing of it may linger, or every later
      // fresh process would find something stale to remove.
      assert.is((await dps[0].apply(state(1))).removed, 0, "kept while its port exists");
      await dps[0].detachPod({ hostIfname: "h-rd" });
      assert.not.match(sh("ip", ["-n", n1, "route", "show", "table", "all", "10.1.1.40"]), /h-rd/, "the route went with the port");
      assert.not.match(sh("ip", ["netns", "exec", n1, "nft", "list", "table", "bridge", "lace"]), /h-rd/, "and its pairs with DEL");
      for (let i = 0; i < 3; i++) {
        const r = await applyFromFreshProcess(state(1));
        assert.is(r.writes, 0, `fresh process after DEL ${i + 1}: ${JSON.stringify(r)}`);
        assert.is(r.added + r.changed + r.removed, 0);
      }
    } finally {
      await dps[0].detachPod({ hostIfname: "h-rd" });
      await dps[0].apply(state(1));
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
    await Promise.all([waitListening(ns("bb"), v4("bb"), 7000), waitListening(ns("ra"), v4("ra"), 7000), waitListening(ns("ba"), v4("ba"), 7000)]);
    assert.ok(tcpConnect(ns("ra"), v4("bb"), 7000), "red → blue across nodes connects");
    assert.ok(tcpConnect(ns("ra"), v4("ba"), 7000), "red → blue on the same node connects");
    assert.is(ping(ns("ra"), v6("bb")), 2, "red → blue IPv6 echo and its replies flow");
    await blocked({
      "blue → red across nodes: new connection dropped": tcpConnectAsync(ns("bb"), v4("ra"), 7000),
      "blue → red on the same node: new connection dropped": tcpConnectAsync(ns("ba"), v4("ra"), 7000),
      "blue → red IPv6 echo is a new flow: dropped": pingAsync(ns("bb"), v6("ra")),
    });
    paths = [];
    for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
    assert.not.ok(tcpConnect(ns("ra"), v4("bb"), 7000), "without the path, red → blue is closed again");
  });

  /** The TTL of one echo reply, or undefined when none came back (64: delivered over L2; 63: routed by the node). */
  function replyTtl(from: string, to: string): number | undefined {
    const m = /ttl=(\d+)/.exec(inNs(ns(from), ["ping", "-n", "-c", "1", "-W", "1", to]).out);
    return m ? Number(m[1]) : undefined;
  }

  /** Which pod ports of node 1 are isolated, and the proxy entries on red's bridge. */
  async function sameNodeKernel(): Promise<{ isolated: string[]; proxies: string[] }> {
    const nl = dps[0].netlink;
    const links = await readLinks(nl);
    const isolated = [...links.byName.values()].filter((l) => l.name.startsWith("h-") && l.isolated).map((l) => l.name).sort();
    const proxies = (await readProxies(nl, links, new Set(["lb1"]))).map((p) => p.ip).sort();
    return { isolated, proxies };
  }

  test("same node: one network's pods talk over the bridge; a Deny inside it or an anonymous network routes them through the node, which enforces it", async () => {
    const applyAll = async () => {
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
    };
    assert.is(replyTtl("ra", v4("re")), 64, "red → red on one node, IPv4: over the bridge");
    assert.is(replyTtl("ra", v6("re")), 64, "red → red on one node, IPv6: over the bridge");
    assert.equal(await sameNodeKernel(), { isolated: [], proxies: [] });

    try {
      await deniedRows(applyAll);
    } finally {
      denied = {};
      await applyAll();
    }
    assert.equal(await sameNodeKernel(), { isolated: [], proxies: [] });
    // The pods forgot the bridge's answers (the apply flushed what they had learned): L2 at once.
    assert.is(replyTtl("ra", v4("re")), 64, "over the bridge again, IPv4");
    assert.is(replyTtl("ra", v6("re")), 64, "over the bridge again, IPv6");
  });

  async function deniedRows(applyAll: () => Promise<void>): Promise<void> {
    // A Deny for re's addresses (inside red's own block on node 1).
    denied = { red: [{ destination: `${v4("re")}/32`, policy: "deny-re" }, { destination: `${v6("re")}/128`, policy: "deny-re" }] };
    await applyAll();
    assert.equal(await sameNodeKernel(), { isolated: ["h-ra", "h-re"], proxies: [v6("ra"), v6("re")].sort() }, "red's ports isolated, the bridge answers NDP for its pods");
    startTcpServer(cluster, ns("re"), v4("re"), 7001);
    startTcpServer(cluster, ns("ra"), v4("ra"), 7001);
    await Promise.all([waitListening(ns("re"), v4("re"), 7001), waitListening(ns("ra"), v4("ra"), 7001)]);
    await blocked({
      "red → the denied re on the same node, IPv4": pingAsync(ns("ra"), v4("re")),
      "red → the denied re on the same node, IPv6": pingAsync(ns("ra"), v6("re")),
      "red → the denied re on the same node, TCP": tcpConnectAsync(ns("ra"), v4("re"), 7001),
      "red → the denied re from another node": pingAsync(ns("rb"), v4("re")),
    });
    assert.is(replyTtl("re", v4("ra")), 63, "re → ra (not denied): routed through the node, IPv4");
    assert.is(replyTtl("re", v6("ra")), 63, "re → ra (not denied): routed through the node, IPv6");
    assert.ok(tcpConnect(ns("re"), v4("ra"), 7001), "re opens a TCP connection to ra: the replies return");
    assert.is(ping(ns("ra"), v4("rb")), 2, "ra → rb across nodes is not denied");
    assert.is(ping(ns("ba"), v4("ra")), 0, "blue → red still has no path");

    // An anonymous network: everything inside its subnets is closed to its own pods.
    denied = { red: [{ destination: "10.1.0.0/16", policy: null }, { destination: "fd00:1::/32", policy: null }] };
    await applyAll();
    await blocked({
      "ra → re, IPv4": pingAsync(ns("ra"), v4("re")), "re → ra, IPv4": pingAsync(ns("re"), v4("ra")),
      "ra → re, IPv6": pingAsync(ns("ra"), v6("re")), "re → ra, IPv6": pingAsync(ns("re"), v6("ra")),
      "ra → re, TCP": tcpConnectAsync(ns("ra"), v4("re"), 7001), "ra → rb across nodes": pingAsync(ns("ra"), v4("rb")),
    });
    assert.is(ping(ns("ra"), v4("ra").replace(/\.\d+$/, ".1")), 2, "a pod of an anonymous network still reaches its gateway");
  }

  test("egress to an external network: an allowed path reaches it through the underlay, source NATed to the node", async () => {
    externals = [corp];
    paths = [{ from: "red", to: "corp" }];
    try {
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
      const again = await dps[0].apply(state(1));
      assert.is(again.writes, 0, `egress state re-applied: ${JSON.stringify(again)}`);
      assert.is(ping(ns("ra"), EXT4), 2, "red → corp IPv4");
      assert.is(ping(ns("ra"), EXT6), 2, "red → corp IPv6");
      assert.is(tcpPeer(ns("ra"), EXT4, 7100), cluster.underlayAddress4(1), "IPv4 source seen outside: node 1's address");
      assert.is(tcpPeer(ns("ra"), EXT6, 7100), cluster.underlayAddress(1), "IPv6 source seen outside: node 1's underlay address");
      assert.is(tcpPeer(ns("rb"), EXT6, 7100), cluster.underlayAddress(2), "from node 2: node 2's address");
      await blocked({
        // green overlaps red on node 1 (same IPv4 block) and has no path: nothing leaves.
        "green → corp: no path": pingAsync(ns("ga"), EXT4),
        "blue → corp IPv6: no path": pingAsync(ns("ba"), EXT6),
        "blue → corp TCP: no path": tcpPeerAsync(ns("ba"), EXT4, 7100),
        // The path is one way: corp cannot open connections to red's pods.
        "corp → red IPv4: not allowed": pingAsync(ext, v4("ra")),
        "corp → red IPv6: not allowed": pingAsync(ext, v6("ra")),
      });
    } finally {
      paths = [];
      externals = [];
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
    }
    assert.is(ping(ns("ra"), EXT4), 0, "without the path, red → corp is closed again");
  });

  test("egress with SNAT off: the external network sees the pod's own address", async () => {
    externals = [{ ...corp, snat: false }];
    paths = [{ from: "red", to: "corp" }];
    try {
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
      assert.is(tcpPeer(ns("ra"), EXT4, 7100), v4("ra"));
      assert.is(tcpPeer(ns("ra"), EXT6, 7100), v6("ra"));
      assert.is(ping(ns("ra"), EXT4), 2);
    } finally {
      paths = [];
      externals = [];
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
    }
  });

  test("ingress from an external network reaches a network only where a path from it is allowed", async () => {
    externals = [corp];
    paths = [{ from: "corp", to: "red" }];
    try {
      assert.is(ping(ext, v4("ra")), 0, "before the path: nothing");
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
      assert.is(ping(ext, v4("ra")), 2, "corp → red IPv4");
      assert.is(ping(ext, v6("ra")), 2, "corp → red IPv6");
      const echos4 = inEchos(ns("ra"), 4);
      const echos6 = inEchos(ns("ra"), 6);
      await blocked({
        "corp → blue: no path": pingAsync(ext, v4("ba")),
        "corp → blue IPv6: no path": pingAsync(ext, v6("ba")),
        // Ingress is classified by source address: the same host from an address outside corp is not corp.
        "a source outside corp → red IPv4": pingAsync(ext, v4("ra"), { from: OUTSIDE4 }),
        "a source outside corp → red IPv6": pingAsync(ext, v6("ra"), { from: OUTSIDE6 }),
        "red → corp is a new connection on a reply-only path: dropped": pingAsync(ns("ra"), EXT4),
        "red → corp IPv6, the same": pingAsync(ns("ra"), EXT6),
      });
      // Not even the requests from outside corp arrived (their replies would have no route anyway).
      assert.is(inEchos(ns("ra"), 4), echos4, "no IPv4 echo request from outside corp reached red's pod");
      assert.is(inEchos(ns("ra"), 6), echos6, "no IPv6 echo request from outside corp reached red's pod");
    } finally {
      paths = [];
      externals = [];
      for (let n = 1; n <= 3; n++) await dps[n - 1].apply(state(n));
    }
    assert.is(ping(ext, v4("ra")), 0, "without the path, corp → red is closed again");
  });

  test("continuous ping while a fresh process rebuilds the node from the same state: zero lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lace-srv6-"));
    try {
      const file = join(dir, "state.json");
      writeFileSync(file, JSON.stringify(state(1)));
      // Pings until stopped (at most 30 s), so it covers the whole rebuild however long the new process takes to start.
      const pinger = cluster.start(ns("ra"), ["ping", "-n", "-q", "-i", "0.01", "-c", "3000", "-W", "1", v4("rb")]);
      let out = "";
      pinger.stdout!.on("data", (d) => (out += d));
      const pingDone = new Promise((r) => pinger.on("exit", r));
      await new Promise((r) => setTimeout(r, 300));
      const report = await runApplyCli(file);
      assert.is(JSON.parse(report).writes, 0, report);
      await new Promise((r) => setTimeout(r, 200));
      // SIGINT: ping prints its summary and exits.
      process.kill(pinger.pid!, "SIGINT");
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
}
