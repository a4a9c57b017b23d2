/**
 * The srv6 `bpf` backend's own state: the compiled tc programs
 * (`bpf/srv6.c`) attached to the node's underlay device, and the maps they
 * read, pinned in bpffs under one directory per node. `sync` makes the maps
 * hold exactly a plan's entries and writes only the difference, so a second
 * sync, or a restarted agent's first, writes nothing; `attach` replaces a
 * program only when the attached one is not the same code (by tag).
 *
 * The layouts here are those of `bpf/maps.h`.
 *
 * @example
 * const bpf = BpfDatapath.open("/sys/fs/bpf", "node-1");
 * inNetns(ns, () => bpf.attach(underlayIndex));
 * const writes = bpf.sync(plan.bpf!); // 0 when the maps already match
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  attachedProgram, BpfObject, RingBuffer, detachProgram, ensureBpffs, mapDeleteMany, mapEntries, mapLookup, mapUpdate, mapUpdateMany, programTag,
  programTagById, type TcDirection,
} from "./libbpf.ts";
import type { BpfPlan } from "./plan.ts";
import { ipBytes, ipText } from "./wire.ts";

export const MAPS = [
  "lace_encap4", "lace_encap6", "lace_sids", "lace_config", "lace_stats",
  "lace_l2_ports", "lace_l2_nets", "lace_l2_fdb", "lace_l2_nbrs", "lace_l2_members", "lace_l2_learn", "lace_l2_seen",
] as const;

/** Key and value sizes (bytes) of each map: `bpf/maps.h`. */
export const LAYOUT = {
  lace_encap4: { key: 12, value: 20 },
  lace_encap6: { key: 24, value: 20 },
  lace_sids: { key: 16, value: 8 },
  lace_config: { key: 4, value: 24 },
  lace_l2_ports: { key: 4, value: 4 },
  lace_l2_nets: { key: 4, value: 20 },
  lace_l2_fdb: { key: 12, value: 20 },
  lace_l2_nbrs: { key: 24, value: 8 },
  lace_l2_members: { key: 8, value: 16 },
} as const;

/** `enum lace_stat` in bpf/maps.h, in order. */
export const STATS = [
  "encap4", "encap6", "decap4", "decap6", "drop_srh", "drop_family", "drop_adjust", "drop_store", "drop_no_config",
  "l2_fast4", "l2_fast6", "l2_unicast", "l2_flood", "l2_rx_frame", "l2_rx_fast", "l2_drop_gso", "l2_drop_neigh",
  "l2_drop_gateway", "l2_drop_no_mac", "l2_drop_port", "l2_rx_routed", "l2_learn", "l2_learn_lost",
] as const;
export type BpfStats = Record<(typeof STATS)[number], number>;

const ENCAP_F_SRH = 1;
const CONFIG_F_READY = 1;

/** The programs and where each sits on the underlay. */
const PROGRAMS: [string, TcDirection][] = [["lace_encap", "egress"], ["lace_decap", "ingress"]];
/** The program on the egress of each l2 network's tunnel port, and on the ingress of each l2 pod's port (bpf/l2.h). */
const L2_TX = "lace_l2_tx";
const L2_PORT = "lace_l2_port";
const L2_F_SRH = 1;

/** The compiled object: dist/bpf/srv6.o beside the bundle, or built from the sources (`npm run build:bpf`). */
export function objectPath(): string {
  const candidates = [
    new URL("./bpf/srv6.o", import.meta.url), // dist/plugins/ or dist/ when bundled
    new URL("../bpf/srv6.o", import.meta.url),
    new URL("../../dist/bpf/srv6.o", import.meta.url), // the sources
  ].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p)) ?? candidates[candidates.length - 1];
}

// A view of the bytes, not a copy: a sync turns tens of thousands of keys and values into text.
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

function prefixParts(prefix: string): [Uint8Array, number] {
  const i = prefix.lastIndexOf("/");
  return [ipBytes(prefix.slice(0, i)), Number(prefix.slice(i + 1))];
}

/** `struct encap_key4/6`: prefixlen (host order) = 32 + length, the network id (big endian), the address. */
export function encapKey(net: number, prefix: string): Uint8Array {
  const [addr, len] = prefixParts(prefix);
  const key = new Uint8Array(8 + addr.length);
  const v = new DataView(key.buffer);
  v.setUint32(0, 32 + len, true);
  v.setUint32(4, net, false);
  key.set(addr, 8);
  return key;
}

/** `struct encap_val`: the SID and flags. */
export function encapValue(sid: string, srh: boolean): Uint8Array {
  const val = new Uint8Array(20);
  val.set(ipBytes(sid), 0);
  new DataView(val.buffer).setUint32(16, srh ? ENCAP_F_SRH : 0, true);
  return val;
}

/** `struct sid_val`: the network's mark and the inner family (2: an l2 SID). */
export function sidValue(mark: number, family: 4 | 6 | 2): Uint8Array {
  const val = new Uint8Array(8);
  const v = new DataView(val.buffer);
  v.setUint32(0, mark, true);
  v.setUint32(4, family, true);
  return val;
}

function configValue(source: string, underlay: number): Uint8Array {
  const val = new Uint8Array(24);
  val.set(ipBytes(source), 0);
  new DataView(val.buffer).setUint32(16, CONFIG_F_READY, true);
  new DataView(val.buffer).setUint32(20, underlay, true);
  return val;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(":").map((x) => parseInt(x, 16)));
}

/** `struct l2_net_val`: tunnel port ifindex, member count, flags, gateway MAC. */
export function l2NetValue(port: number, members: number, srh: boolean, gatewayMac: string): Uint8Array {
  const val = new Uint8Array(20);
  const v = new DataView(val.buffer);
  v.setUint32(0, port, true);
  v.setUint32(4, members, true);
  v.setUint32(8, srh ? L2_F_SRH : 0, true);
  val.set(macBytes(gatewayMac), 12);
  return val;
}

/** `struct l2_mac_key`: network id (host order), MAC, padding. */
export function l2MacKey(net: number, mac: string): Uint8Array {
  const key = new Uint8Array(12);
  new DataView(key.buffer).setUint32(0, net, true);
  key.set(macBytes(mac), 4);
  return key;
}

/** `struct l2_fdb_val`: a remote SID, or (port ≠ 0) the local port's ifindex. */
export function l2FdbValue(sid: string | undefined, port: number): Uint8Array {
  const val = new Uint8Array(20);
  if (sid) val.set(ipBytes(sid), 0);
  new DataView(val.buffer).setUint32(16, port, true);
  return val;
}

/** `struct l2_nbr_key`: network id, family, the address (IPv4 in the first four bytes). */
export function l2NeighborKey(net: number, ip: string): Uint8Array {
  const key = new Uint8Array(24);
  const v = new DataView(key.buffer);
  const addr = ipBytes(ip);
  v.setUint32(0, net, true);
  v.setUint32(4, addr.length === 4 ? 4 : 6, true);
  key.set(addr, 8);
  return key;
}

/** `struct l2_member_key`: network id, index. */
export function l2MemberKey(net: number, index: number): Uint8Array {
  const key = new Uint8Array(8);
  const v = new DataView(key.buffer);
  v.setUint32(0, net, true);
  v.setUint32(4, index, true);
  return key;
}

function possibleCpus(): number {
  try {
    const text = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
    return Math.max(...text.split(",").map((r) => Number(r.split("-").pop()))) + 1;
  } catch {
    return 1;
  }
}

/** What the datapath saw on a local port that the maps do not know (bpf/maps.h `struct l2_learn_event`). */
export interface L2Sighting {
  /** The network's id. */
  net: number;
  /** The port (ifindex) the frame came in by. */
  ifindex: number;
  mac: string;
  /** The source address the frame announced (IPv4/IPv6 source, ARP sender), if any. */
  ip?: string;
}

/** Decodes one `struct l2_learn_event` (32 bytes). */
export function decodeSighting(b: Uint8Array): L2Sighting {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = b[14];
  const mac = [...b.subarray(8, 14)].map((x) => x.toString(16).padStart(2, "0")).join(":");
  const ip = family === 4 ? ipText(b.subarray(16, 20)) : family === 6 ? ipText(b.subarray(16, 32)) : undefined;
  return { net: v.getUint32(0, true), ifindex: v.getUint32(4, true), mac, ...(ip ? { ip } : {}) };
}

export class BpfDatapath {
  private readonly fds: Record<(typeof MAPS)[number], number>;
  private ring?: RingBuffer;
  private pending: L2Sighting[] = [];
  private readonly tags = new Map<string, string>();
  /**
   * What each synced map holds, as of our last sync (hex key → hex value):
   * a sync diffs against this instead of reading 10,000 trie elements back
   * with two FFI calls each. Read from the kernel on the first sync of a
   * process and again every `verifyEveryMs`, so an element changed behind
   * our back is repaired then.
   */
  private readonly shadow = new Map<string, Map<string, string>>();
  private lastVerified = -Infinity;
  /** How often a sync reads the maps back instead of trusting the shadow. */
  verifyEveryMs = 60_000;

  /** Someone may change the maps behind our back (a test, an operator with bpftool): the next sync reads them back. */
  distrust(): void {
    this.lastVerified = -Infinity;
  }

  private constructor(private readonly obj: BpfObject, readonly pinDir: string) {
    this.fds = Object.fromEntries(MAPS.map((m) => [m, obj.mapFd(m)])) as BpfDatapath["fds"];
    for (const [p] of [...PROGRAMS, [L2_TX], [L2_PORT]]) this.tags.set(p, programTag(obj.programFd(p)));
  }

  /**
   * Loads the programs, reusing the maps pinned for `node` under the bpffs
   * at `bpffs` (mounted there first when it is not one).
   */
  static open(bpffs: string, node: string): BpfDatapath {
    ensureBpffs(bpffs);
    const pinDir = `${bpffs}/lace-cni/${node}`;
    return new BpfDatapath(BpfObject.load(objectPath(), pinDir, MAPS), pinDir);
  }

  /**
   * Attaches the programs to the underlay (inside its namespace); a program
   * of ours with the same tag already there is kept. Returns the writes made.
   */
  attach(ifindex: number): number {
    let writes = 0;
    for (const [prog, dir] of PROGRAMS) {
      const id = attachedProgram(ifindex, dir);
      if (id !== undefined && programTagById(id) === this.tags.get(prog)) continue;
      this.obj.attach(prog, ifindex, dir);
      writes++;
    }
    return writes;
  }

  /** Removes our programs from a device (an underlay no longer used, or teardown). */
  detach(ifindex: number): void {
    for (const [, dir] of PROGRAMS) detachProgram(ifindex, dir);
  }

  /**
   * Attaches an l2 program (inside the device's namespace): the sending one
   * to the egress of a network's tunnel port (`tunnel`), the learning one
   * to the ingress of an l2 pod's port (`pod`); kept when the same code is
   * there. Returns the writes made.
   */
  attachPort(ifindex: number, kind: "tunnel" | "pod"): number {
    const [program, dir] = kind === "tunnel" ? [L2_TX, "egress" as const] : [L2_PORT, "ingress" as const];
    const id = attachedProgram(ifindex, dir);
    if (id !== undefined && programTagById(id) === this.tags.get(program)) return 0;
    this.obj.attach(program, ifindex, dir);
    return 1;
  }

  /**
   * Makes the maps hold exactly `plan`'s entries; counts the elements added,
   * changed and removed. `ifindex` resolves the underlay and l2 port names:
   * an l2 network whose tunnel port is missing is left out, and a local MAC
   * whose pod port is missing is delivered through the bridge.
   */
  sync(plan: BpfPlan, ifindex: (name: string) => number | undefined = () => undefined, underlay = ""): { added: number; changed: number; removed: number } {
    if (!plan.source) throw new Error("Cannot program the bpf datapath: the underlay has no IPv6 address to use as the outer source of SRv6 packets");
    let added = 0, changed = 0, removed = 0;
    const want4 = new Map<string, [Uint8Array, Uint8Array]>();
    const want6 = new Map<string, [Uint8Array, Uint8Array]>();
    for (const e of plan.encap.values()) {
      const k = encapKey(e.net, e.prefix);
      (k.length === 12 ? want4 : want6).set(hex(k), [k, encapValue(e.sid, e.srh)]);
    }
    const wantSids = new Map<string, [Uint8Array, Uint8Array]>();
    for (const [sid, v] of plan.sids) {
      const k = ipBytes(sid);
      wantSids.set(hex(k), [k, sidValue(v.mark, v.family)]);
    }
    // Config and decapsulation before encapsulation; deletions last.
    const cfgKey = new Uint8Array(4);
    const cfg = configValue(plan.source, ifindex(underlay) ?? 0);
    const have = new Uint8Array(24);
    if (!mapLookup(this.fds.lace_config, cfgKey, have) || hex(have) !== hex(cfg)) {
      mapUpdate(this.fds.lace_config, cfgKey, cfg, "write the bpf datapath's config");
      changed++;
    }
    const stale: [number, Uint8Array[], string][] = [];
    const verify = performance.now() - this.lastVerified >= this.verifyEveryMs;
    if (verify) {
      this.shadow.clear();
      this.lastVerified = performance.now();
    }
    const l2 = l2Elements(plan, ifindex);
    for (const [map, want] of [
      ["lace_l2_members", l2.members], ["lace_l2_fdb", l2.fdb], ["lace_l2_nbrs", l2.neighbors], ["lace_l2_nets", l2.nets], ["lace_l2_ports", l2.ports],
      ["lace_sids", wantSids], ["lace_encap4", want4], ["lace_encap6", want6],
    ] as const) {
      const fd = this.fds[map];
      const { key, value } = LAYOUT[map];
      let current = this.shadow.get(map);
      if (!current) {
        current = new Map(mapEntries(fd, key, value).map(([k, v]) => [hex(k), hex(v)]));
        this.shadow.set(map, current);
      }
      const writes: [string, string, [Uint8Array, Uint8Array]][] = [];
      for (const [k, pair] of want) {
        const v = hex(pair[1]);
        if (current.get(k) !== v) writes.push([k, v, pair]);
      }
      if (writes.length) {
        // Should the write fail half-way, the shadow no longer says what the map holds: read it next time.
        this.shadow.delete(map);
        mapUpdateMany(fd, concat(writes.map((w) => w[2][0])), concat(writes.map((w) => w[2][1])), writes.length, `write ${writes.length} element(s) of ${map}`);
        for (const [k, v] of writes) {
          if (current.has(k)) changed++; else added++;
          current.set(k, v);
        }
        this.shadow.set(map, current);
      }
      const gone = [...current.keys()].filter((k) => !want.has(k));
      if (gone.length) stale.push([fd, gone.map((k) => Uint8Array.from(Buffer.from(k, "hex"))), map]);
    }
    for (const [fd, keys, map] of stale) {
      const current = this.shadow.get(map);
      this.shadow.delete(map);
      mapDeleteMany(fd, concat(keys), keys.length, `delete ${keys.length} element(s) of ${map}`);
      for (const k of keys) current?.delete(hex(k));
      if (current) this.shadow.set(map, current);
      removed += keys.length;
    }
    return { added, changed, removed };
  }

  /** The datapath's counters, summed over CPUs. */
  stats(): BpfStats {
    const cpus = possibleCpus();
    const out = {} as BpfStats;
    const value = new Uint8Array(8 * cpus);
    STATS.forEach((name, i) => {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, i, true);
      let sum = 0;
      if (mapLookup(this.fds.lace_stats, key, value)) {
        const v = new DataView(value.buffer);
        for (let c = 0; c < cpus; c++) sum += Number(v.getBigUint64(c * 8, true));
      }
      out[name] = sum;
    });
    return out;
  }

  /**
   * What the l2 datapath reported since the last call (unknown source MACs
   * and addresses on local ports; bpf/l2.h `l2_learn`), oldest first.
   */
  sightings(): L2Sighting[] {
    this.ring ??= RingBuffer.open(this.fds.lace_l2_learn, (r) => this.pending.push(decodeSighting(r)));
    this.ring.consume();
    const out = this.pending;
    this.pending = [];
    return out;
  }

  /** The file descriptor of one of the maps (valid until close). */
  mapFd(name: (typeof MAPS)[number]): number {
    return this.fds[name];
  }

  close(): void {
    this.ring?.close();
    this.ring = undefined;
    this.obj.close();
  }

  /** Closes and removes the pinned maps (teardown; programs must be detached first). */
  destroy(): void {
    this.close();
    rmSync(this.pinDir, { recursive: true, force: true });
  }
}

/**
 * Removes programs of ours from a device without loading the object (the
 * kernel backend's clean-up after a node ran the bpf backend); returns how
 * many it removed. Run inside the device's namespace.
 */
export function detachLeftovers(ifindex: number): number {
  let n = 0;
  for (const [, dir] of PROGRAMS) {
    if (attachedProgram(ifindex, dir) === undefined) continue;
    detachProgram(ifindex, dir);
    n++;
  }
  return n;
}

type Elements = Map<string, [Uint8Array, Uint8Array]>;

/** The l2 maps' elements for a plan, keyed by hex key (members first: a network's count never names a missing one). */
/** `struct l2_nbr_val` flags (bpf/maps.h): a learned Neighbor. */
const L2_NBR_LEARNED = 1;

function l2Elements(plan: BpfPlan, ifindex: (name: string) => number | undefined): Record<"members" | "fdb" | "neighbors" | "nets" | "ports", Elements> {
  const out = { members: new Map(), fdb: new Map(), neighbors: new Map(), nets: new Map(), ports: new Map() } as Record<"members" | "fdb" | "neighbors" | "nets" | "ports", Elements>;
  const put = (m: Elements, k: Uint8Array, v: Uint8Array) => m.set(hex(k), [k, v]);
  const live = new Set<number>();
  for (const [net, n] of plan.l2?.nets ?? []) {
    const port = ifindex(n.port);
    if (port === undefined) continue;
    live.add(net);
    n.members.forEach((sid, i) => put(out.members, l2MemberKey(net, i), ipBytes(sid)));
    put(out.nets, u32(net), l2NetValue(port, n.members.length, n.srh, n.gatewayMac));
    put(out.ports, u32(port), u32(net));
  }
  for (const [name, net] of plan.l2?.podPorts ?? []) {
    const port = ifindex(name);
    if (port !== undefined && live.has(net)) put(out.ports, u32(port), u32(net));
  }
  for (const e of plan.l2?.fdb.values() ?? []) {
    if (!live.has(e.net)) continue;
    const port = e.port === undefined ? undefined : ifindex(e.port);
    if (!e.sid && port === undefined) continue;
    put(out.fdb, l2MacKey(e.net, e.mac), l2FdbValue(e.sid, port ?? 0));
  }
  for (const e of plan.l2?.neighbors.values() ?? []) {
    if (live.has(e.net)) put(out.neighbors, l2NeighborKey(e.net, e.ip), Uint8Array.from([...macBytes(e.mac), e.learned ? L2_NBR_LEARNED : 0, 0]));
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
