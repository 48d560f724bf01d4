/**
 * @file flow.h
 * @brief Flow plane: packets -> bidirectional flows -> per-flow statistics.
 *
 * Pipeline (docs/flows.md):
 *
 *     source (1 thread: libpcap read + header parse + key hash)
 *        |  per-worker single-producer/single-consumer rings, by key hash
 *        v
 *     worker x N (each owns a disjoint flow table: stats, timeouts, eviction)
 *        |  flow records and partial interval summaries
 *        v
 *     sink (serialised callbacks; merges the partial summaries of all workers)
 *
 * With one worker everything runs inline on the source thread (no ring).
 *
 * A flow is the canonical bidirectional 5-tuple plus the outer VLAN id. The
 * client is the side that sent the first SYN (without ACK) seen, else the
 * sender of the first packet. Statistics are kept per direction: c2s (client
 * to server) and s2c.
 */
#ifndef DRST_FLOW_H
#define DRST_FLOW_H

#include "drst/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Why a flow record was exported. */
typedef enum drst_flow_state {
    DRST_FLOW_STATE_ONGOING = 0,  /**< interim record (active timeout) or flushed at end of input */
    DRST_FLOW_STATE_COMPLETE = 1, /**< TCP: FIN seen in both directions */
    DRST_FLOW_STATE_RESET = 2,    /**< TCP: RST seen */
    DRST_FLOW_STATE_TIMEOUT = 3,  /**< no packet for idle-timeout seconds */
    DRST_FLOW_STATE_EVICTED = 4   /**< exported early: the table was full (oldest idle) */
} drst_flow_state_t;

/** @brief Statistics of one direction of a flow. Times are in seconds. */
typedef struct drst_flow_dir_stats {
    uint64_t packets;       /**< packets (non-first fragments are not attributed) */
    uint64_t bytes;         /**< wire bytes (pcap original length, link header included) */
    uint64_t payload;       /**< L4 payload bytes, from IP lengths (not limited by snaplen) */
    uint64_t retx_bytes;    /**< TCP payload bytes of retransmitted segments */
    uint64_t retx_packets;  /**< TCP segments whose data lies below the highest sequence sent */
    uint64_t ooo_packets;   /**< TCP: below the highest sequence but within min RTT (reordering) */
    uint32_t syn, fin, rst; /**< TCP flag counts (saturate at 65535) */
    uint32_t rtt_count;     /**< RTT samples: handshake + data->ACK (Karn: none on retransmits) */
    double rtt_min, rtt_avg, rtt_max, rtt_stdev; /**< RTT of data sent this way (NaN: none) */
    double iat_mean, iat_stdev; /**< inter-arrival time of this direction (NaN: < 2 packets) */
} drst_flow_dir_stats_t;

/** @brief One exported flow (final or interim). Addresses are in network order. */
typedef struct drst_flow_record {
    uint64_t flow_id;        /**< unique per run: (worker << 48) | sequence */
    uint32_t interim;        /**< 0 for a final record, n for the n-th interim export */
    uint8_t ipver;           /**< 4 or 6 */
    uint8_t proto;           /**< IP protocol (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...) */
    uint16_t vlan;           /**< outer 802.1Q VLAN id, 0 if none */
    uint8_t client_ip[16];   /**< IPv4 uses the first 4 bytes */
    uint8_t server_ip[16];   /**< IPv4 uses the first 4 bytes */
    uint16_t client_port;    /**< host order; ICMP: echo identifier or 0 */
    uint16_t server_port;    /**< host order */
    drst_flow_state_t state; /**< see drst_flow_state_t */
    double start, end;       /**< first and last packet, seconds since the epoch */
    double duration;         /**< end - start */
    double throughput_bps;   /**< (c2s.bytes + s2c.bytes) * 8 / duration, 0 if duration == 0 */
    drst_flow_dir_stats_t c2s, s2c;
} drst_flow_record_t;

/** @brief RTT histogram buckets of a summary: bucket 4*o+q holds samples in
 * [2^o * (1 + q/4), 2^o * (1 + (q+1)/4)) microseconds (4 linear steps per
 * octave, o < 32); samples below 2 us go to bucket 0. */
#define DRST_FLOW_RTT_BUCKETS 128

/** @brief Statistics of one interval (all workers merged). */
typedef struct drst_flow_summary {
    double start;                     /**< interval start, seconds since the epoch */
    double length;                    /**< interval length, seconds */
    uint64_t packets;                 /**< packets attributed to flows in the interval */
    uint64_t bytes;                   /**< their wire bytes */
    uint64_t active_flows;            /**< flows that saw at least one packet in the interval */
    uint64_t new_flows;               /**< flows created in the interval */
    uint64_t ended_flows;             /**< flows exported final in the interval */
    uint64_t tcp_data_packets;        /**< TCP segments carrying payload */
    uint64_t retx_packets;            /**< of those, retransmitted */
    double retx_rate;                 /**< retx_packets / tcp_data_packets (0 if none) */
    uint64_t rtt_count;               /**< RTT samples taken in the interval */
    double rtt_p50, rtt_p90, rtt_p99; /**< seconds, bucket midpoints (within 12%; NaN if none) */
    uint64_t rtt_hist[DRST_FLOW_RTT_BUCKETS]; /**< see DRST_FLOW_RTT_BUCKETS */
} drst_flow_summary_t;

/** @brief Packet-level counters of the source (parser) and the workers. */
typedef struct drst_flow_counters {
    uint64_t packets;          /**< packets read */
    uint64_t bytes;            /**< wire bytes read */
    uint64_t truncated;        /**< packets cut by the snaplen inside a needed header */
    uint64_t malformed;        /**< impossible header values (bad lengths, versions) */
    uint64_t ipv4, ipv6;       /**< IP packets by version */
    uint64_t frag_first;       /**< first IPv4/IPv6 fragments (attributed to their flow) */
    uint64_t frag_later;       /**< non-first fragments (counted only) */
    uint64_t non_ip;           /**< link-level frames that are not IP (ARP, LLDP, ...) */
    uint64_t arp;              /**< of those, ARP */
    uint64_t unsupported_link; /**< packets of a link type the parser does not know */
    uint64_t by_ipproto[256];  /**< IP packets by (final) protocol number */
    uint64_t flows;            /**< flows created */
    uint64_t flow_records;     /**< records exported (final + interim) */
    uint64_t interim_records;  /**< of those, interim (active timeout) */
    uint64_t evicted;          /**< flows exported early because the table was full */
    uint64_t max_live_flows;   /**< high-water mark of live flows (sum over workers) */
    uint64_t ring_waits;       /**< times the source waited for a full worker ring */
    uint64_t dropped_nomem;    /**< packets not attributed: no memory for a new flow */
    uint64_t capture_drops;    /**< live capture: packets the kernel or the interface
                                    dropped before drst saw them (pcap_stats) */
} drst_flow_counters_t;

/** @brief Engine configuration; drst_flow_config_init() sets the defaults. */
typedef struct drst_flow_config {
    unsigned workers;      /**< worker threads (1 = inline on the source thread). Default 1 */
    double idle_timeout;   /**< export a flow after this many idle seconds. Default 60 */
    double active_timeout; /**< interim export every this many seconds of a flow's life (0 =
                              never). Default 300 */
    double interval;       /**< summary interval in seconds (0 = no summaries). Default 1 */
    uint32_t max_flows;    /**< live flows at most (over all workers). Default 1048576 */
    uint32_t ring_size;    /**< packets per worker ring (power of 2). Default 16384 */
} drst_flow_config_t;

/** @brief Fill `c` with the defaults documented in drst_flow_config_t. */
void drst_flow_config_init(drst_flow_config_t *c);

/**
 * @brief Where exports go. Both callbacks are optional and are serialised by
 * the engine (@locks sink mutex): they never run concurrently, but may run on
 * any worker thread. The record pointers are valid during the call only.
 */
typedef struct drst_flow_sink {
    void (*on_flow)(void *opaque, const drst_flow_record_t *rec);
    void (*on_summary)(void *opaque, const drst_flow_summary_t *sum);
    void *opaque;
    /** a packet counted truncated, malformed or of an unsupported link type
     * (it gets no flow): its captured bytes, to keep as a dead letter (see
     * drst_flow_rejects_open()); may be NULL */
    void (*on_reject)(void *opaque, int linktype, const uint8_t *data, uint32_t caplen,
                      uint32_t wirelen, uint64_t ts_ns);
} drst_flow_sink_t;

/** @brief A flow engine: workers, their flow tables and the sink. */
typedef struct drst_flow_engine drst_flow_engine_t;

/**
 * @brief Create an engine and start its worker threads (if workers > 1).
 * @param sink copied; its opaque pointer is borrowed and must outlive the engine.
 * @return an engine (drst_flow_engine_free()) or NULL with the reason in err.
 */
drst_flow_engine_t *drst_flow_engine_new(const drst_flow_config_t *cfg,
                                         const drst_flow_sink_t *sink, char *err, size_t errlen);

/**
 * @brief Feed one captured packet (@locality one source thread).
 * @param linktype pcap LINKTYPE_* of the capture
 * @param data caplen captured bytes (borrowed, not kept)
 * @param wirelen original length on the wire
 * @param ts_ns capture time, nanoseconds since the epoch
 * @return DRST_OK (bad packets are counted, never fatal) or DRST_ERR_STATE after finish.
 */
drst_err_t drst_flow_engine_packet(drst_flow_engine_t *e, int linktype, const uint8_t *data,
                                   uint32_t caplen, uint32_t wirelen, uint64_t ts_ns) DRST_WUR;

/**
 * @brief End of input: drain the workers, export every live flow (state
 * ongoing unless ended) and the last summary, stop the threads. Idempotent.
 */
drst_err_t drst_flow_engine_finish(drst_flow_engine_t *e, char *err, size_t errlen) DRST_WUR;

/** @brief Counters so far (complete after finish). */
void drst_flow_engine_counters(const drst_flow_engine_t *e, drst_flow_counters_t *out);

/** @brief Bytes of flow state allocated per live-flow slot (flow struct + hash buckets). */
size_t drst_flow_engine_bytes_per_flow(const drst_flow_engine_t *e);

/** @brief Stop the threads if running (without flushing) and free; NULL is a no-op. */
void drst_flow_engine_free(drst_flow_engine_t *e);

/** @brief Capture source options. */
typedef struct drst_flow_capture_opts {
    const char *file;     /**< pcap or pcapng file to read, or NULL */
    const char *iface;    /**< interface for live capture, or NULL (exactly one of file/iface) */
    const char *filter;   /**< BPF filter expression, or NULL */
    int snaplen;          /**< live capture snaplen, 0 = 256 (headers are enough) */
    uint64_t max_packets; /**< stop after this many packets, 0 = no limit */
    /** live capture: called once the interface captures (after activation and
     * the filter), so a caller can say so or start traffic; may be NULL */
    void (*on_ready)(void *ctx, const char *iface);
    void *ready_ctx; /**< passed to on_ready */
} drst_flow_capture_opts_t;

/**
 * @brief Read packets from a file or interface into `e` until the end of
 * the file, `max_packets`, or `*stop` becoming non-zero (may be set from a
 * signal handler; live capture then returns within ~100 ms). Does not call
 * drst_flow_engine_finish().
 * @return DRST_OK, DRST_ERR_IO (cannot open; libpcap's reason in err),
 *         DRST_ERR_FORMAT (not a capture, truncated or corrupt file: offset in err),
 *         DRST_ERR_EMPTY (the file holds no packet), DRST_ERR_INVAL (bad filter).
 */
drst_err_t drst_flow_capture_run(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e,
                                 volatile int *stop, char *err, size_t errlen) DRST_WUR;

/** @brief A pcap file of rejected packets (dead letters), nanosecond
 * timestamps, the link type of the first packet written. */
typedef struct drst_flow_rejects drst_flow_rejects_t;

/** @brief Create (truncate) `path`; the file is written on the first packet.
 * @return a writer (drst_flow_rejects_close()) or NULL with the reason. */
drst_flow_rejects_t *drst_flow_rejects_open(const char *path, char *err, size_t errlen);

/** @brief Append one packet (a sink's on_reject; not thread-safe: the engine
 * calls on_reject under its sink lock). A packet of another link type than
 * the file's is counted as lost (drst_flow_rejects_close() says how many). */
void drst_flow_rejects_write(drst_flow_rejects_t *r, int linktype, const uint8_t *data,
                             uint32_t caplen, uint32_t wirelen, uint64_t ts_ns);

/** @brief Flush and close; NULL is a no-op. *written / *lost (may be NULL)
 * get the packets kept and those that could not be written.
 * @return DRST_OK or DRST_ERR_IO (the reason in err). */
drst_err_t drst_flow_rejects_close(drst_flow_rejects_t *r, uint64_t *written, uint64_t *lost,
                                   char *err, size_t errlen);

/** @brief Output formats of the formatters below. */
typedef enum drst_flow_format { DRST_FLOW_FMT_CSV = 0, DRST_FLOW_FMT_JSONL = 1 } drst_flow_format_t;

/** @brief Name of a state ("ongoing", "complete", "reset", "timeout", "evicted"). */
const char *drst_flow_state_name(drst_flow_state_t s);

/**
 * @brief Write the CSV header line of flow records (with '\n') into buf[cap].
 * @return the length written, or the length needed (>= cap) when too small.
 */
size_t drst_flow_csv_header(char *buf, size_t cap);
/** @brief CSV header line of summary records. Same return convention. */
size_t drst_flow_summary_csv_header(char *buf, size_t cap);

/**
 * @brief Format one flow record as a CSV line or a JSON object line (the
 * DESIGN.md record form: seq, ts, features{...}, plus a "flow" object with
 * the key), each ending in '\n'. `seq` is the record sequence number.
 * @return the length written, or the length needed (>= cap) when too small.
 */
size_t drst_flow_record_format(drst_flow_format_t fmt, const drst_flow_record_t *r, uint64_t seq,
                               char *buf, size_t cap);
/** @brief Same for a summary record. */
size_t drst_flow_summary_format(drst_flow_format_t fmt, const drst_flow_summary_t *s, uint64_t seq,
                                char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* DRST_FLOW_H */
