import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ProgressLine } from "./progress.ts";

const t = suite("progress line");

const stream = (isTTY: boolean) => ({ isTTY, text: "", write(s: string) { this.text += s; } });

t("on a terminal: one line updated in place, other lines written around it, a newline at the total", () => {
  const err = stream(true);
  const out = stream(true);
  const p = new ProgressLine(err, "lace sandbox");
  p.count("pods started", 1, 3);
  p.count("pods started", 2, 3);
  p.line(out, "lace sandbox: pod a/b: node-1");
  p.count("pods started", 3, 3);
  assert.is(err.text, "\r\x1b[2Klace sandbox: pods started 1/3\r\x1b[2Klace sandbox: pods started 2/3\r\x1b[2Klace sandbox: pods started 2/3\r\x1b[2Klace sandbox: pods started 3/3\n");
  assert.is(out.text, "lace sandbox: pod a/b: node-1\n");
  p.count("pairs tested", 1, 94);
  p.end();
  assert.ok(err.text.endsWith("pairs tested 1/94\n"));
});

t("elsewhere: plain lines, the first, about every tenth and the last", () => {
  const err = stream(false);
  const p = new ProgressLine(err, "lace sandbox");
  for (let i = 1; i <= 94; i++) p.count("pairs tested", i, 94);
  const lines = err.text.trimEnd().split("\n");
  assert.equal(lines.map((l) => l.replace("lace sandbox: pairs tested ", "")), ["1/94", "11/94", "21/94", "31/94", "41/94", "51/94", "61/94", "71/94", "81/94", "91/94", "94/94"]);
  assert.not.match(err.text, /\x1b|\r/);
  p.line(err, "plain");
  assert.ok(err.text.endsWith("94/94\nplain\n"));
});

t.run();
