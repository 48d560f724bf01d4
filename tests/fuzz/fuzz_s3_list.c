/* libFuzzer target: the ListObjectsV2 answer parser of the S3 store backend. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/s3_int.h"

static int count(void *opaque, const char *key)
{
    size_t *n = opaque;
    *n += strlen(key) + 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = malloc(size + 1);
    if (!xml)
        return 0;
    memcpy(xml, data, size);
    xml[size] = 0;
    size_t n = 0;
    int trunc, stopped;
    char tok[1024], err[512];
    (void)s3_parse_list(xml, size, count, &n, &trunc, tok, sizeof(tok), &stopped, err, sizeof(err));
    char code[64];
    s3_conf_t c;
    memset(&c, 0, sizeof(c));
    s3_resp_t r = {.status = 403, .body = (unsigned char *)xml, .len = size};
    (void)s3_http_error(&c, "GetObject", "k", &r, code, sizeof(code));
    free(xml);
    return 0;
}
