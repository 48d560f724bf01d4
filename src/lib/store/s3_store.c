/* The S3 store backend (s3://bucket/prefix), local-first.
 *
 * Writes land in a spool directory first (one file per write, named by a
 * sequence number, holding the key and the bytes; written to a temp file,
 * fsync'ed and renamed) and return at once. One uploader thread per handle
 * uploads the spool strictly in sequence order and retries the head entry
 * with exponential backoff until it succeeds, so an object is never uploaded
 * before one written earlier: a publish writes the immutable model and
 * metrics before the pointer that names them, and `models/latest` therefore
 * never reaches S3 before its model. Each entry keeps the bytes of its own
 * write (not the key's newest bytes), which is what makes the order hold
 * when a pointer is replaced while older versions are still queued.
 * open() rebuilds the queue from the directory, so a restart drains what a
 * previous process left.
 *
 * Reads look at the spool first (read-your-writes), then S3 through a small
 * in-memory cache validated by ETag (If-None-Match -> 304).
 *
 * Keys under state/ (locks, leases, checkpoints shared between machines)
 * bypass the spool: they are read and written synchronously. put_immutable
 * there uses a conditional PUT (If-None-Match: *) when the server honours
 * it (probed once per handle); otherwise it falls back to HEAD-then-PUT,
 * which leaves a small race window between two machines (docs/s3.md).
 *
 * Only one process uploads a given spool directory (flock); a second process
 * on the same store and machine takes the next free directory "<spool>.N". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error_int.h"
#include "store/s3_int.h"

#define CACHE_N       32
#define CACHE_OBJ_MAX (8u << 20)
#define SPOOL_MAGIC   "DRSTSPOOL1 "

enum { K_IMMUTABLE = 'I', K_ATOMIC = 'A', K_DELETE = 'D', K_APPEND = 'P' };

typedef struct pend {
    uint64_t seq;
    char *key;
    int kind;
} pend_t;

typedef struct cent {
    char *key;
    char etag[128];
    unsigned char *buf;
    size_t len;
    uint64_t used;
} cent_t;

typedef struct s3st {
    s3_conf_t conf;
    char *spool; /* spool directory of this handle */
    int lockfd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pend_t *pend;
    size_t npend, cappend;
    uint64_t next_seq;
    uint64_t inflight;          /* seq being uploaded, UINT64_MAX if none */
    char last_err[DRST_ERRLEN]; /* last failed upload (no credentials in it) */
    int stop, th_started;
    pthread_t th;
    cent_t cache[CACHE_N];
    uint64_t tick;
    int cond_support; /* -1 unknown, 0 no, 1 yes */
    long backoff_min_ms, backoff_max_ms;
    double drain_timeout;
} s3st_t;

/* ------------------------------------------------------------ config */

typedef struct inictx {
    const char *section; /* "default" or "profile X" / "X" */
    s3_conf_t *c;
    int creds; /* parsing the credentials file */
    char endpoint[512];
} inictx_t;

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    inictx_t *x = user;
    if (strcmp(section, x->section) != 0)
        return 1;
    if (x->creds && !strcmp(name, "aws_access_key_id") && !x->c->key_id[0])
        snprintf(x->c->key_id, sizeof(x->c->key_id), "%s", value);
    else if (x->creds && !strcmp(name, "aws_secret_access_key") && !x->c->secret[0])
        snprintf(x->c->secret, sizeof(x->c->secret), "%s", value);
    else if (!x->creds && !strcmp(name, "region") && !x->c->region[0])
        snprintf(x->c->region, sizeof(x->c->region), "%s", value);
    else if (!x->creds && !strcmp(name, "endpoint_url") && !x->endpoint[0])
        snprintf(x->endpoint, sizeof(x->endpoint), "%s", value);
    return 1;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static drst_err_t load_conf(s3_conf_t *c, char *err, size_t errlen)
{
    char path[1024], sect[300];
    const char *home = env("HOME");
    const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
    const char *v;
    inictx_t x = {.c = c};
    if ((v = env("AWS_ACCESS_KEY_ID")) && env("AWS_SECRET_ACCESS_KEY")) {
        snprintf(c->key_id, sizeof(c->key_id), "%s", v);
        snprintf(c->secret, sizeof(c->secret), "%s", env("AWS_SECRET_ACCESS_KEY"));
    }
    if ((v = env("AWS_REGION")) || (v = env("AWS_DEFAULT_REGION")))
        snprintf(c->region, sizeof(c->region), "%s", v);
    /* shared files: [profile] in credentials, [profile NAME] or [default] in config */
    if (!c->key_id[0]) {
        if ((v = env("AWS_SHARED_CREDENTIALS_FILE")))
            snprintf(path, sizeof(path), "%s", v);
        else
            snprintf(path, sizeof(path), "%s/.aws/credentials", home ? home : ".");
        x.section = profile;
        x.creds = 1;
        ini_parse(path, on_ini, &x);
    }
    if ((v = env("AWS_CONFIG_FILE")))
        snprintf(path, sizeof(path), "%s", v);
    else
        snprintf(path, sizeof(path), "%s/.aws/config", home ? home : ".");
    if (strcmp(profile, "default") != 0)
        snprintf(sect, sizeof(sect), "profile %s", profile);
    else
        snprintf(sect, sizeof(sect), "default");
    x.section = sect;
    x.creds = 0;
    ini_parse(path, on_ini, &x);
    if (!c->region[0])
        snprintf(c->region, sizeof(c->region), "us-east-1");
    if ((v = env("DRST_S3_ENDPOINT")) || (v = env("AWS_ENDPOINT_URL_S3")) ||
        (v = env("AWS_ENDPOINT_URL")) || (v = x.endpoint[0] ? x.endpoint : NULL))
        snprintf(c->endpoint, sizeof(c->endpoint), "%s", v);
    else
        snprintf(c->endpoint, sizeof(c->endpoint), "https://s3.%s.amazonaws.com", c->region);
    size_t n = strlen(c->endpoint);
    while (n && c->endpoint[n - 1] == '/')
        c->endpoint[--n] = 0;
    if (strncmp(c->endpoint, "http://", 7) != 0 && strncmp(c->endpoint, "https://", 8) != 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "s3: endpoint '%s' is not an http:// or https:// URL", c->endpoint);
    const char *auth = strstr(c->endpoint, "://") + 3;
    const char *at = strchr(auth, '@'), *sl = strchr(auth, '/');
    if (at && (!sl || at < sl)) /* never echo it: it may hold a password */
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "s3: the endpoint URL must not carry credentials (user:password@); use "
                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
    for (const char *r = c->region; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return drst_seterr(err, errlen, DRST_ERR_INVAL, "s3: invalid region '%s'", c->region);
    if (!c->key_id[0] || !c->secret[0])
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "s3: no credentials for %s: set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY or profile '%s' in the AWS shared files",
                           c->endpoint, profile);
    c->timeout_ms = 10000;
    if ((v = env("DRST_S3_TIMEOUT_MS")))
        c->timeout_ms = strtol(v, NULL, 10);
    c->stall_s = 2;
    if ((v = env("DRST_S3_STALL_S")))
        c->stall_s = strtol(v, NULL, 10);
    return DRST_OK;
}

/* "bucket/pre/fix" -> bucket, "pre/fix/" */
static drst_err_t parse_location(const char *loc, s3_conf_t *c, char *err, size_t errlen)
{
    const char *sl = strchr(loc, '/');
    size_t bl = sl ? (size_t)(sl - loc) : strlen(loc);
    if (bl < 3 || bl >= sizeof(c->bucket))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "s3: invalid bucket in 's3://%s'", loc);
    for (size_t i = 0; i < bl; i++) {
        char ch = loc[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            return drst_seterr(err, errlen, DRST_ERR_INVAL, "s3: invalid bucket in 's3://%s'", loc);
    }
    memcpy(c->bucket, loc, bl);
    c->bucket[bl] = 0;
    c->prefix[0] = 0;
    if (sl) {
        const char *p = sl;
        while (*p == '/')
            p++;
        size_t pl = strlen(p);
        while (pl && p[pl - 1] == '/')
            pl--;
        if (pl) {
            if (pl + 2 > sizeof(c->prefix))
                return drst_seterr(err, errlen, DRST_ERR_INVAL, "s3: prefix too long in 's3://%s'",
                                   loc);
            memcpy(c->prefix, p, pl);
            c->prefix[pl] = 0;
            if (!drst_store_key_valid(c->prefix))
                return drst_seterr(err, errlen, DRST_ERR_INVAL, "s3: invalid prefix in 's3://%s'",
                                   loc);
            c->prefix[pl] = '/';
            c->prefix[pl + 1] = 0;
        }
    }
    return DRST_OK;
}

/* ------------------------------------------------------------ spool */

static int mkdirs(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return -1;
    for (char *p = d + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char save = *p;
            *p = 0;
            if (mkdir(d, 0700) != 0 && errno != EEXIST) {
                free(d);
                return -1;
            }
            *p = save;
            if (!save)
                break;
        }
    }
    free(d);
    return 0;
}

static char *entry_path(const s3st_t *s, uint64_t seq)
{
    size_t n = strlen(s->spool) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%020llu", s->spool, (unsigned long long)seq);
    return p;
}

static int cmp_pend(const void *a, const void *b)
{
    const pend_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Read a spool entry: header "DRSTSPOOL1 K key\n" then the bytes. */
static int read_entry(const char *path, int *kind, char **key, unsigned char **body, size_t *blen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    struct stat st;
    unsigned char *b = NULL;
    if (fstat(fileno(f), &st) != 0 || st.st_size < (off_t)sizeof(SPOOL_MAGIC) + 3)
        goto bad;
    b = malloc((size_t)st.st_size + 1);
    if (!b || fread(b, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto bad;
    b[st.st_size] = 0;
    size_t ml = strlen(SPOOL_MAGIC);
    unsigned char *nl = memchr(b, '\n', (size_t)st.st_size);
    if (memcmp(b, SPOOL_MAGIC, ml) != 0 || !nl || nl < b + ml + 3 || b[ml + 1] != ' ')
        goto bad;
    *kind = b[ml];
    if (key) {
        size_t kl = (size_t)(nl - (b + ml + 2));
        if (!(*key = malloc(kl + 1)))
            goto bad;
        memcpy(*key, b + ml + 2, kl);
        (*key)[kl] = 0;
    }
    if (body) {
        size_t off = (size_t)(nl + 1 - b);
        *blen = (size_t)st.st_size - off;
        memmove(b, b + off, *blen);
        b[*blen] = 0;
        *body = b;
        b = NULL;
    }
    free(b);
    fclose(f);
    return 0;
bad:
    free(b);
    fclose(f);
    return -1;
}

static drst_err_t spool_scan(s3st_t *s, char *err, size_t errlen)
{
    DIR *d = opendir(s->spool);
    if (!d)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "s3: cannot open spool '%s'",
                             s->spool);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        if (de->d_name[0] == '.') {
            if (!strncmp(de->d_name, ".tmp", 4)) { /* torn write of a crashed process */
                size_t n = strlen(s->spool) + strlen(de->d_name) + 2;
                char *p = malloc(n);
                if (p) {
                    snprintf(p, n, "%s/%s", s->spool, de->d_name);
                    unlink(p);
                }
                free(p);
            }
            continue;
        }
        unsigned long long seq = strtoull(de->d_name, &end, 10);
        if (*end || strlen(de->d_name) != 20)
            continue;
        char *path = entry_path(s, seq), *key = NULL;
        int kind = 0;
        if (!path || read_entry(path, &kind, &key, NULL, NULL) != 0 || !drst_store_key_valid(key) ||
            (kind != K_IMMUTABLE && kind != K_ATOMIC && kind != K_DELETE && kind != K_APPEND)) {
            free(path);
            free(key);
            continue; /* not ours or unreadable: left alone */
        }
        free(path);
        if (s->npend == s->cappend) {
            size_t cap = s->cappend ? 2 * s->cappend : 64;
            pend_t *np = realloc(s->pend, cap * sizeof(*np));
            if (!np) {
                free(key);
                closedir(d);
                return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
            }
            s->pend = np;
            s->cappend = cap;
        }
        s->pend[s->npend++] = (pend_t){.seq = seq, .key = key, .kind = kind};
        if (seq >= s->next_seq)
            s->next_seq = seq + 1;
    }
    closedir(d);
    if (s->npend)
        qsort(s->pend, s->npend, sizeof(*s->pend), cmp_pend);
    return DRST_OK;
}

/* Write one spool entry and queue it (takes the lock). */
static drst_err_t spool_add(s3st_t *s, const char *key, int kind, const void *buf, size_t len,
                            char *err, size_t errlen)
{
    drst_err_t rc = DRST_OK;
    char *key_copy = strdup(key);
    size_t tl = strlen(s->spool) + 64;
    char *tmp = malloc(tl), *path = NULL;
    int fd = -1;
    if (!key_copy || !tmp) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    uint64_t seq = s->next_seq++;
    pthread_mutex_unlock(&s->mu);
    snprintf(tmp, tl, "%s/.tmp%020llu", s->spool, (unsigned long long)seq);
    path = entry_path(s, seq);
    if (!path) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "s3: spool '%s': cannot write '%s'",
                           s->spool, key);
        goto out;
    }
    char hdr[DRST_STORE_KEY_MAX + 32];
    int hl = snprintf(hdr, sizeof(hdr), SPOOL_MAGIC "%c %s\n", kind, key);
    const unsigned char *parts[2] = {(const unsigned char *)hdr, buf};
    size_t lens[2] = {(size_t)hl, len};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < lens[i]) {
            ssize_t w = write(fd, parts[i] + off, lens[i] - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno,
                                   "s3: spool '%s': cannot write '%s'", s->spool, key);
                goto out;
            }
            off += (size_t)w;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "s3: spool '%s': cannot sync '%s'",
                           s->spool, key);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "s3: spool '%s': cannot rename '%s'",
                           s->spool, key);
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    if (s->npend == s->cappend) {
        size_t cap = s->cappend ? 2 * s->cappend : 64;
        pend_t *np = realloc(s->pend, cap * sizeof(*np));
        if (!np) {
            pthread_mutex_unlock(&s->mu);
            unlink(path);
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
            goto out;
        }
        s->pend = np;
        s->cappend = cap;
    }
    /* sequence numbers are taken under the lock but files may be renamed in
     * another order by concurrent writers: insert sorted */
    size_t at = s->npend;
    while (at > 0 && s->pend[at - 1].seq > seq)
        at--;
    memmove(s->pend + at + 1, s->pend + at, (s->npend - at) * sizeof(*s->pend));
    s->pend[at] = (pend_t){.seq = seq, .key = key_copy, .kind = kind};
    s->npend++;
    key_copy = NULL;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(key_copy);
    free(tmp);
    free(path);
    return rc;
}

/* Newest pending entry for key (lock held): its seq and kind, or 0. */
static int pending_of(const s3st_t *s, const char *key, uint64_t *seq)
{
    for (size_t i = s->npend; i > 0; i--)
        if (!strcmp(s->pend[i - 1].key, key)) {
            *seq = s->pend[i - 1].seq;
            return s->pend[i - 1].kind;
        }
    return 0;
}

/* ------------------------------------------------------------ uploader */

static void add_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void cache_drop(s3st_t *s, const char *key)
{
    for (int i = 0; i < CACHE_N; i++)
        if (s->cache[i].key && !strcmp(s->cache[i].key, key)) {
            free(s->cache[i].key);
            free(s->cache[i].buf);
            memset(&s->cache[i], 0, sizeof(s->cache[i]));
        }
}

/* One upload attempt of the head entry. 0 done, -1 retry later. */
static int upload_one(s3st_t *s, uint64_t seq, char *e, size_t el)
{
    char *path = entry_path(s, seq), *key = NULL;
    unsigned char *body = NULL;
    size_t blen = 0;
    int kind = 0, done = -1;
    s3_resp_t r;
    if (!path)
        return -1;
    if (read_entry(path, &kind, &key, &body, &blen) != 0) {
        done = 0; /* vanished or unreadable: nothing to upload */
        goto out;
    }
    if (kind == K_APPEND) {
        /* read-modify-write at upload time (one writer per key, as for pointers) */
        s3_resp_t g;
        if (s3_request(&s->conf, "GetObject", "GET", key, NULL, NULL, 0, NULL, &g, e, el) !=
            DRST_OK)
            goto out;
        if (g.status != 200 && g.status != 404)
            s3_http_error(&s->conf, "GetObject", key, &g, e, el);
        int ok = g.status == 404 ||
                 (g.status == 200 && !(g.etag[0] && s3_etag_mismatch(g.etag, g.body, g.len)));
        size_t old = g.status == 200 ? g.len : 0;
        unsigned char *nb = ok ? malloc(old + blen + 1) : NULL;
        if (nb) {
            if (old)
                memcpy(nb, g.body, old);
            if (blen)
                memcpy(nb + old, body, blen);
            if (s3_request(&s->conf, "PutObject", "PUT", key, NULL, nb, old + blen, NULL, &r, e,
                           el) == DRST_OK) {
                done = r.status >= 200 && r.status < 300 ? 0 : -1;
                if (done)
                    s3_http_error(&s->conf, "PutObject", key, &r, e, el);
                s3_resp_free(&r);
            }
            free(nb);
        }
        s3_resp_free(&g);
    } else if (kind == K_DELETE) {
        if (s3_request(&s->conf, "DeleteObject", "DELETE", key, NULL, NULL, 0, NULL, &r, e, el) ==
            DRST_OK) {
            done = (r.status >= 200 && r.status < 300) || r.status == 404 ? 0 : -1;
            if (done)
                s3_http_error(&s->conf, "DeleteObject", key, &r, e, el);
            s3_resp_free(&r);
        }
    } else if (s3_request(&s->conf, "PutObject", "PUT", key, NULL, body, blen,
                          kind == K_IMMUTABLE ? "If-None-Match: *" : NULL, &r, e, el) == DRST_OK) {
        /* 412: an immutable object already there (same name = same content hash) */
        done = (r.status >= 200 && r.status < 300) || (kind == K_IMMUTABLE && r.status == 412) ? 0
                                                                                               : -1;
        if (done)
            s3_http_error(&s->conf, "PutObject", key, &r, e, el);
        s3_resp_free(&r);
    }
    if (done == 0)
        unlink(path);
out:
    free(path);
    free(key);
    free(body);
    return done;
}

static void *uploader(void *arg)
{
    s3st_t *s = arg;
    long backoff = s->backoff_min_ms;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (s->npend == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        uint64_t seq = s->pend[0].seq;
        s->inflight = seq;
        pthread_mutex_unlock(&s->mu);
        char e[DRST_ERRLEN] = "";
        int ok = upload_one(s, seq, e, sizeof(e));
        pthread_mutex_lock(&s->mu);
        if (ok != 0 && e[0])
            snprintf(s->last_err, sizeof(s->last_err), "%s", e);
        s->inflight = UINT64_MAX;
        if (ok == 0) {
            backoff = s->backoff_min_ms;
            if (s->npend && s->pend[0].seq == seq) {
                cache_drop(s, s->pend[0].key);
                free(s->pend[0].key);
                memmove(s->pend, s->pend + 1, (s->npend - 1) * sizeof(*s->pend));
                s->npend--;
            }
            pthread_cond_broadcast(&s->cv);
            continue;
        }
        struct timespec ts;
        add_ms(&ts, backoff);
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
            ;
        backoff = backoff * 2 > s->backoff_max_ms ? s->backoff_max_ms : backoff * 2;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ------------------------------------------------------------ S3 helpers */

static int is_state(const char *key)
{
    return !strncmp(key, "state/", 6);
}

static drst_err_t remote_get1(s3st_t *s, const char *key, unsigned char **buf, size_t *len,
                              char *err, size_t errlen);

/* A body that does not match its MD5 ETag (s3rver serves half-replaced
 * objects) is never cached nor returned: read again, a few times. */
static drst_err_t remote_get(s3st_t *s, const char *key, unsigned char **buf, size_t *len,
                             char *err, size_t errlen)
{
    drst_err_t rc = DRST_OK;
    for (int attempt = 0; attempt < 5; attempt++) {
        rc = remote_get1(s, key, buf, len, err, errlen);
        if (rc != DRST_ERR_EOF)
            return rc;
        usleep(20000u << attempt);
    }
    return drst_seterr(err, errlen, DRST_ERR_IO,
                       "s3: GetObject '%s' at %s/%s: the body never matched its ETag", key,
                       s->conf.endpoint, s->conf.bucket);
}

static drst_err_t remote_get1(s3st_t *s, const char *key, unsigned char **buf, size_t *len,
                              char *err, size_t errlen)
{
    char etag[128] = "", hdr[160];
    s3_resp_t r;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < CACHE_N; i++)
        if (s->cache[i].key && !strcmp(s->cache[i].key, key))
            snprintf(etag, sizeof(etag), "%s", s->cache[i].etag);
    pthread_mutex_unlock(&s->mu);
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
    drst_err_t rc = s3_request(&s->conf, "GetObject", "GET", key, NULL, NULL, 0,
                               etag[0] ? hdr : NULL, &r, err, errlen);
    if (rc)
        return rc;
    if (r.status == 304) {
        rc = DRST_ERR_NOTFOUND;
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < CACHE_N; i++)
            if (s->cache[i].key && !strcmp(s->cache[i].key, key) &&
                !strcmp(s->cache[i].etag, etag)) {
                unsigned char *b = malloc(s->cache[i].len + 1);
                if (b) {
                    memcpy(b, s->cache[i].buf, s->cache[i].len);
                    b[s->cache[i].len] = 0;
                    *buf = b;
                    *len = s->cache[i].len;
                    s->cache[i].used = ++s->tick;
                    rc = DRST_OK;
                } else
                    rc = DRST_ERR_NOMEM;
            }
        pthread_mutex_unlock(&s->mu);
        s3_resp_free(&r);
        if (rc == DRST_ERR_NOTFOUND) /* evicted meanwhile: fetch whole */
            return remote_get1(s, key, buf, len, err, errlen);
        return rc == DRST_OK ? rc : drst_seterr(err, errlen, rc, "s3: out of memory");
    }
    if (r.status != 200) {
        rc = s3_http_error(&s->conf, "GetObject", key, &r, err, errlen);
        s3_resp_free(&r);
        return rc;
    }
    if (r.etag[0] && s3_etag_mismatch(r.etag, r.body, r.len)) {
        s3_resp_free(&r);
        return DRST_ERR_EOF; /* torn read: the caller retries */
    }
    if (r.etag[0] && r.len <= CACHE_OBJ_MAX) {
        unsigned char *copy = malloc(r.len + 1);
        char *kc = strdup(key);
        if (copy && kc) {
            memcpy(copy, r.body ? r.body : (unsigned char *)"", r.len);
            pthread_mutex_lock(&s->mu);
            cache_drop(s, key);
            int v = 0;
            for (int i = 1; i < CACHE_N; i++)
                if (s->cache[i].used < s->cache[v].used)
                    v = i;
            free(s->cache[v].key);
            free(s->cache[v].buf);
            s->cache[v] = (cent_t){.key = kc, .buf = copy, .len = r.len, .used = ++s->tick};
            snprintf(s->cache[v].etag, sizeof(s->cache[v].etag), "%s", r.etag);
            pthread_mutex_unlock(&s->mu);
        } else {
            free(copy);
            free(kc);
        }
    }
    if (!r.body) {
        r.body = malloc(1);
        if (!r.body)
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        r.body[0] = 0;
    }
    *buf = r.body;
    *len = r.len;
    return DRST_OK;
}

/* 1 exists, 0 not, -1 error (message in err) */
static int remote_exists(s3st_t *s, const char *key, char *err, size_t errlen)
{
    s3_resp_t r;
    if (s3_request(&s->conf, "HeadObject", "HEAD", key, NULL, NULL, 0, NULL, &r, err, errlen))
        return -1;
    int e = r.status == 200 ? 1 : r.status == 404 ? 0 : -1;
    if (e < 0)
        s3_http_error(&s->conf, "HeadObject", key, &r, err, errlen);
    s3_resp_free(&r);
    return e;
}

static drst_err_t remote_put(s3st_t *s, const char *key, const void *buf, size_t len,
                             const char *cond, char *err, size_t errlen)
{
    s3_resp_t r;
    drst_err_t rc =
        s3_request(&s->conf, "PutObject", "PUT", key, NULL, buf, len, cond, &r, err, errlen);
    if (rc)
        return rc;
    if (r.status < 200 || r.status >= 300)
        rc = s3_http_error(&s->conf, "PutObject", key, &r, err, errlen);
    s3_resp_free(&r);
    return rc;
}

/* Does the server refuse a PUT with If-None-Match: * over an existing object? */
static int probe_conditional(s3st_t *s)
{
    char key[96];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(key, sizeof(key), "state/.drst-cond-probe-%ld-%ld", (long)getpid(), (long)ts.tv_nsec);
    s3_resp_t r;
    int sup = 0;
    if (remote_put(s, key, "1", 1, NULL, NULL, 0) != DRST_OK)
        return -1;
    if (s3_request(&s->conf, "PutObject", "PUT", key, NULL, "2", 1, "If-None-Match: *", &r, NULL,
                   0) == DRST_OK) {
        sup = r.status == 412 || r.status == 409;
        s3_resp_free(&r);
    } else
        sup = -1;
    if (s3_request(&s->conf, "DeleteObject", "DELETE", key, NULL, NULL, 0, NULL, &r, NULL, 0) ==
        DRST_OK)
        s3_resp_free(&r);
    return sup;
}

/* ------------------------------------------------------------ ops */

static void s3_close(void *state);

static drst_err_t s3_open(const char *location, void **state, char *err, size_t errlen)
{
    drst_err_t rc;
    s3st_t *s = calloc(1, sizeof(*s));
    if (!s)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
    s->lockfd = -1;
    s->cond_support = -1;
    s->inflight = UINT64_MAX;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->backoff_min_ms = 100;
    s->backoff_max_ms = 5000;
    s->drain_timeout = 10;
    const char *v;
    if ((v = env("DRST_S3_BACKOFF_MAX_MS")))
        s->backoff_max_ms = strtol(v, NULL, 10) > 0 ? strtol(v, NULL, 10) : 5000;
    if ((v = env("DRST_S3_DRAIN_TIMEOUT")))
        s->drain_timeout = strtod(v, NULL);
    if ((rc = parse_location(location, &s->conf, err, errlen)) != DRST_OK ||
        (rc = load_conf(&s->conf, err, errlen)) != DRST_OK)
        goto fail;
    /* spool directory: DRST_S3_SPOOL, else $XDG_CACHE_HOME|~/.cache/drst/spool/<bucket>/<prefix> */
    char base[2048];
    if ((v = env("DRST_S3_SPOOL")))
        snprintf(base, sizeof(base), "%s", v);
    else if ((v = env("XDG_CACHE_HOME")))
        snprintf(base, sizeof(base), "%s/drst/spool/%s/%s", v, s->conf.bucket, s->conf.prefix);
    else
        snprintf(base, sizeof(base), "%s/.cache/drst/spool/%s/%s", env("HOME") ? env("HOME") : ".",
                 s->conf.bucket, s->conf.prefix);
    size_t bl = strlen(base);
    while (bl > 1 && base[bl - 1] == '/')
        base[--bl] = 0;
    for (int i = 0; i < 16 && s->lockfd < 0; i++) {
        char dir[2100], lockp[2200];
        if (i)
            snprintf(dir, sizeof(dir), "%s.%d", base, i);
        else
            snprintf(dir, sizeof(dir), "%s", base);
        if (mkdirs(dir) != 0) {
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno,
                               "s3: cannot create spool directory '%s'", dir);
            goto fail;
        }
        snprintf(lockp, sizeof(lockp), "%s/.lock", dir);
        int fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "s3: cannot open '%s'", lockp);
            goto fail;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            s->lockfd = fd;
            if (!(s->spool = strdup(dir))) {
                rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
                goto fail;
            }
        } else
            close(fd);
    }
    if (s->lockfd < 0) {
        rc = drst_seterr(err, errlen, DRST_ERR_BUSY, "s3: every spool directory '%s[.N]' is in use",
                         base);
        goto fail;
    }
    if ((rc = spool_scan(s, err, errlen)) != DRST_OK)
        goto fail;
    if (!(s->conf.share = s3_share_new(err, errlen))) {
        rc = DRST_ERR_IO;
        goto fail;
    }
    /* Fail early on what retrying cannot fix (credentials, missing bucket);
     * an unreachable server is fine: we work from the spool until it is back. */
    s3_resp_t r;
    char q[3 * 600 + 64], ep[3 * 600 + 1], pp[600];
    /* a prefix that names nothing: cheap, and no max-keys (s3rver fails on
     * truncated v2 listings with max-keys) */
    snprintf(pp, sizeof(pp), "%sstate/.drst-probe/", s->conf.prefix);
    if (s3_urlencode(pp, 0, ep, sizeof(ep)) == 0) {
        snprintf(q, sizeof(q), "list-type=2&prefix=%s", ep);
        if (s3_request(&s->conf, "ListObjectsV2", "GET", NULL, q, NULL, 0, NULL, &r, NULL, 0) ==
            DRST_OK) {
            if (r.status != 200) {
                rc = s3_http_error(&s->conf, "ListObjectsV2", s->conf.prefix, &r, err, errlen);
                s3_resp_free(&r);
                goto fail;
            }
            s3_resp_free(&r);
        }
    }
    if (pthread_create(&s->th, NULL, uploader, s) != 0) {
        rc = drst_seterr(err, errlen, DRST_ERR_IO, "s3: cannot start the uploader thread");
        goto fail;
    }
    s->th_started = 1;
    *state = s;
    return DRST_OK;
fail:
    s3_close(s);
    return rc;
}

static void s3_close(void *state)
{
    s3st_t *s = state;
    if (!s)
        return;
    if (s->th_started) {
        struct timespec ts;
        add_ms(&ts, (long)(s->drain_timeout * 1000));
        pthread_mutex_lock(&s->mu);
        while (s->npend && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
            ;
        s->stop = 1; /* what is left stays in the spool for the next open */
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].key);
    free(s->pend);
    for (int i = 0; i < CACHE_N; i++) {
        free(s->cache[i].key);
        free(s->cache[i].buf);
    }
    s3_share_free(s->conf.share);
    if (s->lockfd >= 0)
        close(s->lockfd);
    free(s->spool);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    memset(s->conf.secret, 0, sizeof(s->conf.secret));
    free(s);
}

/* Bytes of spool entry `seq` into *out (appended at *len). 0 ok, -1 gone. */
static int append_entry(const s3st_t *s, uint64_t seq, unsigned char **out, size_t *len)
{
    char *path = entry_path(s, seq);
    unsigned char *b = NULL;
    size_t bl = 0;
    int k;
    int ok = path ? read_entry(path, &k, NULL, &b, &bl) : -1;
    free(path);
    if (ok != 0)
        return -1;
    unsigned char *nb = realloc(*out, *len + bl + 1);
    if (!nb) {
        free(b);
        return -2;
    }
    memcpy(nb + *len, b, bl);
    *len += bl;
    nb[*len] = 0;
    *out = nb;
    free(b);
    return 0;
}

/* Read-your-writes: the newest pending write of `key` (plus the appends
 * queued after it), else S3 plus every pending append. Entries uploaded
 * while we read make us start over (the base could then hold them twice). */
static drst_err_t s3_get(void *state, const char *key, unsigned char **buf, size_t *len, char *err,
                         size_t errlen)
{
    s3st_t *s = state;
    *buf = NULL;
    *len = 0;
    if (is_state(key)) {
        drst_err_t rc = remote_get(s, key, buf, len, err, errlen);
        if (rc == DRST_ERR_NOTFOUND)
            return drst_seterr(err, errlen, rc, "s3: no key '%s' in s3://%s/%s", key,
                               s->conf.bucket, s->conf.prefix);
        return rc;
    }
    for (int attempt = 0; attempt < 8; attempt++) {
        uint64_t seqs[64];
        int kinds[64], n = 0, overflow = 0;
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->npend; i++)
            if (!strcmp(s->pend[i].key, key)) {
                if (n == 64) { /* keep the newest 64 */
                    memmove(seqs, seqs + 1, 63 * sizeof(*seqs));
                    memmove(kinds, kinds + 1, 63 * sizeof(*kinds));
                    n = 63;
                    overflow = 1;
                }
                seqs[n] = s->pend[i].seq;
                kinds[n++] = s->pend[i].kind;
            }
        pthread_mutex_unlock(&s->mu);
        int j = n - 1;
        while (j >= 0 && kinds[j] == K_APPEND)
            j--;
        if (overflow && j < 0) {
            /* more than 64 queued appends: wait for the uploader a little */
            usleep(50000);
            continue;
        }
        unsigned char *b = NULL;
        size_t bl = 0;
        int found = 1;
        drst_err_t rc = DRST_OK;
        if (j >= 0 && kinds[j] == K_DELETE) {
            found = 0;
        } else if (j >= 0) {
            int a = append_entry(s, seqs[j], &b, &bl);
            if (a == -2)
                return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
            if (a != 0)
                continue; /* uploaded meanwhile */
        } else {
            rc = remote_get(s, key, &b, &bl, err, errlen);
            if (rc == DRST_ERR_NOTFOUND)
                found = 0;
            else if (rc != DRST_OK)
                return rc;
            if (n > 0) {
                int first_there = 0;
                pthread_mutex_lock(&s->mu);
                for (size_t k = 0; k < s->npend && !first_there; k++)
                    first_there = s->pend[k].seq == seqs[0];
                if (s->inflight == seqs[0])
                    first_there = 0; /* its PUT may already be in the base */
                pthread_mutex_unlock(&s->mu);
                if (!first_there) {
                    usleep(5000);
                    free(b);
                    continue; /* an append reached S3 while we read it */
                }
            }
        }
        int gone = 0;
        for (int i = j + 1; i < n && !gone; i++) {
            int a = append_entry(s, seqs[i], &b, &bl);
            if (a == -2) {
                free(b);
                return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
            }
            gone = a != 0;
            found = 1;
        }
        if (gone) {
            free(b);
            continue;
        }
        if (!found) {
            free(b);
            return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "s3: no key '%s' in s3://%s/%s", key,
                               s->conf.bucket, s->conf.prefix);
        }
        if (!b && !(b = calloc(1, 1)))
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        *buf = b;
        *len = bl;
        return DRST_OK;
    }
    return drst_seterr(err, errlen, DRST_ERR_IO,
                       "s3: '%s' kept changing while it was read (uploads in progress)", key);
}

static drst_err_t s3_put_immutable(void *state, const char *key, const void *buf, size_t len,
                                   char *err, size_t errlen)
{
    s3st_t *s = state;
    if (is_state(key)) {
        pthread_mutex_lock(&s->mu);
        int cs = s->cond_support;
        pthread_mutex_unlock(&s->mu);
        if (cs < 0) {
            cs = probe_conditional(s);
            pthread_mutex_lock(&s->mu);
            s->cond_support = cs;
            pthread_mutex_unlock(&s->mu);
        }
        if (cs == 1) {
            drst_err_t rc = remote_put(s, key, buf, len, "If-None-Match: *", err, errlen);
            if (rc == DRST_ERR_BUSY)
                return drst_seterr(err, errlen, rc, "s3: key '%s' exists", key);
            return rc;
        }
        /* weaker: HEAD then PUT (a race window between two machines) */
        int e = remote_exists(s, key, err, errlen);
        if (e < 0)
            return DRST_ERR_IO;
        if (e > 0)
            return drst_seterr(err, errlen, DRST_ERR_BUSY, "s3: key '%s' exists", key);
        return remote_put(s, key, buf, len, NULL, err, errlen);
    }
    pthread_mutex_lock(&s->mu);
    uint64_t seq;
    int kind = pending_of(s, key, &seq);
    pthread_mutex_unlock(&s->mu);
    if (kind && kind != K_DELETE)
        return drst_seterr(err, errlen, DRST_ERR_BUSY, "s3: key '%s' exists", key);
    return spool_add(s, key, K_IMMUTABLE, buf, len, err, errlen);
}

static drst_err_t s3_put_atomic(void *state, const char *key, const void *buf, size_t len,
                                char *err, size_t errlen);

static drst_err_t s3_append(void *state, const char *key, const void *buf, size_t len, char *err,
                            size_t errlen)
{
    s3st_t *s = state;
    if (!is_state(key))
        return spool_add(s, key, K_APPEND, buf, len, err, errlen);
    unsigned char *old = NULL, *nb;
    size_t olen = 0;
    drst_err_t rc = remote_get(s, key, &old, &olen, err, errlen);
    if (rc && rc != DRST_ERR_NOTFOUND)
        return rc;
    if (!(nb = malloc(olen + len + 1))) {
        free(old);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
    }
    if (olen)
        memcpy(nb, old, olen);
    if (len)
        memcpy(nb + olen, buf, len);
    free(old);
    rc = remote_put(s, key, nb, olen + len, NULL, err, errlen);
    free(nb);
    return rc;
}

static drst_err_t s3_put_atomic(void *state, const char *key, const void *buf, size_t len,
                                char *err, size_t errlen)
{
    s3st_t *s = state;
    if (is_state(key))
        return remote_put(s, key, buf, len, NULL, err, errlen);
    return spool_add(s, key, K_ATOMIC, buf, len, err, errlen);
}

typedef struct keyvec {
    char **v;
    size_t n, cap;
    size_t plen; /* store prefix length to strip */
    int oom;
} keyvec_t;

static int kv_add(keyvec_t *kv, const char *key)
{
    if (kv->n == kv->cap) {
        size_t cap = kv->cap ? 2 * kv->cap : 64;
        char **nv = realloc(kv->v, cap * sizeof(*nv));
        if (!nv)
            return -1;
        kv->v = nv;
        kv->cap = cap;
    }
    if (!(kv->v[kv->n] = strdup(key)))
        return -1;
    kv->n++;
    return 0;
}

static int on_list_key(void *opaque, const char *key)
{
    keyvec_t *kv = opaque;
    if (strlen(key) < kv->plen)
        return 0;
    const char *k = key + kv->plen;
    if (!drst_store_key_valid(k))
        return 0; /* foreign objects under the prefix are not ours */
    if (kv_add(kv, k)) {
        kv->oom = 1;
        return 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static drst_err_t s3_list(void *state, const char *prefix, drst_store_list_fn fn, void *opaque,
                          char *err, size_t errlen)
{
    s3st_t *s = state;
    keyvec_t kv = {.plen = strlen(s->conf.prefix)};
    drst_err_t rc = DRST_OK;
    size_t fpl = strlen(s->conf.prefix) + strlen(prefix) + 1;
    char *full = malloc(fpl), *q = NULL, *eprefix = NULL;
    char token[1024] = "", etok[3 * 1024 + 1];
    size_t ql = 3 * fpl + sizeof(etok) + 128;
    q = malloc(ql);
    eprefix = malloc(3 * fpl + 1);
    if (!full || !q || !eprefix) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        goto out;
    }
    snprintf(full, fpl, "%s%s", s->conf.prefix, prefix);
    s3_urlencode(full, 0, eprefix, 3 * fpl + 1);
    for (int page = 0;; page++) {
        if (token[0]) {
            if (s3_urlencode(token, 0, etok, sizeof(etok))) {
                rc = drst_seterr(err, errlen, DRST_ERR_PARSE, "s3: continuation token too long");
                goto out;
            }
            snprintf(q, ql, "continuation-token=%s&list-type=2&prefix=%s", etok, eprefix);
        } else
            snprintf(q, ql, "list-type=2&prefix=%s", eprefix);
        s3_resp_t r;
        if ((rc = s3_request(&s->conf, "ListObjectsV2", "GET", NULL, q, NULL, 0, NULL, &r, err,
                             errlen)) != DRST_OK)
            goto out;
        if (r.status != 200) {
            rc = s3_http_error(&s->conf, "ListObjectsV2", full, &r, err, errlen);
            s3_resp_free(&r);
            goto out;
        }
        int trunc = 0, stopped = 0;
        rc = s3_parse_list((const char *)(r.body ? r.body : (unsigned char *)""), r.len,
                           on_list_key, &kv, &trunc, token, sizeof(token), &stopped, err, errlen);
        s3_resp_free(&r);
        if (rc)
            goto out;
        if (kv.oom) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
            goto out;
        }
        if (!trunc)
            break;
        if (page > 100000) {
            rc = drst_seterr(err, errlen, DRST_ERR_PARSE, "s3: ListObjectsV2 never ends");
            goto out;
        }
    }
    /* merge the spool: pending writes appear, pending deletes disappear */
    pthread_mutex_lock(&s->mu);
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < s->npend && !kv.oom; i++) {
        const char *k = s->pend[i].key;
        uint64_t seq;
        if (strncmp(k, prefix, pl) != 0)
            continue;
        if (pending_of(s, k, &seq) != K_DELETE && kv_add(&kv, k))
            kv.oom = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (kv.oom) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "s3: out of memory");
        goto out;
    }
    if (kv.n)
        qsort(kv.v, kv.n, sizeof(*kv.v), cmp_str);
    for (size_t i = 0; i < kv.n; i++) {
        if (i && !strcmp(kv.v[i], kv.v[i - 1]))
            continue;
        uint64_t seq;
        pthread_mutex_lock(&s->mu);
        int kind = pending_of(s, kv.v[i], &seq);
        pthread_mutex_unlock(&s->mu);
        if (kind == K_DELETE)
            continue;
        if (fn(opaque, kv.v[i]))
            break;
    }
out:
    for (size_t i = 0; i < kv.n; i++)
        free(kv.v[i]);
    free(kv.v);
    free(full);
    free(q);
    free(eprefix);
    return rc;
}

static int s3_exists(void *state, const char *key)
{
    s3st_t *s = state;
    uint64_t seq;
    if (!is_state(key)) {
        pthread_mutex_lock(&s->mu);
        int kind = pending_of(s, key, &seq);
        pthread_mutex_unlock(&s->mu);
        if (kind)
            return kind != K_DELETE;
    }
    return remote_exists(s, key, NULL, 0) == 1;
}

static drst_err_t s3_del(void *state, const char *key, char *err, size_t errlen)
{
    s3st_t *s = state;
    if (!s3_exists(state, key))
        return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "s3: no key '%s'", key);
    if (is_state(key)) {
        s3_resp_t r;
        drst_err_t rc = s3_request(&s->conf, "DeleteObject", "DELETE", key, NULL, NULL, 0, NULL, &r,
                                   err, errlen);
        if (rc)
            return rc;
        if ((r.status < 200 || r.status >= 300) && r.status != 404)
            rc = s3_http_error(&s->conf, "DeleteObject", key, &r, err, errlen);
        s3_resp_free(&r);
        pthread_mutex_lock(&s->mu);
        cache_drop(s, key);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    return spool_add(s, key, K_DELETE, "", 0, err, errlen);
}

static drst_err_t s3_flush(void *state, double timeout_s, char *err, size_t errlen)
{
    s3st_t *s = state;
    struct timespec ts;
    add_ms(&ts, (long)(timeout_s * 1000));
    pthread_mutex_lock(&s->mu);
    while (s->npend && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
        ;
    size_t left = s->npend;
    drst_err_t rc = DRST_OK;
    if (left)
        rc =
            drst_seterr(err, errlen, DRST_ERR_TIMEOUT,
                        "s3: %zu write(s) still in the spool '%s' after %.1f s%s%s", left, s->spool,
                        timeout_s, s->last_err[0] ? "; last upload error: " : "", s->last_err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

const struct drst_store_ops drst_store_s3_ops = {
    .scheme = "s3",
    .open = s3_open,
    .close = s3_close,
    .get = s3_get,
    .put_immutable = s3_put_immutable,
    .put_atomic = s3_put_atomic,
    .append = s3_append,
    .list = s3_list,
    .exists = s3_exists,
    .del = s3_del,
    .flush = s3_flush,
};
