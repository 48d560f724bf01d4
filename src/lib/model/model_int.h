/* Model plane internals: the model body, the family ops table, the byte
 * writer/reader of the model file. Not public API. */
#ifndef DRST_MODEL_INT_H
#define DRST_MODEL_INT_H

#include <stdint.h>

#include "drst/model.h"

/* One node of a flat tree. Leaves have feature < 0 and carry `value`. */
typedef struct model_node {
    int32_t feature;
    int32_t left, right; /* absolute node indexes */
    double threshold;
    double value;
} model_node_t;

/* Hyperparameters kept in the file (every family stores all of them: simple
 * and self-describing). */
typedef struct model_hparams {
    uint32_t n_hidden;
    uint32_t hidden[DRST_MODEL_MAX_HIDDEN];
    uint32_t activation, loss, split, standardize_target;
    double lr, weight_decay, alpha, eta, val_frac, es_frac;
    uint64_t batch, max_epochs, patience, epochs_run, max_depth, min_samples_leaf, n_trees, topk;
} model_hparams_t;

struct drst_model {
    drst_model_family_t family;
    const struct drst_model_ops *ops;
    char *target;
    size_t nf;
    char **features;
    double *mean;      /* nf: training means (scaler centre, missing fill) */
    double *scale;     /* nf: training std (1 when zero) */
    double *inv_scale; /* nf: 1 / scale (derived) */
    double y_mean, y_std;
    model_hparams_t hp;
    uint64_t seed, n_train, n_val;
    unsigned char data_hash[32];
    drst_model_metrics_t val;

    /* derived, not stored */
    unsigned char hash[32];
    char hash_hex[65];
    char data_hash_hex[65];
    char describe[256];
    size_t maxw; /* widest layer (mlp) */

    /* mlp: nlayers dense layers, sizes[0] = nf, sizes[nlayers] = 1;
     * W[l] is sizes[l] x sizes[l+1] row-major (input-major), b[l] sizes[l+1]. */
    size_t nlayers;
    size_t sizes[DRST_MODEL_MAX_HIDDEN + 2];
    double *W[DRST_MODEL_MAX_HIDDEN + 1];
    double *b[DRST_MODEL_MAX_HIDDEN + 1];
    /* derived single-precision copy for drst_model_predict_f32(): fw[l] is
     * sizes[l+1] rounded up to 16 (zero padding); one aligned block. */
    float *fW[DRST_MODEL_MAX_HIDDEN + 1];
    float *fb[DRST_MODEL_MAX_HIDDEN + 1];
    size_t fw[DRST_MODEL_MAX_HIDDEN + 1];
    float *fblock;
    const struct f32_kernels *f32k; /* instruction set picked at derive time */

    /* ridge */
    double *coef; /* nf */
    double intercept;

    /* tree / gbdt: ntrees flat trees in one node array; prediction is
     * base + sum of leaves. gbdt compares in float as xgboost does
     * (x < thr goes left); tree compares x <= thr in double. */
    size_t ntrees, nnodes;
    uint32_t *roots;
    model_node_t *nodes;
    double base;
    unsigned char *xgb_raw; /* gbdt: xgboost's own model bytes (UBJSON) */
    size_t xgb_len;

    /* knn: knn_n reference rows in slog space (model feature order), their
     * targets in target units, per-feature weights 1 / std(slog) */
    size_t knn_n;
    uint32_t knn_k, knn_agg;
    double *knn_rows, *knn_y, *knn_w;
};

struct drst_model_scratch {
    size_t rows; /* rows per chunk */
    size_t cap;  /* doubles in buf */
    double *buf;
};

/* The data handed to a family's train(): scaled features, scaled target. */
typedef struct train_data {
    size_t nf;
    size_t n_train, n_es, n_val;
    const double *Xtr, *ytr; /* fit rows */
    const double *Xes, *yes; /* early-stopping rows (mlp), may be n_es = 0 */
    const double *Xval;      /* validation rows (scaled features) */
    const double *yval_raw;  /* validation targets, target units */
} train_data_t;

/* growable byte buffer */
typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} wbuf_t;

void wbuf_put(wbuf_t *w, const void *p, size_t n);
void wbuf_u32(wbuf_t *w, uint32_t v);
void wbuf_u64(wbuf_t *w, uint64_t v);
void wbuf_f64(wbuf_t *w, double v);
void wbuf_str(wbuf_t *w, const char *s);
void wbuf_f64s(wbuf_t *w, const double *v, size_t n);

/* bounds-checked reader; on the first failure `bad` is set and every later
 * read returns zeros, so parsers check once per section. */
typedef struct rbuf {
    const unsigned char *p;
    size_t len, pos;
    int bad;
    size_t bad_at;
    const char *what;
} rbuf_t;

uint32_t rbuf_u32(rbuf_t *r, const char *what);
uint64_t rbuf_u64(rbuf_t *r, const char *what);
double rbuf_f64(rbuf_t *r, const char *what);
/* a malloc'd NUL-terminated string of at most `max` bytes without control chars */
char *rbuf_str(rbuf_t *r, size_t max, const char *what);
/* n doubles into a new array (NULL + bad on failure or n too large) */
double *rbuf_f64s(rbuf_t *r, size_t n, const char *what);
void rbuf_fail(rbuf_t *r, const char *what);

struct drst_model_ops {
    const char *name;
    drst_model_family_t family;
    /* fit the family's parameters; m->nf, scaler, hp are set */
    drst_err_t (*train)(drst_model_t *m, const train_data_t *d, const drst_train_opts_t *o,
                        char *err, size_t errlen);
    void (*save)(const drst_model_t *m, wbuf_t *w);
    /* parse the payload; set r->bad on malformed input */
    void (*load)(drst_model_t *m, rbuf_t *r);
    /* scaled rows (n x nf, contiguous) -> scaled target; tmp has
     * scratch_per_row(m) * n doubles */
    void (*predict)(const drst_model_t *m, const double *xs, size_t n, double *y, double *tmp);
    size_t (*scratch_per_row)(const drst_model_t *m);
    /* optional: derived data after train or load (NULL: none) */
    drst_err_t (*derive)(drst_model_t *m);
    /* optional single-precision predict: n <= scratch rows RAW rows (stride
     * apart) -> predictions in target units; tmp is the whole scratch
     * (scratch_need() doubles). NULL: drst_model_predict_f32 uses predict. */
    void (*predict_f32)(const drst_model_t *m, const double *x, size_t n, size_t stride, double *y,
                        double *tmp);
};

extern const struct drst_model_ops drst_model_mlp_ops;
extern const struct drst_model_ops drst_model_ridge_ops;
extern const struct drst_model_ops drst_model_tree_ops;
extern const struct drst_model_ops drst_model_gbdt_ops;
extern const struct drst_model_ops drst_model_knn_ops;

const struct drst_model_ops *drst_model_ops_find(drst_model_family_t f);

/* shared by tree and gbdt */
void model_forest_predict(const drst_model_t *m, const double *xs, size_t n, double *y,
                          int float_cmp);
void model_forest_save(const drst_model_t *m, wbuf_t *w);
void model_forest_load(drst_model_t *m, rbuf_t *r);

/* deterministic PRNG (splitmix64) */
static inline uint64_t model_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline double model_rng_uniform(uint64_t *s)
{
    return (double)(model_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* acc@0.2 of scaled predictions against raw targets (progress). */
double model_acc20_scaled(const drst_model_t *m, const double *ys, const double *y_raw, size_t n);

/* Serialize to compute the content hash after training, then model_derive(). */
drst_err_t model_finish(drst_model_t *m, char *err, size_t errlen);
/* Fill the derived fields (hex hashes, description, widest layer, the
 * family's derive()) from m->hash. DRST_ERR_NOMEM if that allocation fails. */
drst_err_t model_derive(drst_model_t *m);

#endif
