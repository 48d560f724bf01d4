/* libFuzzer target: --metrics-addr parsing and /proc stat line parsing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drst/obs.h"
#include "obs/obs_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    char host[64];
    uint16_t port;
    (void)drst_metrics_addr_parse(s, host, sizeof(host), &port, NULL, 0);
    uint64_t ticks;
    (void)drst_obs_parse_stat(s, size, &ticks);
    free(s);
    return 0;
}
