import { suite } from "uvu";
import * as assert from "uvu/assert";
import { API_VERSION, type NetworkEndpoint, type Resource } from "../../core/mod.ts";
import { offNetworkMessage, PodsBySelector, serviceConditions } from "./service_status.ts";

const t = suite("controller/service_status");

const pod = (name: string, labels: Record<string, string>, extra: Partial<Resource["metadata"]> = {}): Resource => ({
  apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "shop", uid: `uid-${name}`, labels, ...extra },
});
const endpoint = (name: string, network: string, uid = `uid-${name}`): NetworkEndpoint => ({
  apiVersion: API_VERSION, kind: "NetworkEndpoint", metadata: { name, namespace: "shop" },
  spec: { network, node: "node-1", addresses: ["10.1.0.2"], pod: { namespace: "shop", name, uid } },
});
const endpointSlice = (name: string, svc: string, endpoints: { pod?: string; ready?: boolean }[]): Resource => ({
  apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name, namespace: "shop", labels: { "kubernetes.io/service-name": svc } },
  addressType: "IPv4",
  endpoints: endpoints.map((e, i) => ({
    addresses: [`10.1.0.${10 + i}`],
    ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }),
    ...(e.pod ? { targetRef: { kind: "Pod", namespace: "shop", name: e.pod } } : {}),
  })),
} as Resource);
const service = (selector?: Record<string, string>, namespace = "shop"): Resource => ({
  apiVersion: "v1", kind: "Service", metadata: { name: "cart", namespace }, spec: selector ? { selector } : {},
});

t("selected pods are matched on every selector label in the service's namespace, by their own endpoint", () => {
  const pods = new PodsBySelector(
    [
      pod("a", { app: "cart", tier: "be" }),
      pod("b", { app: "cart", tier: "be" }),
      pod("c", { app: "cart", tier: "fe" }), // not selected: tier differs
      pod("d", { app: "cart", tier: "be" }), // no endpoint yet
      pod("e", { app: "cart", tier: "be" }), // its endpoint is a deleted namesake's
      pod("f", { app: "cart", tier: "be" }, { deletionTimestamp: "2026-01-01T00:00:00Z" }),
    ],
    [endpoint("a", "x"), endpoint("b", "y"), endpoint("c", "z"), endpoint("e", "z", "uid-old"), endpoint("f", "z")],
  );
  assert.equal(pods.offNetwork(service({ app: "cart", tier: "be" }), "x"), { selected: 2, off: [{ network: "y", pods: ["shop/b"] }] });
  assert.equal(pods.offNetwork(service({ app: "cart", tier: "be" }, "other"), "x"), { selected: 0, off: [] }, "another namespace's pods are not selected");
  assert.equal(pods.offNetwork(service(), "x"), { selected: 0, off: [] }, "no selector, no pods");
});

t("a service with EndpointSlices (or no selector) is judged on the pods its slices name, ready or not", () => {
  const pods = new PodsBySelector(
    [pod("a", { app: "cart" }), pod("b", { app: "cart" }), pod("c", { app: "other" }), pod("d", {})],
    [endpoint("a", "x"), endpoint("b", "y"), endpoint("c", "z"), endpoint("d", "z")],
    [
      endpointSlice("cart-1", "cart", [{ pod: "a" }, { pod: "c", ready: false }]),
      endpointSlice("cart-2", "cart", [{}]), // an address alone names no pod
      endpointSlice("ext-1", "ext", [{ pod: "d" }]),
    ],
  );
  // The slices name a and c (b, selected by the selector, is not named): c is off the network.
  assert.equal(pods.offNetwork(service({ app: "cart" }), "x"), { selected: 2, off: [{ network: "z", pods: ["shop/c"] }] });
  // No selector: its slices.
  assert.equal(pods.offNetwork({ ...service(), metadata: { name: "ext", namespace: "shop" } }, "x"), { selected: 1, off: [{ network: "z", pods: ["shop/d"] }] });
  // No slices: the selector.
  const noSlices = new PodsBySelector([pod("a", { app: "cart" }), pod("b", { app: "cart" })], [endpoint("a", "x"), endpoint("b", "y")], []);
  assert.equal(noSlices.offNetwork(service({ app: "cart" }), "x"), { selected: 2, off: [{ network: "y", pods: ["shop/b"] }] });
});

t("the message names both networks and at most ten pods, then counts the rest", () => {
  const many = Array.from({ length: 12 }, (_, i) => `shop/p${String(i).padStart(2, "0")}`);
  const msg = offNetworkMessage("shop/cart", "a", [{ network: "b", pods: many.slice(0, 8) }, { network: "c", pods: many.slice(8) }]);
  assert.is(
    msg,
    'Service "shop/cart" is on network "a", but 12 of the pods it selects are bound to another network: ' +
      'shop/p00, shop/p01, shop/p02, shop/p03, shop/p04, shop/p05, shop/p06, shop/p07 to network "b"; shop/p08, shop/p09 and 2 more to network "c"',
  );
});

t("conditions: bound by a policy or the default network, or not bound with the binder's reason; pods compared only when some are bound", () => {
  assert.equal(serviceConditions({ service: "s/x", network: "a", policy: null, selected: 0 }).map((c) => [c.type, c.status, c.reason]), [
    ["lace-cni.io/NetworkBound", "True", "DefaultNetwork"],
  ]);
  assert.equal(serviceConditions({ service: "s/x", network: null, policy: null, error: "No binding policy matches Service s/x" }), [
    { type: "lace-cni.io/NetworkBound", status: "False", reason: "NoBindingPolicy", message: 'Service "s/x" has no network: No binding policy matches Service s/x' },
  ]);
  const off = serviceConditions({ service: "s/x", network: "a", policy: "p", selected: 3, offNetwork: [{ network: "b", pods: ["s/p"] }] });
  assert.equal(off.map((c) => [c.type, c.status, c.reason]), [["lace-cni.io/NetworkBound", "True", "PolicyMatched"], ["lace-cni.io/PodsOnNetwork", "False", "PodsOnOtherNetwork"]]);
});

t.run();
