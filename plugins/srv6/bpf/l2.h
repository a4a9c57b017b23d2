/* lace-cni l2 (bridged) networks across nodes, included by srv6.c.
 *
 * Sending (l2_tx, egress of the network's tunnel port, which the bridge
 * sends remote MACs (static FDB) and floods to):
 * - IP unicast between known endpoints (the destination MAC is remote, the
 *   destination address's Neighbor is that MAC, and the source address's
 *   Neighbor is the source MAC, or the source MAC is the anycast gateway's
 *   and the source address has no Neighbor: a packet the node routed in)
 *   goes as IP in SRv6 (next header 4 / 41) to the owner node's l2 SID, so
 *   GSO packets stay GSO (the kernel segments IPv4/IPv6 in IPv6, never
 *   next header 143);
 * - any other frame to a remote MAC goes whole (H.Encaps.L2, next header
 *   143), and so do broadcast, multicast and unknown unicast, once to each
 *   member of the network (head-end replication: a bpf_loop over the
 *   network's members in lace_l2_members, so the fan-out is bounded by that
 *   map's size, not by the program). A GSO frame cannot go whole (no GSO
 *   handler for next header 143): it is dropped and counted.
 * Learning (l2_port_rx, ingress of every l2 pod's port): a frame whose
 * source MAC or source address the maps do not know, or whose MAC another
 * node owns (it moved) or this node learned (still talking), is reported through
 * the lace_l2_learn ring buffer, at most once a second per (network, MAC,
 * address). On the pod's port, not the tunnel port: the bridge floods no
 * gratuitous ARP to a suppressing port, and a VM may talk only to local
 * pods or its gateway.
 * Receiving (l2_rx, from lace_decap on the underlay, for an l2 SID):
 * - next header 143 (End.DX2): the inner frame enters the bridge through
 *   the tunnel port (bpf_redirect ingress), which delivers or floods it;
 * - next header 4 / 41 from an endpoint of the network (its source address
 *   has a Neighbor): the Ethernet header is restored from the Neighbor
 *   table (the destination and source addresses' MACs), exactly what the
 *   sender's frame carried, TTL untouched; then straight to the pod's port
 *   (bpf_redirect_peer) when the MAC is local and known, else into the
 *   bridge;
 * - next header 4 / 41 from elsewhere (a packet another network's endpoint
 *   sent, which the sending node routed into this network): decapsulated
 *   with the network's mark and routed in its table (End.DT behaviour), so
 *   the pod sees what any routed packet looks like (the gateway's MAC) and
 *   this node's conntrack sees the connection whose replies it routes.
 */
#ifndef LACE_L2_H
#define LACE_L2_H

#define SID_FAMILY_L2 2
#define NEXTHDR_ETHERNET 143
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Outer Ethernet + IPv6 (+ a one-segment SRH) in front of a whole frame. */
#define L2_HDR_RED (ETH_HLEN + sizeof(struct ipv6hdr))
#define L2_HDR_SRH (ETH_HLEN + sizeof(struct outer_srh))

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

/* The Neighbor's MAC of (net, address), or NULL. */
static __always_inline struct l2_nbr_val *l2_neighbor(__u32 net, __u32 family, const void *addr)
{
	struct l2_nbr_key k = { .net = net, .family = family };

	if (family == 4)
		__builtin_memcpy(k.addr, addr, 4);
	else
		__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&lace_l2_nbrs, &k);
}

/* Whether the receiver will restore exactly this frame's MACs from the Neighbor table. */
static __always_inline int l2_restorable(__u32 net, __u32 family, const void *src, const void *dst,
					 const struct ethhdr *eth, const struct l2_net_val *nv)
{
	struct l2_nbr_val *d = l2_neighbor(net, family, dst);

	if (!d || !mac_eq(d->mac, eth->h_dest))
		return 0;
	struct l2_nbr_val *s = l2_neighbor(net, family, src);

	if (s)
		return mac_eq(s->mac, eth->h_source);
	return mac_eq(nv->gw_mac, eth->h_source);
}

/*
 * Writes the outer Ethernet header towards `sid` from the FIB and the
 * underlay next hop's neighbour entry (kept resolved: the plan makes it a
 * managed one); returns the device to send by, or -1. Not
 * bpf_redirect_neigh: after bpf_skb_change_head skb->protocol is still the
 * inner frame's, which it refuses, and from a bridge port's egress it
 * dropped even IP in IPv6 on this kernel.
 */
static __always_inline int l2_out(struct __sk_buff *skb, const __u8 *src, const __u8 *sid, __u32 underlay)
{
	struct bpf_fib_lookup fib = {};
	struct ethhdr eth;

	fib.family = AF_INET6;
	fib.ifindex = underlay;
	__builtin_memcpy(fib.ipv6_src, src, 16);
	__builtin_memcpy(fib.ipv6_dst, sid, 16);
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT) != BPF_FIB_LKUP_RET_SUCCESS) {
		count(STAT_L2_DROP_NEIGH);
		return -1;
	}
	__builtin_memcpy(eth.h_dest, fib.dmac, 6);
	__builtin_memcpy(eth.h_source, fib.smac, 6);
	eth.h_proto = bpf_htons(ETH_P_IPV6);
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0)) {
		count(STAT_DROP_STORE);
		return -1;
	}
	return fib.ifindex;
}

/* The IP fast path: TC_ACT_* when the frame was taken, -1 when it does not qualify. */
static __always_inline int l2_fast(struct __sk_buff *skb, __u32 net, const struct l2_net_val *nv, const struct ethhdr *eth,
				   const __u8 *sid, const struct config_val *cfg)
{
	struct inner_ip in;

	if (read_inner(skb, eth->h_proto, &in) || !l2_restorable(net, in.family, in.src, in.dst, eth, nv))
		return -1;
	if (encap_ip(skb, cfg->src, sid, nv->flags & L2_F_SRH, in.nexthdr, in.tos, in.ttl))
		return TC_ACT_SHOT;
	/* skb->protocol is IPv6 now (ENCAP_L3_IPV6), so the underlay can segment what is GSO. */
	int out = l2_out(skb, cfg->src, sid, cfg->underlay);

	if (out < 0)
		return TC_ACT_SHOT;
	count(in.family == 4 ? STAT_L2_FAST4 : STAT_L2_FAST6);
	return bpf_redirect(out, 0);
}

/* Makes room for the outer Ethernet + IPv6 (+ SRH) in front of the frame; 0 on success. */
static __always_inline int l2_push(struct __sk_buff *skb, __u32 srh)
{
	if (skb->gso_size) {
		count(STAT_L2_DROP_GSO);
		return -1;
	}
	__u32 room = srh ? L2_HDR_SRH : L2_HDR_RED;

	if (bpf_skb_change_head(skb, room, 0)) {
		count(STAT_DROP_ADJUST);
		return -1;
	}
	return 0;
}

/* What l2_send needs besides the packet (kept by value: it crosses into bpf_loop callbacks). */
struct l2_send_ctx {
	struct __sk_buff *skb;
	__u8 src[16];
	__u32 underlay;
	__u32 net;
	__u32 frame_len;
	__u32 flow;
	__u32 srh;
	__u32 sent;
};

/* Writes the outer headers of a frame pushed by l2_push for `sid`; sends it (or a clone). */
static __always_inline int l2_send(struct l2_send_ctx *c, const __u8 *sid, int clone)
{
	int out = l2_out(c->skb, c->src, sid, c->underlay);

	if (out < 0)
		return TC_ACT_SHOT;
	if (c->srh) {
		struct outer_srh h = {};

		outer_header(&h.ip6, c->src, sid, 0, 64, c->flow, c->frame_len + sizeof(struct srh1), NEXTHDR_ROUTING);
		h.srh.nexthdr = NEXTHDR_ETHERNET;
		h.srh.hdrlen = (sizeof(struct srh1) - 8) / 8;
		h.srh.type = SRH_TYPE_SEGMENT_ROUTING;
		__builtin_memcpy(h.srh.segment, sid, 16);
		if (bpf_skb_store_bytes(c->skb, ETH_HLEN, &h, sizeof(h), 0)) {
			count(STAT_DROP_STORE);
			return TC_ACT_SHOT;
		}
	} else {
		struct ipv6hdr h = {};

		outer_header(&h, c->src, sid, 0, 64, c->flow, c->frame_len, NEXTHDR_ETHERNET);
		if (bpf_skb_store_bytes(c->skb, ETH_HLEN, &h, sizeof(h), 0)) {
			count(STAT_DROP_STORE);
			return TC_ACT_SHOT;
		}
	}
	if (clone)
		return bpf_clone_redirect(c->skb, out, 0) == 0 ? 0 : TC_ACT_SHOT;
	return bpf_redirect(out, 0);
}

static long l2_flood_one(__u32 i, void *data)
{
	struct l2_send_ctx *c = data;
	struct l2_member_key k = { .net = c->net, .index = i };
	struct l2_member_val *m = bpf_map_lookup_elem(&lace_l2_members, &k);

	if (!m)
		return 1;
	if (l2_send(c, m->sid, 1) == 0) {
		c->sent++;
		count(STAT_L2_FLOOD);
	}
	return 0;
}

/* The source address a frame announces: IPv4/IPv6 source, or the ARP sender's. Link-local and unspecified ones do not count. */
static __always_inline __u8 l2_source_address(struct __sk_buff *skb, __u16 proto, __u8 *addr)
{
	if (proto == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 12, addr, 4))
			return 0;
	} else if (proto == bpf_htons(ETH_P_ARP)) {
		/* Ethernet/IPv4 ARP: sender protocol address after 8 bytes of header and the sender MAC. */
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 14, addr, 4))
			return 0;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, addr, 16))
			return 0;
		if ((addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80) || addr[0] == 0xff)
			return 0;
		for (int i = 0; i < 16; i++)
			if (addr[i])
				return 6;
		return 0;
	} else {
		return 0;
	}
	return addr[0] || addr[1] || addr[2] || addr[3] ? 4 : 0;
}

/*
 * Reports a frame from a local port whose source MAC has no FDB entry, is
 * another node's (moved here) or was learned here (refresh), or whose
 * source address has no Neighbor or another MAC's (a VM's second address,
 * a guest behind a bridge in the VM), through the ring buffer: at most
 * once a second per (network, MAC, address).
 */
static __always_inline void l2_learn(struct __sk_buff *skb, __u32 net, __u32 port, const struct ethhdr *eth)
{
	struct l2_seen_key k = { .net = net };
	struct l2_mac_key mk = { .net = net };

	if (eth->h_source[0] & 1)
		return;
	__builtin_memcpy(mk.mac, eth->h_source, 6);
	struct l2_fdb_val *f = bpf_map_lookup_elem(&lace_l2_fdb, &mk);

	k.family = l2_source_address(skb, eth->h_proto, k.addr);
	/*
	 * A pod's own MAC (its port is known) with its own address is news to
	 * nobody (a learned second address is reported, as a refresh). Everything else from a local port is reported: a MAC another
	 * node owns (it moved here: a migrated guest's announcement), and a MAC
	 * learned here (no port: the sighting keeps its entry from ageing out
	 * while it talks), within the rate limit below.
	 */
	if (f && f->port) {
		if (!k.family)
			return;
		struct l2_nbr_val *n = l2_neighbor(net, k.family, k.addr);

		if (n && mac_eq(n->mac, eth->h_source) && !(n->flags & L2_NBR_LEARNED))
			return;
	}
	__builtin_memcpy(k.mac, eth->h_source, 6);
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&lace_l2_seen, &k);

	if (last && now - *last < L2_LEARN_INTERVAL_NS)
		return;
	bpf_map_update_elem(&lace_l2_seen, &k, &now, BPF_ANY);
	struct l2_learn_event ev = { .net = net, .ifindex = port, .family = k.family };

	__builtin_memcpy(ev.mac, eth->h_source, 6);
	__builtin_memcpy(ev.addr, k.addr, 16);
	if (bpf_ringbuf_output(&lace_l2_learn, &ev, sizeof(ev), 0))
		count(STAT_L2_LEARN_LOST);
	else
		count(STAT_L2_LEARN);
}

/* Ingress of an l2 pod's port: learning only; the frame goes on to the bridge as it came. */
static __always_inline int l2_port_rx(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct l2_port_val *port = bpf_map_lookup_elem(&lace_l2_ports, &ifindex);
	struct ethhdr eth;

	if (port && !bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
		l2_learn(skb, port->net, ifindex, &eth);
	return TC_ACT_OK;
}

static __always_inline int l2_tx(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, zero = 0;
	struct l2_port_val *port = bpf_map_lookup_elem(&lace_l2_ports, &ifindex);
	struct l2_net_val *nv;
	struct config_val *cfg;
	struct ethhdr eth;

	if (!port) {
		count(STAT_L2_DROP_PORT);
		return TC_ACT_SHOT;
	}
	__u32 net = port->net;

	nv = bpf_map_lookup_elem(&lace_l2_nets, &net);
	if (!nv) {
		count(STAT_L2_DROP_PORT);
		return TC_ACT_SHOT;
	}
	cfg = bpf_map_lookup_elem(&lace_config, &zero);
	if (!cfg || !(cfg->flags & CONFIG_F_READY)) {
		count(STAT_PASS_NO_CONFIG);
		return TC_ACT_SHOT;
	}
	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)))
		return TC_ACT_SHOT;

	struct l2_send_ctx c = {
		.skb = skb, .underlay = cfg->underlay, .net = net, .frame_len = skb->len,
		.flow = bpf_get_hash_recalc(skb) & 0xfffff, .srh = nv->flags & L2_F_SRH,
	};
	__builtin_memcpy(c.src, cfg->src, 16);

	if (!(eth.h_dest[0] & 1)) {
		struct l2_mac_key k = { .net = net };

		__builtin_memcpy(k.mac, eth.h_dest, 6);
		struct l2_fdb_val *f = bpf_map_lookup_elem(&lace_l2_fdb, &k);

		if (f && f->port) /* a local MAC: the bridge delivers it itself */
			return TC_ACT_SHOT;
		if (f) {
			__u8 sid[16];

			__builtin_memcpy(sid, f->sid, 16);
			int r = l2_fast(skb, net, nv, &eth, sid, cfg);

			if (r >= 0)
				return r;
			if (mac_eq(eth.h_source, nv->gw_mac)) {
				count(STAT_L2_DROP_GATEWAY);
				return TC_ACT_SHOT;
			}
			if (l2_push(skb, c.srh))
				return TC_ACT_SHOT;
			count(STAT_L2_UNICAST);
			return l2_send(&c, sid, 0);
		}
	}
	/* The node's own frames from the gateway (its ARP, NS, RA) are answered on every node by its own gateway. */
	if (mac_eq(eth.h_source, nv->gw_mac)) {
		count(STAT_L2_DROP_GATEWAY);
		return TC_ACT_SHOT;
	}
	__u32 members = nv->members;

	if (!members || l2_push(skb, c.srh))
		return TC_ACT_SHOT;
	bpf_loop(members, l2_flood_one, &c, 0);
	return TC_ACT_SHOT;
}

/* Delivers a packet for the l2 SID of network `net` (off: bytes of outer IPv6 and SRH after the Ethernet header). */
static __always_inline int l2_rx(struct __sk_buff *skb, __u32 net, __u8 nexthdr, __u32 off)
{
	struct l2_net_val *nv = bpf_map_lookup_elem(&lace_l2_nets, &net);

	if (!nv) {
		count(STAT_L2_DROP_PORT);
		return TC_ACT_SHOT;
	}
	__u32 port = nv->port;
	__u8 gw[6];

	__builtin_memcpy(gw, nv->gw_mac, 6);
	if (nexthdr == NEXTHDR_ETHERNET) {
		struct ethhdr inner;

		if (bpf_skb_load_bytes(skb, ETH_HLEN + off, &inner, sizeof(inner)))
			return TC_ACT_SHOT;
		if (mac_eq(inner.h_source, gw)) {
			count(STAT_L2_DROP_GATEWAY);
			return TC_ACT_SHOT;
		}
		/* The decap flag only sets skb->protocol (and passes the minimum-length check of short frames);
		 * the redirect into the port derives it again from the frame. */
		__u64 flags = inner.h_proto == bpf_htons(ETH_P_IPV6) ? BPF_F_ADJ_ROOM_DECAP_L3_IPV6 : BPF_F_ADJ_ROOM_DECAP_L3_IPV4;

		if (bpf_skb_adjust_room(skb, -(__s32)(off + ETH_HLEN), BPF_ADJ_ROOM_MAC, flags)) {
			count(STAT_DROP_ADJUST);
			return TC_ACT_SHOT;
		}
		if (bpf_skb_store_bytes(skb, 0, &inner, sizeof(inner), 0)) {
			count(STAT_DROP_STORE);
			return TC_ACT_SHOT;
		}
		count(STAT_L2_RX_FRAME);
		return bpf_redirect(port, BPF_F_INGRESS);
	}

	struct ethhdr eth = {};
	__u32 family = decap_ip(skb, off, nexthdr, 0);

	if (!family)
		return TC_ACT_SHOT;
	eth.h_proto = bpf_htons(family == 4 ? ETH_P_IP : ETH_P_IPV6);
	/* Source then destination address: IPv4 at bytes 12..19 of its header, IPv6 at 8..39. */
	__u8 addrs[32];
	__u32 alen = family == 4 ? 4 : 16;

	if (bpf_skb_load_bytes(skb, ETH_HLEN + (family == 4 ? 12 : 8), addrs, family == 4 ? 8 : 32))
		return TC_ACT_SHOT;
	struct l2_nbr_val *d = l2_neighbor(net, family, addrs + alen);
	struct l2_nbr_val *s = l2_neighbor(net, family, addrs);

	if (!s || !d) {
		/* Routed into the network on the sending node (from another network): routed here too, in the
		 * network's table, as an l3 SID's packet is (End.DT behaviour), so this node's conntrack sees
		 * the connection it will see the replies of. Also a destination this node has no Neighbor
		 * for yet (learned a moment ago elsewhere): the network's table resolves it on the bridge. */
		if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &eth.h_proto, sizeof(eth.h_proto), 0)) {
			count(STAT_DROP_STORE);
			return TC_ACT_SHOT;
		}
		skb->mark = MARK_NET | net;
		count(STAT_L2_RX_ROUTED);
		return TC_ACT_OK;
	}
	if (!d) {
		count(STAT_L2_DROP_NO_MAC);
		return TC_ACT_SHOT;
	}
	__builtin_memcpy(eth.h_dest, d->mac, 6);
	__builtin_memcpy(eth.h_source, s->mac, 6);
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0)) {
		count(STAT_DROP_STORE);
		return TC_ACT_SHOT;
	}
	count(STAT_L2_RX_FAST);
	struct l2_mac_key k = { .net = net };

	__builtin_memcpy(k.mac, eth.h_dest, 6);
	struct l2_fdb_val *f = bpf_map_lookup_elem(&lace_l2_fdb, &k);

	if (f && f->port)
		return bpf_redirect_peer(f->port, 0);
	return bpf_redirect(port, BPF_F_INGRESS);
}

#endif
