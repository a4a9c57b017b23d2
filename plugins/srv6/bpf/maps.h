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

/* Node-wide settings: the outer source address. */
struct config_val {
	__u8 src[16];
	__u32 flags;
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
	STAT_MAX,
};

#define ENCAP_MAX 65536
#define SID_MAX 4096

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

#endif
