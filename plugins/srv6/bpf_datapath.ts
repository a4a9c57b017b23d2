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
  attachedProgram, BpfObject, detachProgram, ensureBpffs, mapDeleteMany, mapEntries, mapLookup, mapUpdate, mapUpdateMany, programTag,
  programTagById, type TcDirection,
} from "./libbpf.ts";
import type { BpfPlan } from "./plan.ts";
import { ipBytes } from "./wire.ts";

export const MAPS = ["lace_encap4", "lace_encap6", "lace_sids", "lace_config", "lace_stats"] as const;

/** Key and value sizes (bytes) of each map: `bpf/maps.h`. */
export const LAYOUT = {
  lace_encap4: { key: 12, value: 20 },
  lace_encap6: { key: 24, value: 20 },
  lace_sids: { key: 16, value: 8 },
  lace_config: { key: 4, value: 20 },
} as const;

/** `enum lace_stat` in bpf/maps.h, in order. */
export const STATS = [
  "encap4", "encap6", "decap4", "decap6", "drop_srh", "drop_family", "drop_adjust", "drop_store", "drop_no_config",
] as const;
export type BpfStats = Record<(typeof STATS)[number], number>;

const ENCAP_F_SRH = 1;
const CONFIG_F_READY = 1;

/** The programs and where each sits on the underlay. */
const PROGRAMS: [string, TcDirection][] = [["lace_encap", "egress"], ["lace_decap", "ingress"]];

/** The compiled object: dist/bpf/srv6.o beside the bundle, or built from the sources (`npm run build:bpf`). */
export function objectPath(): string {
  const candidates = [
    new URL("./bpf/srv6.o", import.meta.url), // dist/plugins/ or dist/ when bundled
    new URL("../bpf/srv6.o", import.meta.url),
    new URL("../../dist/bpf/srv6.o", import.meta.url), // the sources
  ].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p)) ?? candidates[candidates.length - 1];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

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

/** `struct sid_val`: the network's mark and the inner family. */
export function sidValue(mark: number, family: 4 | 6): Uint8Array {
  const val = new Uint8Array(8);
  const v = new DataView(val.buffer);
  v.setUint32(0, mark, true);
  v.setUint32(4, family, true);
  return val;
}

function configValue(source: string): Uint8Array {
  const val = new Uint8Array(20);
  val.set(ipBytes(source), 0);
  new DataView(val.buffer).setUint32(16, CONFIG_F_READY, true);
  return val;
}

function possibleCpus(): number {
  try {
    const text = readFileSync("/sys/devices/system/cpu/possible", "utf8").trim();
    return Math.max(...text.split(",").map((r) => Number(r.split("-").pop()))) + 1;
  } catch {
    return 1;
  }
}

export class BpfDatapath {
  private readonly fds: Record<(typeof MAPS)[number], number>;
  private readonly tags = new Map<string, string>();

  private constructor(private readonly obj: BpfObject, readonly pinDir: string) {
    this.fds = Object.fromEntries(MAPS.map((m) => [m, obj.mapFd(m)])) as BpfDatapath["fds"];
    for (const [p] of PROGRAMS) this.tags.set(p, programTag(obj.programFd(p)));
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

  /** Makes the maps hold exactly `plan`'s entries; counts the elements added, changed and removed. */
  sync(plan: BpfPlan): { added: number; changed: number; removed: number } {
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
    const cfg = configValue(plan.source);
    const have = new Uint8Array(20);
    if (!mapLookup(this.fds.lace_config, cfgKey, have) || hex(have) !== hex(cfg)) {
      mapUpdate(this.fds.lace_config, cfgKey, cfg, "write the bpf datapath's config");
      changed++;
    }
    const stale: [number, Uint8Array[], string][] = [];
    for (const [map, want] of [["lace_sids", wantSids], ["lace_encap4", want4], ["lace_encap6", want6]] as const) {
      const fd = this.fds[map];
      const { key, value } = LAYOUT[map];
      const current = new Map(mapEntries(fd, key, value).map(([k, v]) => [hex(k), hex(v)]));
      const writes = [...want].filter(([k, [, v]]) => current.get(k) !== hex(v));
      if (writes.length) {
        const kv = writes.map(([, pair]) => pair);
        mapUpdateMany(fd, concat(kv.map((c) => c[0])), concat(kv.map((c) => c[1])), kv.length, `write ${kv.length} element(s) of ${map}`);
        for (const [k] of writes) if (current.has(k)) changed++; else added++;
      }
      const gone = [...current.keys()].filter((k) => !want.has(k)).map((k) => Uint8Array.from(Buffer.from(k, "hex")));
      if (gone.length) stale.push([fd, gone, map]);
    }
    for (const [fd, keys, map] of stale) {
      mapDeleteMany(fd, concat(keys), keys.length, `delete ${keys.length} element(s) of ${map}`);
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

  /** The file descriptor of one of the maps (valid until close). */
  mapFd(name: (typeof MAPS)[number]): number {
    return this.fds[name];
  }

  close(): void {
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

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
