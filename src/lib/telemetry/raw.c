/* Parsers of DRST's raw per-experiment files: perf-stat interval files,
 * rx/tx traffic statistics and latency lists. The rules are those of
 * docs/dataset.md; every line that cannot be used goes to the diag sink. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error_int.h"
#include "telemetry/raw_int.h"

#define MAX_FIELDS    64
#define DIAG_TEXT_MAX 65536

drst_err_t drst_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *b = NULL;
    size_t n = 0, cap = 0;
    drst_err_t rc;

    *buf = NULL;
    *len = 0;
    if (fd < 0)
        return drst_seterrno(err, errlen, errno == ENOENT ? DRST_ERR_NOTFOUND : DRST_ERR_IO, errno,
                             "cannot open '%s'", path);
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return drst_seterr(err, errlen, DRST_ERR_IO, "cannot read '%s': is a directory", path);
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size + 1;
    for (;;) {
        ssize_t r;
        if (!b || n + 1 >= cap) {
            size_t ncap = !b && cap ? cap : cap ? cap * 2 : 1 << 16;
            char *nb = realloc(b, ncap);
            if (!nb) {
                free(b);
                close(fd);
                return drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap = ncap;
        }
        r = read(fd, b + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read '%s'", path);
            free(b);
            close(fd);
            return rc;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return DRST_OK;
}

/* ---- small line/field helpers ---- */

typedef struct lines {
    const char *p, *end;
    uint64_t no; /* 1-based number of the line last returned */
} lines_t;

/* Next physical line without its LF/CRLF; 0 at the end. */
static int next_line(lines_t *it, const char **s, size_t *n)
{
    const char *nl;
    if (it->p >= it->end)
        return 0;
    nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    *s = it->p;
    *n = (size_t)((nl ? nl : it->end) - it->p);
    if (*n && (*s)[*n - 1] == '\r')
        (*n)--;
    it->p = nl ? nl + 1 : it->end;
    it->no++;
    return 1;
}

static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

typedef struct field {
    const char *s;
    size_t n;
} field_t;

/* Split on `delim` (no quoting in these formats); returns the field count,
 * of which at most MAX_FIELDS are stored. */
static size_t split(const char *s, size_t n, char delim, field_t *f)
{
    size_t k = 0;
    const char *e = s + n;
    for (;;) {
        const char *d = memchr(s, delim, (size_t)(e - s));
        if (k < MAX_FIELDS) {
            f[k].s = s;
            f[k].n = (size_t)((d ? d : e) - s);
        }
        k++;
        if (!d)
            return k;
        s = d + 1;
    }
}

static int field_eq(const field_t *f, const char *lit)
{
    const char *s = f->s;
    size_t n = f->n, l = strlen(lit);
    trim(&s, &n);
    return n == l && memcmp(s, lit, l) == 0;
}

static int field_num(const field_t *f, double *v)
{
    return drst_parse_double(f->s, f->s + f->n, v);
}

int drst_is_conflict_marker(const char *s, size_t n)
{
    if (n < 7)
        return 0;
    return memcmp(s, "<<<<<<<", 7) == 0 || memcmp(s, "=======", 7) == 0 ||
           memcmp(s, ">>>>>>>", 7) == 0 || memcmp(s, "|||||||", 7) == 0;
}

static drst_err_t reject(drst_diag_t *d, const char *name, uint64_t line, const char *s, size_t n,
                         char *err, size_t errlen, const char *reason)
{
    return drst_diag_reject(d, name, line, s, n > DIAG_TEXT_MAX ? DIAG_TEXT_MAX : n, err, errlen,
                            "%s", reason);
}

static int blank_or_comment(const char *s, size_t n)
{
    trim(&s, &n);
    return n == 0 || s[0] == '#';
}

/* An event name: a letter first, then letters, digits and _ . : / - (perf
 * names such as L1-dcache-load-misses, cpu/event=0x3c/, power/energy-pkg/). */
static int is_event_name(const char *s, size_t n)
{
    trim(&s, &n);
    if (!n || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("_.:/-=,@", c))
            return 0;
    }
    return 1;
}

/* ---- perf stat -x, ---- */

int drst_perf_detect(const char *buf, size_t len)
{
    lines_t it = {buf, buf + len, 0};
    const char *s;
    size_t n;
    int seen = 0;
    field_t f[MAX_FIELDS];
    while (seen < 64 && next_line(&it, &s, &n)) {
        const char *t = s;
        size_t tn = n;
        trim(&t, &tn);
        if (tn == 0)
            continue;
        seen++;
        if (tn >= 12 && memcmp(t, "# started on", 12) == 0)
            return 1;
        if (t[0] == '#')
            continue;
        if (split(s, n, ',', f) >= 4) {
            double v;
            if (field_num(&f[0], &v) && is_event_name(f[3].s, f[3].n))
                return 1;
        }
    }
    return 0;
}

typedef struct triple {
    size_t row, ev;
    double v;
} triple_t;

void drst_perf_release(drst_perf_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nev; i++)
        free(p->events[i]);
    free(p->events);
    free(p->ts);
    free(p->vals);
    memset(p, 0, sizeof(*p));
}

drst_err_t drst_perf_parse(const char *buf, size_t len, const char *name, drst_perf_t *out,
                           drst_diag_t *diag, char *err, size_t errlen)
{
    lines_t it = {buf, buf + len, 0};
    const char *s;
    size_t n, ntr = 0, captr = 0, capts = 0, capev = 0;
    triple_t *tr = NULL;
    size_t *last_row = NULL; /* per event: last interval it was seen in (+1) */
    field_t f[MAX_FIELDS];
    drst_err_t rc = DRST_OK;

    memset(out, 0, sizeof(*out));
    while (next_line(&it, &s, &n)) {
        size_t nf, ev;
        double ts, v;
        const char *es;
        size_t en;
        if (blank_or_comment(s, n))
            continue;
        if (drst_is_conflict_marker(s, n)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "merge-conflict marker");
            goto next;
        }
        nf = split(s, n, ',', f);
        if (nf < 4) {
            rc = reject(diag, name, it.no, s, n, err, errlen,
                        "expected at least 4 comma-separated fields (time,value,unit,event)");
            goto next;
        }
        if (!field_num(&f[0], &ts)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "non-numeric interval timestamp");
            goto next;
        }
        if (field_eq(&f[1], "<not counted>") || field_eq(&f[1], "<not supported>")) {
            v = NAN;
        } else if (!field_num(&f[1], &v)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "non-numeric counter value");
            goto next;
        }
        es = f[3].s;
        en = f[3].n;
        trim(&es, &en);
        if (!is_event_name(es, en)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "bad or empty event name");
            goto next;
        }
        /* A new row whenever the timestamp changes. */
        if (out->nint == 0 || out->ts[out->nint - 1] != ts) {
            if (out->nint == capts) {
                size_t nc = capts ? capts * 2 : 64;
                double *nt = realloc(out->ts, nc * sizeof(double));
                if (!nt)
                    goto nomem;
                out->ts = nt;
                capts = nc;
            }
            out->ts[out->nint++] = ts;
        }
        for (ev = 0; ev < out->nev; ev++)
            if (strlen(out->events[ev]) == en && memcmp(out->events[ev], es, en) == 0)
                break;
        if (ev == out->nev) {
            if (out->nev == capev) {
                size_t nc = capev ? capev * 2 : 16;
                char **ne = realloc(out->events, nc * sizeof(char *));
                size_t *nl;
                if (!ne)
                    goto nomem;
                out->events = ne;
                nl = realloc(last_row, nc * sizeof(size_t));
                if (!nl)
                    goto nomem;
                last_row = nl;
                capev = nc;
            }
            out->events[out->nev] = strndup(es, en);
            if (!out->events[out->nev])
                goto nomem;
            last_row[out->nev] = 0;
            out->nev++;
        } else if (last_row[ev] == out->nint) {
            rc = reject(diag, name, it.no, s, n, err, errlen,
                        "event repeated within the same interval");
            goto next;
        }
        last_row[ev] = out->nint;
        if (ntr == captr) {
            size_t nc = captr ? captr * 2 : 256;
            triple_t *nt = realloc(tr, nc * sizeof(*tr));
            if (!nt)
                goto nomem;
            tr = nt;
            captr = nc;
        }
        tr[ntr++] = (triple_t){out->nint - 1, ev, v};
    next:
        if (rc != DRST_OK)
            goto fail;
    }
    if (out->nint && out->nev) {
        if (out->nint > SIZE_MAX / sizeof(double) / out->nev)
            goto nomem;
        out->vals = malloc(out->nint * out->nev * sizeof(double));
        if (!out->vals)
            goto nomem;
        for (size_t i = 0; i < out->nint * out->nev; i++)
            out->vals[i] = NAN;
        for (size_t i = 0; i < ntr; i++)
            out->vals[tr[i].row * out->nev + tr[i].ev] = tr[i].v;
    }
    free(tr);
    free(last_row);
    return DRST_OK;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", name);
fail:
    free(tr);
    free(last_row);
    drst_perf_release(out);
    return rc;
}

/* ---- series (rx/tx, latency) ---- */

void drst_series_release(drst_series_t *s)
{
    if (!s)
        return;
    free(s->t);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int series_push(drst_series_t *s, size_t *cap, double t, double v)
{
    if (s->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        double *nt = realloc(s->t, nc * sizeof(double)), *nv;
        if (!nt)
            return -1;
        s->t = nt;
        nv = realloc(s->v, nc * sizeof(double));
        if (!nv)
            return -1;
        s->v = nv;
        *cap = nc;
    }
    s->t[s->n] = t;
    s->v[s->n] = v;
    s->n++;
    return 0;
}

drst_err_t drst_rxtx_parse(const char *buf, size_t len, const char *name, drst_series_t *out,
                           drst_diag_t *diag, char *err, size_t errlen)
{
    lines_t it = {buf, buf + len, 0};
    const char *s;
    size_t n, cap = 0, nf;
    field_t f[MAX_FIELDS];
    long col = -1, tcol = 0;
    int first = 1;
    drst_err_t rc = DRST_OK;

    memset(out, 0, sizeof(*out));
    while (next_line(&it, &s, &n)) {
        double t, v;
        if (blank_or_comment(s, n))
            continue;
        if (drst_is_conflict_marker(s, n)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "merge-conflict marker");
            goto next;
        }
        nf = split(s, n, ',', f);
        if (first) {
            first = 0;
            if (!field_num(&f[0], &t)) { /* a header */
                long mbit = -1, prate = -1;
                for (size_t i = 0; i < nf && i < MAX_FIELDS; i++) {
                    if (field_eq(&f[i], "Mbit"))
                        mbit = (long)i;
                    else if (field_eq(&f[i], "PacketRate"))
                        prate = (long)i;
                    else if (field_eq(&f[i], "Time"))
                        tcol = (long)i;
                }
                col = mbit >= 0 ? mbit : prate;
                out->column = mbit >= 0 ? "Mbit" : "PacketRate";
                if (col < 0) {
                    out->column = NULL;
                    rc = reject(diag, name, it.no, s, n, err, errlen,
                                "header has neither a Mbit nor a PacketRate column");
                    if (rc == DRST_OK)
                        break; /* nothing in this file can be used */
                    goto fail;
                }
                continue;
            }
            col = 4; /* no header: the testbed's layout, Mbit is the 5th field */
            out->column = "5th field";
        }
        if (nf <= (size_t)col || (size_t)col >= MAX_FIELDS) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "too few fields");
            goto next;
        }
        if (!field_num(&f[col], &v)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "non-numeric rate");
            goto next;
        }
        if ((size_t)tcol >= nf || !field_num(&f[tcol], &t))
            t = NAN;
        if (series_push(out, &cap, t, v) < 0) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
    next:
        if (rc != DRST_OK)
            goto fail;
    }
    return DRST_OK;
fail:
    drst_series_release(out);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

drst_err_t drst_latency_parse(const char *buf, size_t len, const char *name, drst_series_t *out,
                              drst_diag_t *diag, char *err, size_t errlen)
{
    lines_t it = {buf, buf + len, 0};
    const char *s;
    size_t n, cap = 0;
    drst_err_t rc = DRST_OK;

    memset(out, 0, sizeof(*out));
    while (next_line(&it, &s, &n)) {
        field_t f[3];
        size_t nf = 0;
        const char *p, *e;
        double idx = NAN, v;
        if (blank_or_comment(s, n))
            continue;
        if (drst_is_conflict_marker(s, n)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "merge-conflict marker");
            goto next;
        }
        /* fields separated by blanks and/or one comma */
        p = s;
        e = s + n;
        while (p < e) {
            while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            if (p >= e)
                break;
            if (nf < 3)
                f[nf].s = p;
            while (p < e && *p != ' ' && *p != '\t' && *p != ',')
                p++;
            if (nf < 3)
                f[nf].n = (size_t)(p - f[nf].s);
            nf++;
        }
        if (nf == 0 || nf > 2) {
            rc = reject(diag, name, it.no, s, n, err, errlen,
                        "expected 'value', 'index value' or 'index,value'");
            goto next;
        }
        if (nf == 2 && !field_num(&f[0], &idx)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "non-numeric index");
            goto next;
        }
        if (!field_num(&f[nf - 1], &v) || !isfinite(v)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "non-numeric latency");
            goto next;
        }
        if (series_push(out, &cap, idx, v) < 0) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
    next:
        if (rc != DRST_OK)
            goto fail;
    }
    if (out->n) {
        /* Unit rule: a median above 1000 means microseconds (a chain latency
         * of more than a second in ms is not plausible); convert to ms. */
        double *tmp = malloc(out->n * sizeof(double)), med;
        if (!tmp) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        memcpy(tmp, out->v, out->n * sizeof(double));
        qsort(tmp, out->n, sizeof(double), cmp_double);
        med = out->n % 2 ? tmp[out->n / 2] : (tmp[out->n / 2 - 1] + tmp[out->n / 2]) / 2;
        free(tmp);
        if (med > 1000) {
            out->usec = 1;
            for (size_t i = 0; i < out->n; i++)
                out->v[i] /= 1000.0;
        }
    }
    return DRST_OK;
fail:
    drst_series_release(out);
    return rc;
}

void drst_name_normalise(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    int sep = 0; /* a separator is pending before the next word character */
    if (!outlen)
        return;
    /* '%' reads as the word "pct"; every run of other non-alphanumerics is one '_' */
    for (size_t i = 0; i < n && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        if (isalnum(c) || c == '%') {
            if ((sep || c == '%') && o)
                out[o++] = '_';
            sep = 0;
            if (c == '%') {
                memcpy(out + o, "pct", 3);
                o += 3;
                sep = 1;
            } else {
                out[o++] = (char)c;
            }
        } else {
            sep = 1;
        }
    }
    out[o] = '\0';
}
