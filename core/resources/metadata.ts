/**
 * Checks of the parts every object shares: `metadata` (name, namespace,
 * labels, annotations) and Kubernetes label syntax, which selectors reuse.
 *
 * @example
 * checkLabels({ "team/": "a" }, "metadata.labels", report);
 * // metadata.labels["team/"]: expected a label key ...
 */
import { describe } from "../ip/mod.ts";
import { joinPath } from "./problem.ts";
import { DNS1123_LABEL, DNS1123_SUBDOMAIN, type OpenAPISchema } from "./schema.ts";

type Report = (path: string, message: string) => void;

/** The ObjectMeta fields a manifest may carry. */
export const OBJECT_META_SCHEMA: OpenAPISchema = {
  type: "object",
  required: ["name"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 253, pattern: DNS1123_SUBDOMAIN },
    generateName: { type: "string" },
    namespace: { type: "string", minLength: 1, maxLength: 63, pattern: DNS1123_LABEL },
    uid: { type: "string" },
    resourceVersion: { type: "string" },
    generation: { type: "integer", minimum: 0 },
    creationTimestamp: { type: "string", nullable: true },
    deletionTimestamp: { type: "string" },
    deletionGracePeriodSeconds: { type: "integer", minimum: 0 },
    labels: { type: "object", additionalProperties: { type: "string" } },
    annotations: { type: "object", additionalProperties: { type: "string" } },
    finalizers: { type: "array", items: { type: "string" } },
    ownerReferences: {
      type: "array",
      items: {
        type: "object",
        required: ["apiVersion", "kind", "name", "uid"],
        properties: {
          apiVersion: { type: "string" },
          kind: { type: "string" },
          name: { type: "string" },
          uid: { type: "string" },
          controller: { type: "boolean" },
          blockOwnerDeletion: { type: "boolean" },
        },
      },
    },
    managedFields: { type: "array", items: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
  },
};

const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const SUBDOMAIN = new RegExp(DNS1123_SUBDOMAIN);

/** Why `key` is not a Kubernetes label key, or undefined when it is one. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !SUBDOMAIN.test(prefix))) {
    return `expected a label key whose prefix is a DNS-1123 subdomain ("example.com/name"), got ${describe(key)}`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `expected a label key of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, got ${describe(key)}`;
  }
  return undefined;
}

/** Why `value` is not a Kubernetes label value, or undefined when it is one. */
export function labelValueProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return `expected a string label value, got ${describe(value)}`;
  if (value.length > 63 || !LABEL_VALUE.test(value)) {
    return `expected a label value of at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, got ${describe(value)}`;
  }
  return undefined;
}

/** Checks a label map's keys and values (`metadata.labels`, `matchLabels`). */
export function checkLabels(labels: unknown, path: string, report: Report): void {
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) return;
  for (const [key, value] of Object.entries(labels)) {
    const at = joinPath(path, key);
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) report(at, keyProblem);
    else {
      const valueProblem = labelValueProblem(value);
      if (valueProblem) report(at, valueProblem);
    }
  }
}

/** Checks a label selector's label syntax and that `values` suits each operator. */
export function checkSelector(selector: unknown, path: string, report: Report): void {
  if (typeof selector !== "object" || selector === null || Array.isArray(selector)) return;
  const s = selector as { matchLabels?: unknown; matchExpressions?: unknown };
  checkLabels(s.matchLabels, `${path}.matchLabels`, report);
  if (!Array.isArray(s.matchExpressions)) return;
  s.matchExpressions.forEach((e: unknown, i: number) => {
    if (typeof e !== "object" || e === null) return;
    const { key, operator, values } = e as { key?: unknown; operator?: unknown; values?: unknown };
    const at = `${path}.matchExpressions[${i}]`;
    if (typeof key === "string" && key !== "") {
      const keyProblem = labelKeyProblem(key);
      if (keyProblem) report(`${at}.key`, keyProblem);
    }
    const n = Array.isArray(values) ? values.length : 0;
    if ((operator === "In" || operator === "NotIn") && n === 0) {
      report(`${at}.values`, `must list at least one value for operator ${operator}`);
    } else if ((operator === "Exists" || operator === "DoesNotExist") && values !== undefined) {
      report(`${at}.values`, `must be absent for operator ${operator}, got ${describe(values)}`);
    }
  });
}
