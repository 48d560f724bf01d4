/* Flow engine: TCP statistics, client side, timeouts, eviction, interim
 * records, summaries, sharding over workers. Packets are made here as raw
 * IPv4 (LINKTYPE_RAW). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "flow/flow_int.h"
#include "test_flow_util.h"

/* IPv4 TCP (or UDP when flags < 0) from host a:ap to host b:bp. */
static void pkt(drst_flow_engine_t *e, double t, uint8_t a, uint16_t ap, uint8_t b, uint16_t bp,
                int flags, uint32_t seq, uint32_t ack, uint16_t len)
{
    uint8_t p[60];
    int udp = flags < 0;
    uint16_t tot = (uint16_t)(20 + (udp ? 8 : 20) + len);
    memset(p, 0, sizeof(p));
    p[0] = 0x45, p[2] = (uint8_t)(tot >> 8), p[3] = (uint8_t)tot, p[8] = 64;
    p[9] = udp ? 17 : 6;
    p[12] = 10, p[15] = a, p[16] = 10, p[19] = b;
    p[20] = (uint8_t)(ap >> 8), p[21] = (uint8_t)ap, p[22] = (uint8_t)(bp >> 8);
    p[23] = (uint8_t)bp;
    if (!udp) {
        p[24] = (uint8_t)(seq >> 24), p[25] = (uint8_t)(seq >> 16), p[26] = (uint8_t)(seq >> 8);
        p[27] = (uint8_t)seq;
        p[28] = (uint8_t)(ack >> 24), p[29] = (uint8_t)(ack >> 16), p[30] = (uint8_t)(ack >> 8);
        p[31] = (uint8_t)ack;
        p[32] = 5 << 4, p[33] = (uint8_t)flags;
    }
    uint64_t ts = (uint64_t)(t * 1e6) * 1000ull;
    assert_int_equal(drst_flow_engine_packet(e, LT_RAW, p, udp ? 28 : 40, tot, ts), DRST_OK);
}

static drst_flow_engine_t *mk(struct got *g, unsigned workers, double idle, double active,
                              uint32_t maxf, double interval)
{
    drst_flow_config_t c;
    char err[DRST_ERRLEN];
    drst_flow_config_init(&c);
    c.workers = workers, c.idle_timeout = idle, c.active_timeout = active;
    c.max_flows = maxf, c.interval = interval, c.ring_size = 64;
    drst_flow_sink_t s = {on_flow, on_sum, g, NULL};
    drst_flow_engine_t *e = drst_flow_engine_new(&c, &s, err, sizeof(err));
    assert_non_null(e);
    return e;
}

static void finish(drst_flow_engine_t *e)
{
    assert_int_equal(drst_flow_engine_finish(e, NULL, 0), DRST_OK);
}

static void tcp_connection_statistics(void **state)
{
    struct got *g = calloc(1, sizeof(*g));
    (void)state;
    drst_flow_engine_t *e = mk(g, 1, 60, 0, 100, 0);
    /* client .1:1000 -> server .2:80, RTT 10 ms on the handshake */
    pkt(e, 1.000, 1, 1000, 2, 80, 0x02, 100, 0, 0);   /* SYN */
    pkt(e, 1.010, 2, 80, 1, 1000, 0x12, 500, 101, 0); /* SYN-ACK: c2s sample 10 ms */
    pkt(e, 1.012, 1, 1000, 2, 80, 0x10, 101, 501, 0); /* ACK: s2c sample 2 ms */
    pkt(e, 1.020, 1, 1000, 2, 80, 0x18, 101, 501, 100);
    pkt(e, 1.050, 2, 80, 1, 1000, 0x10, 501, 201, 0); /* acks exactly: sample 30 ms */
    pkt(e, 1.060, 1, 1000, 2, 80, 0x18, 201, 501, 100);
    pkt(e, 1.300, 1, 1000, 2, 80, 0x18, 201, 501, 100); /* retransmission */
    pkt(e, 1.310, 2, 80, 1, 1000, 0x10, 501, 301, 0);   /* Karn: no sample */
    pkt(e, 1.400, 2, 80, 1, 1000, 0x04, 501, 0, 0);     /* RST */
    finish(e);
    assert_int_equal(g->n, 1);
    drst_flow_record_t *r = &g->rec[0];
    assert_int_equal(r->state, DRST_FLOW_STATE_RESET);
    assert_int_equal(r->client_port, 1000);
    assert_int_equal(r->server_port, 80);
    assert_int_equal(r->c2s.packets, 5);
    assert_int_equal(r->s2c.packets, 4);
    assert_int_equal(r->c2s.payload, 300);
    assert_int_equal(r->c2s.bytes, 5 * 40 + 300);
    assert_int_equal(r->c2s.retx_packets, 1);
    assert_int_equal(r->c2s.retx_bytes, 100);
    assert_int_equal(r->c2s.syn, 1);
    assert_int_equal(r->s2c.rst, 1);
    assert_int_equal(r->c2s.rtt_count, 2);
    assert_float_equal(r->c2s.rtt_min, 0.010, 1e-9);
    assert_float_equal(r->c2s.rtt_max, 0.030, 1e-9);
    assert_float_equal(r->c2s.rtt_avg, 0.020, 1e-9);
    assert_float_equal(r->c2s.rtt_stdev, 0.010, 1e-6);
    assert_int_equal(r->s2c.rtt_count, 1);
    assert_float_equal(r->s2c.rtt_avg, 0.002, 1e-9);
    assert_float_equal(r->duration, 0.4, 1e-9);
    /* c2s arrivals at 0, 12, 20, 60, 300 ms: mean gap 75 ms */
    assert_float_equal(r->c2s.iat_mean, 0.075, 1e-9);
    drst_flow_engine_free(e);
    free(g);
}

static void client_is_the_syn_sender(void **state)
{
    struct got *g = calloc(1, sizeof(*g));
    (void)state;
    drst_flow_engine_t *e = mk(g, 1, 60, 0, 100, 0);
    pkt(e, 1.0, 2, 80, 1, 1000, 0x10, 9, 9, 0);   /* stray packet from .2 first */
    pkt(e, 1.1, 1, 1000, 2, 80, 0x02, 100, 0, 0); /* then .1 opens */
    pkt(e, 2.0, 3, 53, 4, 4000, -1, 0, 0, 10);    /* UDP: first sender is client */
    finish(e);
    assert_int_equal(g->n, 2);
    for (size_t i = 0; i < g->n; i++) {
        if (g->rec[i].proto == 6) {
            assert_int_equal(g->rec[i].client_ip[3], 1);
            assert_int_equal(g->rec[i].c2s.syn, 1);
            assert_int_equal(g->rec[i].s2c.packets, 1);
        } else {
            assert_int_equal(g->rec[i].client_port, 53);
            assert_int_equal(g->rec[i].c2s.payload, 10);
        }
    }
    drst_flow_engine_free(e);
    free(g);
}

static void timeouts_eviction_interim(void **state)
{
    struct got *g = calloc(1, sizeof(*g));
    (void)state;
    drst_flow_engine_t *e = mk(g, 1, 10, 1, 2, 0);
    pkt(e, 0.0, 1, 1, 2, 2, -1, 0, 0, 1);
    pkt(e, 0.5, 1, 3, 2, 2, -1, 0, 0, 1);
    pkt(e, 0.6, 1, 1, 2, 2, -1, 0, 0, 1); /* flow 1 touched: flow 3 is now oldest */
    pkt(e, 0.7, 1, 4, 2, 2, -1, 0, 0, 1); /* table full (2): evicts port 3 */
    assert_int_equal(g->n, 1);
    assert_int_equal(g->rec[0].state, DRST_FLOW_STATE_EVICTED);
    assert_int_equal(g->rec[0].client_port, 3);
    pkt(e, 1.2, 1, 1, 2, 2, -1, 0, 0, 1); /* port 1 is 1.2 s old: interim #1 */
    assert_int_equal(g->n, 2);
    assert_int_equal(g->rec[1].interim, 1);
    assert_int_equal(g->rec[1].c2s.packets, 3);
    pkt(e, 30.0, 1, 5, 2, 2, -1, 0, 0, 1); /* everything else idle > 10 s */
    finish(e);
    size_t timeouts = 0;
    for (size_t i = 0; i < g->n; i++)
        timeouts += g->rec[i].state == DRST_FLOW_STATE_TIMEOUT;
    assert_int_equal(timeouts, 2);
    drst_flow_counters_t c;
    drst_flow_engine_counters(e, &c);
    assert_int_equal(c.evicted, 1);
    assert_int_equal(c.flows, 4);
    assert_int_equal(c.interim_records, 1);
    assert_int_equal(c.flow_records, 5); /* 4 final + 1 interim */
    drst_flow_engine_free(e);
    free(g);
    /* the default table: 248-byte flows + one 4-byte bucket each */
    struct got *g2 = calloc(1, sizeof(*g2));
    e = mk(g2, 1, 60, 0, 1u << 20, 0);
    assert_int_equal(drst_flow_engine_bytes_per_flow(e), 252);
    drst_flow_engine_free(e);
    free(g2);
}

/* A table whose size is not a power of two (buckets are exactly max_flows):
 * both directions of every flow find it, and eviction unlinks flows from the
 * right bucket chains. */
static void odd_sized_table(void **state)
{
    struct got *g = calloc(1, sizeof(*g));
    (void)state;
    drst_flow_engine_t *e = mk(g, 1, 60, 0, 1500, 0);
    assert_int_equal(drst_flow_engine_bytes_per_flow(e), 252);
    for (int i = 0; i < 1500; i++)
        pkt(e, 1.0 + i * 1e-4, 1, (uint16_t)(1000 + i), 2, 53, -1, 0, 0, 10);
    for (int i = 1499; i >= 0; i--) /* replies, newest flow first */
        pkt(e, 2.0 + (1499 - i) * 1e-4, 2, 53, 1, (uint16_t)(1000 + i), -1, 0, 0, 20);
    for (int i = 0; i < 500; i++) /* evicts the 500 flows replied to first */
        pkt(e, 3.0 + i * 1e-4, 1, (uint16_t)(5000 + i), 2, 53, -1, 0, 0, 10);
    finish(e);
    drst_flow_counters_t c;
    drst_flow_engine_counters(e, &c);
    assert_int_equal(c.flows, 2000);
    assert_int_equal(c.evicted, 500);
    assert_int_equal(g->n, 2000);
    size_t both = 0, evicted = 0;
    for (size_t i = 0; i < g->n; i++) {
        const drst_flow_record_t *r = &g->rec[i];
        if (r->client_port < 5000) {
            both += r->c2s.packets == 1 && r->s2c.packets == 1 && r->s2c.payload == 20;
            evicted += r->state == DRST_FLOW_STATE_EVICTED && r->client_port >= 2000;
        }
    }
    assert_int_equal(both, 1500);
    assert_int_equal(evicted, 500);
    drst_flow_engine_free(e);
    free(g);
}

static uint64_t total_packets(const struct got *g)
{
    uint64_t t = 0;
    for (size_t i = 0; i < g->n; i++)
        t += g->rec[i].c2s.packets + g->rec[i].s2c.packets;
    return t;
}

static void workers_agree_and_summaries_merge(void **state)
{
    struct got *g1 = calloc(1, sizeof(*g1)), *g3 = calloc(1, sizeof(*g3));
    (void)state;
    drst_flow_engine_t *e1 = mk(g1, 1, 60, 0, 1000, 1);
    drst_flow_engine_t *e3 = mk(g3, 3, 60, 0, 1000, 1);
    uint32_t x = 12345;
    for (int i = 0; i < 3000; i++) {
        x = x * 1103515245u + 12345u;
        uint16_t port = (uint16_t)(1000 + (x >> 16) % 300);
        double t = 100.0 + i * 0.001;
        pkt(e1, t, 1, port, 2, 53, -1, 0, 0, 20);
        pkt(e3, t, 1, port, 2, 53, -1, 0, 0, 20);
    }
    finish(e1);
    finish(e3);
    assert_int_equal(g1->n, g3->n);
    assert_int_equal(total_packets(g1), 3000);
    assert_int_equal(total_packets(g3), 3000);
    assert_int_equal(g1->nsum, 3);
    assert_int_equal(g3->nsum, 3);
    uint64_t p1 = 0, p3 = 0, n1 = 0, n3 = 0;
    for (size_t i = 0; i < 3; i++) {
        p1 += g1->sum[i].packets, p3 += g3->sum[i].packets;
        n1 += g1->sum[i].new_flows, n3 += g3->sum[i].new_flows;
    }
    assert_int_equal(p1, 3000);
    assert_int_equal(p3, 3000);
    assert_int_equal(n1, g1->n);
    assert_int_equal(n3, g1->n);
    drst_flow_engine_free(e1);
    drst_flow_engine_free(e3);
    free(g1);
    free(g3);
}

/* Idle flows end in the interval of their deadline whatever the worker
 * count: a worker that sees no packet after a deadline still learns of it
 * from the interval ticks. */
static void idle_timeouts_land_in_their_interval(void **state)
{
    (void)state;
    for (unsigned w = 1; w <= 3; w += 2) {
        struct got *g = calloc(1, sizeof(*g));
        drst_flow_engine_t *e = mk(g, w, 2, 0, 1000, 1);
        for (int i = 0; i < 50; i++) /* 50 flows, deadlines 102.005 .. 102.495 */
            pkt(e, 100.005 + i * 0.01, 1, (uint16_t)(2000 + i), 2, 53, -1, 0, 0, 20);
        for (int i = 0; i < 20; i++) /* one flow keeps the clock going */
            pkt(e, 100.6 + i * 0.3, 3, 9999, 2, 53, -1, 0, 0, 20);
        finish(e);
        assert_int_equal(g->nsum, 7); /* intervals 100 .. 106 */
        for (size_t i = 0; i < g->nsum; i++) {
            uint64_t want = g->sum[i].start == 102.0 ? 50 : g->sum[i].start == 106.0 ? 1 : 0;
            assert_int_equal(g->sum[i].ended_flows, want);
        }
        drst_flow_engine_free(e);
        free(g);
    }
}

static void bad_config_is_refused(void **state)
{
    drst_flow_config_t c;
    char err[DRST_ERRLEN];
    (void)state;
    drst_flow_config_init(&c);
    c.workers = 0;
    assert_null(drst_flow_engine_new(&c, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "workers"));
    drst_flow_config_init(&c);
    c.ring_size = 100;
    assert_null(drst_flow_engine_new(&c, NULL, err, sizeof(err)));
    drst_flow_engine_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_connection_statistics),
        cmocka_unit_test(client_is_the_syn_sender),
        cmocka_unit_test(timeouts_eviction_interim),
        cmocka_unit_test(odd_sized_table),
        cmocka_unit_test(workers_agree_and_summaries_merge),
        cmocka_unit_test(idle_timeouts_land_in_their_interval),
        cmocka_unit_test(bad_config_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
