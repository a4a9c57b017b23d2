/**
 * Loads the plugins a configuration lists: imports each module, checks its
 * definition, its plugin API range, its dependencies and what it provides
 * against the others, then runs every `setup` in its own tsyringe child
 * container. Loading is all or nothing: on any refusal the call rejects
 * with a coded error naming the plugin and the root container is untouched.
 *
 * Only web-standard APIs are used (`import()`, `URL`), so this runs on
 * Node.js and Deno, from source and from the rollup bundle.
 *
 * @example
 * const config = parseConfig(text, configUrl.href);
 * const loaded = await loadPlugins(config, { baseUrl: configUrl });
 * loaded.networkTypes.get("l3")?.addressing; // "host-local"
 */
import "reflect-metadata";
import { container as globalContainer, type DependencyContainer } from "tsyringe";
import semver from "semver";
import { LaceError } from "../errors.ts";
import {
  type DataplaneDefinition,
  type DataplaneOptions,
  PLUGIN_API_VERSION,
  type PluginDefinition,
  type PluginLogger,
} from "./api.ts";
import { BUILTIN_PREFIX, type LaceConfig, type PluginEntry } from "./config.ts";
import { checkDefinition } from "./definition.ts";
import { BUILT_IN_RULE_OPERATORS, CORE_RULE_FACTS, hookFailed, NetworkTypeRegistry, RuleExtensions } from "./registry.ts";
import { CORE_RULE_FACT_NAMES, CORE_RULE_OPERATOR_NAMES } from "../rules/reserved_names.ts";
import { type Clock, systemClock, Tokens } from "./tokens.ts";

/** The plugins that ship with lace-cni, by the name after `lace-cni/`. */
export const BUILTIN_PLUGINS: readonly string[] = ["l3", "l2", "external", "srv6"];

/** A loaded dataplane feature and the plugin providing it. */
export interface LoadedDataplane {
  plugin: string;
  /** `create` is wrapped: a throw or rejection names the plugin and the hook. */
  definition: DataplaneDefinition;
}

/** Everything the configured plugins provide. */
export interface LoadedPlugins {
  networkTypes: NetworkTypeRegistry;
  ruleExtensions: RuleExtensions;
  /** By feature name: `srv6`. */
  dataplanes: Map<string, LoadedDataplane>;
  /** In configuration order; `source` is the module's URL. */
  plugins: { name: string; source: string }[];
  /** The root container, holding every plugin's exports. */
  container: DependencyContainer;
}

export interface LoadOptions {
  /** What relative plugin paths resolve against: the configuration file's URL. */
  baseUrl: string | URL;
  /** Imports a module by URL or package name; tests and bundlers may replace it. */
  importModule?: (specifier: string) => Promise<unknown>;
  /** The root container; default a fresh child of tsyringe's global container. */
  container?: DependencyContainer;
  /** The root logger; default `Tokens.Logger` from the container, else silent. */
  log?: PluginLogger;
  /** The time source plugins get as `Tokens.Clock`; default the container's, else the system clock. */
  clock?: Clock;
}

/** One plugin between import and setup. */
interface Candidate {
  entry: PluginEntry;
  source: string;
  def: PluginDefinition;
}

/**
 * Where a configured plugin's module is. Built-ins resolve next to this
 * module: the sources under `plugins/` when running TypeScript, or the
 * bundled `plugins/<name>.js` beside the rollup chunk.
 *
 * @example
 * resolvePluginSource({ name: "./acme/mod.ts", options: {}, kind: "path" }, "file:///etc/lace/lace.yaml");
 * // "file:///etc/lace/acme/mod.ts"
 */
export function resolvePluginSource(entry: PluginEntry, baseUrl: string | URL): string {
  switch (entry.kind) {
    case "builtin": {
      const short = entry.name.slice(BUILTIN_PREFIX.length);
      if (!BUILTIN_PLUGINS.includes(short)) {
        throw new LaceError(
          "PLUGIN_NOT_FOUND",
          `Cannot load plugin "${entry.name}": there is no built-in plugin of that name; built-ins are ${
            BUILTIN_PLUGINS.map((b) => BUILTIN_PREFIX + b).join(", ")
          }`,
          { plugin: entry.name },
        );
      }
      const fromSource = import.meta.url.endsWith(".ts");
      return new URL(fromSource ? `../../plugins/${short}/mod.ts` : `./plugins/${short}.js`, import.meta.url).href;
    }
    case "path":
      return new URL(entry.name, baseUrl).href;
    case "package":
      return entry.name;
  }
}

/** True when the import failed because `source` itself is missing, not something it imports. */
function isModuleNotFound(e: unknown, source: string): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  const msg = typeof err?.message === "string" ? err.message : "";
  const missing = err?.code === "ERR_MODULE_NOT_FOUND" ||
    // Deno words it differently for files and for packages.
    /module not found|cannot find (module|package)|not prefixed with|not a dependency/i.test(msg);
  if (!missing) return false;
  // Both runtimes quote the missing specifier first; a missing import inside the plugin names another.
  const named = /['"]([^'"]+)['"]/.exec(msg)?.[1];
  const path = source.startsWith("file:") ? decodeURIComponent(new URL(source).pathname) : source;
  return named === source || named === path;
}

async function importPlugin(entry: PluginEntry, source: string, importModule: (s: string) => Promise<unknown>) {
  try {
    return await importModule(source);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (isModuleNotFound(e, source)) {
      const what = entry.kind === "package" ? `package "${source}" is not installed` : `no module at ${source}`;
      throw new LaceError("PLUGIN_NOT_FOUND", `Cannot load plugin "${entry.name}": ${what}`, {
        plugin: entry.name,
        cause: e,
      });
    }
    throw new LaceError("PLUGIN_INVALID", `Cannot load plugin "${entry.name}": importing ${source} failed: ${msg}`, {
      plugin: entry.name,
      cause: e,
    });
  }
}

const silent: PluginLogger = { debug() {}, info() {}, warn() {}, error() {} };

function pluginLogger(root: PluginLogger, plugin: string): PluginLogger {
  const withName = (fields?: Record<string, unknown>) => ({ ...fields, plugin });
  return {
    debug: (msg, fields) => root.debug(msg, withName(fields)),
    info: (msg, fields) => root.info(msg, withName(fields)),
    warn: (msg, fields) => root.warn(msg, withName(fields)),
    error: (msg, fields) => root.error(msg, withName(fields)),
  };
}

function tokenName(token: symbol): string {
  return token.description ?? token.toString();
}

/**
 * Loads the plugins `config` lists. Rejects, registering nothing, with a
 * coded LaceError naming the plugin: PLUGIN_NOT_FOUND, PLUGIN_INVALID,
 * PLUGIN_API_UNSUPPORTED, PLUGIN_DUPLICATE, PLUGIN_DEPENDENCY_MISSING,
 * PLUGIN_DUPLICATE_NETWORK_TYPE, PLUGIN_DUPLICATE_RULE_EXTENSION,
 * PLUGIN_DUPLICATE_DATAPLANE, PLUGIN_DUPLICATE_EXPORT or PLUGIN_HOOK_FAILED
 * (hook "setup").
 *
 * @example
 * const loaded = await loadPlugins(parseConfig("plugins: [lace-cni/l3]"), { baseUrl: import.meta.url });
 * loaded.networkTypes.types(); // ["l3"]
 */
export async function loadPlugins(config: Pick<LaceConfig, "plugins">, opts: LoadOptions): Promise<LoadedPlugins> {
  const importModule = opts.importModule ?? ((s: string) => import(s));
  const root = opts.container ?? globalContainer.createChildContainer();

  // 1. Import and check each definition on its own.
  const candidates: Candidate[] = [];
  const byName = new Map<string, Candidate>();
  for (const entry of config.plugins) {
    const source = resolvePluginSource(entry, opts.baseUrl);
    const mod = await importPlugin(entry, source, importModule);
    const def = checkDefinition(mod, entry.name);
    if (!semver.satisfies(PLUGIN_API_VERSION, def.apiVersion)) {
      throw new LaceError(
        "PLUGIN_API_UNSUPPORTED",
        `Cannot load plugin "${def.name}": it requires plugin API ${def.apiVersion}, this core provides ${PLUGIN_API_VERSION}`,
        { plugin: def.name },
      );
    }
    const earlier = byName.get(def.name);
    if (earlier !== undefined) {
      const where = earlier.source === source ? `it is listed twice (${source})` : `${earlier.source} and ${source} both define it`;
      throw new LaceError("PLUGIN_DUPLICATE", `Cannot load plugin "${def.name}": ${where}`, { plugin: def.name });
    }
    const candidate = { entry, source, def };
    byName.set(def.name, candidate);
    candidates.push(candidate);
  }

  // 2. Dependencies must be listed earlier (setup runs in configuration order).
  for (const [i, c] of candidates.entries()) {
    for (const dep of c.def.dependencies ?? []) {
      const at = candidates.findIndex((o) => o.def.name === dep || o.entry.name === dep);
      if (at >= 0 && at < i) continue;
      const why = at < 0 ? "which is not in the configuration" : "which is listed after it; list it first";
      throw new LaceError("PLUGIN_DEPENDENCY_MISSING", `Cannot load plugin "${c.def.name}": it depends on "${dep}", ${why}`, {
        plugin: c.def.name,
      });
    }
  }

  // 3. What each provides must not collide with the others or with the root.
  const networkTypes = new NetworkTypeRegistry();
  // Refuse a plugin fact or operator that shadows one of the core rules' own, at load time.
  const ruleExtensions = new RuleExtensions({
    facts: [...CORE_RULE_FACTS, ...CORE_RULE_FACT_NAMES],
    operators: [...BUILT_IN_RULE_OPERATORS, ...CORE_RULE_OPERATOR_NAMES],
  });
  const dataplanes = new Map<string, LoadedDataplane>();
  const exporters = new Map<symbol, string>();
  for (const { def } of candidates) {
    const plugin = def.name;
    for (const t of def.networkTypes ?? []) networkTypes.register(plugin, t);
    for (const o of def.ruleOperators ?? []) ruleExtensions.addOperator(plugin, o);
    for (const f of def.ruleFacts ?? []) ruleExtensions.addFact(plugin, f);
    for (const d of def.dataplanes ?? []) {
      const taken = dataplanes.get(d.feature);
      if (taken !== undefined) {
        throw new LaceError(
          "PLUGIN_DUPLICATE_DATAPLANE",
          `Cannot load plugin "${plugin}": dataplane "${d.feature}" is already provided by plugin "${taken.plugin}"`,
          { plugin },
        );
      }
      dataplanes.set(d.feature, { plugin, definition: wrapDataplane(plugin, d) });
    }
    for (const token of def.exports ?? []) {
      const by = exporters.get(token) ?? (root.isRegistered(token, true) ? "the core" : undefined);
      if (by !== undefined) {
        throw new LaceError(
          "PLUGIN_DUPLICATE_EXPORT",
          `Cannot load plugin "${plugin}": token ${tokenName(token)} is already provided by ${by === "the core" ? by : `plugin "${by}"`}`,
          { plugin },
        );
      }
      exporters.set(token, plugin);
    }
  }

  // 4. Setup, in order. Each plugin sees the exports of those set up before
  //    it through its own container; the root is only written once all succeed.
  const rootLog = opts.log ?? (root.isRegistered(Tokens.Logger, true) ? root.resolve<PluginLogger>(Tokens.Logger) : silent);
  const clock = opts.clock ?? (root.isRegistered(Tokens.Clock, true) ? root.resolve<Clock>(Tokens.Clock) : systemClock);
  const shared: { token: symbol; from: DependencyContainer }[] = [];
  for (const { entry, def } of candidates) {
    const child = root.createChildContainer();
    for (const { token, from } of shared) child.register(token, { useFactory: () => from.resolve(token) });
    // What the core provides every plugin: time, and a logger whose lines carry the plugin's name.
    if (!child.isRegistered(Tokens.Clock, true)) child.register(Tokens.Clock, { useValue: clock });
    child.register(Tokens.Logger, { useValue: pluginLogger(rootLog, def.name) });
    if (def.setup !== undefined) {
      try {
        await def.setup({ container: child, options: entry.options, log: pluginLogger(rootLog, def.name) });
      } catch (e) {
        throw hookFailed(def.name, "setup", e);
      }
    }
    for (const token of def.exports ?? []) {
      if (!child.isRegistered(token, false)) {
        throw new LaceError(
          "PLUGIN_INVALID",
          `Cannot load plugin "${def.name}": exports: lists ${tokenName(token)}, but setup did not register it in the plugin's container`,
          { plugin: def.name },
        );
      }
      shared.push({ token, from: child });
    }
  }

  for (const { token, from } of shared) root.register(token, { useFactory: () => from.resolve(token) });
  if (!root.isRegistered(Tokens.NetworkTypes, true)) root.register(Tokens.NetworkTypes, { useValue: networkTypes });
  if (!root.isRegistered(Tokens.RuleExtensions, true)) root.register(Tokens.RuleExtensions, { useValue: ruleExtensions });
  if (!root.isRegistered(Tokens.Clock, true)) root.register(Tokens.Clock, { useValue: clock });
  if (!root.isRegistered(Tokens.Logger, true)) root.register(Tokens.Logger, { useValue: rootLog });

  return {
    networkTypes,
    ruleExtensions,
    dataplanes,
    plugins: candidates.map((c) => ({ name: c.def.name, source: c.source })),
    container: root,
  };
}

function wrapDataplane(plugin: string, def: DataplaneDefinition): DataplaneDefinition {
  return Object.freeze({
    feature: def.feature,
    description: def.description,
    async create(container: DependencyContainer, options: DataplaneOptions) {
      try {
        return await def.create(container, options);
      } catch (e) {
        throw hookFailed(plugin, "create", e, `dataplane "${def.feature}"`);
      }
    },
  });
}

/**
 * The dataplane the configuration selects, or `INVALID_CONFIG` naming the
 * features the loaded plugins provide.
 *
 * @example
 * const { definition } = selectDataplane(loaded, config); // config.dataplane: "srv6"
 * const dp = await definition.create(loaded.container, { node: "node-1" });
 */
export function selectDataplane(loaded: LoadedPlugins, config: Pick<LaceConfig, "dataplane">): LoadedDataplane {
  const found = loaded.dataplanes.get(config.dataplane);
  if (found !== undefined) return found;
  const have = [...loaded.dataplanes.keys()].map((f) => `"${f}"`).join(", ") || "none";
  throw new LaceError(
    "INVALID_CONFIG",
    `Invalid configuration: dataplane: no loaded plugin provides dataplane "${config.dataplane}"; loaded plugins provide ${have}`,
  );
}
