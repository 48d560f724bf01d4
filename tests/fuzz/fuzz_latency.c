/* libFuzzer target: latency.csv. */
#include <stdint.h>

#include "telemetry/raw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drst_series_t s;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    if (drst_latency_parse((const char *)data, size, "fuzz.csv", &s, &d, err, sizeof err) ==
        DRST_OK)
        drst_series_release(&s);
    return 0;
}
