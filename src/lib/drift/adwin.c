/* ADWIN (Bifet & Gavalda, "Learning from time-changing data with adaptive
 * windowing", SDM 2007), the bucket-based ADWIN2 variant.
 *
 * The window is an exponential histogram: level i holds up to M buckets of
 * 2^i elements each (sum and variance of its elements); when a level gets
 * M + 1 buckets its two oldest merge into one bucket of level i + 1. Memory
 * is M x levels, fixed at construction (64 levels cover any window a 64-bit
 * counter can count).
 *
 * Every `clock` elements, the split points between buckets are tried from
 * the oldest: with n0, n1 elements and means u0, u1 on each side, n the
 * window length and var its variance, the window is cut when
 *     |u0 - u1| > eps,  eps = sqrt(2 var k ln(2/d')) + 2/3 k ln(2/d')
 * where k = 1/n0 + 1/n1 and d' = delta / ln(n) (the variance-based bound of
 * the paper's section 4, with the d' of its reference implementation). On a
 * cut the oldest bucket is dropped and the search restarts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drift_int.h"

#define LEVELS 64

struct adwin {
    struct drst_detector base;
    size_t M;    /* max buckets per level */
    size_t cap;  /* M + 1 slots per level */
    double *sum; /* LEVELS x cap, slot 0 = oldest of the level */
    double *var; /* LEVELS x cap: sum of squared deviations of the bucket */
    size_t cnt[LEVELS];
    size_t top;      /* levels in use */
    uint64_t width;  /* elements in the window */
    double total;    /* their sum */
    double variance; /* their sum of squared deviations */
    uint64_t ticks;
};

static struct adwin *A(struct drst_detector *d)
{
    return (struct adwin *)d;
}

static drst_err_t normalize(drst_detector_config_t *c, char *err, size_t errlen)
{
    if (c->adwin_delta == 0)
        c->adwin_delta = 0.002;
    if (c->adwin_max_buckets == 0)
        c->adwin_max_buckets = 5;
    if (c->adwin_min_sub == 0)
        c->adwin_min_sub = 5;
    if (c->adwin_clock == 0)
        c->adwin_clock = 32;
    if (!(c->adwin_delta > 0 && c->adwin_delta < 1))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "adwin: delta %g not in (0, 1)",
                           c->adwin_delta);
    if (c->adwin_max_buckets < 2 || c->adwin_max_buckets > 1000)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "adwin: max_buckets %zu not in [2, 1000]",
                           c->adwin_max_buckets);
    if (c->adwin_clock > 1000000 || c->adwin_min_sub > 1000000)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "adwin: clock or min_sub too large");
    if (c->thresholds[1] == 0 && c->thresholds[2] == 0) {
        c->thresholds[1] = 0.10;
        c->thresholds[2] = 0.30;
    }
    c->thresholds[0] = 0;
    if (!(c->thresholds[1] > 0 && c->thresholds[1] < c->thresholds[2] &&
          isfinite(c->thresholds[2])))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "adwin: thresholds B %g and C %g must satisfy 0 < B < C",
                           c->thresholds[1], c->thresholds[2]);
    c->adwin_two_sided = c->adwin_two_sided != 0;
    return DRST_OK;
}

static size_t input_dim(const drst_detector_config_t *c)
{
    (void)c;
    return 1;
}

static void reset(struct drst_detector *d)
{
    struct adwin *a = A(d);
    memset(a->cnt, 0, sizeof(a->cnt));
    a->top = 0;
    a->width = 0;
    a->total = 0;
    a->variance = 0;
    a->ticks = 0;
}

static void destroy(struct drst_detector *d)
{
    struct adwin *a = A(d);
    free(a->sum);
    free(a->var);
    free(a);
}

static struct drst_detector *create(const drst_detector_config_t *c, char *err, size_t errlen)
{
    struct adwin *a = calloc(1, sizeof(*a));
    if (!a)
        goto nomem;
    a->M = c->adwin_max_buckets;
    a->cap = a->M + 1;
    a->sum = calloc(LEVELS * a->cap, sizeof(double));
    a->var = calloc(LEVELS * a->cap, sizeof(double));
    if (!a->sum || !a->var)
        goto nomem;
    return &a->base;
nomem:
    if (a)
        destroy(&a->base);
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "adwin: out of memory");
    return NULL;
}

static void insert(struct adwin *a, double v)
{
    /* Running variance of the whole window (Welford-style, as in MOA). */
    if (a->width > 0) {
        double mean = a->total / (double)a->width, dv = v - mean;
        a->variance += (double)a->width * dv * dv / (double)(a->width + 1);
    }
    a->width++;
    a->total += v;
    if (a->top == 0)
        a->top = 1;
    a->sum[a->cnt[0]] = v;
    a->var[a->cnt[0]] = 0;
    a->cnt[0]++;
    /* Compress: a level with M + 1 buckets merges its two oldest. */
    for (size_t i = 0; i < LEVELS - 1 && a->cnt[i] == a->cap; i++) {
        double *s = a->sum + i * a->cap, *q = a->var + i * a->cap;
        double n = ldexp(1.0, (int)i), u0 = s[0] / n, u1 = s[1] / n;
        double ms = s[0] + s[1], mv = q[0] + q[1] + n * n / (2 * n) * (u0 - u1) * (u0 - u1);
        size_t j = i + 1;
        memmove(s, s + 2, (a->cap - 2) * sizeof(*s));
        memmove(q, q + 2, (a->cap - 2) * sizeof(*q));
        a->cnt[i] -= 2;
        a->sum[j * a->cap + a->cnt[j]] = ms;
        a->var[j * a->cap + a->cnt[j]] = mv;
        a->cnt[j]++;
        if (a->top < j + 1)
            a->top = j + 1;
    }
}

/* Drop the oldest bucket: slot 0 of the highest level in use. */
static void drop_oldest(struct adwin *a)
{
    size_t i = a->top - 1;
    double *s = a->sum + i * a->cap, *q = a->var + i * a->cap;
    double n1 = ldexp(1.0, (int)i), u1 = s[0] / n1, v1 = q[0];
    a->width -= (uint64_t)n1;
    a->total -= s[0];
    if (a->width > 0) {
        double u0 = a->total / (double)a->width;
        a->variance -= v1 + n1 * (double)a->width * (u1 - u0) * (u1 - u0) / (n1 + (double)a->width);
        if (a->variance < 0)
            a->variance = 0;
    } else {
        a->total = 0;
        a->variance = 0;
    }
    memmove(s, s + 1, (a->cap - 1) * sizeof(*s));
    memmove(q, q + 1, (a->cap - 1) * sizeof(*q));
    a->cnt[i]--;
    while (a->top > 0 && a->cnt[a->top - 1] == 0)
        a->top--;
}

/* Look for a cut from the oldest split; on one, report new minus old mean.
 * With `all`, every split is tried and diff is that of the cutting split
 * with the largest mean difference (the best estimate of the jump). */
static int find_cut(const struct adwin *a, double *diff, int all)
{
    int found = 0;
    const drst_detector_config_t *c = &a->base.cfg;
    double n = (double)a->width, v = a->variance / n, dd, n0 = 0, s0 = 0;
    if (a->width < 2 * c->adwin_min_sub || a->width < 3)
        return 0;
    dd = log(2.0 * log(n) / c->adwin_delta);
    for (size_t ii = a->top; ii-- > 0;) {
        double bn = ldexp(1.0, (int)ii);
        for (size_t k = 0; k < a->cnt[ii]; k++) {
            double n1, u0, u1, kk, eps;
            n0 += bn;
            s0 += a->sum[ii * a->cap + k];
            n1 = n - n0;
            if (n1 < (double)c->adwin_min_sub)
                return found;
            if (n0 < (double)c->adwin_min_sub)
                continue;
            u0 = s0 / n0;
            u1 = (a->total - s0) / n1;
            kk = 1.0 / n0 + 1.0 / n1;
            eps = sqrt(2.0 * v * kk * dd) + 2.0 / 3.0 * dd * kk;
            if (fabs(u0 - u1) > eps && (!found || fabs(u1 - u0) > fabs(*diff))) {
                *diff = u1 - u0;
                found = 1;
                if (!all)
                    return 1;
            }
        }
    }
    return found;
}

static void update(struct drst_detector *d, const double *x, drst_drift_result_t *r)
{
    struct adwin *a = A(d);
    double diff = 0, first = 0;
    int cut = 0;
    if (!isfinite(x[0]))
        return;
    insert(a, x[0]);
    if (++a->ticks % d->cfg.adwin_clock != 0)
        return;
    r->evaluated = 1;
    while (a->top > 0 && find_cut(a, &diff, !cut)) {
        if (!cut)
            first = diff;
        cut = 1;
        drop_oldest(a);
    }
    if (!cut)
        return;
    r->change = 1;
    r->magnitude = first;
    r->score = fabs(first);
    if (first > 0 || d->cfg.adwin_two_sided)
        r->tier = drift_error_tier(&d->cfg, fabs(first));
}

static drst_err_t evaluate(struct drst_detector *d, drst_drift_result_t *r)
{
    struct adwin *a = A(d);
    double diff = 0;
    if (a->width == 0)
        return DRST_ERR_STATE;
    r->evaluated = 1;
    if (find_cut(a, &diff, 1)) {
        r->change = 1;
        r->magnitude = diff;
        r->score = fabs(diff);
        if (diff > 0 || d->cfg.adwin_two_sided)
            r->tier = drift_error_tier(&d->cfg, fabs(diff));
    }
    return DRST_OK;
}

static json_t *save(const struct drst_detector *d)
{
    const struct adwin *a = (const struct adwin *)d;
    json_t *o = json_object(), *lv = json_array();
    int e = 0;
    if (!o || !lv)
        goto fail;
    e |= jset_u64(o, "width", a->width);
    e |= jset_real(o, "total", a->total);
    e |= jset_real(o, "variance", a->variance);
    e |= jset_u64(o, "ticks", a->ticks);
    /* One entry per level in use: {"sum":[...], "var":[...]}, oldest first. */
    for (size_t i = 0; i < a->top && !e; i++) {
        json_t *l = json_object();
        if (!l) {
            e = 1;
            break;
        }
        e |= jset_reals(l, "sum", a->sum + i * a->cap, a->cnt[i]);
        e |= jset_reals(l, "var", a->var + i * a->cap, a->cnt[i]);
        e |= json_array_append_new(lv, l);
    }
    e |= json_object_set_new(o, "levels", lv);
    lv = NULL;
    if (e)
        goto fail;
    return o;
fail:
    json_decref(o);
    json_decref(lv);
    return NULL;
}

static drst_err_t restore(struct drst_detector *d, const json_t *st, char *err, size_t errlen)
{
    struct adwin *a = A(d);
    const json_t *lv;
    uint64_t width = 0;
    drst_err_t rc;
    if ((rc = jget_u64(st, "width", &a->width, err, errlen)) ||
        (rc = jget_real(st, "total", &a->total, err, errlen)) ||
        (rc = jget_real(st, "variance", &a->variance, err, errlen)) ||
        (rc = jget_u64(st, "ticks", &a->ticks, err, errlen)))
        return rc;
    lv = json_object_get(st, "levels");
    if (!json_is_array(lv) || json_array_size(lv) > LEVELS)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: key 'levels': bad array");
    memset(a->cnt, 0, sizeof(a->cnt));
    a->top = json_array_size(lv);
    for (size_t i = 0; i < a->top; i++) {
        const json_t *l = json_array_get(lv, i), *s = json_object_get(l, "sum");
        size_t n = json_is_array(s) ? json_array_size(s) : 0;
        if (!json_is_array(s) || n > a->M || (i + 1 == a->top && n == 0))
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "state: adwin level %zu: bad bucket count", i);
        if ((rc = jget_reals(l, "sum", a->sum + i * a->cap, n, err, errlen)) ||
            (rc = jget_reals(l, "var", a->var + i * a->cap, n, err, errlen)))
            return rc;
        for (size_t k = 0; k < n; k++)
            if (a->var[i * a->cap + k] < 0)
                return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                                   "state: adwin level %zu: negative variance", i);
        a->cnt[i] = n;
        /* 48 levels of at most 1000 buckets stay far below 2^63 elements. */
        if (i < 48 && n > 0) {
            uint64_t add = (uint64_t)n << i;
            if (width + add < width)
                return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: adwin: width overflow");
            width += add;
        } else if (n > 0) {
            return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: adwin: level too high");
        }
    }
    if (width != a->width || a->variance < 0)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "state: adwin: width %llu does not match the buckets (%llu)",
                           (unsigned long long)a->width, (unsigned long long)width);
    return DRST_OK;
}

const struct drst_detector_ops drst_adwin_ops = {
    .name = "adwin",
    .normalize = normalize,
    .input_dim = input_dim,
    .create = create,
    .update = update,
    .evaluate = evaluate,
    .reset = reset,
    .rebaseline = reset,
    .destroy = destroy,
    .save = save,
    .restore = restore,
};
