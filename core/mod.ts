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
export * from "./store/store.ts";
export { isNamespaced, MemoryStore } from "./store/memory.ts";
export * from "./dataplane/desired_state.ts";
