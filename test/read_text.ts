/**
 * Reads a text file next to a test on Node.js and Deno alike, choosing the
 * runtime's own reader at run time so the importing test stays portable.
 *
 * @example
 * const yaml = await readText(new URL("./testdata/lace.yaml", import.meta.url));
 */
export async function readText(url: URL): Promise<string> {
  const deno = (globalThis as { Deno?: { readTextFile(u: URL): Promise<string> } }).Deno;
  if (deno !== undefined) return await deno.readTextFile(url);
  // A computed specifier keeps static analysis from treating this module as Node-only.
  const fsModule = "node:fs/promises";
  const fs = (await import(fsModule)) as { readFile(u: URL, enc: "utf8"): Promise<string> };
  return await fs.readFile(url, "utf8");
}
