/**
 * The one place a pod's network is decided. Pods are matched once, when
 * they are created: a pod that already has its own endpoint (the same UID,
 * or for an endpoint that records none, the same IPAM owner) keeps that
 * endpoint's network and policy, for as long as the pod lives, across
 * re-created sandboxes and changed policies; otherwise the binding
 * policies decide. An endpoint of another UID is what a deleted pod of the
 * same name left behind, and does not count.
 *
 * The agent (CNI ADD), the controller (addresses ahead of ADD), `lace plan`
 * and the sandbox all bind through here.
 *
 * @example
 * const b = await bindPod(rules, pod, { endpoint, namespaceLabels: { team: "a" }, node: "node-1" });
 * b.network; // "backend"
 * b.kept;    // true when the pod's own endpoint decided it
 */
import { addressRequestFor } from "../ipam/owner.ts";
import type { NetworkEndpoint, Resource } from "../resources/types.ts";
import { type BindingRules, podSubject } from "./binding.ts";

/** A pod's binding and what decided it. */
export interface PodBinding {
  network: string;
  /** The deciding binding policy; null for the default network. */
  policy: string | null;
  /** True when the pod's own endpoint decided (bound earlier), false when the policies did now. */
  kept: boolean;
}

type Pod = Resource<unknown, unknown>;

/**
 * Whether `endpoint` records `pod`: the same UID, or the same owner handle
 * when the endpoint records no UID.
 *
 * @example
 * endpointOwnedBy(ep, pod); // false for an endpoint a deleted namesake left
 */
export function endpointOwnedBy(endpoint: NetworkEndpoint, pod: Pod): boolean {
  const uid = endpoint.spec?.pod?.uid;
  if (uid) return uid === pod.metadata.uid;
  try {
    return endpoint.spec?.owner !== undefined && endpoint.spec.owner === addressRequestFor(pod).owner;
  } catch {
    return false;
  }
}

/**
 * The pod's binding: its own endpoint's, else the policies' decision for it
 * on `node`. Rejects as `rules.decide` does when no policy matches and
 * there is no default network.
 */
export async function bindPod(
  rules: BindingRules,
  pod: Pod,
  context: { endpoint?: NetworkEndpoint; namespaceLabels?: Record<string, string>; node?: string | null },
): Promise<PodBinding> {
  const ep = context.endpoint;
  if (ep?.spec && endpointOwnedBy(ep, pod)) return { network: ep.spec.network, policy: ep.spec.bindingPolicy ?? null, kept: true };
  const d = await rules.decide(podSubject(pod, context.namespaceLabels, context.node));
  return { network: d.network, policy: d.policy, kept: false };
}
