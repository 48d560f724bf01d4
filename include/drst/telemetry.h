/**
 * @file telemetry.h
 * @brief Telemetry plane: CSV tables and the raw-telemetry dataset builders.
 */
#ifndef DRST_TELEMETRY_H
#define DRST_TELEMETRY_H

#include <stdio.h>

#include "drst/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A dense, named table of doubles (row-major).
 *
 * Deliberately a transparent struct: models, inspect and benchmarks read the
 * matrix directly. Empty or non-numeric cells hold NaN; the per-column
 * counters say which was which. Everything it points to is owned by the
 * table and released by drst_table_free().
 */
typedef struct drst_table {
    size_t nrows;
    size_t ncols;
    char **names;      /**< ncols column names (header), NUL-terminated */
    double *data;      /**< nrows * ncols values, row-major; NaN = missing */
    uint64_t *n_empty; /**< per column: empty cells */
    uint64_t *n_text;  /**< per column: non-empty cells that are not numbers */
    size_t cap_rows;   /**< allocated rows (internal) */
} drst_table_t;

/** @brief Options of drst_table_read_csv(); zero-initialise for defaults. */
typedef struct drst_csv_opts {
    char delim;      /**< field delimiter, default ',' */
    int no_header;   /**< first line is data; columns are named c0, c1, ... */
    size_t max_line; /**< longest accepted line in bytes; default 1 MiB */
} drst_csv_opts_t;

/**
 * @brief Create an empty table with the given column names (copied).
 * @return the table (free with drst_table_free()) or NULL (message in err).
 */
drst_table_t *drst_table_new(const char *const *names, size_t ncols, char *err, size_t errlen);

/** @brief Free a table; NULL is a no-op. */
void drst_table_free(drst_table_t *t);

/**
 * @brief Append one row of ncols values (copied). Grows geometrically.
 * NaN values count as empty cells (n_empty).
 */
drst_err_t drst_table_append(drst_table_t *t, const double *row, char *err, size_t errlen) DRST_WUR;

/** @brief Index of the column named `name`, or -1. */
long drst_table_col(const drst_table_t *t, const char *name);

/** @brief Pointer to cell (row, col); no bounds check beyond an assert-free contract. */
static inline double drst_table_at(const drst_table_t *t, size_t row, size_t col)
{
    return t->data[row * t->ncols + col];
}

/**
 * @brief Read a CSV file (RFC 4180 quoting, CRLF or LF) into a table.
 *
 * Rows with a different number of fields than the header are rejected
 * through `diag` (file:line + reason) and the rest of the file is used.
 * Cells that are empty or not numbers become NaN and are counted per
 * column. Numbers parse exactly as strtod() would.
 *
 * @param path  file to read ("-" is not accepted here)
 * @param opts  may be NULL for defaults
 * @param out   receives a new table owned by the caller, or NULL on error
 * @param diag  may be NULL; strict mode turns a rejected row into DRST_ERR_STRICT
 * @return DRST_OK, DRST_ERR_IO (cannot open/read), DRST_ERR_EMPTY (no header),
 *         DRST_ERR_STRICT, DRST_ERR_NOMEM.
 */
drst_err_t drst_table_read_csv(const char *path, const drst_csv_opts_t *opts, drst_table_t **out,
                               drst_diag_t *diag, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Parse a CSV held in memory (same rules as drst_table_read_csv();
 * `name` is used in diagnostics). The buffer need not be NUL-terminated.
 */
drst_err_t drst_table_parse_csv(const char *buf, size_t len, const char *name,
                                const drst_csv_opts_t *opts, drst_table_t **out, drst_diag_t *diag,
                                char *err, size_t errlen) DRST_WUR;

/**
 * @brief Write a table as CSV: header, then rows; NaN cells are written empty,
 * numbers with the shortest representation that reads back to the same double
 * (%.17g when needed).
 */
drst_err_t drst_table_write_csv(const drst_table_t *t, const char *path, char *err,
                                size_t errlen) DRST_WUR;

/**
 * @brief Same as drst_table_write_csv() on an open stream (not closed; flushed).
 * `name` is only used in error messages.
 */
drst_err_t drst_table_write_csv_fp(const drst_table_t *t, FILE *f, const char *name, char *err,
                                   size_t errlen) DRST_WUR;

/**
 * @brief Format `v` with the shortest of %.15g/%.16g/%.17g that reads back
 * (strtod) to the same double; NaN gives "". @return the length written.
 */
size_t drst_format_double(double v, char *buf, size_t len);

/**
 * @brief Parse a decimal floating-point number from [s, end) exactly as
 * strtod() would, faster for common inputs. Leading/trailing blanks are
 * allowed. @return 1 and *out set on success, 0 if the text is not a number.
 */
int drst_parse_double(const char *s, const char *end, double *out);

/* ---- dataset builders (docs/dataset.md holds the rules) ---- */

/** @brief DRST's chain order, used by default to order VNF columns. */
#define DRST_DEFAULT_VNF_ORDER "firewall,nf_router,ndpi_stats,payload_scan,bridge"

/** @brief Options of the dataset builders; zero-initialise for defaults. */
typedef struct drst_dataset_opts {
    /** comma-separated VNF order (NULL: DRST_DEFAULT_VNF_ORDER); VNFs not
     *  listed follow in alphabetical order. Only orders, never discovers. */
    const char *vnf_order;
    /** PCM only: hours to subtract from PCM's local Date+Time to get UTC;
     *  used when pcm_utc_offset_set, else detected (see docs/dataset.md). */
    double pcm_utc_offset;
    int pcm_utc_offset_set;
} drst_dataset_opts_t;

/**
 * @brief Build the perf-branch dataset from DRST raw bundles, concatenated
 * in the given order: columns input_rate, output_rate, latency, then
 * `<vnf>_<event>` event-major, VNF-minor.
 *
 * @param dirs   ndirs bundle directories (not owned)
 * @param out    receives a new table owned by the caller (NULL on error)
 * @param diag   receives rejected lines and warnings (may be NULL)
 * @return DRST_OK; DRST_ERR_NOTFOUND/DRST_ERR_IO (a bundle or required file
 *         missing or unreadable, named in err); DRST_ERR_EMPTY (a bundle
 *         without perf-stat files); DRST_ERR_STRICT; DRST_ERR_NOMEM.
 */
drst_err_t drst_dataset_build_perf(const char *const *dirs, size_t ndirs,
                                   const drst_dataset_opts_t *opts, drst_table_t **out,
                                   drst_diag_t *diag, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Build the PCM-branch dataset of one raw bundle: one row per second
 * (column `time`, UTC epoch seconds), input_rate, output_rate, latency, then
 * the flattened PCM columns. Same return codes as drst_dataset_build_perf().
 */
drst_err_t drst_dataset_build_pcm(const char *dir, const drst_dataset_opts_t *opts,
                                  drst_table_t **out, drst_diag_t *diag, char *err,
                                  size_t errlen) DRST_WUR;

/** @brief Kind of a column as seen by drst_table_describe(). */
typedef enum drst_coltype {
    DRST_COL_NUMERIC = 0, /**< every non-empty cell is a number */
    DRST_COL_TEXT = 1,    /**< every non-empty cell is text */
    DRST_COL_MIXED = 2,   /**< both numbers and text */
    DRST_COL_EMPTY = 3    /**< no non-empty cell */
} drst_coltype_t;

/** @brief Summary of one column. min/median/max are NaN without numbers. */
typedef struct drst_colstats {
    drst_coltype_t type;
    uint64_t n_numeric, n_empty, n_text, n_nan; /**< n_nan: numeric NaN ("nan") cells */
    double min, median, max;
    int constant; /**< all numeric cells equal (and at least one) */
} drst_colstats_t;

/** @brief Short name of a column type ("numeric", "text", "mixed", "empty"). */
const char *drst_coltype_name(drst_coltype_t t);

/**
 * @brief Per-column statistics of a table.
 * @param stats caller-owned array of t->ncols entries, filled on success
 * @return DRST_OK or DRST_ERR_NOMEM.
 */
drst_err_t drst_table_describe(const drst_table_t *t, drst_colstats_t *stats, char *err,
                               size_t errlen) DRST_WUR;

#ifdef __cplusplus
}
#endif
#endif /* DRST_TELEMETRY_H */
