/* The generic CSV reader: RFC 4180 quoting, LF or CRLF, a header row, cells
 * parsed into doubles (NaN for empty or non-numeric cells, counted).
 *
 * Speed comes from three habits: the file is mapped (or read in one piece),
 * line ends and quotes are found with memchr() (SIMD in glibc), and a line
 * without quotes is split and converted in a single pass by the exact
 * Clinger fast path, writing straight into the table's row storage. Only
 * lines holding a quote go through the general record parser. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error_int.h"
#include "drst/telemetry.h"
#include "telemetry/numparse_int.h"
#include "telemetry/table_int.h"

#define DEFAULT_MAX_LINE (1u << 20)
/* Longest text kept in a diagnostic (the dead-letter copy of a line). */
#define DIAG_TEXT_MAX 65536

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int drst_parse_double(const char *s, const char *end, double *out)
{
    char small[128];
    char *copy = small, *stop;
    size_t n;
    double v = 0;
    const char *q;

    if (!s || !end || !out)
        return 0;
    while (s < end && is_blank(*s))
        s++;
    while (end > s && is_blank(end[-1]))
        end--;
    if (s == end)
        return 0;
    q = drst_fast_number(s, end, &v);
    if (q == end) {
        *out = v;
        return 1;
    }
    /* Not a plain decimal that the fast path can take: let strtod decide, on a
     * NUL-terminated bounded copy (the input need not be terminated). */
    n = (size_t)(end - s);
    if (memchr(s, '\0', n))
        return 0;
    if (n >= sizeof(small)) {
        copy = malloc(n + 1);
        if (!copy)
            return 0;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    errno = 0;
    v = strtod(copy, &stop);
    n = stop != copy && *stop == '\0' && !is_blank(copy[0]);
    if (copy != small)
        free(copy);
    if (!n)
        return 0;
    *out = v;
    return 1;
}

/* One field found by the general (quote-aware) record parser. */
typedef struct span {
    const char *s;
    size_t n;
    int quoted;  /* was enclosed in quotes */
    int escaped; /* contains "" (needs unescaping; never a number) */
} span_t;

typedef struct parser {
    const char *buf, *end;
    const char *name;
    char delim;
    size_t max_line;
    drst_diag_t *diag;
    char *err;
    size_t errlen;
    uint64_t line; /* 1-based physical line of the current record */
    span_t *spans;
    size_t nspans, cap_spans;
    unsigned char *kind; /* per column of the current row: 0 num, 1 empty, 2 text */
} parser_t;

enum { REC_OK = 0, REC_UNTERMINATED = 1, REC_JUNK = 2, REC_TOOLONG = 3, REC_NOMEM = 4 };

static int push_span(parser_t *ps, const char *s, size_t n, int quoted, int escaped)
{
    if (ps->nspans == ps->cap_spans) {
        size_t cap = ps->cap_spans ? ps->cap_spans * 2 : 64;
        span_t *sp = realloc(ps->spans, cap * sizeof(*sp));
        if (!sp)
            return -1;
        ps->spans = sp;
        ps->cap_spans = cap;
    }
    ps->spans[ps->nspans++] = (span_t){s, n, quoted, escaped};
    return 0;
}

/* Parse one record starting at p with full RFC 4180 rules into ps->spans.
 * *next receives the start of the next record, *nlines the number of
 * physical line ends consumed. */
static int parse_record(parser_t *ps, const char *p, const char **next, uint64_t *nlines)
{
    const char *end = ps->end, *start = p;
    uint64_t lines = 0;
    ps->nspans = 0;
    for (;;) {
        if (p < end && *p == '"') {
            const char *s = ++p;
            int escaped = 0;
            for (;;) {
                const char *q = memchr(p, '"', (size_t)(end - p));
                const char *nl;
                if (!q) {
                    p = end;
                    break;
                }
                for (nl = memchr(p, '\n', (size_t)(q - p)); nl;
                     nl = memchr(nl + 1, '\n', (size_t)(q - nl - 1)))
                    lines++;
                if (q + 1 < end && q[1] == '"') {
                    escaped = 1;
                    p = q + 2;
                    continue;
                }
                p = q;
                break;
            }
            if (p >= end || (size_t)(p - start) > ps->max_line) {
                *nlines = lines;
                return p >= end ? REC_UNTERMINATED : REC_TOOLONG;
            }
            if (push_span(ps, s, (size_t)(p - s), 1, escaped) < 0)
                return REC_NOMEM;
            p++; /* closing quote */
            if (p < end && *p == '\r' && (p + 1 == end || p[1] == '\n'))
                p++;
            if (p >= end) {
                *next = p;
                *nlines = lines;
                return REC_OK;
            }
            if (*p == '\n') {
                *next = p + 1;
                *nlines = lines + 1;
                return REC_OK;
            }
            if (*p != ps->delim) {
                *nlines = lines;
                return REC_JUNK;
            }
            p++;
            continue;
        }
        {
            const char *s = p;
            while (p < end && *p != ps->delim && *p != '\n')
                p++;
            if ((size_t)(p - start) > ps->max_line) {
                *nlines = lines;
                return REC_TOOLONG;
            }
            if (push_span(ps, s,
                          (size_t)(p > s && p[-1] == '\r' && (p == end || *p == '\n') ? p - s - 1
                                                                                      : p - s),
                          0, 0) < 0)
                return REC_NOMEM;
            if (p >= end) {
                *next = p;
                *nlines = lines;
                return REC_OK;
            }
            if (*p == '\n') {
                *next = p + 1;
                *nlines = lines + 1;
                return REC_OK;
            }
            p++; /* delimiter */
        }
    }
}

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

/* Report the physical line starting at p as rejected; returns DRST_OK or
 * DRST_ERR_STRICT. */
static drst_err_t reject_line(parser_t *ps, const char *p, uint64_t line, const char *reason)
{
    const char *le = line_end(p, ps->end);
    size_t n = (size_t)(le - p);
    if (n && p[n - 1] == '\r')
        n--;
    if (n > DIAG_TEXT_MAX)
        n = DIAG_TEXT_MAX;
    return drst_diag_reject(ps->diag, ps->name, line, p, n, ps->err, ps->errlen, "%s", reason);
}

static char *unescape(const span_t *sp)
{
    char *s = malloc(sp->n + 1), *o = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < sp->n; i++) {
        *o++ = sp->s[i];
        if (sp->escaped && sp->s[i] == '"' && i + 1 < sp->n && sp->s[i + 1] == '"')
            i++;
    }
    *o = '\0';
    return s;
}

/* Classify and convert one cell: 0 number, 1 empty, 2 text. */
static int cell_value(const char *s, size_t n, int escaped, double *v)
{
    const char *e = s + n;
    while (s < e && is_blank(*s))
        s++;
    if (s == e) {
        *v = NAN;
        return 1;
    }
    if (!escaped && drst_parse_double(s, e, v))
        return 0;
    *v = NAN;
    return 2;
}

static void count_row(drst_table_t *t, const unsigned char *kind)
{
    for (size_t c = 0; c < t->ncols; c++) {
        if (kind[c] == 1)
            t->n_empty[c]++;
        else if (kind[c] == 2)
            t->n_text[c]++;
    }
}

static drst_err_t ensure_row(parser_t *ps, drst_table_t *t)
{
    if (t->nrows < t->cap_rows)
        return DRST_OK;
    if (drst_table_grow(t) != DRST_OK)
        return drst_seterr(ps->err, ps->errlen, DRST_ERR_NOMEM, "%s:%llu: out of memory", ps->name,
                           (unsigned long long)ps->line);
    return DRST_OK;
}

static const char *rec_reason(int rc)
{
    switch (rc) {
    case REC_UNTERMINATED:
        return "unterminated quoted field";
    case REC_JUNK:
        return "text after a closing quote";
    case REC_TOOLONG:
        return "line longer than the limit";
    default:
        return "malformed record";
    }
}

/* The header (or, with no_header, the first record sized to name c0..). */
static drst_err_t read_header(parser_t *ps, const char **pp, const drst_csv_opts_t *o,
                              drst_table_t **out)
{
    const char *p = *pp, *next = p;
    uint64_t nl = 0;
    int rc;
    char **names = NULL;
    drst_table_t *t;
    drst_err_t ret = DRST_OK;

    /* Skip blank lines before the header. */
    while (p < ps->end && (*p == '\n' || (*p == '\r' && p + 1 < ps->end && p[1] == '\n'))) {
        p += *p == '\r' ? 2 : 1;
        ps->line++;
    }
    if (p >= ps->end)
        return drst_seterr(ps->err, ps->errlen, DRST_ERR_EMPTY, "%s: empty file (no header)",
                           ps->name);
    rc = parse_record(ps, p, &next, &nl);
    if (rc == REC_NOMEM)
        return drst_seterr(ps->err, ps->errlen, DRST_ERR_NOMEM, "%s: out of memory", ps->name);
    if (rc != REC_OK)
        return drst_seterr(
            ps->err, ps->errlen, rc == REC_TOOLONG ? DRST_ERR_TOOBIG : DRST_ERR_PARSE,
            "%s:%llu: bad header: %s", ps->name, (unsigned long long)ps->line, rec_reason(rc));
    names = calloc(ps->nspans, sizeof(*names));
    if (!names)
        return drst_seterr(ps->err, ps->errlen, DRST_ERR_NOMEM, "%s: out of memory", ps->name);
    for (size_t i = 0; i < ps->nspans; i++) {
        if (o->no_header) {
            char tmp[32];
            snprintf(tmp, sizeof(tmp), "c%zu", i);
            names[i] = strdup(tmp);
        } else {
            names[i] = unescape(&ps->spans[i]);
        }
        if (!names[i]) {
            ret = drst_seterr(ps->err, ps->errlen, DRST_ERR_NOMEM, "%s: out of memory", ps->name);
            goto out;
        }
    }
    t = drst_table_new((const char *const *)names, ps->nspans, ps->err, ps->errlen);
    if (!t) {
        ret = DRST_ERR_NOMEM;
        goto out;
    }
    *out = t;
    if (!o->no_header) {
        ps->line += nl;
        *pp = next;
    } else {
        *pp = p;
    }
out:
    for (size_t i = 0; i < ps->nspans; i++)
        free(names[i]);
    free(names);
    return ret;
}

/* A record that went through the general parser: convert and keep, or reject. */
static drst_err_t slow_record(parser_t *ps, drst_table_t *t, const char *p, const char **next)
{
    uint64_t nl = 0;
    int rc = parse_record(ps, p, next, &nl);
    drst_err_t ret;
    if (rc == REC_NOMEM)
        return drst_seterr(ps->err, ps->errlen, DRST_ERR_NOMEM, "%s: out of memory", ps->name);
    if (rc != REC_OK) {
        /* Resynchronise at the next physical line. */
        const char *le = line_end(p, ps->end);
        *next = le < ps->end ? le + 1 : le;
        ret = reject_line(ps, p, ps->line, rec_reason(rc));
        ps->line++;
        return ret;
    }
    if (ps->nspans != t->ncols) {
        char reason[96];
        snprintf(reason, sizeof(reason), "%zu fields, expected %zu", ps->nspans, t->ncols);
        ret = drst_diag_reject(ps->diag, ps->name, ps->line, p,
                               (size_t)(*next - p) > DIAG_TEXT_MAX ? DIAG_TEXT_MAX
                                                                   : (size_t)(*next - p),
                               ps->err, ps->errlen, "%s", reason);
        ps->line += nl;
        return ret;
    }
    if ((ret = ensure_row(ps, t)) != DRST_OK)
        return ret;
    {
        double *row = t->data + t->nrows * t->ncols;
        for (size_t c = 0; c < t->ncols; c++)
            ps->kind[c] = (unsigned char)cell_value(ps->spans[c].s, ps->spans[c].n,
                                                    ps->spans[c].escaped, &row[c]);
        count_row(t, ps->kind);
        memset(ps->kind, 0, t->ncols); /* the fast path expects a clean slate */
        t->nrows++;
    }
    ps->line += nl;
    return DRST_OK;
}

drst_err_t drst_table_parse_csv(const char *buf, size_t len, const char *name,
                                const drst_csv_opts_t *opts, drst_table_t **out, drst_diag_t *diag,
                                char *err, size_t errlen)
{
    drst_csv_opts_t o = {0};
    parser_t ps;
    drst_table_t *t = NULL;
    const char *p, *end, *next_quote;
    drst_err_t rc = DRST_OK;
    size_t ncols;

    if (!out)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_table_parse_csv: NULL output");
    *out = NULL;
    if (!buf && len)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_table_parse_csv: NULL buffer");
    if (opts)
        o = *opts;
    if (!o.delim)
        o.delim = ',';
    if (!o.max_line)
        o.max_line = DEFAULT_MAX_LINE;
    if (o.delim == '"' || o.delim == '\n' || o.delim == '\r')
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "invalid CSV delimiter");

    memset(&ps, 0, sizeof(ps));
    ps.buf = buf ? buf : "";
    ps.end = ps.buf + len;
    ps.name = name ? name : "<csv>";
    ps.delim = o.delim;
    ps.max_line = o.max_line;
    ps.diag = diag;
    ps.err = err;
    ps.errlen = errlen;
    ps.line = 1;

    p = ps.buf;
    end = ps.end;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* UTF-8 byte-order mark */
    if ((rc = read_header(&ps, &p, &o, &t)) != DRST_OK)
        goto out;
    ncols = t->ncols;
    ps.kind = calloc(ncols ? ncols : 1, 1);
    if (!ps.kind) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", ps.name);
        goto out;
    }
    /* A first guess of the row count avoids most reallocations. */
    {
        const char *le = line_end(p, end);
        size_t ll = (size_t)(le - p) + 1;
        size_t guess = len / (ll ? ll : 1) + 16;
        /* a row takes at least ncols bytes of text: never reserve more */
        if (ncols && guess > len / ncols + 16)
            guess = len / ncols + 16;
        if (guess > 1u << 26)
            guess = 1u << 26;
        if (drst_table_reserve(t, guess) != DRST_OK) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", ps.name);
            goto out;
        }
    }

    next_quote = memchr(p, '"', (size_t)(end - p));
    if (!next_quote)
        next_quote = end;
    while (p < end) {
        const char *le = line_end(p, end), *e = le, *next = le < end ? le + 1 : end;
        if (next_quote < p) {
            next_quote = memchr(p, '"', (size_t)(end - p));
            if (!next_quote)
                next_quote = end;
        }
        if (e > p && e[-1] == '\r')
            e--;
        if (e == p) { /* blank line */
            p = next;
            ps.line++;
            continue;
        }
        if (next_quote < le) {
            if ((rc = slow_record(&ps, t, p, &next)) != DRST_OK)
                goto out;
            p = next;
            continue;
        }
        if ((size_t)(le - p) > ps.max_line) {
            char reason[96];
            snprintf(reason, sizeof(reason), "line of %zu bytes is longer than the limit (%zu)",
                     (size_t)(le - p), ps.max_line);
            if ((rc = reject_line(&ps, p, ps.line, reason)) != DRST_OK)
                goto out;
            p = next;
            ps.line++;
            continue;
        }
        if (t->nrows == t->cap_rows && (rc = ensure_row(&ps, t)) != DRST_OK)
            goto out;
        {
            double *row = t->data + t->nrows * ncols;
            const char *q = p;
            size_t c = 0;
            int odd = 0;
            for (;;) {
                const char *fe;
                double v = 0;
                if (q == e || *q == o.delim) { /* empty cell */
                    fe = q;
                    if (c < ncols) {
                        row[c] = NAN;
                        ps.kind[c] = 1;
                        odd = 1;
                    }
                } else {
                    fe = drst_fast_number(q, e, &v);
                    if (fe && (fe == e || *fe == o.delim)) {
                        if (c < ncols)
                            row[c] = v;
                    } else {
                        fe = memchr(q, o.delim, (size_t)(e - q));
                        if (!fe)
                            fe = e;
                        if (c < ncols) {
                            int k = cell_value(q, (size_t)(fe - q), 0, &row[c]);
                            ps.kind[c] = (unsigned char)k;
                            odd |= k != 0;
                        }
                    }
                }
                c++;
                if (fe >= e)
                    break;
                q = fe + 1;
            }
            if (c != ncols) {
                char reason[96];
                if (odd)
                    memset(ps.kind, 0, ncols);
                snprintf(reason, sizeof(reason), "%zu fields, expected %zu", c, ncols);
                if ((rc = reject_line(&ps, p, ps.line, reason)) != DRST_OK)
                    goto out;
            } else {
                if (odd) {
                    count_row(t, ps.kind);
                    memset(ps.kind, 0, ncols);
                }
                t->nrows++;
            }
        }
        p = next;
        ps.line++;
    }
out:
    free(ps.spans);
    free(ps.kind);
    if (rc != DRST_OK) {
        drst_table_free(t);
        return rc;
    }
    *out = t;
    return DRST_OK;
}

drst_err_t drst_table_read_csv(const char *path, const drst_csv_opts_t *opts, drst_table_t **out,
                               drst_diag_t *diag, char *err, size_t errlen)
{
    int fd;
    struct stat st;
    drst_err_t rc;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    void *map = MAP_FAILED;

    if (!out || !path)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_table_read_csv: NULL argument");
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return drst_seterrno(err, errlen, errno == ENOENT ? DRST_ERR_NOTFOUND : DRST_ERR_IO, errno,
                             "cannot open '%s'", path);
    if (fstat(fd, &st) != 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot stat '%s'", path);
        close(fd);
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return drst_seterr(err, errlen, DRST_ERR_IO, "cannot read '%s': is a directory", path);
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (map != MAP_FAILED) {
            (void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
            close(fd);
            rc = drst_table_parse_csv(map, (size_t)st.st_size, path, opts, out, diag, err, errlen);
            munmap(map, (size_t)st.st_size);
            return rc;
        }
    }
    /* Pipes, /proc files, or mmap refused: read it all. */
    for (;;) {
        ssize_t n;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read '%s'", path);
            free(buf);
            close(fd);
            return rc;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    rc = drst_table_parse_csv(buf, len, path, opts, out, diag, err, errlen);
    free(buf);
    return rc;
}
