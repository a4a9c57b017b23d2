/**
 * `lace sandbox`: an emulated multi-node cluster on one machine, run
 * through the product's real paths. A fabric (a bridge in its own
 * namespace; IPv6 underlay for SRv6, IPv4 beside it for egress) joins N
 * node namespaces and one host per external network; the embedded store, the controller
 * and one agent per node run as processes (each agent inside its node's
 * namespace); pods are network namespaces set up by the real `lace-cni`
 * executable with the environment and stdin a container runtime gives it.
 *
 * Everything the sandbox creates is listed in `<dir>/sandbox.json`, so
 * `lace sandbox down` (or a crashed run's next start) can remove it.
 *
 * @example
 * const sb = await Sandbox.up({ nodes: 3, progress: console.log });
 * await sb.apply(resources);
 * const matrix = await sb.matrix();
 * await sb.down();
 */
import { randomBytes } from "node:crypto";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  type NetworkTypeLookup,
  BindingRules, bindPod, isStoreError, type Network, type NetworkBindingPolicy, type NetworkEndpoint, type NetworkRoutingPolicy, Prefix,
  type Resource, retryOnConflict, RoutingRules, type Store, type Topology,
} from "../../core/mod.ts";
import { KubeStore } from "../store/kube.ts";
import { embeddedKubeConfig, loadKubeConfig } from "../store/kubeconfig.ts";
import { externalHostAddresses } from "./external_hosts.ts";
import { assignClusterIPs, clusterIPs, DEFAULT_SERVICE_CIDRS, isService, selects, tcpTargetPorts } from "./service_rows.ts";
import { loadRuntime } from "../config/runtime.ts";
import { alive, cniArgv, killGroup, laceArgv, run, sh, sleep, startDetached, startTime, waitFor } from "./processes.ts";

/** Kinds the controller and the agents write: skipped when they appear in manifests. */
const PRODUCT_WRITTEN = new Set(["Allocation", "NetworkEndpoint", "Neighbor", "FDBEntry"]);
/** Network types whose pods the sandbox runs today (external networks get a host on the fabric instead). */
const CNI_IFNAME = "eth0";

export interface SandboxOptions {
  /** Default 3. */
  nodes?: number;
  /** Prefix of every namespace name (tests use a per-run one so runs never collide). Default none. */
  prefix?: string;
  /** Where the store, sockets, logs and the record live. Default /run/lace-sandbox (+ prefix). */
  dir?: string;
  progress?: (line: string) => void;
  /** Counts long work as it goes: `("pods started", 3, 8)`, `("pairs tested", 40, 94)`. */
  count?: (what: string, done: number, total: number) => void;
  /**
   * Run `lace controller` (default). False: the sandbox assigns network ids
   * and node locators itself, for a build without the controller.
   */
  controller?: boolean;
  /** The agents' srv6 backend: auto (default), kernel or bpf. */
  backend?: string;
  /** lace.yaml for the agents and the controller (third-party plugins); default the built-in plugins. */
  config?: string;
  /** More arguments for every `lace agent` (e.g. `--learning-age 3000`). */
  agentArgs?: string[];
  /** Where Services without a ClusterIP get one (one prefix per family); default 10.96.0.0/16 and fd00:96::/112. */
  serviceCidrs?: string[];
}

interface SandboxRecord {
  controller: boolean;
  /** The configuration file (absolute) the agents and the controller load. */
  config?: string;
  /** The agents' srv6 backend as asked (auto, kernel, bpf). */
  backend?: string;
  /** More arguments for every agent. */
  agentArgs?: string[];
  prefix: string;
  dir: string;
  nodes: number;
  created: string;
  pids: Record<string, number>;
  /** Start time of each recorded process (see startTime): `down` must not kill a reused pid. */
  starts?: Record<string, number>;
  pods: SandboxPod[];
  /** The hosts standing in for external networks, one namespace each on the fabric. */
  externals?: SandboxExternal[];
  /** Where Services without a ClusterIP get one. */
  serviceCidrs?: string[];
  /** Pods (`namespace/name`) whose name responder runs, with its ports. */
  responders?: Record<string, number[]>;
}

/** A host on the fabric standing in for an external network: its addresses from the network's prefixes. */
export interface SandboxExternal {
  network: string;
  netns: string;
  /** The fabric-side interface name. */
  link: string;
  /** One address per family the network has (see externalHostAddresses). */
  addresses: string[];
}

/** A pod of the manifests, as the sandbox ran it (or why it did not). */
export interface SandboxPod {
  namespace: string;
  name: string;
  node: string;
  network: string | null;
  addresses: string[];
  /** `running`, or `not-run` with the reason (an l2 or external network, a failed ADD). */
  state: "running" | "not-run";
  reason?: string;
  /**
   * Set when the pod should have run and did not (no binding, a failed CNI
   * ADD); unset for pods of network types the sandbox does not run yet.
   */
  failed?: boolean;
  netns?: string;
  containerId?: string;
}

export interface MatrixEntry {
  from: string;
  /** A pod, `external/<network>`, or a Service: `svc/<namespace>/<name>`. */
  to: string;
  family: "ipv4" | "ipv6";
  expected: "allow" | "deny";
  observed: "allow" | "deny";
  /** Service rows: the pods that answered over several connections to each of its TCP ports, sorted. */
  answeredBy?: string[];
  /** Service rows: its endpoints as the policies place them (the pods its selector picks on its network). */
  endpoints?: string[];
}

export function defaultDir(prefix = ""): string {
  return prefix ? `/run/lace-sandbox-${prefix.replace(/-$/, "")}` : "/run/lace-sandbox";
}

export class Sandbox {
  readonly store: Store;
  private readonly pods = new Map<string, SandboxPod>();
  private types?: Promise<NetworkTypeLookup>;
  private nodeRobin = 0;
  private standIn = false;
  /** See SandboxOptions.count. */
  count: (what: string, done: number, total: number) => void = () => undefined;

  private constructor(private readonly rec: SandboxRecord, private readonly progress: (line: string) => void) {
    this.store = new KubeStore(loadKubeConfig({ text: embeddedKubeConfig({ url: "http://localhost", socketPath: this.apiSocket }) }));
  }

  get prefix(): string {
    return this.rec.prefix;
  }
  get dir(): string {
    return this.rec.dir;
  }
  get nodeCount(): number {
    return this.rec.nodes;
  }
  private get apiSocket(): string {
    return join(this.rec.dir, "api.sock");
  }

  nodeName(k: number): string {
    return `node-${k}`;
  }
  /** The namespace of node `name` (`node-1` unless a prefix is set). */
  nodeNs(name: string): string {
    return `${this.rec.prefix}${name}`;
  }
  get fabricNs(): string {
    return `${this.rec.prefix}lace-fabric`;
  }
  podNs(namespace: string, name: string): string {
    return `${this.rec.prefix}pod-${namespace}-${name}`;
  }
  underlayAddress(k: number): string {
    return `fd00:ffff::${k}`;
  }
  /** The node's IPv4 underlay address (IPv4 egress to external networks leaves from it, masqueraded). */
  underlayAddress4(k: number): string {
    return `198.18.0.${k}`;
  }
  externalNs(network: string): string {
    return `${this.rec.prefix}lace-ext-${network}`;
  }
  cniSocket(node: string): string {
    return join(this.rec.dir, node, "cni.sock");
  }

  private recordPid(key: string, pid: number): void {
    this.rec.pids[key] = pid;
    const started = startTime(pid);
    if (started !== undefined) (this.rec.starts ??= {})[key] = started;
  }

  /**
   * Writes the record atomically (a new file renamed over the old one): a
   * crash mid-write, or a reader at that moment, never sees half a record,
   * so `lace sandbox down` always finds what to tear down.
   */
  private save(): void {
    this.rec.pods = [...this.pods.values()];
    const file = join(this.rec.dir, "sandbox.json");
    writeFileSync(`${file}.tmp`, JSON.stringify(this.rec, null, 2));
    renameSync(`${file}.tmp`, file);
  }

  /** The network types the agents load (from the sandbox's configuration). */
  private networkTypes(): Promise<NetworkTypeLookup> {
    return this.types ??= loadRuntime(this.rec.config).then((rt) => rt.networkTypes);
  }

  /**
   * The forwarding the nodes' dataplanes carry between nodes: routed
   * always; bridged (l2 frames) only where every agent runs the bpf backend
   * (the kernel backend's seg6 l2encap carries no ARP).
   */
  private runnableForwarding(): Set<string> {
    const nodes = Array.from({ length: this.rec.nodes }, (_, i) => this.nodeName(i + 1));
    return new Set(nodes.every((n) => this.agentBackend(n) === "bpf") ? ["routed", "bridged"] : ["routed"]);
  }

  private notRunnableWhy(): string {
    return this.runnableForwarding().has("bridged")
      ? "the sandbox runs routed, bridged and external networks"
      : "bridged (l2) networks need every node on the bpf backend; this sandbox's agents run the kernel backend";
  }

  private configArgs(): string[] {
    return this.rec.config ? ["--config", this.rec.config] : [];
  }

  /** Builds the fabric and the nodes and starts the store, the controller and the agents. */
  static async up(opts: SandboxOptions = {}): Promise<Sandbox> {
    const prefix = opts.prefix ?? "";
    const dir = opts.dir ?? defaultDir(prefix);
    const nodes = opts.nodes ?? 3;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) throw new Error(`Invalid node count ${nodes}: expected an integer from 1 to 64`);
    const progress = opts.progress ?? (() => undefined);
    if (existsSync(join(dir, "sandbox.json"))) {
      throw new Error(`A sandbox is already up (${join(dir, "sandbox.json")}): run \`lace sandbox down\` first`);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const backend = opts.backend ?? "auto";
    if (!["auto", "kernel", "bpf"].includes(backend)) throw new Error(`Invalid backend "${backend}": expected auto, kernel or bpf`);
    const config = opts.config ? resolve(opts.config) : undefined;
    if (config && !existsSync(config)) throw new Error(`Invalid config "${opts.config}": no such file`);
    const serviceCidrs = opts.serviceCidrs ?? DEFAULT_SERVICE_CIDRS;
    for (const c of serviceCidrs) if (!Prefix.tryParse(c).ok) throw new Error(`Invalid service CIDR "${c}": expected a prefix such as 10.96.0.0/16`);
    const sb = new Sandbox({ controller: opts.controller ?? true, backend, ...(config ? { config } : {}), ...(opts.agentArgs?.length ? { agentArgs: opts.agentArgs } : {}), prefix, dir, nodes, created: new Date().toISOString(), pids: {}, pods: [], serviceCidrs }, progress);
    if (opts.count) sb.count = opts.count;
    sb.save();
    try {
      await sb.build();
    } catch (e) {
      await sb.down().catch(() => undefined);
      throw e;
    }
    return sb;
  }

  private async build(): Promise<void> {
    const n = this.rec.nodes;
    this.progress(`fabric: ${this.fabricNs}, a bridge with the underlay fd00:ffff::/64 and 198.18.0.0/16; nodes: ${Array.from({ length: n }, (_, i) => this.nodeNs(this.nodeName(i + 1))).join(", ")}`);
    sh("ip", ["netns", "add", this.fabricNs]);
    sh("ip", ["-n", this.fabricNs, "link", "add", "fabric0", "type", "bridge"]);
    sh("ip", ["-n", this.fabricNs, "link", "set", "fabric0", "up"]);
    for (let k = 1; k <= n; k++) {
      const ns = this.nodeNs(this.nodeName(k));
      sh("ip", ["netns", "add", ns]);
      sh("ip", ["-n", this.fabricNs, "link", "add", `n${k}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      sh("ip", ["-n", this.fabricNs, "link", "set", `n${k}`, "master", "fabric0", "up"]);
      sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
      sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", ns, "addr", "add", `${this.underlayAddress(k)}/64`, "dev", "eth0", "nodad"]);
      sh("ip", ["-n", ns, "addr", "add", `${this.underlayAddress4(k)}/16`, "dev", "eth0"]);
      // The underlay device is the one of the default route (Topology underlay.interface "").
      sh("ip", ["-n", ns, "-6", "route", "add", "default", "dev", "eth0"]);
    }

    this.progress(`store: embedded, ${join(this.dir, "store.db")} on ${this.apiSocket}`);
    const store = startDetached([...laceArgv(), "store", "serve", "--db", join(this.dir, "store.db"), "--listen", `unix:${this.apiSocket}`,
      "--kubeconfig", join(this.dir, "kubeconfig"), ...this.configArgs()], join(this.dir, "store.log"));
    this.recordPid("store", store.pid!);
    this.save();
    await waitFor("the embedded store to listen", async () => {
      if (!alive(store.pid!)) throw new Error(`The embedded store exited: see ${join(this.dir, "store.log")}`);
      try {
        await this.store.list("Namespace");
        return true;
      } catch {
        return false;
      }
    }, 60_000);

    for (let k = 1; k <= n; k++) {
      const node = this.nodeName(k);
      await this.createOrReplace({ apiVersion: "v1", kind: "Node", metadata: { name: node, labels: { "kubernetes.io/hostname": node } } });
      await retryOnConflict(async () => {
        const cur = (await this.store.get<Resource>("Node", node))!;
        return this.store.updateStatus({ ...cur, status: { addresses: [{ type: "InternalIP", address: this.underlayAddress(k) }, { type: "Hostname", address: node }] } });
      });
    }

    if (this.rec.controller) {
      this.progress("controller: lace controller");
      const c = startDetached([...laceArgv(), "controller", "--kubeconfig", join(this.dir, "kubeconfig"), ...this.configArgs()], join(this.dir, "controller.log"));
      this.recordPid("controller", c.pid!);
    } else {
      this.standIn = true;
      this.progress("controller: not built yet; the sandbox assigns network ids and node locators itself");
    }

    // One bpffs for the agents' pinned maps (each node pins under its own directory), gone with the sandbox.
    mkdirSync(this.bpffs, { recursive: true, mode: 0o700 });
    sh("mount", ["-t", "bpf", "bpf", this.bpffs]);
    for (let k = 1; k <= n; k++) this.startAgent(this.nodeName(k));
    this.save();
    this.progress(`agents: ${n}, one inside each node namespace (logs in ${this.dir}/<node>/agent.log), srv6 backend ${this.rec.backend ?? "auto"}`);
  }

  /** The bpffs the agents pin their bpf maps in. */
  get bpffs(): string {
    return join(this.dir, "bpf");
  }

  /** The backend an agent reported it runs (from its log), or undefined before it said. */
  agentBackend(node: string): string | undefined {
    try {
      return /"backend":"(\w+)"/.exec(readFileSync(join(this.dir, node, "agent.log"), "utf8"))?.[1];
    } catch {
      return undefined;
    }
  }

  /** Starts (or restarts) the agent of `node` inside its namespace. */
  startAgent(node: string): number {
    mkdirSync(join(this.dir, node), { recursive: true, mode: 0o700 });
    const p = startDetached([...laceArgv(), "agent", "--node", node, "--store-socket", this.apiSocket, "--cni-socket", this.cniSocket(node),
      "--metrics", "127.0.0.1:9471", "--backend", this.rec.backend ?? "auto", "--bpffs", this.bpffs, ...this.configArgs(), ...(this.rec.agentArgs ?? [])],
      join(this.dir, node, "agent.log"), this.nodeNs(node));
    this.recordPid(`agent:${node}`, p.pid!);
    this.save();
    return p.pid!;
  }

  /** Kills the agent of `node` (SIGKILL: nothing is cleaned up, as in a crash). */
  killAgent(node: string, signal: NodeJS.Signals = "SIGKILL"): void {
    const pid = this.rec.pids[`agent:${node}`];
    if (pid) killGroup(pid, signal);
  }

  /** Runs the CNI executable the way a runtime does; returns its exit status and parsed stdout. */
  async cni(command: string, node: string, env: Record<string, string>, extraConf: Record<string, unknown> = {}): Promise<{ status: number; out: Record<string, unknown> | undefined; raw: string }> {
    const argv = cniArgv();
    const conf = { cniVersion: "1.1.0", name: "lace", type: "lace-cni", agentSocket: this.cniSocket(node), ...extraConf };
    const r = await run(argv, {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", CNI_COMMAND: command, CNI_PATH: dirname(argv[argv.length - 1]), ...env },
      input: JSON.stringify(conf),
      timeoutMs: 120_000,
    });
    let out: Record<string, unknown> | undefined;
    try {
      out = r.stdout.trim() ? JSON.parse(r.stdout) as Record<string, unknown> : undefined;
    } catch {
      out = undefined;
    }
    return { status: r.status, out, raw: r.stdout + r.stderr };
  }

  /** Waits until every agent answers CNI STATUS with success. */
  async waitForAgents(timeoutMs = 90_000): Promise<void> {
    for (let k = 1; k <= this.rec.nodes; k++) {
      const node = this.nodeName(k);
      let last = "";
      await waitFor(`the agent of ${node} to be ready (last STATUS: ${last || "none"})`, async () => {
        const pid = this.rec.pids[`agent:${node}`];
        if (pid && !alive(pid)) throw new Error(`The agent of ${node} exited: see ${join(this.dir, node, "agent.log")}`);
        const r = await this.cni("STATUS", node, {});
        last = r.raw.trim();
        return r.status === 0;
      }, timeoutMs).catch((e) => {
        throw new Error(`${(e as Error).message}; last STATUS answer: ${last}`);
      });
    }
  }

  private async createOrReplace(obj: Resource): Promise<Resource> {
    try {
      return await this.store.create(obj);
    } catch (e) {
      if (!isStoreError(e, "AlreadyExists")) throw e;
      return retryOnConflict(async () => {
        const cur = (await this.store.get<Resource>(obj.kind, obj.metadata.name, obj.metadata.namespace))!;
        return this.store.update({ ...obj, metadata: { ...obj.metadata, resourceVersion: cur.metadata.resourceVersion } });
      });
    }
  }

  /**
   * Applies manifests: every object but pods is written to the store first,
   * then each pod is created and set up through the CNI executable. Objects
   * the product writes itself (Allocations, endpoints, l2 entries) are skipped.
   */
  async apply(resources: Resource[]): Promise<{ skipped: Resource[] }> {
    const skipped = resources.filter((r) => PRODUCT_WRITTEN.has(r.kind));
    const objects = resources.filter((r) => !PRODUCT_WRITTEN.has(r.kind) && r.kind !== "Pod");
    const pods = resources.filter((r) => r.kind === "Pod");
    if (skipped.length) this.progress(`skipped ${skipped.length} object(s) the controller and agents write themselves: ${[...new Set(skipped.map((r) => r.kind))].join(", ")}`);
    const order = ["Namespace", "Topology", "Network", "NetworkBindingPolicy", "NetworkRoutingPolicy"];
    objects.sort((a, b) => rank(order, a.kind) - rank(order, b.kind));
    // Services without a ClusterIP get one, as the API server's allocator gives it.
    const taken = new Set((await this.store.list<Resource>("Service")).items.flatMap(clusterIPs));
    const services = new Map(assignClusterIPs(objects.filter(isService), taken, this.rec.serviceCidrs ?? DEFAULT_SERVICE_CIDRS).map((s) => [`${s.metadata.namespace ?? "default"}/${s.metadata.name}`, s]));
    for (let o of objects) {
      if (isService(o)) o = services.get(`${o.metadata.namespace ?? "default"}/${o.metadata.name}`)!;
      await this.createOrReplace(o);
    }
    for (const svc of services.values()) this.progress(`service ${svc.metadata.namespace ?? "default"}/${svc.metadata.name}: ClusterIP ${clusterIPs(svc).join(" ")}`);
    if (objects.length) this.progress(`applied ${objects.length} object(s): ${summarize(objects)}`);
    const types = await this.networkTypes();
    const forwardingOf = (n: Network) => types.get(n.spec?.type ?? "")?.forwarding;
    await this.addExternalHosts();
    if (this.standIn) await this.assignIdsAndLocators();
    if (pods.length) {
      this.progress("waiting for the agents to be ready");
      await this.waitForAgents();
      const backends = Array.from({ length: this.rec.nodes }, (_, i) => this.nodeName(i + 1)).map((n) => `${n} ${this.agentBackend(n) ?? "?"}`);
      this.progress(`dataplane backends: ${backends.join(", ")}`);
      // What runs depends on the backends the agents chose, known once they are ready.
      const runnable = this.runnableForwarding();
      const later = objects.filter((o) => o.kind === "Network" && !runnable.has(forwardingOf(o as Network) ?? "") && forwardingOf(o as Network) !== "underlay");
      if (later.length) {
        this.progress(`not run (${this.notRunnableWhy()}): ${later.map((n) => `${n.metadata.name} (${(n as Network).spec?.type})`).join(", ")}: their pods are not started and paths to them are not tested`);
      }
    }
    for (const [i, p] of pods.entries()) {
      await this.addPod(p);
      this.count("pods started", i + 1, pods.length);
    }
    return { skipped };
  }

  /**
   * What the controller does first, for when it is not there: a stable id
   * per Network (recorded in its status) and a locator per node cut from the
   * Topology pool (recorded in the Topology status).
   */
  private async assignIdsAndLocators(): Promise<void> {
    const nets = (await this.store.list<Network>("Network")).items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const used = new Set(nets.map((n) => n.status?.id).filter((x): x is number => x !== undefined));
    let next = 1;
    for (const net of nets) {
      if (net.status?.id !== undefined) continue;
      while (used.has(next)) next++;
      used.add(next);
      const id = next;
      await retryOnConflict(async () => {
        const cur = (await this.store.get<Network>("Network", net.metadata.name))!;
        return this.store.updateStatus({ ...cur, status: { ...cur.status, id } });
      });
    }
    const topo = await this.store.get<Topology>("Topology", "default");
    if (!topo) {
      await this.store.create<Topology>({ apiVersion: "lace-cni.io/v1alpha1", kind: "Topology", metadata: { name: "default" }, spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48 } });
    }
    await retryOnConflict(async () => {
      const cur = (await this.store.get<Topology>("Topology", "default"))!;
      const pool = Prefix.parse(cur.spec!.locatorPool);
      const locators: Record<string, string> = { ...cur.status?.locators };
      for (let k = 1; k <= this.rec.nodes; k++) locators[this.nodeName(k)] ??= pool.block(cur.spec!.locatorLength, BigInt(k)).toString();
      return this.store.updateStatus({ ...cur, status: { ...cur.status, locators } });
    });
  }

  /**
   * One host per external network on the fabric, created once: the
   * network's addresses as /32 and /128 (no on-link subnet, so it never
   * answers for another network's range), an address on each underlay
   * subnet (the nodes' egress routes are on-link there: they have no
   * default gateway), and a route back to every running pod through its
   * node (for networks without SNAT, and the answers to inbound probes).
   */
  private async addExternalHosts(): Promise<void> {
    const networks = (await this.store.list<Network>("Network")).items;
    const types = await this.networkTypes();
    const chosen = externalHostAddresses(networks, (n) => types.get(n.spec?.type ?? "")?.forwarding === "underlay");
    const hosts = (this.rec.externals ??= []);
    for (const [network, addresses] of chosen) {
      if (hosts.some((h) => h.network === network)) continue;
      const i = hosts.length + 1;
      if (i > 250) throw new Error(`Too many external networks for the sandbox: ${chosen.size} (at most 250)`);
      const host: SandboxExternal = { network, netns: this.externalNs(network), link: `x${i}`, addresses };
      hosts.push(host);
      this.save();
      sh("ip", ["netns", "add", host.netns]);
      sh("ip", ["-n", this.fabricNs, "link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.netns]);
      sh("ip", ["-n", this.fabricNs, "link", "set", host.link, "master", "fabric0", "up"]);
      sh("ip", ["-n", host.netns, "link", "set", "lo", "up"]);
      sh("ip", ["-n", host.netns, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", host.netns, "addr", "add", `198.18.1.${i}/16`, "dev", "eth0"]);
      sh("ip", ["-n", host.netns, "addr", "add", `fd00:ffff::e:${i}/64`, "dev", "eth0", "nodad"]);
      for (const a of addresses) {
        sh("ip", ["-n", host.netns, "addr", "add", a.includes(":") ? `${a}/128` : `${a}/32`, "dev", "eth0", ...(a.includes(":") ? ["nodad"] : [])]);
      }
      for (const p of this.listPods()) this.routeToPod(host, p, "replace");
      this.progress(addresses.length
        ? `external network ${network}: a host on the fabric (${host.netns}) at ${addresses.join(" ")}`
        : `external network ${network}: NOT RUN — every address of its prefixes belongs to a longer prefix of another network`);
    }
  }

  /** External hosts reach a pod through its node (as a router of the external network would). */
  private routeToPod(host: SandboxExternal, p: SandboxPod, op: "replace" | "del"): void {
    const k = Number(/(\d+)$/.exec(p.node)?.[1]);
    if (p.state !== "running" || !Number.isInteger(k)) return;
    for (const a of p.addresses) {
      const v6 = a.includes(":");
      try {
        sh("ip", ["-n", host.netns, ...(v6 ? ["-6"] : ["-4"]), "route", op, v6 ? `${a}/128` : `${a}/32`, "via", v6 ? this.underlayAddress(k) : this.underlayAddress4(k)]);
      } catch (e) {
        if (op === "replace") throw e;
      }
    }
  }

  /** The hosts standing in for the external networks. */
  listExternals(): SandboxExternal[] {
    return [...(this.rec.externals ?? [])];
  }

  external(network: string): SandboxExternal | undefined {
    return this.rec.externals?.find((h) => h.network === network);
  }

  /** The network the product binds a pod to (binding policies), or why none. */
  private async bindingFor(pod: Resource): Promise<{ network: string | null; why?: string }> {
    const endpoint = await this.store.get<NetworkEndpoint>("NetworkEndpoint", pod.metadata.name, pod.metadata.namespace);
    const policies = (await this.store.list<NetworkBindingPolicy>("NetworkBindingPolicy")).items;
    const ns = await this.store.get<Resource>("Namespace", pod.metadata.namespace!);
    try {
      // As the agent binds it (its own endpoint, else the policies); the node is not known to the policies here.
      return { network: (await bindPod(BindingRules.compile(policies), pod, { endpoint, namespaceLabels: ns?.metadata.labels })).network };
    } catch (e) {
      return { network: null, why: (e as Error).message };
    }
  }

  /** Creates a pod: the Pod object, its network namespace, then CNI ADD through the executable. */
  async addPod(manifest: Resource): Promise<SandboxPod> {
    const namespace = manifest.metadata.namespace ?? "default";
    const name = manifest.metadata.name;
    const spec = { ...(manifest.spec as Record<string, unknown> | undefined) };
    const node = typeof spec.nodeName === "string" && spec.nodeName ? spec.nodeName : this.nodeName((this.nodeRobin++ % this.rec.nodes) + 1);
    spec.nodeName = node;
    if (!(await this.store.get<Resource>("Namespace", namespace))) {
      await this.createOrReplace({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    }
    const pod = await this.createOrReplace({ ...manifest, metadata: { ...manifest.metadata, namespace }, spec });
    const { network, why } = await this.bindingFor(pod);
    const record: SandboxPod = { namespace, name, node, network, addresses: [], state: "not-run" };
    this.pods.set(`${namespace}/${name}`, record);
    const net = network ? await this.store.get<Network>("Network", network) : undefined;
    if (!network || !net) {
      record.reason = why ?? `network "${network}" does not exist`;
      record.failed = true;
    } else if (!this.runnableForwarding().has((await this.networkTypes()).get(net.spec?.type ?? "")?.forwarding ?? "")) {
      record.reason = `network "${network}" is ${net.spec?.type}: ${this.notRunnableWhy()}`;
    } else {
      const netns = this.podNs(namespace, name);
      sh("ip", ["netns", "add", netns]);
      record.netns = netns;
      record.containerId = randomBytes(16).toString("hex");
      this.save();
      const r = await this.cni("ADD", node, this.podEnv(record, pod.metadata.uid ?? ""));
      if (r.status === 0 && r.out) {
        record.state = "running";
        record.addresses = ((r.out.ips as { address: string }[] | undefined) ?? []).map((i) => i.address.split("/")[0]);
      } else {
        record.failed = true;
        record.reason = `CNI ADD failed: ${r.out ? `${r.out.code}: ${r.out.msg}${r.out.details ? ` (${r.out.details})` : ""}` : r.raw.trim()}`;
        sh("ip", ["netns", "del", netns]);
        record.netns = undefined;
      }
    }
    if (record.state === "running") for (const h of this.listExternals()) this.routeToPod(h, record, "replace");
    this.save();
    this.progress(record.state === "running"
      ? `pod ${namespace}/${name}: ${node}, network ${network}, ${record.addresses.join(" ")}`
      : `pod ${namespace}/${name}: NOT RUN — ${record.reason}`);
    return record;
  }

  /** The environment a runtime gives the CNI plugin for this pod. */
  podEnv(p: SandboxPod, uid: string): Record<string, string> {
    return {
      CNI_CONTAINERID: p.containerId!, CNI_NETNS: `/run/netns/${p.netns}`, CNI_IFNAME: CNI_IFNAME,
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${p.namespace};K8S_POD_NAME=${p.name};K8S_POD_INFRA_CONTAINER_ID=${p.containerId};K8S_POD_UID=${uid}`,
    };
  }

  /** Deletes a pod: CNI DEL through the executable, its namespace, the Pod object. */
  async deletePod(namespace: string, name: string): Promise<void> {
    const p = this.pods.get(`${namespace}/${name}`);
    // As on a cluster: the Pod is deleted, then the kubelet stops its sandbox (CNI DEL). A DEL while the pod
    // still exists would keep its binding for a re-created sandbox.
    try {
      await this.store.delete("Pod", name, namespace);
    } catch (e) {
      if (!isStoreError(e, "NotFound")) throw e;
    }
    if (p?.containerId) {
      const r = await this.cni("DEL", p.node, this.podEnv(p, ""));
      if (r.status !== 0) throw new Error(`CNI DEL of ${namespace}/${name} failed: ${r.raw.trim()}`);
    }
    if (p) for (const h of this.listExternals()) this.routeToPod(h, p, "del");
    if (p?.netns) sh("ip", ["netns", "del", p.netns]);
    this.pods.delete(`${namespace}/${name}`);
    this.save();
  }

  listPods(): SandboxPod[] {
    return [...this.pods.values()];
  }

  pod(namespace: string, name: string): SandboxPod | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }

  /**
   * Every ordered pair of running pods, per family both have, then every
   * running pod to every external network's host (`external/<network>`)
   * and back (new connections in), per family both have: the product's own
   * decision (routing policies) against a real ping from the one's
   * namespace (and address, for a host) to the other's address.
   */
  async matrix(): Promise<MatrixEntry[]> {
    const running = this.listPods().filter((p) => p.state === "running");
    const networks = (await this.store.list<Network>("Network")).items;
    const policies = (await this.store.list<NetworkRoutingPolicy>("NetworkRoutingPolicy")).items;
    const rules = RoutingRules.compile(policies, networks);
    const jobs: { entry: MatrixEntry; netns: string; address: string; source?: string }[] = [];
    const inbound: typeof jobs = [];
    for (const a of running) {
      for (const b of running) {
        if (a === b) continue;
        for (const family of ["ipv4", "ipv6"] as const) {
          const has = (p: SandboxPod) => p.addresses.find((x) => x.includes(":") === (family === "ipv6"));
          const dst = has(b);
          if (!has(a) || !dst) continue;
          const d = await rules.decide(a.network!, { address: dst });
          jobs.push({
            entry: { from: `${a.namespace}/${a.name}`, to: `${b.namespace}/${b.name}`, family, expected: d.decision === "allow" ? "allow" : "deny", observed: "deny" },
            netns: a.netns!,
            address: dst,
          });
        }
      }
      for (const h of this.listExternals()) {
        for (const family of ["ipv4", "ipv6"] as const) {
          const has = (addrs: string[]) => addrs.find((x) => x.includes(":") === (family === "ipv6"));
          const dst = has(h.addresses);
          const src = has(a.addresses);
          if (!src || !dst) continue;
          const d = await rules.decide(a.network!, { address: dst });
          jobs.push({
            entry: { from: `${a.namespace}/${a.name}`, to: `external/${h.network}`, family, expected: d.decision === "allow" ? "allow" : "deny", observed: "deny" },
            netns: a.netns!,
            address: dst,
          });
          const back = await rules.decide(h.network, { address: src });
          inbound.push({
            entry: { from: `external/${h.network}`, to: `${a.namespace}/${a.name}`, family, expected: back.decision === "allow" ? "allow" : "deny", observed: "deny" },
            netns: h.netns,
            address: src,
            source: dst,
          });
        }
      }
    }
    // Inbound rows after the rest, grouped by external network.
    const hostOrder = this.listExternals().map((h) => `external/${h.network}`);
    jobs.push(...inbound.sort((x, y) => hostOrder.indexOf(x.entry.from) - hostOrder.indexOf(y.entry.from)));
    let tested = 0;
    await parallel(jobs, 8, async (j) => {
      j.entry.observed = (await this.pingFrom(j.netns, j.address, j.source)) ? "allow" : "deny";
      this.count("pairs tested", ++tested, jobs.length);
    });
    return [...jobs.map((j) => j.entry), ...await this.serviceRows(running, networks, rules)];
  }

  /**
   * Every running pod to every Service with a ClusterIP, per family both
   * have: expected from the policies (the Service's network by the binding
   * policies, then source network → that network by the routing policies,
   * and at least one running endpoint), observed by TCP connections to each
   * of its TCP ports, answered by a responder in each endpoint pod that
   * replies with its own name. A row is observed `allow` when every port
   * answered and every answer came from one of the expected endpoints.
   */
  async serviceRows(
    running = this.listPods().filter((p) => p.state === "running"),
    networks?: Network[],
    rules?: RoutingRules,
  ): Promise<MatrixEntry[]> {
    networks ??= (await this.store.list<Network>("Network")).items;
    rules ??= RoutingRules.compile((await this.store.list<NetworkRoutingPolicy>("NetworkRoutingPolicy")).items, networks);
    const services = (await this.store.list<Resource>("Service")).items.filter((s) => isService(s) && clusterIPs(s).length > 0);
    if (services.length === 0) return [];
    const binding = BindingRules.compile((await this.store.list<NetworkBindingPolicy>("NetworkBindingPolicy")).items);
    const podObjects = new Map((await this.store.list<Resource>("Pod")).items.map((p) => [`${p.metadata.namespace ?? "default"}/${p.metadata.name}`, p]));
    const jobs: { entry: MatrixEntry; netns: string; targets: { ip: string; port: number }[]; tries: number }[] = [];
    for (const svc of services) {
      const namespace = svc.metadata.namespace ?? "default";
      const ns = await this.store.get<Resource>("Namespace", namespace);
      let network: string | null = null;
      try {
        network = (await binding.decide({ kind: "Service", namespace, name: svc.metadata.name, labels: svc.metadata.labels, annotations: svc.metadata.annotations, namespaceLabels: ns?.metadata.labels })).network;
      } catch {
        network = null; // no binding policy places it: nothing forwards its ClusterIP
      }
      const endpoints = running.filter((p) => p.network === network && selects(svc, { namespace: p.namespace, labels: podObjects.get(`${p.namespace}/${p.name}`)?.metadata.labels }));
      await this.startResponders(svc, endpoints, podObjects);
      const ports = tcpTargetPorts(svc, undefined).map((p) => p.port);
      if (ports.length === 0) continue;
      const known = network !== null && networks.some((n) => n.metadata.name === network);
      const decide = rules;
      for (const a of running) {
        for (const family of ["ipv4", "ipv6"] as const) {
          const ip = clusterIPs(svc).find((x) => x.includes(":") === (family === "ipv6"));
          if (!ip || !a.addresses.some((x) => x.includes(":") === (family === "ipv6"))) continue;
          const allowed = known && endpoints.length > 0 && (await decide.decide(a.network!, { network: network! })).decision === "allow";
          jobs.push({
            entry: {
              from: `${a.namespace}/${a.name}`, to: `svc/${namespace}/${svc.metadata.name}`, family,
              expected: allowed ? "allow" : "deny", observed: "deny", answeredBy: [], endpoints: endpoints.map((p) => p.name).sort(),
            },
            netns: a.netns!,
            targets: ports.map((port) => ({ ip, port })),
            // Enough connections that each endpoint is all but sure to answer one (random choice).
            tries: Math.min(40, Math.max(6, 6 * endpoints.length)),
          });
        }
      }
    }
    await parallel(jobs, 4, async (j) => {
      // The Service reaches the agents through the controller's binding, then an apply: an allowed row waits for it.
      const end = Date.now() + (j.entry.expected === "allow" ? 20_000 : 0);
      for (;;) {
        const names = new Set<string>();
        let everyPort = true;
        for (const t of j.targets) {
          const got = (await connectAnswers(j.netns, t.ip, t.port, j.tries)).filter(Boolean);
          if (got.length === 0) everyPort = false;
          for (const n of got) names.add(n);
        }
        j.entry.answeredBy = [...names].sort();
        const fromEndpoints = j.entry.answeredBy.every((n) => j.entry.endpoints!.includes(n));
        j.entry.observed = everyPort && names.size > 0 && fromEndpoints ? "allow" : "deny";
        if (j.entry.observed === j.entry.expected || Date.now() > end) break;
        await sleep(500);
      }
    });
    return jobs.map((j) => j.entry);
  }

  /**
   * A TCP responder in each endpoint pod, on the Service's target ports,
   * replying with the pod's name (both families). Started once per pod and
   * port; stopped with the pod's namespace.
   */
  private async startResponders(svc: Resource, endpoints: SandboxPod[], pods: Map<string, Resource>): Promise<void> {
    const started = (this.rec.responders ??= {});
    for (const p of endpoints) {
      const key = `${p.namespace}/${p.name}`;
      const want = tcpTargetPorts(svc, pods.get(key)).map((x) => x.target).filter((t) => t > 0 && !(started[key] ?? []).includes(t));
      if (want.length === 0 || !p.netns) continue;
      const proc = startDetached(["python3", "-c", responderScript(p.name, want)], join(this.dir, `responder-${p.namespace}-${p.name}.log`), p.netns);
      if (proc.pid) this.recordPid(`responder:${key}:${want.join(",")}`, proc.pid);
      started[key] = [...started[key] ?? [], ...want];
      this.save();
      for (const port of want) {
        await waitFor(`the responder of ${key} on port ${port}`, async () => (await connectAnswers(p.netns!, "127.0.0.1", port, 1))[0] === p.name, 10_000);
      }
    }
  }

  /** One ping exchange from a pod (two tries, so one slow first packet is not a deny). */
  ping(from: SandboxPod, address: string): Promise<boolean> {
    return this.pingFrom(from.netns!, address);
  }

  /** One ping exchange from an external network's host, from its address of the destination's family. */
  pingFromExternal(network: string, address: string): Promise<boolean> {
    const h = this.external(network);
    const source = h?.addresses.find((a) => a.includes(":") === address.includes(":"));
    if (!h || !source) throw new Error(`No host of external network "${network}" with an ${address.includes(":") ? "IPv6" : "IPv4"} address`);
    return this.pingFrom(h.netns, address, source);
  }

  private async pingFrom(netns: string, address: string, source?: string): Promise<boolean> {
    const r = await run(["ip", "netns", "exec", netns, "ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-w", "2", ...(source ? ["-I", source] : []), address], { timeoutMs: 10_000 });
    const m = /(\d+) received/.exec(r.stdout);
    return m ? Number(m[1]) > 0 : false;
  }

  /** Tears everything down: pods through CNI DEL, then processes, namespaces and the directory. */
  async down(): Promise<void> {
    for (const p of this.listPods()) {
      if (p.containerId && this.rec.pids[`agent:${p.node}`] && alive(this.rec.pids[`agent:${p.node}`])) {
        await this.cni("DEL", p.node, this.podEnv(p, "")).catch(() => undefined);
      }
    }
    teardown(this.rec);
  }

  /** Opens the sandbox recorded in `dir` (left up with `--keep`); undefined when none is. */
  static open(dir = defaultDir(), progress: (line: string) => void = () => undefined): Sandbox | undefined {
    const file = join(dir, "sandbox.json");
    if (!existsSync(file)) return undefined;
    const sb = new Sandbox(JSON.parse(readFileSync(file, "utf8")) as SandboxRecord, progress);
    for (const p of sb.rec.pods ?? []) sb.pods.set(`${p.namespace}/${p.name}`, p);
    return sb;
  }

  /**
   * Moves a running pod of a bridged (l2) network to another node while it
   * runs, as a VM's live migration does: the pod comes up on `to` with the
   * same MAC and addresses (its binding is kept: CNI ADD there takes the
   * endpoint over), announces itself from there as a guest does, and its
   * old sandbox goes (CNI DEL on the old node). A ping every 10 ms from
   * another endpoint of the network runs throughout; the result says how
   * many were lost and for how long no reply came.
   */
  async migrate(namespace: string, name: string, to: string): Promise<{ pod: string; from: string; to: string; lost: number; convergenceMs: number }> {
    const key = `${namespace}/${name}`;
    const p = this.pods.get(key);
    if (!p || p.state !== "running" || !p.netns || !p.containerId) throw new Error(`Cannot migrate ${key}: no running pod of that name in this sandbox`);
    const nodes = Array.from({ length: this.rec.nodes }, (_, i) => this.nodeName(i + 1));
    if (!nodes.includes(to)) throw new Error(`Cannot migrate ${key}: --to: expected one of ${nodes.join(", ")}, got "${to}"`);
    if (to === p.node) throw new Error(`Cannot migrate ${key}: it already runs on ${to}`);
    const net = p.network ? await this.store.get<Network>("Network", p.network) : undefined;
    const forwarding = (await this.networkTypes()).get(net?.spec?.type ?? "")?.forwarding;
    if (forwarding !== "bridged") {
      throw new Error(`Cannot migrate ${key}: only pods of bridged (l2) networks keep their addresses on another node; network "${p.network}" forwards ${forwarding ?? "nothing"}`);
    }
    const probe = this.listPods().find((q) => q !== p && q.state === "running" && q.network === p.network && q.netns);
    if (!probe) throw new Error(`Cannot migrate ${key}: no other running pod of network "${p.network}" to ping it from`);
    const target = p.addresses.find((a) => !a.includes(":")) ?? p.addresses[0];
    const pod = await this.store.get<Resource>("Pod", name, namespace);
    if (!pod) throw new Error(`Cannot migrate ${key}: its Pod object is gone`);

    const pinger = spawn("ip", ["netns", "exec", probe.netns!, "ping", "-n", "-D", "-O", "-i", "0.01", "-W", "1", target], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    pinger.stdout.on("data", (d) => (out += d));
    const ended = new Promise<void>((r) => pinger.on("close", () => r()));
    try {
      await new Promise((r) => setTimeout(r, 500));
      // The target side: a new sandbox of the same pod on `to`.
      const moved: SandboxPod = { ...p, node: to, netns: `${p.netns}-m${Date.now().toString(36)}`, containerId: randomBytes(16).toString("hex") };
      sh("ip", ["netns", "add", moved.netns!]);
      const r = await this.cni("ADD", to, this.podEnv(moved, pod.metadata.uid ?? ""));
      if (r.status !== 0) {
        sh("ip", ["netns", "del", moved.netns!]);
        throw new Error(`Cannot migrate ${key}: CNI ADD on ${to} failed: ${r.raw.trim()}`);
      }
      // The guest announces itself from its new place (a VM sends a gratuitous ARP or any packet).
      void run(["ip", "netns", "exec", moved.netns!, "ping", "-n", "-c", "1", "-W", "1", probe.addresses.find((a) => !a.includes(":")) ?? probe.addresses[0]], { timeoutMs: 3000 });
      // The source side goes.
      await this.cni("DEL", p.node, this.podEnv(p, pod.metadata.uid ?? ""));
      sh("ip", ["netns", "del", p.netns!]);
      this.pods.set(key, moved);
      this.save();
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      pinger.kill("SIGINT");
      await ended;
    }
    const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0);
    const received = Number(/(\d+) received/.exec(out)?.[1] ?? 0);
    const times = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) => Number(m[1]) * 1000);
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
    if (sent === 0 || times.length === 0) throw new Error(`Cannot measure the migration of ${key}: the ping from ${probe.namespace}/${probe.name} got no reply at all`);
    return { pod: key, from: p.node, to, lost: sent - received, convergenceMs: Math.round(gap) };
  }

  /** Tears down the sandbox recorded in `dir` (`lace sandbox down`). Returns false when there was none. */
  static downFromRecord(dir = defaultDir()): boolean {
    const file = join(dir, "sandbox.json");
    if (!existsSync(file)) return false;
    teardown(JSON.parse(readFileSync(file, "utf8")) as SandboxRecord);
    return true;
  }
}

function teardown(rec: SandboxRecord): void {
  // After a crash, `down` may run long after: a recorded pid now running something else is left alone.
  // A gone leader's group is still signalled: Linux does not reuse a pid while its process group lives.
  const pids = Object.entries(rec.pids).filter(([key, pid]) => {
    const now = startTime(pid);
    return now === undefined || rec.starts?.[key] === undefined || rec.starts[key] === now;
  }).map(([, pid]) => pid);
  for (const pid of pids) killGroup(pid, "SIGTERM");
  const deadline = Date.now() + 3000;
  while (pids.some(alive) && Date.now() < deadline) sh("sleep", ["0.05"]);
  for (const pid of pids) killGroup(pid, "SIGKILL");
  const externals = new Set((rec.externals ?? []).map((h) => h.netns));
  const ours = (ns: string) =>
    ns === `${rec.prefix}lace-fabric` || /^node-\d+$/.test(ns.slice(rec.prefix.length)) && ns.startsWith(rec.prefix) || ns.startsWith(`${rec.prefix}pod-`) ||
    externals.has(ns);
  let names: string[] = [];
  try {
    names = readdirSync("/run/netns");
  } catch {
    names = [];
  }
  for (const ns of names.filter(ours)) {
    try {
      for (const pid of sh("ip", ["netns", "pids", ns]).split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
    } catch {
      // nothing inside
    }
    try {
      sh("ip", ["netns", "del", ns]);
    } catch {
      // gone already
    }
  }
  // The agents' bpffs: unmounted (its pins go with it) before the directory is removed.
  spawnSync("umount", [join(rec.dir, "bpf")], { stdio: "ignore" });
  rmSync(rec.dir, { recursive: true, force: true });
}

/** A TCP server per port (IPv4 and IPv6) answering every connection with `name`. */
function responderScript(name: string, ports: number[]): string {
  return `
import socket, threading
def serve(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try: c.sendall(${JSON.stringify(name)}.encode())
        finally: c.close()
ts = [threading.Thread(target=serve, args=a, daemon=True) for p in ${JSON.stringify(ports)} for a in ((socket.AF_INET, "0.0.0.0", p), (socket.AF_INET6, "::", p))]
for t in ts: t.start()
for t in ts: t.join()
`;
}

/** Opens `count` TCP connections to ip:port from a namespace, one after another; what each got ("" when it failed, 1 s each). */
async function connectAnswers(netns: string, ip: string, port: number, count: number): Promise<string[]> {
  const fam = ip.includes(":") ? "AF_INET6" : "AF_INET";
  const code = `
import socket, sys
out = []
for i in range(${count}):
    s = socket.socket(socket.${fam}, socket.SOCK_STREAM); s.settimeout(1)
    try:
        s.connect((${JSON.stringify(ip)}, ${port})); out.append(s.recv(253).decode())
    except Exception:
        out.append("")
    finally:
        s.close()
sys.stdout.write("\\n".join(out))
`;
  const r = await run(["ip", "netns", "exec", netns, "python3", "-c", code], { timeoutMs: 5_000 + count * 1_100 });
  return r.stdout.split("\n").slice(0, count);
}

function rank(order: string[], kind: string): number {
  const i = order.indexOf(kind);
  return i < 0 ? order.length : i;
}

function summarize(objs: Resource[]): string {
  const counts = new Map<string, number>();
  for (const o of objs) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(", ");
}

async function parallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

export { sleep };
