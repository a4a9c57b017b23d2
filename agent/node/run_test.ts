/** The agent's command-line settings that run.ts checks before it starts anything. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { learningOptions, resyncMs } from "./run.ts";

const t = suite("agent run options");

t("--learning-age and --flap become the learner's settings", () => {
  assert.equal(learningOptions({}), {});
  assert.equal(learningOptions({ learningAge: "3000", flap: "2/10000/4000" }), { ageMs: 3000, flap: { moves: 2, windowMs: 10000, holdMs: 4000 } });
});

t("invalid values are refused naming the option and the value", () => {
  assert.throws(() => learningOptions({ learningAge: "5m" }), /Invalid --learning-age "5m": expected a whole number of milliseconds, at least 100/);
  assert.throws(() => learningOptions({ learningAge: "50" }), /Invalid --learning-age "50"/);
  assert.throws(() => learningOptions({ flap: "5/10000" }), /Invalid --flap "5\/10000": expected <moves>\/<window ms>\/<hold ms>/);
  assert.throws(() => learningOptions({ flap: "0/1/1" }), /Invalid --flap "0\/1\/1"/);
});

t("--resync: 0 (never) or at least a second; anything else is refused naming the value", () => {
  assert.equal([resyncMs(undefined), resyncMs("0"), resyncMs("30000")], [undefined, 0, 30000]);
  assert.throws(() => resyncMs("500"), /Invalid --resync "500": expected 0 \(never\) or a whole number of milliseconds, at least 1000/);
  assert.throws(() => resyncMs("30s"), /Invalid --resync "30s"/);
});

t.run();
