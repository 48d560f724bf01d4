/* In-process partitioned log: topics of P bounded rings, consumer groups with
 * their own offsets and assignment, blocking poll, producer backpressure.
 *
 * Concurrency: one mutex per topic guards its partitions and groups, with
 * two condition variables (data arrived / space freed). Consumers copy a
 * whole batch under one lock acquisition, which keeps the lock cheap at
 * millions of records per second, and nobody spins. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error_int.h"
#include "stream/stream_int.h"

struct slot {
    size_t len, cap;
    char *data;
};

struct part {
    int64_t low, head; /* retained offsets [low, head) */
    struct slot *ring; /* retention slots, offset % retention */
};

struct ih;

struct group {
    char *name;
    int64_t *committed;  /* per partition: next offset to process */
    uint8_t *finished;   /* per partition: sentinel committed */
    struct ih **owner;   /* who holds the partition now (NULL: free) */
    struct ih **target;  /* who should hold it after the last rebalance */
    struct ih **members; /* sorted by member id */
    size_t nmembers, capmembers;
    uint64_t gen, serial;
};

struct topic {
    char *name;
    int32_t np;
    pthread_mutex_t mu;
    pthread_cond_t data_cv, space_cv;
    int data_waiters, space_waiters;
    struct part *parts;
    struct group **groups;
    size_t ngroups;
};

struct drst_log {
    pthread_mutex_t mu; /* guards the topic list only */
    struct topic **topics;
    size_t ntopics;
    size_t retention;
    drst_assignor_t assignor;
};

/* One client handle (producer and/or one group member). Used by one thread. */
struct ih {
    struct drst_stream base;
    drst_log_t *log;
    int from_beginning;
    struct topic *ptopic; /* producer: last topic used */
    uint32_t rr;
    /* consumer */
    struct topic *t;
    struct group *g;
    char *member_id;
    uint64_t gen_seen;
    int assign_dirty;
    int64_t *pos;
    uint8_t *owned;
    int32_t *evparts;
    uint8_t *evfin;
    drst_msg_t *msgs;
    size_t msgcap;
    char *arena;
    size_t arenacap;
    uint32_t fetch_rr;
    drst_stream_stats_t st;
};

/* ---------------------------------------------------------------- log */

static void topic_free(struct topic *t, size_t retention)
{
    if (!t)
        return;
    for (int32_t p = 0; p < t->np && t->parts; p++) {
        for (size_t i = 0; i < retention && t->parts[p].ring; i++)
            free(t->parts[p].ring[i].data);
        free(t->parts[p].ring);
    }
    for (size_t i = 0; i < t->ngroups; i++) {
        struct group *g = t->groups[i];
        free(g->name);
        free(g->committed);
        free(g->finished);
        free(g->owner);
        free(g->target);
        free(g->members);
        free(g);
    }
    free(t->groups);
    free(t->parts);
    free(t->name);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->data_cv);
    pthread_cond_destroy(&t->space_cv);
    free(t);
}

drst_log_t *drst_log_new(const drst_log_conf_t *conf, char *err, size_t errlen)
{
    drst_log_t *log = calloc(1, sizeof(*log));
    if (!log) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "log: out of memory");
        return NULL;
    }
    pthread_mutex_init(&log->mu, NULL);
    log->retention = conf && conf->retention ? conf->retention : 65536;
    log->assignor = conf ? conf->assignor : DRST_ASSIGN_RANGE;
    return log;
}

void drst_log_free(drst_log_t *log)
{
    if (!log)
        return;
    for (size_t i = 0; i < log->ntopics; i++)
        topic_free(log->topics[i], log->retention);
    free(log->topics);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

static struct topic *find_topic(drst_log_t *log, const char *name)
{
    struct topic *t = NULL;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->ntopics; i++)
        if (strcmp(log->topics[i]->name, name) == 0)
            t = log->topics[i];
    pthread_mutex_unlock(&log->mu);
    return t;
}

drst_err_t drst_log_create_topic(drst_log_t *log, const char *topic, int32_t partitions, char *err,
                                 size_t errlen)
{
    struct topic *t, **nt;
    drst_err_t rc = DRST_OK;

    if (!topic || !*topic || partitions < 1 || partitions > 100000)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "log: bad topic '%s' or partitions %d",
                           topic ? topic : "", (int)partitions);
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < log->ntopics; i++) {
        if (strcmp(log->topics[i]->name, topic) == 0) {
            if (log->topics[i]->np != partitions)
                rc = drst_seterr(err, errlen, DRST_ERR_STATE,
                                 "log: topic '%s' exists with %d partitions", topic,
                                 (int)log->topics[i]->np);
            goto out;
        }
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        goto nomem;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->data_cv, NULL);
    pthread_cond_init(&t->space_cv, NULL);
    t->name = strdup(topic);
    t->parts = calloc((size_t)partitions, sizeof(*t->parts));
    if (!t->name || !t->parts) {
        topic_free(t, log->retention);
        goto nomem;
    }
    t->np = partitions;
    for (int32_t p = 0; p < partitions; p++) {
        t->parts[p].ring = calloc(log->retention, sizeof(struct slot));
        if (!t->parts[p].ring) {
            topic_free(t, log->retention);
            goto nomem;
        }
    }
    nt = realloc(log->topics, (log->ntopics + 1) * sizeof(*nt));
    if (!nt) {
        topic_free(t, log->retention);
        goto nomem;
    }
    log->topics = nt;
    log->topics[log->ntopics++] = t;
out:
    pthread_mutex_unlock(&log->mu);
    return rc;
nomem:
    pthread_mutex_unlock(&log->mu);
    return drst_seterr(err, errlen, DRST_ERR_NOMEM, "log: out of memory creating '%s'", topic);
}

/* ---------------------------------------------------------------- groups */

/* Recompute targets after a membership change. @locks t->mu held. */
static void assign(struct topic *t, struct group *g, drst_assignor_t how)
{
    size_t m = g->nmembers;
    g->gen++;
    for (int32_t p = 0; p < t->np; p++)
        g->target[p] = NULL;
    if (m == 0)
        goto out;
    if (how == DRST_ASSIGN_ROUNDROBIN) {
        for (int32_t p = 0; p < t->np; p++)
            g->target[p] = g->members[(size_t)p % m];
    } else {
        size_t per = (size_t)t->np / m, extra = (size_t)t->np % m, p = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t k = 0; k < per + (i < extra ? 1 : 0); k++)
                g->target[p++] = g->members[i];
    }
out:
    pthread_cond_broadcast(&t->data_cv);
}

static struct group *group_get(struct topic *t, const char *name, int from_beginning)
{
    struct group *g, **ng;
    for (size_t i = 0; i < t->ngroups; i++)
        if (strcmp(t->groups[i]->name, name) == 0)
            return t->groups[i];
    g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->name = strdup(name);
    g->committed = calloc((size_t)t->np, sizeof(*g->committed));
    g->finished = calloc((size_t)t->np, 1);
    g->owner = calloc((size_t)t->np, sizeof(*g->owner));
    g->target = calloc((size_t)t->np, sizeof(*g->target));
    ng = realloc(t->groups, (t->ngroups + 1) * sizeof(*ng));
    if (ng)
        t->groups = ng;
    if (!g->name || !g->committed || !g->finished || !g->owner || !g->target || !ng) {
        free(g->name);
        free(g->committed);
        free(g->finished);
        free(g->owner);
        free(g->target);
        free(g);
        return NULL;
    }
    for (int32_t p = 0; p < t->np; p++)
        g->committed[p] = from_beginning ? t->parts[p].low : t->parts[p].head;
    t->groups[t->ngroups++] = g;
    return g;
}

/* ---------------------------------------------------------------- handle */

static void ih_close(drst_stream_t *base)
{
    struct ih *h = (struct ih *)base;
    if (h->t && h->g) {
        struct topic *t = h->t;
        struct group *g = h->g;
        pthread_mutex_lock(&t->mu);
        for (int32_t p = 0; p < t->np; p++)
            if (g->owner[p] == h)
                g->owner[p] = NULL;
        for (size_t i = 0; i < g->nmembers; i++) {
            if (g->members[i] == h) {
                memmove(&g->members[i], &g->members[i + 1],
                        (g->nmembers - i - 1) * sizeof(*g->members));
                g->nmembers--;
                break;
            }
        }
        assign(t, g, h->log->assignor);
        pthread_mutex_unlock(&t->mu);
    }
    free(h->member_id);
    free(h->pos);
    free(h->owned);
    free(h->evparts);
    free(h->evfin);
    free(h->msgs);
    free(h->arena);
    free(h);
}

static drst_stream_t *ih_open(const drst_stream_conf_t *conf, char *err, size_t errlen)
{
    struct ih *h;
    if (!conf->log) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "inproc transport: no log given");
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "inproc transport: out of memory");
        return NULL;
    }
    h->log = conf->log;
    h->from_beginning = conf->from_beginning;
    return &h->base;
}

static drst_err_t ih_partitions(drst_stream_t *base, const char *topic, int32_t *n, char *err,
                                size_t errlen)
{
    struct ih *h = (struct ih *)base;
    struct topic *t = find_topic(h->log, topic);
    if (!t)
        return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "log: no topic '%s'", topic);
    *n = t->np;
    return DRST_OK;
}

/* Lowest committed offset of partition p over all groups. @locks t->mu held. */
static int64_t min_committed(const struct topic *t, int32_t p)
{
    int64_t m = t->parts[p].head;
    for (size_t i = 0; i < t->ngroups; i++)
        if (t->groups[i]->committed[p] < m)
            m = t->groups[i]->committed[p];
    return m;
}

static drst_err_t ih_produce(drst_stream_t *base, const char *topic, int32_t partition,
                             const void *key, size_t keylen, const void *payload, size_t len,
                             char *err, size_t errlen)
{
    struct ih *h = (struct ih *)base;
    struct topic *t = h->ptopic;
    struct part *pt;
    struct slot *s;
    size_t cap = h->log->retention;
    int waited = 0;

    if (!t || strcmp(t->name, topic) != 0) {
        t = find_topic(h->log, topic);
        if (!t)
            return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "log: no topic '%s'", topic);
        h->ptopic = t;
    }
    if (partition >= t->np)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "log: topic '%s' has no partition %d",
                           topic, (int)partition);
    if (partition < 0)
        partition = key && keylen ? drst_partition_for_key(key, keylen, t->np)
                                  : (int32_t)(h->rr++ % (uint32_t)t->np);
    pt = &t->parts[partition];
    pthread_mutex_lock(&t->mu);
    while (pt->head - pt->low >= (int64_t)cap) {
        if (t->ngroups == 0) {
            pt->low++;
            h->st.retention_drops++;
            continue;
        }
        int64_t m = min_committed(t, partition);
        if (m > pt->low) {
            pt->low = m;
            continue;
        }
        waited = 1;
        t->space_waiters++;
        pthread_cond_wait(&t->space_cv, &t->mu);
        t->space_waiters--;
    }
    s = &pt->ring[(size_t)(pt->head % (int64_t)cap)];
    if (s->cap < len) {
        size_t nc = len < 64 ? 64 : len;
        char *nd = realloc(s->data, nc);
        if (!nd) {
            pthread_mutex_unlock(&t->mu);
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "log: out of memory");
        }
        s->data = nd;
        s->cap = nc;
    }
    memcpy(s->data, payload, len);
    s->len = len;
    pt->head++;
    if (t->data_waiters)
        pthread_cond_broadcast(&t->data_cv);
    pthread_mutex_unlock(&t->mu);
    h->st.produced++;
    h->st.delivered++;
    h->st.backpressure_waits += (uint64_t)waited;
    return DRST_OK;
}

static drst_err_t ih_flush(drst_stream_t *base, int timeout_ms, char *err, size_t errlen)
{
    (void)base;
    (void)timeout_ms;
    (void)err;
    (void)errlen;
    return DRST_OK; /* produce is synchronous */
}

static int cmp_member(const void *a, const void *b)
{
    const struct ih *x = *(struct ih *const *)a, *y = *(struct ih *const *)b;
    return strcmp(x->member_id, y->member_id);
}

static drst_err_t ih_subscribe(drst_stream_t *base, const char *topic, const char *group,
                               const char *member_id, char *err, size_t errlen)
{
    struct ih *h = (struct ih *)base;
    struct topic *t;
    struct group *g;
    char idbuf[64];

    if (h->t)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "log: handle already subscribed");
    t = find_topic(h->log, topic);
    if (!t)
        return drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "log: no topic '%s'", topic);
    h->pos = calloc((size_t)t->np, sizeof(*h->pos));
    h->owned = calloc((size_t)t->np, 1);
    h->evparts = calloc((size_t)t->np, sizeof(*h->evparts));
    h->evfin = calloc((size_t)t->np, 1);
    if (!h->pos || !h->owned || !h->evparts || !h->evfin)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "log: out of memory");
    pthread_mutex_lock(&t->mu);
    g = group_get(t, group, h->from_beginning);
    if (!g)
        goto nomem;
    if (g->nmembers == g->capmembers) {
        size_t nc = g->capmembers ? 2 * g->capmembers : 4;
        struct ih **nm = realloc(g->members, nc * sizeof(*nm));
        if (!nm)
            goto nomem;
        g->members = nm;
        g->capmembers = nc;
    }
    /* Member ids stay unique inside a group (a suffix orders equal names). */
    snprintf(idbuf, sizeof(idbuf), "%s#%llu", member_id && *member_id ? member_id : "member",
             (unsigned long long)g->serial++);
    h->member_id = strdup(idbuf);
    if (!h->member_id)
        goto nomem;
    g->members[g->nmembers++] = h;
    qsort(g->members, g->nmembers, sizeof(*g->members), cmp_member);
    h->t = t;
    h->g = g;
    h->gen_seen = g->gen;
    assign(t, g, h->log->assignor);
    pthread_mutex_unlock(&t->mu);
    return DRST_OK;
nomem:
    pthread_mutex_unlock(&t->mu);
    return drst_seterr(err, errlen, DRST_ERR_NOMEM, "log: out of memory joining '%s'", group);
}

/* Apply the group's current targets to this member: release what was
 * revoked, take what is assigned and free. @locks t->mu held.
 * @return number of revoked partitions written to h->evparts. */
static size_t rebalance(struct ih *h)
{
    struct topic *t = h->t;
    struct group *g = h->g;
    size_t nrev = 0;
    int pending = 0;

    for (int32_t p = 0; p < t->np; p++) {
        if (h->owned[p] && g->target[p] != h) {
            h->owned[p] = 0;
            g->owner[p] = NULL;
            h->evparts[nrev++] = p;
            h->assign_dirty = 1;
        }
    }
    if (nrev)
        pthread_cond_broadcast(&t->data_cv);
    for (int32_t p = 0; p < t->np; p++) {
        if (!h->owned[p] && g->target[p] == h) {
            if (g->owner[p] == NULL) {
                g->owner[p] = h;
                h->owned[p] = 1;
                h->pos[p] = g->committed[p];
                h->assign_dirty = 1;
            } else {
                pending = 1;
            }
        }
    }
    /* Like Kafka's eager protocol every rebalance ends in an ASSIGN event,
     * even when this member's set did not change. Stay "unseen" while a
     * partition waits for its previous owner. */
    if (h->gen_seen != g->gen && !pending)
        h->assign_dirty = 1;
    h->gen_seen = pending ? g->gen - 1 : g->gen;
    if (nrev)
        h->st.rebalances++;
    return nrev;
}

static drst_err_t ih_poll(drst_stream_t *base, int timeout_ms, size_t max, drst_stream_batch_t *out,
                          char *err, size_t errlen)
{
    struct ih *h = (struct ih *)base;
    struct topic *t = h->t;
    struct group *g = h->g;
    struct timespec deadline;
    size_t n = 0, used = 0;
    drst_err_t rc = DRST_OK;

    memset(out, 0, sizeof(*out));
    if (!t)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "log: poll before subscribe");
    if (max > h->msgcap) {
        drst_msg_t *nm = realloc(h->msgs, max * sizeof(*nm));
        if (!nm)
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "log: out of memory");
        h->msgs = nm;
        h->msgcap = max;
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (h->gen_seen != g->gen) {
            size_t nrev = rebalance(h);
            if (nrev) {
                out->ev = DRST_STREAM_EV_REVOKE;
                out->parts = h->evparts;
                out->nparts = nrev;
                break;
            }
        }
        if (h->assign_dirty) {
            size_t k = 0;
            for (int32_t p = 0; p < t->np; p++) {
                if (h->owned[p]) {
                    h->evparts[k] = p;
                    h->evfin[k++] = g->finished[p];
                }
            }
            h->assign_dirty = 0;
            h->st.rebalances++;
            out->ev = DRST_STREAM_EV_ASSIGN;
            out->parts = h->evparts;
            out->finished = h->evfin;
            out->nparts = k;
            break;
        }
        for (int32_t i = 0; i < t->np && n < max; i++) {
            int32_t p = (int32_t)((h->fetch_rr + (uint32_t)i) % (uint32_t)t->np);
            struct part *pt = &t->parts[p];
            if (!h->owned[p])
                continue;
            if (h->pos[p] < pt->low)
                h->pos[p] = pt->low;
            while (h->pos[p] < pt->head && n < max) {
                const struct slot *s = &pt->ring[(size_t)(h->pos[p] % (int64_t)h->log->retention)];
                if (used + s->len > h->arenacap) {
                    size_t nc = h->arenacap ? h->arenacap : 65536;
                    char *na;
                    while (nc < used + s->len)
                        nc *= 2;
                    na = realloc(h->arena, nc);
                    if (!na) {
                        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "log: out of memory");
                        goto out;
                    }
                    h->arena = na;
                    h->arenacap = nc;
                }
                memcpy(h->arena + used, s->data, s->len);
                h->msgs[n].payload = (const void *)(uintptr_t)used; /* fixed below */
                h->msgs[n].len = s->len;
                h->msgs[n].partition = p;
                h->msgs[n].offset = h->pos[p];
                used += s->len;
                h->pos[p]++;
                n++;
            }
        }
        h->fetch_rr++;
        if (n) {
            out->ev = DRST_STREAM_EV_MSGS;
            break;
        }
        t->data_waiters++;
        int w = pthread_cond_timedwait(&t->data_cv, &t->mu, &deadline);
        t->data_waiters--;
        if (w == ETIMEDOUT) {
            /* anything that raced the timeout is seen by the next poll */
            out->ev = DRST_STREAM_EV_NONE;
            break;
        }
    }
out:
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < n; i++)
        h->msgs[i].payload = h->arena + (uintptr_t)h->msgs[i].payload;
    if (n) {
        out->msgs = h->msgs;
        out->n = n;
        h->st.consumed += n;
    }
    return rc;
}

static drst_err_t ih_commit(drst_stream_t *base, const int32_t *finished, size_t nfinished,
                            char *err, size_t errlen)
{
    struct ih *h = (struct ih *)base;
    struct topic *t = h->t;
    struct group *g = h->g;

    if (!t)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "log: commit before subscribe");
    pthread_mutex_lock(&t->mu);
    for (int32_t p = 0; p < t->np; p++)
        if (h->owned[p] && g->owner[p] == h)
            g->committed[p] = h->pos[p];
    for (size_t i = 0; i < nfinished; i++)
        if (finished[i] >= 0 && finished[i] < t->np && h->owned[finished[i]])
            g->finished[finished[i]] = 1;
    if (t->space_waiters)
        pthread_cond_broadcast(&t->space_cv);
    pthread_mutex_unlock(&t->mu);
    h->st.commits++;
    return DRST_OK;
}

static void ih_stats(drst_stream_t *base, drst_stream_stats_t *out)
{
    *out = ((struct ih *)base)->st;
}

const struct drst_transport_ops drst_transport_inproc = {
    .name = "inproc",
    .open = ih_open,
    .partitions = ih_partitions,
    .produce = ih_produce,
    .flush = ih_flush,
    .subscribe = ih_subscribe,
    .poll = ih_poll,
    .commit = ih_commit,
    .stats = ih_stats,
    .close = ih_close,
};
