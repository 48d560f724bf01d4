/* drst_table_t: a dense named matrix of doubles, and its CSV writer. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/error_int.h"
#include "drst/telemetry.h"
#include "telemetry/table_int.h"

drst_table_t *drst_table_new(const char *const *names, size_t ncols, char *err, size_t errlen)
{
    drst_table_t *t = calloc(1, sizeof(*t));
    if (!t)
        goto nomem;
    t->ncols = ncols;
    t->names = calloc(ncols ? ncols : 1, sizeof(*t->names));
    t->n_empty = calloc(ncols ? ncols : 1, sizeof(*t->n_empty));
    t->n_text = calloc(ncols ? ncols : 1, sizeof(*t->n_text));
    if (!t->names || !t->n_empty || !t->n_text)
        goto nomem;
    for (size_t i = 0; i < ncols; i++) {
        const char *n = names && names[i] ? names[i] : "";
        t->names[i] = strdup(n);
        if (!t->names[i])
            goto nomem;
    }
    return t;
nomem:
    drst_table_free(t);
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "table of %zu columns: out of memory", ncols);
    return NULL;
}

void drst_table_free(drst_table_t *t)
{
    if (!t)
        return;
    if (t->names)
        for (size_t i = 0; i < t->ncols; i++)
            free(t->names[i]);
    free(t->names);
    free(t->data);
    free(t->n_empty);
    free(t->n_text);
    free(t);
}

drst_err_t drst_table_reserve(drst_table_t *t, size_t rows)
{
    size_t ncols = t->ncols ? t->ncols : 1;
    double *d;
    if (rows <= t->cap_rows)
        return DRST_OK;
    if (rows > SIZE_MAX / sizeof(double) / ncols)
        return DRST_ERR_NOMEM;
    d = realloc(t->data, rows * ncols * sizeof(double));
    if (!d)
        return DRST_ERR_NOMEM;
    t->data = d;
    t->cap_rows = rows;
#ifdef MADV_HUGEPAGE
    /* Big tables fill tens of MB: huge pages save most page faults. */
    if (rows * ncols * sizeof(double) >= (8u << 20)) {
        uintptr_t a = ((uintptr_t)d + 0x1FFFFF) & ~(uintptr_t)0x1FFFFF;
        uintptr_t b = ((uintptr_t)d + rows * ncols * sizeof(double)) & ~(uintptr_t)0x1FFFFF;
        if (b > a)
            (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
    }
#endif
    return DRST_OK;
}

drst_err_t drst_table_grow(drst_table_t *t)
{
    size_t want = t->cap_rows < 64 ? 64 : t->cap_rows + t->cap_rows / 2;
    return drst_table_reserve(t, want);
}

drst_err_t drst_table_append(drst_table_t *t, const double *row, char *err, size_t errlen)
{
    if (!t || (!row && t->ncols))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_table_append: NULL argument");
    if (t->nrows == t->cap_rows && drst_table_grow(t) != DRST_OK)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "table row %zu: out of memory", t->nrows);
    if (t->ncols)
        memcpy(t->data + t->nrows * t->ncols, row, t->ncols * sizeof(double));
    for (size_t c = 0; c < t->ncols; c++)
        if (isnan(row[c]))
            t->n_empty[c]++;
    t->nrows++;
    return DRST_OK;
}

long drst_table_col(const drst_table_t *t, const char *name)
{
    if (!t || !name)
        return -1;
    for (size_t i = 0; i < t->ncols; i++)
        if (strcmp(t->names[i], name) == 0)
            return (long)i;
    return -1;
}

size_t drst_format_double(double v, char *buf, size_t len)
{
    int n;
    if (isnan(v) || len == 0) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    /* Integers (the common case in telemetry) print exactly with %.0f-like
     * %g as long as they have at most 15 digits. */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, len, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= len)
            break;
        if (prec == 17 || strtod(buf, NULL) == v)
            return (size_t)n;
    }
    n = snprintf(buf, len, "%.17g", v);
    return n < 0 ? 0 : (size_t)n;
}

/* RFC 4180: quote a field that holds the delimiter, a quote, CR or LF. */
static int write_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL)
        return fputs(s, f) < 0 ? -1 : 0;
    if (fputc('"', f) == EOF)
        return -1;
    for (; *s; s++) {
        if (*s == '"' && fputc('"', f) == EOF)
            return -1;
        if (fputc(*s, f) == EOF)
            return -1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

drst_err_t drst_table_write_csv_fp(const drst_table_t *t, FILE *f, const char *name, char *err,
                                   size_t errlen)
{
    char num[64];
    if (!t || !f)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_table_write_csv: NULL argument");
    for (size_t c = 0; c < t->ncols; c++) {
        if (c && fputc(',', f) == EOF)
            goto ioerr;
        if (write_field(f, t->names[c]) < 0)
            goto ioerr;
    }
    if (fputc('\n', f) == EOF)
        goto ioerr;
    for (size_t r = 0; r < t->nrows; r++) {
        const double *row = t->data + r * t->ncols;
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = drst_format_double(row[c], num, sizeof(num));
            if (c && fputc(',', f) == EOF)
                goto ioerr;
            if (n && fwrite(num, 1, n, f) != n)
                goto ioerr;
        }
        if (fputc('\n', f) == EOF)
            goto ioerr;
    }
    if (fflush(f) != 0)
        goto ioerr;
    return DRST_OK;
ioerr:
    return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write '%s'", name ? name : "-");
}

drst_err_t drst_table_write_csv(const drst_table_t *t, const char *path, char *err, size_t errlen)
{
    FILE *f;
    drst_err_t rc;
    if (!t || !path)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_table_write_csv: NULL argument");
    if (strcmp(path, "-") == 0)
        return drst_table_write_csv_fp(t, stdout, "<stdout>", err, errlen);
    f = fopen(path, "w");
    if (!f)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", path);
    rc = drst_table_write_csv_fp(t, f, path, err, errlen);
    if (fclose(f) != 0 && rc == DRST_OK)
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write '%s'", path);
    return rc;
}
