/* Flow and summary records as CSV lines or JSON objects (DESIGN.md record
 * form). Formatting goes to a caller buffer; the library never writes files. */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flow/flow_int.h"

struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) DRST_PRINTF(2, 3);
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL,
                      o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

const char *drst_flow_state_name(drst_flow_state_t s)
{
    switch (s) {
    case DRST_FLOW_STATE_ONGOING:
        return "ongoing";
    case DRST_FLOW_STATE_COMPLETE:
        return "complete";
    case DRST_FLOW_STATE_RESET:
        return "reset";
    case DRST_FLOW_STATE_TIMEOUT:
        return "timeout";
    case DRST_FLOW_STATE_EVICTED:
        return "evicted";
    }
    return "unknown";
}

static const char *proto_name(uint8_t p)
{
    switch (p) {
    case 1:
        return "icmp";
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 58:
        return "icmpv6";
    case 132:
        return "sctp";
    default:
        return NULL;
    }
}

/* Per-direction numeric fields: name, and how to read it. Times in ms. */
#define DIR_FIELDS(X)                                                                              \
    X(packets, "%llu", (unsigned long long)d->packets)                                             \
    X(bytes, "%llu", (unsigned long long)d->bytes)                                                 \
    X(payload_bytes, "%llu", (unsigned long long)d->payload)                                       \
    X(syn, "%u", d->syn)                                                                           \
    X(fin, "%u", d->fin)                                                                           \
    X(rst, "%u", d->rst)                                                                           \
    X(retx_packets, "%llu", (unsigned long long)d->retx_packets)                                   \
    X(retx_bytes, "%llu", (unsigned long long)d->retx_bytes)                                       \
    X(ooo_packets, "%llu", (unsigned long long)d->ooo_packets)                                     \
    X(rtt_count, "%u", d->rtt_count)

#define DIR_TIMES(X)                                                                               \
    X(rtt_min_ms, d->rtt_min * 1e3)                                                                \
    X(rtt_avg_ms, d->rtt_avg * 1e3)                                                                \
    X(rtt_max_ms, d->rtt_max * 1e3)                                                                \
    X(rtt_stdev_ms, d->rtt_stdev * 1e3)                                                            \
    X(iat_mean_ms, d->iat_mean * 1e3)                                                              \
    X(iat_stdev_ms, d->iat_stdev * 1e3)

size_t drst_flow_csv_header(char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    put(&o, "flow_id,interim,state,proto,ipver,vlan,client_ip,client_port,server_ip,server_port,"
            "start,end,duration,throughput_bps");
    static const char *const dn[2] = {"c2s", "s2c"};
    for (int k = 0; k < 2; k++) {
#define H(name, fmt, expr) put(&o, ",%s_" #name, dn[k]);
#define HT(name, expr)     put(&o, ",%s_" #name, dn[k]);
        DIR_FIELDS(H)
        DIR_TIMES(HT)
#undef H
#undef HT
    }
    put(&o, "\n");
    return o.len;
}

static void addr(const uint8_t *a, int ipver, char *s, size_t n)
{
    if (!inet_ntop(ipver == 6 ? AF_INET6 : AF_INET, a, s, (socklen_t)n))
        snprintf(s, n, "?");
}

static void num(struct out *o, int json, const char *pre, const char *name, double v, int *first)
{
    if (json) {
        if (!isfinite(v))
            return; /* absent feature: readers fill the schema default */
        if (v == floor(v) && fabs(v) < 1e15)
            put(o, "%s\"%s%s\":%.0f", *first ? "" : ",", pre, name, v);
        else
            put(o, "%s\"%s%s\":%.9g", *first ? "" : ",", pre, name, v);
        *first = 0;
    } else if (isfinite(v)) {
        put(o, v == floor(v) && fabs(v) < 1e15 ? ",%.0f" : ",%.9g", v);
    } else {
        put(o, ",");
    }
}

size_t drst_flow_record_format(drst_flow_format_t fmt, const drst_flow_record_t *r, uint64_t seq,
                               char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    char ca[INET6_ADDRSTRLEN], sa[INET6_ADDRSTRLEN], pb[8];
    const char *pn = proto_name(r->proto);
    if (!pn) {
        snprintf(pb, sizeof(pb), "%u", r->proto);
        pn = pb;
    }
    addr(r->client_ip, r->ipver, ca, sizeof(ca));
    addr(r->server_ip, r->ipver, sa, sizeof(sa));
    const drst_flow_dir_stats_t *dirs[2] = {&r->c2s, &r->s2c};
    static const char *const dn[2] = {"c2s_", "s2c_"};

    if (fmt == DRST_FLOW_FMT_CSV) {
        put(&o, "%llu,%u,%s,%s,%u,%u,%s,%u,%s,%u,%.6f,%.6f,%.9f,%.9g",
            (unsigned long long)r->flow_id, r->interim, drst_flow_state_name(r->state), pn,
            r->ipver, r->vlan, ca, r->client_port, sa, r->server_port, r->start, r->end,
            r->duration, r->throughput_bps);
        for (int k = 0; k < 2; k++) {
            const drst_flow_dir_stats_t *d = dirs[k];
#define C(name, f, expr) put(&o, "," f, expr);
#define CT(name, expr)   num(&o, 0, "", #name, expr, &first);
            int first = 0;
            DIR_FIELDS(C)
            DIR_TIMES(CT)
#undef C
#undef CT
        }
        put(&o, "\n");
        return o.len;
    }
    put(&o,
        "{\"seq\":%llu,\"ts\":%.6f,\"flow\":{\"id\":%llu,\"interim\":%u,\"state\":\"%s\","
        "\"proto\":\"%s\",\"ipver\":%u,\"vlan\":%u,\"client\":\"%s\",\"client_port\":%u,"
        "\"server\":\"%s\",\"server_port\":%u,\"start\":%.6f,\"end\":%.6f},\"features\":{",
        (unsigned long long)seq, r->end, (unsigned long long)r->flow_id, r->interim,
        drst_flow_state_name(r->state), pn, r->ipver, r->vlan, ca, r->client_port, sa,
        r->server_port, r->start, r->end);
    int first = 1;
    num(&o, 1, "", "duration", r->duration, &first);
    num(&o, 1, "", "throughput_bps", r->throughput_bps, &first);
    for (int k = 0; k < 2; k++) {
        const drst_flow_dir_stats_t *d = dirs[k];
#define J(name, f, expr) num(&o, 1, dn[k], #name, (double)(expr), &first);
#define JT(name, expr)   num(&o, 1, dn[k], #name, expr, &first);
        DIR_FIELDS(J)
        DIR_TIMES(JT)
#undef J
#undef JT
    }
    put(&o, "}}\n");
    return o.len;
}

size_t drst_flow_summary_csv_header(char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    put(&o, "start,length,packets,bytes,active_flows,new_flows,ended_flows,tcp_data_packets,"
            "retx_packets,retx_rate,rtt_count,rtt_p50_ms,rtt_p90_ms,rtt_p99_ms\n");
    return o.len;
}

size_t drst_flow_summary_format(drst_flow_format_t fmt, const drst_flow_summary_t *s, uint64_t seq,
                                char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    int json = fmt == DRST_FLOW_FMT_JSONL;
    int first = 1;
    if (json)
        put(&o, "{\"seq\":%llu,\"ts\":%.6f,\"features\":{", (unsigned long long)seq, s->start);
    else
        put(&o, "%.6f", s->start);
    num(&o, json, "", "length", s->length, &first);
    num(&o, json, "", "packets", (double)s->packets, &first);
    num(&o, json, "", "bytes", (double)s->bytes, &first);
    num(&o, json, "", "active_flows", (double)s->active_flows, &first);
    num(&o, json, "", "new_flows", (double)s->new_flows, &first);
    num(&o, json, "", "ended_flows", (double)s->ended_flows, &first);
    num(&o, json, "", "tcp_data_packets", (double)s->tcp_data_packets, &first);
    num(&o, json, "", "retx_packets", (double)s->retx_packets, &first);
    num(&o, json, "", "retx_rate", s->retx_rate, &first);
    num(&o, json, "", "rtt_count", (double)s->rtt_count, &first);
    num(&o, json, "", "rtt_p50_ms", s->rtt_p50 * 1e3, &first);
    num(&o, json, "", "rtt_p90_ms", s->rtt_p90 * 1e3, &first);
    num(&o, json, "", "rtt_p99_ms", s->rtt_p99 * 1e3, &first);
    put(&o, json ? "}}\n" : "\n");
    return o.len;
}
