/* The run report: read the run's files (docs/formats.md), compute the tables,
 * write the data behind every figure and let gnuplot draw them (plot.c).
 *
 * Everything is computed from the files alone, so a report can be rebuilt
 * after the fact (`drst report --out DIR`) exactly as `drst run` made it. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/error_int.h"
#include "drst/obs.h"
#include "obs/obs_int.h"

#define MAX_FILE   (1u << 30)
#define MAX_TAUS   8
#define MAX_EVENTS 50

/* ---------------- CSV (our own formats: plain, optionally quoted) ---------------- */

void drst_obs_csv_free(obs_csv_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->names[i]);
    if (t->text)
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
            free(t->text[i]);
    free(t->names);
    free(t->num);
    free(t->text);
    free(t);
}

long drst_obs_csv_col(const obs_csv_t *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (!strcmp(t->names[i], name))
            return (long)i;
    return -1;
}

/* Split one line into at most max cells (unquoting "..." with "" escapes) into
 * a scratch buffer; returns the number of cells or (size_t)-1 if too many. */
static size_t split_line(const char *s, size_t n, char *scratch, char **cells, size_t max)
{
    size_t nc = 0, i = 0;
    char *w = scratch;
    while (1) {
        if (nc == max)
            return (size_t)-1;
        cells[nc++] = w;
        if (i < n && s[i] == '"') {
            i++;
            while (i < n) {
                if (s[i] == '"' && i + 1 < n && s[i + 1] == '"') {
                    *w++ = '"';
                    i += 2;
                } else if (s[i] == '"') {
                    i++;
                    break;
                } else {
                    *w++ = s[i++];
                }
            }
            while (i < n && s[i] != ',')
                i++;
        } else {
            while (i < n && s[i] != ',')
                *w++ = s[i++];
        }
        *w++ = 0;
        if (i >= n)
            break;
        i++; /* comma */
    }
    return nc;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

drst_err_t drst_obs_csv_parse(const char *buf, size_t len, const char *name, obs_csv_t **out,
                              drst_diag_t *diag, char *err, size_t errlen)
{
    drst_err_t rc = DRST_OK;
    *out = NULL;
    obs_csv_t *t = calloc(1, sizeof(*t));
    char *scratch = malloc(len + 1);
    char **cells = NULL;
    size_t maxc = 0, cap = 0;
    if (!t || !scratch)
        goto nomem;
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        size_t e = pos;
        while (e < len && buf[e] != '\n')
            e++;
        size_t n = e - pos;
        const char *s = buf + pos;
        pos = e + 1;
        lineno++;
        if (n && s[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        if (!t->names) {
            maxc = 1;
            for (size_t i = 0; i < n; i++)
                maxc += s[i] == ',';
            if (maxc > 4096) {
                rc =
                    drst_seterr(err, errlen, DRST_ERR_TOOBIG, "%s:1: more than 4096 columns", name);
                goto fail;
            }
            cells = malloc((maxc + 1) * sizeof(*cells));
            t->names = calloc(maxc, sizeof(*t->names));
            if (!cells || !t->names)
                goto nomem;
            t->ncols = split_line(s, n, scratch, cells, maxc);
            for (size_t i = 0; i < t->ncols; i++)
                if (!(t->names[i] = strdup(trim(cells[i]))))
                    goto nomem;
            continue;
        }
        if (memchr(s, 0, n)) {
            if ((rc = drst_diag_reject(diag, name, lineno, s, n, err, errlen, "NUL byte")))
                goto fail;
            continue;
        }
        size_t nc = split_line(s, n, scratch, cells, maxc + 1);
        if (nc != t->ncols) {
            if ((rc = drst_diag_reject(diag, name, lineno, s, n, err, errlen, "expected %zu fields",
                                       t->ncols)))
                goto fail;
            continue;
        }
        if (t->nrows == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            double *nn = realloc(t->num, ncap * t->ncols * sizeof(double));
            if (!nn)
                goto nomem;
            t->num = nn;
            char **nt = realloc(t->text, ncap * t->ncols * sizeof(char *));
            if (!nt)
                goto nomem;
            t->text = nt;
            cap = ncap;
        }
        for (size_t i = 0; i < nc; i++) {
            char *c = trim(cells[i]), *end;
            size_t k = t->nrows * t->ncols + i;
            double v = NAN;
            t->text[k] = NULL;
            if (*c) {
                errno = 0;
                v = strtod(c, &end);
                if (*end || end == c) {
                    v = NAN;
                    if (!(t->text[k] = strdup(c))) {
                        for (size_t j = 0; j < i; j++)
                            free(t->text[t->nrows * t->ncols + j]);
                        goto nomem;
                    }
                }
            }
            t->num[k] = v;
        }
        t->nrows++;
    }
    if (!t->names) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY, "%s: empty file (no header)", name);
        goto fail;
    }
    free(scratch);
    free(cells);
    *out = t;
    return DRST_OK;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
fail:
    free(scratch);
    free(cells);
    drst_obs_csv_free(t);
    return rc;
}

static drst_err_t slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return drst_seterrno(err, errlen, errno == ENOENT ? DRST_ERR_NOTFOUND : DRST_ERR_IO, errno,
                             "cannot open '%s'", path);
    size_t cap = 0, n = 0;
    char *b = NULL;
    drst_err_t rc = DRST_OK;
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE) {
                rc = drst_seterr(err, errlen, DRST_ERR_TOOBIG, "%s: larger than 1 GiB", path);
                break;
            }
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(b, nc);
            if (!nb) {
                rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read '%s'", path);
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return DRST_OK;
}

static drst_err_t load_csv(const char *dir, const char *file, obs_csv_t **out, drst_diag_t *diag,
                           char *err, size_t errlen)
{
    char path[4096];
    char *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    drst_err_t rc = slurp(path, &buf, &len, err, errlen);
    if (rc)
        return rc;
    rc = drst_obs_csv_parse(buf, len, path, out, diag, err, errlen);
    free(buf);
    return rc;
}

/* ---------------- the report ---------------- */

struct rec {
    double ts, part, off, truth, base, adapt, lat;
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy's default (linear) percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double h = (double)(n - 1) * q / 100.0;
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (h - (double)lo) * (v[hi] - v[lo]);
}

static int accurate(double pred, double truth, double tau)
{
    return fabs(pred - truth) <= tau * fabs(truth);
}

struct ctx {
    const drst_report_opts_t *o;
    const char *in, *out;
    double taus[MAX_TAUS];
    size_t ntaus, window;
    drst_diag_t *diag;
    char *err;
    size_t errlen;
    struct rec *r;
    size_t n;
    int has_lat;
    obs_csv_t *drift, *events, *res;
    double thr[3];
    int have_thr[3];
    FILE *md, *gp;
    size_t nswaps;
    char datadir[4096];
};

static drst_err_t load_traces(struct ctx *c)
{
    DIR *d = opendir(c->in);
    if (!d)
        return drst_seterrno(c->err, c->errlen, DRST_ERR_IO, errno,
                             "cannot open run directory '%s'", c->in);
    char **names = NULL;
    size_t nn = 0, cap = 0;
    drst_err_t rc = DRST_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "trace", 5) || l < 9 || strcmp(e->d_name + l - 4, ".csv"))
            continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 8;
            char **nb = realloc(names, cap * sizeof(*names));
            if (!nb) {
                rc = drst_seterr(c->err, c->errlen, DRST_ERR_NOMEM, "out of memory");
                goto out;
            }
            names = nb;
        }
        if (!(names[nn] = strdup(e->d_name))) {
            rc = drst_seterr(c->err, c->errlen, DRST_ERR_NOMEM, "out of memory");
            goto out;
        }
        nn++;
    }
    if (nn == 0) {
        rc = drst_seterr(c->err, c->errlen, DRST_ERR_NOTFOUND,
                         "%s: no trace file (trace*.csv with ts,partition,offset,truth,baseline,"
                         "adaptive,version)",
                         c->in);
        goto out;
    }
    qsort(names, nn, sizeof(*names), cmp_str);
    size_t rcap = 0;
    c->has_lat = 1;
    for (size_t i = 0; i < nn; i++) {
        obs_csv_t *t = NULL;
        if ((rc = load_csv(c->in, names[i], &t, c->diag, c->err, c->errlen)))
            goto out;
        long cts = drst_obs_csv_col(t, "ts"), ctr = drst_obs_csv_col(t, "truth"),
             cb = drst_obs_csv_col(t, "baseline"), ca = drst_obs_csv_col(t, "adaptive"),
             cp = drst_obs_csv_col(t, "partition"), co = drst_obs_csv_col(t, "offset"),
             cl = drst_obs_csv_col(t, "latency_s");
        if (cts < 0 || ctr < 0 || cb < 0 || ca < 0) {
            rc = drst_seterr(c->err, c->errlen, DRST_ERR_SCHEMA,
                             "%s/%s: needs columns ts, truth, baseline, adaptive", c->in, names[i]);
            drst_obs_csv_free(t);
            goto out;
        }
        if (cl < 0)
            c->has_lat = 0;
        for (size_t k = 0; k < t->nrows; k++) {
            const double *row = t->num + k * t->ncols;
            if (isnan(row[cts]) || isnan(row[ctr])) {
                /* a row without time or truth cannot be scored */
                if ((rc = drst_diag_reject(c->diag, names[i], 0, NULL, 0, c->err, c->errlen,
                                           "data row %zu: ts or truth is not a number", k + 1))) {
                    drst_obs_csv_free(t);
                    goto out;
                }
                continue;
            }
            if (c->n == rcap) {
                rcap = rcap ? rcap * 2 : 1024;
                struct rec *nr = realloc(c->r, rcap * sizeof(*nr));
                if (!nr) {
                    drst_obs_csv_free(t);
                    rc = drst_seterr(c->err, c->errlen, DRST_ERR_NOMEM, "out of memory");
                    goto out;
                }
                c->r = nr;
            }
            struct rec *r = &c->r[c->n++];
            r->ts = row[cts];
            r->truth = row[ctr];
            r->base = row[cb];
            r->adapt = row[ca];
            r->part = cp >= 0 ? row[cp] : 0;
            r->off = co >= 0 ? row[co] : (double)k;
            r->lat = cl >= 0 ? row[cl] : NAN;
        }
        drst_obs_csv_free(t);
    }
    if (c->n == 0)
        rc = drst_seterr(c->err, c->errlen, DRST_ERR_EMPTY, "%s: trace files have no usable row",
                         c->in);
    else
        qsort(c->r, c->n, sizeof(*c->r), cmp_rec);
out:
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

static drst_err_t optional_csv(struct ctx *c, const char *file, obs_csv_t **out)
{
    drst_err_t rc = load_csv(c->in, file, out, c->diag, c->err, c->errlen);
    if (rc == DRST_ERR_NOTFOUND || rc == DRST_ERR_EMPTY) {
        *out = NULL;
        return DRST_OK;
    }
    return rc;
}

static void load_runjson(struct ctx *c)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/run.json", c->in);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return;
    json_t *t = json_object_get(j, "thresholds");
    const char *tiers[3] = {"A", "B", "C"};
    for (int i = 0; i < 3 && json_is_object(t); i++) {
        json_t *v = json_object_get(t, tiers[i]);
        if (json_is_number(v)) {
            c->thr[i] = json_number_value(v);
            c->have_thr[i] = 1;
        }
    }
    json_decref(j);
}

static FILE *open_data(struct ctx *c, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", c->datadir, name);
    return fopen(path, "w");
}

static void gp_data(struct ctx *c, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", c->datadir, name);
    drst_plot_quote(c->gp, path);
}

static void gp_png(struct ctx *c, const char *name, const char *title, int w, int h)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", c->out, name);
    drst_plot_begin(c->gp, path, title, w, h);
}

/* Vertical dashed lines at the records where a new model started serving. */
static void gp_swaps(struct ctx *c)
{
    if (c->nswaps)
        fputs("set for [i=1:words(swapx)] arrow from word(swapx,i)+0, graph 0 to "
              "word(swapx,i)+0, graph 1 nohead lc rgb '#2ca02c' dt 2 lw 1.5\n",
              c->gp);
}

static double col_at(const obs_csv_t *t, size_t row, long col)
{
    return col < 0 ? NAN : t->num[row * t->ncols + (size_t)col];
}

static const char *text_at(const obs_csv_t *t, size_t row, long col)
{
    if (col < 0)
        return "";
    const char *s = t->text[row * t->ncols + (size_t)col];
    return s ? s : "";
}

/* Summary table + predictions and accuracy figures. */
static drst_err_t section_accuracy(struct ctx *c, size_t swaps, size_t triggers)
{
    const char *paths[2] = {"baseline (static)", "adaptive"};
    double acc[2][MAX_TAUS] = {{0}}, mape[2] = {0}, lastw[2][MAX_TAUS] = {{0}};
    size_t nm[2] = {0};
    size_t w0 = c->n > c->window ? c->n - c->window : 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct rec *r = &c->r[i];
        double p[2] = {r->base, r->adapt};
        for (int k = 0; k < 2; k++) {
            for (size_t t = 0; t < c->ntaus; t++) {
                int a = accurate(p[k], r->truth, c->taus[t]);
                acc[k][t] += a;
                if (i >= w0)
                    lastw[k][t] += a;
            }
            if (r->truth != 0 && isfinite(p[k])) {
                mape[k] += fabs(p[k] - r->truth) / fabs(r->truth);
                nm[k]++;
            }
        }
    }
    fprintf(c->md, "## Summary\n\n| | %s | %s |\n|---|---:|---:|\n", paths[0], paths[1]);
    for (size_t t = 0; t < c->ntaus; t++)
        fprintf(c->md, "| acc@%g | %.4f | %.4f |\n", c->taus[t], acc[0][t] / (double)c->n,
                acc[1][t] / (double)c->n);
    for (size_t t = 0; t < c->ntaus; t++)
        fprintf(c->md, "| acc@%g, last %zu records | %.4f | %.4f |\n", c->taus[t], c->n - w0,
                lastw[0][t] / (double)(c->n - w0), lastw[1][t] / (double)(c->n - w0));
    fprintf(c->md, "| MAPE %% | %.3f | %.3f |\n\n", nm[0] ? 100 * mape[0] / (double)nm[0] : NAN,
            nm[1] ? 100 * mape[1] / (double)nm[1] : NAN);
    double span = c->r[c->n - 1].ts - c->r[0].ts;
    fprintf(c->md,
            "| run | value |\n|---|---:|\n| records | %zu |\n| drift triggers | %zu |\n"
            "| model swaps | %zu |\n| wall span of the trace (s) | %.3f |\n",
            c->n, triggers, swaps, span);
    if (span > 0)
        fprintf(c->md, "| throughput (records/s) | %.1f |\n", (double)c->n / span);
    fprintf(c->md, "\nA prediction is accurate at τ when |prediction − truth| ≤ τ·|truth|. "
                   "Records are ordered by their trace time stamp across consumers.\n\n");

    /* data: idx truth base adapt, then per tau: cum base, cum adapt, win base, win adapt */
    FILE *f = open_data(c, "trace.dat");
    if (!f)
        return drst_seterrno(c->err, c->errlen, DRST_ERR_IO, errno, "cannot write %s/trace.dat",
                             c->datadir);
    double cum[2][MAX_TAUS] = {{0}}, win[2][MAX_TAUS] = {{0}};
    fprintf(f,
            "# record truth baseline adaptive [cum_base cum_adapt win_base win_adapt] per tau\n");
    for (size_t i = 0; i < c->n; i++) {
        const struct rec *r = &c->r[i];
        fprintf(f, "%zu %.9g %.9g %.9g", i, r->truth, r->base, r->adapt);
        for (size_t t = 0; t < c->ntaus; t++) {
            double p[2] = {r->base, r->adapt};
            for (int k = 0; k < 2; k++) {
                int a = accurate(p[k], r->truth, c->taus[t]);
                cum[k][t] += a;
                win[k][t] += a;
                if (i >= c->window) {
                    const struct rec *o = &c->r[i - c->window];
                    win[k][t] -= accurate(k ? o->adapt : o->base, o->truth, c->taus[t]);
                }
            }
            double wn = (double)(i + 1 < c->window ? i + 1 : c->window);
            fprintf(f, " %.6f %.6f %.6f %.6f", cum[0][t] / (double)(i + 1),
                    cum[1][t] / (double)(i + 1), win[0][t] / wn, win[1][t] / wn);
        }
        fputc('\n', f);
    }
    fclose(f);

    gp_png(c, "predictions.png", "Truth vs baseline vs adaptive prediction", 1100, 480);
    fputs("set xlabel 'record'\nset ylabel 'output rate'\n", c->gp);
    gp_swaps(c);
    fputs("plot ", c->gp);
    gp_data(c, "trace.dat");
    fputs(" u 1:2 w l lc rgb '#222222' lw 1.2 t 'truth', '' u 1:3 w l lc rgb '#d62728' t "
          "'baseline (static)', '' u 1:4 w l lc rgb '#1f77b4' t 'adaptive'",
          c->gp);
    if (swaps)
        fputs(", NaN w l lc rgb '#2ca02c' dt 2 lw 1.5 t 'model swap'", c->gp);
    fputs("\n", c->gp);

    static const char *const colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#17becf"};
    gp_png(c, "accuracy.png", "Accuracy at tau (solid: adaptive, dashed: baseline)", 1100, 700);
    fprintf(c->gp, "set multiplot layout 2,1\nset yrange [0:1.02]\nset xlabel 'record'\n"
                   "set ylabel 'cumulative accuracy'\nset title 'cumulative'\n");
    gp_swaps(c);
    fputs("plot ", c->gp);
    for (int pass = 0; pass < 2; pass++) {
        if (pass) {
            fprintf(c->gp, "set ylabel 'accuracy'\nset title 'windowed (last %zu records)'\nplot ",
                    c->window);
        }
        for (size_t t = 0; t < c->ntaus; t++) {
            int colb = 5 + (int)t * 4 + pass * 2, cola = colb + 1;
            if (t)
                fputs(", ", c->gp);
            if (t == 0)
                gp_data(c, "trace.dat");
            else
                fputs("''", c->gp);
            fprintf(c->gp,
                    " u 1:%d w l lc rgb '%s' lw 1.6 t 'adaptive {/Symbol t}=%g', '' u 1:%d w l "
                    "lc rgb '%s' dt 2 t 'baseline {/Symbol t}=%g'",
                    cola, colors[t % 8], c->taus[t], colb, colors[t % 8], c->taus[t]);
        }
        fputs("\n", c->gp);
    }
    fputs("unset multiplot\n", c->gp);
    fputs("## Predictions\n\n![truth vs predictions](predictions.png)\n\n"
          "## Accuracy over the stream\n\n![accuracy](accuracy.png)\n\n",
          c->md);
    return DRST_OK;
}

static drst_err_t section_drift(struct ctx *c, size_t *triggers)
{
    *triggers = 0;
    if (!c->drift)
        return DRST_OK;
    obs_csv_t *t = c->drift;
    long cr = drst_obs_csv_col(t, "records"), cs = drst_obs_csv_col(t, "score"),
         ct = drst_obs_csv_col(t, "tier"), cg = drst_obs_csv_col(t, "triggered");
    if (cr < 0 || cs < 0)
        return drst_seterr(c->err, c->errlen, DRST_ERR_SCHEMA,
                           "%s/drift.csv: needs columns records, score (tier, triggered)", c->in);
    FILE *f = open_data(c, "drift.dat"), *g = open_data(c, "triggers.dat");
    if (!f || !g) {
        if (f)
            fclose(f);
        if (g)
            fclose(g);
        return drst_seterrno(c->err, c->errlen, DRST_ERR_IO, errno, "cannot write drift data");
    }
    fprintf(c->md, "## Drift\n\n");
    double maxs = -INFINITY;
    for (size_t i = 0; i < t->nrows; i++) {
        double x = col_at(t, i, cr), s = col_at(t, i, cs);
        if (isnan(x) || isnan(s))
            continue;
        fprintf(f, "%.9g %.9g\n", x, s);
        if (s > maxs)
            maxs = s;
        if (col_at(t, i, cg) == 1) {
            if (*triggers == 0)
                fprintf(c->md, "| trigger | at record | score | tier |\n|---:|---:|---:|:---:|\n");
            (*triggers)++;
            fprintf(g, "%.9g %.9g\n", x, s);
            fprintf(c->md, "| %zu | %.0f | %.4f | %s |\n", *triggers, x, s, text_at(t, i, ct));
        }
    }
    fclose(f);
    fclose(g);
    fprintf(c->md, "%s%zu drift windows scored", *triggers ? "\n" : "", t->nrows);
    if (isfinite(maxs))
        fprintf(c->md, ", highest score %.4f", maxs);
    fprintf(c->md, ", %zu trigger(s).\n\n", *triggers);
    gp_png(c, "drift.png", "Drift score, tier thresholds and triggers", 1100, 420);
    fputs("set xlabel 'records'\nset ylabel 'drift score'\nset yrange [0:*]\n"
          "set offsets 0, 0, graph 0.08, 0\n",
          c->gp);
    gp_swaps(c);
    fputs("plot ", c->gp);
    gp_data(c, "drift.dat");
    fputs(" u 1:2 w l lc rgb '#1f77b4' t 'score'", c->gp);
    static const char *const tc[3] = {"#ff7f0e", "#d62728", "#7b0000"};
    for (int i = 0; i < 3; i++)
        if (c->have_thr[i])
            fprintf(c->gp, ", %.9g w l lc rgb '%s' dt 4 lw 1.5 t 'tier %c threshold'", c->thr[i],
                    tc[i], 'A' + i);
    if (*triggers) {
        fputs(", ", c->gp);
        gp_data(c, "triggers.dat");
        fputs(" u 1:2 w p pt 7 ps 1.4 lc rgb '#d62728' t 'trigger'", c->gp);
    }
    if (c->nswaps)
        fputs(", NaN w l lc rgb '#2ca02c' dt 2 lw 1.5 t 'model swap'", c->gp);
    fputs("\n", c->gp);
    fputs("![drift](drift.png)\n\n", c->md);
    return DRST_OK;
}

static void md_cell(FILE *md, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", md);
        else
            fputc(*s == '\n' || *s == '\r' ? ' ' : *s, md);
    }
}

static size_t section_events(struct ctx *c, char *swapx, size_t swapxlen)
{
    size_t swaps = 0, shown = 0;
    swapx[0] = 0;
    if (!c->events)
        return 0;
    obs_csv_t *t = c->events;
    long cts = drst_obs_csv_col(t, "ts"), cr = drst_obs_csv_col(t, "records"),
         ck = drst_obs_csv_col(t, "kind"), cv = drst_obs_csv_col(t, "version"),
         cd = drst_obs_csv_col(t, "detail");
    fprintf(c->md,
            "## Events\n\n| ts | record | kind | version | detail |\n|---:|---:|---|---|---|\n");
    size_t used = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        const char *kind = text_at(t, i, ck);
        if (!strcmp(kind, "swap")) {
            swaps++;
            double x = col_at(t, i, cr);
            if (!isnan(x) && used + 32 < swapxlen)
                used +=
                    (size_t)snprintf(swapx + used, swapxlen - used, "%s%.0f", used ? " " : "", x);
        }
        if (shown++ < MAX_EVENTS) {
            char ver[64];
            double v = col_at(t, i, cv);
            if (isnan(v))
                snprintf(ver, sizeof(ver), "%s", text_at(t, i, cv));
            else
                snprintf(ver, sizeof(ver), "%.0f", v);
            fprintf(c->md, "| %.3f | %.0f | ", col_at(t, i, cts), col_at(t, i, cr));
            md_cell(c->md, kind);
            fputs(" | ", c->md);
            md_cell(c->md, ver);
            fputs(" | ", c->md);
            double dn = col_at(t, i, cd);
            if (isnan(dn))
                md_cell(c->md, text_at(t, i, cd));
            else
                fprintf(c->md, "%g", dn);
            fputs(" |\n", c->md);
        }
    }
    if (shown > MAX_EVENTS)
        fprintf(c->md, "\n(%zu more events in events.csv)\n", shown - MAX_EVENTS);
    fprintf(c->md, "\n");
    return swaps;
}

static drst_err_t section_throughput(struct ctx *c)
{
    double t0 = c->r[0].ts, span = c->r[c->n - 1].ts - t0;
    FILE *f = open_data(c, "throughput.dat");
    if (!f)
        return drst_seterrno(c->err, c->errlen, DRST_ERR_IO, errno, "cannot write throughput");
    double w = span >= 20 ? 1.0 : (span > 0 ? span / 20 : 1.0);
    size_t nb = (size_t)ceil(span / w), i = 0;
    if (nb == 0)
        nb = 1;
    for (size_t b = 0; b < nb; b++) {
        size_t cnt = 0;
        while (i < c->n && (c->r[i].ts - t0) < (double)(b + 1) * w) {
            cnt++;
            i++;
        }
        if (b == nb - 1)
            cnt += c->n - i;
        fprintf(f, "%.6f %.6f\n", ((double)b + 0.5) * w, (double)cnt / w);
    }
    fclose(f);
    fprintf(c->md, "## Throughput and latency\n\n");
    int lat = 0;
    if (c->has_lat) {
        double *v = malloc(c->n * sizeof(double));
        if (!v)
            return drst_seterr(c->err, c->errlen, DRST_ERR_NOMEM, "out of memory");
        size_t m = 0;
        FILE *g = open_data(c, "latency.dat");
        if (!g) {
            free(v);
            return drst_seterrno(c->err, c->errlen, DRST_ERR_IO, errno, "cannot write latency");
        }
        for (size_t k = 0; k < c->n; k++) {
            if (isnan(c->r[k].lat))
                continue;
            v[m++] = c->r[k].lat;
            fprintf(g, "%zu %.9g\n", k, c->r[k].lat * 1e3);
        }
        fclose(g);
        qsort(v, m, sizeof(double), cmp_dbl);
        if (m) {
            lat = 1;
            fprintf(c->md,
                    "| per-record latency (ms) | p50 | p95 | p99 | max |\n"
                    "|---|---:|---:|---:|---:|\n| receive → prediction | %.4f | %.4f | "
                    "%.4f | %.4f |\n\n",
                    percentile(v, m, 50) * 1e3, percentile(v, m, 95) * 1e3,
                    percentile(v, m, 99) * 1e3, v[m - 1] * 1e3);
        }
        free(v);
    }
    gp_png(c, "throughput.png", "Throughput and per-record latency", 1100, lat ? 700 : 380);
    if (lat)
        fputs("set multiplot layout 2,1\n", c->gp);
    fprintf(c->gp,
            "set xlabel 'seconds since the first record'\nset ylabel 'records/s'\n"
            "set title 'throughput (%g s bins)'\nset yrange [0:*]\nplot ",
            w);
    gp_data(c, "throughput.dat");
    fputs(" u 1:2 w steps lc rgb '#1f77b4' lw 1.5 t 'records/s'\n", c->gp);
    if (lat) {
        fputs("set title 'per-record latency'\nset xlabel 'record'\nset ylabel 'ms'\n"
              "set logscale y\nset yrange [*:*]\nplot ",
              c->gp);
        gp_data(c, "latency.dat");
        fputs(" u 1:2 w p pt 7 ps 0.3 lc rgb '#ff7f0e' t 'latency'\nunset logscale y\n"
              "unset multiplot\n",
              c->gp);
    }
    fputs("![throughput and latency](throughput.png)\n\n", c->md);
    return DRST_OK;
}

static drst_err_t section_resources(struct ctx *c)
{
    if (!c->res)
        return DRST_OK;
    obs_csv_t *t = c->res;
    long ct = drst_obs_csv_col(t, "t"), cc = drst_obs_csv_col(t, "component"),
         cu = drst_obs_csv_col(t, "cpu_s"), cr = drst_obs_csv_col(t, "rss_bytes");
    if (ct < 0 || cc < 0 || cu < 0 || cr < 0)
        return drst_seterr(c->err, c->errlen, DRST_ERR_SCHEMA,
                           "%s/resources.csv: needs columns t, component, cpu_s, rss_bytes", c->in);
    /* components in order of first appearance */
    const char *comp[64];
    size_t nc = 0;
    double tmin = INFINITY;
    for (size_t i = 0; i < t->nrows; i++) {
        const char *n = text_at(t, i, cc);
        double tv = col_at(t, i, ct);
        if (!*n || isnan(tv))
            continue;
        if (tv < tmin)
            tmin = tv;
        size_t k;
        for (k = 0; k < nc; k++)
            if (!strcmp(comp[k], n))
                break;
        if (k == nc && nc < 64)
            comp[nc++] = n;
    }
    if (nc == 0)
        return DRST_OK;
    fprintf(c->md, "## CPU and memory per component\n\n| component | samples | CPU (s) | mean CPU "
                   "%% | peak RSS (MiB) |\n|---|---:|---:|---:|---:|\n");
    gp_png(c, "resources.png", "CPU and memory per component", 1100, 700);
    fputs("set multiplot layout 2,1\nset xlabel 'seconds'\nset ylabel 'CPU %'\nset title 'CPU'\n"
          "set yrange [0:*]\n",
          c->gp);
    for (size_t k = 0; k < nc; k++) {
        char fname[64];
        snprintf(fname, sizeof(fname), "res_%zu.dat", k);
        FILE *f = open_data(c, fname);
        if (!f)
            return drst_seterrno(c->err, c->errlen, DRST_ERR_IO, errno, "cannot write %s", fname);
        size_t ns = 0;
        double t0 = NAN, c0 = NAN, tp = NAN, cp = NAN, peak = 0;
        for (size_t i = 0; i < t->nrows; i++) {
            if (strcmp(text_at(t, i, cc), comp[k]))
                continue;
            double tv = col_at(t, i, ct), cv = col_at(t, i, cu), rv = col_at(t, i, cr);
            if (isnan(tv) || isnan(cv))
                continue;
            if (ns == 0) {
                t0 = tv;
                c0 = cv;
            } else if (tv > tp) {
                fprintf(f, "%.6f %.6f %.6f\n", tv - tmin, 100 * (cv - cp) / (tv - tp),
                        rv / 1048576.0);
            }
            if (rv > peak)
                peak = rv;
            ns++;
            tp = tv;
            cp = cv;
        }
        fclose(f);
        double dt = tp - t0;
        fprintf(c->md, "| ");
        md_cell(c->md, comp[k]);
        fprintf(c->md, " | %zu | %.3f | %.2f | %.1f |\n", ns, cp - c0,
                dt > 0 ? 100 * (cp - c0) / dt : NAN, peak / 1048576.0);
    }
    for (int panel = 0; panel < 2; panel++) {
        if (panel)
            fputs("set ylabel 'RSS (MiB)'\nset title 'resident memory'\n", c->gp);
        fputs("plot ", c->gp);
        for (size_t k = 0; k < nc; k++) {
            char fname[64];
            snprintf(fname, sizeof(fname), "res_%zu.dat", k);
            fputs(k ? ", " : "", c->gp);
            gp_data(c, fname);
            fprintf(c->gp, " u 1:%d w l lw 1.4 t ", panel ? 3 : 2);
            drst_plot_quote(c->gp, comp[k]);
            fputs(" noenhanced", c->gp);
        }
        fputs("\n", c->gp);
    }
    fputs("unset multiplot\n", c->gp);
    fputs("\nCPU is user+system time of the component's threads; RSS is per process (threads "
          "share it).\n\n![resources](resources.png)\n\n",
          c->md);
    return DRST_OK;
}

static void section_metrics(struct ctx *c)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/metrics.jsonl", c->in);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    json_t *best = NULL;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)n, 0, &je);
        if (!j || !json_is_object(json_object_get(j, "metrics"))) {
            json_decref(j);
            (void)drst_diag_reject(c->diag, path, lineno, line, (size_t)n, NULL, 0,
                                   "not a metrics snapshot object");
            continue;
        }
        json_decref(best);
        best = j;
    }
    free(line);
    fclose(f);
    if (!best)
        return;
    json_t *m = json_object_get(best, "metrics");
    fprintf(c->md,
            "## Final metrics\n\nLast snapshot of metrics.jsonl (ts %.3f).\n\n"
            "| series | value |\n|---|---:|\n",
            json_number_value(json_object_get(best, "ts")));
    const char *k;
    json_t *v;
    size_t shown = 0;
    json_object_foreach(m, k, v)
    {
        if (shown++ >= 200)
            break;
        fputs("| `", c->md);
        md_cell(c->md, k);
        if (json_is_number(v))
            fprintf(c->md, "` | %.6g |\n", json_number_value(v));
        else
            fputs("` | - |\n", c->md);
    }
    fputs("\n", c->md);
    json_decref(best);
}

/* mkdir -p: create every missing component of `path`. */
static int mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char saved = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) && errno != EEXIST)
            return -1;
        buf[i] = saved;
    }
    return 0;
}

drst_err_t drst_report_write(const drst_report_opts_t *o, drst_report_info_t *info,
                             drst_diag_t *diag, char *err, size_t errlen)
{
    struct ctx c;
    memset(&c, 0, sizeof(c));
    drst_report_info_t dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof(*info));
    if (!o || !o->out_dir || !*o->out_dir)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "report: no output directory");
    drst_diag_t localdiag = {0};
    c.o = o;
    c.out = o->out_dir;
    c.in = o->in_dir && *o->in_dir ? o->in_dir : o->out_dir;
    c.diag = diag ? diag : &localdiag;
    c.err = err;
    c.errlen = errlen;
    c.window = o->window ? o->window : 100;
    static const double dtaus[] = {0.05, 0.1, 0.2};
    const double *taus = o->taus ? o->taus : dtaus;
    c.ntaus = o->taus ? o->ntaus : 3;
    if (c.ntaus == 0 || c.ntaus > MAX_TAUS)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "report: 1..%d tolerances", MAX_TAUS);
    for (size_t i = 0; i < c.ntaus; i++) {
        if (!(taus[i] >= 0) || !isfinite(taus[i]))
            return drst_seterr(err, errlen, DRST_ERR_INVAL, "report: bad tolerance %g", taus[i]);
        c.taus[i] = taus[i];
    }
    uint64_t rej0 = c.diag->rejected;
    drst_err_t rc;
    char path[4200];
    if ((rc = load_traces(&c)))
        goto out;
    if ((rc = optional_csv(&c, "drift.csv", &c.drift)) ||
        (rc = optional_csv(&c, "events.csv", &c.events)) ||
        (rc = optional_csv(&c, "resources.csv", &c.res)))
        goto out;
    load_runjson(&c);

    if (mkdirs(c.out)) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", c.out);
        goto out;
    }
    snprintf(c.datadir, sizeof(c.datadir), "%s/data", c.out);
    if (mkdir(c.datadir, 0777) && errno != EEXIST) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", c.datadir);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/report.md", c.out);
    c.md = fopen(path, "w");
    snprintf(path, sizeof(path), "%s/plots.gp", c.datadir);
    c.gp = fopen(path, "w");
    if (!c.md || !c.gp) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write the report in '%s'",
                           c.out);
        goto out;
    }
    fprintf(c.md, "# %s\n\nMade by `drst report` from the run files in `%s`: %zu records.\n\n",
            o->title ? o->title : "drst run report", c.in, c.n);
    char swapx[16384];
    size_t swaps = 0, triggers = 0;
    /* events first (to know the swap positions), but printed after the figures */
    FILE *md_main = c.md;
    char *evbuf = NULL;
    size_t evlen = 0;
    c.md = open_memstream(&evbuf, &evlen);
    if (!c.md) {
        c.md = md_main;
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        goto out;
    }
    swaps = section_events(&c, swapx, sizeof(swapx));
    c.nswaps = swaps;
    fclose(c.md);
    c.md = md_main;
    fprintf(c.gp, "swapx = '%s'\n", swapx);
    char *drbuf = NULL;
    size_t drlen = 0;
    c.md = open_memstream(&drbuf, &drlen);
    if (!c.md) {
        c.md = md_main;
        free(evbuf);
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = section_drift(&c, &triggers);
    fclose(c.md);
    c.md = md_main;
    if (!rc)
        rc = section_accuracy(&c, swaps, triggers);
    if (!rc && drbuf)
        fwrite(drbuf, 1, drlen, c.md);
    if (!rc && evbuf)
        fwrite(evbuf, 1, evlen, c.md);
    free(evbuf);
    free(drbuf);
    if (!rc)
        rc = section_throughput(&c);
    if (!rc)
        rc = section_resources(&c);
    if (rc)
        goto out;
    section_metrics(&c);
    fclose(c.gp);
    c.gp = NULL;

    int missing = 0;
    char gperr[DRST_ERRLEN], log[4200];
    snprintf(path, sizeof(path), "%s/plots.gp", c.datadir);
    snprintf(log, sizeof(log), "%s/gnuplot.log", c.datadir);
    drst_err_t prc = drst_plot_run(o->gnuplot ? o->gnuplot : "gnuplot", path, log, &missing, gperr,
                                   sizeof(gperr));
    info->gnuplot_missing = missing;
    if (prc && !missing) {
        rc = drst_seterr(err, errlen, prc, "%s", gperr);
        goto out;
    }
    if (missing)
        fprintf(c.md,
                "\n_Images not drawn: %s. Install gnuplot-nox and run `drst report` "
                "again; the plotted data is in data/._\n",
                gperr);
    const char *imgs[] = {"predictions.png", "accuracy.png", "drift.png", "throughput.png",
                          "resources.png"};
    for (size_t i = 0; i < sizeof(imgs) / sizeof(imgs[0]); i++) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", c.out, imgs[i]);
        if (!missing && stat(path, &st) == 0 && st.st_size > 0)
            info->images++;
    }
    fprintf(c.md, "## Files\n\nThe data behind every figure and the gnuplot script are in "
                  "`data/` (re-draw with `gnuplot data/plots.gp`).\n");
    if (fflush(c.md) || ferror(c.md))
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write report.md");
out:
    info->records = c.n;
    info->rejected = c.diag->rejected - rej0;
    if (c.md)
        fclose(c.md);
    if (c.gp)
        fclose(c.gp);
    free(c.r);
    drst_obs_csv_free(c.drift);
    drst_obs_csv_free(c.events);
    drst_obs_csv_free(c.res);
    return rc;
}
