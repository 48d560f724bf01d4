/* Unit tests of the resource probe's /proc parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drst/obs.h"
#include "obs/obs_int.h"

static void test_parse_stat(void **state)
{
    (void)state;
    uint64_t t = 0;
    const char *ok = "1234 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 1 0 100 0 0\n";
    assert_int_equal(drst_obs_parse_stat(ok, strlen(ok), &t), 0);
    assert_int_equal(t, 281);
    const char *bad[] = {"", "1 (x", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 z 1",
                         "1 (x) S 1 2 3 4 5 6 7 8 9 10 99999999999999999999999 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(drst_obs_parse_stat(bad[i], strlen(bad[i]), &t), -1);
}

static void test_read_self(void **state)
{
    (void)state;
    double cpu = -1;
    uint64_t rss = 0;
    char err[DRST_ERRLEN];
    assert_int_equal(drst_probe_read_cpu(0, 0, &cpu, err, sizeof(err)), DRST_OK);
    assert_true(cpu >= 0);
    assert_int_equal(drst_probe_read_cpu(0, drst_probe_gettid(), &cpu, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_probe_read_rss(0, &rss, err, sizeof(err)), DRST_OK);
    assert_true(rss > 0);
    assert_int_equal(drst_probe_read_cpu(0, 999999999, &cpu, err, sizeof(err)), DRST_ERR_IO);
    assert_non_null(strstr(err, "/proc/self/task/999999999/stat"));
    assert_null(drst_probe_new("/nonexistent/dir/x.csv", 1, err, sizeof(err)));
    char path[] = "/tmp/drst_probe_unit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    drst_probe_t *p = drst_probe_new(path, 0, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(drst_probe_register_self(p, "process", err, sizeof(err)), DRST_ERR_INVAL);
    assert_int_equal(drst_probe_register_self(p, "main,thread", err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_probe_sample(p, err, sizeof(err)), DRST_OK);
    drst_probe_free(p);
    drst_probe_free(NULL);
    FILE *f = fopen(path, "r");
    char line[256];
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "t,component,cpu_s,rss_bytes\n");
    int n = 0, saw = 0;
    while (fgets(line, sizeof(line), f)) {
        n++;
        saw |= strstr(line, ",main_thread,") != NULL;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(n, 4); /* process + main_thread, twice (sample + free) */
    assert_true(saw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_read_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
