/* The retrainer: training data = base + replay + the frozen window (recent
 * rows weighted by duplication, the last val_frac held back for
 * validation); the tier's candidates are scored with short budgets and
 * halved (successive halving) on worker threads, the best is trained fully,
 * gated against the serving model on the held-back rows and, by default,
 * refitted on every row. Each candidate trains single-threaded with its own
 * seed, so results do not depend on the thread count or the schedule. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/error_int.h"
#include "control/control_int.h"

#define MAX_CAND 20

typedef struct cand {
    drst_train_opts_t o;
    char label[128];
    char hidden[64]; /* "64,32" for mlp, to test warm-start compatibility */
    double score;
    drst_err_t rc;
    drst_model_t *model;
    drst_model_metrics_t val;
    int alive;
} cand_t;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int family_allowed(const char *families, drst_model_family_t f)
{
    if (!families || !*families)
        return 1;
    const char *name = drst_model_family_name(f);
    size_t n = strlen(name);
    for (const char *p = families; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, name, n))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* The next candidate slot, with default options of `family`. */
static cand_t *new_cand(cand_t *c, size_t *n, drst_model_family_t family)
{
    cand_t *k = &c[(*n)++];
    drst_train_opts_init(&k->o);
    k->o.family = family;
    return k;
}

static void add_gbdt(cand_t *c, size_t *n, size_t depth, double eta, size_t leaf)
{
    cand_t *k = new_cand(c, n, DRST_MODEL_GBDT);
    k->o.max_depth = depth;
    k->o.eta = eta;
    k->o.min_samples_leaf = leaf;
    snprintf(k->label, sizeof(k->label), "gbdt depth=%zu eta=%g min_leaf=%zu", depth, eta, leaf);
}

static void add_mlp(cand_t *c, size_t *n, const char *hidden, drst_activation_t act, double lr,
                    size_t batch, double wd, drst_loss_t loss)
{
    cand_t *k = new_cand(c, n, DRST_MODEL_MLP);
    k->o.n_hidden = 0;
    for (const char *p = hidden; *p && k->o.n_hidden < DRST_MODEL_MAX_HIDDEN;) {
        char *e;
        k->o.hidden[k->o.n_hidden++] = (size_t)strtoul(p, &e, 10);
        p = *e == ',' ? e + 1 : e;
    }
    k->o.activation = act;
    k->o.lr = lr;
    k->o.batch = batch;
    k->o.weight_decay = wd;
    k->o.loss = loss;
    snprintf(k->hidden, sizeof(k->hidden), "%s", hidden);
    snprintf(k->label, sizeof(k->label), "mlp hidden=%s act=%s lr=%g batch=%zu wd=%g loss=%s",
             hidden, act == DRST_ACT_GELU ? "gelu" : "relu", lr, batch, wd,
             loss == DRST_LOSS_MSE ? "mse" : "smoothl1");
}

static void add_ridge(cand_t *c, size_t *n, double alpha)
{
    cand_t *k = new_cand(c, n, DRST_MODEL_RIDGE);
    k->o.alpha = alpha;
    snprintf(k->label, sizeof(k->label), "ridge alpha=%g", alpha);
}

static void add_tree(cand_t *c, size_t *n, size_t depth, size_t leaf)
{
    cand_t *k = new_cand(c, n, DRST_MODEL_TREE);
    k->o.max_depth = depth;
    k->o.min_samples_leaf = leaf;
    snprintf(k->label, sizeof(k->label), "tree depth=%zu min_leaf=%zu", depth, leaf);
}

static void add_knn(cand_t *c, size_t *n, size_t k, int mean)
{
    cand_t *x = new_cand(c, n, DRST_MODEL_KNN);
    x->o.knn_k = k;
    x->o.knn_mean = mean;
    snprintf(x->label, sizeof(x->label), "knn k=%zu agg=%s", k, mean ? "mean" : "median");
}

/* The tier's search space (docs/control.md). */
static size_t search_space(int tier, const char *families, cand_t *out)
{
    cand_t all[MAX_CAND];
    size_t n = 0;
    memset(all, 0, sizeof(all));
    add_gbdt(all, &n, 6, 0.1, 1);
    add_gbdt(all, &n, 4, 0.2, 1);
    add_gbdt(all, &n, 8, 0.1, 2);
    add_ridge(all, &n, 1.0);
    add_mlp(all, &n, "64,32", DRST_ACT_RELU, 1e-3, 32, 1e-4, DRST_LOSS_SMOOTHL1);
    add_knn(all, &n, 3, 0);
    if (tier >= DRST_TIER_B) {
        add_knn(all, &n, 1, 0);
        add_knn(all, &n, 5, 0);
        add_gbdt(all, &n, 6, 0.05, 3);
        add_mlp(all, &n, "128,64", DRST_ACT_GELU, 3e-3, 32, 1e-4, DRST_LOSS_MSE);
        add_mlp(all, &n, "32", DRST_ACT_RELU, 1e-3, 16, 1e-3, DRST_LOSS_SMOOTHL1);
        add_tree(all, &n, 10, 5);
    }
    if (tier >= DRST_TIER_C) {
        add_gbdt(all, &n, 10, 0.05, 1);
        add_mlp(all, &n, "128,64,32", DRST_ACT_RELU, 1e-3, 64, 1e-5, DRST_LOSS_SMOOTHL1);
        add_mlp(all, &n, "64,32", DRST_ACT_GELU, 3e-4, 16, 1e-5, DRST_LOSS_MSE);
        add_ridge(all, &n, 0.1);
        add_knn(all, &n, 3, 1);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (family_allowed(families, all[i].o.family))
            out[k++] = all[i];
    return k;
}

/* ---- worker pool over the candidates of one rung ---- */

typedef struct job {
    cand_t *c;
    size_t *idx; /* candidates to train in this rung */
    size_t n;
    size_t next;
    pthread_mutex_t mu;
    const drst_table_t *t;
    const unsigned char *mask;
} job_t;

static double cand_score(const drst_model_metrics_t *v)
{
    return v->acc20 + v->acc05;
}

static void *worker(void *arg)
{
    job_t *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n)
            return NULL;
        cand_t *c = &j->c[j->idx[i]];
        drst_train_report_t rep;
        drst_model_free(c->model);
        c->model = NULL;
        drst_train_opts_t o = c->o;
        o.split_mask = j->mask;
        c->rc = drst_model_train(j->t, &o, &c->model, &rep, NULL, NULL, 0);
        if (c->rc == DRST_OK && rep.has_val) {
            c->val = rep.val;
            c->score = cand_score(&rep.val);
        } else {
            c->score = -1;
        }
    }
}

static void run_rung(cand_t *c, size_t *idx, size_t n, const drst_table_t *t,
                     const unsigned char *mask, size_t threads)
{
    job_t j = {.c = c, .idx = idx, .n = n, .t = t, .mask = mask};
    pthread_t th[8];
    size_t nt = threads > 8 ? 8 : threads;
    if (nt > n)
        nt = n;
    pthread_mutex_init(&j.mu, NULL);
    size_t started = 0;
    for (size_t i = 1; i < nt; i++)
        if (pthread_create(&th[started], NULL, worker, &j) == 0)
            started++;
    worker(&j);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.mu);
}

static void set_budget(cand_t *c, const drst_retrain_config_t *cfg, double frac)
{
    size_t trees = (size_t)(cfg->full_trees * frac + 0.5);
    size_t epochs = (size_t)(cfg->full_epochs * frac + 0.5);
    c->o.n_trees = trees < 5 ? 5 : trees;
    c->o.max_epochs = epochs < 3 ? 3 : epochs;
}

/* ---- the training table ---- */

/* Append the rows of `src` (columns mapped by name onto `dst`) `copies`
 * times; rows [from, to) only. Returns DRST_ERR_SCHEMA if a column of dst
 * is missing from src. */
static drst_err_t append_rows(drst_table_t *dst, const drst_table_t *src, size_t from, size_t to,
                              size_t copies, char *err, size_t errlen)
{
    long *map = malloc(dst->ncols * sizeof(long));
    double *row = malloc(dst->ncols * sizeof(double));
    drst_err_t rc = DRST_OK;
    if (!map || !row) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "retrain: out of memory");
        goto out;
    }
    for (size_t c = 0; c < dst->ncols; c++)
        if ((map[c] = drst_table_col(src, dst->names[c])) < 0) {
            rc = DRST_ERR_SCHEMA;
            goto out;
        }
    for (size_t r = from; r < to; r++) {
        for (size_t c = 0; c < dst->ncols; c++)
            row[c] = drst_table_at(src, r, (size_t)map[c]);
        for (size_t k = 0; k < copies && rc == DRST_OK; k++)
            rc = drst_table_append(dst, row, err, errlen);
        if (rc != DRST_OK)
            break;
    }
out:
    free(map);
    free(row);
    return rc;
}

/* Columns of `a` (but `target`) absent from `b`. */
static size_t count_absent(const drst_table_t *a, const drst_table_t *b, const char *target)
{
    size_t n = 0;
    for (size_t c = 0; c < a->ncols; c++)
        if (strcmp(a->names[c], target) && drst_table_col(b, a->names[c]) < 0)
            n++;
    return n;
}

static int hidden_of(const drst_model_t *m, char *buf, size_t n)
{
    const char *d = drst_model_describe(m);
    const char *p = d ? strstr(d, "hidden=") : NULL;
    if (!p)
        return -1;
    p += 7;
    size_t l = strcspn(p, " ");
    if (l >= n)
        return -1;
    memcpy(buf, p, l);
    buf[l] = '\0';
    return 0;
}

drst_err_t drst_retrain_window(const drst_table_t *window, const drst_table_t *replay,
                               const drst_model_t *current, int tier,
                               const drst_retrain_config_t *cfgp, drst_model_t **out,
                               drst_retrain_result_t *res, char *err, size_t errlen)
{
    drst_retrain_config_t cfg = {0};
    drst_retrain_result_t rdummy;
    drst_err_t rc = DRST_OK;
    drst_table_t *T = NULL, *V = NULL;
    unsigned char *mask = NULL;
    cand_t c[MAX_CAND];
    size_t nc = 0, idx[MAX_CAND];
    double t0 = mono_s();

    if (cfgp)
        cfg = *cfgp;
    if (!cfg.threads)
        cfg.threads = 2;
    if (!cfg.seed)
        cfg.seed = 42;
    if (!cfg.target)
        cfg.target = "output_rate";
    if (!(cfg.val_frac > 0))
        cfg.val_frac = 0.2;
    if (!(cfg.recent_weight >= 1))
        cfg.recent_weight = 3;
    if (!cfg.replay_max)
        cfg.replay_max = 4000;
    if (cfg.full_trees <= 0)
        cfg.full_trees = 100;
    if (cfg.full_epochs <= 0)
        cfg.full_epochs = 120;
    if (!res)
        res = &rdummy;
    memset(res, 0, sizeof(*res));
    memset(c, 0, sizeof(c));
    *out = NULL;
    if (tier < DRST_TIER_A || tier > DRST_TIER_C)
        tier = DRST_TIER_A;
    res->tier = tier;
    if (!window || drst_table_col(window, cfg.target) < 0)
        return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "retrain: window has no column '%s'",
                           cfg.target);
    size_t nw = window->nrows;
    size_t nval = (size_t)(nw * cfg.val_frac + 0.5);
    if (nw < 10 || nval < 3 || nw - nval < 5)
        return drst_seterr(err, errlen, DRST_ERR_EMPTY,
                           "retrain: window of %zu labelled rows is too small", nw);

    /* schema: the window's columns are the new truth */
    if (current) {
        size_t k = drst_model_nfeatures(current);
        for (size_t j = 0; j < k; j++)
            if (drst_table_col(window, drst_model_feature(current, j)) < 0) {
                if (res->n_missing == 0)
                    snprintf(res->schema_note, sizeof(res->schema_note),
                             "release feature '%s' is absent from the window",
                             drst_model_feature(current, j));
                res->n_missing++;
            }
    }
    T = drst_table_new((const char *const *)window->names, window->ncols, err, errlen);
    if (!T) {
        rc = DRST_ERR_NOMEM;
        goto out;
    }
    const drst_table_t *olds[2] = {cfg.base, replay};
    for (int s = 0; s < 2; s++) {
        const drst_table_t *o = olds[s];
        if (!o || o->nrows == 0)
            continue;
        size_t nnew = count_absent(window, o, cfg.target);
        if (nnew) {
            /* a feature the older data never had: those rows cannot be
             * used without inventing values, so they are left out */
            res->schema_changed = 1;
            if (nnew > res->n_new)
                res->n_new = nnew;
            size_t len = strlen(res->schema_note);
            snprintf(res->schema_note + len, sizeof(res->schema_note) - len,
                     "%s%zu window feature(s) absent from the %s data: %s rows not used",
                     len ? "; " : "", nnew, s == 0 ? "base" : "replay", s == 0 ? "base" : "replay");
            continue;
        }
        size_t from = 0;
        if (s == 1 && o->nrows > cfg.replay_max)
            from = o->nrows - cfg.replay_max;
        rc = append_rows(T, o, from, o->nrows, 1, err, errlen);
        if (rc != DRST_OK)
            goto out;
        if (s == 0)
            res->rows_base = o->nrows;
        else
            res->rows_replay = o->nrows - from;
    }
    if (res->n_missing)
        res->schema_changed = 1;
    size_t copies = (size_t)(cfg.recent_weight + 0.5);
    size_t ntr0 = T->nrows;
    if ((rc = append_rows(T, window, 0, nw - nval, copies, err, errlen)) != DRST_OK)
        goto out;
    size_t nvstart = T->nrows;
    if ((rc = append_rows(T, window, nw - nval, nw, 1, err, errlen)) != DRST_OK)
        goto out;
    res->rows_train = nvstart;
    res->rows_val = nval;
    (void)ntr0;
    mask = calloc(T->nrows, 1);
    V = drst_table_new((const char *const *)window->names, window->ncols, err, errlen);
    if (!mask || !V) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "retrain: out of memory");
        goto out;
    }
    memset(mask + nvstart, 1, T->nrows - nvstart);
    if ((rc = append_rows(V, window, nw - nval, nw, 1, err, errlen)) != DRST_OK)
        goto out;

    /* candidates */
    nc = search_space(tier, cfg.families, c);
    if (!nc) {
        rc = drst_seterr(err, errlen, DRST_ERR_INVAL, "retrain: families '%s' leave no candidate",
                         cfg.families ? cfg.families : "");
        goto out;
    }
    char cur_hidden[64] = "";
    int can_warm = current && !res->n_missing && drst_model_family(current) == DRST_MODEL_MLP &&
                   hidden_of(current, cur_hidden, sizeof(cur_hidden)) == 0;
    for (size_t i = 0; i < nc; i++) {
        c[i].o.seed = cfg.seed;
        c[i].o.target = cfg.target;
        c[i].o.nthread = 1;
        c[i].alive = 1;
        if (can_warm && c[i].o.family == DRST_MODEL_MLP && !strcmp(c[i].hidden, cur_hidden))
            c[i].o.warm_start = current;
        idx[i] = i;
    }
    res->candidates = nc;

    /* successive halving: budgets 1/8, 1/4, 1/2 of the full one, keep the
     * better half each time */
    size_t alive = nc;
    double frac = 0.125;
    while (alive > 1 || res->rungs == 0) { /* a lone candidate is scored once */
        for (size_t i = 0; i < alive; i++)
            set_budget(&c[idx[i]], &cfg, frac);
        run_rung(c, idx, alive, T, mask, cfg.threads);
        /* a warm start that does not fit falls back to scratch */
        for (size_t i = 0; i < alive; i++) {
            cand_t *k = &c[idx[i]];
            if (k->rc == DRST_ERR_SCHEMA && k->o.warm_start) {
                k->o.warm_start = NULL;
                run_rung(c, &idx[i], 1, T, mask, 1);
            }
        }
        /* stable sort of survivors by score (ties: lower index first) */
        for (size_t i = 1; i < alive; i++) {
            size_t v = idx[i], j = i;
            while (j > 0 && c[idx[j - 1]].score < c[v].score) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        res->rungs++;
        alive = (alive + 1) / 2;
        if (frac < 0.5)
            frac *= 2;
        if (cfg.on_rung)
            cfg.on_rung(cfg.opaque, (int)res->rungs, alive);
    }
    cand_t *best = &c[idx[0]];
    if (best->score < 0 && best->rc != DRST_OK) {
        rc = drst_seterr(err, errlen, best->rc, "retrain: every candidate failed (%s: %s)",
                         best->label, drst_strerror(best->rc));
        goto out;
    }
    res->search_s = mono_s() - t0;
    double t1 = mono_s();
    /* gate: the winner's held-back score (its last rung) against the serving model */
    res->new_val = best->val;
    const drst_table_t *G = V; /* gate rows */
    drst_table_t *Vf = NULL;
    if (cfg.fresh_rows >= 3 && cfg.fresh_rows < nval) {
        Vf = drst_table_new((const char *const *)window->names, window->ncols, NULL, 0);
        if (Vf && append_rows(Vf, window, nw - cfg.fresh_rows, nw, 1, NULL, 0) == DRST_OK &&
            drst_model_eval_table(best->model, Vf, NULL, &res->new_val, NULL, 0) == DRST_OK)
            G = Vf;
        else
            res->new_val = best->val;
    }
    if (current && !res->n_missing) {
        char e2[DRST_ERRLEN];
        if (drst_model_eval_table(current, G, NULL, &res->cur_val, e2, sizeof(e2)) != DRST_OK)
            memset(&res->cur_val, 0, sizeof(res->cur_val));
    }
    drst_table_free(Vf);
    res->gate_passed = res->cur_val.rows == 0 ||
                       cand_score(&res->new_val) >= cand_score(&res->cur_val) + cfg.min_gain;
    drst_model_t *final = NULL;
    set_budget(best, &cfg, 1.0);
    if (cfg.no_refit || !res->gate_passed) {
        /* full budget, validation rows still held back */
        run_rung(c, idx, 1, T, mask, 1);
        if (best->rc == DRST_ERR_SCHEMA && best->o.warm_start) {
            best->o.warm_start = NULL;
            run_rung(c, idx, 1, T, mask, 1);
        }
        if (best->rc != DRST_OK) {
            rc = drst_seterr(err, errlen, best->rc, "retrain: full training of %s failed: %s",
                             best->label, drst_strerror(best->rc));
            goto out;
        }
        final = best->model;
        best->model = NULL;
        if (G == V)
            res->new_val = best->val;
        res->gate_passed = res->cur_val.rows == 0 ||
                           cand_score(&res->new_val) >= cand_score(&res->cur_val) + cfg.min_gain;
    } else {
        /* full budget on every row: the held-back rows are the most recent
         * ones and are weighted like the rest of the window */
        drst_train_opts_t o = best->o;
        for (size_t k = 1; k < copies && rc == DRST_OK; k++)
            rc = append_rows(T, window, nw - nval, nw, 1, err, errlen);
        o.split_mask = NULL;
        o.val_frac = 0;
        if (rc == DRST_OK)
            rc = drst_model_train(T, &o, &final, NULL, NULL, err, errlen);
        if (rc == DRST_ERR_SCHEMA && o.warm_start) {
            o.warm_start = NULL;
            best->o.warm_start = NULL;
            rc = drst_model_train(T, &o, &final, NULL, NULL, err, errlen);
        }
        if (rc != DRST_OK)
            goto out;
    }
    res->warm_started = best->o.warm_start != NULL;
    if (best->o.family == DRST_MODEL_GBDT || best->o.family == DRST_MODEL_MLP)
        snprintf(res->best, sizeof(res->best), "%s %s=%zu%s", best->label,
                 best->o.family == DRST_MODEL_GBDT ? "trees" : "epochs",
                 best->o.family == DRST_MODEL_GBDT ? best->o.n_trees : best->o.max_epochs,
                 res->warm_started ? " warm-start" : "");
    else
        snprintf(res->best, sizeof(res->best), "%s", best->label);
    res->full_s = mono_s() - t1;
    *out = final;
out:
    for (size_t i = 0; i < nc; i++)
        drst_model_free(c[i].model);
    drst_table_free(T);
    drst_table_free(V);
    free(mask);
    res->wall_s = mono_s() - t0;
    return rc;
}

/* ---- permutation importance ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

drst_err_t drst_retrain_importance(const drst_model_t *m, const drst_table_t *t, uint64_t seed,
                                   char **json, char *err, size_t errlen)
{
    size_t k = drst_model_nfeatures(m), n = t->nrows;
    drst_err_t rc = DRST_OK;
    const char *target = drst_model_target(m);
    long tc = drst_table_col(t, target);
    long *bind = malloc((k ? k : 1) * sizeof(long));
    double *X = malloc((n * k + 1) * sizeof(double));
    double *col = malloc((n + 1) * sizeof(double));
    double *yh = malloc((n + 1) * sizeof(double));
    drst_model_scratch_t *s = drst_model_scratch_new(m, 256);
    json_t *o = json_object();
    *json = NULL;
    if (!bind || !X || !col || !yh || !s || !o) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "importance: out of memory");
        goto out;
    }
    if (tc < 0 || n < 2) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY, "importance: no labelled rows");
        goto out;
    }
    if ((rc = drst_model_bind(m, t, bind, err, errlen)) != DRST_OK)
        goto out;
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < k; j++)
            X[r * k + j] = drst_table_at(t, r, (size_t)bind[j]);
    double base = 0;
    if ((rc = drst_model_predict(m, X, n, k, yh, s)) != DRST_OK)
        goto out;
    for (size_t r = 0; r < n; r++)
        base += fabs(yh[r] - drst_table_at(t, r, (size_t)tc));
    base /= (double)n;
    uint64_t rng = seed ? seed : 1;
    for (size_t j = 0; j < k; j++) {
        for (size_t r = 0; r < n; r++)
            col[r] = X[r * k + j];
        for (size_t r = n - 1; r > 0; r--) { /* Fisher-Yates on column j */
            size_t q = (size_t)(splitmix(&rng) % (r + 1));
            double tmp = X[r * k + j];
            X[r * k + j] = X[q * k + j];
            X[q * k + j] = tmp;
        }
        if ((rc = drst_model_predict(m, X, n, k, yh, s)) != DRST_OK)
            goto out;
        double mae = 0;
        for (size_t r = 0; r < n; r++)
            mae += fabs(yh[r] - drst_table_at(t, r, (size_t)tc));
        mae /= (double)n;
        json_object_set_new(o, drst_model_feature(m, j), json_real(mae - base));
        for (size_t r = 0; r < n; r++)
            X[r * k + j] = col[r];
    }
    json_t *top = json_pack("{s:s, s:f, s:I, s:o}", "metric", "mae_increase", "base_mae", base,
                            "rows", (json_int_t)n, "features", o);
    o = NULL;
    *json = top ? json_dumps(top, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(top);
    if (!*json)
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "importance: out of memory");
out:
    json_decref(o);
    free(bind);
    free(X);
    free(col);
    free(yh);
    drst_model_scratch_free(s);
    return rc;
}

/* ---- the store-driven retrainer ---- */

struct drst_retrainer {
    drst_store_t *store;
    drst_retrain_config_t cfg;
    char owner[DRST_CONTROL_OWNER_MAX];
    char families[128];
};

drst_retrainer_t *drst_retrainer_new(drst_store_t *s, const drst_retrain_config_t *cfg, char *err,
                                     size_t errlen)
{
    if (!s) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "retrainer: no store");
        return NULL;
    }
    drst_retrainer_t *r = calloc(1, sizeof(*r));
    if (!r) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "retrainer: out of memory");
        return NULL;
    }
    r->store = s;
    if (cfg)
        r->cfg = *cfg;
    if (!(r->cfg.lease_ttl > 0))
        r->cfg.lease_ttl = 60;
    if (r->cfg.owner)
        snprintf(r->owner, sizeof(r->owner), "%s", r->cfg.owner);
    else
        snprintf(r->owner, sizeof(r->owner), "retrainer-%ld", (long)getpid());
    r->cfg.owner = r->owner;
    if (r->cfg.families) {
        snprintf(r->families, sizeof(r->families), "%s", r->cfg.families);
        r->cfg.families = r->families;
    }
    return r;
}

void drst_retrainer_free(drst_retrainer_t *r)
{
    free(r);
}

/* Rewrite fields of the request object. `kv` pairs: key, json value (stolen). */
static drst_err_t request_update(drst_store_t *s, json_t *set, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_err_t rc = drst_store_get(s, DRST_CONTROL_REQUEST_KEY, &buf, &len, err, errlen);
    if (rc != DRST_OK) {
        json_decref(set);
        return rc;
    }
    json_error_t je;
    json_t *o = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
    if (!json_is_object(o)) {
        json_decref(o);
        json_decref(set);
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "%s: not a JSON object",
                           DRST_CONTROL_REQUEST_KEY);
    }
    json_object_update(o, set);
    json_decref(set);
    char *txt = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!txt)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "request: out of memory");
    rc = drst_store_put_atomic(s, DRST_CONTROL_REQUEST_KEY, txt, strlen(txt), err, errlen);
    free(txt);
    return rc;
}

typedef struct rung_ctx {
    drst_retrainer_t *r;
    void (*user)(void *, int, size_t);
    void *opaque;
    int lost;
} rung_ctx_t;

static void on_rung(void *opaque, int rung, size_t survivors)
{
    rung_ctx_t *x = opaque;
    /* keep the lease alive across a long search */
    if (drst_lease_renew(x->r->store, DRST_CONTROL_LEASE_KEY, x->r->owner, x->r->cfg.lease_ttl, -1,
                         NULL, 0) != DRST_OK)
        x->lost = 1;
    if (x->user)
        x->user(x->opaque, rung, survivors);
}

static json_t *metrics_obj(const drst_model_metrics_t *m)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I}", "acc05", m->acc05, "acc10", m->acc10,
                     "acc20", m->acc20, "mae", isfinite(m->mae) ? m->mae : 0, "p50",
                     isfinite(m->p50) ? m->p50 : 0, "rows", (json_int_t)m->rows);
}

drst_err_t drst_retrainer_run_once(drst_retrainer_t *r, drst_retrain_result_t *res, char *err,
                                   size_t errlen)
{
    drst_retrain_request_t rq;
    drst_retrain_result_t rdummy;
    drst_table_t *win = NULL, *rep = NULL;
    drst_model_t *cur = NULL, *nm = NULL;
    drst_release_t currel;
    drst_err_t rc;
    int have_lease = 0;
    if (!res)
        res = &rdummy;
    memset(res, 0, sizeof(*res));
    rc = drst_retrain_request_read(r->store, &rq, err, errlen);
    if (rc == DRST_ERR_NOTFOUND)
        return drst_seterr(err, errlen, DRST_ERR_EMPTY, "no retrain request");
    if (rc != DRST_OK)
        return rc;
    if (strcmp(rq.status, "pending") && strcmp(rq.status, "running"))
        return drst_seterr(err, errlen, DRST_ERR_EMPTY, "request %s is %s", rq.id, rq.status);
    rc = drst_lease_acquire(r->store, DRST_CONTROL_LEASE_KEY, r->owner, r->cfg.lease_ttl, -1, NULL,
                            err, errlen);
    if (rc != DRST_OK)
        return rc;
    have_lease = 1;
    /* read again under the lease: another retrainer may have finished it */
    if ((rc = drst_retrain_request_read(r->store, &rq, err, errlen)) != DRST_OK)
        goto out;
    snprintf(res->request_id, sizeof(res->request_id), "%s", rq.id);
    if (strcmp(rq.status, "pending") && strcmp(rq.status, "running")) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY, "request %s is %s", rq.id, rq.status);
        goto out;
    }
    if (rq.attempts >= 2) {
        /* started twice and never finished: retried once already */
        (void)request_update(r->store,
                             json_pack("{s:s, s:s}", "status", "failed", "note",
                                       "attempt 2 did not finish (lease expired); not retried"),
                             NULL, 0);
        rc = drst_seterr(err, errlen, DRST_ERR_STATE,
                         "request %s failed: %d attempts did not finish", rq.id, rq.attempts);
        goto out;
    }
    if ((rc = request_update(r->store,
                             json_pack("{s:s, s:i, s:s, s:f}", "status", "running", "attempts",
                                       rq.attempts + 1, "owner", r->owner, "started",
                                       drst_control_now()),
                             err, errlen)) != DRST_OK)
        goto out;
    if ((rc = ctl_table_get(r->store, rq.window_key, &win, err, errlen)) != DRST_OK)
        goto fail_req;
    if (rq.replay_key[0] &&
        (rc = ctl_table_get(r->store, rq.replay_key, &rep, err, errlen)) != DRST_OK)
        goto fail_req;
    memset(&currel, 0, sizeof(currel));
    if (drst_store_load_model(r->store, "latest", &cur, &currel, NULL, 0) != DRST_OK)
        cur = NULL;
    rung_ctx_t rx = {.r = r, .user = r->cfg.on_rung, .opaque = r->cfg.opaque};
    drst_retrain_config_t cfg = r->cfg;
    cfg.fresh_rows = rq.fresh_rows;
    cfg.on_rung = on_rung;
    cfg.opaque = &rx;
    rc = drst_retrain_window(win, rep, cur, rq.tier, &cfg, &nm, res, err, errlen);
    snprintf(res->request_id, sizeof(res->request_id), "%s", rq.id);
    if (rc != DRST_OK)
        goto fail_req;
    /* the lease must still be ours before anything becomes visible */
    if ((rc = drst_lease_renew(r->store, DRST_CONTROL_LEASE_KEY, r->owner, r->cfg.lease_ttl, -1,
                               err, errlen)) != DRST_OK) {
        have_lease = 0;
        goto out;
    }
    rc = drst_store_publish_model(r->store, nm,
                                  res->gate_passed ? DRST_PUBLISH_LATEST : DRST_PUBLISH_NONE,
                                  &res->release, err, errlen);
    if (rc != DRST_OK)
        goto fail_req;
    res->published = 1;
    res->latest_moved = res->gate_passed;
    json_t *set = json_pack(
        "{s:s, s:s, s:b, s:s, s:f, s:f, s:f, s:o, s:o, s:b, s:b, s:s, s:f}", "status", "done",
        "result", res->release.model_key, "latest_moved", res->latest_moved, "best", res->best,
        "search_s", res->search_s, "full_s", res->full_s, "wall_s", res->wall_s, "new_val",
        metrics_obj(&res->new_val), "cur_val", metrics_obj(&res->cur_val), "warm_started",
        res->warm_started, "schema_changed", res->schema_changed, "schema_note", res->schema_note,
        "finished", drst_control_now());
    if ((rc = request_update(r->store, set, err, errlen)) != DRST_OK)
        goto out;
    if (drst_lease_release(r->store, DRST_CONTROL_LEASE_KEY, r->owner, NULL, 0) != DRST_OK)
        res->importance_key[0] = '\0'; /* nothing to do: it expires */
    have_lease = 0;
    /* side path, after the decision: permutation importance next to the release */
    if (r->cfg.importance >= 0) {
        char *js = NULL;
        size_t nval = (size_t)(win->nrows * (r->cfg.val_frac > 0 ? r->cfg.val_frac : 0.2) + 0.5);
        drst_table_t *V = drst_table_new((const char *const *)win->names, win->ncols, NULL, 0);
        if (V && append_rows(V, win, win->nrows - nval, win->nrows, 1, NULL, 0) == DRST_OK &&
            drst_retrain_importance(nm, V, r->cfg.seed ? r->cfg.seed : 42, &js, NULL, 0) ==
                DRST_OK) {
            const char *base = strrchr(res->release.model_key, '/');
            base = base ? base + 1 : res->release.model_key;
            snprintf(res->importance_key, sizeof(res->importance_key),
                     "models/importance_%.990s.json",
                     !strncmp(base, "model_", 6) ? base + 6 : base);
            if (drst_store_put_immutable(r->store, res->importance_key, js, strlen(js), NULL, 0) !=
                DRST_OK)
                res->importance_key[0] = '\0';
        }
        free(js);
        drst_table_free(V);
    }
    goto out;
fail_req : {
    char note[DRST_ERRLEN + 32];
    snprintf(note, sizeof(note), "%s", err && errlen ? err : "error");
    /* a failed attempt may be retried once by the next run */
    (void)request_update(r->store,
                         json_pack("{s:s, s:s}", "status",
                                   rq.attempts + 1 >= 2 ? "failed" : "pending", "note", note),
                         NULL, 0);
}
out:
    if (have_lease)
        if (drst_lease_release(r->store, DRST_CONTROL_LEASE_KEY, r->owner, NULL, 0) != DRST_OK)
            res->importance_key[0] = '\0'; /* nothing to do: it expires */
    drst_table_free(win);
    drst_table_free(rep);
    drst_model_free(cur);
    drst_model_free(nm);
    return rc;
}
