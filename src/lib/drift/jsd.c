/* Feature drift: per-feature histogram Jensen-Shannon divergence (bits)
 * between a frozen baseline and a sliding window.
 *
 * The window is a ring of bin indices (W x F uint16, one row per record), so
 * sliding costs one decrement and one increment per feature and the values
 * themselves are never kept. Evaluation uses
 *     JSD(P, Q) = H(M) - (H(P) + H(Q)) / 2,  M = (P + Q) / 2
 * with H(P) precomputed per baseline and q log q tabulated over the integer
 * window counts, so an evaluation costs one log2 per bin. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drift_int.h"

#define NAN_BIN 0xFFFFu /* ring marker of a missing value */

/* Allocation limits: a state file is outside input. */
#define MAX_FEATURES  100000u
#define MAX_WINDOW    10000000u
#define MAX_RINGCELLS (1u << 24)

struct jsd {
    struct drst_detector base;
    size_t F, B, W, S;
    double alpha; /* smoothing pseudo-count, >= 0 */
    double thr[3], fthr;

    /* frozen edges and the baseline histogram */
    int have_baseline;
    double *lo, *inv_w; /* F each */
    double *base_cnt;   /* F x B */
    double *base_n;     /* F: non-NaN baseline values */
    double *base_p;     /* F x B smoothed probabilities */
    double *base_h;     /* F: sum p log2 p */

    /* the window */
    uint16_t *ring;     /* W x F */
    uint16_t *base_idx; /* W x F: bins of a first-window baseline (for calibration) */
    int base_from_window;
    uint32_t *win_cnt; /* F x B */
    uint32_t *win_n;   /* F */
    size_t head, fill;
    uint64_t since_eval;
    uint64_t *nan_seen; /* F: NaN values fed since the last reset */
    double *qlogq;      /* W + 1: q log2 q for q = (c + alpha) / (W + B alpha) */

    /* first-window baseline collection (raw values, W x F) */
    double *collect;
    size_t ncollect;

    /* last evaluation */
    double *fscore; /* F */
    int calibrated;

    /* calibration scratch, sized for a W-row baseline */
    uint32_t *perm;    /* W */
    double *cal_agg;   /* replicates */
    double *cal_feat;  /* replicates x F */
    uint32_t *cal_tot; /* F x B */
    uint32_t *cal_win; /* F x B */
};

static struct jsd *J(struct drst_detector *d)
{
    return (struct jsd *)d;
}

static const struct jsd *CJ(const struct drst_detector *d)
{
    return (const struct jsd *)d;
}

static drst_err_t normalize(drst_detector_config_t *c, char *err, size_t errlen)
{
    static const double dthr[3] = {0.10, 0.25, 0.50};
    static const double dmult[3] = {1.5, 3.0, 6.0};
    int zero = c->thresholds[0] == 0 && c->thresholds[1] == 0 && c->thresholds[2] == 0;
    if (c->nfeatures == 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: nfeatures must be > 0");
    if (c->bins == 0)
        c->bins = 64;
    if (c->window == 0)
        c->window = 300;
    if (c->stride == 0)
        c->stride = 50;
    if (c->bins < 2 || c->bins > DRST_JSD_MAX_BINS)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: bins %zu not in [2, %d]", c->bins,
                           DRST_JSD_MAX_BINS);
    if (c->window < 2)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: window %zu must be >= 2", c->window);
    if (c->nfeatures > MAX_FEATURES || c->window > MAX_WINDOW ||
        (uint64_t)c->nfeatures * c->window > MAX_RINGCELLS ||
        (uint64_t)c->nfeatures * c->bins > MAX_RINGCELLS)
        return drst_seterr(err, errlen, DRST_ERR_TOOBIG,
                           "jsd: %zu features x window %zu x bins %zu exceeds the limit",
                           c->nfeatures, c->window, c->bins);
    if (zero)
        memcpy(c->thresholds, dthr, sizeof(dthr));
    if (!(c->thresholds[0] > 0 && c->thresholds[0] < c->thresholds[1] &&
          c->thresholds[1] < c->thresholds[2] && c->thresholds[2] <= 1.0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "jsd: thresholds %g,%g,%g must satisfy 0 < A < B < C <= 1 (bits)",
                           c->thresholds[0], c->thresholds[1], c->thresholds[2]);
    if (c->feature_threshold == 0)
        c->feature_threshold = 0.10;
    if (!(c->feature_threshold > 0 && c->feature_threshold <= 1.0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: feature_threshold %g not in (0, 1]",
                           c->feature_threshold);
    if (c->smoothing == 0)
        c->smoothing = 0.01;
    if (!isfinite(c->smoothing) || c->smoothing > 1e6)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: smoothing %g out of range",
                           c->smoothing);
    if (c->margin == 0)
        c->margin = 0.05;
    if (!isfinite(c->margin) || c->margin > 100)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: margin %g out of range", c->margin);
    if (c->calib_replicates == 0)
        c->calib_replicates = 200;
    if (c->calib_replicates > 100000 ||
        (uint64_t)c->calib_replicates * c->nfeatures > MAX_RINGCELLS)
        return drst_seterr(err, errlen, DRST_ERR_TOOBIG,
                           "jsd: calib_replicates %zu x %zu features exceeds the limit",
                           c->calib_replicates, c->nfeatures);
    if (c->calib_quantile == 0)
        c->calib_quantile = 0.99;
    if (!(c->calib_quantile > 0 && c->calib_quantile < 1))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: calib_quantile %g not in (0, 1)",
                           c->calib_quantile);
    if (c->calib_mult[0] == 0 && c->calib_mult[1] == 0 && c->calib_mult[2] == 0)
        memcpy(c->calib_mult, dmult, sizeof(dmult));
    if (!(c->calib_mult[0] > 0 && c->calib_mult[0] < c->calib_mult[1] &&
          c->calib_mult[1] < c->calib_mult[2] && c->calib_mult[2] < 1e6))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "jsd: calib_mult must satisfy 0 < A < B < C");
    if (c->calib_seed == 0)
        c->calib_seed = 1;
    c->auto_calibrate = c->auto_calibrate != 0;
    c->calib_block = c->calib_block != 0;
    return DRST_OK;
}

static size_t input_dim(const drst_detector_config_t *c)
{
    return c->nfeatures;
}

static void destroy(struct drst_detector *d)
{
    struct jsd *j = J(d);
    free(j->lo);
    free(j->inv_w);
    free(j->base_cnt);
    free(j->base_n);
    free(j->base_p);
    free(j->base_h);
    free(j->ring);
    free(j->base_idx);
    free(j->win_cnt);
    free(j->win_n);
    free(j->nan_seen);
    free(j->qlogq);
    free(j->collect);
    free(j->fscore);
    free(j->perm);
    free(j->cal_agg);
    free(j->cal_feat);
    free(j->cal_tot);
    free(j->cal_win);
    free(j);
}

static double alpha_of(const drst_detector_config_t *c)
{
    return c->smoothing > 0 ? c->smoothing : 0.0;
}

static void clear_window(struct jsd *j)
{
    memset(j->win_cnt, 0, j->F * j->B * sizeof(*j->win_cnt));
    memset(j->win_n, 0, j->F * sizeof(*j->win_n));
    j->head = 0;
    j->fill = 0;
    j->since_eval = 0;
}

static void reset(struct drst_detector *d)
{
    struct jsd *j = J(d);
    clear_window(j);
    j->have_baseline = 0;
    j->base_from_window = 0;
    j->ncollect = 0;
    memset(j->nan_seen, 0, j->F * sizeof(*j->nan_seen));
    memset(j->fscore, 0, j->F * sizeof(*j->fscore));
}

static struct drst_detector *create(const drst_detector_config_t *c, char *err, size_t errlen)
{
    struct jsd *j = calloc(1, sizeof(*j));
    size_t F = c->nfeatures, B = c->bins, W = c->window, R = c->calib_replicates;
    if (!j)
        goto nomem;
    j->F = F;
    j->B = B;
    j->W = W;
    j->S = c->stride;
    j->alpha = alpha_of(c);
    memcpy(j->thr, c->thresholds, sizeof(j->thr));
    j->fthr = c->feature_threshold;
    j->lo = calloc(F, sizeof(double));
    j->inv_w = calloc(F, sizeof(double));
    j->base_cnt = calloc(F * B, sizeof(double));
    j->base_n = calloc(F, sizeof(double));
    j->base_p = calloc(F * B, sizeof(double));
    j->base_h = calloc(F, sizeof(double));
    j->ring = calloc(W * F, sizeof(uint16_t));
    j->base_idx = calloc(W * F, sizeof(uint16_t));
    j->win_cnt = calloc(F * B, sizeof(uint32_t));
    j->win_n = calloc(F, sizeof(uint32_t));
    j->nan_seen = calloc(F, sizeof(uint64_t));
    j->qlogq = calloc(W + 1, sizeof(double));
    j->collect = calloc(W * F, sizeof(double));
    j->fscore = calloc(F, sizeof(double));
    j->perm = calloc(W, sizeof(uint32_t));
    j->cal_agg = calloc(R, sizeof(double));
    j->cal_feat = calloc(R * F, sizeof(double));
    j->cal_tot = calloc(F * B, sizeof(uint32_t));
    j->cal_win = calloc(F * B, sizeof(uint32_t));
    if (!j->lo || !j->inv_w || !j->base_cnt || !j->base_n || !j->base_p || !j->base_h || !j->ring ||
        !j->base_idx || !j->win_cnt || !j->win_n || !j->nan_seen || !j->qlogq || !j->collect ||
        !j->fscore || !j->perm || !j->cal_agg || !j->cal_feat || !j->cal_tot || !j->cal_win)
        goto nomem;
    {
        double den = (double)W + (double)B * j->alpha;
        for (size_t k = 0; k <= W; k++) {
            double q = ((double)k + j->alpha) / den;
            j->qlogq[k] = q > 0 ? q * log2(q) : 0.0;
        }
    }
    return &j->base;
nomem:
    if (j)
        destroy(&j->base);
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "jsd: out of memory (%zu features, window %zu)", F, W);
    return NULL;
}

static inline uint16_t bin_of(const struct jsd *j, size_t f, double v)
{
    double t;
    if (isnan(v))
        return NAN_BIN;
    t = (v - j->lo[f]) * j->inv_w[f];
    if (!(t >= 0))
        return 0; /* below the edges, or -inf */
    if (t >= (double)j->B)
        return (uint16_t)(j->B - 1);
    return (uint16_t)t;
}

/* Freeze edges from min/max of the finite values of column f of x (n rows). */
static void freeze_edges(struct jsd *j, const double *x, size_t n, size_t stride)
{
    for (size_t f = 0; f < j->F; f++) {
        double mn = INFINITY, mx = -INFINITY, lo, hi, span;
        for (size_t r = 0; r < n; r++) {
            double v = x[r * stride + f];
            if (isfinite(v)) {
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
        }
        if (!(mn <= mx)) { /* no finite value: any range will do */
            mn = 0;
            mx = 0;
        }
        span = mx - mn;
        if (!(span > 0) || !isfinite(span)) {
            /* A constant feature: a symmetric range around it, so that a
             * later move to either side leaves the middle bin. */
            double h = fabs(mn) > 0 ? fabs(mn) * 0.1 : 0.5;
            lo = mn - h;
            hi = mn + h;
        } else {
            double m = j->base.cfg.margin > 0 ? j->base.cfg.margin * span : 0.0;
            lo = mn - m;
            hi = mx + m;
        }
        j->lo[f] = lo;
        j->inv_w[f] = (double)j->B / (hi - lo);
        if (!isfinite(j->inv_w[f]) || !(j->inv_w[f] > 0))
            j->inv_w[f] = 1.0;
    }
}

/* Smoothed baseline probabilities and their entropy term, from base_cnt. */
static void finish_baseline(struct jsd *j)
{
    for (size_t f = 0; f < j->F; f++) {
        const double *c = j->base_cnt + f * j->B;
        double *p = j->base_p + f * j->B, h = 0;
        double n = 0;
        for (size_t b = 0; b < j->B; b++)
            n += c[b];
        j->base_n[f] = n;
        for (size_t b = 0; b < j->B; b++) {
            double den = n + (double)j->B * j->alpha;
            p[b] = den > 0 ? (c[b] + j->alpha) / den : 0.0;
            if (p[b] > 0)
                h += p[b] * log2(p[b]);
        }
        j->base_h[f] = h;
    }
    j->have_baseline = 1;
}

/* JSD in bits between smoothed baseline p (entropy term hp, n_p values)
 * and window counts q (n_q values). */
static double jsd_one(const struct jsd *j, const double *p, double hp, double n_p,
                      const uint32_t *q, uint32_t n_q)
{
    double hq = 0, hm = 0, den, js;
    size_t B = j->B;
    if (n_p <= 0 || n_q == 0)
        return 0.0;
    den = (double)n_q + (double)B * j->alpha;
    if (n_q == j->W) {
        for (size_t b = 0; b < B; b++) {
            double qq = ((double)q[b] + j->alpha) / den, m = 0.5 * (p[b] + qq);
            hq += j->qlogq[q[b]];
            if (m > 0)
                hm += m * log2(m);
        }
    } else {
        for (size_t b = 0; b < B; b++) {
            double qq = ((double)q[b] + j->alpha) / den, m = 0.5 * (p[b] + qq);
            if (qq > 0)
                hq += qq * log2(qq);
            if (m > 0)
                hm += m * log2(m);
        }
    }
    js = 0.5 * (hp + hq) - hm;
    return js < 0 ? 0.0 : js > 1 ? 1.0 : js;
}

static int tier_of(const double thr[3], double s)
{
    return s >= thr[2] ? DRST_TIER_C : s >= thr[1] ? DRST_TIER_B : s >= thr[0] ? DRST_TIER_A : 0;
}

static drst_err_t evaluate(struct drst_detector *d, drst_drift_result_t *r)
{
    struct jsd *j = J(d);
    double sum = 0, mx = 0;
    size_t nd = 0;
    if (!j->have_baseline || j->fill < j->W)
        return DRST_ERR_STATE;
    for (size_t f = 0; f < j->F; f++) {
        double s = jsd_one(j, j->base_p + f * j->B, j->base_h[f], j->base_n[f],
                           j->win_cnt + f * j->B, j->win_n[f]);
        j->fscore[f] = s;
        sum += s;
        mx = s > mx ? s : mx;
        nd += s >= j->fthr;
    }
    r->evaluated = 1;
    r->score = sum / (double)j->F;
    r->magnitude = mx;
    r->n_drifted = nd;
    r->tier = tier_of(j->thr, r->score);
    r->change = r->tier > 0;
    return DRST_OK;
}

static drst_err_t calibrate_idx(struct jsd *j, const uint16_t *idx, size_t n, uint32_t *perm,
                                drst_calibration_t *info, char *err, size_t errlen);

/* The first full window becomes the baseline; its records fill the window. */
static void baseline_from_collect(struct jsd *j)
{
    size_t F = j->F, B = j->B;
    freeze_edges(j, j->collect, j->W, F);
    memset(j->base_cnt, 0, F * B * sizeof(double));
    clear_window(j);
    for (size_t r = 0; r < j->W; r++) {
        uint16_t *row = j->ring + r * F;
        for (size_t f = 0; f < F; f++) {
            uint16_t b = bin_of(j, f, j->collect[r * F + f]);
            row[f] = b;
            if (b != NAN_BIN) {
                j->base_cnt[f * B + b] += 1;
                j->win_cnt[f * B + b]++;
                j->win_n[f]++;
            }
        }
    }
    j->fill = j->W;
    j->head = 0;
    memcpy(j->base_idx, j->ring, j->W * F * sizeof(*j->ring));
    j->base_from_window = 1;
    finish_baseline(j);
    if (j->calibrated || j->base.cfg.auto_calibrate) {
        /* Cannot fail: W >= 2 rows, scratch preallocated. A failure would
         * keep the previous thresholds, which is the safe outcome. */
        if (calibrate_idx(j, j->base_idx, j->W, j->perm, NULL, NULL, 0) == DRST_OK)
            j->calibrated = 1;
    }
}

static void update(struct drst_detector *d, const double *x, drst_drift_result_t *r)
{
    struct jsd *j = J(d);
    size_t F = j->F;
    for (size_t f = 0; f < F; f++)
        if (isnan(x[f]))
            j->nan_seen[f]++;
    if (!j->have_baseline) {
        memcpy(j->collect + j->ncollect * F, x, F * sizeof(double));
        if (++j->ncollect == j->W) {
            baseline_from_collect(j);
            j->ncollect = 0;
        }
        return;
    }
    {
        /* Bin in place: take the leaving record out, put the new one in. */
        uint16_t *row = j->ring + j->head * F;
        size_t B = j->B;
        int full = j->fill == j->W;
        for (size_t f = 0; f < F; f++) {
            uint16_t o = row[f], b = bin_of(j, f, x[f]);
            if (full && o != NAN_BIN) {
                j->win_cnt[f * B + o]--;
                j->win_n[f]--;
            }
            row[f] = b;
            if (b != NAN_BIN) {
                j->win_cnt[f * B + b]++;
                j->win_n[f]++;
            }
        }
        /* A window that has just filled is evaluated at once, then every S. */
        if (!full && ++j->fill == j->W)
            j->since_eval = j->S - 1;
        j->head = j->head + 1 == j->W ? 0 : j->head + 1;
    }
    if (j->fill == j->W && ++j->since_eval >= j->S) {
        j->since_eval = 0;
        (void)evaluate(d, r);
    }
}

static void rebaseline(struct drst_detector *d)
{
    struct jsd *j = J(d);
    clear_window(j);
    j->have_baseline = 0;
    j->base_from_window = 0;
    j->ncollect = 0;
}

/* ---------------------------------------------------------- calibration */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile with linear interpolation between order statistics (numpy's
 * default, "type 7"); v is sorted in place. */
static double quantile(double *v, size_t n, double q)
{
    double h, lo;
    size_t i;
    qsort(v, n, sizeof(*v), cmp_double);
    h = (double)(n - 1) * q;
    lo = floor(h);
    i = (size_t)lo;
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (h - lo) * (v[i + 1] - v[i]);
}

static void set_thresholds_from(struct jsd *j, double q, double fq, drst_calibration_t *info)
{
    static const double ceil_[3] = {0.5, 0.7, 0.9};
    const double *m = j->base.cfg.calib_mult;
    double t[3];
    int clamped = 0;
    for (int k = 0; k < 3; k++) {
        t[k] = q * m[k];
        if (!(t[k] > 1e-6))
            t[k] = 1e-6 * (k + 1);
        if (t[k] > ceil_[k]) {
            t[k] = ceil_[k];
            clamped = 1;
        }
        if (k > 0 && t[k] <= t[k - 1]) {
            t[k] = t[k - 1] + (1.0 - t[k - 1]) / 3.0;
            clamped = 1;
        }
    }
    memcpy(j->thr, t, sizeof(t));
    memcpy(j->base.cfg.thresholds, t, sizeof(t));
    j->fthr = fq * m[0];
    if (!(j->fthr > 1e-6))
        j->fthr = 1e-6;
    if (j->fthr > ceil_[0]) {
        j->fthr = ceil_[0];
        clamped = 1;
    }
    j->base.cfg.feature_threshold = j->fthr;
    if (info) {
        info->clamped = clamped;
        memcpy(info->thresholds, t, sizeof(t));
        info->feature_threshold = j->fthr;
    }
}

/* Null distribution of the score from binned baseline rows idx (n x F):
 * each replicate draws a window sample of w = min(W, n/2) rows without
 * replacement (partial Fisher-Yates over perm), or with calib_block the
 * w consecutive rows from a random start (wrapping), and compares it with the
 * remaining n - w rows as the reference, exactly as an evaluation would. */
static drst_err_t calibrate_idx(struct jsd *j, const uint16_t *idx, size_t n, uint32_t *perm,
                                drst_calibration_t *info, char *err, size_t errlen)
{
    size_t F = j->F, B = j->B, R = j->base.cfg.calib_replicates;
    size_t w = n / 2 < j->W ? n / 2 : j->W;
    uint64_t rng = j->base.cfg.calib_seed;
    double mean = 0, q, fq;
    if (w < 2)
        return drst_seterr(err, errlen, DRST_ERR_EMPTY,
                           "jsd calibrate: %zu baseline rows, need at least 4", n);
    memset(j->cal_tot, 0, F * B * sizeof(uint32_t));
    for (size_t r = 0; r < n; r++)
        for (size_t f = 0; f < F; f++)
            if (idx[r * F + f] != NAN_BIN)
                j->cal_tot[f * B + idx[r * F + f]]++;
    for (size_t r = 0; r < n; r++)
        perm[r] = (uint32_t)r;
    for (size_t rep = 0; rep < R; rep++) {
        double agg = 0;
        memset(j->cal_win, 0, F * B * sizeof(uint32_t));
        size_t start = (size_t)(drift_rng_next(&rng) % (uint64_t)n);
        for (size_t k = 0; k < w; k++) {
            const uint16_t *row;
            if (j->base.cfg.calib_block) {
                row = idx + ((start + k) % n) * F;
            } else {
                size_t pick = k + (size_t)(drift_rng_next(&rng) % (uint64_t)(n - k));
                uint32_t t = perm[k];
                perm[k] = perm[pick];
                perm[pick] = t;
                row = idx + (size_t)perm[k] * F;
            }
            for (size_t f = 0; f < F; f++)
                if (row[f] != NAN_BIN)
                    j->cal_win[f * B + row[f]]++;
        }
        for (size_t f = 0; f < F; f++) {
            const uint32_t *tot = j->cal_tot + f * B, *win = j->cal_win + f * B;
            double nr = 0, nw = 0, hp = 0, hq = 0, hm = 0, s;
            for (size_t b = 0; b < B; b++) {
                nr += (double)(tot[b] - win[b]);
                nw += (double)win[b];
            }
            if (nr <= 0 || nw <= 0) {
                s = 0;
            } else {
                double dr = nr + (double)B * j->alpha, dw = nw + (double)B * j->alpha;
                for (size_t b = 0; b < B; b++) {
                    double p = ((double)(tot[b] - win[b]) + j->alpha) / dr;
                    double qq = ((double)win[b] + j->alpha) / dw, m = 0.5 * (p + qq);
                    if (p > 0)
                        hp += p * log2(p);
                    if (qq > 0)
                        hq += qq * log2(qq);
                    if (m > 0)
                        hm += m * log2(m);
                }
                s = 0.5 * (hp + hq) - hm;
                s = s < 0 ? 0 : s;
            }
            j->cal_feat[rep * F + f] = s;
            agg += s;
        }
        j->cal_agg[rep] = agg / (double)F;
        mean += j->cal_agg[rep];
    }
    mean /= (double)R;
    q = quantile(j->cal_agg, R, j->base.cfg.calib_quantile);
    fq = quantile(j->cal_feat, R * F, j->base.cfg.calib_quantile);
    set_thresholds_from(j, q, fq, info);
    if (info) {
        info->replicates = R;
        info->sample = w;
        info->null_mean = mean;
        info->null_q = q;
        info->feature_q = fq;
    }
    return DRST_OK;
}

static drst_err_t need_jsd(const drst_detector_t *d, char *err, size_t errlen, const char *what)
{
    if (!d || d->ops != &drst_jsd_ops)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "%s: not a jsd detector", what);
    return DRST_OK;
}

drst_err_t drst_jsd_set_baseline(drst_detector_t *d, const double *x, size_t n, char *err,
                                 size_t errlen)
{
    struct jsd *j;
    drst_err_t rc = need_jsd(d, err, errlen, "jsd set_baseline");
    if (rc)
        return rc;
    j = J(d);
    if (!x || n < 2)
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "jsd set_baseline: %zu rows, need at least 2", n);
    freeze_edges(j, x, n, j->F);
    memset(j->base_cnt, 0, j->F * j->B * sizeof(double));
    for (size_t r = 0; r < n; r++)
        for (size_t f = 0; f < j->F; f++) {
            uint16_t b = bin_of(j, f, x[r * j->F + f]);
            if (b != NAN_BIN)
                j->base_cnt[f * j->B + b] += 1;
        }
    finish_baseline(j);
    j->base_from_window = 0;
    j->ncollect = 0;
    clear_window(j);
    return DRST_OK;
}

drst_err_t drst_jsd_calibrate(drst_detector_t *d, const double *x, size_t n,
                              drst_calibration_t *info, char *err, size_t errlen)
{
    struct jsd *j;
    uint16_t *idx = NULL;
    uint32_t *perm = NULL;
    drst_err_t rc = need_jsd(d, err, errlen, "jsd calibrate");
    if (rc)
        return rc;
    j = J(d);
    if (!x) {
        if (!j->have_baseline || !j->base_from_window)
            return drst_seterr(err, errlen, DRST_ERR_STATE,
                               "jsd calibrate: no matrix given and no first-window baseline");
        rc = calibrate_idx(j, j->base_idx, j->W, j->perm, info, err, errlen);
        if (rc == DRST_OK)
            j->calibrated = 1;
        return rc;
    }
    if (n < 4)
        return drst_seterr(err, errlen, DRST_ERR_EMPTY,
                           "jsd calibrate: %zu baseline rows, need at least 4", n);
    if (n > UINT32_MAX)
        return drst_seterr(err, errlen, DRST_ERR_TOOBIG, "jsd calibrate: %zu rows", n);
    if (!j->have_baseline && (rc = drst_jsd_set_baseline(d, x, n, err, errlen)) != DRST_OK)
        return rc;
    idx = malloc(n * j->F * sizeof(*idx));
    perm = malloc(n * sizeof(*perm));
    if (!idx || !perm) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "jsd calibrate: out of memory (%zu rows)", n);
        goto out;
    }
    for (size_t r = 0; r < n; r++)
        for (size_t f = 0; f < j->F; f++)
            idx[r * j->F + f] = bin_of(j, f, x[r * j->F + f]);
    rc = calibrate_idx(j, idx, n, perm, info, err, errlen);
    if (rc == DRST_OK)
        j->calibrated = 1;
out:
    free(idx);
    free(perm);
    return rc;
}

drst_err_t drst_jsd_set_thresholds(drst_detector_t *d, const double thr[3],
                                   double feature_threshold, char *err, size_t errlen)
{
    struct jsd *j;
    drst_err_t rc = need_jsd(d, err, errlen, "jsd set_thresholds");
    if (rc)
        return rc;
    j = J(d);
    if (!(thr[0] > 0 && thr[0] < thr[1] && thr[1] < thr[2] && thr[2] <= 1.0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "jsd: thresholds %g,%g,%g must satisfy 0 < A < B < C <= 1 (bits)",
                           thr[0], thr[1], thr[2]);
    if (!(feature_threshold > 0 && feature_threshold <= 1.0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "jsd: feature_threshold %g not in (0, 1]",
                           feature_threshold);
    memcpy(j->thr, thr, sizeof(j->thr));
    memcpy(d->cfg.thresholds, thr, sizeof(j->thr));
    j->fthr = feature_threshold;
    d->cfg.feature_threshold = feature_threshold;
    j->calibrated = 0;
    return DRST_OK;
}

const double *drst_jsd_feature_scores(const drst_detector_t *d)
{
    return d && d->ops == &drst_jsd_ops ? CJ(d)->fscore : NULL;
}

drst_err_t drst_jsd_histogram(const drst_detector_t *d, size_t f, double *lo, double *inv_width,
                              double *base, double *win, uint64_t *nan_win)
{
    const struct jsd *j;
    if (need_jsd(d, NULL, 0, "") || f >= CJ(d)->F)
        return DRST_ERR_INVAL;
    j = CJ(d);
    if (!j->have_baseline)
        return DRST_ERR_STATE;
    if (lo)
        *lo = j->lo[f];
    if (inv_width)
        *inv_width = j->inv_w[f];
    for (size_t b = 0; b < j->B; b++) {
        if (base)
            base[b] = j->base_cnt[f * j->B + b];
        if (win)
            win[b] = (double)j->win_cnt[f * j->B + b];
    }
    if (nan_win)
        *nan_win = j->fill - j->win_n[f];
    return DRST_OK;
}

/* --------------------------------------------------------- save/restore */

static json_t *collect_value(double v)
{
    if (isnan(v))
        return json_null();
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

static json_t *save(const struct drst_detector *d)
{
    const struct jsd *j = CJ(d);
    json_t *o = json_object(), *ring = json_array(), *col = json_array(), *nan = json_array();
    json_t *bidx = json_array();
    int e = 0;
    size_t F = j->F;
    if (!o || !ring || !col || !nan || !bidx)
        goto fail;
    e |= jset_u64(o, "base_from_window", (uint64_t)j->base_from_window);
    for (size_t i = 0; j->base_from_window && i < j->W * F && !e; i++)
        e |= json_array_append_new(bidx, json_integer(j->base_idx[i]));
    e |= json_object_set_new(o, "base_idx", bidx);
    bidx = NULL;
    e |= jset_u64(o, "have_baseline", (uint64_t)j->have_baseline);
    e |= jset_u64(o, "calibrated", (uint64_t)j->calibrated);
    e |= jset_u64(o, "head", j->head);
    e |= jset_u64(o, "fill", j->fill);
    e |= jset_u64(o, "since_eval", j->since_eval);
    e |= jset_u64(o, "ncollect", j->ncollect);
    e |= jset_reals(o, "thresholds", j->thr, 3);
    e |= jset_real(o, "feature_threshold", j->fthr);
    e |= jset_reals(o, "lo", j->lo, F);
    e |= jset_reals(o, "inv_width", j->inv_w, F);
    e |= jset_reals(o, "base_counts", j->base_cnt, F * j->B);
    e |= jset_reals(o, "feature_scores", j->fscore, F);
    /* The ring is kept in slot order: restoring it rebuilds the window counts. */
    for (size_t i = 0; i < j->W * F && !e; i++)
        e |= json_array_append_new(ring, json_integer(j->ring[i]));
    /* Raw values of a collected row: NaN as null, infinities as "inf"/"-inf". */
    for (size_t i = 0; i < j->ncollect * F && !e; i++)
        e |= json_array_append_new(col, collect_value(j->collect[i]));
    for (size_t f = 0; f < F && !e; f++)
        e |= json_array_append_new(nan, json_integer((json_int_t)j->nan_seen[f]));
    e |= json_object_set_new(o, "ring", ring);
    ring = NULL;
    e |= json_object_set_new(o, "collect", col);
    col = NULL;
    e |= json_object_set_new(o, "nan_seen", nan);
    nan = NULL;
    if (e)
        goto fail;
    return o;
fail:
    json_decref(o);
    json_decref(ring);
    json_decref(col);
    json_decref(nan);
    json_decref(bidx);
    return NULL;
}

static drst_err_t restore(struct drst_detector *d, const json_t *st, char *err, size_t errlen)
{
    struct jsd *j = J(d);
    size_t F = j->F, B = j->B, W = j->W;
    uint64_t hb = 0, cal = 0, head = 0, fill = 0, ncol = 0, since = 0, v;
    const json_t *ring, *col, *bidx;
    uint64_t bfw = 0;
    drst_err_t rc;
    if ((rc = jget_u64(st, "have_baseline", &hb, err, errlen)) ||
        (rc = jget_u64(st, "calibrated", &cal, err, errlen)) ||
        (rc = jget_u64(st, "base_from_window", &bfw, err, errlen)) ||
        (rc = jget_u64(st, "head", &head, err, errlen)) ||
        (rc = jget_u64(st, "fill", &fill, err, errlen)) ||
        (rc = jget_u64(st, "since_eval", &since, err, errlen)) ||
        (rc = jget_u64(st, "ncollect", &ncol, err, errlen)) ||
        (rc = jget_reals(st, "thresholds", j->thr, 3, err, errlen)) ||
        (rc = jget_real(st, "feature_threshold", &j->fthr, err, errlen)) ||
        (rc = jget_reals(st, "lo", j->lo, F, err, errlen)) ||
        (rc = jget_reals(st, "inv_width", j->inv_w, F, err, errlen)) ||
        (rc = jget_reals(st, "base_counts", j->base_cnt, F * B, err, errlen)) ||
        (rc = jget_reals(st, "feature_scores", j->fscore, F, err, errlen)) ||
        (rc = jget_u64s(st, "nan_seen", j->nan_seen, F, UINT64_MAX >> 1, err, errlen)))
        return rc;
    if (hb > 1 || cal > 1 || bfw > 1 || (bfw && !hb) || head >= W || fill > W || ncol >= W ||
        (fill < W && head != fill) || (!hb && (fill || head)) || (hb && ncol) || since >= j->S)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "state: inconsistent window (head %llu, fill %llu, collected %llu)",
                           (unsigned long long)head, (unsigned long long)fill,
                           (unsigned long long)ncol);
    if (!(j->thr[0] > 0 && j->thr[0] < j->thr[1] && j->thr[1] < j->thr[2] && j->thr[2] <= 1) ||
        !(j->fthr > 0 && j->fthr <= 1))
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: key 'thresholds': out of range");
    for (size_t f = 0; f < F; f++)
        if ((hb && !(j->inv_w[f] > 0)) || j->fscore[f] < 0 || j->fscore[f] > 1)
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "state: feature %zu: bad width or score", f);
    for (size_t i = 0; i < F * B; i++)
        if (j->base_cnt[i] < 0 || j->base_cnt[i] > 1e15)
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "state: key 'base_counts': element %zu out of range", i);
    ring = json_object_get(st, "ring");
    if (!json_is_array(ring) || json_array_size(ring) != W * F)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: key 'ring': wrong length");
    clear_window(j);
    for (size_t i = 0; i < W * F; i++) {
        const json_t *e = json_array_get(ring, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            (json_integer_value(e) >= (json_int_t)B && json_integer_value(e) != NAN_BIN))
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "state: key 'ring': element %zu out of range", i);
        v = (uint64_t)json_integer_value(e);
        j->ring[i] = (uint16_t)v;
        /* Slots beyond fill are unused until the window first fills. */
        if (i / F < fill && v != NAN_BIN) {
            j->win_cnt[(i % F) * B + v]++;
            j->win_n[i % F]++;
        }
    }
    bidx = json_object_get(st, "base_idx");
    if (!json_is_array(bidx) || json_array_size(bidx) != (bfw ? W * F : 0))
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: key 'base_idx': wrong length");
    for (size_t i = 0; i < json_array_size(bidx); i++) {
        const json_t *e = json_array_get(bidx, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            (json_integer_value(e) >= (json_int_t)B && json_integer_value(e) != NAN_BIN))
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "state: key 'base_idx': element %zu out of range", i);
        j->base_idx[i] = (uint16_t)json_integer_value(e);
    }
    j->base_from_window = (int)bfw;
    col = json_object_get(st, "collect");
    if (!json_is_array(col) || json_array_size(col) != ncol * F)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: key 'collect': wrong length");
    for (size_t i = 0; i < ncol * F; i++) {
        const json_t *e = json_array_get(col, i);
        if (json_is_null(e))
            j->collect[i] = NAN;
        else if (json_is_number(e) && isfinite(json_number_value(e)))
            j->collect[i] = json_number_value(e);
        else if (json_is_string(e) && strcmp(json_string_value(e), "inf") == 0)
            j->collect[i] = INFINITY;
        else if (json_is_string(e) && strcmp(json_string_value(e), "-inf") == 0)
            j->collect[i] = -INFINITY;
        else
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "state: key 'collect': element %zu not a number", i);
    }
    j->head = head;
    j->fill = fill;
    j->since_eval = since;
    j->ncollect = ncol;
    j->calibrated = (int)cal;
    memcpy(d->cfg.thresholds, j->thr, sizeof(j->thr));
    d->cfg.feature_threshold = j->fthr;
    if (hb)
        finish_baseline(j);
    else
        j->have_baseline = 0;
    return DRST_OK;
}

const struct drst_detector_ops drst_jsd_ops = {
    .name = "jsd",
    .normalize = normalize,
    .input_dim = input_dim,
    .create = create,
    .update = update,
    .evaluate = evaluate,
    .reset = reset,
    .rebaseline = rebaseline,
    .destroy = destroy,
    .save = save,
    .restore = restore,
};
