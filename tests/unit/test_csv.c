/* Unit tests of the generic CSV reader/writer and drst_parse_double(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drst/drst.h"

/* Collects diagnostics for the assertions. */
typedef struct sink {
    int n;
    uint64_t lines[16];
    char reasons[16][128];
} sink_t;

static void collect(void *opaque, drst_diag_kind_t kind, const char *file, uint64_t line,
                    const char *reason, const char *text, size_t textlen)
{
    sink_t *s = opaque;
    (void)kind;
    (void)file;
    (void)text;
    (void)textlen;
    if (s->n < 16) {
        s->lines[s->n] = line;
        snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", reason);
    }
    s->n++;
}

static drst_table_t *parse(const char *text, drst_diag_t *d)
{
    char err[DRST_ERRLEN] = "";
    drst_table_t *t = NULL;
    drst_err_t rc = drst_table_parse_csv(text, strlen(text), "t.csv", NULL, &t, d, err, sizeof err);
    if (rc != DRST_OK)
        fail_msg("parse failed: %s", err);
    return t;
}

static void test_parse_double_matches_strtod(void **state)
{
    static const char *cases[] = {"0",
                                  "-0",
                                  "1",
                                  "1.5",
                                  "-2.25",
                                  "1e10",
                                  "1E-5",
                                  "0.1",
                                  "0.30000000000000004",
                                  "123456789012345678",
                                  "1234567890123456789",
                                  "12345678901234567890",
                                  "9007199254740993",
                                  "1e22",
                                  "1e23",
                                  "1e-22",
                                  "1e-23",
                                  "4.9e-324",
                                  "1.7976931348623157e308",
                                  "1e400",
                                  ".5",
                                  "5.",
                                  "  42  ",
                                  "+7",
                                  "0x10",
                                  "inf",
                                  "-Infinity",
                                  "nan",
                                  "1.000668575",
                                  "2200546523",
                                  "3.254850757659100e+03",
                                  "000123.4500",
                                  "0.000000000000000000000001234",
                                  "2.2250738585072011e-308",
                                  "7.1e-10",
                                  "1e-400"};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *s = cases[i];
        char *end;
        double ref = strtod(s, &end), got = -1;
        int ok = drst_parse_double(s, s + strlen(s), &got);
        assert_int_equal(ok, 1);
        if (isnan(ref))
            assert_true(isnan(got));
        else
            assert_memory_equal(&ref, &got, sizeof(double));
    }
    /* random doubles printed with 17 digits and shorter forms */
    srand(7);
    for (int i = 0; i < 20000; i++) {
        char buf[64];
        double x = ((double)rand() / RAND_MAX - 0.5) * pow(10, rand() % 40 - 20), ref, got;
        snprintf(buf, sizeof buf, "%.*g", 1 + rand() % 17, x);
        ref = strtod(buf, NULL);
        assert_int_equal(drst_parse_double(buf, buf + strlen(buf), &got), 1);
        assert_memory_equal(&ref, &got, sizeof(double));
    }
}

/* Eisel-Lemire territory: long significands, extreme exponents, subnormals,
 * random bit patterns printed with 1..19 digits. */
static unsigned long long xs = 88172645463325252ULL;
static unsigned long long xrand(void)
{
    xs ^= xs << 13;
    xs ^= xs >> 7;
    xs ^= xs << 17;
    return xs;
}

static void test_parse_double_hard_cases(void **state)
{
    char buf[96];
    (void)state;
    for (int i = 0; i < 300000; i++) {
        double ref, got = 0, x;
        unsigned long long b;
        int k = 0;
        switch (i % 4) {
        case 0:
            b = xrand();
            memcpy(&x, &b, sizeof x);
            if (!isfinite(x))
                continue;
            snprintf(buf, sizeof buf, "%.*g", (int)(xrand() % 19) + 1, x);
            break;
        case 1:
            snprintf(buf, sizeof buf, "%llu.%llue%d", xrand() % 100000000000ULL, xrand(),
                     (int)(xrand() % 700) - 350);
            break;
        case 2:
            for (int n = 1 + (int)(xrand() % 30); k < n; k++)
                buf[k] = (char)('0' + xrand() % 10);
            k += snprintf(buf + k, sizeof buf - (size_t)k, "e%d", (int)(xrand() % 660) - 340);
            buf[k] = '\0';
            break;
        default:
            snprintf(buf, sizeof buf, "%.17g", (double)(xrand() >> 11) / 9007199254740992.0);
            break;
        }
        ref = strtod(buf, NULL);
        assert_int_equal(drst_parse_double(buf, buf + strlen(buf), &got), 1);
        if (memcmp(&ref, &got, sizeof got) != 0)
            fail_msg("'%s': strtod %.17g, drst %.17g", buf, ref, got);
    }
}

static void test_parse_double_rejects(void **state)
{
    static const char *bad[] = {"",    " ",     "-",     "+",   ".",   "e5",  "1e",
                                "1e+", "1.2.3", "12abc", "abc", "1 2", "--1", "1,5"};
    double v;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(drst_parse_double(bad[i], bad[i] + strlen(bad[i]), &v), 0);
    /* not NUL-terminated: the bytes after `end` must be ignored */
    {
        const char buf[] = {'1', '2', '3', '4'};
        assert_int_equal(drst_parse_double(buf, buf + 2, &v), 1);
        assert_true(v == 12.0);
    }
}

static void test_basic_and_counts(void **state)
{
    drst_diag_t d = {0};
    drst_table_t *t = parse("a,b,c\n1,2,3\n4,,x\r\n7,8,9", &d);
    (void)state;
    assert_int_equal(t->ncols, 3);
    assert_int_equal(t->nrows, 3);
    assert_string_equal(t->names[2], "c");
    assert_true(drst_table_at(t, 0, 0) == 1.0);
    assert_true(isnan(drst_table_at(t, 1, 1)));
    assert_true(isnan(drst_table_at(t, 1, 2)));
    assert_true(drst_table_at(t, 2, 2) == 9.0);
    assert_int_equal(t->n_empty[1], 1);
    assert_int_equal(t->n_text[2], 1);
    assert_int_equal(t->n_empty[0] + t->n_text[0], 0);
    assert_int_equal(drst_table_col(t, "b"), 1);
    assert_int_equal(drst_table_col(t, "zz"), -1);
    assert_int_equal(d.rejected, 0);
    drst_table_free(t);
}

static void test_quotes(void **state)
{
    drst_diag_t d = {0};
    drst_table_t *t = parse(
        "\"x,1\",\"he said \"\"hi\"\"\",\"multi\nline\"\n\"1.5\",\"a\"\"b\",\"c\nd\"\n3,4,5\n", &d);
    (void)state;
    assert_int_equal(t->ncols, 3);
    assert_string_equal(t->names[0], "x,1");
    assert_string_equal(t->names[1], "he said \"hi\"");
    assert_string_equal(t->names[2], "multi\nline");
    assert_int_equal(t->nrows, 2);
    assert_true(drst_table_at(t, 0, 0) == 1.5);
    assert_int_equal(t->n_text[1], 1);
    assert_int_equal(t->n_text[2], 1);
    assert_true(drst_table_at(t, 1, 2) == 5.0);
    assert_int_equal(d.rejected, 0);
    drst_table_free(t);
}

static void test_counts_after_quoted_row(void **state)
{
    drst_table_t *t = parse("a,b,c\n\"x\",,1\n2,3,\n", NULL);
    (void)state;
    assert_int_equal(t->nrows, 2);
    assert_int_equal(t->n_text[0], 1);
    assert_int_equal(t->n_empty[1], 1);
    assert_int_equal(t->n_empty[2], 1);
    assert_int_equal(t->n_text[1] + t->n_text[2] + t->n_empty[0], 0);
    drst_table_free(t);
}

static void test_bad_rows_reported(void **state)
{
    sink_t s = {0};
    drst_diag_t d = {.fn = collect, .opaque = &s};
    drst_table_t *t = parse("a,b\n1,2\n1,2,3\n\n4\n\"unterminated,5\n6,7\n", &d);
    (void)state;
    assert_int_equal(t->nrows, 2);
    assert_true(drst_table_at(t, 1, 0) == 6.0);
    assert_int_equal(d.rejected, 3);
    assert_int_equal(s.lines[0], 3);
    assert_non_null(strstr(s.reasons[0], "3 fields, expected 2"));
    assert_int_equal(s.lines[1], 5);
    assert_int_equal(s.lines[2], 6);
    assert_non_null(strstr(s.reasons[2], "unterminated"));
    drst_table_free(t);
}

static void test_strict(void **state)
{
    drst_diag_t d = {.strict = 1};
    char err[DRST_ERRLEN] = "";
    drst_table_t *t = NULL;
    const char *txt = "a,b\n1,2\n3\n";
    (void)state;
    assert_int_equal(drst_table_parse_csv(txt, strlen(txt), "s.csv", NULL, &t, &d, err, sizeof err),
                     DRST_ERR_STRICT);
    assert_null(t);
    assert_non_null(strstr(err, "s.csv:3"));
}

static void test_empty_and_garbage(void **state)
{
    char err[DRST_ERRLEN] = "";
    drst_table_t *t = NULL;
    drst_diag_t d = {0};
    unsigned char bin[4096];
    (void)state;
    assert_int_equal(drst_table_parse_csv("", 0, "e.csv", NULL, &t, NULL, err, sizeof err),
                     DRST_ERR_EMPTY);
    assert_int_equal(drst_table_parse_csv("\n\n", 2, "e.csv", NULL, &t, NULL, err, sizeof err),
                     DRST_ERR_EMPTY);
    /* header only, no newline */
    assert_int_equal(drst_table_parse_csv("a,b", 3, "h.csv", NULL, &t, NULL, err, sizeof err),
                     DRST_OK);
    assert_int_equal(t->nrows, 0);
    assert_int_equal(t->ncols, 2);
    drst_table_free(t);
    /* binary garbage never crashes */
    srand(3);
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof bin; i++)
            bin[i] = (unsigned char)rand();
        t = NULL;
        if (drst_table_parse_csv((const char *)bin, sizeof bin, "g.bin", NULL, &t, &d, err,
                                 sizeof err) == DRST_OK)
            drst_table_free(t);
    }
}

static void test_long_line(void **state)
{
    size_t big = 10u << 20;
    char *buf = malloc(big + 64), err[DRST_ERRLEN];
    drst_table_t *t = NULL;
    sink_t s = {0};
    drst_diag_t d = {.fn = collect, .opaque = &s};
    size_t n = 0;
    (void)state;
    n += (size_t)snprintf(buf, 64, "a,b\n1,2\n");
    memset(buf + n, '7', big);
    n += big;
    n += (size_t)snprintf(buf + n, 64, "\n3,4");
    assert_int_equal(drst_table_parse_csv(buf, n, "l.csv", NULL, &t, &d, err, sizeof err), DRST_OK);
    assert_int_equal(t->nrows, 2);
    assert_int_equal(d.rejected, 1);
    assert_int_equal(s.lines[0], 3);
    drst_table_free(t);
    /* with a bigger limit the line is read (one field: too few fields) */
    {
        drst_csv_opts_t o = {.max_line = 64u << 20};
        d.rejected = 0;
        assert_int_equal(drst_table_parse_csv(buf, n, "l.csv", &o, &t, &d, err, sizeof err),
                         DRST_OK);
        assert_int_equal(d.rejected, 1);
        drst_table_free(t);
    }
    free(buf);
}

static void test_no_header_and_delim(void **state)
{
    drst_csv_opts_t o = {.delim = ';', .no_header = 1};
    char err[DRST_ERRLEN];
    drst_table_t *t = NULL;
    const char *txt = "1;2\n3;4\n";
    (void)state;
    assert_int_equal(drst_table_parse_csv(txt, strlen(txt), "n.csv", &o, &t, NULL, err, sizeof err),
                     DRST_OK);
    assert_int_equal(t->nrows, 2);
    assert_string_equal(t->names[1], "c1");
    assert_true(drst_table_at(t, 1, 1) == 4.0);
    drst_table_free(t);
}

static void test_roundtrip(void **state)
{
    const char *names[] = {"x", "with,comma", "q\"uote"};
    char err[DRST_ERRLEN], path[] = "/tmp/drst_test_csv_XXXXXX";
    drst_table_t *t = drst_table_new(names, 3, err, sizeof err), *u = NULL;
    int fd = mkstemp(path);
    (void)state;
    assert_non_null(t);
    assert_true(fd >= 0);
    close(fd);
    srand(11);
    for (int i = 0; i < 2000; i++) {
        double row[3] = {(double)rand() / RAND_MAX * pow(10, rand() % 30 - 15),
                         i % 7 == 0 ? NAN : -(double)rand(), 0.1 * i};
        assert_int_equal(drst_table_append(t, row, err, sizeof err), DRST_OK);
    }
    assert_int_equal(drst_table_write_csv(t, path, err, sizeof err), DRST_OK);
    assert_int_equal(drst_table_read_csv(path, NULL, &u, NULL, err, sizeof err), DRST_OK);
    assert_int_equal(u->nrows, t->nrows);
    for (size_t c = 0; c < 3; c++)
        assert_string_equal(u->names[c], t->names[c]);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < 3; c++) {
            double a = drst_table_at(t, r, c), b = drst_table_at(u, r, c);
            if (isnan(a))
                assert_true(isnan(b));
            else
                assert_memory_equal(&a, &b, sizeof a);
        }
    assert_int_equal(u->n_empty[1], t->n_empty[1]);
    drst_table_free(t);
    drst_table_free(u);
    unlink(path);
}

static void test_read_errors(void **state)
{
    char err[DRST_ERRLEN] = "";
    drst_table_t *t = NULL;
    (void)state;
    assert_int_equal(drst_table_read_csv("/nonexistent/x.csv", NULL, &t, NULL, err, sizeof err),
                     DRST_ERR_NOTFOUND);
    assert_non_null(strstr(err, "/nonexistent/x.csv"));
    assert_int_equal(drst_table_read_csv("/tmp", NULL, &t, NULL, err, sizeof err), DRST_ERR_IO);
    assert_non_null(strstr(err, "directory"));
    assert_null(t);
    drst_table_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_double_matches_strtod),
        cmocka_unit_test(test_parse_double_hard_cases),
        cmocka_unit_test(test_parse_double_rejects),
        cmocka_unit_test(test_basic_and_counts),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_counts_after_quoted_row),
        cmocka_unit_test(test_bad_rows_reported),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_empty_and_garbage),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_no_header_and_delim),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
