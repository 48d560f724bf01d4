/* libFuzzer target: the packet parser and the flow engine on arbitrary bytes.
 * Input: byte 0 picks the link type, then one or more packets, each as a
 * 2-byte big-endian length followed by that many bytes (a short tail is one
 * packet). Every packet is parsed from an exact-size heap copy so ASan sees
 * any overread, then fed to a 1-worker engine with tiny limits so that
 * timeouts, eviction, interim records and summaries all run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int links[] = {LT_ETHERNET, LT_RAW,          LT_IPV4,      LT_IPV6,
                            LT_NULL,     LT_LOOP,         LT_LINUX_SLL, LT_LINUX_SLL2,
                            LT_ARCNET,   LT_ARCNET_LINUX, 147};

static void sink_flow(void *o, const drst_flow_record_t *r)
{
    char buf[4096];
    (void)o;
    (void)drst_flow_record_format(DRST_FLOW_FMT_JSONL, r, 1, buf, sizeof(buf));
    (void)drst_flow_record_format(DRST_FLOW_FMT_CSV, r, 1, buf, sizeof(buf));
}

static void sink_sum(void *o, const drst_flow_summary_t *s)
{
    char buf[2048];
    (void)o;
    (void)drst_flow_summary_format(DRST_FLOW_FMT_JSONL, s, 1, buf, sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int lt = links[data[0] % (sizeof(links) / sizeof(links[0]))];
    drst_flow_config_t cfg;
    drst_flow_config_init(&cfg);
    cfg.max_flows = 4;
    cfg.idle_timeout = 0.002;
    cfg.active_timeout = 0.001;
    cfg.interval = 0.001;
    drst_flow_sink_t sink = {sink_flow, sink_sum, NULL, NULL};
    drst_flow_engine_t *e = drst_flow_engine_new(&cfg, &sink, NULL, 0);
    if (!e)
        return 0;
    size_t off = 1;
    uint64_t ts = 1000000000ull;
    while (off < size) {
        size_t n = size - off;
        if (n >= 2) {
            size_t want = ((size_t)data[off] << 8) | data[off + 1];
            off += 2;
            n = size - off;
            if (want < n)
                n = want;
        }
        uint8_t *p = malloc(n ? n : 1);
        if (!p)
            break;
        memcpy(p, data + off, n);
        pkt_t d;
        drst_flow_counters_t c;
        memset(&c, 0, sizeof(c));
        (void)pkt_parse(lt, p, (uint32_t)n, (uint32_t)n + (data[0] & 0x80 ? 1000 : 0), ts, &d, &c);
        (void)drst_flow_engine_packet(e, lt, p, (uint32_t)n, (uint32_t)n, ts);
        free(p);
        off += n;
        ts += 700000; /* 0.7 ms: crosses intervals and timeouts */
    }
    (void)drst_flow_engine_finish(e, NULL, 0);
    drst_flow_engine_free(e);
    return 0;
}
