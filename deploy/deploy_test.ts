/**
 * The manifests in deploy/ are what generate.ts renders (not stale), and
 * they are structurally sound: a CRD per kind carrying the validator's
 * schema and CEL rules, the status subresource where the kind has a status,
 * printer columns, RBAC that covers every kind, and the agent DaemonSet's
 * host networking, privileges and CNI install step (run here against
 * temporary directories).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseAllDocuments } from "yaml";
import { GROUP, KINDS, VERSION } from "../core/mod.ts";
import { type CELRule, type OpenAPISchema, SCHEMAS } from "../core/resources/schema.ts";
import { kindInfo } from "../agent/store/kinds.ts";
import { parseInvocation } from "../agent/cni/spec.ts";
import { cniExecutable } from "../agent/cni/executable.ts";
import { main } from "../agent/cli/main.ts";
import { PACKAGE_ROOT } from "../agent/package_root.ts";
import { renderDeploy, staleFiles } from "./generate.ts";

const here = dirname(fileURLToPath(import.meta.url));
const t = suite("deploy manifests");

// deno-lint-ignore no-explicit-any
type Doc = any;

function docs(path: string): Doc[] {
  return parseAllDocuments(readFileSync(join(here, path), "utf8")).map((d) => d.toJS()).filter((d) => d);
}

function celRules(s: OpenAPISchema | undefined, out: CELRule[] = []): CELRule[] {
  if (!s) return out;
  out.push(...(s["x-kubernetes-validations"] ?? []));
  for (const p of Object.values(s.properties ?? {})) celRules(p, out);
  celRules(s.items, out);
  celRules(s.additionalProperties, out);
  return out;
}

/** Problems that make a CRD schema non-structural, with their paths. */
function structuralProblems(s: OpenAPISchema, path: string, out: string[] = []): string[] {
  if (!s.type && !s["x-kubernetes-preserve-unknown-fields"]) out.push(`${path}: no type`);
  if (s.properties && s.type !== "object") out.push(`${path}: properties on a ${s.type}`);
  if (s.properties && s.additionalProperties) out.push(`${path}: both properties and additionalProperties`);
  if (s.type === "array" && !s.items) out.push(`${path}: an array without items`);
  for (const [k, p] of Object.entries(s.properties ?? {})) structuralProblems(p, `${path}.${k}`, out);
  if (s.items) structuralProblems(s.items, `${path}[]`, out);
  if (s.additionalProperties) structuralProblems(s.additionalProperties, `${path}{}`, out);
  for (const r of s["x-kubernetes-validations"] ?? []) {
    if (!r.rule?.trim() || !r.message?.trim()) out.push(`${path}: a CEL rule without rule or message`);
  }
  return out;
}

t("the generated files on disk are up to date", () => {
  const stale = staleFiles();
  assert.equal(stale, [], `stale: ${stale.join(", ")}; run \`npm run generate\``);
});

t("a CRD per kind, carrying the validator's schema, CEL rules, status subresource and printer columns", () => {
  let totalRules = 0;
  for (const kind of KINDS) {
    const schema = SCHEMAS[kind];
    const [crd] = docs(`crds/${schema.plural}.${GROUP}.yaml`);
    assert.is(crd.kind, "CustomResourceDefinition");
    assert.is(crd.metadata.name, `${schema.plural}.${GROUP}`);
    assert.is(crd.spec.group, GROUP);
    assert.is(crd.spec.names.kind, kind);
    assert.is(crd.spec.names.plural, kindInfo(kind).plural, `${kind}: the stores serve the CRD's plural`);
    assert.is(crd.spec.scope, kindInfo(kind).namespaced ? "Namespaced" : "Cluster", `${kind}: the stores agree on the scope`);
    assert.is(crd.spec.versions.length, 1);
    const v = crd.spec.versions[0];
    assert.is(v.name, VERSION);
    assert.ok(v.served && v.storage);
    const root = v.schema.openAPIV3Schema as OpenAPISchema;
    assert.ok(root.required?.includes("spec"), `${kind}: spec is required`);
    assert.equal(root.properties?.spec, schema.spec, `${kind}: spec schema is the validator's`);
    assert.ok(root.properties?.spec.properties, `${kind}: spec has properties`);
    if (schema.status) {
      assert.equal(v.subresources, { status: {} }, `${kind}: status subresource`);
      assert.equal(root.properties?.status, schema.status);
    } else {
      assert.is(v.subresources, undefined, `${kind}: no status, no status subresource`);
    }
    assert.equal(structuralProblems(root, kind), [], `${kind}: structural schema`);
    const rules = celRules(root);
    const expected = [...celRules(schema.spec), ...celRules(schema.status), ...(schema.rootValidations ?? [])];
    const key = (r: CELRule) => JSON.stringify(r);
    assert.equal(rules.map(key).sort(), expected.map(key).sort(), `${kind}: every CEL rule of the schema source is in the CRD`);
    totalRules += rules.length;
    const columns = v.additionalPrinterColumns as { name: string; jsonPath: string }[];
    for (const c of schema.printerColumns ?? []) assert.ok(columns.some((x) => x.name === c.name && x.jsonPath === c.jsonPath), `${kind}: column ${c.name}`);
    assert.ok(columns.some((c) => c.name === "Age"));
  }
  assert.ok(totalRules > 0, "CEL rules are present");
  const rulesText = readFileSync(join(here, "crds/networks.lace-cni.io.yaml"), "utf8");
  assert.match(rulesText, "x-kubernetes-validations");
});

t("RBAC covers every kind and binds the service accounts the workloads run as", () => {
  const all = docs("rbac.yaml");
  const roles = new Map(all.filter((d) => d.kind === "ClusterRole").map((d) => [d.metadata.name, d]));
  const accounts = new Set(all.filter((d) => d.kind === "ServiceAccount").map((d) => d.metadata.name));
  const controller = roles.get("lace-controller");
  const laceResources = controller.rules.filter((r: Doc) => r.apiGroups.includes(GROUP)).flatMap((r: Doc) => r.resources);
  for (const kind of KINDS) {
    assert.ok(laceResources.includes(SCHEMAS[kind].plural), `controller may touch ${kind}`);
    if (SCHEMAS[kind].status) assert.ok(laceResources.includes(`${SCHEMAS[kind].plural}/status`), `controller may write ${kind} status`);
  }
  const controllerCore = controller.rules.filter((r: Doc) => r.apiGroups.includes(""));
  assert.ok(controllerCore.some((r: Doc) => r.resources.includes("services/status") && r.verbs.includes("update")), "controller may write Service status conditions");
  const agentCore = roles.get("lace-agent").rules.filter((r: Doc) => r.apiGroups.includes("")).flatMap((r: Doc) => r.resources);
  for (const r of ["pods", "namespaces", "services", "nodes"]) assert.ok(agentCore.includes(r), `agent reads ${r}`);
  for (const name of ["lace-controller", "lace-agent"]) {
    const slices = roles.get(name).rules.find((r: Doc) => r.apiGroups.includes("discovery.k8s.io") && r.resources.includes("endpointslices"));
    assert.ok(slices && ["list", "watch"].every((v) => slices.verbs.includes(v)), `${name} lists and watches EndpointSlices`);
  }
  for (const b of all.filter((d) => d.kind === "ClusterRoleBinding")) {
    assert.ok(roles.has(b.roleRef.name), `binding ${b.metadata.name} names an existing role`);
    for (const s of b.subjects) assert.ok(accounts.has(s.name), `binding ${b.metadata.name} names an existing service account`);
  }
  const [deployment] = docs("controller.yaml");
  const [daemonset] = docs("agent.yaml");
  assert.ok(accounts.has(deployment.spec.template.spec.serviceAccountName));
  assert.ok(accounts.has(daemonset.spec.template.spec.serviceAccountName));
});

/** The host path a container's mount `mountPath` shows, from the pod's hostPath volumes. */
function hostPathOf(pod: Doc, container: Doc, mountPath: string): string | undefined {
  const mount = container.volumeMounts.find((m: Doc) => m.mountPath === mountPath);
  return pod.volumes.find((v: Doc) => v.name === mount?.name)?.hostPath?.path;
}

/** The value after `flag` in a command line. */
const flagValue = (command: string[], flag: string) => command[command.indexOf(flag) + 1];

t("the agent DaemonSet: host network, privileged, an init container that runs `lace install-cni` into the host's CNI dirs", () => {
  const [ds] = docs("agent.yaml");
  assert.is(ds.kind, "DaemonSet");
  const pod = ds.spec.template.spec;
  assert.is(pod.hostNetwork, true);
  const agent = pod.containers[0];
  assert.is(agent.securityContext.privileged, true);
  assert.is(pod.initContainers.length, 1);
  const [init] = pod.initContainers;
  assert.is(init.image, agent.image, "the init container runs the agent's image");
  assert.equal(init.command.slice(0, 2), ["lace", "install-cni"]);
  assert.is(hostPathOf(pod, init, flagValue(init.command, "--bin-dir")), "/opt/cni/bin");
  assert.is(hostPathOf(pod, init, flagValue(init.command, "--conf-dir")), "/etc/cni/net.d");
  assert.not.ok(init.securityContext.privileged, "copying two files needs no privilege");
  // The conflist names the socket as the node sees it; the agent listens on it through a hostPath of the same path.
  const socket = flagValue(init.command, "--agent-socket");
  assert.is(flagValue(agent.command, "--cni-socket"), socket, "the agent listens where the conflist points");
  const socketDir = socket.slice(0, socket.lastIndexOf("/"));
  assert.is(hostPathOf(pod, agent, socketDir), socketDir, `the agent's ${socketDir} is the node's ${socketDir}`);
  const [deployment] = docs("controller.yaml");
  assert.is(deployment.kind, "Deployment");
  assert.is(deployment.metadata.namespace, ds.metadata.namespace);
});

t("the init container's command, run against temporary dirs, installs an executable and a conflist the CNI plugin's own parser accepts", async () => {
  const [ds] = docs("agent.yaml");
  const [init] = ds.spec.template.spec.initContainers;
  const dir = mkdtempSync(join(tmpdir(), "lace-deploy-test-"));
  const log = console.log;
  try {
    const binDir = join(dir, "bin");
    const confDir = join(dir, "net.d");
    mkdirSync(binDir);
    mkdirSync(confDir);
    const command = [...init.command];
    command[command.indexOf("--bin-dir") + 1] = binDir;
    command[command.indexOf("--conf-dir") + 1] = confDir;
    console.log = () => undefined;
    assert.is(await main([...command.slice(1), "--executable", cniExecutable(PACKAGE_ROOT)]), 0);
    console.log = log;
    assert.is(statSync(join(binDir, "lace-cni")).mode & 0o777, 0o755);
    const conflists = readdirSync(confDir);
    assert.equal(conflists, ["10-lace.conflist"]);
    const conflist = JSON.parse(readFileSync(join(confDir, conflists[0]), "utf8"));
    assert.is(conflist.cniVersion, "1.1.0");
    const env = {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "c0ffee",
      CNI_NETNS: "/var/run/netns/cni-1",
      CNI_IFNAME: "eth0",
      CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
      CNI_PATH: "/opt/cni/bin",
    };
    assert.ok(conflist.plugins.length > 0);
    for (const plugin of conflist.plugins) {
      assert.ok(existsSync(join(binDir, plugin.type)), `the conflist's plugin ${plugin.type} is installed`);
      // What a runtime gives each plugin of a list: its entry plus the list's cniVersion and name.
      const stdin = JSON.stringify({ ...plugin, cniVersion: conflist.cniVersion, name: conflist.name });
      const parsed = parseInvocation(env, stdin);
      assert.ok(typeof parsed === "object" && !("code" in parsed), `the plugin rejects the conflist: ${JSON.stringify(parsed)}`);
      const request = parsed as Exclude<typeof parsed, "VERSION" | { code: number }>;
      // An unknown key passes through the parser silently, so check the socket key is the one it reads.
      assert.is(request.config.agentSocket, flagValue(init.command, "--agent-socket"), `the conflist entry's agentSocket: ${JSON.stringify(plugin)}`);
    }
  } finally {
    console.log = log;
    rmSync(dir, { recursive: true, force: true });
  }
});

t("the kustomization lists every generated manifest", () => {
  const files = [...renderDeploy().keys()].filter((p) => p !== "kustomization.yaml");
  const [k] = docs("kustomization.yaml");
  assert.equal([...k.resources].sort(), files.sort());
});

const KUBECTL = "/usr/bin/kubectl";
const hasKubectl = existsSync(KUBECTL);
if (!hasKubectl) console.log(`deploy manifests: the kustomize case skipped: no ${KUBECTL}`);

(hasKubectl ? t : t.skip)("`kubectl kustomize deploy/` (what `kubectl apply -k deploy/` applies) renders every generated object", () => {
  const rendered = parseAllDocuments(execFileSync(KUBECTL, ["kustomize", here], { encoding: "utf8" })).map((d) => d.toJS()).filter((d) => d);
  const generated = [...renderDeploy()].filter(([p]) => p !== "kustomization.yaml").flatMap(([p]) => docs(p));
  const key = (d: Doc) => `${d.kind}/${d.metadata.namespace ?? ""}/${d.metadata.name}`;
  assert.equal(rendered.map(key).sort(), generated.map(key).sort());
  const agent = rendered.find((d: Doc) => d.kind === "DaemonSet");
  assert.equal(agent.spec.template.spec.initContainers[0].command.slice(0, 2), ["lace", "install-cni"]);
});

t.run();
