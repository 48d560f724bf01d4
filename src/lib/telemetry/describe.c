/* Column statistics for `drst dataset inspect` and anyone who wants them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "drst/telemetry.h"

const char *drst_coltype_name(drst_coltype_t t)
{
    switch (t) {
    case DRST_COL_NUMERIC:
        return "numeric";
    case DRST_COL_TEXT:
        return "text";
    case DRST_COL_MIXED:
        return "mixed";
    case DRST_COL_EMPTY:
        return "empty";
    }
    return "unknown";
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

drst_err_t drst_table_describe(const drst_table_t *t, drst_colstats_t *stats, char *err,
                               size_t errlen)
{
    double *tmp;
    if (!t || (!stats && t->ncols))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "drst_table_describe: NULL argument");
    tmp = malloc((t->nrows ? t->nrows : 1) * sizeof(double));
    if (!tmp)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "describe: out of memory");
    for (size_t c = 0; c < t->ncols; c++) {
        drst_colstats_t *s = &stats[c];
        size_t k = 0;
        uint64_t nan_cells = 0;
        memset(s, 0, sizeof(*s));
        for (size_t r = 0; r < t->nrows; r++) {
            double v = t->data[r * t->ncols + c];
            if (isnan(v))
                nan_cells++;
            else
                tmp[k++] = v;
        }
        s->n_empty = t->n_empty[c];
        s->n_text = t->n_text[c];
        s->n_nan = nan_cells > s->n_empty + s->n_text ? nan_cells - s->n_empty - s->n_text : 0;
        s->n_numeric = t->nrows - s->n_empty - s->n_text;
        if (s->n_numeric && s->n_text)
            s->type = DRST_COL_MIXED;
        else if (s->n_numeric)
            s->type = DRST_COL_NUMERIC;
        else if (s->n_text)
            s->type = DRST_COL_TEXT;
        else
            s->type = DRST_COL_EMPTY;
        if (k) {
            qsort(tmp, k, sizeof(double), cmp_double);
            s->min = tmp[0];
            s->max = tmp[k - 1];
            s->median = k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
            s->constant = s->min == s->max;
        } else {
            s->min = s->median = s->max = NAN;
        }
    }
    free(tmp);
    return DRST_OK;
}
