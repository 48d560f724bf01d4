/**
 * @file telemetry.h
 * @brief Telemetry plane: CSV tables and the raw-telemetry dataset builders.
 */
#ifndef DRST_TELEMETRY_H
#define DRST_TELEMETRY_H

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
    char **names;        /**< ncols column names (header), NUL-terminated */
    double *data;        /**< nrows * ncols values, row-major; NaN = missing */
    uint64_t *n_empty;   /**< per column: empty cells */
    uint64_t *n_text;    /**< per column: non-empty cells that are not numbers */
    size_t cap_rows;     /**< allocated rows (internal) */
} drst_table_t;

/** @brief Options of drst_table_read_csv(); zero-initialise for defaults. */
typedef struct drst_csv_opts {
    char delim;        /**< field delimiter, default ',' */
    int no_header;     /**< first line is data; columns are named c0, c1, ... */
    size_t max_line;   /**< longest accepted line in bytes; default 1 MiB */
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
 * @brief Parse a decimal floating-point number from [s, end) exactly as
 * strtod() would, faster for common inputs. Leading/trailing blanks are
 * allowed. @return 1 and *out set on success, 0 if the text is not a number.
 */
int drst_parse_double(const char *s, const char *end, double *out);

#ifdef __cplusplus
}
#endif
#endif /* DRST_TELEMETRY_H */
