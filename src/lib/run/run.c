/* `drst run`: every component of drst in one process (see include/drst/run.h
 * and docs/run.md for the contract and the evaluation clock).
 *
 * Data flow: producer -> topic of P partitions (in-process log or Kafka) ->
 * group "infer" (N consumers: static + adaptive prediction, trace files) and
 * group "monitor" (one member, records put back in sequence order, drift
 * monitor) -> retrainer thread -> store release -> release table read by the
 * consumers (hot swap).
 *
 * Hot swap: the served pair sits in the inference plane's RCU slot
 * (drst_model_slot_t). Releases are also kept in a fixed table (appended by
 * the retrainer alone, published with a release store of its count) that
 * says from which sequence number each serves and maps its features to the
 * stream schema. On the data clock the producer swaps release r into the
 * slot once every record before r's first one was predicted, then sends that
 * record, so which model serves which record does not depend on timing (the
 * consumers check it). Asynchronously (tps) the retrainer swaps at once. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error_int.h"
#include "drst/infer.h"
#include "drst/stream.h"
#include "drst/telemetry.h"
#include "run/run_int.h"

#define MAX_REL     1024
#define POLL_MAX    256
#define NTAU        3
#define LAT_BUCKETS 12

static const double TAUS[NTAU] = {0.05, 0.1, 0.2};

typedef struct rel {
    drst_model_t *model;
    long *bind; /* model feature j -> schema index */
    uint64_t effective;
    int version;
    atomic_int served;
    char key[DRST_STORE_KEY_MAX + 1];
} rel_t;

typedef struct stage {
    drst_table_t *t;
    long *map; /* schema feature -> column, -1 if absent */
    long label_col;
    size_t first, n;
} stage_t;

typedef struct cstat {
    uint64_t n, lab, hs[NTAU], ha[NTAU], mn;
    double ms, ma;
} cstat_t;

typedef struct run run_t;

typedef struct consumer {
    run_t *r;
    int id;
    drst_stream_t *h;
    cstat_t st;
    pthread_t th;
    int started;
} consumer_t;

struct run {
    drst_run_opts_t o;
    char *store_uri;
    long *exclude_idx;
    /* data */
    drst_table_t *train;
    stage_t *stages;
    size_t nstages;
    char **names; /* schema feature names (point into train->names) */
    size_t nf;
    drst_schema_t *schema;
    uint64_t total;
    long target_col;
    /* components */
    drst_store_t *store;
    drst_log_t *log;
    drst_dlq_t *dlq;
    drst_metrics_t *met;
    drst_http_t *http;
    drst_probe_t *probe;
    drst_monitor_t *mon;
    drst_stream_t *hmon; /* the monitor's handle, handed to its thread */
    const char *topic;
    char topic_buf[96];
    char group_infer[96], group_mon[96];
    /* releases: the table (immutable entries, by sequence number) and the
     * served pair behind the inference plane's RCU slot */
    rel_t rel[MAX_REL];
    atomic_size_t nrel;
    rel_t base;             /* the static (offline) model and its bind */
    drst_knn_memory_t *mem; /* online memory (monitor writes, consumers read); NULL: off */
    int mem_full;           /* monitor only */
    drst_model_slot_t *slot;
    atomic_size_t swapped; /* releases swapped into the slot (= its version) */
    /* gate and retrain hand-off (mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t monitor_done, hold_from, gate_k;
    uint64_t busy_until; /* data clock: a retrain is in flight for records < busy_until */
    int retraining, job_ready, producer_done, monitor_exit;
    run_job_t job;
    atomic_int quit;
    drst_err_t rc;
    char err[DRST_ERRLEN];
    /* files */
    FILE *events, *drift;
    pthread_mutex_t ev_mu;
    double t_start;
    /* counters */
    atomic_uint_fast64_t produced, inferred, monitored, errors, lab, hs[NTAU], ha[NTAU];
    atomic_uint_fast64_t triggers, suppressed, retrains, retrain_fail, swaps, rejected_gate;
    atomic_uint_fast64_t *part_prod, *part_cons;
    atomic_int *owned; /* per group member (consumers 0..N-1, monitor N): partitions owned, -1
                          before its first assignment */
    _Atomic double drift_score, last_infer_t;
    atomic_int cur_version;
    double retrain_s;
    long lag_min, lag_max;
    /* metrics series */
    drst_metric_t *m_prod, *m_inf, *m_mon, *m_err, *m_dlq, *m_acc[2][NTAU], *m_drift, *m_ver,
        *m_swaps, *m_trig, *m_retr, *m_rdur, *m_lat, **m_depth, *m_lag_inf, *m_lag_mon,
        *m_retraining;
};

/* ------------------------------------------------------------------ helpers */

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Record the first failure and stop every thread. */
static void fail(run_t *r, drst_err_t rc, const char *msg)
{
    pthread_mutex_lock(&r->mu);
    if (r->rc == DRST_OK) {
        r->rc = rc ? rc : DRST_ERR_STATE;
        snprintf(r->err, sizeof(r->err), "%s", msg);
    }
    atomic_store(&r->quit, 1);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static int stopping(run_t *r)
{
    if (r->o.stop && *r->o.stop)
        atomic_store(&r->quit, 1);
    return atomic_load(&r->quit);
}

static void event(run_t *r, uint64_t records, const char *kind, int version, const char *detail)
{
    pthread_mutex_lock(&r->ev_mu);
    if (r->events) {
        fprintf(r->events, "%.6f,%llu,%s,%d,\"", wall(), (unsigned long long)records, kind,
                version);
        for (const char *p = detail ? detail : ""; *p; p++) {
            if (*p == '"')
                fputc('"', r->events);
            fputc(*p == '\n' ? ' ' : *p, r->events);
        }
        fputs("\"\n", r->events);
        fflush(r->events);
    }
    pthread_mutex_unlock(&r->ev_mu);
}

static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;
    if (!list)
        return 0;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, name, n) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int unnamed(const char *name)
{
    return !*name || !strncmp(name, "Unnamed:", 8);
}

static int mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

static FILE *open_out(run_t *r, const char *name, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", r->o.out_dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", path);
    return f;
}

drst_err_t drst_run_stage_parse(const char *arg, drst_run_stage_t *st, char **storage, char *err,
                                size_t errlen)
{
    const char *c = arg ? strrchr(arg, ':') : NULL;
    *storage = NULL;
    memset(st, 0, sizeof(*st));
    st->head = st->tail = -1;
    if (!arg || !*arg)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "empty stage");
    if (c && (!strncmp(c + 1, "head=", 5) || !strncmp(c + 1, "tail=", 5))) {
        char *end;
        errno = 0;
        long n = strtol(c + 6, &end, 10);
        if (c[6] == 0 || *end || n < 0 || errno || c == arg)
            return drst_seterr(err, errlen, DRST_ERR_INVAL,
                               "'%s': expected FILE, FILE:head=N or FILE:tail=N (N >= 0)", arg);
        if (c[1] == 'h')
            st->head = n;
        else
            st->tail = n;
        *storage = strndup(arg, (size_t)(c - arg));
    } else {
        *storage = strdup(arg);
    }
    if (!*storage)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    st->path = *storage;
    return DRST_OK;
}

void drst_run_opts_init(drst_run_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->partitions = 3;
    o->consumers = 3;
    o->data_rate = 1;
    o->seed = 42;
    o->family = DRST_MODEL_GBDT;
    o->adaptive_family = DRST_MODEL_KNN;
    o->online = 65536;
    o->target = "output_rate";
    o->exclude = "input_rate,latency";
    o->window = 100;
    o->stride = 25;
    o->progress_s = 0.5;
}

/* ------------------------------------------------------------------ releases */

/* bind[j] = schema index of model feature j (a new array, caller frees). */
static drst_err_t bind_model(run_t *r, const drst_model_t *m, long **out, char *err, size_t errlen)
{
    size_t k = drst_model_nfeatures(m);
    long *b = malloc((k ? k : 1) * sizeof(long));
    if (!b)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < k; j++) {
        const char *fname = drst_model_feature(m, j);
        b[j] = drst_schema_index(r->schema, fname, strlen(fname));
        if (b[j] < 0) {
            free(b);
            return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                               "model feature '%s' is not in the stream's schema", fname);
        }
    }
    *out = b;
    return DRST_OK;
}

/* Add a release (retrainer thread or set-up only). */
static drst_err_t add_release(run_t *r, drst_model_t *m, uint64_t effective, const char *key,
                              char *err, size_t errlen)
{
    size_t n = atomic_load(&r->nrel);
    if (n == MAX_REL) {
        drst_model_free(m);
        return drst_seterr(err, errlen, DRST_ERR_TOOBIG, "more than %d releases in one run",
                           MAX_REL);
    }
    rel_t *x = &r->rel[n];
    drst_err_t rc = bind_model(r, m, &x->bind, err, errlen);
    if (rc != DRST_OK) {
        drst_model_free(m);
        return rc;
    }
    x->model = m;
    x->effective = effective;
    x->version = (int)n + 1;
    atomic_store(&x->served, 0);
    snprintf(x->key, sizeof(x->key), "%s", key ? key : "");
    atomic_store_explicit(&r->nrel, n + 1, memory_order_release);
    return DRST_OK;
}

/* The release serving sequence number `seq`. */
static rel_t *release_for(run_t *r, uint64_t seq)
{
    size_t n = atomic_load_explicit(&r->nrel, memory_order_acquire);
    while (n > 1 && r->rel[n - 1].effective > seq)
        n--;
    return &r->rel[n - 1];
}

/* A private copy of a release's model (the slot owns what it serves). */
static drst_model_t *model_copy(const drst_model_t *m, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_model_t *c = NULL;
    if (drst_model_save_buffer(m, &buf, &len, err, errlen) == DRST_OK)
        (void)!drst_model_load_buffer(buf, len, &c, err, errlen);
    free(buf);
    return c;
}

/* Hot swap of release `idx` into the slot (RCU: readers never wait; this
 * waits for a grace period). Runs on the producer (data clock) or the
 * retrainer (asynchronous) thread, never inside a read-side section. */
static void swap_in(run_t *r, size_t idx)
{
    char err[DRST_ERRLEN];
    uint64_t v = 0;
    drst_model_t *c = model_copy(r->rel[idx].model, err, sizeof(err));
    if (!c) {
        fail(r, DRST_ERR_NOMEM, err);
        return;
    }
    if (drst_model_slot_swap(r->slot, c, &v, err, sizeof(err)) != DRST_OK) {
        fail(r, DRST_ERR_STATE, err);
        return;
    }
    if (v != idx + 1) {
        fail(r, DRST_ERR_STATE, "hot swap: slot version does not match the release");
        return;
    }
    atomic_store(&r->swapped, idx + 1);
}

/* Wait until the consumers predicted `n` records (or the run stops). */
static void wait_inferred(run_t *r, uint64_t n)
{
    while (atomic_load(&r->inferred) < n && !stopping(r))
        sleep_s(0.0002);
}

static double predict_m(const drst_model_t *m, const rel_t *x, const double *feat, double *xm,
                        drst_model_scratch_t *s)
{
    size_t k = drst_model_nfeatures(m);
    for (size_t j = 0; j < k; j++)
        xm[j] = feat[x->bind[j]];
    return drst_model_predict1(m, xm, s);
}

/* ------------------------------------------------------------------ producer */

static int groups_settled(run_t *r);

static int gate_wait(run_t *r, uint64_t s)
{
    if (r->o.tps > 0)
        return stopping(r);
    pthread_mutex_lock(&r->mu);
    while (!stopping(r) && !(s < r->monitor_done + r->gate_k && s < r->hold_from)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return stopping(r);
}

static size_t enc_cap(run_t *r)
{
    size_t cap = 256 + r->nf * 64;
    for (size_t f = 0; f < r->nf; f++)
        cap += strlen(r->names[f]) * 6;
    return cap;
}

static drst_stream_t *open_handle(run_t *r, const char *id, char *err, size_t errlen)
{
    /* On the data clock the producer waits for the monitor record by record:
     * Kafka's default batching waits (linger, fetch wait) would dominate. */
    static const char *const kv[] = {"linger.ms=0", "fetch.wait.max.ms=5"};
    drst_stream_conf_t conf = {.log = r->log,
                               .bootstrap = r->o.bootstrap,
                               .client_id = id,
                               .from_beginning = 1,
                               .kv = r->o.bootstrap ? kv : NULL,
                               .nkv = r->o.bootstrap ? 2 : 0};
    return drst_stream_open(r->o.bootstrap ? &drst_transport_kafka : &drst_transport_inproc, &conf,
                            err, errlen);
}

static void *producer_main(void *arg)
{
    run_t *r = arg;
    char err[DRST_ERRLEN];
    drst_stream_t *h = open_handle(r, "producer", err, sizeof(err));
    double *feat = malloc(r->nf * sizeof(double));
    size_t cap = enc_cap(r);
    char *buf = malloc(cap);
    uint64_t seq = 0;
    int32_t P = r->o.partitions;
    if (r->probe && drst_probe_register_self(r->probe, "producer", NULL, 0) != DRST_OK) {
        /* the probe is an observer: a failure to register is not a run failure */
    }
    if (!h || !feat || !buf) {
        fail(r, h ? DRST_ERR_NOMEM : DRST_ERR_TRANSPORT, h ? "producer: out of memory" : err);
        goto done;
    }
    if (r->o.bootstrap) {
        double t0 = mono();
        while (!groups_settled(r) && !stopping(r) && mono() - t0 < 60)
            sleep_s(0.05);
        if (!groups_settled(r) && !stopping(r))
            fail(r, DRST_ERR_TIMEOUT, "kafka: the consumer groups did not settle within 60 s");
        else
            sleep_s(0.5); /* let a last rebalance in flight finish */
    }
    double start = mono();
    for (size_t s = 0; s < r->nstages && !stopping(r); s++) {
        const stage_t *st = &r->stages[s];
        for (size_t row = st->first; row < st->first + st->n; row++, seq++) {
            if (gate_wait(r, seq))
                break;
            /* data clock: a release serving from this record is swapped in
             * once every earlier record was predicted, before it is sent */
            for (size_t sw = atomic_load(&r->swapped);
                 r->o.tps <= 0 && sw < atomic_load_explicit(&r->nrel, memory_order_acquire) &&
                 r->rel[sw].effective <= seq && !stopping(r);
                 sw = atomic_load(&r->swapped)) {
                wait_inferred(r, seq);
                if (!stopping(r))
                    swap_in(r, sw);
            }
            if (r->o.tps > 0) {
                double due = start + (double)seq / r->o.tps;
                double now = mono();
                while (now < due && !stopping(r)) {
                    sleep_s(due - now > 0.1 ? 0.1 : due - now);
                    now = mono();
                }
                if (stopping(r))
                    break;
            }
            drst_record_t rec = {.seq = seq, .features = feat, .offset = -1};
            size_t len;
            for (size_t f = 0; f < r->nf; f++)
                feat[f] = st->map[f] >= 0 ? drst_table_at(st->t, row, (size_t)st->map[f]) : NAN;
            rec.send_ts = rec.ts = wall();
            rec.has_label =
                st->label_col >= 0 && !isnan(drst_table_at(st->t, row, (size_t)st->label_col));
            rec.label = rec.has_label ? drst_table_at(st->t, row, (size_t)st->label_col) : NAN;
            if (drst_record_encode_json(r->schema, &rec, buf, cap, &len) != DRST_OK) {
                fail(r, DRST_ERR_TOOBIG, "producer: record does not fit its buffer");
                break;
            }
            int32_t p = (int32_t)(seq % (uint64_t)P);
            drst_err_t rc =
                drst_stream_produce(h, r->topic, p, NULL, 0, buf, len, err, sizeof(err));
            if (rc != DRST_OK) {
                fail(r, rc, err);
                break;
            }
            atomic_fetch_add(&r->part_prod[p], 1);
            atomic_fetch_add(&r->produced, 1);
            drst_metric_inc(r->m_prod);
        }
    }
    /* Sentinels end every partition, also after a failure, so consumers stop. */
    for (int32_t p = 0; p < P; p++) {
        size_t len;
        if (drst_record_encode_eos(p, buf, cap, &len) != DRST_OK ||
            drst_stream_produce(h, r->topic, p, NULL, 0, buf, len, err, sizeof(err)) != DRST_OK) {
            fail(r, DRST_ERR_TRANSPORT, err);
            break;
        }
    }
    if (drst_stream_flush(h, 30000, err, sizeof(err)) != DRST_OK)
        fail(r, DRST_ERR_TRANSPORT, err);
done:
    pthread_mutex_lock(&r->mu);
    r->producer_done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    drst_stream_close(h);
    free(feat);
    free(buf);
    return NULL;
}

/* ------------------------------------------------------------------ consumers */

static void note_owned(run_t *r, int member, const drst_eos_t *e)
{
    int n = 0;
    for (int32_t p = 0; p < e->np; p++)
        n += e->owned[p] != 0;
    atomic_store(&r->owned[member], n);
}

/* Kafka: wait until both groups have settled (every member assigned, every
 * partition owned once per group), since the mock cluster refuses commits
 * while a group rebalances (docs/stream.md). */
static int groups_settled(run_t *r)
{
    int sum = 0;
    for (int i = 0; i <= r->o.consumers; i++) {
        int n = atomic_load(&r->owned[i]);
        if (n < 0)
            return 0;
        if (i < r->o.consumers)
            sum += n;
    }
    return sum == r->o.partitions && atomic_load(&r->owned[r->o.consumers]) == r->o.partitions;
}

static int owns_nothing(const drst_eos_t *e)
{
    for (int32_t p = 0; p < e->np; p++)
        if (e->owned[p])
            return 0;
    return 1;
}

static void *consumer_main(void *arg)
{
    consumer_t *c = arg;
    run_t *r = c->r;
    char err[DRST_ERRLEN], name[64], src[96];
    drst_eos_t eos = {0};
    double *feat = malloc(r->nf * sizeof(double));
    double *xm = malloc(r->nf * sizeof(double) + sizeof(double));
    drst_model_scratch_t *scr = drst_model_scratch_new(r->base.model, 1);
    FILE *tf = NULL;
    int have_eos = 0, cur_ver = 0;
    double idle_since = mono();
    if (r->probe)
        (void)!drst_probe_register_self(r->probe, "infer", NULL, 0);
    drst_rcu_thread_online();
    snprintf(name, sizeof(name), "trace_consumer-%d.csv", c->id);
    tf = open_out(r, name, err, sizeof(err));
    if (!feat || !xm || !scr || !tf) {
        fail(r, tf ? DRST_ERR_NOMEM : DRST_ERR_IO, tf ? "consumer: out of memory" : err);
        goto drain;
    }
    setvbuf(tf, NULL, _IOFBF, 1 << 16);
    fputs("ts,partition,offset,seq,truth,baseline,adaptive,version,latency_s\n", tf);
    if (drst_eos_init(&eos, r->o.partitions) != DRST_OK) {
        fail(r, DRST_ERR_NOMEM, "consumer: out of memory");
        goto drain;
    }
    have_eos = 1;
    while (!drst_eos_done(&eos)) {
        drst_stream_batch_t b;
        drst_err_t rc = drst_stream_poll(c->h, 100, POLL_MAX, &b, err, sizeof(err));
        if (rc != DRST_OK) {
            fail(r, rc, err);
            break;
        }
        drst_eos_apply(&eos, &b);
        if (b.ev == DRST_STREAM_EV_ASSIGN || b.ev == DRST_STREAM_EV_REVOKE)
            note_owned(r, c->id, &eos);
        if (b.ev != DRST_STREAM_EV_MSGS || b.n == 0) {
            int pdone;
            pthread_mutex_lock(&r->mu);
            pdone = r->producer_done;
            pthread_mutex_unlock(&r->mu);
            /* a member that owns nothing stops once the producer is done */
            if (pdone && owns_nothing(&eos) && mono() - idle_since > 0.5)
                break;
            if (pdone && stopping(r) && mono() - idle_since > 5)
                break;
            continue;
        }
        idle_since = mono();
        double recv = wall();
        for (size_t i = 0; i < b.n; i++) {
            const drst_msg_t *msg = &b.msgs[i];
            drst_record_t rec = {.features = feat};
            rc = drst_record_decode(r->schema, msg->payload, msg->len, &rec, err, sizeof(err));
            if (rc != DRST_OK) {
                snprintf(src, sizeof(src), "%s/%d/%lld", r->topic, (int)msg->partition,
                         (long long)msg->offset);
                atomic_fetch_add(&r->errors, 1);
                drst_metric_inc(r->m_err);
                if (drst_dlq_put(r->dlq, msg->payload, msg->len, src, err, NULL, 0) == DRST_OK)
                    drst_metric_inc(r->m_dlq);
                continue;
            }
            if (rec.eos) {
                drst_eos_mark(&eos, msg->partition);
                continue;
            }
            if (stopping(r))
                continue; /* drain without work after a failure */
            /* the served pair, from the inference plane's RCU slot; the bind
             * arrays of the release table map its features to our schema */
            const drst_serving_t *view = drst_model_slot_enter(r->slot);
            const rel_t *st = &r->base;
            rel_t *ad = &r->rel[view->version - 1];
            if (r->o.tps <= 0 && ad != release_for(r, rec.seq)) {
                drst_model_slot_exit(r->slot);
                fail(r, DRST_ERR_STATE, "hot swap: record served by the wrong release");
                continue;
            }
            if (ad->version != cur_ver) {
                if (drst_model_scratch_reserve(scr, view->adaptive) != DRST_OK) {
                    drst_model_slot_exit(r->slot);
                    fail(r, DRST_ERR_NOMEM, "consumer: out of memory");
                    continue;
                }
                cur_ver = ad->version;
            }
            double ys = predict_m(view->baseline, st, feat, xm, scr);
            double ya;
            if (r->mem && drst_model_family(view->adaptive) == DRST_MODEL_KNN) {
                /* on the data clock exactly the labels the gate guarantees
                 * (records before seq + 1 - K), so figures never depend on
                 * thread timing; asynchronously whatever has arrived */
                uint64_t before = r->o.tps > 0 || rec.seq + 1 < r->gate_k
                                      ? (r->o.tps > 0 ? rec.seq : 0)
                                      : rec.seq + 1 - r->gate_k;
                if (drst_model_knn_predict(view->adaptive, feat, ad->bind, r->mem, before, &ya,
                                           scr) != DRST_OK)
                    ya = NAN;
            } else {
                ya = predict_m(view->adaptive, ad, feat, xm, scr);
            }
            drst_model_slot_exit(r->slot);
            double now = wall();
            if (atomic_exchange(&ad->served, 1) == 0 && ad->version > 1) {
                char d[DRST_STORE_KEY_MAX + 64];
                atomic_fetch_add(&r->swaps, 1);
                drst_metric_inc(r->m_swaps);
                snprintf(d, sizeof(d), "%s serves from record %llu", ad->key,
                         (unsigned long long)(r->o.tps > 0 ? rec.seq : ad->effective));
                event(r, r->o.tps > 0 ? rec.seq : ad->effective, "swap", ad->version, d);
            }
            if (ad->version > atomic_load(&r->cur_version)) {
                atomic_store(&r->cur_version, ad->version);
                drst_metric_set(r->m_ver, ad->version);
            }
            fprintf(tf, "%.6f,%d,%lld,%llu,%.17g,%.17g,%.17g,%d,%.9f\n", now, (int)msg->partition,
                    (long long)msg->offset, (unsigned long long)rec.seq,
                    rec.has_label ? rec.label : NAN, ys, ya, ad->version, now - recv);
            c->st.n++;
            if (rec.has_label) {
                double t = rec.label, d = fabs(t) > DRST_METRICS_EPS ? fabs(t) : DRST_METRICS_EPS;
                double es = fabs(ys - t) / d, ea = fabs(ya - t) / d;
                c->st.lab++;
                atomic_fetch_add(&r->lab, 1);
                for (int k = 0; k < NTAU; k++) {
                    if (es <= TAUS[k]) {
                        c->st.hs[k]++;
                        atomic_fetch_add(&r->hs[k], 1);
                    }
                    if (ea <= TAUS[k]) {
                        c->st.ha[k]++;
                        atomic_fetch_add(&r->ha[k], 1);
                    }
                }
                if (t != 0 && isfinite(es) && isfinite(ea)) {
                    c->st.mn++;
                    c->st.ms += es;
                    c->st.ma += ea;
                }
            }
            atomic_fetch_add(&r->part_cons[msg->partition], 1);
            atomic_fetch_add(&r->inferred, 1);
            atomic_store(&r->last_infer_t, mono());
            drst_metric_inc(r->m_inf);
            drst_metric_observe(r->m_lat, now - recv);
        }
        size_t nfin;
        const int32_t *fin = drst_eos_pending(&eos, &nfin);
        rc = drst_stream_commit(c->h, fin, nfin, err, sizeof(err));
        if (rc != DRST_OK) {
            fail(r, rc, err);
            break;
        }
        drst_eos_committed(&eos);
    }
    goto out;
drain:
    /* Could not start: keep the group moving so the producer is never blocked. */
    while (1) {
        drst_stream_batch_t b;
        int pdone;
        if (drst_stream_poll(c->h, 100, POLL_MAX, &b, err, sizeof(err)) != DRST_OK)
            break;
        (void)!drst_stream_commit(c->h, NULL, 0, NULL, 0);
        pthread_mutex_lock(&r->mu);
        pdone = r->producer_done;
        pthread_mutex_unlock(&r->mu);
        if (pdone && b.ev == DRST_STREAM_EV_NONE)
            break;
    }
out:
    drst_rcu_thread_offline();
    if (have_eos)
        drst_eos_release(&eos);
    if (tf && fclose(tf) != 0)
        fail(r, DRST_ERR_IO, "consumer: cannot write its trace file");
    drst_model_scratch_free(scr);
    free(feat);
    free(xm);
    return NULL;
}

/* ------------------------------------------------------------------ monitor */

typedef struct ring {
    size_t cap;
    double *x, *y;
    uint64_t *seq; /* UINT64_MAX: empty */
} ring_t;

static void monitor_process(run_t *r, uint64_t seq, const double *x, double y, size_t *applied)
{
    char err[DRST_ERRLEN];
    drst_monitor_event_t ev;
    /* a release serving from this record: the monitor watches it from here */
    size_t n = atomic_load_explicit(&r->nrel, memory_order_acquire);
    while (*applied < n && r->rel[*applied].effective <= seq) {
        const rel_t *x2 = &r->rel[*applied];
        if (drst_monitor_set_model(r->mon, x2->model, err, sizeof(err)) == DRST_OK && *applied > 0)
            drst_monitor_rebaseline(r->mon, x2->key);
        (*applied)++;
    }
    drst_err_t rc = drst_monitor_feed(r->mon, x, y, NAN, &ev, err, sizeof(err));
    if (rc != DRST_OK) {
        fail(r, rc, err);
        return;
    }
    atomic_fetch_add(&r->monitored, 1);
    drst_metric_inc(r->m_mon);
    if (ev.evaluated) {
        atomic_store(&r->drift_score, ev.score);
        drst_metric_set(r->m_drift, ev.score);
        if (r->drift) {
            fprintf(r->drift, "%llu,%.9g,%c,%d\n", (unsigned long long)(seq + 1), ev.score,
                    ev.tier ? "-ABC"[ev.tier] : '-', ev.triggered);
            fflush(r->drift);
        }
    } else if (ev.triggered && r->drift) {
        /* an error-detector trigger between two feature evaluations */
        fprintf(r->drift, "%llu,%.9g,%c,1\n", (unsigned long long)(seq + 1), ev.score,
                ev.tier ? "-ABC"[ev.tier] : '-');
        fflush(r->drift);
    }
    if (r->mem && isfinite(y) && !r->mem_full) {
        drst_err_t mrc = drst_knn_memory_add(r->mem, seq, x, y);
        if (mrc == DRST_ERR_TOOBIG) {
            char d[128];
            r->mem_full = 1;
            snprintf(d, sizeof(d), "online memory full (%zu records): releases carry on alone",
                     r->o.online);
            event(r, seq + 1, "online_full", atomic_load(&r->cur_version), d);
        } else if (mrc != DRST_OK) {
            fail(r, mrc, "online memory: record out of order");
            return;
        }
    }
    pthread_mutex_lock(&r->mu);
    if (ev.triggered) {
        char d[160];
        snprintf(d, sizeof(d), "tier %c from %s, score %.4f", "-ABC"[ev.tier],
                 drst_trigger_source_name(ev.source), ev.score);
        /* On the data clock a retrain is in flight until the record its release
         * serves from, whatever the machine's speed; asynchronously, until done. */
        int busy = r->o.tps > 0 ? r->retraining : seq < r->busy_until;
        const char *why = busy ? "a retrain is in flight" : NULL;
        if (!busy && r->o.tps <= 0 && seq + r->gate_k >= r->total)
            why = "the stream ends before a release could serve";
        if (why) {
            atomic_fetch_add(&r->suppressed, 1);
            pthread_mutex_unlock(&r->mu);
            event(r, seq + 1, "trigger_skipped", atomic_load(&r->cur_version), why);
            pthread_mutex_lock(&r->mu);
        } else {
            drst_table_t *w = NULL, *rp = NULL;
            if (drst_monitor_window_table(r->mon, &w, err, sizeof(err)) != DRST_OK ||
                drst_monitor_replay_table(r->mon, &rp, err, sizeof(err)) != DRST_OK) {
                drst_table_free(w);
                pthread_mutex_unlock(&r->mu);
                fail(r, DRST_ERR_NOMEM, err);
                return;
            }
            r->job = (run_job_t){.window = w,
                                 .replay = rp,
                                 .tier = ev.tier,
                                 .source = ev.source,
                                 .at = seq,
                                 .score = ev.score};
            r->job_ready = 1;
            r->retraining = 1;
            if (r->o.tps <= 0) {
                r->hold_from = seq + r->gate_k;
                r->busy_until = UINT64_MAX;
            }
            atomic_fetch_add(&r->triggers, 1);
            drst_metric_inc(r->m_trig);
            drst_metric_set(r->m_retraining, 1);
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
            event(r, seq + 1, "trigger", atomic_load(&r->cur_version), d);
            pthread_mutex_lock(&r->mu);
        }
    }
    r->monitor_done = seq + 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void *monitor_main(void *arg)
{
    run_t *r = arg;
    char err[DRST_ERRLEN];
    drst_eos_t eos = {0};
    ring_t g = {0};
    uint64_t next = 0;
    size_t applied = 0;
    drst_stream_t *h = NULL;
    double *feat = malloc(r->nf * sizeof(double));
    if (r->probe)
        (void)!drst_probe_register_self(r->probe, "monitor", NULL, 0);
    h = r->hmon;
    r->hmon = NULL;
    g.cap = r->o.tps > 0 ? 8192 : (size_t)r->gate_k + (size_t)r->o.partitions * 4 + 64;
    g.x = malloc(g.cap * r->nf * sizeof(double));
    g.y = malloc(g.cap * sizeof(double));
    g.seq = malloc(g.cap * sizeof(uint64_t));
    if (!feat || !g.x || !g.y || !g.seq || drst_eos_init(&eos, r->o.partitions) != DRST_OK) {
        fail(r, DRST_ERR_NOMEM, "monitor: out of memory");
        goto out;
    }
    for (size_t i = 0; i < g.cap; i++)
        g.seq[i] = UINT64_MAX;
    while (!drst_eos_done(&eos)) {
        drst_stream_batch_t b;
        drst_err_t rc = drst_stream_poll(h, 100, POLL_MAX, &b, err, sizeof(err));
        if (rc != DRST_OK) {
            fail(r, rc, err);
            break;
        }
        drst_eos_apply(&eos, &b);
        if (b.ev == DRST_STREAM_EV_ASSIGN || b.ev == DRST_STREAM_EV_REVOKE)
            note_owned(r, r->o.consumers, &eos);
        for (size_t i = 0; b.ev == DRST_STREAM_EV_MSGS && i < b.n; i++) {
            drst_record_t rec = {.features = feat};
            rc = drst_record_decode(r->schema, b.msgs[i].payload, b.msgs[i].len, &rec, err,
                                    sizeof(err));
            if (rc != DRST_OK) {
                /* consumers count it and dead-letter it; the monitor cannot go on in order */
                fail(r, rc, err);
                continue;
            }
            if (rec.eos) {
                drst_eos_mark(&eos, b.msgs[i].partition);
                continue;
            }
            if (stopping(r) || rec.seq < next)
                continue;
            while (rec.seq >= next + g.cap) {
                /* only reachable when paced records outrun the monitor by > cap:
                 * give up on the oldest missing record rather than block */
                if (g.seq[next % g.cap] == next)
                    monitor_process(r, next, g.x + (next % g.cap) * r->nf, g.y[next % g.cap],
                                    &applied);
                g.seq[next % g.cap] = UINT64_MAX;
                next++;
            }
            size_t k = rec.seq % g.cap;
            memcpy(g.x + k * r->nf, feat, r->nf * sizeof(double));
            g.y[k] = rec.has_label ? rec.label : NAN;
            g.seq[k] = rec.seq;
        }
        while (!stopping(r) && g.seq[next % g.cap] == next) {
            size_t k = next % g.cap;
            monitor_process(r, next, g.x + k * r->nf, g.y[k], &applied);
            g.seq[k] = UINT64_MAX;
            next++;
        }
        size_t nfin;
        const int32_t *fin = drst_eos_pending(&eos, &nfin);
        if ((rc = drst_stream_commit(h, fin, nfin, err, sizeof(err))) != DRST_OK) {
            fail(r, rc, err);
            break;
        }
        drst_eos_committed(&eos);
    }
out:
    pthread_mutex_lock(&r->mu);
    r->monitor_exit = 1;
    r->monitor_done = UINT64_MAX / 2; /* never hold the producer on a monitor that ended */
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    drst_eos_release(&eos);
    drst_stream_close(h);
    free(feat);
    free(g.x);
    free(g.y);
    free(g.seq);
    return NULL;
}

/* ------------------------------------------------------------------ retrainer */

/* Without --families, a run with the online memory searches the adaptive
 * family only: a release of another family could not use the memory. */
static const char *families_of(const run_t *r)
{
    if (r->o.families || !r->mem)
        return r->o.families;
    return drst_model_family_name(r->o.adaptive_family);
}

static void *retrainer_main(void *arg)
{
    run_t *r = arg;
    char err[DRST_ERRLEN];
    if (r->probe)
        (void)!drst_probe_register_self(r->probe, "retrainer", NULL, 0);
    while (1) {
        run_job_t job;
        pthread_mutex_lock(&r->mu);
        while (!r->job_ready && !r->monitor_exit && !atomic_load(&r->quit))
            pthread_cond_wait(&r->cv, &r->mu);
        if (!r->job_ready) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        job = r->job;
        r->job_ready = 0;
        pthread_mutex_unlock(&r->mu);

        size_t n = atomic_load(&r->nrel);
        const drst_model_t *cur = r->rel[n - 1].model;
        run_retrain_out_t res;
        char d[1024];
        event(r, job.at + 1, "retrain_start", (int)n, "");
        drst_err_t rc = run_retrain(&job, r->train, cur, r->o.target, families_of(r), r->o.seed,
                                    &res, err, sizeof(err));
        uint64_t eff = UINT64_MAX;
        long k_used = r->o.retrain_lag > 0 ? r->o.retrain_lag : 1;
        if (rc != DRST_OK) {
            atomic_fetch_add(&r->retrain_fail, 1);
            snprintf(d, sizeof(d), "failed: %s", err);
            event(r, job.at + 1, "retrain_failed", (int)n, d);
        } else {
            long k =
                r->o.retrain_lag > 0 ? r->o.retrain_lag : (long)ceil(res.wall_s * r->o.data_rate);
            drst_release_t rl;
            memset(&rl, 0, sizeof(rl));
            if (k < 1)
                k = 1;
            k_used = k;
            atomic_fetch_add(&r->retrains, 1);
            r->retrain_s += res.wall_s;
            drst_metric_observe(r->m_rdur, res.wall_s);
            drst_metric_inc(r->m_retr);
            snprintf(d, sizeof(d), "%.2f s, %s", res.wall_s, res.desc);
            event(r, job.at + 1, "retrain_done", (int)n + 1, d);
            rc = drst_store_publish_model(r->store, res.model,
                                          res.gate_passed ? DRST_PUBLISH_LATEST : DRST_PUBLISH_NONE,
                                          &rl, err, sizeof(err));
            if (rc != DRST_OK) {
                drst_model_free(res.model);
                fail(r, rc, err);
            } else if (!res.gate_passed) {
                atomic_fetch_add(&r->rejected_gate, 1);
                drst_model_free(res.model);
                event(r, job.at + 1, "gate_rejected", (int)n, rl.model_key);
            } else {
                eff = r->o.tps > 0 ? job.at + 1 : job.at + (uint64_t)k;
                if (r->lag_min < 0 || k < r->lag_min)
                    r->lag_min = k;
                if (k > r->lag_max)
                    r->lag_max = k;
                event(r, job.at + 1, "publish", (int)n + 1, rl.model_key);
                rc = add_release(r, res.model, eff, rl.model_key, err, sizeof(err));
                if (rc != DRST_OK) {
                    fail(r, rc, err);
                } else if (r->o.tps > 0) {
                    /* asynchronous: swap now, but never before the trigger's
                     * record was predicted (prequential) */
                    wait_inferred(r, job.at + 1);
                    if (!stopping(r))
                        swap_in(r, n);
                }
            }
        }
        drst_table_free(job.window);
        drst_table_free(job.replay);
        pthread_mutex_lock(&r->mu);
        r->retraining = 0;
        r->hold_from = UINT64_MAX;
        r->busy_until = job.at + (uint64_t)k_used;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        drst_metric_set(r->m_retraining, 0);
    }
    return NULL;
}

/* ------------------------------------------------------------------ set-up */

static drst_err_t load_inputs(run_t *r, drst_diag_t *diag, char *err, size_t errlen)
{
    drst_err_t rc;
    if ((rc = drst_table_read_csv(r->o.train_path, NULL, &r->train, diag, err, errlen)) != DRST_OK)
        return rc;
    r->target_col = drst_table_col(r->train, r->o.target);
    if (r->target_col < 0)
        return drst_seterr(err, errlen, DRST_ERR_SCHEMA, "'%s': no target column '%s'",
                           r->o.train_path, r->o.target);
    r->names = calloc(r->train->ncols, sizeof(char *));
    if (!r->names)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    for (size_t c = 0; c < r->train->ncols; c++) {
        const char *n = r->train->names[c];
        if (unnamed(n) || !strcmp(n, r->o.target) || in_list(r->o.exclude, n))
            continue;
        r->names[r->nf++] = r->train->names[c];
    }
    if (r->nf == 0)
        return drst_seterr(err, errlen, DRST_ERR_SCHEMA, "'%s': no feature column",
                           r->o.train_path);
    r->schema = drst_schema_new((const char *const *)r->names, r->nf, NULL, err, errlen);
    if (!r->schema)
        return DRST_ERR_NOMEM;
    r->stages = calloc(r->o.nstages, sizeof(stage_t));
    if (!r->stages)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    for (size_t s = 0; s < r->o.nstages; s++) {
        stage_t *st = &r->stages[s];
        const drst_run_stage_t *in = &r->o.stages[s];
        r->nstages = s + 1;
        if ((rc = drst_table_read_csv(in->path, NULL, &st->t, diag, err, errlen)) != DRST_OK)
            return rc;
        st->map = malloc(r->nf * sizeof(long));
        if (!st->map)
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        size_t found = 0;
        for (size_t f = 0; f < r->nf; f++) {
            st->map[f] = drst_table_col(st->t, r->names[f]);
            found += st->map[f] >= 0;
        }
        if (found == 0)
            return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                               "'%s': none of the %zu features of '%s'", in->path, r->nf,
                               r->o.train_path);
        if (found < r->nf && diag)
            drst_diag_warn(diag, in->path, 0,
                           "lacks %zu of the %zu features; they are filled with training means",
                           r->nf - found, r->nf);
        st->label_col = drst_table_col(st->t, r->o.target);
        if (st->label_col < 0 && diag)
            drst_diag_warn(diag, in->path, 0, "no '%s' column: records are not scored",
                           r->o.target);
        size_t n = st->t->nrows, first = 0;
        if (in->head >= 0 && (size_t)in->head < n)
            n = (size_t)in->head;
        if (in->tail >= 0 && (size_t)in->tail < n) {
            first = n - (size_t)in->tail;
            n = (size_t)in->tail;
        }
        st->first = first;
        st->n = n;
        r->total += n;
    }
    if (r->total == 0)
        return drst_seterr(err, errlen, DRST_ERR_EMPTY, "the stream stages hold no record");
    return DRST_OK;
}

static drst_err_t make_metrics(run_t *r, char *err, size_t errlen)
{
    drst_metrics_t *m = r->met;
    static const char *const tau_s[NTAU] = {"0.05", "0.1", "0.2"};
    const char *lp[] = {"component", "producer", NULL}, *li[] = {"component", "infer", NULL},
               *lm[] = {"component", "monitor", NULL};
#define GET(dst, type, name, help, labels, b, nb)                                                  \
    do {                                                                                           \
        if (!((dst) = drst_metrics_get(m, type, name, help, labels, b, nb, err, errlen)))          \
            return DRST_ERR_INVAL;                                                                 \
    } while (0)
    GET(r->m_prod, DRST_METRIC_COUNTER, "drst_records_total", "records handled per component", lp,
        NULL, 0);
    GET(r->m_inf, DRST_METRIC_COUNTER, "drst_records_total", "records handled per component", li,
        NULL, 0);
    GET(r->m_mon, DRST_METRIC_COUNTER, "drst_records_total", "records handled per component", lm,
        NULL, 0);
    GET(r->m_err, DRST_METRIC_COUNTER, "drst_errors_total", "records that could not be used", NULL,
        NULL, 0);
    GET(r->m_dlq, DRST_METRIC_COUNTER, "drst_dead_letters_total", "records sent to dead letters",
        NULL, NULL, 0);
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < NTAU; k++) {
            const char *l[] = {"path", p ? "adaptive" : "static", "tau", tau_s[k], NULL};
            GET(r->m_acc[p][k], DRST_METRIC_GAUGE, "drst_accuracy",
                "prequential accuracy@tau over the records inferred so far", l, NULL, 0);
        }
    GET(r->m_drift, DRST_METRIC_GAUGE, "drst_drift_score",
        "drift score of the last monitor evaluation (mean JSD, bits)", NULL, NULL, 0);
    GET(r->m_ver, DRST_METRIC_GAUGE, "drst_model_version", "adaptive model version serving", NULL,
        NULL, 0);
    GET(r->m_swaps, DRST_METRIC_COUNTER, "drst_swaps_total", "adaptive model hot swaps", NULL, NULL,
        0);
    GET(r->m_trig, DRST_METRIC_COUNTER, "drst_triggers_total",
        "drift triggers that started a "
        "retrain",
        NULL, NULL, 0);
    GET(r->m_retr, DRST_METRIC_COUNTER, "drst_retrains_total", "retrains finished", NULL, NULL, 0);
    GET(r->m_retraining, DRST_METRIC_GAUGE, "drst_retrain_running", "1 while a retrain runs", NULL,
        NULL, 0);
    {
        static const double rb[] = {0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128};
        GET(r->m_rdur, DRST_METRIC_HISTOGRAM, "drst_retrain_duration_seconds",
            "wall time of each retrain", NULL, rb, sizeof(rb) / sizeof(rb[0]));
    }
    GET(r->m_lat, DRST_METRIC_HISTOGRAM, "drst_inference_latency_seconds",
        "receive to prediction time per record", NULL, NULL, 0);
    r->m_depth = calloc((size_t)r->o.partitions, sizeof(*r->m_depth));
    if (!r->m_depth)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    for (int p = 0; p < r->o.partitions; p++) {
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", p);
        const char *l[] = {"partition", ps, NULL};
        GET(r->m_depth[p], DRST_METRIC_GAUGE, "drst_queue_depth",
            "records produced to a partition and not yet inferred", l, NULL, 0);
    }
    {
        const char *l1[] = {"group", "infer", NULL}, *l2[] = {"group", "monitor", NULL};
        GET(r->m_lag_inf, DRST_METRIC_GAUGE, "drst_consumer_lag",
            "records produced and not yet processed by the group", l1, NULL, 0);
        GET(r->m_lag_mon, DRST_METRIC_GAUGE, "drst_consumer_lag",
            "records produced and not yet processed by the group", l2, NULL, 0);
    }
#undef GET
    drst_metric_set(r->m_ver, 1);
    return DRST_OK;
}

static void update_gauges(run_t *r)
{
    uint64_t lab = atomic_load(&r->lab), prod = atomic_load(&r->produced);
    for (int k = 0; k < NTAU && lab; k++) {
        drst_metric_set(r->m_acc[0][k], (double)atomic_load(&r->hs[k]) / (double)lab);
        drst_metric_set(r->m_acc[1][k], (double)atomic_load(&r->ha[k]) / (double)lab);
    }
    for (int p = 0; p < r->o.partitions; p++)
        drst_metric_set(r->m_depth[p],
                        (double)(atomic_load(&r->part_prod[p]) - atomic_load(&r->part_cons[p])));
    drst_metric_set(r->m_lag_inf, (double)(prod - atomic_load(&r->inferred)));
    drst_metric_set(r->m_lag_mon, (double)(prod - atomic_load(&r->monitored)));
}

static int health(void *opaque, char *msg, size_t len)
{
    run_t *r = opaque;
    if (atomic_load(&r->quit)) {
        snprintf(msg, len, "stopping");
        return 1;
    }
    snprintf(msg, len, "ok");
    return 0;
}

static void progress(run_t *r, drst_run_progress_t *p)
{
    uint64_t lab = atomic_load(&r->lab);
    memset(p, 0, sizeof(*p));
    p->elapsed_s = mono() - r->t_start;
    p->total = r->total;
    p->produced = atomic_load(&r->produced);
    p->inferred = atomic_load(&r->inferred);
    p->monitored = atomic_load(&r->monitored);
    p->rate = p->elapsed_s > 0 ? (double)p->inferred / p->elapsed_s : 0;
    p->acc_static = lab ? (double)atomic_load(&r->hs[2]) / (double)lab : NAN;
    p->acc_adaptive = lab ? (double)atomic_load(&r->ha[2]) / (double)lab : NAN;
    p->drift_score = atomic_load(&r->drift_score);
    p->version = atomic_load(&r->cur_version);
    p->triggers = atomic_load(&r->triggers);
    p->swaps = atomic_load(&r->swaps);
    pthread_mutex_lock(&r->mu);
    p->retraining = r->retraining;
    pthread_mutex_unlock(&r->mu);
}

static drst_err_t write_run_json(run_t *r, char *err, size_t errlen)
{
    const drst_detector_config_t *dc = drst_detector_config(drst_monitor_detector(r->mon));
    FILE *f = open_out(r, "run.json", err, errlen);
    if (!f)
        return DRST_ERR_IO;
    fprintf(f,
            "{\"thresholds\": {\"A\": %.9g, \"B\": %.9g, \"C\": %.9g}, \"window\": %zu, "
            "\"stride\": %zu, \"partitions\": %d, \"consumers\": %d, \"records\": %llu, "
            "\"retrain_lag\": %ld, \"tps\": %.9g, \"seed\": %llu}\n",
            dc->thresholds[0], dc->thresholds[1], dc->thresholds[2], dc->window, dc->stride,
            r->o.partitions, r->o.consumers, (unsigned long long)r->total, r->o.retrain_lag,
            r->o.tps, (unsigned long long)r->o.seed);
    return fclose(f) ? drst_seterr(err, errlen, DRST_ERR_IO, "cannot write run.json") : DRST_OK;
}

drst_err_t drst_run_summary_json(const drst_run_summary_t *s, char **json, char *err, size_t errlen)
{
    json_t *o = json_object();
    static const char *const ks[NTAU] = {"acc@0.05", "acc@0.1", "acc@0.2"};
    char k[64];
    if (!o)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    json_object_set_new(o, "records", json_integer((json_int_t)s->records));
    json_object_set_new(o, "labelled", json_integer((json_int_t)s->labelled));
    for (int i = 0; i < NTAU; i++) {
        snprintf(k, sizeof(k), "static.%s", ks[i]);
        json_object_set_new(o, k, json_real(s->static_acc[i]));
    }
    for (int i = 0; i < NTAU; i++) {
        snprintf(k, sizeof(k), "adaptive.%s", ks[i]);
        json_object_set_new(o, k, json_real(s->adaptive_acc[i]));
    }
    json_object_set_new(o, "static.mape",
                        isfinite(s->static_mape) ? json_real(s->static_mape) : json_null());
    json_object_set_new(o, "adaptive.mape",
                        isfinite(s->adaptive_mape) ? json_real(s->adaptive_mape) : json_null());
    json_object_set_new(o, "triggers", json_integer((json_int_t)s->triggers));
    json_object_set_new(o, "triggers_skipped", json_integer((json_int_t)s->suppressed));
    json_object_set_new(o, "retrains", json_integer((json_int_t)s->retrains));
    json_object_set_new(o, "retrain_failures", json_integer((json_int_t)s->retrain_failures));
    json_object_set_new(o, "gate_rejected", json_integer((json_int_t)s->rejected_gate));
    json_object_set_new(o, "swaps", json_integer((json_int_t)s->swaps));
    json_object_set_new(o, "final_version", json_integer(s->final_version));
    json_object_set_new(o, "online_records", json_integer((json_int_t)s->online_records));
    json_object_set_new(o, "retrain_s", json_real(s->retrain_s_total));
    json_object_set_new(o, "retrain_lag_min", json_integer(s->lag_min));
    json_object_set_new(o, "retrain_lag_max", json_integer(s->lag_max));
    json_object_set_new(o, "errors", json_integer((json_int_t)s->errors));
    json_object_set_new(o, "dead_letters", json_integer((json_int_t)s->dead_letters));
    json_object_set_new(o, "train_s", json_real(s->train_s));
    json_object_set_new(o, "wall_s", json_real(s->wall_s));
    json_object_set_new(o, "records_per_s", json_real(s->records_per_s));
    json_object_set_new(o, "clock", json_string(s->async ? "wall" : "data"));
    json_object_set_new(o, "report_images", json_integer((json_int_t)s->report_images));
    if (s->report_error[0])
        json_object_set_new(o, "report_error", json_string(s->report_error));
    *json = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (!*json)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    return DRST_OK;
}

static void free_run(run_t *r)
{
    size_t n = atomic_load(&r->nrel);
    for (size_t i = 0; i < n; i++) {
        drst_model_free(r->rel[i].model);
        free(r->rel[i].bind);
    }
    drst_model_free(r->base.model);
    free(r->base.bind);
    drst_knn_memory_free(r->mem);
    drst_monitor_free(r->mon);
    drst_model_slot_free(r->slot);
    drst_http_stop(r->http);
    drst_probe_free(r->probe);
    drst_metrics_free(r->met);
    drst_dlq_free(r->dlq);
    drst_log_free(r->log);
    drst_store_close(r->store);
    if (r->events)
        fclose(r->events);
    if (r->drift)
        fclose(r->drift);
    for (size_t s = 0; s < r->nstages; s++) {
        drst_table_free(r->stages[s].t);
        free(r->stages[s].map);
    }
    free(r->stages);
    drst_schema_free(r->schema);
    free(r->names);
    drst_table_free(r->train);
    free(r->part_prod);
    free(r->part_cons);
    free(r->owned);
    free(r->m_depth);
    free(r->store_uri);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->ev_mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

static drst_err_t check_opts(const drst_run_opts_t *o, char *err, size_t errlen)
{
    if (!o->train_path)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "no training data (--train)");
    if (!o->stages || o->nstages == 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "no stream stage (--stream)");
    if (!o->out_dir || !*o->out_dir)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "no output directory (--out)");
    if (o->partitions < 1 || o->partitions > 1024)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "partitions must be in 1..1024");
    if (o->consumers < 1 || o->consumers > 256)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "consumers must be in 1..256");
    if (!(o->tps >= 0) || o->retrain_lag < 0 || o->retrain_lag > 10000000 || !(o->data_rate > 0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "tps must be >= 0, retrain lag in 0..1e7, data rate > 0");
    if (o->window < 2 || o->stride < 1 || o->stride > o->window)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "window must be >= 2 and stride in 1..W");
    return DRST_OK;
}

drst_err_t drst_run_execute(const drst_run_opts_t *opts, drst_run_summary_t *sum, drst_diag_t *diag,
                            char *err, size_t errlen)
{
    drst_err_t rc;
    run_t *r;
    consumer_t *cons = NULL;
    pthread_t tp, tm, trt;
    int tp_on = 0, tm_on = 0, trt_on = 0;
    drst_stream_t *hmon = NULL;
    char path[4096];
    drst_run_summary_t s0;
    double train_s = 0, last_snap = 0;
    FILE *mj = NULL;

    if (!sum)
        sum = &s0;
    memset(sum, 0, sizeof(*sum));
    sum->lag_min = sum->lag_max = -1;
    if ((rc = check_opts(opts, err, errlen)) != DRST_OK)
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    r->o = *opts;
    if (!r->o.target)
        r->o.target = "output_rate";
    if (!r->o.exclude)
        r->o.exclude = "input_rate,latency";
    if (!r->o.topic && !r->o.bootstrap) {
        r->o.topic = "drst-run";
    } else if (!r->o.topic) {
        /* a fresh topic per run: a reused one holds an earlier run's records
         * and sentinels (brokers that auto-create topics make it) */
        snprintf(r->topic_buf, sizeof(r->topic_buf), "drst-run-%.0f-%ld", wall() * 1000,
                 (long)getpid());
        r->o.topic = r->topic_buf;
    }
    if (!(r->o.progress_s > 0))
        r->o.progress_s = 0.5;
    r->topic = r->o.topic;
    r->lag_min = r->lag_max = -1;
    r->hold_from = UINT64_MAX;
    r->gate_k = r->o.retrain_lag > 0 ? (uint64_t)r->o.retrain_lag : 1;
    atomic_store(&r->drift_score, NAN);
    atomic_store(&r->cur_version, 1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->ev_mu, NULL);
    pthread_cond_init(&r->cv, NULL);

    if (mkdirs(r->o.out_dir) != 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", r->o.out_dir);
        goto out;
    }
    if ((rc = load_inputs(r, diag, err, errlen)) != DRST_OK)
        goto out;
    if (!r->o.store) {
        snprintf(path, sizeof(path), "%s/store", r->o.out_dir);
        r->store_uri = strdup(path);
        if (!r->store_uri) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
            goto out;
        }
        r->o.store = r->store_uri;
    }
    if (!(r->store = drst_store_open(r->o.store, err, errlen))) {
        rc = DRST_ERR_IO;
        goto out;
    }
    if (!(r->met = drst_metrics_new(err, errlen))) {
        rc = DRST_ERR_NOMEM;
        goto out;
    }
    if ((rc = make_metrics(r, err, errlen)) != DRST_OK)
        goto out;
    r->part_prod = calloc((size_t)r->o.partitions, sizeof(*r->part_prod));
    r->part_cons = calloc((size_t)r->o.partitions, sizeof(*r->part_cons));
    r->owned = calloc((size_t)r->o.consumers + 1, sizeof(*r->owned));
    for (int i = 0; r->owned && i <= r->o.consumers; i++)
        atomic_store(&r->owned[i], -1);
    cons = calloc((size_t)r->o.consumers, sizeof(*cons));
    if (!r->part_prod || !r->part_cons || !r->owned || !cons) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (r->o.metrics_addr) {
        if (!(r->http = drst_http_start(r->o.metrics_addr, r->met, health, r, err, errlen))) {
            rc = DRST_ERR_IO;
            goto out;
        }
        sum->metrics_port = drst_http_port(r->http);
        if (r->o.on_listen)
            r->o.on_listen(r->o.opaque, sum->metrics_port);
    }
    snprintf(path, sizeof(path), "%s/resources.csv", r->o.out_dir);
    unlink(path);
    if (!(r->probe = drst_probe_new(path, 0.5, err, errlen))) {
        rc = DRST_ERR_IO;
        goto out;
    }
    (void)!drst_probe_register_self(r->probe, "train", NULL, 0);
    if (!(r->events = open_out(r, "events.csv", err, errlen)) ||
        !(r->drift = open_out(r, "drift.csv", err, errlen))) {
        rc = DRST_ERR_IO;
        goto out;
    }
    fputs("ts,records,kind,version,detail\n", r->events);
    fputs("records,score,tier,triggered\n", r->drift);
    snprintf(path, sizeof(path), "%s/deadletters.jsonl", r->o.out_dir);
    if (!(r->dlq = drst_dlq_open_file(path, err, errlen))) {
        rc = DRST_ERR_IO;
        goto out;
    }
    /* offline training: the static model (baseline) and adaptive version 1
     * (latest), from the same data; one model when the families agree */
    {
        drst_train_opts_t to;
        drst_model_t *m = NULL, *a = NULL;
        drst_release_t rl;
        const char *ex[64];
        char exbuf[1024];
        size_t nex = 0;
        int same = r->o.adaptive_family == r->o.family;
        snprintf(exbuf, sizeof(exbuf), "%s", r->o.exclude);
        for (char *p = exbuf; *p && nex < 64;) {
            char *e = strchr(p, ',');
            if (e)
                *e = 0;
            if (*p)
                ex[nex++] = p;
            if (!e)
                break;
            p = e + 1;
        }
        drst_train_opts_init(&to);
        to.family = r->o.family;
        to.target = r->o.target;
        to.exclude = ex;
        to.n_exclude = nex;
        to.val_frac = 0;
        to.seed = r->o.seed;
        to.nthread = 1;
        to.data_name = r->o.train_path;
        double t0 = mono();
        rc = drst_model_train(r->train, &to, &m, NULL, diag, err, errlen);
        if (rc != DRST_OK)
            goto out;
        if (!same) {
            to.family = r->o.adaptive_family;
            /* the same rows were reported on above: no second set of warnings */
            rc = drst_model_train(r->train, &to, &a, NULL, NULL, err, errlen);
            if (rc != DRST_OK) {
                drst_model_free(m);
                goto out;
            }
        }
        train_s = mono() - t0;
        r->base.model = m;
        r->base.version = 0;
        rc = bind_model(r, m, &r->base.bind, err, errlen);
        if (rc == DRST_OK)
            rc = drst_store_publish_model(
                r->store, m, same ? DRST_PUBLISH_BOTH : DRST_PUBLISH_BASELINE, &rl, err, errlen);
        if (rc == DRST_OK && !same) {
            event(r, 0, "publish", 0, rl.model_key);
            rc = drst_store_publish_model(r->store, a, DRST_PUBLISH_LATEST, &rl, err, errlen);
        }
        if (rc == DRST_OK && same)
            a = model_copy(m, err, errlen);
        if (rc != DRST_OK || !a) {
            drst_model_free(a);
            rc = rc != DRST_OK ? rc : DRST_ERR_NOMEM;
            goto out;
        }
        if ((rc = add_release(r, a, 0, rl.model_key, err, errlen)) != DRST_OK)
            goto out;
        drst_model_t *b = model_copy(m, err, errlen);
        drst_model_t *c = model_copy(a, err, errlen);
        if (!b || !c) {
            drst_model_free(b);
            drst_model_free(c);
            rc = DRST_ERR_NOMEM;
            goto out;
        }
        if (!(r->slot = drst_model_slot_new(b, c, err, errlen))) {
            rc = DRST_ERR_NOMEM;
            goto out;
        }
        atomic_store(&r->swapped, 1);
        event(r, 0, "publish", 1, rl.model_key);
        if (r->o.online > 0 && !(r->mem = drst_knn_memory_new(r->nf, r->o.online))) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM,
                             "online memory of %zu records: out of memory", r->o.online);
            goto out;
        }
    }
    /* the monitor: in-process (no request files), baseline = training data */
    {
        drst_monitor_config_t mc = {0};
        mc.window = r->o.window;
        mc.stride = r->o.stride;
        mc.refresh = r->o.refresh;
        mc.seed = r->o.seed;
        mc.target = r->o.target;
        mc.no_persist = 1;
        mc.no_request = 1;
        mc.cooldown = r->o.window;
        r->mon = drst_monitor_new(&mc, (const char *const *)r->names, r->nf, NULL, err, errlen);
        if (!r->mon) {
            rc = DRST_ERR_INVAL;
            goto out;
        }
        if ((rc = drst_monitor_set_baseline(r->mon, r->train, err, errlen)) != DRST_OK)
            goto out;
        if ((rc = write_run_json(r, err, errlen)) != DRST_OK)
            goto out;
    }
    /* the stream */
    snprintf(r->group_infer, sizeof(r->group_infer), "drst-run-%ld-%.0f-infer", (long)getpid(),
             wall() * 1000);
    snprintf(r->group_mon, sizeof(r->group_mon), "drst-run-%ld-%.0f-monitor", (long)getpid(),
             wall() * 1000);
    if (!r->o.bootstrap) {
        drst_log_conf_t lc = {0};
        if (!(r->log = drst_log_new(&lc, err, errlen))) {
            rc = DRST_ERR_NOMEM;
            goto out;
        }
        if ((rc = drst_log_create_topic(r->log, r->topic, r->o.partitions, err, errlen)) != DRST_OK)
            goto out;
    }
    {
        int32_t np = 0;
        drst_stream_t *h = open_handle(r, "drst-run-admin", err, errlen);
        if (!h) {
            rc = DRST_ERR_TRANSPORT;
            goto out;
        }
        rc = drst_stream_partitions(h, r->topic, &np, err, errlen);
        drst_stream_close(h);
        if (rc != DRST_OK)
            goto out;
        if (np < r->o.partitions) {
            rc = drst_seterr(err, errlen, DRST_ERR_STATE,
                             "topic '%s' has %d partition(s), --partitions asks for %d", r->topic,
                             (int)np, r->o.partitions);
            goto out;
        }
    }
    if (!(hmon = open_handle(r, "monitor", err, errlen)) ||
        (rc = drst_stream_subscribe(hmon, r->topic, r->group_mon, "monitor", err, errlen)) !=
            DRST_OK) {
        rc = rc ? rc : DRST_ERR_TRANSPORT;
        goto out;
    }
    for (int i = 0; i < r->o.consumers; i++) {
        char id[32];
        snprintf(id, sizeof(id), "consumer-%d", i);
        cons[i].r = r;
        cons[i].id = i;
        if (!(cons[i].h = open_handle(r, id, err, errlen)) ||
            (rc = drst_stream_subscribe(cons[i].h, r->topic, r->group_infer, id, err, errlen)) !=
                DRST_OK) {
            rc = rc ? rc : DRST_ERR_TRANSPORT;
            goto out;
        }
    }
    snprintf(path, sizeof(path), "%s/metrics.jsonl", r->o.out_dir);
    if (!(mj = fopen(path, "w"))) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", path);
        goto out;
    }

    /* start: consumers and monitor first, so every record finds its groups */
    (void)!drst_probe_sample(r->probe, NULL, 0); /* a short run still gets two samples */
    r->t_start = mono();
    r->hmon = hmon;
    if (pthread_create(&tm, NULL, monitor_main, r) != 0) {
        r->hmon = NULL;
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "cannot start the monitor thread");
        goto out;
    }
    hmon = NULL;
    tm_on = 1;
    for (int i = 0; i < r->o.consumers; i++) {
        if (pthread_create(&cons[i].th, NULL, consumer_main, &cons[i]) != 0) {
            fail(r, DRST_ERR_NOMEM, "cannot start a consumer thread");
            break;
        }
        cons[i].started = 1;
    }
    if (pthread_create(&trt, NULL, retrainer_main, r) == 0)
        trt_on = 1;
    else
        fail(r, DRST_ERR_NOMEM, "cannot start the retrainer thread");
    if (pthread_create(&tp, NULL, producer_main, r) == 0)
        tp_on = 1;
    else
        fail(r, DRST_ERR_NOMEM, "cannot start the producer thread");
    if (!tp_on) {
        pthread_mutex_lock(&r->mu);
        r->producer_done = 1;
        pthread_mutex_unlock(&r->mu);
    }

    /* supervise: progress and metrics snapshots until the stream is done */
    {
        double next_p = mono();
        while (1) {
            int done;
            if (stopping(r)) {
                pthread_mutex_lock(&r->mu);
                pthread_cond_broadcast(&r->cv);
                pthread_mutex_unlock(&r->mu);
            }
            pthread_mutex_lock(&r->mu);
            done = r->producer_done && r->monitor_exit && !r->retraining && !r->job_ready;
            pthread_mutex_unlock(&r->mu);
            if (done && atomic_load(&r->inferred) >= atomic_load(&r->produced))
                break;
            if (done && stopping(r))
                break;
            double now = mono();
            if (now >= next_p) {
                drst_run_progress_t p;
                update_gauges(r);
                if (r->o.progress) {
                    progress(r, &p);
                    r->o.progress(r->o.opaque, &p);
                }
                next_p = now + r->o.progress_s;
            }
            if (now - last_snap >= 1.0) {
                (void)!drst_metrics_write_jsonl(r->met, mj, wall(), NULL, 0);
                fflush(mj);
                last_snap = now;
            }
            sleep_s(0.05);
        }
    }
    if (tp_on)
        pthread_join(tp, NULL);
    tp_on = 0;
    for (int i = 0; i < r->o.consumers; i++)
        if (cons[i].started)
            pthread_join(cons[i].th, NULL);
    for (int i = 0; i < r->o.consumers; i++)
        cons[i].started = 0;
    pthread_join(tm, NULL);
    tm_on = 0;
    pthread_mutex_lock(&r->mu);
    r->monitor_exit = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (trt_on)
        pthread_join(trt, NULL);
    trt_on = 0;
    update_gauges(r);
    {
        drst_run_progress_t p;
        progress(r, &p);
        if (r->o.progress)
            r->o.progress(r->o.opaque, &p);
    }
    (void)!drst_metrics_write_jsonl(r->met, mj, wall(), NULL, 0);

    /* the figures */
    {
        cstat_t t = {0};
        double last = atomic_load(&r->last_infer_t);
        for (int i = 0; i < r->o.consumers; i++) {
            cstat_t *c = &cons[i].st;
            t.n += c->n;
            t.lab += c->lab;
            t.mn += c->mn;
            t.ms += c->ms;
            t.ma += c->ma;
            for (int k = 0; k < NTAU; k++) {
                t.hs[k] += c->hs[k];
                t.ha[k] += c->ha[k];
            }
        }
        sum->records = t.n;
        sum->labelled = t.lab;
        for (int k = 0; k < NTAU; k++) {
            sum->static_acc[k] = t.lab ? (double)t.hs[k] / (double)t.lab : NAN;
            sum->adaptive_acc[k] = t.lab ? (double)t.ha[k] / (double)t.lab : NAN;
        }
        sum->static_mape = t.mn ? t.ms / (double)t.mn : NAN;
        sum->adaptive_mape = t.mn ? t.ma / (double)t.mn : NAN;
        sum->triggers = atomic_load(&r->triggers);
        sum->suppressed = atomic_load(&r->suppressed);
        sum->retrains = atomic_load(&r->retrains);
        sum->retrain_failures = atomic_load(&r->retrain_fail);
        sum->rejected_gate = atomic_load(&r->rejected_gate);
        sum->swaps = atomic_load(&r->swaps);
        sum->retrain_s_total = r->retrain_s;
        sum->lag_min = r->lag_min;
        sum->lag_max = r->lag_max;
        sum->final_version = atomic_load(&r->cur_version);
        sum->online_records = drst_knn_memory_count(r->mem);
        sum->errors = atomic_load(&r->errors);
        sum->dead_letters = drst_dlq_count(r->dlq);
        sum->train_s = train_s;
        sum->wall_s = (last > r->t_start ? last : mono()) - r->t_start;
        sum->records_per_s = sum->wall_s > 0 ? (double)t.n / sum->wall_s : 0;
        sum->async = r->o.tps > 0;
    }
    if (r->rc != DRST_OK) {
        rc = drst_seterr(err, errlen, r->rc, "%s", r->err);
        goto out;
    }
    if (r->o.stop && *r->o.stop) {
        rc = drst_seterr(err, errlen, DRST_ERR_STATE, "interrupted");
        goto out;
    }
    fclose(mj);
    mj = NULL;
    fclose(r->events);
    r->events = NULL;
    fclose(r->drift);
    r->drift = NULL;
    drst_probe_free(r->probe); /* final sample; closes resources.csv */
    r->probe = NULL;
    if (!r->o.no_report) {
        drst_report_opts_t ro = {0};
        drst_report_info_t info;
        ro.in_dir = r->o.out_dir;
        ro.out_dir = r->o.out_dir;
        /* the figures are measured: a report that cannot be drawn is said, not fatal */
        if (drst_report_write(&ro, &info, diag, sum->report_error, sizeof(sum->report_error)) ==
            DRST_OK) {
            sum->report_images = info.images;
            sum->gnuplot_missing = info.gnuplot_missing;
        } else if (!sum->report_error[0]) {
            snprintf(sum->report_error, sizeof(sum->report_error), "report failed");
        }
    }
    {
        char *js = NULL;
        if (drst_run_summary_json(sum, &js, err, errlen) == DRST_OK) {
            FILE *f = open_out(r, "summary.json", NULL, 0);
            if (f) {
                fprintf(f, "%s\n", js);
                fclose(f);
            }
        }
        free(js);
    }
    rc = DRST_OK;
out:
    if (tm_on || tp_on || trt_on) {
        /* a set-up failure after threads started: stop and join them */
        fail(r, rc ? rc : DRST_ERR_STATE, err);
        if (tp_on)
            pthread_join(tp, NULL);
        for (int i = 0; cons && i < r->o.consumers; i++)
            if (cons[i].started)
                pthread_join(cons[i].th, NULL);
        if (tm_on)
            pthread_join(tm, NULL);
        pthread_mutex_lock(&r->mu);
        r->monitor_exit = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (trt_on)
            pthread_join(trt, NULL);
    }
    if (mj)
        fclose(mj);
    drst_stream_close(hmon);
    for (int i = 0; cons && i < r->o.consumers; i++)
        drst_stream_close(cons[i].h);
    free(cons);
    free_run(r);
    return rc;
}
