/* Dataset builders: DRST raw bundles -> one aligned table (perf branch and
 * PCM branch). The rules are written down in docs/dataset.md; this file
 * follows them step by step. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error_int.h"
#include "telemetry/raw_int.h"
#include "telemetry/table_int.h"

#define PATHLEN 4096

/* ---- helpers shared by both branches ---- */

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist_t;

static void strlist_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int strlist_add(strlist_t *l, const char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        char **nv = realloc(l->v, nc * sizeof(char *));
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n])
        return -1;
    l->n++;
    return 0;
}

static long strlist_find(const strlist_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return (long)i;
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Regular *.csv files of a directory, sorted by name. */
static drst_err_t list_csv(const char *dir, strlist_t *out, char *err, size_t errlen)
{
    DIR *d;
    struct dirent *de;
    struct stat st;
    char path[PATHLEN];

    memset(out, 0, sizeof(*out));
    if (stat(dir, &st) != 0)
        return drst_seterrno(err, errlen, errno == ENOENT ? DRST_ERR_NOTFOUND : DRST_ERR_IO, errno,
                             "cannot open bundle '%s'", dir);
    if (!S_ISDIR(st.st_mode))
        return drst_seterr(err, errlen, DRST_ERR_IO, "bundle '%s' is not a directory", dir);
    d = opendir(dir);
    if (!d)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open bundle '%s'", dir);
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".csv"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        /* a *.csv that cannot even be stat'ed is kept: reading it names the error */
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            continue;
        if (strlist_add(out, de->d_name) < 0) {
            closedir(d);
            strlist_free(out);
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        }
    }
    closedir(d);
    if (out->n)
        qsort(out->v, out->n, sizeof(char *), cmp_str);
    return DRST_OK;
}

/* VNF order: rank in the --vnf-order list, unlisted names after (alphabetical). */
typedef struct ranked {
    size_t rank;
    const char *name;
    size_t idx;
} ranked_t;

static size_t vnf_rank(const char *order, const char *name)
{
    const char *p = order ? order : DRST_DEFAULT_VNF_ORDER;
    size_t r = 0, n = strlen(name);
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len == n && memcmp(p, name, n) == 0)
            return r;
        r++;
        if (!c)
            break;
        p = c + 1;
    }
    return (size_t)-1;
}

static int cmp_ranked(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Sorted permutation of names[] by the VNF order rule (caller frees). */
static size_t *vnf_sort(const char *order, char *const *names, size_t n)
{
    ranked_t *r = malloc((n ? n : 1) * sizeof(*r));
    size_t *perm = malloc((n ? n : 1) * sizeof(size_t));
    if (!r || !perm) {
        free(r);
        free(perm);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked_t){vnf_rank(order, names[i]), names[i], i};
    qsort(r, n, sizeof(*r), cmp_ranked);
    for (size_t i = 0; i < n; i++)
        perm[i] = r[i].idx;
    free(r);
    return perm;
}

static drst_err_t load(const char *dir, const char *file, char *path, char **buf, size_t *len,
                       char *err, size_t errlen)
{
    snprintf(path, PATHLEN, "%s/%s", dir, file);
    return drst_read_file(path, buf, len, err, errlen);
}

static void fit_warn(drst_diag_t *diag, const char *file, size_t have, size_t rows)
{
    if (have > rows)
        drst_diag_warn(diag, file, 0, "%zu values for %zu rows: %zu truncated", have, rows,
                       have - rows);
    else if (have < rows)
        drst_diag_warn(diag, file, 0, "%zu values for %zu rows: padded with %zu empty cells", have,
                       rows, rows - have);
}

static int file_exists(const char *dir, const char *file)
{
    char path[PATHLEN];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return stat(path, &st) == 0;
}

static drst_err_t parse_series_file(const char *dir, const char *file, int latency,
                                    drst_series_t *s, drst_diag_t *diag, char *err, size_t errlen)
{
    char path[PATHLEN], *buf = NULL;
    size_t len = 0;
    drst_err_t rc = load(dir, file, path, &buf, &len, err, errlen);
    if (rc != DRST_OK)
        return rc;
    rc = latency ? drst_latency_parse(buf, len, path, s, diag, err, errlen)
                 : drst_rxtx_parse(buf, len, path, s, diag, err, errlen);
    free(buf);
    return rc;
}

/* latency.csv, or latency_old.csv when it is missing or has no usable line. */
static drst_err_t parse_latency(const char *dir, drst_series_t *lat, char *used, size_t usedlen,
                                int required, drst_diag_t *diag, char *err, size_t errlen)
{
    drst_err_t rc;
    int have = file_exists(dir, "latency.csv"), have_old = file_exists(dir, "latency_old.csv");
    memset(lat, 0, sizeof(*lat));
    snprintf(used, usedlen, "%s/latency.csv", dir);
    if (!have && !have_old) {
        if (required)
            return drst_seterr(err, errlen, DRST_ERR_NOTFOUND,
                               "bundle '%s': missing latency.csv (and latency_old.csv)", dir);
        drst_diag_warn(diag, used, 0, "missing (and no latency_old.csv): latency left empty");
        return DRST_OK;
    }
    if (have) {
        if ((rc = parse_series_file(dir, "latency.csv", 1, lat, diag, err, errlen)) != DRST_OK)
            return rc;
        if (lat->n)
            return DRST_OK;
    }
    if (!have_old) {
        drst_diag_warn(diag, used, 0, "no usable line (and no latency_old.csv): latency empty");
        return DRST_OK;
    }
    drst_series_release(lat);
    drst_diag_warn(diag, used, 0, "%s; using latency_old.csv", have ? "no usable line" : "missing");
    snprintf(used, usedlen, "%s/latency_old.csv", dir);
    return parse_series_file(dir, "latency_old.csv", 1, lat, diag, err, errlen);
}

/* ---- perf branch ---- */

typedef struct bundle {
    char *dir;
    strlist_t vnf_names; /* in VNF order */
    drst_perf_t *perf;   /* per VNF, same order */
    char **perf_path;
    drst_series_t tx, rx, lat;
    char lat_path[PATHLEN];
} bundle_t;

static void bundle_release(bundle_t *b)
{
    for (size_t i = 0; i < b->vnf_names.n; i++) {
        if (b->perf)
            drst_perf_release(&b->perf[i]);
        if (b->perf_path)
            free(b->perf_path[i]);
    }
    free(b->perf);
    free(b->perf_path);
    strlist_free(&b->vnf_names);
    drst_series_release(&b->tx);
    drst_series_release(&b->rx);
    drst_series_release(&b->lat);
    free(b->dir);
}

static int known_non_vnf(const char *f)
{
    return !strcmp(f, "tx_stats.csv") || !strcmp(f, "rx_stats.csv") || !strcmp(f, "latency.csv") ||
           !strcmp(f, "latency_old.csv") || !strcmp(f, "nf_out.csv") || strstr(f, "-pcm") ||
           !strncmp(f, "pcm-", 4);
}

static drst_err_t load_bundle(const char *dir, const drst_dataset_opts_t *o, bundle_t *b,
                              drst_diag_t *diag, char *err, size_t errlen)
{
    strlist_t files, names = {0};
    drst_perf_t *perfs = NULL;
    char **paths = NULL;
    size_t nperf = 0, *perm = NULL;
    char path[PATHLEN];
    drst_err_t rc;

    memset(b, 0, sizeof(*b));
    b->dir = strdup(dir);
    if (!b->dir)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    if ((rc = list_csv(dir, &files, err, errlen)) != DRST_OK)
        return rc;
    perfs = calloc(files.n ? files.n : 1, sizeof(*perfs));
    paths = calloc(files.n ? files.n : 1, sizeof(char *));
    if (!perfs || !paths)
        goto nomem;
    for (size_t i = 0; i < files.n; i++) {
        const char *f = files.v[i];
        char *buf = NULL;
        size_t len = 0;
        if (known_non_vnf(f))
            continue;
        if ((rc = load(dir, f, path, &buf, &len, err, errlen)) != DRST_OK)
            goto fail;
        if (!drst_perf_detect(buf, len)) {
            drst_diag_warn(diag, path, 0, "not a perf-stat -x, file; ignored");
            free(buf);
            continue;
        }
        rc = drst_perf_parse(buf, len, path, &perfs[nperf], diag, err, errlen);
        free(buf);
        if (rc != DRST_OK)
            goto fail;
        paths[nperf] = strdup(path);
        {
            char vnf[PATHLEN];
            snprintf(vnf, sizeof(vnf), "%.*s", (int)(strlen(f) - 4), f);
            if (!paths[nperf] || strlist_add(&names, vnf) < 0) {
                nperf++;
                goto nomem;
            }
        }
        nperf++;
    }
    if (nperf == 0) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY,
                         "bundle '%s': no perf-stat VNF files (*.csv written by perf stat -x,)",
                         dir);
        goto fail;
    }
    /* order VNFs */
    perm = vnf_sort(o->vnf_order, names.v, names.n);
    b->perf = calloc(nperf, sizeof(*b->perf));
    b->perf_path = calloc(nperf, sizeof(char *));
    if (!perm || !b->perf || !b->perf_path)
        goto nomem;
    for (size_t i = 0; i < nperf; i++) {
        if (strlist_add(&b->vnf_names, names.v[perm[i]]) < 0)
            goto nomem;
        b->perf[i] = perfs[perm[i]];
        b->perf_path[i] = paths[perm[i]];
        memset(&perfs[perm[i]], 0, sizeof(perfs[0]));
        paths[perm[i]] = NULL;
    }
    for (int k = 0; k < 2; k++) {
        const char *f = k ? "rx_stats.csv" : "tx_stats.csv";
        if (!file_exists(dir, f)) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "bundle '%s': missing %s", dir, f);
            goto fail;
        }
        if ((rc = parse_series_file(dir, f, 0, k ? &b->rx : &b->tx, diag, err, errlen)) != DRST_OK)
            goto fail;
    }
    rc = parse_latency(dir, &b->lat, b->lat_path, sizeof(b->lat_path), 1, diag, err, errlen);
    if (rc != DRST_OK)
        goto fail;
    goto out;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "bundle '%s': out of memory", dir);
fail:
    for (size_t i = 0; i < nperf; i++) {
        drst_perf_release(&perfs[i]);
        free(paths[i]);
    }
    nperf = 0;
out:
    for (size_t i = 0; i < nperf; i++)
        free(paths[i]);
    free(perfs);
    free(paths);
    free(perm);
    strlist_free(&files);
    strlist_free(&names);
    return rc;
}

drst_err_t drst_dataset_build_perf(const char *const *dirs, size_t ndirs,
                                   const drst_dataset_opts_t *opts, drst_table_t **out,
                                   drst_diag_t *diag, char *err, size_t errlen)
{
    drst_dataset_opts_t o = {0};
    bundle_t *b = NULL;
    strlist_t vnfs = {0}, events = {0}, cols = {0};
    size_t *perm = NULL, nb = 0;
    unsigned char *present = NULL; /* [vnf][event] */
    long *colmap = NULL;           /* [vnf][event] -> output column */
    drst_table_t *t = NULL;
    double *row = NULL;
    drst_err_t rc = DRST_OK;
    char name[PATHLEN];

    if (!out || (!dirs && ndirs))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_dataset_build_perf: NULL argument");
    *out = NULL;
    if (ndirs == 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "no bundle directory given");
    if (opts)
        o = *opts;
    b = calloc(ndirs, sizeof(*b));
    if (!b)
        goto nomem;
    for (nb = 0; nb < ndirs; nb++)
        if ((rc = load_bundle(dirs[nb], &o, &b[nb], diag, err, errlen)) != DRST_OK) {
            bundle_release(&b[nb]);
            goto out;
        }
    /* union of VNFs (VNF order), events (first appearance) and columns */
    for (size_t i = 0; i < nb; i++)
        for (size_t v = 0; v < b[i].vnf_names.n; v++)
            if (strlist_find(&vnfs, b[i].vnf_names.v[v]) < 0 &&
                strlist_add(&vnfs, b[i].vnf_names.v[v]) < 0)
                goto nomem;
    perm = vnf_sort(o.vnf_order, vnfs.v, vnfs.n);
    if (!perm)
        goto nomem;
    {
        char **sorted = malloc(vnfs.n * sizeof(char *));
        if (!sorted)
            goto nomem;
        for (size_t i = 0; i < vnfs.n; i++)
            sorted[i] = vnfs.v[perm[i]];
        memcpy(vnfs.v, sorted, vnfs.n * sizeof(char *));
        free(sorted);
    }
    for (size_t i = 0; i < nb; i++)
        for (size_t v = 0; v < b[i].vnf_names.n; v++)
            for (size_t e = 0; e < b[i].perf[v].nev; e++)
                if (strlist_find(&events, b[i].perf[v].events[e]) < 0 &&
                    strlist_add(&events, b[i].perf[v].events[e]) < 0)
                    goto nomem;
    present = calloc(vnfs.n * events.n + 1, 1);
    colmap = malloc((vnfs.n * events.n + 1) * sizeof(long));
    if (!present || !colmap)
        goto nomem;
    for (size_t i = 0; i < nb; i++)
        for (size_t v = 0; v < b[i].vnf_names.n; v++) {
            long gv = strlist_find(&vnfs, b[i].vnf_names.v[v]);
            for (size_t e = 0; e < b[i].perf[v].nev; e++)
                present[(size_t)gv * events.n +
                        (size_t)strlist_find(&events, b[i].perf[v].events[e])] = 1;
        }
    if (strlist_add(&cols, "input_rate") < 0 || strlist_add(&cols, "output_rate") < 0 ||
        strlist_add(&cols, "latency") < 0)
        goto nomem;
    for (size_t e = 0; e < events.n; e++)
        for (size_t v = 0; v < vnfs.n; v++) {
            colmap[v * events.n + e] = -1;
            if (!present[v * events.n + e])
                continue;
            snprintf(name, sizeof(name), "%s_%s", vnfs.v[v], events.v[e]);
            colmap[v * events.n + e] = (long)cols.n;
            if (strlist_add(&cols, name) < 0)
                goto nomem;
        }
    t = drst_table_new((const char *const *)cols.v, cols.n, err, errlen);
    row = malloc(cols.n * sizeof(double));
    if (!t || !row)
        goto nomem;
    for (size_t i = 0; i < nb; i++) {
        bundle_t *bb = &b[i];
        size_t nrows = bb->perf[0].nint;
        long *lmap; /* local (vnf, event) -> column */
        size_t nl = 0;
        if (nrows == 0)
            drst_diag_warn(diag, bb->perf_path[0], 0,
                           "first VNF (in VNF order) has no usable interval: bundle adds no row");
        for (size_t v = 1; v < bb->vnf_names.n; v++)
            fit_warn(diag, bb->perf_path[v], bb->perf[v].nint, nrows);
        snprintf(name, sizeof(name), "%s/tx_stats.csv", bb->dir);
        fit_warn(diag, name, bb->tx.n, nrows);
        snprintf(name, sizeof(name), "%s/rx_stats.csv", bb->dir);
        fit_warn(diag, name, bb->rx.n, nrows);
        fit_warn(diag, bb->lat_path, bb->lat.n, nrows);
        for (size_t v = 0; v < bb->vnf_names.n; v++)
            nl += bb->perf[v].nev;
        lmap = malloc((nl + 1) * sizeof(long));
        if (!lmap)
            goto nomem;
        nl = 0;
        for (size_t v = 0; v < bb->vnf_names.n; v++) {
            size_t gv = (size_t)strlist_find(&vnfs, bb->vnf_names.v[v]);
            for (size_t e = 0; e < bb->perf[v].nev; e++)
                lmap[nl++] =
                    colmap[gv * events.n + (size_t)strlist_find(&events, bb->perf[v].events[e])];
        }
        for (size_t r = 0; r < nrows; r++) {
            for (size_t c = 0; c < cols.n; c++)
                row[c] = NAN;
            row[0] = r < bb->tx.n ? bb->tx.v[r] : NAN;
            row[1] = r < bb->rx.n ? bb->rx.v[r] : NAN;
            row[2] = r < bb->lat.n ? bb->lat.v[r] : NAN;
            nl = 0;
            for (size_t v = 0; v < bb->vnf_names.n; v++) {
                const drst_perf_t *p = &bb->perf[v];
                for (size_t e = 0; e < p->nev; e++, nl++)
                    if (r < p->nint)
                        row[lmap[nl]] = p->vals[r * p->nev + e];
            }
            if ((rc = drst_table_append(t, row, err, errlen)) != DRST_OK) {
                free(lmap);
                goto out;
            }
        }
        free(lmap);
    }
    goto out;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "dataset: out of memory");
out:
    if (b)
        for (size_t i = 0; i < nb; i++)
            bundle_release(&b[i]);
    free(b);
    free(perm);
    free(present);
    free(colmap);
    free(row);
    strlist_free(&vnfs);
    strlist_free(&events);
    strlist_free(&cols);
    if (rc != DRST_OK) {
        drst_table_free(t);
        return rc;
    }
    *out = t;
    return DRST_OK;
}

/* ---- PCM branch ---- */

typedef struct pcmfile {
    char *path;
    drst_table_t *t;
    int pcie; /* block-indexed, no timestamps */
} pcmfile_t;

static drst_err_t load_pcm_file(const char *dir, const char *file, const char *prefix, int pcie,
                                pcmfile_t *pf, int *ok, drst_diag_t *diag, char *err, size_t errlen)
{
    char path[PATHLEN], *buf = NULL;
    size_t len = 0;
    drst_err_t rc;
    char sub[DRST_ERRLEN];
    *ok = 0;
    if ((rc = load(dir, file, path, &buf, &len, err, errlen)) != DRST_OK)
        return rc;
    rc = pcie ? drst_pcie_parse(buf, len, path, prefix, &pf->t, diag, sub, sizeof(sub))
              : drst_pcm_parse(buf, len, path, prefix, &pf->t, diag, sub, sizeof(sub));
    free(buf);
    if (rc == DRST_ERR_FORMAT) {
        /* not a PCM file after all: the whole file is rejected, the rest used */
        return drst_diag_reject(diag, path, 1, NULL, 0, err, errlen, "%s", sub);
    }
    if (rc != DRST_OK) {
        drst_seterr(err, errlen, rc, "%s", sub);
        return rc;
    }
    pf->path = strdup(path);
    pf->pcie = pcie;
    if (!pf->path) {
        drst_table_free(pf->t);
        pf->t = NULL;
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    }
    *ok = 1;
    return DRST_OK;
}

drst_err_t drst_dataset_build_pcm(const char *dir, const drst_dataset_opts_t *opts,
                                  drst_table_t **out, drst_diag_t *diag, char *err, size_t errlen)
{
    drst_dataset_opts_t o = {0};
    strlist_t files = {0}, vnfpref = {0}, cols = {0};
    pcmfile_t *pf = NULL;
    size_t npf = 0, *perm = NULL;
    drst_series_t tx = {0}, rx = {0}, lat = {0};
    char lat_path[PATHLEN], path[PATHLEN];
    drst_table_t *t = NULL;
    double start = -INFINITY, end = INFINITY, offset = 0, *row = NULL;
    size_t nrows = 0;
    drst_err_t rc;
    int have_tx = 0, have_rx = 0;

    if (!out || !dir)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_dataset_build_pcm: NULL argument");
    *out = NULL;
    if (opts)
        o = *opts;
    if ((rc = list_csv(dir, &files, err, errlen)) != DRST_OK)
        return rc;
    pf = calloc(files.n + 1, sizeof(*pf));
    if (!pf)
        goto nomem;
    /* per-VNF <x>-pcm.csv first, in VNF order */
    for (size_t i = 0; i < files.n; i++)
        if (ends_with(files.v[i], "-pcm.csv")) {
            snprintf(path, sizeof(path), "%.*s", (int)(strlen(files.v[i]) - 8), files.v[i]);
            if (strlist_add(&vnfpref, path) < 0)
                goto nomem;
        }
    perm = vnf_sort(o.vnf_order, vnfpref.v, vnfpref.n);
    if (!perm)
        goto nomem;
    for (size_t i = 0; i < vnfpref.n; i++) {
        int ok;
        const char *pre = vnfpref.v[perm[i]];
        snprintf(path, sizeof(path), "%s-pcm.csv", pre);
        if ((rc = load_pcm_file(dir, path, pre, 0, &pf[npf], &ok, diag, err, errlen)) != DRST_OK)
            goto out;
        npf += (size_t)ok;
    }
    /* then pcm-<x>.csv, alphabetical; pcm-pcie.csv has its block format */
    for (size_t i = 0; i < files.n; i++) {
        const char *f = files.v[i];
        int ok;
        if (strncmp(f, "pcm-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%.*s", (int)(strlen(f) - 8), f + 4);
        if ((rc = load_pcm_file(dir, f, path, strcmp(f, "pcm-pcie.csv") == 0, &pf[npf], &ok, diag,
                                err, errlen)) != DRST_OK)
            goto out;
        npf += (size_t)ok;
    }
    for (size_t i = 0; i < files.n; i++) {
        const char *f = files.v[i];
        if (ends_with(f, "-pcm.csv") || !strncmp(f, "pcm-", 4) || !strcmp(f, "tx_stats.csv") ||
            !strcmp(f, "rx_stats.csv") || !strcmp(f, "latency.csv") ||
            !strcmp(f, "latency_old.csv"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, f);
        drst_diag_warn(diag, path, 0, "not used by the PCM branch; ignored");
    }
    for (size_t i = 0; i < npf; i++) {
        double lo = INFINITY, hi = -INFINITY;
        if (pf[i].pcie)
            continue;
        for (size_t r = 0; r < pf[i].t->nrows; r++) {
            double s = floor(drst_table_at(pf[i].t, r, 0));
            lo = s < lo ? s : lo;
            hi = s > hi ? s : hi;
        }
        if (pf[i].t->nrows == 0) {
            drst_diag_warn(diag, pf[i].path, 0, "no usable row; not used for the time window");
            continue;
        }
        start = lo > start ? lo : start;
        end = hi < end ? hi : end;
    }
    if (!isfinite(start) || !isfinite(end) || start > end) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY,
                         "bundle '%s': no timestamped PCM rows (or the PCM files do not overlap "
                         "in time)",
                         dir);
        goto out;
    }
    nrows = (size_t)(end - start) + 1;

    if ((have_tx = file_exists(dir, "tx_stats.csv")) &&
        (rc = parse_series_file(dir, "tx_stats.csv", 0, &tx, diag, err, errlen)) != DRST_OK)
        goto out;
    if ((have_rx = file_exists(dir, "rx_stats.csv")) &&
        (rc = parse_series_file(dir, "rx_stats.csv", 0, &rx, diag, err, errlen)) != DRST_OK)
        goto out;
    if (!have_tx) {
        snprintf(path, sizeof(path), "%s/tx_stats.csv", dir);
        drst_diag_warn(diag, path, 0, "missing: input_rate left empty");
    }
    if (!have_rx) {
        snprintf(path, sizeof(path), "%s/rx_stats.csv", dir);
        drst_diag_warn(diag, path, 0, "missing: output_rate left empty");
    }
    if ((rc = parse_latency(dir, &lat, lat_path, sizeof(lat_path), 0, diag, err, errlen)) !=
        DRST_OK)
        goto out;

    /* PCM's Date+Time is local time without a zone; rx/tx carry epoch seconds. */
    if (o.pcm_utc_offset_set) {
        offset = o.pcm_utc_offset;
    } else {
        double lo = INFINITY, hi = -INFINITY, best = -1;
        for (int k = 0; k < 2; k++) {
            const drst_series_t *s = k ? &rx : &tx;
            for (size_t i = 0; i < s->n; i++)
                if (isfinite(s->t[i])) {
                    lo = s->t[i] < lo ? s->t[i] : lo;
                    hi = s->t[i] > hi ? s->t[i] : hi;
                }
        }
        if (isfinite(lo)) {
            for (int h = 0; h <= 26; h++) {
                /* 0, -1, +1, -2, +2 ... so ties go to the smallest |offset| */
                int off = h % 2 ? -(h + 1) / 2 : h / 2;
                double a, bnd, ov;
                if (off < -12 || off > 14)
                    continue;
                a = start - off * 3600.0 > lo ? start - off * 3600.0 : lo;
                bnd = end - off * 3600.0 < hi ? end - off * 3600.0 : hi;
                ov = bnd - a;
                if (ov > best) {
                    best = ov;
                    offset = off;
                }
            }
            if (best < 0) {
                offset = 0;
                snprintf(path, sizeof(path), "%s", dir);
                drst_diag_warn(diag, path, 0,
                               "PCM times and rx/tx times do not overlap for any UTC offset; "
                               "using 0 (set --utc-offset)");
            }
        }
    }

    if (strlist_add(&cols, "time") < 0 || strlist_add(&cols, "input_rate") < 0 ||
        strlist_add(&cols, "output_rate") < 0 || strlist_add(&cols, "latency") < 0)
        goto nomem;
    for (size_t i = 0; i < npf; i++)
        for (size_t c = 1; c < pf[i].t->ncols; c++) {
            const char *nm = pf[i].t->names[c];
            char buf[PATHLEN];
            int k = 1;
            snprintf(buf, sizeof(buf), "%s", nm);
            while (strlist_find(&cols, buf) >= 0)
                snprintf(buf, sizeof(buf), "%s_%d", nm, ++k);
            if (strlist_add(&cols, buf) < 0)
                goto nomem;
        }
    t = drst_table_new((const char *const *)cols.v, cols.n, err, errlen);
    if (!t)
        goto nomem;
    if (drst_table_reserve(t, nrows) != DRST_OK)
        goto nomem;
    for (size_t r = 0; r < nrows; r++) {
        double *d = t->data + r * t->ncols;
        d[0] = start + (double)r - offset * 3600.0;
        for (size_t c = 1; c < t->ncols; c++)
            d[c] = NAN;
    }
    t->nrows = nrows;
    {
        size_t col = 4;
        unsigned char *seen = malloc(nrows);
        if (!seen)
            goto nomem;
        for (size_t i = 0; i < npf; i++) {
            drst_table_t *s = pf[i].t;
            size_t dup = 0, outside = 0, missing = 0;
            memset(seen, 0, nrows);
            for (size_t r = 0; r < s->nrows; r++) {
                double key = pf[i].pcie ? (double)r : floor(drst_table_at(s, r, 0)) - start;
                size_t idx;
                if (key < 0 || key >= (double)nrows) {
                    outside++;
                    continue;
                }
                idx = (size_t)key;
                if (seen[idx]) {
                    dup++;
                    continue;
                }
                seen[idx] = 1;
                memcpy(t->data + idx * t->ncols + col, s->data + r * s->ncols + 1,
                       (s->ncols - 1) * sizeof(double));
            }
            for (size_t r = 0; r < nrows; r++)
                missing += !seen[r];
            if (pf[i].pcie) {
                fit_warn(diag, pf[i].path, s->nrows, nrows);
            } else {
                if (outside)
                    drst_diag_warn(diag, pf[i].path, 0,
                                   "%zu row(s) outside the common time window dropped", outside);
                if (dup)
                    drst_diag_warn(diag, pf[i].path, 0,
                                   "%zu row(s) in an already filled second dropped", dup);
                if (missing)
                    drst_diag_warn(diag, pf[i].path, 0, "%zu second(s) without a sample left empty",
                                   missing);
            }
            col += s->ncols - 1;
        }
        /* rx/tx: epoch seconds -> row; latency: k-th value at tx's first second + k */
        for (int k = 0; k < 3; k++) {
            const drst_series_t *s = k == 0 ? &tx : k == 1 ? &rx : &lat;
            double base = NAN;
            size_t used = 0, dup = 0;
            if (k == 2) {
                base = tx.n && isfinite(tx.t[0])   ? tx.t[0]
                       : rx.n && isfinite(rx.t[0]) ? rx.t[0]
                                                   : NAN;
                if (s->n && !isfinite(base)) {
                    drst_diag_warn(diag, lat_path, 0,
                                   "no rx/tx timestamps to place latency values: left empty");
                    continue;
                }
            }
            memset(seen, 0, nrows);
            for (size_t i = 0; i < s->n; i++) {
                double epoch = k == 2 ? base + (double)i : floor(s->t[i]);
                double key = epoch + offset * 3600.0 - start;
                size_t idx;
                if (!isfinite(key) || key < 0 || key >= (double)nrows)
                    continue;
                idx = (size_t)key;
                if (seen[idx]) {
                    dup++;
                    continue;
                }
                seen[idx] = 1;
                t->data[idx * t->ncols + 1 + (size_t)k] = s->v[i];
                used++;
            }
            if (k < 2 ? (k ? have_rx : have_tx) : s->n > 0) {
                snprintf(path, sizeof(path), "%s/%s", dir,
                         k == 0 ? "tx_stats.csv" : "rx_stats.csv");
                if (s->n > used)
                    drst_diag_warn(diag, k == 2 ? lat_path : path, 0,
                                   "%zu of %zu values outside the PCM time window%s dropped",
                                   s->n - used, s->n, dup ? " or in a filled second" : "");
            }
        }
        free(seen);
    }
    for (size_t c = 0; c < t->ncols; c++)
        for (size_t r = 0; r < nrows; r++)
            if (isnan(t->data[r * t->ncols + c]))
                t->n_empty[c]++;
    rc = DRST_OK;
    goto out;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "bundle '%s': out of memory", dir);
out:
    for (size_t i = 0; i < npf; i++) {
        drst_table_free(pf[i].t);
        free(pf[i].path);
    }
    free(pf);
    free(perm);
    free(row);
    strlist_free(&files);
    strlist_free(&vnfpref);
    strlist_free(&cols);
    drst_series_release(&tx);
    drst_series_release(&rx);
    drst_series_release(&lat);
    if (rc != DRST_OK) {
        drst_table_free(t);
        return rc;
    }
    *out = t;
    return DRST_OK;
}
