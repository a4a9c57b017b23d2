import { suite } from "uvu";
import * as assert from "uvu/assert";
import { renderMatrixSvg } from "./matrix_svg.ts";

const t = suite("sandbox matrix SVG");

t("a cell per tested pair and family, coloured by expected against observed; external hosts last", () => {
  const svg = renderMatrixSvg([
    { from: "a/x", to: "a/y", family: "ipv4", expected: "allow", observed: "allow" },
    { from: "a/x", to: "a/y", family: "ipv6", expected: "allow", observed: "allow" },
    { from: "a/y", to: "a/x", family: "ipv4", expected: "deny", observed: "allow" },
    { from: "a/y", to: "external/wan", family: "ipv4", expected: "deny", observed: "deny" },
    { from: "external/wan", to: "a/y", family: "ipv4", expected: "deny", observed: "deny" },
  ], { title: "t" });
  const cells = [...svg.matchAll(/<g class="cell (\w+)" data-from="([^"]+)" data-to="([^"]+)" data-family="(\w+)"/g)].map((m) => `${m[2]}>${m[3]}:${m[4]}:${m[1]}`);
  assert.equal(cells, ["a/x>a/y:ipv4:allow", "a/x>a/y:ipv6:allow", "a/y>a/x:ipv4:mismatch", "a/y>external/wan:ipv4:deny", "external/wan>a/y:ipv4:deny"]);
  assert.equal([...svg.matchAll(/<text class="row"[^>]*>([^<]+)</g)].map((m) => m[1]), ["a/x", "a/y", "external/wan"]);
  assert.equal([...svg.matchAll(/<text class="column"[^>]*>([^<]+)</g)].map((m) => m[1]), ["a/x", "a/y", "external/wan"]);
  assert.match(svg, /<title>a\/y → a\/x \(ipv4\): expected deny, observed allow<\/title>\n<rect [^>]*fill="#ef5350"/);
  assert.match(svg, />1 of 5 results differ from what the policies decide;/);
  // Pairs not tested (a pod to itself, a/x and the external host) are blank.
  assert.is([...svg.matchAll(/class="cell untested"/g)].length, 5);
});

t.run();
