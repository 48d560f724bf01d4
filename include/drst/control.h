/**
 * @file control.h
 * @brief Control plane: the drift monitor, retrain requests, the retrain
 * lease and the self-tuning retrainer.
 *
 * Embeddable pieces (docs/control.md):
 *  - drst_lease_*: a lease lock in a store (owner + expiry), taken with
 *    put_immutable-or-expired semantics, so it survives restarts and a dead
 *    holder's lease simply expires.
 *  - drst_monitor_t: feature drift ("jsd" detector over a sliding window)
 *    plus error drift (Page-Hinkley or ADWIN on the relative error of the
 *    current model) over records fed one by one (drst_monitor_feed()) or
 *    consumed from a stream subscription (drst_monitor_consume()). On a
 *    trigger it freezes the window into the store, writes a retrain request
 *    and cools down; its whole state is persisted as `state/monitor.json` so a
 *    restarted monitor resumes and does not fire the same drift again.
 *  - drst_retrain_window(): synchronous "retrain now on this window"
 *    (successive halving over the tier's search space on 1..N threads, then
 *    full training of the best), deterministic for a seed; and
 *    drst_retrainer_t, which takes a request + the lease from a store,
 *    retrains, publishes an immutable release and moves `latest` only when
 *    the gain gate passes.
 *
 * Threads: a monitor and a retrainer are each used by one thread at a time
 * (@locality the caller's thread); drst_retrain_window() starts and joins its
 * own worker threads. Store handles are borrowed and must outlive them.
 */
#ifndef DRST_CONTROL_H
#define DRST_CONTROL_H

#include "drst/common.h"
#include "drst/drift.h"
#include "drst/model.h"
#include "drst/store.h"
#include "drst/stream.h"
#include "drst/telemetry.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Store keys of the control plane. */
#define DRST_CONTROL_LEASE_KEY   "state/locks/retrain"
#define DRST_CONTROL_REQUEST_KEY "state/retrain/request.json"
#define DRST_CONTROL_MONITOR_KEY "state/monitor.json"
#define DRST_CONTROL_OWNER_MAX   128

/** @brief Seconds since the Unix epoch (CLOCK_REALTIME), as used for lease expiry. */
double drst_control_now(void);

/* ------------------------------------------------------------------ lease */

/** @brief Content of a lease object: `{"owner":..,"acquired":t,"expires":t}`. */
typedef struct drst_lease_info {
    char owner[DRST_CONTROL_OWNER_MAX];
    double acquired; /**< seconds since the epoch */
    double expires;  /**< seconds since the epoch */
} drst_lease_info_t;

/**
 * @brief Take the lease `key` for `owner` until now + ttl.
 *
 * Creates the object with put_immutable; if it exists and is expired (or
 * unreadable: a torn lease is treated as expired), it is deleted and the
 * creation retried once, so of two racing takers only one wins. If `owner`
 * already holds it, the expiry is extended.
 * @param now   the clock (seconds); < 0 uses drst_control_now()
 * @param held  may be NULL; receives the lease as it stands after the call
 * @return DRST_OK (taken), DRST_ERR_BUSY (held by someone else until
 *         held->expires), DRST_ERR_INVAL, or a store error.
 */
drst_err_t drst_lease_acquire(drst_store_t *s, const char *key, const char *owner, double ttl,
                              double now, drst_lease_info_t *held, char *err,
                              size_t errlen) DRST_WUR;

/**
 * @brief Extend a lease held by `owner` to now + ttl.
 * @return DRST_OK, DRST_ERR_STATE (not held by owner or absent).
 */
drst_err_t drst_lease_renew(drst_store_t *s, const char *key, const char *owner, double ttl,
                            double now, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Give the lease up if `owner` holds it (deletes the object).
 * @return DRST_OK (released or already absent), DRST_ERR_STATE (held by another).
 */
drst_err_t drst_lease_release(drst_store_t *s, const char *key, const char *owner, char *err,
                              size_t errlen) DRST_WUR;

/** @brief Read a lease. @return DRST_OK, DRST_ERR_NOTFOUND, DRST_ERR_FORMAT. */
drst_err_t drst_lease_read(drst_store_t *s, const char *key, drst_lease_info_t *out, char *err,
                           size_t errlen) DRST_WUR;

/* ------------------------------------------------------- retrain request */

/** @brief Where a trigger came from. */
typedef enum drst_trigger_source {
    DRST_TRIGGER_NONE = 0,
    DRST_TRIGGER_FEATURES = 1, /**< jsd on the feature window */
    DRST_TRIGGER_ERROR = 2,    /**< page_hinkley/adwin on the relative error */
    DRST_TRIGGER_REFRESH = 3   /**< periodic refresh (cfg.refresh), tier A */
} drst_trigger_source_t;

/** @brief Name of a trigger source ("features", "error", "refresh", "none"). */
const char *drst_trigger_source_name(drst_trigger_source_t s);

/**
 * @brief The fixed fields of `state/retrain/request.json` (the file also
 * holds the evidence: drifted features and the per-feature JSD).
 */
typedef struct drst_retrain_request {
    char id[64]; /**< "<UTC ts>-<records seen>" */
    int tier;    /**< DRST_TIER_A..C */
    drst_trigger_source_t source;
    uint64_t at;                             /**< records seen by the monitor at the trigger */
    double score;                            /**< jsd mean (bits) or error statistic */
    size_t n_drifted;                        /**< features over the per-feature threshold */
    char window_key[DRST_STORE_KEY_MAX + 1]; /**< frozen window CSV */
    char replay_key[DRST_STORE_KEY_MAX + 1]; /**< frozen replay reservoir CSV ("" if none) */
    char status[16];                         /**< "pending", "running", "done", "failed" */
    int attempts;                            /**< retrainer attempts started */
    char release[DRST_STORE_KEY_MAX + 1];    /**< model key published ("" if none) */
    size_t fresh_rows; /**< labelled records since the serving release (gate rows) */
} drst_retrain_request_t;

/**
 * @brief Read the pending request.
 * @return DRST_OK, DRST_ERR_NOTFOUND (no request), DRST_ERR_FORMAT.
 */
drst_err_t drst_retrain_request_read(drst_store_t *s, drst_retrain_request_t *out, char *err,
                                     size_t errlen) DRST_WUR;

/* ------------------------------------------------------------- monitor */

/** @brief Monitor configuration; zero-initialise for the defaults in brackets. */
typedef struct drst_monitor_config {
    size_t window;            /**< W records [300] */
    size_t stride;            /**< evaluate every S records [50] */
    size_t bins;              /**< histogram bins per feature [64] */
    double thresholds[3];     /**< jsd tiers A<B<C in bits [detector defaults 0.10/0.25/0.50] */
    double feature_threshold; /**< per-feature JSD counted as drifted [0.10] */
    int calibrate;            /**< 0: fixed thresholds; 1: iid permutation; 2: block permutation */
    uint64_t cooldown;        /**< records without a new trigger after one [= window] */
    const char *error_detector; /**< "page_hinkley" [default], "adwin" or "none" */
    double ph_lambda;           /**< Page-Hinkley threshold [detector default 10] */
    double ph_delta;            /**< Page-Hinkley tolerance [detector default 0.01] */
    size_t reservoir;           /**< replay reservoir capacity, labelled records [4000] */
    uint64_t refresh;           /**< > 0: also request a tier-A retrain after this many labelled
                                     records without one [0 = off] */
    uint64_t seed;              /**< reservoir sampling and calibration seed [1] */
    const char *target;         /**< label column name in frozen CSVs ["output_rate"] */
    const char *name;           /**< this monitor's name in requests ["monitor"] */
    int no_persist;             /**< do not write state/monitor.json (in-process use) */
    int no_request;             /**< do not write windows/requests (caller retrains in-process) */
} drst_monitor_config_t;

/** @brief What one fed record caused. */
typedef struct drst_monitor_event {
    uint64_t at;    /**< records seen, this one included */
    int evaluated;  /**< the feature detector evaluated on this record */
    int triggered;  /**< a retrain was requested on this record */
    int suppressed; /**< drift seen but inside the cooldown / a request in flight */
    int tier;       /**< tier of the evidence (0 none) */
    drst_trigger_source_t source;
    double score;        /**< jsd score of the last evaluation (bits) */
    size_t n_drifted;    /**< drifted features of the last evaluation */
    double pred;         /**< the model's prediction for this record (NaN if none) */
    double rel_err;      /**< relative error of pred against the label (NaN if none) */
    char request_id[64]; /**< set when triggered and a request was written */
} drst_monitor_event_t;

/** @brief Counters of a monitor. */
typedef struct drst_monitor_stats {
    uint64_t seen, labelled, evaluations, triggers, suppressed;
    uint64_t triggers_by_source[4]; /**< indexed by drst_trigger_source_t */
    uint64_t rebaselines;
    uint64_t reservoir_rows;
    uint64_t since_release; /**< labelled records since the last rebaseline */
} drst_monitor_stats_t;

typedef struct drst_monitor drst_monitor_t;

/**
 * @brief Create a monitor over `nf` named features (copied).
 * @param store  borrowed, may be NULL (then nothing is persisted or requested)
 * @return the monitor (drst_monitor_free()) or NULL with a message in err.
 */
drst_monitor_t *drst_monitor_new(const drst_monitor_config_t *cfg, const char *const *names,
                                 size_t nf, drst_store_t *store, char *err, size_t errlen);

/** @brief Free a monitor; NULL is a no-op. */
void drst_monitor_free(drst_monitor_t *m);

/**
 * @brief Use a table (e.g. the training data) as baseline: its columns are
 * bound by name (a monitor feature missing from it fails with
 * DRST_ERR_SCHEMA). With cfg.calibrate, thresholds are calibrated on it.
 * Labelled rows (target column present) also seed nothing: the replay
 * reservoir holds stream records only.
 */
drst_err_t drst_monitor_set_baseline(drst_monitor_t *m, const drst_table_t *t, char *err,
                                     size_t errlen) DRST_WUR;

/**
 * @brief Set the model whose relative error the error detector watches
 * (borrowed; it must outlive its use or be replaced). Features are bound by
 * name to the monitor's; a model feature missing from the monitor fails with
 * DRST_ERR_SCHEMA. NULL removes the model.
 */
drst_err_t drst_monitor_set_model(drst_monitor_t *m, const drst_model_t *model, char *err,
                                  size_t errlen) DRST_WUR;

/**
 * @brief Feed one record: `x` holds the nf features (NaN = missing), `label`
 * the truth (NaN if unlabelled), `pred` a prediction made elsewhere (NaN:
 * the monitor predicts with its model, if any). Allocation-free except when
 * a trigger freezes a window into the store.
 * @param ev may be NULL.
 */
drst_err_t drst_monitor_feed(drst_monitor_t *m, const double *x, double label, double pred,
                             drst_monitor_event_t *ev, char *err, size_t errlen) DRST_WUR;

/**
 * @brief A new release is serving: rebaseline the detectors (the jsd one
 * collects the next W records as its baseline), clear the cooldown and
 * remember `model_key` (may be NULL) as the release seen.
 */
void drst_monitor_rebaseline(drst_monitor_t *m, const char *model_key);

/**
 * @brief Check the store's `latest` pointer; if it moved since the last
 * check, load that model for error monitoring and rebaseline.
 * @param changed may be NULL; 1 if a new release was taken.
 */
drst_err_t drst_monitor_poll_release(drst_monitor_t *m, int *changed, char *err,
                                     size_t errlen) DRST_WUR;

/** @brief Write the whole state to `state/monitor.json` (atomic replace). */
drst_err_t drst_monitor_save(drst_monitor_t *m, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Restore the state saved by drst_monitor_save() (same feature names
 * required). @return DRST_OK, DRST_ERR_NOTFOUND (nothing saved),
 * DRST_ERR_FORMAT / DRST_ERR_SCHEMA (saved state unusable).
 */
drst_err_t drst_monitor_resume(drst_monitor_t *m, char *err, size_t errlen) DRST_WUR;

/**
 * @brief The last W records (features + label column `target`), oldest
 * first, only labelled ones. @param out new table owned by the caller.
 */
drst_err_t drst_monitor_window_table(const drst_monitor_t *m, drst_table_t **out, char *err,
                                     size_t errlen) DRST_WUR;

/** @brief The replay reservoir (labelled records older than the window) as a table. */
drst_err_t drst_monitor_replay_table(const drst_monitor_t *m, drst_table_t **out, char *err,
                                     size_t errlen) DRST_WUR;

/** @brief Counters. */
void drst_monitor_stats(const drst_monitor_t *m, drst_monitor_stats_t *out);

/** @brief The feature detector (read-only access for reports). */
const drst_detector_t *drst_monitor_detector(const drst_monitor_t *m);

/**
 * @brief Consume a subscribed stream handle until every owned partition has
 * ended, `idle_ms` passes without data, or `max_records` (0 = no limit)
 * records were fed; commits after every batch, checks the `latest` pointer
 * at every stride point and saves the state after every evaluation.
 * @param on_event may be NULL; called for every trigger (on this thread).
 */
drst_err_t drst_monitor_consume(drst_monitor_t *m, drst_stream_t *h, const drst_schema_t *schema,
                                int idle_ms, uint64_t max_records,
                                void (*on_event)(void *opaque, const drst_monitor_event_t *ev),
                                void *opaque, char *err, size_t errlen) DRST_WUR;

/* ------------------------------------------------------------ retrainer */

/** @brief Retrainer configuration; zero-initialise for the defaults in brackets. */
typedef struct drst_retrain_config {
    size_t threads;       /**< worker threads of the search [2] */
    uint64_t seed;        /**< every candidate's seed [42] */
    const char *target;   /**< ["output_rate"] */
    const char *families; /**< comma list restricting the families, e.g. "gbdt" [all of the tier] */
    double val_frac;      /**< recent window rows held back for validation [0.2] */
    double recent_weight; /**< copies of each window row in the training data [3] */
    size_t replay_max;    /**< replay rows used at most (most recent kept) [4000] */
    double min_gain;      /**< gain gate: new acc@0.2+acc@0.05 must beat current by this [0] */
    /**
     * Labelled records that arrived after the serving release [0 = unknown]:
     * when >= 3, the gate compares both models on the most recent
     * min(fresh_rows, held-back) rows only, which the serving model has
     * never been trained on (an earlier refit may have seen the others).
     */
    size_t fresh_rows;
    int no_refit;             /**< do not refit the winner on the validation rows too */
    int full_trees;           /**< gbdt trees of the full training [100] */
    int full_epochs;          /**< mlp epochs of the full training [120] */
    double lease_ttl;         /**< seconds [60] */
    const char *owner;        /**< lease owner ["retrainer-<pid>"] */
    const drst_table_t *base; /**< borrowed: original training data joined to the replay */
    int importance;           /**< compute permutation importance after publishing [1]; -1 off */
    /** Test/observer hook called after each halving rung (on the calling thread). */
    void (*on_rung)(void *opaque, int rung, size_t survivors);
    void *opaque;
} drst_retrain_config_t;

/** @brief What a retrain did. */
typedef struct drst_retrain_result {
    int tier;
    size_t candidates; /**< candidates scored in the first rung */
    size_t rungs;
    char best[256];               /**< winner's description */
    drst_model_metrics_t new_val; /**< winner on the held-back recent rows */
    drst_model_metrics_t cur_val; /**< current release on the same rows (rows 0 if none) */
    int gate_passed;
    int warm_started;        /**< fine-tuned from the current release */
    int schema_changed;      /**< current release's features differ from the window's */
    size_t n_missing, n_new; /**< features of the release missing in / new in the window */
    char schema_note[512];
    size_t rows_train, rows_val, rows_replay, rows_base;
    double search_s, full_s, wall_s; /**< measured wall times (seconds) */
    int published;
    int latest_moved;
    drst_release_t release;
    char importance_key[DRST_STORE_KEY_MAX + 1];
    char request_id[64];
} drst_retrain_result_t;

/**
 * @brief Retrain now, synchronously, on `window` (features + target, most
 * recent last) plus `replay` (older labelled records, may be NULL) plus
 * cfg->base. Deterministic for cfg->seed whatever the thread count.
 * @param current  the serving model (may be NULL): warm start when
 *                 compatible, gain-gate reference, schema-change check
 * @param out      receives the new model (caller-owned)
 * @return DRST_OK, DRST_ERR_EMPTY (window too small), or a training error.
 */
drst_err_t drst_retrain_window(const drst_table_t *window, const drst_table_t *replay,
                               const drst_model_t *current, int tier,
                               const drst_retrain_config_t *cfg, drst_model_t **out,
                               drst_retrain_result_t *res, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Permutation importance of `m` on table `t`: per model feature, the
 * increase of the mean absolute error when that column is shuffled (seeded).
 * @param json receives a malloc'd JSON object {"feature": increase, ...}.
 */
drst_err_t drst_retrain_importance(const drst_model_t *m, const drst_table_t *t, uint64_t seed,
                                   char **json, char *err, size_t errlen) DRST_WUR;

typedef struct drst_retrainer drst_retrainer_t;

/** @brief A retrainer on a store (borrowed); cfg copied (cfg->base stays borrowed). */
drst_retrainer_t *drst_retrainer_new(drst_store_t *s, const drst_retrain_config_t *cfg, char *err,
                                     size_t errlen);
/** @brief Free; NULL is a no-op. */
void drst_retrainer_free(drst_retrainer_t *r);

/**
 * @brief Handle the pending request once: take the lease, mark the request
 * running (attempts + 1; a request already started twice is marked failed:
 * retried once only), load the frozen window and replay, retrain, publish
 * an immutable release (+ metrics), move `latest` if the gain gate passes,
 * mark the request done, release the lease, then store the permutation
 * importance next to the release.
 * @return DRST_OK (res filled), DRST_ERR_EMPTY (no pending request),
 *         DRST_ERR_BUSY (lease held by a live owner), other errors (the
 *         request is marked failed when it cannot be retried).
 */
drst_err_t drst_retrainer_run_once(drst_retrainer_t *r, drst_retrain_result_t *res, char *err,
                                   size_t errlen) DRST_WUR;

#ifdef __cplusplus
}
#endif
#endif /* DRST_CONTROL_H */
