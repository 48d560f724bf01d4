/* gbdt: gradient-boosted trees trained by libxgboost (C API). After
 * training, xgboost's JSON dump is converted to our flat forest so that
 * prediction is allocation-free, thread-safe and independent of xgboost;
 * xgboost's own model bytes (UBJSON) are kept in the file as well. This is
 * the only file including xgboost/c_api.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>
#include <xgboost/c_api.h>

#include "common/error_int.h"
#include "common/lazylib_int.h"
#include "model/model_int.h"

#define MAX_XGB_RAW (1u << 30)

typedef struct forest_b {
    model_node_t *nodes;
    size_t n, cap;
} forest_b_t;

static int fb_new(forest_b_t *f)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 256;
        model_node_t *p = realloc(f->nodes, cap * sizeof(*p));
        if (!p)
            return -1;
        f->nodes = p;
        f->cap = cap;
    }
    memset(&f->nodes[f->n], 0, sizeof(model_node_t));
    f->nodes[f->n].feature = -1;
    return (int)f->n++;
}

static json_t *child_by_id(json_t *node, json_int_t id)
{
    json_t *kids = json_object_get(node, "children");
    size_t i;
    json_t *k;
    json_array_foreach(kids, i, k)
    {
        if (json_integer_value(json_object_get(k, "nodeid")) == id)
            return k;
    }
    return NULL;
}

/* preorder conversion; returns node index or -1 */
static int convert(forest_b_t *f, json_t *node, size_t nf, int depth)
{
    if (!json_is_object(node) || depth > 256)
        return -1;
    int me = fb_new(f);
    if (me < 0)
        return -1;
    json_t *leaf = json_object_get(node, "leaf");
    if (leaf) {
        f->nodes[me].value = json_number_value(leaf);
        return me;
    }
    const char *split = json_string_value(json_object_get(node, "split"));
    if (!split || split[0] != 'f')
        return -1;
    char *end;
    long fi = strtol(split + 1, &end, 10);
    if (*end || fi < 0 || (size_t)fi >= nf)
        return -1;
    double thr = json_number_value(json_object_get(node, "split_condition"));
    json_int_t yes = json_integer_value(json_object_get(node, "yes"));
    json_int_t no = json_integer_value(json_object_get(node, "no"));
    int l = convert(f, child_by_id(node, yes), nf, depth + 1);
    if (l < 0)
        return -1;
    int r = convert(f, child_by_id(node, no), nf, depth + 1);
    if (r < 0)
        return -1;
    f->nodes[me].feature = (int32_t)fi;
    f->nodes[me].threshold = thr;
    f->nodes[me].left = l;
    f->nodes[me].right = r;
    return me;
}

/* libxgboost is loaded on first use, not linked (common/lazylib_int.h says
 * why): only training calls it. Filled once (pthread_once), then read-only. */
static struct {
    const char *(*GetLastError)(void);
    int (*DMatrixCreateFromMat)(const float *, bst_ulong, bst_ulong, float, DMatrixHandle *);
    int (*DMatrixSetFloatInfo)(DMatrixHandle, const char *, const float *, bst_ulong);
    int (*DMatrixFree)(DMatrixHandle);
    int (*BoosterCreate)(const DMatrixHandle[], bst_ulong, BoosterHandle *);
    int (*BoosterSetParam)(BoosterHandle, const char *, const char *);
    int (*BoosterUpdateOneIter)(BoosterHandle, int, DMatrixHandle);
    int (*BoosterDumpModelEx)(BoosterHandle, const char *, int, const char *, bst_ulong *,
                              const char ***);
    int (*BoosterPredict)(BoosterHandle, DMatrixHandle, int, unsigned, int, bst_ulong *,
                          const float **);
    int (*BoosterSaveModelToBuffer)(BoosterHandle, const char *, bst_ulong *, const char **);
    int (*BoosterFree)(BoosterHandle);
} X;
static int xgb_loaded;
static char xgb_why[256];
static pthread_once_t xgb_once = PTHREAD_ONCE_INIT;

static void xgb_load(void)
{
    const lazy_sym_t syms[] = {
        LAZY_SYM(X.GetLastError, XGBGetLastError),
        LAZY_SYM(X.DMatrixCreateFromMat, XGDMatrixCreateFromMat),
        LAZY_SYM(X.DMatrixSetFloatInfo, XGDMatrixSetFloatInfo),
        LAZY_SYM(X.DMatrixFree, XGDMatrixFree),
        LAZY_SYM(X.BoosterCreate, XGBoosterCreate),
        LAZY_SYM(X.BoosterSetParam, XGBoosterSetParam),
        LAZY_SYM(X.BoosterUpdateOneIter, XGBoosterUpdateOneIter),
        LAZY_SYM(X.BoosterDumpModelEx, XGBoosterDumpModelEx),
        LAZY_SYM(X.BoosterPredict, XGBoosterPredict),
        LAZY_SYM(X.BoosterSaveModelToBuffer, XGBoosterSaveModelToBuffer),
        LAZY_SYM(X.BoosterFree, XGBoosterFree),
    };
    xgb_loaded = !lazy_load("libxgboost.so.0", "libxgboost0", syms, sizeof(syms) / sizeof(syms[0]),
                            xgb_why, sizeof(xgb_why));
}

static drst_err_t xgb_err(char *err, size_t errlen, const char *what)
{
    return drst_seterr(err, errlen, DRST_ERR_NUMERIC, "gbdt: xgboost %s: %s", what,
                       X.GetLastError());
}

static drst_err_t gbdt_train(drst_model_t *m, const train_data_t *d, const drst_train_opts_t *o,
                             char *err, size_t errlen)
{
    drst_err_t rc = DRST_OK;
    DMatrixHandle dm = NULL;
    BoosterHandle bst = NULL;
    forest_b_t fb = {0};
    size_t n = d->n_train, nf = d->nf;
    float *xf = malloc(n * nf * sizeof(float));
    float *yf = malloc(n * sizeof(float));
    float *pv = NULL;
    char buf[64];

    size_t depth = o->max_depth ? o->max_depth : 6;
    size_t ntrees = o->n_trees ? o->n_trees : 300;
    m->hp.max_depth = depth;
    m->hp.n_trees = ntrees;
    m->hp.min_samples_leaf = o->min_samples_leaf ? o->min_samples_leaf : 1;
    if (!(o->eta > 0 && o->eta <= 1) || depth > 32 || ntrees > 100000) {
        rc = drst_seterr(err, errlen, DRST_ERR_INVAL,
                         "gbdt: eta must be in (0, 1], max depth <= 32, trees <= 100000");
        goto out;
    }
    if (!xf || !yf) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "gbdt: out of memory");
        goto out;
    }
    pthread_once(&xgb_once, xgb_load);
    if (!xgb_loaded) {
        rc = drst_seterr(err, errlen, DRST_ERR_IO, "gbdt: %s", xgb_why);
        goto out;
    }
    for (size_t i = 0; i < n * nf; i++)
        xf[i] = (float)d->Xtr[i];
    for (size_t i = 0; i < n; i++)
        yf[i] = (float)d->ytr[i];
    if (X.DMatrixCreateFromMat(xf, (bst_ulong)n, (bst_ulong)nf, NAN, &dm) ||
        X.DMatrixSetFloatInfo(dm, "label", yf, (bst_ulong)n)) {
        rc = xgb_err(err, errlen, "data");
        goto out;
    }
    if (X.BoosterCreate(&dm, 1, &bst)) {
        rc = xgb_err(err, errlen, "create");
        goto out;
    }
    int prc = 0;
    prc |= X.BoosterSetParam(bst, "verbosity", "0");
    prc |= X.BoosterSetParam(bst, "objective", "reg:squarederror");
    prc |= X.BoosterSetParam(bst, "tree_method", "hist");
    prc |= X.BoosterSetParam(bst, "base_score", "0");
    snprintf(buf, sizeof(buf), "%.17g", o->eta);
    prc |= X.BoosterSetParam(bst, "eta", buf);
    snprintf(buf, sizeof(buf), "%zu", depth);
    prc |= X.BoosterSetParam(bst, "max_depth", buf);
    snprintf(buf, sizeof(buf), "%zu", (size_t)m->hp.min_samples_leaf);
    prc |= X.BoosterSetParam(bst, "min_child_weight", buf);
    snprintf(buf, sizeof(buf), "%d", o->nthread > 0 ? o->nthread : 1);
    prc |= X.BoosterSetParam(bst, "nthread", buf);
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)(m->seed & 0x7fffffff));
    prc |= X.BoosterSetParam(bst, "seed", buf);
    if (prc) {
        rc = xgb_err(err, errlen, "parameters");
        goto out;
    }
    for (size_t it = 0; it < ntrees; it++) {
        if (X.BoosterUpdateOneIter(bst, (int)it, dm)) {
            rc = xgb_err(err, errlen, "training");
            goto out;
        }
        if (o->progress && ((it + 1) % 10 == 0 || it + 1 == ntrees)) {
            drst_train_progress_t p = {it + 1, ntrees, NAN, NAN};
            o->progress(o->progress_opaque, &p);
        }
    }
    bst_ulong ndump = 0;
    const char **dump = NULL;
    if (X.BoosterDumpModelEx(bst, "", 0, "json", &ndump, &dump)) {
        rc = xgb_err(err, errlen, "dump");
        goto out;
    }
    m->roots = malloc((ndump ? ndump : 1) * sizeof(*m->roots));
    if (!m->roots) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "gbdt: out of memory");
        goto out;
    }
    for (bst_ulong t = 0; t < ndump; t++) {
        json_error_t je;
        json_t *tree = json_loads(dump[t], 0, &je);
        int root = tree ? convert(&fb, tree, nf, 0) : -1;
        json_decref(tree);
        if (root < 0) {
            rc = drst_seterr(err, errlen, DRST_ERR_FORMAT, "gbdt: cannot convert xgboost tree %llu",
                             (unsigned long long)t);
            goto out;
        }
        m->roots[t] = (uint32_t)root;
    }
    m->ntrees = ndump;
    m->nodes = fb.nodes;
    m->nnodes = fb.n;
    fb.nodes = NULL;
    m->base = 0;

    /* self-check: the flat forest must reproduce xgboost on the training rows
     * (xgboost sums leaves in float, hence the tolerance) */
    bst_ulong np = 0;
    const float *xp = NULL;
    if (X.BoosterPredict(bst, dm, 0, 0, 0, &np, &xp) || np != n) {
        rc = xgb_err(err, errlen, "predict");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        double ours;
        model_forest_predict(m, d->Xtr + i * nf, 1, &ours, 1);
        if (!(fabs(ours - (double)xp[i]) <= 1e-4 * (1 + fabs((double)xp[i])))) {
            rc = drst_seterr(err, errlen, DRST_ERR_NUMERIC,
                             "gbdt: converted trees disagree with xgboost on training row %zu "
                             "(%.9g vs %.9g)",
                             i, ours, (double)xp[i]);
            goto out;
        }
    }

    bst_ulong rawlen = 0;
    const char *raw = NULL;
    if (X.BoosterSaveModelToBuffer(bst, "{\"format\": \"ubj\"}", &rawlen, &raw)) {
        rc = xgb_err(err, errlen, "save");
        goto out;
    }
    m->xgb_raw = malloc(rawlen ? rawlen : 1);
    if (!m->xgb_raw) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "gbdt: out of memory");
        goto out;
    }
    memcpy(m->xgb_raw, raw, rawlen);
    m->xgb_len = rawlen;
out:
    free(fb.nodes);
    free(pv);
    free(xf);
    free(yf);
    if (bst)
        X.BoosterFree(bst);
    if (dm)
        X.DMatrixFree(dm);
    return rc;
}

static void gbdt_predict(const drst_model_t *m, const double *xs, size_t n, double *y, double *tmp)
{
    (void)tmp;
    model_forest_predict(m, xs, n, y, 1);
}

static size_t gbdt_scratch_per_row(const drst_model_t *m)
{
    (void)m;
    return 0;
}

static void gbdt_save(const drst_model_t *m, wbuf_t *w)
{
    model_forest_save(m, w);
    wbuf_u64(w, m->xgb_len);
    if (m->xgb_len)
        wbuf_put(w, m->xgb_raw, m->xgb_len);
}

static void gbdt_load(drst_model_t *m, rbuf_t *r)
{
    model_forest_load(m, r);
    uint64_t n = rbuf_u64(r, "xgboost model length");
    if (r->bad)
        return;
    if (n > MAX_XGB_RAW || n > r->len - r->pos) {
        rbuf_fail(r, "xgboost model length");
        return;
    }
    m->xgb_raw = malloc(n ? n : 1);
    if (!m->xgb_raw) {
        rbuf_fail(r, "out of memory");
        return;
    }
    memcpy(m->xgb_raw, r->p + r->pos, n);
    r->pos += n;
    m->xgb_len = n;
}

const struct drst_model_ops drst_model_gbdt_ops = {
    .name = "gbdt",
    .family = DRST_MODEL_GBDT,
    .train = gbdt_train,
    .save = gbdt_save,
    .load = gbdt_load,
    .predict = gbdt_predict,
    .scratch_per_row = gbdt_scratch_per_row,
};
