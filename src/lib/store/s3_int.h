/* S3 backend internals: the HTTP client (s3.c, the only file including
 * curl/curl.h), the ListObjectsV2 parser and the backend table. Not public API. */
#ifndef DRST_S3_INT_H
#define DRST_S3_INT_H

#include <stddef.h>

#include "drst/store.h"

/** Where and how to reach the bucket. Credentials never leave this struct:
 * no message, log line or metric formats key_id or secret. */
typedef struct s3_conf {
    char endpoint[512]; /**< scheme://host[:port], no trailing '/' */
    char region[64];
    char key_id[256];
    char secret[256];
    char bucket[256];
    char prefix[512];       /**< "" or "a/b/" (always ends with '/') */
    long timeout_ms;        /**< per request */
    long stall_s;           /**< abort a transfer without progress for this long */
    struct s3_share *share; /**< connection cache shared by the handle's threads (may be NULL) */
} s3_conf_t;

/** A curl share (connection cache + DNS) with its locks, for one store
 * handle; NULL with the reason in err (libcurl not loadable, no memory). */
struct s3_share *s3_share_new(char *err, size_t errlen);
void s3_share_free(struct s3_share *sh);

/** One HTTP exchange's outcome. body is malloc'd (NUL-terminated), caller frees. */
typedef struct s3_resp {
    long status;
    unsigned char *body;
    size_t len;
    char etag[128];
} s3_resp_t;

/** Load libcurl and run curl_global_init, once per process (pthread_once);
 * DRST_ERR_IO with the reason if libcurl cannot be loaded. */
drst_err_t s3_global_init(char *err, size_t errlen);

/**
 * One signed request to `key` (relative to conf->prefix; NULL = the bucket
 * itself). `query` is an already encoded, sorted query string or NULL.
 * `hdr_if` is an extra conditional header line ("If-None-Match: *") or NULL.
 * An unconditional request answered 500/502/503/504 is tried again, four
 * times (50, 200, 800, 3200 ms later).
 * @return DRST_OK if an HTTP answer arrived (any status, see r->status);
 * DRST_ERR_IO if the server could not be reached (message names the
 * operation and the endpoint).
 */
drst_err_t s3_request(const s3_conf_t *c, const char *op, const char *method, const char *key,
                      const char *query, const void *body, size_t blen, const char *hdr_if,
                      s3_resp_t *r, char *err, size_t errlen);

/** 1 if `etag` is a single-part ETag (quoted MD5 hex) that the bytes do not
 * match: a read that raced a replace on a server without atomic objects. */
int s3_etag_mismatch(const char *etag, const void *body, size_t len);

/** Free r->body. */
void s3_resp_free(s3_resp_t *r);

/** Format an HTTP failure: "s3: OP 'key' at ENDPOINT/BUCKET: HTTP 403 Code: Message". */
drst_err_t s3_http_error(const s3_conf_t *c, const char *op, const char *key, const s3_resp_t *r,
                         char *err, size_t errlen);

/** Percent-encode `in` (RFC 3986 unreserved kept, '/' kept if keep_slash). */
int s3_urlencode(const char *in, int keep_slash, char *out, size_t n);

typedef int (*s3_list_cb)(void *opaque, const char *key);

/**
 * Parse a ListObjectsV2 answer: calls cb for each <Contents><Key>, decoded
 * (XML entities), sets *truncated and the next continuation token.
 * @return DRST_OK, DRST_ERR_PARSE (malformed), or the first non-zero cb
 * return stops the walk (DRST_OK returned, *stopped = 1).
 */
drst_err_t s3_parse_list(const char *xml, size_t len, s3_list_cb cb, void *opaque, int *truncated,
                         char *token, size_t toklen, int *stopped, char *err, size_t errlen);

extern const struct drst_store_ops drst_store_s3_ops;

#endif
