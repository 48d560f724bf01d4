/* Intel PCM files: the two-row-header CSVs (pcm.x, pcm-memory.x) and the
 * block format of pcm-pcie.x. Rules in docs/dataset.md. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "telemetry/raw_int.h"
#include "telemetry/table_int.h"

#define DIAG_TEXT_MAX 65536
#define NAME_MAX_LEN  256

typedef struct fields {
    const char **s;
    size_t *n;
    size_t count, cap;
} fields_t;

static void fields_free(fields_t *f)
{
    free(f->s);
    free(f->n);
}

static int fields_split(fields_t *f, const char *s, size_t n)
{
    const char *e = s + n;
    f->count = 0;
    for (;;) {
        const char *d = memchr(s, ',', (size_t)(e - s));
        if (f->count == f->cap) {
            size_t nc = f->cap ? f->cap * 2 : 128;
            const char **ns = realloc(f->s, nc * sizeof(*ns));
            size_t *nn;
            if (!ns)
                return -1;
            f->s = ns;
            nn = realloc(f->n, nc * sizeof(*nn));
            if (!nn)
                return -1;
            f->n = nn;
            f->cap = nc;
        }
        f->s[f->count] = s;
        f->n[f->count] = (size_t)((d ? d : e) - s);
        f->count++;
        if (!d)
            return 0;
        s = d + 1;
    }
}

static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static int eq(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    trim(&s, &n);
    return n == l && memcmp(s, lit, l) == 0;
}

typedef struct liner {
    const char *p, *end;
    uint64_t no;
} liner_t;

static int next_line(liner_t *it, const char **s, size_t *n)
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

static int blank(const char *s, size_t n)
{
    trim(&s, &n);
    return n == 0;
}

static drst_err_t reject(drst_diag_t *d, const char *name, uint64_t line, const char *s, size_t n,
                         char *err, size_t errlen, const char *reason)
{
    return drst_diag_reject(d, name, line, s, n > DIAG_TEXT_MAX ? DIAG_TEXT_MAX : n, err, errlen,
                            "%s", reason);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long days_from_civil(long y, long m, long d)
{
    long era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, size_t n, long *v)
{
    *v = 0;
    if (!n || n > 9)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* "YYYY-MM-DD" + "HH:MM:SS[.fff]" -> seconds since the epoch, read as UTC. */
static int parse_datetime(const char *ds, size_t dn, const char *ts, size_t tn, double *out)
{
    long y, mo, d, h, mi, se;
    double frac = 0;
    trim(&ds, &dn);
    trim(&ts, &tn);
    if (dn != 10 || ds[4] != '-' || ds[7] != '-' || !digits(ds, 4, &y) || !digits(ds + 5, 2, &mo) ||
        !digits(ds + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    if (tn < 8 || ts[2] != ':' || ts[5] != ':' || !digits(ts, 2, &h) || !digits(ts + 3, 2, &mi) ||
        !digits(ts + 6, 2, &se) || h > 23 || mi > 59 || se > 60)
        return 0;
    if (tn > 8) {
        if (ts[8] != '.' || tn == 9 || !drst_parse_double(ts + 8, ts + tn, &frac))
            return 0;
        for (size_t i = 9; i < tn; i++)
            if (!isdigit((unsigned char)ts[i]))
                return 0;
    }
    *out = (double)days_from_civil(y, mo, d) * 86400.0 + (double)(h * 3600 + mi * 60 + se) + frac;
    return 1;
}

/* Add `name` to names[], making it unique with _2, _3... */
static int add_name(char ***names, size_t *nnames, size_t *cap, const char *name)
{
    char buf[NAME_MAX_LEN + 16];
    int k = 1;
    snprintf(buf, sizeof(buf), "%s", name);
    for (;;) {
        size_t i;
        for (i = 0; i < *nnames; i++)
            if (strcmp((*names)[i], buf) == 0)
                break;
        if (i == *nnames)
            break;
        snprintf(buf, sizeof(buf), "%s_%d", name, ++k);
    }
    if (*nnames == *cap) {
        size_t nc = *cap ? *cap * 2 : 128;
        char **nn = realloc(*names, nc * sizeof(char *));
        if (!nn)
            return -1;
        *names = nn;
        *cap = nc;
    }
    (*names)[*nnames] = strdup(buf);
    if (!(*names)[*nnames])
        return -1;
    (*nnames)++;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

drst_err_t drst_pcm_parse(const char *buf, size_t len, const char *name, const char *prefix,
                          drst_table_t **out, drst_diag_t *diag, char *err, size_t errlen)
{
    liner_t it = {buf, buf + len, 0};
    const char *s, *gs = NULL;
    size_t n, gn = 0, ncols_in = 0, nnames = 0, capn = 0;
    fields_t f = {0}, g = {0};
    char **names = NULL;
    long *src = NULL; /* output column -> input field */
    long dcol = -1, tcol = -1;
    drst_table_t *t = NULL;
    double *row = NULL;
    drst_err_t rc = DRST_OK;
    int have_group = 0;

    *out = NULL;
    /* the two header rows: first two non-blank lines */
    while (next_line(&it, &s, &n)) {
        if (blank(s, n))
            continue;
        if (!have_group) {
            gs = s;
            gn = n;
            have_group = 1;
            continue;
        }
        break;
    }
    if (!have_group || it.no < 2 || blank(s, n)) {
        rc = drst_seterr(err, errlen, DRST_ERR_FORMAT, "%s: no two-row PCM header", name);
        goto out;
    }
    if (fields_split(&g, gs, gn) < 0 || fields_split(&f, s, n) < 0)
        goto nomem;
    ncols_in = f.count;
    for (size_t i = 0; i < f.count; i++) {
        if (eq(f.s[i], f.n[i], "Date") && dcol < 0)
            dcol = (long)i;
        else if (eq(f.s[i], f.n[i], "Time") && tcol < 0)
            tcol = (long)i;
    }
    if (dcol < 0 || tcol < 0) {
        rc = drst_seterr(err, errlen, DRST_ERR_FORMAT,
                         "%s:%llu: PCM metric row has no Date and Time columns", name,
                         (unsigned long long)it.no);
        goto out;
    }
    src = calloc(ncols_in + 1, sizeof(long));
    if (!src || add_name(&names, &nnames, &capn, "__time") < 0)
        goto nomem;
    {
        char group[NAME_MAX_LEN] = "", metric[NAME_MAX_LEN], full[3 * NAME_MAX_LEN + 4];
        for (size_t i = 0; i < f.count; i++) {
            if (i < g.count && !blank(g.s[i], g.n[i]))
                drst_name_normalise(g.s[i], g.n[i], group, sizeof(group));
            if ((long)i == dcol || (long)i == tcol || blank(f.s[i], f.n[i]))
                continue;
            drst_name_normalise(f.s[i], f.n[i], metric, sizeof(metric));
            snprintf(full, sizeof(full), "%s%s%s%s%s", prefix, *prefix ? "_" : "", group,
                     *group ? "_" : "", metric);
            src[nnames] = (long)i;
            if (add_name(&names, &nnames, &capn, full) < 0)
                goto nomem;
        }
    }
    t = drst_table_new((const char *const *)names, nnames, err, errlen);
    if (!t) {
        rc = DRST_ERR_NOMEM;
        goto out;
    }
    row = malloc(nnames * sizeof(double));
    if (!row)
        goto nomem;
    while (next_line(&it, &s, &n)) {
        size_t c;
        char reason[NAME_MAX_LEN + 64];
        if (blank(s, n))
            continue;
        if (drst_is_conflict_marker(s, n)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "merge-conflict marker");
            goto next;
        }
        if (fields_split(&f, s, n) < 0)
            goto nomem;
        if (f.count != ncols_in) {
            snprintf(reason, sizeof(reason), "%zu fields, expected %zu", f.count, ncols_in);
            rc = reject(diag, name, it.no, s, n, err, errlen, reason);
            goto next;
        }
        if (!parse_datetime(f.s[dcol], f.n[dcol], f.s[tcol], f.n[tcol], &row[0])) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "bad Date/Time");
            goto next;
        }
        for (c = 1; c < nnames; c++) {
            const char *cs = f.s[src[c]];
            size_t cn = f.n[src[c]];
            trim(&cs, &cn);
            if (cn == 0)
                row[c] = NAN;
            else if (!drst_parse_double(cs, cs + cn, &row[c]))
                break;
        }
        if (c < nnames) {
            snprintf(reason, sizeof(reason), "non-numeric value in column '%s'", names[c]);
            rc = reject(diag, name, it.no, s, n, err, errlen, reason);
            goto next;
        }
        if ((rc = drst_table_append(t, row, err, errlen)) != DRST_OK)
            goto out;
    next:
        if (rc != DRST_OK)
            goto out;
    }
    goto out;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", name);
out:
    fields_free(&f);
    fields_free(&g);
    free_names(names, nnames);
    free(src);
    free(row);
    if (rc != DRST_OK) {
        drst_table_free(t);
        return rc;
    }
    *out = t;
    return DRST_OK;
}

/* ---- pcm-pcie ---- */

typedef struct pcell {
    size_t block, col;
    double v;
} pcell_t;

drst_err_t drst_pcie_parse(const char *buf, size_t len, const char *name, const char *prefix,
                           drst_table_t **out, drst_diag_t *diag, char *err, size_t errlen)
{
    liner_t it = {buf, buf + len, 0};
    const char *s;
    size_t n, nmetrics = 0, nblocks = 0, ncells = 0, capc = 0, nnames = 0, capn = 0;
    fields_t f = {0};
    char **metrics = NULL; /* normalised metric names of the first header */
    char **names = NULL;
    long *pair_skt = NULL; /* (socket, kind) pairs in order of appearance */
    int *pair_kind = NULL;
    size_t npairs = 0;
    pcell_t *cells = NULL;
    drst_table_t *t = NULL;
    double *row = NULL;
    drst_err_t rc = DRST_OK;
    int in_block = 0;

    *out = NULL;
    while (next_line(&it, &s, &n)) {
        size_t k;
        long skt;
        int kind;
        const char *ls;
        size_t ln;
        char reason[128];
        if (blank(s, n))
            continue;
        if (drst_is_conflict_marker(s, n)) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "merge-conflict marker");
            goto next;
        }
        if (fields_split(&f, s, n) < 0)
            goto nomem;
        if (eq(f.s[0], f.n[0], "Skt")) {
            if (!metrics) {
                char tmp[NAME_MAX_LEN];
                nmetrics = f.count - 1;
                metrics = calloc(nmetrics ? nmetrics : 1, sizeof(char *));
                if (!metrics)
                    goto nomem;
                for (k = 0; k < nmetrics; k++) {
                    drst_name_normalise(f.s[k + 1], f.n[k + 1], tmp, sizeof(tmp));
                    metrics[k] = strdup(tmp);
                    if (!metrics[k])
                        goto nomem;
                }
            } else if (f.count - 1 != nmetrics) {
                rc = reject(diag, name, it.no, s, n, err, errlen,
                            "header differs from the file's first Skt header");
                in_block = 0;
                goto next;
            }
            nblocks++;
            in_block = 1;
            continue;
        }
        if (!in_block) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "data row outside a Skt block");
            goto next;
        }
        if (f.count != nmetrics + 1) {
            snprintf(reason, sizeof(reason), "%zu fields, expected %zu", f.count, nmetrics + 1);
            rc = reject(diag, name, it.no, s, n, err, errlen, reason);
            goto next;
        }
        ls = f.s[f.count - 1];
        ln = f.n[f.count - 1];
        trim(&ls, &ln);
        if (ln > 7 && memcmp(ls + ln - 7, "(Total)", 7) == 0)
            kind = 0, ln -= 7;
        else if (ln > 6 && memcmp(ls + ln - 6, "(Miss)", 6) == 0)
            kind = 1, ln -= 6;
        else if (ln > 5 && memcmp(ls + ln - 5, "(Hit)", 5) == 0)
            kind = 2, ln -= 5;
        else {
            rc = reject(diag, name, it.no, s, n, err, errlen,
                        "row does not end in (Total), (Miss) or (Hit)");
            goto next;
        }
        {
            double sv;
            if (!drst_parse_double(f.s[0], f.s[0] + f.n[0], &sv) || sv < 0 || sv > 1024 ||
                sv != floor(sv)) {
                rc = reject(diag, name, it.no, s, n, err, errlen, "bad socket number");
                goto next;
            }
            skt = (long)sv;
        }
        f.n[f.count - 1] = (size_t)(ls + ln - f.s[f.count - 1]);
        for (k = 1; k < f.count; k++) {
            double v;
            if (!drst_parse_double(f.s[k], f.s[k] + f.n[k], &v))
                break;
        }
        if (k < f.count) {
            rc = reject(diag, name, it.no, s, n, err, errlen, "non-numeric counter");
            goto next;
        }
        if (kind == 2) /* Hit = Total - Miss: validated, not kept */
            continue;
        {
            size_t p;
            for (p = 0; p < npairs; p++)
                if (pair_skt[p] == skt && pair_kind[p] == kind)
                    break;
            if (p == npairs) {
                long *ns = realloc(pair_skt, (npairs + 1) * sizeof(long));
                int *nk;
                if (!ns)
                    goto nomem;
                pair_skt = ns;
                nk = realloc(pair_kind, (npairs + 1) * sizeof(int));
                if (!nk)
                    goto nomem;
                pair_kind = nk;
                pair_skt[npairs] = skt;
                pair_kind[npairs] = kind;
                npairs++;
            }
            for (k = 1; k < f.count; k++) {
                double v = 0;
                if (ncells == capc) {
                    size_t nc = capc ? capc * 2 : 1024;
                    pcell_t *np = realloc(cells, nc * sizeof(*np));
                    if (!np)
                        goto nomem;
                    cells = np;
                    capc = nc;
                }
                (void)drst_parse_double(f.s[k], f.s[k] + f.n[k], &v);
                cells[ncells++] = (pcell_t){nblocks - 1, 1 + p * nmetrics + (k - 1), v};
            }
        }
    next:
        if (rc != DRST_OK)
            goto out;
    }
    if (add_name(&names, &nnames, &capn, "__block") < 0)
        goto nomem;
    for (size_t p = 0; p < npairs; p++)
        for (size_t k = 0; k < nmetrics; k++) {
            char full[3 * NAME_MAX_LEN];
            snprintf(full, sizeof(full), "%s%sskt%ld_%s_%s", prefix, *prefix ? "_" : "",
                     pair_skt[p], metrics[k], pair_kind[p] == 0 ? "total" : "miss");
            if (add_name(&names, &nnames, &capn, full) < 0)
                goto nomem;
        }
    t = drst_table_new((const char *const *)names, nnames, err, errlen);
    if (!t) {
        rc = DRST_ERR_NOMEM;
        goto out;
    }
    row = malloc(nnames * sizeof(double));
    if (!row)
        goto nomem;
    {
        size_t ci = 0;
        for (size_t b = 0; b < nblocks; b++) {
            row[0] = (double)b;
            for (size_t c = 1; c < nnames; c++)
                row[c] = NAN;
            while (ci < ncells && cells[ci].block == b) {
                row[cells[ci].col] = cells[ci].v;
                ci++;
            }
            if ((rc = drst_table_append(t, row, err, errlen)) != DRST_OK)
                goto out;
        }
    }
    goto out;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "%s: out of memory", name);
out:
    fields_free(&f);
    if (metrics)
        free_names(metrics, nmetrics);
    free_names(names, nnames);
    free(pair_skt);
    free(pair_kind);
    free(cells);
    free(row);
    if (rc != DRST_OK) {
        drst_table_free(t);
        return rc;
    }
    *out = t;
    return DRST_OK;
}
