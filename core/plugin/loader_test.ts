import { suite } from "uvu";
import * as assert from "uvu/assert";
import "reflect-metadata";
import { container as globalContainer } from "tsyringe";
import { type ErrorCode, isLaceError, LaceError } from "../errors.ts";
import { IPAddress, Prefix } from "../ip/mod.ts";
import type { ClusterView, NetworkTypeDefinition } from "./api.ts";
import { parseConfig } from "./config.ts";
import { loadPlugins, type LoadOptions, resolvePluginSource, selectDataplane } from "./loader.ts";
import { NetworkTypeRegistry } from "./registry.ts";
import { Tokens } from "./tokens.ts";
import type { Network, NetworkSpec } from "../resources/types.ts";
import { Greeter, type GreeterService, Secret } from "./testdata/alpha.ts";
import { Welcome } from "./testdata/beta.ts";
import { HalfDone } from "./testdata/setup_rejects.ts";

const t = suite("plugin loader");

/** As if the configuration file sat in testdata/. */
const baseUrl = new URL("./testdata/lace.yaml", import.meta.url);

function load(yaml: string, opts: Partial<LoadOptions> = {}) {
  return loadPlugins(parseConfig(yaml, "lace.yaml"), { baseUrl, ...opts });
}

async function refusal(yaml: string, code: ErrorCode, opts: Partial<LoadOptions> = {}): Promise<LaceError> {
  try {
    await load(yaml, opts);
  } catch (e) {
    if (!isLaceError(e)) throw e;
    assert.is(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.unreachable(`expected a ${code} refusal, but loading succeeded`);
  throw new Error("unreachable");
}

const spec = (extra: Partial<NetworkSpec> = {}): NetworkSpec => ({ type: "alpha", ...extra });
const network: Network = { apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "n" }, spec: spec() };

t("loads plugins by path, in order, with everything they provide", async () => {
  const loaded = await load("plugins:\n  - ./alpha.ts\n  - ./beta.ts\n");
  assert.equal(loaded.plugins.map((p) => p.name), ["test-alpha", "test-beta"]);
  assert.is(loaded.plugins[0].source, new URL("./testdata/alpha.ts", import.meta.url).href);
  assert.equal(loaded.networkTypes.types(), ["alpha"]);
  assert.equal(loaded.networkTypes.entries().map((e) => [e.type, e.plugin]), [["alpha", "test-alpha"]]);
  assert.is(loaded.networkTypes.get("alpha")?.addressing, "global");
  assert.is(loaded.networkTypes.get("nope"), undefined);
  assert.is(loaded.ruleExtensions.operator("startsWith")?.plugin, "test-alpha");
  assert.is(loaded.ruleExtensions.operator("startsWith")?.definition.evaluate("backend-1", "backend"), true);
  assert.equal(loaded.ruleExtensions.facts("binding").map((f) => f.name), ["alphaZone"]);
  assert.equal(loaded.ruleExtensions.facts("routing"), []);
  const defs = loaded.ruleExtensions.definitions();
  assert.equal([defs.operators.map((o) => o.name), defs.facts.map((f) => f.name)], [["startsWith"], ["alphaZone"]]);
  assert.is(loaded.dataplanes.get("alpha-dp")?.plugin, "test-alpha");
  assert.is(selectDataplane(loaded, { dataplane: "alpha-dp" }).plugin, "test-alpha");
  assert.is(loaded.container.resolve(Tokens.NetworkTypes), loaded.networkTypes);
  assert.is(loaded.container.resolve(Tokens.RuleExtensions), loaded.ruleExtensions);
});

t("plugins resolve the core's clock and a logger carrying their name from their container", async () => {
  const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
  const log = { debug() {}, warn() {}, error() {}, info: (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, fields }) };
  const loaded = await load("plugins: [./uses_core.ts]", { clock: { now: () => 1234 }, log });
  assert.equal(loaded.container.resolve(Symbol.for("test-uses-core.Seen")), { at: 1234 });
  assert.equal(lines, [{ msg: "set up", fields: { at: 1234, plugin: "test-uses-core" } }]);
  assert.is(loaded.container.resolve<{ now(): number }>(Tokens.Clock).now(), 1234);
});

t("the registry satisfies the validator's NetworkTypeLookup and refuses a second provider", () => {
  interface NetworkTypeLookup {
    get(type: string): NetworkTypeDefinition | undefined;
    types(): string[];
  }
  const registry = new NetworkTypeRegistry();
  const lookup: NetworkTypeLookup = registry;
  const def: NetworkTypeDefinition = {
    type: "x",
    addressing: "none",
    forwarding: "underlay",
    validate() {},
    gateway: () => undefined,
    locate: () => undefined,
  };
  registry.register("one", def);
  assert.equal(lookup.types(), ["x"]);
  assert.is(registry.pluginFor("x"), "one");
  assert.throws(() => registry.register("two", def), (e: unknown) =>
    isLaceError(e, "PLUGIN_DUPLICATE_NETWORK_TYPE") && e.plugin === "two" &&
    e.message === `Cannot load plugin "two": network type "x" is already provided by plugin "one"`);
});

t("setup gets its own child container and options; only exports reach the root", async () => {
  const root = globalContainer.createChildContainer();
  const loaded = await load(
    "plugins:\n  - name: ./alpha.ts\n    options: { salutation: Hej }\n  - ./beta.ts\n",
    { container: root },
  );
  assert.is(loaded.container, root);
  assert.is(root.resolve<GreeterService>(Greeter).greet("root"), "Hej, root");
  // beta resolved alpha's export from its own container during setup.
  assert.is(root.resolve<string>(Welcome), "Hej, beta");
  // Not exported: stays inside alpha's container.
  assert.is(root.isRegistered(Secret, true), false);
  // Nothing leaks into tsyringe's global container.
  assert.is(globalContainer.isRegistered(Greeter, true), false);
});

t("a setup that throws is refused, naming the plugin and hook", async () => {
  const e = await refusal("plugins: [./alpha.ts, ./setup_throws.ts]", "PLUGIN_HOOK_FAILED");
  assert.is(e.message, `Plugin "acme-vlan-broken" failed in hook "setup": Cannot reach the VLAN controller at 10.0.0.9`);
  assert.is(e.plugin, "acme-vlan-broken");
  assert.is(e.hook, "setup");
  assert.instance(e.cause, Error);
});

t("a setup that rejects is refused and nothing is registered in the root", async () => {
  const root = globalContainer.createChildContainer();
  const e = await refusal("plugins: [./alpha.ts, ./setup_rejects.ts]", "PLUGIN_HOOK_FAILED", { container: root });
  assert.is(e.message, `Plugin "acme-async" failed in hook "setup": Timed out waiting for the license server`);
  assert.is(e.hook, "setup");
  // alpha's setup ran, but its exports were never shared: all or nothing.
  assert.is(root.isRegistered(Greeter, true), false);
  assert.is(root.isRegistered(HalfDone, true), false);
  assert.is(root.isRegistered(Tokens.NetworkTypes, true), false);
});

t("an unknown built-in is refused with the list of built-ins", async () => {
  const e = await refusal("plugins: [lace-cni/vxlan]", "PLUGIN_NOT_FOUND");
  assert.is(
    e.message,
    `Cannot load plugin "lace-cni/vxlan": there is no built-in plugin of that name; built-ins are lace-cni/l3, lace-cni/l2, lace-cni/external, lace-cni/srv6`,
  );
  assert.is(e.plugin, "lace-cni/vxlan");
});

t("a path with no module behind it is refused", async () => {
  const e = await refusal("plugins: [./alpha.ts, ./missing/mod.ts]", "PLUGIN_NOT_FOUND");
  const url = new URL("./testdata/missing/mod.ts", import.meta.url).href;
  assert.is(e.message, `Cannot load plugin "./missing/mod.ts": no module at ${url}`);
});

t("a package that is not installed is refused", async () => {
  const e = await refusal("plugins: ['@acme/lace-not-installed']", "PLUGIN_NOT_FOUND");
  assert.is(e.message, `Cannot load plugin "@acme/lace-not-installed": package "@acme/lace-not-installed" is not installed`);
});

t("a package resolves through importModule", async () => {
  const seen: string[] = [];
  const loaded = await load("plugins: ['@acme/lace-alpha']", {
    importModule: (s) => {
      seen.push(s);
      return import(new URL("./testdata/alpha.ts", import.meta.url).href);
    },
  });
  assert.equal(seen, ["@acme/lace-alpha"]);
  assert.equal(loaded.networkTypes.types(), ["alpha"]);
});

t("built-ins resolve beside the core sources", () => {
  const src = resolvePluginSource({ name: "lace-cni/l3", options: {}, kind: "builtin" }, baseUrl);
  assert.is(src, new URL("../../plugins/l3/mod.ts", import.meta.url).href);
  const abs = resolvePluginSource({ name: "/opt/lace/acme.js", options: {}, kind: "path" }, baseUrl);
  assert.is(abs, "file:///opt/lace/acme.js");
  const up = resolvePluginSource({ name: "../x/mod.ts", options: {}, kind: "path" }, baseUrl);
  assert.is(up, new URL("./x/mod.ts", import.meta.url).href);
});

t("a module that fails to import is refused as invalid, not as missing", async () => {
  const e = await refusal("plugins: [./broken_import.ts]", "PLUGIN_INVALID");
  assert.match(e.message, /^Cannot load plugin "\.\/broken_import\.ts": importing file:\/\/\S+broken_import\.ts failed: /);
  assert.match(e.message, /does_not_exist/);
});

t("a module without a definition is refused", async () => {
  const e = await refusal("plugins: [./no_definition.ts]", "PLUGIN_INVALID");
  assert.is(
    e.message,
    `Plugin module "./no_definition.ts" is invalid: default export: expected a plugin definition (default export or export named "plugin"), got undefined`,
  );
});

t("a definition with a bad field is refused, naming the field", async () => {
  let e = await refusal("plugins: [./bad_addressing.ts]", "PLUGIN_INVALID");
  assert.is(
    e.message,
    `Plugin "acme-dhcp" is invalid: networkTypes[0].addressing: expected one of "host-local", "global", "none", got "dhcp"`,
  );
  assert.is(e.plugin, "acme-dhcp");
  e = await refusal("plugins: [./bad_range.ts]", "PLUGIN_INVALID");
  assert.is(e.message, `Plugin "acme-sloppy" is invalid: apiVersion: expected a semver range such as "^1.0.0", got "version one"`);
});

t("a type the core cannot run is refused, naming the plugin and the capability", async () => {
  const e = await refusal("plugins: [./l2_blocks.ts]", "PLUGIN_UNSUPPORTED_CAPABILITY");
  assert.is(
    e.message,
    `Cannot load plugin "acme-l2blocks": network type "l2blocks" declares addressing "host-local" with forwarding "bridged", which the core cannot do: a bridged network is one L2 domain across nodes, so its addresses come from the whole subnet (addressing "global")`,
  );
  assert.is(e.plugin, "acme-l2blocks");
});

t("an unsupported plugin API range is refused", async () => {
  const e = await refusal("plugins: [./alpha.ts, ./api_v2.ts]", "PLUGIN_API_UNSUPPORTED");
  assert.is(e.message, `Cannot load plugin "acme-future": it requires plugin API ^2.0.0, this core provides 1.0.0`);
  assert.is(e.plugin, "acme-future");
});

t("two plugins with the same name are refused", async () => {
  let e = await refusal("plugins: [./alpha.ts, ./alpha_again.ts]", "PLUGIN_DUPLICATE");
  const a = new URL("./testdata/alpha.ts", import.meta.url).href;
  const b = new URL("./testdata/alpha_again.ts", import.meta.url).href;
  assert.is(e.message, `Cannot load plugin "test-alpha": ${a} and ${b} both define it`);
  e = await refusal("plugins: [./alpha.ts, ./alpha.ts]", "PLUGIN_DUPLICATE");
  assert.is(e.message, `Cannot load plugin "test-alpha": it is listed twice (${a})`);
});

t("two plugins providing the same network type are refused, naming both", async () => {
  const e = await refusal("plugins: [./alpha.ts, ./type_clash.ts]", "PLUGIN_DUPLICATE_NETWORK_TYPE");
  assert.is(e.message, `Cannot load plugin "acme-alpha-clone": network type "alpha" is already provided by plugin "test-alpha"`);
  assert.is(e.plugin, "acme-alpha-clone");
});

t("rule operators may not collide with another plugin's or json-rules-engine's", async () => {
  let e = await refusal("plugins: [./alpha.ts, ./operator_clash.ts]", "PLUGIN_DUPLICATE_RULE_EXTENSION");
  assert.is(e.message, `Cannot load plugin "acme-strings": rule operator "startsWith" is already provided by plugin "test-alpha"`);
  e = await refusal("plugins: [./builtin_operator.ts]", "PLUGIN_DUPLICATE_RULE_EXTENSION");
  assert.is(e.message, `Cannot load plugin "acme-equal": rule operator "equal" is already provided by json-rules-engine itself`);
});

t("dataplane features and exported tokens may not collide", async () => {
  let e = await refusal("plugins: [./alpha.ts, ./dataplane_clash.ts]", "PLUGIN_DUPLICATE_DATAPLANE");
  assert.is(e.message, `Cannot load plugin "acme-dp": dataplane "alpha-dp" is already provided by plugin "test-alpha"`);
  e = await refusal("plugins: [./alpha.ts, ./export_clash.ts]", "PLUGIN_DUPLICATE_EXPORT");
  assert.is(e.message, `Cannot load plugin "acme-greeter": token test-alpha.Greeter is already provided by plugin "test-alpha"`);
  const root = globalContainer.createChildContainer();
  root.register(Greeter, { useValue: { greet: () => "core" } });
  e = await refusal("plugins: [./alpha.ts]", "PLUGIN_DUPLICATE_EXPORT", { container: root });
  assert.is(e.message, `Cannot load plugin "test-alpha": token test-alpha.Greeter is already provided by the core`);
});

t("an export that setup never registers is refused", async () => {
  const e = await refusal("plugins: [./export_unregistered.ts]", "PLUGIN_INVALID");
  assert.is(
    e.message,
    `Cannot load plugin "acme-forgetful": exports: lists acme-forgetful.Service, but setup did not register it in the plugin's container`,
  );
});

t("a missing or later-listed dependency is refused", async () => {
  let e = await refusal("plugins: [./alpha.ts, ./needs_missing.ts]", "PLUGIN_DEPENDENCY_MISSING");
  assert.is(e.message, `Cannot load plugin "acme-needy": it depends on "acme-ghost", which is not in the configuration`);
  e = await refusal("plugins: [./beta.ts, ./alpha.ts]", "PLUGIN_DEPENDENCY_MISSING");
  assert.is(e.message, `Cannot load plugin "test-beta": it depends on "test-alpha", which is listed after it; list it first`);
  e = await refusal("plugins: [./beta.ts]", "PLUGIN_DEPENDENCY_MISSING");
  assert.is(e.plugin, "test-beta");
});

t("hooks are wrapped: a throw names the plugin, the hook and the type", async () => {
  const loaded = await load("plugins: [./hook_throws.ts]");
  const buggy = loaded.networkTypes.get("buggy")!;
  const calls: [string, () => unknown][] = [
    ["validate", () => buggy.validate({ type: "buggy" }, () => {})],
    ["gateway", () => buggy.gateway(network, Prefix.parse("10.0.0.0/24"))],
    ["locate", () => buggy.locate(network, IPAddress.parse("10.0.0.1"), {} as ClusterView)],
  ];
  const messages: string[] = [];
  for (const [hook, call] of calls) {
    assert.throws(call, (e: unknown) => isLaceError(e, "PLUGIN_HOOK_FAILED") && e.plugin === "acme-buggy" && e.hook === hook);
    try {
      call();
    } catch (e) {
      messages.push((e as Error).message);
    }
  }
  assert.match(messages[0], /^Plugin "acme-buggy" failed in hook "validate" of network type "buggy": \S/);
  assert.is(messages[1], `Plugin "acme-buggy" failed in hook "gateway" of network type "buggy": No gateway configured`);
  assert.is(messages[2], `Plugin "acme-buggy" failed in hook "locate" of network type "buggy": a string, not an Error`);
  const op = loaded.ruleExtensions.operator("explodes")!.definition;
  assert.throws(() => op.evaluate(1, 2), (e: unknown) =>
    isLaceError(e, "PLUGIN_HOOK_FAILED") &&
    e.message === `Plugin "acme-buggy" failed in hook "evaluate" of operator "explodes": Value out of range`);
});

t("wrapped hooks pass results and reports through", async () => {
  const loaded = await load("plugins: [./alpha.ts]");
  const alpha = loaded.networkTypes.get("alpha")!;
  const problems: string[] = [];
  alpha.validate(spec(), (path, msg) => problems.push(`${path}: ${msg}`));
  assert.equal(problems, ["ipv4Subnet: expected a subnet"]);
  assert.is(alpha.gateway(network, Prefix.parse("10.9.0.0/16"))?.toString(), "10.9.0.1");
  assert.is(loaded.ruleExtensions.fact("alphaZone")?.definition.compute({ node: "n1" }, undefined), "zone-n1");
});

t("a dataplane create that rejects names the plugin", async () => {
  const loaded = await loadPlugins({ plugins: [] }, { baseUrl });
  assert.throws(() => selectDataplane(loaded, { dataplane: "srv6" }), (e: unknown) =>
    isLaceError(e, "INVALID_CONFIG") &&
    e.message === `Invalid configuration: dataplane: no loaded plugin provides dataplane "srv6"; loaded plugins provide none`);
  const mod = {
    default: {
      name: "acme-dp",
      apiVersion: "^1",
      dataplanes: [{ feature: "acme", create: () => Promise.reject(new Error("No netlink socket")) }],
    },
  };
  const withDp = await load("plugins: ['acme-dp']", { importModule: () => Promise.resolve(mod) });
  const create = withDp.dataplanes.get("acme")!.definition.create(withDp.container, { node: "n1" });
  try {
    await create;
    assert.unreachable("create should reject");
  } catch (e) {
    assert.ok(isLaceError(e, "PLUGIN_HOOK_FAILED"));
    assert.is((e as LaceError).message, `Plugin "acme-dp" failed in hook "create" of dataplane "acme": No netlink socket`);
  }
});

t("setup's logger carries the plugin name", async () => {
  const lines: unknown[] = [];
  const log = (msg: string, fields?: Record<string, unknown>) => lines.push({ msg, ...fields });
  const mod = {
    default: {
      name: "acme-chatty",
      apiVersion: "^1.0.0",
      setup: ({ log }: { log: { info(m: string, f?: Record<string, unknown>): void } }) => log.info("ready", { vlans: 3 }),
    },
  };
  await load("plugins: ['acme-chatty']", {
    importModule: () => Promise.resolve(mod),
    log: { debug: log, info: log, warn: log, error: log },
  });
  assert.equal(lines, [{ msg: "ready", vlans: 3, plugin: "acme-chatty" }]);
});

t.run();
