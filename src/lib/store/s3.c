/* The S3 HTTP client: libcurl with its built-in AWS SigV4 signer
 * (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3"), path-style URLs
 * ENDPOINT/BUCKET/PREFIX+KEY, and a minimal, bounds-checked parser for
 * ListObjectsV2 answers. This is the only file that includes curl/curl.h;
 * curl and HTTP codes are translated to drst_err_t here.
 *
 * Credentials go to curl through CURLOPT_USERPWD only; no URL, message or
 * header we format ever contains them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common/error_int.h"
#include "common/lazylib_int.h"
#include "store/s3_int.h"

/* libcurl is loaded on first use, not linked (common/lazylib_int.h says
 * why). The table is filled once (pthread_once) and read-only afterwards. */
static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLSH *(*share_init)(void);
    CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
    CURLSHcode (*share_cleanup)(CURLSH *);
} C;
static int curl_loaded;
static char curl_why[256];
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    const lazy_sym_t syms[] = {
        LAZY_SYM(C.global_init, curl_global_init),
        LAZY_SYM(C.easy_init, curl_easy_init),
        LAZY_SYM(C.easy_setopt, curl_easy_setopt),
        LAZY_SYM(C.easy_perform, curl_easy_perform),
        LAZY_SYM(C.easy_getinfo, curl_easy_getinfo),
        LAZY_SYM(C.easy_cleanup, curl_easy_cleanup),
        LAZY_SYM(C.easy_strerror, curl_easy_strerror),
        LAZY_SYM(C.slist_append, curl_slist_append),
        LAZY_SYM(C.slist_free_all, curl_slist_free_all),
        LAZY_SYM(C.share_init, curl_share_init),
        LAZY_SYM(C.share_setopt, curl_share_setopt),
        LAZY_SYM(C.share_cleanup, curl_share_cleanup),
    };
    if (lazy_load("libcurl.so.4", "libcurl4", syms, sizeof(syms) / sizeof(syms[0]), curl_why,
                  sizeof(curl_why)))
        return;
    if (C.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(curl_why, sizeof(curl_why), "curl_global_init failed");
        return;
    }
    curl_loaded = 1;
}

drst_err_t s3_global_init(char *err, size_t errlen)
{
    pthread_once(&global_once, global_init);
    if (!curl_loaded)
        return drst_seterr(err, errlen, DRST_ERR_IO, "s3: %s", curl_why);
    return DRST_OK;
}

/* Connections are reused across requests and threads of one handle: a
 * reader polling a pointer must not open a TCP connection per poll. */
struct s3_share {
    CURLSH *sh;
    pthread_mutex_t mu[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access acc, void *ud)
{
    (void)h;
    (void)acc;
    struct s3_share *s = ud;
    pthread_mutex_lock(&s->mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    (void)h;
    struct s3_share *s = ud;
    pthread_mutex_unlock(&s->mu[data]);
}

struct s3_share *s3_share_new(char *err, size_t errlen)
{
    if (s3_global_init(err, errlen) != DRST_OK)
        return NULL;
    struct s3_share *s = calloc(1, sizeof(*s));
    if (!s || !(s->sh = C.share_init())) {
        free(s);
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: cannot create the connection cache");
        return NULL;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->mu[i], NULL);
    C.share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
    C.share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
    C.share_setopt(s->sh, CURLSHOPT_USERDATA, s);
    C.share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    C.share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    return s;
}

void s3_share_free(struct s3_share *s)
{
    if (!s)
        return;
    C.share_cleanup(s->sh);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->mu[i]);
    free(s);
}

int s3_urlencode(const char *in, int keep_slash, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
                   (keep_slash && *p == '/');
        if (keep) {
            if (o + 1 >= n)
                return -1;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= n)
                return -1;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= n)
        return -1;
    out[o] = 0;
    return 0;
}

typedef struct sink {
    unsigned char *buf;
    size_t len, cap;
    int oom;
} sink_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    size_t n = size * nmemb;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        unsigned char *nb = realloc(s->buf, cap);
        if (!nb) {
            s->oom = 1;
            return 0;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, ptr, n);
    s->len += n;
    s->buf[s->len] = 0;
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    s3_resp_t *r = ud;
    size_t n = size * nmemb;
    if (n > 5 && !strncasecmp(ptr, "etag:", 5)) {
        const char *v = ptr + 5;
        size_t vl = n - 5;
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof(r->etag)) {
            memcpy(r->etag, v, vl);
            r->etag[vl] = 0;
        }
    }
    return n;
}

static void sha256_hex(const void *buf, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    EVP_Digest(buf ? buf : "", len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = 0;
}

int s3_etag_mismatch(const char *etag, const void *body, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(etag);
    if (n != 34 || etag[0] != '"' || etag[33] != '"')
        return 0; /* multipart or opaque ETag: not an MD5 of the bytes */
    for (size_t i = 1; i < 33; i++)
        if (!strchr(hex, etag[i]))
            return 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(body ? body : "", len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        return 0;
    for (unsigned i = 0; i < 16; i++)
        if (etag[1 + 2 * i] != hex[md[i] >> 4] || etag[2 + 2 * i] != hex[md[i] & 15])
            return 1;
    return 0;
}

void s3_resp_free(s3_resp_t *r)
{
    if (r) {
        free(r->body);
        r->body = NULL;
        r->len = 0;
    }
}

static drst_err_t request_once(const s3_conf_t *c, const char *op, const char *method,
                               const char *key, const char *query, const void *body, size_t blen,
                               const char *hdr_if, s3_resp_t *r, char *err, size_t errlen)
{
    char ekey[3 * (DRST_STORE_KEY_MAX + 512) + 1], sigv4[128], hsha[96], ebucket[3 * 256 + 1];
    char *url = NULL, *userpwd = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    sink_t sk = {0};
    drst_err_t rc = DRST_OK;
    memset(r, 0, sizeof(*r));
    if ((rc = s3_global_init(err, errlen)) != DRST_OK)
        return rc;

    ekey[0] = 0;
    if (key) {
        size_t kl = strlen(c->prefix) + strlen(key) + 1;
        char *full = malloc(kl);
        if (!full)
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        snprintf(full, kl, "%s%s", c->prefix, key);
        int bad = s3_urlencode(full, 1, ekey, sizeof(ekey));
        free(full);
        if (bad)
            return drst_seterr(err, errlen, DRST_ERR_INVAL, "s3: key too long '%s'", key);
    }
    if (s3_urlencode(c->bucket, 0, ebucket, sizeof(ebucket)))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "s3: bucket name too long");
    size_t ul =
        strlen(c->endpoint) + strlen(ebucket) + strlen(ekey) + (query ? strlen(query) : 0) + 8;
    url = malloc(ul);
    size_t pl = strlen(c->key_id) + strlen(c->secret) + 2;
    userpwd = malloc(pl);
    CURL *h = C.easy_init();
    if (!url || !userpwd || !h) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        goto out;
    }
    /* path-style; a bucket request ends with '/' */
    snprintf(url, ul, "%s/%s/%s%s%s", c->endpoint, ebucket, ekey, query ? "?" : "",
             query ? query : "");
    snprintf(userpwd, pl, "%s:%s", c->key_id, c->secret);
    snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", c->region);
    char sh[65];
    sha256_hex(body, blen, sh);
    snprintf(hsha, sizeof(hsha), "x-amz-content-sha256: %s", sh);
    struct curl_slist *t;
    if (!(t = C.slist_append(hdrs, hsha)))
        goto oom;
    hdrs = t;
    if (!(t = C.slist_append(hdrs, "Expect:")))
        goto oom;
    hdrs = t;
    if (hdr_if) {
        if (!(t = C.slist_append(hdrs, hdr_if)))
            goto oom;
        hdrs = t;
    }
    if (!strcmp(method, "PUT")) {
        if (!(t = C.slist_append(hdrs, "Content-Type: application/octet-stream")))
            goto oom;
        hdrs = t;
        C.easy_setopt(h, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        C.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        C.easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (!strcmp(method, "HEAD")) {
        C.easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        C.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (c->share)
        C.easy_setopt(h, CURLOPT_SHARE, c->share->sh);
    C.easy_setopt(h, CURLOPT_URL, url);
    C.easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    C.easy_setopt(h, CURLOPT_USERPWD, userpwd);
    C.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    C.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    C.easy_setopt(h, CURLOPT_WRITEDATA, &sk);
    C.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    C.easy_setopt(h, CURLOPT_HEADERDATA, r);
    C.easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    C.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    C.easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 30000L);
    C.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    /* a transfer that stalls (a server answering with a short body on a
     * kept-alive connection: s3rver while it rewrites the object) is cut
     * after stall_s without progress instead of waiting for the server */
    C.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    C.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->stall_s > 0 ? c->stall_s : 2L);
    C.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = C.easy_perform(h);
    if (sk.oom) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory reading an answer");
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = drst_seterr(err, errlen,
                         cc == CURLE_OPERATION_TIMEDOUT ? DRST_ERR_TIMEOUT : DRST_ERR_IO,
                         "s3: %s '%s' at %s/%s: %s", op, key ? key : "", c->endpoint, c->bucket,
                         cerr[0] ? cerr : C.easy_strerror(cc));
        goto out;
    }
    C.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->body = sk.buf;
    r->len = sk.len;
    sk.buf = NULL;
    goto out;
oom:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
out:
    free(sk.buf);
    C.slist_free_all(hdrs);
    if (h)
        C.easy_cleanup(h);
    if (userpwd) {
        memset(userpwd, 0, pl);
        free(userpwd);
    }
    free(url);
    return rc;
}

/* S3 asks clients to retry 500 InternalError and 503 SlowDown (AWS SDKs
 * do), and s3rver answers 500 to a GET of a key it is still writing (on a
 * loaded machine for more than 250 ms: two retries were not enough in CI).
 * Retried four times, 50, 200, 800 and 3200 ms later, unless the request is
 * conditional: had a failed-looking conditional PUT succeeded, its retry
 * would see 412 and the caller would take its own write for a rival's. */
drst_err_t s3_request(const s3_conf_t *c, const char *op, const char *method, const char *key,
                      const char *query, const void *body, size_t blen, const char *hdr_if,
                      s3_resp_t *r, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        drst_err_t rc = request_once(c, op, method, key, query, body, blen, hdr_if, r, err, errlen);
        int transient =
            r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504;
        if (rc != DRST_OK || !transient || hdr_if || attempt == 4)
            return rc;
        s3_resp_free(r);
        long ms = 50L << (2 * attempt); /* 50, 200, 800, 3200 ms */
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------ XML */

/* Find "<tag>" at or after p; returns pointer after it, or NULL. */
static const char *find_tag(const char *p, const char *end, const char *tag)
{
    size_t tl = strlen(tag);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < tl + 2)
            return NULL;
        if (!memcmp(lt + 1, tag, tl)) {
            if (lt[tl + 1] == '>')
                return lt + tl + 2;
            if (lt[tl + 1] == ' ' || lt[tl + 1] == '\t' || lt[tl + 1] == '\n' ||
                lt[tl + 1] == '\r') { /* attributes (xmlns=...) */
                const char *gt = memchr(lt + tl + 1, '>', (size_t)(end - lt - tl - 1));
                if (!gt)
                    return NULL;
                if (gt[-1] != '/') /* not an empty element <x/> */
                    return gt + 1;
            }
        }
        p = lt + 1;
    }
    return NULL;
}

/* The text up to "</tag>", decoded into out. 0 ok, -1 malformed/too long. */
static int tag_text(const char **pp, const char *end, const char *tag, char *out, size_t n)
{
    const char *p = *pp;
    const char *lt = memchr(p, '<', (size_t)(end - p));
    size_t tl = strlen(tag);
    if (!lt || (size_t)(end - lt) < tl + 3 || lt[1] != '/' || memcmp(lt + 2, tag, tl) != 0 ||
        lt[tl + 2] != '>')
        return -1;
    size_t o = 0;
    while (p < lt) {
        unsigned long cp;
        if (*p == '&') {
            const char *semi = memchr(p, ';', (size_t)(lt - p));
            if (!semi || semi - p > 10)
                return -1;
            size_t el = (size_t)(semi - p - 1);
            const char *e = p + 1;
            if (el == 3 && !memcmp(e, "amp", 3))
                cp = '&';
            else if (el == 2 && !memcmp(e, "lt", 2))
                cp = '<';
            else if (el == 2 && !memcmp(e, "gt", 2))
                cp = '>';
            else if (el == 4 && !memcmp(e, "quot", 4))
                cp = '"';
            else if (el == 4 && !memcmp(e, "apos", 4))
                cp = '\'';
            else if (el >= 2 && e[0] == '#') {
                char num[12];
                char *ne;
                memcpy(num, e + 1, el - 1);
                num[el - 1] = 0;
                cp = (num[0] == 'x' || num[0] == 'X') ? strtoul(num + 1, &ne, 16)
                                                      : strtoul(num, &ne, 10);
                if (*ne || ne == num || cp == 0 || cp > 0x10FFFF)
                    return -1;
            } else
                return -1;
            p = semi + 1;
        } else {
            cp = (unsigned char)*p++;
            if (o + 1 >= n)
                return -1;
            out[o++] = (char)cp;
            continue;
        }
        /* UTF-8 encode */
        unsigned char u[4];
        size_t ul;
        if (cp < 0x80)
            u[0] = (unsigned char)cp, ul = 1;
        else if (cp < 0x800)
            u[0] = (unsigned char)(0xC0 | (cp >> 6)), u[1] = (unsigned char)(0x80 | (cp & 63)),
            ul = 2;
        else if (cp < 0x10000)
            u[0] = (unsigned char)(0xE0 | (cp >> 12)),
            u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63)),
            u[2] = (unsigned char)(0x80 | (cp & 63)), ul = 3;
        else
            u[0] = (unsigned char)(0xF0 | (cp >> 18)),
            u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63)),
            u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63)),
            u[3] = (unsigned char)(0x80 | (cp & 63)), ul = 4;
        if (o + ul >= n)
            return -1;
        memcpy(out + o, u, ul);
        o += ul;
    }
    out[o] = 0;
    *pp = lt + tl + 3;
    return 0;
}

drst_err_t s3_parse_list(const char *xml, size_t len, s3_list_cb cb, void *opaque, int *truncated,
                         char *token, size_t toklen, int *stopped, char *err, size_t errlen)
{
    const char *end = xml + len;
    char key[DRST_STORE_KEY_MAX + 513];
    *truncated = 0;
    *stopped = 0;
    if (token && toklen)
        token[0] = 0;
    const char *root = find_tag(xml, end, "ListBucketResult");
    if (!root)
        return drst_seterr(err, errlen, DRST_ERR_PARSE,
                           "s3: ListObjectsV2 answer has no <ListBucketResult> (%zu bytes)", len);
    static const char closing[] = "</ListBucketResult>";
    int complete = 0;
    for (const char *c = root; c + sizeof(closing) - 1 <= end; c++)
        if (*c == '<' && !memcmp(c, closing, sizeof(closing) - 1)) {
            complete = 1;
            end = c; /* nothing after the root element is ours */
            break;
        }
    if (!complete)
        return drst_seterr(err, errlen, DRST_ERR_PARSE,
                           "s3: ListObjectsV2 answer is incomplete (no </ListBucketResult>, %zu "
                           "bytes)",
                           len);
    const char *p = root;
    char tv[16];
    const char *t = find_tag(root, end, "IsTruncated");
    if (t) {
        const char *q = t;
        if (tag_text(&q, end, "IsTruncated", tv, sizeof(tv)))
            return drst_seterr(err, errlen, DRST_ERR_PARSE,
                               "s3: ListObjectsV2: bad <IsTruncated> at byte %zu",
                               (size_t)(t - xml));
        *truncated = !strcmp(tv, "true");
    }
    t = find_tag(root, end, "NextContinuationToken");
    if (t && token && toklen) {
        const char *q = t;
        if (tag_text(&q, end, "NextContinuationToken", token, toklen))
            return drst_seterr(err, errlen, DRST_ERR_PARSE,
                               "s3: ListObjectsV2: bad <NextContinuationToken> at byte %zu",
                               (size_t)(t - xml));
    }
    if (*truncated && (!token || !token[0]))
        return drst_seterr(err, errlen, DRST_ERR_PARSE,
                           "s3: ListObjectsV2: truncated answer without a continuation token");
    while ((p = find_tag(p, end, "Contents")) != NULL) {
        const char *cend = p;
        while (cend < end &&
               !(*cend == '<' && (size_t)(end - cend) >= 11 && !memcmp(cend, "</Contents>", 11)))
            cend++;
        if (cend >= end)
            return drst_seterr(err, errlen, DRST_ERR_PARSE,
                               "s3: ListObjectsV2: unterminated <Contents> at byte %zu",
                               (size_t)(p - xml));
        const char *k = find_tag(p, cend, "Key");
        if (!k)
            return drst_seterr(err, errlen, DRST_ERR_PARSE,
                               "s3: ListObjectsV2: <Contents> without <Key> at byte %zu",
                               (size_t)(p - xml));
        if (tag_text(&k, cend, "Key", key, sizeof(key)))
            return drst_seterr(err, errlen, DRST_ERR_PARSE,
                               "s3: ListObjectsV2: bad <Key> at byte %zu", (size_t)(k - xml));
        p = cend + 11;
        if (cb(opaque, key)) {
            *stopped = 1;
            return DRST_OK;
        }
    }
    return DRST_OK;
}

drst_err_t s3_http_error(const s3_conf_t *c, const char *op, const char *key, const s3_resp_t *r,
                         char *err, size_t errlen)
{
    char code[96] = "", msg[256] = "";
    if (r->body && r->len) {
        const char *end = (const char *)r->body + r->len;
        const char *p = find_tag((const char *)r->body, end, "Code");
        if (!p || tag_text(&p, end, "Code", code, sizeof(code)))
            code[0] = 0;
        p = find_tag((const char *)r->body, end, "Message");
        if (!p || tag_text(&p, end, "Message", msg, sizeof(msg)))
            msg[0] = 0;
    }
    drst_err_t rc = DRST_ERR_IO;
    const char *hint = "";
    if (r->status == 404)
        rc = DRST_ERR_NOTFOUND;
    else if (r->status == 412 || r->status == 409)
        rc = DRST_ERR_BUSY;
    else if (r->status == 401 || r->status == 403) {
        rc = DRST_ERR_IO;
        hint = " (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS profile)";
    }
    return drst_seterr(err, errlen, rc, "s3: %s '%s' at %s/%s: HTTP %ld%s%s%s%s%s", op,
                       key ? key : "", c->endpoint, c->bucket, r->status, code[0] ? " " : "", code,
                       msg[0] ? ": " : "", msg, hint);
}
