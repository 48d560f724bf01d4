/* Classic pcap reader (pcapfile.c): records cut across read() calls and
 * blocks, a record larger than the block, short reads, byte order and
 * nanosecond files, cut files with the offset in the error; and several
 * workers (replica mode: each scans the file; packet mode: one parser
 * shards to worker threads) giving exactly the flows and summaries of one
 * worker, idle and active timeouts included. The files are built here, record by record,
 * so the expected packets, bytes and offsets are known independently. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "flow/flow_int.h"
#include "test_flow_util.h"

struct file {
    uint8_t *b;
    size_t n, cap;
};

static void put(struct file *f, const void *p, size_t n)
{
    if (f->n + n > f->cap) {
        f->cap = (f->n + n) * 2;
        f->b = realloc(f->b, f->cap);
        assert_non_null(f->b);
    }
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void put32(struct file *f, uint32_t v, int swap)
{
    if (swap)
        v = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    put(f, &v, 4);
}

static void file_header(struct file *f, int swap, int nsec)
{
    put32(f, nsec ? 0xa1b23c4du : 0xa1b2c3d4u, swap);
    uint16_t ver[2] = {2, 4};
    if (swap)
        ver[0] = 0x0200, ver[1] = 0x0400;
    put(f, ver, 4);
    put32(f, 0, swap);
    put32(f, 0, swap);
    put32(f, 262144, swap);
    put32(f, LT_RAW, swap);
}

/* One IPv4 UDP packet 10.0.0.a:ap -> 10.0.0.b:53 of `len` captured bytes
 * (>= 28), at t0 + i ms. */
static void record(struct file *f, int swap, int nsec, uint32_t i, uint8_t a, uint16_t ap,
                   uint8_t b, uint32_t len)
{
    uint8_t *p = calloc(1, len);
    assert_non_null(p);
    uint32_t tot = len > 65535 ? 65535 : len;
    p[0] = 0x45, p[2] = (uint8_t)(tot >> 8), p[3] = (uint8_t)tot, p[8] = 64, p[9] = 17;
    p[12] = 10, p[15] = a, p[16] = 10, p[19] = b;
    p[20] = (uint8_t)(ap >> 8), p[21] = (uint8_t)ap, p[23] = 53;
    uint64_t us = 1000000000ull * 1000000ull + (uint64_t)i * 1000u;
    put32(f, (uint32_t)(us / 1000000u), swap);
    put32(f, (uint32_t)(us % 1000000u) * (nsec ? 1000u : 1u), swap);
    put32(f, len, swap);
    put32(f, len, swap);
    put(f, p, len);
    free(p);
}

/* read(2) over memory with short reads of changing size */
struct src {
    const uint8_t *p;
    size_t left, step;
};

static long mem_read(void *ctx, uint8_t *buf, size_t n)
{
    struct src *s = ctx;
    size_t k = n < s->left ? n : s->left;
    if (s->step && k > s->step)
        k = s->step;
    if (s->step)
        s->step = s->step * 7 % 5003 + 1;
    memcpy(buf, s->p, k);
    s->p += k;
    s->left -= k;
    return (long)k;
}

struct count {
    uint64_t n, bytes, ts_first, ts_last;
};

static int counter(void *ctx, int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                   uint64_t ts_ns)
{
    struct count *c = ctx;
    assert_int_equal(linktype, LT_RAW);
    assert_int_equal(data[0], 0x45);
    assert_int_equal(caplen, wirelen);
    if (!c->n)
        c->ts_first = ts_ns;
    c->ts_last = ts_ns;
    c->n++;
    c->bytes += wirelen;
    return 0;
}

static drst_err_t scan(const struct file *f, size_t len, size_t step, struct count *c, char *err)
{
    struct src s = {f->b, len, step};
    uint64_t n = 0;
    memset(c, 0, sizeof(*c));
    drst_err_t rc = pcapfile_scan("t.pcap", len, mem_read, &s, NULL, NULL, counter, c, 0, NULL, &n,
                                  err, DRST_ERRLEN);
    assert_int_equal(n, c->n);
    return rc;
}

static void records_across_reads_and_blocks(void **state)
{
    (void)state;
    for (int swap = 0; swap < 2; swap++) {
        for (int nsec = 0; nsec < 2; nsec++) {
            struct file f = {0};
            uint64_t bytes = 0;
            file_header(&f, swap, nsec);
            size_t after[4] = {0};
            for (uint32_t i = 0; i < 3000; i++) {
                /* one record larger than the 256 KB read block */
                uint32_t len = i == 1500 ? 300000 : 28 + (i * 37) % 1400;
                record(&f, swap, nsec, i, 1, (uint16_t)(1000 + i % 50), 2, len);
                bytes += len;
                if (i == 0)
                    after[0] = f.n;
            }
            char err[DRST_ERRLEN];
            struct count c;
            size_t steps[3] = {0, 1, 777}; /* whole blocks, then short reads */
            for (int k = 0; k < 3; k++) {
                assert_int_equal(scan(&f, f.n, steps[k], &c, err), DRST_OK);
                assert_int_equal(c.n, 3000);
                assert_int_equal(c.bytes, bytes);
                assert_int_equal(c.ts_first, 1000000000ull * 1000000000ull);
                assert_int_equal(c.ts_last - c.ts_first, 2999ull * 1000000ull);
            }
            /* cut inside the second record's header, then inside its data */
            assert_int_equal(scan(&f, after[0] + 10, 0, &c, err), DRST_ERR_FORMAT);
            assert_int_equal(c.n, 1);
            assert_non_null(strstr(err, "after packet 1"));
            assert_non_null(strstr(err, "record header cut (10 of 16 bytes)"));
            char want[64];
            snprintf(want, sizeof(want), "byte offset %zu", after[0]);
            assert_non_null(strstr(err, want));
            assert_int_equal(scan(&f, after[0] + 20, 3, &c, err), DRST_ERR_FORMAT);
            assert_int_equal(c.n, 1);
            assert_non_null(strstr(err, "bytes, 4 left"));
            free(f.b);
        }
    }
}

static void bad_headers(void **state)
{
    (void)state;
    struct file f = {0};
    char err[DRST_ERRLEN];
    struct count c;
    static const char junk[] = "\x0a\x0d\x0d\x0a not a pcap file header";
    put(&f, junk, sizeof(junk) - 1);
    assert_int_equal(scan(&f, f.n, 0, &c, err), DRST_ERR_FORMAT);
    assert_non_null(strstr(err, "not a pcap file"));
    f.n = 0;
    file_header(&f, 0, 0);
    assert_int_equal(scan(&f, 20, 0, &c, err), DRST_ERR_FORMAT);
    assert_non_null(strstr(err, "file header cut at 20 of 24 bytes"));
    /* a record claiming more bytes than the file has */
    record(&f, 0, 0, 0, 1, 1000, 2, 100);
    uint32_t big = 1u << 30;
    memcpy(f.b + 24 + 8, &big, 4);
    assert_int_equal(scan(&f, f.n, 0, &c, err), DRST_ERR_FORMAT);
    assert_non_null(strstr(err, "record of 1073741824 bytes, 100 left"));
    assert_int_equal(c.n, 0);
    free(f.b);
}

/* ---- several workers equal one ---- */

static int by_key(const void *a, const void *b)
{
    const drst_flow_record_t *x = a, *y = b;
    if (x->client_port != y->client_port)
        return x->client_port < y->client_port ? -1 : 1;
    if (x->client_ip[3] != y->client_ip[3])
        return x->client_ip[3] < y->client_ip[3] ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The file through `workers` workers: replica mode (the file path of
 * drst flows) or, with `packets`, packet mode (the live-capture path:
 * parsed here, sharded to worker threads). */
static struct got *run(const struct file *f, unsigned workers, int packets)
{
    struct got *g = calloc(1, sizeof(*g));
    drst_flow_config_t c;
    char err[DRST_ERRLEN];
    uint64_t n;
    assert_non_null(g);
    drst_flow_config_init(&c);
    c.workers = workers, c.idle_timeout = 1, c.active_timeout = 2, c.max_flows = 3000;
    drst_flow_sink_t s = {on_flow, on_sum, g, NULL};
    drst_flow_engine_t *e = drst_flow_engine_new(&c, &s, err, sizeof(err));
    assert_non_null(e);
    if (workers == 1 || packets) {
        struct src r = {f->b, f->n, 0};
        assert_int_equal(pcapfile_scan("t", f->n, mem_read, &r, NULL, NULL, engine_feed, e, 0, NULL,
                                       &n, err, sizeof(err)),
                         DRST_OK);
    } else {
        assert_int_equal(engine_replica_begin(e, err, sizeof(err)), DRST_OK);
        /* the replicas in turn on this thread: same accounting as in parallel */
        for (unsigned i = 0; i < workers; i++) {
            struct src r = {f->b, f->n, 100 + i};
            assert_int_equal(pcapfile_scan("t", f->n, mem_read, &r, NULL, NULL,
                                           engine_replica_packet, engine_replica_worker(e, i), 0,
                                           NULL, &n, err, sizeof(err)),
                             DRST_OK);
        }
        assert_null(engine_replica_worker(e, workers));
        /* packets cannot be fed besides the replicas */
        uint8_t p[28] = {0x45};
        assert_int_equal(drst_flow_engine_packet(e, LT_RAW, p, 28, 28, 1), DRST_ERR_STATE);
    }
    assert_int_equal(drst_flow_engine_finish(e, err, sizeof(err)), DRST_OK);
    drst_flow_counters_t k;
    drst_flow_engine_counters(e, &k);
    assert_int_equal(k.packets, 20000); /* parsed once in the counters, whatever the workers */
    drst_flow_engine_free(e);
    qsort(g->rec, g->n, sizeof(g->rec[0]), by_key);
    return g;
}

static void workers_equal_one_worker(void **state)
{
    (void)state;
    struct file f = {0};
    file_header(&f, 0, 0);
    /* 400 flows from 4 hosts over 20 s: flows pause (idle timeouts) and
     * live long (interim records at the active timeout) */
    uint32_t x = 7;
    for (uint32_t i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t fl = (x >> 8) % 400;
        if ((i / 2000) % 3 == 1 && fl % 4 == 0)
            fl += 1; /* flows fl%4==0 pause for 2 s every 6 s */
        record(&f, 0, 0, i, (uint8_t)(1 + fl % 4), (uint16_t)(2000 + fl / 4), 9,
               28 + (x >> 20) % 200);
    }
    struct got *one = run(&f, 1, 0);
    uint64_t pk = 0;
    for (size_t i = 0; i < one->nsum; i++)
        pk += one->sum[i].packets;
    assert_int_equal(pk, 20000);
    assert_true(one->n > 400); /* idle and active timeouts cut flows */
    assert_true(one->nsum >= 20);
    for (unsigned w = 2; w <= 6; w++) {
        struct got *g = run(&f, w > 3 ? w - 2 : w, w > 3);
        assert_int_equal(g->n, one->n);
        assert_memory_equal(g->rec, one->rec, one->n * sizeof(one->rec[0]));
        assert_int_equal(g->nsum, one->nsum);
        assert_memory_equal(g->sum, one->sum, one->nsum * sizeof(one->sum[0]));
        free(g);
    }
    free(one);
    free(f.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_across_reads_and_blocks),
        cmocka_unit_test(bad_headers),
        cmocka_unit_test(workers_equal_one_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
