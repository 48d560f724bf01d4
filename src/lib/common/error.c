#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error_int.h"

static const char *const messages[DRST_ERR__COUNT] = {
    [DRST_OK] = "success",
    [DRST_ERR_NOMEM] = "out of memory",
    [DRST_ERR_INVAL] = "invalid argument",
    [DRST_ERR_IO] = "input/output error",
    [DRST_ERR_NOTFOUND] = "not found",
    [DRST_ERR_PARSE] = "parse error",
    [DRST_ERR_FORMAT] = "corrupt or unsupported file format",
    [DRST_ERR_SCHEMA] = "schema mismatch",
    [DRST_ERR_EMPTY] = "no usable data",
    [DRST_ERR_STRICT] = "input rejected in strict mode",
    [DRST_ERR_TIMEOUT] = "timed out",
    [DRST_ERR_TRANSPORT] = "transport error",
    [DRST_ERR_STATE] = "invalid state",
    [DRST_ERR_UNSUPPORTED] = "not supported",
    [DRST_ERR_TOOBIG] = "limit exceeded",
    [DRST_ERR_NUMERIC] = "numerical error",
    [DRST_ERR_BUSY] = "resource busy",
    [DRST_ERR_EOF] = "end of stream",
};

const char *drst_strerror(drst_err_t err)
{
    if ((int)err < 0 || err >= DRST_ERR__COUNT || !messages[err])
        return "unknown error";
    return messages[err];
}

const char *drst_version(void)
{
    return DRST_VERSION_STRING;
}

static void vformat(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (!err || !errlen)
        return;
    vsnprintf(err, errlen, fmt, ap);
}

drst_err_t drst_seterr(char *err, size_t errlen, drst_err_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

drst_err_t drst_seterrno(char *err, size_t errlen, drst_err_t code, int errnum, const char *fmt,
                         ...)
{
    va_list ap;
    size_t n;
    if (!err || !errlen)
        return code;
    va_start(ap, fmt);
    vformat(err, errlen, fmt, ap);
    va_end(ap);
    n = strlen(err);
    if (n < errlen)
        snprintf(err + n, errlen - n, ": %s", strerror(errnum));
    return code;
}

drst_err_t drst_diag_reject(drst_diag_t *d, const char *file, uint64_t line, const char *text,
                            size_t textlen, char *err, size_t errlen, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (!d)
        return DRST_OK;
    d->rejected++;
    if (d->fn)
        d->fn(d->opaque, DRST_DIAG_REJECT, file, line, reason, text, textlen);
    if (d->strict)
        return drst_seterr(err, errlen, DRST_ERR_STRICT, "%s:%llu: %s", file ? file : "-",
                           (unsigned long long)line, reason);
    return DRST_OK;
}

void drst_diag_warn(drst_diag_t *d, const char *file, uint64_t line, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    if (!d)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    d->warnings++;
    if (d->fn)
        d->fn(d->opaque, DRST_DIAG_WARN, file, line, reason, NULL, 0);
}
