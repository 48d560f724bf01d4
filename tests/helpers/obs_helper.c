/* Test helper for the observability CLI tests (not installed).
 *
 *   obs_helper serve ADDR SECONDS   serve a small registry on ADDR, print "PORT <n>",
 *                                   update it every 10 ms until SECONDS pass or stdin closes
 *   obs_helper probe CSV             two threads burn CPU as components alpha/beta while a
 *                                   probe samples every 50 ms; prints "READY pid tidA tidB"
 *                                   and waits for a line on stdin before exiting
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drst/drst.h"
#include "drst/obs.h"

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int health(void *opaque, char *msg, size_t len)
{
    (void)opaque;
    snprintf(msg, len, "ok: obs_helper");
    return 0;
}

static int serve(const char *addr, double seconds)
{
    char err[DRST_ERRLEN];
    drst_metrics_t *m = drst_metrics_new(err, sizeof(err));
    if (!m)
        return fprintf(stderr, "%s\n", err), 1;
    const char *l0[] = {"partition", "0", "path", "adaptive", NULL};
    const char *l1[] = {"partition", "1", "path", "baseline", NULL};
    const char *la[] = {"path", "baseline", "tau", "0.1", NULL};
    const char *li[] = {"note", "a \"quoted\" \\ value\nline2", NULL};
    const double b[] = {0.001, 0.0025, 0.005, 0.01};
    drst_metric_t *r0 = drst_metrics_get(m, DRST_METRIC_COUNTER, "drst_test_records_total",
                                         "Records processed.", l0, NULL, 0, err, sizeof(err));
    drst_metric_t *r1 = drst_metrics_get(m, DRST_METRIC_COUNTER, "drst_test_records_total",
                                         "Records processed.", l1, NULL, 0, err, sizeof(err));
    drst_metric_t *acc = drst_metrics_get(m, DRST_METRIC_GAUGE, "drst_test_accuracy",
                                          "Accuracy at tau.", la, NULL, 0, err, sizeof(err));
    drst_metric_t *info =
        drst_metrics_get(m, DRST_METRIC_GAUGE, "drst_test_info", "Help with \\ and\nnewline.", li,
                         NULL, 0, err, sizeof(err));
    drst_metric_t *lat = drst_metrics_get(m, DRST_METRIC_HISTOGRAM, "drst_test_latency_seconds",
                                          "Per-record latency.", NULL, b, 4, err, sizeof(err));
    if (!r0 || !r1 || !acc || !info || !lat)
        return fprintf(stderr, "%s\n", err), 1;
    drst_metric_set(acc, 0.875);
    drst_metric_set(info, 1);
    drst_http_t *h = drst_http_start(addr, m, health, NULL, err, sizeof(err));
    if (!h)
        return fprintf(stderr, "%s\n", err), 1;
    printf("PORT %u\n", (unsigned)drst_http_port(h));
    fflush(stdout);
    double end = now_mono() + seconds;
    while (now_mono() < end) {
        drst_metric_inc(r0);
        drst_metric_add(r1, 2);
        drst_metric_observe(lat, 0.003);
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        if (poll(&pfd, 1, 10) > 0) {
            char c;
            if (read(0, &c, 1) <= 0)
                break;
        }
    }
    drst_http_stop(h);
    drst_metrics_free(m);
    return 0;
}

struct worker {
    drst_probe_t *p;
    const char *name;
    double burn_s;
    long tid;
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *done, *quit;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    char err[DRST_ERRLEN];
    if (drst_probe_register_self(w->p, w->name, err, sizeof(err)))
        fprintf(stderr, "%s\n", err);
    w->tid = drst_probe_gettid();
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    volatile double x = 0;
    do {
        for (int i = 0; i < 100000; i++)
            x += i * 1e-9;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while (x >= 0 &&
             (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 < w->burn_s);
    pthread_mutex_lock(w->mu);
    (*w->done)++;
    pthread_cond_broadcast(w->cv);
    while (!*w->quit) /* stay alive so /proc/self/task/<tid> still exists */
        pthread_cond_wait(w->cv, w->mu);
    pthread_mutex_unlock(w->mu);
    return NULL;
}

static int probe(const char *csv)
{
    char err[DRST_ERRLEN];
    drst_probe_t *p = drst_probe_new(csv, 0.05, err, sizeof(err));
    if (!p)
        return fprintf(stderr, "%s\n", err), 1;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int done = 0, quit = 0;
    struct worker w[2] = {{p, "alpha", 0.3, 0, &mu, &cv, &done, &quit},
                          {p, "beta", 0.6, 0, &mu, &cv, &done, &quit}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, work, &w[i]);
    pthread_mutex_lock(&mu);
    while (done < 2)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    if (drst_probe_sample(p, err, sizeof(err)))
        fprintf(stderr, "%s\n", err);
    printf("READY %ld %ld %ld\n", (long)getpid(), w[0].tid, w[1].tid);
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof(line), stdin))
        line[0] = 0;
    pthread_mutex_lock(&mu);
    quit = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    drst_probe_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "serve"))
        return serve(argv[2], strtod(argv[3], NULL));
    if (argc == 3 && !strcmp(argv[1], "probe"))
        return probe(argv[2]);
    fprintf(stderr, "usage: obs_helper serve ADDR SECONDS | probe CSV\n");
    return 2;
}
