/**
 * Checks that an imported plugin module holds a well-formed
 * {@link PluginDefinition}, refusing with `PLUGIN_INVALID` and the path of
 * the first bad field (`networkTypes[0].addressing`).
 *
 * @example
 * const def = checkDefinition(await import(url), "./acme/mod.ts");
 */
import semver from "semver";
import { LaceError } from "../errors.ts";
import type { PluginDefinition } from "./api.ts";

const ADDRESSING = ["host-local", "global", "none"];
const FORWARDING = ["routed", "bridged", "underlay"];
const APPLIES_TO = ["binding", "routing"];
// Same shape as a Network's metadata.name, since `spec.type` is written by operators.
const TYPE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// json-rules-engine reads `decorator:name`, so rule names are plain identifiers.
const RULE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function show(value: unknown): string {
  if (value === undefined) return "undefined";
  if (value === null) return "null";
  if (typeof value === "function") return "a function";
  if (typeof value === "symbol") return value.toString();
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return JSON.stringify(value);
}

function oneOf(values: string[]): string {
  return values.map((v) => JSON.stringify(v)).join(", ");
}

class Checker {
  constructor(readonly label: string, readonly plugin: string) {}

  fail(path: string, expected: string, got: unknown): never {
    throw new LaceError("PLUGIN_INVALID", `${this.label} is invalid: ${path}: expected ${expected}, got ${show(got)}`, {
      plugin: this.plugin,
    });
  }

  object(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail(path, "an object", value);
    return value as Record<string, unknown>;
  }

  string(value: unknown, path: string, pattern?: RegExp, what = "a non-empty string"): void {
    if (typeof value !== "string" || value === "" || (pattern !== undefined && !pattern.test(value))) {
      this.fail(path, what, value);
    }
  }

  optionalString(value: unknown, path: string): void {
    if (value !== undefined && typeof value !== "string") this.fail(path, "a string", value);
  }

  fn(value: unknown, path: string): void {
    if (typeof value !== "function") this.fail(path, "a function", value);
  }

  list(value: unknown, path: string): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(path, "a list", value);
    return value;
  }

  oneOf(value: unknown, path: string, allowed: string[]): void {
    if (typeof value !== "string" || !allowed.includes(value)) this.fail(path, `one of ${oneOf(allowed)}`, value);
  }
}

/** Why the core cannot run a type with this addressing and forwarding; undefined when it can. */
function unsupported(addressing: string, forwarding: string): string | undefined {
  if (forwarding === "underlay" && addressing !== "none") return `an underlay network's prefixes are reached over the underlay and hold no pods (addressing "none")`;
  if (forwarding !== "underlay" && addressing === "none") return `a ${forwarding} network holds pods, which need addresses (addressing "host-local" or "global")`;
  if (forwarding === "bridged" && addressing === "host-local") return `a bridged network is one L2 domain across nodes, so its addresses come from the whole subnet (addressing "global")`;
  return undefined;
}

/**
 * The plugin definition a module exports (default export, or `plugin`),
 * checked field by field. `label` names the plugin as configured, for
 * messages about a module whose own name is missing.
 *
 * @example
 * checkDefinition({ default: { name: "acme", apiVersion: "^1.0.0" } }, "./acme.ts").name; // "acme"
 */
export function checkDefinition(mod: unknown, label: string): PluginDefinition {
  const exported = mod as { default?: unknown; plugin?: unknown } | null;
  const raw = exported?.default ?? exported?.plugin;
  let c = new Checker(`Plugin module "${label}"`, label);
  if (raw === undefined) {
    c.fail("default export", "a plugin definition (default export or export named \"plugin\")", raw);
  }
  const def = c.object(raw, "default export");
  c.string(def.name, "name");
  const name = def.name as string;
  c = new Checker(`Plugin "${name}"`, name);
  c.string(def.apiVersion, "apiVersion");
  if (semver.validRange(def.apiVersion as string) === null) {
    c.fail("apiVersion", "a semver range such as \"^1.0.0\"", def.apiVersion);
  }
  for (const [i, dep] of c.list(def.dependencies, "dependencies").entries()) c.string(dep, `dependencies[${i}]`);

  for (const [i, item] of c.list(def.networkTypes, "networkTypes").entries()) {
    const p = `networkTypes[${i}]`;
    const t = c.object(item, p);
    c.string(t.type, `${p}.type`, TYPE_NAME, "a lower-case name such as \"vlan\"");
    c.oneOf(t.addressing, `${p}.addressing`, ADDRESSING);
    c.oneOf(t.forwarding, `${p}.forwarding`, FORWARDING);
    c.optionalString(t.description, `${p}.description`);
    for (const hook of ["validate", "gateway", "locate"]) c.fn(t[hook], `${p}.${hook}`);
    const why = unsupported(t.addressing as string, t.forwarding as string);
    if (why) {
      throw new LaceError(
        "PLUGIN_UNSUPPORTED_CAPABILITY",
        `Cannot load plugin "${name}": network type "${t.type}" declares addressing "${t.addressing}" with forwarding "${t.forwarding}", which the core cannot do: ${why}`,
        { plugin: name },
      );
    }
  }
  for (const [i, item] of c.list(def.dataplanes, "dataplanes").entries()) {
    const p = `dataplanes[${i}]`;
    const d = c.object(item, p);
    c.string(d.feature, `${p}.feature`, TYPE_NAME, "a lower-case name such as \"srv6\"");
    c.optionalString(d.description, `${p}.description`);
    c.fn(d.create, `${p}.create`);
  }
  for (const [i, item] of c.list(def.ruleFacts, "ruleFacts").entries()) {
    const p = `ruleFacts[${i}]`;
    const f = c.object(item, p);
    c.string(f.name, `${p}.name`, RULE_NAME, "an identifier such as \"podZone\"");
    c.optionalString(f.description, `${p}.description`);
    for (const [j, a] of c.list(f.appliesTo, `${p}.appliesTo`).entries()) c.oneOf(a, `${p}.appliesTo[${j}]`, APPLIES_TO);
    c.fn(f.compute, `${p}.compute`);
  }
  for (const [i, item] of c.list(def.ruleOperators, "ruleOperators").entries()) {
    const p = `ruleOperators[${i}]`;
    const o = c.object(item, p);
    c.string(o.name, `${p}.name`, RULE_NAME, "an identifier such as \"cidrContains\"");
    c.optionalString(o.description, `${p}.description`);
    c.fn(o.evaluate, `${p}.evaluate`);
  }
  if (def.setup !== undefined) c.fn(def.setup, "setup");
  for (const [i, token] of c.list(def.exports, "exports").entries()) {
    if (typeof token !== "symbol") c.fail(`exports[${i}]`, "a symbol token", token);
  }
  return def as unknown as PluginDefinition;
}
