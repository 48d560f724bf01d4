/* libFuzzer target: the JSON record decoder (fast path and jansson
 * fallback) on arbitrary bytes; a decoded record must re-encode and decode
 * to the same values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drst/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"a", "b", "firewall_instructions", "c d"};
    static drst_schema_t *s;
    double f[4], g[4];
    drst_record_t r = {.features = f}, q = {.features = g};
    char err[DRST_ERRLEN], buf[4096];
    size_t len;

    if (!s)
        s = drst_schema_new(names, 4, NULL, NULL, 0);
    if (drst_record_decode_json(s, data, size, &r, err, sizeof(err)) != DRST_OK)
        return 0;
    if (drst_record_encode_json(s, &r, buf, sizeof(buf), &len) != DRST_OK)
        return 0;
    if (drst_record_decode_json(s, buf, len, &q, err, sizeof(err)) != DRST_OK)
        abort();
    if (r.eos != q.eos || (!r.eos && r.seq != q.seq))
        abort();
    for (int i = 0; !r.eos && i < 4; i++)
        if (!(isnan(f[i]) && isnan(g[i])) && memcmp(&f[i], &g[i], sizeof(double)) != 0)
            abort();
    return 0;
}
