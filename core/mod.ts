/**
 * lace-cni core: the public API that plugins and the agent import
 * (`lace-cni/plugin` when installed as a package). It knows nothing of
 * Linux or Kubernetes; those are injected.
 *
 * @example
 * import { definePlugin, Prefix, type NetworkTypeDefinition } from "lace-cni/plugin";
 */
export * from "./errors.ts";
export * from "./ip/mod.ts";
export * from "./resources/types.ts";
export * from "./plugin/api.ts";
export * from "./plugin/tokens.ts";
export * from "./plugin/registry.ts";
export * from "./plugin/config.ts";
export * from "./plugin/loader.ts";
export * from "./store/store.ts";
export { isNamespaced, MemoryStore } from "./store/memory.ts";
export * from "./dataplane/desired_state.ts";
export { type DesiredPath, desiredPath } from "./dataplane/path.ts";
export * from "./resources/problem.ts";
export * from "./resources/checks.ts";
export { type NetworkTypeLookup, validateAll, validateResource, type ValidationContext } from "./resources/validate.ts";
export { SnapshotClusterView } from "./cluster/view.ts";
export * from "./rules/mod.ts";
export * from "./ipam/mod.ts";
export * from "./controller/mod.ts";
