/* libFuzzer target: drst_detector_restore_json() on arbitrary bytes. A state
 * that restores must save again and take updates without trouble. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drst/drift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[DRST_ERRLEN];
    drst_detector_t *d = drst_detector_restore_json((const char *)data, size, err, sizeof(err));
    if (d) {
        double x[64] = {0};
        size_t n = drst_detector_config(d)->nfeatures;
        char *js = NULL;
        size_t len = 0;
        if (drst_detector_save_json(d, &js, &len, err, sizeof(err)) == DRST_OK)
            free(js);
        if (strcmp(drst_detector_kind(d), "jsd") != 0)
            n = 1;
        if (n <= 64)
            for (int i = 0; i < 100; i++) {
                drst_drift_result_t r;
                x[0] = i * 0.37;
                (void)drst_detector_update(d, x, n, &r);
            }
        drst_detector_free(d);
    }
    return 0;
}
