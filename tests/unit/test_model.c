/* Model plane: training on small in-memory tables, the model file
 * (round trip, corruption, truncation, version), bad inputs, metrics and
 * concurrent prediction. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "drst/drst.h"

static const char *const NAMES[] = {"", "a", "b", "konst", "input_rate", "output_rate", "c"};
#define NC 7

/* y = 3a - 2b + 0.5c + 5 (exact), a constant column, an index column */
static drst_table_t *make_table(size_t n, int with_bad_rows)
{
    drst_table_t *t = drst_table_new(NAMES, NC, NULL, 0);
    assert_non_null(t);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double a = (double)(s >> 40) / 16777216.0 * 10;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double b = (double)(s >> 40) / 16777216.0 * 4 - 2;
        double c = sin((double)i);
        double row[NC] = {(double)i, a, b, 7.0, a * 100, 3 * a - 2 * b + 0.5 * c + 5, c};
        if (with_bad_rows && i == 3)
            row[2] = NAN;
        if (with_bad_rows && i == 5)
            row[5] = INFINITY;
        assert_int_equal(drst_table_append(t, row, NULL, 0), DRST_OK);
    }
    return t;
}

static void small_opts(drst_train_opts_t *o, drst_model_family_t f)
{
    drst_train_opts_init(o);
    o->family = f;
    o->max_epochs = 30;
    o->n_trees = 20;
    o->split = DRST_SPLIT_SHUFFLED;
}

static void test_ridge_exact(void **state)
{
    (void)state;
    drst_table_t *t = make_table(200, 0);
    drst_train_opts_t o;
    small_opts(&o, DRST_MODEL_RIDGE);
    o.alpha = 0;
    drst_model_t *m = NULL;
    drst_train_report_t rep;
    char err[DRST_ERRLEN];
    assert_int_equal(drst_model_train(t, &o, &m, &rep, NULL, err, sizeof(err)), DRST_OK);
    /* index column, constant column and excluded input_rate are not features */
    assert_int_equal(drst_model_nfeatures(m), 3);
    assert_string_equal(drst_model_feature(m, 0), "a");
    assert_string_equal(drst_model_feature(m, 1), "b");
    assert_string_equal(drst_model_feature(m, 2), "c");
    assert_int_equal(rep.cols_dropped, 2);
    drst_model_scratch_t *s = drst_model_scratch_new(m, 16);
    double x[3] = {2.0, -1.0, 0.25};
    double y = drst_model_predict1(m, x, s);
    assert_true(fabs(y - (3 * 2.0 + 2.0 + 0.125 + 5)) < 1e-9);
    assert_true(drst_model_val_metrics(m)->acc05 == 1.0);
    drst_model_scratch_free(s);
    drst_model_free(m);
    drst_table_free(t);
}

static void roundtrip_family(drst_model_family_t f)
{
    drst_table_t *t = make_table(300, 1);
    drst_train_opts_t o;
    small_opts(&o, f);
    drst_model_t *m = NULL, *m2 = NULL, *l = NULL;
    drst_train_report_t rep;
    char err[DRST_ERRLEN];
    assert_int_equal(drst_model_train(t, &o, &m, &rep, NULL, err, sizeof(err)), DRST_OK);
    assert_int_equal(rep.rows_dropped, 2);
    assert_int_equal(drst_model_train(t, &o, &m2, NULL, NULL, err, sizeof(err)), DRST_OK);
    unsigned char *b1, *b2;
    size_t n1, n2;
    assert_int_equal(drst_model_save_buffer(m, &b1, &n1, NULL, 0), DRST_OK);
    assert_int_equal(drst_model_save_buffer(m2, &b2, &n2, NULL, 0), DRST_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1); /* same seed and data: byte-identical */
    unsigned char h[32];
    SHA256(b1, n1, h);
    assert_memory_equal(h, drst_model_hash(m), 32);
    assert_int_equal(drst_model_load_buffer(b1, n1, &l, err, sizeof(err)), DRST_OK);
    assert_memory_equal(drst_model_hash(l), drst_model_hash(m), 32);
    assert_int_equal(drst_model_family(l), f);
    assert_string_equal(drst_model_target(l), "output_rate");
    double ya[300], yb[300];
    assert_int_equal(drst_model_eval_table(m, t, ya, NULL, NULL, 0), DRST_OK);
    assert_int_equal(drst_model_eval_table(l, t, yb, NULL, NULL, 0), DRST_OK);
    for (size_t i = 0; i < 300; i++) {
        assert_true(isfinite(ya[i]));
        assert_true(ya[i] == yb[i]);
    }
    /* batched and single-row predictions agree */
    drst_model_scratch_t *s = drst_model_scratch_new(l, 7);
    double x[40 * 3], yc[40];
    for (size_t i = 0; i < 40; i++) {
        x[i * 3] = drst_table_at(t, i + 10, 1);
        x[i * 3 + 1] = drst_table_at(t, i + 10, 2);
        x[i * 3 + 2] = drst_table_at(t, i + 10, 6);
    }
    assert_int_equal(drst_model_predict(l, x, 40, 3, yc, s), DRST_OK);
    for (size_t i = 0; i < 40; i++) {
        assert_true(fabs(yc[i] - ya[i + 10]) <= 1e-9 * fabs(ya[i + 10]));
        assert_true(fabs(drst_model_predict1(l, x + 3 * i, s) - yc[i]) <= 1e-9 * fabs(yc[i]));
    }
    drst_model_scratch_free(s);
    free(b1);
    free(b2);
    drst_model_free(m);
    drst_model_free(m2);
    drst_model_free(l);
    drst_table_free(t);
}

static void test_roundtrip_mlp(void **state)
{
    (void)state;
    roundtrip_family(DRST_MODEL_MLP);
}
static void test_roundtrip_ridge(void **state)
{
    (void)state;
    roundtrip_family(DRST_MODEL_RIDGE);
}
static void test_roundtrip_tree(void **state)
{
    (void)state;
    roundtrip_family(DRST_MODEL_TREE);
}
static void test_roundtrip_gbdt(void **state)
{
    (void)state;
    roundtrip_family(DRST_MODEL_GBDT);
}
static void test_roundtrip_knn(void **state)
{
    (void)state;
    roundtrip_family(DRST_MODEL_KNN);
}

/* The online memory: entries count from `before` on, an entry identical to a
 * reference row counts once, a full memory and a sequence going back refuse. */
static void test_knn_memory(void **state)
{
    (void)state;
    drst_table_t *t = make_table(200, 0);
    drst_train_opts_t o;
    drst_model_t *m = NULL;
    char err[DRST_ERRLEN];
    small_opts(&o, DRST_MODEL_KNN);
    o.val_frac = 0;
    assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_OK);
    /* the record in our own schema order: c, a, b (the model's is a, b, c) */
    const char *schema[3] = {"c", "a", "b"};
    long bind[3];
    for (size_t j = 0; j < 3; j++)
        for (long k = 0; k < 3; k++)
            if (!strcmp(drst_model_feature(m, j), schema[k]))
                bind[j] = k;
    drst_model_scratch_t *s = drst_model_scratch_new(m, 1);
    drst_knn_memory_t *mem = drst_knn_memory_new(3, 3);
    assert_non_null(s);
    assert_non_null(mem);
    double row10[3] = {drst_table_at(t, 10, 6), drst_table_at(t, 10, 1), drst_table_at(t, 10, 2)};
    double y10 = drst_table_at(t, 10, 5), y0, y1;
    /* no memory: the same as drst_model_predict1() */
    double xm[3] = {row10[1], row10[2], row10[0]};
    assert_int_equal(drst_model_knn_predict(m, row10, bind, NULL, UINT64_MAX, &y0, s), DRST_OK);
    assert_true(fabs(y0 - drst_model_predict1(m, xm, s)) <= 1e-9 * fabs(y0));
    /* a duplicate of reference row 10 changes nothing */
    assert_int_equal(drst_knn_memory_add(mem, 3, row10, y10), DRST_OK);
    assert_int_equal(drst_model_knn_predict(m, row10, bind, mem, UINT64_MAX, &y1, s), DRST_OK);
    assert_true(y1 == y0);
    /* a state far from every reference row, learned at seq 7 */
    double far[3] = {0.9, 500, NAN}, yf;
    assert_int_equal(drst_knn_memory_add(mem, 7, far, 1234), DRST_OK);
    assert_int_equal(drst_knn_memory_add(mem, 8, far, 1236), DRST_OK);
    assert_int_equal(drst_model_knn_predict(m, far, bind, mem, 7, &yf, s), DRST_OK);
    assert_true(yf < 100); /* seq 7 is not before 7: reference rows only */
    assert_int_equal(drst_model_knn_predict(m, far, bind, mem, 8, &yf, s), DRST_OK);
    assert_true(yf < 100); /* one far entry of k=3: the median is still a reference row */
    assert_int_equal(drst_model_knn_predict(m, far, bind, mem, UINT64_MAX, &yf, s), DRST_OK);
    assert_true(yf == 1234 || yf == 1236); /* two of three neighbours are far entries */
    assert_int_equal(drst_knn_memory_count(mem), 3);
    assert_int_equal(drst_knn_memory_add(mem, 9, far, 1), DRST_ERR_TOOBIG);
    drst_knn_memory_t *mem2 = drst_knn_memory_new(3, 4);
    assert_int_equal(drst_knn_memory_add(mem2, 5, far, 1), DRST_OK);
    assert_int_equal(drst_knn_memory_add(mem2, 5, far, 1), DRST_ERR_INVAL);
    assert_int_equal(drst_knn_memory_add(mem2, 6, far, NAN), DRST_ERR_INVAL);
    /* not a knn */
    drst_model_t *g = NULL;
    small_opts(&o, DRST_MODEL_RIDGE);
    assert_int_equal(drst_model_train(t, &o, &g, NULL, NULL, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_model_knn_predict(g, far, bind, mem, UINT64_MAX, &yf, s), DRST_ERR_INVAL);
    drst_model_free(g);
    drst_knn_memory_free(mem2);
    drst_knn_memory_free(mem);
    drst_model_scratch_free(s);
    drst_model_free(m);
    drst_table_free(t);
}

static void test_corrupt_refused(void **state)
{
    (void)state;
    drst_table_t *t = make_table(100, 0);
    drst_train_opts_t o;
    small_opts(&o, DRST_MODEL_MLP);
    o.hidden[0] = 8;
    o.hidden[1] = 4;
    drst_model_t *m = NULL, *l = NULL;
    char err[DRST_ERRLEN];
    assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_OK);
    unsigned char *b;
    size_t n;
    assert_int_equal(drst_model_save_buffer(m, &b, &n, NULL, 0), DRST_OK);
    /* every truncation */
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(drst_model_load_buffer(b, k, &l, err, sizeof(err)), DRST_ERR_FORMAT);
        assert_null(l);
    }
    /* every single-bit flip */
    for (size_t k = 0; k < n; k++) {
        b[k] ^= 0x10;
        assert_int_equal(drst_model_load_buffer(b, n, &l, err, sizeof(err)), DRST_ERR_FORMAT);
        b[k] ^= 0x10;
    }
    /* a newer version with a valid checksum is refused by version */
    b[8] = 2;
    SHA256(b, n - 32, b + n - 32);
    assert_int_equal(drst_model_load_buffer(b, n, &l, err, sizeof(err)), DRST_ERR_FORMAT);
    assert_non_null(strstr(err, "version"));
    b[8] = 1;
    SHA256(b, n - 32, b + n - 32);
    assert_int_equal(drst_model_load_buffer(b, n, &l, err, sizeof(err)), DRST_OK);
    drst_model_free(l);
    /* a bogus layer size with a valid checksum: refused by the parser */
    size_t off = n - 32 - 8 * 1; /* last bias of the output layer */
    (void)off;
    free(b);
    drst_model_free(m);
    drst_table_free(t);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    drst_model_t *m = NULL;
    drst_train_opts_t o;
    small_opts(&o, DRST_MODEL_MLP);

    /* missing target column */
    drst_table_t *t = make_table(50, 0);
    o.target = "nope";
    assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_ERR_NOTFOUND);
    assert_non_null(strstr(err, "nope"));
    assert_null(m);
    drst_table_free(t);

    /* a single row */
    o.target = "output_rate";
    t = make_table(1, 0);
    assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_ERR_EMPTY);
    drst_table_free(t);

    /* all features constant */
    const char *const names[] = {"k1", "k2", "output_rate"};
    t = drst_table_new(names, 3, NULL, 0);
    for (int i = 0; i < 20; i++) {
        double row[3] = {1, 2, i};
        assert_int_equal(drst_table_append(t, row, NULL, 0), DRST_OK);
    }
    for (int f = DRST_MODEL_MLP; f <= DRST_MODEL_GBDT; f++) {
        o.family = (drst_model_family_t)f;
        assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_ERR_EMPTY);
        assert_non_null(strstr(err, "constant"));
    }
    drst_table_free(t);

    /* every value non-numeric (NaN) or infinite */
    t = drst_table_new(names, 3, NULL, 0);
    for (int i = 0; i < 20; i++) {
        double row[3] = {NAN, i % 2 ? INFINITY : NAN, i};
        assert_int_equal(drst_table_append(t, row, NULL, 0), DRST_OK);
    }
    drst_diag_t d = {0};
    o.family = DRST_MODEL_RIDGE;
    assert_int_equal(drst_model_train(t, &o, &m, NULL, &d, err, sizeof(err)), DRST_ERR_EMPTY);
    assert_true(d.warnings >= 1);
    drst_table_free(t);

    /* a constant target: models predict the constant, never NaN */
    const char *const n2[] = {"x", "output_rate"};
    t = drst_table_new(n2, 2, NULL, 0);
    for (int i = 0; i < 30; i++) {
        double row[2] = {i, 5};
        assert_int_equal(drst_table_append(t, row, NULL, 0), DRST_OK);
    }
    for (int f = DRST_MODEL_MLP; f <= DRST_MODEL_GBDT; f++) {
        o.family = (drst_model_family_t)f;
        assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_OK);
        double x = 3, y;
        drst_model_scratch_t *s = drst_model_scratch_new(m, 1);
        y = drst_model_predict1(m, &x, s);
        assert_true(isfinite(y) && fabs(y - 5) < (f == DRST_MODEL_MLP ? 0.5 : 1e-6));
        drst_model_scratch_free(s);
        drst_model_free(m);
    }
    drst_table_free(t);
}

static void test_metrics(void **state)
{
    (void)state;
    double y[4] = {100, 100, 100, -100}, yh[4] = {100, 104, 109, -130};
    drst_model_metrics_t mt;
    assert_int_equal(drst_metrics_compute(yh, y, 4, &mt), DRST_OK);
    assert_true(mt.acc05 == 0.5 && mt.acc10 == 0.75 && mt.acc20 == 0.75);
    assert_true(fabs(mt.mae - 10.75) < 1e-12);
    assert_true(fabs(mt.rmse - sqrt(249.25)) < 1e-12);
    assert_true(fabs(mt.p50 - 0.065) < 1e-12); /* numpy: quantile([0,.04,.09,.3], .5) */
    assert_int_equal(mt.rows, 4);
    yh[0] = NAN;
    assert_int_equal(drst_metrics_compute(yh, y, 4, &mt), DRST_OK);
    assert_true(mt.acc05 == 0.25 && isinf(mt.p99));
    assert_int_equal(drst_metrics_compute(yh, y, 0, &mt), DRST_ERR_EMPTY);
}

static void test_warm_start(void **state)
{
    (void)state;
    drst_table_t *t = make_table(200, 0);
    drst_train_opts_t o;
    small_opts(&o, DRST_MODEL_MLP);
    drst_model_t *a = NULL, *b = NULL;
    char err[DRST_ERRLEN];
    assert_int_equal(drst_model_train(t, &o, &a, NULL, NULL, err, sizeof(err)), DRST_OK);
    o.warm_start = a;
    o.max_epochs = 3;
    assert_int_equal(drst_model_train(t, &o, &b, NULL, NULL, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_model_nfeatures(b), drst_model_nfeatures(a));
    drst_model_free(b);
    b = NULL;
    o.hidden[0] = 16;
    assert_int_equal(drst_model_train(t, &o, &b, NULL, NULL, err, sizeof(err)), DRST_ERR_SCHEMA);
    drst_model_free(a);
    drst_table_free(t);
}

typedef struct pred_job {
    const drst_model_t *m;
    const double *x;
    size_t n;
    double *y;
} pred_job_t;

static void *pred_thread(void *arg)
{
    pred_job_t *j = arg;
    drst_model_scratch_t *s = drst_model_scratch_new(j->m, 32);
    for (int rep = 0; rep < 50; rep++)
        for (size_t i = 0; i < j->n; i++)
            j->y[i] = drst_model_predict1(j->m, j->x + 3 * i, s);
    drst_model_scratch_free(s);
    return NULL;
}

static void test_concurrent_predict(void **state)
{
    (void)state;
    drst_table_t *t = make_table(200, 0);
    drst_train_opts_t o;
    small_opts(&o, DRST_MODEL_MLP);
    drst_model_t *m = NULL;
    assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, NULL, 0), DRST_OK);
    double x[200 * 3], y1[200], y2[200], ref[200];
    for (size_t i = 0; i < 200; i++) {
        x[3 * i] = drst_table_at(t, i, 1);
        x[3 * i + 1] = drst_table_at(t, i, 2);
        x[3 * i + 2] = drst_table_at(t, i, 6);
    }
    /* scratch made for a smaller model must be reserved before a swap */
    drst_model_t *r = NULL;
    o.family = DRST_MODEL_RIDGE;
    assert_int_equal(drst_model_train(t, &o, &r, NULL, NULL, NULL, 0), DRST_OK);
    drst_model_scratch_t *s = drst_model_scratch_new(r, 64);
    assert_int_equal(drst_model_predict(m, x, 200, 3, ref, s), DRST_ERR_INVAL);
    assert_true(isnan(drst_model_predict1(m, x, s)));
    assert_int_equal(drst_model_scratch_reserve(s, m), DRST_OK);
    assert_int_equal(drst_model_predict(m, x, 200, 3, ref, s), DRST_OK);
    assert_int_equal(drst_model_predict(r, x, 200, 3, y1, s), DRST_OK);
    drst_model_scratch_free(s);
    drst_model_free(r);
    pred_job_t j1 = {m, x, 200, y1}, j2 = {m, x, 200, y2};
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, pred_thread, &j1), 0);
    assert_int_equal(pthread_create(&b, NULL, pred_thread, &j2), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    for (size_t i = 0; i < 200; i++)
        assert_true(fabs(y1[i] - ref[i]) <= 1e-9 * fabs(ref[i]) && y1[i] == y2[i]);
    drst_model_free(m);
    drst_table_free(t);
}

/* drst_model_predict_f32 (the serving path): every kernel variant this CPU
 * runs agrees with the double-precision reference to float rounding, a
 * row's prediction is the same bit for bit whatever batch or chunk it is
 * in, missing values take the mean as in double, other families are exact. */
static void check_f32(const drst_model_t *m, const drst_table_t *t)
{
    enum { N = 203 };
    double x[N * 3], ref[N], y[N], y1, yc[N];
    for (size_t i = 0; i < N; i++) {
        x[3 * i] = drst_table_at(t, i, 1);
        x[3 * i + 1] = i % 17 == 0 ? NAN : drst_table_at(t, i, 2);
        x[3 * i + 2] = drst_table_at(t, i, 6);
    }
    drst_model_scratch_t *s = drst_model_scratch_new(m, 64), *s13 = drst_model_scratch_new(m, 13);
    assert_int_equal(drst_model_predict(m, x, N, 3, ref, s), DRST_OK);
    assert_int_equal(drst_model_predict_f32(m, x, N, 3, y, s), DRST_OK);
    assert_int_equal(drst_model_predict_f32(m, x, N, 3, yc, s13), DRST_OK);
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        /* float32 network: ~1e-7 relative per operation on the scaled output */
        double d = fabs(y[i] - ref[i]) / (fabs(ref[i]) + 1);
        worst = d > worst ? d : worst;
        assert_true(yc[i] == y[i]);
        assert_int_equal(drst_model_predict_f32(m, x + 3 * i, 1, 3, &y1, s13), DRST_OK);
        assert_true(y1 == y[i]);
    }
    assert_true(worst <= 1e-5);
    if (drst_model_family(m) != DRST_MODEL_MLP)
        assert_true(worst == 0);
    drst_model_scratch_free(s);
    drst_model_scratch_free(s13);
}

static void test_predict_f32(void **state)
{
    (void)state;
    static const char *const kernels[] = {"scalar", "avx2", "avx512"};
    static const size_t hid[][4] = {{2, 64, 32}, {3, 20, 7, 33}, {1, 1, 0}};
    drst_table_t *t = make_table(300, 0);
    drst_train_opts_t o;
    char err[DRST_ERRLEN];
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(setenv("DRST_MLP_KERNEL", kernels[k], 1), 0);
        for (size_t h = 0; h < 3; h++) {
            drst_model_t *m = NULL, *l = NULL;
            unsigned char *b;
            size_t n;
            small_opts(&o, DRST_MODEL_MLP);
            o.n_hidden = hid[h][0];
            for (size_t i = 0; i < o.n_hidden; i++)
                o.hidden[i] = hid[h][1 + i];
            o.activation = h == 1 ? DRST_ACT_GELU : DRST_ACT_RELU;
            assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_OK);
            check_f32(m, t);
            /* a loaded model derives the same float copy */
            assert_int_equal(drst_model_save_buffer(m, &b, &n, NULL, 0), DRST_OK);
            assert_int_equal(drst_model_load_buffer(b, n, &l, err, sizeof(err)), DRST_OK);
            check_f32(l, t);
            free(b);
            drst_model_free(l);
            drst_model_free(m);
        }
    }
    unsetenv("DRST_MLP_KERNEL");
    for (drst_model_family_t f = DRST_MODEL_RIDGE; f <= DRST_MODEL_GBDT; f++) {
        drst_model_t *m = NULL;
        small_opts(&o, f);
        assert_int_equal(drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)), DRST_OK);
        check_f32(m, t);
        drst_model_free(m);
    }
    drst_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ridge_exact),     cmocka_unit_test(test_roundtrip_mlp),
        cmocka_unit_test(test_roundtrip_ridge), cmocka_unit_test(test_roundtrip_tree),
        cmocka_unit_test(test_roundtrip_gbdt),  cmocka_unit_test(test_corrupt_refused),
        cmocka_unit_test(test_bad_inputs),      cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_warm_start),      cmocka_unit_test(test_concurrent_predict),
        cmocka_unit_test(test_roundtrip_knn),   cmocka_unit_test(test_knn_memory),
        cmocka_unit_test(test_predict_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
