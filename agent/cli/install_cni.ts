/**
 * `lace install-cni`: copies the `lace-cni` executable and its conflist
 * into a node's CNI directories, atomically and idempotently
 * (agent/cni/install.ts). The agent DaemonSet's init container runs it with
 * the host's /opt/cni/bin and /etc/cni/net.d mounted under /host.
 *
 * @example
 * lace install-cni --bin-dir /host/opt/cni/bin --conf-dir /host/etc/cni/net.d --agent-socket /run/lace/cni.sock
 */
import { join } from "node:path";
import type { Command } from "commander";
import { installCni } from "../cni/install.ts";
import { DEFAULT_AGENT_SOCKET } from "../cni/spec.ts";
import { PACKAGE_ROOT } from "../package_root.ts";

interface InstallCniFlags {
  binDir: string;
  confDir: string;
  agentSocket: string;
  executable: string;
}

/** Registers `install-cni` on the `lace` program. */
export function registerInstallCni(program: Command): void {
  program
    .command("install-cni")
    .description("Install the lace-cni executable and its conflist into a node's CNI directories (write then rename; a no-op when they are current)")
    .option("--bin-dir <dir>", "the CNI bin dir", "/opt/cni/bin")
    .option("--conf-dir <dir>", "the CNI configuration dir", "/etc/cni/net.d")
    .option("--agent-socket <path>", "the agent's CNI socket on the node, written into the conflist", DEFAULT_AGENT_SOCKET)
    .option("--executable <file>", "the compiled lace-cni to install", join(PACKAGE_ROOT, "dist", "lace-cni"))
    .action((o: InstallCniFlags) => {
      const r = installCni({ executable: o.executable, binDir: o.binDir, confDir: o.confDir, agentSocket: o.agentSocket });
      for (const f of [r.executable, r.conflist]) console.log(`${f.changed ? "installed" : "unchanged"}: ${f.path}`);
    });
}
