/**
 * A policy's own `conditions` tree (json-rules-engine syntax): checked
 * against the facts and operators the engine knows before it is compiled,
 * and, after evaluation, flattened into the outcome of each test for
 * `lace explain` and error messages.
 *
 * @example
 * const problems: FieldProblem[] = [];
 * const tree = prepareConditions({ all: [{ fact: "node", operator: "equal", value: "n1" }] }, "spec.conditions", engine, problems);
 * // tree names each test after its path: "spec.conditions.all[0]"
 */
import type { EvaluatedCondition, PolicyEngine } from "./engine.ts";
import type { FieldProblem } from "./selector.ts";

/** The outcome of one test in a rule. */
export interface ConditionOutcome {
  /** Where the test comes from: `spec.selector.matchLabels.tier`, `spec.conditions.any[1]`. */
  source: string;
  /** The test, readable: `label("tier") equal "backend"`. */
  test: string;
  /** Passed, failed, or `null` when json-rules-engine did not need to evaluate it. */
  passed: boolean | null;
  /** The fact's value as the test saw it. */
  actual?: unknown;
}

const BOOLEAN_KEYS = ["all", "any", "not"] as const;

/**
 * Checks a `conditions` tree and returns a copy whose every node is named
 * after its path, or undefined for an absent or empty tree. Problems are
 * appended to `problems`.
 */
export function prepareConditions(
  tree: unknown,
  path: string,
  engine: PolicyEngine,
  problems: FieldProblem[],
): Record<string, unknown> | undefined {
  if (tree === undefined || tree === null) return undefined;
  if (typeof tree !== "object" || Array.isArray(tree)) {
    problems.push({ path, message: `expected a json-rules-engine condition object, got ${JSON.stringify(tree)}` });
    return undefined;
  }
  if (Object.keys(tree).length === 0) return undefined;
  return prepareNode(tree as Record<string, unknown>, path, engine, problems);
}

function prepareNode(
  node: Record<string, unknown>,
  path: string,
  engine: PolicyEngine,
  problems: FieldProblem[],
): Record<string, unknown> | undefined {
  const bool = BOOLEAN_KEYS.filter((k) => k in node);
  if ("condition" in node) {
    problems.push({ path: `${path}.condition`, message: "shared condition references are not supported: write the condition inline" });
    return undefined;
  }
  if (bool.length > 1) {
    problems.push({ path, message: `expected one of all, any, not in a condition, got ${bool.join(" and ")}` });
    return undefined;
  }
  const name = typeof node.name === "string" ? `${path} (${node.name})` : path;
  if (bool.length === 1) {
    const key = bool[0];
    const sub = node[key];
    if (key === "not") {
      if (typeof sub !== "object" || sub === null || Array.isArray(sub)) {
        problems.push({ path: `${path}.not`, message: `expected one condition object, got ${JSON.stringify(sub)}` });
        return undefined;
      }
      const inner = prepareNode(sub as Record<string, unknown>, `${path}.not`, engine, problems);
      return inner && { ...pick(node, ["priority"]), name, not: inner };
    }
    if (!Array.isArray(sub)) {
      problems.push({ path: `${path}.${key}`, message: `expected a list of conditions, got ${JSON.stringify(sub)}` });
      return undefined;
    }
    const items = sub.map((c, i) => {
      if (typeof c !== "object" || c === null || Array.isArray(c)) {
        problems.push({ path: `${path}.${key}[${i}]`, message: `expected a condition object, got ${JSON.stringify(c)}` });
        return undefined;
      }
      return prepareNode(c as Record<string, unknown>, `${path}.${key}[${i}]`, engine, problems);
    });
    if (items.some((c) => c === undefined)) return undefined;
    return { ...pick(node, ["priority"]), name, [key]: items };
  }
  let ok = true;
  if (typeof node.fact !== "string" || !engine.factNames.has(node.fact)) {
    problems.push({
      path: `${path}.fact`,
      message: `unknown fact ${JSON.stringify(node.fact)}: expected one of ${[...engine.factNames].sort().join(", ")}`,
    });
    ok = false;
  }
  if (typeof node.operator !== "string" || !engine.hasOperator(node.operator)) {
    problems.push({
      path: `${path}.operator`,
      message: `unknown operator ${JSON.stringify(node.operator)}: expected one of ${engine.operatorNames().join(", ")}`,
    });
    ok = false;
  }
  if (!("value" in node)) {
    problems.push({ path: `${path}.value`, message: "a condition needs a value to compare the fact with" });
    ok = false;
  } else {
    const v = node.value as { fact?: unknown } | null;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && "fact" in v) {
      if (typeof v.fact !== "string" || !engine.factNames.has(v.fact)) {
        problems.push({ path: `${path}.value.fact`, message: `unknown fact ${JSON.stringify(v.fact)}` });
        ok = false;
      }
    }
  }
  if (node.params !== undefined && (typeof node.params !== "object" || node.params === null || Array.isArray(node.params))) {
    problems.push({ path: `${path}.params`, message: `expected an object, got ${JSON.stringify(node.params)}` });
    ok = false;
  }
  if (node.path !== undefined && typeof node.path !== "string") {
    problems.push({ path: `${path}.path`, message: `expected a JSONPath string, got ${JSON.stringify(node.path)}` });
    ok = false;
  }
  if (!ok) return undefined;
  return { ...pick(node, ["fact", "operator", "value", "params", "path", "priority"]), name };
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** Flattens an evaluated rule's conditions into one outcome per test, in rule order. */
export function conditionOutcomes(root: EvaluatedCondition): ConditionOutcome[] {
  const out: ConditionOutcome[] = [];
  const walk = (c: EvaluatedCondition) => {
    if (c.all) c.all.forEach(walk);
    else if (c.any) c.any.forEach(walk);
    else if (c.not) walk(c.not);
    else if (c.fact !== undefined) {
      const o: ConditionOutcome = { source: c.name ?? "", test: describeTest(c), passed: typeof c.result === "boolean" ? c.result : null };
      if (o.passed !== null) o.actual = c.factResult === undefined ? null : c.factResult;
      out.push(o);
    }
  };
  walk(root);
  return out;
}

/** A test as text: `label("tier") equal "backend"`. */
export function describeTest(c: { fact?: string; operator?: string; value?: unknown; params?: Record<string, unknown>; path?: string }): string {
  const params = c.params && Object.keys(c.params).length > 0
    ? typeof c.params.key === "string" && Object.keys(c.params).length === 1
      ? `(${JSON.stringify(c.params.key)})`
      : `(${JSON.stringify(c.params)})`
    : "";
  return `${c.fact}${params}${c.path ? c.path.replace(/^\$/, "") : ""} ${c.operator} ${JSON.stringify(c.value)}`;
}

/** One failed test as text for messages: `spec.selector.matchLabels.tier: label("tier") equal "backend", got "web"`. */
export function describeFailure(o: ConditionOutcome): string {
  return `${o.source}: ${o.test}, got ${o.actual === undefined ? "nothing" : JSON.stringify(o.actual)}`;
}
