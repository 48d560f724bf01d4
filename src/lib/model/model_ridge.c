/* ridge: closed-form L2-regularized least squares on the standardized
 * features (the same model as sklearn's StandardScaler + Ridge(alpha)):
 * w = (Xc'Xc + alpha I)^-1 Xc'yc, solved by Cholesky; intercept from means. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/error_int.h"
#include "model/model_int.h"

static size_t ridge_scratch_per_row(const drst_model_t *m)
{
    (void)m;
    return 0;
}

static drst_err_t ridge_train(drst_model_t *m, const train_data_t *d, const drst_train_opts_t *o,
                              char *err, size_t errlen)
{
    size_t nf = d->nf, n = d->n_train;
    drst_err_t rc = DRST_OK;
    if (!(o->alpha >= 0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "ridge: alpha must be >= 0");
    double *xm = calloc(nf, sizeof(double));
    double *Xc = calloc(n * nf, sizeof(double));
    double *A = malloc(nf * nf * sizeof(double));
    double *rhs = calloc(nf, sizeof(double));
    m->coef = calloc(nf, sizeof(double));
    if (!xm || !Xc || !A || !rhs || !m->coef) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "ridge: out of memory");
        goto out;
    }
    double ym = 0;
    for (size_t i = 0; i < n; i++) {
        ym += d->ytr[i];
        for (size_t j = 0; j < nf; j++)
            xm[j] += d->Xtr[i * nf + j];
    }
    ym /= (double)n;
    for (size_t j = 0; j < nf; j++)
        xm[j] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double yc = d->ytr[i] - ym;
        for (size_t j = 0; j < nf; j++) {
            Xc[i * nf + j] = d->Xtr[i * nf + j] - xm[j];
            rhs[j] += Xc[i * nf + j] * yc;
        }
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nf, (int)nf, (int)n, 1.0, Xc, (int)nf,
                Xc, (int)nf, 0.0, A, (int)nf);
    for (size_t j = 0; j < nf; j++)
        A[j * nf + j] += o->alpha;
    /* Cholesky A = L L' in the lower triangle */
    for (size_t j = 0; j < nf; j++) {
        double s = A[j * nf + j];
        for (size_t k = 0; k < j; k++)
            s -= A[j * nf + k] * A[j * nf + k];
        if (!(s > 1e-300)) {
            rc = drst_seterr(err, errlen, DRST_ERR_NUMERIC,
                             "ridge: normal equations are singular (use alpha > 0)");
            goto out;
        }
        double l = sqrt(s);
        A[j * nf + j] = l;
        for (size_t i = j + 1; i < nf; i++) {
            double t = A[i * nf + j];
            for (size_t k = 0; k < j; k++)
                t -= A[i * nf + k] * A[j * nf + k];
            A[i * nf + j] = t / l;
        }
    }
    for (size_t i = 0; i < nf; i++) { /* L z = rhs */
        double t = rhs[i];
        for (size_t k = 0; k < i; k++)
            t -= A[i * nf + k] * rhs[k];
        rhs[i] = t / A[i * nf + i];
    }
    for (size_t i = nf; i-- > 0;) { /* L' w = z */
        double t = rhs[i];
        for (size_t k = i + 1; k < nf; k++)
            t -= A[k * nf + i] * m->coef[k];
        m->coef[i] = t / A[i * nf + i];
    }
    m->intercept = ym;
    for (size_t j = 0; j < nf; j++)
        m->intercept -= xm[j] * m->coef[j];
out:
    free(xm);
    free(Xc);
    free(A);
    free(rhs);
    return rc;
}

static void ridge_predict(const drst_model_t *m, const double *xs, size_t n, double *y, double *tmp)
{
    (void)tmp;
    size_t nf = m->nf;
    for (size_t r = 0; r < n; r++) {
        double s = m->intercept;
        for (size_t j = 0; j < nf; j++)
            s += xs[r * nf + j] * m->coef[j];
        y[r] = s;
    }
}

static void ridge_save(const drst_model_t *m, wbuf_t *w)
{
    wbuf_f64(w, m->intercept);
    wbuf_f64s(w, m->coef, m->nf);
}

static void ridge_load(drst_model_t *m, rbuf_t *r)
{
    m->intercept = rbuf_f64(r, "ridge intercept");
    if (!r->bad && !isfinite(m->intercept))
        rbuf_fail(r, "ridge intercept");
    m->coef = rbuf_f64s(r, m->nf, "ridge coefficients");
}

const struct drst_model_ops drst_model_ridge_ops = {
    .name = "ridge",
    .family = DRST_MODEL_RIDGE,
    .train = ridge_train,
    .save = ridge_save,
    .load = ridge_load,
    .predict = ridge_predict,
    .scratch_per_row = ridge_scratch_per_row,
};
