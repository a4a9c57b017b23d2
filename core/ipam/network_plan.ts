/**
 * What IPAM needs to know of a Network: its subnets per family and, for
 * host-local addressing, the block length; plus the `Exhausted` status
 * condition it reports.
 *
 * @example
 * const plan = await readNetworkPlan(store, "backend", "host-local");
 * plan.families[0].subnet.toString(); // "10.40.0.0/16"
 */
import { laceError } from "../errors.ts";
import { type Family, Prefix } from "../ip/mod.ts";
import type { Condition, Network } from "../resources/types.ts";
import { retryOnConflict, type Store } from "../store/store.ts";
import { timestamp } from "./layout.ts";

export interface FamilyPlan {
  family: Family;
  subnet: Prefix;
  /** `hostLocalPrefixLength`; host-local networks only. */
  blockLength?: number;
}

export interface NetworkPlan {
  network: string;
  /** IPv4 first. */
  families: FamilyPlan[];
}

/**
 * Reads a Network's subnets. `host-local` also requires a block length per
 * subnet. Refuses a missing network (UNKNOWN_NETWORK) or one without a usable
 * subnet (INVALID_RESOURCE), naming the field.
 */
export async function readNetworkPlan(store: Store, network: string, addressing: "host-local" | "global"): Promise<NetworkPlan> {
  const net = await store.get<Network>("Network", network);
  if (!net) throw laceError("UNKNOWN_NETWORK", `Network "${network}" does not exist: IPAM cannot allocate from it`);
  const families: FamilyPlan[] = [];
  for (const [field, family] of [["ipv4Subnet", 4], ["ipv6Subnet", 6]] as const) {
    const s = net.spec?.[field];
    if (!s) continue;
    const parsed = Prefix.tryParse(s.prefix);
    if (!parsed.ok || parsed.value.family !== family) {
      throw laceError("INVALID_RESOURCE", `Network "${network}": spec.${field}.prefix is not an IPv${family} prefix: ${parsed.ok ? s.prefix : parsed.error}`);
    }
    const plan: FamilyPlan = { family, subnet: parsed.value };
    if (addressing === "host-local") {
      const len = s.hostLocalPrefixLength;
      if (typeof len !== "number" || !Number.isInteger(len) || len < parsed.value.length || len > parsed.value.bits) {
        throw laceError(
          "INVALID_RESOURCE",
          `Network "${network}": spec.${field}.hostLocalPrefixLength must be an integer between ${parsed.value.length} and ${parsed.value.bits} for host-local addressing, got ${len === undefined ? "nothing" : JSON.stringify(len)}`,
        );
      }
      plan.blockLength = len;
    }
    families.push(plan);
  }
  if (families.length === 0) {
    throw laceError("INVALID_RESOURCE", `Network "${network}" has neither spec.ipv4Subnet nor spec.ipv6Subnet: IPAM has nothing to allocate from`);
  }
  return { network, families };
}

/**
 * Sets the Network's `Exhausted` condition when its status differs;
 * returns without writing when it already says so.
 */
export async function setExhausted(store: Store, network: string, exhausted: boolean, message: string, now: number): Promise<void> {
  await retryOnConflict(async () => {
    const net = await store.get<Network>("Network", network);
    if (!net) return;
    const conditions = net.status?.conditions ?? [];
    const cur = conditions.find((c) => c.type === "Exhausted");
    const status = exhausted ? "True" : "False";
    if (cur ? cur.status === status : !exhausted) return;
    const next: Condition = {
      type: "Exhausted",
      status,
      reason: exhausted ? "SubnetExhausted" : "AddressesAvailable",
      message,
      lastTransitionTime: timestamp(now),
      observedGeneration: net.metadata.generation,
    };
    net.status = { ...net.status, conditions: [...conditions.filter((c) => c.type !== "Exhausted"), next] };
    await store.updateStatus(net);
  });
}
