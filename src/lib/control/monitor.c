/* The drift monitor: a "jsd" detector on the feature window, an error
 * detector on the model's relative error, a ring of the last W records with
 * their labels, a bounded replay reservoir of older labelled records, one
 * cooldown for every source, and the store side (frozen windows, retrain
 * requests, persisted state). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error_int.h"
#include "control/control_int.h"

struct drst_monitor {
    drst_monitor_config_t cfg;
    char *target, *name, *errkind;
    size_t nf;
    char **names;
    drst_store_t *store;
    drst_detector_t *jsd, *errd;
    int calibrated;

    const drst_model_t *model;
    drst_model_t *owned; /* loaded by drst_monitor_poll_release() */
    long *bind;          /* model feature j -> monitor feature */
    double *xm;
    drst_model_scratch_t *scratch;
    char release[DRST_STORE_KEY_MAX + 1];

    /* window ring: W rows of features + label, head = next slot */
    double *rx, *ry;
    size_t head, fill;
    /* replay reservoir */
    double *px, *py;
    uint64_t *pseq;
    size_t pcount;
    uint64_t older; /* labelled records that left the window */
    uint64_t rng;

    drst_cooldown_t cool;
    uint64_t seen, labelled, since_request, evaluations, suppressed, rebaselines;
    uint64_t since_release;
    uint64_t by_source[4], triggers;
    double last_score;
    size_t last_drifted;
    char last_request[64];
    char replay_key[DRST_STORE_KEY_MAX + 1];
};

const char *drst_trigger_source_name(drst_trigger_source_t s)
{
    switch (s) {
    case DRST_TRIGGER_FEATURES:
        return "features";
    case DRST_TRIGGER_ERROR:
        return "error";
    case DRST_TRIGGER_REFRESH:
        return "refresh";
    default:
        return "none";
    }
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static drst_detector_t *make_errd(const drst_monitor_t *m, char *err, size_t errlen)
{
    if (!strcmp(m->errkind, "none"))
        return NULL;
    drst_detector_config_t dc = {0};
    dc.ph_lambda = m->cfg.ph_lambda;
    dc.ph_delta = m->cfg.ph_delta;
    return drst_detector_new(m->errkind, &dc, err, errlen);
}

drst_monitor_t *drst_monitor_new(const drst_monitor_config_t *cfg, const char *const *names,
                                 size_t nf, drst_store_t *store, char *err, size_t errlen)
{
    drst_monitor_config_t c = {0};
    if (cfg)
        c = *cfg;
    if (!names || nf == 0) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "monitor: no features");
        return NULL;
    }
    if (!c.window)
        c.window = 300;
    if (!c.stride)
        c.stride = 50;
    if (!c.bins)
        c.bins = 64;
    if (!c.cooldown)
        c.cooldown = c.window;
    if (!c.reservoir)
        c.reservoir = 4000;
    if (!c.seed)
        c.seed = 1;
    if (c.window < 2 || c.window > 1000000 || c.reservoir > 10000000 || c.calibrate < 0 ||
        c.calibrate > 2) {
        drst_seterr(err, errlen, DRST_ERR_INVAL,
                    "monitor: window must be in [2, 1e6], reservoir <= 1e7, calibrate 0..2");
        return NULL;
    }
    const char *ek = c.error_detector ? c.error_detector : "page_hinkley";
    if (strcmp(ek, "none") && strcmp(ek, "page_hinkley") && strcmp(ek, "adwin")) {
        drst_seterr(err, errlen, DRST_ERR_INVAL,
                    "monitor: error detector '%s' is not page_hinkley, adwin or none", ek);
        return NULL;
    }
    drst_monitor_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto nomem;
    m->cfg = c;
    m->nf = nf;
    m->store = store;
    m->rng = c.seed;
    m->target = dupstr(c.target ? c.target : "output_rate");
    m->name = dupstr(c.name ? c.name : "monitor");
    m->errkind = dupstr(ek);
    m->names = calloc(nf, sizeof(char *));
    m->rx = malloc(c.window * nf * sizeof(double));
    m->ry = malloc(c.window * sizeof(double));
    m->px = malloc((c.reservoir ? c.reservoir : 1) * nf * sizeof(double));
    m->py = malloc((c.reservoir ? c.reservoir : 1) * sizeof(double));
    m->pseq = malloc((c.reservoir ? c.reservoir : 1) * sizeof(uint64_t));
    if (!m->target || !m->name || !m->errkind || !m->names || !m->rx || !m->ry || !m->px ||
        !m->py || !m->pseq)
        goto nomem;
    m->cfg.target = m->target;
    m->cfg.name = m->name;
    m->cfg.error_detector = m->errkind;
    for (size_t i = 0; i < nf; i++)
        if (!names[i] || !(m->names[i] = dupstr(names[i])))
            goto nomem;
    drst_detector_config_t dc = {0};
    dc.nfeatures = nf;
    dc.bins = c.bins;
    dc.window = c.window;
    dc.stride = c.stride;
    dc.feature_threshold = c.feature_threshold;
    memcpy(dc.thresholds, c.thresholds, sizeof(dc.thresholds));
    dc.calib_block = c.calibrate == 2;
    dc.calib_seed = c.seed;
    dc.auto_calibrate = c.calibrate != 0;
    m->jsd = drst_detector_new("jsd", &dc, err, errlen);
    if (!m->jsd)
        goto fail;
    m->errd = make_errd(m, err, errlen);
    if (!m->errd && strcmp(ek, "none"))
        goto fail;
    drst_cooldown_init(&m->cool, c.cooldown);
    return m;
nomem:
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
fail:
    drst_monitor_free(m);
    return NULL;
}

void drst_monitor_free(drst_monitor_t *m)
{
    if (!m)
        return;
    drst_detector_free(m->jsd);
    drst_detector_free(m->errd);
    if (m->names)
        for (size_t i = 0; i < m->nf; i++)
            free(m->names[i]);
    free(m->names);
    free(m->target);
    free(m->name);
    free(m->errkind);
    free(m->bind);
    free(m->xm);
    drst_model_scratch_free(m->scratch);
    drst_model_free(m->owned);
    free(m->rx);
    free(m->ry);
    free(m->px);
    free(m->py);
    free(m->pseq);
    free(m);
}

drst_err_t drst_monitor_set_baseline(drst_monitor_t *m, const drst_table_t *t, char *err,
                                     size_t errlen)
{
    drst_err_t rc = DRST_OK;
    if (!t || t->nrows < 2)
        return drst_seterr(err, errlen, DRST_ERR_EMPTY, "monitor: baseline needs >= 2 rows");
    double *x = malloc(t->nrows * m->nf * sizeof(double));
    if (!x)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
    for (size_t f = 0; f < m->nf; f++) {
        long c = drst_table_col(t, m->names[f]);
        if (c < 0) {
            rc = drst_seterr(err, errlen, DRST_ERR_SCHEMA, "monitor: baseline has no column '%s'",
                             m->names[f]);
            goto out;
        }
        for (size_t r = 0; r < t->nrows; r++)
            x[r * m->nf + f] = drst_table_at(t, r, (size_t)c);
    }
    rc = drst_jsd_set_baseline(m->jsd, x, t->nrows, err, errlen);
    if (rc == DRST_OK && m->cfg.calibrate) {
        drst_calibration_t info;
        rc = drst_jsd_calibrate(m->jsd, x, t->nrows, &info, err, errlen);
        m->calibrated = rc == DRST_OK;
    }
out:
    free(x);
    return rc;
}

drst_err_t drst_monitor_set_model(drst_monitor_t *m, const drst_model_t *model, char *err,
                                  size_t errlen)
{
    if (!model) {
        m->model = NULL;
        return DRST_OK;
    }
    size_t k = drst_model_nfeatures(model);
    long *bind = malloc((k ? k : 1) * sizeof(long));
    double *xm = malloc((k ? k : 1) * sizeof(double));
    if (!bind || !xm) {
        free(bind);
        free(xm);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
    }
    for (size_t j = 0; j < k; j++) {
        const char *fn = drst_model_feature(model, j);
        bind[j] = -1;
        for (size_t f = 0; f < m->nf; f++)
            if (!strcmp(fn, m->names[f])) {
                bind[j] = (long)f;
                break;
            }
        if (bind[j] < 0) {
            free(bind);
            free(xm);
            return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                               "monitor: model feature '%s' is not a monitored feature", fn);
        }
    }
    if (!m->scratch)
        m->scratch = drst_model_scratch_new(model, 1);
    else if (drst_model_scratch_reserve(m->scratch, model) != DRST_OK) {
        drst_model_scratch_free(m->scratch);
        m->scratch = NULL;
    }
    if (!m->scratch) {
        free(bind);
        free(xm);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
    }
    free(m->bind);
    free(m->xm);
    m->bind = bind;
    m->xm = xm;
    m->model = model;
    return DRST_OK;
}

static void reservoir_add(drst_monitor_t *m, const double *x, double y)
{
    size_t R = m->cfg.reservoir;
    if (!R)
        return;
    m->older++;
    size_t slot;
    if (m->pcount < R) {
        slot = m->pcount++;
    } else {
        /* Algorithm R, biased toward recent records: a new record replaces a
         * random slot with probability max(R / older, 1/8). */
        uint64_t r = splitmix(&m->rng);
        double p = (double)R / (double)m->older;
        if (p < 0.125)
            p = 0.125;
        if ((double)(r >> 11) * 0x1.0p-53 >= p)
            return;
        slot = (size_t)(splitmix(&m->rng) % R);
    }
    memcpy(m->px + slot * m->nf, x, m->nf * sizeof(double));
    m->py[slot] = y;
    m->pseq[slot] = m->older;
}

static drst_table_t *new_table(const drst_monitor_t *m, char *err, size_t errlen)
{
    const char **cols = malloc((m->nf + 1) * sizeof(char *));
    if (!cols) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
        return NULL;
    }
    for (size_t f = 0; f < m->nf; f++)
        cols[f] = m->names[f];
    cols[m->nf] = m->target;
    drst_table_t *t = drst_table_new(cols, m->nf + 1, err, errlen);
    free(cols);
    return t;
}

drst_err_t drst_monitor_window_table(const drst_monitor_t *m, drst_table_t **out, char *err,
                                     size_t errlen)
{
    drst_err_t rc = DRST_OK;
    double *row = malloc((m->nf + 1) * sizeof(double));
    drst_table_t *t = row ? new_table(m, err, errlen) : NULL;
    *out = NULL;
    if (!t) {
        free(row);
        return row ? DRST_ERR_NOMEM : drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    }
    size_t W = m->cfg.window;
    for (size_t i = 0; i < m->fill; i++) {
        size_t slot = (m->head + W - m->fill + i) % W;
        if (!isfinite(m->ry[slot]))
            continue;
        memcpy(row, m->rx + slot * m->nf, m->nf * sizeof(double));
        row[m->nf] = m->ry[slot];
        if ((rc = drst_table_append(t, row, err, errlen)) != DRST_OK)
            break;
    }
    free(row);
    if (rc != DRST_OK)
        drst_table_free(t);
    else
        *out = t;
    return rc;
}

drst_err_t drst_monitor_replay_table(const drst_monitor_t *m, drst_table_t **out, char *err,
                                     size_t errlen)
{
    drst_err_t rc = DRST_OK;
    *out = NULL;
    size_t n = m->pcount;
    size_t *ord = malloc((n ? n : 1) * sizeof(size_t));
    double *row = malloc((m->nf + 1) * sizeof(double));
    drst_table_t *t = (ord && row) ? new_table(m, err, errlen) : NULL;
    if (!t) {
        free(ord);
        free(row);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
    }
    /* Oldest first. Insertion order of the slots is not time order once
     * replacements happen; a simple insertion sort keeps this reentrant. */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && m->pseq[ord[j - 1]] > m->pseq[i]) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = i;
    }
    for (size_t i = 0; i < n && rc == DRST_OK; i++) {
        memcpy(row, m->px + ord[i] * m->nf, m->nf * sizeof(double));
        row[m->nf] = m->py[ord[i]];
        rc = drst_table_append(t, row, err, errlen);
    }
    free(ord);
    free(row);
    if (rc != DRST_OK)
        drst_table_free(t);
    else
        *out = t;
    return rc;
}

/* 1 if the store holds a request that is pending or running. */
static int request_in_flight(drst_monitor_t *m)
{
    drst_retrain_request_t rq;
    if (!m->store || m->cfg.no_request)
        return 0;
    if (drst_retrain_request_read(m->store, &rq, NULL, 0) != DRST_OK)
        return 0;
    return !strcmp(rq.status, "pending") || !strcmp(rq.status, "running");
}

static drst_err_t write_request(drst_monitor_t *m, drst_monitor_event_t *ev, char *err,
                                size_t errlen)
{
    char ts[32], wkey[DRST_STORE_KEY_MAX + 1], rkey[DRST_STORE_KEY_MAX + 1];
    drst_table_t *win = NULL, *rep = NULL;
    json_t *o = NULL;
    char *txt = NULL;
    drst_err_t rc;
    ctl_stamp(-1, ts, sizeof(ts));
    snprintf(ev->request_id, sizeof(ev->request_id), "%s-%llu", ts, (unsigned long long)m->seen);
    snprintf(wkey, sizeof(wkey), "state/windows/%s.csv", ev->request_id);
    snprintf(rkey, sizeof(rkey), "state/windows/%s.replay.csv", ev->request_id);
    if ((rc = drst_monitor_window_table(m, &win, err, errlen)) != DRST_OK)
        goto out;
    if ((rc = ctl_table_put(m->store, win, wkey, err, errlen)) != DRST_OK)
        goto out;
    if ((rc = drst_monitor_replay_table(m, &rep, err, errlen)) != DRST_OK)
        goto out;
    if (rep->nrows > 0) {
        if ((rc = ctl_table_put(m->store, rep, rkey, err, errlen)) != DRST_OK)
            goto out;
        snprintf(m->replay_key, sizeof(m->replay_key), "%s", rkey);
    } else {
        rkey[0] = '\0';
    }
    o = json_object();
    json_t *drifted = json_array(), *fj = json_object();
    const double *fs = drst_jsd_feature_scores(m->jsd);
    double fthr = drst_detector_config(m->jsd)->feature_threshold;
    for (size_t f = 0; f < m->nf && fs; f++) {
        if (isfinite(fs[f]))
            json_object_set_new(fj, m->names[f], json_real(fs[f]));
        if (fs[f] >= fthr)
            json_array_append_new(drifted, json_string(m->names[f]));
    }
    json_object_set_new(o, "format", json_string("drst.retrain.request"));
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "id", json_string(ev->request_id));
    json_object_set_new(o, "monitor", json_string(m->name));
    json_object_set_new(o, "tier", json_integer(ev->tier));
    json_object_set_new(o, "source", json_string(drst_trigger_source_name(ev->source)));
    json_object_set_new(o, "at", json_integer((json_int_t)m->seen));
    json_object_set_new(o, "score", json_real(isfinite(ev->score) ? ev->score : 0));
    json_object_set_new(o, "n_drifted", json_integer((json_int_t)ev->n_drifted));
    json_object_set_new(o, "drifted", drifted);
    json_object_set_new(o, "jsd", fj);
    json_object_set_new(o, "window", json_string(wkey));
    json_object_set_new(o, "window_rows", json_integer((json_int_t)win->nrows));
    json_object_set_new(o, "replay", json_string(rkey));
    json_object_set_new(o, "release", json_string(m->release));
    json_object_set_new(o, "fresh_rows", json_integer((json_int_t)m->since_release));
    json_object_set_new(o, "status", json_string("pending"));
    json_object_set_new(o, "attempts", json_integer(0));
    txt = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(17));
    if (!txt) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: cannot format request");
        goto out;
    }
    rc = drst_store_put_atomic(m->store, DRST_CONTROL_REQUEST_KEY, txt, strlen(txt), err, errlen);
    if (rc == DRST_OK)
        snprintf(m->last_request, sizeof(m->last_request), "%s", ev->request_id);
out:
    free(txt);
    json_decref(o);
    drst_table_free(win);
    drst_table_free(rep);
    return rc;
}

drst_err_t drst_monitor_feed(drst_monitor_t *m, const double *x, double label, double pred,
                             drst_monitor_event_t *evp, char *err, size_t errlen)
{
    drst_monitor_event_t evl = {0};
    drst_monitor_event_t *ev = evp ? evp : &evl;
    drst_drift_result_t r, re;
    drst_err_t rc;
    memset(ev, 0, sizeof(*ev));
    ev->pred = NAN;
    ev->rel_err = NAN;
    if ((rc = drst_detector_update(m->jsd, x, m->nf, &r)) != DRST_OK)
        return drst_seterr(err, errlen, rc, "monitor: feature update failed");
    m->seen++;
    ev->at = m->seen;
    if (isnan(pred) && m->model) {
        for (size_t j = 0; j < drst_model_nfeatures(m->model); j++)
            m->xm[j] = x[m->bind[j]];
        pred = drst_model_predict1(m->model, m->xm, m->scratch);
    }
    ev->pred = pred;
    int etier = 0;
    if (isfinite(label)) {
        m->labelled++;
        m->since_request++;
        m->since_release++;
        if (isfinite(pred)) {
            double d = fabs(label) > DRST_METRICS_EPS ? fabs(label) : DRST_METRICS_EPS;
            ev->rel_err = fabs(pred - label) / d;
            if (m->errd) {
                double e = ev->rel_err > 10 ? 10 : ev->rel_err; /* a wild outlier is no trend */
                if (drst_detector_update(m->errd, &e, 1, &re) == DRST_OK && re.tier > 0)
                    etier = re.tier;
            }
        }
    }
    /* the ring: the leaving labelled record goes to the replay reservoir */
    size_t W = m->cfg.window;
    if (m->fill == W && isfinite(m->ry[m->head]))
        reservoir_add(m, m->rx + m->head * m->nf, m->ry[m->head]);
    memcpy(m->rx + m->head * m->nf, x, m->nf * sizeof(double));
    m->ry[m->head] = label;
    m->head = (m->head + 1) % W;
    if (m->fill < W)
        m->fill++;

    if (r.evaluated) {
        m->evaluations++;
        m->last_score = r.score;
        m->last_drifted = r.n_drifted;
        ev->evaluated = 1;
    }
    ev->score = m->last_score;
    ev->n_drifted = m->last_drifted;
    int tier = 0;
    drst_trigger_source_t src = DRST_TRIGGER_NONE;
    if (r.evaluated && r.tier > 0) {
        tier = r.tier;
        src = DRST_TRIGGER_FEATURES;
    }
    if (etier > tier) {
        tier = etier;
        src = DRST_TRIGGER_ERROR;
    }
    if (!tier && m->cfg.refresh && m->since_request >= m->cfg.refresh) {
        tier = DRST_TIER_A;
        src = DRST_TRIGGER_REFRESH;
    }
    ev->tier = tier;
    ev->source = src;
    if (tier) {
        /* a periodic refresh keeps its own schedule: only drift evidence is
         * subject to the cooldown */
        int cooling = src != DRST_TRIGGER_REFRESH && drst_cooldown_active(&m->cool, m->seen);
        if (cooling || request_in_flight(m)) {
            ev->suppressed = 1;
            m->suppressed++;
        } else {
            if (src != DRST_TRIGGER_REFRESH)
                (void)drst_cooldown_try(&m->cool, m->seen);
            ev->triggered = 1;
            m->triggers++;
            m->by_source[src]++;
            m->since_request = 0;
            if (m->store && !m->cfg.no_request) {
                if ((rc = write_request(m, ev, err, errlen)) != DRST_OK)
                    return rc;
            }
        }
    }
    if (m->store && !m->cfg.no_persist && (ev->triggered || ev->evaluated))
        return drst_monitor_save(m, err, errlen);
    return DRST_OK;
}

void drst_monitor_rebaseline(drst_monitor_t *m, const char *model_key)
{
    drst_detector_rebaseline(m->jsd);
    if (m->errd)
        drst_detector_rebaseline(m->errd);
    drst_cooldown_clear(&m->cool);
    m->rebaselines++;
    m->since_release = 0;
    if (model_key)
        snprintf(m->release, sizeof(m->release), "%s", model_key);
}

drst_err_t drst_monitor_poll_release(drst_monitor_t *m, int *changed, char *err, size_t errlen)
{
    drst_release_t rel;
    if (changed)
        *changed = 0;
    if (!m->store)
        return DRST_OK;
    drst_err_t rc = drst_store_read_pointer(m->store, "latest", &rel, NULL, 0);
    if (rc == DRST_ERR_NOTFOUND)
        return DRST_OK;
    if (rc != DRST_OK)
        return drst_seterr(err, errlen, rc, "monitor: cannot read 'models/latest'");
    if (!strcmp(rel.model_key, m->release))
        return DRST_OK;
    /* a model this monitor cannot bind (schema change) is still a new
     * release: rebaseline, and watch errors again once one binds */
    drst_model_t *nm = NULL;
    if (drst_store_load_model(m->store, rel.model_key, &nm, NULL, NULL, 0) == DRST_OK) {
        if (drst_monitor_set_model(m, nm, NULL, 0) == DRST_OK) {
            drst_model_free(m->owned);
            m->owned = nm;
        } else {
            drst_model_free(nm);
            if (m->model == m->owned) {
                m->model = NULL;
                drst_model_free(m->owned);
                m->owned = NULL;
            }
        }
    }
    int first = m->release[0] == '\0';
    if (!first) {
        drst_monitor_rebaseline(m, rel.model_key);
        if (changed)
            *changed = 1;
    } else {
        snprintf(m->release, sizeof(m->release), "%s", rel.model_key);
    }
    return DRST_OK;
}

void drst_monitor_stats(const drst_monitor_t *m, drst_monitor_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->seen = m->seen;
    out->labelled = m->labelled;
    out->evaluations = m->evaluations;
    out->triggers = m->triggers;
    out->suppressed = m->suppressed;
    memcpy(out->triggers_by_source, m->by_source, sizeof(m->by_source));
    out->rebaselines = m->rebaselines;
    out->reservoir_rows = m->pcount;
    out->since_release = m->since_release;
}

const drst_detector_t *drst_monitor_detector(const drst_monitor_t *m)
{
    return m->jsd;
}

/* ---- persisted state ---- */

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *detector_json(const drst_detector_t *d, char *err, size_t errlen)
{
    char *s = NULL;
    if (!d)
        return json_null();
    if (drst_detector_save_json(d, &s, NULL, err, errlen) != DRST_OK)
        return NULL;
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    free(s);
    return o;
}

drst_err_t drst_monitor_save(drst_monitor_t *m, char *err, size_t errlen)
{
    drst_err_t rc = DRST_OK;
    if (!m->store)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "monitor: no store to save to");
    json_t *o = json_object();
    json_t *names = json_array(), *rx = json_array(), *ry = json_array();
    for (size_t f = 0; f < m->nf; f++)
        json_array_append_new(names, json_string(m->names[f]));
    size_t W = m->cfg.window;
    for (size_t i = 0; i < m->fill; i++) {
        size_t slot = (m->head + W - m->fill + i) % W;
        for (size_t f = 0; f < m->nf; f++)
            json_array_append_new(rx, num_or_null(m->rx[slot * m->nf + f]));
        json_array_append_new(ry, num_or_null(m->ry[slot]));
    }
    json_t *jd = detector_json(m->jsd, err, errlen);
    json_t *ed = detector_json(m->errd, err, errlen);
    if (!o || !jd || !ed) {
        json_decref(jd);
        json_decref(ed);
        json_decref(o);
        json_decref(names);
        json_decref(rx);
        json_decref(ry);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: cannot serialize state");
    }
    json_object_set_new(o, "format", json_string("drst.monitor.state"));
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "monitor", json_string(m->name));
    json_object_set_new(o, "names", names);
    json_object_set_new(o, "seen", json_integer((json_int_t)m->seen));
    json_object_set_new(o, "labelled", json_integer((json_int_t)m->labelled));
    json_object_set_new(o, "since_request", json_integer((json_int_t)m->since_request));
    json_object_set_new(o, "evaluations", json_integer((json_int_t)m->evaluations));
    json_object_set_new(o, "suppressed", json_integer((json_int_t)m->suppressed));
    json_object_set_new(o, "rebaselines", json_integer((json_int_t)m->rebaselines));
    json_object_set_new(o, "triggers", json_integer((json_int_t)m->triggers));
    json_t *bs = json_array();
    for (int i = 0; i < 4; i++)
        json_array_append_new(bs, json_integer((json_int_t)m->by_source[i]));
    json_object_set_new(o, "triggers_by_source", bs);
    json_object_set_new(o, "cooldown",
                        json_pack("{s:I, s:I, s:b, s:I, s:I}", "length", (json_int_t)m->cool.length,
                                  "until", (json_int_t)m->cool.until, "armed", m->cool.armed,
                                  "fired", (json_int_t)m->cool.fired, "suppressed",
                                  (json_int_t)m->cool.suppressed));
    json_object_set_new(o, "release", json_string(m->release));
    json_object_set_new(o, "last_request", json_string(m->last_request));
    json_object_set_new(o, "replay_key", json_string(m->replay_key));
    json_object_set_new(o, "last_score", json_real(isfinite(m->last_score) ? m->last_score : 0));
    json_object_set_new(o, "window_x", rx);
    json_object_set_new(o, "window_y", ry);
    json_object_set_new(o, "jsd", jd);
    json_object_set_new(o, "error_detector", ed);
    char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!txt)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: cannot serialize state");
    rc = drst_store_put_atomic(m->store, DRST_CONTROL_MONITOR_KEY, txt, strlen(txt), err, errlen);
    free(txt);
    return rc;
}

static int get_u64(json_t *o, const char *k, uint64_t *v)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return -1;
    *v = (uint64_t)json_integer_value(x);
    return 0;
}

static int get_str(json_t *o, const char *k, char *buf, size_t n)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_string(x) || strlen(json_string_value(x)) >= n)
        return -1;
    snprintf(buf, n, "%s", json_string_value(x));
    return 0;
}

static drst_detector_t *detector_from(json_t *o, char *err, size_t errlen)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!s) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
        return NULL;
    }
    drst_detector_t *d = drst_detector_restore_json(s, strlen(s), err, errlen);
    free(s);
    return d;
}

drst_err_t drst_monitor_resume(drst_monitor_t *m, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_err_t rc;
    drst_detector_t *jd = NULL, *ed = NULL;
    json_t *o = NULL;
    if (!m->store)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "monitor: no store to resume from");
    if ((rc = drst_store_get(m->store, DRST_CONTROL_MONITOR_KEY, &buf, &len, err, errlen)) !=
        DRST_OK)
        return rc;
    json_error_t je;
    o = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
#define BAD(key)                                                                                   \
    do {                                                                                           \
        rc = drst_seterr(err, errlen, DRST_ERR_FORMAT, "%s: key '%s' missing or invalid",          \
                         DRST_CONTROL_MONITOR_KEY, key);                                           \
        goto out;                                                                                  \
    } while (0)
    if (!json_is_object(o))
        BAD("(top level)");
    json_t *names = json_object_get(o, "names");
    if (!json_is_array(names) || json_array_size(names) != m->nf)
        BAD("names");
    for (size_t f = 0; f < m->nf; f++) {
        const char *s = json_string_value(json_array_get(names, f));
        if (!s || strcmp(s, m->names[f])) {
            rc = drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                             "%s: saved feature %zu is '%s', the monitor's is '%s'",
                             DRST_CONTROL_MONITOR_KEY, f, s ? s : "?", m->names[f]);
            goto out;
        }
    }
    uint64_t seen, labelled, since, evals, supp, rebs, trig, cl, cu, cf, cs;
    if (get_u64(o, "seen", &seen) || get_u64(o, "labelled", &labelled) ||
        get_u64(o, "since_request", &since) || get_u64(o, "evaluations", &evals) ||
        get_u64(o, "suppressed", &supp) || get_u64(o, "rebaselines", &rebs) ||
        get_u64(o, "triggers", &trig))
        BAD("counters");
    json_t *c = json_object_get(o, "cooldown");
    if (!json_is_object(c) || get_u64(c, "length", &cl) || get_u64(c, "until", &cu) ||
        get_u64(c, "fired", &cf) || get_u64(c, "suppressed", &cs) ||
        !json_is_boolean(json_object_get(c, "armed")))
        BAD("cooldown");
    char rel[DRST_STORE_KEY_MAX + 1], lastreq[64], rkey[DRST_STORE_KEY_MAX + 1];
    if (get_str(o, "release", rel, sizeof(rel)) ||
        get_str(o, "last_request", lastreq, sizeof(lastreq)) ||
        get_str(o, "replay_key", rkey, sizeof(rkey)))
        BAD("release/last_request/replay_key");
    json_t *bs = json_object_get(o, "triggers_by_source");
    if (!json_is_array(bs) || json_array_size(bs) != 4)
        BAD("triggers_by_source");
    json_t *rx = json_object_get(o, "window_x"), *ry = json_object_get(o, "window_y");
    if (!json_is_array(rx) || !json_is_array(ry) || json_array_size(ry) > m->cfg.window ||
        json_array_size(rx) != json_array_size(ry) * m->nf)
        BAD("window_x/window_y");
    jd = detector_from(json_object_get(o, "jsd"), err, errlen);
    if (!jd) {
        rc = DRST_ERR_FORMAT;
        goto out;
    }
    if (drst_detector_config(jd)->nfeatures != m->nf || strcmp(drst_detector_kind(jd), "jsd"))
        BAD("jsd");
    json_t *ej = json_object_get(o, "error_detector");
    if (!json_is_null(ej)) {
        ed = detector_from(ej, err, errlen);
        if (!ed) {
            rc = DRST_ERR_FORMAT;
            goto out;
        }
    }
    /* everything validated: commit */
    size_t n = json_array_size(ry);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ry, i);
        m->ry[i] = json_is_number(v) ? json_number_value(v) : NAN;
        for (size_t f = 0; f < m->nf; f++) {
            v = json_array_get(rx, i * m->nf + f);
            m->rx[i * m->nf + f] = json_is_number(v) ? json_number_value(v) : NAN;
        }
    }
    m->fill = n;
    m->head = n % m->cfg.window;
    drst_detector_free(m->jsd);
    m->jsd = jd;
    jd = NULL;
    drst_detector_free(m->errd);
    m->errd = ed;
    ed = NULL;
    m->seen = seen;
    m->labelled = labelled;
    m->since_request = since;
    m->evaluations = evals;
    m->suppressed = supp;
    m->rebaselines = rebs;
    m->triggers = trig;
    for (int i = 0; i < 4; i++)
        m->by_source[i] = (uint64_t)json_integer_value(json_array_get(bs, (size_t)i));
    m->cool.length = cl;
    m->cool.until = cu;
    m->cool.armed = json_is_true(json_object_get(c, "armed"));
    m->cool.fired = cf;
    m->cool.suppressed = cs;
    snprintf(m->release, sizeof(m->release), "%s", rel);
    snprintf(m->last_request, sizeof(m->last_request), "%s", lastreq);
    snprintf(m->replay_key, sizeof(m->replay_key), "%s", rkey);
    /* the replay reservoir comes back from the last frozen copy */
    m->pcount = 0;
    if (rkey[0] && m->cfg.reservoir) {
        drst_table_t *t = NULL;
        if (ctl_table_get(m->store, rkey, &t, NULL, 0) == DRST_OK && t->ncols == m->nf + 1) {
            for (size_t r = 0; r < t->nrows && m->pcount < m->cfg.reservoir; r++)
                reservoir_add(m, t->data + r * t->ncols, t->data[r * t->ncols + m->nf]);
        }
        drst_table_free(t);
    }
    rc = DRST_OK;
#undef BAD
out:
    drst_detector_free(jd);
    drst_detector_free(ed);
    json_decref(o);
    return rc;
}

/* ---- request reading (shared with the retrainer) ---- */

drst_err_t drst_retrain_request_read(drst_store_t *s, drst_retrain_request_t *out, char *err,
                                     size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    drst_err_t rc = drst_store_get(s, DRST_CONTROL_REQUEST_KEY, &buf, &len, err, errlen);
    if (rc != DRST_OK)
        return rc;
    json_error_t je;
    json_t *o = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
    rc = DRST_OK;
    json_t *tier = json_object_get(o, "tier"), *att = json_object_get(o, "attempts");
    char src[32];
    uint64_t at = 0, nd = 0;
    if (!json_is_object(o) || get_str(o, "id", out->id, sizeof(out->id)) ||
        !json_is_integer(tier) || json_integer_value(tier) < 1 || json_integer_value(tier) > 3 ||
        get_str(o, "window", out->window_key, sizeof(out->window_key)) ||
        get_str(o, "status", out->status, sizeof(out->status)) || !json_is_integer(att) ||
        get_str(o, "source", src, sizeof(src)) || get_u64(o, "at", &at)) {
        rc = drst_seterr(err, errlen, DRST_ERR_FORMAT,
                         "%s: a key of id/tier/window/status/attempts/source/at is missing or "
                         "invalid",
                         DRST_CONTROL_REQUEST_KEY);
        goto out;
    }
    out->tier = (int)json_integer_value(tier);
    out->attempts = (int)json_integer_value(att);
    out->at = at;
    out->source = !strcmp(src, "features")  ? DRST_TRIGGER_FEATURES
                  : !strcmp(src, "error")   ? DRST_TRIGGER_ERROR
                  : !strcmp(src, "refresh") ? DRST_TRIGGER_REFRESH
                                            : DRST_TRIGGER_NONE;
    json_t *sc = json_object_get(o, "score");
    out->score = json_is_number(sc) ? json_number_value(sc) : NAN;
    if (get_u64(o, "n_drifted", &nd) == 0)
        out->n_drifted = (size_t)nd;
    if (get_u64(o, "fresh_rows", &nd) == 0)
        out->fresh_rows = (size_t)nd;
    if (get_str(o, "replay", out->replay_key, sizeof(out->replay_key)))
        out->replay_key[0] = '\0';
    if (get_str(o, "result", out->release, sizeof(out->release)))
        out->release[0] = '\0';
out:
    json_decref(o);
    return rc;
}

drst_err_t drst_monitor_consume(drst_monitor_t *m, drst_stream_t *h, const drst_schema_t *schema,
                                int idle_ms, uint64_t max_records,
                                void (*on_event)(void *opaque, const drst_monitor_event_t *ev),
                                void *opaque, char *err, size_t errlen)
{
    drst_err_t rc = DRST_OK;
    drst_eos_t eos = {0};
    int eos_ok = 0;
    if (drst_schema_size(schema) != m->nf)
        return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                           "monitor: schema has %zu features, the monitor %zu",
                           drst_schema_size(schema), m->nf);
    for (size_t f = 0; f < m->nf; f++)
        if (strcmp(drst_schema_name(schema, f), m->names[f]))
            return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                               "monitor: schema feature %zu is '%s', the monitor's '%s'", f,
                               drst_schema_name(schema, f), m->names[f]);
    double *x = malloc(m->nf * sizeof(double));
    if (!x)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "monitor: out of memory");
    /* partitions are learnt from ASSIGN events; 4096 bounds the tracker */
    if ((rc = drst_eos_init(&eos, 4096)) != DRST_OK) {
        free(x);
        return drst_seterr(err, errlen, rc, "monitor: out of memory");
    }
    eos_ok = 1;
    uint64_t fed = 0;
    long idle = 0;
    const int tick = 100;
    drst_record_t rec = {.features = x};
    while (!drst_eos_done(&eos) && (!max_records || fed < max_records)) {
        drst_stream_batch_t b;
        rc = drst_stream_poll(h, tick, 1000, &b, err, errlen);
        if (rc == DRST_ERR_EOF) {
            rc = DRST_OK;
            break;
        }
        if (rc != DRST_OK)
            break;
        if (b.ev == DRST_STREAM_EV_NONE) {
            idle += tick;
            if (idle_ms > 0 && idle >= idle_ms)
                break;
            continue;
        }
        idle = 0;
        drst_eos_apply(&eos, &b);
        if (b.ev != DRST_STREAM_EV_MSGS)
            continue;
        for (size_t i = 0; i < b.n; i++) {
            const drst_msg_t *mg = &b.msgs[i];
            if (drst_record_decode(schema, mg->payload, mg->len, &rec, NULL, 0) != DRST_OK)
                continue; /* not ours to judge: consumers dead-letter bad records */
            if (rec.eos) {
                if (rec.partition >= 0 && rec.partition < 4096)
                    drst_eos_mark(&eos, mg->partition);
                continue;
            }
            drst_monitor_event_t ev;
            rc = drst_monitor_feed(m, x, rec.has_label ? rec.label : NAN, NAN, &ev, err, errlen);
            if (rc != DRST_OK)
                goto out;
            fed++;
            if (ev.evaluated && (rc = drst_monitor_poll_release(m, NULL, err, errlen)) != DRST_OK)
                goto out;
            if (ev.triggered && on_event)
                on_event(opaque, &ev);
        }
        size_t nfin;
        const int32_t *fin = drst_eos_pending(&eos, &nfin);
        if ((rc = drst_stream_commit(h, fin, nfin, err, errlen)) != DRST_OK)
            goto out;
        drst_eos_committed(&eos);
    }
out:
    if (eos_ok)
        drst_eos_release(&eos);
    free(x);
    return rc;
}
