/**
 * Which network an address or prefix lives in: an `l3`/`l2` network by its
 * subnets, otherwise an `external` network by longest prefix match over
 * every external network's prefixes.
 *
 * @example
 * const where = new NetworkLocator([corp, lab]); // corp 192.0.2.0/24, lab 192.0.2.128/25
 * where.networkFor(IPAddress.parse("192.0.2.200"))?.network; // "lab"
 */
import { IPAddress, Prefix, PrefixTable } from "../ip/mod.ts";
import type { Network } from "../resources/types.ts";

/** A network as routing sees it. */
export interface NetworkInfo {
  name: string;
  type: string;
  anonymous: boolean;
  labels: Record<string, string>;
  /** Subnets (`l3`, `l2`) or external prefixes, parsed; unparsable ones are left out. */
  prefixes: Prefix[];
  /** True for networks defined by external prefixes. */
  external: boolean;
}

/** Where an address or prefix lives. */
export interface NetworkMatch {
  network: string;
  /** The network's prefix that covers it. */
  prefix: Prefix;
}

/** A network's routing view from its resource. */
export function networkInfo(n: Network): NetworkInfo {
  const spec = n.spec ?? ({} as NonNullable<Network["spec"]>);
  // By shape, whatever the type: a network defined by external prefixes (validation keeps subnets and
  // external prefixes apart) is found by longest prefix match, one with subnets by its subnets.
  const external = Array.isArray(spec.externalPrefixes) && !spec.ipv4Subnet && !spec.ipv6Subnet;
  const texts = external ? (Array.isArray(spec.externalPrefixes) ? spec.externalPrefixes : []) : [spec.ipv4Subnet?.prefix, spec.ipv6Subnet?.prefix];
  const prefixes: Prefix[] = [];
  for (const t of texts) {
    const p = Prefix.tryParse(t);
    if (p.ok) prefixes.push(p.value);
  }
  return {
    name: n.metadata.name,
    type: typeof spec.type === "string" ? spec.type : "",
    anonymous: spec.anonymous === true,
    labels: n.metadata.labels ?? {},
    prefixes,
    external,
  };
}

export class NetworkLocator {
  private readonly subnets = new PrefixTable<string>();
  private readonly external = new PrefixTable<string>();

  constructor(networks: Iterable<NetworkInfo>) {
    for (const n of networks) {
      for (const p of n.prefixes) (n.external ? this.external : this.subnets).set(p, n.name);
    }
  }

  /** The network an address lives in. */
  networkFor(address: IPAddress): NetworkMatch | undefined {
    const m = this.subnets.lookup(address) ?? this.external.lookup(address);
    return m && { network: m.value, prefix: m.prefix };
  }

  /** The network whose prefix covers the whole of `prefix`, if one does. */
  networkForPrefix(prefix: Prefix): NetworkMatch | undefined {
    for (const table of [this.subnets, this.external]) {
      const m = table.lookup(prefix.first);
      if (m && m.prefix.covers(prefix)) return { network: m.value, prefix: m.prefix };
      // A longer prefix at the same address may stop short of the whole; look for a shorter cover.
      if (m) {
        for (let len = Math.min(m.prefix.length - 1, prefix.length); len >= 0; len--) {
          const up = Prefix.containing(prefix.first, len);
          const v = table.get(up);
          if (v !== undefined && up.covers(prefix)) return { network: v, prefix: up };
        }
      }
    }
    return undefined;
  }
}

/** Parses prefix text once; prefixes in rules repeat, so parsed values are kept. */
export function cachedPrefix(text: unknown): Prefix | undefined {
  if (typeof text !== "string") return undefined;
  let p = cache.get(text);
  if (p === undefined) {
    const r = Prefix.tryParse(text);
    p = r.ok ? r.value : null;
    if (cache.size >= 65536) cache.clear();
    cache.set(text, p);
  }
  return p ?? undefined;
}
const cache = new Map<string, Prefix | null>();

/** Parses an address (`10.0.0.1`) or a prefix (`10.0.0.0/8`) into a prefix (`/32` for an address). */
export function addressOrPrefix(text: unknown): Prefix | undefined {
  if (typeof text !== "string") return undefined;
  if (text.includes("/")) return cachedPrefix(text);
  const a = IPAddress.tryParse(text);
  return a.ok ? Prefix.containing(a.value, a.value.bits) : undefined;
}
