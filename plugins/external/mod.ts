/**
 * The `external` network type: underlay addresses outside the cluster,
 * defined by prefixes only (no subnet, no IPAM, no gateway). An address
 * belongs to the external network with the longest matching prefix across
 * all external networks' prefixes.
 *
 * @example
 * # lace.yaml
 * plugins: [lace-cni/external]
 */
import {
  checkPrefix,
  type ClusterView,
  definePlugin,
  describe,
  forbidFields,
  type IPAddress,
  type Location,
  type Network,
  type NetworkSpec,
  type NetworkTypeDefinition,
  type ProblemReporter,
} from "../../core/plugin/mod.ts";
import { cidrOperators } from "./cidr_operators.ts";

function validate(spec: NetworkSpec, report: ProblemReporter): void {
  const hint = "an external network has no subnet, list its prefixes in externalPrefixes";
  forbidFields(spec, "an external network", {
    ipv4Subnet: hint,
    ipv6Subnet: hint,
    options: "options are for third-party network types",
  }, report);
  const prefixes = spec.externalPrefixes as unknown;
  if (prefixes === undefined) {
    report("externalPrefixes", `is required for an external network: expected a list of CIDR prefixes such as ["192.0.2.0/24"]`);
    return;
  }
  if (!Array.isArray(prefixes)) {
    report("externalPrefixes", `expected a list of CIDR prefixes, got ${describe(prefixes)}`);
    return;
  }
  if (prefixes.length === 0) {
    report("externalPrefixes", `expected at least one CIDR prefix, got an empty list`);
    return;
  }
  const seen = new Map<string, number>();
  prefixes.forEach((text, i) => {
    const p = checkPrefix(text, `externalPrefixes[${i}]`, report);
    if (!p) return;
    const first = seen.get(p.toString());
    if (first !== undefined) report(`externalPrefixes[${i}]`, `duplicate of externalPrefixes[${first}] "${p}"`);
    else seen.set(p.toString(), i);
  });
}

/**
 * The external network owning `address` by longest prefix match over every
 * external network's prefixes: possibly another external network than
 * `network`, when one of its prefixes is longer.
 */
function locate(_network: Network, address: IPAddress, view: ClusterView): Location | undefined {
  const match = view.externalNetworkFor(address);
  return match ? { kind: "external", network: match.network, prefix: match.prefix } : undefined;
}

/** The `external` network type definition. */
export const externalNetworkType: NetworkTypeDefinition = {
  type: "external",
  addressing: "none",
  forwarding: "underlay",
  description: "Underlay addresses outside the cluster, matched by longest prefix",
  validate,
  gateway: () => undefined,
  locate,
};

export default definePlugin({
  name: "lace-cni/external",
  apiVersion: "^1.0.0",
  networkTypes: [externalNetworkType],
  ruleOperators: cidrOperators,
});
