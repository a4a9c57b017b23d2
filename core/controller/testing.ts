/**
 * Small resource factories for controller tests and benchmarks.
 *
 * @example
 * const net = network("backend", { ipv4: "10.40.0.0/16", block: 24 }, 1);
 * const a = allocation("backend", "node-1", ["10.40.0.0/24"]);
 */
import {
  type Allocation,
  API_VERSION,
  type Network,
  type NetworkEndpoint,
  type NetworkRoutingPolicy,
  type NetworkSpec,
  type Resource,
  type Topology,
} from "../resources/types.ts";

export function topology(locators: Record<string, string> = {}, pool = "fd00:1ace::/32"): Topology {
  return {
    apiVersion: API_VERSION,
    kind: "Topology",
    metadata: { name: "default" },
    spec: { locatorPool: pool, locatorLength: 48, encapsulation: "Reduced" },
    status: { locators },
  };
}

/** Locators `fd00:1ace:<i>::/48` for node-1 … node-n. */
export function locatorsFor(nodes: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  nodes.forEach((n, i) => out[n] = `fd00:1ace:${(i + 1).toString(16)}::/48`);
  return out;
}

export function network(
  name: string,
  o: { type?: string; ipv4?: string; ipv6?: string; block4?: number; block6?: number; external?: string[]; anonymous?: boolean; labels?: Record<string, string> },
  id?: number,
): Network {
  const type = o.type ?? (o.external ? "external" : "l3");
  const spec: NetworkSpec = { type };
  if (o.ipv4) spec.ipv4Subnet = { prefix: o.ipv4, ...(type === "l3" ? { hostLocalPrefixLength: o.block4 ?? 24 } : {}) };
  if (o.ipv6) spec.ipv6Subnet = { prefix: o.ipv6, ...(type === "l3" ? { hostLocalPrefixLength: o.block6 ?? 64 } : {}) };
  if (o.external) spec.externalPrefixes = o.external;
  if (o.anonymous) spec.anonymous = true;
  return {
    apiVersion: API_VERSION,
    kind: "Network",
    metadata: { name, ...(o.labels ? { labels: o.labels } : {}) },
    spec,
    ...(id !== undefined ? { status: { id } } : {}),
  };
}

export function allocation(net: string, node: string, prefixes: string[]): Allocation {
  return {
    apiVersion: API_VERSION,
    kind: "Allocation",
    metadata: { name: `${net}.${node}`, labels: { "lace-cni.io/network": net } },
    spec: { network: net, node, blocks: prefixes.map((prefix) => ({ prefix, addresses: {} })) },
  };
}

export function endpoint(namespace: string, name: string, net: string, node: string, addresses: string[], mac?: string): NetworkEndpoint {
  return {
    apiVersion: API_VERSION,
    kind: "NetworkEndpoint",
    metadata: { name, namespace },
    spec: { network: net, node, addresses, ...(mac ? { mac } : {}) },
  };
}

/** A Service bound to `net` (its `lace-cni.io/network` annotation); `net` undefined: not bound. */
export function service(
  namespace: string,
  name: string,
  net: string | undefined,
  o: { selector?: Record<string, string>; clusterIP: string; ports?: { port: number; targetPort?: number | string; protocol?: string; name?: string }[]; affinity?: "ClientIP" },
): Resource {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, ...(net ? { annotations: { "lace-cni.io/network": net } } : {}) },
    spec: { ...(o.selector ? { selector: o.selector } : {}), clusterIP: o.clusterIP, ports: o.ports ?? [{ port: 80 }], ...(o.affinity ? { sessionAffinity: o.affinity } : {}) },
  };
}

/** One endpoint of {@link endpointSlice}: `pod` names its targetRef; `ready` absent: no condition (ready). */
export interface SliceEndpointInput {
  address: string;
  pod?: string;
  node?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

/**
 * An EndpointSlice of Service `service` (label `kubernetes.io/service-name`),
 * as the endpoint controller writes one.
 *
 * @example
 * endpointSlice("shop", "api-x1", "api", [{ address: "10.40.1.5", pod: "api-1" }], [{ name: "web", port: 8080 }]);
 */
export function endpointSlice(
  namespace: string,
  name: string,
  service: string,
  endpoints: SliceEndpointInput[],
  ports: { name?: string; port: number; protocol?: string }[] = [{ name: "", port: 80 }],
  addressType: "IPv4" | "IPv6" | "FQDN" = "IPv4",
): Resource {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, namespace, labels: { "kubernetes.io/service-name": service } },
    addressType,
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      ...(e.ready === undefined && e.serving === undefined && e.terminating === undefined
        ? {}
        : { conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating } }),
      ...(e.pod ? { targetRef: { kind: "Pod", namespace, name: e.pod } } : {}),
      ...(e.node ? { nodeName: e.node } : {}),
    })),
    ports: ports.map((p) => ({ name: p.name ?? "", protocol: p.protocol ?? "TCP", port: p.port })),
  } as Resource;
}

/** A Pod with labels (and named container ports); `ready: false` adds a Ready=False condition. */
export function pod(namespace: string, name: string, labels: Record<string, string>, o: { ports?: { name: string; containerPort: number }[]; ready?: boolean } = {}): Resource {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels },
    spec: { containers: [{ name: "c", ...(o.ports ? { ports: o.ports } : {}) }] },
    ...(o.ready === false ? { status: { phase: "Running", conditions: [{ type: "Ready", status: "False" }] } } : {}),
  };
}

export function routingPolicy(name: string, from: string[], to: string[], action: "Allow" | "Deny" = "Allow", priority = 100): NetworkRoutingPolicy {
  return {
    apiVersion: API_VERSION,
    kind: "NetworkRoutingPolicy",
    metadata: { name },
    spec: { priority, from: { networks: from }, to: { networks: to }, action },
  };
}

/**
 * The built-in types' declared forwarding, for tests that build desired
 * states without loading plugins (the agent and the controller take it
 * from the plugin registry).
 *
 * @example
 * new DesiredStateBuilder({ forwardingOf: builtInForwarding });
 */
export function builtInForwarding(type: string): "routed" | "bridged" | "underlay" | undefined {
  return BUILT_IN_FORWARDING[type];
}

const BUILT_IN_FORWARDING: Record<string, "routed" | "bridged" | "underlay"> = { l3: "routed", l2: "bridged", external: "underlay" };
