/* Error codes, error buffers and the diagnostics sink. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/error_int.h"
#include "common/lazylib_int.h"

static void every_code_has_a_message(void **state)
{
    (void)state;
    for (int c = 0; c < DRST_ERR__COUNT; c++) {
        const char *m = drst_strerror((drst_err_t)c);
        assert_non_null(m);
        assert_string_not_equal(m, "unknown error");
    }
    assert_string_equal(drst_strerror((drst_err_t)-1), "unknown error");
    assert_string_equal(drst_strerror(DRST_ERR__COUNT), "unknown error");
}

static void seterr_formats_and_truncates(void **state)
{
    char small[8];
    (void)state;
    assert_int_equal(drst_seterr(small, sizeof(small), DRST_ERR_IO, "file '%s'", "abcdef"),
                     DRST_ERR_IO);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(drst_seterr(NULL, 0, DRST_ERR_PARSE, "x"), DRST_ERR_PARSE);
}

struct seen {
    int calls;
    char reason[64];
    drst_diag_kind_t kind;
};

static void record(void *opaque, drst_diag_kind_t kind, const char *file, uint64_t line,
                   const char *reason, const char *text, size_t textlen)
{
    struct seen *s = opaque;
    (void)file;
    (void)line;
    (void)text;
    (void)textlen;
    s->calls++;
    s->kind = kind;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

static void diag_counts_and_strict_fails(void **state)
{
    struct seen s = {0};
    drst_diag_t d = {.fn = record, .opaque = &s};
    char err[128];
    (void)state;
    assert_int_equal(drst_diag_reject(&d, "f.csv", 3, "x", 1, err, sizeof(err), "bad %d", 7),
                     DRST_OK);
    assert_int_equal(d.rejected, 1);
    assert_string_equal(s.reason, "bad 7");
    drst_diag_warn(&d, "f.csv", 4, "padded");
    assert_int_equal(d.warnings, 1);
    assert_int_equal(s.kind, DRST_DIAG_WARN);
    d.strict = 1;
    assert_int_equal(drst_diag_reject(&d, "f.csv", 9, "x", 1, err, sizeof(err), "nope"),
                     DRST_ERR_STRICT);
    assert_string_equal(err, "f.csv:9: nope");
    /* A NULL sink only counts nothing and never fails. */
    assert_int_equal(drst_diag_reject(NULL, "f", 1, "", 0, err, sizeof(err), "x"), DRST_OK);
}

/* Optional libraries: a missing library or symbol is an error that names
 * it and the package; a present one resolves to the real function. */
static void lazy_load_reports_and_resolves(void **state)
{
    (void)state;
    char why[256] = "";
    size_t (*len)(const char *) = NULL;
    lazy_sym_t ok[] = {{"strlen", &len}};
    assert_int_equal(lazy_load("libc.so.6", "libc6", ok, 1, why, sizeof(why)), 0);
    assert_non_null(len);
    assert_int_equal(len("drst"), 4);
    assert_int_equal(lazy_load("libdrst-no-such.so.9", "nothing", ok, 1, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cannot load libdrst-no-such.so.9 (Debian package nothing)"));
    void (*none)(void) = NULL;
    lazy_sym_t bad[] = {{"drst_no_such_symbol", &none}};
    assert_int_equal(lazy_load("libc.so.6", "libc6", bad, 1, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "libc.so.6 has no drst_no_such_symbol"));
    assert_null(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_a_message),
        cmocka_unit_test(seterr_formats_and_truncates),
        cmocka_unit_test(diag_counts_and_strict_fails),
        cmocka_unit_test(lazy_load_reports_and_resolves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
