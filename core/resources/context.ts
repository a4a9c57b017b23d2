/**
 * What validation is given besides the resources: the loaded network
 * types, whose `validate` hooks check each type's spec.
 *
 * @example
 * validateAll(resources, { networkTypes: loaded.networkTypes });
 */
import type { NetworkTypeDefinition } from "../plugin/api.ts";

/**
 * The network types validation can delegate to. The plugin registry
 * satisfies it; `get` returns a definition whose hooks report a throwing
 * plugin by name.
 */
export interface NetworkTypeLookup {
  get(type: string): NetworkTypeDefinition | undefined;
  /** Every registered type name. */
  types(): string[];
}

export interface ValidationContext {
  networkTypes: NetworkTypeLookup;
}
