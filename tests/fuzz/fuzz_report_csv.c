/* libFuzzer target: the CSV reader of the report's run files. */
#include <stddef.h>
#include <stdint.h>

#include "obs/obs_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    obs_csv_t *t = NULL;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    if (drst_obs_csv_parse((const char *)data, size, "fuzz", &t, &d, err, sizeof(err)) == DRST_OK) {
        (void)drst_obs_csv_col(t, "ts");
        drst_obs_csv_free(t);
    }
    return 0;
}
