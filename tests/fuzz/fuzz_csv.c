/* libFuzzer target: the generic CSV reader and drst_parse_double(). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drst/drst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drst_table_t *t = NULL;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    drst_csv_opts_t o = {0};
    double v;
    if (size && data[0] == ';')
        o.delim = ';';
    if (size > 1 && data[1] == 'N')
        o.no_header = 1;
    o.max_line = 4096;
    if (drst_table_parse_csv((const char *)data, size, "fuzz.csv", &o, &t, &d, err, sizeof err) ==
        DRST_OK) {
        double sum = 0;
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
            sum += isnan(t->data[i]) ? 0 : 1;
        (void)sum;
        drst_table_free(t);
    }
    /* the number parser must agree with strtod whenever it accepts */
    if (size < 64) {
        char buf[72], *end;
        memcpy(buf, data, size);
        buf[size] = '\0';
        if (!memchr(data, '\0', size) && drst_parse_double(buf, buf + size, &v)) {
            double ref = strtod(buf, &end);
            if (!(isnan(ref) && isnan(v)) && memcmp(&ref, &v, sizeof v) != 0)
                abort();
        }
    }
    return 0;
}
