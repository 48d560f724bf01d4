/* The retrain step of `drst run`. Until the control plane's retrainer
 * (drst_retrain_window()) is in the library, this trains a gbdt on the
 * offline data + the replay reservoir + the recent window (weighted 3x, as
 * the retrainer's recent_weight default), deterministic for the seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error_int.h"
#include "run/run_int.h"

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Append the rows of `src` to `dst`, columns matched by name (absent: NaN). */
static drst_err_t append_by_name(drst_table_t *dst, const drst_table_t *src, size_t copies,
                                 double *row, char *err, size_t errlen)
{
    long *map = malloc(dst->ncols * sizeof(long));
    drst_err_t rc = DRST_OK;
    if (!map)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "retrain: out of memory");
    for (size_t c = 0; c < dst->ncols; c++)
        map[c] = drst_table_col(src, dst->names[c]);
    for (size_t r = 0; r < src->nrows && rc == DRST_OK; r++) {
        for (size_t c = 0; c < dst->ncols; c++)
            row[c] = map[c] >= 0 ? drst_table_at(src, r, (size_t)map[c]) : NAN;
        for (size_t k = 0; k < copies && rc == DRST_OK; k++)
            rc = drst_table_append(dst, row, err, errlen);
    }
    free(map);
    return rc;
}

drst_err_t run_retrain(const run_job_t *job, const drst_table_t *base, const drst_model_t *current,
                       const char *target, uint64_t seed, run_retrain_out_t *out, char *err,
                       size_t errlen)
{
    double t0 = mono();
    drst_table_t *t = NULL;
    double *row = NULL;
    drst_err_t rc;
    (void)current;
    memset(out, 0, sizeof(*out));
    t = drst_table_new((const char *const *)job->window->names, job->window->ncols, err, errlen);
    row = malloc(job->window->ncols * sizeof(double));
    if (!t || !row) {
        rc = t ? drst_seterr(err, errlen, DRST_ERR_NOMEM, "retrain: out of memory") : DRST_ERR_NOMEM;
        goto out;
    }
    if (base && (rc = append_by_name(t, base, 1, row, err, errlen)) != DRST_OK)
        goto out;
    if (job->replay && (rc = append_by_name(t, job->replay, 1, row, err, errlen)) != DRST_OK)
        goto out;
    if ((rc = append_by_name(t, job->window, 3, row, err, errlen)) != DRST_OK)
        goto out;
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_GBDT;
    o.target = target;
    o.val_frac = 0;
    o.seed = seed;
    o.n_trees = 150;
    o.nthread = 1;
    o.data_name = "retrain window";
    rc = drst_model_train(t, &o, &out->model, NULL, NULL, err, errlen);
    if (rc != DRST_OK)
        goto out;
    out->gate_passed = 1;
    snprintf(out->desc, sizeof(out->desc), "gbdt trees=150 on %zu rows (base+replay+3x window)",
             t->nrows);
out:
    out->wall_s = mono() - t0;
    out->val_new_acc20 = out->val_cur_acc20 = NAN;
    drst_table_free(t);
    free(row);
    return rc;
}
