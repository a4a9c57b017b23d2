import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatProblem } from "../resources/problem.ts";
import { parseManifests } from "./parse.ts";

const t = suite("parseManifests");

const network = (name: string) => `apiVersion: lace-cni.io/v1alpha1
kind: Network
metadata:
  name: ${name}
spec:
  type: l2
  ipv4Subnet: {prefix: 10.50.0.0/24}
`;

t("multi-document YAML, empty documents skipped", () => {
  const { resources, problems } = parseManifests(`---\n${network("a")}---\n---\n# only a comment\n---\n${network("b")}`, "nets.yaml");
  assert.equal(problems, []);
  assert.equal(resources.map((r) => r.metadata.name), ["a", "b"]);
  assert.equal(resources[0].spec, { type: "l2", ipv4Subnet: { prefix: "10.50.0.0/24" } });
});

t("a syntax error names the file and line; the other documents still parse", () => {
  const text = `${network("a")}---
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
  labels: {team: a
---
${network("b")}`;
  const { resources, problems } = parseManifests(text, "examples/bad.yaml");
  assert.equal(resources.map((r) => r.metadata.name), ["a", "b"]);
  assert.is(problems.length, 1);
  assert.is(problems[0].object, "examples/bad.yaml:14");
  assert.ok(formatProblem(problems[0]).startsWith("examples/bad.yaml:14: invalid YAML: "), formatProblem(problems[0]));
});

t("a bad indentation is reported once, at the mapping it breaks", () => {
  const { problems } = parseManifests("kind: Network\nmetadata:\n  name: a\n   spec: 1\n", "x.yaml");
  assert.equal(problems.map(formatProblem), ["x.yaml:3: invalid YAML: nested mappings are not allowed in compact mappings (column 9)"]);
});

t("duplicate keys are a syntax error", () => {
  const { resources, problems } = parseManifests("kind: Network\nkind: Topology\n", "dup.yaml");
  assert.equal(resources, []);
  assert.is(problems[0].object, "dup.yaml:2");
  assert.ok(problems[0].message.includes("unique"), problems[0].message);
});

t("kind: List is expanded into its items", () => {
  const text = JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "a" } }, 7],
  });
  const { resources, problems } = parseManifests(text, "list.json");
  assert.equal(resources.map((r) => r.metadata.name), ["a"]);
  assert.equal(problems.map(formatProblem), ["list.json:1: items[1]: expected a Kubernetes object, got 7"]);
});

t("a document that is not a mapping is a problem at its line", () => {
  const { resources, problems } = parseManifests(`${network("a")}---\n- just\n- a list\n`, "l.yaml");
  assert.is(resources.length, 1);
  assert.equal(problems.map(formatProblem), [
    'l.yaml:9: expected a Kubernetes object (a mapping with apiVersion, kind and metadata), got ["just","a list"]',
  ]);
});

t.run();
