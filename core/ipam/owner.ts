/**
 * Owner handles and requested addresses, read from a pod (or VM launcher
 * pod): the handle is annotation `lace-cni.io/owner` when set (a VM's
 * name, so a restarted or migrated VM keeps its address), else the pod UID.
 *
 * @example
 * addressRequestFor({ metadata: { name: "web-0", namespace: "a", uid: "6f1c…",
 *   annotations: { "lace-cni.io/ip": "10.40.3.7" } } });
 * // { owner: "6f1c…", addresses: [IPAddress 10.40.3.7] }
 */
import { laceError } from "../errors.ts";
import { IPAddress } from "../ip/mod.ts";
import type { ObjectMeta } from "../resources/types.ts";
import type { AddressRequest } from "./allocator.ts";

export const OWNER_ANNOTATION = "lace-cni.io/owner";
export const IP_ANNOTATION = "lace-cni.io/ip";

/**
 * The address request for a pod. `lace-cni.io/ip` holds one address, or an
 * IPv4 and an IPv6 address separated by a comma.
 */
export function addressRequestFor(pod: { metadata: Pick<ObjectMeta, "name" | "namespace" | "uid" | "annotations"> }): AddressRequest {
  const m = pod.metadata;
  const who = `Pod ${m.namespace ? `${m.namespace}/` : ""}${m.name}`;
  const annotated = m.annotations?.[OWNER_ANNOTATION];
  if (annotated !== undefined && annotated.trim() === "") {
    throw laceError("INVALID_ARGUMENT", `${who}: annotation ${OWNER_ANNOTATION} is empty: expected an owner handle such as a VM name`);
  }
  const owner = annotated?.trim() || m.uid;
  if (!owner) {
    throw laceError("INVALID_ARGUMENT", `${who} has neither a UID nor annotation ${OWNER_ANNOTATION}: IPAM needs an owner handle`);
  }
  const text = m.annotations?.[IP_ANNOTATION];
  if (text === undefined) return { owner };
  const addresses: IPAddress[] = [];
  for (const part of text.split(",").map((s) => s.trim())) {
    const r = IPAddress.tryParse(part);
    if (!r.ok) {
      throw laceError("INVALID_ARGUMENT", `${who}: annotation ${IP_ANNOTATION} must hold one address per family separated by a comma: ${r.error}`);
    }
    if (addresses.some((a) => a.family === r.value.family)) {
      throw laceError("INVALID_ARGUMENT", `${who}: annotation ${IP_ANNOTATION} names two IPv${r.value.family} addresses, expected at most one per family: "${text}"`);
    }
    addresses.push(r.value);
  }
  return { owner, addresses };
}

/**
 * Whether a pod has finished (phase `Succeeded` or `Failed`): its sandbox
 * is never re-created, so its binding and addresses are no longer needed.
 *
 * @example
 * podHasFinished({ status: { phase: "Succeeded" } }); // true
 */
export function podHasFinished(pod: { status?: unknown }): boolean {
  const phase = (pod.status as { phase?: unknown } | undefined)?.phase;
  return phase === "Succeeded" || phase === "Failed";
}
