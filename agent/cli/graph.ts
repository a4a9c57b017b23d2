/**
 * `lace graph (-f <file|dir> | --kubeconfig <f> | --db <f> | --store-socket <s>) [--svg <out.svg>] [--json]`:
 * who may reach whom, between networks: every routing decision as an edge
 * (graph_model.ts). With `--svg`, a picture (graph_svg.ts); otherwise one
 * line per edge, or the graph as JSON.
 *
 * Exits 0 with a graph, 1 when the manifests or the store cannot be read
 * or the picture cannot be written.
 *
 * @example
 * lace graph -f examples/ --svg docs/reachability.svg
 * lace graph --store-socket /run/lace-sandbox/api.sock --json
 */
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { formatProblem, type Resource } from "../../core/mod.ts";
import { loadRuntime } from "../config/runtime.ts";
import { readManifestFiles } from "./files.ts";
import { type GraphEdge, reachabilityGraph } from "./graph_model.ts";
import { isLive, type LiveFlags, readLive, withLiveFlags } from "./live.ts";

interface GraphOptions extends LiveFlags {
  filename?: string[];
  svg?: string;
  json?: boolean;
  config?: string;
}

/** One edge as a line: `backend -> corp  allow  backend-to-corp`. */
export function formatEdge(e: GraphEdge): string {
  const what = e.kind === "reply" ? `replies only (the way back of ${e.policy ?? "the default"})` : `${e.kind}${e.policy ? ` by ${e.policy}` : " by default"}`;
  return `${e.from} -> ${e.to}  ${what}${e.prefixes?.length ? ` for ${e.prefixes.join(", ")}` : ""}`;
}

/** Runs `lace graph`; returns the exit code. */
export async function runGraph(o: GraphOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (!o.filename === !isLive(o)) {
    err("lace graph: give either -f <manifests> or one of --kubeconfig, --db, --store-socket (live state)");
    return 1;
  }
  let resources: Resource[];
  if (o.filename) {
    const read = await readManifestFiles(o.filename);
    if (read.problems.length) {
      for (const p of read.problems) err(formatProblem(p));
      return 1;
    }
    resources = read.resources;
  } else {
    try {
      ({ resources } = await readLive(o));
    } catch (e) {
      err(`lace graph: cannot read the live state: ${(e as Error).message}`);
      return 1;
    }
  }
  const { networkTypes, extensions } = await loadRuntime(o.config);
  const graph = await reachabilityGraph(resources, { networkTypes, extensions });
  if (o.svg) {
    const { renderGraphSvg } = await import("./graph_svg.ts");
    const svg = await renderGraphSvg(graph, { title: `Who may reach whom: ${graph.networks.length} networks, ${graph.edges.filter((e) => e.kind !== "reply").length} decisions by policy` });
    try {
      writeFileSync(o.svg, svg);
    } catch (e) {
      err(`lace graph: --svg: cannot write ${o.svg}: ${(e as Error).message}`);
      return 1;
    }
    err(`lace graph: wrote ${o.svg} (${graph.networks.length} networks, ${graph.edges.length} edges)`);
  }
  if (o.json) out(JSON.stringify(graph, null, 2));
  else if (!o.svg) for (const e of graph.edges) out(formatEdge(e));
  return 0;
}

/** Registers `graph` on the `lace` program. */
export function registerGraph(program: Command): void {
  withLiveFlags(program
    .command("graph")
    .description("Draw who may reach whom: networks as nodes, routing decisions as edges (Allow, Deny, replies only); from manifests or live state")
    .option("-f, --filename <path>", "a manifest file or a directory of them (repeatable)", (value: string, previous: string[] = []) => [...previous, value]))
    .option("--svg <file>", "write the picture as SVG to this file")
    .option("--json", "print the graph as JSON {networks, edges}")
    .option("--config <file>", "lace configuration whose plugins provide the network types (default: the built-in plugins)")
    .action(async (o: GraphOptions) => {
      process.exitCode = await runGraph(o, (l) => console.log(l), (l) => console.error(l));
    });
}
