/* The JSD monitor on DRST's real stream: baseline = the offline training set
 * (combined.csv), stream = stage2_resource_stimulus_A-B-C.csv (CPU
 * contention patterns A, B, C). Prints where triggers fire; asserts only
 * robust facts. Skips (77) when ../shared/data is absent. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "drst/drift.h"

/* A small CSV reader for these two numeric files (no quoting in them);
 * the library's table reader belongs to another plane and is not needed. */
struct csv {
    size_t nrows, ncols;
    char **names;
    double *data;
};

static void csv_free(struct csv *c)
{
    for (size_t i = 0; i < c->ncols; i++)
        free(c->names[i]);
    free(c->names);
    free(c->data);
}

static size_t split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    line[strcspn(line, "\r\n")] = 0;
    while (n < max) {
        char *q = strchr(p, ',');
        fields[n++] = p;
        if (!q)
            break;
        *q = 0;
        p = q + 1;
    }
    return n;
}

static int csv_read(const char *path, struct csv *c)
{
    FILE *f = fopen(path, "r");
    static char line[1 << 16];
    char *fields[512];
    size_t cap = 0;
    memset(c, 0, sizeof(*c));
    if (!f || !fgets(line, sizeof(line), f))
        return -1;
    c->ncols = split(line, fields, 512);
    c->names = calloc(c->ncols, sizeof(char *));
    for (size_t i = 0; i < c->ncols; i++)
        c->names[i] = strdup(fields[i]);
    while (fgets(line, sizeof(line), f)) {
        size_t n = split(line, fields, 512);
        if (n != c->ncols)
            continue;
        if (c->nrows == cap) {
            cap = cap ? cap * 2 : 1024;
            c->data = realloc(c->data, cap * c->ncols * sizeof(double));
        }
        for (size_t i = 0; i < n; i++) {
            char *end;
            double v = strtod(fields[i], &end);
            c->data[c->nrows * c->ncols + i] = (end == fields[i] || *end) ? NAN : v;
        }
        c->nrows++;
    }
    fclose(f);
    return 0;
}

static long col(const struct csv *c, const char *name)
{
    for (size_t i = 0; i < c->ncols; i++)
        if (strcmp(c->names[i], name) == 0)
            return (long)i;
    return -1;
}

static struct csv train, stream;
static size_t nfeat;
static long fcol_train[128], fcol_stream[128];
static const char *fname[128];

static int load(void **state)
{
    const char *data = getenv("DRST_DATA");
    char p1[1024], p2[1024];
    (void)state;
    snprintf(p1, sizeof(p1), "%s/drst/combined.csv", data && *data ? data : "../shared/data");
    snprintf(p2, sizeof(p2), "%s/drst/stage2_resource_stimulus_A-B-C.csv",
             data && *data ? data : "../shared/data");
    if (csv_read(p1, &train) || csv_read(p2, &stream)) {
        fprintf(stderr, "skip: %s or %s not found (../shared/data absent)\n", p1, p2);
        exit(77);
    }
    /* Features: the perf counters, i.e. every column of the training set
     * except the index, input_rate, output_rate (target) and latency. */
    for (size_t i = 0; i < train.ncols && nfeat < 128; i++) {
        const char *n = train.names[i];
        long s;
        if (!*n || strcmp(n, "Unnamed: 0") == 0 || strcmp(n, "input_rate") == 0 ||
            strcmp(n, "output_rate") == 0 || strcmp(n, "latency") == 0)
            continue;
        s = col(&stream, n);
        if (s < 0)
            continue;
        fcol_train[nfeat] = (long)i;
        fcol_stream[nfeat] = s;
        fname[nfeat] = n;
        nfeat++;
    }
    return 0;
}

static int unload(void **state)
{
    (void)state;
    csv_free(&train);
    csv_free(&stream);
    return 0;
}

static double *matrix(const struct csv *c, const long *cols)
{
    double *x = malloc(c->nrows * nfeat * sizeof(double));
    assert_non_null(x);
    for (size_t r = 0; r < c->nrows; r++)
        for (size_t f = 0; f < nfeat; f++)
            x[r * nfeat + f] = c->data[r * c->ncols + (size_t)cols[f]];
    return x;
}

/* With `rebase`, every trigger is followed by a rebaseline, as after a
 * retrain and release in the full loop. */
static uint64_t run(drst_detector_t *d, const double *x, size_t n, uint64_t *evals,
                    uint64_t *tiered, int rebase)
{
    uint64_t trig = 0;
    *evals = *tiered = 0;
    for (size_t r = 0; r < n; r++) {
        drst_drift_result_t res;
        assert_int_equal(drst_detector_update(d, x + r * nfeat, nfeat, &res), DRST_OK);
        *evals += res.evaluated;
        *tiered += res.evaluated && res.tier > 0;
        if (res.triggered) {
            const double *sc = drst_jsd_feature_scores(d);
            size_t top = 0;
            for (size_t f = 1; f < nfeat; f++)
                top = sc[f] > sc[top] ? f : top;
            print_message("  trigger at stream row %zu: tier %c, mean JSD %.4f bits, %zu/%zu "
                          "features drifted, top %s (%.3f)\n",
                          r, 'A' + res.tier - 1, res.score, res.n_drifted, nfeat, fname[top],
                          sc[top]);
            trig++;
            if (rebase)
                drst_detector_rebaseline(d);
        }
    }
    return trig;
}

static void stream_triggers_with_training_baseline(void **state)
{
    drst_detector_config_t cfg = {
        .nfeatures = nfeat, .bins = 64, .window = 300, .stride = 50, .cooldown = 300};
    double *xt = matrix(&train, fcol_train), *xs = matrix(&stream, fcol_stream);
    char err[DRST_ERRLEN] = "";
    drst_calibration_t cal;
    drst_detector_t *d = drst_detector_new("jsd", &cfg, err, sizeof(err));
    uint64_t trig, evals, tiered;
    (void)state;
    assert_non_null(d);
    print_message("%zu features; baseline combined.csv %zu rows; stream %zu rows\n", nfeat,
                  train.nrows, stream.nrows);
    assert_true(nfeat >= 50);
    assert_int_equal(drst_jsd_calibrate(d, xt, train.nrows, &cal, err, sizeof(err)), DRST_OK);
    print_message("calibrated: null mean %.4f q99 %.4f -> A %.4f B %.4f C %.4f%s\n", cal.null_mean,
                  cal.null_q, cal.thresholds[0], cal.thresholds[1], cal.thresholds[2],
                  cal.clamped ? " (clamped)" : "");
    trig = run(d, xs, stream.nrows, &evals, &tiered, 0);
    print_message("training baseline: %llu triggers, %llu of %llu evaluations tiered\n",
                  (unsigned long long)trig, (unsigned long long)tiered, (unsigned long long)evals);
    assert_true(trig >= 1);
    assert_true(trig <= stream.nrows / cfg.cooldown + 1);
    assert_true(evals > 0);
    drst_detector_free(d);

    /* DRST-faithful set-up: first-window baseline, window 300, stride 50,
     * 64 bins, with thresholds calibrated on that first window. */
    cfg.auto_calibrate = 1;
    d = drst_detector_new("jsd", &cfg, err, sizeof(err));
    assert_non_null(d);
    trig = run(d, xs, stream.nrows, &evals, &tiered, 0);
    print_message("first-window baseline (calibrated A %.4f B %.4f C %.4f): %llu triggers, %llu "
                  "of %llu evaluations tiered\n",
                  drst_detector_config(d)->thresholds[0], drst_detector_config(d)->thresholds[1],
                  drst_detector_config(d)->thresholds[2], (unsigned long long)trig,
                  (unsigned long long)tiered, (unsigned long long)evals);
    assert_true(trig >= 1);
    assert_true(tiered < evals);
    drst_detector_free(d);

    /* The loop as the monitor runs it: training baseline, and after each
     * trigger a rebaseline on the next window (a new release). */
    cfg.auto_calibrate = 0;
    d = drst_detector_new("jsd", &cfg, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(drst_jsd_calibrate(d, xt, train.nrows, NULL, err, sizeof(err)), DRST_OK);
    trig = run(d, xs, stream.nrows, &evals, &tiered, 1);
    print_message("training baseline, rebaseline after each trigger: %llu triggers, %llu of %llu "
                  "evaluations tiered\n",
                  (unsigned long long)trig, (unsigned long long)tiered, (unsigned long long)evals);
    assert_true(trig >= 1);
    assert_true(tiered < evals);
    drst_detector_free(d);

    /* The same with block calibration (contiguous null samples), which
     * accounts for the autocorrelation of a real time series. */
    cfg.calib_block = 1;
    d = drst_detector_new("jsd", &cfg, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(drst_jsd_calibrate(d, xt, train.nrows, &cal, err, sizeof(err)), DRST_OK);
    print_message("block calibration on combined.csv: null q %.4f -> A %.4f B %.4f C %.4f\n",
                  cal.null_q, cal.thresholds[0], cal.thresholds[1], cal.thresholds[2]);
    trig = run(d, xs, stream.nrows, &evals, &tiered, 1);
    print_message("block-calibrated, rebaseline after each trigger: %llu triggers, %llu of %llu "
                  "evaluations tiered\n",
                  (unsigned long long)trig, (unsigned long long)tiered, (unsigned long long)evals);
    assert_true(trig >= 1);
    assert_true(tiered < evals);
    drst_detector_free(d);
    free(xt);
    free(xs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_triggers_with_training_baseline),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
