/**
 * `npm run bench <name>`: runs `bench/<name>.ts`. With no name, lists them.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join } from "node:path";

const dir = fileURLToPath(new URL(".", import.meta.url));
const names = readdirSync(dir).filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.startsWith("_") && !f.endsWith("_test.ts"))
  .map((f) => f.slice(0, -3)).sort();
const name = process.argv[2];
if (!name || !names.includes(name)) {
  console.error(name ? `Unknown benchmark "${name}": expected one of ${names.join(", ")}` : `Usage: npm run bench <name>: one of ${names.join(", ")}`);
  process.exit(2);
}
console.log(`# bench ${name} — ${new Date().toISOString()} — node ${process.version}`);
await import(pathToFileURL(join(dir, `${name}.ts`)).href);
