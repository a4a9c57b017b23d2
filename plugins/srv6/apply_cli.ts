/**
 * Applies a NodeDesiredState (JSON file) to a node from a fresh process and
 * prints the ApplyReport as JSON. Used by the restart test (a new process
 * must change nothing and disturb no traffic) and handy by hand.
 *
 * @example
 * node --import tsx plugins/srv6/apply_cli.ts /run/netns/node-1 state.json
 */
import { readFileSync } from "node:fs";
import type { NodeDesiredState } from "../../core/mod.ts";
import { Srv6Dataplane } from "./dataplane.ts";

const [netns, file] = process.argv.slice(2);
if (!netns || !file) {
  console.error("Usage: apply_cli.ts <netns path or name> <desired-state.json>");
  process.exit(2);
}
const state = JSON.parse(readFileSync(file, "utf8")) as NodeDesiredState;
const dp = await Srv6Dataplane.open({ node: state.node, netns });
try {
  console.log(JSON.stringify(await dp.apply(state)));
} finally {
  await dp.close();
}
