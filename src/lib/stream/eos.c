/* End-of-stream bookkeeping for the consumer stop rule. */
#include <stdlib.h>
#include <string.h>

#include "drst/stream.h"

drst_err_t drst_eos_init(drst_eos_t *e, int32_t np)
{
    memset(e, 0, sizeof(*e));
    if (np < 1)
        return DRST_ERR_INVAL;
    e->owned = calloc((size_t)np, 1);
    e->ended = calloc((size_t)np, 1);
    e->pending = calloc((size_t)np, sizeof(*e->pending));
    if (!e->owned || !e->ended || !e->pending) {
        drst_eos_release(e);
        return DRST_ERR_NOMEM;
    }
    e->np = np;
    return DRST_OK;
}

void drst_eos_release(drst_eos_t *e)
{
    free(e->owned);
    free(e->ended);
    free(e->pending);
    memset(e, 0, sizeof(*e));
}

void drst_eos_apply(drst_eos_t *e, const drst_stream_batch_t *b)
{
    if (b->ev == DRST_STREAM_EV_ASSIGN) {
        /* An assignment is the whole set; a partition counts as ended only
         * if the group committed its sentinel (else it is redelivered). */
        memset(e->owned, 0, (size_t)e->np);
        for (size_t i = 0; i < b->nparts; i++) {
            int32_t p = b->parts[i];
            if (p < 0 || p >= e->np)
                continue;
            e->owned[p] = 1;
            e->ended[p] = b->finished && b->finished[i];
        }
    } else if (b->ev == DRST_STREAM_EV_REVOKE) {
        for (size_t i = 0; i < b->nparts; i++)
            if (b->parts[i] >= 0 && b->parts[i] < e->np)
                e->owned[b->parts[i]] = 0;
        e->npending = 0; /* commits of revoked partitions are not ours any more */
    }
}

void drst_eos_mark(drst_eos_t *e, int32_t p)
{
    if (p < 0 || p >= e->np || e->ended[p])
        return;
    e->ended[p] = 1;
    e->pending[e->npending++] = p;
}

int drst_eos_done(const drst_eos_t *e)
{
    int any = 0;
    for (int32_t p = 0; p < e->np; p++) {
        if (!e->owned[p])
            continue;
        if (!e->ended[p])
            return 0;
        any = 1;
    }
    return any;
}
