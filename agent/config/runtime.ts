/**
 * The agent's and the command line's configuration: `lace.yaml` read,
 * checked and its plugins loaded into a registry. Everything the runtime
 * knows of network types, rule extensions and dataplanes comes from here,
 * never from importing `plugins/`.
 *
 * @example
 * const rt = await loadRuntime("/etc/lace/lace.yaml", { dataplane: true });
 * rt.networkTypes.get("l3")?.forwarding;          // "routed"
 * const dp = await rt.dataplane!.definition.create(rt.loaded.container, { node: "node-1", settings: rt.settings });
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type LaceConfig, parseConfig } from "../../core/plugin/config.ts";
import { type LoadedDataplane, type LoadedPlugins, loadPlugins, selectDataplane } from "../../core/plugin/loader.ts";
import type { NetworkTypeRegistry } from "../../core/plugin/registry.ts";
import type { RuleExtensionSet } from "../../core/mod.ts";

/** The built-in network types: what commands that need no dataplane load without a configuration file. */
export const BUILT_IN_TYPES = "plugins: [lace-cni/l3, lace-cni/l2, lace-cni/external]";
/** Every built-in plugin, the srv6 dataplane included: what the agent loads without a configuration file. */
export const BUILT_IN_ALL = "plugins: [lace-cni/l3, lace-cni/l2, lace-cni/external, lace-cni/srv6]";

export interface Runtime {
  /** The configuration file, absolute; undefined for the built-in configuration. */
  file?: string;
  config: LaceConfig;
  loaded: LoadedPlugins;
  /** The loaded network types: their addressing, forwarding and hooks. */
  networkTypes: NetworkTypeRegistry;
  /** The plugins' rule facts and operators. */
  extensions: RuleExtensionSet;
  defaultNetwork?: string;
  /** The dataplane the configuration selects (only when asked for). */
  dataplane?: LoadedDataplane;
  /** The dataplane's settings from the configuration (checked by its plugin). */
  settings: Record<string, unknown>;
}

/**
 * Reads `configPath` (or the built-in configuration) and loads its plugins.
 * With `dataplane`, the configured dataplane must be provided by a loaded
 * plugin (`INVALID_CONFIG` names what the plugins provide), and the
 * built-in configuration includes the srv6 plugin.
 */
export async function loadRuntime(configPath?: string, opts: { dataplane?: boolean } = {}): Promise<Runtime> {
  const file = configPath ? resolve(configPath) : undefined;
  const text = file ? await readFile(file, "utf8") : opts.dataplane ? BUILT_IN_ALL : BUILT_IN_TYPES;
  const config = parseConfig(text, configPath ?? "built-in configuration");
  const loaded = await loadPlugins(config, { baseUrl: pathToFileURL(file ?? resolve("lace.yaml")), importModule });
  return {
    file, config, loaded,
    networkTypes: loaded.networkTypes,
    extensions: loaded.ruleExtensions.definitions(),
    defaultNetwork: config.defaultNetwork,
    dataplane: opts.dataplane ? selectDataplane(loaded, config) : undefined,
    settings: config.dataplaneOptions,
  };
}

/**
 * Imports a plugin module. A TypeScript plugin (`.ts`) under a Node.js that
 * cannot load TypeScript itself (the bundled `lace`) is loaded through
 * tsx's `tsImport`; without tsx installed, the error says what to do.
 */
async function importModule(specifier: string): Promise<unknown> {
  try {
    return await import(specifier);
  } catch (e) {
    if ((e as { code?: string }).code !== "ERR_UNKNOWN_FILE_EXTENSION" || !/\.[cm]?ts$/.test(specifier)) throw e;
  }
  let api: { tsImport(specifier: string, parentURL: string): Promise<unknown> };
  try {
    api = await import("tsx/esm/api") as typeof api;
  } catch {
    throw new Error(`${specifier} is TypeScript, which this Node.js cannot load by itself: build the plugin to .js, or install tsx (npm install tsx) so lace can load it`);
  }
  // Node.js keeps the failed import of this URL: tsx imports it afresh, with its own loader.
  return await api.tsImport(specifier, import.meta.url);
}
