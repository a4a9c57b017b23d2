/**
 * The controller's portable core: the incremental per-node desired-state
 * engine, and the names and numbers a network's forwarding context gets.
 *
 * @example
 * import { DesiredStateBuilder } from "./mod.ts";
 * const builder = new DesiredStateBuilder({ node: "node-1" });
 * builder.onChange((_node, state) => dataplane.apply(state));
 */
export { DesiredStateBuilder, type DesiredStateBuilderOptions, type StateListener } from "./builder.ts";
export { DEFAULT_UNDERLAY_MTU, endpointMac, interfaceName, mtuFor, sidFor } from "./naming.ts";
export { endpointL2Entries, L2_ENDPOINT_LABEL, l2EntryName } from "./l2_entries.ts";
export { cutAround } from "./prefix_cut.ts";
export { type EndpointSliceInfo, endpointsFromSlices, readEndpointSlice, SERVICE_NAME_LABEL, type SliceEndpoint, type SlicePort } from "./endpoint_slices.ts";
export { SERVICE_NETWORK_ANNOTATION } from "./services.ts";
