import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NodeDesiredState, ServiceForwarding } from "../dataplane/desired_state.ts";
import { DesiredStateBuilder } from "./builder.ts";
import { ServiceIndex } from "./services.ts";
import type { ReachabilityTable } from "../rules/routing.ts";
import type { Resource } from "../resources/types.ts";
import { allocation, builtInForwarding, endpoint, endpointSlice, locatorsFor, network, pod, routingPolicy, service, topology } from "./testing.ts";

const t = suite("controller/services");

const NODES = ["node-1", "node-2", "node-3"];

function svc(state: NodeDesiredState, id: string): ServiceForwarding | undefined {
  return state.services?.find((s) => s.id === id);
}

async function cluster(): Promise<DesiredStateBuilder> {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("backend", { ipv4: "10.40.0.0/16" }, 1),
    network("frontend", { ipv4: "10.10.0.0/16" }, 2),
    network("other", { ipv4: "10.20.0.0/16" }, 3),
    allocation("backend", "node-1", ["10.40.1.0/24"]),
    allocation("backend", "node-2", ["10.40.2.0/24"]),
    allocation("frontend", "node-2", ["10.10.2.0/24"]),
    allocation("other", "node-3", ["10.20.3.0/24"]),
    pod("shop", "api-1", { app: "api" }, { ports: [{ name: "http", containerPort: 8080 }] }),
    pod("shop", "api-2", { app: "api" }, { ports: [{ name: "http", containerPort: 9090 }] }),
    pod("shop", "api-3", { app: "api" }, { ready: false }),
    pod("shop", "api-4", { app: "api" }),
    pod("shop", "web-1", { app: "web" }),
    pod("shop", "x-1", { app: "x" }),
    endpoint("shop", "api-1", "backend", "node-1", ["10.40.1.5"]),
    endpoint("shop", "api-2", "backend", "node-2", ["10.40.2.5"]),
    endpoint("shop", "api-3", "backend", "node-2", ["10.40.2.6"]),
    endpoint("shop", "api-4", "other", "node-3", ["10.20.3.4"]),
    endpoint("shop", "web-1", "frontend", "node-2", ["10.10.2.5"]),
    endpoint("shop", "x-1", "other", "node-3", ["10.20.3.5"]),
    service("shop", "api", "backend", { selector: { app: "api" }, clusterIP: "10.96.0.10", ports: [{ port: 80, targetPort: "http", name: "web" }, { port: 53, protocol: "UDP", targetPort: 5353 }] }),
  ]);
  return b;
}

t("endpoints are the ready pods the selector picks on the service's network, target ports resolved per pod", async () => {
  const b = await cluster();
  const s = svc(b.stateFor("node-1"), "shop/api")!;
  assert.equal(s, {
    id: "shop/api",
    network: "backend",
    clusterIPs: ["10.96.0.10"],
    ports: [{ name: "web", protocol: "TCP", port: 80 }, { protocol: "UDP", port: 53 }],
    sessionAffinity: "None",
    sources: ["backend"],
    endpoints: [
      { pod: "shop/api-1", node: "node-1", addresses: ["10.40.1.5"], ports: [8080, 5353] },
      { pod: "shop/api-2", node: "node-2", addresses: ["10.40.2.5"], ports: [9090, 5353] },
    ],
  });
  // api-3 is not ready, api-4 is on network "other": neither is an endpoint.
});

t("a node forwards a service when one of its networks may reach the service's network", async () => {
  const b = await cluster();
  assert.ok(svc(b.stateFor("node-1"), "shop/api"));
  assert.ok(svc(b.stateFor("node-2"), "shop/api"));
  // node-3 has only "other", which may not reach backend.
  assert.is(svc(b.stateFor("node-3"), "shop/api"), undefined);
  const fired: string[] = [];
  b.onChange((n) => fired.push(n));
  await b.upsert(routingPolicy("other-to-be", ["other"], ["backend"]));
  assert.equal(svc(b.stateFor("node-3"), "shop/api")?.sources, ["backend", "other"]);
  assert.ok(fired.includes("node-3"));
  await b.remove("NetworkRoutingPolicy", "other-to-be");
  assert.is(svc(b.stateFor("node-3"), "shop/api"), undefined);
});

t("an anonymous network's service has no sources until a policy allows one", async () => {
  const b = await cluster();
  await b.upsert(network("backend", { ipv4: "10.40.0.0/16", anonymous: true }, 1));
  assert.is(svc(b.stateFor("node-1"), "shop/api"), undefined);
  await b.upsert(routingPolicy("fe-to-be", ["frontend"], ["backend"]));
  assert.equal(svc(b.stateFor("node-2"), "shop/api")?.sources, ["frontend"]);
  assert.is(svc(b.stateFor("node-1"), "shop/api"), undefined);
});

t("pod and endpoint changes update the endpoints; only nodes forwarding the service hear", async () => {
  const b = await cluster();
  const fired: string[] = [];
  b.onChange((n) => fired.push(n));
  await b.upsert(pod("shop", "api-3", { app: "api" }));
  assert.equal(svc(b.stateFor("node-2"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-1", "shop/api-2", "shop/api-3"]);
  assert.equal(fired.sort(), ["node-1", "node-2"]);
  await b.remove("NetworkEndpoint", "api-1", "shop");
  assert.equal(svc(b.stateFor("node-2"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-2", "shop/api-3"]);
  await b.upsert(pod("shop", "api-2", { app: "gone" }));
  assert.equal(svc(b.stateFor("node-2"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-3"]);
  // A pod no service selects changes no service.
  fired.length = 0;
  const before = b.stateFor("node-2").services;
  await b.upsert(pod("shop", "web-1", { app: "web", v: "2" }));
  assert.is(b.stateFor("node-2").services, before);
  assert.equal(fired, []);
});

t("moving a service to another network moves its endpoints and sources", async () => {
  const b = await cluster();
  await b.upsert(service("shop", "api", "other", { selector: { app: "api" }, clusterIP: "10.96.0.10" }));
  assert.is(svc(b.stateFor("node-1"), "shop/api"), undefined);
  const s = svc(b.stateFor("node-3"), "shop/api")!;
  assert.is(s.network, "other");
  assert.equal(s.endpoints.map((e) => e.pod), ["shop/api-4"]);
  // Unbound (no annotation): forwarded nowhere.
  await b.upsert(service("shop", "api", undefined, { selector: { app: "api" }, clusterIP: "10.96.0.10" }));
  for (const n of NODES) assert.is(svc(b.stateFor(n), "shop/api"), undefined);
});

t("an agent's builder keeps other nodes' endpoints of a service", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding, node: "node-1" });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("backend", { ipv4: "10.40.0.0/16" }, 1),
    allocation("backend", "node-1", ["10.40.1.0/24"]),
    pod("shop", "api-2", { app: "api" }),
    endpoint("shop", "api-2", "backend", "node-2", ["10.40.2.5"]),
    endpoint("shop", "c-1", "backend", "node-1", ["10.40.1.9"]),
    service("shop", "api", "backend", { selector: { app: "api" }, clusterIP: "10.96.0.10", affinity: "ClientIP" }),
  ]);
  const s = svc(b.stateFor("node-1"), "shop/api")!;
  assert.equal(s.endpoints, [{ pod: "shop/api-2", node: "node-2", addresses: ["10.40.2.5"], ports: [80] }]);
  assert.is(s.sessionAffinity, "ClientIP");
});

// ------------------------------------------------------------ EndpointSlices

/** api's two ports as the endpoint controller resolves them: "web" → 8080, the unnamed UDP one → 5353. */
const API_PORTS = [{ name: "web", port: 8080 }, { name: "", protocol: "UDP", port: 5353 }];

t("a service with slices takes its endpoints from them: ready ones whose pod is bound to its network", async () => {
  const b = await cluster();
  await b.upsertAll([
    endpointSlice("shop", "api-a", "api", [
      { address: "10.40.1.5", pod: "api-1", node: "node-1" },
      { address: "10.40.2.5", pod: "api-2", ready: true }, // no nodeName: the pod's endpoint says node-2
      { address: "10.40.2.6", pod: "api-3", node: "node-2", ready: false },
      { address: "10.20.3.4", pod: "api-4", node: "node-3" }, // bound to "other"
    ], API_PORTS),
  ]);
  const s = svc(b.stateFor("node-1"), "shop/api")!;
  assert.equal(s.endpoints, [
    { pod: "shop/api-1", node: "node-1", addresses: ["10.40.1.5"], ports: [8080, 5353] },
    { pod: "shop/api-2", node: "node-2", addresses: ["10.40.2.5"], ports: [8080, 5353] },
  ]);
  // The slice's ports, not the pod's: api-2's container port (9090) is not read. A port the slice lacks is not served.
  await b.upsert(endpointSlice("shop", "api-a", "api", [{ address: "10.40.2.5", pod: "api-2" }], [{ name: "web", port: 7070 }]));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints, [{ pod: "shop/api-2", node: "node-2", addresses: ["10.40.2.5"], ports: [7070, 0] }]);
});

t("serving terminating slice endpoints are used only while the service has no ready one", async () => {
  const b = await cluster();
  const slice = (readyOne: boolean) => endpointSlice("shop", "api-a", "api", [
    { address: "10.40.1.5", pod: "api-1", ready: false, serving: true, terminating: true },
    { address: "10.40.2.5", pod: "api-2", ready: false, serving: false, terminating: true }, // not serving: never
    ...(readyOne ? [{ address: "10.40.2.6", pod: "api-3", node: "node-2" }] : []),
  ], API_PORTS);
  await b.upsert(slice(true));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-3"], "a ready one: the terminating one is not used");
  await b.upsert(slice(false));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-1"], "none ready: the serving terminating one");
});

t("a pod being deleted whose Ready condition is still True is an endpoint only while the service has no ready pod", async () => {
  const b = await cluster();
  const terminating = (name: string, ready: "True" | "False"): Resource => ({
    ...pod("shop", name, { app: "api" }),
    metadata: { name, namespace: "shop", labels: { app: "api" }, deletionTimestamp: "2026-12-07T00:00:00Z" },
    status: { phase: "Running", conditions: [{ type: "Ready", status: ready }] },
  });
  await b.upsert(terminating("api-1", "True"));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-2"], "api-2 is ready: api-1 is not used");
  await b.upsert(terminating("api-2", "False"));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-1"], "no ready pod left: the terminating one still serving");
});

t("a slice endpoint naming a pod that holds another address on the network is not an endpoint", async () => {
  const b = await cluster();
  await b.upsert(endpointSlice("shop", "api-a", "api", [{ address: "10.40.1.99", pod: "api-1" }], API_PORTS));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints, []);
});

t("a selector-less service's endpoints are its slices; it is forwarded only while one of them, ready or not, is on its network", async () => {
  const b = await cluster();
  await b.upsert(service("shop", "ext", "backend", { clusterIP: "10.96.0.20", ports: [{ port: 443, name: "https" }] }));
  assert.is(svc(b.stateFor("node-1"), "shop/ext"), undefined, "no slices: not ours (its ClusterIP is left to kube-proxy, not dropped)");
  await b.upsert(endpointSlice("shop", "ext-1", "ext", [{ address: "10.40.2.5", pod: "api-2" }], [{ name: "https", port: 8443 }]));
  assert.equal(svc(b.stateFor("node-1"), "shop/ext")!.endpoints, [{ pod: "shop/api-2", node: "node-2", addresses: ["10.40.2.5"], ports: [8443] }]);
  await b.upsert(endpointSlice("shop", "ext-1", "ext", [{ address: "10.40.2.5", pod: "api-2", ready: false }], [{ name: "https", port: 8443 }]));
  assert.equal(svc(b.stateFor("node-1"), "shop/ext")!.endpoints, [], "not ready: still ours, without endpoints (dropped)");
});

t("a selector-less service whose endpoints are all outside the network (the API server's default/kubernetes) is left out", async () => {
  const b = await cluster();
  await b.upsert(service("default", "kubernetes", "backend", { clusterIP: "10.96.0.1", ports: [{ port: 443, name: "https" }] }));
  await b.upsert(endpointSlice("default", "kubernetes", "kubernetes", [{ address: "192.168.1.10" }], [{ name: "https", port: 6443 }]));
  assert.is(svc(b.stateFor("node-1"), "default/kubernetes"), undefined);
});

t("a slice endpoint naming no pod counts when its address lies in one of the network's subnets", async () => {
  const b = await cluster();
  await b.upsert(service("shop", "ext", "backend", { clusterIP: "10.96.0.20", ports: [{ port: 443, name: "https" }] }));
  await b.upsert(endpointSlice("shop", "ext-1", "ext", [
    { address: "10.40.9.9", node: "node-2" }, // in backend's 10.40.0.0/16
    { address: "10.40.9.10" }, // no node
    { address: "192.168.1.1", node: "node-1" }, // in no subnet of backend
    { address: "10.10.2.5" }, // frontend's subnet
  ], [{ name: "https", port: 443 }]));
  assert.equal(svc(b.stateFor("node-1"), "shop/ext")!.endpoints, [
    { pod: "", node: "", addresses: ["10.40.9.10"], ports: [443] },
    { pod: "", node: "node-2", addresses: ["10.40.9.9"], ports: [443] },
  ]);
});

t("a pod's slices of both families make one endpoint; slices of another type or another service do not count", async () => {
  const b = new DesiredStateBuilder({ forwardingOf: builtInForwarding });
  await b.upsertAll([
    topology(locatorsFor(NODES)),
    network("backend", { ipv4: "10.40.0.0/16", ipv6: "fd00:40::/48" }, 1),
    allocation("backend", "node-1", ["10.40.1.0/24", "fd00:40:0:1::/64"]),
    endpoint("shop", "api-1", "backend", "node-1", ["10.40.1.5/24", "fd00:40:0:1::5/64"]),
    service("shop", "api", "backend", { selector: { app: "api" }, clusterIP: "10.96.0.10" }),
    endpointSlice("shop", "api-4", "api", [{ address: "10.40.1.5", pod: "api-1" }]),
    endpointSlice("shop", "api-6", "api", [{ address: "fd00:40:0:1:0::5", pod: "api-1" }], undefined, "IPv6"),
    endpointSlice("shop", "api-f", "api", [{ address: "api.example", pod: "api-1" }], undefined, "FQDN"),
    endpointSlice("shop", "web-4", "web", [{ address: "10.40.1.5", pod: "api-1" }]),
  ]);
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints, [
    { pod: "shop/api-1", node: "node-1", addresses: ["10.40.1.5", "fd00:40:0:1::5"], ports: [80] },
  ]);
});

t("slices switch a selector service over to them; deleting them switches it back", async () => {
  const b = await cluster();
  const fromSelector = ["shop/api-1", "shop/api-2"];
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), fromSelector);
  await b.upsert(endpointSlice("shop", "api-a", "api", [{ address: "10.40.2.5", pod: "api-2" }], API_PORTS));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-2"]);
  await b.upsert(endpointSlice("shop", "api-b", "api", [{ address: "10.40.2.6", pod: "api-3" }], API_PORTS));
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-2", "shop/api-3"]);
  await b.remove("EndpointSlice", "api-a", "shop");
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), ["shop/api-3"]);
  await b.remove("EndpointSlice", "api-b", "shop");
  assert.equal(svc(b.stateFor("node-1"), "shop/api")!.endpoints.map((e) => e.pod), fromSelector);
});

t("a slice change marks only its service; a pod's endpoint moving reaches the services whose slices name it", () => {
  const idx = new ServiceIndex();
  const table: ReachabilityTable = {
    sources: new Map([["backend", [{ network: "backend", prefix: null, action: "allow", policy: null }]]]),
    replies: new Map(),
    stats: { networks: 1, destinations: 1, pairs: 1, evaluations: 0 },
  };
  const subnets = (n: string) => (n === "backend" ? ["10.40.0.0/16"] : undefined);
  for (const r of [
    endpoint("shop", "api-1", "backend", "node-1", ["10.40.1.5"]),
    service("shop", "api", "backend", { selector: { app: "api" }, clusterIP: "10.96.0.10" }),
    service("shop", "db", "backend", { selector: { app: "db" }, clusterIP: "10.96.0.11" }),
    service("shop", "ext", "backend", { clusterIP: "10.96.0.12" }),
  ]) idx.set(r);
  // (shop/ext has no selector and no slices yet: not forwarded, no change.)
  assert.equal(idx.update(table, subnets).map((c) => c.key).sort(), ["shop/api", "shop/db"]);
  idx.set(endpointSlice("shop", "api-a", "api", [{ address: "10.40.1.5", pod: "api-1" }]));
  const changed = idx.update(table, subnets);
  assert.equal(changed.map((c) => c.key), ["shop/api"]);
  assert.equal(changed[0].after!.endpoints.map((e) => e.pod), ["shop/api-1"]);
  // The same slice again (a status-free rewrite): nothing.
  idx.set(endpointSlice("shop", "api-a", "api", [{ address: "10.40.1.5", pod: "api-1" }]));
  assert.equal(idx.update(table, subnets), []);
  // The pod's endpoint moves to another network: the service its slice feeds loses it.
  idx.set(endpoint("shop", "api-1", "other", "node-1", ["10.40.1.5"]));
  assert.equal(idx.update(table, subnets).map((c) => [c.key, c.after!.endpoints.length]), [["shop/api", 0]]);
});

t.run();
