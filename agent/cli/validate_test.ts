import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { networkTypesFrom, runValidate } from "./validate.ts";

const t = suite("lace validate");
const root = fileURLToPath(new URL("../..", import.meta.url));
const at = (p: string) => fileURLToPath(new URL(p, import.meta.url));

async function run(paths: string[], config?: string): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runValidate(paths, { networkTypes: await networkTypesFrom(config), out: (l) => lines.push(l) });
  return { code, lines };
}

const BAD = [
  "Network/backend: spec.ipv4Subnet.hostLocalPrefixLength: must be between 17 and 30 for a /16 IPv4 subnet (a block needs room for the gateway and a pod), got 12",
  'Network/backend: spec.ipv4Subnet.prefix: host bits set in "10.40.0.1/16": expected the network address 10.40.0.0/16',
  'Network/corp: spec.externalPrefixes[1]: host bits set in "198.51.100.7/24": expected the network address 198.51.100.0/24',
  "NetworkBindingPolicy/Team_A: metadata.name: expected a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit), got \"Team_A\"",
  'NetworkBindingPolicy/Team_A: spec.matchKind: expected one of "Pod", "Service", got "Job"',
  "NetworkBindingPolicy/Team_A: spec.network: is required (expected a string: the network matching resources bind to)",
  "NetworkBindingPolicy/Team_A: spec.priority: must be at least 0, got -1",
];

t("the shipped examples are valid", async () => {
  const { code, lines } = await run([at("../../examples/")]);
  assert.equal(lines, ["ok: 35 resources"]);
  assert.is(code, 0);
});

t("a bad manifest: one line per problem, exit 1", async () => {
  const { code, lines } = await run([at("testdata/bad.yaml")]);
  assert.equal(lines, BAD);
  assert.is(code, 1);
});

t("a YAML syntax error names the file and line", async () => {
  const file = at("testdata/syntax.yaml");
  const { code, lines } = await run([file]);
  assert.equal(lines, [`${file}:14: invalid YAML: flow sequence in block collection must be sufficiently indented and end with a ] (column 1)`]);
  assert.is(code, 1);
});

t("a missing path and a directory without manifests are problems", async () => {
  assert.equal((await run([at("testdata/nope.yaml")])).lines, [`${at("testdata/nope.yaml")}: no such file or directory`]);
  const empty = await run([at("../../core/ip/")]);
  assert.equal(empty.lines, [`${at("../../core/ip/")}: no manifests found (expected *.yaml, *.yml or *.json files)`]);
  assert.is(empty.code, 1);
});

t("a plugin's network type is known only when the configuration loads it", async () => {
  const without = await run([at("testdata/vlan.yaml")]);
  assert.equal(without.lines, [
    'Network/storage-vlan: spec.type: expected one of the known network types "external", "l2", "l3", got "vlan"',
  ]);
  const withPlugin = await run([at("testdata/vlan.yaml")], at("../../examples/plugins/vlan/testdata/lace.yaml"));
  assert.equal(withPlugin.lines, ["ok: 1 resource"]);
});

t("as a command: `lace validate -f` prints and exits the same way", () => {
  const lace = (...args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", "agent/cli/main.ts", "validate", ...args], { cwd: root, encoding: "utf8" });
  const ok = lace("-f", "examples/");
  assert.is(ok.stdout, "ok: 35 resources\n");
  assert.is(ok.status, 0);
  const bad = lace("-f", "agent/cli/testdata/bad.yaml", "-f", "examples/topology.yaml");
  assert.is(bad.stdout, BAD.map((l) => `${l}\n`).join(""));
  assert.is(bad.status, 1);
});

t.run();
