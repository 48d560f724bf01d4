/* Record codec: JSON fast path checked against jansson (an independent
 * parser) and strtod, binary round trips, schema alignment, bad input,
 * dead letters. */
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
#include <jansson.h>

#include "drst/stream.h"

static const char *names[] = {"a", "b_x", "c-y", "d"};
static const double means[] = {10, 20, 30, 40};

static drst_schema_t *mk(void)
{
    char err[DRST_ERRLEN];
    drst_schema_t *s = drst_schema_new(names, 4, means, err, sizeof(err));
    assert_non_null(s);
    return s;
}

static void test_schema(void **state)
{
    char err[DRST_ERRLEN];
    const char *dup[] = {"a", "b", "a"}, *empty[] = {"a", ""};
    drst_schema_t *s = mk();
    (void)state;
    assert_int_equal(drst_schema_size(s), 4);
    assert_int_equal(drst_schema_index(s, "c-y", 3), 2);
    assert_int_equal(drst_schema_index(s, "zz", 2), -1);
    assert_int_equal(drst_schema_index(s, "b_xx", 3), 1); /* length-bounded */
    assert_string_equal(drst_schema_name(s, 3), "d");
    assert_true(drst_schema_default(s, 1) == 20);
    assert_null(drst_schema_new(dup, 3, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "duplicate"));
    assert_null(drst_schema_new(empty, 2, NULL, err, sizeof(err)));
    assert_null(drst_schema_new(names, 0, NULL, err, sizeof(err)));
    drst_schema_free(s);
    drst_schema_free(NULL);
}

/* Our decoder against jansson on the same text, feature by feature. */
static void check_against_jansson(const drst_schema_t *s, const char *text)
{
    double f[4];
    drst_record_t r = {.features = f};
    char err[DRST_ERRLEN];
    json_error_t je;
    json_t *root = json_loads(text, 0, &je), *feat;

    assert_non_null(root);
    assert_int_equal(drst_record_decode_json(s, text, strlen(text), &r, err, sizeof(err)), DRST_OK);
    feat = json_object_get(root, "features");
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(feat, names[i]);
        double want = v && json_is_number(v) ? json_number_value(v) : means[i];
        assert_memory_equal(&f[i], &want, sizeof(double));
    }
    if (json_object_get(root, "label"))
        assert_true(r.label == json_number_value(json_object_get(root, "label")));
    if (json_object_get(root, "seq"))
        assert_true(r.seq == (uint64_t)json_integer_value(json_object_get(root, "seq")));
    json_decref(root);
}

static void test_json_decode_vs_jansson(void **state)
{
    drst_schema_t *s = mk();
    (void)state;
    check_against_jansson(s, "{\"seq\":7,\"ts\":1.5,\"send_ts\":2.25,\"features\":{\"a\":1,"
                             "\"b_x\":-2.5e-3,\"c-y\":10074563850.0,\"d\":0.1},\"label\":408.28}");
    check_against_jansson(s, " { \"features\" : { \"d\" : 1e300 , \"a\":-0.0 } , \"seq\" : 0 } ");
    check_against_jansson(s, "{\"features\":{\"a\":123456789012345678901234567890.5,"
                             "\"b_x\":0.000000000000000000000000001234,"
                             "\"c-y\":4.9406564584124654e-324,\"d\":1.7976931348623157e308}}");
    check_against_jansson(s, "{\"x\":[1,{\"y\":\"}\\\"\"}],\"features\":{\"a\":3.14159265358979},"
                             "\"extra\":null}");
    drst_schema_free(s);
}

static void test_json_random_roundtrip(void **state)
{
    drst_schema_t *s = mk();
    double f[4], g[4];
    drst_record_t r = {.features = f}, q = {.features = g};
    char buf[1024], err[DRST_ERRLEN];
    size_t len;
    (void)state;
    srand(42);
    for (int it = 0; it < 20000; it++) {
        for (int i = 0; i < 4; i++) {
            uint64_t bits = ((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand();
            double v;
            memcpy(&v, &bits, sizeof(v));
            if (!isfinite(v) || it % 3 == 0)
                v = (rand() % 2000000 - 1000000) / (double)(1 + rand() % 1000);
            f[i] = v;
        }
        r.seq = (uint64_t)it * 7919u;
        r.ts = 1700000000.0 + it / 1000.0;
        r.send_ts = r.ts + 0.5;
        r.has_label = it % 2;
        r.label = it * 0.1;
        r.eos = 0;
        assert_int_equal(drst_record_encode_json(s, &r, buf, sizeof(buf), &len), DRST_OK);
        assert_int_equal(len, strlen(buf));
        assert_int_equal(drst_record_decode_json(s, buf, len, &q, err, sizeof(err)), DRST_OK);
        assert_memory_equal(f, g, sizeof(f));
        assert_true(q.seq == r.seq && q.ts == r.ts && q.send_ts == r.send_ts);
        assert_int_equal(q.has_label, r.has_label);
        if (r.has_label)
            assert_true(q.label == r.label);
        if (it % 100 == 0)
            check_against_jansson(s, buf);
    }
    assert_int_equal(drst_record_encode_json(s, &r, buf, 10, &len), DRST_ERR_TOOBIG);
    drst_schema_free(s);
}

static void test_alignment(void **state)
{
    drst_schema_t *s = mk();
    double f[4];
    drst_record_t r = {.features = f};
    drst_align_stats_t st = {0};
    char err[DRST_ERRLEN];
    const char *t1 = "{\"seq\":1,\"features\":{\"a\":1,\"zzz\":5,\"d\":null,\"q\":1}}";
    drst_err_t rc;
    (void)state;
    rc = drst_record_decode_json(s, t1, strlen(t1), &r, err, sizeof(err));
    assert_int_equal(rc, DRST_OK);
    drst_align_count(&st, &r, rc);
    assert_int_equal(r.n_missing, 3); /* b_x, c-y, d (null) */
    assert_int_equal(r.n_unknown, 2);
    assert_true(f[0] == 1 && f[1] == 20 && f[2] == 30 && f[3] == 40);
    /* escaped key: jansson fallback, same answer */
    const char *t2 = "{\"features\":{\"b\\u005fx\":2,\"a\\n\":1}}";
    rc = drst_record_decode_json(s, t2, strlen(t2), &r, err, sizeof(err));
    assert_int_equal(rc, DRST_OK);
    drst_align_count(&st, &r, rc);
    assert_true(f[1] == 2 && f[0] == 10);
    assert_int_equal(r.n_unknown, 1);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.missing, 6);
    assert_int_equal(st.unknown, 3);
    drst_schema_free(s);
}

/* Decode `text` with schema s (names nm[0..n)) and compare every feature
 * with jansson's reading of the same text; missing ones must hold the
 * default. Returns the record's counters through r. */
static void check_order_case(const drst_schema_t *s, const char *const *nm, const double *def,
                             size_t n, const char *text, drst_record_t *r)
{
    char err[DRST_ERRLEN];
    json_error_t je;
    json_t *root = json_loads(text, 0, &je), *feat;
    size_t present = 0;
    assert_non_null(root);
    feat = json_object_get(root, "features");
    assert_int_equal(drst_record_decode_json(s, text, strlen(text), r, err, sizeof(err)), DRST_OK);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(feat, nm[i]);
        double want = v && json_is_number(v) ? json_number_value(v) : def[i];
        present += v && json_is_number(v);
        assert_memory_equal(&r->features[i], &want, sizeof(double));
    }
    assert_int_equal(r->n_missing, n - present);
    json_decref(root);
}

/* The decoder guesses each feature name from the key order of the records
 * it saw before (starting with the schema order). Guesses are only hints:
 * a record in another order, with a missing key, an unknown key or a name
 * that is a prefix of another must decode exactly as jansson reads it. */
static void test_json_key_order_prediction(void **state)
{
    static const char *nm[] = {"ab", "abc", "x_1", "y", "zz", "abcd"};
    static const double def[] = {-1, -2, -3, -4, -5, -6};
    char err[DRST_ERRLEN];
    drst_schema_t *s = drst_schema_new(nm, 6, def, err, sizeof(err));
    double f[6];
    drst_record_t r = {.features = f};
    static const char *schema_order =
        "{\"seq\":1,\"features\":{\"ab\":1,\"abc\":2,\"x_1\":3,\"y\":4,\"zz\":5,\"abcd\":6}}";
    static const char *reversed =
        "{\"seq\":2,\"features\":{\"abcd\":60,\"zz\":50,\"y\":40,\"x_1\":30,\"abc\":20,\"ab\":10}}";
    static const char *shuffled = "{\"features\":{\"y\":-4.5,\"abcd\":6e3,\"ab\":0.1,\"zz\":-0.0,"
                                  "\"abc\":123456789012345678,\"x_1\":1e-5}}";
    /* b_x is missing, "abcde" and "a" are unknown, prefixes of known names */
    static const char *gaps = "{\"features\":{\"abcd\":7,\"a\":9,\"ab\":8,\"abcde\":1,"
                              "\"y\":null,\"zz\":3}}";
    static const char *spaced = "{ \"features\" : { \"ab\" : 1 , \"abc\" :2, \"x_1\": 3 ,"
                                "\"y\":4 ,\"zz\"\n:\t5,\"abcd\":-6 } }";
    (void)state;
    assert_non_null(s);
    for (int rep = 0; rep < 3; rep++) {
        check_order_case(s, nm, def, 6, schema_order, &r);
        assert_int_equal(r.n_unknown, 0);
        check_order_case(s, nm, def, 6, reversed, &r); /* order changes */
        check_order_case(s, nm, def, 6, reversed, &r); /* learnt order */
        assert_int_equal(r.n_unknown, 0);
        check_order_case(s, nm, def, 6, shuffled, &r);
        check_order_case(s, nm, def, 6, gaps, &r);
        assert_int_equal(r.n_missing, 3); /* abc, x_1, y (null) */
        assert_int_equal(r.n_unknown, 2);
        check_order_case(s, nm, def, 6, gaps, &r);
        assert_int_equal(r.n_missing, 3);
        assert_int_equal(r.n_unknown, 2);
        check_order_case(s, nm, def, 6, spaced, &r);
        assert_int_equal(r.n_missing, 0);
    }
    {
        /* a later duplicate wins, a later null makes it missing (jansson
         * keeps the last value too) */
        const char *dup = "{\"features\":{\"ab\":1,\"ab\":2,\"zz\":3,\"zz\":null}}";
        assert_int_equal(drst_record_decode_json(s, dup, strlen(dup), &r, err, sizeof(err)),
                         DRST_OK);
        assert_true(f[0] == 2 && f[4] == -5);
        assert_int_equal(r.n_missing, 5);
    }
    drst_schema_free(s);
}

/* Numbers as any writer may print them, in feature position (the inline
 * integer path and the general parser), against strtod bit for bit. */
static void test_json_numbers_vs_strtod(void **state)
{
    static const char *nm[] = {"v", "w"};
    drst_schema_t *s = drst_schema_new(nm, 2, NULL, NULL, 0);
    double f[2];
    drst_record_t r = {.features = f};
    char num[64], text[256], err[DRST_ERRLEN];
    static const char *fixed[] = {"0",
                                  "-0",
                                  "1",
                                  "9",
                                  "10",
                                  "123456789012345",
                                  "1234567890123456",
                                  "9007199254740993",
                                  "18446744073709551616",
                                  "-99999999",
                                  "12345678",
                                  "123456789",
                                  "0.1",
                                  "1e22",
                                  "1e23",
                                  "2.5e-324",
                                  "4.9406564584124654e-324",
                                  "1.7976931348623157e308",
                                  "1.7976931348623158e308",
                                  "-1e-400",
                                  "0.000000000000000000000000001",
                                  "123.456e-7",
                                  "100000000000000000000000000000000000000001",
                                  "7E+2"};
    (void)state;
    srand(7);
    for (int it = 0; it < 60000; it++) {
        double want;
        if ((size_t)it < sizeof(fixed) / sizeof(fixed[0])) {
            snprintf(num, sizeof(num), "%s", fixed[it]);
        } else {
            int kind = it % 5, nd = 1 + rand() % 19;
            size_t k = 0;
            if (rand() % 4 == 0)
                num[k++] = '-';
            num[k++] = (char)('1' + rand() % 9);
            for (int d = 1; d < nd; d++)
                num[k++] = (char)('0' + rand() % 10);
            if (kind >= 2) { /* fraction */
                num[k++] = '.';
                for (int d = 0, m = 1 + rand() % 12; d < m; d++)
                    num[k++] = (char)('0' + rand() % 10);
            }
            if (kind >= 3) /* exponent */
                k += (size_t)snprintf(num + k, sizeof(num) - k, "e%d", rand() % 700 - 350);
            num[k] = 0;
        }
        want = strtod(num, NULL);
        if (isinf(want)) { /* beyond DBL_MAX: refused, like jansson does */
            snprintf(text, sizeof(text), "{\"features\":{\"v\":%s}}", num);
            assert_int_equal(drst_record_decode_json(s, text, strlen(text), &r, err, sizeof(err)),
                             DRST_ERR_PARSE);
            assert_non_null(strstr(err, "out of range"));
            continue;
        }
        /* the number last, then first (followed by '}' and by ',') */
        snprintf(text, sizeof(text), "{\"features\":{\"w\":1,\"v\":%s}}", num);
        assert_int_equal(drst_record_decode_json(s, text, strlen(text), &r, err, sizeof(err)),
                         DRST_OK);
        if (memcmp(&f[0], &want, sizeof(double)) != 0)
            fail_msg("%s: decoded %.17g, strtod %.17g", num, f[0], want);
        snprintf(text, sizeof(text), "{\"features\":{\"v\":%s,\"w\":1},\"label\":%s}", num, num);
        assert_int_equal(drst_record_decode_json(s, text, strlen(text), &r, err, sizeof(err)),
                         DRST_OK);
        if (memcmp(&f[0], &want, sizeof(double)) != 0 || memcmp(&r.label, &want, sizeof(double)))
            fail_msg("%s: decoded %.17g / label %.17g, strtod %.17g", num, f[0], r.label, want);
    }
    drst_schema_free(s);
}

static void test_sentinel(void **state)
{
    drst_schema_t *s = mk();
    double f[4];
    drst_record_t r = {.features = f};
    char buf[64], err[DRST_ERRLEN];
    size_t len;
    json_t *root;
    (void)state;
    assert_int_equal(drst_record_encode_eos(5, buf, sizeof(buf), &len), DRST_OK);
    root = json_loads(buf, 0, NULL);
    assert_true(json_is_true(json_object_get(root, "eos")));
    assert_int_equal(json_integer_value(json_object_get(root, "partition")), 5);
    json_decref(root);
    assert_int_equal(drst_record_decode(s, buf, len, &r, err, sizeof(err)), DRST_OK);
    assert_true(r.eos);
    assert_int_equal(r.partition, 5);
    drst_schema_free(s);
}

static void test_bad_json(void **state)
{
    static const char *bad[] = {
        "",
        "[]",
        "{",
        "{\"features\":{\"a\":1}",
        "{\"features\":{\"a\":\"1\"}}",
        "{\"features\":{\"a\":1,}}",
        "{\"features\":[1,2]}",
        "{\"seq\":1}",
        "{\"seq\":-1,\"features\":{}}",
        "{\"seq\":1.5,\"features\":{}}",
        "{\"features\":{\"a\":01}}",
        "{\"features\":{\"a\":1.}}",
        "{\"features\":{\"a\":1e}}",
        "{\"features\":{\"a\":NaN}}",
        "{\"features\":{\"a\":1}} x",
        "{\"eos\":1,\"partition\":0}",
        "{\"eos\":true,\"partition\":-3}",
        "{\"features\":{\"a\":1},\"x\":[[[[",
        "{\"features\":{\"a\\",
        "\"just a string\"",
        "{\"features\":{\"a\":tru}}",
        "{\"features\":{\"a\":1e400}}",
        "{\"features\":{\"a\":-2.5e666663}}",
        "{\"label\":1.8e308,\"features\":{}}",
    };
    drst_schema_t *s = mk();
    double f[4];
    drst_record_t r = {.features = f};
    char err[DRST_ERRLEN];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        drst_err_t rc = drst_record_decode_json(s, bad[i], strlen(bad[i]), &r, err, sizeof(err));
        if (rc != DRST_ERR_PARSE)
            fail_msg("accepted bad input %zu: %s", i, bad[i]);
        assert_true(strlen(err) > 0);
    }
    /* deep nesting stops without blowing the stack */
    {
        char deep[4096];
        size_t n = 0;
        n += (size_t)snprintf(deep, sizeof(deep), "{\"x\":");
        while (n < 3000)
            deep[n++] = '[';
        assert_int_equal(drst_record_decode_json(s, deep, n, &r, err, sizeof(err)), DRST_ERR_PARSE);
    }
    drst_schema_free(s);
}

static void test_binary(void **state)
{
    drst_schema_t *s = mk();
    const char *other[] = {"a", "b_x", "c-y", "e"};
    drst_schema_t *o = drst_schema_new(other, 4, NULL, NULL, 0);
    double f[4] = {1.5, NAN, -3, 1e300}, g[4];
    drst_record_t r = {
        .seq = 99, .ts = 1.25, .send_ts = 2.5, .features = f, .label = 7, .has_label = 1};
    drst_record_t q = {.features = g};
    unsigned char buf[256];
    size_t len;
    char err[DRST_ERRLEN];
    (void)state;
    assert_int_equal(drst_record_bin_size(s), 56 + 32);
    assert_int_equal(drst_record_encode_bin(s, &r, buf, sizeof(buf), &len), DRST_OK);
    assert_int_equal(drst_record_decode(s, buf, len, &q, err, sizeof(err)), DRST_OK);
    assert_true(q.seq == 99 && q.ts == 1.25 && q.send_ts == 2.5 && q.has_label && q.label == 7);
    assert_true(g[0] == 1.5 && g[1] == 20 && g[2] == -3 && g[3] == 1e300);
    assert_int_equal(q.n_missing, 1);
    assert_int_equal(drst_record_decode_bin(o, buf, len, &q, err, sizeof(err)), DRST_ERR_SCHEMA);
    assert_int_equal(drst_record_decode_bin(s, buf, len - 1, &q, err, sizeof(err)),
                     DRST_ERR_FORMAT);
    assert_int_equal(drst_record_encode_bin(s, &r, buf, 10, &len), DRST_ERR_TOOBIG);
    r.eos = 1;
    r.partition = 3;
    assert_int_equal(drst_record_encode_bin(s, &r, buf, sizeof(buf), &len), DRST_OK);
    assert_int_equal(drst_record_decode(s, buf, len, &q, err, sizeof(err)), DRST_OK);
    assert_true(q.eos && q.partition == 3);
    drst_schema_free(s);
    drst_schema_free(o);
}

static void test_dlq_file(void **state)
{
    char path[] = "/tmp/drst_test_dlqXXXXXX", err[DRST_ERRLEN], line[512];
    int fd = mkstemp(path);
    drst_dlq_t *q;
    FILE *f;
    int n = 0;
    (void)state;
    assert_true(fd >= 0);
    close(fd);
    q = drst_dlq_open_file(path, err, sizeof(err));
    assert_non_null(q);
    assert_int_equal(drst_dlq_put(q, "{\"a\":\n\"x", 8, "t/0/5", "byte 3: bad", err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_dlq_put(q, "\x01\xff", 2, NULL, "binary", err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_dlq_count(q), 2);
    drst_dlq_free(q);
    f = fopen(path, "r");
    while (fgets(line, sizeof(line), f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        if (n == 0) {
            assert_string_equal(json_string_value(json_object_get(j, "payload")), "{\"a\":\n\"x");
            assert_string_equal(json_string_value(json_object_get(j, "source")), "t/0/5");
            assert_string_equal(json_string_value(json_object_get(j, "reason")), "byte 3: bad");
        }
        json_decref(j);
        n++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(n, 2);
    assert_null(drst_dlq_open_file("/nonexistent/dir/x", err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_json_decode_vs_jansson),
        cmocka_unit_test(test_json_random_roundtrip),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_json_key_order_prediction),
        cmocka_unit_test(test_json_numbers_vs_strtod),
        cmocka_unit_test(test_sentinel),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_dlq_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
