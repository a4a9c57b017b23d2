/**
 * The `lace` command line. Each subcommand lives in its own module beside
 * this one and registers itself on the program.
 *
 * @example
 * lace validate -f examples/
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command } from "commander";
import { registerAgent } from "./agent.ts";
import { registerController } from "./controller.ts";
import { registerExplain } from "./explain.ts";
import { registerGraph } from "./graph.ts";
import { registerInstallCni } from "./install_cni.ts";
import { registerPlan } from "./plan.ts";
import { registerSandbox } from "./sandbox.ts";
import { registerStatus } from "./status.ts";
import { registerStore } from "./store.ts";
import { registerValidate } from "./validate.ts";
import { PACKAGE_VERSION } from "../package_root.ts";

export function buildProgram(): Command {
  const program = new Command("lace")
    .description("lace-cni: isolated networks joined by routing policies, carried across nodes in SRv6")
    .version(PACKAGE_VERSION, "-V, --version", "print the version of lace-cni")
    .showHelpAfterError()
    .exitOverride();
  // Subcommands register here, one line each.
  registerValidate(program);
  registerStore(program);
  registerExplain(program);
  registerPlan(program);
  registerController(program);
  registerAgent(program);
  registerSandbox(program);
  registerInstallCni(program);
  registerStatus(program);
  registerGraph(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    if (typeof code === "number") return code;
    console.error(`lace: ${(e as Error).message}`);
    return 1;
  }
}

/**
 * True when Node.js was asked to run this very module (`node dist/lace.js`,
 * `tsx agent/cli/main.ts`); false when `bin/lace.js` imports it, which calls
 * `main` itself. The symlink npm installs for the bin is resolved first.
 */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
