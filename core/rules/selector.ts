/**
 * Kubernetes label selectors as json-rules-engine conditions, and the
 * requirements of a selector that an index can key on.
 *
 * A selector tests labels through a keyed fact (`label`, `namespaceLabel`,
 * `sourceNetworkLabel`...) whose value is the label's value or `null` when
 * the label is absent, so each requirement is one built-in operator:
 * `In` → `in`, `NotIn` → `notIn` (an absent label is not in the set, as in
 * Kubernetes), `Exists` → `notEqual null`, `DoesNotExist` → `equal null`.
 *
 * @example
 * selectorConditions({ matchLabels: { tier: "backend" } }, "label", "spec.selector");
 * // [{ name: "spec.selector.matchLabels.tier", fact: "label", params: { key: "tier" }, operator: "equal", value: "backend" }]
 */
import type { LabelSelector } from "../resources/types.ts";

/** One compiled leaf condition, named after the field it came from. */
export interface LeafCondition {
  name: string;
  fact: string;
  operator: string;
  value: unknown;
  params?: Record<string, unknown>;
}

/** A problem in a policy's spec, at a field path. */
export interface FieldProblem {
  path: string;
  message: string;
}

/**
 * A requirement every match must meet, usable as an index key: the label
 * `key` is present and, when `values` is set, equal to one of them.
 */
export interface SelectorAnchor {
  key: string;
  values?: string[];
}

/** Compiles a selector to leaf conditions over a keyed label fact; reports malformed requirements. */
export function selectorConditions(
  selector: LabelSelector | undefined,
  fact: string,
  path: string,
  problems: FieldProblem[] = [],
): LeafCondition[] {
  if (selector === undefined || selector === null) return [];
  if (typeof selector !== "object" || Array.isArray(selector)) {
    problems.push({ path, message: `expected a label selector object, got ${JSON.stringify(selector)}` });
    return [];
  }
  const out: LeafCondition[] = [];
  const labels = selector.matchLabels;
  if (labels !== undefined) {
    if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
      problems.push({ path: `${path}.matchLabels`, message: `expected a map of label values, got ${JSON.stringify(labels)}` });
    } else {
      for (const key of Object.keys(labels).sort()) {
        const value = labels[key];
        if (typeof value !== "string") {
          problems.push({ path: `${path}.matchLabels.${key}`, message: `expected a string, got ${JSON.stringify(value)}` });
          continue;
        }
        out.push({ name: `${path}.matchLabels.${key}`, fact, params: { key }, operator: "equal", value });
      }
    }
  }
  const exprs = selector.matchExpressions;
  if (exprs !== undefined) {
    if (!Array.isArray(exprs)) {
      problems.push({ path: `${path}.matchExpressions`, message: `expected a list, got ${JSON.stringify(exprs)}` });
      return out;
    }
    exprs.forEach((req, i) => {
      const at = `${path}.matchExpressions[${i}]`;
      if (typeof req?.key !== "string" || req.key === "") {
        problems.push({ path: `${at}.key`, message: `expected a label key, got ${JSON.stringify(req?.key)}` });
        return;
      }
      const params = { key: req.key };
      const values = req.values;
      switch (req.operator) {
        case "In":
        case "NotIn":
          if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== "string")) {
            problems.push({
              path: `${at}.values`,
              message: `operator ${req.operator} needs a non-empty list of strings, got ${JSON.stringify(values)}`,
            });
            return;
          }
          out.push({ name: at, fact, params, operator: req.operator === "In" ? "in" : "notIn", value: [...values] });
          return;
        case "Exists":
        case "DoesNotExist":
          if (values !== undefined && (!Array.isArray(values) || values.length > 0)) {
            problems.push({ path: `${at}.values`, message: `operator ${req.operator} takes no values, got ${JSON.stringify(values)}` });
            return;
          }
          out.push({ name: at, fact, params, operator: req.operator === "Exists" ? "notEqual" : "equal", value: null });
          return;
        default:
          problems.push({
            path: `${at}.operator`,
            message: `expected one of In, NotIn, Exists, DoesNotExist, got ${JSON.stringify(req.operator)}`,
          });
      }
    });
  }
  return out;
}

/** The requirements of a (well-formed) selector that every matching object meets. */
export function selectorAnchors(selector: LabelSelector | undefined): SelectorAnchor[] {
  if (!selector || typeof selector !== "object") return [];
  const out: SelectorAnchor[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (typeof value === "string") out.push({ key, values: [value] });
  }
  for (const req of Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) {
    if (typeof req?.key !== "string") continue;
    if (req.operator === "In" && Array.isArray(req.values) && req.values.length > 0) out.push({ key: req.key, values: [...req.values] });
    else if (req.operator === "Exists") out.push({ key: req.key });
  }
  return out;
}
