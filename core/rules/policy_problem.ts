/**
 * Problems found while compiling policies, and the coded error that carries
 * them when one policy is given on its own.
 *
 * @example
 * throw invalidPolicy("NetworkBindingPolicy", "web", [{ path: "spec.network", message: "expected a network name, got nothing" }]);
 */
import { type LaceError, laceError } from "../errors.ts";
import type { FieldProblem } from "./selector.ts";

/** A problem with one policy: its kind and name, the field path and what was wrong. */
export interface PolicyProblem extends FieldProblem {
  kind: "NetworkBindingPolicy" | "NetworkRoutingPolicy";
  policy: string;
}

/** `NetworkBindingPolicy/web: spec.network: expected a network name, got nothing`. */
export function formatProblem(p: PolicyProblem): string {
  return `${p.kind}/${p.policy}: ${p.path}: ${p.message}`;
}

/** An INVALID_RESOURCE error listing every problem of one policy. */
export function invalidPolicy(kind: PolicyProblem["kind"], name: string, problems: FieldProblem[]): LaceError {
  const list = problems.map((p) => `${p.path}: ${p.message}`).join("; ");
  return laceError("INVALID_RESOURCE", `${kind}/${name} cannot be compiled: ${list}`);
}

/** Checks `spec.priority`: absent means 1000 (the CRD default); otherwise a non-negative integer. */
export function priorityOf(value: unknown, problems: FieldProblem[]): number {
  if (value === undefined || value === null) return 1000;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 2147483647) {
    problems.push({ path: "spec.priority", message: `expected an integer between 0 and 2147483647, got ${JSON.stringify(value)}` });
    return 1000;
  }
  return value;
}

/**
 * A policy's name and spec object, or undefined with the problems noted:
 * the first checks every policy kind compiles through.
 *
 * @example
 * const head = policyHead(policy, problems, "a spec with at least spec.network");
 * if (!head) return undefined;
 */
export function policyHead<S extends object>(
  policy: { metadata?: { name?: unknown }; spec?: S } | undefined,
  problems: FieldProblem[],
  expectedSpec: string,
): { name: string; spec: S } | undefined {
  const name = policy?.metadata?.name;
  if (typeof name !== "string" || name === "") {
    problems.push({ path: "metadata.name", message: `expected a policy name, got ${JSON.stringify(name)}` });
    return undefined;
  }
  const spec = policy?.spec;
  if (!spec || typeof spec !== "object") {
    problems.push({ path: "spec", message: `expected ${expectedSpec}` });
    return undefined;
  }
  return { name, spec };
}
