/**
 * What the controller decides about each Network: whether it is accepted
 * (its subnets parse and overlap no other accepted network's), its id
 * (small, stable: once in status it never changes; new networks take the
 * lowest free id) and its `Accepted` / `Ready` conditions. `Exhausted` is
 * IPAM's and is carried over untouched.
 *
 * @example
 * const verdicts = judgeNetworks(networks);
 * verdicts.get("backend"); // { accepted: true, reason: "Valid", message: "...", id: 3 }
 */
import { type Condition, type Network, type NetworkTypeLookup, Prefix } from "../../core/mod.ts";
import { mergeConditions } from "./conditions.ts";

export interface NetworkVerdict {
  accepted: boolean;
  reason: string;
  message: string;
  /** The id the network has or is given now; undefined when not accepted and without one. */
  id?: number;
}

/**
 * Decides every network at once: overlaps and ids depend on the others.
 * A network whose type no loaded plugin provides is not accepted; subnets
 * of addressed types (addressing other than `none`) must not overlap.
 */
export function judgeNetworks(networks: Network[], types: NetworkTypeLookup): Map<string, NetworkVerdict> {
  const out = new Map<string, NetworkVerdict>();
  // Oldest first (then by name): of two overlapping networks the newer one is refused.
  const ordered = [...networks].sort((a, b) =>
    (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") || a.metadata.name.localeCompare(b.metadata.name)
  );
  const accepted: { name: string; prefix: Prefix }[] = [];
  for (const n of ordered) {
    const name = n.metadata.name;
    const spec = n.spec;
    const subnets: Prefix[] = [];
    let problem: [string, string] | undefined;
    const def = types.get(spec?.type ?? "");
    if (!def) problem = ["UnknownType", `Network "${name}" is of type "${spec?.type ?? ""}", which no loaded plugin provides (loaded: ${types.types().join(", ") || "none"})`];
    const addressed = def !== undefined && def.addressing !== "none";
    for (const field of ["ipv4Subnet", "ipv6Subnet"] as const) {
      const s = spec?.[field];
      if (!s) continue;
      const p = Prefix.tryParse(s.prefix);
      if (!p.ok) problem ??= ["InvalidSubnet", `spec.${field}.prefix: ${p.error}`];
      else subnets.push(p.value);
    }
    if (!problem && addressed && subnets.length === 0) {
      problem = ["InvalidSubnet", `Network "${name}" of type ${spec!.type} needs spec.ipv4Subnet or spec.ipv6Subnet`];
    }
    if (!problem && addressed) {
      for (const p of subnets) {
        const other = accepted.find((a) => a.prefix.overlaps(p));
        if (other) {
          problem = ["SubnetOverlap", `Subnet ${p} of Network "${name}" overlaps ${other.prefix} of Network "${other.name}"`];
          break;
        }
      }
    }
    if (problem) {
      out.set(name, { accepted: false, reason: problem[0], message: problem[1], id: n.status?.id });
      continue;
    }
    if (addressed) for (const p of subnets) accepted.push({ name, prefix: p });
    out.set(name, { accepted: true, reason: "Valid", message: `Network "${name}" is valid`, id: n.status?.id });
  }
  const used = new Set<number>();
  for (const v of out.values()) if (typeof v.id === "number") used.add(v.id);
  let next = 1;
  // New networks in one pass take ids in name order, so the same manifests always give the same ids.
  for (const n of [...networks].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const v = out.get(n.metadata.name)!;
    if (!v.accepted || typeof v.id === "number") continue;
    while (used.has(next)) next++;
    v.id = next;
    used.add(next);
  }
  return out;
}

/** The conditions the verdict means, keeping transition times of the ones that did not change and any others (Exhausted). */
export function networkConditions(n: Network, v: NetworkVerdict, now: string): Condition[] {
  const wanted: Condition[] = [
    { type: "Accepted", status: v.accepted ? "True" : "False", reason: v.reason, message: v.message },
    v.accepted && v.id !== undefined
      ? { type: "Ready", status: "True", reason: "Allocated", message: `Network "${n.metadata.name}" has id ${v.id}: its forwarding is computed for every node that needs it` }
      : { type: "Ready", status: "False", reason: "NotAccepted", message: v.message },
  ];
  return mergeConditions(n.status?.conditions ?? [], ["Accepted", "Ready"], wanted, now, n.metadata.generation).sort((a, b) => a.type.localeCompare(b.type));
}
