/* Flow engine micro-benchmark (no file I/O):
 *   1. memory per live flow: RSS growth while 1,000,000 distinct flows are live;
 *   2. engine throughput with full statistics on in-memory TCP traffic
 *      (bulk data + an ACK every second segment, 1 % retransmissions), on 1
 *      worker (inline) and on N workers; median of 3 runs after a warm-up.
 * usage: bench_flow [packets=10000000] [workers=2] [flows=64]
 * (many flows, e.g. 200000, make the per-packet table work cache-missing:
 * the case where sharding over workers pays) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drst/flow.h"

#define LT_RAW 101

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static long rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2)
        res = 0;
    fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

static void mk(uint8_t *p, uint32_t a, uint32_t b, uint16_t sp, uint16_t dp, uint8_t flags,
               uint32_t seq, uint32_t ack, uint16_t len)
{
    uint16_t tot = (uint16_t)(40 + len);
    memset(p, 0, 40);
    p[0] = 0x45, p[2] = (uint8_t)(tot >> 8), p[3] = (uint8_t)tot, p[8] = 64, p[9] = 6;
    p[12] = (uint8_t)(a >> 24), p[13] = (uint8_t)(a >> 16), p[14] = (uint8_t)(a >> 8);
    p[15] = (uint8_t)a;
    p[16] = (uint8_t)(b >> 24), p[17] = (uint8_t)(b >> 16), p[18] = (uint8_t)(b >> 8);
    p[19] = (uint8_t)b;
    p[20] = (uint8_t)(sp >> 8), p[21] = (uint8_t)sp, p[22] = (uint8_t)(dp >> 8),
    p[23] = (uint8_t)dp;
    p[24] = (uint8_t)(seq >> 24), p[25] = (uint8_t)(seq >> 16), p[26] = (uint8_t)(seq >> 8);
    p[27] = (uint8_t)seq;
    p[28] = (uint8_t)(ack >> 24), p[29] = (uint8_t)(ack >> 16), p[30] = (uint8_t)(ack >> 8);
    p[31] = (uint8_t)ack;
    p[32] = 5 << 4, p[33] = flags;
}

static void sink_flow(void *o, const drst_flow_record_t *r)
{
    *(uint64_t *)o += r->c2s.packets + r->s2c.packets;
}

/* Pre-built trace: nflows bulk TCP flows interleaved. 40 bytes/packet. */
static uint8_t *build(size_t n, unsigned nflows, uint32_t *wire)
{
    uint8_t *buf = malloc(n * 40);
    uint32_t *seq = calloc(nflows, sizeof(uint32_t));
    if (!buf || !seq)
        exit(1);
    for (size_t i = 0; i < n; i++) {
        unsigned f = (unsigned)(i % nflows);
        uint32_t a = 0x0a000001u, b = 0x0a000100u + f;
        uint16_t sp = (uint16_t)(40000 + f);
        size_t k = i / nflows;
        if (k % 3 == 2) { /* ACK every second segment */
            mk(buf + i * 40, b, a, 5201, sp, 0x10, 1, seq[f], 0);
            wire[i] = 66;
        } else {
            uint32_t s = seq[f];
            if (k % 300 == 1 && s > 2896)
                s -= 2896; /* a retransmission now and then */
            else
                seq[f] += 1448;
            mk(buf + i * 40, a, b, sp, 5201, 0x10, s, 1, 1448);
            wire[i] = 1514;
        }
    }
    free(seq);
    return buf;
}

static int cmpd(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void run(const uint8_t *buf, const uint32_t *wire, size_t n, unsigned workers)
{
    double wall[3], cpu[3];
    for (int r = -1; r < 3; r++) {
        drst_flow_config_t c;
        char err[DRST_ERRLEN];
        uint64_t seen = 0;
        drst_flow_config_init(&c);
        c.workers = workers;
        c.interval = 1;
        drst_flow_sink_t s = {sink_flow, NULL, &seen, NULL};
        drst_flow_engine_t *e = drst_flow_engine_new(&c, &s, err, sizeof(err));
        if (!e) {
            fprintf(stderr, "bench_flow: %s\n", err);
            exit(1);
        }
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        uint64_t ts = 1700000000ull * 1000000000ull;
        for (size_t i = 0; i < n; i++, ts += 100)
            if (drst_flow_engine_packet(e, LT_RAW, buf + i * 40, 40, wire[i], ts) != DRST_OK)
                exit(1);
        if (drst_flow_engine_finish(e, err, sizeof(err)) != DRST_OK)
            exit(1);
        double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
        drst_flow_engine_free(e);
        if (seen != n) {
            fprintf(stderr, "bench_flow: %llu of %zu packets in records\n",
                    (unsigned long long)seen, n);
            exit(1);
        }
        if (r >= 0) {
            wall[r] = w1 - w0;
            cpu[r] = c1 - c0;
        }
    }
    qsort(wall, 3, sizeof(double), cmpd);
    qsort(cpu, 3, sizeof(double), cmpd);
    printf("engine (in memory, full statistics) workers=%u: %.2f Mpps wall (median %.3f s), "
           "%.2f Mpps per CPU-second\n",
           workers, (double)n / wall[1] / 1e6, wall[1], (double)n / cpu[1] / 1e6);
}

/* RSS growth of the whole process from before the engine exists to
 * 1,000,000 live flows in the default 2^20-flow table (which they do not
 * fill, so the bucket array is not divided by a flattering count), over the
 * live flows. With workers > 1 it includes the rings (a fixed cost). */
static int mem_per_flow(unsigned workers)
{
    const uint32_t nf = 1000000;
    drst_flow_config_t c;
    char err[DRST_ERRLEN];
    uint8_t p[40];
    drst_flow_config_init(&c);
    c.interval = 0;
    c.workers = workers;
    long r0 = rss_bytes();
    drst_flow_engine_t *e = drst_flow_engine_new(&c, NULL, err, sizeof(err));
    if (!e)
        return 1;
    for (uint32_t i = 0; i < nf; i++) {
        mk(p, 0x0a000000u + i, 0xc0a80001u, (uint16_t)(1024 + i % 60000), 80, 0x02, i, 0, 0);
        if (drst_flow_engine_packet(e, LT_RAW, p, 40, 60, 1000000000ull + i) != DRST_OK)
            return 1;
    }
    /* workers have seen every packet (exports go nowhere; memory stays) */
    if (drst_flow_engine_finish(e, err, sizeof(err)) != DRST_OK)
        return 1;
    long r1 = rss_bytes();
    drst_flow_counters_t k;
    drst_flow_engine_counters(e, &k);
    printf("memory, workers=%u: %llu live flows, RSS +%.1f MB = %.1f bytes per live flow "
           "(engine accounting: %zu B = flow state + its share of the bucket array; the rest is "
           "chunk rounding, the chunk index%s)\n",
           workers, (unsigned long long)k.max_live_flows, (double)(r1 - r0) / 1e6,
           (double)(r1 - r0) / (double)k.max_live_flows, drst_flow_engine_bytes_per_flow(e),
           workers > 1 ? ", the rings and thread stacks" : "");
    drst_flow_engine_free(e);
    return 0;
}

/* mem_per_flow in a fresh child process: after a first engine is freed,
 * glibc raises its mmap threshold and serves the next one's chunks from the
 * heap without page rounding, which would flatter the second figure. */
static int mem_fresh(unsigned workers)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        int rc = mem_per_flow(workers);
        fflush(stdout);
        _exit(rc);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return 1;
    return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    unsigned w = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2;
    unsigned nflows = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 64;
    if (nflows < 1 || nflows > 1000000) {
        fprintf(stderr, "bench_flow: flows must be in [1, 1000000]\n");
        return 2;
    }

    /* 1. memory per live flow */
    if (mem_fresh(1) || (w > 1 && mem_fresh(w)))
        return 1;

    /* 2. throughput */
    uint32_t *wire = malloc(n * sizeof(uint32_t));
    if (!wire)
        return 1;
    uint8_t *buf = build(n, nflows, wire);
    printf("throughput: %zu packets over %u interleaved flows\n", n, nflows);
    run(buf, wire, n, 1);
    if (w > 1)
        run(buf, wire, n, w);
    free(buf);
    free(wire);
    return 0;
}
