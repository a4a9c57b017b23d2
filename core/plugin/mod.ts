/**
 * `lace-cni/plugin`: everything a plugin may import, and nothing of the
 * controller, the IPAM internals or the agent. The built-in plugins import
 * only this module (a test checks it), so a third party has exactly what
 * they have.
 *
 * - the plugin API (api.ts): `definePlugin`, the definitions, the hooks'
 *   arguments;
 * - the resources plugins read (types only) and the helpers that read them;
 * - IP addresses and prefixes;
 * - the field checks network types share, so every type words the same
 *   mistake the same way;
 * - the dataplane contract: the node's desired state, and the PodDataplane
 *   a dataplane's `create` returns.
 *
 * @example
 * import { checkSubnets, definePlugin, Prefix } from "lace-cni/plugin";
 */
export * from "./api.ts";
export { describe, type Family, IPAddress, Prefix, PrefixTable } from "../ip/mod.ts";
export { checkPrefix, checkSubnets, type CheckedSubnet, forbidFields, longestUsablePrefix } from "../resources/checks.ts";
export { heldBlocks } from "../ipam/layout.ts";
export { locateInBlocks } from "./locate.ts";
export { deepEqual } from "../controller/sameness.ts";
export type {
  Allocation,
  AllocationBlock,
  Condition,
  FDBEntry,
  Neighbor,
  Network,
  NetworkEndpoint,
  NetworkSpec,
  Resource,
  Subnet,
} from "../resources/types.ts";
export type {
  ApplyReport,
  Dataplane,
  DataplaneCapabilities,
  DataplaneTrace,
  DeniedDestination,
  EgressRoute,
  FdbEntry,
  LocalEndpoint,
  NeighborEntry,
  NetworkForwarding,
  NodeDesiredState,
  PathRoute,
  Peer,
  PodAttachment,
  PodCheck,
  PodDataplane,
  RemoteBlock,
  ServiceEndpoint,
  ServiceForwarding,
  ServicePortForwarding,
  TraceQuery,
} from "../dataplane/desired_state.ts";
