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
import { encapKey, LAYOUT } from "./bpf_datapath.ts";
import type { Srv6Dataplane } from "./dataplane.ts";
import { BRIDGE_ALIAS, POD_ALIAS_PREFIX, readLinks, readNexthops, readRoutes, readRules } from "./kernel.ts";
import { mapLookup } from "./libbpf.ts";
import { newConnectionDrops } from "./nft.ts";
import { bridgeFor, tableFor } from "./naming.ts";
import { ipText } from "./wire.ts";

/** Reads back what the node holds for new connections from network `networkId` to `destination`. */
export async function traceDestination(dp: Srv6Dataplane, q: TraceQuery): Promise<DataplaneTrace> {
  const parsed = IPAddress.tryParse(q.destination);
  if (!parsed.ok) throw new Error(`Invalid destination "${q.destination}": expected an IPv4 or IPv6 address`);
  const dst = parsed.value;
  const table = tableFor(q.networkId);
  const bridge = bridgeFor(q.networkId);
  const links = await readLinks(dp.netlink);
  const entries: DataplaneTrace["entries"] = [];
  const rule = (await readRules(dp.netlink)).find((r) => r.family === dst.family && r.table === table && r.iifname === bridge);
  if (!rule) {
    return { verdict: "unknown", entries, reason: `no rule selects table ${table} for packets from ${bridge}: the node holds nothing for network id ${q.networkId}` };
  }
  entries.push({ kind: "rule", text: `pref ${rule.priority} iif ${bridge} lookup ${table}` });
  let best: { route: Awaited<ReturnType<typeof readRoutes>>[number]; length: number } | undefined;
  for (const r of await readRoutes(dp.netlink, links)) {
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
    const nh = (await readNexthops(dp.netlink, links)).find((n) => n.id === r.nhid);
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
  via ??= "underlay";
  const drop = newConnectionDrops(dp.netns).find((d) => d.bridge === bridge && d.destination.contains(dst));
  if (drop) {
    entries.push({ kind: "nft", text: drop.text });
    return { verdict: "reply-only", via, ...(sid ? { sid } : {}), entries, reason: "a route exists so replies return; new connections from the network are dropped" };
  }
  return { verdict: "allow", via, ...(sid ? { sid } : {}), entries };
}
