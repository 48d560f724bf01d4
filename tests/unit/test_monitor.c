/* Drift monitor, at the monitor level (not only the detector):
 *  - planted feature drift of known size fires the tier its size implies,
 *    at the drift, with the right drifted features in the request evidence
 *    and the window frozen in the store;
 *  - 100 k stationary records (features and a stationary model error)
 *    give at most one trigger;
 *  - an error jump with unchanged features fires an error trigger;
 *  - single shot under restarts: a monitor killed (SIGKILL) mid-cooldown
 *    and restarted from the store does not fire the same drift again, while
 *    a monitor started without the saved state does (the test is sensitive).
 *
 * Planted sizes: F = 8 standard-normal features, B = 64 bins, thresholds
 * 0.10 / 0.25 / 0.50 bits. Shifting k features by 12 sigma makes those
 * features' window histograms disjoint from the baseline (JSD ~ 0.98 bits
 * with the default smoothing, docs/drift.md) and leaves the others at noise
 * level (~0.01), so the mean is ~k/8: k = 1 -> A, k = 3 -> B, k = 8 -> C. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "drst/drst.h"
#include "drst/control.h"

#define F 8
static char root[256];
static const char *names[F] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"};

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/drst_test_monitor_XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* deterministic normal variates (splitmix64 + Box-Muller) */
typedef struct rng {
    uint64_t s;
} rng_t;
static double unif(rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * 0x1.0p-53;
}
static double gauss(rng_t *r)
{
    double u = unif(r), v = unif(r);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static drst_table_t *baseline(rng_t *r, size_t n)
{
    const char *cols[F + 1];
    for (int f = 0; f < F; f++)
        cols[f] = names[f];
    cols[F] = "output_rate";
    drst_table_t *t = drst_table_new(cols, F + 1, NULL, 0);
    assert_non_null(t);
    double row[F + 1];
    for (size_t i = 0; i < n; i++) {
        for (int f = 0; f < F; f++)
            row[f] = gauss(r);
        row[F] = 100 + row[0];
        assert_int_equal(drst_table_append(t, row, NULL, 0), DRST_OK);
    }
    return t;
}

static drst_monitor_t *make(drst_store_t *s, const drst_table_t *base, const char *errdet,
                            size_t stride)
{
    char err[DRST_ERRLEN];
    drst_monitor_config_t c = {0};
    c.window = 300;
    c.stride = stride;
    c.bins = 64;
    c.thresholds[0] = 0.10;
    c.thresholds[1] = 0.25;
    c.thresholds[2] = 0.50;
    c.error_detector = errdet;
    drst_monitor_t *m = drst_monitor_new(&c, names, F, s, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(drst_monitor_set_baseline(m, base, err, sizeof(err)), DRST_OK);
    return m;
}

/* feed one record with k features shifted by `shift` sigma */
static void feed(drst_monitor_t *m, rng_t *r, int k, double shift, double errsize,
                 drst_monitor_event_t *ev)
{
    double x[F];
    for (int f = 0; f < F; f++)
        x[f] = gauss(r) + (f < k ? shift : 0);
    double y = 100 + x[0];
    double pred = y * (1 + errsize * (0.5 + unif(r)));
    char err[DRST_ERRLEN];
    assert_int_equal(drst_monitor_feed(m, x, y, pred, ev, err, sizeof(err)), DRST_OK);
}

static json_t *read_json(drst_store_t *s, const char *key)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    assert_int_equal(drst_store_get(s, key, &buf, &len, NULL, 0), DRST_OK);
    json_error_t je;
    json_t *o = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
    assert_non_null(o);
    return o;
}

static void planted(int k, int want_tier)
{
    char sub[400], err[DRST_ERRLEN];
    snprintf(sub, sizeof(sub), "%s/planted%d", root, k);
    drst_store_t *s = drst_store_open(sub, err, sizeof(err));
    assert_non_null(s);
    rng_t r = {(uint64_t)k * 7 + 1};
    drst_table_t *base = baseline(&r, 3000);
    drst_monitor_t *m = make(s, base, "none", 300);
    drst_monitor_event_t ev;
    uint64_t fired_at = 0;
    int tier = 0;
    for (int i = 0; i < 2100; i++) { /* stationary */
        feed(m, &r, 0, 0, 0.02, &ev);
        assert_false(ev.triggered);
    }
    for (int i = 0; i < 600 && !fired_at; i++) {
        feed(m, &r, k, 12, 0.02, &ev);
        if (ev.triggered) {
            fired_at = ev.at;
            tier = ev.tier;
            assert_int_equal(ev.source, DRST_TRIGGER_FEATURES);
        }
    }
    /* the drift starts at record 2101; with stride = window the first
     * evaluation after it (record 2400) sees a fully drifted window */
    assert_int_equal(fired_at, 2400);
    assert_int_equal(tier, want_tier);
    /* the request and its evidence */
    drst_retrain_request_t rq;
    assert_int_equal(drst_retrain_request_read(s, &rq, err, sizeof(err)), DRST_OK);
    assert_int_equal(rq.tier, want_tier);
    assert_string_equal(rq.status, "pending");
    assert_int_equal(rq.n_drifted, (size_t)k);
    json_t *o = read_json(s, DRST_CONTROL_REQUEST_KEY);
    json_t *d = json_object_get(o, "drifted");
    assert_int_equal(json_array_size(d), (size_t)k);
    for (int f = 0; f < k; f++)
        assert_string_equal(json_string_value(json_array_get(d, (size_t)f)), names[f]);
    assert_true(json_number_value(json_object_get(json_object_get(o, "jsd"), "f0")) > 0.5);
    json_decref(o);
    /* the frozen window: the last W records with their labels */
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_table_t *w = NULL;
    assert_int_equal(drst_store_get(s, rq.window_key, &buf, &len, NULL, 0), DRST_OK);
    assert_int_equal(drst_table_parse_csv((char *)buf, len, "w", NULL, &w, NULL, NULL, 0), DRST_OK);
    free(buf);
    assert_int_equal(w->nrows, 300);
    assert_int_equal(w->ncols, F + 1);
    assert_string_equal(w->names[F], "output_rate");
    /* last row is the trigger record: label = 100 + f0 */
    assert_true(fabs(w->data[299 * (F + 1) + F] - (100 + w->data[299 * (F + 1)])) < 1e-9);
    drst_table_free(w);
    /* single shot: drift goes on, request pending -> suppressed */
    uint64_t trig = 1;
    for (int i = 0; i < 1000; i++) {
        feed(m, &r, k, 12, 0.02, &ev);
        if (ev.triggered)
            trig++;
    }
    assert_int_equal(trig, 1);
    drst_monitor_stats_t st;
    drst_monitor_stats(m, &st);
    assert_int_equal(st.triggers, 1);
    assert_true(st.suppressed > 0);
    drst_monitor_free(m);
    drst_table_free(base);
    drst_store_close(s);
}

static void test_tier_a(void **state)
{
    (void)state;
    planted(1, DRST_TIER_A);
}
static void test_tier_b(void **state)
{
    (void)state;
    planted(3, DRST_TIER_B);
}
static void test_tier_c(void **state)
{
    (void)state;
    planted(8, DRST_TIER_C);
}

static void test_stationary(void **state)
{
    (void)state;
    rng_t r = {99};
    drst_table_t *base = baseline(&r, 3000);
    char err[DRST_ERRLEN];
    drst_monitor_config_t c = {0};
    c.calibrate = 1; /* thresholds from the baseline's null distribution */
    drst_monitor_t *m = drst_monitor_new(&c, names, F, NULL, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(drst_monitor_set_baseline(m, base, err, sizeof(err)), DRST_OK);
    drst_monitor_event_t ev;
    for (int i = 0; i < 100000; i++)
        feed(m, &r, 0, 0, 0.05, &ev);
    drst_monitor_stats_t st;
    drst_monitor_stats(m, &st);
    assert_int_equal(st.seen, 100000);
    assert_true(st.evaluations > 1900);
    assert_true(st.triggers <= 1);
    drst_monitor_free(m);
    drst_table_free(base);
}

static void test_error_drift(void **state)
{
    (void)state;
    rng_t r = {5};
    drst_table_t *base = baseline(&r, 3000);
    drst_monitor_t *m = make(NULL, base, "page_hinkley", 50);
    drst_monitor_event_t ev;
    uint64_t at = 0;
    for (int i = 0; i < 3000; i++) {
        feed(m, &r, 0, 0, 0.02, &ev);
        assert_false(ev.triggered);
    }
    for (int i = 0; i < 500 && !at; i++) {
        feed(m, &r, 0, 0, 0.40, &ev); /* features unchanged, error x20 */
        if (ev.triggered) {
            at = ev.at;
            assert_int_equal(ev.source, DRST_TRIGGER_ERROR);
            assert_true(ev.tier >= DRST_TIER_B); /* error mean up by ~0.4 > 0.30 */
        }
    }
    /* PH delay ~ lambda / (jump - delta) = 10 / 0.39 ~ 26 records */
    assert_true(at > 3000 && at < 3100);
    drst_monitor_free(m);
    drst_table_free(base);
}

static void test_restart_mid_cooldown(void **state)
{
    (void)state;
    char sub[400], err[DRST_ERRLEN];
    snprintf(sub, sizeof(sub), "%s/restart", root);
    drst_store_t *s = drst_store_open(sub, err, sizeof(err));
    assert_non_null(s);
    rng_t r0 = {11};
    drst_table_t *base = baseline(&r0, 3000);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the monitor process: stationary, drift, trigger, then killed
         * mid-cooldown without any orderly shutdown */
        drst_store_t *cs = drst_store_open(sub, NULL, 0);
        drst_monitor_t *m = make(cs, base, "none", 50);
        rng_t r = {12};
        drst_monitor_event_t ev;
        int fired = 0;
        for (int i = 0; i < 1000; i++)
            feed(m, &r, 0, 0, 0.02, &ev);
        for (int i = 0; i < 200; i++) {
            feed(m, &r, F, 12, 0.02, &ev);
            fired += ev.triggered;
        }
        if (fired != 1)
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    drst_retrain_request_t rq;
    assert_int_equal(drst_retrain_request_read(s, &rq, NULL, 0), DRST_OK);
    assert_string_equal(rq.status, "pending");
    /* the retrainer finished the request (no new release yet) */
    const char *done = "{\"id\":\"x\",\"tier\":3,\"window\":\"w\",\"status\":\"done\","
                       "\"attempts\":1,\"source\":\"features\",\"at\":1}";
    assert_int_equal(
        drst_store_put_atomic(s, DRST_CONTROL_REQUEST_KEY, done, strlen(done), NULL, 0), DRST_OK);

    /* restarted monitor: resumes mid-cooldown and does not fire the same drift */
    drst_monitor_t *m = make(s, base, "none", 50);
    assert_int_equal(drst_monitor_resume(m, err, sizeof(err)), DRST_OK);
    drst_monitor_stats_t ms;
    drst_monitor_stats(m, &ms);
    assert_int_equal(ms.seen, 1200); /* last save: the evaluation at record 1200 */
    assert_int_equal(ms.triggers, 1);
    rng_t r = {13};
    drst_monitor_event_t ev;
    int fired = 0;
    for (int i = 0; i < 80; i++) { /* rest of the cooldown (ends at ~1350) */
        feed(m, &r, F, 12, 0.02, &ev);
        fired += ev.triggered;
    }
    assert_int_equal(fired, 0);
    /* the new release arrives: rebaseline on the drifted regime, no new fire */
    drst_monitor_rebaseline(m, "models/model_x");
    for (int i = 0; i < 1500; i++) {
        feed(m, &r, F, 12, 0.02, &ev);
        fired += ev.triggered;
    }
    assert_int_equal(fired, 0);
    drst_monitor_free(m);

    /* control: a monitor that forgot its state fires the same drift again */
    drst_monitor_t *m2 = make(NULL, base, "none", 50);
    rng_t r2 = {13};
    for (int i = 0; i < 400; i++) {
        feed(m2, &r2, F, 12, 0.02, &ev);
        fired += ev.triggered;
    }
    assert_int_equal(fired, 1);
    drst_monitor_free(m2);

    /* a corrupt saved state is refused, the monitor stays usable */
    drst_monitor_t *m3 = make(s, base, "none", 50);
    const char *bad = "{\"format\":\"drst.monitor.state\",\"names\":[\"f0\"]}";
    assert_int_equal(drst_store_put_atomic(s, DRST_CONTROL_MONITOR_KEY, bad, strlen(bad), NULL, 0),
                     DRST_OK);
    assert_int_not_equal(drst_monitor_resume(m3, err, sizeof(err)), DRST_OK);
    drst_monitor_free(m3);
    drst_table_free(base);
    drst_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tier_a),      cmocka_unit_test(test_tier_b),
        cmocka_unit_test(test_tier_c),      cmocka_unit_test(test_stationary),
        cmocka_unit_test(test_error_drift), cmocka_unit_test(test_restart_mid_cooldown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
