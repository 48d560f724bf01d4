/* One inference consumer: poll -> decode/align -> batch predict with the
 * baseline and the adaptive model -> metrics, trace -> commit.
 *
 * Batching adapts by itself: a poll returns what is queued, up to
 * conf.batch records, and never waits for more once one is there (the poll
 * timeout only bounds the wait of an empty queue). One read-side critical
 * section covers one batch, so every record of a batch is predicted by one
 * complete view of the slot, and the view's version goes to the trace.
 *
 * Idempotence: a per-partition high-water offset; a redelivered record
 * (offset <= mark) is counted as a duplicate and neither predicted nor
 * scored again. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/error_int.h"
#include "drst/infer.h"
#include "infer/sketch.h"

static const double TAUS[DRST_INFER_NTAU] = {0.05, 0.1, 0.2};
static const double QS[DRST_INFER_NQ] = {0.5, 0.8, 0.9, 0.95, 0.99};

struct drst_infer_offsets {
    int32_t np;
    _Atomic int64_t hw[];
};

drst_infer_offsets_t *drst_infer_offsets_new(int32_t np)
{
    drst_infer_offsets_t *o;
    if (np <= 0 || np > 1 << 20)
        return NULL;
    o = malloc(sizeof(*o) + (size_t)np * sizeof(o->hw[0]));
    if (!o)
        return NULL;
    o->np = np;
    for (int32_t p = 0; p < np; p++)
        atomic_init(&o->hw[p], -1);
    return o;
}

void drst_infer_offsets_free(drst_infer_offsets_t *o)
{
    free(o);
}

typedef struct acc {
    uint64_t n, lab, hb[DRST_INFER_NTAU], ha[DRST_INFER_NTAU];
    uint64_t in_n, in_lab, in_hb[DRST_INFER_NTAU], in_ha[DRST_INFER_NTAU]; /* since last flush */
    sketch_t eb, ea;
} acc_t;

struct drst_infer {
    drst_infer_conf_t conf;
    char *topic, *group, *member, *name, *out_dir;
    drst_stream_t *h;
    drst_model_slot_t *slot;
    int32_t np;
    drst_infer_offsets_t *hw; /* per partition: highest offset counted, -1 none */
    int own_hw;
    acc_t *acc; /* np partitions + the total at [np] */
    sketch_t lat, rtt;
    uint64_t dup, malformed, nan, missing, dl, eos, batches, versions_seen, version, commit_err;
    /* batch buffers */
    size_t cap, width; /* cap rows; width = schema size the buffers fit */
    size_t wa;         /* adaptive gather width */
    double *feat, *xa, *yb, *ya, *label, *send;
    int32_t *part;
    int64_t *off;
    unsigned char *has;
    drst_model_scratch_t *scr;
    uint64_t scr_version; /* view version the scratch was reserved for (a freed view's address may
                             be reused; versions are not) */
    FILE *trace, *mfile;
    atomic_int stop;
    pthread_mutex_t smu;
    drst_infer_stats_t *snap; /* np + 1 */
    double t0, cpu0, last_flush, last_msg;
    drst_metric_t *m_rec, *m_dl, *m_ver, *m_acc[2];
};

void drst_infer_conf_init(drst_infer_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->name = "consumer-0";
    c->batch = 256;
    c->poll_ms = 50;
    c->idle_s = 10;
    c->flush_s = 1;
    c->trace = 1;
    c->tau = 0.2;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

void drst_infer_free(drst_infer_t *c)
{
    if (!c)
        return;
    if (c->trace)
        fclose(c->trace);
    if (c->mfile)
        fclose(c->mfile);
    drst_model_scratch_free(c->scr);
    free(c->topic);
    free(c->group);
    free(c->member);
    free(c->name);
    free(c->out_dir);
    if (c->own_hw)
        drst_infer_offsets_free(c->hw);
    free(c->acc);
    free(c->feat);
    free(c->xa);
    free(c->yb);
    free(c->ya);
    free(c->label);
    free(c->send);
    free(c->part);
    free(c->off);
    free(c->has);
    free(c->snap);
    pthread_mutex_destroy(&c->smu);
    free(c);
}

static FILE *open_out(const char *dir, const char *prefix, const char *name, const char *ext,
                      char *err, size_t errlen)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s%s%s", dir, prefix, name, ext);
    f = fopen(path, "w");
    if (!f)
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open '%s'", path);
    else
        setvbuf(f, NULL, _IOFBF, 1 << 16);
    return f;
}

/* Grow the batch buffers to fit schema width `w` and adaptive width `wa`. */
static drst_err_t fit(drst_infer_t *c, size_t w, size_t wa)
{
    if (w > c->width) {
        double *f = realloc(c->feat, c->cap * w * sizeof(double));
        if (!f)
            return DRST_ERR_NOMEM;
        c->feat = f;
        c->width = w;
    }
    if (wa > c->wa) {
        double *x = realloc(c->xa, c->cap * wa * sizeof(double));
        if (!x)
            return DRST_ERR_NOMEM;
        c->xa = x;
        c->wa = wa;
    }
    return DRST_OK;
}

drst_infer_t *drst_infer_new(const drst_infer_conf_t *conf, drst_stream_t *stream,
                             drst_model_slot_t *slot, char *err, size_t errlen)
{
    drst_infer_t *c;
    const drst_serving_t *sv;
    size_t w, wa;
    drst_err_t rc;

    if (!conf || !conf->topic || !conf->group || !stream || !slot) {
        drst_seterr(err, errlen, DRST_ERR_INVAL,
                    "infer: topic, group, stream and slot are required");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        goto nomem;
    pthread_mutex_init(&c->smu, NULL);
    c->conf = *conf;
    if (c->conf.batch == 0)
        c->conf.batch = 256;
    if (c->conf.poll_ms <= 0)
        c->conf.poll_ms = 50;
    if (!(c->conf.flush_s > 0))
        c->conf.flush_s = 1;
    c->h = stream;
    c->slot = slot;
    c->cap = c->conf.batch;
    if (!(c->topic = dupstr(conf->topic)) || !(c->group = dupstr(conf->group)) ||
        (conf->member_id && !(c->member = dupstr(conf->member_id))) ||
        !(c->name = dupstr(conf->name ? conf->name : "consumer-0")) ||
        (conf->out_dir && !(c->out_dir = dupstr(conf->out_dir))))
        goto nomem;
    if ((rc = drst_stream_partitions(stream, conf->topic, &c->np, err, errlen)) != DRST_OK)
        goto fail;
    if (c->np <= 0 || c->np > 1 << 20) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "infer: topic \"%s\" has %d partitions",
                    conf->topic, (int)c->np);
        goto fail;
    }
    if (conf->offsets) {
        if (conf->offsets->np != c->np) {
            drst_seterr(err, errlen, DRST_ERR_INVAL,
                        "infer: shared offsets are for %d partitions, topic \"%s\" has %d",
                        (int)conf->offsets->np, conf->topic, (int)c->np);
            goto fail;
        }
        c->hw = conf->offsets;
    } else {
        c->hw = drst_infer_offsets_new(c->np);
        c->own_hw = 1;
    }
    c->acc = calloc(c->np + 1, sizeof(acc_t));
    c->snap = calloc(c->np + 1, sizeof(drst_infer_stats_t));
    c->yb = malloc(c->cap * sizeof(double));
    c->ya = malloc(c->cap * sizeof(double));
    c->label = malloc(c->cap * sizeof(double));
    c->send = malloc(c->cap * sizeof(double));
    c->part = malloc(c->cap * sizeof(int32_t));
    c->off = malloc(c->cap * sizeof(int64_t));
    c->has = malloc(c->cap);
    if (!c->hw || !c->acc || !c->snap || !c->yb || !c->ya || !c->label || !c->send || !c->part ||
        !c->off || !c->has)
        goto nomem;

    drst_rcu_thread_online();
    sv = drst_model_slot_enter(slot);
    w = drst_schema_size(sv->schema);
    wa = drst_model_nfeatures(sv->adaptive);
    c->scr = drst_model_scratch_new(sv->baseline, c->cap);
    rc = c->scr ? drst_model_scratch_reserve(c->scr, sv->adaptive) : DRST_ERR_NOMEM;
    drst_model_slot_exit(slot);
    drst_rcu_thread_offline();
    if (rc != DRST_OK || fit(c, w, wa) != DRST_OK)
        goto nomem;

    if (c->out_dir) {
        if (mkdir(c->out_dir, 0777) != 0 && errno != EEXIST) {
            drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", c->out_dir);
            goto fail;
        }
        if (c->conf.trace) {
            if (!(c->trace = open_out(c->out_dir, "trace_", c->name, ".csv", err, errlen)))
                goto fail;
            fputs("ts,partition,offset,truth,baseline,adaptive,version,latency_s\n", c->trace);
        }
        if (!(c->mfile = open_out(c->out_dir, "infer_", c->name, ".jsonl", err, errlen)))
            goto fail;
    }
    if (c->conf.metrics) {
        const char *l[] = {"consumer", c->name, NULL};
        const char *lb[] = {"consumer", c->name, "path", "baseline", NULL};
        const char *la[] = {"consumer", c->name, "path", "adaptive", NULL};
        if (!(c->m_rec =
                  drst_metrics_get(c->conf.metrics, DRST_METRIC_COUNTER, "drst_infer_records_total",
                                   "records predicted", l, NULL, 0, err, errlen)) ||
            !(c->m_dl = drst_metrics_get(
                  c->conf.metrics, DRST_METRIC_COUNTER, "drst_infer_dead_letters_total",
                  "records dead-lettered (malformed, NaN)", l, NULL, 0, err, errlen)) ||
            !(c->m_ver =
                  drst_metrics_get(c->conf.metrics, DRST_METRIC_GAUGE, "drst_infer_model_version",
                                   "adaptive model version serving", l, NULL, 0, err, errlen)) ||
            !(c->m_acc[0] = drst_metrics_get(
                  c->conf.metrics, DRST_METRIC_GAUGE, "drst_infer_accuracy",
                  "cumulative accuracy at the headline tau", lb, NULL, 0, err, errlen)) ||
            !(c->m_acc[1] = drst_metrics_get(
                  c->conf.metrics, DRST_METRIC_GAUGE, "drst_infer_accuracy",
                  "cumulative accuracy at the headline tau", la, NULL, 0, err, errlen)))
            goto fail;
    }
    return c;
nomem:
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "infer: out of memory");
fail:
    drst_infer_free(c);
    return NULL;
}

void drst_infer_stop(drst_infer_t *c)
{
    atomic_store_explicit(&c->stop, 1, memory_order_relaxed);
}

/* ---- metrics ---- */

static void path_fill(drst_infer_path_t *p, uint64_t lab, const uint64_t *hits, const sketch_t *sk)
{
    for (int k = 0; k < DRST_INFER_NTAU; k++)
        p->acc[k] = lab ? (double)hits[k] / (double)lab : NAN;
    for (int k = 0; k < DRST_INFER_NQ; k++)
        p->q[k] = sk_quantile(sk, QS[k]);
}

static void jnum(FILE *f, const char *key, double v, int comma)
{
    if (isfinite(v))
        fprintf(f, "%s\"%s\":%.10g", comma ? "," : "", key, v);
    else
        fprintf(f, "%s\"%s\":null", comma ? "," : "", key);
}

static void jpath(FILE *f, const char *name, const drst_infer_path_t *p)
{
    static const char *const qn[] = {"p50", "p80", "p90", "p95", "p99"};
    char k[32];
    fprintf(f, ",\"%s\":{", name);
    for (int i = 0; i < DRST_INFER_NTAU; i++) {
        snprintf(k, sizeof(k), "acc@%g", TAUS[i]);
        jnum(f, k, p->acc[i], i > 0);
    }
    for (int i = 0; i < DRST_INFER_NQ; i++)
        jnum(f, qn[i], p->q[i], 1);
    fputc('}', f);
}

/* Recompute the snapshots; write one metrics line per scope with records. */
static void flush_metrics(drst_infer_t *c, int final)
{
    double now = mono(), ts = wall(), wall_s = now - c->t0, cpu_s = cpu() - c->cpu0;
    pthread_mutex_lock(&c->smu);
    for (int32_t p = 0; p <= c->np; p++) {
        acc_t *a = &c->acc[p];
        drst_infer_stats_t *s = &c->snap[p];
        memset(s, 0, sizeof(*s));
        s->records = a->n;
        s->labelled = a->lab;
        path_fill(&s->baseline, a->lab, a->hb, &a->eb);
        path_fill(&s->adaptive, a->lab, a->ha, &a->ea);
        s->version = c->version;
        s->wall_s = wall_s;
        s->records_per_s = wall_s > 0 ? (double)a->n / wall_s : 0;
        s->lat_p50 = s->lat_p99 = s->rtt_p50 = s->rtt_p99 = NAN;
        if (p == c->np) {
            s->duplicates = c->dup;
            s->malformed = c->malformed;
            s->nan = c->nan;
            s->missing = c->missing;
            s->dead_letters = c->dl;
            s->eos = c->eos;
            s->batches = c->batches;
            s->commit_errors = c->commit_err;
            s->lat_p50 = sk_quantile(&c->lat, 0.5);
            s->lat_p99 = sk_quantile(&c->lat, 0.99);
            s->rtt_p50 = sk_quantile(&c->rtt, 0.5);
            s->rtt_p99 = sk_quantile(&c->rtt, 0.99);
            s->cpu_s = cpu_s;
            s->versions_seen = c->versions_seen;
        }
    }
    pthread_mutex_unlock(&c->smu);
    if (c->conf.metrics) {
        const drst_infer_stats_t *t = &c->snap[c->np];
        int k = c->conf.tau <= 0.05 + 1e-12 ? 0 : c->conf.tau <= 0.1 + 1e-12 ? 1 : 2;
        drst_metric_set(c->m_ver, (double)c->version);
        drst_metric_set(c->m_acc[0], t->baseline.acc[k]);
        drst_metric_set(c->m_acc[1], t->adaptive.acc[k]);
    }
    if (c->mfile) {
        for (int32_t p = 0; p <= c->np; p++) {
            acc_t *a = &c->acc[p];
            const drst_infer_stats_t *s = &c->snap[p];
            if (p < c->np && a->n == 0)
                continue;
            fprintf(c->mfile, "{\"ts\":%.6f,\"consumer\":\"%s\",", ts, c->name);
            if (p == c->np)
                fputs("\"partition\":\"total\"", c->mfile);
            else
                fprintf(c->mfile, "\"partition\":%d", (int)p);
            fprintf(c->mfile, ",\"final\":%s,\"version\":%llu,\"records\":%llu,\"labelled\":%llu",
                    final ? "true" : "false", (unsigned long long)s->version,
                    (unsigned long long)s->records, (unsigned long long)s->labelled);
            fprintf(c->mfile, ",\"batch\":{\"records\":%llu,\"labelled\":%llu",
                    (unsigned long long)a->in_n, (unsigned long long)a->in_lab);
            for (int i = 0; i < DRST_INFER_NTAU; i++) {
                char k[40];
                snprintf(k, sizeof(k), "baseline_acc@%g", TAUS[i]);
                jnum(c->mfile, k, a->in_lab ? (double)a->in_hb[i] / a->in_lab : NAN, 1);
                snprintf(k, sizeof(k), "adaptive_acc@%g", TAUS[i]);
                jnum(c->mfile, k, a->in_lab ? (double)a->in_ha[i] / a->in_lab : NAN, 1);
            }
            fputc('}', c->mfile);
            jpath(c->mfile, "baseline", &s->baseline);
            jpath(c->mfile, "adaptive", &s->adaptive);
            jnum(c->mfile, "records_per_s", s->records_per_s, 1);
            jnum(c->mfile, "wall_s", s->wall_s, 1);
            if (p == c->np) {
                jnum(c->mfile, "lat_p50_s", s->lat_p50, 1);
                jnum(c->mfile, "lat_p99_s", s->lat_p99, 1);
                jnum(c->mfile, "rtt_p50_s", s->rtt_p50, 1);
                jnum(c->mfile, "rtt_p99_s", s->rtt_p99, 1);
                jnum(c->mfile, "cpu_s", s->cpu_s, 1);
                fprintf(
                    c->mfile,
                    ",\"duplicates\":%llu,\"malformed\":%llu,\"nan\":%llu,\"missing\":%llu,"
                    "\"dead_letters\":%llu,\"eos\":%llu,\"batches\":%llu,\"versions_seen\":%llu,"
                    "\"commit_errors\":%llu",
                    (unsigned long long)s->duplicates, (unsigned long long)s->malformed,
                    (unsigned long long)s->nan, (unsigned long long)s->missing,
                    (unsigned long long)s->dead_letters, (unsigned long long)s->eos,
                    (unsigned long long)s->batches, (unsigned long long)s->versions_seen,
                    (unsigned long long)s->commit_errors);
            }
            fputs("}\n", c->mfile);
        }
        fflush(c->mfile);
    }
    for (int32_t p = 0; p <= c->np; p++) {
        acc_t *a = &c->acc[p];
        a->in_n = a->in_lab = 0;
        memset(a->in_hb, 0, sizeof(a->in_hb));
        memset(a->in_ha, 0, sizeof(a->in_ha));
    }
    if (c->trace)
        fflush(c->trace);
    c->last_flush = now;
}

void drst_infer_stats(drst_infer_t *c, int32_t part, drst_infer_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (part >= c->np)
        return;
    pthread_mutex_lock(&c->smu);
    *out = c->snap[part < 0 ? c->np : part];
    pthread_mutex_unlock(&c->smu);
}

/* ---- the hot path ---- */

static void dead_letter(drst_infer_t *c, const drst_msg_t *m, const char *reason)
{
    char src[300];
    snprintf(src, sizeof(src), "%s/%d/%lld", c->topic, (int)m->partition, (long long)m->offset);
    c->dl++;
    if (c->m_dl)
        drst_metric_inc(c->m_dl);
    if (c->conf.dlq)
        (void)!drst_dlq_put(c->conf.dlq, m->payload, m->len, src, reason, NULL, 0);
}

/* A JSON NaN/Infinity literal (Python's json.dumps writes them) is not
 * JSON: the decoder refuses the payload. Tell that case apart so it is
 * counted as a NaN record with a clear reason. */
static int has_nonfinite_literal(const void *buf, size_t len)
{
    const char *p = buf, *e = p + len;
    for (; p < e; p++) {
        if (*p == 'N' && e - p >= 3 && memcmp(p, "NaN", 3) == 0)
            return 1;
        if (*p == 'I' && e - p >= 8 && memcmp(p, "Infinity", 8) == 0)
            return 1;
    }
    return 0;
}

/* Raise the partition's high-water mark to this offset; 0 if some consumer
 * already counted it (a replay). Offsets of one partition arrive in order
 * at one owner at a time, so the mark only moves forward. */
static int claim(drst_infer_t *c, const drst_msg_t *m)
{
    _Atomic int64_t *hw = &c->hw->hw[m->partition];
    int64_t cur = atomic_load_explicit(hw, memory_order_relaxed);
    if (m->offset < 0)
        return 1;
    do {
        if (m->offset <= cur)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(hw, &cur, m->offset, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

/* One labelled record's errors: which tolerances each path meets (bit k
 * for TAUS[k]) and the sketch buckets, computed once and then counted in the
 * partition's and the total's figures. */
typedef struct scored {
    unsigned hb, ha;
    long kb, ka;
} scored_t;

static scored_t score_of(double t, double yb, double ya)
{
    double d = fabs(t) > DRST_METRICS_EPS ? fabs(t) : DRST_METRICS_EPS;
    double eb = fabs(yb - t) / d, ea = fabs(ya - t) / d;
    scored_t r = {0, 0, sk_bucket(isfinite(eb) ? eb : INFINITY),
                  sk_bucket(isfinite(ea) ? ea : INFINITY)};
    for (int k = 0; k < DRST_INFER_NTAU; k++) {
        r.hb |= (unsigned)(eb <= TAUS[k]) << k;
        r.ha |= (unsigned)(ea <= TAUS[k]) << k;
    }
    return r;
}

static void score_add(acc_t *a, const scored_t *r)
{
    a->lab++;
    a->in_lab++;
    for (int k = 0; k < DRST_INFER_NTAU; k++) {
        unsigned b = (r->hb >> k) & 1u, c = (r->ha >> k) & 1u;
        a->hb[k] += b;
        a->in_hb[k] += b;
        a->ha[k] += c;
        a->in_ha[k] += c;
    }
    sk_add_bucket(&a->eb, r->kb, 1);
    sk_add_bucket(&a->ea, r->ka, 1);
}

static drst_err_t process(drst_infer_t *c, const drst_stream_batch_t *b, drst_eos_t *eos,
                          int use_eos, char *err, size_t errlen)
{
    char why[DRST_ERRLEN];
    const drst_serving_t *sv;
    size_t w, na, n = 0;
    int ident;
    double t_recv = mono(), t_done, now_wall;
    drst_err_t rc = DRST_OK;

    for (size_t base = 0; base < b->n; base += c->cap) {
        size_t end = base + c->cap < b->n ? base + c->cap : b->n;
        n = 0;
        sv = drst_model_slot_enter(c->slot);
        w = drst_schema_size(sv->schema);
        na = drst_model_nfeatures(sv->adaptive);
        if (sv->version != c->scr_version) {
            /* A new view: only now may buffers grow (allocation per swap). */
            if ((rc = fit(c, w, na)) != DRST_OK ||
                (rc = drst_model_scratch_reserve(c->scr, sv->baseline)) != DRST_OK ||
                (rc = drst_model_scratch_reserve(c->scr, sv->adaptive)) != DRST_OK) {
                drst_model_slot_exit(c->slot);
                return drst_seterr(err, errlen, DRST_ERR_NOMEM, "infer: out of memory");
            }
            c->scr_version = sv->version;
        }
        ident = 1;
        for (size_t j = 0; j < na; j++)
            if (sv->map_adapt[j] != j)
                ident = 0;
        for (size_t i = base; i < end; i++) {
            const drst_msg_t *m = &b->msgs[i];
            drst_record_t rec;
            double *row = c->feat + n * w;
            rec.features = row;
            if (m->partition < 0 || m->partition >= c->np) {
                c->malformed++;
                dead_letter(c, m, "partition out of range");
                continue;
            }
            rc = drst_record_decode(sv->schema, m->payload, m->len, &rec, why, sizeof(why));
            if (!claim(c, m)) {
                /* a replay: not counted again, but a replayed sentinel still
                 * ends the partition for its new owner */
                c->dup++;
                if (rc == DRST_OK && rec.eos && use_eos)
                    drst_eos_mark(eos, m->partition);
                continue;
            }
            if (rc != DRST_OK) {
                if (has_nonfinite_literal(m->payload, m->len)) {
                    c->nan++;
                    dead_letter(c, m, "non-finite feature value (NaN/Infinity literal)");
                } else {
                    c->malformed++;
                    dead_letter(c, m, why);
                }
                continue;
            }
            if (rec.eos) {
                c->eos++;
                if (use_eos)
                    drst_eos_mark(eos, m->partition);
                continue;
            }
            {
                int bad = 0;
                for (size_t j = 0; j < w; j++)
                    if (isinf(row[j]))
                        bad = 1;
                if (bad) {
                    c->nan++;
                    dead_letter(c, m, "non-finite feature value (Infinity)");
                    continue;
                }
            }
            c->missing += rec.n_missing;
            c->part[n] = m->partition;
            c->off[n] = m->offset;
            c->label[n] = rec.label;
            c->has[n] = (unsigned char)rec.has_label;
            c->send[n] = rec.send_ts;
            if (!ident)
                for (size_t j = 0; j < na; j++)
                    c->xa[n * na + j] = row[sv->map_adapt[j]];
            n++;
        }
        rc = DRST_OK;
        if (n > 0) {
            /* Baseline features are the first nb schema columns in order. */
            if ((rc = drst_model_predict_f32(sv->baseline, c->feat, n, w, c->yb, c->scr)) ==
                DRST_OK)
                rc = ident ? drst_model_predict_f32(sv->adaptive, c->feat, n, w, c->ya, c->scr)
                           : drst_model_predict_f32(sv->adaptive, c->xa, n, na, c->ya, c->scr);
        }
        if (sv->version != c->version) {
            c->version = sv->version;
            c->versions_seen++;
        }
        drst_model_slot_exit(c->slot);
        if (rc != DRST_OK)
            return drst_seterr(err, errlen, rc, "infer: prediction failed");
        if (n == 0)
            continue;
        c->batches++;
        t_done = mono();
        now_wall = wall();
        sk_add_n(&c->lat, t_done - t_recv, n);
        for (size_t i = 0; i < n; i++) {
            acc_t *ap = &c->acc[c->part[i]], *at = &c->acc[c->np];
            ap->n++;
            ap->in_n++;
            at->n++;
            at->in_n++;
            if (c->has[i]) {
                scored_t r = score_of(c->label[i], c->yb[i], c->ya[i]);
                score_add(ap, &r);
                score_add(at, &r);
            }
            if (isfinite(c->send[i]))
                sk_add(&c->rtt, now_wall - c->send[i]);
            if (c->trace)
                fprintf(c->trace, "%.6f,%d,%lld,%.17g,%.17g,%.17g,%llu,%.9f\n", now_wall,
                        (int)c->part[i], (long long)c->off[i], c->has[i] ? c->label[i] : NAN,
                        c->yb[i], c->ya[i], (unsigned long long)c->version, t_done - t_recv);
        }
        if (c->m_rec)
            drst_metric_add(c->m_rec, (double)n);
    }
    return DRST_OK;
}

drst_err_t drst_infer_run(drst_infer_t *c, drst_infer_end_t *why, char *err, size_t errlen)
{
    drst_eos_t eos = {0};
    drst_err_t rc;
    drst_infer_end_t end = DRST_INFER_END_STOP;
    int assigned = 0;

    if ((rc = drst_eos_init(&eos, c->np)) != DRST_OK)
        return drst_seterr(err, errlen, rc, "infer: out of memory");
    rc = drst_stream_subscribe(c->h, c->topic, c->group, c->member, err, errlen);
    if (rc != DRST_OK) {
        drst_eos_release(&eos);
        return rc;
    }
    drst_rcu_thread_online();
    c->t0 = c->last_flush = c->last_msg = mono();
    c->cpu0 = cpu();
    for (;;) {
        drst_stream_batch_t b;
        double now;
        if (atomic_load_explicit(&c->stop, memory_order_relaxed)) {
            end = DRST_INFER_END_STOP;
            break;
        }
        rc = drst_stream_poll(c->h, c->conf.poll_ms, c->cap, &b, err, errlen);
        if (rc == DRST_ERR_EOF) {
            rc = DRST_OK;
            end = DRST_INFER_END_EOS;
            break;
        }
        if (rc != DRST_OK)
            break;
        now = mono();
        if (b.ev == DRST_STREAM_EV_ASSIGN || b.ev == DRST_STREAM_EV_REVOKE) {
            assigned = 1;
            drst_eos_apply(&eos, &b);
        } else if (b.ev == DRST_STREAM_EV_MSGS && b.n > 0) {
            size_t nfin;
            const int32_t *fin;
            c->last_msg = now;
            /* Without group assignment (a JSON Lines file) the end is the
             * end of the file, not a sentinel. */
            if ((rc = process(c, &b, &eos, assigned, err, errlen)) != DRST_OK)
                break;
            fin = drst_eos_pending(&eos, &nfin);
            /* A failed commit (e.g. a rebalance in progress) is retried with
             * the next batch; replays it causes are skipped by claim(). */
            if (drst_stream_commit(c->h, fin, nfin, NULL, 0) == DRST_OK)
                drst_eos_committed(&eos);
            else
                c->commit_err++;
        }
        if (assigned && drst_eos_done(&eos) && eos.npending == 0) {
            end = DRST_INFER_END_EOS;
            break;
        }
        if (c->conf.idle_s > 0 && now - c->last_msg >= c->conf.idle_s) {
            end = DRST_INFER_END_IDLE;
            break;
        }
        if (now - c->last_flush >= c->conf.flush_s)
            flush_metrics(c, 0);
    }
    flush_metrics(c, 1);
    drst_rcu_thread_offline();
    drst_eos_release(&eos);
    if (why)
        *why = end;
    if (rc == DRST_OK && ((c->trace && ferror(c->trace)) || (c->mfile && ferror(c->mfile))))
        rc = drst_seterr(err, errlen, DRST_ERR_IO, "infer: cannot write the files under '%s'",
                         c->out_dir);
    return rc;
}
