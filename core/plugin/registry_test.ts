import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isLaceError, LaceError } from "../errors.ts";
import { callHook, hookFailed, RuleExtensions } from "./registry.ts";

const t = suite("plugin registry");

t("facts may not shadow the core's facts or another plugin's", () => {
  const ext = new RuleExtensions();
  assert.throws(() => ext.addFact("acme", { name: "labels", compute: () => 1 }), (e: unknown) =>
    isLaceError(e, "PLUGIN_DUPLICATE_RULE_EXTENSION") &&
    e.message === `Cannot load plugin "acme": rule fact "labels" is already provided by the core`);
  ext.addFact("acme", { name: "zone", compute: () => "a" });
  assert.throws(() => ext.addFact("other", { name: "zone", compute: () => "b" }), (e: unknown) =>
    isLaceError(e, "PLUGIN_DUPLICATE_RULE_EXTENSION") && e.plugin === "other" &&
    e.message === `Cannot load plugin "other": rule fact "zone" is already provided by plugin "acme"`);
  assert.is(ext.fact("zone")?.plugin, "acme");
});

t("reserved names can be chosen by the rules engine's owner", () => {
  const ext = new RuleExtensions({ operators: ["cidrContains"], facts: [] });
  ext.addOperator("acme", { name: "equal", evaluate: () => true });
  ext.addFact("acme", { name: "labels", compute: () => ({}) });
  assert.throws(() => ext.addOperator("acme", { name: "cidrContains", evaluate: () => true }), (e: unknown) =>
    isLaceError(e, "PLUGIN_DUPLICATE_RULE_EXTENSION"));
});

t("facts are filtered by the policies they apply to", () => {
  const ext = new RuleExtensions();
  ext.addFact("acme", { name: "any", compute: () => 1 });
  ext.addFact("acme", { name: "bindingOnly", appliesTo: ["binding"], compute: () => 2 });
  ext.addFact("acme", { name: "routingOnly", appliesTo: ["routing"], compute: () => 3 });
  assert.equal(ext.facts("binding").map((f) => f.name), ["any", "bindingOnly"]);
  assert.equal(ext.facts("routing").map((f) => f.name), ["any", "routingOnly"]);
  assert.equal(ext.facts().map((f) => f.name), ["any", "bindingOnly", "routingOnly"]);
});

t("callHook passes results through and wraps throws once", () => {
  assert.is(callHook("acme", "gateway", () => 42), 42);
  const inner = hookFailed("inner", "locate", new Error("deep"));
  let caught: unknown;
  try {
    callHook("outer", "validate", () => {
      throw inner;
    });
  } catch (e) {
    caught = e;
  }
  // A failure already attributed to a plugin keeps its attribution.
  assert.is(caught, inner);
  assert.is((caught as LaceError).message, `Plugin "inner" failed in hook "locate": deep`);
});

t.run();
