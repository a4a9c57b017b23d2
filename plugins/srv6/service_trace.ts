/**
 * The service table (`inet lace_svc`, services.ts) read back for one
 * (network, ClusterIP): whether the node translates the ClusterIP for
 * packets from the network's bridge, to which load-balancing chain, and to
 * which endpoints, all read from the kernel over netfilter netlink, never
 * from the desired state, so `lace explain` can show a service table that
 * disagrees with the routing decision. Undefined when the address is no
 * ClusterIP the node holds.
 *
 * @example
 * await traceClusterIP(nf, "lb2", "10.96.0.45");
 * // { verdict: "allow", entries: [{ kind: "nft", text: "svc4[lb2 . 10.96.0.45 . tcp . 80] = goto lb4-r-1" },
 * //                              { kind: "nft", text: "ep4[10.96.0.45 . tcp . 80 . 0] = 10.47.0.2 . 8080" }] }
 */
import type { DataplaneTrace } from "../../core/plugin/mod.ts";
import type { NetlinkClient } from "./netlink.ts";
import { NFPROTO, readMapElements } from "./nfsets.ts";
import { SERVICE_TABLE } from "./services.ts";
import { canonicalIp, ipText, readStr } from "./wire.ts";

const IFNAMSIZ = 16;
const PROTO_NAME: Record<number, string> = { 6: "tcp", 17: "udp" };

const be16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];

export async function traceClusterIP(nf: NetlinkClient, bridge: string, address: string): Promise<DataplaneTrace | undefined> {
  const clusterIP = canonicalIp(address);
  const fam = clusterIP.includes(":") ? 6 : 4;
  const len = fam === 4 ? 4 : 16;
  const vips = await readMapElements(nf, NFPROTO.INET, SERVICE_TABLE, `vips${fam}`);
  if (!vips.some((e) => ipText(e.key.subarray(0, len)) === clusterIP)) return undefined;
  const entries: DataplaneTrace["entries"] = [];
  let forNetwork = 0;
  const otherBridges = new Set<string>();
  for (const e of await readMapElements(nf, NFPROTO.INET, SERVICE_TABLE, `svc${fam}`)) {
    if (ipText(e.key.subarray(IFNAMSIZ, IFNAMSIZ + len)) !== clusterIP) continue;
    const ifname = readStr(e.key.subarray(0, IFNAMSIZ)) ?? "";
    if (ifname !== bridge) {
      otherBridges.add(ifname);
      continue;
    }
    forNetwork++;
    const proto = PROTO_NAME[e.key[IFNAMSIZ + len]] ?? `proto ${e.key[IFNAMSIZ + len]}`;
    entries.push({ kind: "nft", text: `svc${fam}[${ifname} . ${clusterIP} . ${proto} . ${be16(e.key, IFNAMSIZ + len + 4)}] = goto ${e.chain ?? "?"}` });
  }
  if (forNetwork === 0) {
    entries.push({ kind: "nft", text: `vips${fam} holds ${clusterIP}: untranslated packets to it are dropped` });
    return {
      verdict: "deny",
      entries,
      reason: `${clusterIP} is not translated for packets from ${bridge}${otherBridges.size ? ` (it is for those from ${[...otherBridges].sort().join(", ")})` : ""}: new connections to it are dropped`,
    };
  }
  const endpoints: string[] = [];
  for (const e of await readMapElements(nf, NFPROTO.INET, SERVICE_TABLE, `ep${fam}`)) {
    if (ipText(e.key.subarray(0, len)) !== clusterIP || !e.value) continue;
    const proto = PROTO_NAME[e.key[len]] ?? `proto ${e.key[len]}`;
    const index = new DataView(e.key.buffer, e.key.byteOffset).getUint32(len + 8, true);
    endpoints.push(`ep${fam}[${clusterIP} . ${proto} . ${be16(e.key, len + 4)} . ${index}] = ${ipText(e.value.subarray(0, len))} . ${be16(e.value, len)}`);
  }
  for (const text of endpoints.sort()) entries.push({ kind: "nft", text });
  return {
    verdict: "allow",
    entries,
    reason: `translated for packets from ${bridge} to one of ${endpoints.length} endpoint entr${endpoints.length === 1 ? "y" : "ies"}`,
  };
}
