/* Internal helpers for error buffers and diagnostics. Not public API. */
#ifndef DRST_ERROR_INT_H
#define DRST_ERROR_INT_H

#include <stdarg.h>
#include "drst/common.h"

/**
 * @brief Format a message into the optional error buffer and return `code`,
 * so that `return drst_seterr(err, errlen, DRST_ERR_IO, "...", ...);` reads
 * naturally. A NULL or zero-length buffer is allowed.
 */
drst_err_t drst_seterr(char *err, size_t errlen, drst_err_t code, const char *fmt, ...)
    DRST_PRINTF(4, 5);

/** @brief Like drst_seterr() but appends ": <strerror(errnum)>". */
drst_err_t drst_seterrno(char *err, size_t errlen, drst_err_t code, int errnum, const char *fmt,
                         ...) DRST_PRINTF(5, 6);

/**
 * @brief Report one rejected line to a diagnostics sink (may be NULL).
 * @return DRST_ERR_STRICT if the sink is strict (message in err), else DRST_OK.
 */
drst_err_t drst_diag_reject(drst_diag_t *d, const char *file, uint64_t line, const char *text,
                            size_t textlen, char *err, size_t errlen, const char *fmt, ...)
    DRST_PRINTF(8, 9);

/** @brief Report a non-fatal note (never fails, strict or not). */
void drst_diag_warn(drst_diag_t *d, const char *file, uint64_t line, const char *fmt, ...)
    DRST_PRINTF(4, 5);

#endif
