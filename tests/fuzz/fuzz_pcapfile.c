/* libFuzzer target: the classic pcap file reader (pcapfile.c) on arbitrary
 * bytes, read in pieces of varying size, feeding a 1-worker engine or (odd
 * sizes) both replicas of a 2-worker engine, one after the other; reads
 * copy from an exact-size heap copy of the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
    const uint8_t *p;
    size_t left, step;
};

/* Short reads of varying length, as a pipe or a slow disk could give. */
static long mem_read(void *ctx, uint8_t *buf, size_t n)
{
    struct src *s = ctx;
    size_t k = n < s->left ? n : s->left;
    if (k > s->step)
        k = s->step;
    s->step = s->step * 7 % 4093 + 1;
    memcpy(buf, s->p, k);
    s->p += k;
    s->left -= k;
    return (long)k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drst_flow_config_t cfg;
    drst_flow_config_init(&cfg);
    cfg.max_flows = 8;
    cfg.idle_timeout = 1;
    cfg.active_timeout = 0.5;
    cfg.workers = size & 1 ? 2 : 1;
    drst_flow_engine_t *e = drst_flow_engine_new(&cfg, NULL, NULL, 0);
    if (!e)
        return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (buf) {
        uint64_t n = 0;
        char err[DRST_ERRLEN];
        memcpy(buf, data, size);
        if (cfg.workers == 1) {
            struct src s = {buf, size, size % 3000 + 1};
            (void)pcapfile_scan("fuzz", size, mem_read, &s, NULL, NULL, engine_feed, e, 0, NULL, &n,
                                err, sizeof(err));
        } else if (engine_replica_begin(e, err, sizeof(err)) == DRST_OK) {
            for (unsigned i = 0; i < cfg.workers; i++) {
                struct src s = {buf, size, size % 3000 + 1 + i};
                (void)pcapfile_scan("fuzz", size, mem_read, &s, NULL, NULL, engine_replica_packet,
                                    engine_replica_worker(e, i), 0, NULL, &n, err, sizeof(err));
            }
        }
        free(buf);
    }
    (void)drst_flow_engine_finish(e, NULL, 0);
    drst_flow_engine_free(e);
    return 0;
}
