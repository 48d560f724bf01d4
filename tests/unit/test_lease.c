/* Lease locks in a store: exclusive take, renew, release, expiry, torn
 * leases, and a race of several takers (each with its own store handle)
 * where exactly one wins, on a free lease and on an expired one. */
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
#include "drst/control.h"

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/drst_test_lease_XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static drst_store_t *open_store(const char *sub)
{
    char path[400], err[DRST_ERRLEN];
    snprintf(path, sizeof(path), "%s/%s", root, sub);
    drst_store_t *s = drst_store_open(path, err, sizeof(err));
    assert_non_null(s);
    return s;
}

static void test_basic(void **state)
{
    (void)state;
    drst_store_t *s = open_store("basic");
    drst_lease_info_t h;
    char err[DRST_ERRLEN];
    const char *k = DRST_CONTROL_LEASE_KEY;
    assert_int_equal(drst_lease_read(s, k, &h, NULL, 0), DRST_ERR_NOTFOUND);
    assert_int_equal(drst_lease_acquire(s, k, "a", 10, 1000, &h, err, sizeof(err)), DRST_OK);
    assert_string_equal(h.owner, "a");
    assert_true(h.expires == 1010);
    /* someone else while it is live */
    assert_int_equal(drst_lease_acquire(s, k, "b", 10, 1005, &h, err, sizeof(err)), DRST_ERR_BUSY);
    assert_string_equal(h.owner, "a");
    assert_non_null(strstr(err, "held by 'a'"));
    /* the holder extends it */
    assert_int_equal(drst_lease_acquire(s, k, "a", 10, 1005, &h, NULL, 0), DRST_OK);
    assert_true(h.expires == 1015);
    assert_int_equal(drst_lease_renew(s, k, "a", 20, 1006, NULL, 0), DRST_OK);
    assert_int_equal(drst_lease_read(s, k, &h, NULL, 0), DRST_OK);
    assert_true(h.expires == 1026);
    assert_int_equal(drst_lease_renew(s, k, "b", 20, 1006, NULL, 0), DRST_ERR_STATE);
    assert_int_equal(drst_lease_release(s, k, "b", NULL, 0), DRST_ERR_STATE);
    /* expiry: b takes it after 1026 */
    assert_int_equal(drst_lease_acquire(s, k, "b", 10, 1025.9, &h, NULL, 0), DRST_ERR_BUSY);
    assert_int_equal(drst_lease_acquire(s, k, "b", 10, 1026.1, &h, NULL, 0), DRST_OK);
    assert_string_equal(h.owner, "b");
    /* a's renew now fails: it lost the lease */
    assert_int_equal(drst_lease_renew(s, k, "a", 10, 1027, NULL, 0), DRST_ERR_STATE);
    assert_int_equal(drst_lease_release(s, k, "b", NULL, 0), DRST_OK);
    assert_int_equal(drst_lease_read(s, k, &h, NULL, 0), DRST_ERR_NOTFOUND);
    assert_int_equal(drst_lease_release(s, k, "b", NULL, 0), DRST_OK); /* absent: fine */
    /* bad arguments */
    assert_int_equal(drst_lease_acquire(s, k, "", 10, 1, NULL, NULL, 0), DRST_ERR_INVAL);
    assert_int_equal(drst_lease_acquire(s, k, "a", 0, 1, NULL, NULL, 0), DRST_ERR_INVAL);
    drst_store_close(s);
}

static void test_torn(void **state)
{
    (void)state;
    drst_store_t *s = open_store("torn");
    drst_lease_info_t h;
    const char *k = DRST_CONTROL_LEASE_KEY;
    const char *bad[] = {"",
                         "{",
                         "[]",
                         "{\"owner\":3,\"expires\":1}",
                         "{\"owner\":\"x\"}",
                         "{\"owner\":\"x\",\"expires\":\"soon\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(drst_store_put_atomic(s, k, bad[i], strlen(bad[i]), NULL, 0), DRST_OK);
        assert_int_equal(drst_lease_read(s, k, &h, NULL, 0), DRST_ERR_FORMAT);
        /* a torn lease is treated as expired */
        assert_int_equal(drst_lease_acquire(s, k, "me", 5, 100, &h, NULL, 0), DRST_OK);
        assert_int_equal(drst_lease_release(s, k, "me", NULL, 0), DRST_OK);
    }
    drst_store_close(s);
}

typedef struct racer {
    char sub[32];
    char owner[16];
    double now;
    drst_err_t rc;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    drst_store_t *s = open_store(r->sub);
    r->rc = drst_lease_acquire(s, DRST_CONTROL_LEASE_KEY, r->owner, 30, r->now, NULL, NULL, 0);
    drst_store_close(s);
    return NULL;
}

static void run_race(const char *sub, double now)
{
    enum { N = 8 };
    pthread_t th[N];
    racer_t r[N];
    for (int i = 0; i < N; i++) {
        snprintf(r[i].sub, sizeof(r[i].sub), "%s", sub);
        snprintf(r[i].owner, sizeof(r[i].owner), "w%d", i);
        r[i].now = now;
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    int won = 0, winner = -1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (r[i].rc == DRST_OK) {
            won++;
            winner = i;
        } else {
            if (r[i].rc != DRST_ERR_BUSY)
                print_error("racer %d rc %d now %g\n", i, r[i].rc, now);
            assert_int_equal(r[i].rc, DRST_ERR_BUSY);
        }
    }
    if (won != 1)
        print_error("won %d now %g sub %s\n", won, now, sub);
    assert_int_equal(won, 1);
    drst_store_t *s = open_store(sub);
    drst_lease_info_t h;
    assert_int_equal(drst_lease_read(s, DRST_CONTROL_LEASE_KEY, &h, NULL, 0), DRST_OK);
    assert_string_equal(h.owner, r[winner].owner);
    drst_store_close(s);
}

static void test_race(void **state)
{
    (void)state;
    for (int round = 0; round < 5; round++) {
        char sub[32];
        snprintf(sub, sizeof(sub), "race%d", round);
        run_race(sub, 1000); /* free lease */
        run_race(sub, 5000); /* the previous winner's lease expired at 1030 */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_torn),
        cmocka_unit_test(test_race),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
