/**
 * @file stream.h
 * @brief Stream plane: records, schemas, dead letters and transports.
 *
 * A record is a feature vector aligned to a named schema, an optional label
 * and timestamps. Its interoperable wire form is JSON (docs/stream.md):
 *
 *     {"seq":12,"ts":1700000000.25,"send_ts":1700000000.5,
 *      "features":{"firewall_instructions":1.0e10,...},"label":408.2}
 *
 * and an end-of-stream sentinel is `{"eos":true,"partition":p}`. A compact
 * binary form (drst_record_encode_bin()) exists for speed between drst
 * processes that share a schema; it carries the schema hash and is refused
 * by a reader with another schema.
 *
 * Transports move opaque payloads (usually encoded records) through topics
 * with partitions, consumer groups and committed offsets. Three backends sit
 * behind one `const struct drst_transport_ops` table:
 *  - drst_transport_inproc: an in-process partitioned log (drst_log_t), the
 *    embedded default, shared by several threads of one process;
 *  - drst_transport_kafka:  Kafka through librdkafka;
 *  - drst_transport_jsonl:  JSON Lines files in and out (replay, debugging).
 *
 * Threading rules (apply to every function below unless it says otherwise):
 *  - drst_schema_t is immutable after drst_schema_new(): any number of
 *    threads may read it at once.
 *  - drst_log_t is thread-safe: one internal mutex per topic
 *    (@locks topic->mu), taken by produce, poll, commit and subscribe.
 *  - drst_stream_t (one client handle) belongs to one thread at a time
 *    (@locality the caller's thread); give each consumer thread its own handle,
 *    all connected to the same drst_log_t or Kafka cluster.
 *  - drst_dlq_t is thread-safe (@locks dlq mutex).
 *
 * Consumer contract (at-least-once, exactly-once when nobody fails):
 *  1. drst_stream_poll() returns a batch of messages or an event;
 *  2. the caller processes the batch, then calls drst_stream_commit(), which
 *     commits everything returned so far (and marks partitions whose
 *     sentinel was processed as finished);
 *  3. only then polls again. A poll releases partitions revoked by a
 *     rebalance, so a new owner starts exactly after the last commit.
 * A member that dies without committing has its partitions redelivered to
 * the survivors from the last committed offsets.
 */
#ifndef DRST_STREAM_H
#define DRST_STREAM_H

#include "drst/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Schema                                                              */
/* ------------------------------------------------------------------ */

/** @brief An immutable ordered list of feature names with fill defaults. */
typedef struct drst_schema drst_schema_t;

/**
 * @brief Create a schema from `n` feature names (copied).
 * @param defaults n values used to fill a missing feature (e.g. training
 *        means), copied; NULL fills with NaN.
 * @return a schema owned by the caller (drst_schema_free()), or NULL with a
 *         message in err (duplicate or empty name, n == 0, no memory).
 */
drst_schema_t *drst_schema_new(const char *const *names, size_t n, const double *defaults,
                               char *err, size_t errlen);
/** @brief Free a schema; NULL is a no-op. */
void drst_schema_free(drst_schema_t *s);
/** @brief Number of features. */
size_t drst_schema_size(const drst_schema_t *s);
/** @brief Name of feature i (owned by the schema). */
const char *drst_schema_name(const drst_schema_t *s, size_t i);
/** @brief Fill default of feature i. */
double drst_schema_default(const drst_schema_t *s, size_t i);
/** @brief Index of the feature `name` of `len` bytes, or -1. O(1) hash lookup. */
long drst_schema_index(const drst_schema_t *s, const char *name, size_t len);
/** @brief 64-bit hash of the ordered names (FNV-1a), stored in binary records. */
uint64_t drst_schema_hash(const drst_schema_t *s);

/* ------------------------------------------------------------------ */
/* Record                                                              */
/* ------------------------------------------------------------------ */

/**
 * @brief One record, decoded into caller-provided storage.
 *
 * `features` points to a caller-owned array of drst_schema_size() doubles
 * that decoding fills; decoding never allocates. Timestamps are seconds
 * since the Unix epoch (NaN when absent). `partition`, `offset` and
 * `recv_ts` are set by the consumer side, not carried in the payload
 * (except `partition` of a sentinel).
 */
typedef struct drst_record {
    uint64_t seq;       /**< producer sequence number */
    double ts;          /**< event time */
    double send_ts;     /**< time the producer sent it */
    double recv_ts;     /**< time the consumer received it */
    int32_t partition;  /**< partition it came from (or the sentinel's) */
    int64_t offset;     /**< offset in that partition, -1 if unknown */
    double *features;   /**< caller-owned, drst_schema_size() values */
    double label;       /**< target value when has_label */
    int has_label;      /**< label present */
    int eos;            /**< this is an end-of-stream sentinel (no features) */
    uint32_t n_missing; /**< schema features absent here (filled with defaults) */
    uint32_t n_unknown; /**< features present here but not in the schema (ignored) */
} drst_record_t;

/** @brief Running alignment counters; zero-initialise, add with drst_align_count(). */
typedef struct drst_align_stats {
    uint64_t records;   /**< data records decoded */
    uint64_t eos;       /**< sentinels decoded */
    uint64_t missing;   /**< missing feature values filled with defaults */
    uint64_t unknown;   /**< unknown feature values ignored */
    uint64_t malformed; /**< payloads rejected (sent to the dead-letter sink) */
} drst_align_stats_t;

/** @brief Add one decoded record (or a rejection when rc != DRST_OK) to stats. */
void drst_align_count(drst_align_stats_t *st, const drst_record_t *rec, drst_err_t rc);

/**
 * @brief Decode a JSON record into `rec` (its `features` must be set).
 *
 * Fast path: a hand-written bounds-checked decoder for the record shape;
 * inputs it does not handle (escaped keys, nested values) fall back to
 * jansson. Features are matched by name: missing ones get the schema
 * default (counted in rec->n_missing), unknown ones are ignored
 * (rec->n_unknown). `buf` need not be NUL-terminated.
 * @return DRST_OK, or DRST_ERR_PARSE (not JSON / not an object / wrong
 *         types; the reason with byte offset in err).
 */
drst_err_t drst_record_decode_json(const drst_schema_t *s, const void *buf, size_t len,
                                   drst_record_t *rec, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Decode a binary record (drst_record_encode_bin()).
 * @return DRST_OK, DRST_ERR_FORMAT (bad magic/size), DRST_ERR_SCHEMA
 *         (written with another schema).
 */
drst_err_t drst_record_decode_bin(const drst_schema_t *s, const void *buf, size_t len,
                                  drst_record_t *rec, char *err, size_t errlen) DRST_WUR;

/** @brief Decode either form: binary if it starts with the binary magic, else JSON. */
drst_err_t drst_record_decode(const drst_schema_t *s, const void *buf, size_t len,
                              drst_record_t *rec, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Encode `rec` as one JSON object (no newline) into buf[cap].
 *
 * NaN features are left out (a reader fills them with its default); a NaN
 * or absent label (has_label == 0) is left out; numbers are written with
 * 17 significant digits only when fewer do not read back exactly.
 * A record with rec->eos set is written as the sentinel.
 * @param outlen receives the length written (a NUL follows if room).
 * @return DRST_OK or DRST_ERR_TOOBIG (buffer too small; nothing usable).
 */
drst_err_t drst_record_encode_json(const drst_schema_t *s, const drst_record_t *rec, char *buf,
                                   size_t cap, size_t *outlen) DRST_WUR;

/** @brief Bytes needed by drst_record_encode_bin() for schema s. */
size_t drst_record_bin_size(const drst_schema_t *s);

/**
 * @brief Encode `rec` in the compact binary form (little-endian, fixed size
 * drst_record_bin_size(s); sentinels are the same size).
 */
drst_err_t drst_record_encode_bin(const drst_schema_t *s, const drst_record_t *rec, void *buf,
                                  size_t cap, size_t *outlen) DRST_WUR;

/** @brief Write the JSON sentinel `{"eos":true,"partition":p}`. */
drst_err_t drst_record_encode_eos(int32_t partition, char *buf, size_t cap,
                                  size_t *outlen) DRST_WUR;

/* ------------------------------------------------------------------ */
/* Dead letters                                                        */
/* ------------------------------------------------------------------ */

typedef struct drst_stream drst_stream_t;

/**
 * @brief A dead-letter sink: rejected payloads with their reason. Each
 * dead letter is one JSON line
 * `{"reason":"...","source":"topic/partition/offset","payload":"<original>"}`
 * appended to a file or produced to a topic. Thread-safe.
 */
typedef struct drst_dlq drst_dlq_t;

/** @brief Open (truncate) a dead-letter file. @return NULL + err on failure. */
drst_dlq_t *drst_dlq_open_file(const char *path, char *err, size_t errlen);
/**
 * @brief A sink producing to `topic` through `producer` (borrowed: it must
 * outlive the sink and is then used from the thread calling drst_dlq_put()).
 */
drst_dlq_t *drst_dlq_open_topic(drst_stream_t *producer, const char *topic, char *err,
                                size_t errlen);
/** @brief Record one dead letter. `source` may be NULL. */
drst_err_t drst_dlq_put(drst_dlq_t *q, const void *payload, size_t len, const char *source,
                        const char *reason, char *err, size_t errlen) DRST_WUR;
/** @brief Dead letters written so far. */
uint64_t drst_dlq_count(const drst_dlq_t *q);
/** @brief Flush and free; NULL is a no-op. */
void drst_dlq_free(drst_dlq_t *q);

/* ------------------------------------------------------------------ */
/* In-process partitioned log                                          */
/* ------------------------------------------------------------------ */

/** @brief Assignment of a group's partitions among its members. */
typedef enum drst_assignor {
    DRST_ASSIGN_RANGE = 0,     /**< contiguous ranges, members sorted by id */
    DRST_ASSIGN_ROUNDROBIN = 1 /**< partition p to member p % m */
} drst_assignor_t;

/** @brief Options of drst_log_new(); zero-initialise for defaults. */
typedef struct drst_log_conf {
    size_t retention;         /**< records kept per partition, default 65536 */
    drst_assignor_t assignor; /**< default range */
} drst_log_conf_t;

/**
 * @brief An in-process partitioned log: topics of P partitions, each a
 * bounded ring of `retention` records.
 *
 * Retention and backpressure: while a topic has no consumer group the
 * oldest records are dropped when a partition is full (like Kafka
 * retention); once groups exist, a producer blocks (drst_stream_produce()
 * waits on a condition variable, no spinning) until the slowest group has
 * committed past the oldest record. A group created with from_beginning
 * starts at the oldest retained record, otherwise at the end.
 * Thread-safe; must outlive every handle opened on it.
 */
typedef struct drst_log drst_log_t;

drst_log_t *drst_log_new(const drst_log_conf_t *conf, char *err, size_t errlen);
/** @brief Free the log; every handle must be closed first. NULL is a no-op. */
void drst_log_free(drst_log_t *log);
/** @brief Create a topic; DRST_ERR_STATE if it exists with another partition count. */
drst_err_t drst_log_create_topic(drst_log_t *log, const char *topic, int32_t partitions, char *err,
                                 size_t errlen) DRST_WUR;

/* ------------------------------------------------------------------ */
/* Transports                                                          */
/* ------------------------------------------------------------------ */

/** @brief Options of drst_stream_open(); zero-initialise, set what applies. */
typedef struct drst_stream_conf {
    drst_log_t *log;       /**< inproc: the shared log (borrowed) */
    const char *bootstrap; /**< kafka: "host:port,..." */
    const char *path;      /**< jsonl: file to read (consumer) or write (producer), "-" = stdio */
    const char *client_id; /**< optional client id */
    const char *const *kv; /**< kafka: extra "key=value" settings (like kcat -X) */
    size_t nkv;
    int from_beginning;       /**< a new group starts at the oldest record */
    drst_assignor_t assignor; /**< kafka: partition.assignment.strategy */
    int session_timeout_ms;   /**< kafka: group session timeout, default 6000 */
} drst_stream_conf_t;

/** @brief One message returned by poll; valid until the next poll or close. */
typedef struct drst_msg {
    const void *payload;
    size_t len;
    int32_t partition;
    int64_t offset;
} drst_msg_t;

/** @brief What a poll returned. */
typedef enum drst_stream_ev {
    DRST_STREAM_EV_NONE = 0,   /**< timeout: nothing arrived */
    DRST_STREAM_EV_MSGS = 1,   /**< `n` messages in `msgs` */
    DRST_STREAM_EV_ASSIGN = 2, /**< the handle now owns `parts` (its whole set) */
    DRST_STREAM_EV_REVOKE = 3  /**< `parts` were taken away by a rebalance */
} drst_stream_ev_t;

/** @brief Result of drst_stream_poll(); storage owned by the handle. */
typedef struct drst_stream_batch {
    drst_stream_ev_t ev;
    const drst_msg_t *msgs;
    size_t n;
    const int32_t *parts; /**< ASSIGN/REVOKE: partition ids */
    const uint8_t
        *finished; /**< ASSIGN: 1 if the group already committed that partition's sentinel */
    size_t nparts;
} drst_stream_batch_t;

/** @brief Counters of one handle (drst_stream_stats()). */
typedef struct drst_stream_stats {
    uint64_t produced;           /**< produce calls accepted */
    uint64_t delivered;          /**< delivery reports: success */
    uint64_t delivery_failed;    /**< delivery reports: permanent failure */
    uint64_t consumed;           /**< messages returned by poll */
    uint64_t commits;            /**< successful commits */
    uint64_t rebalances;         /**< assignment changes seen */
    uint64_t backpressure_waits; /**< inproc: produce calls that had to wait */
    uint64_t retention_drops;    /**< inproc: records dropped with no group */
    uint64_t stats_events;       /**< kafka: statistics callbacks (-X statistics.interval.ms) */
} drst_stream_stats_t;

/**
 * @brief A transport backend. Every handle begins with a pointer to its ops,
 * so the drst_stream_* wrappers below dispatch through it.
 */
struct drst_transport_ops {
    const char *name; /**< "inproc", "kafka", "jsonl" */
    drst_stream_t *(*open)(const drst_stream_conf_t *conf, char *err, size_t errlen);
    drst_err_t (*partitions)(drst_stream_t *h, const char *topic, int32_t *n, char *err,
                             size_t errlen);
    drst_err_t (*produce)(drst_stream_t *h, const char *topic, int32_t partition, const void *key,
                          size_t keylen, const void *payload, size_t len, char *err, size_t errlen);
    drst_err_t (*flush)(drst_stream_t *h, int timeout_ms, char *err, size_t errlen);
    drst_err_t (*subscribe)(drst_stream_t *h, const char *topic, const char *group,
                            const char *member_id, char *err, size_t errlen);
    drst_err_t (*poll)(drst_stream_t *h, int timeout_ms, size_t max, drst_stream_batch_t *out,
                       char *err, size_t errlen);
    drst_err_t (*commit)(drst_stream_t *h, const int32_t *finished, size_t nfinished, char *err,
                         size_t errlen);
    void (*stats)(drst_stream_t *h, drst_stream_stats_t *out);
    void (*close)(drst_stream_t *h);
};

extern const struct drst_transport_ops drst_transport_inproc;
extern const struct drst_transport_ops drst_transport_kafka;
extern const struct drst_transport_ops drst_transport_jsonl;

/** @brief The transport named "inproc", "kafka" or "jsonl", or NULL. */
const struct drst_transport_ops *drst_transport_find(const char *name);

/** @brief Open a client handle of transport `ops`. @return NULL + err on failure. */
drst_stream_t *drst_stream_open(const struct drst_transport_ops *ops,
                                const drst_stream_conf_t *conf, char *err, size_t errlen);

/** @brief Number of partitions of `topic` (DRST_ERR_NOTFOUND if it does not exist). */
drst_err_t drst_stream_partitions(drst_stream_t *h, const char *topic, int32_t *n, char *err,
                                  size_t errlen) DRST_WUR;

/**
 * @brief Produce one payload (copied). partition >= 0 picks it; -1 hashes
 * `key` (murmur2 like Kafka's default partitioner; no key: round robin).
 * inproc: may block for backpressure (see drst_log_t). kafka: asynchronous,
 * the delivery report is counted in the stats; DRST_ERR_BUSY when the local
 * queue is full after waiting.
 */
drst_err_t drst_stream_produce(drst_stream_t *h, const char *topic, int32_t partition,
                               const void *key, size_t keylen, const void *payload, size_t len,
                               char *err, size_t errlen) DRST_WUR;

/** @brief Wait until every produced message is delivered (kafka) or written. */
drst_err_t drst_stream_flush(drst_stream_t *h, int timeout_ms, char *err, size_t errlen) DRST_WUR;

/** @brief Join consumer group `group` on `topic` as `member_id` (may be NULL). */
drst_err_t drst_stream_subscribe(drst_stream_t *h, const char *topic, const char *group,
                                 const char *member_id, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Wait up to timeout_ms for messages (at most `max`) or an event.
 * @return DRST_OK (see out->ev), DRST_ERR_EOF (jsonl: end of file),
 *         DRST_ERR_TRANSPORT.
 */
drst_err_t drst_stream_poll(drst_stream_t *h, int timeout_ms, size_t max, drst_stream_batch_t *out,
                            char *err, size_t errlen) DRST_WUR;

/**
 * @brief Commit the positions of everything returned by poll so far;
 * partitions listed in `finished` have had their sentinel processed and are
 * marked so for the group (a later owner is told in its ASSIGN event).
 */
drst_err_t drst_stream_commit(drst_stream_t *h, const int32_t *finished, size_t nfinished,
                              char *err, size_t errlen) DRST_WUR;

/** @brief Copy the handle's counters. */
void drst_stream_stats(drst_stream_t *h, drst_stream_stats_t *out);

/** @brief Leave the group (no commit) and free the handle; NULL is a no-op. */
void drst_stream_close(drst_stream_t *h);

/* ------------------------------------------------------------------ */
/* End-of-stream tracking (the consumer stop rule)                     */
/* ------------------------------------------------------------------ */

/**
 * @brief Which owned partitions have delivered their sentinel.
 *
 * Feed it every batch (drst_eos_apply()) and every sentinel you process
 * (drst_eos_mark()); pass drst_eos_pending() to drst_stream_commit() and
 * then call drst_eos_committed(). A consumer is done when it owns at least
 * one partition and all of them have ended (drst_eos_done()); a member that
 * owns nothing stops on its idle timeout. Caller-owned, one per handle.
 */
typedef struct drst_eos {
    int32_t np;
    uint8_t *owned, *ended;
    int32_t *pending; /**< sentinels processed since the last commit */
    size_t npending;
} drst_eos_t;

/** @brief Initialise for a topic of `np` partitions (allocates once). */
drst_err_t drst_eos_init(drst_eos_t *e, int32_t np) DRST_WUR;
/** @brief Free what drst_eos_init() allocated. */
void drst_eos_release(drst_eos_t *e);
/** @brief Apply an ASSIGN or REVOKE event (other batches are ignored). */
void drst_eos_apply(drst_eos_t *e, const drst_stream_batch_t *b);
/** @brief A sentinel of partition p was processed. */
void drst_eos_mark(drst_eos_t *e, int32_t p);
/** @brief Partitions to pass as `finished` to the next commit. */
static inline const int32_t *drst_eos_pending(const drst_eos_t *e, size_t *n)
{
    *n = e->npending;
    return e->pending;
}
/** @brief The pending list was committed. */
static inline void drst_eos_committed(drst_eos_t *e)
{
    e->npending = 0;
}
/** @brief 1 when at least one partition is owned and every owned one ended. */
int drst_eos_done(const drst_eos_t *e);

/* ------------------------------------------------------------------ */
/* Development broker (librdkafka mock cluster)                        */
/* ------------------------------------------------------------------ */

/**
 * @brief A local Kafka-protocol broker for development and tests: the
 * librdkafka mock cluster (in memory, loopback, ephemeral ports). Not for
 * production. Its threads are librdkafka's; the functions below may be
 * called from any one thread at a time.
 */
typedef struct drst_broker drst_broker_t;

/** @brief Start a mock cluster of `nbrokers` brokers. */
drst_broker_t *drst_broker_new(int nbrokers, char *err, size_t errlen);
/**
 * @brief The address clients should bootstrap from, owned by the broker:
 * the fixed listener's "host:port" after drst_broker_listen(), otherwise
 * the mock brokers' own "127.0.0.1:port,..." (ephemeral ports).
 */
const char *drst_broker_bootstraps(const drst_broker_t *b);
/** @brief Always the mock brokers' own "127.0.0.1:port,..." (owned by the broker). */
const char *drst_broker_cluster_bootstraps(const drst_broker_t *b);
/**
 * @brief Accept Kafka clients on a fixed bootstrap address `host`:`port`
 * (host NULL or "" means 127.0.0.1; port 1..65535).
 *
 * librdkafka 2.0.2's mock brokers can only bind ephemeral loopback ports,
 * so this binds host:port itself and relays every accepted TCP connection
 * byte-for-byte to broker 1 (one relay thread, poll()-based, 64 KiB per
 * direction per connection, at most 256 connections at once). Clients
 * bootstrap through it and then connect to the brokers' advertised
 * addresses (127.0.0.1:ephemeral), so they must run on the same host.
 * Call once, before clients connect; drst_broker_free() stops the relay.
 *
 * @return DRST_OK; DRST_ERR_IO with the address and errno text in err
 * (e.g. "broker: cannot bind 127.0.0.1:9092: Address already in use");
 * DRST_ERR_INVAL for a bad port; DRST_ERR_STATE if already listening.
 */
drst_err_t drst_broker_listen(drst_broker_t *b, const char *host, int port, char *err,
                              size_t errlen) DRST_WUR;
drst_err_t drst_broker_create_topic(drst_broker_t *b, const char *topic, int32_t partitions,
                                    char *err, size_t errlen) DRST_WUR;
/** @brief Take broker `id` (1-based) down or bring it back up. */
drst_err_t drst_broker_set_down(drst_broker_t *b, int32_t id, int down, char *err,
                                size_t errlen) DRST_WUR;
/**
 * @brief Make the next `count` Produce requests fail with a retriable error
 * (NOT_LEADER_FOR_PARTITION), to exercise producer retries.
 */
drst_err_t drst_broker_inject_produce_errors(drst_broker_t *b, int count, char *err,
                                             size_t errlen) DRST_WUR;
/** @brief Stop and free; NULL is a no-op. */
void drst_broker_free(drst_broker_t *b);

#ifdef __cplusplus
}
#endif
#endif /* DRST_STREAM_H */
