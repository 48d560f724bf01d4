/* bench_infer: one inference consumer on the in-process log, end to end
 * (poll + decode + align + two MLP(64,32) predictions + metrics + commit),
 * on records prepared before the clock starts. Optionally a thread swaps the
 * adaptive model every --swap-ms milliseconds (forced swaps of a freshly
 * loaded copy), to compare per-record latency with and without swaps.
 *
 *   bench_infer --train combined.csv --stream stage2.csv [--records N]
 *               [--format json|binary] [--swap-ms M] [--batch B] [--passes P]
 *               [--trace DIR]
 *
 * Prints one JSON line: records, seconds, records_per_s, lat_p50_s,
 * lat_p99_s (median over passes of each pass's p99), lat_p99_max_s, swaps,
 * versions_seen, predict_only_records_per_s (the two predictions alone),
 * f32_max_rel_diff, f32_max_abs_diff (target units) and acc20_hits_f64/_f32
 * (float32 serving predict vs the
 * double-precision one on every stream row, both models). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drst/drst.h"

typedef struct swapper {
    drst_model_slot_t *slot;
    unsigned char *bytes;
    size_t len;
    int ms;
    atomic_int stop;
    uint64_t swaps;
} swapper_t;

static void *swap_main(void *arg)
{
    swapper_t *s = arg;
    char err[DRST_ERRLEN];
    while (!atomic_load(&s->stop)) {
        struct timespec ts = {s->ms / 1000, (long)(s->ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (atomic_load(&s->stop))
            break;
        drst_model_t *m = NULL;
        if (drst_model_load_buffer(s->bytes, s->len, &m, err, sizeof(err)) != DRST_OK ||
            drst_model_slot_swap(s->slot, m, NULL, err, sizeof(err)) != DRST_OK) {
            fprintf(stderr, "bench_infer: swap: %s\n", err);
            break;
        }
        s->swaps++;
    }
    return NULL;
}

static drst_model_t *train(const drst_table_t *t, uint64_t seed)
{
    drst_train_opts_t o;
    drst_model_t *m = NULL;
    char err[DRST_ERRLEN];
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_MLP;
    o.max_epochs = 20; /* prediction cost does not depend on training length */
    o.seed = seed;
    if (drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_infer: train: %s\n", err);
        return NULL;
    }
    return m;
}

int main(int argc, char **argv)
{
    const char *trainp = NULL, *streamp = NULL, *format = "json", *trace = NULL;
    long nrec = 300000, swap_ms = 0, batch = 256, passes = 1;
    char err[DRST_ERRLEN];
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--train"))
            trainp = argv[i + 1];
        else if (!strcmp(argv[i], "--stream"))
            streamp = argv[i + 1];
        else if (!strcmp(argv[i], "--records"))
            nrec = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--format"))
            format = argv[i + 1];
        else if (!strcmp(argv[i], "--swap-ms"))
            swap_ms = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--batch"))
            batch = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--passes"))
            passes = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--trace"))
            trace = argv[i + 1];
    }
    if (!trainp || !streamp || nrec <= 0) {
        fprintf(stderr, "usage: bench_infer --train CSV --stream CSV [--records N] "
                        "[--format json|binary] [--swap-ms M] [--batch B] [--trace DIR]\n");
        return 2;
    }
    int bin = !strcmp(format, "binary");
    drst_table_t *tt = NULL, *st = NULL;
    if (drst_table_read_csv(trainp, NULL, &tt, NULL, err, sizeof(err)) != DRST_OK ||
        drst_table_read_csv(streamp, NULL, &st, NULL, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_infer: %s\n", err);
        return 1;
    }
    drst_model_t *mb = train(tt, 1), *ma = train(tt, 2);
    if (!mb || !ma)
        return 1;
    unsigned char *abytes = NULL;
    size_t alen = 0;
    if (drst_model_save_buffer(ma, &abytes, &alen, err, sizeof(err)) != DRST_OK)
        return 1;
    drst_model_slot_t *slot = drst_model_slot_new(mb, ma, err, sizeof(err));
    if (!slot)
        return 1;

    /* Records in the model's schema (same features for both models). */
    size_t nf = drst_model_nfeatures(mb);
    const char **names = malloc(nf * sizeof(*names));
    long *col = malloc(nf * sizeof(long));
    double *feat = malloc(nf * sizeof(double));
    for (size_t j = 0; j < nf; j++) {
        names[j] = drst_model_feature(mb, j);
        col[j] = drst_table_col(st, names[j]);
        if (col[j] < 0) {
            fprintf(stderr, "bench_infer: stream lacks feature %s\n", names[j]);
            return 1;
        }
    }
    long lab = drst_table_col(st, drst_model_target(mb));
    drst_schema_t *schema = drst_schema_new(names, nf, NULL, err, sizeof(err));
    drst_log_conf_t lc = {0};
    lc.retention = (size_t)nrec + 16;
    drst_log_t *log = drst_log_new(&lc, err, sizeof(err));
    if (!schema || !log || drst_log_create_topic(log, "bench", 1, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_infer: %s\n", err);
        return 1;
    }
    drst_stream_conf_t sc = {0};
    sc.log = log;
    sc.from_beginning = 1;
    drst_stream_t *prod = drst_stream_open(&drst_transport_inproc, &sc, err, sizeof(err));
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (long i = 0; i <= nrec; i++) {
        size_t r = (size_t)i % st->nrows, len = 0;
        drst_record_t rec = {0};
        drst_err_t rc;
        rec.seq = (uint64_t)i;
        rec.ts = rec.send_ts = now.tv_sec + now.tv_nsec * 1e-9;
        rec.features = feat;
        for (size_t j = 0; j < nf; j++)
            feat[j] = drst_table_at(st, r, (size_t)col[j]);
        rec.label = lab >= 0 ? drst_table_at(st, r, (size_t)lab) : NAN;
        rec.has_label = lab >= 0;
        rec.eos = i == nrec;
        rec.partition = 0;
        rc = bin ? drst_record_encode_bin(schema, &rec, buf, cap, &len)
                 : drst_record_encode_json(schema, &rec, buf, cap, &len);
        if (rc != DRST_OK ||
            drst_stream_produce(prod, "bench", 0, NULL, 0, buf, len, err, sizeof(err)) != DRST_OK) {
            fprintf(stderr, "bench_infer: produce: %s\n", err);
            return 1;
        }
    }
    /* --passes P: P consumers in turn (new group each, from the oldest
     * record) over the same prepared records, so a swap run lasts long
     * enough for many 100 ms swaps without holding gigabytes of records. */
    swapper_t sw = {slot, abytes, alen, (int)swap_ms, 0, 0};
    pthread_t th;
    drst_infer_stats_t s, tot;
    double p99s[256];
    int npass = passes < 1 ? 1 : passes > 256 ? 256 : (int)passes;
    drst_infer_end_t why = DRST_INFER_END_STOP;
    memset(&tot, 0, sizeof(tot));
    if (swap_ms > 0)
        pthread_create(&th, NULL, swap_main, &sw);
    for (int k = 0; k < npass; k++) {
        char group[32];
        drst_infer_conf_t ic;
        drst_stream_t *cons = drst_stream_open(&drst_transport_inproc, &sc, err, sizeof(err));
        snprintf(group, sizeof(group), "bench-%d", k);
        drst_infer_conf_init(&ic);
        ic.topic = "bench";
        ic.group = group;
        ic.batch = (size_t)batch;
        ic.out_dir = trace;
        ic.trace = trace != NULL;
        drst_infer_t *c = cons ? drst_infer_new(&ic, cons, slot, err, sizeof(err)) : NULL;
        if (!c || drst_infer_run(c, &why, err, sizeof(err)) != DRST_OK) {
            fprintf(stderr, "bench_infer: %s\n", err);
            return 1;
        }
        drst_infer_stats(c, -1, &s);
        tot.records += s.records;
        tot.wall_s += s.wall_s;
        tot.cpu_s += s.cpu_s;
        tot.versions_seen += s.versions_seen;
        tot.adaptive = s.adaptive;
        p99s[k] = s.lat_p99;
        tot.lat_p50 = s.lat_p50;
        drst_infer_free(c);
        drst_stream_close(cons);
    }
    if (swap_ms > 0) {
        atomic_store(&sw.stop, 1);
        pthread_join(th, NULL);
    }
    /* median and max of the per-pass p99 */
    for (int i = 1; i < npass; i++)
        for (int j = i; j > 0 && p99s[j] < p99s[j - 1]; j--) {
            double t = p99s[j];
            p99s[j] = p99s[j - 1];
            p99s[j - 1] = t;
        }
    tot.lat_p99 = p99s[npass / 2];
    tot.rtt_p99 = p99s[npass - 1];
    tot.records_per_s = tot.records / tot.wall_s;
    s = tot;

    /* The ceiling: the two predictions alone on decoded rows, same batch. */
    double pred_rps;
    {
        size_t bsz = (size_t)batch;
        double *x = malloc(bsz * nf * sizeof(double)), *y = malloc(bsz * sizeof(double));
        drst_model_scratch_t *scr = drst_model_scratch_new(mb, bsz);
        struct timespec t0, t1;
        const drst_serving_t *sv;
        for (size_t r = 0; r < bsz; r++)
            for (size_t j = 0; j < nf; j++)
                x[r * nf + j] = drst_table_at(st, r % st->nrows, (size_t)col[j]);
        drst_rcu_thread_online();
        sv = drst_model_slot_enter(slot);
        if (drst_model_scratch_reserve(scr, sv->adaptive) != DRST_OK)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long done = 0; done < nrec; done += (long)bsz)
            if (drst_model_predict_f32(sv->baseline, x, bsz, nf, y, scr) != DRST_OK ||
                drst_model_predict_f32(sv->adaptive, x, bsz, nf, y, scr) != DRST_OK)
                return 1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        drst_model_slot_exit(slot);
        drst_rcu_thread_offline();
        pred_rps = (double)nrec / (t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
        drst_model_scratch_free(scr);
        free(x);
        free(y);
    }
    /* What float32 serving costs in accuracy on the stream's rows: the
     * largest relative difference from the double-precision predict, and
     * acc@0.2 of both (baseline and adaptive). */
    double f32_rel = 0, f32_abs = 0;
    long acc_f64 = 0, acc_f32 = 0;
    {
        size_t nr = st->nrows;
        double *x = malloc(nr * nf * sizeof(double)), *y64 = malloc(nr * sizeof(double)),
               *y32 = malloc(nr * sizeof(double));
        drst_model_scratch_t *scr = drst_model_scratch_new(mb, 256);
        const drst_serving_t *sv;
        for (size_t r = 0; r < nr; r++)
            for (size_t j = 0; j < nf; j++)
                x[r * nf + j] = drst_table_at(st, r, (size_t)col[j]);
        drst_rcu_thread_online();
        sv = drst_model_slot_enter(slot);
        if (drst_model_scratch_reserve(scr, sv->adaptive) != DRST_OK)
            return 1;
        for (int k = 0; k < 2; k++) {
            const drst_model_t *m = k ? sv->adaptive : sv->baseline;
            if (drst_model_predict(m, x, nr, nf, y64, scr) != DRST_OK ||
                drst_model_predict_f32(m, x, nr, nf, y32, scr) != DRST_OK)
                return 1;
            for (size_t r = 0; r < nr; r++) {
                double t = lab >= 0 ? drst_table_at(st, r, (size_t)lab) : NAN;
                double d = fabs(y32[r] - y64[r]) / fmax(fabs(y64[r]), 1e-9);
                double den = fmax(fabs(t), DRST_METRICS_EPS);
                f32_abs = fmax(f32_abs, fabs(y32[r] - y64[r]));
                f32_rel = d > f32_rel ? d : f32_rel;
                acc_f64 += fabs(y64[r] - t) / den <= 0.2;
                acc_f32 += fabs(y32[r] - t) / den <= 0.2;
            }
        }
        drst_model_slot_exit(slot);
        drst_rcu_thread_offline();
        drst_model_scratch_free(scr);
        free(x);
        free(y64);
        free(y32);
    }
    printf(
        "{\"format\":\"%s\",\"swap_ms\":%ld,\"batch\":%ld,\"records\":%llu,\"seconds\":%.4f,"
        "\"records_per_s\":%.0f,\"cpu_s\":%.4f,\"lat_p50_s\":%.3g,\"lat_p99_s\":%.3g,"
        "\"lat_p99_max_s\":%.3g,\"passes\":%d,"
        "\"swaps\":%llu,\"versions_seen\":%llu,\"acc20_adaptive\":%.4f,\"end\":%d,"
        "\"predict_only_records_per_s\":%.0f,\"f32_max_rel_diff\":%.3g,\"f32_max_abs_diff\":%.3g,"
        "\"acc20_hits_f64\":%ld,\"acc20_hits_f32\":%ld}\n",
        format, swap_ms, batch, (unsigned long long)s.records, s.wall_s, s.records_per_s, s.cpu_s,
        s.lat_p50, s.lat_p99, s.rtt_p99, npass, (unsigned long long)sw.swaps,
        (unsigned long long)s.versions_seen, s.adaptive.acc[2], (int)why, pred_rps, f32_rel,
        f32_abs, acc_f64, acc_f32);
    drst_stream_close(prod);
    drst_log_free(log);
    drst_schema_free(schema);
    drst_model_slot_free(slot);
    drst_table_free(tt);
    drst_table_free(st);
    free(abytes);
    free(buf);
    free(names);
    free(col);
    free(feat);
    return s.records == (unsigned long long)nrec * (unsigned long long)npass ? 0 : 1;
}
