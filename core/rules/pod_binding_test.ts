import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NetworkBindingPolicy, NetworkEndpoint, Resource } from "../resources/types.ts";
import { BindingRules } from "./binding.ts";
import { bindPod, endpointOwnedBy } from "./pod_binding.ts";

const t = suite("rules/pod_binding");

const policy = (name: string, network: string, tier: string, priority = 100): NetworkBindingPolicy => ({
  apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkBindingPolicy", metadata: { name },
  spec: { network, priority, matchKind: "Pod", selector: { matchLabels: { tier } } },
});
const pod = (uid: string): Resource => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "web-0", namespace: "a", uid, labels: { tier: "web" } } });
const endpoint = (uid: string | undefined, network: string, owner?: string): NetworkEndpoint => ({
  apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkEndpoint", metadata: { name: "web-0", namespace: "a" },
  spec: { network, node: "node-1", addresses: [], bindingPolicy: "old-policy", ...(uid ? { pod: { namespace: "a", name: "web-0", uid } } : {}), ...(owner ? { owner } : {}) },
} as NetworkEndpoint);

t("a pod without an endpoint is bound by the policies", async () => {
  const rules = BindingRules.compile([policy("web", "frontend", "web")]);
  assert.equal(await bindPod(rules, pod("u1"), { node: "node-1" }), { network: "frontend", policy: "web", kept: false });
});

t("a pod's own endpoint keeps its network, whatever the policies say now", async () => {
  const rules = BindingRules.compile([policy("web", "frontend", "web")]);
  assert.equal(await bindPod(rules, pod("u1"), { endpoint: endpoint("u1", "legacy") }), { network: "legacy", policy: "old-policy", kept: true });
  // An endpoint that records no UID belongs to the pod with its owner handle (the UID by default).
  assert.is(endpointOwnedBy(endpoint(undefined, "legacy", "u1"), pod("u1")), true);
  assert.is(endpointOwnedBy(endpoint(undefined, "legacy", "u9"), pod("u1")), false);
});

t("an endpoint a deleted namesake left does not bind the new pod", async () => {
  const rules = BindingRules.compile([policy("web", "frontend", "web")]);
  assert.equal(await bindPod(rules, pod("u2"), { endpoint: endpoint("u1", "legacy") }), { network: "frontend", policy: "web", kept: false });
});

t("no policy and no default network: the rules' error", async () => {
  const rules = BindingRules.compile([policy("db", "backend", "db")]);
  try {
    await bindPod(rules, pod("u1"), {});
    assert.unreachable("no binding");
  } catch (e) {
    assert.match((e as Error).message, /web-0/);
  }
});

t.run();
