/* Unit tests of the metrics registry, exposition, address parsing and JSONL. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drst/obs.h"
#include "obs/obs_int.h"

static void test_render(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    drst_metrics_t *m = drst_metrics_new(err, sizeof(err));
    const char *l[] = {"path", "adaptive", "partition", "2", NULL};
    drst_metric_t *c = drst_metrics_get(m, DRST_METRIC_COUNTER, "drst_records_total", "Records.", l,
                                        NULL, 0, err, sizeof(err));
    assert_non_null(c);
    /* same name + labels: same series */
    assert_ptr_equal(c, drst_metrics_get(m, DRST_METRIC_COUNTER, "drst_records_total", "x", l, NULL,
                                         0, err, sizeof(err)));
    drst_metric_add(c, 3);
    drst_metric_add(c, -5); /* ignored on a counter */
    drst_metric_inc(c);
    assert_true(drst_metric_value(c) == 4);
    drst_metric_t *g = drst_metrics_get(m, DRST_METRIC_GAUGE, "drst_drift_score", "Score.", NULL,
                                        NULL, 0, err, sizeof(err));
    drst_metric_set(g, 0.125);
    const double b[] = {0.5, 1};
    drst_metric_t *h = drst_metrics_get(m, DRST_METRIC_HISTOGRAM, "drst_lat_seconds", "Lat.", NULL,
                                        b, 2, err, sizeof(err));
    drst_metric_observe(h, 0.5); /* le is inclusive */
    drst_metric_observe(h, 0.7);
    drst_metric_observe(h, 9);
    char *txt = NULL;
    size_t len = 0;
    assert_int_equal(drst_metrics_render(m, &txt, &len, err, sizeof(err)), DRST_OK);
    const char *want = "# HELP drst_records_total Records.\n"
                       "# TYPE drst_records_total counter\n"
                       "drst_records_total{path=\"adaptive\",partition=\"2\"} 4\n"
                       "# HELP drst_drift_score Score.\n"
                       "# TYPE drst_drift_score gauge\n"
                       "drst_drift_score 0.125\n"
                       "# HELP drst_lat_seconds Lat.\n"
                       "# TYPE drst_lat_seconds histogram\n"
                       "drst_lat_seconds_bucket{le=\"0.5\"} 1\n"
                       "drst_lat_seconds_bucket{le=\"1\"} 2\n"
                       "drst_lat_seconds_bucket{le=\"+Inf\"} 3\n"
                       "drst_lat_seconds_sum 10.2\n"
                       "drst_lat_seconds_count 3\n";
    assert_string_equal(txt, want);
    assert_int_equal(len, strlen(want));
    free(txt);

    /* errors: bad names, type clash, le label, unsorted buckets */
    assert_null(drst_metrics_get(m, DRST_METRIC_GAUGE, "drst_records_total", "", NULL, NULL, 0, err,
                                 sizeof(err)));
    assert_null(
        drst_metrics_get(m, DRST_METRIC_GAUGE, "9bad", "", NULL, NULL, 0, err, sizeof(err)));
    const char *bl[] = {"__x", "1", NULL};
    assert_null(drst_metrics_get(m, DRST_METRIC_GAUGE, "ok", "", bl, NULL, 0, err, sizeof(err)));
    const char *le[] = {"le", "1", NULL};
    assert_null(drst_metrics_get(m, DRST_METRIC_GAUGE, "ok", "", le, NULL, 0, err, sizeof(err)));
    const char *odd[] = {"k", NULL};
    assert_null(drst_metrics_get(m, DRST_METRIC_GAUGE, "ok", "", odd, NULL, 0, err, sizeof(err)));
    const double bad[] = {1, 1};
    assert_null(
        drst_metrics_get(m, DRST_METRIC_HISTOGRAM, "h2", "", NULL, bad, 2, err, sizeof(err)));

    /* JSONL snapshot */
    FILE *f = tmpfile();
    assert_int_equal(drst_metrics_write_jsonl(m, f, 12.5, err, sizeof(err)), DRST_OK);
    rewind(f);
    char line[1024];
    assert_non_null(fgets(line, sizeof(line), f));
    assert_string_equal(line, "{\"ts\":12.5,\"metrics\":{"
                              "\"drst_records_total{path=\\\"adaptive\\\",partition=\\\"2\\\"}\":4,"
                              "\"drst_drift_score\":0.125,\"drst_lat_seconds_count\":3,"
                              "\"drst_lat_seconds_sum\":10.2}}\n");
    fclose(f);
    drst_metrics_free(m);
    drst_metrics_free(NULL);
}

struct hammer {
    drst_metric_t *c, *h;
};

static void *hammer_main(void *arg)
{
    struct hammer *hm = arg;
    for (int i = 0; i < 100000; i++) {
        drst_metric_inc(hm->c);
        drst_metric_observe(hm->h, 0.25);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    char err[DRST_ERRLEN];
    drst_metrics_t *m = drst_metrics_new(err, sizeof(err));
    struct hammer hm = {
        drst_metrics_get(m, DRST_METRIC_COUNTER, "n_total", "", NULL, NULL, 0, err, sizeof(err)),
        drst_metrics_get(m, DRST_METRIC_HISTOGRAM, "h", "", NULL, NULL, 0, err, sizeof(err))};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer_main, &hm);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(drst_metric_value(hm.c) == 400000);
    assert_true(drst_metric_value(hm.h) == 400000);
    assert_true(drst_metric_sum(hm.h) == 100000); /* 0.25 sums exactly */
    drst_metrics_free(m);
}

static void test_addr_and_fmt(void **state)
{
    (void)state;
    char host[64], err[DRST_ERRLEN];
    uint16_t port;
    assert_int_equal(
        drst_metrics_addr_parse("127.0.0.1:9464", host, sizeof(host), &port, err, sizeof(err)),
        DRST_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(drst_metrics_addr_parse(":80", host, sizeof(host), &port, err, sizeof(err)),
                     DRST_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(drst_metrics_addr_parse("9000", host, sizeof(host), &port, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(port, 9000);
    assert_int_equal(
        drst_metrics_addr_parse("[::1]:1", host, sizeof(host), &port, err, sizeof(err)), DRST_OK);
    assert_string_equal(host, "::1");
    const char *bad[] = {"", "h:", "h:65536", "h:-1", "::1:80", "[::1]80", "h:8x", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(
            drst_metrics_addr_parse(bad[i], host, sizeof(host), &port, err, sizeof(err)),
            DRST_ERR_INVAL);
    char b[64];
    drst_obs_fmt_double(b, sizeof(b), NAN);
    assert_string_equal(b, "NaN");
    drst_obs_fmt_double(b, sizeof(b), -INFINITY);
    assert_string_equal(b, "-Inf");
    drst_obs_fmt_double(b, sizeof(b), 0.1);
    assert_string_equal(b, "0.1");
    drst_obs_fmt_double(b, sizeof(b), 1.0 / 3);
    assert_true(strtod(b, NULL) == 1.0 / 3);
    /* the HTTP server refuses an address it cannot parse */
    drst_metrics_t *m = drst_metrics_new(err, sizeof(err));
    assert_null(drst_http_start("nohost:", m, NULL, NULL, err, sizeof(err)));
    drst_http_t *h = drst_http_start("127.0.0.1:0", m, NULL, NULL, err, sizeof(err));
    assert_non_null(h);
    assert_true(drst_http_port(h) > 0);
    drst_http_stop(h);
    drst_http_stop(NULL);
    drst_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_addr_and_fmt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
