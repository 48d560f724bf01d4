/* Packet header parser: link layer -> IP -> L4, bounds-checked at every step.
 *
 * Every read is preceded by a check against caplen. Lengths used for
 * statistics come from the IP headers and the wire length, never from the
 * captured length, so snaplen-truncated captures give full byte counts.
 * A header cut by the snaplen is only a problem when the flow key lies in or
 * behind it; then the packet is counted as truncated and not attributed. */
#include <string.h>
#include <xxhash.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "flow/flow_int.h"

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* An IPv4 address into a 16-byte field as one 16-byte store: pkt_hash()
 * and pkt_owner() read the field in 8- or 16-byte loads (compilers merge
 * smaller ones), and a load spanning two stores cannot be forwarded from
 * the store buffer: it waits for both to reach the cache, which took a
 * sixth of a worker's time. */
static inline void put_ip4(uint8_t *dst, const uint8_t *a)
{
    uint32_t v;
    memcpy(&v, a, 4);
#if defined(__SSE2__)
    /* compilers split a 16-byte memcpy of {v, 0} into two 8-byte stores */
    _mm_storeu_si128((__m128i *)(void *)dst, _mm_cvtsi32_si128((int)v));
#else
    uint8_t w[16] = {0};
    memcpy(w, &v, 4);
    memcpy(dst, w, 16);
#endif
}

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ETH_ARP  0x0806

/* L4 at data[off..caplen), `l4len` bytes of it on the wire per the IP header. */
static enum pkt_kind parse_l4(const uint8_t *d, uint32_t caplen, uint32_t off, uint32_t l4len,
                              pkt_t *p, drst_flow_counters_t *c)
{
    uint32_t have = caplen > off ? caplen - off : 0;
    const uint8_t *h = d + off;

    switch (p->proto) {
    case 6: /* TCP */
        if (have < 4) {
            c->truncated++;
            return PKT_TRUNCATED;
        }
        p->sport = rd16(h);
        p->dport = rd16(h + 2);
        if (have >= 14) {
            uint32_t doff = (uint32_t)(h[12] >> 4) * 4;
            p->seq = rd32(h + 4);
            p->ack = rd32(h + 8);
            p->tcp_flags = h[13] & 0x3f;
            p->has_tcp = 1;
            if (doff < 20) { /* as tshark: no conversation for a bogus header */
                c->malformed++;
                return PKT_MALFORMED;
            }
            p->payload = l4len > doff ? l4len - doff : 0;
        } else {
            /* ports only: cannot know flags or the header length */
            c->truncated++;
            p->payload = l4len > 20 ? l4len - 20 : 0;
        }
        return PKT_FLOW;
    case 17:  /* UDP */
    case 136: /* UDP-Lite */
    case 132: /* SCTP: ports in the same place */
        if (have < 4) {
            c->truncated++;
            return PKT_TRUNCATED;
        }
        p->sport = rd16(h);
        p->dport = rd16(h + 2);
        {
            uint32_t hl = p->proto == 132 ? 12 : 8;
            p->payload = l4len > hl ? l4len - hl : 0;
        }
        return PKT_FLOW;
    case 1:  /* ICMP */
    case 58: /* ICMPv6 */
        if (have < 2) {
            c->truncated++;
            return PKT_TRUNCATED;
        }
        /* Echo request and reply of one identifier form one flow. */
        if (have >= 6 && ((p->proto == 1 && (h[0] == 8 || h[0] == 0)) ||
                          (p->proto == 58 && (h[0] == 128 || h[0] == 129))))
            p->sport = p->dport = rd16(h + 4);
        p->payload = l4len > 8 ? l4len - 8 : 0;
        return PKT_FLOW;
    default:
        /* GRE, ESP, AH, OSPF, PIM...: a flow per address pair and protocol */
        p->payload = l4len;
        return PKT_FLOW;
    }
}

static enum pkt_kind parse_ipv4(const uint8_t *d, uint32_t caplen, uint32_t off, uint32_t wirelen,
                                pkt_t *p, drst_flow_counters_t *c)
{
    if (caplen < off + 20) {
        c->truncated++;
        return PKT_TRUNCATED;
    }
    const uint8_t *h = d + off;
    if ((h[0] >> 4) != 4) {
        c->malformed++;
        return PKT_MALFORMED;
    }
    uint32_t ihl = (uint32_t)(h[0] & 0x0f) * 4;
    if (ihl < 20) {
        c->malformed++;
        return PKT_MALFORMED;
    }
    c->ipv4++;
    uint32_t tot = rd16(h + 2);
    /* Total length 0 (TSO/BIG TCP captures): the wire length is the truth. */
    if (tot == 0)
        tot = wirelen > off ? wirelen - off : 0;
    if (tot < ihl) {
        c->malformed++;
        return PKT_MALFORMED;
    }
    p->ipver = 4;
    p->proto = h[9];
    c->by_ipproto[p->proto]++;
    put_ip4(p->src, h + 12);
    put_ip4(p->dst, h + 16);
    uint16_t frag = rd16(h + 6);
    if (frag & 0x1fff) {
        c->frag_later++;
        return PKT_FRAG_LATER;
    }
    if (frag & 0x2000) {
        c->frag_first++;
        p->frag_first = 1;
    }
    if (caplen < off + ihl) { /* options cut: ports unreachable */
        c->truncated++;
        return PKT_TRUNCATED;
    }
    return parse_l4(d, caplen, off + ihl, tot - ihl, p, c);
}

static enum pkt_kind parse_ipv6(const uint8_t *d, uint32_t caplen, uint32_t off, uint32_t wirelen,
                                pkt_t *p, drst_flow_counters_t *c)
{
    if (caplen < off + 40) {
        c->truncated++;
        return PKT_TRUNCATED;
    }
    const uint8_t *h = d + off;
    if ((h[0] >> 4) != 6) {
        c->malformed++;
        return PKT_MALFORMED;
    }
    c->ipv6++;
    uint32_t plen = rd16(h + 4);
    /* Payload length 0: jumbogram or BIG TCP; the wire length is the truth. */
    if (plen == 0)
        plen = wirelen > off + 40 ? wirelen - off - 40 : 0;
    uint8_t nh = h[6];
    memcpy(p->src, h + 8, 16);
    memcpy(p->dst, h + 24, 16);
    p->ipver = 6;
    off += 40;
    /* Extension-header chain, bounded so a crafted loop cannot spin. */
    for (int n = 0; n < 16; n++) {
        uint32_t el;
        switch (nh) {
        case 0:   /* hop-by-hop */
        case 43:  /* routing */
        case 60:  /* destination options */
        case 135: /* mobility */
        case 139: /* HIP */
        case 140: /* shim6 */
            if (caplen < off + 2)
                goto cut;
            el = ((uint32_t)d[off + 1] + 1) * 8;
            break;
        case 51: /* AH: length in 4-byte units minus 2 */
            if (caplen < off + 2)
                goto cut;
            el = ((uint32_t)d[off + 1] + 2) * 4;
            break;
        case 44: /* fragment */
            if (caplen < off + 8)
                goto cut;
            el = 8;
            if (rd16(d + off + 2) & 0xfff8) {
                p->proto = d[off];
                c->by_ipproto[p->proto]++;
                c->frag_later++;
                return PKT_FRAG_LATER;
            }
            if (d[off + 3] & 1) {
                c->frag_first++;
                p->frag_first = 1;
            }
            break;
        default:
            p->proto = nh;
            c->by_ipproto[nh]++;
            return parse_l4(d, caplen, off, plen, p, c);
        }
        if (el > plen) {
            c->malformed++;
            return PKT_MALFORMED;
        }
        nh = d[off];
        off += el;
        plen -= el;
    }
    c->malformed++; /* more than 16 extension headers */
    return PKT_MALFORMED;
cut:
    c->truncated++;
    return PKT_TRUNCATED;
}

static enum pkt_kind by_ethertype(uint16_t et, const uint8_t *d, uint32_t caplen, uint32_t off,
                                  uint32_t wirelen, pkt_t *p, drst_flow_counters_t *c)
{
    if (et == ETH_IPV4)
        return parse_ipv4(d, caplen, off, wirelen, p, c);
    if (et == ETH_IPV6)
        return parse_ipv6(d, caplen, off, wirelen, p, c);
    c->non_ip++;
    if (et == ETH_ARP)
        c->arp++;
    return PKT_NON_IP;
}

static enum pkt_kind by_version(const uint8_t *d, uint32_t caplen, uint32_t off, uint32_t wirelen,
                                pkt_t *p, drst_flow_counters_t *c)
{
    if (caplen < off + 1) {
        c->truncated++;
        return PKT_TRUNCATED;
    }
    switch (d[off] >> 4) {
    case 4:
        return parse_ipv4(d, caplen, off, wirelen, p, c);
    case 6:
        return parse_ipv6(d, caplen, off, wirelen, p, c);
    default:
        c->malformed++;
        return PKT_MALFORMED;
    }
}

enum pkt_kind pkt_parse(int linktype, const uint8_t *d, uint32_t caplen, uint32_t wirelen,
                        uint64_t ts_ns, pkt_t *p, drst_flow_counters_t *c)
{
    /* Inline 16-byte stores, not a memset call: its 64-byte stores do not
     * forward to the 8-byte reads of pkt_hash() (see put_ip4). */
    static const pkt_t zero;
    *p = zero;
    p->ts_ns = ts_ns;
    if (wirelen < caplen) /* a lying header: trust what we hold */
        wirelen = caplen;
    p->wirelen = wirelen;
    c->packets++;
    c->bytes += wirelen;

    switch (linktype) {
    case LT_ETHERNET: {
        if (caplen < 14)
            break;
        uint32_t off = 12;
        uint16_t et = rd16(d + off);
        int tags = 0;
        /* 802.1Q, 802.1ad (QinQ) and the old 0x9100: the outer id is the key */
        while ((et == 0x8100 || et == 0x88a8 || et == 0x9100) && tags < 4) {
            if (caplen < off + 6)
                goto cut;
            if (tags == 0)
                p->vlan = rd16(d + off + 2) & 0x0fff;
            et = rd16(d + off + 4);
            off += 4;
            tags++;
        }
        if (et < 0x0600) { /* 802.3 length field: LLC/SNAP, not IP for us */
            c->non_ip++;
            return PKT_NON_IP;
        }
        return by_ethertype(et, d, caplen, off + 2, wirelen, p, c);
    }
    case LT_LINUX_SLL:
        if (caplen < 16)
            break;
        return by_ethertype(rd16(d + 14), d, caplen, 16, wirelen, p, c);
    case LT_LINUX_SLL2:
        if (caplen < 20)
            break;
        return by_ethertype(rd16(d), d, caplen, 20, wirelen, p, c);
    case LT_NULL:
    case LT_LOOP: {
        if (caplen < 4)
            break;
        /* Address family in host order (NULL) or network order (LOOP); the
         * writer's byte order is unknown, so accept both. */
        uint32_t fam = rd32(d);
        if (fam > 0xffff)
            fam = (uint32_t)d[0] | ((uint32_t)d[1] << 8) | ((uint32_t)d[2] << 16) |
                  ((uint32_t)d[3] << 24);
        if (fam == 2)
            return parse_ipv4(d, caplen, 4, wirelen, p, c);
        if (fam == 10 || fam == 24 || fam == 28 || fam == 30)
            return parse_ipv6(d, caplen, 4, wirelen, p, c);
        c->non_ip++;
        return PKT_NON_IP;
    }
    case LT_ARCNET:
    case LT_ARCNET_LINUX: {
        /* source, destination, (Linux: 2-byte offset), protocol id; the
         * RFC 1201 ids add a split flag and a sequence number (and 4 more
         * bytes for an "exception" packet); the RFC 1051 ids add nothing. */
        uint32_t off = linktype == LT_ARCNET ? 2 : 4;
        if (caplen < off + 1)
            break;
        uint8_t pid = d[off++];
        if (pid == 0xd4 || pid == 0xd5 || pid == 0xdd) {
            if (caplen < off + 1)
                break;
            off += d[off] == 0xff ? 7 : 3;
        }
        if (pid == 0xd4 || pid == 0xf0)
            return parse_ipv4(d, caplen, off, wirelen, p, c);
        if (pid == 0xdd)
            return parse_ipv6(d, caplen, off, wirelen, p, c);
        c->non_ip++;
        if (pid == 0xd5 || pid == 0xf1)
            c->arp++;
        return PKT_NON_IP;
    }
    case LT_RAW:
    case LT_RAW_OLD:
    case LT_RAW_OLD2:
        return by_version(d, caplen, 0, wirelen, p, c);
    case LT_IPV4:
        return parse_ipv4(d, caplen, 0, wirelen, p, c);
    case LT_IPV6:
        return parse_ipv6(d, caplen, 0, wirelen, p, c);
    default:
        c->unsupported_link++;
        return PKT_BAD_LINK;
    }
cut:
    c->truncated++;
    return PKT_TRUNCATED;
}

uint64_t pkt_hash(const pkt_t *p)
{
    /* Canonical order: the smaller (address, port) endpoint first, so both
     * directions hash alike. Any fixed total order will do: compare the
     * addresses as two native 64-bit words. The key is written as five
     * 8-byte words (a, b, then ports, VLAN and protocol) so that the hash's
     * 8-byte reads of it forward from the store buffer (see put_ip4); its
     * bytes are those of the struct {a[16], b[16], pa, pb, vlan, proto, pad}
     * of earlier versions. */
    uint64_t s0, s1, d0, d1, k[5];
    memcpy(&s0, p->src, 8);
    memcpy(&s1, p->src + 8, 8);
    memcpy(&d0, p->dst, 8);
    memcpy(&d1, p->dst + 8, 8);
    int src_first = s0 != d0 ? s0 < d0 : s1 != d1 ? s1 < d1 : p->sport <= p->dport;
    uint16_t pa = src_first ? p->sport : p->dport, pb = src_first ? p->dport : p->sport;
    k[0] = src_first ? s0 : d0;
    k[1] = src_first ? s1 : d1;
    k[2] = src_first ? d0 : s0;
    k[3] = src_first ? d1 : s1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    k[4] =
        (uint64_t)pa << 48 | (uint64_t)pb << 32 | (uint64_t)p->vlan << 16 | (uint64_t)p->proto << 8;
#else
    k[4] = (uint64_t)pa | (uint64_t)pb << 16 | (uint64_t)p->vlan << 32 | (uint64_t)p->proto << 48;
#endif
    return XXH3_64bits(k, sizeof(k));
}

uint32_t pkt_owner(const pkt_t *p, uint32_t n)
{
    uint64_t s0, s1, d0, d1;
    memcpy(&s0, p->src, 8);
    memcpy(&s1, p->src + 8, 8);
    memcpy(&d0, p->dst, 8);
    memcpy(&d1, p->dst + 8, 8);
    /* sums and xors do not depend on the direction */
    uint64_t x = (s0 + d0) ^ (s1 + d1) * 0x9e3779b97f4a7c15ull ^
                 ((uint64_t)((uint32_t)p->sport + p->dport) << 32 |
                  (uint64_t)(p->sport ^ p->dport) << 16 | p->proto) ^
                 (uint64_t)p->vlan << 48;
    x ^= x >> 33; /* murmur3's finaliser */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (uint32_t)(((x >> 32) * n) >> 32);
}
