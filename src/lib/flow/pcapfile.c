/* Fast path for classic pcap files: walk the records of a memory-mapped file
 * instead of two fread() calls per packet through libpcap (which cost more
 * than the whole flow engine). pcapng and anything unusual still go through
 * libpcap (capture.c). Every record header and length is checked against the
 * bytes left; a record running past the end is reported with its offset. */
#include <string.h>

#include "common/error_int.h"
#include "flow/flow_int.h"

static uint32_t get32(const uint8_t *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    if (swap)
        v = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    return v;
}

int pcapfile_probe(const uint8_t *buf, size_t len, int *swap, int *nsec)
{
    if (len < 4)
        return 0;
    uint32_t m;
    memcpy(&m, buf, 4);
    switch (m) {
    case 0xa1b2c3d4u:
        *swap = 0, *nsec = 0;
        return 1;
    case 0xd4c3b2a1u:
        *swap = 1, *nsec = 0;
        return 1;
    case 0xa1b23c4du:
        *swap = 0, *nsec = 1;
        return 1;
    case 0x4d3cb2a1u:
        *swap = 1, *nsec = 1;
        return 1;
    default:
        return 0;
    }
}

drst_err_t pcapfile_scan(const char *name, const uint8_t *buf, size_t len, pcapfile_filter_fn flt,
                         void *fctx, pcapfile_release_fn rel, void *rctx, drst_flow_engine_t *e,
                         uint64_t max, volatile int *stop, uint64_t *npk, char *err, size_t errlen)
{
    size_t released = 0;
    int swap, nsec;
    *npk = 0;
    if (!pcapfile_probe(buf, len, &swap, &nsec))
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "'%s': not a pcap file", name);
    if (len < 24)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "'%s': not a readable capture: file header cut at %zu of 24 bytes", name,
                           len);
    int linktype = (int)(get32(buf + 20, swap) & 0xffff);
    size_t off = 24;
    uint64_t n = 0;
    while (off < len) {
        if ((n & 4095) == 0 && stop && *stop)
            break;
        if (rel && off - released >= (32u << 20)) {
            rel(rctx, off);
            released = off;
        }
        if (max && n >= max)
            break;
        if (len - off < 16)
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "'%s': corrupt or truncated after packet %llu (byte offset %zu): "
                               "record header cut (%zu of 16 bytes)",
                               name, (unsigned long long)n, off, len - off);
        const uint8_t *h = buf + off;
#if defined(__GNUC__)
        /* The hardware prefetcher stops at 4 KB page boundaries; ask for the
         * bytes ~20 records ahead (a hint: never faults, even past the end).
         * -10 % CPU time on the 2.12 M-packet benchmark capture (3 A/B runs
         * of 15-21 alternations, medians 330/380/350 -> 270/350/310 ms). */
        __builtin_prefetch(h + 2048);
#endif
        uint64_t sec = get32(h, swap), frac = get32(h + 4, swap);
        uint32_t incl = get32(h + 8, swap), orig = get32(h + 12, swap);
        if (incl > len - off - 16)
            return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                               "'%s': corrupt or truncated after packet %llu (byte offset %zu): "
                               "record of %u bytes, %zu left",
                               name, (unsigned long long)n, off, incl, len - off - 16);
        const uint8_t *pkt = h + 16;
        off += 16 + (size_t)incl;
        if (flt && !flt(fctx, pkt, incl, orig))
            continue;
        uint64_t ts = sec * 1000000000ull + (nsec ? frac : frac * 1000ull);
        if (drst_flow_engine_packet(e, linktype, pkt, incl, orig, ts) != DRST_OK)
            break;
        n++;
    }
    *npk = n;
    return DRST_OK;
}
