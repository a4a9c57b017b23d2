/**
 * End to end, as root, through `lace sandbox`'s machinery: a three-node
 * emulated cluster with the embedded store, real agents (one per node
 * namespace) and pods set up by the real CNI executable. One sandbox for
 * the suite; each test checks real packets. Skipped without root. Run once
 * per srv6 backend by sandbox_bpf_test.ts and sandbox_kernel_test.ts.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Allocation, NetworkEndpoint, Resource } from "../../core/mod.ts";
import { type MatrixEntry, Sandbox, type SandboxPod } from "./sandbox.ts";
import { sh, sleep } from "./processes.ts";

import { noSeg6Reason } from "../../plugins/srv6/kernel_config.ts";

/** The suite on one srv6 backend: the agents run `--backend <backend>`. */
export function sandboxSuite(backend: "kernel" | "bpf"): void {
  const isRoot = process.getuid?.() === 0;
  const t = suite(`sandbox (end to end, ${backend} backend)`);
  const seg6Missing = backend === "kernel" ? noSeg6Reason() : undefined;
  const runs = isRoot && !seg6Missing;
  const test = runs ? t : t.skip;
  if (!isRoot) console.log(`sandbox end-to-end tests (${backend} backend) skipped: they need root to create network namespaces`);
  else if (seg6Missing) console.log(`sandbox end-to-end tests (kernel backend) skipped: ${seg6Missing}`);

  const L = "lace-cni.io/v1alpha1";
  const SEGMENT_CONFIG = fileURLToPath(new URL("../../examples/plugins/segment/testdata/lace.yaml", import.meta.url));
  const net = (name: string, v4: string, v6?: string, anonymous = false): Resource => ({
    apiVersion: L, kind: "Network", metadata: { name },
    spec: {
      type: "l3", anonymous, ipv4Subnet: { prefix: v4, hostLocalPrefixLength: 24 },
      ...(v6 ? { ipv6Subnet: { prefix: v6, hostLocalPrefixLength: 64 } } : {}),
    },
  });
  const bind = (network: string): Resource => ({
    apiVersion: L, kind: "NetworkBindingPolicy", metadata: { name: `bind-${network}` },
    spec: { network, priority: 100, matchKind: "Pod", selector: { matchLabels: { net: network } } },
  });
  const route = (name: string, from: string, to: string, action: "Allow" | "Deny" = "Allow", priority = 100, prefixes?: string[]): Resource => ({
    apiVersion: L, kind: "NetworkRoutingPolicy", metadata: { name },
    spec: { priority, from: { networks: [from] }, to: { networks: [to], ...(prefixes ? { prefixes } : {}) }, action },
  });
  const pod = (name: string, network: string, node: number, annotations?: Record<string, string>): Resource => ({
    apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "e2e", labels: { net: network }, ...(annotations ? { annotations } : {}) },
    spec: { nodeName: `node-${node}`, containers: [{ name: "c", image: "pause" }] },
  });

  const echo = (p: Resource): Resource => ({ ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, app: "echo" } } });
  const bindService = (network: string): Resource => ({
    apiVersion: L, kind: "NetworkBindingPolicy", metadata: { name: "echo-service" },
    spec: { network, priority: 100, matchKind: "Service", selector: { matchLabels: { svc: "echo" } } },
  });

  let sb: Sandbox;
  const P = (name: string): SandboxPod => sb.pod("e2e", name)!;
  const v4 = (name: string) => P(name).addresses.find((a) => !a.includes(":"))!;
  const v6 = (name: string) => P(name).addresses.find((a) => a.includes(":"))!;

  /** Pings until the result is `want` (policy changes take an apply to arrive), or gives up after 15 s. */
  function eventually(from: string, address: string, want: boolean): Promise<boolean> {
    return until(want, () => sb.ping(P(from), address));
  }

  /** Probes until the result is `want`, or gives up after 15 s. */
  async function until(want: boolean, probe: () => Promise<boolean>): Promise<boolean> {
    const end = Date.now() + 15_000;
    for (;;) {
      const got = await probe();
      if (got === want || Date.now() > end) return got;
      await sleep(200);
    }
  }

  /** What the dataplane put in a node's kernel, as `ip` prints it. */
  function kernelState(node: string): string {
    const ns = sb.nodeNs(node);
    return [["route", "show", "table", "all"], ["-6", "route", "show", "table", "all"], ["nexthop", "show"], ["rule", "show"], ["-6", "rule", "show"], ["-br", "addr", "show"], ["-br", "link", "show"]]
      .map((args) => sh("ip", ["-n", ns, ...args])).join("\n");
  }

  const mismatches = (m: MatrixEntry[]) => m.filter((e) => e.expected !== e.observed);

  // A crashed run still removes its namespaces and processes.
  process.on("exit", () => {
    if (sb) Sandbox.downFromRecord(sb.dir);
  });

  t.before(async () => {
    if (!runs) return;
    try {
      // The agents and the controller load the example third-party type `segment` (examples/plugins/segment) too.
      sb = await Sandbox.up({ nodes: 3, prefix: `le${backend[0]}${process.pid.toString(36)}-`, backend, config: SEGMENT_CONFIG });
      await sb.apply([
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "e2e" } },
        { apiVersion: L, kind: "Topology", metadata: { name: "default" }, spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48, encapsulation: "Reduced", mtu: 0 } },
        net("red", "10.41.0.0/16", "fd00:41::/48"), net("blue", "10.42.0.0/16"), net("vault", "10.43.0.0/16", undefined, true),
        bind("red"), bind("blue"), bind("vault"),
        pod("r1", "red", 1), pod("r2", "red", 2), pod("r3", "red", 3), pod("b1", "blue", 1), pod("b2", "blue", 2),
        pod("v1", "vault", 1), pod("v2", "vault", 2),
        // Same-node pairs: a second red pod and a second vault pod beside r1 and v1 on node 1.
        pod("r1s", "red", 1), pod("v1s", "vault", 1),
        // A network of a third-party type, its gateway at the end of each block.
        { apiVersion: L, kind: "Network", metadata: { name: "shop" }, spec: { type: "segment", ipv4Subnet: { prefix: "10.44.0.0/16", hostLocalPrefixLength: 24 }, ipv6Subnet: { prefix: "fd00:44::/48", hostLocalPrefixLength: 64 } } },
        bind("shop"), pod("s1", "shop", 1), pod("s1s", "shop", 1), pod("s2", "shop", 2),
        // Endpoints of a Service that moves between red and blue (a pod of each, labelled app: echo).
        echo(pod("er", "red", 2)), echo(pod("eb", "blue", 3)),
      ]);
      const notRun = sb.listPods().filter((p) => p.state !== "running");
      if (notRun.length) throw new Error(`pods not running: ${JSON.stringify(notRun)}`);
      for (const n of ["node-1", "node-2", "node-3"]) {
        if (sb.agentBackend(n) !== backend) throw new Error(`the agent of ${n} runs the ${sb.agentBackend(n)} backend, expected ${backend}`);
      }
    } catch (e) {
      console.error("sandbox set-up failed:", e);
      throw e;
    }
  });

  t.after(async () => {
    if (sb) await sb.down();
  });

  test("l3 pods reach each other across three nodes, IPv4 and IPv6; other networks stay isolated (full matrix)", async () => {
    const m = await sb.matrix();
    assert.equal(mismatches(m), [], "observed differs from expected");
    const pair = (from: string, to: string, family: string) => m.find((e) => e.from === `e2e/${from}` && e.to === `e2e/${to}` && e.family === family);
    for (const [a, b] of [["r1", "r2"], ["r2", "r3"], ["r3", "r1"]]) {
      assert.is(pair(a, b, "ipv4")?.observed, "allow", `${a} → ${b} IPv4`);
      assert.is(pair(a, b, "ipv6")?.observed, "allow", `${a} → ${b} IPv6`);
    }
    for (const [a, b] of [["r1", "b1"], ["r1", "b2"], ["b2", "r3"], ["b1", "v2"]]) assert.is(pair(a, b, "ipv4")?.observed, "deny", `${a} → ${b}`);
    // Same node: one network's pods reach each other; an anonymous network's do not.
    for (const [a, b] of [["r1", "r1s"], ["r1s", "r1"]]) {
      assert.is(pair(a, b, "ipv4")?.observed, "allow", `${a} → ${b} IPv4 (same node)`);
      assert.is(pair(a, b, "ipv6")?.observed, "allow", `${a} → ${b} IPv6 (same node)`);
    }
    for (const [a, b] of [["v1", "v1s"], ["v1s", "v1"]]) assert.is(pair(a, b, "ipv4")?.observed, "deny", `${a} → ${b} (anonymous, same node)`);
    // Addresses come from each node's own block.
    assert.ok(v4("r1").startsWith("10.41.") && v4("r2").startsWith("10.41.") && v4("r1").split(".")[2] !== v4("r2").split(".")[2], `${v4("r1")} ${v4("r2")}`);
  });

  test("a Service's ClusterIP forwarding follows its binding policy to another network, by packets", async () => {
    // No clusterIP: the sandbox gives it one from its service CIDR.
    await sb.apply([
      bindService("red"),
      { apiVersion: "v1", kind: "Service", metadata: { name: "echo", namespace: "e2e", labels: { svc: "echo" } }, spec: { selector: { app: "echo" }, ports: [{ port: 80, targetPort: 8080 }] } },
    ]);
    const rows = async (want: Record<string, [string, string[]]>) => {
      // The binding reaches the agents through the controller, then an apply: asked again until it has.
      const end = Date.now() + 30_000;
      for (;;) {
        const got = (await sb.serviceRows()).filter((r) => r.to === "svc/e2e/echo" && r.family === "ipv4");
        const seen = Object.fromEntries(Object.keys(want).map((from) => {
          const r = got.find((x) => x.from === `e2e/${from}`);
          return [from, [r?.observed ?? "missing", r?.answeredBy ?? []]];
        }));
        if (JSON.stringify(seen) === JSON.stringify(want) || Date.now() > end) return seen;
        await sleep(500);
      }
    };
    try {
      const ip = (await sb.store.get<Resource>("Service", "echo", "e2e"))?.spec as { clusterIP?: string } | undefined;
      assert.match(ip?.clusterIP ?? "", /^10\.96\./, "a ClusterIP from the service CIDR");
      // On red: red pods (node 1, and er's own node) reach it, answered by er; blue and vault pods do not.
      assert.equal(await rows({ r1: ["allow", ["er"]], r2: ["allow", ["er"]], b1: ["deny", []], v1: ["deny", []] }), {
        r1: ["allow", ["er"]], r2: ["allow", ["er"]], b1: ["deny", []], v1: ["deny", []],
      });
      // The binding policy now places it on blue: the same ClusterIP goes to eb, for blue pods only.
      await sb.apply([bindService("blue")]);
      assert.equal(await rows({ r1: ["deny", []], r2: ["deny", []], b1: ["allow", ["eb"]], b2: ["allow", ["eb"]] }), {
        r1: ["deny", []], r2: ["deny", []], b1: ["allow", ["eb"]], b2: ["allow", ["eb"]],
      });
      assert.equal(mismatches(await sb.serviceRows()), [], "every Service row as the policies decide");
    } finally {
      await sb.store.delete("Service", "echo", "e2e").catch(() => {});
      await sb.store.delete("NetworkBindingPolicy", "echo-service").catch(() => {});
    }
  });

  test("an anonymous network: its pods do not reach each other without a policy; a policy from another network opens it", async () => {
    assert.is(await sb.ping(P("v1"), v4("v2")), false, "vault → vault without a policy");
    assert.is(await sb.ping(P("r1"), v4("v2")), false, "red → vault without a policy");
    await sb.apply([route("red-to-vault", "red", "vault")]);
    assert.is(await eventually("r1", v4("v2"), true), true, "red → vault once allowed");
    assert.is(await sb.ping(P("v1"), v4("v2")), false, "vault → vault still closed");
    assert.is(await sb.ping(P("v2"), v4("r1")), false, "no new connections in the reverse direction");
    await sb.store.delete("NetworkRoutingPolicy", "red-to-vault");
    assert.is(await eventually("r1", v4("v2"), false), false, "closed again");
  });

  test("a third-party network type (the example segment plugin) carries packets through the same datapath, with its gateway where it says", async () => {
    for (const p of ["s1", "s1s", "s2"]) {
      assert.is(P(p).state, "running", `${p}: ${P(p).reason ?? ""}`);
      assert.not.ok(v4(p).endsWith(".254"), `${p} did not get the gateway's address: ${v4(p)}`);
    }
    const gw4 = v4("s1").replace(/\.\d+$/, ".254");
    const routes = sh("ip", ["-n", P("s1").netns!, "route", "show", "default"]);
    assert.match(routes, new RegExp(`default via ${gw4.replaceAll(".", "\\.")} `), "the pod's default route goes through the type's gateway");
    assert.match(sh("ip", ["-n", sb.nodeNs("node-1"), "-br", "addr", "show"]), new RegExp(`${gw4.replaceAll(".", "\\.")}/24`), "the node's bridge holds it");
    assert.is(await sb.ping(P("s1"), gw4), true, "the pod reaches its gateway");
    for (const [a, b] of [["s1", "s2"], ["s2", "s1"], ["s1", "s1s"], ["s1s", "s1"]]) {
      assert.is(await sb.ping(P(a), v4(b)), true, `${a} → ${b} IPv4`);
      assert.is(await sb.ping(P(a), v6(b)), true, `${a} → ${b} IPv6`);
    }
    assert.is(await sb.ping(P("r1"), v4("s1")), false, "red → shop: no policy");
    assert.is(await sb.ping(P("s2"), v4("r2")), false, "shop → red: no policy");
  });

  test("an anonymous network's pods on one node: closed both ways until a policy opens the network to itself", async () => {
    assert.is(await sb.ping(P("v1"), v4("v1s")), false, "v1 → v1s");
    assert.is(await sb.ping(P("v1s"), v4("v1")), false, "v1s → v1");
    await sb.apply([route("vault-to-vault", "vault", "vault")]);
    try {
      assert.is(await eventually("v1", v4("v1s"), true), true, "v1 → v1s once vault may reach itself");
      assert.is(await sb.ping(P("v1s"), v4("v1")), true, "v1s → v1");
      assert.is(await sb.ping(P("v1"), v4("v2")), true, "v1 → v2 across nodes");
    } finally {
      await sb.store.delete("NetworkRoutingPolicy", "vault-to-vault");
    }
    assert.is(await eventually("v1", v4("v1s"), false), false, "closed again on one node");
    assert.is(await sb.ping(P("v1s"), v4("v1")), false, "and the other way");
  });

  test("priority decides between a Deny and an Allow, on one node and across nodes, both directions", async () => {
    // blue → red: Allow at 100 and Deny at 50. The lower value wins: closed.
    await sb.apply([route("blue-to-red", "blue", "red", "Allow", 100), route("no-blue-to-red", "blue", "red", "Deny", 50)]);
    try {
      await sleep(500);
      for (const [a, b] of [["b1", "r1"], ["b1", "r1s"], ["b2", "r2"], ["b2", "r1"], ["r1", "b1"], ["r2", "b2"]]) {
        assert.is(await sb.ping(P(a), v4(b)), false, `${a} → ${b} while the Deny (50) precedes the Allow (100)`);
      }
      // The Allow moves ahead (10 < 50): blue → red opens, red → blue still carries only replies.
      await sb.apply([route("blue-to-red", "blue", "red", "Allow", 10)]);
      assert.is(await eventually("b1", v4("r1"), true), true, "b1 → r1 (same node) once the Allow (10) precedes the Deny (50)");
      for (const [a, b] of [["b1", "r1s"], ["b2", "r2"], ["b2", "r1"]]) assert.is(await sb.ping(P(a), v4(b)), true, `${a} → ${b}`);
      for (const [a, b] of [["r1", "b1"], ["r1s", "b1"], ["r2", "b2"], ["r3", "b1"]]) assert.is(await sb.ping(P(a), v4(b)), false, `${a} → ${b}: no path back`);
      assert.equal(mismatches(await sb.matrix()), [], "every row as lace explain decides");
    } finally {
      for (const name of ["blue-to-red", "no-blue-to-red"]) await sb.store.delete("NetworkRoutingPolicy", name).catch(() => {});
    }
    assert.is(await eventually("b1", v4("r1"), false), false, "closed once both are gone");
  });

  test("a Deny for a prefix inside a network closes it to the network's own pods, on the same node and across nodes", async () => {
    const target4 = `${v4("r1s")}/32`, target6 = `${v6("r1s")}/128`;
    await sb.apply([route("no-red-to-r1s", "red", "red", "Deny", 10, [target4, target6])]);
    try {
      assert.is(await eventually("r1", v4("r1s"), false), false, "r1 → r1s (same node), IPv4");
      assert.is(await sb.ping(P("r1"), v6("r1s")), false, "r1 → r1s (same node), IPv6");
      assert.is(await sb.ping(P("r2"), v4("r1s")), false, "r2 → r1s (across nodes)");
      assert.is(await sb.ping(P("r1s"), v4("r1")), true, "r1s → r1 (same node): r1 is not denied, and the replies return");
      assert.is(await sb.ping(P("r1s"), v6("r1")), true, "r1s → r1 (same node), IPv6");
      assert.is(await sb.ping(P("r1s"), v4("r2")), true, "r1s → r2 (across nodes)");
      assert.is(await sb.ping(P("r1"), v4("r2")), true, "r1 → r2: the rest of red is open");
      assert.is(await sb.ping(P("r1"), v6("r2")), true, "r1 → r2, IPv6");
      assert.equal(mismatches(await sb.matrix()), [], "every row as lace explain decides");
    } finally {
      await sb.store.delete("NetworkRoutingPolicy", "no-red-to-r1s").catch(() => {});
    }
    assert.is(await eventually("r1", v4("r1s"), true), true, "open again once the Deny is gone");
    assert.is(await sb.ping(P("r1"), v6("r1s")), true, "IPv6 too");
  });

  test("a routing policy added opens the path (and only that direction); deleted, it closes", async () => {
    assert.is(await sb.ping(P("b1"), v4("r2")), false, "blue → red before");
    await sb.apply([route("blue-to-red", "blue", "red")]);
    assert.is(await eventually("b1", v4("r2"), true), true, "blue → red (across nodes) after the policy");
    assert.is(await sb.ping(P("b2"), v4("r2")), true, "blue → red on the same node");
    assert.is(await sb.ping(P("r3"), v4("b1")), false, "red → blue stays closed");
    const m = await sb.matrix();
    assert.equal(mismatches(m), []);
    await sb.store.delete("NetworkRoutingPolicy", "blue-to-red");
    assert.is(await eventually("b1", v4("r2"), false), false, "blue → red after the policy is deleted");
  });

  test("external networks: a pod with an allowed path reaches the network's host on the fabric (SNAT or not), one without does not", async () => {
    const external = (name: string, prefixes: string[], snat = true): Resource => ({
      apiVersion: L, kind: "Network", metadata: { name }, spec: { type: "external", externalPrefixes: prefixes, snat },
    });
    // wan-lab's /25 lies inside wan's /24: an address belongs to the longest prefix, so red's route to wan is cut
    // around it (192.0.2.129 is wan-lab's, which red may not reach) and wan's way into blue does not admit wan-lab.
    await sb.apply([
      external("wan", ["192.0.2.0/24", "fd00:e0::/64"]), external("wan-lab", ["192.0.2.128/25"], false),
      route("red-to-wan", "red", "wan"), route("blue-to-wan-lab", "blue", "wan-lab"), route("wan-to-blue", "wan", "blue"),
    ]);
    const wan = sb.external("wan")!, lab = sb.external("wan-lab")!;
    assert.equal(wan.addresses, ["192.0.2.1", "fd00:e0::1"]);
    assert.equal(lab.addresses, ["192.0.2.129"]);
    try {
      assert.is(await eventually("r1", "192.0.2.1", true), true, "red → wan IPv4 (node 1)");
      assert.is(await eventually("r2", "fd00:e0::1", true), true, "red → wan IPv6 (node 2)");
      assert.is(await eventually("b2", "192.0.2.129", true), true, "blue → wan-lab, no SNAT: the host answers the pod's own address through its node");
      assert.is(await sb.ping(P("b1"), "192.0.2.1"), false, "blue → wan: no path");
      assert.is(await sb.ping(P("r1"), "192.0.2.129"), false, "red → wan-lab: no path, though inside wan's /24");
      assert.is(await sb.ping(P("v1"), "192.0.2.1"), false, "vault → wan: no path");
      assert.is(await until(true, () => sb.pingFromExternal("wan", v4("b1"))), true, "wan → blue: a path from wan opens connections in");
      assert.is(await sb.pingFromExternal("wan", v4("r1")), false, "wan → red: red's path goes out only");
      assert.is(await sb.pingFromExternal("wan-lab", v4("b1")), false, "wan-lab → blue: blue's path goes out only");
      const m = await sb.matrix();
      assert.equal(mismatches(m), [], "observed differs from expected");
      const row = (from: string, to: string, family: string) => m.find((e) => e.from === `e2e/${from}` && e.to === `external/${to}` && e.family === family);
      assert.equal(row("r3", "wan", "ipv4"), { from: "e2e/r3", to: "external/wan", family: "ipv4", expected: "allow", observed: "allow" });
      assert.is(row("r3", "wan", "ipv6")?.observed, "allow");
      assert.is(row("b1", "wan", "ipv4")?.observed, "deny");
      assert.is(row("b1", "wan", "ipv6"), undefined, "blue has no IPv6: no row");
      assert.is(row("b1", "wan-lab", "ipv4")?.observed, "allow");
      assert.is(row("r1", "wan-lab", "ipv4")?.expected, "deny");
      const inbound = (from: string, to: string, family: string) => m.find((e) => e.from === `external/${from}` && e.to === `e2e/${to}` && e.family === family);
      assert.equal(inbound("wan", "b2", "ipv4"), { from: "external/wan", to: "e2e/b2", family: "ipv4", expected: "allow", observed: "allow" });
      assert.is(inbound("wan", "r2", "ipv6")?.observed, "deny");
      assert.is(inbound("wan-lab", "b2", "ipv4")?.observed, "deny");
      // Both directions between red and wan: red still goes out, and wan now comes in.
      await sb.apply([route("wan-to-red", "wan", "red")]);
      assert.is(await until(true, () => sb.pingFromExternal("wan", v4("r1"))), true, "wan → red once a policy allows it too");
      assert.is(await sb.ping(P("r1"), "192.0.2.1"), true, "red → wan still open");
      assert.is(await sb.pingFromExternal("wan-lab", v4("r1")), false, "wan-lab → red: not admitted by wan's policy");
    } finally {
      for (const name of ["red-to-wan", "blue-to-wan-lab", "wan-to-blue", "wan-to-red"]) {
        await sb.store.delete("NetworkRoutingPolicy", name).catch(() => {});
      }
    }
    assert.is(await eventually("r1", "192.0.2.1", false), false, "red → wan closed once the policy is deleted");
  });

  test("a deleted pod's address returns to its node's block and can be handed out again", async () => {
    const addr = v4("r3");
    const uidBefore = Object.entries((await sb.store.get<Allocation>("Allocation", "red.node-3"))!.spec!.blocks[0].addresses ?? {});
    assert.ok(uidBefore.some(([, a]) => a === addr), "r3's address is recorded");
    const r3 = { ...P("r3") };
    await sb.deletePod("e2e", "r3");
    // DEL again, its namespace gone: still success.
    const again = await sb.cni("DEL", r3.node, sb.podEnv(r3, ""));
    assert.is(again.status, 0, again.raw);
    const after = (await sb.store.get<Allocation>("Allocation", "red.node-3"))!.spec!.blocks.flatMap((b) => Object.values(b.addresses ?? {}));
    assert.not.ok(after.includes(addr), "the address is free after DEL");
    assert.is(await sb.store.get("NetworkEndpoint", "r3", "e2e"), undefined, "the endpoint is gone");
    const r4 = await sb.addPod(pod("r4", "red", 3, { "lace-cni.io/ip": addr }));
    assert.is(r4.state, "running", r4.reason);
    assert.is(v4("r4"), addr);
    assert.is(await eventually("r1", addr, true), true, "the new pod is reachable at the old address");
  });

  test("SIGKILL of the agents under continuous ping loses no packet; the restarted agents rebuild and change nothing", async () => {
    const logs = ["node-1", "node-2"].map((n) => join(sb.dir, n, "agent.log"));
    const applyLines = () => logs.map((f) => readFileSync(f, "utf8").split("\n").filter((l) => l.includes(`"msg":"applied the node's desired state"`)).length);
    const ping = spawn("ip", ["netns", "exec", P("r1").netns!, "ping", "-n", "-q", "-i", "0.01", "-w", "6", v4("r2")], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    ping.stdout.on("data", (d) => (out += d));
    const done = new Promise<void>((r) => ping.on("close", () => r()));
    await sleep(1000);
    const before = applyLines();
    const kernelBefore = ["node-1", "node-2"].map(kernelState);
    sb.killAgent("node-1");
    sb.killAgent("node-2");
    await sleep(300);
    sb.startAgent("node-1");
    sb.startAgent("node-2");
    await sb.waitForAgents();
    await done;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m![1]) > 100, `enough packets sent: ${out}`);
    assert.is(Number(m![2]), Number(m![1]), `no packet lost: ${out}`);
    // Rebuilt from the store and the kernel, the new agents want exactly what the old ones left.
    assert.equal(["node-1", "node-2"].map(kernelState), kernelBefore, "routes, nexthops, rules, addresses and links are as before");
    const writes = applyLines().map((n, i) => n - before[i]);
    if (writes.some((n) => n > 0)) console.log(`  note: the restarted agents' first apply made writes (rewrote identical objects) on ${writes.map((n, i) => `node-${i + 1}: ${n} apply`).join(", ")}`);
    assert.is(await sb.ping(P("r2"), v6("r1")), true, "traffic still flows after the restart");
  });

  test("each agent's metrics name its backend; on bpf, its datapath counts the packets it carried", async () => {
    assert.is(await sb.ping(P("r1"), v4("r2")), true);
    const scrape = sh("ip", ["netns", "exec", sb.nodeNs("node-1"), "python3", "-c",
      "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9471/metrics').read().decode())"]);
    assert.match(scrape, new RegExp(`lace_dataplane_backend_info\\{backend="${backend}",node="node-1"\\} 1`));
    if (backend === "bpf") {
      const encap4 = Number(/lace_datapath_packets_total\{event="encap4",node="node-1"\} (\d+)/.exec(scrape)?.[1] ?? 0);
      assert.ok(encap4 > 0, scrape);
    }
  });

  test("CHECK verifies a pod on the real kernel and fails once its interface is gone; GC removes what the runtime no longer lists", async () => {
    const b2 = P("b2");
    const ok = await sb.cni("CHECK", b2.node, sb.podEnv(b2, ""));
    assert.is(ok.status, 0, ok.raw);
    const v = await sb.cni("CHECK", P("b1").node, sb.podEnv(P("b1"), ""));
    assert.is(v.status, 0, v.raw);
    // GC on node-2 with every attachment but b2's.
    const valid = sb.listPods().filter((p) => p.containerId && p !== b2).map((p) => ({ containerID: p.containerId, ifname: "eth0" }));
    const gc = await sb.cni("GC", b2.node, {}, { "cni.dev/valid-attachments": valid });
    assert.is(gc.status, 0, gc.raw);
    // b2's Pod still exists: GC detaches its endpoint and keeps the binding for a re-created sandbox.
    const kept = await sb.store.get<NetworkEndpoint>("NetworkEndpoint", "b2", "e2e");
    assert.ok(kept?.spec?.detachedAt, `b2's endpoint is kept, detached: ${JSON.stringify(kept?.spec)}`);
    assert.is(kept!.spec!.network, "blue");
    const after = await sb.cni("CHECK", b2.node, sb.podEnv(b2, ""));
    assert.is(after.status, 1);
    assert.is(after.out?.code, 104, after.raw);
    assert.is(await sb.ping(P("r2"), v6("r1")), true, "the pods GC kept still talk");
  });

  t.run();
}
