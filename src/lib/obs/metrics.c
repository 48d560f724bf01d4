/* Metrics registry: families of labelled series, updated lock-free.
 *
 * A double lives in an _Atomic uint64_t (its bit pattern): adds are a CAS
 * loop, sets a plain atomic store, so per-record updates take no lock and
 * allocate nothing. Histogram buckets hold non-cumulative counts (one
 * fetch_add per observation); rendering accumulates them. Series are only
 * ever appended, never removed before drst_metrics_free(). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "drst/obs.h"
#include "obs/obs_int.h"

struct family;

struct drst_metric {
    struct family *fam;
    char *labels; /* rendered `k="v",k2="v2"` (escaped), "" if none */
    _Atomic uint64_t val;
    _Atomic uint64_t count;
    _Atomic uint64_t sum;
    _Atomic uint64_t *bcount; /* nb + 1 (the last is +Inf) */
    struct drst_metric *next;
};

struct family {
    char *name, *help;
    drst_metric_type_t type;
    double *buckets;
    size_t nb;
    drst_metric_t *first, *last;
    struct family *next;
};

struct drst_metrics {
    pthread_mutex_t mu;
    struct family *first, *last;
};

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, d2u(u2d(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

drst_metrics_t *drst_metrics_new(char *err, size_t errlen)
{
    drst_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&m->mu, NULL)) {
        free(m);
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "cannot create mutex");
        return NULL;
    }
    return m;
}

static void series_free(drst_metric_t *s)
{
    free(s->labels);
    free(s->bcount);
    free(s);
}

void drst_metrics_free(drst_metrics_t *m)
{
    if (!m)
        return;
    struct family *f = m->first;
    while (f) {
        struct family *fn = f->next;
        drst_metric_t *s = f->first;
        while (s) {
            drst_metric_t *sn = s->next;
            series_free(s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f->buckets);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int drst_obs_valid_name(const char *s, int label)
{
    if (!s || !*s)
        return 0;
    if (label && s[0] == '_' && s[1] == '_')
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (!label && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Render labels as k="v",... with the exposition format's escapes. */
static char *render_labels(const char *const *labels, char *err, size_t errlen)
{
    size_t cap = 1;
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (!labels[i + 1]) {
            drst_seterr(err, errlen, DRST_ERR_INVAL, "label '%s' has no value", labels[i]);
            return NULL;
        }
        if (!drst_obs_valid_name(labels[i], 1) || !strcmp(labels[i], "le")) {
            drst_seterr(err, errlen, DRST_ERR_INVAL, "invalid label name '%s'", labels[i]);
            return NULL;
        }
        cap += strlen(labels[i]) + 2 * strlen(labels[i + 1]) + 5;
    }
    char *out = malloc(cap), *p = out;
    if (!out) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (i)
            *p++ = ',';
        size_t n = strlen(labels[i]);
        memcpy(p, labels[i], n);
        p += n;
        *p++ = '=';
        *p++ = '"';
        for (const char *v = labels[i + 1]; *v; v++) {
            if (*v == '\\' || *v == '"') {
                *p++ = '\\';
                *p++ = *v;
            } else if (*v == '\n') {
                *p++ = '\\';
                *p++ = 'n';
            } else {
                *p++ = *v;
            }
        }
        *p++ = '"';
    }
    *p = 0;
    return out;
}

static const double default_buckets[] = {1e-5,   2.5e-5, 5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,
                                         2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   0.1,  0.25,
                                         0.5,    1,      2.5,  5,      10};

drst_metric_t *drst_metrics_get(drst_metrics_t *m, drst_metric_type_t type, const char *name,
                                const char *help, const char *const *labels, const double *buckets,
                                size_t nbuckets, char *err, size_t errlen)
{
    if (!m || !drst_obs_valid_name(name, 0)) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "invalid metric name '%s'", name ? name : "");
        return NULL;
    }
    if (type != DRST_METRIC_COUNTER && type != DRST_METRIC_GAUGE && type != DRST_METRIC_HISTOGRAM) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "%s: invalid metric type %d", name, (int)type);
        return NULL;
    }
    if (type == DRST_METRIC_HISTOGRAM && !buckets) {
        buckets = default_buckets;
        nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
    }
    if (type != DRST_METRIC_HISTOGRAM)
        nbuckets = 0;
    for (size_t i = 0; i < nbuckets; i++) {
        if (!isfinite(buckets[i]) || (i && !(buckets[i] > buckets[i - 1]))) {
            drst_seterr(err, errlen, DRST_ERR_INVAL,
                        "%s: buckets must be finite and strictly increasing (bucket %zu)", name, i);
            return NULL;
        }
    }
    char *lab = render_labels(labels, err, errlen);
    if (!lab)
        return NULL;
    drst_metric_t *s = NULL;
    pthread_mutex_lock(&m->mu);
    struct family *f;
    for (f = m->first; f; f = f->next)
        if (!strcmp(f->name, name))
            break;
    if (f && f->type != type) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "metric '%s' already exists with another type",
                    name);
        goto out;
    }
    if (f) {
        for (s = f->first; s; s = s->next)
            if (!strcmp(s->labels, lab))
                goto out;
    } else {
        f = calloc(1, sizeof(*f));
        if (!f)
            goto nomem;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->type = type;
        f->nb = nbuckets;
        if (nbuckets)
            f->buckets = malloc(nbuckets * sizeof(double));
        if (!f->name || !f->help || (nbuckets && !f->buckets)) {
            free(f->name);
            free(f->help);
            free(f->buckets);
            free(f);
            goto nomem;
        }
        if (nbuckets)
            memcpy(f->buckets, buckets, nbuckets * sizeof(double));
        if (m->last)
            m->last->next = f;
        else
            m->first = f;
        m->last = f;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->fam = f;
    s->labels = lab;
    lab = NULL;
    atomic_init(&s->val, d2u(0.0));
    atomic_init(&s->count, 0);
    atomic_init(&s->sum, d2u(0.0));
    if (type == DRST_METRIC_HISTOGRAM) {
        s->bcount = calloc(f->nb + 1, sizeof(*s->bcount));
        if (!s->bcount) {
            series_free(s);
            s = NULL;
            goto nomem;
        }
        for (size_t i = 0; i <= f->nb; i++)
            atomic_init(&s->bcount[i], 0);
    }
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    goto out;
nomem:
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
out:
    pthread_mutex_unlock(&m->mu);
    free(lab);
    return s;
}

void drst_metric_add(drst_metric_t *s, double v)
{
    if (!s)
        return;
    if (s->fam->type == DRST_METRIC_COUNTER && !(v >= 0))
        return;
    if (s->fam->type == DRST_METRIC_HISTOGRAM) {
        drst_metric_observe(s, v);
        return;
    }
    atomic_add_double(&s->val, v);
}

void drst_metric_inc(drst_metric_t *s)
{
    drst_metric_add(s, 1.0);
}

void drst_metric_set(drst_metric_t *s, double v)
{
    if (s && s->fam->type == DRST_METRIC_GAUGE)
        atomic_store_explicit(&s->val, d2u(v), memory_order_relaxed);
}

void drst_metric_observe(drst_metric_t *s, double v)
{
    if (!s || s->fam->type != DRST_METRIC_HISTOGRAM)
        return;
    const struct family *f = s->fam;
    size_t lo = 0, hi = f->nb; /* first bucket with bound >= v; nb = +Inf */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->buckets[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&s->bcount[lo], 1, memory_order_relaxed);
    atomic_add_double(&s->sum, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

double drst_metric_value(const drst_metric_t *s)
{
    if (!s)
        return 0;
    drst_metric_t *w = (drst_metric_t *)s; /* atomic loads need non-const */
    if (s->fam->type == DRST_METRIC_HISTOGRAM)
        return (double)atomic_load_explicit(&w->count, memory_order_relaxed);
    return u2d(atomic_load_explicit(&w->val, memory_order_relaxed));
}

double drst_metric_sum(const drst_metric_t *s)
{
    if (!s || s->fam->type != DRST_METRIC_HISTOGRAM)
        return 0;
    drst_metric_t *w = (drst_metric_t *)s;
    return u2d(atomic_load_explicit(&w->sum, memory_order_relaxed));
}

void drst_obs_fmt_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f", v);
    } else {
        /* Shortest %g that reads back to the same double. */
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(buf, len, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void put_escaped_help(FILE *o, const char *h)
{
    for (; *h; h++) {
        if (*h == '\\')
            fputs("\\\\", o);
        else if (*h == '\n')
            fputs("\\n", o);
        else
            fputc(*h, o);
    }
}

static void put_sample(FILE *o, const char *name, const char *suffix, const char *labels,
                       const char *extra, double v)
{
    char num[64];
    drst_obs_fmt_double(num, sizeof(num), v);
    int any = (labels && *labels) || (extra && *extra);
    fprintf(o, "%s%s%s%s%s%s%s %s\n", name, suffix, any ? "{" : "", labels ? labels : "",
            (labels && *labels && extra && *extra) ? "," : "", extra ? extra : "", any ? "}" : "",
            num);
}

drst_err_t drst_metrics_render(drst_metrics_t *m, char **out, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t n = 0;
    *out = NULL;
    FILE *o = open_memstream(&buf, &n);
    if (!o)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    static const char *const tname[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->first; f; f = f->next) {
        fprintf(o, "# HELP %s ", f->name);
        put_escaped_help(o, f->help);
        fprintf(o, "\n# TYPE %s %s\n", f->name, tname[f->type]);
        for (drst_metric_t *s = f->first; s; s = s->next) {
            if (f->type != DRST_METRIC_HISTOGRAM) {
                put_sample(o, f->name, "", s->labels, NULL, drst_metric_value(s));
                continue;
            }
            /* Read the count first: buckets may run ahead of it, never behind,
             * and +Inf is rendered as the sum of the buckets we saw. */
            uint64_t cum = 0;
            char le[80], num[64];
            for (size_t b = 0; b <= f->nb; b++) {
                cum += atomic_load_explicit(&s->bcount[b], memory_order_relaxed);
                if (b < f->nb)
                    drst_obs_fmt_double(num, sizeof(num), f->buckets[b]);
                snprintf(le, sizeof(le), "le=\"%s\"", b < f->nb ? num : "+Inf");
                put_sample(o, f->name, "_bucket", s->labels, le, (double)cum);
            }
            put_sample(o, f->name, "_sum", s->labels, NULL, drst_metric_sum(s));
            put_sample(o, f->name, "_count", s->labels, NULL, (double)cum);
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (fclose(o) != 0 || !buf) {
        free(buf);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    }
    *out = buf;
    if (len)
        *len = n;
    return DRST_OK;
}

static void put_json_key(FILE *f, const char *name, const char *suffix, const char *labels)
{
    fputc('"', f);
    fputs(name, f);
    fputs(suffix, f);
    if (*labels) {
        fputc('{', f);
        for (const char *p = labels; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
        fputc('}', f);
    }
    fputc('"', f);
}

static void put_json_num(FILE *f, double v)
{
    char num[64];
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    drst_obs_fmt_double(num, sizeof(num), v);
    fputs(num, f);
}

drst_err_t drst_metrics_write_jsonl(drst_metrics_t *m, FILE *f, double ts, char *err, size_t errlen)
{
    fputs("{\"ts\":", f);
    put_json_num(f, ts);
    fputs(",\"metrics\":{", f);
    int first = 1;
    pthread_mutex_lock(&m->mu);
    for (const struct family *fam = m->first; fam; fam = fam->next) {
        for (drst_metric_t *s = fam->first; s; s = s->next) {
            if (!first)
                fputc(',', f);
            first = 0;
            if (fam->type == DRST_METRIC_HISTOGRAM) {
                put_json_key(f, fam->name, "_count", s->labels);
                fputc(':', f);
                put_json_num(f, drst_metric_value(s));
                fputc(',', f);
                put_json_key(f, fam->name, "_sum", s->labels);
                fputc(':', f);
                put_json_num(f, drst_metric_sum(s));
            } else {
                put_json_key(f, fam->name, "", s->labels);
                fputc(':', f);
                put_json_num(f, drst_metric_value(s));
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    fputs("}}\n", f);
    if (fflush(f) != 0 || ferror(f))
        return drst_seterr(err, errlen, DRST_ERR_IO, "cannot write metrics JSONL");
    return DRST_OK;
}
