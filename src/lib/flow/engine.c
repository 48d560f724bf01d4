/* The flow engine: sharding packets to workers by flow key, the worker
 * threads, and the sink that serialises exports and merges the per-worker
 * partial interval summaries. Several workers run in one of two modes,
 * chosen by the first call:
 *
 * - packet mode (drst_flow_engine_packet: live capture, pcapng): the source
 *   thread parses and hashes every packet and hands its descriptor to the
 *   owning worker's thread over an SPSC ring;
 * - replica mode (engine_replica_*: classic pcap files): each worker runs on
 *   its own reader thread over the whole file, parses every packet and
 *   accounts those of the flows it owns (see flow_int.h for why).
 *
 * Interval boundaries are decided by the source (which sees every packet in
 * order) and broadcast to every worker as a tick descriptor, so all workers
 * close the same intervals in the same order and the sink can emit interval
 * k once it holds k's partial from each worker. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error_int.h"
#include "flow/flow_int.h"

#define BATCH 32  /* descriptors the source writes to a ring before publishing them */
#define PEEK  256 /* descriptors a worker processes before giving their slots back */
#define SPIN  128 /* empty polls before a worker sleeps */

struct merge {
    uint64_t idx;
    unsigned got;
    drst_flow_summary_t sum;
};

enum { MODE_NONE = 0, MODE_PACKET, MODE_REPLICA };

/* Read by its thread only when it starts (worker_main keeps ft and ring in
 * locals), so the source's per-packet `npend` writes share no cache line
 * the worker reads in its loop. */
struct worker {
    struct drst_flow_engine *e;
    flowtab_t *ft;
    spsc_t *ring;
    pthread_t th;
    int started;
    uint32_t npend; /* written to the ring, not yet published (source side) */
    unsigned id;
    /* replica mode: parser counters of workers 1.. (scratch: worker 0 counts
     * into the engine's, the packets being the same for every replica) */
    drst_flow_counters_t pc;
};

struct drst_flow_engine {
    drst_flow_config_t cfg;
    drst_flow_sink_t sink;
    pthread_mutex_t mu; /* sink lock: exports, merges */
    unsigned nw;
    struct worker *w;
    drst_flow_counters_t src; /* source-thread counters */
    uint64_t interval_ns, last_idx;
    int have_idx;
    int finished;
    struct merge *mg; /* pending interval merges (under mu) */
    size_t nmg, capmg;
    size_t bytes_per_flow;
    int mode;
    uint64_t max_ts; /* packet mode: latest packet time */
};

void drst_flow_config_init(drst_flow_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->workers = 1;
    c->idle_timeout = 60;
    c->active_timeout = 300;
    c->interval = 1;
    c->max_flows = 1u << 20;
    c->ring_size = 1u << 14;
}

/* ---- sink side (any worker thread, under e->mu) ---- */

static void emit_flow(void *ctx, const drst_flow_record_t *r)
{
    struct worker *w = ctx;
    drst_flow_engine_t *e = w->e;
    if (!e->sink.on_flow)
        return;
    pthread_mutex_lock(&e->mu);
    e->sink.on_flow(e->sink.opaque, r);
    pthread_mutex_unlock(&e->mu);
}

static double hist_quantile(const uint64_t *h, uint64_t n, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)n), acc = 0;
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < DRST_FLOW_RTT_BUCKETS; i++) {
        acc += h[i];
        if (acc >= want) /* midpoint of bucket i (see DRST_FLOW_RTT_BUCKETS) */
            return ldexp(1.0 + ((double)(i % 4) + 0.5) / 4.0, (int)(i / 4)) * 1e-6;
    }
    return NAN;
}

static void publish_summary(drst_flow_engine_t *e, drst_flow_summary_t *s)
{
    s->retx_rate = s->tcp_data_packets ? (double)s->retx_packets / (double)s->tcp_data_packets : 0;
    if (s->rtt_count) {
        s->rtt_p50 = hist_quantile(s->rtt_hist, s->rtt_count, 0.50);
        s->rtt_p90 = hist_quantile(s->rtt_hist, s->rtt_count, 0.90);
        s->rtt_p99 = hist_quantile(s->rtt_hist, s->rtt_count, 0.99);
    } else {
        s->rtt_p50 = s->rtt_p90 = s->rtt_p99 = NAN;
    }
    if (e->sink.on_summary)
        e->sink.on_summary(e->sink.opaque, s);
}

static void emit_summary(void *ctx, const drst_flow_summary_t *s, uint64_t idx)
{
    struct worker *w = ctx;
    drst_flow_engine_t *e = w->e;
    pthread_mutex_lock(&e->mu);
    if (e->nw == 1) {
        drst_flow_summary_t c = *s;
        publish_summary(e, &c);
        pthread_mutex_unlock(&e->mu);
        return;
    }
    size_t k;
    for (k = 0; k < e->nmg && e->mg[k].idx != idx; k++)
        ;
    if (k == e->nmg) {
        if (e->nmg == e->capmg) {
            size_t nc = e->capmg ? e->capmg * 2 : 16;
            struct merge *m = realloc(e->mg, nc * sizeof(*m));
            if (!m) { /* cannot merge: publish this worker's part alone */
                drst_flow_summary_t c = *s;
                publish_summary(e, &c);
                pthread_mutex_unlock(&e->mu);
                return;
            }
            e->mg = m;
            e->capmg = nc;
        }
        memset(&e->mg[k], 0, sizeof(e->mg[k]));
        e->mg[k].idx = idx;
        e->mg[k].sum.start = s->start;
        e->mg[k].sum.length = s->length;
        e->nmg++;
    }
    drst_flow_summary_t *m = &e->mg[k].sum;
    m->packets += s->packets;
    m->bytes += s->bytes;
    m->active_flows += s->active_flows;
    m->new_flows += s->new_flows;
    m->ended_flows += s->ended_flows;
    m->tcp_data_packets += s->tcp_data_packets;
    m->retx_packets += s->retx_packets;
    m->rtt_count += s->rtt_count;
    for (unsigned i = 0; i < DRST_FLOW_RTT_BUCKETS; i++)
        m->rtt_hist[i] += s->rtt_hist[i];
    if (++e->mg[k].got == e->nw) {
        drst_flow_summary_t c = *m;
        e->mg[k] = e->mg[--e->nmg];
        publish_summary(e, &c);
    }
    pthread_mutex_unlock(&e->mu);
}

/* A packet pkt_parse() rejected: to the sink's dead letters. Non-IP frames
 * and later fragments are not errors (counted only). */
static void reject(drst_flow_engine_t *e, enum pkt_kind k, int linktype, const uint8_t *data,
                   uint32_t caplen, uint32_t wirelen, uint64_t ts_ns)
{
    if (!e->sink.on_reject || (k != PKT_TRUNCATED && k != PKT_MALFORMED && k != PKT_BAD_LINK))
        return;
    pthread_mutex_lock(&e->mu);
    e->sink.on_reject(e->sink.opaque, linktype, data, caplen, wirelen, ts_ns);
    pthread_mutex_unlock(&e->mu);
}

/* ---- workers ---- */

/* The source waiting for room in a full ring. */
static void backoff(unsigned *idle)
{
    if (++*idle < 64) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    flowtab_t *ft = w->ft;
    spsc_t *ring = w->ring;
    unsigned idle = 0;
    for (;;) {
        const pkt_t *b;
        uint32_t n = spsc_peek(ring, &b, PEEK);
        if (!n) {
            if (++idle >= SPIN) {
                spsc_wait(ring);
                idle = 0;
            }
            continue;
        }
        idle = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (b[i].ctl == 0) {
                ft_packet(ft, &b[i], b[i].hash);
            } else if (b[i].ctl == 1) {
                ft_tick(ft, b[i].ts_ns);
            } else if (b[i].ctl == 2) {
                ft_clock(ft, b[i].ts_ns); /* the end time: the latest packet's */
                ft_finish(ft);
                return NULL;
            } else {
                return NULL; /* 3: quit without exporting (engine freed unfinished) */
            }
        }
        spsc_release(ring, n);
    }
}

/* Publish what the source wrote to w's ring and wake the worker. */
static void flush_worker(struct worker *w)
{
    spsc_publish(w->ring, 1);
    w->npend = 0;
}

/* Copy p into the next slot of w's ring; publish every BATCH descriptors. */
static void stage(drst_flow_engine_t *e, struct worker *w, const pkt_t *p)
{
    pkt_t *s = spsc_wslot(w->ring);
    if (!s) {
        unsigned idle = 0;
        flush_worker(w);
        e->src.ring_waits++;
        while (!(s = spsc_wslot(w->ring)))
            backoff(&idle);
    }
    *s = *p;
    spsc_wnext(w->ring);
    if (++w->npend == BATCH) {
        spsc_publish(w->ring, 0);
        w->npend = 0;
    }
}

/* ---- replica mode ---- */

drst_err_t engine_replica_begin(drst_flow_engine_t *e, char *err, size_t errlen)
{
    if (e->nw < 2 || e->mode != MODE_NONE || e->finished)
        return drst_seterr(err, errlen, DRST_ERR_STATE,
                           "flow engine: replica mode needs several workers and a fresh engine");
    e->mode = MODE_REPLICA;
    return DRST_OK;
}

engine_worker_t *engine_replica_worker(drst_flow_engine_t *e, unsigned i)
{
    return i < e->nw ? &e->w[i] : NULL;
}

int engine_replica_packet(void *ctx, int linktype, const uint8_t *data, uint32_t caplen,
                          uint32_t wirelen, uint64_t ts_ns)
{
    struct worker *w = ctx;
    drst_flow_engine_t *e = w->e;
    pkt_t p;
    enum pkt_kind k =
        pkt_parse(linktype, data, caplen, wirelen, ts_ns, &p, w->id ? &w->pc : &e->src);
    if (k != PKT_FLOW) {
        if (w->id == 0) /* one replica keeps the dead letters */
            reject(e, k, linktype, data, caplen, wirelen, ts_ns);
        return 0;
    }
    /* Every replica sees every packet, so each closes its intervals itself
     * at the same packets, as one worker would (ft_tick ignores a time that
     * does not start a new interval). */
    ft_tick(w->ft, ts_ns);
    /* The clock (and the idle sweeps it runs) follows every packet, so
     * timeouts fall as with one worker. */
    if (pkt_owner(&p, e->nw) == w->id)
        ft_packet(w->ft, &p, pkt_hash(&p));
    else
        ft_clock(w->ft, ts_ns);
    return 0;
}

/* ---- public ---- */

drst_flow_engine_t *drst_flow_engine_new(const drst_flow_config_t *cfg,
                                         const drst_flow_sink_t *sink, char *err, size_t errlen)
{
    drst_flow_engine_t *e = NULL;
    if (!cfg || cfg->workers < 1 || cfg->workers > 64) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "workers must be between 1 and 64");
        return NULL;
    }
    if (!(cfg->idle_timeout > 0) || cfg->idle_timeout > 3600) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "idle timeout must be in (0, 3600] seconds");
        return NULL;
    }
    if (!(cfg->active_timeout >= 0) || !(cfg->interval >= 0) || cfg->interval > 86400 ||
        cfg->active_timeout > 1e6) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "active timeout and interval must be >= 0");
        return NULL;
    }
    if (cfg->max_flows < cfg->workers) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "max flows (%u) must be >= workers (%u)",
                    cfg->max_flows, cfg->workers);
        return NULL;
    }
    if (cfg->ring_size < BATCH || (cfg->ring_size & (cfg->ring_size - 1))) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "ring size must be a power of 2 >= %d", BATCH);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        goto nomem;
    e->cfg = *cfg;
    if (sink)
        e->sink = *sink;
    e->nw = cfg->workers;
    e->interval_ns = (uint64_t)(cfg->interval * 1e9);
    pthread_mutex_init(&e->mu, NULL);
    e->w = calloc(e->nw, sizeof(*e->w));
    if (!e->w)
        goto nomem;
    for (unsigned i = 0; i < e->nw; i++) {
        struct worker *w = &e->w[i];
        w->e = e;
        w->id = i;
        uint32_t share = cfg->max_flows / e->nw + (i < cfg->max_flows % e->nw);
        w->ft = ft_new(cfg, share, i, emit_flow, emit_summary, w);
        if (!w->ft)
            goto nomem;
        if (e->nw > 1) {
            w->ring = spsc_new(cfg->ring_size);
            if (!w->ring)
                goto nomem;
        }
    }
    e->bytes_per_flow = ft_bytes_per_flow(e->w[0].ft);
    /* Packet mode's threads; in replica mode they sleep until the end. */
    if (e->nw > 1) {
        for (unsigned i = 0; i < e->nw; i++) {
            int rc = pthread_create(&e->w[i].th, NULL, worker_main, &e->w[i]);
            if (rc) {
                drst_seterrno(err, errlen, DRST_ERR_NOMEM, rc, "cannot start worker thread %u", i);
                drst_flow_engine_free(e);
                return NULL;
            }
            e->w[i].started = 1;
        }
    }
    return e;
nomem:
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory creating the flow engine");
    drst_flow_engine_free(e);
    return NULL;
}

static void broadcast(drst_flow_engine_t *e, uint8_t ctl, uint64_t ts)
{
    pkt_t t;
    memset(&t, 0, sizeof(t));
    t.ctl = ctl;
    t.ts_ns = ts;
    for (unsigned i = 0; i < e->nw; i++) {
        if (e->nw == 1) {
            if (ctl == 1)
                ft_tick(e->w[0].ft, ts);
            continue;
        }
        stage(e, &e->w[i], &t);
        if (ctl == 2)
            flush_worker(&e->w[i]);
    }
}

drst_err_t drst_flow_engine_packet(drst_flow_engine_t *e, int linktype, const uint8_t *data,
                                   uint32_t caplen, uint32_t wirelen, uint64_t ts_ns)
{
    pkt_t p;
    if (e->finished || e->mode == MODE_REPLICA)
        return DRST_ERR_STATE;
    e->mode = MODE_PACKET;
    if (ts_ns > e->max_ts)
        e->max_ts = ts_ns;
    enum pkt_kind k = pkt_parse(linktype, data, caplen, wirelen, ts_ns, &p, &e->src);
    if (k != PKT_FLOW) {
        reject(e, k, linktype, data, caplen, wirelen, ts_ns);
        return DRST_OK;
    }
    if (e->interval_ns) {
        uint64_t idx = ts_ns / e->interval_ns;
        if (!e->have_idx || idx > e->last_idx) {
            e->have_idx = 1;
            e->last_idx = idx;
            broadcast(e, 1, ts_ns);
        }
    }
    p.hash = pkt_hash(&p);
    if (e->nw == 1) {
        ft_packet(e->w[0].ft, &p, p.hash);
        return DRST_OK;
    }
    /* Shard on the high bits: the tables index buckets with the low bits. */
    struct worker *w = &e->w[(unsigned)((p.hash >> 32) % e->nw)];
    stage(e, w, &p);
    return DRST_OK;
}

int engine_feed(void *e, int linktype, const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                uint64_t ts_ns)
{
    return drst_flow_engine_packet(e, linktype, data, caplen, wirelen, ts_ns) != DRST_OK;
}

void engine_flush_staged(drst_flow_engine_t *e)
{
    if (e->mode == MODE_PACKET && e->nw > 1)
        for (unsigned i = 0; i < e->nw; i++)
            flush_worker(&e->w[i]);
}

drst_err_t drst_flow_engine_finish(drst_flow_engine_t *e, char *err, size_t errlen)
{
    if (!e)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "no engine");
    if (e->finished)
        return DRST_OK;
    e->finished = 1;
    if (e->nw == 1) {
        ft_finish(e->w[0].ft);
    } else {
        /* In replica mode the threads got nothing: 2 makes each finish its
         * (empty) share of the packet path, after the readers' accounting. */
        broadcast(e, 2, e->max_ts);
        for (unsigned i = 0; i < e->nw; i++) {
            if (e->w[i].started)
                pthread_join(e->w[i].th, NULL);
            e->w[i].started = 0;
        }
    }
    /* Partials that never completed (cannot happen with in-order ticks, but
     * never drop data): publish what there is. */
    pthread_mutex_lock(&e->mu);
    while (e->nmg) {
        drst_flow_summary_t c = e->mg[--e->nmg].sum;
        publish_summary(e, &c);
    }
    pthread_mutex_unlock(&e->mu);
    return DRST_OK;
}

void drst_flow_engine_counters(const drst_flow_engine_t *e, drst_flow_counters_t *out)
{
    *out = e->src;
    out->flows = out->flow_records = out->interim_records = out->evicted = 0;
    out->max_live_flows = out->dropped_nomem = 0;
    for (unsigned i = 0; i < e->nw; i++)
        ft_counters_add(e->w[i].ft, out);
}

void engine_note_capture_drops(drst_flow_engine_t *e, uint64_t n)
{
    e->src.capture_drops = n;
}

size_t drst_flow_engine_bytes_per_flow(const drst_flow_engine_t *e)
{
    return e->bytes_per_flow;
}

void drst_flow_engine_free(drst_flow_engine_t *e)
{
    if (!e)
        return;
    if (e->w) {
        for (unsigned i = 0; i < e->nw; i++) {
            struct worker *w = &e->w[i];
            if (w->started) {
                /* Stop without the caller's flush: tell the worker to end. */
                pkt_t t;
                memset(&t, 0, sizeof(t));
                t.ctl = 3;
                stage(e, w, &t);
                flush_worker(w);
                pthread_join(w->th, NULL);
            }
            ft_free(w->ft);
            spsc_free(w->ring);
        }
        free(e->w);
    }
    free(e->mg);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
