/* lace-cni srv6 datapath for kernels without seg6 lwtunnel (and a faster
 * one for those with it): two tc (clsact) programs on the node's underlay
 * device. Routing, policy, conntrack and same-node delivery stay with the
 * kernel (per-network tables, rules, nftables: the same decisions as the
 * kernel backend); these programs only push and pop SRv6, so the packets
 * on the wire are those of the kernel's seg6 (RFC 8986, RFC 8754).
 *
 * lace_encap (egress): a packet a network routed to a remote block leaves
 *   through the underlay carrying its network's mark (set by the node's
 *   nftables). (network id, inner destination) → SID in an LPM trie; a hit
 *   gets H.Encaps.Red (outer IPv6, next header 4 or 41) or H.Encaps (with a
 *   one-segment SRH, next header 43); a miss leaves as it came (egress to an
 *   external network, the node's own traffic).
 * lace_decap (ingress): an IPv6 packet whose destination is one of the
 *   node's SIDs is decapsulated (End.DX4 for IPv4 inside, End.DT6 for IPv6)
 *   and continues up the stack with the network's mark, so `ip rule fwmark`
 *   looks the inner destination up in that network's table. An l2
 *   network's SID delivers into its bridge instead (l2.h: End.DX2, and the
 *   IP fast path).
 * lace_l2_tx (egress of an l2 network's tunnel port): what the bridge sends
 *   towards other nodes (l2.h).
 * lace_l2_port (ingress of an l2 pod's port): learning (l2.h).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"

/* Debian 12's UAPI headers (6.1) predate these. */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

/* Network marks (plugins/srv6/plan.ts): 0x4c000000 | id after decapsulation,
 * 0x4d000000 | id on what a network's pods send. Both carry the id. */
#define MARK_MASK 0xfe000000
#define MARK_NET 0x4c000000
#define MARK_ID 0x00ffffff

#define NEXTHDR_ROUTING 43
#define SRH_TYPE_SEGMENT_ROUTING 4
#define CONFIG_F_READY 1

/* A segment routing header with one segment (RFC 8754). */
struct srh1 {
	__u8 nexthdr;
	__u8 hdrlen;
	__u8 type;
	__u8 segments_left;
	__u8 last_entry;
	__u8 flags;
	__u16 tag;
	__u8 segment[16];
};

struct outer_srh {
	struct ipv6hdr ip6;
	struct srh1 srh;
};

static __always_inline void count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&lace_stats, &what);

	if (c)
		*c += 1;
}

static __always_inline void outer_header(struct ipv6hdr *h, const __u8 *src, const __u8 *sid,
					 __u8 tos, __u8 ttl, __u32 flow, __u16 payload, __u8 nexthdr)
{
	h->version = 6;
	h->priority = tos >> 4;
	h->flow_lbl[0] = ((tos & 0xf) << 4) | ((flow >> 16) & 0xf);
	h->flow_lbl[1] = (flow >> 8) & 0xff;
	h->flow_lbl[2] = flow & 0xff;
	h->payload_len = bpf_htons(payload);
	h->nexthdr = nexthdr;
	h->hop_limit = ttl;
	__builtin_memcpy(&h->saddr, src, 16);
	__builtin_memcpy(&h->daddr, sid, 16);
}

/* What the encapsulation needs of an IP packet after the Ethernet header. */
struct inner_ip {
	__u8 family;  /* 4 or 6 */
	__u8 nexthdr; /* the outer header's next header: IPPROTO_IPIP or IPPROTO_IPV6 */
	__u8 tos;
	__u8 ttl;
	__u8 src[16]; /* IPv4: the first 4 bytes */
	__u8 dst[16];
};

/* Reads the IPv4 or IPv6 header of a frame of Ethernet type `proto`; 0, or -1 when it is neither. */
static __always_inline int read_inner(struct __sk_buff *skb, __u16 proto, struct inner_ip *in)
{
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		in->family = 4;
		in->nexthdr = IPPROTO_IPIP;
		in->tos = ip.tos;
		in->ttl = ip.ttl;
		__builtin_memcpy(in->src, &ip.saddr, 4);
		__builtin_memcpy(in->dst, &ip.daddr, 4);
		return 0;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		in->family = 6;
		in->nexthdr = IPPROTO_IPV6;
		in->tos = (ip6.priority << 4) | (ip6.flow_lbl[0] >> 4);
		in->ttl = ip6.hop_limit;
		__builtin_memcpy(in->src, &ip6.saddr, 16);
		__builtin_memcpy(in->dst, &ip6.daddr, 16);
		return 0;
	}
	return -1;
}

/*
 * H.Encaps.Red (outer IPv6) or H.Encaps (with a one-segment SRH) of the IP
 * packet after the Ethernet header, to `sid`; the Ethernet type becomes
 * IPv6 and so does skb->protocol (ENCAP_L3_IPV6), so GSO packets stay GSO
 * and the kernel segments them as IP in IPv6. 0, or -1 (counted).
 */
static __always_inline int encap_ip(struct __sk_buff *skb, const __u8 *src, const __u8 *sid, int srh,
				    __u8 inner, __u8 tos, __u8 ttl)
{
	__u32 inner_len = skb->len - ETH_HLEN;
	/* Entropy for ECMP in the underlay, from the inner flow (RFC 6437). */
	__u32 flow = bpf_get_hash_recalc(skb) & 0xfffff;
	__u16 proto = bpf_htons(ETH_P_IPV6);
	struct outer_srh h = {};
	__u32 len = srh ? sizeof(struct outer_srh) : sizeof(struct ipv6hdr);

	/* No BPF_F_ADJ_ROOM_FIXED_GSO: GSO segments shrink by the header, so each fits the underlay MTU. */
	if (bpf_skb_adjust_room(skb, len, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6)) {
		count(STAT_DROP_ADJUST);
		return -1;
	}
	if (srh) {
		outer_header(&h.ip6, src, sid, tos, ttl, flow, inner_len + sizeof(struct srh1), NEXTHDR_ROUTING);
		h.srh.nexthdr = inner;
		h.srh.hdrlen = (sizeof(struct srh1) - 8) / 8;
		h.srh.type = SRH_TYPE_SEGMENT_ROUTING;
		__builtin_memcpy(h.srh.segment, sid, 16);
	} else {
		outer_header(&h.ip6, src, sid, tos, ttl, flow, inner_len, inner);
	}
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, len, 0) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0)) {
		count(STAT_DROP_STORE);
		return -1;
	}
	return 0;
}

/*
 * Removes `off` bytes of outer IPv6 (and SRH) after the Ethernet header in
 * front of an IPv4 (next header 4) or IPv6 (41) packet, when its family is
 * `want` (0: either). Returns the inner family, or 0 (counted); the
 * Ethernet type is the caller's to write.
 */
static __always_inline __u32 decap_ip(struct __sk_buff *skb, __u32 off, __u8 nexthdr, __u32 want)
{
	__u32 family = nexthdr == IPPROTO_IPIP ? 4 : nexthdr == IPPROTO_IPV6 ? 6 : 0;

	if (!family || (want && want != family)) {
		count(STAT_DROP_FAMILY);
		return 0;
	}
	if (bpf_skb_adjust_room(skb, -(__s32)off, BPF_ADJ_ROOM_MAC,
				family == 4 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4 : BPF_F_ADJ_ROOM_DECAP_L3_IPV6)) {
		count(STAT_DROP_ADJUST);
		return 0;
	}
	return family;
}

#include "l2.h"


SEC("tc")
int lace_encap(struct __sk_buff *skb)
{
	__u32 mark = skb->mark, zero = 0;
	struct encap_val *v;
	struct inner_ip in;

	if ((mark & MARK_MASK) != MARK_NET)
		return TC_ACT_OK;
	if (read_inner(skb, skb->protocol, &in))
		return TC_ACT_OK;
	if (in.family == 4) {
		struct encap_key4 k = { .prefixlen = 64, .net = bpf_htonl(mark & MARK_ID) };

		__builtin_memcpy(k.addr, in.dst, 4);
		v = bpf_map_lookup_elem(&lace_encap4, &k);
	} else {
		struct encap_key6 k = { .prefixlen = 160, .net = bpf_htonl(mark & MARK_ID) };

		__builtin_memcpy(k.addr, in.dst, 16);
		v = bpf_map_lookup_elem(&lace_encap6, &k);
	}
	if (!v)
		return TC_ACT_OK;

	struct config_val *cfg = bpf_map_lookup_elem(&lace_config, &zero);
	if (!cfg || !(cfg->flags & CONFIG_F_READY)) {
		/* Never let a network's packet onto the underlay unencapsulated. */
		count(STAT_PASS_NO_CONFIG);
		return TC_ACT_SHOT;
	}
	if (encap_ip(skb, cfg->src, v->sid, v->flags & ENCAP_F_SRH, in.nexthdr, in.tos, in.ttl))
		return TC_ACT_SHOT;
	count(in.family == 4 ? STAT_ENCAP4 : STAT_ENCAP6);
	return TC_ACT_OK;
}

SEC("tc")
int lace_decap(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	struct sid_key k;
	struct sid_val *v;
	__u8 nexthdr;
	__u32 off = sizeof(struct ipv6hdr);

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
		return TC_ACT_OK;
	__builtin_memcpy(k.sid, &ip6.daddr, 16);
	v = bpf_map_lookup_elem(&lace_sids, &k);
	if (!v)
		return TC_ACT_OK;
	nexthdr = ip6.nexthdr;
	__u32 sid_family = v->family, mark = v->mark;
	if (nexthdr == NEXTHDR_ROUTING) {
		__u8 srh[4];

		if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(ip6), srh, sizeof(srh)))
			return TC_ACT_SHOT;
		/* End.DX4 / End.DT6 act only where the SID is the last segment. */
		if (srh[2] != SRH_TYPE_SEGMENT_ROUTING || srh[3] != 0) {
			count(STAT_DROP_SRH);
			return TC_ACT_SHOT;
		}
		nexthdr = srh[0];
		off += ((__u32)srh[1] + 1) * 8;
	}
	if (sid_family == SID_FAMILY_L2)
		return l2_rx(skb, mark & MARK_ID, nexthdr, off);

	__u32 family = decap_ip(skb, off, nexthdr, sid_family);
	__u16 proto = bpf_htons(family == 4 ? ETH_P_IP : ETH_P_IPV6);

	if (!family)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0)) {
		count(STAT_DROP_STORE);
		return TC_ACT_SHOT;
	}
	skb->mark = mark;
	count(family == 4 ? STAT_DECAP4 : STAT_DECAP6);
	return TC_ACT_OK;
}

SEC("tc")
int lace_l2_tx(struct __sk_buff *skb)
{
	return l2_tx(skb);
}

SEC("tc")
int lace_l2_port(struct __sk_buff *skb)
{
	return l2_port_rx(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
