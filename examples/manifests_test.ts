import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseManifests } from "../core/manifest/parse.ts";
import { NetworkTypeRegistry } from "../core/plugin/registry.ts";
import { formatProblem } from "../core/resources/problem.ts";
import { KINDS, type Resource } from "../core/resources/types.ts";
import { validateAll } from "../core/resources/validate.ts";
import { externalNetworkType } from "../plugins/external/mod.ts";
import { l2NetworkType } from "../plugins/l2/mod.ts";
import { l3NetworkType } from "../plugins/l3/mod.ts";
import { readText } from "../test/read_text.ts";

const t = suite("examples");

const FILES = ["cluster.yaml", "networks.yaml", "policies.yaml", "state.yaml", "topology.yaml"];
const registry = new NetworkTypeRegistry();
registry.register("lace-cni/l3", l3NetworkType);
registry.register("lace-cni/l2", l2NetworkType);
registry.register("lace-cni/external", externalNetworkType);

const resources: Resource[] = [];
const problems: string[] = [];
for (const file of FILES) {
  const parsed = parseManifests(await readText(new URL(`./${file}`, import.meta.url)), `examples/${file}`);
  resources.push(...parsed.resources);
  problems.push(...parsed.problems.map(formatProblem));
}

t("the shipped manifests are valid", () => {
  problems.push(...validateAll(resources, { networkTypes: registry }).map(formatProblem));
  assert.equal(problems, []);
});

t("they cover every kind, the spec's networks and a dual-stack and an anonymous one", () => {
  const kinds = new Set(resources.map((r) => r.kind));
  for (const kind of [...KINDS, "Namespace", "Pod"]) assert.ok(kinds.has(kind), `no ${kind} in examples/`);
  const nets = new Map(resources.filter((r) => r.kind === "Network").map((r) => [r.metadata.name, r.spec as Record<string, unknown>]));
  assert.is(nets.get("backend")?.type, "l3");
  assert.is(nets.get("storage")?.type, "l2");
  assert.is(nets.get("corp")?.type, "external");
  assert.ok([...nets.values()].some((s) => s.ipv4Subnet && s.ipv6Subnet), "no dual-stack network");
  assert.ok([...nets.values()].some((s) => s.anonymous === true), "no anonymous network");
  const actions = resources.filter((r) => r.kind === "NetworkRoutingPolicy").map((r) => (r.spec as { action: string }).action);
  assert.ok(actions.includes("Allow") && actions.includes("Deny"));
  const matchKinds = resources.filter((r) => r.kind === "NetworkBindingPolicy").map((r) => (r.spec as { matchKind: string }).matchKind);
  assert.ok(matchKinds.includes("Pod") && matchKinds.includes("Service"));
});

t.run();
