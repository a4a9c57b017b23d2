/**
 * Single-object checks that a structural schema cannot express: strict
 * CIDRs and addresses, ranges that depend on another field, rules between
 * fields. Network specs are checked by their type's plugin instead (see
 * `validate.ts`). Every check tolerates wrongly typed input: the schema
 * walk reports those.
 *
 * @example
 * KIND_CHECKS.Topology?.(topology, report);
 */
import { describe, IPAddress, Prefix } from "../ip/mod.ts";
import type { ProblemReporter } from "../plugin/api.ts";
import { checkAddress, checkPrefix } from "./checks.ts";
import { checkSelector } from "./metadata.ts";
import { joinPath } from "./problem.ts";
import type { Kind } from "./types.ts";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function specOf(r: Obj): Obj | undefined {
  return isObj(r.spec) ? r.spec : undefined;
}

/** Reports a multicast MAC: endpoints and neighbours need a unicast one. */
function checkUnicastMac(mac: unknown, path: string, report: ProblemReporter): void {
  if (typeof mac !== "string" || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) return;
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    report(path, `expected a unicast MAC address (lowest bit of the first octet clear), got the multicast address "${mac}"`);
  }
}

function checkConditions(conditions: unknown, path: string, report: ProblemReporter): void {
  if (!isObj(conditions) || Object.keys(conditions).length === 0) return;
  const roots = ["all", "any", "not", "condition"].filter((k) => conditions[k] !== undefined);
  if (roots.length === 0 && conditions.fact === undefined) {
    report(path, `expected a json-rules-engine condition tree with "all", "any", "not" or a fact test, got ${describe(conditions)}`);
  } else if (roots.length > 1) {
    report(path, `expected exactly one of "all", "any", "not", "condition" at the root, got ${roots.join(", ")}`);
  }
}

function checkPriority(spec: Obj, report: ProblemReporter): void {
  // The schema walk reports non-integers and negatives; NaN/Infinity slip through YAML as numbers.
  const p = spec.priority;
  if (typeof p === "number" && !Number.isFinite(p)) report("spec.priority", `expected a non-negative integer, got ${p}`);
}

const allocation = (r: Obj, report: ProblemReporter): void => {
  const spec = specOf(r);
  if (!spec) return;
  const meta = isObj(r.metadata) ? r.metadata : {};
  if (typeof spec.network === "string" && typeof spec.node === "string" && typeof meta.name === "string") {
    const expected = `${spec.network}.${spec.node}`;
    if (meta.name !== expected) {
      report("metadata.name", `expected "${expected}" (an Allocation is named <network>.<node>), got "${meta.name}"`);
    }
  }
  if (!Array.isArray(spec.blocks)) return;
  const blocks: { prefix: Prefix; index: number }[] = [];
  const seenAddresses = new Map<string, string>();
  spec.blocks.forEach((block: unknown, i: number) => {
    if (!isObj(block)) return;
    const at = `spec.blocks[${i}]`;
    const prefix = block.prefix === undefined ? undefined : checkPrefix(block.prefix, `${at}.prefix`, report);
    // A pending block is a claim the controller is still making (it may lose it and remove it): it holds no
    // addresses, so it may overlap an active block while the claim is settled (core/ipam/block_allocator.ts).
    if (prefix && block.pending !== true) blocks.push({ prefix, index: i });
    if (!isObj(block.addresses)) return;
    for (const [owner, text] of Object.entries(block.addresses)) {
      const path = joinPath(`${at}.addresses`, owner);
      if (typeof text !== "string") continue;
      const addr = checkAddress(text, path, report);
      if (!addr || !prefix) continue;
      if (!prefix.contains(addr)) {
        report(path, `expected an address inside the block ${prefix}, got "${text}"`);
      } else if (addr.equals(prefix.first) || (prefix.family === 4 && addr.equals(prefix.last))) {
        // (Where the gateway is, is the network type's choice: IPAM keeps it; an Allocation alone cannot tell.)
        const what = addr.equals(prefix.first) ? "network address" : "broadcast address";
        report(path, `the ${what} of ${prefix} is never handed out, got "${text}"`);
      } else {
        const other = seenAddresses.get(addr.toString());
        if (other !== undefined) report(path, `address "${text}" is already handed out to owner "${other}"`);
        else seenAddresses.set(addr.toString(), owner);
      }
    }
  });
  // Pairwise only when a sorted sweep finds an overlap: a pool record holds ~1,000 blocks and is written often.
  if (!anyOverlap(blocks.map((b) => b.prefix))) return;
  blocks.forEach(({ prefix, index }, k) => {
    const clash = blocks.slice(0, k).find((b) => b.prefix.overlaps(prefix));
    if (clash) report(`spec.blocks[${index}].prefix`, `overlaps spec.blocks[${clash.index}].prefix "${clash.prefix}", got "${prefix}"`);
  });
};

/** Whether any two prefixes overlap, in O(n log n): sorted by first address, each must start after the previous ones end. */
function anyOverlap(prefixes: Prefix[]): boolean {
  const spans = prefixes
    .map((p) => ({ family: p.family, first: p.network, last: p.last.value }))
    .sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1];
    const cur = spans[i];
    // Prefixes nest or are disjoint, so the previous one's end is the furthest end so far.
    if (cur.family === prev.family && cur.first <= prev.last) return true;
  }
  return false;
}

const networkEndpoint = (r: Obj, report: ProblemReporter): void => {
  const spec = specOf(r);
  if (!spec) return;
  if (Array.isArray(spec.addresses)) {
    const families = new Map<number, number>();
    spec.addresses.forEach((text: unknown, i: number) => {
      if (typeof text !== "string") return;
      const addr = checkAddress(text, `spec.addresses[${i}]`, report);
      if (!addr) return;
      const first = families.get(addr.family);
      if (first !== undefined) {
        report(`spec.addresses[${i}]`, `expected at most one IPv${addr.family} address, got a second one "${text}" after spec.addresses[${first}]`);
      } else families.set(addr.family, i);
    });
  }
  checkUnicastMac(spec.mac, "spec.mac", report);
  checkTime(spec.detachedAt, "spec.detachedAt", report);
};

/** An RFC 3339 date-time (OpenAPI's `date-time`), as the API server checks it. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

const neighbor = (r: Obj, report: ProblemReporter): void => {
  const spec = specOf(r);
  if (!spec) return;
  if (typeof spec.ip === "string") checkAddress(spec.ip, "spec.ip", report);
  checkUnicastMac(spec.mac, "spec.mac", report);
  checkTime(spec.lastSeen, "spec.lastSeen", report);
};

const fdbEntry = (r: Obj, report: ProblemReporter): void => {
  const spec = specOf(r);
  if (!spec) return;
  checkUnicastMac(spec.mac, "spec.mac", report);
  checkTime(spec.lastSeen, "spec.lastSeen", report);
  checkTime(spec.frozenUntil, "spec.frozenUntil", report);
  if (Array.isArray(spec.recentMoves)) spec.recentMoves.forEach((t, i) => checkTime(t, `spec.recentMoves[${i}]`, report));
};

function checkTime(value: unknown, path: string, report: ProblemReporter): void {
  if (typeof value === "string" && !RFC3339.test(value)) report(path, `expected an RFC 3339 time such as 2026-12-06T18:00:00Z, got "${value}"`);
}

const bindingPolicy = (r: Obj, report: ProblemReporter): void => {
  const spec = specOf(r);
  if (!spec) return;
  checkPriority(spec, report);
  checkSelector(spec.namespaceSelector, "spec.namespaceSelector", report);
  checkSelector(spec.selector, "spec.selector", report);
  checkConditions(spec.conditions, "spec.conditions", report);
};

const routingPolicy = (r: Obj, report: ProblemReporter): void => {
  const spec = specOf(r);
  if (!spec) return;
  checkPriority(spec, report);
  for (const side of ["from", "to"] as const) {
    const set = spec[side];
    if (!isObj(set)) continue;
    const hasNetworks = Array.isArray(set.networks) && set.networks.length > 0;
    const hasSelector = set.networkSelector !== undefined;
    const hasPrefixes = side === "to" && Array.isArray(set.prefixes) && set.prefixes.length > 0;
    if (!hasNetworks && !hasSelector && !hasPrefixes) {
      report(
        `spec.${side}`,
        side === "from"
          ? `expected networks or networkSelector naming the source networks, got neither`
          : `expected networks, networkSelector or prefixes naming the destination, got none`,
      );
    }
    if (Array.isArray(set.networks)) {
      const seen = new Set<unknown>();
      set.networks.forEach((n: unknown, i: number) => {
        if (seen.has(n)) report(`spec.${side}.networks[${i}]`, `duplicate network ${describe(n)}`);
        seen.add(n);
      });
    }
    checkSelector(set.networkSelector, `spec.${side}.networkSelector`, report);
    if (side === "to" && Array.isArray(set.prefixes)) {
      set.prefixes.forEach((p: unknown, i: number) => {
        if (typeof p === "string") checkPrefix(p, `spec.to.prefixes[${i}]`, report);
      });
    }
  }
  checkConditions(spec.conditions, "spec.conditions", report);
};

const topology = (r: Obj, report: ProblemReporter): void => {
  const meta = isObj(r.metadata) ? r.metadata : {};
  if (typeof meta.name === "string" && meta.name !== "default") {
    report("metadata.name", `expected "default" (the Topology is a singleton), got "${meta.name}"`);
  }
  const spec = specOf(r);
  if (!spec) return;
  const pool = typeof spec.locatorPool === "string" ? checkPrefix(spec.locatorPool, "spec.locatorPool", report, 6) : undefined;
  const length = spec.locatorLength;
  if (pool && typeof length === "number" && Number.isInteger(length) && length >= 1 && length <= 112 && length <= pool.length) {
    report("spec.locatorLength", `must be longer than the locatorPool's /${pool.length}: expected ${pool.length + 1} to 112, got ${length}`);
  }
  if (typeof spec.mtu === "number" && Number.isInteger(spec.mtu) && spec.mtu > 0 && spec.mtu < 1280) {
    report("spec.mtu", `must be 0 (the underlay MTU minus the encapsulation overhead) or at least 1280, the IPv6 minimum, got ${spec.mtu}`);
  }
};

/** Semantic checks per kind, after (and beside) the schema walk. */
export const KIND_CHECKS: Partial<Record<Kind, (r: Obj, report: ProblemReporter) => void>> = {
  Allocation: allocation,
  NetworkEndpoint: networkEndpoint,
  Neighbor: neighbor,
  FDBEntry: fdbEntry,
  NetworkBindingPolicy: bindingPolicy,
  NetworkRoutingPolicy: routingPolicy,
  Topology: topology,
};

/** Parses an address or returns undefined, for cross-object checks on possibly bad input. */
export function addressOrUndefined(text: unknown): IPAddress | undefined {
  const r = IPAddress.tryParse(text);
  return r.ok ? r.value : undefined;
}
