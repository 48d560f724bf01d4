/* S3 store benchmarks.
 *
 *   bench_s3 swap URI N      release-to-swap latency: one handle publishes a
 *                            model (drst_store_publish_model), a consumer on
 *                            another handle (another spool = another machine)
 *                            runs the hot-swap guard (drst_guard_check every
 *                            2 ms) until it serves the new model. N releases;
 *                            prints min/median/p95/max in ms.
 *   bench_s3 outage URI SECONDS SRVDIR PORT
 *                            writes (put_atomic + an immutable object and the
 *                            pointer naming it every 10th round) while the
 *                            server (scripts/s3-test-server.sh, SRVDIR, PORT)
 *                            is stopped for SECONDS; prints the put latency
 *                            (max, p99), then restarts it and times the drain.
 * URI is s3://bucket/prefix or a local directory. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drst/drst.h"
#include "drst/infer.h"

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

static drst_model_t *train(int variant)
{
    static const char *const names[] = {"a", "b", "output_rate"};
    char err[DRST_ERRLEN];
    drst_table_t *t = drst_table_new(names, 3, err, sizeof(err));
    unsigned s = 777u + (unsigned)variant;
    for (int i = 0; t && i < 200; i++) {
        s = s * 1103515245u + 12345u;
        double a = (double)(s >> 8 & 0xffff) / 65536.0;
        s = s * 1103515245u + 12345u;
        double b = (double)(s >> 8 & 0xffff) / 65536.0;
        double row[3] = {a, b, 3.0 * a - (1.0 + 0.01 * variant) * b + 5.0};
        if (drst_table_append(t, row, err, sizeof(err)))
            break;
    }
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_RIDGE;
    o.exclude = NULL;
    o.n_exclude = 0;
    drst_model_t *m = NULL;
    if (!t || drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)))
        fprintf(stderr, "bench_s3: train: %s\n", err);
    drst_table_free(t);
    return m;
}

static drst_store_t *open_as(const char *uri, const char *spool)
{
    char err[DRST_ERRLEN];
    if (spool)
        setenv("DRST_S3_SPOOL", spool, 1);
    drst_store_t *s = drst_store_open(uri, err, sizeof(err));
    if (!s)
        fprintf(stderr, "bench_s3: open %s: %s\n", uri, err);
    return s;
}

static int swap_bench(const char *uri, int n)
{
    char err[DRST_ERRLEN], sp1[256], sp2[256];
    const char *base = getenv("DRST_BENCH_TMP") ? getenv("DRST_BENCH_TMP") : "/tmp";
    snprintf(sp1, sizeof(sp1), "%s/spool-pub", base);
    snprintf(sp2, sizeof(sp2), "%s/spool-cons", base);
    drst_model_t **ms = calloc((size_t)n + 1, sizeof(*ms));
    double *lat = calloc((size_t)n, sizeof(*lat));
    if (!ms || !lat)
        return 1;
    for (int i = 0; i <= n; i++)
        if (!(ms[i] = train(i)))
            return 1;
    drst_store_t *pub = open_as(uri, sp1);
    if (!pub || drst_store_publish_model(pub, ms[0], DRST_PUBLISH_BOTH, NULL, err, sizeof(err))) {
        fprintf(stderr, "bench_s3: publish: %s\n", err);
        return 1;
    }
    drst_store_close(pub); /* uploaded before the consumer starts */
    pub = open_as(uri, sp1);
    drst_store_t *cons = open_as(uri, sp2);
    if (!pub || !cons)
        return 1;
    drst_model_t *b = NULL, *a = NULL;
    if (drst_store_load_model(cons, "baseline", &b, NULL, err, sizeof(err)) ||
        drst_store_load_model(cons, "latest", &a, NULL, err, sizeof(err))) {
        fprintf(stderr, "bench_s3: load: %s\n", err);
        return 1;
    }
    drst_model_slot_t *slot = drst_model_slot_new(b, a, err, sizeof(err));
    drst_guard_conf_t gc = {.pointer = "latest", .reload_s = 1, .gain_pp = -1000, .tau = 0.2};
    drst_guard_t *g = slot ? drst_guard_new(slot, cons, &gc, err, sizeof(err)) : NULL;
    if (!g) {
        fprintf(stderr, "bench_s3: guard: %s\n", err);
        return 1;
    }
    int done = 0;
    for (int i = 1; i <= n; i++) {
        sleep(1); /* release names carry a 1 s UTC stamp */
        uint64_t v0 = drst_model_slot_version(slot);
        double t0 = now_s();
        if (drst_store_publish_model(pub, ms[i], DRST_PUBLISH_LATEST, NULL, err, sizeof(err))) {
            fprintf(stderr, "bench_s3: publish %d: %s\n", i, err);
            break;
        }
        double tp = now_s() - t0;
        drst_guard_ev_t ev;
        while (drst_model_slot_version(slot) == v0 && now_s() - t0 < 30) {
            if (drst_guard_check(g, &ev, err, sizeof(err)))
                fprintf(stderr, "bench_s3: guard check: %s\n", err);
            if (drst_model_slot_version(slot) == v0)
                usleep(2000);
        }
        if (drst_model_slot_version(slot) == v0) {
            fprintf(stderr, "bench_s3: release %d never swapped in\n", i);
            break;
        }
        lat[done++] = (now_s() - t0) * 1e3;
        if (i == 1)
            printf("  first release: publish call returned after %.2f ms\n", tp * 1e3);
    }
    drst_guard_free(g);
    drst_model_slot_free(slot);
    drst_store_close(cons);
    drst_store_close(pub);
    if (done) {
        qsort(lat, (size_t)done, sizeof(*lat), cmp_d);
        printf("release-to-swap %s: n=%d min %.1f ms median %.1f ms p95 %.1f ms max %.1f ms\n",
               strncmp(uri, "s3://", 5) ? "local" : "s3", done, lat[0], lat[done / 2],
               lat[(int)(0.95 * (done - 1))], lat[done - 1]);
        printf("RESULT median_ms=%.3f\n", lat[done / 2]);
    }
    for (int i = 0; i <= n; i++)
        drst_model_free(ms[i]);
    free(ms);
    free(lat);
    return done == n ? 0 : 1;
}

static int spool_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int srv(const char *verb, const char *dir, const char *port)
{
    char cmd[1024];
    const char *src = getenv("DRST_SRC") ? getenv("DRST_SRC") : ".";
    snprintf(cmd, sizeof(cmd), "bash '%s/scripts/s3-test-server.sh' %s '%s' %s >/dev/null", src,
             verb, dir, port);
    return system(cmd);
}

static int outage_bench(const char *uri, double secs, const char *srvdir, const char *port)
{
    char err[DRST_ERRLEN], sp[256], key[64], val[64];
    const char *base = getenv("DRST_BENCH_TMP") ? getenv("DRST_BENCH_TMP") : "/tmp";
    snprintf(sp, sizeof(sp), "%s/spool-outage", base);
    drst_store_t *s = open_as(uri, sp);
    if (!s)
        return 1;
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof(*lat));
    if (!lat)
        return 1;
    srv("stop", srvdir, "");
    double t0 = now_s();
    while (now_s() - t0 < secs && n < cap) {
        double s0 = now_s();
        snprintf(key, sizeof(key), "results/r%06zu", n);
        snprintf(val, sizeof(val), "v%zu", n);
        int bad = drst_store_put_atomic(s, key, val, strlen(val), err, sizeof(err)) != DRST_OK;
        if (n % 10 == 0) {
            snprintf(key, sizeof(key), "models/o%06zu", n);
            bad |= drst_store_put_immutable(s, key, val, strlen(val), err, sizeof(err)) != DRST_OK;
            bad |= drst_store_put_atomic(s, "models/ptr", key, strlen(key), err, sizeof(err)) !=
                   DRST_OK;
        }
        if (bad) {
            fprintf(stderr, "bench_s3: put failed during the outage: %s\n", err);
            return 1;
        }
        lat[n++] = (now_s() - s0) * 1e3;
        usleep(10000);
    }
    int pending = spool_entries(sp);
    if (srv("start", srvdir, port) != 0) {
        fprintf(stderr, "bench_s3: restart failed\n");
        return 1;
    }
    double r0 = now_s();
    while (spool_entries(sp) > 0 && now_s() - r0 < 120)
        usleep(10000);
    double drain = now_s() - r0;
    int left = spool_entries(sp);
    drst_store_close(s);
    qsort(lat, n, sizeof(*lat), cmp_d);
    printf("outage %.0f s: %zu write rounds, put latency median %.2f ms p99 %.2f ms max %.2f ms; "
           "%d entries spooled; drained in %.2f s after the restart (%d left)\n",
           secs, n, lat[n / 2], lat[(size_t)(0.99 * (double)(n - 1))], lat[n - 1], pending, drain,
           left);
    free(lat);
    return left == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "swap"))
        return swap_bench(argv[2], atoi(argv[3]));
    if (argc >= 6 && !strcmp(argv[1], "outage"))
        return outage_bench(argv[2], strtod(argv[3], NULL), argv[4], argv[5]);
    fprintf(stderr, "usage: bench_s3 swap URI N | outage URI SECONDS SRVDIR PORT\n");
    return 2;
}
