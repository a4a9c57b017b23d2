/**
 * The `lace` command line. Each subcommand lives in its own module beside
 * this one and registers itself on the program.
 *
 * @example
 * lace validate -f examples/
 */
import { Command } from "commander";

export function buildProgram(): Command {
  const program = new Command("lace")
    .description("lace-cni: isolated networks joined by routing policies, carried across nodes in SRv6")
    .showHelpAfterError()
    .exitOverride();
  // Subcommands register here, one line each.
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

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("/lace.js")) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
