/* The guard: follows a store pointer and swaps verified, better releases
 * into a model slot. Everything slow (store read, load, checksum, sanity
 * prediction) happens here, on the guard's thread, never on a consumer. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error_int.h"
#include "drst/infer.h"

struct drst_guard {
    drst_model_slot_t *slot;
    drst_store_t *store;
    drst_guard_conf_t conf;
    char pointer[64];
    char last_key[DRST_STORE_KEY_MAX + 1]; /* last release judged */
    _Atomic uint64_t swaps, refused, corrupt;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop; /* under mu */
};

const char *drst_guard_ev_name(drst_guard_ev_t ev)
{
    static const char *const names[] = {"unchanged", "same",    "swapped",
                                        "refused",   "corrupt", "error"};
    return (unsigned)ev < sizeof(names) / sizeof(names[0]) ? names[ev] : "?";
}

static double acc_at(const drst_model_t *m, double tau)
{
    const drst_model_metrics_t *v = drst_model_val_metrics(m);
    if (!v || v->rows == 0)
        return NAN;
    if (tau <= 0.05 + 1e-12)
        return v->acc05;
    if (tau <= 0.1 + 1e-12)
        return v->acc10;
    return v->acc20;
}

drst_guard_t *drst_guard_new(drst_model_slot_t *slot, drst_store_t *store,
                             const drst_guard_conf_t *conf, char *err, size_t errlen)
{
    drst_guard_t *g;
    if (!slot || !store) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "guard: slot and store are required");
        return NULL;
    }
    g = calloc(1, sizeof(*g));
    if (!g) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "guard: out of memory");
        return NULL;
    }
    g->slot = slot;
    g->store = store;
    if (conf)
        g->conf = *conf;
    snprintf(g->pointer, sizeof(g->pointer), "%s",
             g->conf.pointer && *g->conf.pointer ? g->conf.pointer : "latest");
    g->conf.pointer = g->pointer;
    if (!(g->conf.reload_s > 0))
        g->conf.reload_s = 2;
    if (!(g->conf.tau > 0))
        g->conf.tau = 0.2;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    return g;
}

static drst_guard_ev_t say(drst_guard_t *g, drst_guard_ev_t ev, uint64_t ver, const char *key,
                           const char *detail)
{
    if (g->conf.log)
        g->conf.log(g->conf.opaque, ev, ver, key, detail);
    return ev;
}

/* Load + verify a candidate. @return the model or NULL (detail in why). */
static drst_model_t *load_candidate(drst_guard_t *g, const char *key, char *why, size_t whylen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_model_t *m = NULL;
    drst_model_scratch_t *sc = NULL;
    char e[DRST_ERRLEN] = "";
    const drst_serving_t *sv;
    const char *tc, *ts;
    int bad_target;

    if (drst_store_get(g->store, key, &buf, &len, e, sizeof(e)) != DRST_OK) {
        snprintf(why, whylen, "cannot read: %s", e);
        return NULL;
    }
    if (drst_model_load_buffer(buf, len, &m, e, sizeof(e)) != DRST_OK) {
        free(buf);
        snprintf(why, whylen, "refused: %s", e);
        return NULL;
    }
    free(buf);
    /* Same target as the baseline, and a finite prediction on the training
     * means (catches a file that passes its checksum but carries garbage). */
    sv = drst_model_slot_enter(g->slot);
    tc = drst_model_target(m);
    ts = drst_model_target(sv->baseline);
    bad_target = strcmp(tc ? tc : "", ts ? ts : "") != 0;
    if (bad_target)
        snprintf(why, whylen, "refused: predicts \"%s\", the served models predict \"%s\"",
                 tc ? tc : "", ts ? ts : "");
    drst_model_slot_exit(g->slot);
    if (bad_target)
        goto bad;
    sc = drst_model_scratch_new(m, 1);
    if (!sc) {
        snprintf(why, whylen, "out of memory");
        goto bad;
    }
    if (!isfinite(drst_model_predict1(m, drst_model_means(m), sc))) {
        snprintf(why, whylen, "refused: non-finite prediction on the training means");
        goto bad;
    }
    drst_model_scratch_free(sc);
    return m;
bad:
    drst_model_scratch_free(sc);
    drst_model_free(m);
    return NULL;
}

drst_err_t drst_guard_check(drst_guard_t *g, drst_guard_ev_t *ev, char *err, size_t errlen)
{
    drst_release_t rel;
    char e[DRST_ERRLEN] = "", why[DRST_ERRLEN + 128], served[65];
    drst_model_t *m;
    drst_err_t rc;
    double acc_c, acc_s, gain;
    const drst_serving_t *sv;
    uint64_t ver;
    int first;

    *ev = DRST_GUARD_UNCHANGED;
    rc = drst_store_read_pointer(g->store, g->pointer, &rel, e, sizeof(e));
    if (rc == DRST_ERR_NOTFOUND)
        return DRST_OK; /* nothing published yet */
    if (rc != DRST_OK) {
        *ev = say(g, DRST_GUARD_ERROR, 0, NULL, e);
        return drst_seterr(err, errlen, rc, "guard: pointer \"%s\": %s", g->pointer, e);
    }
    if (strcmp(rel.model_key, g->last_key) == 0)
        return DRST_OK;
    first = g->last_key[0] == '\0';
    snprintf(g->last_key, sizeof(g->last_key), "%s", rel.model_key);

    drst_rcu_thread_online();
    m = load_candidate(g, rel.model_key, why, sizeof(why));
    if (!m) {
        atomic_fetch_add(&g->corrupt, 1);
        *ev = say(g, DRST_GUARD_CORRUPT, drst_model_slot_version(g->slot), rel.model_key, why);
        goto out;
    }
    drst_model_slot_adaptive_hash(g->slot, served);
    if (strcmp(served, drst_model_hash_hex(m)) == 0) {
        drst_model_free(m);
        /* the release served from the start is not news */
        *ev = first ? DRST_GUARD_SAME
                    : say(g, DRST_GUARD_SAME, drst_model_slot_version(g->slot), rel.model_key,
                          "already served (same content hash)");
        goto out;
    }
    sv = drst_model_slot_enter(g->slot);
    acc_s = acc_at(sv->adaptive, g->conf.tau);
    drst_model_slot_exit(g->slot);
    acc_c = acc_at(m, g->conf.tau);
    gain = 100.0 * (acc_c - acc_s);
    if (isnan(acc_c) || (!isnan(acc_s) && !(gain >= g->conf.gain_pp))) {
        if (isnan(acc_c))
            snprintf(why, sizeof(why), "candidate has no validation metrics");
        else
            snprintf(why, sizeof(why),
                     "val acc@%g %.2f%% vs served %.2f%%: gain %+.2f pp below the %.2f pp margin",
                     g->conf.tau, 100 * acc_c, 100 * acc_s, gain, g->conf.gain_pp);
        drst_model_free(m);
        atomic_fetch_add(&g->refused, 1);
        *ev = say(g, DRST_GUARD_REFUSED, drst_model_slot_version(g->slot), rel.model_key, why);
        goto out;
    }
    if (isnan(acc_s))
        snprintf(why, sizeof(why), "val acc@%g %.2f%% (served model has no validation metrics)",
                 g->conf.tau, 100 * acc_c);
    else
        snprintf(why, sizeof(why), "val acc@%g %.2f%% vs %.2f%%: gain %+.2f pp", g->conf.tau,
                 100 * acc_c, 100 * acc_s, gain);
    rc = drst_model_slot_swap(g->slot, m, &ver, e, sizeof(e));
    if (rc != DRST_OK) {
        atomic_fetch_add(&g->corrupt, 1);
        *ev = say(g, DRST_GUARD_CORRUPT, drst_model_slot_version(g->slot), rel.model_key, e);
        rc = DRST_OK;
        goto out;
    }
    atomic_fetch_add(&g->swaps, 1);
    *ev = say(g, DRST_GUARD_SWAPPED, ver, rel.model_key, why);
out:
    drst_rcu_thread_offline();
    return rc;
}

static void *guard_main(void *arg)
{
    drst_guard_t *g = arg;
    drst_rcu_thread_online();
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        drst_guard_ev_t ev;
        struct timespec ts;
        pthread_mutex_unlock(&g->mu);
        (void)!drst_guard_check(g, &ev, NULL, 0); /* errors were logged */
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = ts.tv_sec + ts.tv_nsec * 1e-9 + g->conf.reload_s;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_mutex_lock(&g->mu);
        while (!g->stop && pthread_cond_timedwait(&g->cv, &g->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&g->mu);
    drst_rcu_thread_offline();
    return NULL;
}

drst_err_t drst_guard_start(drst_guard_t *g, char *err, size_t errlen)
{
    if (g->started)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "guard: already started");
    if (pthread_create(&g->th, NULL, guard_main, g) != 0)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "guard: cannot start its thread");
    g->started = 1;
    return DRST_OK;
}

void drst_guard_counts(drst_guard_t *g, uint64_t *swaps, uint64_t *refused, uint64_t *corrupt)
{
    if (swaps)
        *swaps = atomic_load(&g->swaps);
    if (refused)
        *refused = atomic_load(&g->refused);
    if (corrupt)
        *corrupt = atomic_load(&g->corrupt);
}

void drst_guard_free(drst_guard_t *g)
{
    if (!g)
        return;
    if (g->started) {
        pthread_mutex_lock(&g->mu);
        g->stop = 1;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->th, NULL);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
