#!/usr/bin/env node
// The `lace` command: runs the bundled command line in dist/lace.js.
import { existsSync } from "node:fs";

const bundle = new URL("../dist/lace.js", import.meta.url);
if (!existsSync(bundle)) {
  console.error(`lace: ${bundle.pathname} is missing: run \`npm run build\` in ${new URL("..", import.meta.url).pathname} first`);
  process.exit(1);
}
const { main } = await import(bundle.href);
process.exit(await main(process.argv.slice(2)));
