/* Drift monitor throughput on one core: feature-updates per second of the
 * "jsd" detector (incremental window histograms, JSD evaluation every S
 * records), plus records per second of the error detectors.
 *
 *   bench_drift [features] [bins] [window] [stride] [records] [reps]
 *
 * Data: a fixed-seed pool of Gaussian rows with a 1 sd mean shift half-way, so
 * evaluations see both quiet and drifted windows. Prints the median of
 * `reps` timed runs after one warm-up run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drst/drift.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *s)
{
    double u = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static size_t arg(int argc, char **argv, int i, size_t def)
{
    return argc > i ? (size_t)strtoull(argv[i], NULL, 10) : def;
}

int main(int argc, char **argv)
{
    size_t F = arg(argc, argv, 1, 60), B = arg(argc, argv, 2, 64), W = arg(argc, argv, 3, 300);
    size_t S = arg(argc, argv, 4, 50), N = arg(argc, argv, 5, 1000000);
    size_t reps = arg(argc, argv, 6, 5), pool = 8192;
    drst_detector_config_t cfg = {.nfeatures = F, .bins = B, .window = W, .stride = S};
    double *x = malloc(pool * F * sizeof(double)), *base = malloc(2000 * F * sizeof(double));
    double t[32], e[32];
    char err[DRST_ERRLEN];
    uint64_t s = 2024, evals = 0, tiered = 0;
    if (!x || !base || reps == 0 || reps > 32) {
        fprintf(stderr, "bench_drift: bad arguments or out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < pool * F; i++)
        x[i] = gauss(&s) + ((i / F) >= pool / 2 ? 1.0 : 0.0);
    for (size_t i = 0; i < 2000 * F; i++)
        base[i] = gauss(&s);

    for (size_t rep = 0; rep <= reps; rep++) {
        drst_detector_t *d = drst_detector_new("jsd", &cfg, err, sizeof(err));
        double t0;
        if (!d || drst_jsd_set_baseline(d, base, 2000, err, sizeof(err)) != DRST_OK) {
            fprintf(stderr, "bench_drift: %s\n", err);
            return 1;
        }
        evals = tiered = 0;
        t0 = now();
        for (size_t i = 0; i < N; i++) {
            drst_drift_result_t r;
            if (drst_detector_update(d, x + (i % pool) * F, F, &r) != DRST_OK)
                return 1;
            evals += (uint64_t)r.evaluated;
            tiered += (uint64_t)(r.evaluated && r.tier > 0);
        }
        if (rep > 0) /* rep 0 is the warm-up */
            t[rep - 1] = now() - t0;
        drst_detector_free(d);
    }
    qsort(t, reps, sizeof(double), cmp);
    printf("jsd: features %zu bins %zu window %zu stride %zu records %zu evaluations %llu "
           "(tiered %llu)\n",
           F, B, W, S, N, (unsigned long long)evals, (unsigned long long)tiered);
    printf("jsd_seconds_median %.4f\n", t[reps / 2]);
    printf("jsd_records_per_s %.0f\n", (double)N / t[reps / 2]);
    printf("jsd_feature_updates_per_s %.0f\n", (double)N * (double)F / t[reps / 2]);

    for (int k = 1; k <= 2; k++) {
        const char *kind = drst_detector_kind_name((size_t)k);
        for (size_t rep = 0; rep <= reps; rep++) {
            drst_detector_t *d = drst_detector_new(kind, NULL, err, sizeof(err));
            double t0;
            if (!d) {
                fprintf(stderr, "bench_drift: %s\n", err);
                return 1;
            }
            t0 = now();
            for (size_t i = 0; i < N; i++) {
                double v = fabs(0.1 + 0.05 * x[(i % pool) * F]);
                if (drst_detector_update(d, &v, 1, NULL) != DRST_OK)
                    return 1;
            }
            if (rep > 0)
                e[rep - 1] = now() - t0;
            drst_detector_free(d);
        }
        qsort(e, reps, sizeof(double), cmp);
        printf("%s_updates_per_s %.0f\n", kind, (double)N / e[reps / 2]);
    }
    free(x);
    free(base);
    return 0;
}
