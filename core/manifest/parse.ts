/**
 * Manifest parsing: multi-document YAML (or JSON) text into objects, with
 * syntax errors as problems that name the file and line. Portable: the
 * caller reads the file.
 *
 * @example
 * const { resources, problems } = parseManifests(text, "examples/networks.yaml");
 * problems.map(formatProblem); // ["examples/bad.yaml:7: invalid YAML: ..."]
 */
import { LineCounter, parseAllDocuments } from "yaml";
import { describe } from "../ip/mod.ts";
import type { Problem } from "../resources/problem.ts";
import type { Resource } from "../resources/types.ts";

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses every document of `text`. Empty documents are skipped and
 * `kind: List` documents are expanded into their items. Documents with a
 * syntax error, or that are not objects, become problems and no resource.
 * Resources are returned unvalidated: see `validateAll`.
 */
export function parseManifests(text: string, source: string): { resources: Resource[]; problems: Problem[] } {
  const lineCounter = new LineCounter();
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  const at = (offset: number) => `${source}:${lineCounter.linePos(offset).line}`;
  for (const doc of parseAllDocuments(text, { lineCounter, prettyErrors: false })) {
    if (doc.errors.length > 0) {
      const lines = new Set<string>();
      for (const err of doc.errors) {
        const where = at(err.pos[0]);
        if (lines.has(where)) continue;
        lines.add(where);
        const col = lineCounter.linePos(err.pos[0]).col;
        const what = err.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
        problems.push({ object: where, path: "", message: `invalid YAML: ${what[0].toLowerCase()}${what.slice(1)} (column ${col})` });
      }
      continue;
    }
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      problems.push({ object: at(doc.range[0]), path: "", message: `invalid YAML: ${(e as Error).message}` });
      continue;
    }
    if (value === null || value === undefined) continue;
    const where = at(doc.contents.range?.[0] ?? doc.range[0]);
    if (!isObj(value)) {
      problems.push({
        object: where,
        path: "",
        message: `expected a Kubernetes object (a mapping with apiVersion, kind and metadata), got ${describe(value)}`,
      });
      continue;
    }
    if (value.kind === "List") {
      if (!Array.isArray(value.items)) {
        problems.push({ object: where, path: "items", message: `expected a list of objects in a List, got ${describe(value.items)}` });
        continue;
      }
      value.items.forEach((item: unknown, i: number) => {
        if (isObj(item)) resources.push(item as unknown as Resource);
        else {
          problems.push({ object: where, path: `items[${i}]`, message: `expected a Kubernetes object, got ${describe(item)}` });
        }
      });
      continue;
    }
    resources.push(value as unknown as Resource);
  }
  return { resources, problems };
}
