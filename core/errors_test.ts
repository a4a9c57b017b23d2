import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ERROR_CODES, isLaceError, laceError, LaceError } from "./errors.ts";
import { readText } from "../test/read_text.ts";

const t = suite("error codes");

const docUrl = new URL("../docs/errors.md", import.meta.url);

interface Section {
  code: string;
  body: string;
}

async function sections(): Promise<Section[]> {
  const text = await readText(docUrl);
  const parts = text.split(/^## /m).slice(1);
  return parts.map((p) => {
    const nl = p.indexOf("\n");
    return { code: p.slice(0, nl).trim(), body: p.slice(nl + 1) };
  });
}

t("ERROR_CODES is alphabetised and has no duplicates", () => {
  const sorted = [...ERROR_CODES].sort();
  assert.equal([...ERROR_CODES], sorted);
  assert.is(new Set(ERROR_CODES).size, ERROR_CODES.length);
});

t("every code is documented in docs/errors.md", async () => {
  const documented = new Set((await sections()).map((s) => s.code));
  const missing = ERROR_CODES.filter((c) => !documented.has(c));
  assert.equal(missing, [], `undocumented in docs/errors.md: ${missing.join(", ")}`);
});

t("docs/errors.md documents no unknown code, in the same order", async () => {
  const documented = (await sections()).map((s) => s.code);
  const known = new Set<string>(ERROR_CODES);
  const unknown = documented.filter((c) => !known.has(c));
  assert.equal(unknown, [], `documented but not in ERROR_CODES: ${unknown.join(", ")}`);
  assert.equal(documented, [...ERROR_CODES]);
});

t("each section says what it means, shows an example and what to do", async () => {
  for (const { code, body } of await sections()) {
    for (const part of ["**Means:**", "**Example:**", "**What to do:**"]) {
      assert.ok(body.includes(part), `section ${code} lacks ${part}`);
    }
    // The example message follows the message style: capital first, no final period.
    const example = /\*\*Example:\*\* `([^`]+)`/.exec(body)?.[1];
    assert.ok(example !== undefined, `section ${code}: the example is not a \`code\` span`);
    assert.match(example!, /^[A-Z]/, `section ${code}: the example should start with a capital`);
    assert.not.match(example!, /\.$/, `section ${code}: the example should not end with a period`);
  }
});

t("LaceError carries its code, plugin, hook and cause", () => {
  const cause = new Error("boom");
  const e = laceError("PLUGIN_HOOK_FAILED", `Plugin "acme" failed in hook "setup": boom`, { plugin: "acme", hook: "setup", cause });
  assert.instance(e, LaceError);
  assert.instance(e, Error);
  assert.is(e.name, "LaceError");
  assert.equal([e.code, e.plugin, e.hook, e.cause], ["PLUGIN_HOOK_FAILED", "acme", "setup", cause]);
  assert.ok(isLaceError(e, "PLUGIN_HOOK_FAILED"));
  assert.not.ok(isLaceError(e, "PLUGIN_INVALID"));
  assert.not.ok(isLaceError(new Error("plain")));
});

t.run();
