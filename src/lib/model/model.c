/* Model plane core: family table, options, data preparation (feature choice,
 * drops, split, scaler), metrics, prediction and accessors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "common/error_int.h"
#include "model/model_int.h"

static const struct drst_model_ops *const families[] = {
    &drst_model_mlp_ops,  &drst_model_ridge_ops, &drst_model_tree_ops,
    &drst_model_gbdt_ops, &drst_model_knn_ops,
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

const struct drst_model_ops *drst_model_ops_find(drst_model_family_t f)
{
    for (size_t i = 0; i < NFAMILIES; i++)
        if (families[i]->family == f)
            return families[i];
    return NULL;
}

const char *drst_model_family_name(drst_model_family_t f)
{
    const struct drst_model_ops *ops = drst_model_ops_find(f);
    return ops ? ops->name : "?";
}

drst_err_t drst_model_family_parse(const char *name, drst_model_family_t *out)
{
    for (size_t i = 0; name && i < NFAMILIES; i++) {
        if (!strcmp(name, families[i]->name)) {
            *out = families[i]->family;
            return DRST_OK;
        }
    }
    return DRST_ERR_INVAL;
}

void drst_train_opts_init(drst_train_opts_t *o)
{
    static const char *const default_exclude[] = {"input_rate", "latency"};
    memset(o, 0, sizeof(*o));
    o->family = DRST_MODEL_MLP;
    o->target = "output_rate";
    o->exclude = default_exclude;
    o->n_exclude = 2;
    o->split = DRST_SPLIT_CHRONO;
    o->val_frac = 0.2;
    o->seed = 42;
    o->standardize_target = 1;
    o->hidden[0] = 64;
    o->hidden[1] = 32;
    o->n_hidden = 2;
    o->activation = DRST_ACT_RELU;
    o->loss = DRST_LOSS_SMOOTHL1;
    o->lr = 1e-3;
    o->batch = 32;
    o->weight_decay = 1e-4;
    o->max_epochs = 300;
    o->patience = 0;
    o->es_frac = 0.1;
    o->alpha = 1.0;
    o->n_trees = 300;
    o->eta = 0.1;
    o->nthread = 1;
    o->knn_k = 3;
    o->knn_max_rows = 100000;
}

/* ---------------------------------------------------------------- metrics */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile_sorted(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    double frac = pos - (double)lo;
    if (isinf(v[lo]) || isinf(v[hi]))
        return frac > 0 ? v[hi] : v[lo];
    return v[lo] + (v[hi] - v[lo]) * frac;
}

drst_err_t drst_metrics_compute(const double *yhat, const double *y, size_t n,
                                drst_model_metrics_t *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return DRST_ERR_EMPTY;
    double *e = malloc(n * sizeof(*e));
    if (!e)
        return DRST_ERR_NOMEM;
    size_t c05 = 0, c10 = 0, c20 = 0;
    double sae = 0, sse = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(yhat[i] - y[i]);
        if (!isfinite(d))
            d = INFINITY;
        double den = fabs(y[i]) > DRST_METRICS_EPS ? fabs(y[i]) : DRST_METRICS_EPS;
        e[i] = d / den;
        c05 += e[i] <= 0.05;
        c10 += e[i] <= 0.1;
        c20 += e[i] <= 0.2;
        sae += d;
        sse += d * d;
    }
    qsort(e, n, sizeof(*e), cmp_double);
    out->acc05 = (double)c05 / (double)n;
    out->acc10 = (double)c10 / (double)n;
    out->acc20 = (double)c20 / (double)n;
    out->mae = sae / (double)n;
    out->rmse = sqrt(sse / (double)n);
    out->p50 = quantile_sorted(e, n, 0.5);
    out->p80 = quantile_sorted(e, n, 0.8);
    out->p90 = quantile_sorted(e, n, 0.9);
    out->p95 = quantile_sorted(e, n, 0.95);
    out->p99 = quantile_sorted(e, n, 0.99);
    out->rows = n;
    free(e);
    return DRST_OK;
}

double model_acc20_scaled(const drst_model_t *m, const double *ys, const double *y_raw, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        double yh = ys[i] * m->y_std + m->y_mean;
        double den = fabs(y_raw[i]) > DRST_METRICS_EPS ? fabs(y_raw[i]) : DRST_METRICS_EPS;
        ok += fabs(yh - y_raw[i]) / den <= 0.2;
    }
    return n ? (double)ok / (double)n : 0.0;
}

/* ------------------------------------------------------------- lifecycle */

void drst_model_free(drst_model_t *m)
{
    if (!m)
        return;
    free(m->target);
    for (size_t i = 0; m->features && i < m->nf; i++)
        free(m->features[i]);
    free(m->features);
    free(m->mean);
    free(m->scale);
    free(m->inv_scale);
    for (size_t l = 0; l < DRST_MODEL_MAX_HIDDEN + 1; l++) {
        free(m->W[l]);
        free(m->b[l]);
    }
    free(m->fblock);
    free(m->coef);
    free(m->roots);
    free(m->nodes);
    free(m->xgb_raw);
    free(m->knn_rows);
    free(m->knn_y);
    free(m->knn_w);
    free(m);
}

static void hex32(const unsigned char *h, char *out)
{
    static const char dig[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = dig[h[i] >> 4];
        out[2 * i + 1] = dig[h[i] & 15];
    }
    out[64] = 0;
}

static void describe(drst_model_t *m)
{
    const model_hparams_t *h = &m->hp;
    char *d = m->describe;
    size_t n = sizeof(m->describe);
    switch (m->family) {
    case DRST_MODEL_MLP: {
        char hid[96] = "";
        size_t k = 0;
        for (uint32_t i = 0; i < h->n_hidden && k < sizeof(hid) - 12; i++)
            k += (size_t)snprintf(hid + k, sizeof(hid) - k, "%s%u", i ? "," : "", h->hidden[i]);
        snprintf(d, n, "hidden=%s act=%s loss=%s lr=%g batch=%llu wd=%g epochs=%llu/%llu", hid,
                 h->activation == DRST_ACT_GELU ? "gelu" : "relu",
                 h->loss == DRST_LOSS_MSE ? "mse" : "smoothl1", h->lr, (unsigned long long)h->batch,
                 h->weight_decay, (unsigned long long)h->epochs_run,
                 (unsigned long long)h->max_epochs);
        break;
    }
    case DRST_MODEL_RIDGE:
        snprintf(d, n, "alpha=%g", h->alpha);
        break;
    case DRST_MODEL_TREE:
        snprintf(d, n, "max_depth=%llu min_samples_leaf=%llu nodes=%zu",
                 (unsigned long long)h->max_depth, (unsigned long long)h->min_samples_leaf,
                 m->nnodes);
        break;
    case DRST_MODEL_GBDT:
        snprintf(d, n, "trees=%zu eta=%g max_depth=%llu nodes=%zu", m->ntrees, h->eta,
                 (unsigned long long)h->max_depth, m->nnodes);
        break;
    case DRST_MODEL_KNN:
        snprintf(d, n, "k=%u agg=%s rows=%zu", m->knn_k, m->knn_agg ? "mean" : "median", m->knn_n);
        break;
    }
}

drst_err_t model_finish(drst_model_t *m, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_err_t rc = drst_model_save_buffer(m, &buf, &len, err, errlen);
    if (rc)
        return rc;
    SHA256(buf, len, m->hash);
    free(buf);
    if (model_derive(m) != DRST_OK)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "model: out of memory");
    return DRST_OK;
}

drst_err_t model_derive(drst_model_t *m)
{
    hex32(m->hash, m->hash_hex);
    hex32(m->data_hash, m->data_hash_hex);
    m->maxw = 1;
    for (size_t l = 0; l <= m->nlayers && m->family == DRST_MODEL_MLP; l++)
        if (m->sizes[l] > m->maxw)
            m->maxw = m->sizes[l];
    describe(m);
    return m->ops->derive ? m->ops->derive(m) : DRST_OK;
}

/* ---------------------------------------------------------------- train */

typedef struct prep {
    size_t ncand;
    long *cand;          /* candidate column indexes */
    unsigned char *keep; /* per candidate */
    size_t *rows;        /* usable rows, in split order: train first, then val */
    size_t nrows, n_train, n_val;
} prep_t;

static int excluded(const drst_train_opts_t *o, const char *name)
{
    for (size_t i = 0; i < o->n_exclude; i++)
        if (o->exclude[i] && !strcmp(o->exclude[i], name))
            return 1;
    return 0;
}

static int cmp_absr(const void *a, const void *b, const double *r)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = fabs(r[i]), y = fabs(r[j]);
    if (x != y)
        return x < y ? 1 : -1;
    return (i > j) - (i < j);
}

/* qsort has no context argument in C11: a small insertion sort will do for
 * the number of columns we have. */
static void sort_by_absr(size_t *idx, size_t n, const double *r)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && cmp_absr(&idx[j - 1], &v, r) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

drst_err_t drst_model_train(const drst_table_t *t, const drst_train_opts_t *opts,
                            drst_model_t **out, drst_train_report_t *rep, drst_diag_t *diag,
                            char *err, size_t errlen)
{
    drst_train_opts_t defaults;
    drst_train_report_t rdummy;
    const drst_train_opts_t *o = opts;
    drst_err_t rc = DRST_OK;
    drst_model_t *m = NULL;
    long *cand = NULL;
    unsigned char *usable = NULL;
    size_t *rows = NULL, *fidx = NULL;
    double *X = NULL, *Y = NULL, *yraw = NULL, *r = NULL, *pred = NULL;

    *out = NULL;
    if (!o) {
        drst_train_opts_init(&defaults);
        o = &defaults;
    }
    if (!rep)
        rep = &rdummy;
    memset(rep, 0, sizeof(*rep));
    rep->rows_total = t ? t->nrows : 0;
    const struct drst_model_ops *ops = drst_model_ops_find(o->family);
    if (!t || !ops)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "train: no table or unknown model family");
    if (!(o->val_frac >= 0 && o->val_frac < 1))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "train: val_frac %g not in [0, 1)",
                           o->val_frac);
    const drst_model_t *warm = o->warm_start;
    if (warm && (o->family != DRST_MODEL_MLP || warm->family != DRST_MODEL_MLP))
        return drst_seterr(err, errlen, DRST_ERR_SCHEMA, "train: warm start needs two mlp models");
    const char *target = o->target ? o->target : "output_rate";
    long tcol = drst_table_col(t, target);
    if (tcol < 0)
        return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "train: no target column '%s'", target);

    /* candidate columns */
    cand = malloc((t->ncols + 1) * sizeof(*cand));
    usable = calloc(t->nrows + 1, 1);
    rows = malloc((t->nrows + 1) * sizeof(*rows));
    if (!cand || !usable || !rows) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    size_t ncand = 0;
    if (warm) {
        for (size_t j = 0; j < warm->nf; j++) {
            long c = drst_table_col(t, warm->features[j]);
            if (c < 0) {
                rc = drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                                 "train: warm-start feature '%s' not in the data",
                                 warm->features[j]);
                goto out;
            }
            cand[ncand++] = c;
        }
    } else {
        for (size_t c = 0; c < t->ncols; c++) {
            if ((long)c == tcol || excluded(o, t->names[c]))
                continue;
            if (!t->names[c][0]) {
                drst_diag_warn(diag, o->data_name, 0,
                               "column %zu has no name (an index?): not a feature", c + 1);
                rep->cols_dropped++;
                continue;
            }
            size_t finite = 0;
            for (size_t i = 0; i < t->nrows && !finite; i++)
                finite += isfinite(drst_table_at(t, i, c)) != 0;
            if (!finite) {
                drst_diag_warn(diag, o->data_name, 0, "column '%s' has no numeric value: dropped",
                               t->names[c]);
                rep->cols_dropped++;
                continue;
            }
            cand[ncand++] = (long)c;
        }
    }
    if (!ncand) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY, "train: no feature column left");
        goto out;
    }

    /* usable rows */
    size_t nuse = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        int ok = isfinite(drst_table_at(t, i, (size_t)tcol));
        const char *bad = ok ? NULL : target;
        for (size_t j = 0; ok && j < ncand; j++) {
            if (!isfinite(drst_table_at(t, i, (size_t)cand[j]))) {
                ok = 0;
                bad = t->names[cand[j]];
            }
        }
        if (ok) {
            usable[i] = 1;
            nuse++;
        } else {
            drst_diag_warn(diag, o->data_name, (uint64_t)i + 2,
                           "row dropped: '%s' is missing or not a finite number", bad);
            rep->rows_dropped++;
        }
    }

    /* split: train rows first, then validation rows */
    size_t n_val = 0, n_train = 0;
    if (o->split_mask) {
        for (size_t i = 0; i < t->nrows; i++)
            if (usable[i] && !o->split_mask[i])
                rows[n_train++] = i;
        for (size_t i = 0; i < t->nrows; i++)
            if (usable[i] && o->split_mask[i])
                rows[n_train + n_val++] = i;
    } else {
        size_t k = 0;
        for (size_t i = 0; i < t->nrows; i++)
            if (usable[i])
                rows[k++] = i;
        if (o->split == DRST_SPLIT_SHUFFLED) {
            uint64_t s = o->seed ^ 0x5eedULL;
            for (size_t i = nuse; i > 1; i--) {
                size_t j = (size_t)(model_rng_next(&s) % i);
                size_t tmp = rows[i - 1];
                rows[i - 1] = rows[j];
                rows[j] = tmp;
            }
        }
        n_val = (size_t)floor((double)nuse * o->val_frac + 0.5);
        if (n_val >= nuse)
            n_val = 0;
        n_train = nuse - n_val;
    }
    if (o->split_out) {
        memset(o->split_out, 0, t->nrows);
        for (size_t i = 0; i < n_train + n_val; i++)
            o->split_out[rows[i]] = i < n_train ? 1 : 2;
    }
    if (n_train < 2) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY,
                         "train: %zu usable training row(s) of %zu (need at least 2)", n_train,
                         t->nrows);
        goto out;
    }

    m = calloc(1, sizeof(*m));
    if (!m) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    m->family = o->family;
    m->ops = ops;
    m->target = strdup(target);

    /* per-candidate mean/std on training rows; constant columns dropped */
    double *cm = calloc(ncand, sizeof(*cm)), *cs = calloc(ncand, sizeof(*cs));
    fidx = malloc(ncand * sizeof(*fidx));
    r = calloc(ncand, sizeof(*r));
    if (!cm || !cs || !fidx || !r || !m->target) {
        free(cm);
        free(cs);
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    double ym = 0, yv = 0;
    for (size_t i = 0; i < n_train; i++)
        ym += drst_table_at(t, rows[i], (size_t)tcol);
    ym /= (double)n_train;
    for (size_t i = 0; i < n_train; i++) {
        double d = drst_table_at(t, rows[i], (size_t)tcol) - ym;
        yv += d * d;
    }
    yv /= (double)n_train;
    size_t nf = 0;
    for (size_t j = 0; j < ncand; j++) {
        double mu = 0, var = 0, cov = 0;
        for (size_t i = 0; i < n_train; i++)
            mu += drst_table_at(t, rows[i], (size_t)cand[j]);
        mu /= (double)n_train;
        for (size_t i = 0; i < n_train; i++) {
            double d = drst_table_at(t, rows[i], (size_t)cand[j]) - mu;
            var += d * d;
            cov += d * (drst_table_at(t, rows[i], (size_t)tcol) - ym);
        }
        var /= (double)n_train;
        cov /= (double)n_train;
        cm[j] = mu;
        cs[j] = sqrt(var);
        if (!warm && !(cs[j] > 1e-12 * (fabs(mu) > 1 ? fabs(mu) : 1))) {
            drst_diag_warn(diag, o->data_name, 0,
                           "column '%s' is constant on the training rows: dropped",
                           t->names[cand[j]]);
            rep->cols_dropped++;
            continue;
        }
        r[j] = yv > 0 && cs[j] > 0 ? cov / (cs[j] * sqrt(yv)) : 0;
        if (!isfinite(r[j]))
            r[j] = 0;
        fidx[nf++] = j;
    }
    if (!warm && o->topk && o->topk < nf) {
        sort_by_absr(fidx, nf, r);
        rep->cols_dropped += nf - o->topk;
        nf = o->topk;
        /* back to table order so models read naturally */
        for (size_t i = 1; i < nf; i++) {
            size_t v = fidx[i], k = i;
            while (k > 0 && fidx[k - 1] > v) {
                fidx[k] = fidx[k - 1];
                k--;
            }
            fidx[k] = v;
        }
    }
    if (!nf) {
        free(cm);
        free(cs);
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY,
                         "train: every feature column is constant on the training rows");
        goto out;
    }
    m->nf = nf;
    m->features = calloc(nf, sizeof(char *));
    m->mean = malloc(nf * sizeof(double));
    m->scale = malloc(nf * sizeof(double));
    m->inv_scale = malloc(nf * sizeof(double));
    if (!m->features || !m->mean || !m->scale || !m->inv_scale) {
        free(cm);
        free(cs);
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    for (size_t k = 0; k < nf; k++) {
        size_t j = fidx[k];
        m->features[k] = strdup(t->names[cand[j]]);
        m->mean[k] = warm ? warm->mean[k] : cm[j];
        m->scale[k] = warm ? warm->scale[k] : (cs[j] > 0 ? cs[j] : 1.0);
        m->inv_scale[k] = 1.0 / m->scale[k];
        if (!m->features[k]) {
            free(cm);
            free(cs);
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
            goto out;
        }
    }
    free(cm);
    free(cs);
    if (warm) {
        m->y_mean = warm->y_mean;
        m->y_std = warm->y_std;
    } else if (o->standardize_target && yv > 0) {
        m->y_mean = ym;
        m->y_std = sqrt(yv);
    } else {
        /* a constant target is still centred: every family then fits ~0 */
        m->y_mean = yv > 0 ? 0 : ym;
        m->y_std = 1;
    }

    /* scaled design matrix in split order + data hash */
    size_t n = n_train + n_val;
    X = malloc(n * nf * sizeof(*X));
    Y = malloc(n * sizeof(*Y));
    yraw = malloc(n * sizeof(*yraw));
    if (!X || !Y || !yraw) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    wbuf_t hb = {0}; /* the bytes hashed: names, then used rows and target */
    for (size_t k = 0; k < nf; k++)
        wbuf_put(&hb, m->features[k], strlen(m->features[k]) + 1);
    wbuf_put(&hb, target, strlen(target) + 1);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < nf; k++) {
            double v = drst_table_at(t, rows[i], (size_t)cand[fidx[k]]);
            wbuf_f64(&hb, v);
            X[i * nf + k] = (v - m->mean[k]) * m->inv_scale[k];
        }
        yraw[i] = drst_table_at(t, rows[i], (size_t)tcol);
        wbuf_f64(&hb, yraw[i]);
        Y[i] = (yraw[i] - m->y_mean) / m->y_std;
    }
    if (hb.oom) {
        free(hb.p);
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    SHA256(hb.p, hb.len, m->data_hash);
    free(hb.p);

    /* hyperparameters as used */
    model_hparams_t *h = &m->hp;
    h->n_hidden =
        (uint32_t)(o->n_hidden > DRST_MODEL_MAX_HIDDEN ? DRST_MODEL_MAX_HIDDEN : o->n_hidden);
    for (uint32_t i = 0; i < h->n_hidden; i++)
        h->hidden[i] = (uint32_t)o->hidden[i];
    h->activation = (uint32_t)o->activation;
    h->loss = (uint32_t)o->loss;
    h->split = o->split_mask ? 2u : (uint32_t)o->split;
    h->standardize_target = (uint32_t)(o->standardize_target != 0);
    h->lr = o->lr;
    h->weight_decay = o->weight_decay;
    h->alpha = o->alpha;
    h->eta = o->eta;
    h->val_frac = o->val_frac;
    h->es_frac = o->es_frac;
    h->batch = o->batch;
    h->max_epochs = o->max_epochs;
    h->patience = o->patience;
    h->max_depth = o->max_depth;
    h->min_samples_leaf = o->min_samples_leaf;
    h->n_trees = o->n_trees;
    h->topk = o->topk;
    m->seed = o->seed;

    train_data_t d = {0};
    d.nf = nf;
    size_t n_es = 0;
    if (o->family == DRST_MODEL_MLP && o->patience > 0 && o->es_frac > 0) {
        n_es = (size_t)floor((double)n_train * o->es_frac + 0.5);
        if (n_es >= n_train || n_train - n_es < 2)
            n_es = 0;
    }
    d.n_train = n_train - n_es;
    d.Xtr = X;
    d.ytr = Y;
    d.n_es = n_es;
    d.Xes = X + d.n_train * nf;
    d.yes = Y + d.n_train;
    d.n_val = n_val;
    d.Xval = X + n_train * nf;
    d.yval_raw = yraw + n_train;
    m->n_train = n_train;
    m->n_val = n_val;
    rc = ops->train(m, &d, o, err, errlen);
    if (rc)
        goto out;

    /* validation metrics, and a last guard against a NaN model */
    size_t nchk = n_val ? n_val : n_train;
    const double *Xc = n_val ? d.Xval : X;
    const double *yc = n_val ? d.yval_raw : yraw;
    size_t per = ops->scratch_per_row(m);
    pred = malloc(nchk * (per + 1) * sizeof(*pred) + sizeof(*pred));
    if (!pred) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    ops->predict(m, Xc, nchk, pred, pred + nchk);
    for (size_t i = 0; i < nchk; i++) {
        pred[i] = pred[i] * m->y_std + m->y_mean;
        if (!isfinite(pred[i])) {
            rc = drst_seterr(err, errlen, DRST_ERR_NUMERIC,
                             "train: %s model predicts a non-finite value (diverged)", ops->name);
            goto out;
        }
    }
    if (n_val) {
        rc = drst_metrics_compute(pred, yc, nchk, &m->val);
        if (rc) {
            rc = drst_seterr(err, errlen, rc, "train: cannot compute metrics");
            goto out;
        }
        rep->has_val = 1;
        rep->val = m->val;
    }
    rc = model_finish(m, err, errlen);
    if (rc)
        goto out;
    rep->n_features = nf;
    rep->n_train = n_train;
    rep->n_val = n_val;
    rep->epochs = (size_t)m->hp.epochs_run;
    *out = m;
    m = NULL;
out:
    drst_model_free(m);
    free(cand);
    free(usable);
    free(rows);
    free(fidx);
    free(r);
    free(X);
    free(Y);
    free(yraw);
    free(pred);
    return rc;
}

/* ------------------------------------------------------------ accessors */

drst_model_family_t drst_model_family(const drst_model_t *m)
{
    return m->family;
}
size_t drst_model_nfeatures(const drst_model_t *m)
{
    return m->nf;
}
const char *drst_model_feature(const drst_model_t *m, size_t i)
{
    return i < m->nf ? m->features[i] : NULL;
}
const char *drst_model_target(const drst_model_t *m)
{
    return m->target;
}
const double *drst_model_means(const drst_model_t *m)
{
    return m->mean;
}
const drst_model_metrics_t *drst_model_val_metrics(const drst_model_t *m)
{
    return &m->val;
}
const unsigned char *drst_model_hash(const drst_model_t *m)
{
    return m->hash;
}
const char *drst_model_hash_hex(const drst_model_t *m)
{
    return m->hash_hex;
}
uint64_t drst_model_seed(const drst_model_t *m)
{
    return m->seed;
}
const char *drst_model_data_hash_hex(const drst_model_t *m)
{
    return m->data_hash_hex;
}
void drst_model_rows(const drst_model_t *m, uint64_t *n_train, uint64_t *n_val)
{
    if (n_train)
        *n_train = m->n_train;
    if (n_val)
        *n_val = m->n_val;
}
const char *drst_model_describe(const drst_model_t *m)
{
    return m->describe;
}

drst_err_t drst_model_bind(const drst_model_t *m, const drst_table_t *t, long *idx, char *err,
                           size_t errlen)
{
    for (size_t i = 0; i < m->nf; i++) {
        idx[i] = drst_table_col(t, m->features[i]);
        if (idx[i] < 0)
            return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                               "data has no column '%s' (feature %zu of the model)", m->features[i],
                               i + 1);
    }
    return DRST_OK;
}

/* ------------------------------------------------------------- predict */

static size_t scratch_need(const drst_model_t *m, size_t rows)
{
    return rows * (m->nf + m->ops->scratch_per_row(m) + 1);
}

drst_model_scratch_t *drst_model_scratch_new(const drst_model_t *m, size_t rows)
{
    drst_model_scratch_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rows = rows ? rows : 1;
    if (m && drst_model_scratch_reserve(s, m) != DRST_OK) {
        free(s);
        return NULL;
    }
    return s;
}

drst_err_t drst_model_scratch_reserve(drst_model_scratch_t *s, const drst_model_t *m)
{
    size_t need = scratch_need(m, s->rows);
    if (need <= s->cap)
        return DRST_OK;
    double *b = malloc(need * sizeof(*b));
    if (!b)
        return DRST_ERR_NOMEM;
    free(s->buf);
    s->buf = b;
    s->cap = need;
    return DRST_OK;
}

void drst_model_scratch_free(drst_model_scratch_t *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s);
}

drst_err_t drst_model_predict(const drst_model_t *m, const double *x, size_t nrows, size_t stride,
                              double *y, drst_model_scratch_t *s)
{
    size_t nf = m->nf;
    if (!s || s->cap < scratch_need(m, s->rows))
        return DRST_ERR_INVAL;
    double *xs = s->buf, *tmp = s->buf + s->rows * nf;
    for (size_t off = 0; off < nrows; off += s->rows) {
        size_t k = nrows - off < s->rows ? nrows - off : s->rows;
        for (size_t i = 0; i < k; i++) {
            const double *row = x + (off + i) * stride;
            double *d = xs + i * nf;
            for (size_t j = 0; j < nf; j++) {
                double v = row[j];
                d[j] = isfinite(v) ? (v - m->mean[j]) * m->inv_scale[j] : 0.0;
            }
        }
        m->ops->predict(m, xs, k, y + off, tmp);
        for (size_t i = 0; i < k; i++)
            y[off + i] = y[off + i] * m->y_std + m->y_mean;
    }
    return DRST_OK;
}

drst_err_t drst_model_predict_f32(const drst_model_t *m, const double *x, size_t nrows,
                                  size_t stride, double *y, drst_model_scratch_t *s)
{
    if (!m->ops->predict_f32)
        return drst_model_predict(m, x, nrows, stride, y, s);
    if (!s || s->cap < scratch_need(m, s->rows))
        return DRST_ERR_INVAL;
    for (size_t off = 0; off < nrows; off += s->rows) {
        size_t k = nrows - off < s->rows ? nrows - off : s->rows;
        m->ops->predict_f32(m, x + off * stride, k, stride, y + off, s->buf);
    }
    return DRST_OK;
}

double drst_model_predict1(const drst_model_t *m, const double *x, drst_model_scratch_t *s)
{
    double y;
    if (drst_model_predict(m, x, 1, m->nf, &y, s) != DRST_OK)
        return NAN;
    return y;
}

drst_err_t drst_model_eval_table(const drst_model_t *m, const drst_table_t *t, double *yhat,
                                 drst_model_metrics_t *met, char *err, size_t errlen)
{
    drst_err_t rc;
    long *idx = malloc((m->nf + 1) * sizeof(*idx));
    double *x = malloc((m->nf + 1) * 256 * sizeof(*x));
    double *yh = malloc((t->nrows + 1) * sizeof(*yh));
    double *yt = malloc((t->nrows + 1) * sizeof(*yt));
    drst_model_scratch_t *s = drst_model_scratch_new(m, 256);
    if (!idx || !x || !yh || !yt || !s) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "eval: out of memory");
        goto out;
    }
    rc = drst_model_bind(m, t, idx, err, errlen);
    if (rc)
        goto out;
    for (size_t off = 0; off < t->nrows; off += 256) {
        size_t k = t->nrows - off < 256 ? t->nrows - off : 256;
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < m->nf; j++)
                x[i * m->nf + j] = drst_table_at(t, off + i, (size_t)idx[j]);
        rc = drst_model_predict(m, x, k, m->nf, yh + off, s);
        if (rc) {
            rc = drst_seterr(err, errlen, rc, "eval: prediction failed");
            goto out;
        }
    }
    if (yhat)
        memcpy(yhat, yh, t->nrows * sizeof(*yh));
    if (met) {
        long tc = drst_table_col(t, m->target);
        if (tc < 0) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "eval: data has no target column '%s'",
                             m->target);
            goto out;
        }
        size_t n = 0;
        for (size_t i = 0; i < t->nrows; i++) {
            double v = drst_table_at(t, i, (size_t)tc);
            if (isfinite(v)) {
                yh[n] = yh[i];
                yt[n++] = v;
            }
        }
        rc = drst_metrics_compute(yh, yt, n, met);
        if (rc)
            rc = drst_seterr(err, errlen, rc, "eval: no row with a finite '%s'", m->target);
    }
out:
    free(idx);
    free(x);
    free(yh);
    free(yt);
    drst_model_scratch_free(s);
    return rc;
}

/* ------------------------------------------------------------- metrics json */

static void put_metrics(json_t *o, const drst_model_metrics_t *v)
{
    json_object_set_new(o, "acc@0.05", json_real(v->acc05));
    json_object_set_new(o, "acc@0.1", json_real(v->acc10));
    json_object_set_new(o, "acc@0.2", json_real(v->acc20));
    json_object_set_new(o, "mae", json_real(v->mae));
    json_object_set_new(o, "rmse", json_real(v->rmse));
    json_object_set_new(o, "p50", json_real(v->p50));
    json_object_set_new(o, "p80", json_real(v->p80));
    json_object_set_new(o, "p90", json_real(v->p90));
    json_object_set_new(o, "p95", json_real(v->p95));
    json_object_set_new(o, "p99", json_real(v->p99));
    json_object_set_new(o, "rows", json_integer((json_int_t)v->rows));
}

drst_err_t drst_model_metrics_json(const drst_model_t *m, const char *model_key, char **json,
                                   char *err, size_t errlen)
{
    json_t *o = json_object(), *f = json_array(), *val = json_object();
    if (!o || !f || !val) {
        json_decref(o);
        json_decref(f);
        json_decref(val);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "metrics json: out of memory");
    }
    if (model_key)
        json_object_set_new(o, "model", json_string(model_key));
    json_object_set_new(o, "family", json_string(drst_model_family_name(m->family)));
    json_object_set_new(o, "target", json_string(m->target));
    for (size_t i = 0; i < m->nf; i++)
        json_array_append_new(f, json_string(m->features[i]));
    json_object_set_new(o, "features", f);
    json_object_set_new(o, "hyperparameters", json_string(m->describe));
    json_object_set_new(o, "seed", json_integer((json_int_t)m->seed));
    json_object_set_new(o, "n_train", json_integer((json_int_t)m->n_train));
    json_object_set_new(o, "n_val", json_integer((json_int_t)m->n_val));
    json_object_set_new(o, "sha256", json_string(m->hash_hex));
    json_object_set_new(o, "data_sha256", json_string(m->data_hash_hex));
    put_metrics(val, &m->val);
    json_object_set_new(o, "validation", val);
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!s)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "metrics json: out of memory");
    *json = s;
    return DRST_OK;
}
