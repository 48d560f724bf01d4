/* libFuzzer target: the binary record decoder on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drst/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"a", "b"};
    static drst_schema_t *s;
    double f[2];
    drst_record_t r = {.features = f};
    char err[DRST_ERRLEN];
    unsigned char buf[256];
    size_t len;

    if (!s)
        s = drst_schema_new(names, 2, NULL, NULL, 0);
    if (drst_record_decode(s, data, size, &r, err, sizeof(err)) != DRST_OK)
        return 0;
    if (drst_record_encode_bin(s, &r, buf, sizeof(buf), &len) != DRST_OK)
        abort();
    return 0;
}
