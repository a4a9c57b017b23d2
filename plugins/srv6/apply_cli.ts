/**
 * Applies a NodeDesiredState (JSON file) to a node from a fresh process and
 * prints the ApplyReport as JSON. Used by the restart test (a new process
 * must change nothing and disturb no traffic) and handy by hand.
 *
 * @example
 * node --import tsx plugins/srv6/apply_cli.ts /run/netns/node-1 state.json --backend bpf --bpffs /sys/fs/bpf
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { NodeDesiredState } from "../../core/plugin/mod.ts";
import { BACKEND_CHOICES, Srv6Dataplane, type BackendChoice } from "./dataplane.ts";

const { positionals, values } = parseArgs({ allowPositionals: true, options: { backend: { type: "string" }, bpffs: { type: "string" } } });
const [netns, file] = positionals;
if (!netns || !file) {
  console.error("Usage: apply_cli.ts <netns path or name> <desired-state.json> [--backend auto|kernel|bpf] [--bpffs DIR]");
  process.exit(2);
}
const backend = (values.backend ?? "auto") as BackendChoice;
if (!BACKEND_CHOICES.includes(backend)) {
  console.error(`Invalid --backend "${backend}": expected one of ${BACKEND_CHOICES.join(", ")}`);
  process.exit(2);
}
const state = JSON.parse(readFileSync(file, "utf8")) as NodeDesiredState;
const dp = await Srv6Dataplane.open({ node: state.node, netns, backend, bpffs: values.bpffs });
try {
  console.log(JSON.stringify(await dp.apply(state)));
} finally {
  await dp.close();
}
