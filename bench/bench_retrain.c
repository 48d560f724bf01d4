/* Retrainer benchmark and prequential driver.
 *
 *   bench_retrain window STAGE2.csv [rows=300] [reps=3] [threads=2] [families=...]
 *       wall time of a tier-A search + full training on the last `rows`
 *       labelled rows of STAGE2 (no base data, no replay), median of reps.
 *   bench_retrain prequential COMBINED.csv STAGE2.csv [key=value ...]
 *       offline model on COMBINED, then every STAGE2 record is predicted
 *       before its label is used; the monitor sees (features, label,
 *       prediction) and on a trigger the retrainer runs synchronously on the
 *       monitor's window + replay (+ COMBINED as base); the new model serves
 *       from the next record. Prints static and adaptive accuracy, triggers
 *       and retrain wall times. Keys: refresh window stride weight families
 *       trees epochs errdet lambda calibrate base seed val tier threads.
 *   bench_retrain monitor [features=60] [records=1000000]
 *       drst_monitor_feed() throughput (best of 3), no store, no model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drst/drst.h"
#include "drst/control.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *opt(int argc, char **argv, const char *key, const char *def)
{
    size_t n = strlen(key);
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=')
            return argv[i] + n + 1;
    return def;
}

static drst_table_t *load(const char *path)
{
    char err[DRST_ERRLEN];
    drst_table_t *t = NULL;
    if (drst_table_read_csv(path, NULL, &t, NULL, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_retrain: %s\n", err);
        return NULL;
    }
    return t;
}

static int window_mode(int argc, char **argv)
{
    char err[DRST_ERRLEN];
    drst_table_t *s = load(argv[2]);
    if (!s)
        return 1;
    size_t rows = (size_t)strtoul(opt(argc, argv, "rows", "300"), NULL, 10);
    int reps = atoi(opt(argc, argv, "reps", "3"));
    if (rows > s->nrows)
        rows = s->nrows;
    drst_table_t *w = drst_table_new((const char *const *)s->names, s->ncols, err, sizeof(err));
    for (size_t r = s->nrows - rows; r < s->nrows; r++)
        if (drst_table_append(w, s->data + r * s->ncols, err, sizeof(err)) != DRST_OK)
            return 1;
    drst_retrain_config_t cfg = {0};
    cfg.threads = (size_t)strtoul(opt(argc, argv, "threads", "2"), NULL, 10);
    cfg.families = opt(argc, argv, "families", NULL);
    cfg.full_trees = atoi(opt(argc, argv, "trees", "0"));
    double t[32];
    drst_retrain_result_t res;
    if (reps < 1 || reps > 32)
        reps = 3;
    for (int i = 0; i < reps; i++) {
        drst_model_t *m = NULL;
        double t0 = now_s();
        if (drst_retrain_window(w, NULL, NULL, DRST_TIER_A, &cfg, &m, &res, err, sizeof(err))) {
            fprintf(stderr, "bench_retrain: %s\n", err);
            return 1;
        }
        t[i] = now_s() - t0;
        drst_model_free(m);
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_d);
    printf("tierA_rows %zu\ntierA_candidates %zu\ntierA_rungs %zu\ntierA_best %s\n", rows,
           res.candidates, res.rungs, res.best);
    printf("tierA_val_acc20 %.4f\ntierA_val_acc05 %.4f\n", res.new_val.acc20, res.new_val.acc05);
    printf("tierA_search_s %.3f\ntierA_full_s %.3f\n", res.search_s, res.full_s);
    printf("tierA_wall_s_median %.3f\ntierA_wall_s_min %.3f\n", t[reps / 2], t[0]);
    drst_table_free(w);
    drst_table_free(s);
    return 0;
}

static int prequential(int argc, char **argv)
{
    char err[DRST_ERRLEN];
    drst_table_t *base = load(argv[2]), *s = load(argv[3]);
    if (!base || !s)
        return 1;
    const char *fam = opt(argc, argv, "families", "gbdt");
    int use_base = atoi(opt(argc, argv, "base", "1"));
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    if (drst_model_family_parse(opt(argc, argv, "initial", "gbdt"), &o.family) != DRST_OK)
        return 1;
    o.val_frac = 0;
    drst_model_t *m0 = NULL;
    if (drst_model_train(base, &o, &m0, NULL, NULL, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_retrain: %s\n", err);
        return 1;
    }
    size_t nf = drst_model_nfeatures(m0);
    const char **names = malloc(nf * sizeof(char *));
    long *col = malloc(nf * sizeof(long));
    for (size_t j = 0; j < nf; j++) {
        names[j] = drst_model_feature(m0, j);
        col[j] = drst_table_col(s, names[j]);
        if (col[j] < 0) {
            fprintf(stderr, "bench_retrain: stream lacks '%s'\n", names[j]);
            return 1;
        }
    }
    long tc = drst_table_col(s, "output_rate");
    drst_monitor_config_t mc = {0};
    mc.window = (size_t)strtoul(opt(argc, argv, "window", "300"), NULL, 10);
    mc.stride = (size_t)strtoul(opt(argc, argv, "stride", "50"), NULL, 10);
    mc.refresh = strtoull(opt(argc, argv, "refresh", "0"), NULL, 10);
    mc.error_detector = opt(argc, argv, "errdet", "page_hinkley");
    mc.ph_lambda = atof(opt(argc, argv, "lambda", "0"));
    mc.calibrate = atoi(opt(argc, argv, "calibrate", "2"));
    mc.cooldown = strtoull(opt(argc, argv, "cooldown", "0"), NULL, 10);
    drst_monitor_t *mon = drst_monitor_new(&mc, names, nf, NULL, err, sizeof(err));
    if (!mon || drst_monitor_set_baseline(mon, base, err, sizeof(err)) ||
        drst_monitor_set_model(mon, m0, err, sizeof(err))) {
        fprintf(stderr, "bench_retrain: %s\n", err);
        return 1;
    }
    drst_retrain_config_t rc = {0};
    rc.families = fam;
    rc.recent_weight = atof(opt(argc, argv, "weight", "3"));
    rc.full_trees = atoi(opt(argc, argv, "trees", "0"));
    rc.full_epochs = atoi(opt(argc, argv, "epochs", "120"));
    rc.val_frac = atof(opt(argc, argv, "val", "0.2"));
    rc.threads = (size_t)strtoul(opt(argc, argv, "threads", "2"), NULL, 10);
    rc.base = use_base ? base : NULL;
    int tier_override = atoi(opt(argc, argv, "tier", "0"));
    size_t n = s->nrows;
    double *y = malloc(n * sizeof(double)), *ys = malloc(n * sizeof(double)),
           *ya = malloc(n * sizeof(double)), *x = malloc(nf * sizeof(double));
    drst_model_scratch_t *sc = drst_model_scratch_new(m0, 1);
    drst_model_t *cur = m0;
    double wall[4096];
    size_t nretrain = 0, nswap = 0;
    double tstart = now_s();
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < nf; j++)
            x[j] = drst_table_at(s, i, (size_t)col[j]);
        y[i] = drst_table_at(s, i, (size_t)tc);
        ys[i] = drst_model_predict1(m0, x, sc);
        /* the serving model's features are bound by name on each swap */
        if (cur == m0) {
            ya[i] = ys[i];
        } else {
            size_t k = drst_model_nfeatures(cur);
            double xc[512];
            for (size_t j = 0; j < k && j < 512; j++)
                xc[j] = drst_table_at(s, i, (size_t)drst_table_col(s, drst_model_feature(cur, j)));
            ya[i] = drst_model_predict1(cur, xc, sc);
        }
        drst_monitor_event_t ev;
        if (drst_monitor_feed(mon, x, y[i], ya[i], &ev, err, sizeof(err))) {
            fprintf(stderr, "bench_retrain: %s\n", err);
            return 1;
        }
        if (!ev.triggered)
            continue;
        drst_table_t *w = NULL, *r = NULL;
        if (drst_monitor_window_table(mon, &w, err, sizeof(err)) ||
            drst_monitor_replay_table(mon, &r, err, sizeof(err)))
            return 1;
        drst_retrain_result_t res;
        drst_model_t *nm = NULL;
        int tier = tier_override ? tier_override : ev.tier;
        drst_monitor_stats_t ms0;
        drst_monitor_stats(mon, &ms0);
        rc.fresh_rows = cur == m0 ? 0 : (size_t)ms0.since_release;
        drst_err_t e = drst_retrain_window(w, r, cur, tier, &rc, &nm, &res, err, sizeof(err));
        if (e == DRST_OK) {
            if (nretrain < 4096)
                wall[nretrain] = res.wall_s;
            nretrain++;
            if (res.gate_passed) {
                if (drst_model_scratch_reserve(sc, nm) != DRST_OK)
                    return 1;
                if (cur != m0)
                    drst_model_free(cur);
                cur = nm;
                nswap++;
                if (drst_monitor_set_model(mon, cur, err, sizeof(err)))
                    return 1;
                drst_monitor_rebaseline(mon, NULL);
            } else {
                drst_model_free(nm);
            }
            if (getenv("BENCH_VERBOSE"))
                fprintf(stderr,
                        "record %zu: %s tier %d -> %s (%.2f s) new %.3f/%.3f cur %.3f/%.3f%s\n", i,
                        drst_trigger_source_name(ev.source), tier, res.best, res.wall_s,
                        res.new_val.acc20, res.new_val.acc05, res.cur_val.acc20, res.cur_val.acc05,
                        res.gate_passed ? " swap" : "");
        } else {
            fprintf(stderr, "record %zu: retrain skipped: %s\n", i, err);
        }
        drst_table_free(w);
        drst_table_free(r);
    }
    double total = now_s() - tstart;
    drst_model_metrics_t ms, ma;
    if (drst_metrics_compute(ys, y, n, &ms) || drst_metrics_compute(ya, y, n, &ma))
        return 1;
    drst_monitor_stats_t st;
    drst_monitor_stats(mon, &st);
    size_t nw = nretrain < 4096 ? nretrain : 4096;
    qsort(wall, nw, sizeof(double), cmp_d);
    double sum = 0;
    for (size_t i = 0; i < nw; i++)
        sum += wall[i];
    printf("records %zu\n", n);
    printf("static_acc20 %.4f\nstatic_acc05 %.4f\n", ms.acc20, ms.acc05);
    printf("adaptive_acc20 %.4f\nadaptive_acc05 %.4f\n", ma.acc20, ma.acc05);
    printf("triggers %llu (features %llu, error %llu, refresh %llu), suppressed %llu\n",
           (unsigned long long)st.triggers, (unsigned long long)st.triggers_by_source[1],
           (unsigned long long)st.triggers_by_source[2],
           (unsigned long long)st.triggers_by_source[3], (unsigned long long)st.suppressed);
    printf("retrains %zu swaps %zu\n", nretrain, nswap);
    if (nw)
        printf("retrain_wall_s mean %.3f median %.3f max %.3f\n", sum / (double)nw, wall[nw / 2],
               wall[nw - 1]);
    printf("loop_wall_s %.1f\n", total);
    if (cur != m0)
        drst_model_free(cur);
    drst_model_free(m0);
    drst_model_scratch_free(sc);
    drst_monitor_free(mon);
    free(y);
    free(ys);
    free(ya);
    free(x);
    free(names);
    free(col);
    drst_table_free(base);
    drst_table_free(s);
    return 0;
}

/* monitor feed throughput: F features, stationary gaussian-ish values,
 * no store and no model (the jsd detector + ring + reservoir per record) */
static int monitor_mode(int argc, char **argv)
{
    char err[DRST_ERRLEN];
    size_t F = (size_t)strtoul(opt(argc, argv, "features", "60"), NULL, 10);
    size_t N = (size_t)strtoul(opt(argc, argv, "records", "1000000"), NULL, 10);
    if (F == 0 || F > 4096 || N == 0)
        return 2;
    char **names = malloc(F * sizeof(char *));
    double *x = malloc(4096 * F * sizeof(double));
    for (size_t f = 0; f < F; f++) {
        names[f] = malloc(16);
        snprintf(names[f], 16, "f%zu", f);
    }
    uint64_t st = 1;
    for (size_t i = 0; i < 4096 * F; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (double)(st >> 11) * 0x1.0p-53;
    }
    drst_monitor_config_t mc = {0};
    mc.error_detector = "none";
    drst_monitor_t *m =
        drst_monitor_new(&mc, (const char *const *)names, F, NULL, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "bench_retrain: %s\n", err);
        return 1;
    }
    double best = 1e300;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        for (size_t i = 0; i < N; i++)
            if (drst_monitor_feed(m, x + (i & 4095) * F, x[(i & 4095) * F], NAN, NULL, err,
                                  sizeof(err)) != DRST_OK)
                return 1;
        double t = now_s() - t0;
        if (t < best)
            best = t;
    }
    printf("monitor_features %zu\nmonitor_records_per_s %.0f\nmonitor_feature_updates_per_s %.0f\n",
           F, (double)N / best, (double)N * (double)F / best);
    drst_monitor_free(m);
    for (size_t f = 0; f < F; f++)
        free(names[f]);
    free(names);
    free(x);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "monitor"))
        return monitor_mode(argc, argv);
    if (argc >= 3 && !strcmp(argv[1], "window"))
        return window_mode(argc, argv);
    if (argc >= 4 && !strcmp(argv[1], "prequential"))
        return prequential(argc, argv);
    fprintf(stderr, "usage: bench_retrain window STAGE2.csv [rows=300] [reps=3]\n"
                    "       bench_retrain prequential COMBINED.csv STAGE2.csv [key=value...]\n");
    return 2;
}
