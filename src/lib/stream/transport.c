/* Transport table, dispatch wrappers, key partitioner and dead-letter sinks. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "stream/stream_int.h"

static const struct drst_transport_ops *const transports[] = {
    &drst_transport_inproc,
    &drst_transport_kafka,
    &drst_transport_jsonl,
};

const struct drst_transport_ops *drst_transport_find(const char *name)
{
    for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++)
        if (name && strcmp(transports[i]->name, name) == 0)
            return transports[i];
    return NULL;
}

drst_stream_t *drst_stream_open(const struct drst_transport_ops *ops,
                                const drst_stream_conf_t *conf, char *err, size_t errlen)
{
    drst_stream_t *h;
    if (!ops || !conf) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "stream: no transport or configuration");
        return NULL;
    }
    h = ops->open(conf, err, errlen);
    if (h)
        h->ops = ops;
    return h;
}

drst_err_t drst_stream_partitions(drst_stream_t *h, const char *topic, int32_t *n, char *err,
                                  size_t errlen)
{
    return h->ops->partitions(h, topic, n, err, errlen);
}

drst_err_t drst_stream_produce(drst_stream_t *h, const char *topic, int32_t partition,
                               const void *key, size_t keylen, const void *payload, size_t len,
                               char *err, size_t errlen)
{
    return h->ops->produce(h, topic, partition, key, keylen, payload, len, err, errlen);
}

drst_err_t drst_stream_flush(drst_stream_t *h, int timeout_ms, char *err, size_t errlen)
{
    return h->ops->flush(h, timeout_ms, err, errlen);
}

drst_err_t drst_stream_subscribe(drst_stream_t *h, const char *topic, const char *group,
                                 const char *member_id, char *err, size_t errlen)
{
    return h->ops->subscribe(h, topic, group, member_id, err, errlen);
}

drst_err_t drst_stream_poll(drst_stream_t *h, int timeout_ms, size_t max, drst_stream_batch_t *out,
                            char *err, size_t errlen)
{
    return h->ops->poll(h, timeout_ms, max ? max : 1, out, err, errlen);
}

drst_err_t drst_stream_commit(drst_stream_t *h, const int32_t *finished, size_t nfinished,
                              char *err, size_t errlen)
{
    return h->ops->commit(h, finished, nfinished, err, errlen);
}

void drst_stream_stats(drst_stream_t *h, drst_stream_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    h->ops->stats(h, out);
}

void drst_stream_close(drst_stream_t *h)
{
    if (h)
        h->ops->close(h);
}

/* Kafka's murmur2 (the Java client's default partitioner, librdkafka's
 * "murmur2_random"). */
int32_t drst_partition_for_key(const void *key, size_t keylen, int32_t partitions)
{
    const unsigned char *d = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)keylen;
    size_t i = 0;

    for (; i + 4 <= keylen; i += 4) {
        uint32_t k = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16 |
                     (uint32_t)d[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (keylen & 3) {
    case 3:
        h ^= (uint32_t)d[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)d[i + 1] << 8;
        /* fall through */
    case 1:
        h ^= d[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)((h & 0x7fffffffu) % (uint32_t)partitions);
}

/* ---------------------------------------------------------------- dead letters */

struct drst_dlq {
    pthread_mutex_t mu;
    FILE *f;
    drst_stream_t *prod;
    char *topic;
    uint64_t count;
    char *buf;
    size_t cap;
};

static drst_dlq_t *dlq_alloc(char *err, size_t errlen)
{
    drst_dlq_t *q = calloc(1, sizeof(*q));
    if (!q) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "dead-letter sink: out of memory");
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    return q;
}

drst_dlq_t *drst_dlq_open_file(const char *path, char *err, size_t errlen)
{
    drst_dlq_t *q = dlq_alloc(err, errlen);
    if (!q)
        return NULL;
    q->f = fopen(path, "w");
    if (!q->f) {
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open dead-letter file '%s'", path);
        drst_dlq_free(q);
        return NULL;
    }
    return q;
}

drst_dlq_t *drst_dlq_open_topic(drst_stream_t *producer, const char *topic, char *err,
                                size_t errlen)
{
    drst_dlq_t *q = dlq_alloc(err, errlen);
    if (!q)
        return NULL;
    q->prod = producer;
    q->topic = strdup(topic);
    if (!q->topic) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "dead-letter sink: out of memory");
        drst_dlq_free(q);
        return NULL;
    }
    return q;
}

drst_err_t drst_dlq_put(drst_dlq_t *q, const void *payload, size_t len, const char *source,
                        const char *reason, char *err, size_t errlen)
{
    size_t need, n = 0, w;
    drst_err_t rc = DRST_OK;

    if (!source)
        source = "";
    if (!reason)
        reason = "";
    need = 64 + 6 * (len + strlen(source) + strlen(reason));
    pthread_mutex_lock(&q->mu);
    if (need > q->cap) {
        char *nb = realloc(q->buf, need);
        if (!nb) {
            pthread_mutex_unlock(&q->mu);
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "dead-letter sink: out of memory");
        }
        q->buf = nb;
        q->cap = need;
    }
    memcpy(q->buf, "{\"reason\":", 10);
    n = 10;
    w = drst_json_escape(reason, strlen(reason), q->buf + n, q->cap - n);
    n += w;
    memcpy(q->buf + n, ",\"source\":", 10);
    n += 10;
    n += drst_json_escape(source, strlen(source), q->buf + n, q->cap - n);
    memcpy(q->buf + n, ",\"payload\":", 11);
    n += 11;
    n += drst_json_escape(payload, len, q->buf + n, q->cap - n);
    q->buf[n++] = '}';
    if (q->f) {
        q->buf[n++] = '\n';
        if (fwrite(q->buf, 1, n, q->f) != n || fflush(q->f) != 0)
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write dead letter");
    } else {
        rc = drst_stream_produce(q->prod, q->topic, -1, NULL, 0, q->buf, n, err, errlen);
    }
    if (rc == DRST_OK)
        q->count++;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

uint64_t drst_dlq_count(const drst_dlq_t *q)
{
    return q->count;
}

void drst_dlq_free(drst_dlq_t *q)
{
    if (!q)
        return;
    if (q->f)
        fclose(q->f);
    free(q->topic);
    free(q->buf);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
