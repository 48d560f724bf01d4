/* Per-component resource probe, like DRST's resource probe: CPU time of the
 * threads of each component and the process's resident set, from /proc.
 *
 * Threads register themselves (their kernel tid); a sampler thread wakes every
 * interval and appends one CSV row per component. A thread that has exited
 * keeps its last CPU time so a component's CPU never goes backwards. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "common/error_int.h"
#include "drst/obs.h"
#include "obs/obs_int.h"

#define MAX_COMPONENTS 64
#define MAX_THREADS    64

struct thread_ent {
    long tid;
    double last_cpu;
};

struct component {
    char name[64];
    struct thread_ent th[MAX_THREADS];
    size_t nth;
};

struct drst_probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    FILE *f;
    double interval;
    pthread_t thread;
    int have_thread, stop;
    struct component comp[MAX_COMPONENTS];
    size_t ncomp;
};

long drst_probe_gettid(void)
{
    return (long)syscall(SYS_gettid);
}

int drst_obs_parse_stat(const char *line, size_t len, uint64_t *ticks)
{
    /* comm (field 2) may hold spaces and ')': fields restart after the last ')'. */
    const char *rp = NULL;
    for (size_t i = 0; i < len; i++)
        if (line[i] == ')')
            rp = line + i;
    if (!rp)
        return -1;
    const char *p = rp + 1, *end = line + len;
    /* after ')' comes " state ppid ..." : state is field 3, utime 14, stime 15 */
    uint64_t v[2] = {0, 0};
    int field = 2;
    while (p < end && field < 15) {
        while (p < end && *p == ' ')
            p++;
        if (p >= end)
            return -1;
        field++;
        const char *tok = p;
        while (p < end && *p != ' ' && *p != '\n')
            p++;
        if (field == 14 || field == 15) {
            uint64_t x = 0;
            if (tok == p)
                return -1;
            for (const char *q = tok; q < p; q++) {
                if (*q < '0' || *q > '9' || x > UINT64_MAX / 10 - 10)
                    return -1;
                x = x * 10 + (uint64_t)(*q - '0');
            }
            v[field - 14] = x;
        }
    }
    if (field < 15)
        return -1;
    *ticks = v[0] + v[1];
    return 0;
}

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    buf[n] = 0;
    *len = (size_t)n;
    return 0;
}

drst_err_t drst_probe_read_cpu(long pid, long tid, double *cpu_s, char *err, size_t errlen)
{
    char path[96], buf[1024];
    size_t len;
    char ps[32];
    if (pid)
        snprintf(ps, sizeof(ps), "%ld", pid);
    else
        snprintf(ps, sizeof(ps), "self");
    if (tid)
        snprintf(path, sizeof(path), "/proc/%s/task/%ld/stat", ps, tid);
    else
        snprintf(path, sizeof(path), "/proc/%s/stat", ps);
    if (read_small(path, buf, sizeof(buf), &len))
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read %s", path);
    uint64_t ticks;
    if (drst_obs_parse_stat(buf, len, &ticks))
        return drst_seterr(err, errlen, DRST_ERR_PARSE, "%s: unexpected format", path);
    long hz = sysconf(_SC_CLK_TCK);
    *cpu_s = (double)ticks / (double)(hz > 0 ? hz : 100);
    return DRST_OK;
}

drst_err_t drst_probe_read_rss(long pid, uint64_t *rss_bytes, char *err, size_t errlen)
{
    char path[64], buf[256];
    size_t len;
    if (pid)
        snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/statm");
    if (read_small(path, buf, sizeof(buf), &len))
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read %s", path);
    unsigned long long size, res;
    if (sscanf(buf, "%llu %llu", &size, &res) != 2)
        return drst_seterr(err, errlen, DRST_ERR_PARSE, "%s: unexpected format", path);
    long pg = sysconf(_SC_PAGESIZE);
    *rss_bytes = (uint64_t)res * (uint64_t)(pg > 0 ? pg : 4096);
    return DRST_OK;
}

static double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Caller holds p->mu. */
static drst_err_t sample_locked(drst_probe_t *p, char *err, size_t errlen)
{
    double t = now_real();
    uint64_t rss = 0;
    double pcpu = 0;
    drst_err_t rc = drst_probe_read_rss(0, &rss, err, errlen);
    if (!rc)
        rc = drst_probe_read_cpu(0, 0, &pcpu, err, errlen);
    if (rc)
        return rc;
    fprintf(p->f, "%.6f,process,%.4f,%llu\n", t, pcpu, (unsigned long long)rss);
    for (size_t i = 0; i < p->ncomp; i++) {
        struct component *c = &p->comp[i];
        double sum = 0;
        for (size_t k = 0; k < c->nth; k++) {
            double v;
            if (drst_probe_read_cpu(0, c->th[k].tid, &v, NULL, 0) == DRST_OK)
                c->th[k].last_cpu = v;
            sum += c->th[k].last_cpu;
        }
        fprintf(p->f, "%.6f,%s,%.4f,%llu\n", t, c->name, sum, (unsigned long long)rss);
    }
    if (fflush(p->f) != 0 || ferror(p->f))
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write resources CSV");
    return DRST_OK;
}

static void *probe_main(void *arg)
{
    drst_probe_t *p = arg;
    pthread_mutex_lock(&p->mu);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!p->stop) {
        double ns = (double)next.tv_nsec + p->interval * 1e9;
        next.tv_sec += (time_t)(ns / 1e9);
        next.tv_nsec = (long)(ns - (double)(time_t)(ns / 1e9) * 1e9);
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &next) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        (void)sample_locked(p, NULL, 0); /* a failed sample is retried next tick */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

drst_probe_t *drst_probe_new(const char *csv_path, double interval_s, char *err, size_t errlen)
{
    if (!csv_path || !(interval_s >= 0) || interval_s > 86400) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "probe: bad path or interval %g s", interval_s);
        return NULL;
    }
    drst_probe_t *p = calloc(1, sizeof(*p));
    if (!p) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->interval = interval_s;
    p->f = fopen(csv_path, "a");
    if (!p->f) {
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open '%s'", csv_path);
        free(p);
        return NULL;
    }
    if (ftell(p->f) == 0)
        fputs("t,component,cpu_s,rss_bytes\n", p->f);
    fflush(p->f);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (interval_s > 0) {
        if (pthread_create(&p->thread, NULL, probe_main, p)) {
            drst_seterr(err, errlen, DRST_ERR_NOMEM, "probe: cannot start thread");
            fclose(p->f);
            pthread_mutex_destroy(&p->mu);
            pthread_cond_destroy(&p->cv);
            free(p);
            return NULL;
        }
        p->have_thread = 1;
    }
    return p;
}

drst_err_t drst_probe_register_self(drst_probe_t *p, const char *component, char *err,
                                    size_t errlen)
{
    if (!p || !component || !*component || strlen(component) >= sizeof(p->comp[0].name))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "probe: bad component name");
    if (!strcmp(component, "process"))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "probe: 'process' is reserved");
    long tid = drst_probe_gettid();
    drst_err_t rc = DRST_OK;
    pthread_mutex_lock(&p->mu);
    struct component *c = NULL;
    for (size_t i = 0; i < p->ncomp; i++)
        if (!strcmp(p->comp[i].name, component))
            c = &p->comp[i];
    if (!c) {
        if (p->ncomp == MAX_COMPONENTS) {
            rc = drst_seterr(err, errlen, DRST_ERR_TOOBIG, "probe: more than %d components",
                             MAX_COMPONENTS);
            goto out;
        }
        c = &p->comp[p->ncomp++];
        memset(c, 0, sizeof(*c));
        /* Keep the CSV parseable: no separators or quotes in the name. */
        for (size_t i = 0; component[i]; i++) {
            char ch = component[i];
            c->name[i] = (ch == ',' || ch == '"' || ch == '\n' || ch == '\r') ? '_' : ch;
        }
    }
    for (size_t k = 0; k < c->nth; k++)
        if (c->th[k].tid == tid)
            goto out;
    if (c->nth == MAX_THREADS) {
        rc = drst_seterr(err, errlen, DRST_ERR_TOOBIG, "probe: more than %d threads in '%s'",
                         MAX_THREADS, component);
        goto out;
    }
    c->th[c->nth].tid = tid;
    c->th[c->nth].last_cpu = 0;
    c->nth++;
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

drst_err_t drst_probe_sample(drst_probe_t *p, char *err, size_t errlen)
{
    pthread_mutex_lock(&p->mu);
    drst_err_t rc = sample_locked(p, err, errlen);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void drst_probe_free(drst_probe_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->have_thread)
        pthread_join(p->thread, NULL);
    (void)sample_locked(p, NULL, 0);
    fclose(p->f);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
