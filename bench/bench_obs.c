/* Observability micro-benchmarks: per-record metric updates (lock-free atomics)
 * against the obvious peer, a counter behind a pthread mutex, measured in the
 * same run with 1 and 2 threads; rendering 1000 series; simulator rows/s.
 * Fixed work, one warm-up, median of 5. Prints figures; never fails on speed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drst/drst.h"

#define OPS  2000000
#define RUNS 5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct arg {
    int mode; /* 0 counter inc, 1 histogram observe, 2 mutex peer */
    drst_metric_t *c, *h;
    pthread_mutex_t *mu;
    double *plain;
};

static void *worker(void *p)
{
    struct arg *a = p;
    for (int i = 0; i < OPS; i++) {
        if (a->mode == 0) {
            drst_metric_inc(a->c);
        } else if (a->mode == 1) {
            drst_metric_observe(a->h, (double)(i & 1023) * 1e-5);
        } else {
            pthread_mutex_lock(a->mu);
            *a->plain += 1;
            pthread_mutex_unlock(a->mu);
        }
    }
    return NULL;
}

static double run(struct arg *a, int nthreads)
{
    double t[RUNS + 1];
    for (int r = 0; r <= RUNS; r++) {
        pthread_t th[2];
        double t0 = now();
        for (int i = 0; i < nthreads; i++)
            pthread_create(&th[i], NULL, worker, a);
        for (int i = 0; i < nthreads; i++)
            pthread_join(th[i], NULL);
        t[r] = (now() - t0) * 1e9 / ((double)OPS * nthreads);
    }
    qsort(t + 1, RUNS, sizeof(double), cmp); /* t[0] is the warm-up */
    return t[1 + RUNS / 2];
}

int main(void)
{
    char err[DRST_ERRLEN];
    drst_metrics_t *m = drst_metrics_new(err, sizeof(err));
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    double plain = 0;
    struct arg a = {
        0, drst_metrics_get(m, DRST_METRIC_COUNTER, "b_total", "", NULL, NULL, 0, err, sizeof(err)),
        drst_metrics_get(m, DRST_METRIC_HISTOGRAM, "b_seconds", "", NULL, NULL, 0, err,
                         sizeof(err)),
        &mu, &plain};
    for (int th = 1; th <= 2; th++) {
        a.mode = 0;
        double c = run(&a, th);
        a.mode = 1;
        double h = run(&a, th);
        a.mode = 2;
        double p = run(&a, th);
        printf("threads=%d  counter inc %.1f ns/op  histogram observe %.1f ns/op  "
               "peer mutex counter %.1f ns/op  (peer/counter = %.2fx)\n",
               th, c, h, p, p / c);
    }
    for (int i = 0; i < 1000; i++) {
        char part[16];
        snprintf(part, sizeof(part), "%d", i);
        const char *l[] = {"partition", part, "path", "adaptive", NULL};
        drst_metric_add(drst_metrics_get(m, DRST_METRIC_COUNTER, "drst_records_total", "r", l, NULL,
                                         0, err, sizeof(err)),
                        i);
    }
    double t[RUNS];
    size_t len = 0;
    for (int r = 0; r < RUNS; r++) {
        char *txt;
        double t0 = now();
        if (drst_metrics_render(m, &txt, &len, err, sizeof(err)))
            return 1;
        t[r] = now() - t0;
        free(txt);
    }
    qsort(t, RUNS, sizeof(double), cmp);
    printf("render 1000 series + 2 histograms: %.3f ms (%zu bytes)\n", t[RUNS / 2] * 1e3, len);
    drst_metrics_free(m);

    drst_sim_scenario_t *sc = drst_sim_scenario_builtin("contention", err, sizeof(err));
    drst_sim_opts_t o = {.seed = 1, .rows = 200000};
    double st[RUNS];
    for (int r = 0; r < RUNS; r++) {
        drst_sim_t *s = drst_sim_new(sc, &o, err, sizeof(err));
        double row[3 + 12 * 5];
        double t0 = now();
        while (drst_sim_next(s, row) == DRST_OK)
            ;
        st[r] = now() - t0;
        drst_sim_free(s);
    }
    qsort(st, RUNS, sizeof(double), cmp);
    printf("simulate (contention, 5 VNFs): %.0f rows/s (no peer: DRST has no simulator)\n",
           200000 / st[RUNS / 2]);
    drst_sim_scenario_free(sc);
    return 0;
}
