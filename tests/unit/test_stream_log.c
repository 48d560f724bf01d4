/* In-process partitioned log: group assignment and rebalance, exactly-once
 * without failures, at-least-once with a member that dies, two groups,
 * backpressure, retention, idle shutdown with nothing uncommitted. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "drst/stream.h"

#define TOPIC "t"

static drst_log_t *mklog(size_t retention)
{
    char err[DRST_ERRLEN];
    drst_log_conf_t c = {.retention = retention};
    drst_log_t *log = drst_log_new(&c, err, sizeof(err));
    assert_non_null(log);
    assert_int_equal(drst_log_create_topic(log, TOPIC, 3, err, sizeof(err)), DRST_OK);
    return log;
}

static drst_stream_t *member(drst_log_t *log, const char *group, const char *id, int begin)
{
    char err[DRST_ERRLEN];
    drst_stream_conf_t c = {.log = log, .from_beginning = begin};
    drst_stream_t *h = drst_stream_open(&drst_transport_inproc, &c, err, sizeof(err));
    assert_non_null(h);
    if (group)
        assert_int_equal(drst_stream_subscribe(h, TOPIC, group, id, err, sizeof(err)), DRST_OK);
    return h;
}

/* Poll until an ASSIGN event; return its partitions as a bit mask. */
static unsigned wait_assign(drst_stream_t *h)
{
    drst_stream_batch_t b;
    char err[DRST_ERRLEN];
    for (int i = 0; i < 100; i++) {
        assert_int_equal(drst_stream_poll(h, 50, 64, &b, err, sizeof(err)), DRST_OK);
        if (b.ev == DRST_STREAM_EV_ASSIGN) {
            unsigned m = 0;
            for (size_t k = 0; k < b.nparts; k++)
                m |= 1u << b.parts[k];
            return m;
        }
    }
    fail_msg("no assignment");
    return 0;
}

static void test_assign_rebalance(void **state)
{
    drst_log_t *log = mklog(64);
    drst_stream_t *h[4];
    unsigned m[4];
    char err[DRST_ERRLEN];
    drst_stream_stats_t st;
    (void)state;
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        h[i] = member(log, "g", id, 1);
    }
    for (int i = 0; i < 3; i++)
        m[i] = wait_assign(h[i]);
    /* three members, three partitions: one each, disjoint, all covered */
    assert_int_equal(m[0] | m[1] | m[2], 7);
    assert_int_equal(m[0] & m[1], 0);
    assert_int_equal(m[1] & m[2], 0);
    assert_int_equal(m[0] & m[2], 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(__builtin_popcount(m[i]), 1);
    /* a fourth member triggers a rebalance every member sees */
    h[3] = member(log, "g", "m3", 1);
    for (int i = 0; i < 4; i++)
        m[i] = wait_assign(h[i]);
    assert_int_equal(m[0] | m[1] | m[2] | m[3], 7);
    assert_int_equal(m[3], 0);
    drst_stream_stats(h[0], &st);
    assert_true(st.rebalances >= 2);
    /* a member leaving hands its partition to the others */
    drst_stream_close(h[0]);
    for (int i = 1; i < 4; i++)
        m[i] = wait_assign(h[i]);
    assert_int_equal(m[1] | m[2] | m[3], 7);
    assert_int_equal(m[1] & m[2], 0);
    assert_int_equal(m[2] & m[3], 0);
    assert_int_equal(m[1] & m[3], 0);
    for (int i = 1; i < 4; i++)
        drst_stream_close(h[i]);
    (void)err;
    drst_log_free(log);
}

/* ---- threaded producers and consumers ---- */

#define NPER 3000

struct shared {
    drst_log_t *log;
    pthread_mutex_t mu;
    unsigned seen[2][3 * NPER]; /* per group: deliveries per seq */
    uint64_t uncommitted[2];
    int idle_ms;
};

struct cargs {
    struct shared *sh;
    int group;
    char id[16];
    drst_stream_t *h;
    uint64_t consumed;
};

static void *producer_main(void *arg)
{
    struct shared *sh = arg;
    char err[DRST_ERRLEN], buf[64];
    drst_stream_conf_t c = {.log = sh->log};
    drst_stream_t *h = drst_stream_open(&drst_transport_inproc, &c, err, sizeof(err));
    size_t len;
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < NPER; i++) {
            uint32_t seq = (uint32_t)(p * NPER + i);
            if (drst_stream_produce(h, TOPIC, p, NULL, 0, &seq, sizeof(seq), err, sizeof(err)))
                abort();
        }
    for (int p = 0; p < 3; p++) {
        if (drst_record_encode_eos(p, buf, sizeof(buf), &len) ||
            drst_stream_produce(h, TOPIC, p, NULL, 0, buf, len, err, sizeof(err)))
            abort();
    }
    drst_stream_close(h);
    return NULL;
}

/* The consumer loop every drst consumer follows: poll, process, commit,
 * stop when every owned partition ended or after idle_ms of silence. */
static void *consumer_main(void *arg)
{
    struct cargs *a = arg;
    struct shared *sh = a->sh;
    drst_eos_t eos;
    drst_stream_batch_t b;
    char err[DRST_ERRLEN];
    int idle = 0;
    int32_t np = 3;

    if (drst_eos_init(&eos, np))
        abort();
    while (!drst_eos_done(&eos) && idle < sh->idle_ms) {
        if (drst_stream_poll(a->h, 20, 256, &b, err, sizeof(err)))
            abort();
        if (b.ev == DRST_STREAM_EV_NONE) {
            idle += 20;
            continue;
        }
        idle = 0;
        drst_eos_apply(&eos, &b);
        if (b.ev != DRST_STREAM_EV_MSGS)
            continue;
        pthread_mutex_lock(&sh->mu);
        for (size_t i = 0; i < b.n; i++) {
            uint32_t seq;
            if (b.msgs[i].len != sizeof(seq)) {
                drst_eos_mark(&eos, b.msgs[i].partition);
                continue;
            }
            memcpy(&seq, b.msgs[i].payload, sizeof(seq));
            sh->seen[a->group][seq]++;
            a->consumed++;
        }
        pthread_mutex_unlock(&sh->mu);
        size_t nf;
        const int32_t *fin = drst_eos_pending(&eos, &nf);
        if (drst_stream_commit(a->h, fin, nf, err, sizeof(err)))
            abort();
        drst_eos_committed(&eos);
    }
    drst_eos_release(&eos);
    return NULL;
}

static void test_exactly_once_two_groups(void **state)
{
    struct shared *sh = calloc(1, sizeof(*sh));
    pthread_t prod, th[5];
    struct cargs a[5];
    drst_stream_stats_t st;
    uint64_t waits = 0;
    (void)state;
    sh->log = mklog(128); /* small: the producer must wait for the groups */
    sh->idle_ms = 3000;
    pthread_mutex_init(&sh->mu, NULL);
    /* group 0: three members; group 1: two members */
    for (int i = 0; i < 5; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        a[i].sh = sh;
        a[i].group = i < 3 ? 0 : 1;
        snprintf(a[i].id, sizeof(a[i].id), "c%d", i);
        a[i].h = member(sh->log, a[i].group ? "g1" : "g0", a[i].id, 1);
    }
    for (int i = 0; i < 5; i++)
        pthread_create(&th[i], NULL, consumer_main, &a[i]);
    pthread_create(&prod, NULL, producer_main, sh);
    pthread_join(prod, NULL);
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        drst_stream_stats(a[i].h, &st);
        waits += st.backpressure_waits;
        (void)waits;
    }
    for (int g = 0; g < 2; g++)
        for (int s = 0; s < 3 * NPER; s++)
            if (sh->seen[g][s] != 1)
                fail_msg("group %d seq %d delivered %u times", g, s, sh->seen[g][s]);
    /* nothing left uncommitted: a new member of g0 finds every partition
     * finished and no record to redo */
    {
        drst_stream_t *late = member(sh->log, "g0", "late", 1);
        drst_stream_batch_t b;
        char err[DRST_ERRLEN];
        for (int i = 0; i < 5; i++)
            drst_stream_close(a[i].h);
        int all = 0;
        for (int i = 0; i < 20; i++) {
            assert_int_equal(drst_stream_poll(late, 20, 64, &b, err, sizeof(err)), DRST_OK);
            assert_int_not_equal(b.ev, DRST_STREAM_EV_MSGS);
            if (b.ev == DRST_STREAM_EV_ASSIGN && b.nparts == 3) {
                all = 1;
                for (size_t k = 0; k < 3; k++)
                    assert_int_equal(b.finished[k], 1);
            }
        }
        assert_true(all);
        drst_stream_close(late);
    }
    drst_log_free(sh->log);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

/* A member dies (closes without committing its last batch): the survivor
 * gets those records again, so every record is processed at least once and
 * the duplicates are exactly the uncommitted ones. */
static void test_at_least_once_on_failure(void **state)
{
    struct shared *sh = calloc(1, sizeof(*sh));
    drst_stream_t *dying, *survivor;
    drst_stream_batch_t b;
    char err[DRST_ERRLEN];
    pthread_t prod;
    struct cargs a;
    uint64_t lost_batch = 0, dup = 0;
    (void)state;
    sh->log = mklog(100000);
    sh->idle_ms = 500;
    pthread_mutex_init(&sh->mu, NULL);
    dying = member(sh->log, "g", "a", 1);
    pthread_create(&prod, NULL, producer_main, sh);
    pthread_join(prod, NULL);
    /* consume and commit two batches, then take a third and die */
    for (int k = 0; k < 3;) {
        assert_int_equal(drst_stream_poll(dying, 100, 100, &b, err, sizeof(err)), DRST_OK);
        if (b.ev != DRST_STREAM_EV_MSGS)
            continue;
        for (size_t i = 0; i < b.n; i++) {
            uint32_t seq;
            memcpy(&seq, b.msgs[i].payload, sizeof(seq));
            sh->seen[0][seq]++;
        }
        if (++k < 3)
            assert_int_equal(drst_stream_commit(dying, NULL, 0, err, sizeof(err)), DRST_OK);
        else
            lost_batch = b.n;
    }
    survivor = member(sh->log, "g", "b", 1);
    drst_stream_close(dying);
    memset(&a, 0, sizeof(a));
    a.sh = sh;
    a.h = survivor;
    consumer_main(&a);
    for (int s = 0; s < 3 * NPER; s++) {
        if (sh->seen[0][s] == 0)
            fail_msg("seq %d lost", s);
        dup += sh->seen[0][s] - 1;
    }
    assert_int_equal(dup, lost_batch);
    assert_true(lost_batch > 0);
    drst_stream_close(survivor);
    drst_log_free(sh->log);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

/* No sentinel ever comes: the members stop on their idle timeout, the one
 * owning nothing too, and nothing they received is left uncommitted. */
static void test_idle_shutdown(void **state)
{
    struct shared *sh = calloc(1, sizeof(*sh));
    struct cargs a[4];
    pthread_t th[4];
    drst_stream_t *prod, *late;
    drst_stream_batch_t b;
    char err[DRST_ERRLEN];
    uint64_t total = 0;
    (void)state;
    sh->log = mklog(1024);
    sh->idle_ms = 200;
    pthread_mutex_init(&sh->mu, NULL);
    prod = member(sh->log, NULL, NULL, 0);
    for (int i = 0; i < 4; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        a[i].sh = sh;
        snprintf(a[i].id, sizeof(a[i].id), "i%d", i);
        a[i].h = member(sh->log, "g", a[i].id, 1);
    }
    for (uint32_t seq = 0; seq < 600; seq++)
        assert_int_equal(drst_stream_produce(prod, TOPIC, (int32_t)(seq % 3), NULL, 0, &seq,
                                             sizeof(seq), err, sizeof(err)),
                         DRST_OK);
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, consumer_main, &a[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += a[i].consumed;
    }
    assert_int_equal(total, 600);
    for (int s = 0; s < 600; s++)
        assert_int_equal(sh->seen[0][s], 1);
    late = member(sh->log, "g", "late", 1);
    for (int i = 0; i < 4; i++)
        drst_stream_close(a[i].h);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(drst_stream_poll(late, 20, 64, &b, err, sizeof(err)), DRST_OK);
        assert_int_not_equal(b.ev, DRST_STREAM_EV_MSGS);
    }
    drst_stream_close(late);
    drst_stream_close(prod);
    drst_log_free(sh->log);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

struct bp {
    drst_log_t *log;
    volatile int done;
    pthread_mutex_t mu;
    int produced;
};

static void *bp_producer(void *arg)
{
    struct bp *p = arg;
    char err[DRST_ERRLEN];
    drst_stream_conf_t c = {.log = p->log};
    drst_stream_t *h = drst_stream_open(&drst_transport_inproc, &c, err, sizeof(err));
    for (int i = 0; i < 40; i++) {
        if (drst_stream_produce(h, TOPIC, 0, NULL, 0, &i, sizeof(i), err, sizeof(err)))
            abort();
        pthread_mutex_lock(&p->mu);
        p->produced++;
        pthread_mutex_unlock(&p->mu);
    }
    drst_stream_close(h);
    return NULL;
}

static void test_backpressure_and_retention(void **state)
{
    struct bp p = {0};
    drst_stream_t *c, *prod, *late;
    drst_stream_batch_t b;
    drst_stream_stats_t st;
    char err[DRST_ERRLEN];
    pthread_t th;
    int got = 0, last = -1, produced;
    (void)state;
    /* no group yet: old records are dropped, a new reader sees the last 8 */
    p.log = mklog(8);
    prod = member(p.log, NULL, NULL, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(
            drst_stream_produce(prod, TOPIC, 1, NULL, 0, &i, sizeof(i), err, sizeof(err)), DRST_OK);
    drst_stream_stats(prod, &st);
    assert_int_equal(st.retention_drops, 12);
    late = member(p.log, "r", "x", 1);
    wait_assign(late);
    assert_int_equal(drst_stream_poll(late, 100, 100, &b, err, sizeof(err)), DRST_OK);
    assert_int_equal(b.ev, DRST_STREAM_EV_MSGS);
    assert_int_equal(b.n, 8);
    assert_int_equal(b.msgs[0].offset, 12);
    drst_stream_close(late);
    drst_stream_close(prod);
    drst_log_free(p.log);

    /* with a group: the producer blocks at 8 records until commits free room */
    p.log = mklog(8);
    c = member(p.log, "g", "c", 0);
    wait_assign(c);
    pthread_mutex_init(&p.mu, NULL);
    pthread_create(&th, NULL, bp_producer, &p);
    for (;;) { /* the producer must stop at the retention bound... */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&p.mu);
        produced = p.produced;
        pthread_mutex_unlock(&p.mu);
        if (produced >= 8)
            break;
    }
    {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&p.mu);
    assert_int_equal(p.produced, 8); /* ...and stay there (blocked, not dropping) */
    pthread_mutex_unlock(&p.mu);
    while (got < 40) { /* ...until the group commits */
        assert_int_equal(drst_stream_poll(c, 1000, 5, &b, err, sizeof(err)), DRST_OK);
        if (b.ev != DRST_STREAM_EV_MSGS)
            continue;
        for (size_t i = 0; i < b.n; i++) {
            int v;
            memcpy(&v, b.msgs[i].payload, sizeof(v));
            assert_int_equal(v, last + 1); /* order kept within a partition */
            last = v;
            got++;
        }
        assert_int_equal(drst_stream_commit(c, NULL, 0, err, sizeof(err)), DRST_OK);
    }
    pthread_join(th, NULL);
    drst_stream_close(c);
    pthread_mutex_destroy(&p.mu);
    drst_log_free(p.log);
}

static void test_errors(void **state)
{
    drst_log_t *log = mklog(8);
    drst_stream_t *h = member(log, NULL, NULL, 0);
    drst_stream_batch_t b;
    char err[DRST_ERRLEN];
    int32_t n;
    (void)state;
    assert_int_equal(drst_log_create_topic(log, TOPIC, 4, err, sizeof(err)), DRST_ERR_STATE);
    assert_int_equal(drst_log_create_topic(log, TOPIC, 3, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_stream_partitions(h, TOPIC, &n, err, sizeof(err)), DRST_OK);
    assert_int_equal(n, 3);
    assert_int_equal(drst_stream_partitions(h, "nope", &n, err, sizeof(err)), DRST_ERR_NOTFOUND);
    assert_int_equal(drst_stream_produce(h, "nope", 0, NULL, 0, "x", 1, err, sizeof(err)),
                     DRST_ERR_NOTFOUND);
    assert_int_equal(drst_stream_produce(h, TOPIC, 3, NULL, 0, "x", 1, err, sizeof(err)),
                     DRST_ERR_INVAL);
    assert_int_equal(drst_stream_poll(h, 0, 1, &b, err, sizeof(err)), DRST_ERR_STATE);
    assert_int_equal(drst_stream_subscribe(h, "nope", "g", NULL, err, sizeof(err)),
                     DRST_ERR_NOTFOUND);
    assert_ptr_equal(drst_transport_find("kafka"), &drst_transport_kafka);
    assert_null(drst_transport_find("x"));
    drst_stream_close(h);
    drst_log_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_rebalance),
        cmocka_unit_test(test_exactly_once_two_groups),
        cmocka_unit_test(test_at_least_once_on_failure),
        cmocka_unit_test(test_idle_shutdown),
        cmocka_unit_test(test_backpressure_and_retention),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
