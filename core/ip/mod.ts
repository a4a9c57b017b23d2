/**
 * IP math: addresses, prefixes, block carving and longest-prefix match.
 *
 * @example
 * import { IPAddress, Prefix, PrefixTable } from "./mod.ts";
 * Prefix.parse("fd00::/48").block(64, 5n).toString(); // "fd00:0:0:5::/64"
 */
export { describe, type Family, familyBits, IPAddress, maxValue, type Parsed } from "./address.ts";
export { hostMask, Prefix } from "./prefix.ts";
export { type PrefixMatch, PrefixTable } from "./lpm.ts";
