/**
 * Test support for IPAM suites: a controllable clock, Network fixtures and
 * the invariant checks every suite runs against the store.
 *
 * @example
 * const store = new MemoryStore();
 * await store.create(l3Network("backend", "10.0.0.0/29", 30));
 * await assertStoreConsistent(store);
 */
import { IPAddress, Prefix } from "../ip/mod.ts";
import type { Clock } from "../plugin/tokens.ts";
import { type Allocation, API_VERSION, type Network } from "../resources/types.ts";
import type { Store } from "../store/store.ts";
import { blockCapacity } from "./address_block.ts";
import { isPoolRecord, L2_POOL_NODE } from "./layout.ts";

/** A clock that moves only when told. */
export class ManualClock implements Clock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

export function l3Network(name: string, v4?: string, v4len?: number, v6?: string, v6len?: number): Network {
  return {
    apiVersion: API_VERSION,
    kind: "Network",
    metadata: { name },
    spec: {
      type: "l3",
      ...(v4 ? { ipv4Subnet: { prefix: v4, hostLocalPrefixLength: v4len } } : {}),
      ...(v6 ? { ipv6Subnet: { prefix: v6, hostLocalPrefixLength: v6len } } : {}),
    },
  };
}

export function l2Network(name: string, v4?: string, v6?: string): Network {
  return {
    apiVersion: API_VERSION,
    kind: "Network",
    metadata: { name },
    spec: { type: "l2", ...(v4 ? { ipv4Subnet: { prefix: v4 } } : {}), ...(v6 ? { ipv6Subnet: { prefix: v6 } } : {}) },
  };
}

/**
 * Checks what must hold whatever happened: active blocks of different nodes
 * never overlap and each has its pool claim under the same id; no address
 * is recorded twice; every address lies in its block and is neither the
 * network address, the gateway nor an IPv4 broadcast. Returns every
 * recorded address (text → owner). Throws an Error describing the first
 * violation.
 */
export async function checkStoreConsistent(store: Store): Promise<Map<string, string>> {
  const items = (await store.list<Allocation>("Allocation")).items;
  const claims = new Map<string, string>(); // `${network} ${prefix}` → `${node} ${claim}`
  for (const a of items) {
    if (!isPoolRecord(a) || a.spec!.node === L2_POOL_NODE) continue;
    for (const b of a.spec!.blocks) {
      const key = `${a.spec!.network} ${b.prefix}`;
      if (claims.has(key)) throw new Error(`Block ${key} claimed twice in the pool`);
      claims.set(key, `${b.node} ${b.claim}`);
    }
  }
  const active: { network: string; node: string; prefix: Prefix }[] = [];
  const addresses = new Map<string, string>();
  for (const a of items) {
    const spec = a.spec!;
    const nodeRecord = !isPoolRecord(a);
    for (const b of spec.blocks) {
      if (b.pending) continue;
      const prefix = Prefix.parse(b.prefix);
      if (nodeRecord) {
        const claim = claims.get(`${spec.network} ${b.prefix}`);
        if (claim !== `${spec.node} ${b.claim}`) {
          throw new Error(`Active block ${b.prefix} of ${a.metadata.name} has claim ${b.claim}, the pool says ${claim}`);
        }
        for (const o of active) {
          if (o.network === spec.network && o.prefix.overlaps(prefix)) {
            throw new Error(`Blocks overlap: ${o.prefix} of node ${o.node} and ${prefix} of node ${spec.node}`);
          }
        }
        active.push({ network: spec.network, node: spec.node, prefix });
      }
      let n = 0;
      for (const [owner, text] of Object.entries(b.addresses ?? {})) {
        n++;
        const ip = IPAddress.parse(text);
        if (!prefix.contains(ip)) throw new Error(`${text} of ${owner} is outside its block ${prefix}`);
        const off = ip.value - prefix.network;
        if (off === 0n || off === 1n || (ip.family === 4 && ip.value === prefix.last.value)) {
          throw new Error(`${text} of ${owner} is a reserved address of ${prefix}`);
        }
        const key = `${spec.network} ${text}`;
        if (addresses.has(key)) throw new Error(`Duplicate address ${key}: owners ${addresses.get(key)} and ${owner}`);
        addresses.set(key, owner);
      }
      if (BigInt(n) > blockCapacity(prefix)) throw new Error(`Block ${prefix} holds ${n} addresses`);
    }
  }
  return addresses;
}
