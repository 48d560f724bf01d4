/* Inference plane: the guard (corrupt, truncated and below-margin
 * candidates are refused and serving continues; a better one is swapped
 * in) and the consumer (missing features, NaN and malformed JSON counted and
 * dead-lettered with the reason; accuracy against a hand count). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_infer_util.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drst_test_infer_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct logrec {
    int n;
    drst_guard_ev_t last;
    char detail[1024];
} logrec_t;

static void on_log(void *opaque, drst_guard_ev_t ev, uint64_t version, const char *key,
                   const char *detail)
{
    logrec_t *l = opaque;
    (void)version;
    (void)key;
    l->n++;
    l->last = ev;
    snprintf(l->detail, sizeof(l->detail), "%s", detail ? detail : "");
}

static void publish(drst_store_t *st, drst_model_t *m, drst_publish_t which, drst_release_t *rel)
{
    char err[DRST_ERRLEN];
    assert_int_equal(drst_store_publish_model(st, m, which, rel, err, sizeof(err)), DRST_OK);
}

/* Put raw bytes under a new model key and point `latest` at it. */
static void point_at_bytes(drst_store_t *st, const char *key, const void *buf, size_t len)
{
    char err[DRST_ERRLEN];
    drst_release_t rel;
    memset(&rel, 0, sizeof(rel));
    assert_int_equal(drst_store_put_immutable(st, key, buf, len, err, sizeof(err)), DRST_OK);
    snprintf(rel.model_key, sizeof(rel.model_key), "%s", key);
    if (drst_store_set_pointer(st, "latest", &rel, err, sizeof(err)) != DRST_OK)
        fail_msg("set_pointer: %s", err);
}

static double serve_one(drst_model_slot_t *slot, uint64_t *ver)
{
    static const double x[2] = {1.0, 0.5};
    drst_rcu_thread_online();
    const drst_serving_t *sv = drst_model_slot_enter(slot);
    drst_model_scratch_t *sc = drst_model_scratch_new(sv->adaptive, 1);
    double y = sc ? drst_model_predict1(sv->adaptive, x, sc) : NAN;
    *ver = sv->version;
    drst_model_slot_exit(slot);
    drst_rcu_thread_offline();
    drst_model_scratch_free(sc);
    return y;
}

static void test_guard(void **state)
{
    (void)state;
    char err[DRST_ERRLEN], path[512];
    drst_guard_ev_t ev;
    drst_release_t rel;
    logrec_t lg = {0};
    uint64_t ver, sw, rf, co;

    snprintf(path, sizeof(path), "%s/store", tmpdir);
    drst_store_t *st = drst_store_open(path, err, sizeof(err));
    assert_non_null(st);
    /* served: a noisy model (val acc@0.2 well below 1) */
    drst_model_t *noisy = ti_model(0, 20);
    assert_non_null(noisy);
    double acc_noisy = drst_model_val_metrics(noisy)->acc20;
    assert_true(acc_noisy < 0.95);
    publish(st, noisy, DRST_PUBLISH_BOTH, &rel);
    drst_model_t *b = NULL, *a = NULL;
    assert_int_equal(drst_store_load_model(st, "baseline", &b, NULL, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_load_model(st, "latest", &a, NULL, err, sizeof(err)), DRST_OK);
    drst_model_free(noisy);
    drst_model_slot_t *slot = drst_model_slot_new(b, a, err, sizeof(err));
    assert_non_null(slot);
    double y0 = serve_one(slot, &ver);
    assert_int_equal(ver, 1);

    drst_guard_conf_t gc = {0};
    gc.gain_pp = 1.0;
    gc.log = on_log;
    gc.opaque = &lg;
    drst_guard_t *g = drst_guard_new(slot, st, &gc, err, sizeof(err));
    assert_non_null(g);
    /* the release already served: no swap, no log line */
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_SAME);
    assert_int_equal(lg.n, 0);
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_UNCHANGED);

    /* corrupt candidate: garbage bytes */
    point_at_bytes(st, "models/model_garbage", "not a model at all", 18);
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_CORRUPT);
    assert_int_equal(lg.last, DRST_GUARD_CORRUPT);
    assert_true(serve_one(slot, &ver) == y0);
    assert_int_equal(ver, 1);
    /* judged once: the next poll does not reload it */
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_UNCHANGED);

    /* truncated and bit-flipped copies of a good, better model */
    drst_model_t *good = ti_model(1, 0);
    assert_non_null(good);
    size_t len;
    unsigned char *bytes = ti_bytes(good, &len);
    assert_non_null(bytes);
    point_at_bytes(st, "models/model_truncated", bytes, len / 2);
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_CORRUPT);
    print_message("truncated: %s\n", lg.detail);
    bytes[len / 2] ^= 0x40;
    point_at_bytes(st, "models/model_flipped", bytes, len);
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_CORRUPT);
    print_message("flipped: %s\n", lg.detail);
    assert_true(serve_one(slot, &ver) == y0);
    assert_int_equal(ver, 1);
    free(bytes);

    /* the intact better model: swapped in */
    publish(st, good, DRST_PUBLISH_LATEST, NULL);
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_SWAPPED);
    assert_true(serve_one(slot, &ver) != y0);
    assert_int_equal(ver, 2);

    /* a different model just as accurate: below the 1 pp margin */
    drst_model_t *same_acc = ti_model(2, 0);
    assert_non_null(same_acc);
    publish(st, same_acc, DRST_PUBLISH_LATEST, NULL);
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_REFUSED);
    print_message("refused: %s\n", lg.detail);
    assert_non_null(strstr(lg.detail, "margin"));
    serve_one(slot, &ver);
    assert_int_equal(ver, 2);

    /* a worse one: refused too, even with a zero margin */
    drst_guard_free(g);
    gc.gain_pp = 0;
    g = drst_guard_new(slot, st, &gc, err, sizeof(err));
    assert_non_null(g);
    drst_model_t *worse = ti_model(3, 40);
    publish(st, worse, DRST_PUBLISH_LATEST, NULL);
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_REFUSED);
    serve_one(slot, &ver);
    assert_int_equal(ver, 2);

    /* the thread: start, then stop promptly */
    assert_int_equal(drst_guard_start(g, err, sizeof(err)), DRST_OK);
    drst_guard_counts(g, &sw, &rf, &co);
    drst_guard_free(g);
    drst_model_free(good);
    drst_model_free(same_acc);
    drst_model_free(worse);
    drst_model_slot_free(slot);
    drst_store_close(st);
}

/* ---- the consumer on the in-process log ---- */

static void produce(drst_stream_t *p, const char *s, size_t len)
{
    char err[DRST_ERRLEN];
    assert_int_equal(drst_stream_produce(p, "t", 0, NULL, 0, s, len, err, sizeof(err)), DRST_OK);
}

static void test_consumer_bad_records(void **state)
{
    (void)state;
    char err[DRST_ERRLEN], buf[1024], path[512];
    drst_model_t *m = ti_model(0, 0);
    assert_non_null(m);
    drst_model_scratch_t *sc = drst_model_scratch_new(m, 1);
    drst_model_slot_t *slot;
    drst_log_t *log = drst_log_new(NULL, err, sizeof(err));
    assert_non_null(log);
    assert_int_equal(drst_log_create_topic(log, "t", 1, err, sizeof(err)), DRST_OK);
    drst_stream_conf_t conf = {0};
    conf.log = log;
    conf.from_beginning = 1;
    drst_stream_t *prod = drst_stream_open(&drst_transport_inproc, &conf, err, sizeof(err));
    drst_stream_t *cons = drst_stream_open(&drst_transport_inproc, &conf, err, sizeof(err));
    assert_non_null(prod);
    assert_non_null(cons);

    /* 20 good records whose labels put half of them within 10% (our own
     * hand count: label = prediction * (1 + d), d alternating 0.01 / 0.5) */
    int good = 20, hits10 = 0;
    for (int i = 0; i < good; i++) {
        double x[2] = {1 + i, 0.25 * i};
        double y = drst_model_predict1(m, x, sc), d = i % 2 ? 0.5 : 0.01;
        hits10 += d <= 0.1;
        int n = snprintf(buf, sizeof(buf),
                         "{\"seq\":%d,\"send_ts\":1.5,\"features\":{\"a\":%.17g,\"b\":%.17g},"
                         "\"label\":%.17g}",
                         i, x[0], x[1], y * (1 + d));
        produce(prod, buf, (size_t)n);
    }
    /* one record without feature b (filled with the training mean) */
    produce(prod, buf, (size_t)snprintf(buf, sizeof(buf), "{\"seq\":90,\"features\":{\"a\":2}}"));
    /* NaN literal, malformed JSON, wrong type */
    produce(prod, buf,
            (size_t)snprintf(buf, sizeof(buf), "{\"seq\":91,\"features\":{\"a\":NaN,\"b\":1}}"));
    produce(prod, "{\"seq\":92,\"features\":{\"a\":1", 28);
    produce(prod, buf,
            (size_t)snprintf(buf, sizeof(buf), "{\"seq\":93,\"features\":{\"a\":\"x\",\"b\":1}}"));
    produce(prod, "{\"eos\":true,\"partition\":0}", 26);

    slot = drst_model_slot_new(m, NULL, err, sizeof(err));
    assert_non_null(slot);
    snprintf(path, sizeof(path), "%s/dlq.jsonl", tmpdir);
    drst_dlq_t *dlq = drst_dlq_open_file(path, err, sizeof(err));
    assert_non_null(dlq);
    drst_infer_conf_t ic;
    drst_infer_conf_init(&ic);
    ic.topic = "t";
    ic.group = "g";
    ic.out_dir = tmpdir;
    ic.dlq = dlq;
    ic.batch = 7; /* several batches */
    ic.idle_s = 30;
    drst_infer_t *c = drst_infer_new(&ic, cons, slot, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    drst_infer_end_t why;
    if (drst_infer_run(c, &why, err, sizeof(err)) != DRST_OK)
        fail_msg("%s", err);
    assert_int_equal(why, DRST_INFER_END_EOS);
    drst_infer_stats_t s;
    drst_infer_stats(c, -1, &s);
    assert_int_equal(s.records, good + 1);
    assert_int_equal(s.labelled, good);
    assert_int_equal(s.missing, 1);
    assert_int_equal(s.nan, 1);
    assert_int_equal(s.malformed, 2);
    assert_int_equal(s.dead_letters, 3);
    assert_int_equal(s.eos, 1);
    assert_int_equal(s.duplicates, 0);
    assert_true(s.batches >= 3);
    assert_true(fabs(s.adaptive.acc[1] - (double)hits10 / good) < 1e-12);
    assert_true(fabs(s.baseline.acc[0] - (double)hits10 / good) < 1e-12);
    assert_true(fabs(s.baseline.acc[2] - (double)hits10 / good) < 1e-12);
    drst_infer_stats(c, 0, &s);
    assert_int_equal(s.records, good + 1);
    drst_infer_free(c);
    drst_dlq_free(dlq);

    /* the dead letters carry their reasons */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int n = 0, nan_reason = 0;
    while (fgets(line, sizeof(line), f)) {
        n++;
        assert_non_null(strstr(line, "\"reason\":\""));
        if (strstr(line, "NaN/Infinity"))
            nan_reason++;
    }
    fclose(f);
    assert_int_equal(n, 3);
    assert_int_equal(nan_reason, 1);

    /* the trace has a header and one row per predicted record */
    snprintf(path, sizeof(path), "%s/trace_consumer-0.csv", tmpdir);
    f = fopen(path, "r");
    assert_non_null(f);
    n = 0;
    while (fgets(line, sizeof(line), f))
        n++;
    fclose(f);
    assert_int_equal(n, good + 2);

    drst_model_scratch_free(sc);
    drst_stream_close(prod);
    drst_stream_close(cons);
    drst_log_free(log);
    drst_model_slot_free(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_bad_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
