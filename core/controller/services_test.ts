import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NodeDesiredState, ServiceForwarding } from "../dataplane/desired_state.ts";
import { DesiredStateBuilder } from "./builder.ts";
import { allocation, builtInForwarding, endpoint, locatorsFor, network, pod, routingPolicy, service, topology } from "./testing.ts";

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

t.run();
