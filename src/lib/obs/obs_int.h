/* Internals of the observability module shared by its files and unit tests.
 * Not public API. */
#ifndef DRST_OBS_INT_H
#define DRST_OBS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "drst/common.h"

/** 1 if `s` is a valid metric name (label=0) or label name (label=1). */
int drst_obs_valid_name(const char *s, int label);

/** Format a sample value as Prometheus does: NaN, +Inf, -Inf, integers
 * without exponent, otherwise the shortest round-tripping %g. */
void drst_obs_fmt_double(char *buf, size_t len, double v);

/** Parse one /proc/.../stat line: utime+stime in clock ticks (fields 14, 15,
 * counted after the last ')' so a comm with spaces or parentheses is fine).
 * @return 0 on success, -1 if the line is malformed. */
int drst_obs_parse_stat(const char *line, size_t len, uint64_t *ticks);

/** A small table read from one of the run's CSV files (docs/formats.md). */
typedef struct obs_csv {
    size_t nrows, ncols;
    char **names; /* ncols header names */
    double *num;  /* nrows*ncols; NaN if empty or not a number */
    char **text;  /* nrows*ncols raw cells (for text columns such as tier) */
} obs_csv_t;

/** Parse CSV text (header line + rows, no quoting needed by our formats but
 * "quoted" cells are accepted). Rows with the wrong number of fields are
 * rejected to diag. */
drst_err_t drst_obs_csv_parse(const char *buf, size_t len, const char *name, obs_csv_t **out,
                              drst_diag_t *diag, char *err, size_t errlen);
void drst_obs_csv_free(obs_csv_t *t);
/** Column index by name, or -1. */
long drst_obs_csv_col(const obs_csv_t *t, const char *name);

#endif

/* ---- plot.c: gnuplot scripts (pngcairo) ---- */
#include <stdio.h>

/** Start a figure: terminal, output file (in the script's directory), title. */
void drst_plot_begin(FILE *gp, const char *png, const char *title, int w, int h);
/** Run `gnuplot script` with cwd-independent paths; log to logpath.
 * @return DRST_OK, DRST_ERR_UNSUPPORTED (*missing=1: gnuplot not found) or
 *         DRST_ERR_IO (gnuplot failed: see the log). */
drst_err_t drst_plot_run(const char *gnuplot, const char *script, const char *logpath, int *missing,
                         char *err, size_t errlen);
/** Quote a path for a gnuplot string literal (single quotes). */
void drst_plot_quote(FILE *gp, const char *s);
