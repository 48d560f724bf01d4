/* The store front end: backend table, key validation, and model releases
 * (immutable model/metrics objects, atomic pointers, append-only history). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error_int.h"
#include "store/store_int.h"

/* Every backend, by URI scheme. A bare path uses the first one. */
static const struct drst_store_ops *const backends[] = {
    &drst_store_local_ops,
    &drst_store_s3_ops,
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

struct drst_store {
    const struct drst_store_ops *ops;
    void *state;
    char *uri;
};

int drst_store_key_valid(const char *key)
{
    if (!key || !key[0] || key[0] == '/')
        return 0;
    size_t n = strlen(key);
    if (n > DRST_STORE_KEY_MAX || key[n - 1] == '/')
        return 0;
    const char *c = key;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f || c[i] == '\\')
                return 0;
        c += len + (e ? 1 : 0);
    }
    return 1;
}

drst_store_t *drst_store_open(const char *uri, char *err, size_t errlen)
{
    if (!uri || !uri[0]) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "store: empty location");
        return NULL;
    }
    const struct drst_store_ops *ops = backends[0];
    const char *loc = uri;
    const char *colon = strstr(uri, "://");
    if (colon) {
        size_t sl = (size_t)(colon - uri);
        ops = NULL;
        for (size_t i = 0; i < NBACKENDS; i++)
            if (strlen(backends[i]->scheme) == sl && !strncmp(uri, backends[i]->scheme, sl))
                ops = backends[i];
        if (!ops) {
            drst_seterr(err, errlen, DRST_ERR_UNSUPPORTED,
                        "store: no backend for '%.*s://' in this build", (int)sl, uri);
            return NULL;
        }
        loc = colon + 3;
    }
    drst_store_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->uri = strdup(uri))) {
        free(s);
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
        return NULL;
    }
    s->ops = ops;
    if (ops->open(loc, &s->state, err, errlen) != DRST_OK) {
        free(s->uri);
        free(s);
        return NULL;
    }
    return s;
}

void drst_store_close(drst_store_t *s)
{
    if (!s)
        return;
    s->ops->close(s->state);
    free(s->uri);
    free(s);
}

const char *drst_store_uri(const drst_store_t *s)
{
    return s->uri;
}

#define CHECK_KEY(key)                                                                             \
    do {                                                                                           \
        if (!drst_store_key_valid(key))                                                            \
            return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid key '%s'",             \
                               (key) ? (key) : "(null)");                                          \
    } while (0)

drst_err_t drst_store_get(drst_store_t *s, const char *key, unsigned char **buf, size_t *len,
                          char *err, size_t errlen)
{
    CHECK_KEY(key);
    return s->ops->get(s->state, key, buf, len, err, errlen);
}

drst_err_t drst_store_put_immutable(drst_store_t *s, const char *key, const void *buf, size_t len,
                                    char *err, size_t errlen)
{
    CHECK_KEY(key);
    return s->ops->put_immutable(s->state, key, buf, len, err, errlen);
}

drst_err_t drst_store_put_atomic(drst_store_t *s, const char *key, const void *buf, size_t len,
                                 char *err, size_t errlen)
{
    CHECK_KEY(key);
    return s->ops->put_atomic(s->state, key, buf, len, err, errlen);
}

drst_err_t drst_store_append(drst_store_t *s, const char *key, const void *buf, size_t len,
                             char *err, size_t errlen)
{
    CHECK_KEY(key);
    if (s->ops->append)
        return s->ops->append(s->state, key, buf, len, err, errlen);
    /* read-modify-write for backends without append (single writer) */
    unsigned char *old = NULL;
    size_t olen = 0;
    drst_err_t rc = s->ops->get(s->state, key, &old, &olen, err, errlen);
    if (rc && rc != DRST_ERR_NOTFOUND)
        return rc;
    unsigned char *nb = malloc(olen + len + 1);
    if (!nb) {
        free(old);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    }
    if (olen)
        memcpy(nb, old, olen);
    memcpy(nb + olen, buf, len);
    free(old);
    rc = s->ops->put_atomic(s->state, key, nb, olen + len, err, errlen);
    free(nb);
    return rc;
}

drst_err_t drst_store_list(drst_store_t *s, const char *prefix, drst_store_list_fn fn, void *opaque,
                           char *err, size_t errlen)
{
    if (prefix && prefix[0] && (prefix[0] == '/' || strstr(prefix, "..")))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid prefix '%s'", prefix);
    return s->ops->list(s->state, prefix ? prefix : "", fn, opaque, err, errlen);
}

int drst_store_exists(drst_store_t *s, const char *key)
{
    return drst_store_key_valid(key) && s->ops->exists(s->state, key);
}

drst_err_t drst_store_delete(drst_store_t *s, const char *key, char *err, size_t errlen)
{
    CHECK_KEY(key);
    return s->ops->del(s->state, key, err, errlen);
}

drst_err_t drst_store_flush(drst_store_t *s, double timeout_s, char *err, size_t errlen)
{
    if (!s->ops->flush)
        return DRST_OK;
    return s->ops->flush(s->state, timeout_s, err, errlen);
}

/* ------------------------------------------------------------- releases */

static int pointer_name_ok(const char *name)
{
    if (!name || !name[0] || strlen(name) > 64)
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return 0;
    return strcmp(name, "history") != 0;
}

static void utc_stamp(char *buf, size_t n, int compact)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(buf, n, compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* models/model_X -> models/metrics_X.json */
static int metrics_key_of(const char *model_key, char *out, size_t n)
{
    const char *p = strstr(model_key, "model_");
    if (!p || strncmp(model_key, "models/", 7) != 0)
        return -1;
    int k = snprintf(out, n, "%.*smetrics_%s.json", (int)(p - model_key), model_key,
                     p + strlen("model_"));
    return k > 0 && (size_t)k < n ? 0 : -1;
}

static drst_err_t parse_pointer(const char *name, const unsigned char *buf, size_t len,
                                drst_release_t *rel, char *err, size_t errlen)
{
    const char *p = (const char *)buf, *end = p + len;
    const char *nl1 = memchr(p, '\n', len);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl1 || !nl2 || nl2 + 1 != end || (size_t)(nl1 - p) > DRST_STORE_KEY_MAX ||
        (size_t)(nl2 - nl1 - 1) > DRST_STORE_KEY_MAX)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "store: pointer 'models/%s' is not two lines (%zu bytes)", name, len);
    memcpy(rel->model_key, p, (size_t)(nl1 - p));
    rel->model_key[nl1 - p] = 0;
    memcpy(rel->metrics_key, nl1 + 1, (size_t)(nl2 - nl1 - 1));
    rel->metrics_key[nl2 - nl1 - 1] = 0;
    if (!drst_store_key_valid(rel->model_key) || !drst_store_key_valid(rel->metrics_key))
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "store: pointer 'models/%s' holds an invalid key", name);
    return DRST_OK;
}

drst_err_t drst_store_read_pointer(drst_store_t *s, const char *name, drst_release_t *rel,
                                   char *err, size_t errlen)
{
    char key[96];
    unsigned char *buf = NULL;
    size_t len = 0;
    if (!pointer_name_ok(name))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid pointer name '%s'",
                           name ? name : "(null)");
    snprintf(key, sizeof(key), "models/%s", name);
    drst_err_t rc = s->ops->get(s->state, key, &buf, &len, err, errlen);
    if (rc == DRST_ERR_NOTFOUND)
        return drst_seterr(err, errlen, rc, "store: no pointer 'models/%s' (nothing published)",
                           name);
    if (rc)
        return rc;
    rc = parse_pointer(name, buf, len, rel, err, errlen);
    free(buf);
    return rc;
}

static drst_err_t write_pointer(drst_store_t *s, const char *name, const char *op,
                                const drst_release_t *rel, char *err, size_t errlen)
{
    char key[96], ts[32];
    size_t n = strlen(rel->model_key) + strlen(rel->metrics_key) + 160;
    char *buf = malloc(n);
    if (!buf)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    snprintf(key, sizeof(key), "models/%s", name);
    int k = snprintf(buf, n, "%s\n%s\n", rel->model_key, rel->metrics_key);
    drst_err_t rc = drst_store_put_atomic(s, key, buf, (size_t)k, err, errlen);
    if (!rc) {
        utc_stamp(ts, sizeof(ts), 0);
        k = snprintf(buf, n, "%s %s %s %s %s\n", ts, name, op, rel->model_key, rel->metrics_key);
        rc = drst_store_append(s, "models/history", buf, (size_t)k, err, errlen);
    }
    free(buf);
    return rc;
}

drst_err_t drst_store_set_pointer(drst_store_t *s, const char *name, const drst_release_t *rel,
                                  char *err, size_t errlen)
{
    drst_release_t r = *rel;
    if (!pointer_name_ok(name))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid pointer name '%s'", name);
    if (!drst_store_key_valid(r.model_key) || strncmp(r.model_key, "models/", 7) != 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid model key '%s'",
                           r.model_key);
    if (!r.metrics_key[0] && metrics_key_of(r.model_key, r.metrics_key, sizeof(r.metrics_key)))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "store: cannot derive a metrics key from '%s'", r.model_key);
    if (!drst_store_key_valid(r.metrics_key) || strchr(r.model_key, ' ') ||
        strchr(r.metrics_key, ' '))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid metrics key '%s'",
                           r.metrics_key);
    if (!s->ops->exists(s->state, r.model_key))
        return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "store: no model '%s'", r.model_key);
    return write_pointer(s, name, "set", &r, err, errlen);
}

drst_err_t drst_store_rollback(drst_store_t *s, const char *name, drst_release_t *out, char *err,
                               size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_release_t *stack = NULL;
    size_t depth = 0, cap = 0;
    if (!pointer_name_ok(name))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid pointer name '%s'", name);
    drst_err_t rc = drst_store_get(s, "models/history", &buf, &len, err, errlen);
    if (rc == DRST_ERR_NOTFOUND)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "store: no history: nothing to roll back");
    if (rc)
        return rc;
    /* replay: a set pushes, a rollback pops */
    char *line = (char *)buf;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char ts[64], pn[96], op[16], mk[DRST_STORE_KEY_MAX + 1], xk[DRST_STORE_KEY_MAX + 1];
        if (strlen(line) < sizeof(mk) &&
            sscanf(line, "%63s %95s %15s %1024s %1024s", ts, pn, op, mk, xk) == 5 &&
            !strcmp(pn, name)) {
            if (!strcmp(op, "set")) {
                if (depth == cap) {
                    cap = cap ? 2 * cap : 16;
                    drst_release_t *ns = realloc(stack, cap * sizeof(*ns));
                    if (!ns) {
                        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
                        goto out;
                    }
                    stack = ns;
                }
                snprintf(stack[depth].model_key, sizeof(stack[depth].model_key), "%s", mk);
                snprintf(stack[depth].metrics_key, sizeof(stack[depth].metrics_key), "%s", xk);
                depth++;
            } else if (!strcmp(op, "rollback") && depth > 0) {
                depth--;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (depth < 2) {
        rc = drst_seterr(err, errlen, DRST_ERR_STATE,
                         "store: pointer '%s' has no previous release to roll back to", name);
        goto out;
    }
    drst_release_t *prev = &stack[depth - 2];
    rc = write_pointer(s, name, "rollback", prev, err, errlen);
    if (!rc && out)
        *out = *prev;
out:
    free(stack);
    free(buf);
    return rc;
}

drst_err_t drst_store_resolve(drst_store_t *s, const char *ref, drst_release_t *rel, char *err,
                              size_t errlen)
{
    if (!ref || !ref[0])
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: empty model reference");
    if (!strchr(ref, '/') && strncmp(ref, "model_", 6) != 0)
        return drst_store_read_pointer(s, ref, rel, err, errlen);
    memset(rel, 0, sizeof(*rel));
    int k = snprintf(rel->model_key, sizeof(rel->model_key), "%s%s",
                     strncmp(ref, "models/", 7) ? "models/" : "", ref);
    if (k < 0 || (size_t)k >= sizeof(rel->model_key) || !drst_store_key_valid(rel->model_key))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "store: invalid model key '%s'", ref);
    if (!s->ops->exists(s->state, rel->model_key))
        return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "store: no model '%s'", rel->model_key);
    if (metrics_key_of(rel->model_key, rel->metrics_key, sizeof(rel->metrics_key)))
        rel->metrics_key[0] = 0;
    return DRST_OK;
}

drst_err_t drst_store_load_model(drst_store_t *s, const char *ref, drst_model_t **out,
                                 drst_release_t *rel, char *err, size_t errlen)
{
    drst_release_t r;
    unsigned char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    drst_err_t rc = drst_store_resolve(s, ref, &r, err, errlen);
    if (rc)
        return rc;
    rc = drst_store_get(s, r.model_key, &buf, &len, err, errlen);
    if (rc)
        return rc;
    char e2[DRST_ERRLEN];
    rc = drst_model_load_buffer(buf, len, out, e2, sizeof(e2));
    free(buf);
    if (rc)
        return drst_seterr(err, errlen, rc, "%s: %s", r.model_key, e2);
    if (rel)
        *rel = r;
    return DRST_OK;
}

/* An immutable put that succeeds if the same bytes are already there. */
static drst_err_t put_once(drst_store_t *s, const char *key, const void *buf, size_t len, char *err,
                           size_t errlen)
{
    drst_err_t rc = drst_store_put_immutable(s, key, buf, len, err, errlen);
    if (rc != DRST_ERR_BUSY)
        return rc;
    unsigned char *old = NULL;
    size_t olen = 0;
    if (drst_store_get(s, key, &old, &olen, NULL, 0) == DRST_OK && olen == len &&
        memcmp(old, buf, len) == 0)
        rc = DRST_OK;
    free(old);
    return rc;
}

drst_err_t drst_store_publish_model(drst_store_t *s, const drst_model_t *m, drst_publish_t which,
                                    drst_release_t *out, char *err, size_t errlen)
{
    drst_release_t rel;
    unsigned char *buf = NULL;
    size_t len = 0;
    char *json = NULL, ts[32];
    drst_err_t rc = drst_model_save_buffer(m, &buf, &len, err, errlen);
    if (rc)
        return rc;
    utc_stamp(ts, sizeof(ts), 1);
    snprintf(rel.model_key, sizeof(rel.model_key), "models/model_%s_%.12s", ts,
             drst_model_hash_hex(m));
    snprintf(rel.metrics_key, sizeof(rel.metrics_key), "models/metrics_%s_%.12s.json", ts,
             drst_model_hash_hex(m));
    rc = put_once(s, rel.model_key, buf, len, err, errlen);
    if (rc)
        goto out;
    rc = drst_model_metrics_json(m, rel.model_key, &json, err, errlen);
    if (rc)
        goto out;
    rc = put_once(s, rel.metrics_key, json, strlen(json), err, errlen);
    if (rc)
        goto out;
    if (which & DRST_PUBLISH_BASELINE)
        rc = write_pointer(s, "baseline", "set", &rel, err, errlen);
    if (!rc && (which & DRST_PUBLISH_LATEST))
        rc = write_pointer(s, "latest", "set", &rel, err, errlen);
    if (!rc && out)
        *out = rel;
out:
    free(buf);
    free(json);
    return rc;
}
