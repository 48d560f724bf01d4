/* Shared by the flow-plane unit tests: a sink that keeps what the engine
 * exports. Include after cmocka.h. */
#ifndef DRST_TEST_FLOW_UTIL_H
#define DRST_TEST_FLOW_UTIL_H

#include "flow/flow_int.h"

#define MAXREC 4096

struct got {
    drst_flow_record_t rec[MAXREC];
    size_t n;
    drst_flow_summary_t sum[64];
    size_t nsum;
};

/* Flow ids are zeroed: they carry the worker, which tests comparing worker
 * counts must not see. */
static void on_flow(void *o, const drst_flow_record_t *r)
{
    struct got *g = o;
    assert_true(g->n < MAXREC);
    g->rec[g->n] = *r;
    g->rec[g->n++].flow_id = 0;
}

static void on_sum(void *o, const drst_flow_summary_t *s)
{
    struct got *g = o;
    assert_true(g->nsum < 64);
    g->sum[g->nsum++] = *s;
}

#endif
