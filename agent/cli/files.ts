/**
 * Reads manifest files and directories for the command line.
 *
 * @example
 * const { resources, problems } = await readManifestFiles(["examples/"]);
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseManifests } from "../../core/manifest/parse.ts";
import type { Problem } from "../../core/resources/problem.ts";
import type { Resource } from "../../core/resources/types.ts";

const MANIFEST = /\.(ya?ml|json)$/i;
/** Directories a recursive walk skips: hidden ones, dependencies, and test fixtures (which may be invalid on purpose). */
const SKIPPED_DIRS = new Set(["node_modules", "testdata"]);

async function collect(path: string, out: string[], explicit: boolean): Promise<void> {
  const info = await stat(path);
  if (info.isDirectory()) {
    if (!explicit && SKIPPED_DIRS.has(basename(path))) return;
    const names = (await readdir(path)).filter((n) => !n.startsWith(".")).sort();
    for (const name of names) await collect(join(path, name), out, false);
  } else if (explicit || MANIFEST.test(path)) {
    out.push(path);
  }
}

/**
 * Parses every manifest in `paths`: files as given, directories
 * recursively (`*.yaml`, `*.yml`, `*.json`, in sorted order, skipping
 * hidden, `node_modules` and `testdata` directories). A missing
 * path is a problem, not an exception.
 */
export async function readManifestFiles(paths: string[]): Promise<{ resources: Resource[]; problems: Problem[] }> {
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  for (const path of paths) {
    const files: string[] = [];
    try {
      await collect(path, files, true);
    } catch (e) {
      const code = (e as { code?: string }).code;
      problems.push({
        object: path,
        path: "",
        message: code === "ENOENT" ? "no such file or directory" : `cannot read: ${(e as Error).message}`,
      });
      continue;
    }
    for (const file of files) {
      const parsed = parseManifests(await readFile(file, "utf8"), file);
      resources.push(...parsed.resources);
      problems.push(...parsed.problems);
    }
  }
  return { resources, problems };
}
