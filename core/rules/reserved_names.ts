/**
 * Fact and operator names the core rules define, which plugins may not
 * reuse: the plugin registry refuses them up front rather than leaving the
 * clash to be found when the rules are compiled.
 *
 * @example
 * new RuleExtensions({ facts: CORE_RULE_FACT_NAMES, operators: [...BUILT_IN_RULE_OPERATORS, ...CORE_RULE_OPERATOR_NAMES] });
 */
import { BINDING_FACTS, BINDING_KEYED_FACTS } from "./binding.ts";
import { ROUTING_FACTS, ROUTING_KEYED_FACTS, WITHIN_PREFIXES } from "./routing.ts";

/** Every fact binding or routing conditions get from the core, keyed ones included. */
export const CORE_RULE_FACT_NAMES: readonly string[] = Object.freeze([
  ...BINDING_FACTS,
  ...BINDING_KEYED_FACTS.map((f) => f.name),
  ...ROUTING_FACTS,
  ...ROUTING_KEYED_FACTS.map((f) => f.name),
]);

/** Operators the core adds to json-rules-engine's own. */
export const CORE_RULE_OPERATOR_NAMES: readonly string[] = Object.freeze([WITHIN_PREFIXES.name]);
