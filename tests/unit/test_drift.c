/* Drift detectors: JSD against scipy, planted drift and stationary streams,
 * Page-Hinkley and ADWIN against reference implementations in Python,
 * save/restore, cooldown, bad states. References are computed by
 * tests/unit/test_drift_ref.py with $DRST_PYTHON (numpy + scipy). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "drst/drift.h"

/* ------------------------------------------------------------ helpers */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(uint64_t *s)
{
    double u = unif(s), v = unif(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static char tmpdir[256];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/drst_test_drift_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    char cmd[512];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *python(void)
{
    const char *p = getenv("DRST_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/* Run the reference script with `args`; its stdout goes to out. Returns its
 * exit status (or -1). */
static int run_ref(const char *args, char *out, size_t outlen)
{
    char cmd[2048];
    const char *src = getenv("DRST_SRC");
    FILE *p;
    size_t n = 0;
    int st;
    snprintf(cmd, sizeof(cmd), "'%s' '%s/tests/unit/test_drift_ref.py' %s", python(),
             src && *src ? src : ".", args);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    while (n + 1 < outlen) {
        size_t r = fread(out + n, 1, outlen - 1 - n, p);
        if (r == 0)
            break;
        n += r;
    }
    out[n] = 0;
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static FILE *tmpfile_open(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return fopen(path, "w");
}

static void write_rows(const char *name, const double *x, size_t n, size_t F)
{
    FILE *f = tmpfile_open(name);
    assert_non_null(f);
    for (size_t r = 0; r < n; r++) {
        for (size_t c = 0; c < F; c++)
            fprintf(f, "%s%.17g", c ? " " : "", x[r * F + c]);
        fputc('\n', f);
    }
    fclose(f);
}

static drst_detector_t *mk(const char *kind, const drst_detector_config_t *cfg)
{
    char err[DRST_ERRLEN] = "";
    drst_detector_t *d = drst_detector_new(kind, cfg, err, sizeof(err));
    if (!d)
        fail_msg("drst_detector_new(%s): %s", kind, err);
    return d;
}

static drst_drift_result_t feed(drst_detector_t *d, const double *x, size_t n)
{
    drst_drift_result_t r;
    assert_int_equal(drst_detector_update(d, x, n, &r), DRST_OK);
    return r;
}

/* ------------------------------------------------- JSD against scipy */

/* Six features of different shapes: normal, normal with NaNs, constant,
 * uniform, exponential, heavy outliers; the window drifts in some. */
static void gen_row(uint64_t *s, double *x, int shifted)
{
    x[0] = gauss(s) + (shifted ? 0.7 : 0);
    x[1] = unif(s) < 0.1 ? NAN : gauss(s) * (shifted ? 2.0 : 1.0);
    x[2] = 5.0;
    x[3] = unif(s) * 10;
    x[4] = -log(unif(s)) * (shifted ? 3 : 1);
    x[5] = unif(s) < 0.02 ? (unif(s) < 0.5 ? -1e6 : 1e6) : gauss(s);
}

static void check_against_scipy(double smoothing)
{
    enum { F = 6, B = 16, W = 200, N = 931 };
    drst_detector_config_t cfg = {
        .nfeatures = F, .bins = B, .window = W, .stride = 50, .smoothing = smoothing};
    double *all = malloc(sizeof(double) * (W + N) * F), base[B], win[B], lo, iw;
    uint64_t s = 42;
    drst_detector_t *d = mk("jsd", &cfg);
    drst_drift_result_t r;
    char out[8192], args[600];
    FILE *f;
    const double *sc;
    double alpha = smoothing > 0 ? smoothing : (smoothing == 0 ? 0.01 : 0.0);
    assert_non_null(all);
    for (size_t i = 0; i < W + N; i++) {
        gen_row(&s, all + i * F, i >= W + 300);
        r = feed(d, all + i * F, F);
    }
    (void)r;
    assert_int_equal(drst_detector_evaluate(d, &r), DRST_OK);
    sc = drst_jsd_feature_scores(d);
    f = tmpfile_open("meta.txt");
    fprintf(f, "%d %d %.17g\n", F, B, alpha);
    fclose(f);
    f = tmpfile_open("exp.txt");
    for (size_t k = 0; k < F; k++) {
        assert_int_equal(drst_jsd_histogram(d, k, &lo, &iw, base, win, NULL), DRST_OK);
        fprintf(f, "%.17g %.17g %.17g", lo, iw, sc[k]);
        for (int b = 0; b < B; b++)
            fprintf(f, " %.17g", base[b]);
        for (int b = 0; b < B; b++)
            fprintf(f, " %.17g", win[b]);
        fputc('\n', f);
    }
    fclose(f);
    write_rows("base.txt", all, W, F);        /* the first window is the baseline */
    write_rows("win.txt", all + N * F, W, F); /* the last W records */
    snprintf(args, sizeof(args), "jsd '%s'", tmpdir);
    int st = run_ref(args, out, sizeof(out));
    print_message("smoothing %g:\n%s", alpha, out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "PASS"));
    /* the drifted features score higher than the stationary ones */
    assert_true(sc[0] > sc[3] && sc[1] > sc[3] && sc[4] > sc[3]);
    assert_true(sc[2] == 0.0 || sc[2] < 1e-12);
    drst_detector_free(d);
    free(all);
}

static void jsd_matches_scipy(void **state)
{
    (void)state;
    check_against_scipy(0);   /* default smoothing 0.01 */
    check_against_scipy(0.5); /* heavy smoothing */
    check_against_scipy(-1);  /* none: 0 log 0 = 0 */
}

/* ------------------------------------------------ planted drift, tiers */

static double *normal_matrix(size_t n, size_t F, uint64_t seed)
{
    double *x = malloc(sizeof(double) * n * F);
    assert_non_null(x);
    for (size_t i = 0; i < n * F; i++)
        x[i] = gauss(&seed);
    return x;
}

static void jsd_tiers_follow_planted_drift(void **state)
{
    enum { F = 8, NB = 5000, STAT = 3000, SHIFT = 1500 };
    drst_detector_config_t cfg = {
        .nfeatures = F, .bins = 32, .window = 300, .stride = 50, .cooldown = 2000};
    struct {
        const char *what;
        double mu, sigma;
    } ph[] = {
        {"mean +0.5 sd", 0.5, 1}, {"mean +1 sd", 1.0, 1}, {"mean +3 sd", 3.0, 1}, {"sd x3", 0, 3}};
    double *base = normal_matrix(NB, F, 7), x[F];
    drst_calibration_t cal;
    char err[DRST_ERRLEN] = "";
    drst_detector_t *d = mk("jsd", &cfg);
    uint64_t s = 99, t = 0;
    int maxtier[4] = {0};
    (void)state;
    assert_int_equal(drst_jsd_calibrate(d, base, NB, &cal, err, sizeof(err)), DRST_OK);
    print_message("calibration: %zu replicates of %zu rows, null mean %.4f q %.4f, feature q "
                  "%.4f -> A %.4f B %.4f C %.4f feature %.4f%s\n",
                  cal.replicates, cal.sample, cal.null_mean, cal.null_q, cal.feature_q,
                  cal.thresholds[0], cal.thresholds[1], cal.thresholds[2], cal.feature_threshold,
                  cal.clamped ? " (clamped)" : "");
    assert_true(cal.thresholds[0] > cal.null_q && cal.thresholds[2] < 1.0);
    for (int p = 0; p < 4; p++) {
        uint64_t start, ntrig = 0, first = 0;
        for (int i = 0; i < STAT; i++) {
            drst_drift_result_t r;
            for (int f = 0; f < F; f++)
                x[f] = gauss(&s);
            r = feed(d, x, F);
            t++;
            /* stationary: the only trigger allowed is none */
            if (r.triggered)
                fail_msg("false trigger at record %llu (stationary, score %.4f)",
                         (unsigned long long)t, r.score);
        }
        start = t;
        for (int i = 0; i < SHIFT; i++) {
            drst_drift_result_t r;
            for (int f = 0; f < F; f++)
                x[f] = ph[p].mu + ph[p].sigma * gauss(&s);
            r = feed(d, x, F);
            t++;
            if (r.evaluated && r.tier > maxtier[p])
                maxtier[p] = r.tier;
            if (r.triggered) {
                ntrig++;
                if (!first)
                    first = t;
            }
        }
        print_message("%-13s: trigger at +%llu records (%llu trigger), max tier %d\n", ph[p].what,
                      (unsigned long long)(first - start), (unsigned long long)ntrig, maxtier[p]);
        assert_int_equal(ntrig, 1);
        assert_true(first > start && first <= start + 300);
    }
    /* tier grows with the size of the shift; a 3 sd shift is tier C */
    assert_true(maxtier[0] >= DRST_TIER_A);
    assert_true(maxtier[0] <= maxtier[1] && maxtier[1] <= maxtier[2]);
    assert_int_equal(maxtier[2], DRST_TIER_C);
    assert_true(maxtier[3] >= DRST_TIER_A);
    free(base);
    drst_detector_free(d);
}

static uint64_t stationary_triggers(drst_detector_t *d, uint64_t n, uint64_t seed, uint64_t *tiered)
{
    double x[64];
    size_t F = drst_detector_config(d)->nfeatures;
    uint64_t trig = 0;
    *tiered = 0;
    for (uint64_t i = 0; i < n; i++) {
        drst_drift_result_t r;
        for (size_t f = 0; f < F; f++)
            x[f] = gauss(&seed);
        r = feed(d, x, F);
        trig += r.triggered;
        *tiered += r.evaluated && r.tier > 0;
    }
    return trig;
}

static void jsd_quiet_on_stationary_stream(void **state)
{
    enum { F = 8, NB = 5000 };
    drst_detector_config_t cfg = {
        .nfeatures = F, .bins = 32, .window = 300, .stride = 50, .cooldown = 300};
    double *base = normal_matrix(NB, F, 3);
    char err[DRST_ERRLEN] = "";
    drst_detector_t *d = mk("jsd", &cfg);
    uint64_t tiered, trig;
    (void)state;
    assert_int_equal(drst_jsd_calibrate(d, base, NB, NULL, err, sizeof(err)), DRST_OK);
    trig = stationary_triggers(d, 100000, 1234, &tiered);
    print_message("training-matrix baseline: %llu triggers, %llu tiered evaluations over 100k "
                  "stationary records\n",
                  (unsigned long long)trig, (unsigned long long)tiered);
    assert_true(trig <= 1);
    drst_detector_free(d);

    /* First-window baseline, calibrated on it automatically. */
    cfg.auto_calibrate = 1;
    d = mk("jsd", &cfg);
    trig = stationary_triggers(d, 100000, 4321, &tiered);
    print_message("first-window baseline: %llu triggers, %llu tiered evaluations over 100k "
                  "stationary records (A=%.4f)\n",
                  (unsigned long long)trig, (unsigned long long)tiered,
                  drst_detector_config(d)->thresholds[0]);
    assert_true(trig <= 1);
    {
        /* recalibrating on the stored first-window baseline, long after the
         * window has slid past it, gives the same thresholds (same seed) */
        double thr[3];
        drst_calibration_t cal;
        memcpy(thr, drst_detector_config(d)->thresholds, sizeof(thr));
        assert_int_equal(drst_jsd_calibrate(d, NULL, 0, &cal, err, sizeof(err)), DRST_OK);
        assert_memory_equal(thr, cal.thresholds, sizeof(thr));
    }
    free(base);
    drst_detector_free(d);
}

static void jsd_tier_c_is_reachable(void **state)
{
    /* DRST's defect: natural-log JSD (max ln 2) against 0.2/0.5/0.8 never
     * reaches C. Ours is in bits and the defaults are below 1. */
    enum { F = 4 };
    drst_detector_config_t cfg = {.nfeatures = F, .bins = 64, .window = 100, .stride = 10};
    drst_detector_t *d = mk("jsd", &cfg);
    const drst_detector_config_t *c = drst_detector_config(d);
    double x[F];
    uint64_t s = 5;
    drst_drift_result_t r = {0};
    int maxtier = 0;
    (void)state;
    assert_true(c->thresholds[0] < c->thresholds[1] && c->thresholds[1] < c->thresholds[2]);
    assert_true(c->thresholds[2] <= 1.0);
    for (int i = 0; i < 100; i++) {
        for (int f = 0; f < F; f++)
            x[f] = unif(&s);
        r = feed(d, x, F);
    }
    for (int i = 0; i < 100; i++) {
        for (int f = 0; f < F; f++)
            x[f] = 1000 + unif(&s); /* far outside: all in the last bin */
        r = feed(d, x, F);
        if (r.evaluated && r.tier > maxtier)
            maxtier = r.tier;
    }
    print_message("disjoint window: mean JSD %.4f bits, tier %d\n", r.score, r.tier);
    assert_true(r.score > 0.9 && r.score <= 1.0);
    assert_int_equal(maxtier, DRST_TIER_C);
    drst_detector_free(d);
}

static void jsd_rebaseline_and_nan(void **state)
{
    enum { F = 3, W = 50 };
    drst_detector_config_t cfg = {.nfeatures = F, .bins = 8, .window = W, .stride = 10};
    drst_detector_t *d = mk("jsd", &cfg);
    double x[F], base[8], win[8], lo, iw;
    uint64_t s = 77, nanw;
    drst_drift_result_t r;
    (void)state;
    assert_int_equal(drst_detector_evaluate(d, &r), DRST_ERR_STATE);
    assert_int_equal(drst_jsd_histogram(d, 0, &lo, &iw, base, win, &nanw), DRST_ERR_STATE);
    for (int i = 0; i < W + 25; i++) {
        x[0] = gauss(&s);
        x[1] = i % 5 == 0 ? NAN : gauss(&s);
        x[2] = i >= W ? 1e300 : gauss(&s);
        r = feed(d, x, F);
    }
    assert_int_equal(drst_jsd_histogram(d, 1, &lo, &iw, base, win, &nanw), DRST_OK);
    assert_int_equal(nanw, W / 5);
    /* a value far above the edges lands in the last bin */
    assert_int_equal(drst_jsd_histogram(d, 2, &lo, &iw, base, win, &nanw), DRST_OK);
    assert_true(win[7] >= 25);
    /* after rebaseline nothing is evaluated until a new window has filled */
    drst_detector_rebaseline(d);
    for (int i = 0; i < W; i++) {
        x[0] = x[1] = x[2] = gauss(&s) + 10;
        r = feed(d, x, F);
        assert_false(r.evaluated);
    }
    for (int i = 0; i < 10; i++) {
        x[0] = x[1] = x[2] = gauss(&s) + 10;
        r = feed(d, x, F);
    }
    assert_true(r.evaluated);
    assert_int_equal(r.tier, 0);
    assert_int_equal(drst_detector_update(d, x, F - 1, &r), DRST_ERR_INVAL);
    drst_detector_free(d);
}

/* ----------------------------------------- error detectors vs. Python */

static double *error_stream(size_t n, size_t change, double before, double after, double sd,
                            uint64_t seed)
{
    double *e = malloc(sizeof(double) * n);
    assert_non_null(e);
    for (size_t i = 0; i < n; i++)
        e[i] = fabs((i < change ? before : after) + sd * gauss(&seed));
    return e;
}

static void page_hinkley_matches_reference(void **state)
{
    enum { N = 4000, CH = 2000 };
    drst_detector_config_t cfg = {0};
    drst_detector_t *d = mk("page_hinkley", &cfg);
    const drst_detector_config_t *c = drst_detector_config(d);
    double *e = error_stream(N, CH, 0.05, 0.35, 0.03, 17);
    char ours[4096] = "", ref[4096], args[600];
    size_t len = 0;
    uint64_t first = 0;
    (void)state;
    for (size_t i = 0; i < N; i++) {
        drst_drift_result_t r = feed(d, e + i, 1);
        if (r.change) {
            len += (size_t)snprintf(ours + len, sizeof(ours) - len, "%s%llu", len ? " " : "",
                                    (unsigned long long)r.at);
            if (!first)
                first = r.at;
            assert_true(r.triggered);
            assert_true(r.magnitude > 0.2 && r.magnitude < 0.4);
            assert_true(r.tier >= DRST_TIER_B); /* jump 0.30: B from 0.10, C from 0.30 */
        }
    }
    if (!len)
        snprintf(ours, sizeof(ours), "none");
    write_rows("err.txt", e, N, 1);
    snprintf(args, sizeof(args), "ph '%s/err.txt' %.17g %.17g %zu", tmpdir, c->ph_delta,
             c->ph_lambda, c->ph_min_samples);
    assert_int_equal(run_ref(args, ref, sizeof(ref)), 0);
    ref[strcspn(ref, "\n")] = 0;
    print_message("page_hinkley detections: ours [%s] reference [%s]\n", ours, ref);
    assert_string_equal(ours, ref);
    /* delay bound: lambda / (jump - delta) records, doubled for the running
     * mean catching up, plus the noise */
    assert_true(first > CH);
    assert_true(first - CH <= (uint64_t)(2 * c->ph_lambda / (0.30 - c->ph_delta)) + 10);
    free(e);

    /* stationary error: quiet */
    drst_detector_reset(d);
    e = error_stream(100000, 100000, 0.10, 0.10, 0.08, 23);
    for (size_t i = 0; i < 100000; i++)
        (void)feed(d, e + i, 1);
    print_message("page_hinkley on 100k stationary errors: %llu triggers\n",
                  (unsigned long long)drst_detector_triggers(d));
    assert_true(drst_detector_triggers(d) <= 1);
    free(e);
    drst_detector_free(d);
}

static void adwin_matches_exact_reference(void **state)
{
    enum { N = 3000, CH = 2000 };
    drst_detector_config_t cfg = {0};
    drst_detector_t *d = mk("adwin", &cfg);
    const drst_detector_config_t *c = drst_detector_config(d);
    double *e = error_stream(N, CH, 0.10, 0.30, 0.03, 31);
    char ref[256], args[600];
    uint64_t first = 0, pyfirst;
    double mag = 0;
    int tier = 0;
    (void)state;
    for (size_t i = 0; i < N; i++) {
        drst_drift_result_t r = feed(d, e + i, 1);
        if (r.change && !first) {
            first = r.at;
            mag = r.magnitude;
            tier = r.tier;
        }
    }
    write_rows("err.txt", e, N, 1);
    snprintf(args, sizeof(args), "adwin '%s/err.txt' %.17g %zu %zu", tmpdir, c->adwin_delta,
             c->adwin_min_sub, c->adwin_clock);
    assert_int_equal(run_ref(args, ref, sizeof(ref)), 0);
    pyfirst = strtoull(ref, NULL, 10);
    print_message("adwin (buckets, M=%zu) first cut at %llu (jump %.3f, tier %d); exact "
                  "all-splits ADWIN at %llu; change at %d\n",
                  c->adwin_max_buckets, (unsigned long long)first, mag, tier,
                  (unsigned long long)pyfirst, CH);
    /* the bucket version tests a subset of the exact version's split points
     * on the same window, so it cannot cut earlier; it may cut a few clock
     * ticks later */
    assert_true(pyfirst > CH);
    assert_true(first >= pyfirst);
    assert_true(first - pyfirst <= 4 * c->adwin_clock);
    assert_true(first - CH <= 200);
    assert_true(mag > 0.1);
    assert_true(tier >= DRST_TIER_B);
    free(e);

    drst_detector_reset(d);
    e = error_stream(100000, 100000, 0.10, 0.10, 0.08, 29);
    for (size_t i = 0; i < 100000; i++)
        (void)feed(d, e + i, 1);
    print_message("adwin on 100k stationary errors: %llu triggers\n",
                  (unsigned long long)drst_detector_triggers(d));
    assert_true(drst_detector_triggers(d) <= 1);
    free(e);
    drst_detector_free(d);
}

/* ---------------------------------------------------- save / restore */

static void same_result(const drst_drift_result_t *a, const drst_drift_result_t *b)
{
    assert_int_equal(a->at, b->at);
    assert_int_equal(a->evaluated, b->evaluated);
    assert_int_equal(a->change, b->change);
    assert_int_equal(a->tier, b->tier);
    assert_int_equal(a->triggered, b->triggered);
    assert_int_equal(a->suppressed, b->suppressed);
    assert_int_equal(a->n_drifted, b->n_drifted);
    assert_memory_equal(&a->score, &b->score, sizeof(double));
    assert_memory_equal(&a->magnitude, &b->magnitude, sizeof(double));
}

/* Feed `n` records, saving at `cut`; the restored copy must take the same
 * decisions on the rest as the original. Returns triggers after the cut. */
static uint64_t roundtrip(const char *kind, const drst_detector_config_t *cfg, size_t F, size_t n,
                          size_t cut, size_t change)
{
    drst_detector_t *d = mk(kind, cfg), *e = NULL;
    char err[DRST_ERRLEN] = "", *js = NULL, *js2 = NULL;
    uint64_t s = 1000 + cut, trig = 0;
    double x[16];
    size_t len = 0, len2 = 0;
    for (size_t i = 0; i < n; i++) {
        drst_drift_result_t r1, r2;
        for (size_t f = 0; f < F; f++) {
            double v = gauss(&s) * 0.05 + (i >= change ? 0.4 + f * 0.1 : 0.1);
            x[f] = (f == 1 && i % 7 == 0) ? NAN : v;
        }
        if (i == cut) {
            assert_int_equal(drst_detector_save_json(d, &js, &len, err, sizeof(err)), DRST_OK);
            e = drst_detector_restore_json(js, len, err, sizeof(err));
            if (!e)
                fail_msg("restore %s: %s", kind, err);
            assert_int_equal(drst_detector_save_json(e, &js2, &len2, err, sizeof(err)), DRST_OK);
            if (strcmp(js, js2) != 0) {
                size_t k = 0;
                while (js[k] == js2[k])
                    k++;
                fail_msg("%s: restore then save differs at byte %zu:\n%.200s\n%.200s", kind, k,
                         js + (k > 80 ? k - 80 : 0), js2 + (k > 80 ? k - 80 : 0));
            }
            free(js2);
            free(js);
        }
        r1 = feed(d, x, F);
        if (e) {
            r2 = feed(e, x, F);
            same_result(&r1, &r2);
            trig += r2.triggered;
        }
    }
    assert_int_equal(drst_detector_triggers(d), drst_detector_triggers(e));
    drst_detector_free(d);
    drst_detector_free(e);
    return trig;
}

static void save_restore_gives_identical_decisions(void **state)
{
    drst_detector_config_t j = {.nfeatures = 4,
                                .bins = 16,
                                .window = 100,
                                .stride = 10,
                                .cooldown = 400,
                                .auto_calibrate = 1};
    drst_detector_config_t p = {.cooldown = 400}, a = {.cooldown = 400, .adwin_clock = 1};
    (void)state;
    /* jsd: during baseline collection, in a full window, mid-cooldown */
    assert_true(roundtrip("jsd", &j, 4, 1200, 0, 600) >= 1);
    assert_true(roundtrip("jsd", &j, 4, 1200, 37, 600) >= 1);
    assert_true(roundtrip("jsd", &j, 4, 1200, 333, 600) >= 1);
    /* a trigger fires shortly after 600: saving inside its cooldown must
     * not let the restored monitor fire the same drift again */
    assert_int_equal(roundtrip("jsd", &j, 4, 1000, 700, 600), 0);
    assert_true(roundtrip("page_hinkley", &p, 1, 1500, 500, 600) >= 1);
    assert_int_equal(roundtrip("page_hinkley", &p, 1, 1000, 700, 600), 0);
    assert_true(roundtrip("adwin", &a, 1, 1500, 500, 600) >= 1);
    roundtrip("adwin", &a, 1, 1500, 1000, 600);
    assert_int_equal(roundtrip("adwin", &a, 1, 1000, 700, 600), 0);
}

static void restore_rejects_bad_states(void **state)
{
    drst_detector_config_t cfg = {.nfeatures = 2, .bins = 4, .window = 5, .stride = 2};
    drst_detector_t *d = mk("jsd", &cfg), *e;
    char err[DRST_ERRLEN], *js = NULL, *bad;
    size_t len = 0;
    double x[2] = {1, 2};
    const char *cases[][2] = {
        {"\"ring\":[", "\"ring\":[9999,"},
        {"\"head\":", "\"head\":77"},
        {"\"version\":1", "\"version\":2"},
        {"\"kind\":\"jsd\"", "\"kind\":\"xyz\""},
        {"\"format\":\"drst.detector.state\"", "\"format\":\"other\""},
        {"\"nfeatures\":2", "\"nfeatures\":99999999"},
        {"\"bins\":4", "\"bins\":1"},
        {"\"lo\":[", "\"lo\":[\"a\","},
    };
    (void)state;
    for (int i = 0; i < 12; i++) {
        x[0] += 1;
        x[1] = -x[1];
        (void)feed(d, x, 2);
    }
    assert_int_equal(drst_detector_save_json(d, &js, &len, err, sizeof(err)), DRST_OK);
    /* every prefix is refused without crashing */
    for (size_t n = 0; n < len; n += 7) {
        err[0] = 0;
        e = drst_detector_restore_json(js, n, err, sizeof(err));
        assert_null(e);
        assert_true(err[0] != 0);
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *at = strstr(js, cases[i][0]);
        size_t n;
        assert_non_null(at);
        bad = malloc(len + 64);
        n = (size_t)(at - js);
        memcpy(bad, js, n);
        snprintf(bad + n, len + 64 - n, "%s%s", cases[i][1], at + strlen(cases[i][0]));
        err[0] = 0;
        e = drst_detector_restore_json(bad, strlen(bad), err, sizeof(err));
        print_message("bad state %zu: %s\n", i, err);
        assert_null(e);
        assert_true(err[0] != 0);
        free(bad);
    }
    {
        /* an out-of-range bin index inside the ring */
        const char *at = strstr(js, "\"ring\":[");
        size_t n = (size_t)(at - js) + 8;
        bad = malloc(len + 64);
        memcpy(bad, js, n);
        snprintf(bad + n, len + 64 - n, "9999%s", js + n + strspn(js + n, "0123456789"));
        e = drst_detector_restore_json(bad, strlen(bad), err, sizeof(err));
        print_message("bad ring: %s\n", err);
        assert_null(e);
        assert_non_null(strstr(err, "ring"));
        free(bad);
    }
    e = drst_detector_restore_json("{}", 2, err, sizeof(err));
    assert_null(e);
    e = drst_detector_restore_json(js, len, err, sizeof(err));
    assert_non_null(e);
    drst_detector_free(e);
    free(js);
    drst_detector_free(d);
}

/* ------------------------------------------------- small contracts */

static void kinds_config_and_cooldown(void **state)
{
    char err[DRST_ERRLEN] = "";
    drst_detector_config_t bad = {.nfeatures = 3, .thresholds = {0.5, 0.4, 0.9}};
    drst_cooldown_t c;
    (void)state;
    assert_string_equal(drst_detector_kind_name(0), "jsd");
    assert_string_equal(drst_detector_kind_name(1), "page_hinkley");
    assert_string_equal(drst_detector_kind_name(2), "adwin");
    assert_null(drst_detector_kind_name(3));
    assert_null(drst_detector_new("nope", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "'nope'"));
    assert_null(drst_detector_new("jsd", NULL, err, sizeof(err))); /* needs nfeatures */
    assert_null(drst_detector_new("jsd", &bad, err, sizeof(err)));
    assert_non_null(strstr(err, "A < B < C"));
    bad.thresholds[0] = 0.1;
    bad.thresholds[2] = 1.5; /* unreachable */
    assert_null(drst_detector_new("jsd", &bad, err, sizeof(err)));
    bad.thresholds[2] = 0.9;
    bad.bins = 100000;
    assert_null(drst_detector_new("jsd", &bad, err, sizeof(err)));
    drst_detector_free(NULL);

    drst_cooldown_init(&c, 10);
    assert_true(drst_cooldown_try(&c, 5));
    assert_false(drst_cooldown_try(&c, 6));
    assert_false(drst_cooldown_try(&c, 15));
    assert_true(drst_cooldown_active(&c, 15));
    assert_false(drst_cooldown_active(&c, 16));
    assert_true(drst_cooldown_try(&c, 16));
    drst_cooldown_clear(&c);
    assert_true(drst_cooldown_try(&c, 17));
    assert_int_equal(c.fired, 3);
    assert_int_equal(c.suppressed, 2);
    drst_cooldown_init(&c, 0);
    assert_true(drst_cooldown_try(&c, 1) && drst_cooldown_try(&c, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(jsd_matches_scipy, setup_tmp, teardown_tmp),
        cmocka_unit_test(jsd_tiers_follow_planted_drift),
        cmocka_unit_test(jsd_quiet_on_stationary_stream),
        cmocka_unit_test(jsd_tier_c_is_reachable),
        cmocka_unit_test(jsd_rebaseline_and_nan),
        cmocka_unit_test_setup_teardown(page_hinkley_matches_reference, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(adwin_matches_exact_reference, setup_tmp, teardown_tmp),
        cmocka_unit_test(save_restore_gives_identical_decisions),
        cmocka_unit_test(restore_rejects_bad_states),
        cmocka_unit_test(kinds_config_and_cooldown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
