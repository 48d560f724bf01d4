/* Flow table of one worker: lookup, per-flow statistics, timeouts, eviction.
 *
 * Memory layout, chosen to keep a live flow under 256 bytes (248-byte state
 * + a 4-byte bucket, 252.4 bytes measured with the chunk index):
 *  - flows live in 4096-flow chunks allocated on demand (no allocation per
 *    packet, one per 4096 new flows at most) and are named by a 32-bit index;
 *  - a bucket array of indexes (one per flow of the configured maximum, 4
 *    bytes each) with chaining through the flow's `next` field;
 *  - a doubly linked LRU list (by last packet) gives the oldest idle flow in
 *    O(1) for idle timeouts and for eviction when the table is full;
 *  - per-direction times are 32-bit microsecond offsets from the flow start,
 *    which is why a flow older than AGE_SPLIT is exported and restarted.
 *
 * TCP sequence analysis keeps only the highest sequence number sent per
 * direction (snd_max): a segment carrying data that starts below snd_max is
 * a retransmission, unless it arrives sooner than the direction's minimum
 * RTT after the previous segment, which is reordering (as Wireshark's
 * analysis does). RTT uses one timed segment per direction at a time (the
 * classic BSD/Karn scheme): the sample is the time from the segment to the
 * ACK that ends exactly at it, as tcptrace matches ACKs to segments, so each
 * sample is one tcptrace would also take; an ACK beyond it, or a
 * retransmission of the timed data (Karn), cancels the timing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "flow/flow_int.h"

#define NIL         UINT32_MAX
#define CHUNK_SHIFT 12
#define CHUNK       (1u << CHUNK_SHIFT)
/* Chunks are mapped directly: 4096 x 248 bytes is a whole number of pages,
 * and malloc's 16-byte header would cost one more page per chunk (1 B per
 * flow). Pages are touched, so counted, only as flows are first used. */
#define CHUNK_BYTES  (sizeof(struct flow) * CHUNK)
#define AGE_SPLIT_NS (4000ull * 1000000000ull) /* < 2^32 microseconds */

enum { DF_SEQ = 1, DF_RTTP = 2, DF_FIN = 4 };
enum { FF_SYN = 1, FF_RST = 2 };

/* Per-direction state: 88 bytes. Counters that can pass 2^32 within a flow's
 * 4000 s life at line rate are 64-bit; times and the RTT sum are 32-bit
 * microseconds (see rtt_add for why the sum cannot overflow). */
struct dir {
    uint64_t pkts, bytes, payload, retx_bytes;
    uint32_t retx_pkts, ooo;
    uint32_t snd_max, rtt_seq, rtt_ts, last_us;
    uint32_t rtt_n, rtt_min, rtt_max;
    uint32_t rtt_sum; /* microseconds */
    float rtt_sumsq;  /* microseconds^2 */
    float iat_sumsq;  /* seconds^2 */
    uint16_t syn, fin, rst;
    uint8_t flags; /* DF_* */
};

/* A live flow: 72-byte key and bookkeeping + 2 directions = 248 bytes, so
 * that with its 4-byte hash bucket it stays under 256 bytes. */
struct flow {
    uint8_t a[16], b[16]; /* a = client */
    uint16_t pa, pb, vlan;
    uint8_t proto, ipver;
    uint32_t next;         /* hash chain or free list */
    uint32_t lprev, lnext; /* LRU list */
    uint16_t interim;      /* interim exports so far */
    uint8_t fl;            /* FF_* */
    uint8_t pad;
    uint64_t start_ns;
    /* first packet of each direction (microseconds from start_ns); kept out
     * of struct dir, where 8-byte alignment would round it up to 96 bytes */
    uint32_t first_us[2];
    struct dir d[2]; /* 0: client to server */
};

_Static_assert(sizeof(struct dir) == 88, "a flow direction is 88 bytes");
_Static_assert(sizeof(struct flow) == 248, "a live flow + its bucket must stay <= 256 bytes");
_Static_assert(AGE_SPLIT_NS / 1000 < UINT32_MAX, "flow times are 32-bit microseconds");

struct flowtab {
    uint64_t idle_ns, active_ns, interval_ns, check_ns;
    uint32_t max_flows, live;
    unsigned wid;
    struct flow **chunk;
    uint32_t nchunks, chunks_cap, used, free_head;
    uint32_t *bucket, nbucket;
    uint32_t lru_head, lru_tail;
    uint64_t now_ns, next_check;
    uint64_t cur_idx;
    int have_idx;
    drst_flow_summary_t part;
    drst_flow_counters_t cnt;
    ft_emit_flow_fn ef;
    ft_emit_summary_fn es;
    void *ctx;
};

/* 16-byte address equality as two 8-byte loads (memcmp is a call here). */
static inline int addr_eq(const uint8_t *x, const uint8_t *y)
{
    uint64_t a[2], b[2];
    memcpy(a, x, 16);
    memcpy(b, y, 16);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
}

/* Bucket of hash h: the low 32 bits scaled to [0, nbucket) (Lemire's
 * multiply-shift; the engine shards on the high 32 bits). */
static inline uint32_t *bucket_of(const flowtab_t *ft, uint64_t h)
{
    return &ft->bucket[((h & 0xffffffffu) * ft->nbucket) >> 32];
}

static inline struct flow *F(const flowtab_t *ft, uint32_t i)
{
    return &ft->chunk[i >> CHUNK_SHIFT][i & (CHUNK - 1)];
}

flowtab_t *ft_new(const drst_flow_config_t *cfg, uint32_t max_flows, unsigned wid,
                  ft_emit_flow_fn ef, ft_emit_summary_fn es, void *ctx)
{
    flowtab_t *ft = calloc(1, sizeof(*ft));
    if (!ft)
        return NULL;
    ft->idle_ns = (uint64_t)(cfg->idle_timeout * 1e9);
    ft->active_ns = (uint64_t)(cfg->active_timeout * 1e9);
    ft->interval_ns = (uint64_t)(cfg->interval * 1e9);
    /* Idle checks every 1/16 of the idle timeout, at most every 10 ms. */
    ft->check_ns = ft->idle_ns / 16;
    if (ft->check_ns > 10000000ull)
        ft->check_ns = 10000000ull;
    ft->max_flows = max_flows ? max_flows : 1;
    ft->wid = wid;
    /* One bucket per flow (load factor <= 1), not rounded up to a power of
     * two, which would cost up to 4 more bytes per flow: bucket_of() maps
     * the hash with a multiply instead of a mask. */
    uint32_t nb = ft->max_flows < 1024 ? 1024 : ft->max_flows;
    ft->bucket = malloc(sizeof(uint32_t) * nb);
    if (!ft->bucket) {
        free(ft);
        return NULL;
    }
    memset(ft->bucket, 0xff, sizeof(uint32_t) * nb);
    ft->nbucket = nb;
    ft->free_head = ft->lru_head = ft->lru_tail = NIL;
    ft->ef = ef;
    ft->es = es;
    ft->ctx = ctx;
    return ft;
}

void ft_free(flowtab_t *ft)
{
    if (!ft)
        return;
    for (uint32_t i = 0; i < ft->nchunks; i++)
        munmap(ft->chunk[i], CHUNK_BYTES);
    free(ft->chunk);
    free(ft->bucket);
    free(ft);
}

size_t ft_bytes_per_flow(const flowtab_t *ft)
{
    return sizeof(struct flow) + (sizeof(uint32_t) * (size_t)ft->nbucket) / ft->max_flows;
}

void ft_counters_add(const flowtab_t *ft, drst_flow_counters_t *c)
{
    c->flows += ft->cnt.flows;
    c->flow_records += ft->cnt.flow_records;
    c->interim_records += ft->cnt.interim_records;
    c->evicted += ft->cnt.evicted;
    c->max_live_flows += ft->cnt.max_live_flows;
    c->dropped_nomem += ft->cnt.dropped_nomem;
}

/* ---- statistics -> record ---- */

static void dir_out(const struct dir *d, uint32_t first_us, drst_flow_dir_stats_t *o)
{
    o->packets = d->pkts;
    o->bytes = d->bytes;
    o->payload = d->payload;
    o->retx_bytes = d->retx_bytes;
    o->retx_packets = d->retx_pkts;
    o->ooo_packets = d->ooo;
    o->syn = d->syn;
    o->fin = d->fin;
    o->rst = d->rst;
    o->rtt_count = d->rtt_n;
    if (d->rtt_n) {
        double avg = (double)d->rtt_sum / d->rtt_n;
        double var = (double)d->rtt_sumsq / d->rtt_n - avg * avg;
        o->rtt_min = d->rtt_min * 1e-6;
        o->rtt_max = d->rtt_max * 1e-6;
        o->rtt_avg = avg * 1e-6;
        o->rtt_stdev = var > 0 ? sqrt(var) * 1e-6 : 0;
    } else {
        o->rtt_min = o->rtt_avg = o->rtt_max = o->rtt_stdev = NAN;
    }
    if (d->pkts >= 2) {
        double n = (double)(d->pkts - 1);
        double mean = (double)(d->last_us - first_us) * 1e-6 / n;
        double var = (double)d->iat_sumsq / n - mean * mean;
        o->iat_mean = mean;
        o->iat_stdev = var > 0 ? sqrt(var) : 0;
    } else {
        o->iat_mean = o->iat_stdev = NAN;
    }
}

static uint64_t flow_last_ns(const struct flow *f)
{
    uint32_t l = f->d[0].last_us;
    if (f->d[1].pkts && (!f->d[0].pkts || f->d[1].last_us > l))
        l = f->d[1].last_us;
    return f->start_ns + (uint64_t)l * 1000;
}

static drst_flow_state_t state_of(const struct flow *f, drst_flow_state_t dflt)
{
    if (f->fl & FF_RST)
        return DRST_FLOW_STATE_RESET;
    if ((f->d[0].flags & DF_FIN) && (f->d[1].flags & DF_FIN))
        return DRST_FLOW_STATE_COMPLETE;
    return dflt;
}

static void export_flow(flowtab_t *ft, const struct flow *f, drst_flow_state_t st, int interim)
{
    drst_flow_record_t r;
    struct {
        uint8_t a[16], b[16];
        uint16_t pa, pb, vlan;
        uint8_t proto, ipver;
        uint64_t start;
    } idk;
    memset(&r, 0, sizeof(r));
    memcpy(idk.a, f->a, 16);
    memcpy(idk.b, f->b, 16);
    idk.pa = f->pa;
    idk.pb = f->pb;
    idk.vlan = f->vlan;
    idk.proto = f->proto;
    idk.ipver = f->ipver;
    idk.start = f->start_ns;
    r.flow_id = XXH3_64bits(&idk, sizeof(idk)) >> 1; /* 63 bits: exact in JSON readers' int64 */
    r.interim = interim ? f->interim : 0;
    r.ipver = f->ipver;
    r.proto = f->proto;
    r.vlan = f->vlan;
    memcpy(r.client_ip, f->a, 16);
    memcpy(r.server_ip, f->b, 16);
    r.client_port = f->pa;
    r.server_port = f->pb;
    r.state = interim ? DRST_FLOW_STATE_ONGOING : st;
    uint64_t last = flow_last_ns(f);
    r.start = (double)(f->start_ns / 1000000000ull) + (double)(f->start_ns % 1000000000ull) * 1e-9;
    r.end = (double)(last / 1000000000ull) + (double)(last % 1000000000ull) * 1e-9;
    r.duration = (double)(last - f->start_ns) * 1e-9;
    dir_out(&f->d[0], f->first_us[0], &r.c2s);
    dir_out(&f->d[1], f->first_us[1], &r.s2c);
    r.throughput_bps =
        r.duration > 0 ? (double)(r.c2s.bytes + r.s2c.bytes) * 8.0 / r.duration : 0.0;
    ft->cnt.flow_records++;
    if (interim)
        ft->cnt.interim_records++;
    else
        ft->part.ended_flows++;
    if (ft->ef)
        ft->ef(ft->ctx, &r);
}

/* ---- table maintenance ---- */

static uint64_t flow_hash(const struct flow *f)
{
    pkt_t p;
    memset(&p, 0, sizeof(p));
    memcpy(p.src, f->a, 16);
    memcpy(p.dst, f->b, 16);
    p.sport = f->pa;
    p.dport = f->pb;
    p.vlan = f->vlan;
    p.proto = f->proto;
    return pkt_hash(&p);
}

static void lru_unlink(flowtab_t *ft, struct flow *f)
{
    if (f->lprev != NIL)
        F(ft, f->lprev)->lnext = f->lnext;
    else
        ft->lru_head = f->lnext;
    if (f->lnext != NIL)
        F(ft, f->lnext)->lprev = f->lprev;
    else
        ft->lru_tail = f->lprev;
}

static void lru_append(flowtab_t *ft, uint32_t i, struct flow *f)
{
    f->lnext = NIL;
    f->lprev = ft->lru_tail;
    if (ft->lru_tail != NIL)
        F(ft, ft->lru_tail)->lnext = i;
    else
        ft->lru_head = i;
    ft->lru_tail = i;
}

static void remove_flow(flowtab_t *ft, uint32_t i)
{
    struct flow *f = F(ft, i);
    uint32_t *pp = bucket_of(ft, flow_hash(f));
    while (*pp != NIL && *pp != i)
        pp = &F(ft, *pp)->next;
    if (*pp == i)
        *pp = f->next;
    lru_unlink(ft, f);
    f->next = ft->free_head;
    ft->free_head = i;
    ft->live--;
}

static void end_flow(flowtab_t *ft, uint32_t i, drst_flow_state_t st)
{
    struct flow *f = F(ft, i);
    export_flow(ft, f, state_of(f, st), 0);
    remove_flow(ft, i);
}

static void expire_idle(flowtab_t *ft, uint64_t now)
{
    while (ft->lru_head != NIL) {
        struct flow *f = F(ft, ft->lru_head);
        if (flow_last_ns(f) + ft->idle_ns > now)
            break;
        end_flow(ft, ft->lru_head, DRST_FLOW_STATE_TIMEOUT);
    }
}

static uint32_t alloc_flow(flowtab_t *ft)
{
    if (ft->live >= ft->max_flows && ft->lru_head != NIL) {
        end_flow(ft, ft->lru_head, DRST_FLOW_STATE_EVICTED);
        ft->cnt.evicted++;
    }
    if (ft->free_head != NIL) {
        uint32_t i = ft->free_head;
        ft->free_head = F(ft, i)->next;
        return i;
    }
    if ((ft->used >> CHUNK_SHIFT) >= ft->nchunks) {
        if (ft->nchunks == ft->chunks_cap) {
            uint32_t nc = ft->chunks_cap ? ft->chunks_cap * 2 : 16;
            struct flow **c = realloc(ft->chunk, sizeof(*c) * nc);
            if (!c)
                return NIL;
            ft->chunk = c;
            ft->chunks_cap = nc;
        }
        void *c =
            mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c == MAP_FAILED)
            return NIL;
        ft->chunk[ft->nchunks] = c;
        ft->nchunks++;
    }
    return ft->used++;
}

/* Sample index of an RTT in microseconds: 4 buckets per octave. */
static unsigned rtt_bucket(uint32_t us)
{
    /* octave from the highest set bit, quarter from the next two bits */
    if (us < 2)
        return 0;
    unsigned o = 31;
    while (!(us >> o))
        o--;
    unsigned q = o >= 2 ? (us >> (o - 2)) & 3u : (us << (2 - o)) & 3u;
    /* q splits the octave linearly; close to 4 log-spaced buckets (+-6%) */
    unsigned b = o * 4 + q;
    return b < DRST_FLOW_RTT_BUCKETS ? b : DRST_FLOW_RTT_BUCKETS - 1;
}

/* The 32-bit sum cannot overflow: a direction times one segment at a time
 * and starts the next timing only after the previous one ended, so its
 * samples are disjoint spans of the flow's life, which is < AGE_SPLIT_NS
 * (4e9 us < 2^32). */
static void rtt_add(flowtab_t *ft, struct dir *d, uint32_t s)
{
    if (d->rtt_n == 0 || s < d->rtt_min)
        d->rtt_min = s;
    if (d->rtt_n == 0 || s > d->rtt_max)
        d->rtt_max = s;
    d->rtt_n++;
    d->rtt_sum += s;
    d->rtt_sumsq += (float)s * (float)s;
    ft->part.rtt_count++;
    ft->part.rtt_hist[rtt_bucket(s)]++;
}

#define SEQ_LT(a, b)  ((int32_t)((a) - (b)) < 0)
#define SEQ_GEQ(a, b) ((int32_t)((a) - (b)) >= 0)

static void tcp_update(flowtab_t *ft, struct flow *f, int dir, const pkt_t *p, uint32_t t,
                       uint32_t prev_us)
{
    struct dir *d = &f->d[dir];
    uint8_t fl = p->tcp_flags;
    uint32_t seqlen = p->payload + ((fl & 0x02) ? 1u : 0u) + ((fl & 0x01) ? 1u : 0u);

    if ((fl & 0x02) && d->syn < UINT16_MAX)
        d->syn++;
    if ((fl & 0x01) && d->fin < UINT16_MAX) {
        d->fin++;
        d->flags |= DF_FIN;
    }
    if (fl & 0x04) {
        if (d->rst < UINT16_MAX)
            d->rst++;
        f->fl |= FF_RST;
    }
    if (p->payload)
        ft->part.tcp_data_packets++;
    if (fl & 0x10) { /* ACK: does it close the other side's timed segment? */
        struct dir *o = &f->d[dir ^ 1];
        if ((o->flags & DF_RTTP) && SEQ_GEQ(p->ack, o->rtt_seq)) {
            /* Only an ACK ending exactly at the timed segment measures it
             * (tcptrace's rule); one covering later segments acks those. */
            if (p->ack == o->rtt_seq)
                rtt_add(ft, o, t - o->rtt_ts);
            o->flags &= (uint8_t)~DF_RTTP;
        }
    }
    if (fl & 0x04)
        return;
    if (!(d->flags & DF_SEQ)) {
        d->flags |= DF_SEQ;
        d->snd_max = p->seq + seqlen;
        if (seqlen) {
            d->rtt_seq = d->snd_max;
            d->rtt_ts = t;
            d->flags |= DF_RTTP;
        }
        return;
    }
    if (!seqlen)
        return;
    uint32_t end = p->seq + seqlen;
    if (SEQ_LT(p->seq, d->snd_max)) {
        /* A SYN or FIN sent again is a retransmission too (one sequence
         * number, no payload bytes): tcptrace counts it so (a SYN/ACK lost
         * on a lossy link is resent like data; found on the netns test's
         * captures: tcptrace 2, drst 0). */
        if (p->payload || (fl & 0x03)) {
            if (d->rtt_n && t - prev_us < d->rtt_min) {
                d->ooo++;
            } else {
                d->retx_pkts++;
                d->retx_bytes += p->payload;
                ft->part.retx_packets++;
            }
        }
        if ((d->flags & DF_RTTP) && SEQ_LT(p->seq, d->rtt_seq))
            d->flags &= (uint8_t)~DF_RTTP; /* Karn: ambiguous sample */
        if (SEQ_LT(d->snd_max, end))
            d->snd_max = end;
        return;
    }
    if (!(d->flags & DF_RTTP)) {
        d->rtt_seq = end;
        d->rtt_ts = t;
        d->flags |= DF_RTTP;
    }
    d->snd_max = end;
}

static void swap_sides(struct flow *f)
{
    uint8_t tmp[16];
    struct dir td;
    uint16_t tp;
    memcpy(tmp, f->a, 16);
    memcpy(f->a, f->b, 16);
    memcpy(f->b, tmp, 16);
    tp = f->pa;
    f->pa = f->pb;
    f->pb = tp;
    td = f->d[0];
    f->d[0] = f->d[1];
    f->d[1] = td;
    uint32_t tf = f->first_us[0];
    f->first_us[0] = f->first_us[1];
    f->first_us[1] = tf;
}

static void close_interval(flowtab_t *ft)
{
    ft->part.start = (double)ft->cur_idx * ((double)ft->interval_ns * 1e-9);
    ft->part.length = (double)ft->interval_ns * 1e-9;
    if (ft->es)
        ft->es(ft->ctx, &ft->part, ft->cur_idx);
    memset(&ft->part, 0, sizeof(ft->part));
}

void ft_tick(flowtab_t *ft, uint64_t ts_ns)
{
    if (!ft->interval_ns)
        return;
    uint64_t idx = ts_ns / ft->interval_ns;
    if (!ft->have_idx) {
        ft->have_idx = 1;
        ft->cur_idx = idx;
        return;
    }
    if (idx <= ft->cur_idx)
        return;
    /* Idle flows whose deadline fell in the closing interval end in it, and
     * those of skipped (packet-free) intervals in the new one: ticks reach
     * every worker, so the ended-flow counts do not depend on which worker
     * happened to see a packet after a deadline, nor on the worker count. */
    expire_idle(ft, (ft->cur_idx + 1) * ft->interval_ns);
    close_interval(ft);
    expire_idle(ft, idx * ft->interval_ns);
    ft->cur_idx = idx;
}

void ft_clock(flowtab_t *ft, uint64_t ts_ns)
{
    uint64_t now = ts_ns > ft->now_ns ? ts_ns : ft->now_ns; /* never backwards */
    ft->now_ns = now;
    if (now >= ft->next_check) {
        expire_idle(ft, now);
        ft->next_check = now + ft->check_ns;
    }
}

void ft_packet(flowtab_t *ft, const pkt_t *p, uint64_t h)
{
    ft_clock(ft, p->ts_ns);
    uint64_t now = ft->now_ns;

    uint32_t *bp = bucket_of(ft, h);
    uint32_t i = *bp;
    int dir = 0;
    struct flow *f = NULL;
    for (; i != NIL; i = f->next) {
        f = F(ft, i);
        if (f->proto != p->proto || f->vlan != p->vlan || f->ipver != p->ipver)
            continue;
        if (f->pa == p->sport && f->pb == p->dport && addr_eq(f->a, p->src) &&
            addr_eq(f->b, p->dst)) {
            dir = 0;
            break;
        }
        if (f->pa == p->dport && f->pb == p->sport && addr_eq(f->a, p->dst) &&
            addr_eq(f->b, p->src)) {
            dir = 1;
            break;
        }
    }
    int syn_only = p->has_tcp && (p->tcp_flags & 0x12) == 0x02;
    if (i != NIL) {
        /* A new connection on a finished one's ports, or a flow too old for
         * 32-bit offsets: export and start over. */
        if ((syn_only && state_of(f, DRST_FLOW_STATE_ONGOING) != DRST_FLOW_STATE_ONGOING) ||
            now - f->start_ns >= AGE_SPLIT_NS) {
            end_flow(ft, i, DRST_FLOW_STATE_ONGOING);
            i = NIL;
        } else if (flow_last_ns(f) + ft->idle_ns <= now) {
            /* Idle past its deadline, not yet swept (sweeps run every
             * check_ns): the same split as if the sweep had run, so it
             * does not depend on which other packets this table saw. */
            end_flow(ft, i, DRST_FLOW_STATE_TIMEOUT);
            i = NIL;
        }
    }
    uint64_t istart = ft->have_idx ? ft->cur_idx * ft->interval_ns : 0;
    if (i == NIL) {
        i = alloc_flow(ft);
        if (i == NIL) {
            ft->cnt.dropped_nomem++;
            return;
        }
        f = F(ft, i);
        memset(f, 0, sizeof(*f));
        memcpy(f->a, p->src, 16);
        memcpy(f->b, p->dst, 16);
        f->pa = p->sport;
        f->pb = p->dport;
        f->vlan = p->vlan;
        f->proto = p->proto;
        f->ipver = p->ipver;
        f->start_ns = now;
        bp = bucket_of(ft, h); /* eviction may have edited the chain */
        f->next = *bp;
        *bp = i;
        lru_append(ft, i, f);
        dir = 0;
        ft->live++;
        if (ft->live > ft->cnt.max_live_flows)
            ft->cnt.max_live_flows = ft->live;
        ft->cnt.flows++;
        ft->part.new_flows++;
        ft->part.active_flows++;
    } else {
        if (flow_last_ns(f) < istart)
            ft->part.active_flows++;
        if (ft->lru_tail != i) {
            lru_unlink(ft, f);
            lru_append(ft, i, f);
        }
    }
    if (syn_only && !(f->fl & FF_SYN)) {
        f->fl |= FF_SYN;
        if (dir == 1) {
            swap_sides(f);
            dir = 0;
        }
    }

    struct dir *d = &f->d[dir];
    uint32_t t = (uint32_t)((now - f->start_ns) / 1000);
    uint32_t prev = d->last_us;
    d->pkts++;
    d->bytes += p->wirelen;
    d->payload += p->payload;
    if (d->pkts == 1) {
        f->first_us[dir] = d->last_us = t;
    } else {
        float iat = (float)(t - d->last_us) * 1e-6f;
        d->iat_sumsq += iat * iat;
        d->last_us = t;
    }
    ft->part.packets++;
    ft->part.bytes += p->wirelen;
    if (p->has_tcp)
        tcp_update(ft, f, dir, p, t, prev);

    if (ft->active_ns && now - f->start_ns >= (uint64_t)(f->interim + 1) * ft->active_ns &&
        f->interim < UINT16_MAX) {
        f->interim++;
        export_flow(ft, f, DRST_FLOW_STATE_ONGOING, 1);
    }
}

void ft_finish(flowtab_t *ft)
{
    /* Idle past the timeout at the end of input (the latest time seen):
     * timed out, whenever the last sweep ran. */
    expire_idle(ft, ft->now_ns);
    while (ft->lru_head != NIL)
        end_flow(ft, ft->lru_head, DRST_FLOW_STATE_ONGOING);
    if (ft->interval_ns && ft->have_idx)
        close_interval(ft);
    ft->have_idx = 0;
}
