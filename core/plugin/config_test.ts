import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isLaceError } from "../errors.ts";
import { checkConfig, parseConfig, pluginSourceKind } from "./config.ts";
import { readText } from "../../test/read_text.ts";

const t = suite("plugin config");

function invalid(text: string): string {
  try {
    parseConfig(text, "lace.yaml");
  } catch (e) {
    assert.ok(isLaceError(e, "INVALID_CONFIG"), `expected INVALID_CONFIG, got ${String(e)}`);
    return (e as Error).message;
  }
  assert.unreachable("expected INVALID_CONFIG");
  return "";
}

t("parses names, mappings with options, and defaults the dataplane", () => {
  const config = parseConfig(
    [
      "plugins:",
      "  - lace-cni/l3",
      "  - ./acme/mod.ts",
      "  - /opt/lace/vxlan.js",
      "  - name: '@acme/lace-vxlan'",
      "    options: { vniBase: 4000 }",
      "defaultNetwork: backend",
    ].join("\n"),
    "lace.yaml",
  );
  assert.equal(config.plugins, [
    { name: "lace-cni/l3", options: {}, kind: "builtin" },
    { name: "./acme/mod.ts", options: {}, kind: "path" },
    { name: "/opt/lace/vxlan.js", options: {}, kind: "path" },
    { name: "@acme/lace-vxlan", options: { vniBase: 4000 }, kind: "package" },
  ]);
  assert.is(config.defaultNetwork, "backend");
  assert.is(config.dataplane, "srv6");
});

t("an empty file is an empty configuration", () => {
  assert.equal(parseConfig("", "lace.yaml"), { plugins: [], dataplane: "srv6", dataplaneOptions: {} });
  assert.equal(checkConfig({ dataplane: "fake" }).dataplane, "fake");
});

t("the dataplane's mapping form names the feature and carries its settings to the plugin", () => {
  const c = parseConfig("dataplane:\n  feature: srv6\n  backend: bpf\n  bpffs: /sys/fs/bpf\n", "lace.yaml");
  assert.is(c.dataplane, "srv6");
  assert.equal(c.dataplaneOptions, { backend: "bpf", bpffs: "/sys/fs/bpf" });
  // Without a feature, the default one gets the settings.
  assert.equal(checkConfig({ dataplane: { backend: "kernel" } }), { plugins: [], dataplane: "srv6", dataplaneOptions: { backend: "kernel" } });
  assert.is(invalid("dataplane: {feature: 3}"), "Invalid configuration lace.yaml: dataplane.feature: expected a non-empty string, got 3");
});

t("source kinds follow how the name is written", () => {
  assert.is(pluginSourceKind("lace-cni/srv6"), "builtin");
  assert.is(pluginSourceKind("../x.ts"), "path");
  assert.is(pluginSourceKind("lace-cni-extra"), "package");
});

t("every problem is reported with its field path", () => {
  const msg = invalid([
    "plugin: [lace-cni/l3]",
    "plugins:",
    "  - 42",
    "  - name: ''",
    "  - name: ./x.ts",
    "    options: [1]",
    "    opts: {}",
    "  - [a]",
    "dataplane: 7",
    "defaultNetwork: ''",
  ].join("\n"));
  assert.is(
    msg,
    [
      "Invalid configuration lace.yaml:",
      "  plugin: unknown field, expected one of plugins, defaultNetwork, dataplane",
      "  plugins[0]: expected a plugin name or a mapping with name and options, got 42",
      "  plugins[1].name: expected a plugin name (built-in, package or path), got \"\"",
      "  plugins[2].opts: unknown field, expected one of name, options",
      "  plugins[2].options: expected a mapping, got a list",
      "  plugins[3]: expected a plugin name or a mapping with name and options, got a list",
      "  dataplane: expected a dataplane feature name or a mapping with feature and its settings, got 7",
      "  defaultNetwork: expected a non-empty string, got \"\"",
    ].join("\n"),
  );
});

t("one problem fits on one line", () => {
  assert.is(invalid("plugins: lace-cni/l3"), `Invalid configuration lace.yaml: plugins: expected a list, got "lace-cni/l3"`);
  assert.is(invalid("- a\n- b"), "Invalid configuration lace.yaml: (top level): expected a mapping with plugins, defaultNetwork, dataplane, got a list");
});

t("a YAML syntax error names the file and line", () => {
  const msg = invalid("plugins:\n  - lace-cni/l3\n  - [unclosed\n");
  assert.match(msg, /^Invalid configuration lace\.yaml: YAML syntax error at line 4, column 1: Flow sequence /);
});

t("the shipped lace.yaml lists the four built-ins and the srv6 dataplane", async () => {
  const url = new URL("../../lace.yaml", import.meta.url);
  const config = parseConfig(await readText(url), url.href);
  assert.equal(config.plugins.map((p) => [p.name, p.kind]), [
    ["lace-cni/l3", "builtin"],
    ["lace-cni/l2", "builtin"],
    ["lace-cni/external", "builtin"],
    ["lace-cni/srv6", "builtin"],
  ]);
  assert.is(config.dataplane, "srv6");
  assert.is(config.defaultNetwork, undefined);
});

t.run();
