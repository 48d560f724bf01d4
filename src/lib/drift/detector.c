/* The generic detector layer: the list of kinds, counting, the cooldown, and
 * the JSON envelope of saved states. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drift_int.h"

/* Every detector kind, in the order drst_detector_kind_name() lists them. */
static const struct drst_detector_ops *const drst_detector_ops_list[] = {
    &drst_jsd_ops,
    &drst_page_hinkley_ops,
    &drst_adwin_ops,
};
#define NKINDS (sizeof(drst_detector_ops_list) / sizeof(drst_detector_ops_list[0]))

#define STATE_FORMAT  "drst.detector.state"
#define STATE_VERSION 1

const char *drst_detector_kind_name(size_t i)
{
    return i < NKINDS ? drst_detector_ops_list[i]->name : NULL;
}

static const struct drst_detector_ops *find_kind(const char *kind)
{
    for (size_t i = 0; kind && i < NKINDS; i++)
        if (strcmp(drst_detector_ops_list[i]->name, kind) == 0)
            return drst_detector_ops_list[i];
    return NULL;
}

static drst_detector_t *create(const struct drst_detector_ops *ops,
                               const drst_detector_config_t *cfg, char *err, size_t errlen)
{
    drst_detector_config_t c;
    drst_detector_t *d;
    if (cfg)
        c = *cfg;
    else
        memset(&c, 0, sizeof(c));
    if (ops->normalize(&c, err, errlen) != DRST_OK)
        return NULL;
    d = ops->create(&c, err, errlen);
    if (!d)
        return NULL;
    d->ops = ops;
    d->cfg = c;
    drst_cooldown_init(&d->cooldown, c.cooldown);
    /* create() only reads the config; nothing keeps a pointer to `c`. */
    // cppcheck-suppress returnDanglingLifetime
    return d;
}

drst_detector_t *drst_detector_new(const char *kind, const drst_detector_config_t *cfg, char *err,
                                   size_t errlen)
{
    const struct drst_detector_ops *ops = find_kind(kind);
    if (!ops) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "unknown detector kind '%s'",
                    kind ? kind : "(null)");
        return NULL;
    }
    return create(ops, cfg, err, errlen);
}

void drst_detector_free(drst_detector_t *d)
{
    if (d)
        d->ops->destroy(d);
}

const char *drst_detector_kind(const drst_detector_t *d)
{
    return d->ops->name;
}

const drst_detector_config_t *drst_detector_config(const drst_detector_t *d)
{
    return &d->cfg;
}

uint64_t drst_detector_triggers(const drst_detector_t *d)
{
    return d->triggers;
}

uint64_t drst_detector_seen(const drst_detector_t *d)
{
    return d->seen;
}

drst_err_t drst_detector_update(drst_detector_t *d, const double *x, size_t n,
                                drst_drift_result_t *res)
{
    drst_drift_result_t r;
    if (n != d->ops->input_dim(&d->cfg) || !x)
        return DRST_ERR_INVAL;
    memset(&r, 0, sizeof(r));
    d->seen++;
    d->ops->update(d, x, &r);
    r.at = d->seen;
    if (r.evaluated && r.tier > 0) {
        if (drst_cooldown_try(&d->cooldown, d->seen)) {
            r.triggered = 1;
            d->triggers++;
        } else {
            r.suppressed = 1;
        }
    }
    if (res)
        *res = r;
    return DRST_OK;
}

drst_err_t drst_detector_evaluate(drst_detector_t *d, drst_drift_result_t *res)
{
    drst_drift_result_t r;
    drst_err_t rc;
    memset(&r, 0, sizeof(r));
    rc = d->ops->evaluate(d, &r);
    r.at = d->seen;
    r.triggered = 0;
    if (res)
        *res = r;
    return rc;
}

void drst_detector_reset(drst_detector_t *d)
{
    d->ops->reset(d);
    d->seen = 0;
    d->triggers = 0;
    drst_cooldown_init(&d->cooldown, d->cfg.cooldown);
}

void drst_detector_rebaseline(drst_detector_t *d)
{
    d->ops->rebaseline(d);
    drst_cooldown_clear(&d->cooldown);
}

int drift_error_tier(const drst_detector_config_t *cfg, double increase)
{
    if (increase >= cfg->thresholds[2])
        return DRST_TIER_C;
    if (increase >= cfg->thresholds[1])
        return DRST_TIER_B;
    return DRST_TIER_A;
}

/* ------------------------------------------------------------- cooldown */

void drst_cooldown_init(drst_cooldown_t *c, uint64_t length)
{
    memset(c, 0, sizeof(*c));
    c->length = length;
}

int drst_cooldown_active(const drst_cooldown_t *c, uint64_t now)
{
    return c->armed && now <= c->until;
}

int drst_cooldown_try(drst_cooldown_t *c, uint64_t now)
{
    if (drst_cooldown_active(c, now)) {
        c->suppressed++;
        return 0;
    }
    c->fired++;
    c->armed = c->length > 0;
    c->until = now + c->length;
    return 1;
}

void drst_cooldown_clear(drst_cooldown_t *c)
{
    c->armed = 0;
    c->until = 0;
}

/* ---------------------------------------------------------- JSON helpers */

int jset_u64(json_t *o, const char *k, uint64_t v)
{
    /* JSON integers are signed 64-bit in jansson; counters never get near. */
    return json_object_set_new(o, k, json_integer((json_int_t)v));
}

int jset_real(json_t *o, const char *k, double v)
{
    /* jansson writes reals with 17 significant digits: the value reads back
     * bit-identical, which identical decisions after a restore rely on. */
    json_t *j = json_real(isfinite(v) ? v : 0.0);
    return j ? json_object_set_new(o, k, j) : -1;
}

int jset_reals(json_t *o, const char *k, const double *v, size_t n)
{
    json_t *a = json_array();
    if (!a)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(a, json_real(isfinite(v[i]) ? v[i] : 0.0)) != 0) {
            json_decref(a);
            return -1;
        }
    return json_object_set_new(o, k, a);
}

static drst_err_t bad(char *err, size_t errlen, const char *k, const char *what)
{
    return drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: key '%s': %s", k, what);
}

drst_err_t jget_u64(const json_t *o, const char *k, uint64_t *v, char *err, size_t errlen)
{
    const json_t *j = json_object_get(o, k);
    if (!json_is_integer(j))
        return bad(err, errlen, k, "missing or not an integer");
    if (json_integer_value(j) < 0)
        return bad(err, errlen, k, "negative");
    *v = (uint64_t)json_integer_value(j);
    return DRST_OK;
}

drst_err_t jget_size(const json_t *o, const char *k, size_t *v, char *err, size_t errlen)
{
    uint64_t u = 0;
    drst_err_t rc = jget_u64(o, k, &u, err, errlen);
    if (rc)
        return rc;
    if (u > (uint64_t)SIZE_MAX)
        return bad(err, errlen, k, "too large");
    *v = (size_t)u;
    return DRST_OK;
}

drst_err_t jget_int(const json_t *o, const char *k, int *v, char *err, size_t errlen)
{
    const json_t *j = json_object_get(o, k);
    if (!json_is_integer(j) || json_integer_value(j) < -1000000 || json_integer_value(j) > 1000000)
        return bad(err, errlen, k, "missing or not a small integer");
    *v = (int)json_integer_value(j);
    return DRST_OK;
}

drst_err_t jget_real(const json_t *o, const char *k, double *v, char *err, size_t errlen)
{
    const json_t *j = json_object_get(o, k);
    if (!json_is_number(j))
        return bad(err, errlen, k, "missing or not a number");
    *v = json_number_value(j);
    if (!isfinite(*v))
        return bad(err, errlen, k, "not finite");
    return DRST_OK;
}

drst_err_t jget_reals(const json_t *o, const char *k, double *v, size_t n, char *err, size_t errlen)
{
    const json_t *a = json_object_get(o, k);
    if (!json_is_array(a) || json_array_size(a) != n)
        return bad(err, errlen, k, "missing or wrong length");
    for (size_t i = 0; i < n; i++) {
        const json_t *j = json_array_get(a, i);
        if (!json_is_number(j) || !isfinite(json_number_value(j)))
            return bad(err, errlen, k, "element is not a finite number");
        v[i] = json_number_value(j);
    }
    return DRST_OK;
}

drst_err_t jget_u64s(const json_t *o, const char *k, uint64_t *v, size_t n, uint64_t max, char *err,
                     size_t errlen)
{
    const json_t *a = json_object_get(o, k);
    if (!json_is_array(a) || json_array_size(a) != n)
        return bad(err, errlen, k, "missing or wrong length");
    for (size_t i = 0; i < n; i++) {
        const json_t *j = json_array_get(a, i);
        if (!json_is_integer(j) || json_integer_value(j) < 0 ||
            (uint64_t)json_integer_value(j) > max)
            return bad(err, errlen, k, "element out of range");
        v[i] = (uint64_t)json_integer_value(j);
    }
    return DRST_OK;
}

/* ------------------------------------------------------------ save/restore */

static json_t *config_to_json(const drst_detector_config_t *c)
{
    json_t *o = json_object();
    char seed[32];
    int bad_set = 0;
    if (!o)
        return NULL;
    bad_set |= jset_u64(o, "cooldown", c->cooldown);
    bad_set |= jset_reals(o, "thresholds", c->thresholds, 3);
    bad_set |= jset_u64(o, "nfeatures", c->nfeatures);
    bad_set |= jset_u64(o, "bins", c->bins);
    bad_set |= jset_u64(o, "window", c->window);
    bad_set |= jset_u64(o, "stride", c->stride);
    bad_set |= jset_real(o, "feature_threshold", c->feature_threshold);
    bad_set |= jset_real(o, "smoothing", c->smoothing);
    bad_set |= jset_real(o, "margin", c->margin);
    bad_set |= jset_u64(o, "auto_calibrate", (uint64_t)(c->auto_calibrate != 0));
    bad_set |= jset_u64(o, "calib_replicates", c->calib_replicates);
    bad_set |= jset_real(o, "calib_quantile", c->calib_quantile);
    bad_set |= jset_reals(o, "calib_mult", c->calib_mult, 3);
    bad_set |= jset_u64(o, "calib_block", (uint64_t)(c->calib_block != 0));
    /* 64-bit seed: as text, JSON integers here are signed. */
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)c->calib_seed);
    bad_set |= json_object_set_new(o, "calib_seed", json_string(seed));
    bad_set |= jset_real(o, "ph_delta", c->ph_delta);
    bad_set |= jset_real(o, "ph_lambda", c->ph_lambda);
    bad_set |= jset_u64(o, "ph_min_samples", c->ph_min_samples);
    bad_set |= jset_u64(o, "ph_two_sided", (uint64_t)(c->ph_two_sided != 0));
    bad_set |= jset_real(o, "adwin_delta", c->adwin_delta);
    bad_set |= jset_u64(o, "adwin_max_buckets", c->adwin_max_buckets);
    bad_set |= jset_u64(o, "adwin_min_sub", c->adwin_min_sub);
    bad_set |= jset_u64(o, "adwin_clock", c->adwin_clock);
    bad_set |= jset_u64(o, "adwin_two_sided", (uint64_t)(c->adwin_two_sided != 0));
    if (bad_set) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static drst_err_t config_from_json(const json_t *o, drst_detector_config_t *c, char *err,
                                   size_t errlen)
{
    const json_t *j;
    const char *s;
    char *end;
    drst_err_t rc;
    memset(c, 0, sizeof(*c));
    if (!json_is_object(o))
        return bad(err, errlen, "config", "missing or not an object");
    if ((rc = jget_u64(o, "cooldown", &c->cooldown, err, errlen)) ||
        (rc = jget_reals(o, "thresholds", c->thresholds, 3, err, errlen)) ||
        (rc = jget_size(o, "nfeatures", &c->nfeatures, err, errlen)) ||
        (rc = jget_size(o, "bins", &c->bins, err, errlen)) ||
        (rc = jget_size(o, "window", &c->window, err, errlen)) ||
        (rc = jget_size(o, "stride", &c->stride, err, errlen)) ||
        (rc = jget_real(o, "feature_threshold", &c->feature_threshold, err, errlen)) ||
        (rc = jget_real(o, "smoothing", &c->smoothing, err, errlen)) ||
        (rc = jget_real(o, "margin", &c->margin, err, errlen)) ||
        (rc = jget_int(o, "auto_calibrate", &c->auto_calibrate, err, errlen)) ||
        (rc = jget_size(o, "calib_replicates", &c->calib_replicates, err, errlen)) ||
        (rc = jget_real(o, "calib_quantile", &c->calib_quantile, err, errlen)) ||
        (rc = jget_reals(o, "calib_mult", c->calib_mult, 3, err, errlen)) ||
        (rc = jget_int(o, "calib_block", &c->calib_block, err, errlen)) ||
        (rc = jget_real(o, "ph_delta", &c->ph_delta, err, errlen)) ||
        (rc = jget_real(o, "ph_lambda", &c->ph_lambda, err, errlen)) ||
        (rc = jget_size(o, "ph_min_samples", &c->ph_min_samples, err, errlen)) ||
        (rc = jget_int(o, "ph_two_sided", &c->ph_two_sided, err, errlen)) ||
        (rc = jget_real(o, "adwin_delta", &c->adwin_delta, err, errlen)) ||
        (rc = jget_size(o, "adwin_max_buckets", &c->adwin_max_buckets, err, errlen)) ||
        (rc = jget_size(o, "adwin_min_sub", &c->adwin_min_sub, err, errlen)) ||
        (rc = jget_size(o, "adwin_clock", &c->adwin_clock, err, errlen)) ||
        (rc = jget_int(o, "adwin_two_sided", &c->adwin_two_sided, err, errlen)))
        return rc;
    j = json_object_get(o, "calib_seed");
    if (!json_is_string(j))
        return bad(err, errlen, "calib_seed", "missing or not a string");
    s = json_string_value(j);
    errno = 0;
    c->calib_seed = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return bad(err, errlen, "calib_seed", "not an unsigned 64-bit integer");
    return DRST_OK;
}

drst_err_t drst_detector_save_json(const drst_detector_t *d, char **out, size_t *len, char *err,
                                   size_t errlen)
{
    json_t *root = json_object(), *cd = json_object(), *cfg = config_to_json(&d->cfg);
    json_t *st = d->ops->save(d);
    char *s = NULL;
    int bad_set = 0;
    drst_err_t rc = DRST_OK;
    *out = NULL;
    if (!root || !cd || !cfg || !st) {
        json_decref(cd);
        json_decref(cfg);
        json_decref(st);
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "save %s state: out of memory", d->ops->name);
        goto out;
    }
    bad_set |= jset_u64(cd, "length", d->cooldown.length);
    bad_set |= jset_u64(cd, "until", d->cooldown.until);
    bad_set |= jset_u64(cd, "armed", (uint64_t)(d->cooldown.armed != 0));
    bad_set |= jset_u64(cd, "fired", d->cooldown.fired);
    bad_set |= jset_u64(cd, "suppressed", d->cooldown.suppressed);
    bad_set |= json_object_set_new(root, "format", json_string(STATE_FORMAT));
    bad_set |= jset_u64(root, "version", STATE_VERSION);
    bad_set |= json_object_set_new(root, "kind", json_string(d->ops->name));
    bad_set |= jset_u64(root, "seen", d->seen);
    bad_set |= jset_u64(root, "triggers", d->triggers);
    bad_set |= json_object_set_new(root, "config", cfg);
    bad_set |= json_object_set_new(root, "cooldown", cd);
    bad_set |= json_object_set_new(root, "state", st);
    if (bad_set) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "save %s state: out of memory", d->ops->name);
        goto out;
    }
    s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!s) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "save %s state: out of memory", d->ops->name);
        goto out;
    }
    *out = s;
    if (len)
        *len = strlen(s);
out:
    json_decref(root);
    return rc;
}

drst_detector_t *drst_detector_restore_json(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root;
    const json_t *cd, *j;
    const struct drst_detector_ops *ops;
    drst_detector_config_t cfg;
    drst_detector_t *d = NULL;
    uint64_t version = 0, armed = 0;
    drst_err_t rc;

    if (!buf) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "state: no buffer");
        return NULL;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: offset %d: %s", je.position, je.text);
        return NULL;
    }
    j = json_object_get(root, "format");
    if (!json_is_string(j) || strcmp(json_string_value(j), STATE_FORMAT) != 0) {
        bad(err, errlen, "format", "not a drst detector state");
        goto fail;
    }
    if (jget_u64(root, "version", &version, err, errlen))
        goto fail;
    if (version != STATE_VERSION) {
        drst_seterr(err, errlen, DRST_ERR_FORMAT, "state: version %llu not supported (want %d)",
                    (unsigned long long)version, STATE_VERSION);
        goto fail;
    }
    j = json_object_get(root, "kind");
    ops = json_is_string(j) ? find_kind(json_string_value(j)) : NULL;
    if (!ops) {
        bad(err, errlen, "kind", "missing or unknown detector kind");
        goto fail;
    }
    if (config_from_json(json_object_get(root, "config"), &cfg, err, errlen))
        goto fail;
    d = create(ops, &cfg, err, errlen);
    if (!d)
        goto fail;
    cd = json_object_get(root, "cooldown");
    if (!json_is_object(cd)) {
        bad(err, errlen, "cooldown", "missing or not an object");
        goto fail;
    }
    if ((rc = jget_u64(cd, "length", &d->cooldown.length, err, errlen)) ||
        (rc = jget_u64(cd, "until", &d->cooldown.until, err, errlen)) ||
        (rc = jget_u64(cd, "armed", &armed, err, errlen)) ||
        (rc = jget_u64(cd, "fired", &d->cooldown.fired, err, errlen)) ||
        (rc = jget_u64(cd, "suppressed", &d->cooldown.suppressed, err, errlen)) ||
        (rc = jget_u64(root, "seen", &d->seen, err, errlen)) ||
        (rc = jget_u64(root, "triggers", &d->triggers, err, errlen)))
        goto fail;
    d->cooldown.armed = armed != 0;
    if (d->cooldown.length != d->cfg.cooldown) {
        bad(err, errlen, "cooldown.length", "differs from config.cooldown");
        goto fail;
    }
    j = json_object_get(root, "state");
    if (!json_is_object(j)) {
        bad(err, errlen, "state", "missing or not an object");
        goto fail;
    }
    if (ops->restore(d, j, err, errlen))
        goto fail;
    json_decref(root);
    return d;
fail:
    drst_detector_free(d);
    json_decref(root);
    return NULL;
}
