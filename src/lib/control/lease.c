/* Lease locks in a store. Creation is put_immutable (exactly one creator
 * wins); an expired or torn lease is deleted and the creation retried once,
 * so the lock survives restarts of its holder and a dead holder's lease
 * simply runs out. Taking over an expired lease goes through an immutable
 * claim object per lease instance, so of several takers exactly one wins
 * (docs/control.md). A holder that renews after its lease expired may find
 * it taken: renew then fails with DRST_ERR_STATE and the holder must stop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/error_int.h"
#include "control/control_int.h"

double drst_control_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void ctl_stamp(double t, char *buf, size_t n)
{
    if (t < 0)
        t = drst_control_now();
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y%m%dT%H%M%SZ", &tm);
}

static drst_err_t parse_lease(const unsigned char *buf, size_t len, drst_lease_info_t *out,
                              const char *key, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb((const char *)buf, len, 0, &je);
    memset(out, 0, sizeof(*out));
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "lease '%s': not a JSON object", key);
    }
    json_t *ow = json_object_get(o, "owner"), *ex = json_object_get(o, "expires"),
           *ac = json_object_get(o, "acquired");
    if (!json_is_string(ow) || !json_is_number(ex) ||
        strlen(json_string_value(ow)) >= sizeof(out->owner) || !isfinite(json_number_value(ex))) {
        json_decref(o);
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "lease '%s': key 'owner' or 'expires' missing or invalid", key);
    }
    snprintf(out->owner, sizeof(out->owner), "%s", json_string_value(ow));
    out->expires = json_number_value(ex);
    out->acquired = json_is_number(ac) ? json_number_value(ac) : NAN;
    json_decref(o);
    return DRST_OK;
}

drst_err_t drst_lease_read(drst_store_t *s, const char *key, drst_lease_info_t *out, char *err,
                           size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_err_t rc = drst_store_get(s, key, &buf, &len, err, errlen);
    if (rc != DRST_OK)
        return rc;
    rc = parse_lease(buf, len, out, key, err, errlen);
    free(buf);
    return rc;
}

static int lease_text(char *buf, size_t n, const char *owner, double acquired, double expires)
{
    json_t *o =
        json_pack("{s:s, s:f, s:f}", "owner", owner, "acquired", acquired, "expires", expires);
    if (!o)
        return -1;
    char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!txt)
        return -1;
    int w = snprintf(buf, n, "%s\n", txt);
    free(txt);
    return (w < 0 || (size_t)w >= n) ? -1 : w;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

drst_err_t drst_lease_acquire(drst_store_t *s, const char *key, const char *owner, double ttl,
                              double now, drst_lease_info_t *held, char *err, size_t errlen)
{
    char text[DRST_CONTROL_OWNER_MAX + 160];
    char claim[DRST_STORE_KEY_MAX + 1];
    drst_lease_info_t cur;
    drst_err_t rc;
    if (!s || !key || !owner || !*owner || strlen(owner) >= DRST_CONTROL_OWNER_MAX || !(ttl > 0) ||
        strlen(key) + 32 > DRST_STORE_KEY_MAX)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "lease: bad key, owner or ttl");
    if (now < 0)
        now = drst_control_now();
    int w = lease_text(text, sizeof(text), owner, now, now + ttl);
    if (w < 0)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "lease '%s': cannot format", key);
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = drst_store_put_immutable(s, key, text, (size_t)w, err, errlen);
        if (rc == DRST_OK) {
            if (held) {
                snprintf(held->owner, sizeof(held->owner), "%s", owner);
                held->acquired = now;
                held->expires = now + ttl;
            }
            return DRST_OK;
        }
        if (rc != DRST_ERR_BUSY)
            return rc;
        unsigned char *buf = NULL;
        size_t len = 0;
        rc = drst_store_get(s, key, &buf, &len, NULL, 0);
        if (rc == DRST_ERR_NOTFOUND)
            continue; /* released in between: try again */
        if (rc != DRST_OK)
            return drst_seterr(err, errlen, rc, "lease '%s': cannot read", key);
        drst_err_t prc = parse_lease(buf, len, &cur, key, NULL, 0);
        if (prc == DRST_OK && strcmp(cur.owner, owner) == 0 && cur.expires > now) {
            free(buf);
            rc = drst_store_put_atomic(s, key, text, (size_t)w, err, errlen);
            if (rc == DRST_OK && held) {
                *held = cur;
                held->expires = now + ttl;
            }
            return rc;
        }
        if (prc == DRST_OK && cur.expires > now) {
            free(buf);
            if (held)
                *held = cur;
            return drst_seterr(err, errlen, DRST_ERR_BUSY,
                               "lease '%s' held by '%s' for %.1f s more", key, cur.owner,
                               cur.expires - now);
        }
        /* Expired or torn. Takers race for a claim tied to this very lease
         * instance (owner + acquisition time; a renew keeps both): only the
         * one that creates the claim may delete the lease, so a slow taker
         * can never delete the lease a faster one has just created. */
        uint64_t id = prc == DRST_OK
                          ? fnv1a((const unsigned char *)cur.owner, strlen(cur.owner)) ^
                                fnv1a((const unsigned char *)&cur.acquired, sizeof(cur.acquired))
                          : fnv1a(buf, len);
        free(buf);
        snprintf(claim, sizeof(claim), "%s.claims/%016llx", key, (unsigned long long)id);
        rc = drst_store_put_immutable(s, claim, owner, strlen(owner), NULL, 0);
        if (rc == DRST_ERR_BUSY) {
            if (held && drst_lease_read(s, key, held, NULL, 0) != DRST_OK)
                memset(held, 0, sizeof(*held));
            return drst_seterr(err, errlen, DRST_ERR_BUSY,
                               "lease '%s' is being taken over by another owner", key);
        }
        if (rc != DRST_OK)
            return drst_seterr(err, errlen, rc, "lease '%s': cannot write claim '%s'", key, claim);
        rc = drst_store_delete(s, key, NULL, 0);
        if (rc != DRST_OK && rc != DRST_ERR_NOTFOUND)
            return drst_seterr(err, errlen, rc, "lease '%s': cannot remove expired lease", key);
    }
    if (held && drst_lease_read(s, key, held, NULL, 0) != DRST_OK)
        memset(held, 0, sizeof(*held));
    return drst_seterr(err, errlen, DRST_ERR_BUSY, "lease '%s' taken by another owner", key);
}

drst_err_t drst_lease_renew(drst_store_t *s, const char *key, const char *owner, double ttl,
                            double now, char *err, size_t errlen)
{
    drst_lease_info_t cur;
    char text[DRST_CONTROL_OWNER_MAX + 160];
    if (!owner || !(ttl > 0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "lease: bad owner or ttl");
    if (now < 0)
        now = drst_control_now();
    drst_err_t rc = drst_lease_read(s, key, &cur, NULL, 0);
    if (rc != DRST_OK || strcmp(cur.owner, owner) != 0)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "lease '%s' is not held by '%s'", key,
                           owner);
    int w = lease_text(text, sizeof(text), owner, isfinite(cur.acquired) ? cur.acquired : now,
                       now + ttl);
    if (w < 0)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "lease '%s': cannot format", key);
    return drst_store_put_atomic(s, key, text, (size_t)w, err, errlen);
}

drst_err_t drst_lease_release(drst_store_t *s, const char *key, const char *owner, char *err,
                              size_t errlen)
{
    drst_lease_info_t cur;
    drst_err_t rc = drst_lease_read(s, key, &cur, NULL, 0);
    if (rc == DRST_ERR_NOTFOUND)
        return DRST_OK;
    if (rc == DRST_OK && strcmp(cur.owner, owner) != 0)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "lease '%s' is held by '%s', not '%s'", key,
                           cur.owner, owner);
    rc = drst_store_delete(s, key, err, errlen);
    return rc == DRST_ERR_NOTFOUND ? DRST_OK : rc;
}

drst_err_t ctl_table_get(drst_store_t *s, const char *key, drst_table_t **out, char *err,
                         size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    drst_err_t rc = drst_store_get(s, key, &buf, &len, err, errlen);
    if (rc != DRST_OK)
        return rc;
    rc = drst_table_parse_csv((const char *)buf, len, key, NULL, out, NULL, err, errlen);
    free(buf);
    return rc;
}

drst_err_t ctl_table_put(drst_store_t *s, const drst_table_t *t, const char *key, char *err,
                         size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "'%s': cannot open a memory stream", key);
    drst_err_t rc = drst_table_write_csv_fp(t, f, key, err, errlen);
    fclose(f);
    if (rc == DRST_OK)
        rc = drst_store_put_immutable(s, key, buf, len, err, errlen);
    free(buf);
    return rc;
}
