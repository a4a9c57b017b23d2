/**
 * Entry point of the `lace-cni` executable (bundled to dist/lace-cni.cjs,
 * run by bin/lace-cni): reads stdin, runs the invocation, prints the result.
 *
 * It runs once per pod start, so every millisecond here is the product's
 * latency: stdin is read and the result written with blocking calls on the
 * file descriptors (creating `process.stdin`/`process.stdout` streams costs
 * about 3 ms of start-up), and the process exits as soon as the result is
 * written instead of waiting for Node.js to wind down its handles.
 *
 * @example
 * CNI_COMMAND=VERSION bin/lace-cni < /dev/null
 */
import { readFileSync, writeSync } from "node:fs";
import { runPlugin } from "./plugin.ts";
import { CNI_ERRORS, cniError } from "./spec.ts";

/**
 * All of stdin. A non-blocking descriptor (EAGAIN: data not there yet)
 * falls back to the stream, which waits for it; no stdin at all (EBADF)
 * reads as empty, which VERSION does not need and the others report.
 */
function readStdin(): string | Promise<string> {
  try {
    return readFileSync(0, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EBADF") return "";
    if (code !== "EAGAIN" && code !== "EWOULDBLOCK") throw e;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      process.stdin.on("data", (c: Buffer) => chunks.push(c));
      process.stdin.on("error", reject);
      process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
  }
}

/** Writes all of `text` to stdout, which may be a pipe that accepts it in parts. */
function writeStdout(text: string): void {
  const bytes = Buffer.from(text, "utf8");
  for (let off = 0; off < bytes.length;) {
    try {
      off += writeSync(1, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
  }
}

// No top-level await: the bundle is CommonJS (it starts sooner than an ES module).
void (async () => {
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (e) {
    writeStdout(JSON.stringify(cniError(CNI_ERRORS.IO_FAILURE, "Cannot read the network configuration from stdin", (e as Error).message)) + "\n");
    process.exit(1);
  }
  const { exitCode, stdout } = await runPlugin(process.env, stdin);
  if (stdout) writeStdout(stdout + "\n");
  process.exit(exitCode);
})();
