/**
 * Checks across objects: duplicate names, overlapping subnets of networks
 * with addresses, external prefixes claimed twice, and references whose
 * target (when it is in the same set) contradicts them. A reference to an
 * object outside the set is not a problem: it may already be in the cluster.
 *
 * @example
 * crossObjectProblems([backend, other], ctx);
 * // [{ index: 1, problem: { object: "Network/other", path: "spec.ipv4Subnet.prefix", message: "10.40.0.0/17 overlaps ..." } }]
 */
import { type Family, IPAddress, Prefix } from "../ip/mod.ts";
import type { NetworkTypeDefinition } from "../plugin/api.ts";
import type { Problem } from "./problem.ts";
import { CLUSTER_SCOPED, refOf } from "./types.ts";
import type { ValidationContext } from "./context.ts";

type Obj = Record<string, unknown>;

/** A cross-object problem and the index of the object it belongs to. */
export interface IndexedProblem {
  index: number;
  problem: Problem;
}

interface NetworkInfo {
  index: number;
  name: string;
  def?: NetworkTypeDefinition;
  subnets: { field: string; family: Family; prefix: Prefix; blockLength?: number }[];
  external: { path: string; prefix: Prefix }[];
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function prefixOf(text: unknown): Prefix | undefined {
  const r = Prefix.tryParse(text);
  return r.ok ? r.value : undefined;
}

function addressOf(text: unknown): IPAddress | undefined {
  const r = IPAddress.tryParse(text);
  return r.ok ? r.value : undefined;
}

function networkInfo(obj: Obj, index: number, ctx: ValidationContext): NetworkInfo | undefined {
  const name = isObj(obj.metadata) ? obj.metadata.name : undefined;
  if (typeof name !== "string" || !isObj(obj.spec)) return undefined;
  const spec = obj.spec;
  const info: NetworkInfo = {
    index,
    name,
    def: typeof spec.type === "string" ? ctx.networkTypes.get(spec.type) : undefined,
    subnets: [],
    external: [],
  };
  for (const [field, family] of [["ipv4Subnet", 4], ["ipv6Subnet", 6]] as const) {
    const s = spec[field];
    if (!isObj(s)) continue;
    const prefix = prefixOf(s.prefix);
    if (prefix?.family !== family) continue;
    const len = s.hostLocalPrefixLength;
    info.subnets.push({ field, family, prefix, blockLength: typeof len === "number" ? len : undefined });
  }
  if (Array.isArray(spec.externalPrefixes)) {
    spec.externalPrefixes.forEach((t: unknown, i: number) => {
      const prefix = prefixOf(t);
      if (prefix) info.external.push({ path: `spec.externalPrefixes[${i}]`, prefix });
    });
  }
  return info;
}

/** Every cross-object problem, each tied to the object (by index) it is reported on. */
export function crossObjectProblems(objs: unknown[], ctx: ValidationContext): IndexedProblem[] {
  const out: IndexedProblem[] = [];
  const add = (index: number, path: string, message: string) =>
    out.push({ index, problem: { object: refOf(objs[index] as never), path, message } });

  // Duplicate names per kind and namespace.
  const byKey = new Map<string, number>();
  objs.forEach((o, i) => {
    if (!isObj(o) || typeof o.kind !== "string" || !isObj(o.metadata) || typeof o.metadata.name !== "string") return;
    const ns = CLUSTER_SCOPED.has(o.kind) || o.kind === "Namespace" || o.kind === "Node"
      ? ""
      : typeof o.metadata.namespace === "string" ? o.metadata.namespace : "default";
    const key = `${o.kind}/${ns}/${o.metadata.name}`;
    const first = byKey.get(key);
    if (first === undefined) byKey.set(key, i);
    else {
      add(i, "metadata.name", `duplicate ${o.kind} name "${o.metadata.name}"${ns ? ` in namespace "${ns}"` : ""}: already defined by object ${first + 1} of ${objs.length}`);
    }
  });

  // Networks, first definition of each name only.
  const networks = new Map<string, NetworkInfo>();
  objs.forEach((o, i) => {
    if (!isObj(o) || o.kind !== "Network") return;
    const info = networkInfo(o, i, ctx);
    if (info && !networks.has(info.name)) networks.set(info.name, info);
  });
  const list = [...networks.values()];

  // Subnets of networks that hand out addresses may not overlap.
  for (let j = 0; j < list.length; j++) {
    const b = list[j];
    if (!b.def || b.def.addressing === "none") continue;
    for (let i = 0; i < j; i++) {
      const a = list[i];
      if (!a.def || a.def.addressing === "none") continue;
      for (const sb of b.subnets) {
        for (const sa of a.subnets) {
          if (!sa.prefix.overlaps(sb.prefix)) continue;
          add(b.index, `spec.${sb.field}.prefix`,
            `${sb.prefix} overlaps ${sa.prefix} of Network "${a.name}": networks "${a.name}" and "${b.name}" cannot share addresses`);
        }
      }
    }
  }

  // One external prefix in two networks leaves longest prefix match without an answer.
  const externalOwner = new Map<string, string>();
  for (const n of list) {
    if (n.def?.addressing !== "none") continue;
    for (const e of n.external) {
      const owner = externalOwner.get(e.prefix.toString());
      if (owner !== undefined && owner !== n.name) {
        add(n.index, e.path,
          `${e.prefix} is also a prefix of Network "${owner}": longest prefix match cannot choose between "${owner}" and "${n.name}"`);
      } else externalOwner.set(e.prefix.toString(), n.name);
    }
  }

  // References to networks in the same set.
  const heldBlocks = new Map<string, { prefix: Prefix; holder: string }[]>();
  const usedAddresses = new Map<string, string>();
  objs.forEach((o, i) => {
    if (!isObj(o) || !isObj(o.spec) || typeof o.spec.network !== "string") return;
    const spec = o.spec;
    const net = networks.get(spec.network as string);
    if (!net?.def) return;
    const netName = net.name;
    const typeName = net.def.type;
    const self = refOf(o as never);
    const subnetFor = (family: Family) => net.subnets.find((s) => s.family === family);
    switch (o.kind) {
      case "Allocation": {
        if (net.def.addressing !== "host-local") {
          add(i, "spec.network", `Network "${netName}" is of type "${typeName}", which has no per-node blocks: expected a host-local network such as an l3 one`);
          return;
        }
        if (!Array.isArray(spec.blocks)) return;
        const held = heldBlocks.get(netName) ?? [];
        heldBlocks.set(netName, held);
        spec.blocks.forEach((block: unknown, b: number) => {
          const prefix = isObj(block) ? prefixOf(block.prefix) : undefined;
          if (!prefix) return;
          const path = `spec.blocks[${b}].prefix`;
          const subnet = subnetFor(prefix.family);
          if (!subnet) {
            add(i, path, `Network "${netName}" has no IPv${prefix.family} subnet, got the block "${prefix}"`);
          } else if (!subnet.prefix.covers(prefix) || (subnet.blockLength !== undefined && prefix.length !== subnet.blockLength)) {
            add(i, path, `expected a /${subnet.blockLength ?? "?"} block inside ${subnet.prefix} of Network "${netName}", got "${prefix}"`);
          } else {
            const clash = held.find((h) => h.prefix.overlaps(prefix) && h.holder !== self);
            if (clash) add(i, path, `${prefix} overlaps ${clash.prefix}, already held by ${clash.holder}`);
            held.push({ prefix, holder: self });
          }
        });
        return;
      }
      case "NetworkEndpoint": {
        if (net.def.addressing === "none") {
          add(i, "spec.network", `Network "${netName}" is of type "${typeName}", which has no endpoints of its own`);
          return;
        }
        if (!Array.isArray(spec.addresses)) return;
        spec.addresses.forEach((text: unknown, a: number) => {
          const addr = addressOf(text);
          if (!addr) return;
          const path = `spec.addresses[${a}]`;
          const subnet = subnetFor(addr.family);
          if (!subnet) add(i, path, `Network "${netName}" has no IPv${addr.family} subnet, got "${text}"`);
          else if (!subnet.prefix.contains(addr)) {
            add(i, path, `expected an address inside ${subnet.prefix} of Network "${netName}", got "${text}"`);
          } else {
            const key = `${netName}/${addr}`;
            const other = usedAddresses.get(key);
            if (other !== undefined) add(i, path, `address ${addr} of Network "${netName}" is already used by ${other}`);
            else usedAddresses.set(key, self);
          }
        });
        return;
      }
      case "Neighbor":
      case "FDBEntry": {
        if (net.def.forwarding !== "bridged") {
          add(i, "spec.network", `Network "${netName}" is of type "${typeName}", which is not bridged: ${o.kind} resources are for l2 networks`);
          return;
        }
        if (o.kind === "Neighbor") {
          const addr = addressOf(spec.ip);
          const subnet = addr && subnetFor(addr.family);
          if (addr && (!subnet || !subnet.prefix.contains(addr))) {
            add(i, "spec.ip", `expected an address inside ${subnet ? subnet.prefix : `an IPv${addr.family} subnet`} of Network "${netName}", got "${spec.ip}"`);
          }
        }
        return;
      }
      case "NetworkBindingPolicy": {
        if (net.def.addressing === "none") {
          add(i, "spec.network", `Network "${netName}" is of type "${typeName}", which has no addresses to give: expected a network pods and services can bind to`);
        }
        return;
      }
    }
  });
  return out;
}
