/* The flow plane's SPSC ring: in-place writes and reads across two threads
 * keep every descriptor, in order, through wrap-around, full-ring waits and
 * consumer sleeps (wake on threshold and on a forced publish). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <cmocka.h>

#include "flow/flow_int.h"

#define N 200000u

struct ctx {
    spsc_t *r;
    uint64_t got, bad;
};

static void *consumer(void *arg)
{
    struct ctx *c = arg;
    unsigned idle = 0;
    for (;;) {
        const pkt_t *b;
        uint32_t n = spsc_peek(c->r, &b, 7); /* odd batch: releases cross the wrap */
        if (!n) {
            if (++idle > 16) {
                spsc_wait(c->r);
                idle = 0;
            }
            continue;
        }
        idle = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (b[i].ctl == 2) {
                spsc_release(c->r, i + 1);
                return NULL;
            }
            if (b[i].seq != (uint32_t)c->got || b[i].ts_ns != c->got * 3)
                c->bad++;
            c->got++;
        }
        spsc_release(c->r, n);
    }
}

static void put(spsc_t *r, const pkt_t *p)
{
    pkt_t *s;
    while (!(s = spsc_wslot(r))) {
        spsc_publish(r, 1);
        sched_yield();
    }
    *s = *p;
    spsc_wnext(r);
}

static void run(uint32_t size, uint32_t publish_every, int pause_every)
{
    struct ctx c = {spsc_new(size), 0, 0};
    pthread_t th;
    assert_non_null(c.r);
    assert_int_equal(pthread_create(&th, NULL, consumer, &c), 0);
    pkt_t p;
    memset(&p, 0, sizeof(p));
    for (uint32_t i = 0; i < N; i++) {
        p.seq = i;
        p.ts_ns = (uint64_t)i * 3;
        put(c.r, &p);
        if ((i + 1) % publish_every == 0)
            spsc_publish(c.r, 0); /* below the wake threshold: may not wake */
        if (pause_every && i % (uint32_t)pause_every == 0) {
            spsc_publish(c.r, 1); /* a flush: the consumer must see everything */
            for (int k = 0; k < 10; k++)
                sched_yield(); /* let it drain and fall asleep */
        }
    }
    p.ctl = 2;
    put(c.r, &p);
    spsc_publish(c.r, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(c.got, N);
    assert_int_equal(c.bad, 0);
    spsc_free(c.r);
}

static void ring_keeps_order(void **state)
{
    (void)state;
    run(64, 5, 0);      /* small ring: the producer waits for room often */
    run(1024, 32, 997); /* the consumer sleeps between bursts */
    run(2, 1, 101);     /* smallest ring, wake threshold 1 */
}

static void ring_refuses_bad_sizes(void **state)
{
    (void)state;
    assert_null(spsc_new(0));
    assert_null(spsc_new(1));
    assert_null(spsc_new(48));
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(ring_keeps_order),
        cmocka_unit_test(ring_refuses_bad_sizes),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
