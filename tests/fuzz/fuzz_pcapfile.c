/* libFuzzer target: the classic pcap file walker (pcapfile.c) on arbitrary
 * bytes, feeding a 1-worker engine; the input is an exact-size heap copy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drst_flow_config_t cfg;
    drst_flow_config_init(&cfg);
    cfg.max_flows = 8;
    cfg.idle_timeout = 1;
    cfg.active_timeout = 0.5;
    drst_flow_engine_t *e = drst_flow_engine_new(&cfg, NULL, NULL, 0);
    if (!e)
        return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (buf) {
        uint64_t n = 0;
        char err[DRST_ERRLEN];
        memcpy(buf, data, size);
        (void)pcapfile_scan("fuzz", buf, size, NULL, NULL, NULL, NULL, e, 0, NULL, &n, err,
                            sizeof(err));
        free(buf);
    }
    (void)drst_flow_engine_finish(e, NULL, 0);
    drst_flow_engine_free(e);
    return 0;
}
