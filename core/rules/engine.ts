/**
 * The json-rules-engine side of policy evaluation, shared by binding and
 * routing: one `Engine` holding the built-in and plugin operators, rules
 * compiled against it, and an almanac per decision holding the facts.
 *
 * Rules are evaluated one at a time (`Rule.evaluate`) rather than through
 * `Engine.run`, because `run` evaluates every rule it holds: the indexes in
 * `binding.ts` and `routing.ts` pick the candidates and their order, and
 * json-rules-engine decides each candidate's conditions. What this needs
 * of json-rules-engine beyond its documented API is in jre_internals.ts.
 *
 * @example
 * const pe = new PolicyEngine("binding", BINDING_FACTS, { operators: [], facts: [] });
 * const rule = pe.rule("team-a", { all: [{ fact: "namespace", operator: "equal", value: "team-a" }] });
 * const result = await pe.evaluate(rule, pe.almanac({ namespace: "team-a" }));
 * result.result; // true
 */
import { Almanac, Engine, Fact, Rule, type TopLevelCondition } from "json-rules-engine";
import type { RuleFactDefinition, RuleOperatorDefinition } from "../plugin/api.ts";
import { BUILT_IN_RULE_OPERATORS as BUILTIN_OPERATORS } from "../plugin/registry.ts";
import { isLaceError, laceError } from "../errors.ts";
import { bindRule, evaluateRule, operatorKnown, operatorNames } from "./jre_internals.ts";

/**
 * The rule facts and operators plugins contribute, as the plugin registry
 * collects them.
 *
 * @example
 * const ext: RuleExtensionSet = { operators: cidrOperators, facts: [] };
 */
export interface RuleExtensionSet {
  operators: readonly RuleOperatorDefinition[];
  facts: readonly RuleFactDefinition[];
}

/** No plugin facts or operators. */
export const NO_RULE_EXTENSIONS: RuleExtensionSet = Object.freeze({ operators: [], facts: [] });

/** Which policies a rule set decides. */
export type RuleDomain = "binding" | "routing";


/** A condition as json-rules-engine hands it back, with its outcome. */
export interface EvaluatedCondition {
  name?: string;
  fact?: string;
  operator?: string;
  value?: unknown;
  params?: Record<string, unknown>;
  path?: string;
  result?: boolean;
  factResult?: unknown;
  all?: EvaluatedCondition[];
  any?: EvaluatedCondition[];
  not?: EvaluatedCondition;
}

/** What `Rule.evaluate` resolves to. */
export interface EvaluatedRule {
  name: string;
  result: boolean;
  conditions: EvaluatedCondition;
}

// `Rule.evaluate` is public in json-rules-engine's JavaScript but missing from its type declarations.

const NO_CACHE = Object.freeze({ cache: false });

/** A compiled rule, ready for {@link PolicyEngine.evaluate}. */
export type CompiledRule = Rule;

/** A fact the core computes from the subject: `label` with `params: { key }`, and so on. */
export interface CoreParamFact {
  name: string;
  compute(facts: Readonly<Record<string, unknown>>, params: Record<string, unknown>): unknown;
}

/**
 * One json-rules-engine `Engine` with the built-in and plugin operators,
 * and the facts a domain's rules may use.
 */
export class PolicyEngine {
  readonly engine: Engine;
  /** Every fact name rules of this domain may use. */
  readonly factNames: ReadonlySet<string>;
  private readonly pluginFacts: RuleFactDefinition[];
  private readonly paramFacts: readonly CoreParamFact[];
  private readonly coreFacts: readonly string[];

  constructor(
    readonly domain: RuleDomain,
    coreFacts: readonly string[],
    extensions: RuleExtensionSet = NO_RULE_EXTENSIONS,
    paramFacts: readonly CoreParamFact[] = [],
    coreOperators: readonly RuleOperatorDefinition[] = [],
  ) {
    this.engine = new Engine([], { allowUndefinedFacts: false, allowUndefinedConditions: false });
    this.paramFacts = paramFacts;
    this.coreFacts = [...coreFacts];
    const names = new Set<string>([...coreFacts, ...paramFacts.map((f) => f.name)]);
    this.pluginFacts = [];
    for (const f of extensions.facts) {
      if (f.appliesTo && !f.appliesTo.includes(domain)) continue;
      if (names.has(f.name)) {
        throw laceError(
          "PLUGIN_DUPLICATE_RULE_EXTENSION",
          `Rule fact "${f.name}" is already defined by the core ${domain} rules: choose another name`,
        );
      }
      names.add(f.name);
      this.pluginFacts.push(f);
    }
    this.factNames = names;
    const operators = new Set(BUILTIN_OPERATORS);
    for (const op of [...coreOperators, ...extensions.operators]) {
      if (operators.has(op.name)) {
        throw laceError(
          "PLUGIN_DUPLICATE_RULE_EXTENSION",
          `Rule operator "${op.name}" is already defined by json-rules-engine or the core: choose another name`,
        );
      }
      operators.add(op.name);
      this.engine.addOperator(op.name, (factValue: unknown, value: unknown) => {
        try {
          return op.evaluate(factValue, value) === true;
        } catch (e) {
          if (isLaceError(e)) throw e;
          throw laceError(
            "PLUGIN_HOOK_FAILED",
            `Rule operator "${op.name}" failed on ${short(factValue)} and ${short(value)}: ${(e as Error).message}`,
            { hook: `ruleOperators.${op.name}`, cause: e },
          );
        }
      });
    }
  }

  /** True when `name` (with json-rules-engine decorators such as `not:`) is a known operator. */
  hasOperator(name: string): boolean {
    return operatorKnown(this.engine, name);
  }

  /** The operator names, for messages. */
  operatorNames(): string[] {
    return operatorNames(this.engine).sort();
  }

  /** Compiles one rule. `conditions` must already have been checked with `prepareConditions`. */
  rule(name: string, conditions: TopLevelCondition): CompiledRule {
    // No event params: json-rules-engine deep-clones the event on every evaluation, and decisions read the policy, not the event.
    const rule = new Rule({ name, conditions, event: { type: this.domain } });
    // Bound to the engine for its operators without being added to its rule list.
    return bindRule(rule, this.engine);
  }

  /** An almanac holding one decision's facts, plus the core's and plugins' computed facts. */
  almanac(facts: Readonly<Record<string, unknown>>): Almanac {
    const almanac = new Almanac({ allowUndefinedFacts: false });
    // Uncached: json-rules-engine would otherwise hash every constant fact's id on every decision.
    for (const id in facts) almanac.addFact(new Fact(id, facts[id], NO_CACHE));
    for (const f of this.paramFacts) {
      almanac.addFact(new Fact(f.name, (params: Record<string, unknown>) => f.compute(facts, params ?? {}), NO_CACHE));
    }
    for (const f of this.pluginFacts) {
      almanac.addFact(new Fact(f.name, (params: Record<string, unknown>) => this.computePluginFact(f, facts, params), { cache: true }));
    }
    return almanac;
  }

  private computePluginFact(f: RuleFactDefinition, facts: Readonly<Record<string, unknown>>, params: Record<string, unknown>): unknown {
    try {
      return f.compute(facts, params);
    } catch (e) {
      if (isLaceError(e)) throw e;
      throw laceError("PLUGIN_HOOK_FAILED", `Rule fact "${f.name}" failed: ${(e as Error).message}`, {
        hook: `ruleFacts.${f.name}`,
        cause: e,
      });
    }
  }

  /**
   * One almanac answering for whichever facts `use` last set: for many
   * decisions in sequence (the reachability table) it saves building an
   * almanac per decision. Nothing is cached in it, so facts never leak from
   * one decision to the next. Never share it between concurrent decisions.
   */
  reusableAlmanac(): { almanac: Almanac; use(facts: Readonly<Record<string, unknown>>): void } {
    let current: Readonly<Record<string, unknown>> = {};
    const almanac = new Almanac({ allowUndefinedFacts: false });
    for (const id of this.coreFacts) almanac.addFact(new Fact(id, () => current[id], NO_CACHE));
    for (const f of this.paramFacts) {
      almanac.addFact(new Fact(f.name, (params: Record<string, unknown>) => f.compute(current, params ?? {}), NO_CACHE));
    }
    for (const f of this.pluginFacts) {
      almanac.addFact(new Fact(f.name, (params: Record<string, unknown>) => this.computePluginFact(f, current, params), NO_CACHE));
    }
    return { almanac, use: (facts) => void (current = facts) };
  }

  /** Evaluates one compiled rule against an almanac. */
  evaluate(rule: CompiledRule, almanac: Almanac): Promise<EvaluatedRule> {
    return evaluateRule(rule, almanac) as Promise<EvaluatedRule>;
  }
}

function short(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
