/**
 * rtnetlink wire encoding for what we write. The `netlink` package formats
 * messages through generic attribute streams, but it has no encoders for
 * seg6 / seg6local tunnel attributes, link-info kinds, or the NLA_F_NESTED
 * flag that the nexthop API's strict parser demands, and its per-attribute
 * streams are slow on the 10,000-route path. So writes are encoded here with
 * a small builder (checked byte for byte against what `ip` reads back in
 * wire_test.ts); the package still provides the socket and parses dumps.
 *
 * @example
 * const m = new MessageBuilder(RTM.NEWROUTE, NLM_F.REQUEST | NLM_F.CREATE);
 * m.bytes(rtmsg({ family: AF.INET6, dstLen: 128, table: 254, protocol: RTPROT_LACE, type: RTN.UNICAST }));
 * m.attrBytes(RTA.DST, ipBytes("fd00::1"));
 * const wire = m.finish(seq);
 */
import { IPAddress } from "../../core/plugin/mod.ts";

export const AF = { UNSPEC: 0, INET: 2, BRIDGE: 7, INET6: 10 } as const;

export const NLM_F = {
  REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, DUMP_INTR: 0x10,
  ROOT: 0x100, MATCH: 0x200, DUMP: 0x300,
  REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, APPEND: 0x800,
} as const;

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26,
  NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
  NEWRULE: 32, DELRULE: 33, GETRULE: 34,
  NEWNEXTHOP: 104, DELNEXTHOP: 105, GETNEXTHOP: 106,
} as const;

export const RTA = { DST: 1, SRC: 2, IIF: 3, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, TABLE: 15, VIA: 18, ENCAP_TYPE: 21, ENCAP: 22, NH_ID: 30 } as const;
export const RTN = { UNICAST: 1, LOCAL: 2, BLACKHOLE: 6, UNREACHABLE: 7 } as const;
export const RT_SCOPE = { UNIVERSE: 0, LINK: 253, HOST: 254 } as const;
export const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28, IFALIAS: 20, AF_SPEC: 26, GROUP: 27 } as const;
export const IFLA_INFO = { KIND: 1, DATA: 2, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const;
/** Bridge port attributes (IFLA_INFO_SLAVE_DATA of a bridge port). */
export const IFLA_BRPORT = { NEIGH_SUPPRESS: 32, ISOLATED: 33 } as const;
export const IFA = { ADDRESS: 1, LOCAL: 2, FLAGS: 8 } as const;
export const IFA_F = { NODAD: 0x02, PERMANENT: 0x80, NOPREFIXROUTE: 0x200 } as const;
export const FRA = { DST: 1, SRC: 2, PRIORITY: 6, FWMARK: 10, TABLE: 15, FWMASK: 16, IIFNAME: 3, PROTOCOL: 21 } as const;
export const FR_ACT = { TO_TBL: 1 } as const;
export const NHA = { ID: 1, GROUP: 2, BLACKHOLE: 4, OIF: 5, GATEWAY: 6, ENCAP_TYPE: 7, ENCAP: 8 } as const;
export const NDA = { DST: 1, LLADDR: 2, MASTER: 9, PROTOCOL: 12, FLAGS_EXT: 15 } as const;
export const NUD = { NOARP: 0x40, PERMANENT: 0x80 } as const;
/** Neighbour flags (ndm_flags). */
export const NTF = { PROXY: 0x08, MASTER: 0x04 } as const;
/** NDA_FLAGS_EXT bits. */
export const NTF_EXT = { MANAGED: 0x01 } as const;
export const IFF_UP = 0x1;
export const NLA_F_NESTED = 0x8000;

export const LWTUNNEL_ENCAP = { SEG6: 5, SEG6_LOCAL: 7 } as const;
export const SEG6_IPTUNNEL_SRH = 1;
/** Tunnel modes of `encap seg6 mode …`. */
export const SEG6_MODE = { INLINE: 0, ENCAP: 1, L2ENCAP: 2, ENCAP_RED: 3, L2ENCAP_RED: 4 } as const;
export const SEG6_LOCAL = { ACTION: 1, SRH: 2, TABLE: 3, NH4: 4, NH6: 5, IIF: 6, OIF: 7, VRFTABLE: 9 } as const;
/** seg6local behaviours (`action End.DX4` …). */
export const SEG6_ACTION = { END: 1, END_X: 2, END_T: 3, END_DX2: 4, END_DX6: 5, END_DX4: 6, END_DT6: 7, END_DT4: 8, END_DT46: 16 } as const;

/**
 * The route (and rule, and nexthop) protocol number marking lace-cni's own
 * objects, so a reconcile finds its stale objects and never touches others.
 * 0x4c is "L"; it is not in /etc/iproute2/rt_protos.
 */
export const RTPROT_LACE = 0x4c;

/**
 * Network-order bytes of an address. Plain dotted-quad and hex IPv6 are
 * parsed here directly: going through IPAddress (ipaddr.js + bigint) cost
 * 20 µs per SID, most of the time of programming 10,000 remote blocks.
 * Anything else (embedded IPv4, zones) goes through IPAddress.
 */
export function ipBytes(text: string): Uint8Array {
  return fastIpBytes(text) ?? IPAddress.parse(text).toBytes();
}

function fastIpBytes(text: string): Uint8Array | undefined {
  const n = text.length;
  let colons = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 58) colons++;
    else if (c === 46) dots++;
  }
  if (dots > 0) {
    if (colons > 0 || dots !== 3) return undefined;
    const b = new Uint8Array(4);
    let part = 0, value = 0, digits = 0;
    for (let i = 0; i <= n; i++) {
      const c = i < n ? text.charCodeAt(i) : 46;
      if (c === 46) {
        if (digits === 0 || value > 255) return undefined;
        b[part++] = value;
        value = 0;
        digits = 0;
      } else if (c >= 48 && c <= 57 && digits < 3) {
        value = value * 10 + (c - 48);
        digits++;
      } else return undefined;
    }
    return b;
  }
  if (colons < 2 || colons > 7) return undefined;
  // Groups before and after "::" (at most one).
  const groups: number[] = [];
  let gap = -1, value = 0, digits = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 58) {
      if (i + 1 < n && text.charCodeAt(i + 1) === 58) {
        if (gap >= 0) return undefined;
        if (digits > 0) groups.push(value);
        gap = groups.length;
        i++;
      } else {
        if (digits === 0) return undefined;
        groups.push(value);
      }
      value = 0;
      digits = 0;
      continue;
    }
    const h = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (h < 0 || digits === 4) return undefined;
    value = value * 16 + h;
    digits++;
  }
  if (digits > 0) groups.push(value);
  else if (gap !== groups.length) return undefined;
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return undefined;
  const b = new Uint8Array(16);
  const tailStart = gap < 0 ? 8 : 8 - (groups.length - gap);
  for (let i = 0; i < groups.length; i++) {
    const at = gap >= 0 && i >= gap ? tailStart + (i - gap) : i;
    b[at * 2] = groups[i] >> 8;
    b[at * 2 + 1] = groups[i] & 255;
  }
  return b;
}

/**
 * Canonical text of an address in network-order bytes (RFC 5952 for IPv6,
 * as IPAddress prints it). Formatted here for speed on 10,000-route dumps;
 * IPv4-mapped and IPv4-compatible forms go through IPAddress.
 */
export function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  let zeroPrefix = true;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) zeroPrefix = false;
  if (zeroPrefix && (bytes[10] | bytes[11]) !== 0 || (zeroPrefix && bytes[10] === 0 && bytes[11] === 0 && (bytes[12] | bytes[13]) !== 0)) {
    return IPAddress.fromBytes(bytes).toString();
  }
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((bytes[i] << 8) | bytes[i + 1]);
  let bestAt = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) return g.map((x) => x.toString(16)).join(":");
  const head = g.slice(0, bestAt).map((x) => x.toString(16)).join(":");
  const tail = g.slice(bestAt + bestLen).map((x) => x.toString(16)).join(":");
  return `${head}::${tail}`;
}

/** Canonical text of an address given as text. */
export function canonicalIp(text: string): string {
  return ipText(ipBytes(text));
}

/** Canonical text of a prefix given as text (`fd00:1ace:0:0::/48` → `fd00:1ace::/48`). */
export function canonicalPrefix(text: string): string {
  const i = text.lastIndexOf("/");
  if (i < 0) throw new TypeError(`Invalid prefix: expected "address/length", got "${text}"`);
  return `${canonicalIp(text.slice(0, i))}/${Number(text.slice(i + 1))}`;
}

/** Builds one netlink message: header, fixed part, attributes (with nesting). */
export class MessageBuilder {
  private buf = new Uint8Array(128);
  private view = new DataView(this.buf.buffer);
  private len = 16;
  private nests: number[] = [];

  constructor(readonly type: number, readonly flags: number) {}

  private ensure(n: number): void {
    if (this.len + n + 8 <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n + 8) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private align(): void {
    const pad = (4 - (this.len & 3)) & 3;
    this.ensure(pad);
    for (let i = 0; i < pad; i++) this.buf[this.len++] = 0;
  }

  /** Raw bytes (a fixed header such as rtmsg), padded to 4. */
  bytes(data: Uint8Array): this {
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    this.align();
    return this;
  }

  attrBytes(type: number, data: Uint8Array): this {
    this.ensure(4 + data.length);
    this.view.setUint16(this.len, 4 + data.length, true);
    this.view.setUint16(this.len + 2, type, true);
    this.buf.set(data, this.len + 4);
    this.len += 4 + data.length;
    this.align();
    return this;
  }

  private header(type: number, payload: number): number {
    this.ensure(4 + payload + 4);
    const at = this.len;
    this.view.setUint16(at, 4 + payload, true);
    this.view.setUint16(at + 2, type, true);
    this.len += (4 + payload + 3) & ~3;
    return at + 4;
  }

  u8(type: number, v: number): this {
    const at = this.header(type, 1);
    this.buf[at] = v;
    this.buf[at + 1] = this.buf[at + 2] = this.buf[at + 3] = 0;
    return this;
  }

  u16(type: number, v: number): this {
    const at = this.header(type, 2);
    this.view.setUint16(at, v, true);
    this.buf[at + 2] = this.buf[at + 3] = 0;
    return this;
  }

  u32(type: number, v: number): this {
    // header() may grow the buffer and replace this.view: take the offset first.
    const at = this.header(type, 4);
    this.view.setUint32(at, v >>> 0, true);
    return this;
  }

  str(type: number, v: string): this {
    const enc = new TextEncoder().encode(v);
    const b = new Uint8Array(enc.length + 1);
    b.set(enc);
    return this.attrBytes(type, b);
  }

  /** Opens a nested attribute; `nested` sets NLA_F_NESTED (the strict parsers need it). */
  begin(type: number, nested = true): this {
    this.ensure(4);
    this.nests.push(this.len);
    this.view.setUint16(this.len + 2, nested ? type | NLA_F_NESTED : type, true);
    this.len += 4;
    return this;
  }

  end(): this {
    const start = this.nests.pop();
    if (start === undefined) throw new Error("MessageBuilder.end() without begin()");
    this.view.setUint16(start, this.len - start, true);
    return this;
  }

  /** The finished message with its sequence number. */
  finish(seq: number): Uint8Array {
    this.view.setUint32(0, this.len, true);
    this.view.setUint16(4, this.type, true);
    this.view.setUint16(6, this.flags, true);
    this.view.setUint32(8, seq, true);
    this.view.setUint32(12, 0, true);
    return this.buf.subarray(0, this.len);
  }
}

export interface RtMsg {
  family: number;
  dstLen: number;
  table: number;
  protocol: number;
  scope?: number;
  type: number;
}

/** struct rtmsg (12 bytes). Tables above 255 also need RTA_TABLE. */
export function rtmsg(r: RtMsg): Uint8Array {
  return Uint8Array.of(r.family, r.dstLen, 0, 0, r.table > 255 ? 252 : r.table, r.protocol, r.scope ?? 0, r.type, 0, 0, 0, 0);
}

/** struct ifinfomsg (16 bytes). */
export function ifinfomsg(index: number, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint8(0, AF.UNSPEC);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

/** struct ifaddrmsg (8 bytes). */
export function ifaddrmsg(family: number, prefixLen: number, flags: number, scope: number, index: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setUint8(1, prefixLen);
  v.setUint8(2, flags & 0xff);
  v.setUint8(3, scope);
  v.setUint32(4, index, true);
  return b;
}

/** struct fib_rule_hdr (12 bytes). */
export function fibRuleHdr(family: number, table: number, action: number, dstLen = 0, srcLen = 0): Uint8Array {
  return Uint8Array.of(family, dstLen, srcLen, 0, table > 255 ? 0 : table, 0, 0, action, 0, 0, 0, 0);
}

/** struct nhmsg (8 bytes). */
export function nhmsg(family: number, protocol: number): Uint8Array {
  return Uint8Array.of(family, 0, protocol, 0, 0, 0, 0, 0);
}

/** struct ndmsg (12 bytes). */
export function ndmsg(family: number, index: number, state: number, flags = 0): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setInt32(4, index, true);
  v.setUint16(8, state, true);
  v.setUint8(10, flags);
  v.setUint8(11, 0);
  return b;
}

/**
 * The payload of SEG6_IPTUNNEL_SRH: `struct seg6_iptunnel_encap { int mode;
 * struct ipv6_sr_hdr srh; }` with the segment list in reverse order, as
 * iproute2 builds it (the kernel drops the SRH itself for `encap.red` with
 * one segment).
 *
 * @example
 * seg6EncapPayload(SEG6_MODE.ENCAP_RED, ["fd00:1ace:0:2::1"]);
 */
export function seg6EncapPayload(mode: number, segments: string[]): Uint8Array {
  const n = segments.length;
  const srhLen = 8 + 16 * n;
  const b = new Uint8Array(4 + srhLen);
  const v = new DataView(b.buffer);
  v.setInt32(0, mode, true);
  b[4] = 0; // nexthdr: set by the kernel
  b[5] = (srhLen >> 3) - 1; // hdrlen in 8-octet units, first 8 excluded
  b[6] = 4; // routing type: segment routing
  b[7] = n - 1; // segments left
  b[8] = n - 1; // first segment (last entry)
  b[9] = 0; // flags
  v.setUint16(10, 0); // tag
  for (let i = 0; i < n; i++) b.set(ipBytes(segments[n - 1 - i]), 12 + 16 * i);
  return b;
}

/** Decodes a seg6 encap attribute (the nested RTA_ENCAP/NHA_ENCAP payload) into mode and segments. */
export function parseSeg6Encap(encap: Uint8Array): { mode: number; segments: string[] } | undefined {
  for (const [type, data] of attrs(encap)) {
    if (type !== SEG6_IPTUNNEL_SRH || data.length < 12) continue;
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const mode = v.getInt32(0, true);
    const n = data[8] + 1;
    const segments: string[] = [];
    for (let i = n - 1; i >= 0; i--) segments.push(ipText(data.subarray(12 + 16 * i, 28 + 16 * i)));
    return { mode, segments };
  }
  return undefined;
}

/** A decoded seg6local behaviour, in the fields we use. */
export interface Seg6Local {
  action: number;
  table?: number;
  nh4?: string;
  oif?: number;
}

/** Writes the attributes of a seg6local encap (inside RTA_ENCAP). */
export function seg6LocalAttrs(m: MessageBuilder, s: Seg6Local): void {
  m.u32(SEG6_LOCAL.ACTION, s.action);
  if (s.table !== undefined) m.u32(SEG6_LOCAL.TABLE, s.table);
  if (s.nh4 !== undefined) m.attrBytes(SEG6_LOCAL.NH4, ipBytes(s.nh4));
  if (s.oif !== undefined) m.u32(SEG6_LOCAL.OIF, s.oif);
}

/** Decodes a seg6local encap payload. */
export function parseSeg6Local(encap: Uint8Array): Seg6Local {
  const out: Seg6Local = { action: 0 };
  for (const [type, data] of attrs(encap)) {
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (type === SEG6_LOCAL.ACTION) out.action = v.getUint32(0, true);
    else if (type === SEG6_LOCAL.TABLE) out.table = v.getUint32(0, true);
    else if (type === SEG6_LOCAL.NH4) out.nh4 = ipText(data.subarray(0, 4));
    else if (type === SEG6_LOCAL.OIF) out.oif = v.getUint32(0, true);
  }
  return out;
}

/** Iterates the attributes in `data` as [type without flags, payload]. */
export function* attrs(data: Uint8Array): Generator<[number, Uint8Array]> {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 0;
  while (off + 4 <= data.length) {
    const len = v.getUint16(off, true);
    const type = v.getUint16(off + 2, true) & 0x3fff;
    if (len < 4 || off + len > data.length) break;
    yield [type, data.subarray(off + 4, off + len)];
    off += (len + 3) & ~3;
  }
}

/** Attributes as a map (last one wins), for parsing dumps of fields the package does not decode. */
export function attrMap(data: Uint8Array): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (const [t, d] of attrs(data)) m.set(t, d);
  return m;
}

export function readU32(d: Uint8Array | undefined): number | undefined {
  if (!d || d.length < 4) return undefined;
  return new DataView(d.buffer, d.byteOffset, 4).getUint32(0, true);
}

export function readStr(d: Uint8Array | undefined): string | undefined {
  if (!d) return undefined;
  const end = d.indexOf(0);
  return new TextDecoder().decode(end < 0 ? d : d.subarray(0, end));
}

export function hex(d: Uint8Array | undefined): string {
  if (!d) return "";
  let s = "";
  for (const x of d) s += x.toString(16).padStart(2, "0");
  return s;
}
