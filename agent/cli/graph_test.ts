/**
 * `lace graph` on examples/: the edges the policies decide, and the SVG's
 * elements (a group per network, clouds for external networks, the
 * anonymous network marked, an arrow per edge with its label and colour,
 * dashed reply-only edges), laid out by ELK inside the picture.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRuntime } from "../config/runtime.ts";
import { readManifestFiles } from "./files.ts";
import { formatEdge, runGraph } from "./graph.ts";
import { reachabilityGraph } from "./graph_model.ts";
import { renderGraphSvg } from "./graph_svg.ts";

const t = suite("lace graph");

const examples = async () => {
  const { resources } = await readManifestFiles(["examples/"]);
  const { networkTypes, extensions } = await loadRuntime(undefined);
  return reachabilityGraph(resources, { networkTypes, extensions });
};

t("the edges are the policies' decisions, with narrowed Deny pieces and the replies-only way back", async () => {
  const g = await examples();
  assert.equal(g.edges.map(formatEdge), [
    "backend -> corp  allow by backend-to-corp",
    "backend -> lab  allow by backend-to-lab",
    "backend -> lab  deny by no-lab-management for 192.0.2.240/28",
    "backend -> vault  allow by backend-to-vault",
    "frontend -> backend  allow by frontend-to-backend",
    "corp -> backend  replies only (the way back of backend-to-corp)",
    "lab -> backend  replies only (the way back of backend-to-lab)",
    "vault -> backend  replies only (the way back of backend-to-vault)",
    "backend -> frontend  replies only (the way back of frontend-to-backend)",
  ]);
  assert.equal(g.networks.filter((n) => n.anonymous).map((n) => n.name), ["vault"]);
});

t("the SVG has a group per network, clouds for external ones, the anonymous one marked, and an arrow per edge", async () => {
  const svg = await renderGraphSvg(await examples(), { title: "examples" });
  const groups = [...svg.matchAll(/<g class="network([^"]*)" data-network="([^"]+)" data-type="([^"]+)">/g)].map((m) => `${m[2]}:${m[3]}:${m[1].trim()}`).sort();
  assert.equal(groups, ["backend:l3:", "corp:external:external", "frontend:l3:", "lab:external:external", "storage:l2:", "vault:l3:anonymous"]);
  assert.is([...svg.matchAll(/<path class="cloud"/g)].length, 2);
  const edges = [...svg.matchAll(/<g class="edge (\w+)" data-from="([^"]+)" data-to="([^"]+)" data-kind="\w+"(?: data-policy="([^"]+)")?>\n<path d="([^"]+)" fill="none" stroke="(#[0-9a-f]+)"[^>]*?( stroke-dasharray="[^"]+")? marker-end/g)];
  assert.is(edges.length, 9);
  const allow = edges.find((e) => e[2] === "backend" && e[3] === "corp")!;
  assert.equal([allow[1], allow[4], allow[6], allow[7]], ["allow", "backend-to-corp", "#2e7d32", undefined]);
  const deny = edges.find((e) => e[1] === "deny")!;
  assert.equal([deny[2], deny[3], deny[4], deny[6]], ["backend", "lab", "no-lab-management", "#c62828"]);
  for (const r of edges.filter((e) => e[1] === "reply")) assert.ok(r[7], `the reply edge ${r[2]} -> ${r[3]} is dashed`);
  assert.match(svg, />no-lab-management \(192\.0\.2\.240\/28\)<\/text>/);
  assert.match(svg, />replies only<\/text>/);
  assert.match(svg, />l3, anonymous<\/text>/);
  // Every edge is drawn inside the picture, starting and ending at the boxes ELK placed.
  const [, w, h] = /viewBox="0 0 (\d+) (\d+)"/.exec(svg)!;
  for (const e of edges) {
    for (const [, x, y] of e[5].matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)) {
      assert.ok(Number(x) >= 0 && Number(x) <= Number(w) && Number(y) >= 0 && Number(y) <= Number(h), `point ${x},${y} of ${e[2]} -> ${e[3]}`);
    }
  }
});

t("lace graph -f writes the picture; without a source or with both it says what it needs", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-graph-"));
  try {
    const err: string[] = [];
    assert.is(await runGraph({ filename: ["examples/"], svg: join(dir, "g.svg") }, () => undefined, (l) => err.push(l)), 0);
    assert.match(readFileSync(join(dir, "g.svg"), "utf8"), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(err.join("\n"), /wrote .*g\.svg \(6 networks, 9 edges\)/);
    const none: string[] = [];
    assert.is(await runGraph({}, () => undefined, (l) => none.push(l)), 1);
    assert.match(none[0], /give either -f <manifests> or one of --kubeconfig, --db, --store-socket/);
    const unwritable: string[] = [];
    assert.is(await runGraph({ filename: ["examples/"], svg: join(dir, "no", "such", "g.svg") }, () => undefined, (l) => unwritable.push(l)), 1);
    assert.match(unwritable.join("\n"), /--svg: cannot write .*no\/such\/g\.svg/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
