/**
 * `lace validate` as a stand-alone entry, for runtimes that run the
 * TypeScript sources directly (`deno task validate -f examples/`).
 *
 * @example
 * deno run --allow-read --allow-env agent/cli/validate_main.ts -f examples/
 */
import { Command } from "commander";
import { registerValidate } from "./validate.ts";

const program = new Command("lace").exitOverride();
registerValidate(program);
try {
  await program.parseAsync(["validate", ...process.argv.slice(2)], { from: "user" });
} catch (e) {
  const code = (e as { exitCode?: number }).exitCode;
  if (typeof code !== "number") console.error(`lace: ${(e as Error).message}`);
  process.exitCode = typeof code === "number" ? code : 1;
}
