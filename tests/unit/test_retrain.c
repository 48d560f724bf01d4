/* Retrainer: deterministic search whatever the thread count; schema change
 * detected and handled without zero-filling; the store flow (request ->
 * lease -> release -> latest -> done -> importance); a retrainer killed
 * (SIGKILL) mid-search leaves no half release, its lease expires and the
 * request is retried once, and only once. */
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

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/drst_test_retrain_XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static double unif(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* y = 500 + 80 x0 + 40 x1^2 - 30 x2 x3 + shift (+ small noise) */
static drst_table_t *make_table(const char *const *cols, size_t nf, size_t n, uint64_t seed,
                                double shift)
{
    const char *names[16];
    for (size_t i = 0; i < nf; i++)
        names[i] = cols[i];
    names[nf] = "output_rate";
    drst_table_t *t = drst_table_new(names, nf + 1, NULL, 0);
    assert_non_null(t);
    double row[16];
    for (size_t r = 0; r < n; r++) {
        for (size_t f = 0; f < nf; f++)
            row[f] = unif(&seed) * 2 - 1;
        row[nf] = 500 + 80 * row[0] + 40 * row[1] * row[1] - 30 * row[2] * row[3] + shift +
                  (unif(&seed) - 0.5) * 2;
        assert_int_equal(drst_table_append(t, row, NULL, 0), DRST_OK);
    }
    return t;
}

static const char *cols6[] = {"f0", "f1", "f2", "f3", "f4", "f5"};

static void test_deterministic(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    drst_table_t *w = make_table(cols6, 6, 300, 1, 0);
    drst_retrain_config_t c = {0};
    c.families = "gbdt,ridge,mlp";
    c.full_trees = 40;
    c.full_epochs = 16;
    char hash[2][80];
    for (int k = 0; k < 2; k++) {
        c.threads = k ? 2 : 1;
        drst_model_t *m = NULL;
        drst_retrain_result_t res;
        assert_int_equal(
            drst_retrain_window(w, NULL, NULL, DRST_TIER_A, &c, &m, &res, err, sizeof(err)),
            DRST_OK);
        assert_int_equal(res.candidates, 5);
        assert_int_equal(res.rungs, 3); /* 5 -> 3 -> 2 -> 1 */
        assert_int_equal(res.rows_val, 60);
        assert_true(res.gate_passed); /* no current model */
        assert_true(res.new_val.rows == 60);
        snprintf(hash[k], sizeof(hash[k]), "%s", drst_model_hash_hex(m));
        drst_model_free(m);
    }
    assert_string_equal(hash[0], hash[1]);
    drst_table_free(w);
}

static void test_gate(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    /* the serving model knows the old regime; the window is shifted by +300 */
    drst_table_t *old = make_table(cols6, 6, 600, 2, 0);
    drst_table_t *w = make_table(cols6, 6, 300, 3, 300);
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_RIDGE;
    drst_model_t *cur = NULL, *m = NULL;
    assert_int_equal(drst_model_train(old, &o, &cur, NULL, NULL, err, sizeof(err)), DRST_OK);
    drst_retrain_config_t c = {0};
    c.families = "ridge";
    drst_retrain_result_t res;
    assert_int_equal(drst_retrain_window(w, NULL, cur, DRST_TIER_A, &c, &m, &res, err, sizeof(err)),
                     DRST_OK);
    assert_true(res.cur_val.rows == 60);
    assert_true(res.cur_val.acc20 < 0.05); /* off by ~300 on ~800 */
    assert_true(res.new_val.acc20 > 0.95);
    assert_true(res.gate_passed);
    drst_model_free(m);
    /* an impossible gain requirement closes the gate */
    c.min_gain = 5;
    assert_int_equal(drst_retrain_window(w, NULL, cur, DRST_TIER_A, &c, &m, &res, err, sizeof(err)),
                     DRST_OK);
    assert_false(res.gate_passed);
    drst_model_free(m);
    drst_model_free(cur);
    drst_table_free(old);
    drst_table_free(w);
}

static void test_schema_change(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    static const char *newcols[] = {"f0", "f1", "f2", "f3", "f4", "g6"}; /* f5 replaced */
    drst_table_t *old = make_table(cols6, 6, 400, 4, 0);
    drst_table_t *w = make_table(newcols, 6, 300, 5, 0);
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_RIDGE;
    drst_model_t *cur = NULL, *m = NULL;
    assert_int_equal(drst_model_train(old, &o, &cur, NULL, NULL, err, sizeof(err)), DRST_OK);
    drst_retrain_config_t c = {0};
    c.families = "ridge,gbdt";
    c.full_trees = 20;
    c.base = old; /* old-schema data: must not be zero-filled into the new schema */
    drst_retrain_result_t res;
    assert_int_equal(drst_retrain_window(w, old, cur, DRST_TIER_A, &c, &m, &res, err, sizeof(err)),
                     DRST_OK);
    assert_true(res.schema_changed);
    assert_int_equal(res.n_missing, 1);
    assert_int_equal(res.n_new, 1);
    assert_non_null(strstr(res.schema_note, "'f5'"));
    assert_int_equal(res.rows_base, 0);
    assert_int_equal(res.rows_replay, 0);
    assert_false(res.warm_started);
    assert_int_equal(res.cur_val.rows, 0); /* serving model cannot score the new schema */
    assert_true(res.gate_passed);
    /* trained on the new schema */
    int has_g6 = 0;
    for (size_t j = 0; j < drst_model_nfeatures(m); j++) {
        assert_string_not_equal(drst_model_feature(m, j), "f5");
        has_g6 |= !strcmp(drst_model_feature(m, j), "g6");
    }
    assert_true(has_g6);
    drst_model_free(m);
    drst_model_free(cur);
    drst_table_free(old);
    drst_table_free(w);
}

/* ---- store flow ---- */

static drst_store_t *open_sub(const char *sub)
{
    char path[400], err[DRST_ERRLEN];
    snprintf(path, sizeof(path), "%s/%s", root, sub);
    drst_store_t *s = drst_store_open(path, err, sizeof(err));
    assert_non_null(s);
    return s;
}

static void put_table(drst_store_t *s, const drst_table_t *t, const char *key)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(drst_table_write_csv_fp(t, f, key, NULL, 0), DRST_OK);
    fclose(f);
    assert_int_equal(drst_store_put_immutable(s, key, buf, len, NULL, 0), DRST_OK);
    free(buf);
}

static void put_request(drst_store_t *s, const char *id)
{
    char wkey[128], txt[512];
    snprintf(wkey, sizeof(wkey), "state/windows/%s.csv", id);
    drst_table_t *w = make_table(cols6, 6, 300, 7, 300);
    put_table(s, w, wkey);
    drst_table_free(w);
    snprintf(txt, sizeof(txt),
             "{\"format\":\"drst.retrain.request\",\"version\":1,\"id\":\"%s\",\"tier\":1,"
             "\"source\":\"features\",\"at\":300,\"score\":0.4,\"n_drifted\":2,"
             "\"drifted\":[\"f0\",\"f1\"],\"window\":\"%s\",\"replay\":\"\",\"status\":"
             "\"pending\",\"attempts\":0}",
             id, wkey);
    assert_int_equal(drst_store_put_atomic(s, DRST_CONTROL_REQUEST_KEY, txt, strlen(txt), NULL, 0),
                     DRST_OK);
}

static int count_fn(void *opaque, const char *key)
{
    if (strstr(key, "models/model_") || strstr(key, "models/metrics_"))
        ++*(int *)opaque;
    return 0;
}

static int count_models(drst_store_t *s)
{
    int n = 0;
    assert_int_equal(drst_store_list(s, "models/", count_fn, &n, NULL, 0), DRST_OK);
    return n;
}

static void publish_initial(drst_store_t *s)
{
    drst_table_t *old = make_table(cols6, 6, 500, 8, 0);
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_RIDGE;
    drst_model_t *m = NULL;
    assert_int_equal(drst_model_train(old, &o, &m, NULL, NULL, NULL, 0), DRST_OK);
    assert_int_equal(drst_store_publish_model(s, m, DRST_PUBLISH_BOTH, NULL, NULL, 0), DRST_OK);
    drst_model_free(m);
    drst_table_free(old);
}

static drst_retrain_config_t fast_cfg(void)
{
    drst_retrain_config_t c = {0};
    c.families = "ridge,gbdt";
    c.full_trees = 30;
    c.lease_ttl = 1.0;
    return c;
}

static void test_store_flow(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    drst_store_t *s = open_sub("flow");
    publish_initial(s);
    drst_release_t before;
    assert_int_equal(drst_store_read_pointer(s, "latest", &before, NULL, 0), DRST_OK);
    put_request(s, "r1");
    drst_retrain_config_t c = fast_cfg();
    drst_retrainer_t *r = drst_retrainer_new(s, &c, err, sizeof(err));
    assert_non_null(r);
    drst_retrain_result_t res;
    drst_err_t rc = drst_retrainer_run_once(r, &res, err, sizeof(err));
    if (rc != DRST_OK)
        print_error("run_once: %s\n", err);
    assert_int_equal(rc, DRST_OK);
    assert_true(res.published);
    assert_true(res.latest_moved);
    drst_release_t after;
    assert_int_equal(drst_store_read_pointer(s, "latest", &after, NULL, 0), DRST_OK);
    assert_string_equal(after.model_key, res.release.model_key);
    assert_string_not_equal(after.model_key, before.model_key);
    assert_true(drst_store_exists(s, res.release.metrics_key));
    assert_true(res.importance_key[0] && drst_store_exists(s, res.importance_key));
    drst_retrain_request_t rq;
    assert_int_equal(drst_retrain_request_read(s, &rq, NULL, 0), DRST_OK);
    assert_string_equal(rq.status, "done");
    assert_int_equal(rq.attempts, 1);
    assert_string_equal(rq.release, res.release.model_key);
    drst_lease_info_t li;
    assert_int_equal(drst_lease_read(s, DRST_CONTROL_LEASE_KEY, &li, NULL, 0), DRST_ERR_NOTFOUND);
    /* nothing left to do */
    drst_retrain_result_t res2;
    assert_int_equal(drst_retrainer_run_once(r, &res2, err, sizeof(err)), DRST_ERR_EMPTY);
    /* permutation importance: x0 matters most (80 x0 dominates y) */
    unsigned char *buf = NULL;
    size_t len = 0;
    assert_int_equal(drst_store_get(s, res.importance_key, &buf, &len, NULL, 0), DRST_OK);
    json_error_t je;
    json_t *o = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
    json_t *fs = json_object_get(o, "features");
    assert_true(json_is_object(fs));
    const char *k;
    json_t *v;
    const char *top = NULL;
    double best = -1e300;
    json_object_foreach(fs, k, v)
    {
        if (json_number_value(v) > best) {
            best = json_number_value(v);
            top = k;
        }
    }
    assert_non_null(top);
    assert_string_equal(top, "f0");
    json_decref(o);
    drst_retrainer_free(r);
    drst_store_close(s);
}

static void kill_on_rung(void *opaque, int rung, size_t survivors)
{
    (void)opaque;
    (void)survivors;
    if (rung == 1)
        raise(SIGKILL);
}

/* Run a retrainer in a child that is killed after the first halving rung. */
static void killed_child(const char *sub)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        drst_store_t *cs = drst_store_open(sub, NULL, 0);
        drst_retrain_config_t c = fast_cfg();
        c.on_rung = kill_on_rung;
        c.owner = "doomed";
        drst_retrainer_t *r = drst_retrainer_new(cs, &c, NULL, 0);
        drst_retrain_result_t res;
        (void)!drst_retrainer_run_once(r, &res, NULL, 0);
        _exit(5); /* not reached when the kill works */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_kill_mid_search(void **state)
{
    (void)state;
    char err[DRST_ERRLEN], path[400];
    snprintf(path, sizeof(path), "%s/kill1", root);
    drst_store_t *s = open_sub("kill1");
    publish_initial(s);
    put_request(s, "k1");
    int n0 = count_models(s);
    killed_child(path);
    /* no half release; the dead retrainer's lease is still there */
    assert_int_equal(count_models(s), n0);
    drst_lease_info_t li;
    assert_int_equal(drst_lease_read(s, DRST_CONTROL_LEASE_KEY, &li, NULL, 0), DRST_OK);
    assert_string_equal(li.owner, "doomed");
    drst_retrain_request_t rq;
    assert_int_equal(drst_retrain_request_read(s, &rq, NULL, 0), DRST_OK);
    assert_string_equal(rq.status, "running");
    assert_int_equal(rq.attempts, 1);
    drst_retrain_config_t c = fast_cfg();
    drst_retrainer_t *r = drst_retrainer_new(s, &c, err, sizeof(err));
    drst_retrain_result_t res;
    /* live lease: busy */
    if (drst_control_now() < li.expires - 0.05)
        assert_int_equal(drst_retrainer_run_once(r, &res, err, sizeof(err)), DRST_ERR_BUSY);
    /* after expiry the request is retried (attempt 2) and finishes */
    usleep((useconds_t)((li.expires - drst_control_now() + 0.1) * 1e6));
    assert_int_equal(drst_retrainer_run_once(r, &res, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_retrain_request_read(s, &rq, NULL, 0), DRST_OK);
    assert_string_equal(rq.status, "done");
    assert_int_equal(rq.attempts, 2);
    assert_int_equal(count_models(s), n0 + 2); /* one model + its metrics */
    drst_retrainer_free(r);
    drst_store_close(s);
}

static void test_retried_once_only(void **state)
{
    (void)state;
    char err[DRST_ERRLEN], path[400];
    snprintf(path, sizeof(path), "%s/kill2", root);
    drst_store_t *s = open_sub("kill2");
    publish_initial(s);
    put_request(s, "k2");
    int n0 = count_models(s);
    drst_lease_info_t li;
    killed_child(path);
    assert_int_equal(drst_lease_read(s, DRST_CONTROL_LEASE_KEY, &li, NULL, 0), DRST_OK);
    usleep((useconds_t)((li.expires - drst_control_now() + 0.1) * 1e6));
    killed_child(path); /* the retry dies too */
    assert_int_equal(drst_lease_read(s, DRST_CONTROL_LEASE_KEY, &li, NULL, 0), DRST_OK);
    usleep((useconds_t)((li.expires - drst_control_now() + 0.1) * 1e6));
    drst_retrain_config_t c = fast_cfg();
    drst_retrainer_t *r = drst_retrainer_new(s, &c, err, sizeof(err));
    drst_retrain_result_t res;
    assert_int_equal(drst_retrainer_run_once(r, &res, err, sizeof(err)), DRST_ERR_STATE);
    drst_retrain_request_t rq;
    assert_int_equal(drst_retrain_request_read(s, &rq, NULL, 0), DRST_OK);
    assert_string_equal(rq.status, "failed");
    assert_int_equal(count_models(s), n0);
    assert_int_equal(drst_lease_read(s, DRST_CONTROL_LEASE_KEY, &li, NULL, 0), DRST_ERR_NOTFOUND);
    assert_int_equal(drst_retrainer_run_once(r, &res, err, sizeof(err)), DRST_ERR_EMPTY);
    drst_retrainer_free(r);
    drst_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),   cmocka_unit_test(test_gate),
        cmocka_unit_test(test_schema_change),   cmocka_unit_test(test_store_flow),
        cmocka_unit_test(test_kill_mid_search), cmocka_unit_test(test_retried_once_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
