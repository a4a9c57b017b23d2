/**
 * Pod attach and detach: a veth pair whose host side is a port of the
 * network's bridge and whose pod side is configured inside the pod's
 * namespace (addresses of both families, on-link route for the local
 * block so same-node pods talk over L2 — or, on a checked bridge whose
 * ports are isolated, through the node, which answers ARP and NDP for
 * them — default routes through the
 * gateway — IPv6 through the link-local gateway fe80::1 that every bridge
 * carries — and the MTU that leaves room for the SRv6 encapsulation).
 * Detach is safe to repeat: a missing link or namespace is success.
 *
 * @example
 * await attachPod(node, { netns: "/run/netns/pod-a", ifname: "eth0", hostIfname: "lace1a2b3c",
 *   networkId: 7, network: "red", addresses: ["10.40.3.5/32", "fd00:40:0:3::5/128"],
 *   gateways: ["10.40.3.1/24", "fd00:40:0:3::1/64"], mtu: 1460 });
 */
import { closeSync, openSync } from "node:fs";
import { IPAddress, type PodAttachment, Prefix } from "../../core/plugin/mod.ts";
import { NetlinkClient, type WriteRequest } from "./netlink.ts";
import { getSysctl, netnsExists, netnsPath, setSysctl } from "./netns.ts";
import { type LinkInfo, type Links, neighborAdd, POD_ALIAS_PREFIX, POD_LINK_GROUP, proxyAdd, readLink, readLinks, routeAdd, setPortIsolated } from "./kernel.ts";
import { LINK_LOCAL_GATEWAY, podMac, podObjects, type PodNetwork } from "./plan.ts";
import { deleteSetElements, NETLINK_NETFILTER, writeSetElements } from "./nfsets.ts";
import { podSourceElements, readPodSources } from "./pod_sources.ts";
import {
  AF, attrMap, IFA, IFA_F, ifaddrmsg, ifinfomsg, IFF_UP, IFLA, IFLA_INFO, ipBytes, ipText, MessageBuilder, NDA, ndmsg, NLM_F, NTF, NUD,
  RT_SCOPE, RTA, rtmsg, RTM, RTN, RTPROT_LACE,
} from "./wire.ts";

export type { PodAttachment };

/** The node side of attach/detach: its netlink socket and namespace. */
export interface NodeHandle {
  netlink: NetlinkClient;
  netns: string | undefined;
  label: string;
  /** A netfilter netlink socket in the node's namespace (opened per call when absent). */
  netfilter?: NetlinkClient;
}

const VETH_INFO_PEER = 1;

function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(":").map((x) => parseInt(x, 16)));
}

/**
 * Creates and configures the pod's interface. On failure, what was created
 * is removed again and the error names the step.
 */
export async function attachPod(node: NodeHandle, pod: PodAttachment, bridge: string, net?: PodNetwork): Promise<void> {
  if (pod.hostIfname.length > 15) throw new Error(`Cannot attach pod: hostIfname "${pod.hostIfname}" is longer than 15 characters`);
  const podPath = netnsPath(pod.netns);
  // Two links by name, not a dump of every link: the dump grows with the pods on the node (≈ 2 ms at 100).
  const br = await readLink(node.netlink, bridge);
  if (!br) throw new Error(`Cannot attach pod ${pod.netns}: the bridge "${bridge}" of network "${pod.network}" does not exist in netns ${node.label} (apply the node's desired state first)`);
  if (await readLink(node.netlink, pod.hostIfname)) await detachPod(node, { hostIfname: pod.hostIfname });

  // Before the interface exists, so it never does DAD (the pod's link-local would stay tentative for a second).
  setSysctl(podPath, "net/ipv6/conf/default/accept_dad", "0");
  setSysctl(podPath, "net/ipv6/conf/all/accept_dad", "0");

  const fd = openSync(podPath, "r");
  try {
    const m = new MessageBuilder(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL).bytes(ifinfomsg(0, IFF_UP, IFF_UP));
    // The group is set in the creating message: the port is validated (fail closed) from its first packet.
    m.str(IFLA.IFNAME, pod.hostIfname).u32(IFLA.MTU, pod.mtu).u32(IFLA.MASTER, br.index).u32(IFLA.GROUP, POD_LINK_GROUP);
    m.begin(IFLA.LINKINFO).str(IFLA_INFO.KIND, "veth").begin(IFLA_INFO.DATA).begin(VETH_INFO_PEER);
    m.bytes(ifinfomsg(0)).str(IFLA.IFNAME, pod.ifname).u32(IFLA.MTU, pod.mtu).u32(IFLA.NET_NS_FD, fd);
    // A known MAC (given, or derived from the addresses): the bpf backend's neighbour entry for the pod needs it.
    m.attrBytes(IFLA.ADDRESS, macBytes(pod.mac ?? podMac(pod.addresses)));
    m.end().end().end();
    // The alias marks the port as a pod's; creation ignores IFLA_IFALIAS, so it is set right after.
    const alias = new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(0)).str(IFLA.IFNAME, pod.hostIfname).str(IFLA.IFALIAS, POD_ALIAS_PREFIX + pod.network);
    const reqs: WriteRequest[] = [
      { message: m, what: `add veth ${pod.hostIfname} (pod side ${pod.ifname} in ${podPath})` },
      { message: alias, what: `set alias of ${pod.hostIfname}` },
    ];
    // A checked bridge (plan.ts sameNodeChecked; its proxy_arp is on) gets the port isolated before the pod
    // has an address: its pods never reach each other past the node. (Creation ignores port attributes.)
    if (getSysctl(node.netns, `net/ipv4/conf/${bridge}/proxy_arp`) === "1") reqs.push(setPortIsolated(pod.hostIfname, true));
    await node.netlink.write(reqs);
  } finally {
    closeSync(fd);
  }

  try {
    await configurePodSide(podPath, pod);
    await allowSources(node, pod);
    if (net) await writeOwnObjects(node, podObjects(net, { interface: pod.hostIfname, addresses: pod.addresses, mac: pod.mac }), pod.hostIfname, br);
  } catch (e) {
    await detachPod(node, { hostIfname: pod.hostIfname }).catch(() => undefined);
    throw e;
  }
}

/**
 * Lets the pod send from its addresses at once: its (port, address) pairs
 * go into the bridge table's sets in one nf_tables transaction over
 * netlink. Without our ruleset loaded (ENOENT) there is nothing to allow
 * yet: the next apply, which lists the endpoint, writes the elements.
 */
async function allowSources(node: NodeHandle, pod: PodAttachment): Promise<void> {
  const mine = pod.addresses.map((a) => a.split("/")[0]).map((ip) => ({ ifname: pod.hostIfname, address: ip, family: ip.includes(":") ? 6 as const : 4 as const }));
  await withNetfilter(node, async (nf) => {
    try {
      await writeSetElements(nf, podSourceElements(mine, `pod sources of ${pod.hostIfname}`));
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT") throw e;
    }
  });
}

/**
 * The pod's own routes, neighbour entries and proxy entries (plan.ts
 * podObjects), written as the next apply would write them: the pod is
 * reachable from the whole cluster once its ADD returns, and that apply
 * finds nothing to do for it.
 */
async function writeOwnObjects(node: NodeHandle, objs: ReturnType<typeof podObjects>, port: string, bridge: LinkInfo): Promise<void> {
  if (!objs.routes.length && !objs.neighbors.length && !objs.proxies.length) return;
  // The bridge was read at the start of the attach; the port is new.
  const links: Links = { byName: new Map([[bridge.name, bridge]]), byIndex: new Map([[bridge.index, bridge]]) };
  const l = await readLink(node.netlink, port);
  if (l) {
    links.byName.set(port, l);
    links.byIndex.set(l.index, l);
  }
  await node.netlink.write([
    ...objs.neighbors.map((n) => neighborAdd(links, n)),
    ...objs.proxies.map((p) => proxyAdd(links, p)),
    ...objs.routes.map((r) => routeAdd(links, r, undefined, true)),
  ]);
}

/** Runs `fn` on the node's netfilter socket, or on one opened for it. */
async function withNetfilter<T>(node: NodeHandle, fn: (nf: NetlinkClient) => Promise<T>): Promise<T> {
  const nf = node.netfilter ?? NetlinkClient.open(node.netns, node.label, NETLINK_NETFILTER);
  try {
    return await fn(nf);
  } finally {
    if (!node.netfilter) nf.close();
  }
}

async function configurePodSide(podPath: string, pod: PodAttachment): Promise<void> {
  const nl = NetlinkClient.open(podPath);
  try {
    const links = await readLinks(nl);
    const lo = links.byName.get("lo");
    const eth = links.byName.get(pod.ifname);
    if (!eth) throw new Error(`Cannot configure pod ${podPath}: interface ${pod.ifname} did not appear`);
    const reqs: WriteRequest[] = [];
    if (lo && !lo.up) reqs.push({ message: new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(lo.index, IFF_UP, IFF_UP)), what: "set link lo up" });
    reqs.push({ message: new MessageBuilder(RTM.NEWLINK, 0).bytes(ifinfomsg(eth.index, IFF_UP, IFF_UP)), what: `set link ${pod.ifname} up` });
    const src = new Map<4 | 6, string>();
    for (const cidr of pod.addresses) {
      const [ip, lenText] = cidr.split("/");
      const fam = ip.includes(":") ? 6 : 4;
      const len = Number(lenText ?? (fam === 4 ? 32 : 128));
      src.set(fam, ip);
      const flags = fam === 6 ? IFA_F.NODAD | IFA_F.NOPREFIXROUTE : 0;
      const m = new MessageBuilder(RTM.NEWADDR, NLM_F.CREATE | NLM_F.REPLACE).bytes(ifaddrmsg(fam === 4 ? AF.INET : AF.INET6, len, flags, 0, eth.index));
      m.attrBytes(IFA.LOCAL, ipBytes(ip)).attrBytes(IFA.ADDRESS, ipBytes(ip)).u32(IFA.FLAGS, flags);
      reqs.push({ message: m, what: `add address ${cidr} on ${pod.ifname} in ${podPath}` });
    }
    await nl.write(reqs);

    const routes: WriteRequest[] = [];
    const route = (fam: 4 | 6, dst: string, opts: { gw?: string; link?: boolean; src?: string }) => {
      const [ip, len] = [dst.split("/")[0], Number(dst.split("/")[1])];
      const m = new MessageBuilder(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.REPLACE);
      m.bytes(rtmsg({ family: fam === 4 ? AF.INET : AF.INET6, dstLen: len, table: 254, protocol: RTPROT_LACE, scope: opts.link ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE, type: RTN.UNICAST }));
      if (len > 0) m.attrBytes(RTA.DST, ipBytes(ip));
      m.u32(RTA.OIF, eth.index);
      if (opts.gw) m.attrBytes(RTA.GATEWAY, ipBytes(opts.gw));
      if (opts.src) m.attrBytes(RTA.PREFSRC, ipBytes(opts.src));
      routes.push({ message: m, what: `add route ${dst}${opts.gw ? ` via ${opts.gw}` : ""} in ${podPath}` });
    };
    for (const g of pod.gateways) {
      const [gw, lenText] = g.split("/");
      const fam = gw.includes(":") ? 6 : 4;
      if (!src.has(fam)) continue;
      const block = Prefix.containing(IPAddress.parse(gw), Number(lenText)).toString();
      route(fam, block, { link: true, src: src.get(fam) });
      if (fam === 4) route(4, "0.0.0.0/0", { gw, src: src.get(4) });
    }
    if (src.has(6)) route(6, "::/0", { gw: LINK_LOCAL_GATEWAY, src: src.get(6) });
    await nl.write(routes);
  } finally {
    nl.close();
  }
}

/**
 * Forgets what a pod has learned of its neighbours inside `prefixes`
 * (dynamic entries only, in the pod's namespace), so it asks again. Used
 * when its bridge changes how same-node traffic flows (plan.ts
 * `sameNodeChecked`): entries learned over L2 would point past an isolated
 * port, and entries answered by the node would keep an open network routed.
 * A pod namespace that is gone is success. Returns the entries removed.
 *
 * @example
 * await forgetNeighbours("/run/netns/pod-a", ["10.40.3.0/24"]); // 1
 */
export async function forgetNeighbours(netns: string, prefixes: string[]): Promise<number> {
  const path = netnsPath(netns);
  if (!netnsExists(path)) return 0;
  const within = prefixes.map((p) => Prefix.parse(p));
  const nl = NetlinkClient.open(path);
  try {
    const reqs: WriteRequest[] = [];
    for (const m of await nl.dump(RTM.GETNEIGH, ndmsg(AF.UNSPEC, 0, 0), "neighbours")) {
      if (m.type !== RTM.NEWNEIGH) continue;
      const v = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      const index = v.getInt32(4, true);
      if ((v.getUint16(8, true) & NUD.PERMANENT) !== 0 || (v.getUint8(10) & NTF.PROXY) !== 0) continue;
      const dst = attrMap(m.data.subarray(12)).get(NDA.DST);
      if (!dst) continue;
      const ip = ipText(dst);
      const addr = IPAddress.parse(ip);
      if (!within.some((p) => p.contains(addr))) continue;
      const del = new MessageBuilder(RTM.DELNEIGH, 0).bytes(ndmsg(ip.includes(":") ? AF.INET6 : AF.INET, index, 0)).attrBytes(NDA.DST, dst);
      reqs.push({ message: del, what: `forget neighbour ${ip} in ${path}`, ignore: ["ENOENT"] });
    }
    await nl.write(reqs);
    return reqs.length;
  } finally {
    nl.close();
  }
}

/** Removes the pod's veth pair. A missing link (or pod namespace) is success. */
export async function detachPod(node: NodeHandle, pod: { hostIfname: string; netns?: string }): Promise<void> {
  const link = await readLink(node.netlink, pod.hostIfname);
  if (!link) return;
  if (!link.alias?.startsWith(POD_ALIAS_PREFIX)) {
    throw new Error(`Cannot detach pod: link ${pod.hostIfname} in netns ${node.label} is not a lace-cni pod interface`);
  }
  await node.netlink.write([{
    message: new MessageBuilder(RTM.DELLINK, 0).bytes(ifinfomsg(link.index)),
    what: `delete veth ${pod.hostIfname}`,
    ignore: ["ENODEV"],
  }]);
  await forbidSources(node, pod.hostIfname);
  void netnsExists;
}

/** Takes a gone pod's (port, address) pairs out of the bridge table's sets, as its ADD put them in. */
async function forbidSources(node: NodeHandle, hostIfname: string): Promise<void> {
  await withNetfilter(node, async (nf) => {
    const mine = (await readPodSources(nf)).filter((p) => p.ifname === hostIfname);
    if (mine.length) await deleteSetElements(nf, podSourceElements(mine, `pod sources of ${hostIfname}`));
  });
}
