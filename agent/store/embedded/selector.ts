/**
 * Kubernetes label selectors, as the API server parses them from
 * `?labelSelector=`; field selectors come from core's one parser.
 *
 * @example
 * const m = parseLabelSelector("team=a,tier in (web,api),!legacy");
 * m({ team: "a", tier: "web" }); // true
 */
import { StoreError } from "../../../core/mod.ts";

export type LabelMatcher = (labels: Record<string, string> | undefined) => boolean;

/** Splits on commas that are not inside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== "");
}

/** Parses label selector text; an unparsable term is an `Invalid` StoreError naming it. */
export function parseLabelSelector(text: string | undefined | null): LabelMatcher {
  if (!text) return () => true;
  const tests: LabelMatcher[] = terms(text).map((term) => {
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const [, key, op, list] = m;
      const values = new Set(list.split(",").map((v) => v.trim()).filter((v) => v !== ""));
      return op === "in"
        ? (l) => l?.[key] !== undefined && values.has(l[key])
        : (l) => l?.[key] === undefined || !values.has(l[key]);
    }
    if ((m = /^([^\s!=(),]+)\s*!=\s*([^\s!=(),]*)$/.exec(term))) {
      const [, key, value] = m;
      return (l) => l?.[key] !== value;
    }
    if ((m = /^([^\s!=(),]+)\s*==?\s*([^\s!=(),]*)$/.exec(term))) {
      const [, key, value] = m;
      return (l) => l?.[key] === value;
    }
    if ((m = /^!\s*([^\s!=(),]+)$/.exec(term))) {
      const key = m[1];
      return (l) => l?.[key] === undefined;
    }
    if ((m = /^([^\s!=(),]+)$/.exec(term))) {
      const key = m[1];
      return (l) => l?.[key] !== undefined;
    }
    throw new StoreError("Invalid", `Invalid label selector term "${term}": expected key, !key, key=value, key!=value, key in (...) or key notin (...)`);
  });
  return (labels) => tests.every((t) => t(labels));
}

/** Field selectors: one parser for every store (core/store/store.ts). */
export { type FieldMatcher, parseFieldSelector } from "../../../core/mod.ts";
