/* Unit tests of the scenario simulator: parser, scaling, determinism, replace. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drst/sim.h"

static void test_parse_good_and_bad(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "rows=10 rate=random:100:200 hold=5\n"
                       "\n"
                       "rows=abc\n"
                       "rows=5 rate=gauss:1\n"
                       "rows=7 contention=Z:x\n"
                       "rows=20 rate=inc:10:20 contention=C:firewall+bridge # trailing\n"
                       "rate=const:5\n";
    drst_sim_scenario_t *sc = NULL;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    assert_int_equal(drst_sim_scenario_parse(text, strlen(text), "t", &sc, &d, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(d.rejected, 4);
    assert_int_equal(drst_sim_scenario_rows(sc), 30);
    drst_sim_scenario_free(sc);

    d.rejected = 0;
    d.strict = 1;
    assert_int_equal(drst_sim_scenario_parse(text, strlen(text), "t", &sc, &d, err, sizeof(err)),
                     DRST_ERR_STRICT);
    assert_null(sc);
    assert_non_null(strstr(err, "t:4"));

    drst_diag_t d2 = {0};
    assert_int_equal(drst_sim_scenario_parse("# only\n", 7, "e", &sc, &d2, err, sizeof(err)),
                     DRST_ERR_EMPTY);
    /* Embedded NUL and no trailing newline. */
    const char nul[] = "rows=3\nro\0ws=4";
    assert_int_equal(drst_sim_scenario_parse(nul, sizeof(nul) - 1, "n", &sc, &d2, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(d2.rejected, 1);
    assert_int_equal(drst_sim_scenario_rows(sc), 3);
    drst_sim_scenario_free(sc);
}

static void run_all(drst_sim_t *s, double *sum)
{
    double row[3 + 12 * 8];
    *sum = 0;
    while (drst_sim_next(s, row) == DRST_OK)
        *sum += row[0] + row[1] + row[2] + row[3];
}

static void test_determinism_and_scaling(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    for (const char *const *n = drst_sim_builtins(); *n; n++) {
        drst_sim_scenario_t *sc = drst_sim_scenario_builtin(*n, err, sizeof(err));
        assert_non_null(sc);
        drst_sim_opts_t o = {.seed = 42, .rows = 333};
        drst_sim_t *a = drst_sim_new(sc, &o, err, sizeof(err));
        drst_sim_t *b = drst_sim_new(sc, &o, err, sizeof(err));
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(drst_sim_nrows(a), 333);
        double sa, sb;
        run_all(a, &sa);
        run_all(b, &sb);
        assert_true(sa == sb);
        double row[3 + 12 * 8];
        assert_int_equal(drst_sim_next(a, row), DRST_ERR_EOF);
        drst_sim_free(a);
        drst_sim_free(b);
        drst_sim_scenario_free(sc);
    }
    assert_null(drst_sim_scenario_builtin("nope", err, sizeof(err)));
    drst_sim_free(NULL);
    drst_sim_scenario_free(NULL);
}

static void test_replace(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    const char *text = "rows=4\nrows=4 replace=b:z\nrows=4 replace=z:y\n";
    drst_sim_scenario_t *sc = NULL;
    assert_int_equal(drst_sim_scenario_parse(text, strlen(text), "r", &sc, NULL, err, sizeof(err)),
                     DRST_OK);
    const char *vn[] = {"a", "b", "c"};
    drst_sim_opts_t o = {.seed = 1, .vnfs = vn, .nvnfs = 3};
    drst_sim_t *s = drst_sim_new(sc, &o, err, sizeof(err));
    assert_non_null(s);
    /* union order a, b, z, y, c (each new one right after what it replaces) */
    assert_int_equal(drst_sim_ncols(s), 3 + 12 * 5);
    assert_string_equal(drst_sim_colname(s, 3), "a_instructions");
    assert_string_equal(drst_sim_colname(s, 5), "z_instructions");
    assert_string_equal(drst_sim_colname(s, 6), "y_instructions");
    assert_string_equal(drst_sim_colname(s, 7), "c_instructions");
    double row[3 + 12 * 5];
    for (int r = 0; r < 12; r++) {
        assert_int_equal(drst_sim_next(s, row), DRST_OK);
        int seg = r / 4;
        assert_true(isnan(row[4]) == (seg != 0)); /* b */
        assert_true(isnan(row[5]) == (seg != 1)); /* z */
        assert_true(isnan(row[6]) == (seg != 2)); /* y */
        assert_false(isnan(row[7]));
    }
    drst_sim_free(s);
    drst_sim_scenario_free(sc);

    const char *bad = "rows=4 replace=q:z\n";
    assert_int_equal(drst_sim_scenario_parse(bad, strlen(bad), "r", &sc, NULL, err, sizeof(err)),
                     DRST_OK);
    assert_null(drst_sim_new(sc, &o, err, sizeof(err)));
    assert_non_null(strstr(err, "not in"));
    drst_sim_scenario_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good_and_bad),
        cmocka_unit_test(test_determinism_and_scaling),
        cmocka_unit_test(test_replace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
