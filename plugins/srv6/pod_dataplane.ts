/**
 * The srv6 dataplane as the core's PodDataplane (what the plugin's
 * `create` hands the agent): apply, attach and detach come from
 * Srv6Dataplane; CHECK and GC read the kernel through the plugin's own
 * netlink helpers (the pod side from inside the pod's namespace). With
 * `applyInWorker` (the agent's `background` option), applies run in a
 * worker thread of their own, and attach and detach in another.
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
import type { WorkerRequest } from "./apply_worker.ts";
import { podNetworks } from "./plan.ts";
import { STATE_MISMATCH, StateSender } from "./state_transfer.ts";

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class Srv6PodDataplane implements PodDataplane {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  /** States go to the applier as the changes since the last one (state_transfer.ts). */
  private readonly states = new StateSender();

  /**
   * `applier` applies desired states, `plugger` attaches and detaches pods,
   * each in a thread of its own (see apply_worker.ts); without them, this
   * thread does all.
   */
  private constructor(readonly dp: Srv6Dataplane, private readonly applier?: Worker, private readonly plugger?: Worker) {
    for (const worker of [applier, plugger]) {
      worker?.on("message", (m: { id?: number; result?: unknown; error?: string }) => {
        const p = m.id === undefined ? undefined : this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id!);
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.result);
      });
      worker?.on("error", (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
    }
  }

  /**
   * Opens the node's dataplane. With `applyInWorker`, applies run in a
   * worker thread, and pods are plugged in and out in another (netlink
   * sends and `nft` are synchronous), so CNI requests are served, and the
   * store's replies read, while the kernel works.
   */
  static async open(opts: Srv6Options & { applyInWorker?: boolean }): Promise<Srv6PodDataplane> {
    const dp = await Srv6Dataplane.open(opts);
    if (!opts.applyInWorker) return new Srv6PodDataplane(dp);
    const workerData = { node: opts.node, netns: opts.netns, backend: dp.backend, bpffs: opts.bpffs };
    const start = async (): Promise<Worker> => {
      // The bundle has the worker as an entry of its own; the sources register tsx in the worker first
      // (Node 20 does not carry the parent's --import hooks into workers).
      const worker = import.meta.url.endsWith(".ts")
        ? new Worker(`import("tsx/esm/api").then((t) => { t.register(); return import(${JSON.stringify(new URL("./apply_worker.ts", import.meta.url).href)}); });`, { eval: true, workerData })
        : new Worker(bundledWorker(), { workerData });
      await new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        worker.once("error", reject);
      });
      return worker;
    };
    const [applier, plugger] = await Promise.all([start(), start()]);
    return new Srv6PodDataplane(dp, applier, plugger);
  }

  private call<T>(worker: Worker, request: DistributiveOmit<WorkerRequest, "id">): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      worker.postMessage({ ...request, id });
    });
  }

  capabilities(): Promise<DataplaneCapabilities> {
    return this.dp.capabilities();
  }

  async apply(state: NodeDesiredState): Promise<ApplyReport> {
    if (!this.applier) return this.dp.apply(state);
    let report: ApplyReport;
    try {
      report = await this.call<ApplyReport>(this.applier, { op: "apply", state: this.states.encode(state) });
    } catch (e) {
      // After a failure the next state goes whole; one the worker could not decode goes whole now.
      this.states.reset();
      if (!(e as Error).message.startsWith(STATE_MISMATCH)) throw e;
      report = await this.call<ApplyReport>(this.applier, { op: "apply", state: this.states.encode(state) });
    }
    // The worker applied it: this thread reads the sightings, and names their networks by this state;
    // the pod thread plugs pods into the networks as this state has them (posted before any later attach).
    this.dp.rememberNetworks(state);
    if (this.plugger) void this.call(this.plugger, { op: "podNetworks", networks: [...podNetworks(state)] }).catch(() => undefined);
    return report;
  }

  async close(): Promise<void> {
    for (const w of [this.applier, this.plugger]) if (w) await w.terminate();
    await this.dp.close();
  }

  attachPod(pod: PodAttachment): Promise<void> {
    return this.plugger ? this.call<void>(this.plugger, { op: "attach", pod }) : this.dp.attachPod(pod);
  }

  detachPod(pod: { hostIfname: string; netns?: string }): Promise<void> {
    return this.plugger ? this.call<void>(this.plugger, { op: "detach", pod }) : this.dp.detachPod(pod);
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
