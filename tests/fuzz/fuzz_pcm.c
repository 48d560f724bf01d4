/* libFuzzer target: Intel PCM two-row-header CSV and the pcm-pcie block format. */
#include <stdint.h>

#include "telemetry/raw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drst_table_t *t = NULL;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    if (drst_pcm_parse((const char *)data, size, "fuzz.csv", "x", &t, &d, err, sizeof err) ==
        DRST_OK)
        drst_table_free(t);
    t = NULL;
    if (drst_pcie_parse((const char *)data, size, "fuzz.csv", "p", &t, &d, err, sizeof err) ==
        DRST_OK)
        drst_table_free(t);
    return 0;
}
