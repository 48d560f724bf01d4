/* Private interface of the drift detectors: the ops table every kind fills,
 * the common head of every detector, and JSON helpers for state files. */
#ifndef DRST_DRIFT_INT_H
#define DRST_DRIFT_INT_H

#include <jansson.h>

#include "drst/drift.h"
#include "common/error_int.h"

struct drst_detector;

/*
 * One detector kind. Adding a kind: write src/lib/drift/<kind>.c with a
 * `const struct drst_detector_ops drst_<kind>_ops`, declare it below and list
 * it in drst_detector_ops_list[] (detector.c). The generic layer does the
 * counting, the cooldown and the JSON envelope; a kind only fills `evaluated`,
 * `change`, `tier`, `score`, `magnitude`, `n_drifted` of a result.
 */
struct drst_detector_ops {
    const char *name;
    /* Apply defaults to the fields this kind uses and check them. */
    drst_err_t (*normalize)(drst_detector_config_t *cfg, char *err, size_t errlen);
    /* Number of values update() takes. */
    size_t (*input_dim)(const drst_detector_config_t *cfg);
    /* Allocate everything the detector will ever need; cfg is normalized. */
    struct drst_detector *(*create)(const drst_detector_config_t *cfg, char *err, size_t errlen);
    void (*update)(struct drst_detector *d, const double *x, drst_drift_result_t *r);
    drst_err_t (*evaluate)(struct drst_detector *d, drst_drift_result_t *r);
    void (*reset)(struct drst_detector *d);
    void (*rebaseline)(struct drst_detector *d);
    void (*destroy)(struct drst_detector *d);
    /* The kind-specific state as a new JSON object (NULL on out of memory). */
    json_t *(*save)(const struct drst_detector *d);
    /* Load and validate the kind-specific state into a fresh detector. */
    drst_err_t (*restore)(struct drst_detector *d, const json_t *state, char *err, size_t errlen);
};

/* The common head: every kind's struct starts with it. */
struct drst_detector {
    const struct drst_detector_ops *ops;
    drst_detector_config_t cfg; /* normalized */
    drst_cooldown_t cooldown;
    uint64_t seen;
    uint64_t triggers;
};

extern const struct drst_detector_ops drst_jsd_ops;
extern const struct drst_detector_ops drst_page_hinkley_ops;
extern const struct drst_detector_ops drst_adwin_ops;

/* Tier of an error-mean increase for the error detectors. */
int drift_error_tier(const drst_detector_config_t *cfg, double increase);

/* Deterministic RNG (splitmix64), no global state. */
static inline uint64_t drift_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* JSON helpers. Setters return 0 on success, -1 on out of memory. Getters
 * fill err with "state: key 'k': ..." and return DRST_ERR_FORMAT. */
int jset_u64(json_t *o, const char *k, uint64_t v);
int jset_real(json_t *o, const char *k, double v);
int jset_reals(json_t *o, const char *k, const double *v, size_t n);
drst_err_t jget_u64(const json_t *o, const char *k, uint64_t *v, char *err, size_t errlen);
drst_err_t jget_real(const json_t *o, const char *k, double *v, char *err, size_t errlen);
drst_err_t jget_size(const json_t *o, const char *k, size_t *v, char *err, size_t errlen);
drst_err_t jget_int(const json_t *o, const char *k, int *v, char *err, size_t errlen);
/* An array of exactly n finite numbers. */
drst_err_t jget_reals(const json_t *o, const char *k, double *v, size_t n, char *err,
                      size_t errlen);
/* An array of exactly n integers in [0, max]. */
drst_err_t jget_u64s(const json_t *o, const char *k, uint64_t *v, size_t n, uint64_t max, char *err,
                     size_t errlen);

#endif
