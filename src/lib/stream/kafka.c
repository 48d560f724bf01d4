/* Kafka transport (librdkafka) and the development broker (its mock
 * cluster). The only file that includes rdkafka.h: librdkafka codes are
 * translated to drst_err_t here, with librdkafka's text in the buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/error_int.h"
#include "stream/stream_int.h"
#include "stream/tcpfwd_int.h"

#define EOS_META "eos"

struct kh {
    struct drst_stream base;
    char *bootstrap, *client_id;
    char **kv;
    size_t nkv;
    int from_beginning, session_timeout_ms;
    drst_assignor_t assignor;
    rd_kafka_t *prod, *cons;
    char *topic;
    int32_t np;
    /* consumer: messages of the last batch (destroyed at the next poll) */
    rd_kafka_message_t **held;
    drst_msg_t *msgs;
    size_t nheld, cap;
    /* pending rebalance event, filled by the rebalance callback */
    drst_stream_ev_t ev;
    int32_t *evparts;
    uint8_t *evfin, *fin;
    size_t nev;
    int closing;
    char lasterr[256];
    drst_stream_stats_t st;
};

/* librdkafka logs through this instead of stderr: the library never prints. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kh *h = opaque;
    (void)rk;
    if (m->err) {
        h->st.delivery_failed++;
        snprintf(h->lasterr, sizeof(h->lasterr), "delivery failed: %s", rd_kafka_err2str(m->err));
    } else {
        h->st.delivered++;
    }
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    (void)json;
    (void)len;
    ((struct kh *)opaque)->st.stats_events++;
    return 0; /* librdkafka frees json */
}

static rd_kafka_conf_t *make_conf(struct kh *h, char *err, size_t errlen)
{
    char es[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();

#define SET(k, v)                                                                                  \
    do {                                                                                           \
        if (rd_kafka_conf_set(c, (k), (v), es, sizeof(es)) != RD_KAFKA_CONF_OK) {                  \
            drst_seterr(err, errlen, DRST_ERR_INVAL, "kafka: %s", es);                             \
            rd_kafka_conf_destroy(c);                                                              \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)
    SET("bootstrap.servers", h->bootstrap);
    if (h->client_id)
        SET("client.id", h->client_id);
    rd_kafka_conf_set_log_cb(c, quiet_log);
    rd_kafka_conf_set_opaque(c, h);
    rd_kafka_conf_set_stats_cb(c, stats_cb);
    for (size_t i = 0; i < h->nkv; i++) {
        char *eq = strchr(h->kv[i], '=');
        if (!eq || eq == h->kv[i]) {
            drst_seterr(err, errlen, DRST_ERR_INVAL, "kafka: setting '%s' is not key=value",
                        h->kv[i]);
            rd_kafka_conf_destroy(c);
            return NULL;
        }
        *eq = 0;
        if (rd_kafka_conf_set(c, h->kv[i], eq + 1, es, sizeof(es)) != RD_KAFKA_CONF_OK) {
            *eq = '=';
            drst_seterr(err, errlen, DRST_ERR_INVAL, "kafka: %s", es);
            rd_kafka_conf_destroy(c);
            return NULL;
        }
        *eq = '=';
    }
    return c;
}

static void kh_close(drst_stream_t *base)
{
    struct kh *h = (struct kh *)base;
    for (size_t i = 0; i < h->nheld; i++)
        rd_kafka_message_destroy(h->held[i]);
    if (h->cons) {
        /* Leave the group without committing: uncommitted work is redone. */
        h->closing = 1;
        if (h->ev == DRST_STREAM_EV_REVOKE)
            rd_kafka_assign(h->cons, NULL);
        rd_kafka_consumer_close(h->cons);
        rd_kafka_destroy(h->cons);
    }
    if (h->prod) {
        rd_kafka_flush(h->prod, 10000);
        rd_kafka_destroy(h->prod);
    }
    for (size_t i = 0; i < h->nkv; i++)
        free(h->kv[i]);
    free(h->kv);
    free(h->bootstrap);
    free(h->client_id);
    free(h->topic);
    free(h->held);
    free(h->msgs);
    free(h->evparts);
    free(h->evfin);
    free(h->fin);
    free(h);
}

static drst_stream_t *kh_open(const drst_stream_conf_t *conf, char *err, size_t errlen)
{
    struct kh *h;
    if (!conf->bootstrap || !*conf->bootstrap) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "kafka transport: no bootstrap servers given");
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        goto nomem;
    h->base.ops = &drst_transport_kafka;
    h->bootstrap = strdup(conf->bootstrap);
    h->client_id = conf->client_id ? strdup(conf->client_id) : NULL;
    h->kv = conf->nkv ? calloc(conf->nkv, sizeof(char *)) : NULL;
    if (!h->bootstrap || (conf->client_id && !h->client_id) || (conf->nkv && !h->kv))
        goto nomem;
    for (size_t i = 0; i < conf->nkv; i++) {
        if (!(h->kv[i] = strdup(conf->kv[i])))
            goto nomem;
        h->nkv = i + 1;
    }
    h->from_beginning = conf->from_beginning;
    h->session_timeout_ms = conf->session_timeout_ms > 0 ? conf->session_timeout_ms : 6000;
    h->assignor = conf->assignor;
    return &h->base;
nomem:
    if (h)
        kh_close(&h->base);
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "kafka transport: out of memory");
    return NULL;
}

static rd_kafka_t *producer(struct kh *h, char *err, size_t errlen)
{
    char es[512];
    rd_kafka_conf_t *c;

    if (h->prod)
        return h->prod;
    c = make_conf(h, err, errlen);
    if (!c)
        return NULL;
    /* Idempotent: retries never duplicate or reorder; keyed records land
     * where Kafka's Java clients would put them. */
    if (rd_kafka_conf_set(c, "enable.idempotence", "true", es, sizeof(es)) ||
        rd_kafka_conf_set(c, "partitioner", "murmur2_random", es, sizeof(es))) {
        rd_kafka_conf_destroy(c);
        drst_seterr(err, errlen, DRST_ERR_INVAL, "kafka: %s", es);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    h->prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof(es));
    if (!h->prod) {
        rd_kafka_conf_destroy(c);
        drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: cannot create producer: %s", es);
    }
    return h->prod;
}

static drst_err_t kh_partitions(drst_stream_t *base, const char *topic, int32_t *n, char *err,
                                size_t errlen)
{
    struct kh *h = (struct kh *)base;
    rd_kafka_t *rk = h->cons ? h->cons : producer(h, err, errlen);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t e;
    drst_err_t rc = DRST_OK;

    if (!rk)
        return DRST_ERR_TRANSPORT;
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt)
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: topic '%s': %s", topic,
                           rd_kafka_err2str(rd_kafka_last_error()));
    e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (e) {
        rc = drst_seterr(
            err, errlen, e == RD_KAFKA_RESP_ERR__TIMED_OUT ? DRST_ERR_TIMEOUT : DRST_ERR_TRANSPORT,
            "kafka: metadata of '%s' from %s: %s", topic, h->bootstrap, rd_kafka_err2str(e));
    } else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOTFOUND, "kafka: topic '%s': %s", topic,
                         md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "not found");
    } else {
        *n = md->topics[0].partition_cnt;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static drst_err_t kh_produce(drst_stream_t *base, const char *topic, int32_t partition,
                             const void *key, size_t keylen, const void *payload, size_t len,
                             char *err, size_t errlen)
{
    struct kh *h = (struct kh *)base;
    rd_kafka_t *rk = producer(h, err, errlen);
    rd_kafka_resp_err_t e;

    if (!rk)
        return DRST_ERR_TRANSPORT;
    /* rd_kafka_produceva() rather than the RD_KAFKA_V_* varargs macros: those
     * expand to GNU statement expressions, which -Wpedantic rejects. */
    rd_kafka_vu_t vu[5];
    memset(vu, 0, sizeof(vu));
    vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[0].u.cstr = topic;
    vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
    vu[1].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
    vu[2].vtype = RD_KAFKA_VTYPE_KEY;
    vu[2].u.mem.ptr = (void *)key;
    vu[2].u.mem.size = key ? keylen : 0;
    vu[3].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[3].u.mem.ptr = (void *)payload;
    vu[3].u.mem.size = len;
    vu[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[4].u.i = RD_KAFKA_MSG_F_COPY;
    for (int tries = 0;; tries++) {
        rd_kafka_error_t *pe = rd_kafka_produceva(rk, vu, 5);
        e = pe ? rd_kafka_error_code(pe) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (pe)
            rd_kafka_error_destroy(pe);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= 600)
            break;
        rd_kafka_poll(rk, 100); /* serve delivery reports until there is room */
    }
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return drst_seterr(err, errlen, DRST_ERR_BUSY,
                           "kafka: local queue still full after 60 s (%d messages waiting)",
                           rd_kafka_outq_len(rk));
    if (e)
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: produce to '%s': %s", topic,
                           rd_kafka_err2str(e));
    h->st.produced++;
    if ((h->st.produced & 1023) == 0)
        rd_kafka_poll(rk, 0);
    return DRST_OK;
}

static drst_err_t kh_flush(drst_stream_t *base, int timeout_ms, char *err, size_t errlen)
{
    struct kh *h = (struct kh *)base;
    rd_kafka_resp_err_t e;
    if (!h->prod)
        return DRST_OK;
    e = rd_kafka_flush(h->prod, timeout_ms);
    rd_kafka_poll(h->prod, 0);
    if (e)
        return drst_seterr(err, errlen, DRST_ERR_TIMEOUT,
                           "kafka: %d message(s) still undelivered after %d ms (%s)",
                           rd_kafka_outq_len(h->prod), timeout_ms, rd_kafka_err2str(e));
    if (h->st.delivery_failed)
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT,
                           "kafka: %llu message(s) failed delivery (last: %s)",
                           (unsigned long long)h->st.delivery_failed, h->lasterr);
    return DRST_OK;
}

/* Called inside rd_kafka_consumer_poll() on the polling thread. Eager
 * protocol: an assignment is the whole set, a revocation the whole set. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kh *h = opaque;
    size_t k = 0;

    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Committed offsets and their metadata: a partition committed with
         * "eos" already delivered its sentinel to this group. */
        rd_kafka_committed(rk, parts, 10000);
        memset(h->fin, 0, (size_t)h->np);
        for (int i = 0; i < parts->cnt && k < (size_t)h->np; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int fin = tp->metadata_size == sizeof(EOS_META) - 1 &&
                      memcmp(tp->metadata, EOS_META, sizeof(EOS_META) - 1) == 0;
            if (tp->partition < 0 || tp->partition >= h->np)
                continue;
            h->evparts[k] = tp->partition;
            h->evfin[k++] = (uint8_t)fin;
            h->fin[tp->partition] = (uint8_t)fin;
        }
        rd_kafka_assign(rk, parts);
        h->ev = DRST_STREAM_EV_ASSIGN;
    } else {
        for (int i = 0; i < parts->cnt && k < (size_t)h->np; i++)
            if (parts->elems[i].partition >= 0 && parts->elems[i].partition < h->np)
                h->evparts[k++] = parts->elems[i].partition;
        /* Keep the assignment until the caller has committed what we
         * already handed it: the unassign happens when the REVOKE event is
         * taken (librdkafka waits for it), except while closing. */
        if (h->closing)
            rd_kafka_assign(rk, NULL);
        h->ev = DRST_STREAM_EV_REVOKE;
    }
    h->nev = k;
    h->st.rebalances++;
}

static drst_err_t kh_subscribe(drst_stream_t *base, const char *topic, const char *group,
                               const char *member_id, char *err, size_t errlen)
{
    struct kh *h = (struct kh *)base;
    rd_kafka_conf_t *c;
    rd_kafka_topic_partition_list_t *tl;
    rd_kafka_resp_err_t e;
    char es[512], tmo[32];
    drst_err_t rc;
    int32_t np = 0;

    if (h->cons)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "kafka: handle already subscribed");
    if (member_id && !h->client_id && !(h->client_id = strdup(member_id)))
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "kafka: out of memory");
    c = make_conf(h, err, errlen);
    if (!c)
        return DRST_ERR_INVAL;
    snprintf(tmo, sizeof(tmo), "%d", h->session_timeout_ms);
    /* Manual commit after processing (at-least-once); the position of a
     * message advances when poll hands it to us. */
    if (rd_kafka_conf_set(c, "group.id", group, es, sizeof(es)) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", es, sizeof(es)) ||
        rd_kafka_conf_set(c, "auto.offset.reset", h->from_beginning ? "earliest" : "latest", es,
                          sizeof(es)) ||
        rd_kafka_conf_set(c, "session.timeout.ms", tmo, es, sizeof(es)) ||
        rd_kafka_conf_set(c, "partition.assignment.strategy",
                          h->assignor == DRST_ASSIGN_ROUNDROBIN ? "roundrobin" : "range", es,
                          sizeof(es))) {
        rd_kafka_conf_destroy(c);
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "kafka: %s", es);
    }
    /* -X settings win over the defaults above. */
    for (size_t i = 0; i < h->nkv; i++) {
        char *eq = strchr(h->kv[i], '=');
        *eq = 0;
        rd_kafka_conf_set(c, h->kv[i], eq + 1, es, sizeof(es));
        *eq = '=';
    }
    rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    h->cons = rd_kafka_new(RD_KAFKA_CONSUMER, c, es, sizeof(es));
    if (!h->cons) {
        rd_kafka_conf_destroy(c);
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: cannot create consumer: %s",
                           es);
    }
    rd_kafka_poll_set_consumer(h->cons);
    /* Metadata through the consumer itself (no extra producer instance). */
    if ((rc = kh_partitions(base, topic, &np, err, errlen)) != DRST_OK)
        return rc;
    h->np = np;
    h->evparts = calloc((size_t)np, sizeof(*h->evparts));
    h->evfin = calloc((size_t)np, 1);
    h->fin = calloc((size_t)np, 1);
    h->topic = strdup(topic);
    if (!h->evparts || !h->evfin || !h->fin || !h->topic)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "kafka: out of memory");
    tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, topic, RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(h->cons, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    if (e)
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: subscribe to '%s': %s", topic,
                           rd_kafka_err2str(e));
    return DRST_OK;
}

static void take_event(struct kh *h, drst_stream_batch_t *out)
{
    if (h->ev == DRST_STREAM_EV_REVOKE)
        rd_kafka_assign(h->cons, NULL);
    out->ev = h->ev;
    out->parts = h->evparts;
    out->finished = h->ev == DRST_STREAM_EV_ASSIGN ? h->evfin : NULL;
    out->nparts = h->nev;
    h->ev = DRST_STREAM_EV_NONE;
}

static drst_err_t kh_poll(drst_stream_t *base, int timeout_ms, size_t max, drst_stream_batch_t *out,
                          char *err, size_t errlen)
{
    struct kh *h = (struct kh *)base;
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    if (!h->cons)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "kafka: poll before subscribe");
    for (size_t i = 0; i < h->nheld; i++)
        rd_kafka_message_destroy(h->held[i]);
    h->nheld = 0;
    if (h->ev != DRST_STREAM_EV_NONE) {
        take_event(h, out);
        return DRST_OK;
    }
    if (max > h->cap) {
        rd_kafka_message_t **nh = realloc(h->held, max * sizeof(*nh));
        drst_msg_t *nm;
        if (!nh)
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "kafka: out of memory");
        h->held = nh;
        nm = realloc(h->msgs, max * sizeof(*nm));
        if (!nm)
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "kafka: out of memory");
        h->msgs = nm;
        h->cap = max;
    }
    while (n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(h->cons, n ? 0 : timeout_ms);
        if (!m) {
            if (h->ev != DRST_STREAM_EV_NONE && n == 0) {
                take_event(h, out);
                return DRST_OK;
            }
            break;
        }
        if (m->err) {
            rd_kafka_resp_err_t e = m->err;
            rd_kafka_message_destroy(m);
            if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                continue;
            if (rd_kafka_fatal_error(h->cons, NULL, 0))
                return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: consumer: %s",
                                   rd_kafka_err2str(e));
            snprintf(h->lasterr, sizeof(h->lasterr), "%s", rd_kafka_err2str(e));
            continue; /* transient: librdkafka retries */
        }
        h->held[n] = m;
        h->msgs[n].payload = m->payload;
        h->msgs[n].len = m->len;
        h->msgs[n].partition = m->partition;
        h->msgs[n].offset = m->offset;
        n++;
        if (h->ev != DRST_STREAM_EV_NONE)
            break; /* hand the messages over; the event comes next */
    }
    h->nheld = n;
    if (n) {
        out->ev = DRST_STREAM_EV_MSGS;
        out->msgs = h->msgs;
        out->n = n;
        h->st.consumed += n;
    }
    return DRST_OK;
}

static drst_err_t kh_commit(drst_stream_t *base, const int32_t *finished, size_t nfinished,
                            char *err, size_t errlen)
{
    struct kh *h = (struct kh *)base;
    rd_kafka_topic_partition_list_t *asg = NULL;
    rd_kafka_resp_err_t e;
    drst_err_t rc = DRST_OK;

    if (!h->cons)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "kafka: commit before subscribe");
    for (size_t i = 0; i < nfinished; i++)
        if (finished[i] >= 0 && finished[i] < h->np)
            h->fin[finished[i]] = 1;
    e = rd_kafka_assignment(h->cons, &asg);
    if (e)
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: assignment: %s",
                           rd_kafka_err2str(e));
    if (asg->cnt == 0)
        goto out;
    rd_kafka_position(h->cons, asg);
    for (int i = 0; i < asg->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &asg->elems[i];
        if (tp->partition >= 0 && tp->partition < h->np && h->fin[tp->partition]) {
            tp->metadata = malloc(sizeof(EOS_META) - 1);
            if (tp->metadata) {
                memcpy(tp->metadata, EOS_META, sizeof(EOS_META) - 1);
                tp->metadata_size = sizeof(EOS_META) - 1;
            }
        }
    }
    /* Asynchronous in steady state (a lost commit only means redelivery);
     * synchronous when a sentinel is committed, since that ends the stream.
     * rd_kafka_consumer_close() waits for commits still in flight. */
    e = rd_kafka_commit(h->cons, asg, nfinished ? 0 : 1);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        rc = drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "kafka: commit: %s", rd_kafka_err2str(e));
    else
        h->st.commits++;
out:
    rd_kafka_topic_partition_list_destroy(asg);
    return rc;
}

static void kh_stats(drst_stream_t *base, drst_stream_stats_t *out)
{
    *out = ((struct kh *)base)->st;
}

const struct drst_transport_ops drst_transport_kafka = {
    .name = "kafka",
    .open = kh_open,
    .partitions = kh_partitions,
    .produce = kh_produce,
    .flush = kh_flush,
    .subscribe = kh_subscribe,
    .poll = kh_poll,
    .commit = kh_commit,
    .stats = kh_stats,
    .close = kh_close,
};

/* ---------------------------------------------------------------- mock broker */

struct drst_broker {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char *bootstraps;
    drst_tcpfwd_t *fwd; /* fixed bootstrap listener (drst_broker_listen) */
};

drst_broker_t *drst_broker_new(int nbrokers, char *err, size_t errlen)
{
    char es[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    drst_broker_t *b = calloc(1, sizeof(*b));

    if (!b) {
        rd_kafka_conf_destroy(c);
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "broker: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(c, quiet_log);
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es, sizeof(es));
    if (!b->rk) {
        rd_kafka_conf_destroy(c);
        drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "broker: %s", es);
        free(b);
        return NULL;
    }
    b->mc = rd_kafka_mock_cluster_new(b->rk, nbrokers < 1 ? 1 : nbrokers);
    if (!b->mc) {
        drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "broker: cannot start the mock cluster");
        drst_broker_free(b);
        return NULL;
    }
    b->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(b->mc));
    if (!b->bootstraps) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "broker: out of memory");
        drst_broker_free(b);
        return NULL;
    }
    return b;
}

const char *drst_broker_bootstraps(const drst_broker_t *b)
{
    return b->fwd ? drst_tcpfwd_address(b->fwd) : b->bootstraps;
}

const char *drst_broker_cluster_bootstraps(const drst_broker_t *b)
{
    return b->bootstraps;
}

drst_err_t drst_broker_listen(drst_broker_t *b, const char *host, int port, char *err,
                              size_t errlen)
{
    /* librdkafka 2.0.2 binds every mock broker to 127.0.0.1:0 and has no
     * API or test.mock.* property to choose the port, so the fixed address
     * is a byte relay to broker 1. Only the bootstrap connection goes
     * through it: clients then follow the Metadata response to the
     * brokers' own (ephemeral, loopback) addresses. */
    char tmp[256];
    const char *bs = b->bootstraps, *colon;
    char *end;
    long tport;
    size_t hl;
    if (b->fwd)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "broker: already listening on %s",
                           drst_tcpfwd_address(b->fwd));
    if (!host || !*host)
        host = "127.0.0.1";
    if (port <= 0 || port > 65535)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "broker: port %d: expected 1..65535", port);
    hl = strcspn(bs, ",");
    if (hl >= sizeof(tmp))
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "broker: mock bootstrap too long");
    memcpy(tmp, bs, hl);
    tmp[hl] = 0;
    colon = strrchr(tmp, ':');
    if (!colon)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "broker: mock bootstrap '%s' has no port",
                           tmp);
    tport = strtol(colon + 1, &end, 10);
    if (*end || tport <= 0 || tport > 65535)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "broker: mock bootstrap '%s' has no port",
                           tmp);
    tmp[colon - tmp] = 0;
    b->fwd = drst_tcpfwd_new(host, port, tmp, (int)tport, err, errlen);
    if (!b->fwd) {
        char why[DRST_ERRLEN];
        snprintf(why, sizeof(why), "%s", err && errlen ? err : "");
        return drst_seterr(err, errlen, DRST_ERR_IO, "broker: %s", why);
    }
    return DRST_OK;
}

drst_err_t drst_broker_create_topic(drst_broker_t *b, const char *topic, int32_t partitions,
                                    char *err, size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mc, topic, partitions, 1);
    if (e)
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "broker: create topic '%s': %s", topic,
                           rd_kafka_err2str(e));
    return DRST_OK;
}

drst_err_t drst_broker_set_down(drst_broker_t *b, int32_t id, int down, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e =
        down ? rd_kafka_mock_broker_set_down(b->mc, id) : rd_kafka_mock_broker_set_up(b->mc, id);
    if (e)
        return drst_seterr(err, errlen, DRST_ERR_TRANSPORT, "broker %d: %s", (int)id,
                           rd_kafka_err2str(e));
    return DRST_OK;
}

drst_err_t drst_broker_inject_produce_errors(drst_broker_t *b, int count, char *err, size_t errlen)
{
    rd_kafka_resp_err_t *errs;
    if (count <= 0)
        return DRST_OK;
    errs = malloc((size_t)count * sizeof(*errs));
    if (!errs)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "broker: out of memory");
    for (int i = 0; i < count; i++)
        errs[i] = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
    /* ApiKey 0 is Produce in the Kafka protocol. */
    rd_kafka_mock_push_request_errors_array(b->mc, 0, (size_t)count, errs);
    free(errs);
    return DRST_OK;
}

void drst_broker_free(drst_broker_t *b)
{
    if (!b)
        return;
    drst_tcpfwd_free(b->fwd); /* stop relaying before the brokers go */
    if (b->mc)
        rd_kafka_mock_cluster_destroy(b->mc);
    if (b->rk)
        rd_kafka_destroy(b->rk);
    free(b->bootstraps);
    free(b);
}
