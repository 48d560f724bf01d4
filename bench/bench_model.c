/* Model plane benchmark: mlp(64,32) training wall time on a CSV, single-row
 * prediction latency (median over repeats) and batched throughput on one
 * core. Usage: bench_model DATA.csv [epochs]. Figures only; never gates. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drst/drst.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_model DATA.csv [epochs]\n");
        return 2;
    }
    size_t epochs = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 200;
    char err[DRST_ERRLEN];
    drst_table_t *t = NULL;
    openblas_set_num_threads(1);
    if (drst_table_read_csv(argv[1], NULL, &t, NULL, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_model: %s\n", err);
        return 1;
    }
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.split = DRST_SPLIT_SHUFFLED;
    o.max_epochs = epochs;
    o.patience = 0;
    drst_model_t *m = NULL;
    drst_train_report_t rep;

    /* 1. training wall time, all features, fixed epochs; best of 3 (the
     * machine is shared: the minimum is the least disturbed run) */
    double train_s = 1e30, tsum = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        if (drst_model_train(t, &o, &m, &rep, NULL, err, sizeof(err)) != DRST_OK) {
            fprintf(stderr, "bench_model: %s\n", err);
            return 1;
        }
        double dt = now() - t0;
        tsum += dt;
        train_s = dt < train_s ? dt : train_s;
        drst_model_free(m);
    }
    printf("train_mlp_seconds %.4f (best of 3, mean %.4f; features %zu, rows %zu, epochs %zu, "
           "batch %zu, val acc@0.2 %.4f)\n",
           train_s, tsum / 3, rep.n_features, rep.n_train, epochs, o.batch, rep.val.acc20);

    /* 2. prediction with mlp(64,32) on the 10 features most correlated */
    o.topk = 10;
    o.max_epochs = 20;
    if (drst_model_train(t, &o, &m, &rep, NULL, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_model: %s\n", err);
        return 1;
    }
    size_t nf = drst_model_nfeatures(m);
    long idx[16];
    if (nf != 10 || drst_model_bind(m, t, idx, err, sizeof(err)) != DRST_OK) {
        fprintf(stderr, "bench_model: expected 10 features\n");
        return 1;
    }
    size_t nrows = 1 << 16;
    double *x = malloc(nrows * nf * sizeof(double)), *y = malloc(nrows * sizeof(double));
    for (size_t i = 0; i < nrows; i++)
        for (size_t j = 0; j < nf; j++)
            x[i * nf + j] = drst_table_at(t, i % t->nrows, (size_t)idx[j]);
    drst_model_scratch_t *s = drst_model_scratch_new(m, 256);
    volatile double sink = 0;
    for (size_t i = 0; i < 20000; i++) /* warm-up */
        sink += drst_model_predict1(m, x + (i % nrows) * nf, s);
    enum { REPS = 31, CALLS = 20000 };
    double lat[REPS];
    for (int r = 0; r < REPS; r++) {
        double a = now();
        for (size_t i = 0; i < CALLS; i++)
            sink += drst_model_predict1(m, x + (i % nrows) * nf, s);
        lat[r] = (now() - a) / CALLS * 1e9;
    }
    qsort(lat, REPS, sizeof(double), cmp);
    printf("predict1_ns_median %.1f (p10 %.1f, p90 %.1f; mlp 10-64-32-1, %d x %d calls)\n",
           lat[REPS / 2], lat[REPS / 10], lat[REPS * 9 / 10], REPS, CALLS);
    double thr[9];
    for (int r = 0; r < 9; r++) {
        double a = now();
        if (drst_model_predict(m, x, nrows, nf, y, s) != DRST_OK)
            return 1;
        thr[r] = (double)nrows / (now() - a);
        sink += y[r];
    }
    qsort(thr, 9, sizeof(double), cmp);
    printf("predict_batch_records_per_s %.0f (median of 9 x %zu rows, chunk 256, one core)\n",
           thr[4], nrows);
    (void)sink;
    drst_model_scratch_free(s);
    drst_model_free(m);
    free(x);
    free(y);
    drst_table_free(t);
    return 0;
}
