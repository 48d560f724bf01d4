/**
 * @file drift.h
 * @brief Control plane: drift detectors behind one interface.
 *
 * Three detector kinds share one handle type, drst_detector_t, and one set of
 * calls (new / update / evaluate / reset / rebaseline / free / save / restore):
 *
 *  - "jsd": feature drift. F features, B bins each. Bin edges are frozen from
 *    the baseline (the first full window, or a matrix given with
 *    drst_jsd_set_baseline(), e.g. the training data). A sliding window of W
 *    records is kept as a ring of bin indices; every S records the per-feature
 *    Jensen-Shannon divergence in bits (log2, so in [0, 1]) between the
 *    baseline and the window histograms is computed in O(F x B). The score is
 *    the mean over features; tiers A < B < C are thresholds on that score.
 *  - "page_hinkley": Page-Hinkley test on a scalar error stream (one-sided,
 *    detects increases; two-sided on request).
 *  - "adwin": ADWIN (Bifet & Gavalda 2007), exponential-histogram buckets,
 *    O(M log W) memory, on a scalar error stream.
 *
 * All memory is allocated by the constructor (and by drst_jsd_set_baseline()
 * / drst_jsd_calibrate() when given a matrix); drst_detector_update() never
 * allocates. A detector is not thread-safe: one thread uses it at a time.
 * The full contract and the formulas are in docs/drift.md.
 */
#ifndef DRST_DRIFT_H
#define DRST_DRIFT_H

#include "drst/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Tiers: 0 = no drift, then A < B < C. */
enum { DRST_TIER_NONE = 0, DRST_TIER_A = 1, DRST_TIER_B = 2, DRST_TIER_C = 3 };

/** Largest number of bins per feature of the "jsd" detector. */
#define DRST_JSD_MAX_BINS 4096

/**
 * @brief Configuration of every detector kind; zero-initialise for defaults.
 *
 * Fields not used by a kind are ignored by it. Defaults (applied to fields
 * left 0) are given in brackets.
 */
typedef struct drst_detector_config {
    /* --- common --- */
    uint64_t cooldown; /**< after a trigger, suppress triggers for this many records [0] */
    /**
     * Tier thresholds A < B < C, each in (0, 1] for "jsd" (mean JSD in bits)
     * [0.10, 0.25, 0.50]. For "page_hinkley" and "adwin" any detection is at
     * least tier A; thresholds[1] and [2] are the error-mean increases that
     * make it B and C [0.10, 0.30] (thresholds[0] is ignored).
     */
    double thresholds[3];

    /* --- jsd --- */
    size_t nfeatures;         /**< F, required for "jsd" */
    size_t bins;              /**< B per feature [64], at most DRST_JSD_MAX_BINS */
    size_t window;            /**< W records [300] */
    size_t stride;            /**< S: evaluate every S records [50] */
    double feature_threshold; /**< per-feature JSD counted as "drifted" [0.10] */
    double smoothing;         /**< pseudo-count added to every bin [0.01]; < 0 means none */
    double margin;            /**< edge margin as a fraction of (max - min) [0.05]; < 0: none */
    int auto_calibrate;       /**< calibrate when a first-window baseline completes [0] */
    size_t calib_replicates;  /**< null-distribution replicates [200] */
    double calib_quantile;    /**< quantile of the null taken as noise level [0.99] */
    double calib_mult[3];     /**< tier multipliers of that quantile [1.5, 3, 6] */
    uint64_t calib_seed;      /**< RNG seed of the calibration [1] */
    /**
     * Null samples are contiguous blocks of rows (random start, wrapping)
     * instead of rows drawn at random [0]. Use it on time-ordered baselines
     * of autocorrelated data: random rows assume independent records and
     * then underestimate how much two windows of a stationary but
     * autocorrelated stream differ.
     */
    int calib_block;

    /* --- page_hinkley --- */
    double ph_delta;       /**< tolerated drift per record [0.01] */
    double ph_lambda;      /**< detection threshold on the PH statistic [10] */
    size_t ph_min_samples; /**< no detection before this many records [30] */
    int ph_two_sided;      /**< also detect decreases [0] */

    /* --- adwin --- */
    double adwin_delta;       /**< confidence [0.002] */
    size_t adwin_max_buckets; /**< M buckets per level [5] */
    size_t adwin_min_sub;     /**< minimum length of each sub-window [5] */
    size_t adwin_clock;       /**< look for cuts every this many records [32] */
    int adwin_two_sided;      /**< decreases of the mean also raise a tier [0] */
} drst_detector_config_t;

/** @brief What one update (or evaluation) concluded. */
typedef struct drst_drift_result {
    uint64_t at;      /**< records seen by the detector when this was produced */
    int evaluated;    /**< this update ran an evaluation (jsd: stride point; ph/adwin: check) */
    int change;       /**< the detector saw a change (even one worth no tier) */
    int tier;         /**< DRST_TIER_*: what the evidence says, cooldown or not */
    int triggered;    /**< tier > 0 and not suppressed by the cooldown */
    int suppressed;   /**< tier > 0 but inside the cooldown */
    double score;     /**< jsd: mean JSD (bits); ph: PH statistic; adwin: |mean change| */
    double magnitude; /**< ph/adwin: new minus old mean of the error; jsd: max feature JSD */
    size_t n_drifted; /**< jsd: features whose JSD >= feature_threshold */
} drst_drift_result_t;

typedef struct drst_detector drst_detector_t;

/**
 * @brief Name of the i-th detector kind ("jsd", "page_hinkley", "adwin").
 * @return a static string, or NULL when i is past the last kind.
 */
const char *drst_detector_kind_name(size_t i);

/**
 * @brief Create a detector of kind `kind` (see drst_detector_kind_name()).
 * @param cfg  may be NULL for all defaults ("jsd" needs cfg->nfeatures); copied
 * @return the detector (free with drst_detector_free()) or NULL with a message in err.
 */
drst_detector_t *drst_detector_new(const char *kind, const drst_detector_config_t *cfg, char *err,
                                   size_t errlen);

/** @brief Free a detector; NULL is a no-op. */
void drst_detector_free(drst_detector_t *d);

/** @brief The kind name of `d` (static string). */
const char *drst_detector_kind(const drst_detector_t *d);

/** @brief The effective configuration (defaults applied) of `d`. */
const drst_detector_config_t *drst_detector_config(const drst_detector_t *d);

/**
 * @brief Feed one record. `x` holds `n` values: F features for "jsd" (NaN =
 * missing, counted and ignored), exactly 1 error value for "page_hinkley" and
 * "adwin" (NaN is ignored). Never allocates.
 * @param res  may be NULL; receives the outcome of this update.
 * @return DRST_OK, or DRST_ERR_INVAL when n does not match.
 */
drst_err_t drst_detector_update(drst_detector_t *d, const double *x, size_t n,
                                drst_drift_result_t *res) DRST_WUR;

/**
 * @brief Evaluate now, outside the stride schedule, without touching the
 * cooldown (res->triggered is always 0).
 * @return DRST_OK, or DRST_ERR_STATE when there is nothing to compare yet
 * (jsd: no baseline or the window is not full).
 */
drst_err_t drst_detector_evaluate(drst_detector_t *d, drst_drift_result_t *res) DRST_WUR;

/**
 * @brief Forget all data (baseline, window, statistics, cooldown, counters);
 * keep the configuration and the current thresholds.
 */
void drst_detector_reset(drst_detector_t *d);

/**
 * @brief Start afresh after a new model release: "jsd" collects the next W
 * records as its new baseline (and recalibrates then if it was calibrated or
 * auto_calibrate is set); error detectors forget their statistics. The
 * cooldown is cleared; counters are kept.
 */
void drst_detector_rebaseline(drst_detector_t *d);

/** @brief Number of triggers (not suppressed) so far. */
uint64_t drst_detector_triggers(const drst_detector_t *d);

/** @brief Records fed so far (NaN-only records included). */
uint64_t drst_detector_seen(const drst_detector_t *d);

/**
 * @brief Serialize the full state (configuration, thresholds, baseline edges
 * and histograms, window ring, statistics, counters, cooldown) as JSON.
 * @param out  receives a NUL-terminated string owned by the caller (free()).
 * @param len  may be NULL; receives strlen(*out).
 */
drst_err_t drst_detector_save_json(const drst_detector_t *d, char **out, size_t *len, char *err,
                                   size_t errlen) DRST_WUR;

/**
 * @brief Rebuild a detector from drst_detector_save_json() output. Every
 * field is validated (this is outside input): a corrupt state fails with
 * DRST_ERR_FORMAT and a message naming the key.
 * @param buf  need not be NUL-terminated.
 * @return a new detector that takes the same decisions as the saved one
 * would have, or NULL (message in err).
 */
drst_detector_t *drst_detector_restore_json(const char *buf, size_t len, char *err, size_t errlen);

/* ------------------------------------------------------------------ jsd */

/**
 * @brief Set the baseline of a "jsd" detector from a row-major matrix of
 * n x F values (copied; e.g. the training data): edges are frozen from its
 * per-feature min/max (plus margin) and the window is emptied.
 * @return DRST_OK, DRST_ERR_INVAL (not jsd, n < 2), DRST_ERR_NOMEM.
 */
drst_err_t drst_jsd_set_baseline(drst_detector_t *d, const double *x, size_t n, char *err,
                                 size_t errlen) DRST_WUR;

/** @brief Outcome of a calibration. */
typedef struct drst_calibration {
    size_t replicates; /**< null replicates computed */
    size_t sample;     /**< window-sample size of each replicate */
    double null_mean;  /**< mean of the null aggregate score */
    double null_q;     /**< its calib_quantile quantile */
    double feature_q;  /**< calib_quantile quantile of the pooled per-feature null */
    int clamped;       /**< thresholds had to be lowered to stay reachable */
    double thresholds[3];
    double feature_threshold;
} drst_calibration_t;

/**
 * @brief Set thresholds from the null distribution of the score on baseline
 * data (permutation: replicates random splits into a window sample of
 * min(W, n/2) rows and the rest as reference). Deterministic for a given
 * calib_seed. Thresholds = null quantile x calib_mult, kept in (0, 1) and
 * strictly increasing (see docs/drift.md).
 * @param x  n x F row-major matrix, or NULL to use the first-window baseline.
 *           If the detector has no baseline yet, x also becomes the baseline.
 * @param info  may be NULL.
 * @return DRST_OK, DRST_ERR_INVAL, DRST_ERR_STATE (x NULL and no window
 * baseline), DRST_ERR_EMPTY (too few rows), DRST_ERR_NOMEM.
 */
drst_err_t drst_jsd_calibrate(drst_detector_t *d, const double *x, size_t n,
                              drst_calibration_t *info, char *err, size_t errlen) DRST_WUR;

/** @brief Replace the tier thresholds (must be 0 < A < B < C <= 1) and the per-feature one. */
drst_err_t drst_jsd_set_thresholds(drst_detector_t *d, const double thr[3],
                                   double feature_threshold, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Per-feature JSD of the last evaluation (F values, owned by `d`,
 * valid until the next update). NULL if `d` is not "jsd".
 */
const double *drst_jsd_feature_scores(const drst_detector_t *d);

/**
 * @brief Export feature f's frozen edges and counts (for tests and reports).
 * @param lo,inv_width  bin of value v is floor((v - lo) * inv_width) clamped to [0, B-1]
 * @param base,win  each receives B counts (may be NULL); win is the current window.
 * @param nan_win  may be NULL; NaN values in the current window.
 * @return DRST_OK, DRST_ERR_INVAL (not jsd, f out of range), DRST_ERR_STATE (no baseline).
 */
drst_err_t drst_jsd_histogram(const drst_detector_t *d, size_t f, double *lo, double *inv_width,
                              double *base, double *win, uint64_t *nan_win) DRST_WUR;

/* ------------------------------------------------------------- cooldown */

/**
 * @brief Single-shot helper: after a fire at record t, suppress fires at
 * records t+1 .. t+length. Caller-owned storage, no allocation.
 */
typedef struct drst_cooldown {
    uint64_t length;     /**< records suppressed after a fire */
    uint64_t until;      /**< last suppressed record (valid when armed) */
    int armed;           /**< a fire happened and may still suppress */
    uint64_t fired;      /**< fires so far */
    uint64_t suppressed; /**< fires refused so far */
} drst_cooldown_t;

/** @brief Initialise with a suppression length (0 = never suppress). */
void drst_cooldown_init(drst_cooldown_t *c, uint64_t length);

/**
 * @brief Ask to fire at record `now`.
 * @return 1 if allowed (and the cooldown restarts at `now`), 0 if suppressed.
 */
int drst_cooldown_try(drst_cooldown_t *c, uint64_t now);

/** @brief 1 if a fire at record `now` would be suppressed. */
int drst_cooldown_active(const drst_cooldown_t *c, uint64_t now);

/** @brief End any running cooldown (counters are kept). */
void drst_cooldown_clear(drst_cooldown_t *c);

#ifdef __cplusplus
}
#endif
#endif /* DRST_DRIFT_H */
