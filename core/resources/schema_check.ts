/**
 * Checks a value against an OpenAPI structural schema from `schema.ts`:
 * types, required fields, unknown fields, enums, ranges, lengths and
 * patterns. It reports every mismatch and keeps walking; CEL rules are
 * left to the API server (the validator re-states them in code).
 *
 * @example
 * checkSchema({ priority: -1 }, SCHEMAS.NetworkBindingPolicy.spec, "spec", (path, message) => ...);
 * // spec.network: is required (expected a DNS-1123 subdomain ...)
 * // spec.priority: must be at least 0, got -1
 */
import { describe } from "../ip/mod.ts";
import { type OpenAPISchema, PATTERN_NAMES } from "./schema.ts";
import { joinPath } from "./problem.ts";

/** `wrongType` marks a value of the wrong JSON type: nothing beneath it can be checked. */
export type SchemaReporter = (path: string, message: string, wrongType: boolean) => void;

/** What a schema expects, in words: `an integer`, `one of "Allow", "Deny"`. */
export function expectation(schema: OpenAPISchema): string {
  if (schema.enum) return `one of ${schema.enum.map((v) => describe(v)).join(", ")}`;
  if (schema.pattern && PATTERN_NAMES[schema.pattern]) return PATTERN_NAMES[schema.pattern];
  switch (schema.type) {
    case "object":
      return "an object";
    case "array":
      return "a list";
    case "string":
      return "a string";
    case "integer":
      return "an integer";
    case "number":
      return "a number";
    case "boolean":
      return "true or false";
    default:
      return "a value";
  }
}

function requiredHint(schema: OpenAPISchema): string {
  const what = schema.enum || !schema.pattern ? expectation(schema) : expectation({ type: schema.type });
  if (!schema.description) return `expected ${what}`;
  return `expected ${what}: ${schema.description[0].toLowerCase()}${schema.description.slice(1)}`;
}

function typeMatches(value: unknown, type: OpenAPISchema["type"]): boolean {
  switch (type) {
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    case "array":
      return Array.isArray(value);
    case "string":
      return typeof value === "string";
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "boolean":
      return typeof value === "boolean";
    default:
      return true;
  }
}

/** Walks `value` against `schema`, reporting each mismatch at its field path. */
export function checkSchema(value: unknown, schema: OpenAPISchema, path: string, report: SchemaReporter): void {
  if (value === null && schema.nullable) return;
  if (!typeMatches(value, schema.type)) {
    report(path, `expected ${expectation(schema)}, got ${describe(value)}`, true);
    return;
  }
  if (schema.enum && !schema.enum.includes(value as string | number | boolean)) {
    report(path, `expected ${expectation(schema)}, got ${describe(value)}`, false);
    return;
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) {
      report(path, `must be at least ${schema.minimum}, got ${value}`, false);
    } else if (schema.maximum !== undefined && value > schema.maximum) {
      report(path, `must be at most ${schema.maximum}, got ${value}`, false);
    }
    return;
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      report(path, schema.minLength === 1 ? `must not be empty` : `must be at least ${schema.minLength} characters long, got ${describe(value)}`, false);
    } else if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      report(path, `must be at most ${schema.maxLength} characters long, got ${value.length}`, false);
    } else if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
      report(path, `expected ${PATTERN_NAMES[schema.pattern] ?? `a value matching ${schema.pattern}`}, got ${describe(value)}`, false);
    }
    return;
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      report(path, `expected at least ${schema.minItems} item${schema.minItems === 1 ? "" : "s"}, got ${value.length}`, false);
    } else if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      report(path, `expected at most ${schema.maxItems} items, got ${value.length}`, false);
    }
    if (schema.items) value.forEach((item, i) => checkSchema(item, schema.items!, joinPath(path, i), report));
    return;
  }
  if (typeof value === "object" && value !== null) {
    const obj = value as Record<string, unknown>;
    const count = Object.keys(obj).length;
    if (schema.maxProperties !== undefined && count > schema.maxProperties) {
      report(path, `expected at most ${schema.maxProperties} entries, got ${count}`, false);
    }
    for (const name of schema.required ?? []) {
      if (obj[name] === undefined) {
        const child = schema.properties?.[name];
        report(joinPath(path, name), `is required (${child ? requiredHint(child) : "expected a value"})`, false);
      }
    }
    const props = schema.properties;
    for (const [name, child] of Object.entries(obj)) {
      if (child === undefined) continue;
      const childSchema = props?.[name] ?? schema.additionalProperties;
      if (childSchema) {
        checkSchema(child, childSchema, joinPath(path, name), report);
      } else if (props && !schema["x-kubernetes-preserve-unknown-fields"]) {
        report(joinPath(path, name), `unknown field, expected one of: ${Object.keys(props).join(", ")}`, false);
      }
    }
  }
}
