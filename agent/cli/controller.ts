/**
 * `lace controller [--kubeconfig <file>] [--db <path>]`: runs the
 * controller (network ids, locators, blocks, l2 addresses, leak
 * collection, service binding, status conditions and events, per-node
 * desired state) against a cluster, or against the embedded store when no
 * kubeconfig is given or found. Runs until SIGTERM or SIGINT; with
 * `--once`, makes one pass and exits (0 when it converged, 1 on an error).
 *
 * @example
 * lace controller --kubeconfig ~/.kube/config --default-network default
 * lace controller --db .lace/store.db --once
 */
import type { Command } from "commander";
import { pino } from "pino";
import { connectStore } from "../store/connect.ts";
import { Controller, type ReconcileReport } from "../controller/controller.ts";
import { loadRuntime } from "../config/runtime.ts";

export interface ControllerCliOptions {
  kubeconfig?: string;
  db?: string;
  listen?: string;
  once?: boolean;
  defaultNetwork?: string;
  config?: string;
  resync: number;
  nodeGrace: number;
  /** pino level; default "info". */
  logLevel?: string;
}

/** A one-line summary of a pass, for logs. */
export function summarize(r: ReconcileReport): Record<string, unknown> {
  return {
    networkStatusWrites: r.networkStatusWrites,
    locatorsAssigned: r.locatorsAssigned.length,
    nodesReleased: r.nodesReleased,
    blocksAcquired: r.blocksAcquired.length,
    l2Addresses: r.l2Addresses,
    addressesReclaimed: r.addressesReclaimed,
    blocksReturned: r.blocksReturned.length,
    servicesMoved: r.servicesMoved,
    usageWrites: r.usageWrites.length,
  };
}

export async function runController(o: ControllerCliOptions): Promise<number> {
  const log = pino({ name: "lace-controller", level: o.logLevel ?? "info" }, pino.destination(2));
  const { extensions, defaultNetwork, networkTypes } = await loadRuntime(o.config);
  const connected = await connectStore({ kubeconfig: o.kubeconfig, db: o.db, listen: o.listen });
  const controller = new Controller(connected.store, {
    defaultNetwork: o.defaultNetwork ?? defaultNetwork,
    extensions,
    networkTypes,
    resyncMs: o.resync,
    nodeGrace: o.nodeGrace,
    log: (level, message, fields) => log[level](fields ?? {}, message),
  });
  try {
    if (o.once) {
      const report = await controller.reconcile();
      log.info(summarize(report), "Reconciled once");
      return 0;
    }
    let published = 0;
    controller.builder.onChange(() => published++);
    await controller.start();
    log.info({ nodes: controller.builder.nodes().length }, "Controller running");
    const stats = setInterval(() => {
      if (published) log.info({ published }, "Published node states");
      published = 0;
    }, 60_000);
    await new Promise<void>((resolve) => {
      process.once("SIGTERM", () => resolve());
      process.once("SIGINT", () => resolve());
    });
    clearInterval(stats);
    return 0;
  } catch (e) {
    log.error({ err: e }, `Controller failed: ${(e as Error).message}`);
    return 1;
  } finally {
    await controller.stop();
    await connected.close();
  }
}

function positiveMs(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number of milliseconds, got "${v}"`);
    return n;
  };
}

export function registerController(program: Command): void {
  program
    .command("controller")
    .description("Run the controller: ids, locators, IPAM, policies, status and per-node desired state")
    .option("--kubeconfig <file>", "talk to this cluster (default: $KUBECONFIG, in-cluster, else the embedded store)")
    .option("--db <path>", "the embedded store's database when there is no cluster", ".lace/store.db")
    .option("--listen <address>", "where the embedded store listens (default unix:<db dir>/api.sock)")
    .option("--once", "make one reconcile pass and exit")
    .option("--default-network <name>", "where pods and services no binding policy matches go (default: the configuration's)")
    .option("--config <file>", "lace configuration whose plugins provide rule facts and operators (default: the built-in plugins)")
    .option("--resync <ms>", "periodic full reconcile", positiveMs("--resync"), 30_000)
    .option("--node-grace <ms>", "how long a deleted node keeps its blocks and locator", positiveMs("--node-grace"), 300_000)
    .action(async (o: ControllerCliOptions) => {
      process.exitCode = await runController(o);
    });
}
