/**
 * acme-vlan: an example third-party network type for lace-cni.
 *
 * A `vlan` network puts pods straight onto an 802.1Q VLAN of the underlay:
 * each node bridges its pods onto `<parent>.<vlanId>`, addresses come from
 * the network's subnet (global IPAM, like `l2`), and the gateway is the
 * fabric's router on that VLAN. It is written the way any third party would
 * write one: it imports only lace-cni's public API (`lace-cni/plugin` once
 * installed; here the same module by path), and is enabled by configuration:
 *
 * ```yaml
 * # lace.yaml
 * plugins:
 *   - lace-cni/l3
 *   - name: ./examples/plugins/vlan/mod.ts
 *     options: { defaultParent: bond0 }
 * ```
 *
 * ```yaml
 * apiVersion: lace-cni.io/v1alpha1
 * kind: Network
 * metadata: { name: storage-vlan }
 * spec:
 *   type: vlan
 *   ipv4Subnet: { prefix: 192.168.120.0/24 }
 *   options: { vlanId: 120, parent: eth1, gateway: 192.168.120.254 }
 * ```
 *
 * What it shows: a network type with its own `spec.options` checks (every
 * problem reported with its path, nothing thrown), a gateway and address
 * resolution, plugin options read in `setup`, and a service registered in
 * the plugin's own container and shared with the core through `exports`.
 */
import {
  type ClusterView,
  definePlugin,
  IPAddress,
  type Location,
  type Network,
  type NetworkSpec,
  type NetworkTypeDefinition,
  Prefix,
  type ProblemReporter,
} from "../../../core/plugin/mod.ts";

/** Token under which the plugin shares its {@link VlanPlanner}. Tokens are symbols. */
export const VlanPlannerToken: symbol = Symbol.for("acme-vlan.VlanPlanner");

/** The Linux link a node uses for a vlan network. */
export interface VlanLink {
  /** `eth1.120`: at most 15 characters, the kernel's limit for a link name. */
  link: string;
  parent: string;
  vlanId: number;
}

/** Works out each vlan network's link; what a dataplane resolves from the container. */
export interface VlanPlanner {
  linkFor(network: Network): VlanLink;
}

/** What operators may set for this plugin in lace.yaml. */
export interface VlanPluginOptions {
  /** The NIC carrying the VLANs when a network names no `parent`. Default `eth0`. */
  defaultParent?: string;
}

const IFNAMSIZ = 15;
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const FAMILIES = [["ipv4Subnet", 4], ["ipv6Subnet", 6]] as const;

interface VlanOptions {
  vlanId?: unknown;
  parent?: unknown;
  gateway?: unknown;
}

function show(value: unknown): string {
  return value === undefined ? "nothing" : JSON.stringify(value);
}

function checkParent(parent: unknown, vlanId: number | undefined, path: string, report: ProblemReporter): void {
  if (typeof parent !== "string" || !IFNAME.test(parent)) {
    report(path, `expected a network interface name such as "eth1", got ${show(parent)}`);
    return;
  }
  const link = `${parent}.${vlanId ?? 4094}`;
  if (link.length > IFNAMSIZ) {
    report(path, `the VLAN link "${link}" would be longer than ${IFNAMSIZ} characters: expected a shorter parent name`);
  }
}

function validate(spec: NetworkSpec, report: ProblemReporter): void {
  // The core has checked `type` and `anonymous`; everything else is ours.
  if (spec.externalPrefixes !== undefined) report("externalPrefixes", "not allowed on a vlan network: it has a subnet");
  if (spec.snat !== undefined) report("snat", "not allowed on a vlan network: pods are on the fabric, nothing is translated");
  const subnets: Prefix[] = [];
  for (const [field, family] of FAMILIES) {
    const subnet = spec[field];
    if (subnet === undefined) continue;
    const parsed = Prefix.tryParse(subnet.prefix);
    if (!parsed.ok) report(`${field}.prefix`, parsed.error);
    else if (parsed.value.family !== family) {
      report(`${field}.prefix`, `expected an IPv${family} prefix, got ${show(subnet.prefix)}`);
    } else subnets.push(parsed.value);
    if (subnet.hostLocalPrefixLength !== undefined) {
      report(`${field}.hostLocalPrefixLength`, "not allowed on a vlan network: addresses come from the whole subnet");
    }
  }
  if (spec.ipv4Subnet === undefined && spec.ipv6Subnet === undefined) {
    report("ipv4Subnet", "a vlan network needs ipv4Subnet, ipv6Subnet or both");
  }

  const options = (spec.options ?? {}) as VlanOptions;
  let vlanId: number | undefined;
  if (!Number.isInteger(options.vlanId) || (options.vlanId as number) < 1 || (options.vlanId as number) > 4094) {
    report("options.vlanId", `expected an 802.1Q VLAN id from 1 to 4094, got ${show(options.vlanId)}`);
  } else vlanId = options.vlanId as number;
  if (options.parent !== undefined) checkParent(options.parent, vlanId, "options.parent", report);
  if (options.gateway !== undefined) {
    const gw = IPAddress.tryParse(options.gateway);
    if (!gw.ok) report("options.gateway", gw.error);
    // Without a valid subnet the subnet problem is the one to fix first.
    else if (subnets.length > 0 && !subnets.some((s) => s.contains(gw.value))) {
      report("options.gateway", `expected an address inside the network's subnets (${subnets.join(", ")}), got ${show(options.gateway)}`);
    }
  }
}

/** The fabric router's address: `options.gateway` when it is in `prefix`, else the first host address. */
function gateway(network: Network, prefix: Prefix): IPAddress {
  const configured = IPAddress.tryParse((network.spec?.options as VlanOptions | undefined)?.gateway);
  return configured.ok && prefix.contains(configured.value) ? configured.value : prefix.firstHost;
}

/** Like `l2`: the address's MAC from its Neighbor, and the MAC's node from its FDBEntry. */
function locate(network: Network, address: IPAddress, view: ClusterView): Location | undefined {
  const name = network.metadata.name;
  const inSubnet = FAMILIES.some(([field]) => {
    const parsed = Prefix.tryParse(network.spec?.[field]?.prefix);
    return parsed.ok && parsed.value.contains(address);
  });
  if (!inSubnet) return undefined;
  const mac = view.neighbor(name, address.toString())?.spec?.mac.toLowerCase();
  if (mac === undefined) return undefined;
  const node = view.fdbEntry(name, mac)?.spec?.node;
  return node === undefined ? { kind: "mac", mac, network: name } : { kind: "mac", mac, node, network: name };
}

/** The `vlan` network type. */
export const vlanNetworkType: NetworkTypeDefinition = {
  type: "vlan",
  addressing: "global",
  forwarding: "bridged",
  description: "Pods on an 802.1Q VLAN of the underlay, routed by the fabric's gateway",
  validate,
  gateway,
  locate,
};

export default definePlugin({
  name: "acme-vlan",
  apiVersion: "^1.0.0",
  networkTypes: [vlanNetworkType],
  setup({ container, options, log }) {
    const { defaultParent = "eth0" } = options as VlanPluginOptions;
    // A bad plugin option is the operator's mistake at start-up: throwing here
    // makes the loader refuse us with our name and the hook, so we need not add it.
    const problems: string[] = [];
    checkParent(defaultParent, undefined, "defaultParent", (path, msg) => problems.push(`${path}: ${msg}`));
    if (problems.length > 0) throw new Error(`Invalid options: ${problems.join("; ")}`);
    const planner: VlanPlanner = {
      linkFor(network) {
        const opts = (network.spec?.options ?? {}) as VlanOptions;
        const parent = typeof opts.parent === "string" ? opts.parent : defaultParent;
        const vlanId = opts.vlanId as number;
        return { link: `${parent}.${vlanId}`, parent, vlanId };
      },
    };
    container.register<VlanPlanner>(VlanPlannerToken, { useValue: planner });
    log.info("vlan networks ready", { defaultParent });
  },
  exports: [VlanPlannerToken],
});
