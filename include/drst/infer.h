/**
 * @file infer.h
 * @brief Online inference: consumers that predict every record of a stream
 * with a frozen baseline and a hot-swapped adaptive model, measure
 * themselves, and take new models from the store without a pause
 * (docs/infer.md).
 *
 * Three objects:
 *  - drst_model_slot_t: the served pair (baseline, adaptive) behind one
 *    RCU-protected pointer (liburcu, "memb" flavour). Any number of
 *    inference threads read it without locks; a swap publishes a new
 *    immutable view and frees the old one after a grace period.
 *  - drst_guard_t: follows a store pointer (`models/latest`), loads and
 *    verifies candidates off the hot path and swaps them in only when their
 *    validation accuracy beats the served model's by a margin.
 *  - drst_infer_t: one consumer (one stream handle, one thread): decode,
 *    align, batch-predict with both models, accumulate metrics per partition
 *    and in total, write a trace and a metrics file.
 *
 * Threads: every thread that reads a slot (drst_infer_run() does it for
 * you) must call drst_rcu_thread_online() first and drst_rcu_thread_offline()
 * before it exits.
 */
#ifndef DRST_INFER_H
#define DRST_INFER_H

#include "drst/common.h"
#include "drst/model.h"
#include "drst/obs.h"
#include "drst/store.h"
#include "drst/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Model slot (RCU)                                                    */
/* ------------------------------------------------------------------ */

typedef struct drst_model_slot drst_model_slot_t;

/**
 * @brief The immutable view a reader gets: valid until drst_model_slot_exit().
 * `schema` is the union of both models' features (baseline first) with NaN
 * defaults; `map_base[i]` / `map_adapt[i]` give the schema index of each
 * model's feature i.
 */
typedef struct drst_serving {
    const drst_model_t *baseline;
    const drst_model_t *adaptive; /**< may equal baseline (version 1 without a release) */
    uint64_t version;             /**< 1 for the first adaptive model, +1 per swap */
    const drst_schema_t *schema;
    const size_t *map_base, *map_adapt;
} drst_serving_t;

/** @brief Register the calling thread as an RCU reader (idempotent per thread). */
void drst_rcu_thread_online(void);
/** @brief Unregister the calling thread (call before it exits). */
void drst_rcu_thread_offline(void);

/**
 * @brief Create a slot serving `baseline` and `adaptive`.
 * Takes ownership of both models on every path; `adaptive` may be NULL
 * (the baseline serves as adaptive too, version 1). The target names must
 * match (DRST_ERR_SCHEMA otherwise).
 * @return the slot (drst_model_slot_free()) or NULL with err filled.
 */
drst_model_slot_t *drst_model_slot_new(drst_model_t *baseline, drst_model_t *adaptive, char *err,
                                       size_t errlen);
/** @brief Free the slot and its models. No reader may be inside it. NULL is a no-op. */
void drst_model_slot_free(drst_model_slot_t *s);

/**
 * @brief Enter a read-side critical section and return the current view.
 * Lock-free and allocation-free; never blocks. Must be paired with
 * drst_model_slot_exit() on the same thread; do not swap inside it.
 * @locality an RCU-registered thread (drst_rcu_thread_online()).
 */
const drst_serving_t *drst_model_slot_enter(drst_model_slot_t *s);
/** @brief Leave the read-side critical section entered by drst_model_slot_enter(). */
void drst_model_slot_exit(drst_model_slot_t *s);

/**
 * @brief Swap in a new adaptive model (the forced swap: no gain check).
 * Takes ownership of `adaptive` on every path. Publishes a new view
 * (version + 1), waits for a grace period (synchronize_rcu) and frees the
 * old adaptive model. Blocks the caller, never the readers.
 * @locks the slot's writer mutex. @locality any thread that is NOT inside
 * a read-side critical section of this slot.
 * @param version_out receives the new version (may be NULL)
 * @return DRST_OK, DRST_ERR_SCHEMA (other target), DRST_ERR_NOMEM.
 */
drst_err_t drst_model_slot_swap(drst_model_slot_t *s, drst_model_t *adaptive, uint64_t *version_out,
                                char *err, size_t errlen) DRST_WUR;

/** @brief Current adaptive version (relaxed read, any thread). */
uint64_t drst_model_slot_version(drst_model_slot_t *s);
/**
 * @brief Content hash (hex) of the served adaptive model; copied into buf[65].
 * @locks the writer mutex: not to be called inside a read-side section.
 */
void drst_model_slot_adaptive_hash(drst_model_slot_t *s, char buf[65]);

/* ------------------------------------------------------------------ */
/* Guard: follow the store pointer                                     */
/* ------------------------------------------------------------------ */

typedef struct drst_guard drst_guard_t;

/** @brief What one guard check decided. */
typedef enum drst_guard_ev {
    DRST_GUARD_UNCHANGED = 0, /**< pointer unchanged, or a candidate already judged */
    DRST_GUARD_SAME = 1,      /**< new pointer, same content hash as the served model */
    DRST_GUARD_SWAPPED = 2,   /**< candidate verified and swapped in */
    DRST_GUARD_REFUSED = 3,   /**< candidate valid but below the gain margin */
    DRST_GUARD_CORRUPT = 4,   /**< candidate unreadable, corrupt or incompatible */
    DRST_GUARD_ERROR = 5      /**< pointer unreadable (store error) */
} drst_guard_ev_t;

/** @brief Name of an event ("unchanged", "same", "swapped", ...). */
const char *drst_guard_ev_name(drst_guard_ev_t ev);

/**
 * @brief Log callback: one call per decision other than UNCHANGED, on the
 * guard's thread (or the drst_guard_check() caller). `detail` says why.
 */
typedef void (*drst_guard_log_fn)(void *opaque, drst_guard_ev_t ev, uint64_t version,
                                  const char *model_key, const char *detail);

/** @brief Options of drst_guard_new(); zero-initialise, then set. */
typedef struct drst_guard_conf {
    const char *pointer; /**< store pointer to follow ["latest"] */
    double reload_s;     /**< poll interval of the thread [2] */
    double gain_pp;      /**< required val acc@tau gain in percentage points [0] */
    double tau;          /**< 0.05, 0.1 or 0.2 [0.2] */
    drst_guard_log_fn log;
    void *opaque;
} drst_guard_conf_t;

/**
 * @brief A guard for `slot` reading `store` (both borrowed: they must
 * outlive it). The release currently in the pointer is taken as already
 * judged if its content hash equals the served adaptive model's.
 */
drst_guard_t *drst_guard_new(drst_model_slot_t *slot, drst_store_t *store,
                             const drst_guard_conf_t *conf, char *err, size_t errlen);
/**
 * @brief One synchronous check: read the pointer; if it names a release not
 * seen yet, load and verify it and swap it in if it passes the gain margin.
 * @locality one thread at a time (the guard thread once started).
 */
drst_err_t drst_guard_check(drst_guard_t *g, drst_guard_ev_t *ev, char *err,
                            size_t errlen) DRST_WUR;
/** @brief Start the polling thread (every reload_s seconds). */
drst_err_t drst_guard_start(drst_guard_t *g, char *err, size_t errlen) DRST_WUR;
/** @brief Counters: swaps, refusals, corrupt candidates. Any thread. */
void drst_guard_counts(drst_guard_t *g, uint64_t *swaps, uint64_t *refused, uint64_t *corrupt);
/** @brief Stop the thread (if started) and free; NULL is a no-op. */
void drst_guard_free(drst_guard_t *g);

/* ------------------------------------------------------------------ */
/* Inference consumer                                                  */
/* ------------------------------------------------------------------ */

#define DRST_INFER_NTAU 3 /**< accuracy tolerances 0.05, 0.1, 0.2 */
#define DRST_INFER_NQ   5 /**< error quantiles p50, p80, p90, p95, p99 */

/**
 * @brief Per-partition high-water offsets shared by the consumers of one
 * group in one process, so a record redelivered to another member after a
 * rebalance is still counted once. Lock-free (one atomic per partition).
 */
typedef struct drst_infer_offsets drst_infer_offsets_t;
/** @brief For a topic of `np` partitions. @return NULL if out of memory. */
drst_infer_offsets_t *drst_infer_offsets_new(int32_t np);
/** @brief Free; NULL is a no-op. No consumer may still use it. */
void drst_infer_offsets_free(drst_infer_offsets_t *o);

/** @brief Options of drst_infer_new(); start from drst_infer_conf_init(). */
typedef struct drst_infer_conf {
    const char *topic;             /**< required */
    const char *group;             /**< required */
    const char *member_id;         /**< may be NULL */
    const char *name;              /**< consumer name in file names ["consumer-0"] */
    const char *out_dir;           /**< trace_<name>.csv, infer_<name>.jsonl; NULL: no files */
    size_t batch;                  /**< max records per poll / predict call [256] */
    int poll_ms;                   /**< longest wait of one poll [50] */
    double idle_s;                 /**< stop after this long without a message [10] */
    double flush_s;                /**< metrics line + file flush interval [1] */
    int trace;                     /**< write the trace file [1] */
    double tau;                    /**< headline tolerance of the summary [0.2] */
    drst_dlq_t *dlq;               /**< dead-letter sink (borrowed, thread-safe) or NULL */
    drst_metrics_t *metrics;       /**< registry for live series (borrowed) or NULL */
    drst_infer_offsets_t *offsets; /**< shared high-water marks (borrowed) or NULL: private */
} drst_infer_conf_t;

/** @brief Fill the defaults in brackets above. */
void drst_infer_conf_init(drst_infer_conf_t *c);

/** @brief Accuracy and error quantiles of one prediction path. */
typedef struct drst_infer_path {
    double acc[DRST_INFER_NTAU]; /**< cumulative acc@0.05, 0.1, 0.2 (NaN: no label yet) */
    double q[DRST_INFER_NQ];     /**< relative error p50, p80, p90, p95, p99 (sketch, ±1%) */
} drst_infer_path_t;

/** @brief Figures of one consumer (or of one of its partitions). */
typedef struct drst_infer_stats {
    uint64_t records;    /**< records predicted (each (partition, offset) once) */
    uint64_t labelled;   /**< of which had a label (scored) */
    uint64_t duplicates; /**< redelivered records skipped (offset <= high-water mark) */
    uint64_t malformed;  /**< payloads that did not decode (dead-lettered) */
    uint64_t nan;        /**< records with a NaN/Infinity feature (dead-lettered) */
    uint64_t missing;    /**< feature values absent, filled with the training mean */
    uint64_t dead_letters;
    uint64_t eos;           /**< sentinels seen */
    uint64_t batches;       /**< predict batches */
    uint64_t commit_errors; /**< failed commits (retried with the next batch) */
    drst_infer_path_t baseline, adaptive;
    double lat_p50, lat_p99; /**< per-record service latency, s (poll return -> predicted) */
    double rtt_p50, rtt_p99; /**< send_ts -> predicted, s (NaN without send_ts) */
    double wall_s, cpu_s;    /**< wall and thread CPU time of drst_infer_run() */
    double records_per_s;    /**< records / wall_s */
    uint64_t version;        /**< adaptive version serving the last batch */
    uint64_t versions_seen;  /**< distinct versions that served records */
} drst_infer_stats_t;

typedef struct drst_infer drst_infer_t;

/** @brief Why drst_infer_run() returned. */
typedef enum drst_infer_end {
    DRST_INFER_END_EOS = 0,  /**< every owned partition's sentinel seen (or end of file) */
    DRST_INFER_END_IDLE = 1, /**< idle timeout */
    DRST_INFER_END_STOP = 2  /**< drst_infer_stop() */
} drst_infer_end_t;

/**
 * @brief A consumer reading `stream` (borrowed, already opened; the
 * consumer subscribes it) and predicting with `slot` (borrowed).
 * Allocates everything it needs for the hot path here (and again only when
 * a swapped model needs a wider feature schema).
 */
drst_infer_t *drst_infer_new(const drst_infer_conf_t *conf, drst_stream_t *stream,
                             drst_model_slot_t *slot, char *err, size_t errlen);

/**
 * @brief Consume until the deterministic end (every owned partition's
 * sentinel committed, end of a JSONL file), the idle timeout, or
 * drst_infer_stop(). Writes the final metrics line and flushes the files.
 * Registers the calling thread as an RCU reader for its duration.
 * @param why receives the reason it returned (may be NULL)
 * @locality the calling thread (one consumer, one thread).
 */
drst_err_t drst_infer_run(drst_infer_t *c, drst_infer_end_t *why, char *err,
                          size_t errlen) DRST_WUR;

/** @brief Ask drst_infer_run() to return soon. Async-signal-safe, any thread. */
void drst_infer_stop(drst_infer_t *c);

/**
 * @brief Figures as of the last metrics flush (and final after run returns).
 * @param part -1 for the total, else a partition id (zeros if never seen).
 * @locks the consumer's stats mutex. @locality any thread.
 */
void drst_infer_stats(drst_infer_t *c, int32_t part, drst_infer_stats_t *out);

/** @brief Free a consumer (not its stream, slot or dlq); NULL is a no-op. */
void drst_infer_free(drst_infer_t *c);

#ifdef __cplusplus
}
#endif
#endif /* DRST_INFER_H */
