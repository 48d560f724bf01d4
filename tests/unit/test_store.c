/* Store: key validation, immutable/atomic puts, list, model releases,
 * pointer moves under concurrent readers, corrupt releases, rollback. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drst/drst.h"

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/drst_test_store_XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_keys(void **state)
{
    (void)state;
    assert_true(drst_store_key_valid("models/latest"));
    assert_true(drst_store_key_valid("a/b.c/d_e-f"));
    assert_false(drst_store_key_valid(""));
    assert_false(drst_store_key_valid(NULL));
    assert_false(drst_store_key_valid("/etc/passwd"));
    assert_false(drst_store_key_valid("models/../../x"));
    assert_false(drst_store_key_valid(".."));
    assert_false(drst_store_key_valid("a/./b"));
    assert_false(drst_store_key_valid("a//b"));
    assert_false(drst_store_key_valid("a/"));
    assert_false(drst_store_key_valid("a\nb"));
    assert_false(drst_store_key_valid("a\x7f"));
    char err[DRST_ERRLEN];
    assert_null(drst_store_open("s3://bucket/x", err, sizeof(err)));
    assert_null(drst_store_open("", err, sizeof(err)));
}

static int collect(void *opaque, const char *key)
{
    char *acc = opaque;
    strncat(acc, key, 1000 - strlen(acc) - 2);
    strcat(acc, ";");
    return 0;
}

static void test_objects(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    drst_store_t *s = drst_store_open(root, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(drst_store_put_immutable(s, "datasets/x/one", "abc", 3, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_store_put_immutable(s, "datasets/x/one", "xyz", 3, err, sizeof(err)),
                     DRST_ERR_BUSY);
    unsigned char *b;
    size_t n;
    assert_int_equal(drst_store_get(s, "datasets/x/one", &b, &n, err, sizeof(err)), DRST_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(b, "abc", 3);
    free(b);
    assert_int_equal(drst_store_put_atomic(s, "state/p", "1", 1, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_put_atomic(s, "state/p", "22", 2, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_get(s, "state/p", &b, &n, err, sizeof(err)), DRST_OK);
    assert_int_equal(n, 2);
    free(b);
    assert_int_equal(drst_store_append(s, "state/log", "a\n", 2, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_append(s, "state/log", "b\n", 2, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_get(s, "state/log", &b, &n, err, sizeof(err)), DRST_OK);
    assert_memory_equal(b, "a\nb\n", 4);
    free(b);
    assert_int_equal(drst_store_get(s, "nope", &b, &n, err, sizeof(err)), DRST_ERR_NOTFOUND);
    assert_int_equal(drst_store_get(s, "../x", &b, &n, err, sizeof(err)), DRST_ERR_INVAL);
    char acc[1000] = "";
    assert_int_equal(drst_store_list(s, "state/", collect, acc, err, sizeof(err)), DRST_OK);
    assert_string_equal(acc, "state/log;state/p;");
    assert_true(drst_store_exists(s, "state/p"));
    assert_int_equal(drst_store_delete(s, "state/p", err, sizeof(err)), DRST_OK);
    assert_false(drst_store_exists(s, "state/p"));
    drst_store_close(s);
}

static drst_model_t *train_small(uint64_t seed)
{
    const char *const names[] = {"x1", "x2", "output_rate"};
    drst_table_t *t = drst_table_new(names, 3, NULL, 0);
    for (int i = 0; i < 60; i++) {
        double row[3] = {i, (i * 7) % 11, 2.0 * i + (double)((i * 7) % 11)};
        assert_int_equal(drst_table_append(t, row, NULL, 0), DRST_OK);
    }
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_RIDGE;
    o.alpha = (double)seed; /* different models for different seeds */
    o.seed = seed;
    drst_model_t *m = NULL;
    assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, NULL, 0), DRST_OK);
    drst_table_free(t);
    return m;
}

static void test_publish_rollback(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    drst_store_t *s = drst_store_open(root, err, sizeof(err));
    drst_release_t r1, r2, r3, cur;
    drst_model_t *m1 = train_small(1), *m2 = train_small(2), *m3 = train_small(3), *l = NULL;
    assert_int_equal(drst_store_rollback(s, "latest", &cur, err, sizeof(err)), DRST_ERR_STATE);
    assert_int_equal(drst_store_publish_model(s, m1, DRST_PUBLISH_BOTH, &r1, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_store_publish_model(s, m2, DRST_PUBLISH_LATEST, &r2, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_store_publish_model(s, m3, DRST_PUBLISH_LATEST, &r3, err, sizeof(err)),
                     DRST_OK);
    assert_true(strncmp(r1.model_key, "models/model_", 13) == 0);
    assert_true(strncmp(r1.metrics_key, "models/metrics_", 15) == 0);
    assert_true(drst_store_exists(s, r1.metrics_key));
    assert_int_equal(drst_store_read_pointer(s, "latest", &cur, err, sizeof(err)), DRST_OK);
    assert_string_equal(cur.model_key, r3.model_key);
    assert_int_equal(drst_store_read_pointer(s, "baseline", &cur, err, sizeof(err)), DRST_OK);
    assert_string_equal(cur.model_key, r1.model_key);
    /* rollback goes one release back each time, then refuses */
    assert_int_equal(drst_store_rollback(s, "latest", &cur, err, sizeof(err)), DRST_OK);
    assert_string_equal(cur.model_key, r2.model_key);
    assert_int_equal(drst_store_load_model(s, "latest", &l, NULL, err, sizeof(err)), DRST_OK);
    assert_memory_equal(drst_model_hash(l), drst_model_hash(m2), 32);
    drst_model_free(l);
    assert_int_equal(drst_store_rollback(s, "latest", &cur, err, sizeof(err)), DRST_OK);
    assert_string_equal(cur.model_key, r1.model_key);
    assert_int_equal(drst_store_rollback(s, "latest", &cur, err, sizeof(err)), DRST_ERR_STATE);
    /* promote by key (without the models/ prefix) */
    assert_int_equal(drst_store_resolve(s, r3.model_key + 7, &cur, err, sizeof(err)), DRST_OK);
    assert_string_equal(cur.metrics_key, r3.metrics_key);
    assert_int_equal(drst_store_set_pointer(s, "latest", &cur, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_load_model(s, "latest", &l, NULL, err, sizeof(err)), DRST_OK);
    assert_memory_equal(drst_model_hash(l), drst_model_hash(m3), 32);
    drst_model_free(l);
    assert_int_equal(drst_store_rollback(s, "latest", &cur, err, sizeof(err)), DRST_OK);
    assert_string_equal(cur.model_key, r1.model_key);
    /* unknown keys are refused */
    drst_release_t bad = {"models/model_nope", ""};
    assert_int_equal(drst_store_set_pointer(s, "latest", &bad, err, sizeof(err)),
                     DRST_ERR_NOTFOUND);

    /* a corrupt and a truncated release are refused by loaders */
    unsigned char *b;
    size_t n;
    assert_int_equal(drst_store_get(s, r2.model_key, &b, &n, err, sizeof(err)), DRST_OK);
    b[n / 2] ^= 1;
    assert_int_equal(drst_store_put_immutable(s, "models/model_corrupt", b, n, err, sizeof(err)),
                     DRST_OK);
    b[n / 2] ^= 1;
    assert_int_equal(
        drst_store_put_immutable(s, "models/model_truncated", b, n - 10, err, sizeof(err)),
        DRST_OK);
    free(b);
    assert_int_equal(drst_store_load_model(s, "model_corrupt", &l, NULL, err, sizeof(err)),
                     DRST_ERR_FORMAT);
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(drst_store_load_model(s, "models/model_truncated", &l, NULL, err, sizeof(err)),
                     DRST_ERR_FORMAT);
    assert_null(l);
    drst_model_free(m1);
    drst_model_free(m2);
    drst_model_free(m3);
    drst_store_close(s);
}

typedef struct reader {
    drst_store_t *s;
    const drst_release_t *rels;
    volatile int *stop;
    long reads, torn;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    char err[DRST_ERRLEN];
    while (!*r->stop) {
        drst_release_t cur;
        drst_err_t rc = drst_store_read_pointer(r->s, "latest", &cur, err, sizeof(err));
        r->reads++;
        if (rc != DRST_OK || (strcmp(cur.model_key, r->rels[0].model_key) != 0 &&
                              strcmp(cur.model_key, r->rels[1].model_key) != 0)) {
            r->torn++;
            continue;
        }
        int i = strcmp(cur.model_key, r->rels[0].model_key) == 0 ? 0 : 1;
        if (strcmp(cur.metrics_key, r->rels[i].metrics_key) != 0)
            r->torn++;
    }
    return NULL;
}

static void test_concurrent_pointer(void **state)
{
    (void)state;
    char err[DRST_ERRLEN], sub[300];
    snprintf(sub, sizeof(sub), "%s/conc", root);
    drst_store_t *s = drst_store_open(sub, err, sizeof(err));
    assert_non_null(s);
    drst_model_t *m1 = train_small(4), *m2 = train_small(5);
    drst_release_t rels[2];
    assert_int_equal(drst_store_publish_model(s, m1, DRST_PUBLISH_BOTH, &rels[0], err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(
        drst_store_publish_model(s, m2, DRST_PUBLISH_LATEST, &rels[1], err, sizeof(err)), DRST_OK);
    volatile int stop = 0;
    reader_t rd[2] = {{s, rels, &stop, 0, 0}, {s, rels, &stop, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    for (int k = 0; k < 1000; k++)
        assert_int_equal(drst_store_set_pointer(s, "latest", &rels[k % 2], err, sizeof(err)),
                         DRST_OK);
    stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    print_message("pointer moved 1000 times; readers made %ld + %ld reads, %ld torn\n", rd[0].reads,
                  rd[1].reads, rd[0].torn + rd[1].torn);
    assert_true(rd[0].reads > 0 && rd[1].reads > 0);
    assert_int_equal(rd[0].torn + rd[1].torn, 0);
    /* 1000 moves + 2 publishes logged: a rollback goes to the release before */
    drst_release_t cur;
    assert_int_equal(drst_store_rollback(s, "latest", &cur, err, sizeof(err)), DRST_OK);
    assert_string_equal(cur.model_key, rels[0].model_key);
    drst_model_free(m1);
    drst_model_free(m2);
    drst_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_objects),
        cmocka_unit_test(test_publish_rollback),
        cmocka_unit_test(test_concurrent_pointer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
