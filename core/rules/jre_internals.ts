/**
 * The four places lace-cni relies on json-rules-engine beyond its typed,
 * documented API, in one module, so an upgrade that changes them fails
 * one test file (jre_internals_test.ts) instead of policy decisions:
 *
 * 1. `engine.operators.get(name)`: the OperatorMap resolves decorated
 *    names (`not:equal`, `everyFact:in`), which `Engine` does not expose;
 * 2. `engine.operators.operators`: the Map of plain operator names, for
 *    messages listing what exists;
 * 3. `rule.setEngine(engine)`: a Rule bound to an engine's operators
 *    without joining its rule list (`Engine.run` would evaluate every rule);
 * 4. `rule.evaluate(almanac)`: one rule against one almanac, resolving to
 *    the rule result with each condition's outcome.
 *
 * @example
 * const rule = bindRule(new Rule({ conditions, event: { type: "x" } }), engine);
 * const r = await evaluateRule(rule, new Almanac());
 */
import type { Almanac, Engine, Rule } from "json-rules-engine";

interface OperatorMapInternals {
  get(name: string): unknown;
  operators: Map<string, unknown>;
}

function operatorMap(engine: Engine): OperatorMapInternals {
  return (engine as unknown as { operators: OperatorMapInternals }).operators;
}

/** Whether `name`, decorators included (`not:equal`), is an operator of `engine`. */
export function operatorKnown(engine: Engine, name: string): boolean {
  return operatorMap(engine).get(name) != null;
}

/** The plain (undecorated) operator names `engine` holds. */
export function operatorNames(engine: Engine): string[] {
  return [...operatorMap(engine).operators.keys()].filter((n) => !n.includes(":"));
}

/** `rule` bound to `engine`'s operators, without adding it to the engine's rules. */
export function bindRule(rule: Rule, engine: Engine): Rule {
  return (rule as unknown as { setEngine(e: Engine): Rule }).setEngine(engine);
}

/** What `Rule.evaluate` resolves to: the rule's result and its conditions with their outcomes. */
export interface RuleOutcome {
  name: string;
  result: boolean;
  conditions: unknown;
}

/** Evaluates one bound rule against an almanac. */
export function evaluateRule(rule: Rule, almanac: Almanac): Promise<RuleOutcome> {
  return (rule as unknown as { evaluate(a: Almanac): Promise<RuleOutcome> }).evaluate(almanac);
}
