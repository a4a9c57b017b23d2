/**
 * Entry point of the `lace-cni` executable (bundled to dist/lace-cni.cjs,
 * run by bin/lace-cni): reads stdin, runs the invocation, prints the result.
 *
 * @example
 * CNI_COMMAND=VERSION bin/lace-cni < /dev/null
 */
import { runPlugin } from "./plugin.ts";

const chunks: Buffer[] = [];
process.stdin.on("data", (c: Buffer) => chunks.push(c));
process.stdin.on("end", async () => {
  const { exitCode, stdout } = await runPlugin(process.env, Buffer.concat(chunks).toString("utf8"));
  if (stdout) process.stdout.write(stdout + "\n");
  process.exitCode = exitCode;
});
