/* Parsers of DRST's raw telemetry files (internal to the telemetry plane;
 * the public entry points are the dataset builders in drst/telemetry.h).
 * Every parser takes a buffer that need not be NUL-terminated, reports each
 * unusable line through `diag` (file:line + reason) and keeps going. */
#ifndef DRST_TELEMETRY_RAW_INT_H
#define DRST_TELEMETRY_RAW_INT_H

#include "drst/telemetry.h"

/** @brief Read a whole file into a new malloc'ed buffer (caller frees). */
drst_err_t drst_read_file(const char *path, char **buf, size_t *len, char *err,
                          size_t errlen) DRST_WUR;

/** @brief One `perf stat -x,` interval file: nint rows x nev events. */
typedef struct drst_perf {
    size_t nint;   /**< intervals (rows), in file order */
    double *ts;    /**< nint interval timestamps */
    size_t nev;    /**< events, in order of first appearance */
    char **events; /**< nev event names */
    double *vals;  /**< nint * nev, row-major; NaN = not counted / absent */
} drst_perf_t;

/** @brief 1 if the buffer looks like perf-stat -x, output (see docs/dataset.md). */
int drst_perf_detect(const char *buf, size_t len);
drst_err_t drst_perf_parse(const char *buf, size_t len, const char *name, drst_perf_t *out,
                           drst_diag_t *diag, char *err, size_t errlen) DRST_WUR;
void drst_perf_release(drst_perf_t *p);

/** @brief A value series with optional times (t[i] NaN when unknown). */
typedef struct drst_series {
    size_t n;
    double *t;
    double *v;
    int usec; /**< latency only: values were microseconds and were divided by 1000 */
    const char
        *column; /**< rx/tx only: which column was used ("Mbit", "PacketRate", "5th field") */
} drst_series_t;

/** @brief tx_stats/rx_stats: Mbit (else PacketRate) by header, else 5th field. */
drst_err_t drst_rxtx_parse(const char *buf, size_t len, const char *name, drst_series_t *out,
                           drst_diag_t *diag, char *err, size_t errlen) DRST_WUR;
/** @brief latency: `value`, `index value` or `index,value` per line; µs -> ms. */
drst_err_t drst_latency_parse(const char *buf, size_t len, const char *name, drst_series_t *out,
                              drst_diag_t *diag, char *err, size_t errlen) DRST_WUR;
void drst_series_release(drst_series_t *s);

/**
 * @brief Intel PCM CSV with a two-row header (group row, metric row).
 * The table's column 0 is "__time" (Date+Time read as UTC seconds); the
 * other columns are `<prefix>_<group>_<metric>`, normalised.
 */
drst_err_t drst_pcm_parse(const char *buf, size_t len, const char *name, const char *prefix,
                          drst_table_t **out, drst_diag_t *diag, char *err, size_t errlen) DRST_WUR;
/**
 * @brief pcm-pcie.csv: blocks of `Skt,...` header + rows ending in
 * (Total)/(Miss)/(Hit). One row per block; column 0 is "__block"; columns
 * `<prefix>_skt<S>_<metric>_total|miss` ((Hit) rows are Total - Miss).
 */
drst_err_t drst_pcie_parse(const char *buf, size_t len, const char *name, const char *prefix,
                           drst_table_t **out, drst_diag_t *diag, char *err,
                           size_t errlen) DRST_WUR;

/** @brief Normalise a column-name part: runs of non-alnum -> '_', '%' -> "pct". */
void drst_name_normalise(const char *in, size_t n, char *out, size_t outlen);

/** @brief 1 if the line is a git merge-conflict marker line. */
int drst_is_conflict_marker(const char *s, size_t n);

#endif
