/* Helpers shared by the tests of src/lib/infer (test_infer*.c). */
#ifndef DRST_TEST_INFER_UTIL_H
#define DRST_TEST_INFER_UTIL_H

#include <math.h>
#include <stdlib.h>

#include "drst/drst.h"

static const char *const TI_NAMES[] = {"a", "b", "output_rate"};

/* A ridge model of y = (k + 1) a - 2 b + 5 + noise * u_i (u_i in [-1, 1]),
 * trained on 200 rows with a 20% validation split: noise 0 gives val
 * acc@0.2 = 1, larger noise lower accuracy. */
static drst_model_t *ti_model(int k, double noise)
{
    drst_table_t *t = drst_table_new(TI_NAMES, 3, NULL, 0);
    drst_train_opts_t o;
    drst_model_t *m = NULL;
    uint64_t s = 12345;
    if (!t)
        return NULL;
    for (size_t i = 0; i < 200; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double a = 1 + (double)(s >> 40) / 16777216.0 * 10;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double b = (double)(s >> 40) / 16777216.0 * 4 - 2;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 40) / 16777216.0 * 2 - 1;
        double row[3] = {a, b, (k + 1) * a - 2 * b + 5 + noise * u};
        if (drst_table_append(t, row, NULL, 0) != DRST_OK) {
            drst_table_free(t);
            return NULL;
        }
    }
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_RIDGE;
    o.alpha = 1e-6;
    o.split = DRST_SPLIT_SHUFFLED;
    if (drst_model_train(t, &o, &m, NULL, NULL, NULL, 0) != DRST_OK)
        m = NULL;
    drst_table_free(t);
    return m;
}

/* Serialize a model; returns malloc'd bytes. */
static unsigned char *ti_bytes(const drst_model_t *m, size_t *len)
{
    unsigned char *b = NULL;
    if (drst_model_save_buffer(m, &b, len, NULL, 0) != DRST_OK)
        return NULL;
    return b;
}

#endif
