/**
 * acme-segment: an example third-party network type that carries packets
 * today, through the same datapath as the built-in types.
 *
 * A `segment` network is routed like `l3` (each node holds blocks of the
 * subnet, host-local IPAM), but its gateway sits where many enterprise
 * segments keep their router: the last host address of each block
 * (`10.80.1.254` in `10.80.1.0/24`), or an offset from the end that the
 * network chooses with `options.gatewayFromEnd` (1 = the last host). IPAM
 * keeps that address for the gateway, the node's bridge answers on it, and
 * pods route through it: the core calls the `gateway` hook for all three.
 *
 * It imports only `lace-cni/plugin` (here by path), and is enabled by
 * configuration (testdata/lace.yaml):
 *
 * ```yaml
 * plugins:
 *   - lace-cni/l3
 *   - lace-cni/l2
 *   - lace-cni/external
 *   - lace-cni/srv6
 *   - ./examples/plugins/segment/mod.ts
 * ```
 *
 * ```yaml
 * apiVersion: lace-cni.io/v1alpha1
 * kind: Network
 * metadata: { name: shop }
 * spec:
 *   type: segment
 *   ipv4Subnet: { prefix: 10.80.0.0/16, hostLocalPrefixLength: 24 }
 *   options: { gatewayFromEnd: 1 }
 * ```
 */
import {
  checkSubnets,
  definePlugin,
  forbidFields,
  locateInBlocks,
  IPAddress,
  longestUsablePrefix,
  type Network,
  type NetworkSpec,
  type NetworkTypeDefinition,
  Prefix,
  type ProblemReporter,
} from "../../../core/plugin/mod.ts";

/** The default: the last host address of a block. */
const DEFAULT_FROM_END = 1;

function fromEnd(network: Network): number {
  const v = (network.spec?.options as { gatewayFromEnd?: unknown } | undefined)?.gatewayFromEnd;
  return typeof v === "number" ? v : DEFAULT_FROM_END;
}

function validate(spec: NetworkSpec, report: ProblemReporter): void {
  forbidFields(spec, "a segment network", {
    externalPrefixes: "externalPrefixes are for external networks",
    snat: "snat is for external networks",
  }, report);
  for (const { field, family, subnet, length } of checkSubnets(spec, "a segment network", report)) {
    const block = subnet.hostLocalPrefixLength;
    if (typeof block !== "number" || !Number.isInteger(block) || (length !== undefined && block <= length) || block > longestUsablePrefix(family)) {
      report(`${field}.hostLocalPrefixLength`, `expected the length of each node's block, an integer between ${(length ?? 0) + 1} and ${longestUsablePrefix(family)}, got ${JSON.stringify(block)}`);
    }
  }
  const options = (spec.options ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (key !== "gatewayFromEnd") report(`options.${key}`, `unknown option: expected only "gatewayFromEnd"`);
  }
  const n = options.gatewayFromEnd;
  if (n !== undefined && (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 16)) {
    report("options.gatewayFromEnd", `expected an integer from 1 (the last host address) to 16, got ${JSON.stringify(n)}`);
  }
}

/**
 * The gateway of a block: `gatewayFromEnd` hosts back from its end (IPv4:
 * before the broadcast address). Undefined when the block is too small.
 *
 * @example
 * gateway(shop, Prefix.parse("10.80.1.0/24"))?.toString(); // "10.80.1.254"
 */
function gateway(network: Network, block: Prefix): IPAddress | undefined {
  const last = block.network + block.size - (block.family === 4 ? 2n : 1n);
  const value = last - BigInt(fromEnd(network) - 1);
  return value > block.network + 1n ? new IPAddress(block.family, value) : undefined;
}


export const segmentNetworkType: NetworkTypeDefinition = {
  type: "segment",
  addressing: "host-local",
  forwarding: "routed",
  description: "Routed segment with per-node blocks; the gateway is at the end of each block",
  validate,
  gateway,
  locate: locateInBlocks,
};

export default definePlugin({
  name: "acme-segment",
  apiVersion: "^1.0.0",
  networkTypes: [segmentNetworkType],
});
