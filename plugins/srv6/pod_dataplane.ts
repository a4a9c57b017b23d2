/**
 * The srv6 dataplane as the core's PodDataplane (what the plugin's
 * `create` hands the agent): apply, attach and detach come from
 * Srv6Dataplane; CHECK and GC read the kernel through the plugin's own
 * netlink helpers (the pod side from inside the pod's namespace). With
 * `applyInWorker` (the agent's `background` option), applies run in a
 * worker thread of their own.
 *
 * @example
 * const dp = await Srv6PodDataplane.open({ node: "node-1", netns: "/run/netns/node-1" });
 * await dp.checkPod(attachment); // undefined when the pod is as attached
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { ApplyReport, DataplaneCapabilities, DataplaneTrace, NodeDesiredState, PodAttachment, PodCheck, PodDataplane, TraceQuery } from "../../core/plugin/mod.ts";
import { Srv6Dataplane, type Srv6Options } from "./dataplane.ts";
import { NetlinkClient } from "./netlink.ts";
import { POD_ALIAS_PREFIX, readAddrs, readLink, readLinks } from "./kernel.ts";
import { netnsExists, netnsPath } from "./netns.ts";
import { traceDestination } from "./trace.ts";

export class Srv6PodDataplane implements PodDataplane {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ApplyReport) => void; reject: (e: Error) => void }>();

  private constructor(readonly dp: Srv6Dataplane, private readonly worker?: Worker) {
    worker?.on("message", (m: { id?: number; report?: ApplyReport; error?: string }) => {
      const p = m.id === undefined ? undefined : this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id!);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.report!);
    });
    worker?.on("error", (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
  }

  /**
   * Opens the node's dataplane. With `applyInWorker`, applies run in a
   * worker thread of their own (the srv6 plugin calls `nft` synchronously),
   * so CNI requests are served while the node's state is being applied.
   */
  static async open(opts: Srv6Options & { applyInWorker?: boolean }): Promise<Srv6PodDataplane> {
    const dp = await Srv6Dataplane.open(opts);
    if (!opts.applyInWorker) return new Srv6PodDataplane(dp);
    const workerData = { node: opts.node, netns: opts.netns, backend: dp.backend, bpffs: opts.bpffs };
    // The bundle has the worker as an entry of its own; the sources register tsx in the worker first
    // (Node 20 does not carry the parent's --import hooks into workers).
    const worker = import.meta.url.endsWith(".ts")
      ? new Worker(`import("tsx/esm/api").then((t) => { t.register(); return import(${JSON.stringify(new URL("./apply_worker.ts", import.meta.url).href)}); });`, { eval: true, workerData })
      : new Worker(bundledWorker(), { workerData });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
    });
    return new Srv6PodDataplane(dp, worker);
  }

  capabilities(): Promise<DataplaneCapabilities> {
    return this.dp.capabilities();
  }

  apply(state: NodeDesiredState): Promise<ApplyReport> {
    if (!this.worker) return this.dp.apply(state);
    const id = this.nextId++;
    return new Promise<ApplyReport>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ id, state });
    }).then((report) => {
      // The worker applied it: this thread reads the sightings, and names their networks by this state.
      this.dp.rememberNetworks(state);
      return report;
    });
  }

  async close(): Promise<void> {
    if (this.worker) await this.worker.terminate();
    await this.dp.close();
  }

  attachPod(pod: PodAttachment): Promise<void> {
    return this.dp.attachPod(pod);
  }

  detachPod(pod: { hostIfname: string; netns?: string }): Promise<void> {
    return this.dp.detachPod(pod);
  }

  /** What the l2 datapath learned since the last call (bpf backend; none on the kernel backend). */
  async sightings(): Promise<{ network: string; mac: string; ip?: string }[]> {
    try {
      return (await this.dp.l2Sightings()).map(({ network, mac, ip }) => ({ network, mac, ...(ip ? { ip } : {}) }));
    } catch {
      // Nothing loadable (yet): nothing learned.
      return [];
    }
  }

  /** The bpf datapath's packet counters; undefined on the kernel backend. */
  counters(): Record<string, number> | undefined {
    try {
      return this.dp.bpfStats();
    } catch {
      // Not loadable (yet): the scrape goes on without these counters.
      return undefined;
    }
  }

  /** What the kernel and the bpf maps hold for a network's new connections to an address (trace.ts). */
  trace(query: TraceQuery): Promise<DataplaneTrace> {
    return traceDestination(this.dp, query);
  }

  async podPorts(): Promise<string[]> {
    const links = await readLinks(this.dp.netlink);
    return [...links.byName.values()].filter((l) => l.alias?.startsWith(POD_ALIAS_PREFIX)).map((l) => l.name);
  }

  async checkPod(pod: PodAttachment): Promise<PodCheck> {
    const host = await readLink(this.dp.netlink, pod.hostIfname);
    if (!host) return `the host interface ${pod.hostIfname} does not exist`;
    if (!host.alias?.startsWith(POD_ALIAS_PREFIX)) return `the host interface ${pod.hostIfname} is not a lace-cni pod port`;
    if (!host.up) return `the host interface ${pod.hostIfname} is down`;
    const path = netnsPath(pod.netns);
    if (!netnsExists(path)) return `the pod's network namespace ${path} does not exist`;
    const nl = NetlinkClient.open(path);
    try {
      const links = await readLinks(nl);
      const eth = links.byName.get(pod.ifname);
      if (!eth) return `the interface ${pod.ifname} is missing in ${path}`;
      if (!eth.up) return `the interface ${pod.ifname} in ${path} is down`;
      if (eth.mtu !== pod.mtu) return `the interface ${pod.ifname} in ${path} has MTU ${eth.mtu}, expected ${pod.mtu}`;
      const have = new Set((await readAddrs(nl, links, new Set([pod.ifname]))).map((a) => a.cidr));
      const missing = pod.addresses.filter((a) => !have.has(a));
      if (missing.length) return `the interface ${pod.ifname} in ${path} lacks ${missing.join(", ")}`;
      return undefined;
    } finally {
      nl.close();
    }
  }
}

/**
 * The worker's bundle, `dist/srv6-apply-worker.js`: beside the chunk that
 * holds this code, or one level up when rollup put it under `dist/plugins/`.
 */
function bundledWorker(): URL {
  const here = new URL("./srv6-apply-worker.js", import.meta.url);
  return existsSync(fileURLToPath(here)) ? here : new URL("../srv6-apply-worker.js", import.meta.url);
}
