/**
 * Rule operators over CIDR prefixes, shipped by the `external` plugin and
 * usable in any policy's `conditions`:
 *
 * - `cidrWithin`: the fact (an address or prefix) lies within the value, a
 *   prefix or a list of prefixes (any of them);
 * - `cidrContains`: the fact (a prefix) contains the value, an address or
 *   prefix or a list of them (any of them).
 *
 * Text that is not an address or a prefix never matches.
 *
 * @example
 * // a routing policy that only applies to destinations inside 10.0.0.0/8
 * conditions: { all: [{ fact: "destinationPrefix", operator: "cidrWithin", value: "10.0.0.0/8" }] }
 * // a policy for destinations that contain a given host
 * conditions: { all: [{ fact: "destinationPrefix", operator: "cidrContains", value: "192.0.2.10" }] }
 */
import { IPAddress, Prefix, type RuleOperatorDefinition } from "../../core/plugin/mod.ts";

// Policies repeat the same few prefixes; parsing each once keeps the operators cheap.
const parsed = new Map<string, Prefix | null>();

function toPrefix(text: unknown): Prefix | undefined {
  if (typeof text !== "string") return undefined;
  let p = parsed.get(text);
  if (p === undefined) {
    if (text.includes("/")) {
      const r = Prefix.tryParse(text);
      p = r.ok ? r.value : null;
    } else {
      const a = IPAddress.tryParse(text);
      p = a.ok ? Prefix.containing(a.value, a.value.bits) : null;
    }
    if (parsed.size >= 16384) parsed.clear();
    parsed.set(text, p);
  }
  return p ?? undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

/** The operators, as the plugin definition lists them in `ruleOperators`. */
export const cidrOperators: RuleOperatorDefinition[] = [
  {
    name: "cidrWithin",
    description: "The fact (an address or prefix) lies within the value (a prefix, or any of a list)",
    evaluate(factValue, value) {
      const inner = toPrefix(factValue);
      if (!inner) return false;
      return list(value).some((v) => toPrefix(v)?.covers(inner) === true);
    },
  },
  {
    name: "cidrContains",
    description: "The fact (a prefix) contains the value (an address or prefix, or any of a list)",
    evaluate(factValue, value) {
      const outer = toPrefix(factValue);
      if (!outer) return false;
      return list(value).some((v) => {
        const inner = toPrefix(v);
        return inner !== undefined && outer.covers(inner);
      });
    },
  },
];
