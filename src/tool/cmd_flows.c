/* drst flows: packets (file or live) -> per-flow statistics records. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Said once the interface captures, so a script can start its traffic. */
static void on_ready(void *ctx, const char *iface)
{
    if (!*(const int *)ctx)
        fprintf(stderr, "drst flows: capturing on %s (Ctrl-C ends and writes the flows)\n", iface);
}

static void help(void)
{
    printf(
        "usage: drst flows (-r FILE | -i IFACE) [-f BPF] [-o OUT] [--format csv|jsonl]\n"
        "                  [--workers N] [--idle-timeout S] [--active-timeout S]\n"
        "                  [--max-flows N] [--interval S] [--summary OUT] [-c COUNT]\n"
        "                  [--topic T --bootstrap HOST:PORT]\n"
        "\n"
        "Turn packets into bidirectional flows and per-flow statistics, like tcptrace or\n"
        "Tstat, but in parallel and with interim records for long flows.\n"
        "\n"
        "A flow is the 5-tuple (both directions) plus the outer VLAN id. The client is the\n"
        "side that sent the first SYN, else the sender of the first packet; statistics are\n"
        "per direction (c2s_*, s2c_*): packets, wire bytes, payload bytes, SYN/FIN/RST,\n"
        "retransmitted packets and bytes, out-of-order packets, RTT (handshake and\n"
        "data->ACK, min/avg/max/stdev/count), inter-arrival mean/stdev. Each record has a\n"
        "state: complete (FIN both ways), reset, timeout (idle), evicted (table full),\n"
        "ongoing (interim record, or still open at the end of the input).\n"
        "\n"
        "source (exactly one):\n"
        "  -r, --read FILE         pcap or pcapng file (any link type libpcap reads;\n"
        "                          Ethernet/VLAN/QinQ, Linux SLL/SLL2, raw IP, loopback parsed)\n"
        "  -i, --interface IFACE   live capture (immediate mode, snaplen 256), Ctrl-C stops\n"
        "  -f, --filter BPF        BPF filter, e.g. 'tcp port 5201' (default: none)\n"
        "  -c, --count N           stop after N packets (default: no limit)\n"
        "\n"
        "output:\n"
        "  -o, --output OUT        flow records file (default: standard output)\n"
        "      --format F          csv or jsonl (default: jsonl if OUT ends in .jsonl/.json,\n"
        "                          else csv). jsonl lines are drst records:\n"
        "                          {\"seq\",\"ts\",\"flow\":{key},\"features\":{...}}\n"
        "      --rejects FILE      packets cut before their flow key, malformed or of an\n"
        "                          unsupported link type, kept as a pcap (dead letters;\n"
        "                          they are counted either way)\n"
        "      --summary OUT       per-interval summaries (packets, bytes, active/new flows,\n"
        "                          retransmission rate, RTT p50/p90/p99), same format\n"
        "      --interval S        summary interval in seconds (default 1)\n"
        "      --topic T           also produce every flow record (JSON) to Kafka topic T,\n"
        "                          partition = flow id mod partitions (a flow's records stay\n"
        "                          in order), then one end-of-stream sentinel per partition\n"
        "      --bootstrap H:P     Kafka bootstrap servers for --topic (e.g. 'drst broker')\n"
        "  -q, --quiet             no counters line on standard error\n"
        "\n"
        "engine:\n"
        "      --workers N         worker threads, flows sharded by key (default 1: all on\n"
        "                          one thread). A pcap file: each worker reads and parses\n"
        "                          the whole file and keeps its share of the flows; pcapng\n"
        "                          and -i: one reader thread parses and hands packets out.\n"
        "                          Same records for any N (--max-flows is split over them)\n"
        "      --idle-timeout S    export a flow after S seconds without packets (default 60)\n"
        "      --active-timeout S  interim record every S seconds of a flow's life, 0 = never\n"
        "                          (default 300)\n"
        "      --max-flows N       live flows kept at most; beyond, the oldest idle flow is\n"
        "                          exported early as 'evicted' (default 1048576, ~252 B each)\n"
        "\n"
        "Times in records: start/end/duration in seconds, RTT and inter-arrival in ms.\n"
        "\n"
        "examples:\n"
        "  drst flows -r trace.pcap -o flows.csv --summary per-second.csv\n"
        "  drst flows -r big.pcapng --workers 2 --format jsonl -o flows.jsonl\n"
        "  drst flows -i eth0 -f 'tcp' --active-timeout 10 -o -\n"
        "  drst flows -r trace.pcap -o /dev/null --topic flows --bootstrap 127.0.0.1:9092\n");
}

struct outctx {
    FILE *flows, *summary;
    drst_flow_format_t fmt;
    uint64_t nflow, nsum;
    int werr;
    drst_stream_t *kafka; /* used under the engine's sink lock only */
    const char *topic;
    int32_t parts;
    uint64_t produced, produce_failed;
    char kerr[DRST_ERRLEN];
    drst_flow_rejects_t *rejects; /* --rejects, under the engine's sink lock */
};

static void on_reject(void *opaque, int linktype, const uint8_t *data, uint32_t caplen,
                      uint32_t wirelen, uint64_t ts_ns)
{
    struct outctx *o = opaque;
    if (o->rejects)
        drst_flow_rejects_write(o->rejects, linktype, data, caplen, wirelen, ts_ns);
}

static void write_buf(FILE *f, const char *b, size_t n, int *werr)
{
    if (fwrite(b, 1, n, f) != n)
        *werr = errno ? errno : EIO;
}

static void on_flow(void *opaque, const drst_flow_record_t *r)
{
    struct outctx *o = opaque;
    char buf[4096];
    uint64_t seq = o->nflow++;
    size_t n = drst_flow_record_format(o->fmt, r, seq, buf, sizeof(buf));
    if (n < sizeof(buf))
        write_buf(o->flows, buf, n, &o->werr);
    if (o->kafka) {
        char err[DRST_ERRLEN], key[24];
        if (o->fmt != DRST_FLOW_FMT_JSONL)
            n = drst_flow_record_format(DRST_FLOW_FMT_JSONL, r, seq, buf, sizeof(buf));
        if (n >= sizeof(buf))
            return;
        int kl = snprintf(key, sizeof(key), "%llu", (unsigned long long)r->flow_id);
        int32_t part = (int32_t)(r->flow_id % (uint64_t)o->parts);
        if (drst_stream_produce(o->kafka, o->topic, part, key, (size_t)kl, buf, n - 1, err,
                                sizeof(err)) == DRST_OK) {
            o->produced++;
        } else if (o->produce_failed++ == 0) {
            snprintf(o->kerr, sizeof(o->kerr), "%s", err);
        }
    }
}

/* End every partition with a sentinel and wait for delivery. */
static int kafka_close(struct outctx *o)
{
    char buf[128], err[DRST_ERRLEN];
    int rc = TOOL_OK;
    for (int32_t p = 0; p < o->parts; p++) {
        size_t len;
        if (drst_record_encode_eos(p, buf, sizeof(buf), &len) != DRST_OK ||
            drst_stream_produce(o->kafka, o->topic, p, NULL, 0, buf, len, err, sizeof(err))) {
            return tool_error("sentinel of partition %d of '%s': %s", (int)p, o->topic, err);
        }
    }
    if (drst_stream_flush(o->kafka, 60000, err, sizeof(err)))
        return tool_error("%s", err);
    drst_stream_stats_t st;
    drst_stream_stats(o->kafka, &st);
    if (o->produce_failed || st.delivery_failed)
        rc = tool_error("topic '%s': %llu record(s) not produced, %llu not delivered (%s)",
                        o->topic, (unsigned long long)o->produce_failed,
                        (unsigned long long)st.delivery_failed, o->kerr);
    return rc;
}

static void on_summary(void *opaque, const drst_flow_summary_t *s)
{
    struct outctx *o = opaque;
    char buf[2048];
    if (!o->summary)
        return;
    size_t n = drst_flow_summary_format(o->fmt, s, o->nsum++, buf, sizeof(buf));
    if (n < sizeof(buf))
        write_buf(o->summary, buf, n, &o->werr);
}

static int parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                        double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return tool_usage_error(cmd, "%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
    *out = v;
    return 0;
}

static int parse_u64(const char *cmd, const char *opt, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
        return tool_usage_error(cmd, "%s: '%s' is not an integer in [%llu, %llu]", opt, s,
                                (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return 0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int cmd_flows(int argc, char **argv)
{
    enum {
        O_FORMAT = 256,
        O_WORKERS,
        O_IDLE,
        O_ACTIVE,
        O_MAXF,
        O_INTERVAL,
        O_SUMMARY,
        O_REJECTS,
        O_TOPIC,
        O_BOOT
    };
    static const struct option lo[] = {
        {"read", required_argument, NULL, 'r'},
        {"interface", required_argument, NULL, 'i'},
        {"filter", required_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'c'},
        {"output", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, O_FORMAT},
        {"workers", required_argument, NULL, O_WORKERS},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"active-timeout", required_argument, NULL, O_ACTIVE},
        {"max-flows", required_argument, NULL, O_MAXF},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"summary", required_argument, NULL, O_SUMMARY},
        {"rejects", required_argument, NULL, O_REJECTS},
        {"topic", required_argument, NULL, O_TOPIC},
        {"bootstrap", required_argument, NULL, O_BOOT},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "flows";
    drst_flow_config_t cfg;
    drst_flow_capture_opts_t co;
    const char *rejpath = NULL;
    const char *out = NULL, *sumpath = NULL, *format = NULL, *topic = NULL, *bootstrap = NULL;
    int quiet = 0, c, rc;
    uint64_t u = 0;
    char err[DRST_ERRLEN];

    drst_flow_config_init(&cfg);
    memset(&co, 0, sizeof(co));
    co.on_ready = on_ready;
    co.ready_ctx = &quiet;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":r:i:f:c:o:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            help();
            return TOOL_OK;
        case 'r':
            co.file = optarg;
            break;
        case 'i':
            co.iface = optarg;
            break;
        case 'f':
            co.filter = optarg;
            break;
        case 'c':
            if ((rc = parse_u64(cmd, "--count", optarg, 1, UINT64_MAX, &co.max_packets)))
                return rc;
            break;
        case 'o':
            out = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case O_FORMAT:
            format = optarg;
            break;
        case O_WORKERS:
            if ((rc = parse_u64(cmd, "--workers", optarg, 1, 64, &u)))
                return rc;
            cfg.workers = (unsigned)u;
            break;
        case O_IDLE:
            if ((rc = parse_double(cmd, "--idle-timeout", optarg, 0.001, 3600, &cfg.idle_timeout)))
                return rc;
            break;
        case O_ACTIVE:
            if ((rc = parse_double(cmd, "--active-timeout", optarg, 0, 1e6, &cfg.active_timeout)))
                return rc;
            break;
        case O_MAXF:
            if ((rc = parse_u64(cmd, "--max-flows", optarg, 1, 1u << 30, &u)))
                return rc;
            cfg.max_flows = (uint32_t)u;
            break;
        case O_INTERVAL:
            if ((rc = parse_double(cmd, "--interval", optarg, 0, 86400, &cfg.interval)))
                return rc;
            break;
        case O_SUMMARY:
            sumpath = optarg;
            break;
        case O_REJECTS:
            rejpath = optarg;
            break;
        case O_TOPIC:
            topic = optarg;
            break;
        case O_BOOT:
            bootstrap = optarg;
            break;
        case ':':
            return tool_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default:
            return tool_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return tool_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!co.file == !co.iface)
        return tool_usage_error(cmd, "give exactly one source: -r FILE or -i IFACE");
    if (cfg.max_flows < cfg.workers)
        return tool_usage_error(cmd, "--max-flows must be at least --workers");
    if (!topic != !bootstrap)
        return tool_usage_error(cmd, "--topic and --bootstrap go together");

    struct outctx oc;
    memset(&oc, 0, sizeof(oc));
    if (format) {
        if (!strcmp(format, "csv"))
            oc.fmt = DRST_FLOW_FMT_CSV;
        else if (!strcmp(format, "jsonl") || !strcmp(format, "json"))
            oc.fmt = DRST_FLOW_FMT_JSONL;
        else
            return tool_usage_error(cmd, "--format must be csv or jsonl, not '%s'", format);
    } else if (out && (ends_with(out, ".jsonl") || ends_with(out, ".json"))) {
        oc.fmt = DRST_FLOW_FMT_JSONL;
    }

    int ret = TOOL_FAIL;
    drst_flow_engine_t *e = NULL;
    oc.flows = stdout;
    if (out && strcmp(out, "-")) {
        oc.flows = fopen(out, "w");
        if (!oc.flows)
            return tool_error("cannot create '%s': %s", out, strerror(errno));
    }
    if (sumpath) {
        oc.summary = strcmp(sumpath, "-") ? fopen(sumpath, "w") : stdout;
        if (!oc.summary) {
            tool_error("cannot create '%s': %s", sumpath, strerror(errno));
            goto out;
        }
    }
    if (rejpath && !(oc.rejects = drst_flow_rejects_open(rejpath, err, sizeof(err)))) {
        tool_error("%s", err);
        goto out;
    }
    if (oc.fmt == DRST_FLOW_FMT_CSV) {
        char h[4096];
        size_t n = drst_flow_csv_header(h, sizeof(h));
        write_buf(oc.flows, h, n, &oc.werr);
        if (oc.summary) {
            n = drst_flow_summary_csv_header(h, sizeof(h));
            write_buf(oc.summary, h, n, &oc.werr);
        }
    }
    if (!sumpath)
        cfg.interval = 0; /* nobody reads summaries: skip the interval ticks */

    if (topic) {
        drst_stream_conf_t sc;
        memset(&sc, 0, sizeof(sc));
        sc.bootstrap = bootstrap;
        sc.client_id = "drst-flows";
        oc.kafka = drst_stream_open(&drst_transport_kafka, &sc, err, sizeof(err));
        if (!oc.kafka) {
            tool_error("%s", err);
            goto out;
        }
        oc.topic = topic;
        if (drst_stream_partitions(oc.kafka, topic, &oc.parts, err, sizeof(err)) || oc.parts < 1) {
            tool_error("topic '%s': %s", topic, err);
            goto out;
        }
    }
    drst_flow_sink_t sink = {on_flow, on_summary, &oc, on_reject};
    e = drst_flow_engine_new(&cfg, &sink, err, sizeof(err));
    if (!e) {
        tool_error("%s", err);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    drst_err_t crc = drst_flow_capture_run(&co, e, &stop_flag, err, sizeof(err));
    char ferr[DRST_ERRLEN];
    drst_err_t frc = drst_flow_engine_finish(e, ferr, sizeof(ferr));
    drst_flow_counters_t k;
    drst_flow_engine_counters(e, &k);
    if (!quiet)
        fprintf(stderr,
                "drst flows: %llu packets (%llu truncated, %llu malformed, %llu non-IP, "
                "%llu later fragments), %llu flows, %llu records (%llu interim), %llu evicted\n",
                (unsigned long long)k.packets, (unsigned long long)k.truncated,
                (unsigned long long)k.malformed, (unsigned long long)k.non_ip,
                (unsigned long long)k.frag_later, (unsigned long long)k.flows,
                (unsigned long long)k.flow_records, (unsigned long long)k.interim_records,
                (unsigned long long)k.evicted);
    if (co.iface && (!quiet || k.capture_drops))
        fprintf(stderr, "drst flows: %llu packets dropped before the capture saw them%s\n",
                (unsigned long long)k.capture_drops,
                k.capture_drops ? " (kernel buffer full or interface drops)" : "");
    if (k.unsupported_link)
        fprintf(stderr, "drst flows: %llu packets of an unsupported link type were counted only\n",
                (unsigned long long)k.unsupported_link);
    if (crc != DRST_OK) {
        tool_error("%s%s", err, k.packets ? " (flows read before that point were written)" : "");
        goto out;
    }
    if (frc != DRST_OK) {
        tool_error("%s", ferr);
        goto out;
    }
    if (oc.rejects) {
        uint64_t kept = 0, lost = 0;
        drst_err_t rrc = drst_flow_rejects_close(oc.rejects, &kept, &lost, err, sizeof(err));
        oc.rejects = NULL;
        if (!quiet || lost)
            fprintf(stderr, "drst flows: %llu rejected packet(s) kept in '%s'%s\n",
                    (unsigned long long)kept, rejpath,
                    lost ? " (some of another link type could not be)" : "");
        if (rrc != DRST_OK) {
            tool_error("%s", err);
            goto out;
        }
    }
    if (oc.kafka && kafka_close(&oc) != TOOL_OK)
        goto out;
    if (oc.kafka && !quiet)
        fprintf(stderr, "drst flows: %llu record(s) + %d sentinel(s) produced to '%s'\n",
                (unsigned long long)oc.produced, (int)oc.parts, topic);
    ret = TOOL_OK;
out:
    drst_flow_engine_free(e);
    (void)drst_flow_rejects_close(oc.rejects, NULL, NULL, NULL, 0);
    drst_stream_close(oc.kafka);
    if (oc.flows && fflush(oc.flows) != 0 && !oc.werr)
        oc.werr = errno;
    if (oc.flows && oc.flows != stdout)
        fclose(oc.flows);
    if (oc.summary && oc.summary != stdout) {
        if (fclose(oc.summary) != 0 && !oc.werr)
            oc.werr = errno;
    }
    if (oc.werr && ret == TOOL_OK)
        ret = tool_error("writing the output failed: %s", strerror(oc.werr));
    return ret;
}
