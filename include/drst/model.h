/**
 * @file model.h
 * @brief Model plane: training, evaluation metrics, prediction and the model file.
 *
 * A drst_model_t is immutable once trained or loaded: every function taking a
 * `const drst_model_t *` may be called from any number of threads at once.
 * Prediction takes RAW feature rows in the model's feature order
 * (drst_model_feature()); scaling happens inside. Mutable working memory
 * lives in a caller-owned drst_model_scratch_t (one per thread), so predict
 * allocates nothing and hides no state: a served model can be swapped under
 * RCU while other threads predict with the old one.
 *
 * Families are `const struct drst_model_ops` tables listed in one array
 * (src/lib/model/model_int.h): mlp (OpenBLAS), ridge (closed form), tree
 * (CART, flat node array) and gbdt (libxgboost, trees kept as flat arrays
 * too, plus xgboost's raw model bytes).
 *
 * The file format is described in docs/model-file.md.
 */
#ifndef DRST_MODEL_H
#define DRST_MODEL_H

#include "drst/common.h"
#include "drst/telemetry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct drst_model drst_model_t;
typedef struct drst_model_scratch drst_model_scratch_t;

/** @brief Model families (values are stored in model files: append-only). */
typedef enum drst_model_family {
    DRST_MODEL_MLP = 1,
    DRST_MODEL_RIDGE = 2,
    DRST_MODEL_TREE = 3,
    DRST_MODEL_GBDT = 4,
    DRST_MODEL_KNN = 5
} drst_model_family_t;

/** @brief Family name ("mlp", "ridge", "tree", "gbdt") or "?". */
const char *drst_model_family_name(drst_model_family_t f);
/** @brief Family from its name. @return DRST_OK or DRST_ERR_INVAL. */
drst_err_t drst_model_family_parse(const char *name, drst_model_family_t *out) DRST_WUR;

/** @brief Relative-error floor: e = |yhat - y| / max(|y|, DRST_METRICS_EPS). */
#define DRST_METRICS_EPS 1e-9

/**
 * @brief Accuracy and error metrics of predictions against truth.
 *
 * acc_x = fraction of rows with relative error e <= x, where
 * e = |yhat - y| / max(|y|, 1e-9). Quantiles p50..p99 are of e (linear
 * interpolation between order statistics, as numpy's default).
 */
typedef struct drst_model_metrics {
    double acc05, acc10, acc20;     /**< accuracy at tau = 0.05, 0.1, 0.2 */
    double mae, rmse;               /**< absolute-error metrics, target units */
    double p50, p80, p90, p95, p99; /**< quantiles of the relative error */
    uint64_t rows;                  /**< rows scored */
} drst_model_metrics_t;

/**
 * @brief Compute metrics of `n` predictions. Non-finite predictions count as
 * wrong (infinite error). Allocates a temporary copy for the quantiles.
 * @return DRST_OK, DRST_ERR_EMPTY (n == 0), DRST_ERR_NOMEM.
 */
drst_err_t drst_metrics_compute(const double *yhat, const double *y, size_t n,
                                drst_model_metrics_t *out) DRST_WUR;

/** @brief Hidden activation of the mlp. */
typedef enum drst_activation { DRST_ACT_RELU = 0, DRST_ACT_GELU = 1 } drst_activation_t;
/** @brief Training loss of the mlp (on the standardized target). */
typedef enum drst_loss { DRST_LOSS_SMOOTHL1 = 0, DRST_LOSS_MSE = 1 } drst_loss_t;
/** @brief Validation split. */
typedef enum drst_split {
    DRST_SPLIT_CHRONO = 0,  /**< last val_frac of the usable rows, in file order */
    DRST_SPLIT_SHUFFLED = 1 /**< a seeded random permutation */
} drst_split_t;

#define DRST_MODEL_MAX_HIDDEN 8

/** @brief Progress of a training run, handed to drst_train_opts_t.progress. */
typedef struct drst_train_progress {
    size_t epoch; /**< 1-based epoch (mlp) or tree count (gbdt) */
    size_t max_epochs;
    double train_loss; /**< mean training loss of the epoch */
    double val_acc20;  /**< acc@0.2 on the validation rows */
} drst_train_progress_t;

/**
 * @brief Options of drst_model_train(). Always start from
 * drst_train_opts_init(), then change fields. Pointers are borrowed for the
 * duration of the call.
 */
typedef struct drst_train_opts {
    drst_model_family_t family; /**< default mlp */
    const char *target;         /**< target column, default "output_rate" */
    const char *data_name;      /**< name of the data in diagnostics (a file name), may be NULL */
    const char *const *exclude; /**< columns not used as features; default {input_rate, latency} */
    size_t n_exclude;
    size_t topk;                     /**< keep the k features with highest |Pearson r|; 0 = all */
    drst_split_t split;              /**< default chrono */
    double val_frac;                 /**< validation fraction, default 0.2 (0 = no validation) */
    const unsigned char *split_mask; /**< optional: per table row, 1 = validation, 0 = train;
                                          overrides split/val_frac */
    unsigned char *split_out;        /**< optional output, t->nrows entries: 0 = row dropped,
                                          1 = training, 2 = validation */
    uint64_t seed;                   /**< default 42 */
    int standardize_target;          /**< default 1 */

    /* mlp */
    size_t hidden[DRST_MODEL_MAX_HIDDEN]; /**< default {64, 32} */
    size_t n_hidden;
    drst_activation_t activation;   /**< default relu */
    drst_loss_t loss;               /**< default smoothl1 */
    double lr;                      /**< Adam learning rate, default 1e-3 */
    size_t batch;                   /**< minibatch rows, default 32 */
    double weight_decay;            /**< L2 added to the gradient, default 1e-4 */
    size_t max_epochs;              /**< default 300 */
    size_t patience;                /**< early-stopping patience in epochs, default 0 = off (the
                                         10% holdout of a ~1.4k-row set is too noisy: measured
                                         worse on combined.csv); off, the epoch with the lowest
                                         training loss is kept */
    double es_frac;                 /**< fraction of training rows held out for early stopping,
                                         default 0.1 (the validation rows are never used) */
    const drst_model_t *warm_start; /**< optional compatible mlp to start from */

    /* ridge */
    double alpha; /**< L2 penalty, default 1.0 (as sklearn Ridge on standardized X) */

    /* tree and gbdt */
    size_t max_depth;        /**< tree default 10, gbdt default 6 (0 = family default) */
    size_t min_samples_leaf; /**< tree default 5; gbdt: min_child_weight */
    size_t n_trees;          /**< gbdt rounds, default 300 */
    double eta;              /**< gbdt learning rate, default 0.1 */
    int nthread;             /**< gbdt threads, default 1 (determinism) */

    /* knn */
    size_t knn_k;        /**< neighbours, default 3 (at most DRST_KNN_MAX_K) */
    int knn_mean;        /**< 1 = mean of the neighbours' targets, default 0 = median */
    size_t knn_max_rows; /**< reference rows kept (the most recent), default 100000 */

    /** Optional progress callback (called on the training thread). */
    void (*progress)(void *opaque, const drst_train_progress_t *p);
    void *progress_opaque;
} drst_train_opts_t;

/** @brief Fill `o` with the defaults listed above. */
void drst_train_opts_init(drst_train_opts_t *o);

/** @brief What training did with the data (filled by drst_model_train()). */
typedef struct drst_train_report {
    size_t rows_total;        /**< table rows */
    size_t rows_dropped;      /**< rows with a non-finite feature or target */
    size_t cols_dropped;      /**< candidate columns dropped (constant, all-missing, top-k) */
    size_t n_features;        /**< features kept */
    size_t n_train, n_val;    /**< rows used for fitting / validation */
    size_t epochs;            /**< mlp epochs run (best epoch kept) */
    int has_val;              /**< val metrics valid */
    drst_model_metrics_t val; /**< metrics on the validation rows */
} drst_train_report_t;

/**
 * @brief Train a model on a table.
 *
 * Features are every column except the target, the excluded ones and columns
 * without a name (a pandas index); columns constant or all-missing on the
 * training rows are dropped, rows with a non-finite feature or target are
 * dropped, each reported as a warning to `diag` (line = 1-based CSV line,
 * i.e. row + 2). Same data, options and seed give a byte-identical model file.
 *
 * @param t     the data (borrowed)
 * @param o     options (borrowed; NULL = defaults)
 * @param out   receives a new model owned by the caller
 * @param rep   optional report
 * @param diag  optional sink for dropped rows/columns (warnings, never fatal)
 * @return DRST_OK, DRST_ERR_NOTFOUND (no target column), DRST_ERR_EMPTY (too
 *         few usable rows or no feature), DRST_ERR_SCHEMA (warm start not
 *         compatible), DRST_ERR_NUMERIC (training diverged), DRST_ERR_INVAL,
 *         DRST_ERR_NOMEM.
 */
drst_err_t drst_model_train(const drst_table_t *t, const drst_train_opts_t *o, drst_model_t **out,
                            drst_train_report_t *rep, drst_diag_t *diag, char *err,
                            size_t errlen) DRST_WUR;

/** @brief Free a model; NULL is a no-op. */
void drst_model_free(drst_model_t *m);

/* ---- accessors (thread-safe, pointers live as long as the model) ---- */
drst_model_family_t drst_model_family(const drst_model_t *m);
size_t drst_model_nfeatures(const drst_model_t *m);
/** @brief Name of feature i (model order). */
const char *drst_model_feature(const drst_model_t *m, size_t i);
const char *drst_model_target(const drst_model_t *m);
/** @brief Training mean of every feature (nfeatures values): fill for missing features. */
const double *drst_model_means(const drst_model_t *m);
/** @brief Validation metrics stored at training time (rows == 0 if none). */
const drst_model_metrics_t *drst_model_val_metrics(const drst_model_t *m);
/** @brief SHA-256 of the model file bytes (32 bytes). */
const unsigned char *drst_model_hash(const drst_model_t *m);
/** @brief Same hash as 64 lowercase hex characters. */
const char *drst_model_hash_hex(const drst_model_t *m);
/** @brief Training seed, and train/validation row counts. */
uint64_t drst_model_seed(const drst_model_t *m);
/** @brief SHA-256 (hex) of the training data (the used rows and columns). */
const char *drst_model_data_hash_hex(const drst_model_t *m);
/** @brief Rows used for training / validation. */
void drst_model_rows(const drst_model_t *m, uint64_t *n_train, uint64_t *n_val);
/** @brief Short human description of the hyperparameters ("hidden=64,32 act=relu ..."). */
const char *drst_model_describe(const drst_model_t *m);

/**
 * @brief Map table columns to the model's features.
 * @param idx receives nfeatures column indexes of `t`
 * @return DRST_OK or DRST_ERR_SCHEMA naming the first missing feature.
 */
drst_err_t drst_model_bind(const drst_model_t *m, const drst_table_t *t, long *idx, char *err,
                           size_t errlen) DRST_WUR;

/* ---- prediction ---- */

/**
 * @brief Create per-thread scratch for predicting up to `rows` rows per
 * internal chunk with `m` (larger calls are chunked). Reuse it with other
 * models after drst_model_scratch_reserve().
 * @return scratch owned by the caller or NULL (out of memory).
 */
drst_model_scratch_t *drst_model_scratch_new(const drst_model_t *m, size_t rows);
/** @brief Grow scratch so that it fits `m` (allocates; not for the hot path). */
drst_err_t drst_model_scratch_reserve(drst_model_scratch_t *s, const drst_model_t *m) DRST_WUR;
/** @brief Free scratch; NULL is a no-op. */
void drst_model_scratch_free(drst_model_scratch_t *s);

/**
 * @brief Predict `nrows` raw rows: row r starts at x + r * stride and holds
 * nfeatures values in model order (non-finite values are replaced by the
 * training mean). Allocation-free; thread-safe given one scratch per thread.
 * @return DRST_OK, or DRST_ERR_INVAL if the scratch does not fit the model.
 */
drst_err_t drst_model_predict(const drst_model_t *m, const double *x, size_t nrows, size_t stride,
                              double *y, drst_model_scratch_t *s) DRST_WUR;

/**
 * @brief drst_model_predict() computed in single precision where the family
 * has such a path, for serving: the mlp centres and scales the inputs in
 * double, then runs the network in float32 (as torch serves it) with a
 * vector kernel (AVX-512, AVX2+FMA or portable, chosen at run time). The
 * result differs from drst_model_predict() by float rounding only (relative
 * ~1e-6 of the scaled output) and a row's prediction does not depend on the
 * batch it is in. Other families: exactly drst_model_predict().
 * Allocation-free; same scratch as drst_model_predict().
 * @return DRST_OK, or DRST_ERR_INVAL if the scratch does not fit the model.
 */
drst_err_t drst_model_predict_f32(const drst_model_t *m, const double *x, size_t nrows,
                                  size_t stride, double *y, drst_model_scratch_t *s) DRST_WUR;

/** @brief Single-row fast path. @return the prediction, NaN if scratch does not fit. */
double drst_model_predict1(const drst_model_t *m, const double *x, drst_model_scratch_t *s);

/* ------------------------------------------------------------------ knn memory
 * The knn family is instance-based: besides its own reference rows it can
 * search an online memory of labelled records, so an adaptive path learns
 * from every label the moment it arrives, between retrains.
 *
 * A drst_knn_memory_t has one writer (drst_knn_memory_add()) and any number
 * of concurrent readers (drst_model_knn_predict()): entries below the count a
 * reader observes never change (append-only, count published with release
 * order), so readers take no lock. Capacity is fixed at creation; a full
 * memory refuses new entries (DRST_ERR_TOOBIG) and the caller decides (a
 * retrain consolidates what it holds into a release). */
#define DRST_KNN_MAX_K 32

typedef struct drst_knn_memory drst_knn_memory_t;

/** @brief New memory for records of `nf` features (schema order), `cap` entries. */
drst_knn_memory_t *drst_knn_memory_new(size_t nf, size_t cap);
void drst_knn_memory_free(drst_knn_memory_t *mem);
/** @brief Append a labelled record (writer only). `seq` must grow; x has nf
 * raw features (NaN = missing), y must be finite. */
drst_err_t drst_knn_memory_add(drst_knn_memory_t *mem, uint64_t seq, const double *x,
                               double y) DRST_WUR;
size_t drst_knn_memory_count(const drst_knn_memory_t *mem);

/**
 * @brief knn prediction for one record over the model's reference rows plus
 * the memory entries with sequence number < `before` (UINT64_MAX: all).
 * `x` is the record in the memory's schema order; bind[j] is the schema
 * column of model feature j (drst_model_bind()-style). An entry identical to
 * a reference row (same features and target) counts once. `s` is a scratch
 * reserved for `m`. mem may be NULL. DRST_ERR_INVAL if m is not a knn.
 */
drst_err_t drst_model_knn_predict(const drst_model_t *m, const double *x, const long *bind,
                                  const drst_knn_memory_t *mem, uint64_t before, double *y,
                                  drst_model_scratch_t *s) DRST_WUR;

/**
 * @brief Predict every row of a table (features bound by name) and, if the
 * target column exists, score them.
 * @param yhat receives t->nrows predictions (caller-owned array) or NULL
 * @param met  receives metrics over rows with a finite target (may be NULL)
 * @return DRST_OK, DRST_ERR_SCHEMA (feature missing), DRST_ERR_NOTFOUND (no
 *         target while met != NULL), DRST_ERR_EMPTY, DRST_ERR_NOMEM.
 */
drst_err_t drst_model_eval_table(const drst_model_t *m, const drst_table_t *t, double *yhat,
                                 drst_model_metrics_t *met, char *err, size_t errlen) DRST_WUR;

/* ---- the model file ---- */

/**
 * @brief Serialize a model (docs/model-file.md).
 * @param buf receives malloc'd bytes owned by the caller (free()).
 */
drst_err_t drst_model_save_buffer(const drst_model_t *m, unsigned char **buf, size_t *len,
                                  char *err, size_t errlen) DRST_WUR;
/** @brief Write the model file to `path` (temp file + fsync + rename). */
drst_err_t drst_model_save(const drst_model_t *m, const char *path, char *err,
                           size_t errlen) DRST_WUR;

/**
 * @brief Load a model from bytes (borrowed, copied as needed).
 * @return DRST_OK, DRST_ERR_FORMAT (bad magic, version, checksum, truncated,
 *         out-of-range field; the message says which and at what offset),
 *         DRST_ERR_NOMEM.
 */
drst_err_t drst_model_load_buffer(const void *buf, size_t len, drst_model_t **out, char *err,
                                  size_t errlen) DRST_WUR;
/** @brief Load a model file from `path`. */
drst_err_t drst_model_load(const char *path, drst_model_t **out, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Metrics JSON of a model as published next to it in a store
 * (family, target, features, validation metrics, seed, hashes).
 * @param json receives a malloc'd NUL-terminated string.
 */
drst_err_t drst_model_metrics_json(const drst_model_t *m, const char *model_key, char **json,
                                   char *err, size_t errlen) DRST_WUR;

#ifdef __cplusplus
}
#endif
#endif /* DRST_MODEL_H */
