/* JSON Lines transport: one file is one topic of one partition. A producer
 * appends one payload per line; a consumer reads lines in batches and sees
 * DRST_ERR_EOF at the end of the file. Offsets are 0-based line numbers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "stream/stream_int.h"

struct jh {
    struct drst_stream base;
    char *path;
    FILE *out, *in;
    char *line;
    size_t linecap;
    char *arena;
    size_t arenacap;
    drst_msg_t *msgs;
    size_t msgcap;
    int64_t lineno;
    drst_stream_stats_t st;
};

static void jh_close(drst_stream_t *base)
{
    struct jh *h = (struct jh *)base;
    if (h->out && h->out != stdout)
        fclose(h->out);
    else if (h->out)
        fflush(h->out);
    if (h->in && h->in != stdin)
        fclose(h->in);
    free(h->path);
    free(h->line);
    free(h->arena);
    free(h->msgs);
    free(h);
}

static drst_stream_t *jh_open(const drst_stream_conf_t *conf, char *err, size_t errlen)
{
    struct jh *h;
    if (!conf->path || !*conf->path) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "jsonl transport: no file path given");
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h || !(h->path = strdup(conf->path))) {
        free(h);
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "jsonl transport: out of memory");
        return NULL;
    }
    return &h->base;
}

static drst_err_t jh_partitions(drst_stream_t *base, const char *topic, int32_t *n, char *err,
                                size_t errlen)
{
    (void)base;
    (void)topic;
    (void)err;
    (void)errlen;
    *n = 1;
    return DRST_OK;
}

static drst_err_t jh_produce(drst_stream_t *base, const char *topic, int32_t partition,
                             const void *key, size_t keylen, const void *payload, size_t len,
                             char *err, size_t errlen)
{
    struct jh *h = (struct jh *)base;
    (void)topic;
    (void)partition;
    (void)key;
    (void)keylen;
    if (memchr(payload, '\n', len) || (len >= 4 && memcmp(payload, DRST_RECORD_BIN_MAGIC, 4) == 0))
        return drst_seterr(err, errlen, DRST_ERR_UNSUPPORTED,
                           "%s: JSON Lines carry one text record per line (binary or multi-line "
                           "payload refused)",
                           h->path);
    if (!h->out) {
        h->out = strcmp(h->path, "-") == 0 ? stdout : fopen(h->path, "w");
        if (!h->out)
            return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open '%s'", h->path);
    }
    if (fwrite(payload, 1, len, h->out) != len || fputc('\n', h->out) == EOF)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write '%s'", h->path);
    h->st.produced++;
    h->st.delivered++;
    return DRST_OK;
}

static drst_err_t jh_flush(drst_stream_t *base, int timeout_ms, char *err, size_t errlen)
{
    struct jh *h = (struct jh *)base;
    (void)timeout_ms;
    if (h->out && fflush(h->out) != 0)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write '%s'", h->path);
    return DRST_OK;
}

static drst_err_t jh_subscribe(drst_stream_t *base, const char *topic, const char *group,
                               const char *member_id, char *err, size_t errlen)
{
    struct jh *h = (struct jh *)base;
    (void)topic;
    (void)group;
    (void)member_id;
    if (h->in)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "%s: already subscribed", h->path);
    h->in = strcmp(h->path, "-") == 0 ? stdin : fopen(h->path, "r");
    if (!h->in)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open '%s'", h->path);
    return DRST_OK;
}

static drst_err_t jh_poll(drst_stream_t *base, int timeout_ms, size_t max, drst_stream_batch_t *out,
                          char *err, size_t errlen)
{
    struct jh *h = (struct jh *)base;
    size_t n = 0, used = 0;
    ssize_t got;
    (void)timeout_ms;

    memset(out, 0, sizeof(*out));
    if (!h->in)
        return drst_seterr(err, errlen, DRST_ERR_STATE, "%s: poll before subscribe", h->path);
    if (max > h->msgcap) {
        drst_msg_t *nm = realloc(h->msgs, max * sizeof(*nm));
        if (!nm)
            return drst_seterr(err, errlen, DRST_ERR_NOMEM, "jsonl: out of memory");
        h->msgs = nm;
        h->msgcap = max;
    }
    while (n < max && (got = getline(&h->line, &h->linecap, h->in)) >= 0) {
        size_t len = (size_t)got;
        h->lineno++;
        while (len && (h->line[len - 1] == '\n' || h->line[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        if (used + len > h->arenacap) {
            size_t nc = h->arenacap ? h->arenacap : 65536;
            char *na;
            while (nc < used + len)
                nc *= 2;
            na = realloc(h->arena, nc);
            if (!na)
                return drst_seterr(err, errlen, DRST_ERR_NOMEM, "jsonl: out of memory");
            h->arena = na;
            h->arenacap = nc;
        }
        memcpy(h->arena + used, h->line, len);
        h->msgs[n].payload = (const void *)(uintptr_t)used;
        h->msgs[n].len = len;
        h->msgs[n].partition = 0;
        h->msgs[n].offset = h->lineno - 1;
        used += len;
        n++;
    }
    if (ferror(h->in))
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read '%s'", h->path);
    for (size_t i = 0; i < n; i++)
        h->msgs[i].payload = h->arena + (uintptr_t)h->msgs[i].payload;
    if (n == 0)
        return DRST_ERR_EOF;
    out->ev = DRST_STREAM_EV_MSGS;
    out->msgs = h->msgs;
    out->n = n;
    h->st.consumed += n;
    return DRST_OK;
}

static drst_err_t jh_commit(drst_stream_t *base, const int32_t *finished, size_t nfinished,
                            char *err, size_t errlen)
{
    (void)finished;
    (void)nfinished;
    (void)err;
    (void)errlen;
    ((struct jh *)base)->st.commits++;
    return DRST_OK;
}

static void jh_stats(drst_stream_t *base, drst_stream_stats_t *out)
{
    *out = ((struct jh *)base)->st;
}

const struct drst_transport_ops drst_transport_jsonl = {
    .name = "jsonl",
    .open = jh_open,
    .partitions = jh_partitions,
    .produce = jh_produce,
    .flush = jh_flush,
    .subscribe = jh_subscribe,
    .poll = jh_poll,
    .commit = jh_commit,
    .stats = jh_stats,
    .close = jh_close,
};
