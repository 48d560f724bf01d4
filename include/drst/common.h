/**
 * @file common.h
 * @brief Error codes, diagnostics and version of libdrst.
 *
 * Conventions used by every libdrst function (see docs/CONTRIBUTING.md):
 *  - functions that can fail return drst_err_t (DRST_OK == 0) and take an
 *    optional caller-owned error buffer (`char *err, size_t errlen`) that
 *    receives a one-line human message with context (file, line, key...);
 *  - constructors (`_new`, `_open`) return NULL on failure and fill the
 *    buffer; `_free(NULL)` is a no-op;
 *  - the library never prints, exits or aborts.
 */
#ifndef DRST_COMMON_H
#define DRST_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DRST_WUR          __attribute__((warn_unused_result))
#define DRST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DRST_WUR
#define DRST_PRINTF(f, a)
#endif

#define DRST_VERSION_MAJOR  0
#define DRST_VERSION_MINOR  1
#define DRST_VERSION_PATCH  0
#define DRST_VERSION_STRING "0.1.0"

/** Recommended size of a caller-supplied error buffer. */
#define DRST_ERRLEN 512

/**
 * @brief Status codes. Append-only: never renumber or remove a code.
 */
typedef enum drst_err {
    DRST_OK = 0,               /**< success */
    DRST_ERR_NOMEM = 1,        /**< out of memory */
    DRST_ERR_INVAL = 2,        /**< invalid argument or option value */
    DRST_ERR_IO = 3,           /**< read/write/open failed (errno detail in buffer) */
    DRST_ERR_NOTFOUND = 4,     /**< file, key, column or record not found */
    DRST_ERR_PARSE = 5,        /**< input could not be parsed */
    DRST_ERR_FORMAT = 6,       /**< corrupt, truncated or wrong-version file */
    DRST_ERR_SCHEMA = 7,       /**< feature/column schema mismatch */
    DRST_ERR_EMPTY = 8,        /**< no usable data */
    DRST_ERR_STRICT = 9,       /**< rejected input under strict mode */
    DRST_ERR_TIMEOUT = 10,     /**< operation timed out */
    DRST_ERR_TRANSPORT = 11,   /**< stream transport failure (Kafka, ...) */
    DRST_ERR_STATE = 12,       /**< operation not valid in the current state */
    DRST_ERR_UNSUPPORTED = 13, /**< feature not supported by this build/backend */
    DRST_ERR_TOOBIG = 14,      /**< input exceeds a configured limit */
    DRST_ERR_NUMERIC = 15,     /**< numerical failure (NaN, singular matrix) */
    DRST_ERR_BUSY = 16,        /**< resource locked or held by someone else */
    DRST_ERR_EOF = 17,         /**< end of stream */
    DRST_ERR__COUNT            /**< not a code: number of codes */
} drst_err_t;

/**
 * @brief Short static description of a status code ("out of memory", ...).
 * @return a string that is never NULL, valid for the life of the program.
 */
const char *drst_strerror(drst_err_t err);

/** @brief The library version string, e.g. "0.1.0". */
const char *drst_version(void);

/**
 * @brief Receiver of per-line diagnostics from parsers.
 *
 * Parsers of outside input report each line they cannot use instead of
 * failing the whole file. `text` is the offending line (possibly cut, not
 * NUL-terminated beyond `textlen`), so a caller can keep it in a dead-letter
 * file; `text` is NULL for warnings. `line` is 1-based; 0 means "whole
 * file". Called on the parsing thread.
 */
typedef enum drst_diag_kind {
    DRST_DIAG_REJECT = 0, /**< the line/record was not used */
    DRST_DIAG_WARN = 1    /**< used, but something was adjusted (padding, truncation...) */
} drst_diag_kind_t;

typedef void (*drst_diag_fn)(void *opaque, drst_diag_kind_t kind, const char *file, uint64_t line,
                             const char *reason, const char *text, size_t textlen);

/**
 * @brief A caller-owned diagnostics sink: a callback plus counters.
 *
 * Zero-initialise it (`drst_diag_t d = {0};`) to count silently. With
 * `strict` set, the first rejected line makes the parser fail with
 * DRST_ERR_STRICT (the message names file and line).
 */
typedef struct drst_diag {
    drst_diag_fn fn;   /**< optional callback, may be NULL */
    void *opaque;      /**< passed to fn */
    int strict;        /**< fail on the first rejected line */
    uint64_t rejected; /**< lines/records rejected so far (incremented by parsers) */
    uint64_t warnings; /**< non-fatal notes (e.g. padded or truncated series) */
} drst_diag_t;

#ifdef __cplusplus
}
#endif
#endif /* DRST_COMMON_H */
