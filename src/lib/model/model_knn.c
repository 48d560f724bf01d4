/* knn: k-nearest-neighbour regression, the instance-based family.
 *
 * Why it is here: hardware counters of a contended chain land in a few
 * recurring states (which VNF is squeezed, how hard), each with its own
 * throughput. A model that remembers labelled states answers a state it has
 * seen once, at once: no gradient steps, no retrain wall time. On DRST's
 * stage-2 stream this is what makes prequential accuracy reachable (see
 * docs/model-file.md and docs/run.md for the figures).
 *
 * Distance: Euclidean on slog(x) = sign(x) log(1 + |x|), each feature
 * divided by its standard deviation over the reference rows. Counters span
 * orders of magnitude between VNFs; the log keeps one hot counter from
 * drowning the others. Aggregation: median of the k targets by default (a
 * transition second, half contended, is one outlier neighbour, not a shift of
 * every prediction), or their mean (= scikit-learn's KNeighborsRegressor with
 * uniform weights, which the tests compare with). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "model/model_int.h"

static double slog(double v)
{
    return v < 0 ? -log1p(-v) : log1p(v);
}

static size_t knn_scratch_per_row(const drst_model_t *m)
{
    return 2 * m->nf; /* the query and the missing-value fill, in slog space */
}

/* The k best (distance, target) pairs, sorted by distance. */
typedef struct topk {
    size_t k, n;
    double d[DRST_KNN_MAX_K];
    double y[DRST_KNN_MAX_K];
} topk_t;

static double topk_bound(const topk_t *t)
{
    return t->n < t->k ? INFINITY : t->d[t->n - 1];
}

static void topk_push(topk_t *t, double d, double y)
{
    if (!(d < topk_bound(t)) && !(t->n < t->k))
        return;
    /* The same labelled record can be both a reference row and a memory
     * entry (a retrain consolidated it): count it once. */
    for (size_t i = 0; i < t->n; i++)
        if (fabs(t->d[i] - d) <= 1e-9 * (1 + d) && fabs(t->y[i] - y) <= 1e-9 * (1 + fabs(y)))
            return;
    size_t i = t->n < t->k ? t->n++ : t->n - 1;
    while (i > 0 && t->d[i - 1] > d) {
        t->d[i] = t->d[i - 1];
        t->y[i] = t->y[i - 1];
        i--;
    }
    t->d[i] = d;
    t->y[i] = y;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double topk_value(topk_t *t, int mean)
{
    if (t->n == 0)
        return NAN;
    if (mean) {
        double s = 0;
        for (size_t i = 0; i < t->n; i++)
            s += t->y[i];
        return s / (double)t->n;
    }
    qsort(t->y, t->n, sizeof(double), cmp_dbl);
    return t->n % 2 ? t->y[t->n / 2] : 0.5 * (t->y[t->n / 2 - 1] + t->y[t->n / 2]);
}

/* Distance from query q to the model's reference rows, into t. */
static void search_rows(const drst_model_t *m, const double *q, topk_t *t)
{
    size_t nf = m->nf;
    const double *w = m->knn_w;
    for (size_t r = 0; r < m->knn_n; r++) {
        const double *row = m->knn_rows + r * nf;
        double bound = topk_bound(t), d = 0;
        for (size_t j = 0; j < nf && d <= bound; j++) {
            double e = (q[j] - row[j]) * w[j];
            d += e * e;
        }
        if (d <= bound)
            topk_push(t, d, m->knn_y[r]);
    }
}

static drst_err_t knn_train(drst_model_t *m, const train_data_t *d, const drst_train_opts_t *o,
                            char *err, size_t errlen)
{
    size_t nf = d->nf, n = d->n_train, first = 0;
    if (o->knn_k == 0 || o->knn_k > DRST_KNN_MAX_K)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "knn: k must be in 1..%d", DRST_KNN_MAX_K);
    if (n == 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "knn: no training rows");
    /* keep the most recent rows: on a chronological split they are last */
    if (o->knn_max_rows > 0 && n > o->knn_max_rows) {
        first = n - o->knn_max_rows;
        n = o->knn_max_rows;
    }
    m->knn_rows = malloc(n * nf * sizeof(double));
    m->knn_y = malloc(n * sizeof(double));
    m->knn_w = calloc(nf, sizeof(double));
    double *mu = calloc(nf, sizeof(double));
    if (!m->knn_rows || !m->knn_y || !m->knn_w || !mu) {
        free(mu);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "knn: out of memory");
    }
    /* the family sees scaled rows; the distance lives in slog(raw) space */
    for (size_t i = 0; i < n; i++) {
        const double *xs = d->Xtr + (first + i) * nf;
        for (size_t j = 0; j < nf; j++) {
            double v = slog(xs[j] * m->scale[j] + m->mean[j]);
            m->knn_rows[i * nf + j] = v;
            mu[j] += v;
        }
        m->knn_y[i] = d->ytr[first + i] * m->y_std + m->y_mean;
    }
    for (size_t j = 0; j < nf; j++)
        mu[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < nf; j++) {
            double e = m->knn_rows[i * nf + j] - mu[j];
            m->knn_w[j] += e * e;
        }
    for (size_t j = 0; j < nf; j++) {
        double sd = sqrt(m->knn_w[j] / (double)n);
        m->knn_w[j] = sd > 0 ? 1.0 / sd : 1.0;
    }
    free(mu);
    m->knn_n = n;
    m->knn_k = (uint32_t)o->knn_k;
    m->knn_agg = o->knn_mean ? 1 : 0;
    return DRST_OK;
}

static void knn_predict(const drst_model_t *m, const double *xs, size_t n, double *y, double *tmp)
{
    size_t nf = m->nf;
    double *q = tmp;
    for (size_t r = 0; r < n; r++) {
        topk_t t = {.k = m->knn_k};
        for (size_t j = 0; j < nf; j++)
            q[j] = slog(xs[r * nf + j] * m->scale[j] + m->mean[j]);
        search_rows(m, q, &t);
        /* drst_model_predict() unscales the family's output */
        y[r] = (topk_value(&t, (int)m->knn_agg) - m->y_mean) / m->y_std;
    }
}

static void knn_save(const drst_model_t *m, wbuf_t *w)
{
    wbuf_u32(w, m->knn_k);
    wbuf_u32(w, m->knn_agg);
    wbuf_u64(w, m->knn_n);
    wbuf_f64s(w, m->knn_w, m->nf);
    wbuf_f64s(w, m->knn_y, m->knn_n);
    wbuf_f64s(w, m->knn_rows, m->knn_n * m->nf);
}

static void knn_load(drst_model_t *m, rbuf_t *r)
{
    m->knn_k = rbuf_u32(r, "knn k");
    m->knn_agg = rbuf_u32(r, "knn aggregation");
    uint64_t n = rbuf_u64(r, "knn row count");
    if (!r->bad && (m->knn_k == 0 || m->knn_k > DRST_KNN_MAX_K || m->knn_agg > 1 || n == 0 ||
                    n > (r->len - r->pos) / 8 / (m->nf + 1)))
        rbuf_fail(r, "knn header");
    if (r->bad)
        return;
    m->knn_n = (size_t)n;
    m->knn_w = rbuf_f64s(r, m->nf, "knn weights");
    m->knn_y = rbuf_f64s(r, m->knn_n, "knn targets");
    m->knn_rows = rbuf_f64s(r, m->knn_n * m->nf, "knn rows");
}

const struct drst_model_ops drst_model_knn_ops = {
    .name = "knn",
    .family = DRST_MODEL_KNN,
    .train = knn_train,
    .save = knn_save,
    .load = knn_load,
    .predict = knn_predict,
    .scratch_per_row = knn_scratch_per_row,
};

/* ------------------------------------------------------------------ memory */

struct drst_knn_memory {
    size_t nf, cap;
    _Atomic size_t count; /* published with release order after the entry */
    uint64_t *seq;
    double *y;
    double *x; /* cap x nf, slog space, NaN = missing */
};

drst_knn_memory_t *drst_knn_memory_new(size_t nf, size_t cap)
{
    if (nf == 0 || cap == 0 || cap > SIZE_MAX / sizeof(double) / nf)
        return NULL;
    drst_knn_memory_t *mem = calloc(1, sizeof(*mem));
    if (!mem)
        return NULL;
    mem->nf = nf;
    mem->cap = cap;
    mem->seq = malloc(cap * sizeof(uint64_t));
    mem->y = malloc(cap * sizeof(double));
    mem->x = malloc(cap * nf * sizeof(double));
    atomic_init(&mem->count, 0);
    if (!mem->seq || !mem->y || !mem->x) {
        drst_knn_memory_free(mem);
        return NULL;
    }
    return mem;
}

void drst_knn_memory_free(drst_knn_memory_t *mem)
{
    if (!mem)
        return;
    free(mem->seq);
    free(mem->y);
    free(mem->x);
    free(mem);
}

drst_err_t drst_knn_memory_add(drst_knn_memory_t *mem, uint64_t seq, const double *x, double y)
{
    size_t n = atomic_load_explicit(&mem->count, memory_order_relaxed);
    if (!isfinite(y) || (n > 0 && seq <= mem->seq[n - 1]))
        return DRST_ERR_INVAL;
    if (n == mem->cap)
        return DRST_ERR_TOOBIG;
    double *row = mem->x + n * mem->nf;
    for (size_t j = 0; j < mem->nf; j++)
        row[j] = isfinite(x[j]) ? slog(x[j]) : NAN;
    mem->seq[n] = seq;
    mem->y[n] = y;
    atomic_store_explicit(&mem->count, n + 1, memory_order_release);
    return DRST_OK;
}

size_t drst_knn_memory_count(const drst_knn_memory_t *mem)
{
    return mem ? atomic_load_explicit(&((drst_knn_memory_t *)mem)->count, memory_order_acquire) : 0;
}

drst_err_t drst_model_knn_predict(const drst_model_t *m, const double *x, const long *bind,
                                  const drst_knn_memory_t *mem, uint64_t before, double *y,
                                  drst_model_scratch_t *s)
{
    size_t nf = m->nf;
    if (m->family != DRST_MODEL_KNN || !s || s->cap < 2 * nf)
        return DRST_ERR_INVAL;
    double *q = s->buf, *fill = s->buf + nf;
    for (size_t j = 0; j < nf; j++) {
        double v = x[bind[j]];
        /* a missing feature takes the training mean, as drst_model_predict() does */
        fill[j] = slog(m->mean[j]);
        q[j] = isfinite(v) ? slog(v) : fill[j];
    }
    topk_t t = {.k = m->knn_k};
    search_rows(m, q, &t);
    size_t n = drst_knn_memory_count(mem);
    const double *w = m->knn_w;
    for (size_t r = 0; r < n && mem->seq[r] < before; r++) {
        const double *row = mem->x + r * mem->nf;
        double bound = topk_bound(&t), d = 0;
        for (size_t j = 0; j < nf && d <= bound; j++) {
            double v = row[bind[j]];
            double e = (q[j] - (isnan(v) ? fill[j] : v)) * w[j];
            d += e * e;
        }
        if (d <= bound)
            topk_push(&t, d, mem->y[r]);
    }
    *y = topk_value(&t, (int)m->knn_agg);
    return DRST_OK;
}
