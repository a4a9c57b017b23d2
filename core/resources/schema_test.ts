import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type OpenAPISchema, SCHEMAS } from "./schema.ts";
import { checkSchema } from "./schema_check.ts";
import { KINDS } from "./types.ts";

const t = suite("schema");

/** Every node of a schema with its path. */
function* walk(s: OpenAPISchema, path: string): Generator<[string, OpenAPISchema]> {
  yield [path, s];
  for (const [name, child] of Object.entries(s.properties ?? {})) yield* walk(child, `${path}.${name}`);
  if (s.items) yield* walk(s.items, `${path}[]`);
  if (s.additionalProperties) yield* walk(s.additionalProperties, `${path}{}`);
}

const nodes = KINDS.flatMap((kind) => [
  ...walk(SCHEMAS[kind].spec, `${kind}.spec`),
  ...(SCHEMAS[kind].status ? walk(SCHEMAS[kind].status!, `${kind}.status`) : []),
]);

t("one entry per kind, with scope and a lowercase plural", () => {
  assert.equal(Object.keys(SCHEMAS).sort(), [...KINDS].sort());
  for (const kind of KINDS) {
    assert.match(SCHEMAS[kind].plural, /^[a-z]+$/);
    assert.is(SCHEMAS[kind].scope, kind === "NetworkEndpoint" ? "Namespaced" : "Cluster");
  }
});

t("structural: every node has a type; properties and additionalProperties never together", () => {
  for (const [path, s] of nodes) {
    assert.ok(s.type, `${path} has no type`);
    assert.not.ok(s.properties && s.additionalProperties, `${path} has both properties and additionalProperties`);
    if (s.type === "array") assert.ok(s.items, `${path} is an array without items`);
    for (const r of s.required ?? []) assert.ok(s.properties?.[r], `${path} requires undeclared ${r}`);
  }
});

t("defaults and enums satisfy their own schema; CEL rules carry messages", () => {
  for (const [path, s] of nodes) {
    const problems: string[] = [];
    const report = (p: string, m: string) => problems.push(`${p}: ${m}`);
    if (s.default !== undefined) checkSchema(s.default, s, path, report);
    for (const v of s.enum ?? []) checkSchema(v, s, path, report);
    assert.equal(problems, [], path);
    for (const rule of s["x-kubernetes-validations"] ?? []) {
      assert.ok(rule.rule.length > 0 && rule.message.length > 0, `${path}: rule without text or message`);
    }
  }
});

t("printer columns point into the schema", () => {
  for (const kind of KINDS) {
    for (const col of SCHEMAS[kind].printerColumns ?? []) {
      const [, top, field] = /^\.(spec|status)\.([A-Za-z0-9]+)/.exec(col.jsonPath) ?? [];
      const s = top === "spec" ? SCHEMAS[kind].spec : SCHEMAS[kind].status;
      assert.ok(s?.properties?.[field], `${kind} column ${col.name}: ${col.jsonPath} is not in the schema`);
    }
  }
});

t.run();
