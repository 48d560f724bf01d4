/* drst infer: N inference consumers (threads) with a baseline and a
 * hot-swapped adaptive model, a guard following the store's latest pointer,
 * metrics, traces and dead letters under --out. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tool.h"

#define MAX_KV        64
#define MAX_CONSUMERS 64

static void help(void)
{
    printf(
        "usage: drst infer --store DIR (--bootstrap HOST:PORT --topic T | --in FILE.jsonl)\n"
        "                  [--group G] [--consumers N] [--batch N] [--tau X] [--gain-pp X]\n"
        "                  [--reload-s S] [--idle-s S] [--out DIR] [options]\n\n"
        "Predict every record of a stream with two models: the frozen baseline (store pointer\n"
        "models/baseline, or models/latest when there is none) and the adaptive model\n"
        "(models/latest). A guard thread re-reads models/latest every --reload-s seconds;\n"
        "a new release is loaded and verified off the hot path (checksum, target, a finite\n"
        "prediction) and swapped in (RCU: consumers never wait) only if its validation\n"
        "acc@tau beats the served model's by --gain-pp percentage points. Refused and\n"
        "corrupt candidates are logged; the current model keeps serving.\n\n"
        "Each record is aligned to the models' features by name: a missing feature is\n"
        "filled with the training mean (counted); a NaN/Infinity value or malformed JSON\n"
        "is dead-lettered with the reason (OUT/deadletters.jsonl). Each (partition, offset)\n"
        "is counted once, even when the stream redelivers it.\n\n"
        "It stops when every partition it owns has sent its end-of-stream sentinel (or at\n"
        "the end of the --in file), after --idle-s seconds without records, or on\n"
        "SIGINT/SIGTERM, and always writes its final metrics (exit 0).\n\n"
        "files under --out (docs/infer.md):\n"
        "  trace_consumer-I.csv     ts,partition,offset,truth,baseline,adaptive,version,latency_s\n"
        "  infer_consumer-I.jsonl   metrics every second + final: batch and cumulative\n"
        "                           acc@0.05/0.1/0.2 of both paths, error p50..p99,\n"
        "                           records/s, latency, RTT, CPU, version; total and per "
        "partition\n"
        "  metrics.jsonl            snapshot of the live metrics registry at the end\n"
        "  events.csv               guard decisions (swap, refused, corrupt)\n"
        "  deadletters.jsonl        rejected records with reason and payload\n\n"
        "options:\n"
        "  --store DIR          model store (required)\n"
        "  --topic T            topic (required with --bootstrap)\n"
        "  --group G            consumer group (default drst-infer)\n"
        "  --bootstrap H:P      Kafka bootstrap servers (e.g. from 'drst broker')\n"
        "  --in FILE.jsonl      read a JSON Lines file instead (one consumer)\n"
        "  --consumers N        consumer threads, one group member each (default 1)\n"
        "  --batch N            most records per poll and predict call (default 256);\n"
        "                       batches are what is queued, never waited for\n"
        "  --tau X              headline tolerance of the summary and the gain check:\n"
        "                       0.05, 0.1 or 0.2 (default 0.2)\n"
        "  --gain-pp X          swap only if val acc@tau gains >= X points (default 0)\n"
        "  --reload-s S         guard poll interval (default 2)\n"
        "  --idle-s S           stop after S seconds without records (default 10; 0 = never)\n"
        "  --out DIR            output folder (default infer-out)\n"
        "  --baseline REF       baseline release (default: pointer 'baseline', else 'latest')\n"
        "  --no-trace           do not write trace files (faster)\n"
        "  --from-beginning     a new group starts at the oldest record (default)\n"
        "  -X key=value         librdkafka setting (repeatable), like kcat -X\n"
        "  --quiet              no per-swap lines, only the summary\n\n"
        "example:\n"
        "  drst infer --store store --bootstrap 127.0.0.1:9092 --topic telemetry \\\n"
        "      --group infer --consumers 3 --gain-pp 1 --out run1\n");
}

static drst_infer_t *g_cons[MAX_CONSUMERS];
static int g_ncons;

static void on_signal(int sig)
{
    (void)sig;
    for (int i = 0; i < g_ncons; i++)
        if (g_cons[i])
            drst_infer_stop(g_cons[i]);
}

typedef struct logctx {
    FILE *events;
    int quiet;
} logctx_t;

static void guard_log(void *opaque, drst_guard_ev_t ev, uint64_t version, const char *key,
                      const char *detail)
{
    logctx_t *lc = opaque;
    struct timespec ts;
    uint64_t records = 0;
    drst_infer_stats_t st;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int i = 0; i < g_ncons; i++) {
        if (g_cons[i]) {
            drst_infer_stats(g_cons[i], -1, &st);
            records += st.records;
        }
    }
    if (lc->events) {
        fprintf(lc->events, "%.6f,%llu,%s,%llu,\"", ts.tv_sec + ts.tv_nsec * 1e-9,
                (unsigned long long)records,
                ev == DRST_GUARD_SWAPPED ? "swap" : drst_guard_ev_name(ev),
                (unsigned long long)version);
        for (const char *p = key ? key : ""; *p; p++)
            fputc(*p == '"' ? '\'' : *p, lc->events);
        fputs(": ", lc->events);
        for (const char *p = detail ? detail : ""; *p; p++)
            fputc(*p == '"' ? '\'' : *p == '\n' ? ' ' : *p, lc->events);
        fputs("\"\n", lc->events);
        fflush(lc->events);
    }
    if (!lc->quiet)
        fprintf(stderr, "drst infer: %s %s (version %llu): %s\n", drst_guard_ev_name(ev),
                key ? key : "-", (unsigned long long)version, detail ? detail : "");
}

typedef struct worker {
    drst_infer_t *c;
    pthread_t th;
    drst_err_t rc;
    drst_infer_end_t why;
    char err[DRST_ERRLEN];
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    w->rc = drst_infer_run(w->c, &w->why, w->err, sizeof(w->err));
    return NULL;
}

static int parse_d(const char *cmd, const char *opt, const char *v, double *out)
{
    char *end = NULL;
    if (!v)
        return tool_usage_error(cmd, "%s needs a value", opt);
    errno = 0;
    *out = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(*out))
        return tool_usage_error(cmd, "%s: '%s' is not a number", opt, v);
    return 0;
}

static int parse_l(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    if (!v)
        return tool_usage_error(cmd, "%s needs a value", opt);
    errno = 0;
    *out = strtol(v, &end, 10);
    if (errno || end == v || *end || *out < lo || *out > hi)
        return tool_usage_error(cmd, "%s: '%s' is not an integer in [%ld, %ld]", opt, v, lo, hi);
    return 0;
}

static const char *end_name(drst_infer_end_t e)
{
    return e == DRST_INFER_END_EOS    ? "end of stream"
           : e == DRST_INFER_END_IDLE ? "idle timeout"
                                      : "stopped";
}

int cmd_infer(int argc, char **argv)
{
    const char *store_uri = NULL, *topic = NULL, *group = "drst-infer", *bootstrap = NULL;
    const char *in = NULL, *out = "infer-out", *baseline_ref = NULL, *kv[MAX_KV];
    size_t nkv = 0;
    long consumers = 1, batch = 256;
    double tau = 0.2, gain_pp = 0, reload_s = 2, idle_s = 10;
    int trace = 1, quiet = 0, rc = TOOL_FAIL;
    char err[DRST_ERRLEN], path[4096];
    drst_store_t *store = NULL;
    drst_model_t *base = NULL, *adapt = NULL;
    drst_model_slot_t *slot = NULL;
    drst_guard_t *guard = NULL;
    drst_dlq_t *dlq = NULL;
    drst_metrics_t *reg = NULL;
    drst_infer_offsets_t *offs = NULL;
    drst_stream_t *hs[MAX_CONSUMERS] = {0};
    worker_t wk[MAX_CONSUMERS];
    logctx_t lc = {0};
    drst_release_t rb, ra;
    int started = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return TOOL_OK;
        } else if (!strcmp(a, "--no-trace")) {
            trace = 0;
            continue;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        } else if (!strcmp(a, "--from-beginning")) {
            continue;
        }
        if (!v)
            return tool_usage_error("infer", "%s needs a value (or is unknown)", a);
        i++;
        if (!strcmp(a, "--store"))
            store_uri = v;
        else if (!strcmp(a, "--topic"))
            topic = v;
        else if (!strcmp(a, "--group"))
            group = v;
        else if (!strcmp(a, "--bootstrap"))
            bootstrap = v;
        else if (!strcmp(a, "--in"))
            in = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--baseline"))
            baseline_ref = v;
        else if (!strcmp(a, "-X")) {
            if (nkv >= MAX_KV)
                return tool_usage_error("infer", "too many -X settings");
            kv[nkv++] = v;
        } else if (!strcmp(a, "--consumers"))
            r = parse_l("infer", a, v, 1, MAX_CONSUMERS, &consumers);
        else if (!strcmp(a, "--batch"))
            r = parse_l("infer", a, v, 1, 65536, &batch);
        else if (!strcmp(a, "--tau")) {
            r = parse_d("infer", a, v, &tau);
            if (!r && tau != 0.05 && tau != 0.1 && tau != 0.2)
                return tool_usage_error("infer", "--tau must be 0.05, 0.1 or 0.2");
        } else if (!strcmp(a, "--gain-pp"))
            r = parse_d("infer", a, v, &gain_pp);
        else if (!strcmp(a, "--reload-s")) {
            r = parse_d("infer", a, v, &reload_s);
            if (!r && !(reload_s > 0))
                return tool_usage_error("infer", "--reload-s must be > 0");
        } else if (!strcmp(a, "--idle-s")) {
            r = parse_d("infer", a, v, &idle_s);
            if (!r && idle_s < 0)
                return tool_usage_error("infer", "--idle-s must be >= 0");
        } else
            return tool_usage_error("infer", "unknown option '%s'", a);
        if (r)
            return r;
    }
    if (!store_uri)
        return tool_usage_error("infer", "--store is required");
    if (!!bootstrap == !!in)
        return tool_usage_error("infer", "give exactly one of --bootstrap or --in");
    if (bootstrap && !topic)
        return tool_usage_error("infer", "--topic is required with --bootstrap");
    if (in && consumers > 1)
        return tool_usage_error("infer", "--in FILE is one partition: use --consumers 1");
    if (!topic)
        topic = "in";

    if (mkdir(out, 0777) != 0 && errno != EEXIST)
        return tool_error("cannot create '%s': %s", out, strerror(errno));
    if (!(store = drst_store_open(store_uri, err, sizeof(err)))) {
        tool_error("%s", err);
        goto done;
    }
    if (baseline_ref) {
        if (drst_store_load_model(store, baseline_ref, &base, &rb, err, sizeof(err)) != DRST_OK) {
            tool_error("baseline: %s", err);
            goto done;
        }
    } else if (drst_store_load_model(store, "baseline", &base, &rb, err, sizeof(err)) != DRST_OK &&
               drst_store_load_model(store, "latest", &base, &rb, err, sizeof(err)) != DRST_OK) {
        tool_error("no baseline model in '%s': %s", store_uri, err);
        goto done;
    }
    if (drst_store_load_model(store, "latest", &adapt, &ra, err, sizeof(err)) != DRST_OK) {
        tool_error("adaptive model: %s", err);
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "drst infer: baseline %s, adaptive %s (version 1)\n", rb.model_key,
                ra.model_key);
    slot = drst_model_slot_new(base, adapt, err, sizeof(err));
    base = adapt = NULL; /* the slot owns them now, on every path */
    if (!slot) {
        tool_error("%s", err);
        goto done;
    }
    snprintf(path, sizeof(path), "%s/deadletters.jsonl", out);
    if (!(dlq = drst_dlq_open_file(path, err, sizeof(err)))) {
        tool_error("%s", err);
        goto done;
    }
    snprintf(path, sizeof(path), "%s/events.csv", out);
    if (!(lc.events = fopen(path, "w"))) {
        tool_error("cannot open '%s': %s", path, strerror(errno));
        goto done;
    }
    fputs("ts,records,kind,version,detail\n", lc.events);
    lc.quiet = quiet;
    if (!(reg = drst_metrics_new(err, sizeof(err)))) {
        tool_error("%s", err);
        goto done;
    }

    for (long i = 0; i < consumers; i++) {
        drst_stream_conf_t sc = {0};
        drst_infer_conf_t ic;
        char name[32], member[96];
        snprintf(name, sizeof(name), "consumer-%ld", i);
        snprintf(member, sizeof(member), "%s-%ld", group, i);
        sc.bootstrap = bootstrap;
        sc.path = in;
        sc.kv = kv;
        sc.nkv = nkv;
        sc.from_beginning = 1;
        sc.client_id = member;
        hs[i] = drst_stream_open(in ? &drst_transport_jsonl : &drst_transport_kafka, &sc, err,
                                 sizeof(err));
        if (!hs[i]) {
            tool_error("%s", err);
            goto done;
        }
        if (i == 0) {
            int32_t np = 0;
            if (drst_stream_partitions(hs[0], topic, &np, err, sizeof(err)) != DRST_OK) {
                tool_error("%s", err);
                goto done;
            }
            if (!(offs = drst_infer_offsets_new(np))) {
                tool_error("out of memory");
                goto done;
            }
        }
        drst_infer_conf_init(&ic);
        ic.topic = topic;
        ic.group = group;
        ic.member_id = member;
        ic.name = name;
        ic.out_dir = out;
        ic.batch = (size_t)batch;
        ic.idle_s = idle_s;
        ic.trace = trace;
        ic.tau = tau;
        ic.dlq = dlq;
        ic.metrics = reg;
        ic.offsets = offs; /* a record replayed to another member is counted once */
        if (!(g_cons[i] = drst_infer_new(&ic, hs[i], slot, err, sizeof(err)))) {
            tool_error("%s", err);
            goto done;
        }
        g_ncons = (int)i + 1;
    }

    {
        drst_guard_conf_t gc = {0};
        gc.pointer = "latest";
        gc.reload_s = reload_s;
        gc.gain_pp = gain_pp;
        gc.tau = tau;
        gc.log = guard_log;
        gc.opaque = &lc;
        if (!(guard = drst_guard_new(slot, store, &gc, err, sizeof(err))) ||
            drst_guard_start(guard, err, sizeof(err)) != DRST_OK) {
            tool_error("%s", err);
            goto done;
        }
    }

    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    for (int i = 0; i < g_ncons; i++) {
        memset(&wk[i], 0, sizeof(wk[i]));
        wk[i].c = g_cons[i];
        if (pthread_create(&wk[i].th, NULL, worker_main, &wk[i]) != 0) {
            tool_error("cannot start consumer thread %d", i);
            for (int j = 0; j < i; j++)
                drst_infer_stop(g_cons[j]);
            for (int j = 0; j < i; j++)
                pthread_join(wk[j].th, NULL);
            goto done;
        }
        started = i + 1;
    }
    rc = TOOL_OK;
    for (int i = 0; i < started; i++) {
        pthread_join(wk[i].th, NULL);
        if (wk[i].rc != DRST_OK) {
            tool_error("consumer-%d: %s", i, wk[i].err);
            rc = TOOL_FAIL;
        }
    }
    {
        uint64_t rec = 0, lab = 0, dl = 0, dup = 0, miss = 0, nan = 0, mal = 0, sw, rf, co;
        drst_guard_counts(guard, &sw, &rf, &co);
        drst_guard_free(guard);
        guard = NULL;
        double hb = 0, ha = 0, rps = 0;
        int k = tau == 0.05 ? 0 : tau == 0.1 ? 1 : 2;
        for (int i = 0; i < started; i++) {
            drst_infer_stats_t st;
            drst_infer_stats(g_cons[i], -1, &st);
            if (!quiet)
                fprintf(stderr,
                        "drst infer: consumer-%d: %llu records (%s), acc@%g baseline %.4f "
                        "adaptive %.4f, %.0f records/s, version %llu\n",
                        i, (unsigned long long)st.records, end_name(wk[i].why), tau,
                        st.baseline.acc[k], st.adaptive.acc[k], st.records_per_s,
                        (unsigned long long)st.version);
            rec += st.records;
            lab += st.labelled;
            dl += st.dead_letters;
            dup += st.duplicates;
            miss += st.missing;
            nan += st.nan;
            mal += st.malformed;
            if (st.labelled) {
                hb += st.baseline.acc[k] * st.labelled;
                ha += st.adaptive.acc[k] * st.labelled;
            }
            rps += st.records_per_s;
        }
        printf("records %llu labelled %llu acc@%g baseline %.4f adaptive %.4f records/s %.0f "
               "dead_letters %llu (malformed %llu, nan %llu) missing_values %llu duplicates %llu "
               "version %llu swaps %llu refused %llu corrupt %llu\n",
               (unsigned long long)rec, (unsigned long long)lab, tau, lab ? hb / lab : NAN,
               lab ? ha / lab : NAN, rps, (unsigned long long)dl, (unsigned long long)mal,
               (unsigned long long)nan, (unsigned long long)miss, (unsigned long long)dup,
               (unsigned long long)drst_model_slot_version(slot), (unsigned long long)sw,
               (unsigned long long)rf, (unsigned long long)co);
    }
    snprintf(path, sizeof(path), "%s/metrics.jsonl", out);
    {
        FILE *mf = fopen(path, "w");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (!mf || drst_metrics_write_jsonl(reg, mf, ts.tv_sec + ts.tv_nsec * 1e-9, err,
                                            sizeof(err)) != DRST_OK) {
            tool_error("cannot write '%s'", path);
            rc = TOOL_FAIL;
        }
        if (mf)
            fclose(mf);
    }
done:
    /* the consumers are about to be freed: a late signal must not reach them */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    drst_guard_free(guard);
    for (int i = 0; i < g_ncons; i++) {
        drst_infer_t *c = g_cons[i];
        g_cons[i] = NULL;
        drst_infer_free(c);
    }
    g_ncons = 0;
    for (long i = 0; i < consumers; i++)
        drst_stream_close(hs[i]);
    drst_infer_offsets_free(offs);
    drst_dlq_free(dlq);
    if (lc.events)
        fclose(lc.events);
    drst_metrics_free(reg);
    drst_model_slot_free(slot);
    drst_model_free(base);
    drst_model_free(adapt);
    drst_store_close(store);
    return rc;
}
