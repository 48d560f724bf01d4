/* libFuzzer target: the model file loader. Each input is tried twice: as
 * is (magic, version, length and checksum checks), and with its length
 * field and checksum fixed up so that mutations reach the field parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "drst/drst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_load(const uint8_t *p, size_t n)
{
    drst_model_t *m = NULL;
    char err[DRST_ERRLEN];
    if (drst_model_load_buffer(p, n, &m, err, sizeof(err)) != DRST_OK)
        return;
    /* a loaded model must predict and re-serialize without trouble */
    drst_model_scratch_t *s = drst_model_scratch_new(m, 4);
    size_t nf = drst_model_nfeatures(m);
    double *x = calloc(nf * 4 + 1, sizeof(double)), y[4];
    if (s && x) {
        (void)drst_model_predict(m, x, 4, nf, y, s);
        (void)drst_model_predict_f32(m, x, 4, nf, y, s); /* the serving path too */
    }
    unsigned char *b = NULL;
    size_t bl = 0;
    if (drst_model_save_buffer(m, &b, &bl, NULL, 0) == DRST_OK)
        free(b);
    free(x);
    drst_model_scratch_free(s);
    drst_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_load(data, size);
    if (size < 56 || size > (1u << 20))
        return 0;
    uint8_t *c = malloc(size);
    if (!c)
        return 0;
    memcpy(c, data, size);
    for (int i = 0; i < 8; i++)
        c[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    SHA256(c, size - 32, c + size - 32);
    try_load(c, size);
    free(c);
    return 0;
}
