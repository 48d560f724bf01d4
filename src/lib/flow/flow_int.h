/* Flow plane internals: packet descriptor, parser, flow table, SPSC ring.
 * Not public API (tests and the fuzzer include it). */
#ifndef DRST_FLOW_INT_H
#define DRST_FLOW_INT_H

#include <stdint.h>
#include <string.h>

#include "drst/flow.h"

/* pcap LINKTYPE_* values the parser understands (see tcpdump.org/linktypes). */
enum {
    LT_NULL = 0,
    LT_ETHERNET = 1,
    LT_RAW = 101,
    LT_LOOP = 108,
    LT_LINUX_SLL = 113,
    LT_IPV4 = 228,
    LT_IPV6 = 229,
    LT_LINUX_SLL2 = 276,
    LT_ARCNET = 7,
    LT_ARCNET_LINUX = 129,
    LT_RAW_OLD = 12, /* DLT_RAW on some BSDs when read from a pcap header */
    LT_RAW_OLD2 = 14
};

/* Outcome of parsing one packet. */
enum pkt_kind {
    PKT_FLOW = 0,   /* has a flow key: hand to a worker */
    PKT_FRAG_LATER, /* IP non-first fragment: counted only */
    PKT_NON_IP,     /* link frame that is not IP */
    PKT_TRUNCATED,  /* a needed header was cut by the snaplen before the key */
    PKT_MALFORMED,  /* impossible header */
    PKT_BAD_LINK    /* unknown link type */
};

/* Descriptor of one parsed packet: all a worker needs (80 bytes). Addresses
 * in network order; IPv4 in the first 4 bytes, rest zero. */
typedef struct pkt {
    uint8_t src[16], dst[16];
    uint64_t ts_ns;
    uint64_t hash; /* pkt_hash(), set by the source */
    uint32_t wirelen;
    uint32_t payload;  /* L4 payload bytes from IP lengths */
    uint32_t seq, ack; /* TCP */
    uint16_t sport, dport;
    uint16_t vlan;
    uint8_t ipver, proto;
    uint8_t tcp_flags; /* FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 */
    uint8_t has_tcp;   /* TCP header fields are valid */
    uint8_t frag_first;
    uint8_t ctl; /* 0 packet; 1 interval tick (ts_ns = tick time); 2 finish; 3 quit */
} pkt_t;

_Static_assert(sizeof(pkt_t) == 80, "ring slots are 80 bytes");

/* Parse one captured packet into `p` (ts_ns and wirelen set by the parser
 * from the arguments). Updates parser counters in `c` (packets, bytes,
 * by-type). Never reads outside data[0..caplen). */
enum pkt_kind pkt_parse(int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                        uint64_t ts_ns, pkt_t *p, drst_flow_counters_t *c);

/* 64-bit hash of the canonical (direction-independent) key of `p`. */
uint64_t pkt_hash(const pkt_t *p);

/* ---- flow table of one worker ---- */
typedef struct flowtab flowtab_t;
struct flow_sinkctx; /* engine side: receives exports of a worker */

typedef void (*ft_emit_flow_fn)(void *ctx, const drst_flow_record_t *r);
typedef void (*ft_emit_summary_fn)(void *ctx, const drst_flow_summary_t *s, uint64_t idx);

flowtab_t *ft_new(const drst_flow_config_t *cfg, uint32_t max_flows, unsigned worker_id,
                  ft_emit_flow_fn ef, ft_emit_summary_fn es, void *ctx);
void ft_free(flowtab_t *ft);
/* Packet time ts_ns seen (by any worker): advance the table's clock and
 * run the idle sweep when due, as for a packet of its own. */
void ft_clock(flowtab_t *ft, uint64_t ts_ns);
/* Account one packet (pkt->ctl == 0) with hash h. */
void ft_packet(flowtab_t *ft, const pkt_t *p, uint64_t h);
/* Interval boundary reached at time ts_ns: close the current interval(s) up to it. */
void ft_tick(flowtab_t *ft, uint64_t ts_ns);
/* End of input: export all flows, the last summary. */
void ft_finish(flowtab_t *ft);
void ft_counters_add(const flowtab_t *ft, drst_flow_counters_t *c);
size_t ft_bytes_per_flow(const flowtab_t *ft);

/* 1 of 0..n-1 for the flow of p, the same for both directions; cheaper
 * than pkt_hash() (replica mode asks it of every packet). */
uint32_t pkt_owner(const pkt_t *p, uint32_t n);

/* Live capture: packets lost before the capture saw them (counters). */
void engine_note_capture_drops(drst_flow_engine_t *e, uint64_t n);

/* Push descriptors staged for the workers now (live capture calls it after
 * each read batch so a quiet link does not hold packets back). */
void engine_flush_staged(drst_flow_engine_t *e);

/* ---- replica mode (engine.c): files, workers > 1 ----
 * Every worker thread reads the whole file itself and parses every packet,
 * but accounts only the flows it owns; the caller runs the threads (one
 * reader each) and then calls drst_flow_engine_finish(). Nothing crosses
 * between cores but exports: on the 2-core benchmark machine handing
 * parsed packets or raw chunks to other workers over rings cost more in
 * cache-line transfers than parsing twice (2 workers: 0.26 s with rings,
 * one worker 0.23 s). */

typedef struct worker engine_worker_t;
/* Enter replica mode (several workers, nothing fed yet): worker i's handle,
 * for its reader thread only. */
drst_err_t engine_replica_begin(drst_flow_engine_t *e, char *err, size_t errlen);
engine_worker_t *engine_replica_worker(drst_flow_engine_t *e, unsigned i);
/* One packet of the file, on worker w's thread (a pcapfile_packet_fn). */
int engine_replica_packet(void *w, int linktype, const uint8_t *data, uint32_t caplen,
                          uint32_t wirelen, uint64_t ts_ns);
/* drst_flow_engine_packet() as a pcapfile_packet_fn (ctx: the engine). */
int engine_feed(void *e, int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                uint64_t ts_ns);

/* A 32-bit field of a pcap header: the file's byte order is the writer's
 * host order, `swap` when that differs from ours. */
static inline uint32_t pcap_get32(const uint8_t *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    if (swap)
        v = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    return v;
}

/* ---- classic pcap files (pcapfile.c) ---- */
typedef int (*pcapfile_filter_fn)(void *ctx, const uint8_t *pkt, uint32_t caplen, uint32_t wirelen);
/* Like read(2): bytes read into buf (at most n), 0 at the end, < 0 on error. */
typedef long (*pcapfile_read_fn)(void *ctx, uint8_t *buf, size_t n);
/* Takes one record; non-zero stops the scan. */
typedef int (*pcapfile_packet_fn)(void *ctx, int linktype, const uint8_t *data, uint32_t caplen,
                                  uint32_t wirelen, uint64_t ts_ns);
/* 1 if buf starts with a classic pcap magic (sets byte swap / ns flags). */
int pcapfile_probe(const uint8_t *buf, size_t len, int *swap, int *nsec);
/* Feed every record of the pcap file of `flen` bytes that `rd` reads and
 * that passes `flt` (may be NULL) to `fn`; stops at max packets (0 = all)
 * or *stop. DRST_ERR_FORMAT with packet number and byte offset for a cut or
 * corrupt file, DRST_ERR_IO for a read error. */
drst_err_t pcapfile_scan(const char *name, uint64_t flen, pcapfile_read_fn rd, void *rctx,
                         pcapfile_filter_fn flt, void *fctx, pcapfile_packet_fn fn, void *pctx,
                         uint64_t max, volatile int *stop, uint64_t *npk, char *err, size_t errlen);

/* ---- single-producer single-consumer ring of pkt_t (ring.c, C11 atomics) ---- */
typedef struct spsc spsc_t;
spsc_t *spsc_new(uint32_t size_pow2);
void spsc_free(spsc_t *r);
/* Producer: the next free slot to write in place, NULL when the ring is full
 * (publish, then retry later); spsc_wnext() counts it written. */
pkt_t *spsc_wslot(spsc_t *r);
void spsc_wnext(spsc_t *r);
/* Producer: make the slots written so far visible. Wakes a sleeping
 * consumer if the ring holds its wake threshold, or anything when `wake`. */
void spsc_publish(spsc_t *r, int wake);
/* Consumer: up to max contiguous readable slots from *first (0 if empty);
 * spsc_release(n) gives the first n back once they are processed. */
uint32_t spsc_peek(spsc_t *r, const pkt_t **first, uint32_t max);
void spsc_release(spsc_t *r, uint32_t n);
/* Consumer: sleep until the producer wakes us (returns at once if not empty). */
void spsc_wait(spsc_t *r);

#endif
