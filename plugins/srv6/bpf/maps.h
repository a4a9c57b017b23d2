/* lace-cni srv6 datapath: every map, with its key and value, declared once.
 * User space encodes the same layouts in plugins/srv6/bpf_maps.ts; a change
 * here is a change there (the layout test in bpf_test.ts loads this object
 * and checks the sizes the kernel reports). */
#ifndef LACE_MAPS_H
#define LACE_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Encapsulation: (network id, inner destination prefix) -> SID.
 * LPM trie data = network id (big endian, 32 bits) then the address, so
 * prefixlen = 32 + the prefix length. One trie per inner family. */
struct encap_key4 {
	__u32 prefixlen;
	__u32 net;
	__u8 addr[4];
};

struct encap_key6 {
	__u32 prefixlen;
	__u32 net;
	__u8 addr[16];
};

#define ENCAP_F_SRH 1 /* H.Encaps with a one-segment SRH; else H.Encaps.Red */

struct encap_val {
	__u8 sid[16];
	__u32 flags;
};

/* Decapsulation: a local SID -> the network whose table the inner packet
 * is looked up in (as a packet mark) and the inner family it accepts
 * (End.DX4: 4, End.DT6: 6). */
struct sid_key {
	__u8 sid[16];
};

struct sid_val {
	__u32 mark;
	__u32 family;
};

/* Node-wide settings: the outer source address, and the underlay device
 * (ifindex) that l2 frames leave by. */
struct config_val {
	__u8 src[16];
	__u32 flags;
	__u32 underlay;
};

/* l2 (bridged) networks. Each has a tunnel port on its bridge (one end of a
 * veth pair): the bridge sends it what must cross nodes (remote MACs by its
 * static FDB, floods), lace_l2_tx encapsulates it there. */

/* A tunnel port or an l2 pod's port (ifindex) -> its network id. */
struct l2_port_val {
	__u32 net;
};

#define L2_F_SRH 1 /* a one-segment SRH on this network's frames; else Reduced */

/* A network id -> how to reach and deliver it on this node. `members` flood
 * targets sit in lace_l2_members at indexes 0 .. members-1. */
struct l2_net_val {
	__u32 port;     /* ifindex of the tunnel port (delivery into the bridge) */
	__u32 members;  /* flood targets (other nodes with endpoints) */
	__u32 flags;    /* L2_F_* */
	__u8 gw_mac[6]; /* the anycast gateway's MAC (the bridge's) */
	__u8 pad[2];
};

/* (network, MAC) -> where it is: a remote node's l2 SID, or (port != 0) a
 * local port, for delivery of the IP fast path straight to the pod. */
struct l2_mac_key {
	__u32 net;
	__u8 mac[6];
	__u8 pad[2];
};

struct l2_fdb_val {
	__u8 sid[16];
	__u32 port;
};

/* (network, IP) -> MAC: the Neighbor table, the same on every node. */
struct l2_nbr_key {
	__u32 net;
	__u32 family; /* 4 or 6 */
	__u8 addr[16];
};

struct l2_nbr_val {
	__u8 mac[6];
	__u8 flags; /* L2_NBR_LEARNED: a learned Neighbor, refreshed by sightings while it talks */
	__u8 pad;
};

#define L2_NBR_LEARNED 1

/* (network, index) -> a flood target's l2 SID. */
struct l2_member_key {
	__u32 net;
	__u32 index;
};

struct l2_member_val {
	__u8 sid[16];
};

/* Counters, one slot per event; PERCPU so the datapath never contends. */
enum lace_stat {
	STAT_ENCAP4 = 0,
	STAT_ENCAP6,
	STAT_DECAP4,
	STAT_DECAP6,
	STAT_DROP_SRH,       /* SRH with segments left, or not type 4 */
	STAT_DROP_FAMILY,    /* inner family is not the SID's */
	STAT_DROP_ADJUST,    /* bpf_skb_adjust_room refused */
	STAT_DROP_STORE,     /* writing the header failed */
	STAT_PASS_NO_CONFIG, /* no outer source configured yet */
	STAT_L2_FAST4,       /* l2 IPv4 unicast sent as IP in SRv6 (next header 4) */
	STAT_L2_FAST6,       /* l2 IPv6 unicast sent as IP in SRv6 (next header 41) */
	STAT_L2_UNICAST,     /* l2 frame to a remote MAC sent whole (next header 143) */
	STAT_L2_FLOOD,       /* copies of a broadcast / unknown unicast frame sent */
	STAT_L2_RX_FRAME,    /* whole frames delivered into a bridge (End.DX2) */
	STAT_L2_RX_FAST,     /* fast-path packets delivered with their Ethernet header restored */
	STAT_L2_DROP_GSO,    /* a GSO frame that could only go whole: no GSO for next header 143 */
	STAT_L2_DROP_NEIGH,  /* no resolved underlay neighbour for a frame sent whole */
	STAT_L2_DROP_GATEWAY, /* the node's own frame from the anycast gateway MAC (answered on every node) */
	STAT_L2_DROP_NO_MAC, /* a fast-path packet to an address without a Neighbor */
	STAT_L2_DROP_PORT,   /* a frame on a port or for a network this node does not know */
	STAT_L2_RX_ROUTED,   /* fast-path packets from another network, routed in the network's table */
	STAT_L2_LEARN,       /* unknown source MAC / address reported to user space */
	STAT_L2_LEARN_LOST,  /* a report the ring buffer had no room for */
	STAT_MAX,
};

#define ENCAP_MAX 65536
#define SID_MAX 4096
/* Capacities, not caps on one network: the loader may size these maps up
 * (bpf_map__set_max_entries) before loading. */
#define L2_NET_MAX 4096
#define L2_MAC_MAX 262144
#define L2_MEMBER_MAX 262144

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ENCAP_MAX);
	__type(key, struct encap_key4);
	__type(value, struct encap_val);
} lace_encap4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, ENCAP_MAX);
	__type(key, struct encap_key6);
	__type(value, struct encap_val);
} lace_encap6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SID_MAX);
	__type(key, struct sid_key);
	__type(value, struct sid_val);
} lace_sids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config_val);
} lace_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lace_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L2_NET_MAX);
	__type(key, __u32);
	__type(value, struct l2_port_val);
} lace_l2_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L2_NET_MAX);
	__type(key, __u32);
	__type(value, struct l2_net_val);
} lace_l2_nets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, L2_MAC_MAX);
	__type(key, struct l2_mac_key);
	__type(value, struct l2_fdb_val);
} lace_l2_fdb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, L2_MAC_MAX);
	__type(key, struct l2_nbr_key);
	__type(value, struct l2_nbr_val);
} lace_l2_nbrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, L2_MEMBER_MAX);
	__type(key, struct l2_member_key);
	__type(value, struct l2_member_val);
} lace_l2_members SEC(".maps");

/* Learning: a frame from a local port whose source MAC (or source address)
 * the network's maps do not know is reported to user space, at most once a
 * second per (network, MAC, address): lace_l2_seen remembers when. */
struct l2_learn_event {
	__u32 net;
	__u32 ifindex; /* the port the frame came in by */
	__u8 mac[6];
	__u8 family;   /* 4, 6, or 0: no address */
	__u8 pad;
	__u8 addr[16];
};

struct l2_seen_key {
	__u32 net;
	__u8 mac[6];
	__u8 family;
	__u8 pad;
	__u8 addr[16];
};

#define L2_LEARN_RING (64 * 1024)
#define L2_LEARN_INTERVAL_NS 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, L2_LEARN_RING);
} lace_l2_learn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l2_seen_key);
	__type(value, __u64);
} lace_l2_seen SEC(".maps");

#endif
