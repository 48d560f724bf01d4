/* libFuzzer target: perf stat -x, interval files (detection + parser). */
#include <stdint.h>

#include "telemetry/raw_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drst_perf_t p;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    (void)drst_perf_detect((const char *)data, size);
    if (drst_perf_parse((const char *)data, size, "fuzz.csv", &p, &d, err, sizeof err) == DRST_OK)
        drst_perf_release(&p);
    return 0;
}
