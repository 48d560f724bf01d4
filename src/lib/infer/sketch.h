/* A fixed-size log-bucket quantile sketch (DDSketch-style): bucket i holds
 * values in (SK_MIN * g^(i-1), SK_MIN * g^i] with g = 1.02, so a quantile is
 * returned with at most ~1% relative error, memory is constant and adding a
 * value is one log() and one increment (no allocation on the hot path).
 * Values <= SK_MIN go to a zero bucket, non-finite ones to an infinity
 * bucket. Quantile ranks follow numpy's default (q * (n - 1), lower order
 * statistic's bucket). Private to src/lib/infer. */
#ifndef DRST_INFER_SKETCH_H
#define DRST_INFER_SKETCH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SK_NB  1536
#define SK_MIN 1e-9
#define SK_G   1.02

typedef struct sketch {
    uint64_t n, zero, inf;
    uint64_t b[SK_NB];
} sketch_t;

/* The bucket of v: 0 is the zero bucket, SK_NB the infinity bucket. One
 * log(); a caller adding one value to several sketches computes it once. */
static inline long sk_bucket(double v)
{
    if (!(v == v) || v == INFINITY)
        return SK_NB;
    if (v <= SK_MIN)
        return 0;
    /* 1 / ln(1.02) */
    long i = (long)ceil(log(v / SK_MIN) * 50.49752469);
    return i < 1 ? 1 : i >= SK_NB ? SK_NB : i;
}

static inline void sk_add_bucket(sketch_t *s, long i, uint64_t k)
{
    s->n += k;
    if (i == 0)
        s->zero += k;
    else if (i >= SK_NB)
        s->inf += k;
    else
        s->b[i] += k;
}

static inline void sk_add_n(sketch_t *s, double v, uint64_t k)
{
    sk_add_bucket(s, sk_bucket(v), k);
}

static inline void sk_add(sketch_t *s, double v)
{
    sk_add_n(s, v, 1);
}

static inline void sk_merge(sketch_t *d, const sketch_t *s)
{
    d->n += s->n;
    d->zero += s->zero;
    d->inf += s->inf;
    for (int i = 0; i < SK_NB; i++)
        d->b[i] += s->b[i];
}

/* NaN when empty. */
static inline double sk_quantile(const sketch_t *s, double q)
{
    uint64_t r, c;
    if (s->n == 0)
        return NAN;
    r = (uint64_t)floor(q * (double)(s->n - 1) + 1e-9);
    c = s->zero;
    if (r < c)
        return 0;
    for (int i = 1; i < SK_NB; i++) {
        c += s->b[i];
        if (r < c)
            return SK_MIN * pow(SK_G, i) * 2.0 / (1.0 + SK_G);
    }
    return INFINITY;
}

#endif
