/**
 * The srv6 dataplane read back for one (network, destination): which rule
 * selects the network's table, the route that table holds for the
 * destination (longest prefix), the nexthop or bpf map entry that
 * encapsulates it and to which SID, and the nftables rule that drops new
 * connections on a reply-only or denied path. Everything is read from the
 * kernel (netlink, the pinned bpf maps, `nft list`), never from the desired
 * state, so `lace explain` can show a datapath that disagrees with the
 * routing decision.
 *
 * @example
 * await traceDestination(dp, { networkId: 3, destination: "10.40.2.2" });
 * // { verdict: "allow", via: "sid", sid: "fd00:1ace:3::3", entries: [{ kind: "rule", text: "iif lb3 lookup 1003" }, …] }
 */
import { IPAddress, Prefix, type DataplaneTrace, type TraceQuery } from "../../core/plugin/mod.ts";
import { encapKey, l2MacKey, l2NeighborKey, LAYOUT } from "./bpf_datapath.ts";
import type { Srv6Dataplane } from "./dataplane.ts";
import { BRIDGE_ALIAS, POD_ALIAS_PREFIX, readLinks, readNexthops, readRoutes, readRules } from "./kernel.ts";
import { mapLookup } from "./libbpf.ts";
import { NetlinkClient } from "./netlink.ts";
import { newConnectionDrops } from "./nft.ts";
import { NETLINK_NETFILTER } from "./nfsets.ts";
import { traceClusterIP } from "./service_trace.ts";
import { bridgeFor, tableFor } from "./naming.ts";
import { ipText } from "./wire.ts";

/**
 * Reads back what the node holds for new connections from network
 * `networkId` to `destination`; a ClusterIP of the node's service table
 * answers with that table's entries (service_trace.ts).
 */
export async function traceDestination(dp: Srv6Dataplane, q: TraceQuery): Promise<DataplaneTrace> {
  // Netlink sockets of their own: the dataplane's may be in the middle of a pod attach.
  const nf = NetlinkClient.open(dp.netns, undefined, NETLINK_NETFILTER);
  try {
    const service = IPAddress.tryParse(q.destination).ok ? await traceClusterIP(nf, bridgeFor(q.networkId), q.destination) : undefined;
    if (service) return service;
  } finally {
    nf.close();
  }
  const nl = NetlinkClient.open(dp.netns);
  try {
    return await trace(dp, nl, q);
  } finally {
    nl.close();
  }
}

async function trace(dp: Srv6Dataplane, nl: NetlinkClient, q: TraceQuery): Promise<DataplaneTrace> {
  const parsed = IPAddress.tryParse(q.destination);
  if (!parsed.ok) throw new Error(`Invalid destination "${q.destination}": expected an IPv4 or IPv6 address`);
  const dst = parsed.value;
  const table = tableFor(q.networkId);
  const bridge = bridgeFor(q.networkId);
  const links = await readLinks(nl);
  const entries: DataplaneTrace["entries"] = [];
  const rule = (await readRules(nl)).find((r) => r.family === dst.family && r.table === table && r.iifname === bridge);
  if (!rule) {
    return { verdict: "unknown", entries, reason: `no rule selects table ${table} for packets from ${bridge}: the node holds nothing for network id ${q.networkId}` };
  }
  entries.push({ kind: "rule", text: `pref ${rule.priority} iif ${bridge} lookup ${table}` });
  let best: { route: Awaited<ReturnType<typeof readRoutes>>[number]; length: number } | undefined;
  for (const r of await readRoutes(nl, links)) {
    if (r.table !== table || r.family !== dst.family) continue;
    const p = Prefix.tryParse(r.dst);
    if (!p.ok || !p.value.contains(dst) || (best && best.length >= p.value.length)) continue;
    best = { route: r, length: p.value.length };
  }
  if (!best || best.route.type === "unreachable") {
    if (best) entries.push({ kind: "route", text: `table ${table}: unreachable ${best.route.dst}` });
    return { verdict: "deny", entries, reason: `table ${table} has no route to ${q.destination}` };
  }
  const r = best.route;
  let via: DataplaneTrace["via"];
  let sid: string | undefined;
  if (r.nhid !== undefined) {
    const nh = (await readNexthops(nl, links)).find((n) => n.id === r.nhid);
    entries.push({ kind: "route", text: `table ${table}: ${r.dst} nhid ${r.nhid}` });
    if (nh) {
      entries.push({ kind: "nexthop", text: `id ${nh.id}${nh.segments.length ? ` encap seg6 segs ${nh.segments.join(",")}` : ""}${nh.gateway ? ` via ${nh.gateway}` : ""} dev ${nh.oif}` });
      if (nh.segments.length) [via, sid] = ["sid", nh.segments[0]];
    }
  } else {
    entries.push({ kind: "route", text: `table ${table}: ${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}${r.oif ? ` dev ${r.oif}` : ""}${r.scope === "link" ? " scope link" : ""}` });
    // Our bridges and pod ports are on this node; anything else (the underlay) leaves it.
    const alias = r.oif ? links.byName.get(r.oif)?.alias : undefined;
    if (alias === BRIDGE_ALIAS || alias?.startsWith(POD_ALIAS_PREFIX)) via = "local";
  }
  if (!via && dp.backend === "bpf") {
    // The underlay's egress program encapsulates by (network, destination) after routing.
    const name = dst.family === 4 ? "lace_encap4" : "lace_encap6";
    const fd = dp.bpfMapFd(name);
    const value = new Uint8Array(LAYOUT[name].value);
    if (fd !== undefined && mapLookup(fd, encapKey(q.networkId, `${q.destination}/${dst.family === 4 ? 32 : 128}`), value)) {
      sid = ipText(value.subarray(0, 16));
      via = "sid";
      const srh = new DataView(value.buffer).getUint32(16, true) & 1;
      entries.push({ kind: "map", text: `${name}[net ${q.networkId}, ${q.destination}] = SID ${sid}${srh ? " with SRH" : ""}` });
    }
  }
  if (via === "local" && dp.backend === "bpf") {
    // A bridged network's frames go by MAC: the neighbour map gives it, the FDB its place (a SID or a local port).
    const l2 = l2Lookup(dp, q.networkId, q.destination, links);
    if (l2) {
      entries.push(...l2.entries);
      if (l2.sid) [via, sid] = ["sid", l2.sid];
    }
  }
  via ??= "underlay";
  const drop = newConnectionDrops(dp.netns).find((d) => d.bridge === bridge && d.destination.contains(dst));
  if (drop) {
    entries.push({ kind: "nft", text: drop.text });
    return { verdict: "reply-only", via, ...(sid ? { sid } : {}), entries, reason: "a route exists so replies return; new connections from the network are dropped" };
  }
  return { verdict: "allow", via, ...(sid ? { sid } : {}), entries };
}

/** The bpf l2 maps for (network, address): MAC, then its SID or local port; undefined when the network is not bridged here. */
function l2Lookup(dp: Srv6Dataplane, net: number, destination: string, links: Awaited<ReturnType<typeof readLinks>>): { sid?: string; entries: DataplaneTrace["entries"] } | undefined {
  const nets = dp.bpfMapFd("lace_l2_nets");
  const netKey = new Uint8Array(4);
  new DataView(netKey.buffer).setUint32(0, net, true);
  if (nets === undefined || !mapLookup(nets, netKey, new Uint8Array(LAYOUT.lace_l2_nets.value))) return undefined;
  const entries: DataplaneTrace["entries"] = [];
  const nbr = new Uint8Array(8);
  if (!mapLookup(dp.bpfMapFd("lace_l2_nbrs")!, l2NeighborKey(net, destination), nbr)) {
    entries.push({ kind: "map", text: `lace_l2_nbrs[net ${net}, ${destination}]: none (answered by ARP/ND on the bridge, if at all)` });
    return { entries };
  }
  const mac = [...nbr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
  entries.push({ kind: "map", text: `lace_l2_nbrs[net ${net}, ${destination}] = MAC ${mac}` });
  const fdb = new Uint8Array(LAYOUT.lace_l2_fdb.value);
  if (!mapLookup(dp.bpfMapFd("lace_l2_fdb")!, l2MacKey(net, mac), fdb)) {
    entries.push({ kind: "map", text: `lace_l2_fdb[net ${net}, ${mac}]: none (flooded to the network's members)` });
    return { entries };
  }
  const port = new DataView(fdb.buffer).getUint32(16, true);
  if (port) {
    entries.push({ kind: "map", text: `lace_l2_fdb[net ${net}, ${mac}] = port ${links.byIndex.get(port)?.name ?? `#${port}`} (this node)` });
    return { entries };
  }
  const sid = ipText(fdb.subarray(0, 16));
  entries.push({ kind: "map", text: `lace_l2_fdb[net ${net}, ${mac}] = SID ${sid}` });
  return { sid, entries };
}
