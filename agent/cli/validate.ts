/**
 * `lace validate -f <file|dir> [-f ...]`: checks manifests offline. Prints
 * one line per problem, `<Kind>/<name>: <field.path>: <message>`, and
 * exits 1; or prints `ok: N resources` and exits 0. Network types come
 * from plugins: the built-in l3, l2 and external ones, or those a
 * configuration file lists (`--config lace.yaml`).
 *
 * @example
 * lace validate -f examples/
 * lace validate -f net.yaml -f policies/ --config /etc/lace/lace.yaml
 */
import type { Command } from "commander";
import { loadRuntime } from "../config/runtime.ts";
import { formatProblem } from "../../core/resources/problem.ts";
import { type NetworkTypeLookup, validateAll } from "../../core/resources/validate.ts";
import { readManifestFiles } from "./files.ts";

/** Loads the network types from `configPath`, or the built-in ones (agent/config/runtime.ts). */
export async function networkTypesFrom(configPath?: string): Promise<NetworkTypeLookup> {
  return (await loadRuntime(configPath)).networkTypes;
}

/**
 * Validates the manifests under `paths`, writing result lines to `out`.
 * Returns the exit code: 0 valid, 1 problems found.
 */
export async function runValidate(
  paths: string[],
  opts: { networkTypes: NetworkTypeLookup; out: (line: string) => void },
): Promise<number> {
  const { resources, problems } = await readManifestFiles(paths);
  problems.push(...validateAll(resources, { networkTypes: opts.networkTypes }));
  if (resources.length === 0 && problems.length === 0) {
    problems.push({ object: paths.join(", "), path: "", message: "no manifests found (expected *.yaml, *.yml or *.json files)" });
  }
  for (const p of problems) opts.out(formatProblem(p));
  if (problems.length > 0) return 1;
  opts.out(`ok: ${resources.length} resource${resources.length === 1 ? "" : "s"}`);
  return 0;
}

/** Registers `validate` on the `lace` program. */
export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("Check manifests offline: every problem, one line each, with its field path")
    .requiredOption(
      "-f, --filename <path>",
      "a manifest file or a directory of them (*.yaml, *.yml, *.json; repeatable)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option("--config <file>", "lace configuration whose plugins provide the network types (default: the built-in l3, l2, external)")
    .action(async (opts: { filename: string[]; config?: string }) => {
      const networkTypes = await networkTypesFrom(opts.config);
      process.exitCode = await runValidate(opts.filename, { networkTypes, out: (line) => console.log(line) });
    });
}
