/* Unit tests of the raw telemetry parsers: perf-stat, rx/tx, latency, PCM,
 * pcm-pcie and column-name normalisation (rules: docs/dataset.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "telemetry/raw_int.h"

typedef struct sink {
    int n;
    uint64_t lines[32];
    char reasons[32][128];
} sink_t;

static void collect(void *opaque, drst_diag_kind_t kind, const char *file, uint64_t line,
                    const char *reason, const char *text, size_t textlen)
{
    sink_t *s = opaque;
    (void)file;
    (void)text;
    (void)textlen;
    if (kind != DRST_DIAG_REJECT)
        return;
    if (s->n < 32) {
        s->lines[s->n] = line;
        snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", reason);
    }
    s->n++;
}

static void test_perf(void **state)
{
    const char *txt = "# started on Thu\n\n"
                      "  1.0,10,,instructions,0.00%,1,100.00,,\n"
                      "  1.0,<not supported>,,cycles,0.00%,1,100.00,,\n"
                      "=======\n"
                      "  2.0,20,,instructions,0.00%,1,100.00,,\r\n"
                      "  2.0,21,,instructions,0.00%,1,100.00,,\n"
                      "  2.0,x,,cycles\n"
                      "  2.0,5\n"
                      "abc,5,,cycles\n"
                      "  2.0,22,,LLC-loads\n";
    sink_t s = {0};
    drst_diag_t d = {.fn = collect, .opaque = &s};
    drst_perf_t p;
    char err[DRST_ERRLEN];
    (void)state;
    assert_int_equal(drst_perf_detect(txt, strlen(txt)), 1);
    assert_int_equal(drst_perf_parse(txt, strlen(txt), "p.csv", &p, &d, err, sizeof err), DRST_OK);
    assert_int_equal(p.nint, 2);
    assert_int_equal(p.nev, 3);
    assert_string_equal(p.events[2], "LLC-loads");
    assert_true(p.vals[0] == 10);
    assert_true(isnan(p.vals[1]));
    assert_true(p.vals[3] == 20);
    assert_true(isnan(p.vals[4]));
    assert_true(p.vals[5] == 22);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.lines[0], 5);
    assert_non_null(strstr(s.reasons[0], "merge-conflict"));
    assert_non_null(strstr(s.reasons[1], "repeated"));
    assert_non_null(strstr(s.reasons[2], "non-numeric counter"));
    assert_non_null(strstr(s.reasons[3], "at least 4"));
    assert_non_null(strstr(s.reasons[4], "timestamp"));
    drst_perf_release(&p);
    assert_int_equal(drst_perf_detect("Time,Mbit\n1,2\n", 14), 0);
    assert_int_equal(drst_perf_detect("", 0), 0);
    /* strict: the first rejected line fails */
    d.strict = 1;
    assert_int_equal(drst_perf_parse(txt, strlen(txt), "p.csv", &p, &d, err, sizeof err),
                     DRST_ERR_STRICT);
    assert_non_null(strstr(err, "p.csv:5"));
}

static void test_rxtx(void **state)
{
    const char *h = "Time,Device,Direction,PacketRate,Mbit\n1,d,TX,0.5,10.25\n2,d,TX,0.5,x\n";
    const char *pr = "Time,PacketRate\n1,3.5\n";
    const char *nh = "1,d,RX,0.1,7.5,1\n2,d,RX\n";
    drst_series_t s;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    (void)state;
    assert_int_equal(drst_rxtx_parse(h, strlen(h), "tx", &s, &d, err, sizeof err), DRST_OK);
    assert_int_equal(s.n, 1);
    assert_true(s.v[0] == 10.25 && s.t[0] == 1);
    assert_string_equal(s.column, "Mbit");
    assert_int_equal(d.rejected, 1);
    drst_series_release(&s);
    assert_int_equal(drst_rxtx_parse(pr, strlen(pr), "tx", &s, &d, err, sizeof err), DRST_OK);
    assert_string_equal(s.column, "PacketRate");
    assert_true(s.v[0] == 3.5);
    drst_series_release(&s);
    assert_int_equal(drst_rxtx_parse(nh, strlen(nh), "rx", &s, &d, err, sizeof err), DRST_OK);
    assert_int_equal(s.n, 1);
    assert_true(s.v[0] == 7.5);
    assert_int_equal(d.rejected, 2);
    drst_series_release(&s);
}

static void test_latency(void **state)
{
    const char *us = "<<<<<<< HEAD\r\n1 15000000\r\n2 13808\r\n3,4000\r\n\r\nfoo\r\n";
    const char *ms = "5.5\n6.5\n1 2 3\n";
    drst_series_t s;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    (void)state;
    assert_int_equal(drst_latency_parse(us, strlen(us), "l", &s, &d, err, sizeof err), DRST_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.usec, 1);
    assert_true(s.v[0] == 15000.0 && s.v[1] == 13.808 && s.v[2] == 4.0);
    assert_int_equal(d.rejected, 2);
    drst_series_release(&s);
    assert_int_equal(drst_latency_parse(ms, strlen(ms), "l", &s, &d, err, sizeof err), DRST_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.usec, 0);
    assert_true(s.v[1] == 6.5);
    drst_series_release(&s);
}

static void test_pcm(void **state)
{
    const char *txt = "System,System,Socket 0,,SKT0 Core C-State,\n"
                      "Date,Time,EXEC,EXEC,C0res%,\n"
                      "2024-03-05,09:30:51.600, 0.5,1,2,\n"
                      "2024-03-05,09:30:52.600,0.6,,3,\n"
                      "2024-03-05,25:30:52.600,0.6,,3,\n"
                      "2024-03-05,09:30:53.600,0.6,,3\n";
    drst_table_t *t = NULL;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    (void)state;
    assert_int_equal(drst_pcm_parse(txt, strlen(txt), "f-pcm.csv", "fw", &t, &d, err, sizeof err),
                     DRST_OK);
    assert_int_equal(t->ncols, 4);
    assert_string_equal(t->names[1], "fw_Socket_0_EXEC");
    assert_string_equal(t->names[2], "fw_Socket_0_EXEC_2");
    assert_string_equal(t->names[3], "fw_SKT0_Core_C_State_C0res_pct");
    assert_int_equal(t->nrows, 2);
    assert_true(drst_table_at(t, 0, 0) == 1709631051.6);
    assert_true(isnan(drst_table_at(t, 1, 2)));
    assert_int_equal(d.rejected, 2);
    drst_table_free(t);
    assert_int_equal(drst_pcm_parse("a,b\n1,2\n", 8, "x", "x", &t, &d, err, sizeof err),
                     DRST_ERR_FORMAT);
    assert_null(t);
}

static void test_pcie(void **state)
{
    const char *txt = "Skt,PCIRdCur,RFO\n0,5,6(Total)\n0,1,2(Miss)\n0,4,4(Hit)\n1,9,9(Total)\n"
                      "Skt,PCIRdCur,RFO\n0,7,8(Total)\n0,7,8(Bogus)\n";
    drst_table_t *t = NULL;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    (void)state;
    assert_int_equal(drst_pcie_parse(txt, strlen(txt), "p", "pcie", &t, &d, err, sizeof err),
                     DRST_OK);
    assert_int_equal(t->nrows, 2);
    assert_int_equal(t->ncols, 7);
    assert_string_equal(t->names[1], "pcie_skt0_PCIRdCur_total");
    assert_string_equal(t->names[4], "pcie_skt0_RFO_miss");
    assert_string_equal(t->names[6], "pcie_skt1_RFO_total");
    assert_true(drst_table_at(t, 0, 2) == 6 && drst_table_at(t, 1, 1) == 7);
    assert_true(isnan(drst_table_at(t, 1, 3)));
    assert_int_equal(d.rejected, 1);
    drst_table_free(t);
}

static void test_normalise(void **state)
{
    char out[64];
    (void)state;
    drst_name_normalise("TIME(ticks)", 11, out, sizeof out);
    assert_string_equal(out, "TIME_ticks");
    drst_name_normalise("Mem Read (MB/s)", 15, out, sizeof out);
    assert_string_equal(out, "Mem_Read_MB_s");
    drst_name_normalise("a%b", 3, out, sizeof out);
    assert_string_equal(out, "a_pct_b");
    drst_name_normalise("  ", 2, out, sizeof out);
    assert_string_equal(out, "");
    assert_int_equal(drst_is_conflict_marker(">>>>>>> x", 9), 1);
    assert_int_equal(drst_is_conflict_marker("======", 6), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perf), cmocka_unit_test(test_rxtx), cmocka_unit_test(test_latency),
        cmocka_unit_test(test_pcm),  cmocka_unit_test(test_pcie), cmocka_unit_test(test_normalise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
