/**
 * Field checks shared by the core validator and network-type plugins, so
 * every type words the same mistake the same way.
 *
 * @example
 * validate(spec, report) {
 *   for (const s of checkSubnets(spec, "an l2 network", report)) if (s.subnet.hostLocalPrefixLength !== undefined) ...
 * }
 */
import { describe, type Family, IPAddress, Prefix } from "../ip/mod.ts";
import type { ProblemReporter } from "../plugin/api.ts";
import type { NetworkSpec, Subnet } from "./types.ts";

/**
 * The longest prefix that still holds the network address, a gateway and one
 * pod (and the IPv4 broadcast address): /30 for IPv4, /126 for IPv6.
 */
export function longestUsablePrefix(family: Family): number {
  return family === 4 ? 30 : 126;
}

/**
 * Parses a strict CIDR prefix at `path`, reporting what is wrong with it.
 * With `family`, a prefix of the other family is refused.
 *
 * @example
 * checkPrefix("10.40.0.1/16", "ipv4Subnet.prefix", report, 4);
 * // reports: host bits set in "10.40.0.1/16": expected the network address 10.40.0.0/16
 */
export function checkPrefix(value: unknown, path: string, report: ProblemReporter, family?: Family): Prefix | undefined {
  if (value === undefined) {
    report(path, `is required (expected a CIDR prefix such as ${family === 6 ? '"fd00::/64"' : '"10.0.0.0/16"'})`);
    return undefined;
  }
  const parsed = Prefix.tryParse(value);
  if (!parsed.ok) {
    report(path, parsed.error);
    return undefined;
  }
  if (family !== undefined && parsed.value.family !== family) {
    report(path, `expected an IPv${family} prefix, got the IPv${parsed.value.family} prefix ${describe(value)}`);
    return undefined;
  }
  return parsed.value;
}

/** Parses an IP address at `path`, reporting what is wrong with it. */
export function checkAddress(value: unknown, path: string, report: ProblemReporter): IPAddress | undefined {
  const parsed = IPAddress.tryParse(value);
  if (!parsed.ok) {
    report(path, parsed.error);
    return undefined;
  }
  return parsed.value;
}

/** A subnet of a Network spec, with its prefix when that parsed. */
export interface CheckedSubnet {
  field: "ipv4Subnet" | "ipv6Subnet";
  family: Family;
  subnet: Subnet;
  prefix?: Prefix;
  /**
   * The prefix length the subnet claims, even when the prefix was refused
   * for host bits set: range checks on other fields still apply.
   */
  length?: number;
}

/** The length `text` claims when it is `address/length` of `family`, whatever its host bits. */
function claimedLength(text: unknown, family: Family): number | undefined {
  if (typeof text !== "string") return undefined;
  const [addr, len, ...rest] = text.split("/");
  const parsed = IPAddress.tryParse(addr);
  if (rest.length > 0 || !parsed.ok || parsed.value.family !== family || !/^\d{1,3}$/.test(len ?? "")) return undefined;
  const n = Number(len);
  return n <= parsed.value.bits ? n : undefined;
}

/**
 * Checks `ipv4Subnet` / `ipv6Subnet` of a network type that needs at least
 * one subnet: presence and strict prefixes of the right family. Returns the
 * subnets present, for type-specific checks. `kindOfNetwork` names the
 * network in messages: `"an l3 network"`.
 */
export function checkSubnets(spec: NetworkSpec, kindOfNetwork: string, report: ProblemReporter): CheckedSubnet[] {
  const out: CheckedSubnet[] = [];
  for (const [field, family] of [["ipv4Subnet", 4], ["ipv6Subnet", 6]] as const) {
    const subnet = (spec as unknown as Record<string, unknown>)[field];
    if (subnet === undefined) continue;
    if (typeof subnet !== "object" || subnet === null || Array.isArray(subnet)) {
      report(field, `expected an object with prefix, got ${describe(subnet)}`);
      continue;
    }
    const s = subnet as Subnet;
    const prefix = checkPrefix(s.prefix, `${field}.prefix`, report, family);
    out.push({ field, family, subnet: s, prefix, length: prefix?.length ?? claimedLength(s.prefix, family) });
  }
  if (spec.ipv4Subnet === undefined && spec.ipv6Subnet === undefined) {
    report("", `${kindOfNetwork} needs ipv4Subnet, ipv6Subnet or both, got neither`);
  }
  return out;
}

/** Reports fields that only another network type uses; `kindOfNetwork` as in {@link checkSubnets}. */
export function forbidFields(
  spec: NetworkSpec,
  kindOfNetwork: string,
  fields: Partial<Record<keyof NetworkSpec, string>>,
  report: ProblemReporter,
): void {
  const record = spec as unknown as Record<string, unknown>;
  for (const [field, hint] of Object.entries(fields)) {
    if (record[field] !== undefined) report(field, `not allowed on ${kindOfNetwork}: ${hint}`);
  }
}
