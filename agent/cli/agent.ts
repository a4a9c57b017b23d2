/**
 * `lace agent --node <name>`: the per-node agent (CNI endpoint, store
 * watcher, dataplane reconciler). Runs until SIGTERM or SIGINT.
 *
 * @example
 * lace agent --node node-1 --store-socket /run/lace/api.sock --cni-socket /run/lace/cni.sock
 */
import type { Command } from "commander";
import type { AgentRunOptions } from "../node/run.ts";

/** Registers `agent` on the `lace` program. */
export function registerAgent(program: Command): void {
  program
    .command("agent")
    .description("Run the node agent: serve the CNI plugin, watch the store, keep the node's dataplane in its desired state")
    .requiredOption("--node <name>", "this node's name")
    .option("--kubeconfig <path>", "talk to this Kubernetes API server")
    .option("--db <path>", "start the embedded store on this SQLite file")
    .option("--store-socket <path>", "talk to a running embedded store on this unix socket")
    .option("--netns <path>", "the node's network namespace (default: the agent's own)")
    .option("--cni-socket <path>", "where the CNI plugin reaches the agent", "/run/lace/cni.sock")
    .option("--debug-socket <path>", "the debug endpoint `lace status` and `lace explain` read the node's state and datapath from (a root-only unix socket), or off (default: debug.sock beside the CNI socket)")
    .option("--metrics <address>", "Prometheus metrics on 127.0.0.1:<port>, unix:<path>, or off", "127.0.0.1:9471")
    .option("--config <path>", "lace.yaml: plugins and defaultNetwork (default: the built-in plugins)")
    .option("--default-network <name>", "where pods that no binding policy matches go (overrides the configuration's)")
    .option("--backend <backend>", "how the srv6 dataplane carries SRv6: auto, kernel (seg6 lwtunnel) or bpf (tc-eBPF); overrides the configuration's dataplane.backend")
    .option("--bpffs <dir>", "the bpffs the bpf backend pins its maps in (mounted when it is not one); overrides dataplane.bpffs (default /sys/fs/bpf)")
    .option("--learning-age <ms>", "l2 networks: how long a learned MAC or address lives without being seen (default 300000)")
    .option("--resync <ms>", "how often the unchanged state is applied again, repairing what changed behind the agent's back (0: never; default 30000)")
    .option("--flap <moves/windowMs/holdMs>", "l2 networks: a MAC that moves between nodes more than <moves> times within <windowMs> is frozen where it is for <holdMs> (default 5/10000/60000)")
    .option("--log-level <level>", "pino log level", "info")
    .action(async (o: AgentRunOptions) => {
      if (typeof process.getuid === "function" && process.getuid() !== 0) {
        throw new Error("lace agent needs root: it programs the kernel and serves a root-only socket");
      }
      // Loaded here so other commands never load the kernel dataplane (a native addon).
      const { startAgent } = await import("../node/run.ts");
      const running = await startAgent(o);
      await new Promise<void>((resolve) => {
        process.once("SIGTERM", resolve);
        process.once("SIGINT", resolve);
      });
      await running.stop();
    });
}
