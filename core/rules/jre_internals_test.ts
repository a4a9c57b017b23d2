/**
 * json-rules-engine's internals lace-cni uses (jre_internals.ts), each
 * checked against what the engine's public API does with the same input:
 * an upgrade that moves or changes one fails here.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Almanac, Engine, Rule } from "json-rules-engine";
import { bindRule, evaluateRule, operatorKnown, operatorNames } from "./jre_internals.ts";

const t = suite("rules/json-rules-engine internals");

t("operatorKnown agrees with what a rule using the operator can run, decorators included", async () => {
  const engine = new Engine([], { allowUndefinedFacts: true });
  engine.addOperator("startsWith", (a: unknown, b: unknown) => String(a).startsWith(String(b)));
  for (const op of ["equal", "in", "not:equal", "everyFact:in", "startsWith", "not:startsWith"]) assert.ok(operatorKnown(engine, op), op);
  for (const op of ["nope", "not:nope", "bogus:equal"]) assert.not.ok(operatorKnown(engine, op), op);
  // The public path: a rule with a decorated operator runs through Engine.run.
  engine.addRule({ conditions: { all: [{ fact: "x", operator: "not:startsWith", value: "b" }] }, event: { type: "hit" } });
  const { events } = await engine.run({ x: "abc" });
  assert.equal(events.map((e) => e.type), ["hit"]);
});

t("operatorNames lists the engine's plain operators, the added ones too", () => {
  const engine = new Engine();
  engine.addOperator("startsWith", () => true);
  const names = operatorNames(engine);
  for (const op of ["equal", "notEqual", "in", "notIn", "contains", "doesNotContain", "lessThan", "greaterThanInclusive", "startsWith"]) assert.ok(names.includes(op), op);
  assert.not.ok(names.some((n) => n.includes(":")));
});

t("a bound rule evaluates as Engine.run decides, without joining the engine's rules", async () => {
  const engine = new Engine([], { allowUndefinedFacts: false });
  engine.addOperator("startsWith", (a: unknown, b: unknown) => String(a).startsWith(String(b)));
  const conditions = { all: [{ fact: "ns", operator: "equal", value: "team-a" }, { fact: "name", operator: "startsWith", value: "web" }] };
  const rule = bindRule(new Rule({ name: "r", conditions, event: { type: "binding" } }), engine);
  for (const [facts, want] of [[{ ns: "team-a", name: "web-1" }, true], [{ ns: "team-a", name: "db-1" }, false], [{ ns: "team-b", name: "web-1" }, false]] as const) {
    const almanac = new Almanac({ allowUndefinedFacts: false });
    for (const [k, v] of Object.entries(facts)) almanac.addFact(k, v);
    const outcome = await evaluateRule(rule, almanac);
    assert.is(outcome.result, want, JSON.stringify(facts));
    assert.is(outcome.name, "r");
    assert.ok(typeof outcome.conditions === "object" && outcome.conditions !== null && "all" in outcome.conditions, "conditions come back with their outcomes");
    // The engine's own run agrees.
    const other = new Engine([], { allowUndefinedFacts: false });
    other.addOperator("startsWith", (a: unknown, b: unknown) => String(a).startsWith(String(b)));
    other.addRule({ conditions, event: { type: "binding" } });
    assert.is((await other.run({ ...facts })).events.length > 0, want);
  }
  // Not added to the engine: a run of the engine itself finds nothing to fire.
  assert.equal((await engine.run({ ns: "team-a", name: "web-1" })).events, []);
});

t.run();
