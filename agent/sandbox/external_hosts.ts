/**
 * Where the sandbox puts each external network's host: one address per
 * family, deterministic, and attributed to that network by longest prefix
 * match over every network's prefixes (so a /25 of another external network
 * inside this one's /24 does not steal the probe).
 *
 * @example
 * externalHostAddresses([corp, lab]);
 * // Map { "corp" => ["192.0.2.1"], "lab" => ["192.0.2.129", "2001:db8:1ab::1"] }
 */
import { IPAddress, type Network, Prefix, PrefixTable } from "../../core/mod.ts";

/**
 * For each external network (in name order), the first host address of its
 * first prefix of each family that longest-prefix-matches to it; a family
 * with no such address is left out (every address of its prefixes belongs
 * to longer prefixes of other networks).
 */
export function externalHostAddresses(networks: Network[], isExternal: (n: Network) => boolean): Map<string, string[]> {
  const table = new PrefixTable<string>();
  const prefixesOf = (n: Network): Prefix[] => {
    const texts = isExternal(n)
      ? n.spec?.externalPrefixes ?? []
      : [n.spec?.ipv4Subnet?.prefix, n.spec?.ipv6Subnet?.prefix].filter((p): p is string => typeof p === "string");
    return texts.flatMap((t) => {
      const p = Prefix.tryParse(t);
      return p.ok ? [p.value] : [];
    });
  };
  // External prefixes last: an identical prefix of an external network wins the probe.
  for (const n of [...networks].sort((a, b) => Number(isExternal(a)) - Number(isExternal(b)))) {
    for (const p of prefixesOf(n)) table.set(p, n.metadata.name);
  }
  const out = new Map<string, string[]>();
  const externals = networks.filter(isExternal).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const n of externals) {
    const addresses: string[] = [];
    for (const family of [4, 6] as const) {
      for (const p of prefixesOf(n).filter((x) => x.family === family)) {
        const a = ownAddress(table, p, n.metadata.name);
        if (a) {
          addresses.push(a.toString());
          break;
        }
      }
    }
    out.set(n.metadata.name, addresses);
  }
  return out;
}

/** The first host address of `p` (then on, skipping longer prefixes of others) that matches `owner`. */
function ownAddress(table: PrefixTable<string>, p: Prefix, owner: string): IPAddress | undefined {
  let at = p.firstHost.value;
  const end = p.last.value;
  while (at <= end) {
    const m = table.lookup(new IPAddress(p.family, at));
    if (!m || m.value === owner) return new IPAddress(p.family, at);
    at = m.prefix.last.value + 1n;
  }
  return undefined;
}
