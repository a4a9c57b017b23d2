/**
 * Test support for the srv6 dataplane: a cluster of network namespaces on
 * an IPv6 fabric (a bridge in a "fabric" namespace, one "node" namespace
 * per node, one namespace per pod) and hand-built NodeDesiredState objects.
 * Every name carries a per-run prefix; `destroy()` removes every namespace
 * and kills every process it started. Uses `ip` to build the fabric (tests
 * may shell out; the dataplane may not).
 *
 * @example
 * const c = new TestCluster(3);
 * try { c.create(); ... } finally { c.destroy(); }
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, type Test } from "uvu";
import type { EgressRoute, NetworkForwarding, NodeDesiredState, PathRoute } from "../../core/mod.ts";
import { noSeg6Reason } from "./kernel_config.ts";

export const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/**
 * A uvu suite for tests that run one srv6 backend in namespaces: `test`
 * skips them, saying why once, without root, or for the kernel backend
 * where the kernel has no seg6.
 *
 * @example
 * const { t, test, runs } = backendSuite("srv6 services", "bpf");
 */
export function backendSuite(what: string, backend: "kernel" | "bpf"): { t: Test; test: Test | Test["skip"]; runs: boolean } {
  const t = suite(`${what} (namespaces, ${backend} backend)`);
  const seg6Missing = backend === "kernel" ? noSeg6Reason() : undefined;
  const runs = isRoot && !seg6Missing;
  if (!isRoot) console.log(`${what} (${backend} backend) tests skipped: they need root to create network namespaces`);
  else if (seg6Missing) console.log(`${what} (kernel backend) tests skipped: ${seg6Missing}`);
  return { t, test: runs ? t : t.skip, runs };
}

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** Runs a command in a namespace; returns [exit status, stdout]. */
export function inNs(ns: string, cmd: string[], timeoutMs = 10_000): { status: number; out: string } {
  try {
    const out = execFileSync("ip", ["netns", "exec", ns, ...cmd], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    return { status: 0, out };
  } catch (e) {
    const err = e as { status?: number; stdout?: string };
    return { status: err.status ?? 1, out: err.stdout ?? "" };
  }
}

/** Like inNs, without blocking: probes that wait for a timeout run side by side. */
export function inNsAsync(ns: string, cmd: string[], timeoutMs = 10_000): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    execFile("ip", ["netns", "exec", ns, ...cmd], { encoding: "utf8", timeout: timeoutMs }, (err, stdout) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ status: err ? (typeof code === "number" ? code : 1) : 0, out: stdout ?? "" });
    });
  });
}

export interface TestNetwork {
  name: string;
  id: number;
  /** Second octet of the IPv4 subnet: 10.<v4>.<node>.0/24 blocks. */
  v4: number;
  /** Second group of the IPv6 subnet: fd00:<v6>:0:<node>::/64 blocks. */
  v6: number;
}

/** An external network: prefixes reached through the underlay. */
export interface TestExternal {
  name: string;
  prefixes: string[];
  /** Source NAT to the node's underlay address (default true). */
  snat?: boolean;
}

export interface TestPod {
  name: string;
  node: number;
  network: string;
  /** Host number inside the node's block. */
  host: number;
}

export class TestCluster {
  readonly prefix: string;
  readonly fabric: string;
  private procs: ChildProcess[] = [];
  private bpfDir?: string;

  constructor(readonly nodeCount: number) {
    this.prefix = `lt${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    this.fabric = `${this.prefix}-fab`;
  }

  node(n: number): string {
    return `${this.prefix}-n${n}`;
  }

  podNs(name: string): string {
    return `${this.prefix}-p-${name}`;
  }

  underlayAddress(n: number): string {
    return `fd00:ffff::${n}`;
  }

  /** The node's IPv4 underlay address (the fabric carries both families). */
  underlayAddress4(n: number): string {
    return `198.51.100.${n}`;
  }

  locator(n: number): string {
    return `fd00:1ace:${n}::/48`;
  }

  sid(n: number, net: TestNetwork): string {
    return `fd00:1ace:${n}::${net.id.toString(16)}`;
  }

  create(): void {
    sh("ip", ["netns", "add", this.fabric]);
    sh("ip", ["-n", this.fabric, "link", "add", "fab0", "type", "bridge"]);
    sh("ip", ["-n", this.fabric, "link", "set", "fab0", "up"]);
    for (let n = 1; n <= this.nodeCount; n++) {
      const ns = this.node(n);
      sh("ip", ["netns", "add", ns]);
      sh("ip", ["-n", this.fabric, "link", "add", `f${n}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      sh("ip", ["-n", this.fabric, "link", "set", `f${n}`, "master", "fab0", "up"]);
      sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
      sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", ns, "addr", "add", `${this.underlayAddress(n)}/64`, "dev", "eth0", "nodad"]);
      sh("ip", ["-n", ns, "addr", "add", `${this.underlayAddress4(n)}/24`, "dev", "eth0"]);
    }
    this.waitLinkLocal();
  }

  /**
   * Waits (up to 3 s) until no node's underlay link-local address is still
   * tentative: until DAD ends, neighbour discovery cannot start, and the first
   * packet to a peer would wait a second for it.
   */
  private waitLinkLocal(): void {
    const end = Date.now() + 3000;
    for (let n = 1; n <= this.nodeCount; n++) {
      while (sh("ip", ["-n", this.node(n), "-6", "addr", "show", "dev", "eth0", "tentative"]).trim() && Date.now() < end) {
        execFileSync("sleep", ["0.05"]);
      }
    }
  }

  /**
   * A host outside the cluster on the fabric (an external network's
   * member): its addresses, on-link routes to the node underlay subnets,
   * and the given routes (`10.1.0.0/16 via 198.51.100.1`, with a source
   * address when given).
   */
  addFabricHost(name: string, addresses: string[], routes: [dst: string, via: string, src?: string][] = []): string {
    const ns = `${this.prefix}-x-${name}`;
    sh("ip", ["netns", "add", ns]);
    sh("ip", ["-n", this.fabric, "link", "add", `x-${name}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    sh("ip", ["-n", this.fabric, "link", "set", `x-${name}`, "master", "fab0", "up"]);
    sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    for (const a of addresses) sh("ip", ["-n", ns, "addr", "add", a, "dev", "eth0", ...(a.includes(":") ? ["nodad"] : [])]);
    sh("ip", ["-n", ns, "route", "replace", "198.51.100.0/24", "dev", "eth0"]);
    sh("ip", ["-n", ns, "-6", "route", "replace", "fd00:ffff::/64", "dev", "eth0"]);
    for (const [dst, via, src] of routes) sh("ip", ["-n", ns, "route", "add", dst, "via", via, ...(src ? ["src", src] : [])]);
    return ns;
  }

  addPodNs(name: string): string {
    const ns = this.podNs(name);
    sh("ip", ["netns", "add", ns]);
    return `/run/netns/${ns}`;
  }

  /** Starts a long-running process in a namespace; killed by destroy(). */
  start(ns: string, cmd: string[]): ChildProcess {
    const p = spawn("ip", ["netns", "exec", ns, ...cmd], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.procs.push(p);
    return p;
  }

  /**
   * A bpffs of this run's own (for the bpf backend's pinned maps), under a
   * temporary directory; unmounted and removed by destroy().
   */
  bpffs(): string {
    if (!this.bpfDir) {
      this.bpfDir = mkdtempSync(join(tmpdir(), `${this.prefix}-bpf-`));
      sh("mount", ["-t", "bpf", "bpf", this.bpfDir]);
    }
    return this.bpfDir;
  }

  destroy(): void {
    if (this.bpfDir) {
      try {
        sh("umount", [this.bpfDir]);
        rmSync(this.bpfDir, { recursive: true, force: true });
      } catch {
        // already gone
      }
      this.bpfDir = undefined;
    }
    for (const p of this.procs) {
      try {
        if (p.pid && p.exitCode === null) process.kill(-p.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    let names: string[] = [];
    try {
      names = readdirSync("/run/netns");
    } catch {
      return;
    }
    for (const ns of names.filter((n) => n.startsWith(`${this.prefix}-`))) {
      try {
        // Kill anything still running inside before the namespace goes.
        const pids = sh("ip", ["netns", "pids", ns]).split("\n").filter(Boolean);
        for (const pid of pids) process.kill(Number(pid), "SIGKILL");
      } catch {
        // nothing left
      }
      try {
        sh("ip", ["netns", "del", ns]);
      } catch {
        // gone already
      }
    }
  }

  /** The pod's addresses (v4 /32, v6 /128) and its node's gateways. */
  podAddresses(pod: TestPod, net: TestNetwork): { addresses: string[]; gateways: string[] } {
    return {
      addresses: [`10.${net.v4}.${pod.node}.${pod.host}/32`, `fd00:${net.v6}:0:${pod.node}::${pod.host}/128`],
      gateways: [`10.${net.v4}.${pod.node}.1/24`, `fd00:${net.v6}:0:${pod.node}::1/64`],
    };
  }

  /**
   * The desired state of node `n`: every network on every node (blocks
   * 10.<v4>.<n>.0/24 and fd00:<v6>:0:<n>::/64), the given pods, and paths
   * `from → to` (allow) with their reverse as reply-only. A path to an
   * external network becomes routes through the underlay plus egress
   * entries; a path from one, reply-only routes (as the controller builds them).
   */
  desiredState(
    n: number,
    networks: TestNetwork[],
    pods: TestPod[],
    paths: { from: string; to: string }[] = [],
    encapsulation: "Reduced" | "SRH" = "Reduced",
    externals: TestExternal[] = [],
  ): NodeDesiredState {
    const byName = new Map(networks.map((x) => [x.name, x]));
    const externalByName = new Map(externals.map((x) => [x.name, x]));
    const blocks = (net: TestNetwork, m: number) => [`10.${net.v4}.${m}.0/24`, `fd00:${net.v6}:0:${m}::/64`];
    const mtu = podMtu(1500, encapsulation);
    const fwd: NetworkForwarding[] = networks.map((net) => {
      const remote = [];
      for (let m = 1; m <= this.nodeCount; m++) {
        if (m === n) continue;
        for (const prefix of blocks(net, m)) remote.push({ prefix, node: `node-${m}`, sid: this.sid(m, net) });
      }
      const routes: PathRoute[] = [];
      const egress: EgressRoute[] = [];
      for (const p of paths) {
        const [other, mode] = p.from === net.name ? [p.to, "allow" as const] : p.to === net.name ? [p.from, "reply-only" as const] : [undefined, undefined];
        if (!other || !mode) continue;
        const ext = externalByName.get(other);
        if (ext) {
          for (const destination of ext.prefixes) {
            routes.push({ destination, toNetwork: ext.name, via: "underlay", mode, policy: "test" });
            if (mode === "allow") egress.push({ prefix: destination, network: ext.name, snat: ext.snat ?? true });
          }
          continue;
        }
        const o = byName.get(other)!;
        for (let m = 1; m <= this.nodeCount; m++) {
          for (const destination of blocks(o, m)) {
            routes.push(m === n
              ? { destination, toNetwork: other, via: "local", toNetworkId: o.id, mode, policy: "test" }
              : { destination, toNetwork: other, via: "sid", sid: this.sid(m, o), mode, policy: "test" });
          }
        }
      }
      return {
        name: net.name, id: net.id, type: "l3", forwarding: "routed", anonymous: false,
        mtu,
        sid: this.sid(n, net), sidBehavior: "decap-lookup",
        gateways: [`10.${net.v4}.${n}.1/24`, `fd00:${net.v6}:0:${n}::1/64`],
        localPrefixes: blocks(net, n), remoteBlocks: remote, paths: routes,
        neighbors: [], fdb: [], egress,
      };
    });
    return {
      node: `node-${n}`, revision: 1, locator: this.locator(n), encapsulation,
      underlay: { interface: "eth0", mtu: 1500, address: this.underlayAddress(n) },
      networks: fwd,
      endpoints: pods.filter((p) => p.node === n).map((p) => ({
        id: `default/${p.name}`, network: p.network,
        addresses: this.podAddresses(p, byName.get(p.network)!).addresses,
        interface: `h-${p.name}`, netns: `/run/netns/${this.podNs(p.name)}`,
      })),
      peers: Array.from({ length: this.nodeCount }, (_, i) => i + 1).filter((m) => m !== n)
        .map((m) => ({ node: `node-${m}`, locator: this.locator(m), address: this.underlayAddress(m) })),
    };
  }
}

/** ICMP echo requests a pod's kernel has answered (from /proc/net/snmp). */
export function inEchos(podNs: string, family: 4 | 6 = 4): number {
  if (family === 4) {
    const snmp = inNs(podNs, ["cat", "/proc/net/snmp"]).out.split("\n").filter((l) => l.startsWith("Icmp:"));
    const names = snmp[0].split(/\s+/);
    const values = snmp[1].split(/\s+/);
    return Number(values[names.indexOf("InEchos")]);
  }
  const line = inNs(podNs, ["cat", "/proc/net/snmp6"]).out.split("\n").find((l) => l.startsWith("Icmp6InEchos "));
  return Number(line?.split(/\s+/)[1] ?? 0);
}

/** Pings from a pod namespace; returns the number of replies. */
export function ping(podNs: string, dst: string, opts: PingOptions = {}): number {
  return replies(inNs(podNs, pingArgs(dst, opts)).out);
}

/** Pings without blocking; resolves to the number of replies. */
export async function pingAsync(podNs: string, dst: string, opts: PingOptions = {}): Promise<number> {
  return replies((await inNsAsync(podNs, pingArgs(dst, opts))).out);
}

export interface PingOptions {
  count?: number;
  size?: number;
  df?: boolean;
  /** Source address (`ping -I`). */
  from?: string;
}

function pingArgs(dst: string, opts: PingOptions): string[] {
  const args = ["ping", "-n", "-q", "-c", String(opts.count ?? 2), "-i", "0.05", "-W", "1"];
  if (opts.from !== undefined) args.push("-I", opts.from);
  if (opts.size !== undefined) args.push("-s", String(opts.size));
  if (opts.df) args.push("-M", "do");
  args.push(dst);
  return args;
}

function replies(out: string): number {
  const m = /(\d+) received/.exec(out);
  return m ? Number(m[1]) : 0;
}

/**
 * What crosses the fabric while `fn` runs, as tcpdump prints it (`-v`,
 * numeric), captured on the fabric bridge: the SRv6 packets between nodes.
 * A TestCluster's fabric, or another's (`{ fabric: sandbox.fabricNs, bridge: "fabric0" }`).
 * Needs tcpdump (Debian package).
 */
export async function captureFabric(cluster: { fabric: string; bridge?: string }, filter: string[], fn: () => unknown): Promise<string> {
  const p = spawn("ip", ["netns", "exec", cluster.fabric, "tcpdump", "-lnnv", "-i", cluster.bridge ?? "fab0", ...filter], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  let err = "";
  const closed = new Promise((r) => p.once("close", r));
  p.stdout!.on("data", (d) => (out += d));
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err.trim()}`)), 5000);
    p.stderr!.on("data", (d) => {
      err += d;
      if (err.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.on("error", (e) => reject(new Error(`Cannot run tcpdump (install the tcpdump package): ${e.message}`)));
  });
  try {
    await listening;
    await fn();
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    try {
      process.kill(-p.pid!, "SIGTERM");
    } catch {
      // gone
    }
    await closed;
  }
  return out;
}

/**
 * The MTU of a test pod in an l3 network (what the core's `mtuFor` gives for a Topology without an MTU): the underlay's minus the encapsulation
 * (40 bytes of outer IPv6, plus 24 for an SRH with one segment). Larger DF
 * packets would vanish: the encapsulation happens before forwarding, so no
 * "fragmentation needed" reaches the pod.
 *
 * @example
 * podMtu(1500, "Reduced"); // 1460
 */
export function podMtu(underlayMtu: number, encapsulation: "Reduced" | "SRH"): number {
  return underlayMtu - (encapsulation === "SRH" ? 64 : 40);
}

