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
import { decodeElement, SERVICE_TABLE, type ServiceElement } from "./services.ts";
import { canonicalIp } from "./wire.ts";

export async function traceClusterIP(nf: NetlinkClient, bridge: string, address: string): Promise<DataplaneTrace | undefined> {
  const clusterIP = canonicalIp(address);
  const fam = clusterIP.includes(":") ? 6 : 4;
  const read = async (set: string): Promise<ServiceElement[]> =>
    (await readMapElements(nf, NFPROTO.INET, SERVICE_TABLE, `${set}${fam}`)).map((e) => decodeElement(`${set}${fam}`, e));
  if (!(await read("vips")).some((e) => e.key === clusterIP)) return undefined;
  const entries: DataplaneTrace["entries"] = [];
  const otherBridges = new Set<string>();
  for (const e of await read("svc")) {
    const [ifname, ip] = e.key.split(" . ");
    if (ip !== clusterIP) continue;
    if (ifname === bridge) entries.push({ kind: "nft", text: `${e.set}[${e.key}] = ${e.value}` });
    else otherBridges.add(ifname);
  }
  if (entries.length === 0) {
    entries.push({ kind: "nft", text: `vips${fam} holds ${clusterIP}: untranslated packets to it are dropped` });
    return {
      verdict: "deny",
      entries,
      reason: `${clusterIP} is not translated for packets from ${bridge}${otherBridges.size ? ` (it is for those from ${[...otherBridges].sort().join(", ")})` : ""}: new connections to it are dropped`,
    };
  }
  const endpoints = (await read("ep")).filter((e) => e.key.startsWith(`${clusterIP} . `) && e.value).map((e) => `${e.set}[${e.key}] = ${e.value}`).sort();
  for (const text of endpoints) entries.push({ kind: "nft", text });
  return {
    verdict: "allow",
    entries,
    reason: `translated for packets from ${bridge} to one of ${endpoints.length} endpoint entr${endpoints.length === 1 ? "y" : "ies"}`,
  };
}
