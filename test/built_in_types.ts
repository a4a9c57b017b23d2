/**
 * The built-in network types in a registry, as the loader would fill it
 * from `plugins: [lace-cni/l3, lace-cni/l2, lace-cni/external]`: for tests
 * of code that takes the registry (the agent, the controller) without
 * loading a configuration.
 *
 * @example
 * const agent = new NodeAgent({ ..., networkTypes: builtInNetworkTypes() });
 */
import { NetworkTypeRegistry } from "../core/plugin/registry.ts";
import l3 from "../plugins/l3/mod.ts";
import l2 from "../plugins/l2/mod.ts";
import external from "../plugins/external/mod.ts";

export function builtInNetworkTypes(): NetworkTypeRegistry {
  const registry = new NetworkTypeRegistry();
  for (const plugin of [l3, l2, external]) for (const t of plugin.networkTypes ?? []) registry.register(plugin.name, t);
  return registry;
}
