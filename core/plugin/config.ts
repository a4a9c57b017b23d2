/**
 * The lace-cni configuration file (`lace.yaml`): which plugins to load, the
 * default network and the dataplane feature. Parsing reports every problem
 * with its field path in one `INVALID_CONFIG` error.
 *
 * @example
 * const config = parseConfig(`plugins: [lace-cni/l3, ./acme/mod.ts]`, "lace.yaml");
 * config.plugins[1]; // { name: "./acme/mod.ts", options: {}, kind: "path" }
 * config.dataplane;  // "srv6"
 * parseConfig("dataplane: {feature: srv6, backend: bpf}").dataplaneOptions; // { backend: "bpf" }
 */
import { parseDocument } from "yaml";
import { LaceError } from "../errors.ts";

/** Where a plugin comes from, as decided by how its name is written. */
export type PluginSourceKind = "builtin" | "path" | "package";

/** One entry of `plugins:`. */
export interface PluginEntry {
  /** As written: `lace-cni/l3`, `./plugins/acme/mod.ts`, `@acme/lace-vxlan`. */
  name: string;
  options: Record<string, unknown>;
  kind: PluginSourceKind;
}

/** A checked configuration. */
export interface LaceConfig {
  plugins: PluginEntry[];
  /** The network a pod goes to when no binding policy matches it. */
  defaultNetwork?: string;
  /** The dataplane feature the agent applies desired state with. */
  dataplane: string;
  /**
   * The dataplane's own settings (`dataplane: {feature: srv6, backend: bpf}`
   * gives `{backend: "bpf"}`): checked by the plugin that provides the feature.
   */
  dataplaneOptions: Record<string, unknown>;
}

/** The dataplane used when the configuration names none. */
export const DEFAULT_DATAPLANE = "srv6";

/** The prefix of the plugins that ship with lace-cni. */
export const BUILTIN_PREFIX = "lace-cni/";

const TOP_LEVEL_KEYS = ["plugins", "defaultNetwork", "dataplane"] as const;
const ENTRY_KEYS = ["name", "options"] as const;

/**
 * How a plugin name is resolved: `lace-cni/…` is a built-in, a name
 * starting with `./`, `../` or `/` is a path relative to the configuration
 * file, anything else is a package.
 *
 * @example
 * pluginSourceKind("../acme/mod.ts"); // "path"
 */
export function pluginSourceKind(name: string): PluginSourceKind {
  if (name.startsWith(BUILTIN_PREFIX)) return "builtin";
  if (name.startsWith("./") || name.startsWith("../") || name.startsWith("/")) return "path";
  return "package";
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return JSON.stringify(value);
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkName(value: unknown, path: string, problems: string[]): value is string {
  if (typeof value === "string" && value.trim() !== "") return true;
  problems.push(`${path}: expected a plugin name (built-in, package or path), got ${show(value)}`);
  return false;
}

/**
 * Checks an already-parsed configuration object.
 *
 * @example
 * checkConfig({ plugins: ["lace-cni/l3"], dataplane: "srv6" }, "lace.yaml");
 */
export function checkConfig(raw: unknown, file = "configuration"): LaceConfig {
  const problems: string[] = [];
  const config: LaceConfig = { plugins: [], dataplane: DEFAULT_DATAPLANE, dataplaneOptions: {} };
  if (raw === null || raw === undefined) raw = {};
  if (!isMapping(raw)) {
    throw configError(file, [`(top level): expected a mapping with ${TOP_LEVEL_KEYS.join(", ")}, got ${show(raw)}`]);
  }
  for (const key of Object.keys(raw)) {
    if (!(TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      problems.push(`${key}: unknown field, expected one of ${TOP_LEVEL_KEYS.join(", ")}`);
    }
  }

  const plugins = raw.plugins;
  if (plugins !== undefined && plugins !== null && !Array.isArray(plugins)) {
    problems.push(`plugins: expected a list, got ${show(plugins)}`);
  } else {
    for (const [i, entry] of (plugins ?? []).entries()) {
      const path = `plugins[${i}]`;
      if (typeof entry === "string") {
        if (checkName(entry, path, problems)) config.plugins.push({ name: entry, options: {}, kind: pluginSourceKind(entry) });
        continue;
      }
      if (!isMapping(entry)) {
        problems.push(`${path}: expected a plugin name or a mapping with name and options, got ${show(entry)}`);
        continue;
      }
      for (const key of Object.keys(entry)) {
        if (!(ENTRY_KEYS as readonly string[]).includes(key)) {
          problems.push(`${path}.${key}: unknown field, expected one of ${ENTRY_KEYS.join(", ")}`);
        }
      }
      const nameOk = checkName(entry.name, `${path}.name`, problems);
      const options = entry.options ?? {};
      const optionsOk = isMapping(options);
      if (!optionsOk) problems.push(`${path}.options: expected a mapping, got ${show(options)}`);
      if (nameOk && optionsOk) {
        const name = entry.name as string;
        config.plugins.push({ name, options, kind: pluginSourceKind(name) });
      }
    }
  }

  const dataplane = raw.dataplane;
  if (isMapping(dataplane)) {
    // The mapping form: the feature, and the settings its plugin checks.
    const { feature, ...options } = dataplane;
    if (feature !== undefined && feature !== null) {
      if (typeof feature !== "string" || feature.trim() === "") problems.push(`dataplane.feature: expected a non-empty string, got ${show(feature)}`);
      else config.dataplane = feature;
    }
    config.dataplaneOptions = options;
  } else if (dataplane !== undefined && dataplane !== null) {
    if (typeof dataplane !== "string" || dataplane.trim() === "") {
      problems.push(`dataplane: expected a dataplane feature name or a mapping with feature and its settings, got ${show(dataplane)}`);
    } else {
      config.dataplane = dataplane;
    }
  }
  const defaultNetwork = raw.defaultNetwork;
  if (defaultNetwork !== undefined && defaultNetwork !== null) {
    if (typeof defaultNetwork !== "string" || defaultNetwork.trim() === "") {
      problems.push(`defaultNetwork: expected a non-empty string, got ${show(defaultNetwork)}`);
    } else {
      config.defaultNetwork = defaultNetwork;
    }
  }

  if (problems.length > 0) throw configError(file, problems);
  return config;
}

/**
 * Parses and checks the YAML text of a configuration file. A YAML syntax
 * error names the file and line.
 *
 * @example
 * parseConfig("plugins:\n  - lace-cni/l3\ndefaultNetwork: backend\n", "/etc/lace/lace.yaml");
 */
export function parseConfig(text: string, file = "configuration"): LaceConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const line = e.linePos?.[0];
      const at = line ? `line ${line.line}, column ${line.col}` : "unknown position";
      // prettyErrors appends the position and a code frame; keep the sentence only.
      return `${at}: ${e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")}`;
    });
    throw new LaceError("INVALID_CONFIG", `Invalid configuration ${file}: YAML syntax error at ${lines.join("; ")}`);
  }
  return checkConfig(doc.toJS(), file);
}

function configError(file: string, problems: string[]): LaceError {
  const head = `Invalid configuration ${file}`;
  const message = problems.length === 1 ? `${head}: ${problems[0]}` : `${head}:\n  ${problems.join("\n  ")}`;
  return new LaceError("INVALID_CONFIG", message);
}
