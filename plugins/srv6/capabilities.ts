/**
 * What this kernel can do, found out at start by trying it in the node's
 * namespace (and undoing it): kernel config is not readable everywhere, and
 * a module may be loadable on demand. Each probe creates an object with a
 * name or id of its own and removes it at once.
 *
 * @example
 * const caps = await probeCapabilities("/run/netns/node-1");
 * caps.vrf; // false on this kernel: End.DX4 + marks is used instead of End.DT4
 */
import { existsSync } from "node:fs";
import { threadId } from "node:worker_threads";
import type { DataplaneCapabilities } from "../../core/plugin/mod.ts";
import { NetlinkClient } from "./netlink.ts";
import { kernelLacks } from "./kernel_config.ts";
import { readLinks } from "./kernel.ts";
import {
  AF, IFF_UP, ifinfomsg, IFLA, IFLA_INFO, LWTUNNEL_ENCAP, MessageBuilder, NHA, nhmsg, NLM_F, RTA, rtmsg, RTM, RTN,
  RTPROT_LACE, SEG6_ACTION, seg6LocalAttrs, ipBytes, SEG6_IPTUNNEL_SRH, seg6EncapPayload, SEG6_MODE,
} from "./wire.ts";

const PROBE_TABLE = 0x1acefe;
/**
 * Probe routes and nexthops carry a protocol of their own, not RTPROT_LACE:
 * an apply running meanwhile (another thread or process on the same node)
 * must not take them for stale objects of ours and remove them.
 */
const RTPROT_LACE_PROBE = RTPROT_LACE + 1;
/** Distinct per process and thread, so probes running side by side do not collide (EEXIST would read as "unsupported"). */
const probeToken = () => ((process.pid * 64 + threadId) % 0xfff0) + 1;

async function tries(nl: NetlinkClient, add: MessageBuilder, del: MessageBuilder, what: string): Promise<boolean> {
  try {
    await nl.write([{ message: add, what }]);
  } catch {
    return false;
  }
  await nl.write([{ message: del, what: `undo ${what}`, ignore: ["ENOENT", "ESRCH", "ENODEV"] }]).catch(() => undefined);
  return true;
}

function probeRoute(type: number, encap: (m: MessageBuilder) => void, encapType: number, oif: number): MessageBuilder {
  const m = new MessageBuilder(type, type === RTM.NEWROUTE ? NLM_F.CREATE | NLM_F.EXCL : 0);
  m.bytes(rtmsg({ family: AF.INET6, dstLen: 128, table: PROBE_TABLE, protocol: RTPROT_LACE_PROBE, type: RTN.UNICAST }));
  m.u32(RTA.TABLE, PROBE_TABLE).attrBytes(RTA.DST, ipBytes(`fd00:1ace:ffff:ffff::${probeToken().toString(16)}`)).u32(RTA.OIF, oif);
  if (type === RTM.NEWROUTE) {
    m.u16(RTA.ENCAP_TYPE, encapType).begin(RTA.ENCAP);
    encap(m);
    m.end();
  }
  return m;
}

/** Probes VRF, seg6, seg6local, nexthop objects and BPF in the namespace. */
export async function probeCapabilities(netns: string | undefined): Promise<DataplaneCapabilities> {
  const nl = NetlinkClient.open(netns);
  try {
    const token = probeToken();
    const vrfName = `lace-probe${token}`;
    const vrfAdd = new MessageBuilder(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL).bytes(ifinfomsg(0));
    vrfAdd.str(IFLA.IFNAME, vrfName).begin(IFLA.LINKINFO).str(IFLA_INFO.KIND, "vrf")
      .begin(IFLA_INFO.DATA).u32(1 /* IFLA_VRF_TABLE */, PROBE_TABLE).end().end();
    const vrfDel = new MessageBuilder(RTM.DELLINK, 0).bytes(ifinfomsg(0)).str(IFLA.IFNAME, vrfName);
    const vrf = await tries(nl, vrfAdd, vrfDel, "probe vrf");

    // Routes need an up device; `lo` may be down in a fresh namespace, so probe on a bridge of our own.
    const probeDev = `lace-pd${token}`;
    const devAdd = new MessageBuilder(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL).bytes(ifinfomsg(0, IFF_UP, IFF_UP));
    devAdd.str(IFLA.IFNAME, probeDev).begin(IFLA.LINKINFO).str(IFLA_INFO.KIND, "bridge").end();
    let seg6 = false, seg6local = false, nexthopObjects = false;
    try {
      await nl.write([{ message: devAdd, what: `add probe bridge ${probeDev}` }]);
      const oif = (await readLinks(nl)).byName.get(probeDev)?.index ?? 1;
      seg6 = await tries(
        nl,
        probeRoute(RTM.NEWROUTE, (m) => m.attrBytes(SEG6_IPTUNNEL_SRH, seg6EncapPayload(SEG6_MODE.ENCAP_RED, ["fd00:1ace:ffff:ffff::1"])), LWTUNNEL_ENCAP.SEG6, oif),
        probeRoute(RTM.DELROUTE, () => {}, 0, oif),
        "probe seg6",
      );
      seg6local = await tries(
        nl,
        probeRoute(RTM.NEWROUTE, (m) => seg6LocalAttrs(m, { action: SEG6_ACTION.END_DX4, nh4: "0.0.0.0" }), LWTUNNEL_ENCAP.SEG6_LOCAL, oif),
        probeRoute(RTM.DELROUTE, () => {}, 0, oif),
        "probe seg6local",
      );
      // Outside lace-cni's id range [0x1ace0000, 0x1bce0000).
      const probeNhId = 0x1bcf0000 + token;
      const nhAdd = new MessageBuilder(RTM.NEWNEXTHOP, NLM_F.CREATE | NLM_F.EXCL).bytes(nhmsg(AF.INET6, RTPROT_LACE_PROBE));
      nhAdd.u32(NHA.ID, probeNhId).attrBytes(NHA.BLACKHOLE, new Uint8Array(0));
      const nhDel = new MessageBuilder(RTM.DELNEXTHOP, 0).bytes(nhmsg(AF.UNSPEC, 0)).u32(NHA.ID, probeNhId);
      nexthopObjects = await tries(nl, nhAdd, nhDel, "probe nexthop objects");
    } finally {
      const devDel = new MessageBuilder(RTM.DELLINK, 0).bytes(ifinfomsg(0)).str(IFLA.IFNAME, probeDev);
      await nl.write([{ message: devDel, what: `delete probe bridge ${probeDev}`, ignore: ["ENODEV"] }]).catch(() => undefined);
    }
    // The bpf backend needs the bpf() syscall (its sysctl is global, unlike net.core.bpf_jit_enable, which
    // only the initial namespace shows), the JIT, clsact and cls_bpf; the config says where readable.
    const bpf = existsSync("/proc/sys/kernel/unprivileged_bpf_disabled") &&
      !["CONFIG_BPF_SYSCALL", "CONFIG_BPF_JIT", "CONFIG_NET_CLS_BPF", "CONFIG_NET_SCH_INGRESS"].some(kernelLacks);
    return {
      vrf, seg6, seg6local, nexthopObjects, bpf,
      overlappingSubnets: seg6local,
      forwarding: ["routed", "underlay"],
    };
  } finally {
    nl.close();
  }
}
