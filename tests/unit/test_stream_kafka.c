/* Kafka transport against librdkafka's mock cluster (loopback, in process):
 * group assignment and rebalance, exactly-once without failures, two
 * groups, sentinels committed as finished, and producer faults (broker
 * down, injected errors) with delivery reports accounting for every record. */
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
#include "stream/stream_int.h"

#define NPER 300

static const char *names[] = {"a"};

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static drst_stream_t *client(const drst_broker_t *b, int begin)
{
    char err[DRST_ERRLEN];
    static const char *kv[] = {"topic.metadata.refresh.interval.ms=1000",
                               "heartbeat.interval.ms=200"};
    drst_stream_conf_t c = {.bootstrap = drst_broker_bootstraps(b),
                            .from_beginning = begin,
                            .kv = kv,
                            .nkv = 2,
                            .session_timeout_ms = 3000};
    drst_stream_t *h = drst_stream_open(&drst_transport_kafka, &c, err, sizeof(err));
    if (!h)
        fail_msg("%s", err);
    return h;
}

static void produce_all(drst_stream_t *p, const char *topic, uint64_t first, int nper)
{
    char buf[128], err[DRST_ERRLEN];
    size_t len;
    for (int part = 0; part < 3; part++)
        for (int i = 0; i < nper; i++) {
            uint64_t seq = first + (uint64_t)(part * nper + i);
            len = (size_t)snprintf(buf, sizeof(buf), "{\"seq\":%llu,\"features\":{\"a\":%d}}",
                                   (unsigned long long)seq, i);
            if (drst_stream_produce(p, topic, part, NULL, 0, buf, len, err, sizeof(err)))
                fail_msg("%s", err);
        }
}

static void produce_eos(drst_stream_t *p, const char *topic)
{
    char buf[64], err[DRST_ERRLEN];
    size_t len;
    for (int part = 0; part < 3; part++) {
        assert_int_equal(drst_record_encode_eos(part, buf, sizeof(buf), &len), DRST_OK);
        assert_int_equal(drst_stream_produce(p, topic, part, NULL, 0, buf, len, err, sizeof(err)),
                         DRST_OK);
    }
}

/* ---- the consumer loop, one thread per member ---- */

struct shared {
    const drst_broker_t *b;
    const drst_schema_t *s;
    const char *topic;
    pthread_mutex_t mu;
    unsigned *seen[2];
    int nseq;
};

struct cargs {
    struct shared *sh;
    int group;
    drst_stream_t *h;
    unsigned mask; /* assignment already taken by settle() */
    int ok;
};

static void *consumer_main(void *arg)
{
    struct cargs *a = arg;
    struct shared *sh = a->sh;
    drst_eos_t eos;
    drst_stream_batch_t bt;
    char err[DRST_ERRLEN];
    double f[1];
    drst_record_t r = {.features = f};
    int idle = 0;

    if (drst_eos_init(&eos, 3))
        return NULL;
    if (a->mask) {
        int32_t parts[3];
        drst_stream_batch_t asg = {.ev = DRST_STREAM_EV_ASSIGN, .parts = parts};
        for (int32_t q = 0; q < 3; q++)
            if (a->mask & (1u << q))
                parts[asg.nparts++] = q;
        drst_eos_apply(&eos, &asg);
    }
    while (!drst_eos_done(&eos) && idle < 15000) {
        if (drst_stream_poll(a->h, 100, 500, &bt, err, sizeof(err)))
            return NULL;
        if (bt.ev == DRST_STREAM_EV_NONE) {
            idle += 100;
            continue;
        }
        idle = 0;
        drst_eos_apply(&eos, &bt);
        if (bt.ev != DRST_STREAM_EV_MSGS)
            continue;
        pthread_mutex_lock(&sh->mu);
        for (size_t i = 0; i < bt.n; i++) {
            if (drst_record_decode(sh->s, bt.msgs[i].payload, bt.msgs[i].len, &r, err, sizeof(err)))
                continue;
            if (r.eos)
                drst_eos_mark(&eos, bt.msgs[i].partition);
            else if (r.seq < (uint64_t)sh->nseq)
                sh->seen[a->group][r.seq]++;
        }
        pthread_mutex_unlock(&sh->mu);
        size_t nf;
        const int32_t *fin = drst_eos_pending(&eos, &nf);
        if (drst_stream_commit(a->h, fin, nf, err, sizeof(err)))
            fprintf(stderr, "commit: %s\n", err);
        drst_eos_committed(&eos);
    }
    a->ok = drst_eos_done(&eos);
    drst_eos_release(&eos);
    return NULL;
}

static unsigned mask_of(const drst_stream_batch_t *b)
{
    unsigned m = 0;
    for (size_t k = 0; k < b->nparts; k++)
        m |= 1u << b->parts[k];
    return m;
}

/* Poll every handle until their assignments are disjoint, cover the topic
 * and every handle has seen an assignment since `since`. */
static void settle(drst_stream_t **h, int n, unsigned *m, const uint64_t *since)
{
    char err[DRST_ERRLEN];
    drst_stream_batch_t b;
    for (int round = 0; round < 400; round++) {
        unsigned all = 0;
        int ok = 1;
        for (int i = 0; i < n; i++) {
            drst_stream_stats_t st;
            assert_int_equal(drst_stream_poll(h[i], 20, 100, &b, err, sizeof(err)), DRST_OK);
            if (b.ev == DRST_STREAM_EV_ASSIGN)
                m[i] = mask_of(&b);
            else if (b.ev == DRST_STREAM_EV_REVOKE)
                m[i] = 0;
            assert_int_not_equal(b.ev, DRST_STREAM_EV_MSGS);
            drst_stream_stats(h[i], &st);
            if (since && st.rebalances <= since[i])
                ok = 0;
        }
        for (int i = 0; i < n; i++) {
            if (all & m[i])
                fail_msg("partition held by two members at once");
            all |= m[i];
        }
        if (ok && all == 7)
            return;
    }
    fail_msg("group did not settle");
}

static void test_kafka_assignment(void **state)
{
    char err[DRST_ERRLEN];
    drst_broker_t *b = drst_broker_new(1, err, sizeof(err));
    drst_stream_t *h[4];
    unsigned m[4] = {0};
    uint64_t since[4];
    (void)state;
    assert_non_null(b);
    assert_int_equal(drst_broker_create_topic(b, "asg", 3, err, sizeof(err)), DRST_OK);
    for (int i = 0; i < 3; i++) {
        h[i] = client(b, 1);
        assert_int_equal(drst_stream_subscribe(h[i], "asg", "g", NULL, err, sizeof(err)), DRST_OK);
    }
    settle(h, 3, m, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(__builtin_popcount(m[i]), 1);
    for (int i = 0; i < 3; i++) {
        drst_stream_stats_t st;
        drst_stream_stats(h[i], &st);
        since[i] = st.rebalances;
    }
    since[3] = 0;
    h[3] = client(b, 1);
    assert_int_equal(drst_stream_subscribe(h[3], "asg", "g", NULL, err, sizeof(err)), DRST_OK);
    settle(h, 4, m, since); /* the 4th member made everyone rebalance */
    for (int i = 0; i < 4; i++)
        drst_stream_close(h[i]);
    drst_broker_free(b);
}

static void test_kafka_exactly_once_two_groups(void **state)
{
    char err[DRST_ERRLEN];
    drst_broker_t *b = drst_broker_new(1, err, sizeof(err));
    drst_schema_t *s = drst_schema_new(names, 1, NULL, err, sizeof(err));
    struct shared sh = {.b = b, .s = s, .topic = "eo", .nseq = 3 * NPER};
    struct cargs a[5];
    pthread_t th[5];
    drst_stream_t *p;
    drst_stream_stats_t st;
    (void)state;
    assert_non_null(b);
    assert_int_equal(drst_broker_create_topic(b, "eo", 3, err, sizeof(err)), DRST_OK);
    pthread_mutex_init(&sh.mu, NULL);
    sh.seen[0] = calloc((size_t)sh.nseq, sizeof(unsigned));
    sh.seen[1] = calloc((size_t)sh.nseq, sizeof(unsigned));
    /* Membership first (the mock broker refuses commits while a group
     * rebalances, so a rebalance mid-stream can redeliver one batch). */
    for (int i = 0; i < 5; i++) {
        a[i] = (struct cargs){.sh = &sh, .group = i < 3 ? 0 : 1, .h = client(b, 1)};
        assert_int_equal(
            drst_stream_subscribe(a[i].h, "eo", i < 3 ? "g0" : "g1", NULL, err, sizeof(err)),
            DRST_OK);
    }
    {
        drst_stream_t *g0[3] = {a[0].h, a[1].h, a[2].h}, *g1[2] = {a[3].h, a[4].h};
        unsigned m0[3] = {0}, m1[2] = {0};
        settle(g0, 3, m0, NULL);
        settle(g1, 2, m1, NULL);
        for (int i = 0; i < 3; i++)
            a[i].mask = m0[i];
        a[3].mask = m1[0];
        a[4].mask = m1[1];
    }
    p = client(b, 0);
    produce_all(p, "eo", 0, NPER);
    produce_eos(p, "eo");
    assert_int_equal(drst_stream_flush(p, 30000, err, sizeof(err)), DRST_OK);
    drst_stream_stats(p, &st);
    assert_int_equal(st.delivered, 3 * NPER + 3);
    assert_int_equal(st.delivery_failed, 0);
    for (int i = 0; i < 5; i++)
        pthread_create(&th[i], NULL, consumer_main, &a[i]);
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    for (int g = 0; g < 2; g++)
        for (int q = 0; q < sh.nseq; q++)
            if (sh.seen[g][q] != 1)
                fail_msg("group %d: seq %d seen %u times", g, q, sh.seen[g][q]);
    /* a late member of g0 is told every partition is finished */
    {
        drst_stream_t *late;
        drst_stream_batch_t bt;
        int told = 0;
        for (int i = 0; i < 5; i++)
            drst_stream_close(a[i].h);
        late = client(b, 1);
        assert_int_equal(drst_stream_subscribe(late, "eo", "g0", NULL, err, sizeof(err)), DRST_OK);
        for (int i = 0; i < 200 && !told; i++) {
            assert_int_equal(drst_stream_poll(late, 50, 100, &bt, err, sizeof(err)), DRST_OK);
            assert_int_not_equal(bt.ev, DRST_STREAM_EV_MSGS); /* nothing uncommitted */
            if (bt.ev == DRST_STREAM_EV_ASSIGN && bt.nparts == 3) {
                for (size_t k = 0; k < 3; k++)
                    assert_int_equal(bt.finished[k], 1);
                told = 1;
            }
        }
        assert_true(told);
        drst_stream_close(late);
    }
    drst_stream_close(p);
    free(sh.seen[0]);
    free(sh.seen[1]);
    pthread_mutex_destroy(&sh.mu);
    drst_schema_free(s);
    drst_broker_free(b);
}

static void test_kafka_producer_faults(void **state)
{
    char err[DRST_ERRLEN];
    drst_broker_t *b = drst_broker_new(1, err, sizeof(err));
    drst_schema_t *s = drst_schema_new(names, 1, NULL, err, sizeof(err));
    struct shared sh = {.b = b, .s = s, .topic = "f", .nseq = 6 * NPER};
    struct cargs a;
    drst_stream_t *p;
    drst_stream_stats_t st;
    (void)state;
    assert_non_null(b);
    assert_int_equal(drst_broker_create_topic(b, "f", 3, err, sizeof(err)), DRST_OK);
    pthread_mutex_init(&sh.mu, NULL);
    sh.seen[0] = calloc((size_t)sh.nseq, sizeof(unsigned));
    p = client(b, 0);
    produce_all(p, "f", 0, 1); /* connect and learn the partitions */
    assert_int_equal(drst_stream_flush(p, 10000, err, sizeof(err)), DRST_OK);
    /* broker down while records are produced: they wait and are retried */
    assert_int_equal(drst_broker_set_down(b, 1, 1, err, sizeof(err)), DRST_OK);
    produce_all(p, "f", 3, NPER);
    msleep(1500);
    drst_stream_stats(p, &st);
    assert_int_equal(st.delivered, 3); /* nothing delivered while down */
    assert_int_equal(drst_broker_set_down(b, 1, 0, err, sizeof(err)), DRST_OK);
    /* injected retriable errors on Produce requests */
    assert_int_equal(drst_broker_inject_produce_errors(b, 5, err, sizeof(err)), DRST_OK);
    produce_all(p, "f", 3 + 3 * NPER, NPER);
    produce_eos(p, "f");
    assert_int_equal(drst_stream_flush(p, 60000, err, sizeof(err)), DRST_OK);
    drst_stream_stats(p, &st);
    assert_int_equal(st.produced, 3 + 6 * NPER + 3);
    assert_int_equal(st.delivered, st.produced); /* every record accounted for */
    assert_int_equal(st.delivery_failed, 0);
    /* and the broker has each exactly once (idempotent producer) */
    a = (struct cargs){.sh = &sh, .group = 0, .h = client(b, 1)};
    assert_int_equal(drst_stream_subscribe(a.h, "f", "gf", NULL, err, sizeof(err)), DRST_OK);
    consumer_main(&a);
    assert_true(a.ok);
    for (int q = 0; q < 3 + 6 * NPER && q < sh.nseq; q++)
        if (sh.seen[0][q] != 1)
            fail_msg("seq %d seen %u times", q, sh.seen[0][q]);
    drst_stream_close(a.h);
    drst_stream_close(p);
    free(sh.seen[0]);
    pthread_mutex_destroy(&sh.mu);
    drst_schema_free(s);
    drst_broker_free(b);
}

/* Keyed records: librdkafka's partitioner (murmur2_random, Kafka's Java
 * default) and ours, used by the in-process log, pick the same partition. */
static void test_kafka_key_partitioner(void **state)
{
    char err[DRST_ERRLEN], key[16];
    drst_broker_t *b = drst_broker_new(1, err, sizeof(err));
    drst_stream_t *p, *c;
    drst_stream_batch_t bt;
    int got = 0;
    (void)state;
    assert_non_null(b);
    assert_int_equal(drst_broker_create_topic(b, "keys", 3, err, sizeof(err)), DRST_OK);
    p = client(b, 0);
    for (int i = 0; i < 60; i++) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(
            drst_stream_produce(p, "keys", -1, key, (size_t)n, key, (size_t)n, err, sizeof(err)),
            DRST_OK);
    }
    assert_int_equal(drst_stream_flush(p, 30000, err, sizeof(err)), DRST_OK);
    c = client(b, 1);
    assert_int_equal(drst_stream_subscribe(c, "keys", "gk", NULL, err, sizeof(err)), DRST_OK);
    for (int i = 0; i < 300 && got < 60; i++) {
        assert_int_equal(drst_stream_poll(c, 100, 100, &bt, err, sizeof(err)), DRST_OK);
        if (bt.ev != DRST_STREAM_EV_MSGS)
            continue;
        for (size_t k = 0; k < bt.n; k++, got++)
            assert_int_equal(bt.msgs[k].partition,
                             drst_partition_for_key(bt.msgs[k].payload, bt.msgs[k].len, 3));
    }
    assert_int_equal(got, 60);
    drst_stream_close(c);
    drst_stream_close(p);
    drst_broker_free(b);
}

static void test_kafka_errors(void **state)
{
    char err[DRST_ERRLEN];
    drst_stream_conf_t c = {0};
    static const char *bad[] = {"no.such.setting=1"};
    (void)state;
    assert_null(drst_stream_open(&drst_transport_kafka, &c, err, sizeof(err)));
    c.bootstrap = "127.0.0.1:1";
    c.kv = bad;
    c.nkv = 1;
    {
        drst_stream_t *h = drst_stream_open(&drst_transport_kafka, &c, err, sizeof(err));
        assert_non_null(h);
        assert_int_equal(drst_stream_produce(h, "x", 0, NULL, 0, "a", 1, err, sizeof(err)),
                         DRST_ERR_TRANSPORT);
        assert_non_null(strstr(err, "no.such.setting"));
        drst_stream_close(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_errors),
        cmocka_unit_test(test_kafka_assignment),
        cmocka_unit_test(test_kafka_key_partitioner),
        cmocka_unit_test(test_kafka_exactly_once_two_groups),
        cmocka_unit_test(test_kafka_producer_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
