/**
 * The `l3` network type: a routed network whose subnet is cut into
 * per-node blocks (host-local IPAM). The gateway is the first host address
 * of a node's block; an address lives on the node whose Allocation holds
 * the covering block.
 *
 * @example
 * # lace.yaml
 * plugins: [lace-cni/l3]
 */
import {
  checkSubnets,
  definePlugin,
  forbidFields,
  locateInBlocks,
  longestUsablePrefix,
  type NetworkSpec,
  type NetworkTypeDefinition,
  type ProblemReporter,
} from "../../core/plugin/mod.ts";

function validate(spec: NetworkSpec, report: ProblemReporter): void {
  forbidFields(spec, "an l3 network", {
    externalPrefixes: "externalPrefixes are for external networks",
    snat: "snat is for external networks",
    options: "options are for third-party network types",
  }, report);
  for (const { field, family, subnet, length: subnetLength } of checkSubnets(spec, "an l3 network", report)) {
    const longest = longestUsablePrefix(family);
    const path = `${field}.hostLocalPrefixLength`;
    if (subnetLength !== undefined && subnetLength >= longest) {
      report(
        `${field}.prefix`,
        `a /${subnetLength} IPv${family} subnet cannot be cut into blocks with room for a gateway and a pod: expected a prefix length of at most ${longest - 1}`,
      );
      continue;
    }
    const range = subnetLength !== undefined
      ? `between ${subnetLength + 1} and ${longest} for a /${subnetLength} IPv${family} subnet`
      : undefined;
    const length = subnet.hostLocalPrefixLength;
    if (length === undefined) {
      report(path, `is required for an l3 network: the length of each node's block${range ? `, ${range}` : ""}`);
    } else if (typeof length !== "number" || !Number.isInteger(length)) {
      report(path, `expected an integer, got ${JSON.stringify(length)}`);
    } else if (range && (length <= subnetLength! || length > longest)) {
      report(path, `must be ${range} (a block needs room for the gateway and a pod), got ${length}`);
    }
  }
}


/** The `l3` network type definition. */
export const l3NetworkType: NetworkTypeDefinition = {
  type: "l3",
  addressing: "host-local",
  forwarding: "routed",
  description: "Routed network; each node holds blocks of the subnet and routes between them",
  validate,
  gateway: (_network, block) => block.firstHost,
  locate: locateInBlocks,
};

export default definePlugin({
  name: "lace-cni/l3",
  apiVersion: "^1.0.0",
  networkTypes: [l3NetworkType],
});
