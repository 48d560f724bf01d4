/* The swap storm: 1000 hot swaps of the adaptive model while 2 threads
 * predict through the slot. Run in the normal, ASan and TSan builds: no race
 * report, no use after free, and every prediction comes from exactly one
 * complete model (each model version predicts a value no other predicts,
 * and every recorded prediction must equal, bit for bit, the prediction of
 * the model its version names). */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_infer_util.h"

#define K     4 /* distinct model contents, swapped round robin */
#define SWAPS 1000
#define STEP  8 /* predictions each reader makes between two swaps, at least */

/* Each reader checks every prediction as it goes (no storage): the value
 * must equal, bit for bit, the reference of the version it was served with,
 * and versions never go back. */
typedef struct reader {
    drst_model_slot_t *slot;
    atomic_int *done;
    const double *ref;
    atomic_size_t n;
    uint64_t bad, backwards, changes, maxver;
    double bad_pred;
    uint64_t bad_ver;
    int scratch_fail;
} reader_t;

static const double X[2] = {1.0, 0.5};

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    drst_model_scratch_t *sc = NULL;
    uint64_t last = 0;
    size_t n = 0;
    drst_rcu_thread_online();
    while (!atomic_load(r->done)) {
        const drst_serving_t *sv = drst_model_slot_enter(r->slot);
        if (!sc)
            sc = drst_model_scratch_new(sv->adaptive, 1);
        if (!sc) {
            r->scratch_fail = 1;
            drst_model_slot_exit(r->slot);
            break;
        }
        double y = drst_model_predict1(sv->adaptive, X, sc);
        /* Give the swapper the CPU while inside the read-side section (as
         * a consumer in the middle of a batch): a swap that freed this view
         * without waiting for us would be caught by the second prediction. */
        sched_yield();
        double y2 = drst_model_predict1(sv->adaptive, X, sc);
        uint64_t v = sv->version;
        drst_model_slot_exit(r->slot);
        if (y2 != y)
            y = NAN;
        if (v < 1 || y != r->ref[(v - 1) % K]) {
            if (!r->bad++) {
                r->bad_pred = y;
                r->bad_ver = v;
            }
        }
        if (v < last)
            r->backwards++;
        if (v != last)
            r->changes++;
        if (v > r->maxver)
            r->maxver = v;
        last = v;
        atomic_store(&r->n, ++n);
    }
    drst_rcu_thread_offline();
    drst_model_scratch_free(sc);
    return NULL;
}

static void test_swap_storm(void **state)
{
    (void)state;
    unsigned char *bytes[K];
    size_t len[K];
    double ref[K];
    char err[DRST_ERRLEN];
    drst_model_scratch_t *sc;
    atomic_int done = 0;
    reader_t rd[2];
    pthread_t th[2];

    for (int k = 0; k < K; k++) {
        drst_model_t *m = ti_model(k, 0);
        assert_non_null(m);
        sc = drst_model_scratch_new(m, 1);
        assert_non_null(sc);
        ref[k] = drst_model_predict1(m, X, sc);
        drst_model_scratch_free(sc);
        bytes[k] = ti_bytes(m, &len[k]);
        assert_non_null(bytes[k]);
        drst_model_free(m);
        for (int j = 0; j < k; j++)
            assert_true(ref[j] != ref[k]); /* a version's prediction identifies it */
    }
    drst_model_t *b = NULL, *a = NULL;
    assert_int_equal(drst_model_load_buffer(bytes[0], len[0], &b, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_model_load_buffer(bytes[0], len[0], &a, err, sizeof(err)), DRST_OK);
    drst_model_slot_t *slot = drst_model_slot_new(b, a, err, sizeof(err));
    assert_non_null(slot);
    assert_int_equal(drst_model_slot_version(slot), 1);

    for (int i = 0; i < 2; i++) {
        memset(&rd[i], 0, sizeof(rd[i]));
        rd[i].slot = slot;
        rd[i].done = &done;
        rd[i].ref = ref;
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    }
    /* Version v serves content (v - 1) % K: each swap loads a fresh copy, so
     * a reader still using a freed one would be caught by ASan/TSan. */
    for (int s = 1; s <= SWAPS; s++) {
        drst_model_t *m = NULL;
        uint64_t v = 0;
        /* let both readers work between swaps */
        for (int i = 0; i < 2; i++) {
            size_t n0 = atomic_load(&rd[i].n);
            while (atomic_load(&rd[i].n) < n0 + STEP && !rd[i].scratch_fail)
                sched_yield();
        }
        assert_int_equal(drst_model_load_buffer(bytes[s % K], len[s % K], &m, err, sizeof(err)),
                         DRST_OK);
        assert_int_equal(drst_model_slot_swap(slot, m, &v, err, sizeof(err)), DRST_OK);
        assert_int_equal(v, (uint64_t)s + 1);
    }
    atomic_store(&done, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(drst_model_slot_version(slot), SWAPS + 1);

    for (int i = 0; i < 2; i++) {
        assert_false(rd[i].scratch_fail);
        print_message("reader %d: %zu predictions, %llu version changes seen, last version %llu\n",
                      i, (size_t)atomic_load(&rd[i].n), (unsigned long long)rd[i].changes,
                      (unsigned long long)rd[i].maxver);
        if (rd[i].bad)
            fail_msg("reader %d: %llu predictions from no complete model (first: version %llu "
                     "predicted %.17g)",
                     i, (unsigned long long)rd[i].bad, (unsigned long long)rd[i].bad_ver,
                     rd[i].bad_pred);
        assert_int_equal(rd[i].backwards, 0);
        assert_true(rd[i].changes > SWAPS / 2); /* readers really ran through the storm */
    }
    drst_model_slot_free(slot);
    for (int k = 0; k < K; k++)
        free(bytes[k]);
}

static void test_slot_target_mismatch(void **state)
{
    (void)state;
    char err[DRST_ERRLEN] = "";
    drst_model_t *b = ti_model(0, 0), *a = ti_model(1, 0);
    assert_non_null(b);
    assert_non_null(a);
    drst_model_slot_t *slot = drst_model_slot_new(b, NULL, err, sizeof(err));
    assert_non_null(slot);
    /* adaptive == baseline until the first swap */
    drst_rcu_thread_online();
    const drst_serving_t *sv = drst_model_slot_enter(slot);
    assert_ptr_equal(sv->baseline, sv->adaptive);
    drst_model_slot_exit(slot);
    drst_rcu_thread_offline();
    uint64_t v = 0;
    assert_int_equal(drst_model_slot_swap(slot, a, &v, err, sizeof(err)), DRST_OK);
    assert_int_equal(v, 2);
    assert_int_equal(drst_model_slot_swap(slot, NULL, &v, err, sizeof(err)), DRST_ERR_INVAL);
    drst_model_slot_free(slot);
    drst_model_slot_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_storm),
        cmocka_unit_test(test_slot_target_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
