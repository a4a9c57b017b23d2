/**
 * The single schema source for lace-cni's eight kinds: OpenAPI v3
 * structural schemas plus the CEL rules (`x-kubernetes-validations`) that
 * mirror the single-object checks CEL can express. The CRDs in `deploy/`
 * are generated from {@link SCHEMAS}; `validate.ts` walks the same schemas
 * for structure and adds the semantic checks (strict CIDRs, ranges that
 * depend on a prefix, cross-object rules) in code.
 *
 * Objects with `properties` are closed: the validator reports unknown
 * fields, as `kubectl --validate=strict` does against a real API server
 * (structural schemas forbid `additionalProperties: false`, so this is
 * implied rather than written).
 *
 * @example
 * import { SCHEMAS } from "./schema.ts";
 * SCHEMAS.Network.spec.required; // ["type"]
 */
import type { Kind } from "./types.ts";

/** A CEL rule, as in `x-kubernetes-validations`. */
export interface CELRule {
  rule: string;
  message: string;
  /** JSONPath-like path (`.ipv4Subnet.prefix`) the API server reports the failure at. */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/** The subset of an OpenAPI v3 structural schema that lace-cni uses. */
export interface OpenAPISchema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, OpenAPISchema>;
  required?: string[];
  additionalProperties?: OpenAPISchema;
  items?: OpenAPISchema;
  enum?: (string | number | boolean)[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  format?: string;
  default?: unknown;
  nullable?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-validations"?: CELRule[];
}

/** Per-kind CRD facts and schemas. */
export interface KindSchema {
  scope: "Cluster" | "Namespaced";
  plural: string;
  shortNames?: string[];
  spec: OpenAPISchema;
  status?: OpenAPISchema;
  printerColumns?: { name: string; type: string; jsonPath: string }[];
  /** CEL rules on the whole object (`self.metadata.name`), for the CRD's root schema. */
  rootValidations?: CELRule[];
}

// ---------------------------------------------------------------- building blocks

/** DNS-1123 subdomain: the shape of `metadata.name` and of references to lace-cni objects. */
export const DNS1123_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/** DNS-1123 label: the shape of namespace and node-local names. */
export const DNS1123_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A MAC address, colon-separated hex pairs. */
export const MAC_PATTERN = "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$";
/** A Linux interface name: 1-15 characters, no `/`, `:` or whitespace; empty selects the default-route interface. */
export const IFNAME_PATTERN = "^[^/:\\s]{0,15}$";

/** Human wording for the patterns above, used by the validator's messages. */
export const PATTERN_NAMES: Readonly<Record<string, string>> = {
  [DNS1123_SUBDOMAIN]: "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)",
  [DNS1123_LABEL]: "a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)",
  [MAC_PATTERN]: "a MAC address such as 02:00:00:00:00:01",
  [IFNAME_PATTERN]: "an interface name of at most 15 characters without '/', ':' or spaces",
};

const objectName = (description: string): OpenAPISchema => ({
  type: "string",
  description,
  minLength: 1,
  maxLength: 253,
  pattern: DNS1123_SUBDOMAIN,
});

/** A CIDR string; strictness (host bits, family) is CEL here and code in the validator. */
const cidr = (description: string, family?: 4 | 6): OpenAPISchema => ({
  type: "string",
  description,
  maxLength: 64,
  "x-kubernetes-validations": [
    family
      ? { rule: `isCIDR(self) && cidr(self).ip().family() == ${family}`, message: `must be an IPv${family} CIDR prefix` }
      : { rule: "isCIDR(self)", message: "must be a CIDR prefix" },
    { rule: "!isCIDR(self) || cidr(self) == cidr(self).masked()", message: "must have no host bits set" },
  ],
});

const ipAddress = (description: string): OpenAPISchema => ({
  type: "string",
  description,
  maxLength: 64,
  "x-kubernetes-validations": [{ rule: "isIP(self)", message: "must be an IP address" }],
});

const mac = (description: string): OpenAPISchema => ({ type: "string", description, pattern: MAC_PATTERN });

const priority: OpenAPISchema = {
  type: "integer",
  description: "Order among policies: the lowest value wins, ties go to the smallest name",
  minimum: 0,
  maximum: 2147483647,
  default: 1000,
};

const learnSource: OpenAPISchema = {
  type: "string",
  description: "static: written by an operator or the controller; learned: seen on the dataplane",
  enum: ["static", "learned"],
};

const labelSelector = (description: string): OpenAPISchema => ({
  type: "object",
  description,
  properties: {
    matchLabels: { type: "object", additionalProperties: { type: "string" } },
    matchExpressions: {
      type: "array",
      // Bounds keep the API server's CEL cost estimate within budget.
      maxItems: 64,
      items: {
        type: "object",
        required: ["key", "operator"],
        properties: {
          key: { type: "string", minLength: 1 },
          operator: { type: "string", enum: ["In", "NotIn", "Exists", "DoesNotExist"] },
          values: { type: "array", maxItems: 256, items: { type: "string" } },
        },
        "x-kubernetes-validations": [
          {
            rule: "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
            message: "values must be non-empty for In and NotIn and absent for Exists and DoesNotExist",
          },
        ],
      },
    },
  },
});

const conditionTree: OpenAPISchema = {
  type: "object",
  description: "A json-rules-engine condition tree (all / any / not / a fact test)",
  "x-kubernetes-preserve-unknown-fields": true,
};

const condition: OpenAPISchema = {
  type: "object",
  required: ["type", "status", "reason", "message"],
  properties: {
    type: { type: "string" },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string" },
    message: { type: "string" },
    lastTransitionTime: { type: "string", format: "date-time" },
    observedGeneration: { type: "integer", minimum: 0 },
  },
};

const conditionsStatus: OpenAPISchema = {
  type: "object",
  properties: {
    conditions: { type: "array", items: condition, "x-kubernetes-list-type": "atomic" },
  },
};

const subnet = (family: 4 | 6): OpenAPISchema => {
  const bits = family === 4 ? 32 : 128;
  // A block needs the network address, the gateway and a pod (and, in IPv4, a broadcast address).
  const maxBlock = family === 4 ? 30 : 126;
  return {
    type: "object",
    description: `The network's IPv${family} subnet`,
    required: ["prefix"],
    properties: {
      prefix: cidr(`IPv${family} CIDR of the subnet, host bits zero`, family),
      hostLocalPrefixLength: {
        type: "integer",
        description: "Length of the per-node blocks the subnet is cut into (host-local IPAM types only)",
        minimum: 1,
        maximum: bits,
      },
    },
    "x-kubernetes-validations": [
      {
        rule: `!has(self.hostLocalPrefixLength) || !isCIDR(self.prefix) || ` +
          `(self.hostLocalPrefixLength > cidr(self.prefix).prefixLength() && self.hostLocalPrefixLength <= ${maxBlock})`,
        message: `hostLocalPrefixLength must be longer than the subnet's prefix length and at most ${maxBlock}`,
        fieldPath: ".hostLocalPrefixLength",
      },
    ],
  };
};

// ---------------------------------------------------------------- kinds

const networkSpec: OpenAPISchema = {
  type: "object",
  required: ["type"],
  properties: {
    type: {
      type: "string",
      description: "A registered network type: l3, l2, external, or a plugin's",
      minLength: 1,
      maxLength: 63,
    },
    ipv4Subnet: subnet(4),
    ipv6Subnet: subnet(6),
    externalPrefixes: {
      type: "array",
      description: "external only: the underlay prefixes the network stands for",
      maxItems: 1024,
      items: cidr("An underlay CIDR prefix, host bits zero"),
      "x-kubernetes-list-type": "set",
    },
    anonymous: {
      type: "boolean",
      description: "When true, even the network's own endpoints need a routing policy to reach it",
    },
    snat: { type: "boolean", description: "external only: source-NAT egress to the node's underlay address" },
    options: {
      type: "object",
      description: "Type-specific options of third-party network types",
      "x-kubernetes-preserve-unknown-fields": true,
    },
  },
  "x-kubernetes-validations": [
    {
      rule: "!(self.type in ['l3', 'l2']) || has(self.ipv4Subnet) || has(self.ipv6Subnet)",
      message: "an l3 or l2 network needs ipv4Subnet, ipv6Subnet or both",
    },
    {
      rule: "self.type != 'l3' || !has(self.ipv4Subnet) || has(self.ipv4Subnet.hostLocalPrefixLength)",
      message: "an l3 network needs ipv4Subnet.hostLocalPrefixLength",
      fieldPath: ".ipv4Subnet",
    },
    {
      rule: "self.type != 'l3' || !has(self.ipv6Subnet) || has(self.ipv6Subnet.hostLocalPrefixLength)",
      message: "an l3 network needs ipv6Subnet.hostLocalPrefixLength",
      fieldPath: ".ipv6Subnet",
    },
    {
      rule: "self.type != 'l2' || ((!has(self.ipv4Subnet) || !has(self.ipv4Subnet.hostLocalPrefixLength)) && " +
        "(!has(self.ipv6Subnet) || !has(self.ipv6Subnet.hostLocalPrefixLength)))",
      message: "an l2 network has global IPAM and no hostLocalPrefixLength",
    },
    {
      rule: "self.type != 'external' || (has(self.externalPrefixes) && size(self.externalPrefixes) > 0)",
      message: "an external network needs at least one prefix in externalPrefixes",
    },
    {
      rule: "self.type != 'external' || (!has(self.ipv4Subnet) && !has(self.ipv6Subnet))",
      message: "an external network has no subnet: use externalPrefixes",
    },
    {
      rule: "self.type == 'external' || !has(self.externalPrefixes)",
      message: "externalPrefixes is for external networks only",
      fieldPath: ".externalPrefixes",
    },
    {
      rule: "self.type == 'external' || !has(self.snat)",
      message: "snat is for external networks only",
      fieldPath: ".snat",
    },
  ],
};

const networkStatus: OpenAPISchema = {
  type: "object",
  properties: {
    id: { type: "integer", minimum: 0 },
    conditions: { type: "array", items: condition, "x-kubernetes-list-type": "atomic" },
    usage: {
      type: "object",
      properties: {
        blocksUsed: { type: "integer", minimum: 0 },
        blocksFree: { type: "string" },
        addressesUsed: { type: "integer", minimum: 0 },
        addressesFree: { type: "string" },
      },
    },
  },
};

const allocationSpec: OpenAPISchema = {
  type: "object",
  required: ["network", "node", "blocks"],
  properties: {
    network: objectName("The l3 network the blocks belong to"),
    node: objectName("The node holding the blocks"),
    blocks: {
      type: "array",
      maxItems: 4096,
      items: {
        type: "object",
        required: ["prefix"],
        properties: {
          prefix: cidr("The block, host bits zero"),
          addresses: {
            type: "object",
            description: "Owner handle → address handed out from this block",
            // Controller-written and possibly large: checked in code, not in CEL, to keep the cost estimate bounded.
            additionalProperties: { type: "string", description: "An address inside the block", maxLength: 64 },
          },
          emptySince: { type: "string", format: "date-time" },
          node: objectName("Pool records only: the node that holds this block"),
          claim: { type: "string", maxLength: 128, description: "The id of the claim that gave the block to its node" },
          pending: { type: "boolean", description: "True while the block is still being claimed" },
        },
      },
    },
  },
};

const networkEndpointSpec: OpenAPISchema = {
  type: "object",
  required: ["network", "node", "addresses"],
  properties: {
    network: objectName("The network the endpoint belongs to"),
    node: objectName("The node the endpoint lives on"),
    addresses: {
      type: "array",
      description: "The endpoint's addresses, at most one per family",
      minItems: 1,
      maxItems: 2,
      items: ipAddress("An address of the endpoint"),
    },
    mac: mac("The endpoint's MAC address"),
    pod: {
      type: "object",
      required: ["namespace", "name"],
      properties: {
        namespace: { type: "string", minLength: 1, maxLength: 63, pattern: DNS1123_LABEL },
        name: objectName("The pod's name"),
        uid: { type: "string" },
      },
    },
    owner: { type: "string", description: "IPAM owner handle: pod UID or annotation lace-cni.io/owner" },
    bindingPolicy: {
      type: "string",
      nullable: true,
      description: "The binding policy that decided the network; null for the default network",
    },
    interface: { type: "string", pattern: IFNAME_PATTERN },
    detachedAt: {
      type: "string",
      format: "date-time",
      description: "When the pod's last sandbox was deleted while the pod lived on; absent while a sandbox is attached. A detached endpoint keeps the pod's network and addresses and is left out of the dataplane",
    },
  },
};

const neighborSpec: OpenAPISchema = {
  type: "object",
  required: ["network", "ip", "mac", "source"],
  properties: {
    network: objectName("The l2 network"),
    ip: ipAddress("The address"),
    mac: mac("The MAC the address resolves to"),
    source: learnSource,
    lastSeen: { type: "string", format: "date-time", description: "Learned entries: when the datapath last saw the address; silent ones age out" },
  },
};

const fdbEntrySpec: OpenAPISchema = {
  type: "object",
  required: ["network", "mac", "node", "source"],
  properties: {
    network: objectName("The l2 network"),
    mac: mac("The MAC address"),
    node: objectName("The node the MAC lives behind"),
    source: learnSource,
    sequence: { type: "integer", description: "Mobility sequence number: a move carries a higher one", minimum: 0 },
    lastSeen: { type: "string", format: "date-time", description: "Learned entries: when the datapath last saw the MAC; silent ones age out" },
    recentMoves: {
      type: "array", description: "Learned entries: when the MAC moved between nodes lately (flap detection)", maxItems: 32,
      items: { type: "string", format: "date-time" },
    },
    frozenUntil: { type: "string", format: "date-time", description: "A flapping MAC stays where it is until then: moves are ignored" },
  },
};

const bindingPolicySpec: OpenAPISchema = {
  type: "object",
  required: ["network"],
  properties: {
    network: objectName("The network matching resources bind to"),
    priority,
    matchKind: { type: "string", description: "What the policy binds", enum: ["Pod", "Service"], default: "Pod" },
    namespaceSelector: labelSelector("Namespaces whose resources the policy matches; absent: all"),
    selector: labelSelector("Resources the policy matches, by label; absent: all"),
    conditions: conditionTree,
  },
};

const networkSet = (side: "from" | "to"): OpenAPISchema => ({
  type: "object",
  description: side === "from" ? "Source networks" : "Destination networks and prefixes",
  properties: {
    networks: { type: "array", maxItems: 256, items: objectName("A network name"), "x-kubernetes-list-type": "set" },
    networkSelector: labelSelector("Networks by label"),
    ...(side === "to"
      ? {
        prefixes: {
          type: "array",
          description: "Narrows the destination to these prefixes",
          maxItems: 1024,
          items: cidr("A destination prefix, host bits zero"),
          "x-kubernetes-list-type": "set",
        } satisfies OpenAPISchema,
      }
      : {}),
  },
  "x-kubernetes-validations": [
    side === "from"
      ? {
        rule: "(has(self.networks) && size(self.networks) > 0) || has(self.networkSelector)",
        message: "from needs networks or networkSelector",
      }
      : {
        rule: "(has(self.networks) && size(self.networks) > 0) || has(self.networkSelector) || " +
          "(has(self.prefixes) && size(self.prefixes) > 0)",
        message: "to needs networks, networkSelector or prefixes",
      },
  ],
});

const routingPolicySpec: OpenAPISchema = {
  type: "object",
  required: ["from", "to", "action"],
  properties: {
    priority,
    from: networkSet("from"),
    to: networkSet("to"),
    action: { type: "string", enum: ["Allow", "Deny"] },
    conditions: conditionTree,
  },
};

const topologySpec: OpenAPISchema = {
  type: "object",
  required: ["locatorPool", "locatorLength"],
  properties: {
    locatorPool: cidr("IPv6 pool that node locators are cut from", 6),
    locatorLength: {
      type: "integer",
      description: "Length of each node's locator; longer than the pool's, at most 112 (16 bits remain for SID functions)",
      minimum: 1,
      maximum: 112,
    },
    encapsulation: { type: "string", enum: ["Reduced", "SRH"], default: "Reduced" },
    underlay: {
      type: "object",
      properties: {
        interface: {
          type: "string",
          description: "The underlay interface; empty: the interface of the default route",
          pattern: IFNAME_PATTERN,
        },
      },
    },
    mtu: {
      type: "integer",
      description: "Pod MTU; 0: the underlay MTU minus the encapsulation overhead",
      minimum: 0,
      maximum: 65535,
      default: 0,
    },
  },
  "x-kubernetes-validations": [
    {
      rule: "!isCIDR(self.locatorPool) || self.locatorLength > cidr(self.locatorPool).prefixLength()",
      message: "locatorLength must be longer than the locatorPool's prefix length",
      fieldPath: ".locatorLength",
    },
    {
      rule: "!has(self.mtu) || self.mtu == 0 || self.mtu >= 1280",
      message: "mtu must be 0 (automatic) or at least 1280, the IPv6 minimum",
      fieldPath: ".mtu",
    },
  ],
};

const topologyStatus: OpenAPISchema = {
  type: "object",
  properties: {
    locators: { type: "object", additionalProperties: { type: "string", description: "A node's locator prefix", maxLength: 64 } },
    conditions: { type: "array", items: condition, "x-kubernetes-list-type": "atomic" },
  },
};

/** Every lace-cni kind's CRD facts and schemas. */
export const SCHEMAS: Record<Kind, KindSchema> = {
  Topology: {
    scope: "Cluster",
    plural: "topologies",
    shortNames: ["topo"],
    spec: topologySpec,
    status: topologyStatus,
    printerColumns: [
      { name: "Pool", type: "string", jsonPath: ".spec.locatorPool" },
      { name: "Locator", type: "integer", jsonPath: ".spec.locatorLength" },
      { name: "Encapsulation", type: "string", jsonPath: ".spec.encapsulation" },
    ],
    rootValidations: [{ rule: "self.metadata.name == 'default'", message: "the Topology is a singleton named default" }],
  },
  Network: {
    scope: "Cluster",
    plural: "networks",
    shortNames: ["net"],
    spec: networkSpec,
    rootValidations: [
      { rule: "self.metadata.name.size() <= 63", message: "a Network name is at most 63 characters: it is used as a label value" },
    ],
    status: networkStatus,
    printerColumns: [
      { name: "Type", type: "string", jsonPath: ".spec.type" },
      { name: "IPv4", type: "string", jsonPath: ".spec.ipv4Subnet.prefix" },
      { name: "IPv6", type: "string", jsonPath: ".spec.ipv6Subnet.prefix" },
      { name: "ID", type: "integer", jsonPath: ".status.id" },
      { name: "Ready", type: "string", jsonPath: ".status.conditions[?(@.type==\"Ready\")].status" },
    ],
  },
  NetworkBindingPolicy: {
    scope: "Cluster",
    plural: "networkbindingpolicies",
    shortNames: ["nbp"],
    spec: bindingPolicySpec,
    status: conditionsStatus,
    printerColumns: [
      { name: "Network", type: "string", jsonPath: ".spec.network" },
      { name: "Kind", type: "string", jsonPath: ".spec.matchKind" },
      { name: "Priority", type: "integer", jsonPath: ".spec.priority" },
    ],
  },
  NetworkRoutingPolicy: {
    scope: "Cluster",
    plural: "networkroutingpolicies",
    shortNames: ["nrp"],
    spec: routingPolicySpec,
    status: conditionsStatus,
    printerColumns: [
      { name: "Action", type: "string", jsonPath: ".spec.action" },
      { name: "Priority", type: "integer", jsonPath: ".spec.priority" },
    ],
  },
  Allocation: {
    scope: "Cluster",
    plural: "allocations",
    shortNames: ["alloc"],
    spec: allocationSpec,
    status: conditionsStatus,
    printerColumns: [
      { name: "Network", type: "string", jsonPath: ".spec.network" },
      { name: "Node", type: "string", jsonPath: ".spec.node" },
      { name: "Block", type: "string", jsonPath: ".spec.blocks[0].prefix" },
    ],
    rootValidations: [
      {
        rule: "self.metadata.name == self.spec.network + '.' + self.spec.node",
        message: "an Allocation is named <network>.<node>",
      },
    ],
  },
  NetworkEndpoint: {
    scope: "Namespaced",
    plural: "networkendpoints",
    shortNames: ["nep"],
    spec: networkEndpointSpec,
    status: conditionsStatus,
    printerColumns: [
      { name: "Network", type: "string", jsonPath: ".spec.network" },
      { name: "Node", type: "string", jsonPath: ".spec.node" },
      { name: "Addresses", type: "string", jsonPath: ".spec.addresses" },
      { name: "Detached", type: "date", jsonPath: ".spec.detachedAt" },
    ],
  },
  Neighbor: {
    scope: "Cluster",
    plural: "neighbors",
    shortNames: ["neigh"],
    spec: neighborSpec,
    printerColumns: [
      { name: "Network", type: "string", jsonPath: ".spec.network" },
      { name: "IP", type: "string", jsonPath: ".spec.ip" },
      { name: "MAC", type: "string", jsonPath: ".spec.mac" },
      { name: "Source", type: "string", jsonPath: ".spec.source" },
    ],
  },
  FDBEntry: {
    scope: "Cluster",
    plural: "fdbentries",
    shortNames: ["fdb"],
    spec: fdbEntrySpec,
    printerColumns: [
      { name: "Network", type: "string", jsonPath: ".spec.network" },
      { name: "MAC", type: "string", jsonPath: ".spec.mac" },
      { name: "Node", type: "string", jsonPath: ".spec.node" },
      { name: "Seq", type: "integer", jsonPath: ".spec.sequence" },
    ],
  },
};
