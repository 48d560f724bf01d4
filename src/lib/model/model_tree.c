/* tree: a CART regression tree (variance reduction), and the flat forest
 * representation it shares with gbdt. Nodes are stored in preorder, every
 * child after its parent, so a walk always terminates and the array can be
 * compiled to C as is. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "model/model_int.h"

#define MAX_DEPTH_LIMIT 64
#define MAX_NODES       (1u << 26)

/* ---------------------------------------------------------- the forest */

void model_forest_predict(const drst_model_t *m, const double *xs, size_t n, double *y,
                          int float_cmp)
{
    const model_node_t *nodes = m->nodes;
    size_t nf = m->nf;
    for (size_t r = 0; r < n; r++) {
        const double *x = xs + r * nf;
        double s = m->base;
        for (size_t t = 0; t < m->ntrees; t++) {
            const model_node_t *nd = &nodes[m->roots[t]];
            if (float_cmp) {
                while (nd->feature >= 0)
                    nd =
                        &nodes[(float)x[nd->feature] < (float)nd->threshold ? nd->left : nd->right];
            } else {
                while (nd->feature >= 0)
                    nd = &nodes[x[nd->feature] <= nd->threshold ? nd->left : nd->right];
            }
            s += nd->value;
        }
        y[r] = s;
    }
}

void model_forest_save(const drst_model_t *m, wbuf_t *w)
{
    wbuf_u64(w, m->ntrees);
    wbuf_u64(w, m->nnodes);
    wbuf_f64(w, m->base);
    for (size_t t = 0; t < m->ntrees; t++)
        wbuf_u32(w, m->roots[t]);
    for (size_t i = 0; i < m->nnodes; i++) {
        const model_node_t *nd = &m->nodes[i];
        wbuf_u32(w, (uint32_t)nd->feature);
        wbuf_u32(w, (uint32_t)nd->left);
        wbuf_u32(w, (uint32_t)nd->right);
        wbuf_f64(w, nd->threshold);
        wbuf_f64(w, nd->value);
    }
}

void model_forest_load(drst_model_t *m, rbuf_t *r)
{
    uint64_t nt = rbuf_u64(r, "tree count");
    uint64_t nn = rbuf_u64(r, "node count");
    m->base = rbuf_f64(r, "forest base");
    if (r->bad)
        return;
    if (nt == 0 || nn == 0 || nn > MAX_NODES || nt > nn || nn > (r->len - r->pos) / 28 ||
        !isfinite(m->base)) {
        rbuf_fail(r, "forest header");
        return;
    }
    m->roots = malloc(nt * sizeof(*m->roots));
    m->nodes = malloc(nn * sizeof(*m->nodes));
    if (!m->roots || !m->nodes) {
        rbuf_fail(r, "out of memory");
        return;
    }
    m->ntrees = nt;
    m->nnodes = nn;
    for (size_t t = 0; t < nt; t++) {
        m->roots[t] = rbuf_u32(r, "tree roots");
        if (!r->bad && m->roots[t] >= nn)
            rbuf_fail(r, "tree roots");
    }
    for (size_t i = 0; i < nn && !r->bad; i++) {
        model_node_t *nd = &m->nodes[i];
        nd->feature = (int32_t)rbuf_u32(r, "tree node");
        nd->left = (int32_t)rbuf_u32(r, "tree node");
        nd->right = (int32_t)rbuf_u32(r, "tree node");
        nd->threshold = rbuf_f64(r, "tree node");
        nd->value = rbuf_f64(r, "tree node");
        if (r->bad)
            break;
        if (nd->feature >= 0) {
            if ((size_t)nd->feature >= m->nf || nd->left <= (int32_t)i || nd->right <= (int32_t)i ||
                (uint64_t)nd->left >= nn || (uint64_t)nd->right >= nn || isnan(nd->threshold))
                rbuf_fail(r, "tree node");
        } else if (nd->feature != -1 || !isfinite(nd->value)) {
            rbuf_fail(r, "tree leaf");
        }
    }
}

/* ------------------------------------------------------------ CART fit */

typedef struct cart {
    const double *X, *y;
    size_t nf, min_leaf, max_depth;
    model_node_t *nodes;
    size_t nnodes, cap;
    double *vals; /* sort buffer: (value, y) pairs */
    size_t *order;
} cart_t;

typedef struct pair {
    double x, y;
} pair_t;

static int cmp_pair(const void *a, const void *b)
{
    double x = ((const pair_t *)a)->x, y = ((const pair_t *)b)->x;
    return (x > y) - (x < y);
}

static int new_node(cart_t *c)
{
    if (c->nnodes == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        if (cap > MAX_NODES)
            return -1;
        model_node_t *p = realloc(c->nodes, cap * sizeof(*p));
        if (!p)
            return -1;
        c->nodes = p;
        c->cap = cap;
    }
    memset(&c->nodes[c->nnodes], 0, sizeof(model_node_t));
    c->nodes[c->nnodes].feature = -1;
    return (int)c->nnodes++;
}

/* Builds the subtree for rows idx[0..n) (reordered in place). */
static int grow(cart_t *c, size_t *idx, size_t n, size_t depth, pair_t *buf)
{
    int me = new_node(c);
    if (me < 0)
        return -1;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += c->y[idx[i]];
        sq += c->y[idx[i]] * c->y[idx[i]];
    }
    c->nodes[me].value = sum / (double)n;
    if (depth >= c->max_depth || n < 2 * c->min_leaf || sq - sum * sum / (double)n <= 1e-12)
        return me;
    double best_gain = sum * sum / (double)n + 1e-12;
    long best_f = -1;
    double best_thr = 0;
    for (size_t f = 0; f < c->nf; f++) {
        for (size_t i = 0; i < n; i++) {
            buf[i].x = c->X[idx[i] * c->nf + f];
            buf[i].y = c->y[idx[i]];
        }
        qsort(buf, n, sizeof(*buf), cmp_pair);
        double ls = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            ls += buf[i].y;
            size_t nl = i + 1, nr = n - nl;
            if (nl < c->min_leaf || nr < c->min_leaf || buf[i].x == buf[i + 1].x)
                continue;
            double rs = sum - ls;
            double gain = ls * ls / (double)nl + rs * rs / (double)nr;
            if (gain > best_gain) {
                best_gain = gain;
                best_f = (long)f;
                best_thr = buf[i].x + (buf[i + 1].x - buf[i].x) / 2;
                if (!(best_thr < buf[i + 1].x))
                    best_thr = buf[i].x;
            }
        }
    }
    if (best_f < 0)
        return me;
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->X[idx[i] * c->nf + (size_t)best_f] <= best_thr) {
            size_t t = idx[nl];
            idx[nl++] = idx[i];
            idx[i] = t;
        }
    }
    int l = grow(c, idx, nl, depth + 1, buf);
    if (l < 0)
        return -1;
    int r = grow(c, idx + nl, n - nl, depth + 1, buf);
    if (r < 0)
        return -1;
    c->nodes[me].feature = (int32_t)best_f;
    c->nodes[me].threshold = best_thr;
    c->nodes[me].left = l;
    c->nodes[me].right = r;
    return me;
}

static drst_err_t tree_train(drst_model_t *m, const train_data_t *d, const drst_train_opts_t *o,
                             char *err, size_t errlen)
{
    cart_t c = {0};
    c.X = d->Xtr;
    c.y = d->ytr;
    c.nf = d->nf;
    c.max_depth = o->max_depth ? o->max_depth : 10;
    c.min_leaf = o->min_samples_leaf ? o->min_samples_leaf : 5;
    if (c.max_depth > MAX_DEPTH_LIMIT)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "tree: max depth %zu above %d", c.max_depth,
                           MAX_DEPTH_LIMIT);
    m->hp.max_depth = c.max_depth;
    m->hp.min_samples_leaf = c.min_leaf;
    size_t *idx = malloc(d->n_train * sizeof(*idx));
    pair_t *buf = malloc(d->n_train * sizeof(*buf));
    m->roots = calloc(1, sizeof(*m->roots));
    if (!idx || !buf || !m->roots) {
        free(idx);
        free(buf);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "tree: out of memory");
    }
    for (size_t i = 0; i < d->n_train; i++)
        idx[i] = i;
    int root = grow(&c, idx, d->n_train, 0, buf);
    free(idx);
    free(buf);
    if (root < 0) {
        free(c.nodes);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "tree: out of memory");
    }
    m->nodes = c.nodes;
    m->nnodes = c.nnodes;
    m->ntrees = 1;
    m->base = 0;
    return DRST_OK;
}

static void tree_predict(const drst_model_t *m, const double *xs, size_t n, double *y, double *tmp)
{
    (void)tmp;
    model_forest_predict(m, xs, n, y, 0);
}

static size_t tree_scratch_per_row(const drst_model_t *m)
{
    (void)m;
    return 0;
}

const struct drst_model_ops drst_model_tree_ops = {
    .name = "tree",
    .family = DRST_MODEL_TREE,
    .train = tree_train,
    .save = model_forest_save,
    .load = model_forest_load,
    .predict = tree_predict,
    .scratch_per_row = tree_scratch_per_row,
};
