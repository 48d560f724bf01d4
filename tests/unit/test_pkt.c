/* Packet parser: every link type, IPv4/IPv6 corner cases, truncation at
 * every length. Packets are built byte by byte here (no shared captures). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "flow/flow_int.h"

static size_t put_ipv4(uint8_t *b, uint8_t proto, uint16_t tot, uint16_t frag, int optwords)
{
    memset(b, 0, 20 + 4 * (size_t)optwords);
    b[0] = (uint8_t)(0x40 | (5 + optwords));
    b[2] = (uint8_t)(tot >> 8);
    b[3] = (uint8_t)tot;
    b[6] = (uint8_t)(frag >> 8);
    b[7] = (uint8_t)frag;
    b[8] = 64;
    b[9] = proto;
    b[12] = 10, b[15] = 1; /* 10.0.0.1 */
    b[16] = 10, b[19] = 2; /* 10.0.0.2 */
    return 20 + 4 * (size_t)optwords;
}

static size_t put_tcp(uint8_t *b, uint16_t sp, uint16_t dp, uint32_t seq, uint8_t flags)
{
    memset(b, 0, 20);
    b[0] = (uint8_t)(sp >> 8), b[1] = (uint8_t)sp;
    b[2] = (uint8_t)(dp >> 8), b[3] = (uint8_t)dp;
    b[4] = (uint8_t)(seq >> 24), b[5] = (uint8_t)(seq >> 16), b[6] = (uint8_t)(seq >> 8);
    b[7] = (uint8_t)seq;
    b[12] = 5 << 4;
    b[13] = flags;
    return 20;
}

static size_t eth(uint8_t *b, uint16_t et)
{
    memset(b, 0, 12);
    b[12] = (uint8_t)(et >> 8);
    b[13] = (uint8_t)et;
    return 14;
}

static void ipv4_tcp_over_ethernet(void **state)
{
    uint8_t b[200];
    pkt_t p;
    drst_flow_counters_t c = {0};
    (void)state;
    size_t n = eth(b, 0x0800);
    n += put_ipv4(b + n, 6, 20 + 20 + 100, 0, 1); /* with 4 bytes of options */
    n += put_tcp(b + n, 1234, 80, 1000, 0x18);
    n += 100;
    assert_int_equal(pkt_parse(LT_ETHERNET, b, (uint32_t)n, (uint32_t)n, 7, &p, &c), PKT_FLOW);
    assert_int_equal(p.ipver, 4);
    assert_int_equal(p.proto, 6);
    assert_int_equal(p.sport, 1234);
    assert_int_equal(p.dport, 80);
    assert_int_equal(p.seq, 1000);
    assert_int_equal(p.tcp_flags, 0x18);
    assert_int_equal(p.payload, 100 - 4); /* tot counted 20 + 20 + 100 with 24-byte IP header */
    assert_int_equal(p.wirelen, n);
    assert_int_equal(c.by_ipproto[6], 1);
    /* snaplen 54 (cuts the TCP header after 16 bytes): key and flags kept,
     * payload from the IP length, wire length from the header */
    assert_int_equal(pkt_parse(LT_ETHERNET, b, 54, 2000, 7, &p, &c), PKT_FLOW);
    assert_int_equal(p.has_tcp, 1);
    assert_int_equal(p.wirelen, 2000);
    assert_int_equal(p.payload, 96);
}

static void every_truncation_is_safe(void **state)
{
    uint8_t full[200];
    drst_flow_counters_t c = {0};
    pkt_t p;
    (void)state;
    size_t n = eth(full, 0x8100); /* VLAN-tagged IPv4 UDP */
    full[14] = 0x00, full[15] = 0x2a, full[16] = 0x08, full[17] = 0x00;
    n = 18;
    n += put_ipv4(full + n, 17, 28, 0, 0);
    memset(full + n, 0, 8);
    full[n] = 0x13, full[n + 1] = 0x88, full[n + 3] = 53;
    n += 8;
    for (size_t cut = 0; cut <= n; cut++) {
        /* a heap copy of exactly `cut` bytes so ASan sees any overread */
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, full, cut);
        enum pkt_kind k = pkt_parse(LT_ETHERNET, b, (uint32_t)cut, (uint32_t)n, 0, &p, &c);
        if (cut >= 18 + 20 + 4) {
            assert_int_equal(k, PKT_FLOW);
            assert_int_equal(p.vlan, 42);
            assert_int_equal(p.sport, 5000);
            assert_int_equal(p.dport, 53);
        } else {
            assert_int_equal(k, PKT_TRUNCATED);
        }
        free(b);
    }
}

static void ipv4_fragments(void **state)
{
    uint8_t b[100];
    pkt_t p;
    drst_flow_counters_t c = {0};
    (void)state;
    size_t n = put_ipv4(b, 17, 48, 0x2000, 0); /* MF, offset 0 */
    memset(b + n, 0, 28);
    b[n + 1] = 7;
    assert_int_equal(pkt_parse(LT_RAW, b, 48, 48, 0, &p, &c), PKT_FLOW);
    assert_int_equal(p.frag_first, 1);
    assert_int_equal(p.sport, 7);
    put_ipv4(b, 17, 48, 0x0003, 0); /* offset 24 */
    assert_int_equal(pkt_parse(LT_IPV4, b, 48, 48, 0, &p, &c), PKT_FRAG_LATER);
    assert_int_equal(c.frag_first, 1);
    assert_int_equal(c.frag_later, 1);
    assert_int_equal(c.by_ipproto[17], 2);
}

static void ipv4_malformed(void **state)
{
    uint8_t b[60];
    pkt_t p;
    drst_flow_counters_t c = {0};
    (void)state;
    put_ipv4(b, 6, 40, 0, 0);
    b[0] = 0x44; /* IHL 16 bytes */
    assert_int_equal(pkt_parse(LT_RAW, b, 40, 40, 0, &p, &c), PKT_MALFORMED);
    put_ipv4(b, 6, 10, 0, 0); /* total length < header */
    assert_int_equal(pkt_parse(LT_RAW, b, 40, 40, 0, &p, &c), PKT_MALFORMED);
    b[0] = 0x55; /* version 5 */
    assert_int_equal(pkt_parse(LT_RAW, b, 40, 40, 0, &p, &c), PKT_MALFORMED);
    put_ipv4(b, 6, 40, 0, 0);
    put_tcp(b + 20, 1, 2, 0, 0x02);
    b[32] = 2 << 4; /* TCP data offset 8 bytes */
    assert_int_equal(pkt_parse(LT_RAW, b, 40, 40, 0, &p, &c), PKT_MALFORMED);
    assert_int_equal(c.malformed, 4);
    assert_int_equal(pkt_parse(12345, b, 40, 40, 0, &p, &c), PKT_BAD_LINK);
    assert_int_equal(c.unsupported_link, 1);
    /* TSO/BIG TCP: total length 0 means "see the wire length" */
    put_ipv4(b, 6, 0, 0, 0);
    put_tcp(b + 20, 1, 2, 0, 0x10);
    assert_int_equal(pkt_parse(LT_RAW, b, 40, 64040, 0, &p, &c), PKT_FLOW);
    assert_int_equal(p.payload, 64000);
}

static size_t put_ipv6(uint8_t *b, uint8_t nh, uint16_t plen)
{
    memset(b, 0, 40);
    b[0] = 0x60;
    b[4] = (uint8_t)(plen >> 8);
    b[5] = (uint8_t)plen;
    b[6] = nh;
    b[8] = 0x20, b[9] = 0x01, b[23] = 1;
    b[24] = 0x20, b[25] = 0x01, b[39] = 2;
    return 40;
}

static void ipv6_extension_chain(void **state)
{
    uint8_t b[200];
    pkt_t p;
    drst_flow_counters_t c = {0};
    (void)state;
    /* hop-by-hop (8) -> destination options (16) -> fragment (first) -> TCP */
    size_t n = put_ipv6(b, 0, 8 + 16 + 8 + 20 + 10);
    memset(b + n, 0, 8 + 16 + 8);
    b[n] = 60, b[n + 1] = 0;
    b[n + 8] = 44, b[n + 9] = 1;
    b[n + 24] = 6, b[n + 27] = 1; /* fragment: offset 0, M=1 */
    n += 32;
    n += put_tcp(b + n, 443, 50000, 5, 0x12);
    n += 10;
    assert_int_equal(pkt_parse(LT_IPV6, b, (uint32_t)n, (uint32_t)n, 0, &p, &c), PKT_FLOW);
    assert_int_equal(p.ipver, 6);
    assert_int_equal(p.proto, 6);
    assert_int_equal(p.sport, 443);
    assert_int_equal(p.payload, 10);
    assert_int_equal(p.frag_first, 1);
    /* later fragment */
    b[40 + 24 + 2] = 0, b[40 + 24 + 3] = 0x08 | 1;
    assert_int_equal(pkt_parse(LT_IPV6, b, (uint32_t)n, (uint32_t)n, 0, &p, &c), PKT_FRAG_LATER);
    /* an extension header longer than the payload */
    put_ipv6(b, 0, 8);
    b[41] = 5;
    assert_int_equal(pkt_parse(LT_IPV6, b, 100, 100, 0, &p, &c), PKT_MALFORMED);
    /* a chain of 20 hop-by-hop headers is cut off */
    put_ipv6(b, 0, 160);
    memset(b + 40, 0, 160);
    assert_int_equal(pkt_parse(LT_IPV6, b, 200, 200, 0, &p, &c), PKT_MALFORMED);
    /* ICMPv6 echo: identifier is the flow's port */
    put_ipv6(b, 58, 8);
    memset(b + 40, 0, 8);
    b[40] = 128, b[44] = 0x12, b[45] = 0x34;
    assert_int_equal(pkt_parse(LT_RAW, b, 48, 48, 0, &p, &c), PKT_FLOW);
    assert_int_equal(p.sport, 0x1234);
}

static void cooked_and_loopback(void **state)
{
    uint8_t b[100];
    pkt_t p;
    drst_flow_counters_t c = {0};
    (void)state;
    memset(b, 0, 16);
    b[14] = 0x08; /* SLL protocol 0x0800 */
    put_ipv4(b + 16, 17, 28, 0, 0);
    memset(b + 36, 0, 8);
    b[37] = 9;
    assert_int_equal(pkt_parse(LT_LINUX_SLL, b, 44, 44, 0, &p, &c), PKT_FLOW);
    assert_int_equal(p.sport, 9);
    memset(b, 0, 20);
    b[0] = 0x08;
    put_ipv4(b + 20, 17, 28, 0, 0);
    memset(b + 40, 0, 8);
    assert_int_equal(pkt_parse(LT_LINUX_SLL2, b, 48, 48, 0, &p, &c), PKT_FLOW);
    b[0] = 0x08, b[1] = 0x06; /* ARP */
    assert_int_equal(pkt_parse(LT_LINUX_SLL2, b, 48, 48, 0, &p, &c), PKT_NON_IP);
    assert_int_equal(c.arp, 1);
    /* NULL: family 2 little-endian and big-endian both accepted */
    memset(b, 0, 4);
    b[0] = 2;
    put_ipv4(b + 4, 17, 28, 0, 0);
    memset(b + 24, 0, 8);
    assert_int_equal(pkt_parse(LT_NULL, b, 32, 32, 0, &p, &c), PKT_FLOW);
    b[0] = 0, b[3] = 2;
    assert_int_equal(pkt_parse(LT_LOOP, b, 32, 32, 0, &p, &c), PKT_FLOW);
}

static void hash_is_direction_free(void **state)
{
    pkt_t a, b;
    (void)state;
    memset(&a, 0, sizeof(a));
    a.src[0] = 10, a.dst[0] = 11, a.sport = 5, a.dport = 6, a.proto = 6, a.vlan = 3;
    b = a;
    memcpy(b.src, a.dst, 16);
    memcpy(b.dst, a.src, 16);
    b.sport = 6, b.dport = 5;
    assert_true(pkt_hash(&a) == pkt_hash(&b));
    b.vlan = 4;
    assert_true(pkt_hash(&a) != pkt_hash(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_tcp_over_ethernet), cmocka_unit_test(every_truncation_is_safe),
        cmocka_unit_test(ipv4_fragments),         cmocka_unit_test(ipv4_malformed),
        cmocka_unit_test(ipv6_extension_chain),   cmocka_unit_test(cooked_and_loopback),
        cmocka_unit_test(hash_is_direction_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
