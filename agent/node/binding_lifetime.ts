/**
 * A pod's binding lives as long as the pod (its UID), not its sandbox. These
 * are the agent's rules for it, kept apart from the CNI plumbing:
 *
 * - an endpoint belongs to a pod when it records the pod's UID (or, for an
 *   endpoint that records none, the pod's IPAM owner handle); an endpoint
 *   of another UID is what a deleted pod of the same name left behind;
 * - when the last sandbox of a pod goes (CNI DEL, CNI GC), the binding is
 *   kept while the pod will get another sandbox: it exists, is not being
 *   deleted and has not finished (Succeeded, Failed). Otherwise it is
 *   released (a pod that finishes after its last DEL is the controller's to
 *   release: see agent/controller/endpoint_collector.ts);
 * - a kept binding is recorded as a detached endpoint: the same network
 *   and addresses, `spec.detachedAt` set, nothing naming the dead sandbox.
 *
 * @example
 * if (endpointOwnedBy(ep, pod) && podOutlivesSandbox(pod)) {
 *   await store.update(detachedEndpoint(ep, new Date(clock.now())));
 * }
 */
import { endpointOwnedBy, type NetworkEndpoint, podHasFinished, type Resource } from "../../core/mod.ts";

/** The annotations that name an endpoint's live sandbox. */
export const CONTAINER_ID_ANNOTATION = "lace-cni.io/container-id";
export const IFNAME_ANNOTATION = "lace-cni.io/ifname";
export const NETNS_ANNOTATION = "lace-cni.io/netns";

type Pod = Resource<unknown, { phase?: string }>;

/** Whether an endpoint records the pod (core/rules/pod_binding.ts). */
export { endpointOwnedBy };

/**
 * Whether the kubelet will give the pod another sandbox: it exists, is not
 * being deleted and has not finished. A finished pod's sandbox is never
 * re-created, so holding its addresses would only starve other pods.
 */
export function podOutlivesSandbox(pod: Pod | undefined): pod is Pod {
  return !!pod && !pod.metadata.deletionTimestamp && !podHasFinished(pod);
}

/** The endpoint as kept between sandboxes: binding and addresses, no sandbox. */
export function detachedEndpoint(ep: NetworkEndpoint, at: Date): NetworkEndpoint {
  const { [CONTAINER_ID_ANNOTATION]: _c, [IFNAME_ANNOTATION]: _i, [NETNS_ANNOTATION]: _n, ...annotations } = ep.metadata.annotations ?? {};
  const { interface: _if, ...spec } = ep.spec!;
  return {
    ...ep,
    metadata: { ...ep.metadata, annotations },
    spec: { ...spec, detachedAt: at.toISOString() },
  };
}

/**
 * The address sets to ask IPAM for, in order, when a kept binding's
 * addresses may have been lost: all of them, then each alone (the others
 * were taken), then none. A pod's own `lace-cni.io/ip` wins over them.
 */
export function addressPreferences(recorded: readonly string[] | undefined): string[][] {
  const all = [...(recorded ?? [])];
  if (all.length === 0) return [[]];
  const singles = all.length > 1 ? all.map((a) => [a]) : [];
  return [all, ...singles, []];
}
