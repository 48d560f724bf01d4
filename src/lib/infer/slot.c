/* The model slot: the served (baseline, adaptive) pair behind one pointer,
 * swapped under RCU.
 *
 * Flavour: liburcu "memb" (the default urcu flavour of liburcu 0.13). Its
 * read side is a thread-local nesting counter plus a compiler barrier (the
 * writer issues membarrier(2) during a grace period, falling back to full
 * fences where the syscall is missing), so readers never block and need no
 * periodic quiescent-state calls: a consumer can sit in poll() between
 * batches, and the slot can be read from any library thread (QSBR would
 * force every reader thread to announce quiescent states, bp costs a fence
 * per read). Writers are rare (one swap per release) and may block in
 * synchronize_rcu().
 *
 * Publication uses C11 atomics (release store / acquire load) on the view
 * pointer: the same ordering as rcu_assign_pointer()/rcu_dereference() on
 * every target we build for, and visible to ThreadSanitizer, which does not
 * understand liburcu's volatile accesses. Under TSan we also tell it about
 * the grace period (readers release at exit, the writer acquires after
 * synchronize_rcu()), which is exactly the ordering urcu guarantees. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>

#include "common/error_int.h"
#include "drst/infer.h"

#if defined(__SANITIZE_THREAD__)
#define SLOT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLOT_TSAN 1
#endif
#endif
#ifdef SLOT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(a) __tsan_acquire(a)
#define TSAN_RELEASE(a) __tsan_release(a)
#else
#define TSAN_ACQUIRE(a) ((void)(a))
#define TSAN_RELEASE(a) ((void)(a))
#endif

/* An immutable view; `pub` first so a drst_serving_t * converts back. */
typedef struct view {
    drst_serving_t pub;
    drst_schema_t *schema;
    size_t *map_base, *map_adapt;
    drst_model_t *adaptive_owned; /* NULL when adaptive == baseline */
    char hash[65];
} view_t;

struct drst_model_slot {
    _Atomic(view_t *) cur;
    _Atomic uint64_t version;
    drst_model_t *baseline;
    pthread_mutex_t wmu; /* serializes writers */
    int gp;              /* TSan grace-period token (address only) */
};

/* Per-thread registration depth: online/offline nest, so a consumer that
 * registers itself may run on a thread its embedder registered already. */
static _Thread_local unsigned rcu_depth;

void drst_rcu_thread_online(void)
{
    if (rcu_depth++ == 0)
        urcu_memb_register_thread();
}

void drst_rcu_thread_offline(void)
{
    if (rcu_depth > 0 && --rcu_depth == 0)
        urcu_memb_unregister_thread();
}

static void view_free(view_t *v)
{
    if (!v)
        return;
    drst_schema_free(v->schema);
    free(v->map_base);
    free(v->map_adapt);
    drst_model_free(v->adaptive_owned);
    free(v);
}

/* Build the union schema (baseline features first, then the adaptive
 * model's new ones) and both index maps. Defaults are NaN: a missing value
 * reaches drst_model_predict() as NaN and each model fills its own mean. */
static view_t *view_new(const drst_model_t *base, drst_model_t *adapt, uint64_t version,
                        drst_err_t *rc, char *err, size_t errlen)
{
    size_t nb = drst_model_nfeatures(base), na = adapt ? drst_model_nfeatures(adapt) : 0, n = 0;
    const char **names = calloc(nb + na + 1, sizeof(*names));
    view_t *v = calloc(1, sizeof(*v));
    if (!names || !v)
        goto nomem;
    v->map_base = calloc(nb + 1, sizeof(size_t));
    v->map_adapt = calloc((adapt ? na : nb) + 1, sizeof(size_t));
    if (!v->map_base || !v->map_adapt)
        goto nomem;
    for (size_t i = 0; i < nb; i++) {
        names[n] = drst_model_feature(base, i);
        v->map_base[i] = n++;
    }
    if (adapt) {
        const char *tb = drst_model_target(base), *ta = drst_model_target(adapt);
        if (strcmp(tb ? tb : "", ta ? ta : "") != 0) {
            *rc = drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                              "adaptive model predicts \"%s\" but the baseline predicts \"%s\"",
                              ta ? ta : "", tb ? tb : "");
            free(names);
            view_free(v);
            return NULL;
        }
        for (size_t i = 0; i < na; i++) {
            const char *f = drst_model_feature(adapt, i);
            size_t j = 0;
            while (j < n && strcmp(names[j], f) != 0)
                j++;
            if (j == n)
                names[n++] = f;
            v->map_adapt[i] = j;
        }
    } else {
        memcpy(v->map_adapt, v->map_base, nb * sizeof(size_t));
    }
    v->schema = drst_schema_new(names, n, NULL, err, errlen);
    free(names);
    names = NULL;
    if (!v->schema) {
        *rc = DRST_ERR_SCHEMA;
        view_free(v);
        return NULL;
    }
    v->pub.baseline = base;
    v->pub.adaptive = adapt ? adapt : base;
    v->pub.version = version;
    v->pub.schema = v->schema;
    v->pub.map_base = v->map_base;
    v->pub.map_adapt = v->map_adapt;
    v->adaptive_owned = adapt;
    snprintf(v->hash, sizeof(v->hash), "%s", drst_model_hash_hex(v->pub.adaptive));
    return v;
nomem:
    free(names);
    view_free(v);
    *rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "model slot: out of memory");
    return NULL;
}

drst_model_slot_t *drst_model_slot_new(drst_model_t *baseline, drst_model_t *adaptive, char *err,
                                       size_t errlen)
{
    drst_model_slot_t *s;
    view_t *v;
    drst_err_t rc;
    if (!baseline) {
        drst_model_free(adaptive);
        drst_seterr(err, errlen, DRST_ERR_INVAL, "model slot: no baseline model");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        drst_model_free(baseline);
        drst_model_free(adaptive);
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "model slot: out of memory");
        return NULL;
    }
    v = view_new(baseline, adaptive, 1, &rc, err, errlen);
    if (!v) {
        drst_model_free(baseline);
        drst_model_free(adaptive);
        free(s);
        return NULL;
    }
    s->baseline = baseline;
    pthread_mutex_init(&s->wmu, NULL);
    atomic_init(&s->cur, v);
    atomic_init(&s->version, 1);
    return s;
}

void drst_model_slot_free(drst_model_slot_t *s)
{
    if (!s)
        return;
    view_free(atomic_load(&s->cur));
    drst_model_free(s->baseline);
    pthread_mutex_destroy(&s->wmu);
    free(s);
}

const drst_serving_t *drst_model_slot_enter(drst_model_slot_t *s)
{
    urcu_memb_read_lock();
    return &atomic_load_explicit(&s->cur, memory_order_acquire)->pub;
}

void drst_model_slot_exit(drst_model_slot_t *s)
{
    TSAN_RELEASE(&s->gp);
    urcu_memb_read_unlock();
}

drst_err_t drst_model_slot_swap(drst_model_slot_t *s, drst_model_t *adaptive, uint64_t *version_out,
                                char *err, size_t errlen)
{
    view_t *v, *old;
    uint64_t ver;
    drst_err_t rc = DRST_OK;
    if (!adaptive)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "model slot: no model to swap in");
    pthread_mutex_lock(&s->wmu);
    ver = atomic_load(&s->version) + 1;
    v = view_new(s->baseline, adaptive, ver, &rc, err, errlen);
    if (!v) {
        pthread_mutex_unlock(&s->wmu);
        drst_model_free(adaptive);
        return rc;
    }
    old = atomic_exchange_explicit(&s->cur, v, memory_order_acq_rel);
    atomic_store(&s->version, ver);
    /* Every reader that could still see `old` entered before the exchange;
     * after the grace period none is left. */
    urcu_memb_synchronize_rcu();
    TSAN_ACQUIRE(&s->gp);
    view_free(old);
    pthread_mutex_unlock(&s->wmu);
    if (version_out)
        *version_out = ver;
    return DRST_OK;
}

uint64_t drst_model_slot_version(drst_model_slot_t *s)
{
    return atomic_load_explicit(&s->version, memory_order_relaxed);
}

void drst_model_slot_adaptive_hash(drst_model_slot_t *s, char buf[65])
{
    /* Writers hold wmu while they free views: reading under it is safe from
     * any thread, registered as an RCU reader or not. */
    pthread_mutex_lock(&s->wmu);
    memcpy(buf, atomic_load(&s->cur)->hash, 65);
    pthread_mutex_unlock(&s->wmu);
}
