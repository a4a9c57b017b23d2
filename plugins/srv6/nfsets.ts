/**
 * Elements of our nftables sets, written over netfilter netlink
 * (NETLINK_NETFILTER, nf_tables subsystem) instead of running `nft`: a pod
 * attach adds its allowed source addresses in one nf_tables transaction
 * (batch begin, NEWSETELEM…, batch end) in well under a millisecond, with no
 * process spawned on the CNI hot path. Only set elements are encoded here;
 * the ruleset itself is still loaded as nft text (nft.ts), where the
 * expression language is worth the one process per changed state.
 *
 * Keys follow the kernel's layout for concatenations: every component
 * starts on a 4-byte boundary; `ifname` is IFNAMSIZ (16) bytes, zero padded.
 *
 * @example
 * const nf = NetlinkClient.open("/run/netns/node-1", undefined, NETLINK_NETFILTER);
 * await addSetElements(nf, NFPROTO.BRIDGE, "lace", "allow4", [podSourceKey("h-ra", "10.1.1.10")]);
 */
import type { NetlinkClient, BatchEnvelope, WriteRequest } from "./netlink.ts";
import { attrMap, attrs, ipBytes, ipText, MessageBuilder, NLM_F, readStr } from "./wire.ts";

/** The netlink protocol of netfilter (nfnetlink). */
export const NETLINK_NETFILTER = 12;
/** nf_tables table families (NFPROTO_*). */
export const NFPROTO = { INET: 1, BRIDGE: 7 } as const;

const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWTABLE = 0;
const NFT_MSG_GETTABLE = 1;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_GETSETELEM = 13;
const NFT_MSG_DELSETELEM = 14;
const NFTA_TABLE = { NAME: 1, USERDATA: 6 } as const;
const NFTA_SET_ELEM_LIST = { TABLE: 1, SET: 2, ELEMENTS: 3 } as const;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT = { CODE: 1, CHAIN: 2 } as const;
/** NFT_GOTO, as the kernel's signed verdict code. */
const NFT_GOTO = -4;
const IFNAMSIZ = 16;

/** struct nfgenmsg: family, version 0, resource id (big endian). */
function nfgenmsg(family: number, resId = 0): Uint8Array {
  return Uint8Array.of(family, 0, (resId >> 8) & 0xff, resId & 0xff);
}

const envelope: BatchEnvelope = {
  begin: () => new MessageBuilder(NFNL_MSG_BATCH_BEGIN, NLM_F.REQUEST).bytes(nfgenmsg(0, NFNL_SUBSYS_NFTABLES)),
  end: () => new MessageBuilder(NFNL_MSG_BATCH_END, NLM_F.REQUEST).bytes(nfgenmsg(0, NFNL_SUBSYS_NFTABLES)),
};

/** Concatenates key components, each padded to a multiple of 4 bytes. */
export function concatKey(parts: Uint8Array[]): Uint8Array {
  const size = parts.reduce((n, p) => n + ((p.length + 3) & ~3), 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += (p.length + 3) & ~3;
  }
  return out;
}

/** An `ifname` value: the name, zero padded to IFNAMSIZ. */
export function ifnameKey(name: string): Uint8Array {
  const enc = new TextEncoder().encode(name);
  if (enc.length >= IFNAMSIZ) throw new Error(`Invalid interface name "${name}": expected at most 15 bytes`);
  const out = new Uint8Array(IFNAMSIZ);
  out.set(enc);
  return out;
}

/** The key of `ifname . ipv4_addr` / `ifname . ipv6_addr` (the sets allow4 / allow6 in nft.ts). */
export function podSourceKey(ifname: string, address: string): Uint8Array {
  return concatKey([ifnameKey(ifname), ipBytes(address)]);
}

/** A map element: its key and either a value or a chain to go to (a verdict map). */
export interface MapElement {
  key: Uint8Array;
  value?: Uint8Array;
  goto?: string;
}

function mapElementsMessage(type: number, family: number, table: string, set: string, elements: MapElement[]): MessageBuilder {
  const m = new MessageBuilder((NFNL_SUBSYS_NFTABLES << 8) | type, type === NFT_MSG_NEWSETELEM ? NLM_F.CREATE : 0).bytes(nfgenmsg(family));
  m.str(NFTA_SET_ELEM_LIST.TABLE, table).str(NFTA_SET_ELEM_LIST.SET, set).begin(NFTA_SET_ELEM_LIST.ELEMENTS);
  for (const e of elements) {
    m.begin(NFTA_LIST_ELEM).begin(NFTA_SET_ELEM_KEY).attrBytes(NFTA_DATA_VALUE, e.key).end();
    // Data only on adds: a delete names the key alone.
    if (type === NFT_MSG_NEWSETELEM && e.value) m.begin(NFTA_SET_ELEM_DATA).attrBytes(NFTA_DATA_VALUE, e.value).end();
    if (type === NFT_MSG_NEWSETELEM && e.goto) {
      m.begin(NFTA_SET_ELEM_DATA).begin(NFTA_DATA_VERDICT).attrBytes(NFTA_VERDICT.CODE, u32be(NFT_GOTO)).str(NFTA_VERDICT.CHAIN, e.goto).end().end();
    }
    m.end();
  }
  return m.end();
}

function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, false);
  return b;
}

/** Changes to one set or map: elements removed, then elements added, in one batch request each. */
export interface ElementChanges {
  family: number;
  table: string;
  set: string;
  remove: MapElement[];
  add: MapElement[];
  /** What the elements stand for, for errors: `service shop/cart`. */
  what: string;
}

/** Elements per message: keeps each well inside a datagram. */
const ELEMENTS_PER_MESSAGE = 128;

/**
 * Applies element changes to several sets and maps: every removal first,
 * then every addition, as one nf_tables transaction per datagram (one
 * for any change of a few Services: packets see the old elements or the
 * new ones, never a mix). A changed map value is a removal plus an
 * addition of its key.
 *
 * @example
 * await changeElements(nf, [{ family: NFPROTO.INET, table: "lace_svc", set: "vips4", remove: [], add: [{ key: ipBytes("10.96.0.10") }], what: "ClusterIPs" }]);
 */
export async function changeElements(nf: NetlinkClient, changes: ElementChanges[]): Promise<void> {
  const reqs: WriteRequest[] = [];
  for (const op of ["remove", "add"] as const) {
    for (const c of changes) {
      const list = c[op];
      for (let i = 0; i < list.length; i += ELEMENTS_PER_MESSAGE) {
        reqs.push({
          message: mapElementsMessage(op === "add" ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, c.family, c.table, c.set, list.slice(i, i + ELEMENTS_PER_MESSAGE)),
          what: `${op} ${c.what} ${op === "add" ? "to" : "from"} ${c.table} ${c.set}`,
        });
      }
    }
  }
  await nf.write(reqs, envelope);
}

/** Elements to add to one set, as one request of a batch. */
export interface SetElements {
  family: number;
  table: string;
  set: string;
  keys: Uint8Array[];
  /** What the keys stand for, for errors: `pod sources of h-ra`. */
  what: string;
}

/**
 * Adds elements to several sets in one nf_tables transaction (all or
 * nothing). Adding an element that exists is success. A missing table or
 * set rejects with a NetlinkError of code ENOENT.
 */
export async function writeSetElements(nf: NetlinkClient, changes: SetElements[]): Promise<void> {
  await changeElements(nf, changes.map((c) => ({ family: c.family, table: c.table, set: c.set, remove: [], add: c.keys.map((key) => ({ key })), what: c.what })));
}

/**
 * Removes elements from several sets in one nf_tables transaction. Every
 * element must exist (ENOENT otherwise): remove only what was read back.
 */
export async function deleteSetElements(nf: NetlinkClient, changes: SetElements[]): Promise<void> {
  await changeElements(nf, changes.map((c) => ({ family: c.family, table: c.table, set: c.set, remove: c.keys.map((key) => ({ key })), add: [], what: c.what })));
}

/**
 * The keys of a set's elements (one dump, no `nft` process); a missing
 * table or set reads as none.
 *
 * @example
 * (await readSetElements(nf, NFPROTO.BRIDGE, "lace", "allow4")).map((k) => podSourceOf(k, 4)); // [{ ifname: "h-ra", address: "10.1.1.10" }]
 */
export async function readSetElements(nf: NetlinkClient, family: number, table: string, set: string): Promise<Uint8Array[]> {
  return (await readMapElements(nf, family, table, set)).map((e) => e.key);
}

/**
 * The elements of a set or map with their data (a value, or the chain of a
 * verdict), as they are written (one dump); a missing table or set reads as
 * none.
 *
 * @example
 * (await readMapElements(nf, NFPROTO.INET, "lace_svc", "svc4"))[0].goto; // "lb4-r-2"
 */
export async function readMapElements(nf: NetlinkClient, family: number, table: string, set: string): Promise<MapElement[]> {
  let msgs;
  try {
    msgs = await nf.dump((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM, nfgenmsg(family), `elements of set ${table} ${set}`, (m) => {
      m.str(NFTA_SET_ELEM_LIST.TABLE, table).str(NFTA_SET_ELEM_LIST.SET, set);
    });
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return [];
    throw e;
  }
  const out: MapElement[] = [];
  for (const m of msgs) {
    if (m.type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM)) continue;
    const list = attrMap(m.data.subarray(4)).get(NFTA_SET_ELEM_LIST.ELEMENTS);
    if (!list) continue;
    for (const [type, elem] of attrs(list)) {
      if (type !== NFTA_LIST_ELEM) continue;
      const a = attrMap(elem);
      const key = a.get(NFTA_SET_ELEM_KEY);
      const keyValue = key && attrMap(key).get(NFTA_DATA_VALUE);
      if (!keyValue) continue;
      const e: MapElement = { key: keyValue.slice() };
      const data = a.get(NFTA_SET_ELEM_DATA);
      if (data) {
        const d = attrMap(data);
        const value = d.get(NFTA_DATA_VALUE);
        const verdict = d.get(NFTA_DATA_VERDICT);
        if (value) e.value = value.slice();
        const chain = verdict && attrMap(verdict).get(NFTA_VERDICT.CHAIN);
        if (chain) e.goto = readStr(chain) ?? undefined;
      }
      out.push(e);
    }
  }
  return out;
}

/** The interface and address of a `podSourceKey`. */
export function podSourceOf(key: Uint8Array, family: 4 | 6): { ifname: string; address: string } {
  const len = family === 4 ? 4 : 16;
  if (key.length < IFNAMSIZ + len) throw new Error(`Invalid pod source key of ${key.length} bytes: expected ${IFNAMSIZ + len} (ifname . ipv${family}_addr)`);
  return { ifname: readStr(key.subarray(0, IFNAMSIZ)) ?? "", address: ipText(key.subarray(IFNAMSIZ, IFNAMSIZ + len)) };
}

/** A table as listed over netlink: family, name, and its comment (user data) as text. */
export interface NfTable {
  family: number;
  name: string;
  userdata: string;
}

/** Lists the namespace's nf_tables tables (one dump, no `nft` process). */
export async function listTables(nf: NetlinkClient): Promise<NfTable[]> {
  const msgs = await nf.dump((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, nfgenmsg(0), "nftables tables");
  const out: NfTable[] = [];
  for (const m of msgs) {
    if (m.type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE)) continue;
    const a = attrMap(m.data.subarray(4));
    const ud = a.get(NFTA_TABLE.USERDATA);
    // The comment is a TLV inside the user data; as latin1 text it is found by pattern.
    out.push({ family: m.data[0], name: readStr(a.get(NFTA_TABLE.NAME)) ?? "", userdata: ud ? String.fromCharCode(...ud) : "" });
  }
  return out;
}
