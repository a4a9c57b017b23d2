/**
 * `lace sandbox -f <file|dir> [--nodes N] [--json] [--svg <file>] [--keep]`: runs the
 * manifests on an emulated cluster (see agent/sandbox/) and prints the
 * connectivity matrix, expected against observed. Exit status 1 when any
 * observed result differs. `lace sandbox down` removes a kept sandbox.
 *
 * @example
 * sudo lace sandbox -f examples/ --nodes 3
 * sudo lace sandbox down
 */
import { writeFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { formatProblem, type Resource } from "../../core/mod.ts";
import { readManifestFiles } from "./files.ts";
import { ProgressLine } from "./progress.ts";

interface SandboxCliOptions {
  file: string[];
  nodes: string;
  json?: boolean;
  keep?: boolean;
  svg?: string;
  prefix?: string;
  backend: string;
  config?: string;
  agentResync?: string;
}

function requireRoot(): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("lace sandbox needs root: it creates network namespaces and programs their kernels (run it with sudo)");
  }
}

/**
 * The matrix as a table: one row per ordered pair and family, mismatches
 * marked; Service rows (`svc/<namespace>/<name>`) add the pods that answered.
 */
export function formatMatrix(rows: { from: string; to: string; family: string; expected: string; observed: string; answeredBy?: string[] }[]): string {
  if (rows.length === 0) return "no pairs of running pods to test";
  const answered = rows.some((r) => r.answeredBy);
  const head = ["from", "to", "family", "expected", "observed", "", ...(answered ? ["answered by"] : [])];
  const body = rows.map((r) => [
    r.from, r.to, r.family, r.expected, r.observed, r.expected === r.observed ? "ok" : "MISMATCH",
    ...(answered ? [r.answeredBy ? r.answeredBy.join(",") || "-" : ""] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), ...body.map(line)].join("\n");
}

async function runSandbox(o: SandboxCliOptions, controller: boolean): Promise<void> {
  requireRoot();
  const nodes = Number(o.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) throw new Error(`Invalid --nodes "${o.nodes}": expected an integer from 1 to 64`);
  const { resources, problems } = await readManifestFiles(o.file);
  if (problems.length) throw new Error(`Cannot read the manifests:\n${problems.map(formatProblem).join("\n")}`);
  const { Sandbox } = await import("../sandbox/sandbox.ts");
  // Counts on stderr (an updating line on a terminal); --json keeps stdout to the one JSON object.
  const counter = new ProgressLine(process.stderr, "lace sandbox");
  const say = (line: string) => counter.line(o.json ? process.stderr : process.stdout, `lace sandbox: ${line}`);
  const sb = await Sandbox.up({ nodes, prefix: o.prefix, progress: say, count: (what, done, total) => counter.count(what, done, total), controller, backend: o.backend, config: o.config,
    ...(o.agentResync !== undefined ? { agentArgs: ["--resync", o.agentResync] } : {}) });
  // Interrupted: nothing half-built stays behind (unless asked to keep it).
  const interrupted = () => {
    say(o.keep ? "interrupted; kept (remove with `lace sandbox down`)" : "interrupted; tearing down");
    if (!o.keep) Sandbox.downFromRecord(sb.dir);
    process.exit(130);
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  let mismatches = 0;
  const failures: string[] = [];
  try {
    await sb.apply(resources as Resource[]);
    const pods = sb.listPods();
    const notRun = pods.filter((p) => p.state !== "running");
    if (notRun.length) {
      say(`${notRun.length} pod(s) not run yet:`);
      for (const p of notRun) say(`  ${p.namespace}/${p.name}: ${p.reason}`);
    }
    say(sb.listExternals().length
      ? "testing every ordered pair of running pods, and each pod to and from each external network's host (ping, per family)"
      : "testing every ordered pair of running pods (ping, per family)");
    if (resources.some((r) => r.kind === "Service" && !r.apiVersion.startsWith("lace-cni.io/"))) {
      say("and each pod to each Service's ClusterIP (TCP to each port, answered by the endpoint pods with their names)");
    }
    const matrix = await sb.matrix();
    mismatches = matrix.filter((m) => m.expected !== m.observed).length;
    const failed = pods.filter((p) => p.failed);
    if (failed.length) failures.push(`${failed.length} pod(s) could not be run: ${failed.map((p) => `${p.namespace}/${p.name}`).join(", ")}`);
    if (matrix.length === 0) failures.push("no pair of running pods was tested: a sandbox run that checks nothing has not shown anything");
    if (o.svg) {
      const { renderMatrixSvg } = await import("./matrix_svg.ts");
      try {
        writeFileSync(o.svg, renderMatrixSvg(matrix, { title: `lace sandbox -f ${o.file.join(" ")}: expected (policies) against observed (ping)` }));
        say(`wrote the matrix to ${o.svg}`);
      } catch (e) {
        failures.push(`--svg: cannot write ${o.svg}: ${(e as Error).message}`);
      }
    }
    if (o.json) {
      const out = {
        pods: pods.map((p) => ({ namespace: p.namespace, name: p.name, node: p.node, network: p.network, addresses: p.addresses })),
        matrix,
      };
      process.stdout.write(JSON.stringify(out) + "\n");
    } else {
      process.stdout.write(formatMatrix(matrix) + "\n");
      say(mismatches ? `${mismatches} of ${matrix.length} result(s) differ from what the policies decide` : `all ${matrix.length} result(s) match what the policies decide`);
    }
  } finally {
    counter.end();
    if (o.keep) say(`kept: namespaces ${sb.prefix}node-1..${sb.nodeCount}, pods, store and agents; remove with \`lace sandbox down\``);
    else {
      say("tearing down");
      await sb.down();
    }
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
  for (const f of failures) say(`FAILED: ${f}`);
  if (mismatches || failures.length) process.exitCode = 1;
}

/** Registers `sandbox` and `sandbox down` on the `lace` program. */
export function registerSandbox(program: Command): void {
  const sandbox = program
    .command("sandbox")
    .description("Run manifests on an emulated multi-node cluster (network namespaces, real agents and CNI) and print the connectivity matrix")
    .option("-f, --file <path...>", "manifest files or directories", ["examples/"])
    .option("--nodes <n>", "number of nodes", "3")
    .option("--json", "end with one JSON object {pods, matrix}")
    .option("--svg <file>", "also draw the matrix as an SVG grid of expected against observed")
    .option("--keep", "leave the sandbox up (remove it later with `lace sandbox down`)")
    .option("--config <file>", "lace configuration for the agents and the controller (third-party plugins); default: the built-in plugins")
    .addOption(new Option("--backend <backend>", "the agents' srv6 backend: auto picks kernel seg6 where the kernel has it, else tc-eBPF").choices(["auto", "kernel", "bpf"]).default("auto"))
    .option("--agent-resync <ms>", "the agents' --resync: how often they apply an unchanged state again (0: never)")
    // Tests run sandboxes side by side: a prefix on every namespace name and its own directory.
    .addOption(new Option("--prefix <prefix>").hideHelp())
    .action((o: SandboxCliOptions) => runSandbox(o, program.commands.some((c) => c.name() === "controller")));
  sandbox
    .command("down")
    .description("Tear down a sandbox left up with --keep")
    .action(async (_o: unknown, cmd: Command) => {
      requireRoot();
      const { prefix } = cmd.optsWithGlobals<{ prefix?: string }>();
      const { defaultDir, Sandbox } = await import("../sandbox/sandbox.ts");
      console.log(Sandbox.downFromRecord(defaultDir(prefix)) ? "lace sandbox: torn down" : "lace sandbox: no sandbox is up");
    });
  sandbox
    .command("migrate <pod>")
    .description("Move a running pod of an l2 network to another node live (same MAC and addresses), under a 10 ms ping from another endpoint of its network; prints the pings lost and how long no reply came")
    .requiredOption("--to <node>", "the node to move it to")
    .option("--json", "end with one JSON object {pod, from, to, lost, convergenceMs}")
    .action(async (podArg: string, o: { to: string; json?: boolean }, cmd: Command) => {
      requireRoot();
      const [namespace, name, ...rest] = podArg.split("/");
      if (!namespace || !name || rest.length) throw new Error(`<pod>: expected namespace/name, got "${podArg}"`);
      // `--json` and `--prefix` are also options of `sandbox` itself, which takes them first.
      const { prefix, json } = cmd.optsWithGlobals<{ prefix?: string; json?: boolean }>();
      const { defaultDir, Sandbox } = await import("../sandbox/sandbox.ts");
      const sb = Sandbox.open(defaultDir(prefix), (line) => console.error(`lace sandbox: ${line}`));
      if (!sb) throw new Error("lace sandbox migrate: no sandbox is up (start one with `lace sandbox --keep`)");
      const r = await sb.migrate(namespace, name, o.to);
      console.error(`lace sandbox: ${r.pod} moved from ${r.from} to ${r.to}: ${r.lost} ping(s) lost, ${r.convergenceMs} ms without a reply`);
      if (o.json || json) console.log(JSON.stringify(r));
    });
}
