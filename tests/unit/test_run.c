/* Unit tests of the run orchestrator (drst_run_*): stage parsing, option
 * checks, and a small whole run driven through the library on simulated
 * data (the figures are checked against the trace files in test_run_sim.py). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drst/run.h"
#include "drst/sim.h"

static void test_stage_parse(void **state)
{
    (void)state;
    drst_run_stage_t st;
    char *s = NULL, err[DRST_ERRLEN];
    assert_int_equal(drst_run_stage_parse("a.csv", &st, &s, err, sizeof(err)), DRST_OK);
    assert_string_equal(st.path, "a.csv");
    assert_true(st.head == -1 && st.tail == -1);
    free(s);
    assert_int_equal(drst_run_stage_parse("dir/a:b.csv:head=12", &st, &s, err, sizeof(err)),
                     DRST_OK);
    assert_string_equal(st.path, "dir/a:b.csv");
    assert_int_equal(st.head, 12);
    free(s);
    assert_int_equal(drst_run_stage_parse("a.csv:tail=0", &st, &s, err, sizeof(err)), DRST_OK);
    assert_int_equal(st.tail, 0);
    free(s);
    const char *bad[] = {"", "a.csv:head=", "a.csv:tail=-1", "a.csv:head=1x", ":head=3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(drst_run_stage_parse(bad[i], &st, &s, err, sizeof(err)), DRST_ERR_INVAL);
        assert_null(s);
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    drst_run_opts_t o;
    drst_run_stage_t st = {.path = "x.csv", .head = -1, .tail = -1};
    char err[DRST_ERRLEN];
    drst_run_opts_init(&o);
    assert_int_equal(drst_run_execute(&o, NULL, NULL, err, sizeof(err)), DRST_ERR_INVAL);
    o.train_path = "t.csv";
    o.stages = &st;
    o.nstages = 1;
    o.out_dir = "/tmp";
    o.partitions = 0;
    assert_int_equal(drst_run_execute(&o, NULL, NULL, err, sizeof(err)), DRST_ERR_INVAL);
    o.partitions = 2;
    o.stride = 500; /* > window */
    assert_int_equal(drst_run_execute(&o, NULL, NULL, err, sizeof(err)), DRST_ERR_INVAL);
    o.stride = 10;
    o.train_path = "/nonexistent/t.csv";
    char dir[] = "/tmp/drst_run_unit_XXXXXX";
    assert_non_null(mkdtemp(dir));
    o.out_dir = dir;
    drst_err_t rc = drst_run_execute(&o, NULL, NULL, err, sizeof(err));
    assert_true(rc == DRST_ERR_IO || rc == DRST_ERR_NOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/t.csv"));
}

static void write_sim(const char *scenario, size_t rows, uint64_t seed, const char *path)
{
    char err[DRST_ERRLEN];
    drst_sim_scenario_t *sc = drst_sim_scenario_builtin(scenario, err, sizeof(err));
    assert_non_null(sc);
    drst_sim_opts_t so = {.seed = seed, .rows = rows};
    drst_sim_t *s = drst_sim_new(sc, &so, err, sizeof(err));
    assert_non_null(s);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(drst_sim_write_csv(s, f, err, sizeof(err)), DRST_OK);
    fclose(f);
    drst_sim_free(s);
    drst_sim_scenario_free(sc);
}

typedef struct seen {
    int calls;
    uint64_t last_inferred;
} seen_t;

static void on_progress(void *opaque, const drst_run_progress_t *p)
{
    seen_t *s = opaque;
    s->calls++;
    assert_true(p->inferred <= p->total);
    s->last_inferred = p->inferred;
}

static void test_small_run(void **state)
{
    (void)state;
    char dir[] = "/tmp/drst_run_unit_XXXXXX", train[256], stream[256], out[256], err[DRST_ERRLEN];
    assert_non_null(mkdtemp(dir));
    snprintf(train, sizeof(train), "%s/train.csv", dir);
    snprintf(stream, sizeof(stream), "%s/stream.csv", dir);
    snprintf(out, sizeof(out), "%s/run", dir);
    write_sim("sweep", 300, 1, train);
    write_sim("contention", 300, 2, stream);

    drst_run_opts_t o;
    drst_run_stage_t st[2] = {{.path = stream, .head = 100, .tail = -1},
                              {.path = stream, .head = -1, .tail = 150}};
    drst_run_summary_t sum;
    seen_t seen = {0};
    drst_run_opts_init(&o);
    o.train_path = train;
    o.stages = st;
    o.nstages = 2;
    o.out_dir = out;
    o.family = DRST_MODEL_RIDGE;
    o.families = "ridge";
    o.partitions = 2;
    o.consumers = 3; /* one more than partitions: the idle member must stop */
    o.window = 40;
    o.stride = 10;
    o.retrain_lag = 3;
    o.no_report = 1;
    o.progress = on_progress;
    o.opaque = &seen;
    drst_err_t rc = drst_run_execute(&o, &sum, NULL, err, sizeof(err));
    if (rc != DRST_OK)
        fail_msg("run failed: %s", err);
    assert_int_equal(sum.records, 250);
    assert_int_equal(sum.labelled, 250);
    assert_true(seen.calls >= 1);
    assert_int_equal(seen.last_inferred, 250);
    assert_true(sum.static_acc[0] <= sum.static_acc[1] && sum.static_acc[1] <= sum.static_acc[2]);
    assert_true(sum.adaptive_acc[0] <= sum.adaptive_acc[2]);
    assert_true(sum.swaps <= sum.retrains && sum.retrains <= sum.triggers);
    assert_int_equal(sum.final_version, 1 + (int)sum.swaps);
    assert_int_equal(sum.errors, 0);
    char *js = NULL;
    assert_int_equal(drst_run_summary_json(&sum, &js, err, sizeof(err)), DRST_OK);
    assert_non_null(strstr(js, "\"adaptive.acc@0.05\""));
    assert_non_null(strstr(js, "\"records\": 250"));
    free(js);
    char p[512];
    snprintf(p, sizeof(p), "%s/trace_consumer-2.csv", out);
    assert_int_equal(access(p, R_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_parse),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_small_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
