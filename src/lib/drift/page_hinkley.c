/* Page-Hinkley test on a scalar error stream.
 *
 *   mean_t = running mean of x_1..x_t
 *   m_t    = sum_{i<=t} (x_i - mean_i - delta),   M_t = min(0, m_1..m_t)
 *   detect when t >= min_samples and m_t - M_t > lambda
 *
 * (and the mirror image for decreases when two-sided). After a detection the
 * statistics restart, as in Page's original scheme, so one jump gives one
 * detection. The size of the jump is estimated as the mean after the
 * arg-min point minus the mean before it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drift_int.h"

struct ph {
    struct drst_detector base;
    uint64_t n;
    double mean, sum;
    double m_up, min_up, sum_at_min;
    uint64_t n_at_min;
    double m_dn, max_dn, sum_at_max;
    uint64_t n_at_max;
};

static struct ph *P(struct drst_detector *d)
{
    return (struct ph *)d;
}

static drst_err_t normalize(drst_detector_config_t *c, char *err, size_t errlen)
{
    if (c->ph_delta == 0)
        c->ph_delta = 0.01;
    if (c->ph_lambda == 0)
        c->ph_lambda = 10;
    if (c->ph_min_samples == 0)
        c->ph_min_samples = 30;
    if (!(c->ph_delta >= 0 && c->ph_delta < 1e12) || !(c->ph_lambda > 0 && c->ph_lambda < 1e15))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "page_hinkley: delta %g must be >= 0 and lambda %g > 0", c->ph_delta,
                           c->ph_lambda);
    if (c->thresholds[1] == 0 && c->thresholds[2] == 0) {
        c->thresholds[1] = 0.10;
        c->thresholds[2] = 0.30;
    }
    c->thresholds[0] = 0;
    if (!(c->thresholds[1] > 0 && c->thresholds[1] < c->thresholds[2] &&
          isfinite(c->thresholds[2])))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "page_hinkley: thresholds B %g and C %g must satisfy 0 < B < C",
                           c->thresholds[1], c->thresholds[2]);
    c->ph_two_sided = c->ph_two_sided != 0;
    return DRST_OK;
}

static size_t input_dim(const drst_detector_config_t *c)
{
    (void)c;
    return 1;
}

static void reset(struct drst_detector *d)
{
    struct ph *p = P(d);
    p->n = 0;
    p->mean = p->sum = 0;
    p->m_up = p->min_up = p->sum_at_min = 0;
    p->n_at_min = 0;
    p->m_dn = p->max_dn = p->sum_at_max = 0;
    p->n_at_max = 0;
}

static struct drst_detector *create(const drst_detector_config_t *c, char *err, size_t errlen)
{
    struct ph *p = calloc(1, sizeof(*p));
    (void)c;
    if (!p) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "page_hinkley: out of memory");
        return NULL;
    }
    return &p->base;
}

static void destroy(struct drst_detector *d)
{
    free(d);
}

/* Mean after the change point minus mean before it. */
static double jump(const struct ph *p, uint64_t n_at, double sum_at)
{
    double before = n_at ? sum_at / (double)n_at : p->mean;
    double after = p->n > n_at ? (p->sum - sum_at) / (double)(p->n - n_at) : p->mean;
    return after - before;
}

static void fill(struct ph *p, drst_drift_result_t *r)
{
    double up = p->m_up - p->min_up, dn = p->max_dn - p->m_dn;
    const drst_detector_config_t *c = &p->base.cfg;
    r->evaluated = 1;
    r->score = c->ph_two_sided && dn > up ? dn : up;
    if (p->n < c->ph_min_samples)
        return;
    if (up > c->ph_lambda) {
        r->change = 1;
        r->magnitude = jump(p, p->n_at_min, p->sum_at_min);
        r->tier = drift_error_tier(c, r->magnitude);
    } else if (c->ph_two_sided && dn > c->ph_lambda) {
        r->change = 1;
        r->magnitude = jump(p, p->n_at_max, p->sum_at_max);
        r->tier = drift_error_tier(c, fabs(r->magnitude));
    }
}

static void update(struct drst_detector *d, const double *x, drst_drift_result_t *r)
{
    struct ph *p = P(d);
    double v = x[0], delta = d->cfg.ph_delta;
    if (!isfinite(v))
        return;
    p->n++;
    p->mean += (v - p->mean) / (double)p->n;
    p->sum += v;
    p->m_up += v - p->mean - delta;
    if (p->m_up < p->min_up) {
        p->min_up = p->m_up;
        p->n_at_min = p->n;
        p->sum_at_min = p->sum;
    }
    p->m_dn += v - p->mean + delta;
    if (p->m_dn > p->max_dn) {
        p->max_dn = p->m_dn;
        p->n_at_max = p->n;
        p->sum_at_max = p->sum;
    }
    fill(p, r);
    if (r->change)
        reset(d);
}

static drst_err_t evaluate(struct drst_detector *d, drst_drift_result_t *r)
{
    struct ph *p = P(d);
    if (p->n == 0)
        return DRST_ERR_STATE;
    fill(p, r);
    return DRST_OK;
}

static json_t *save(const struct drst_detector *d)
{
    const struct ph *p = (const struct ph *)d;
    json_t *o = json_object();
    int e = 0;
    if (!o)
        return NULL;
    e |= jset_u64(o, "n", p->n);
    e |= jset_real(o, "mean", p->mean);
    e |= jset_real(o, "sum", p->sum);
    e |= jset_real(o, "m_up", p->m_up);
    e |= jset_real(o, "min_up", p->min_up);
    e |= jset_real(o, "sum_at_min", p->sum_at_min);
    e |= jset_u64(o, "n_at_min", p->n_at_min);
    e |= jset_real(o, "m_dn", p->m_dn);
    e |= jset_real(o, "max_dn", p->max_dn);
    e |= jset_real(o, "sum_at_max", p->sum_at_max);
    e |= jset_u64(o, "n_at_max", p->n_at_max);
    if (e) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static drst_err_t restore(struct drst_detector *d, const json_t *st, char *err, size_t errlen)
{
    struct ph *p = P(d);
    drst_err_t rc;
    if ((rc = jget_u64(st, "n", &p->n, err, errlen)) ||
        (rc = jget_real(st, "mean", &p->mean, err, errlen)) ||
        (rc = jget_real(st, "sum", &p->sum, err, errlen)) ||
        (rc = jget_real(st, "m_up", &p->m_up, err, errlen)) ||
        (rc = jget_real(st, "min_up", &p->min_up, err, errlen)) ||
        (rc = jget_real(st, "sum_at_min", &p->sum_at_min, err, errlen)) ||
        (rc = jget_u64(st, "n_at_min", &p->n_at_min, err, errlen)) ||
        (rc = jget_real(st, "m_dn", &p->m_dn, err, errlen)) ||
        (rc = jget_real(st, "max_dn", &p->max_dn, err, errlen)) ||
        (rc = jget_real(st, "sum_at_max", &p->sum_at_max, err, errlen)) ||
        (rc = jget_u64(st, "n_at_max", &p->n_at_max, err, errlen)))
        return rc;
    if (p->n_at_min > p->n || p->n_at_max > p->n || p->min_up > p->m_up || p->max_dn < p->m_dn ||
        p->min_up > 0 || p->max_dn < 0)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "state: page_hinkley statistics are inconsistent");
    return DRST_OK;
}

const struct drst_detector_ops drst_page_hinkley_ops = {
    .name = "page_hinkley",
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
