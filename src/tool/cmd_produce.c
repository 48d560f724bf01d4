/* drst produce: replay dataset stages (CSV) as a stream of records. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

#define MAX_STAGES 32
#define MAX_KV     64

static void help(void)
{
    printf(
        "usage: drst produce --data FILE.csv[:head=N|:tail=N]... (--topic T [--bootstrap "
        "HOST:PORT]\n"
        "                    | --out FILE.jsonl) [options]\n\n"
        "Replay one or more dataset stages, in order, as records on a stream: one record per\n"
        "CSV row, {\"seq\",\"ts\",\"send_ts\",\"features\":{name:value},\"label\"}, stamped with\n"
        "send_ts when sent. Each partition ends with an end-of-stream sentinel\n"
        "{\"eos\":true,\"partition\":p}. The feature schema is the first stage's columns minus\n"
        "the label, the excluded columns and unnamed index columns; later stages are aligned\n"
        "by name (a column they lack is left out of their records).\n\n"
        "options:\n"
        "  --data FILE[:head=N|:tail=N]  a stage: a CSV file, optionally only its first or\n"
        "                        last N rows (repeatable, replayed in the order given)\n"
        "  --topic T             topic to write to (required with --bootstrap)\n"
        "  --bootstrap H:P       Kafka bootstrap servers (e.g. from 'drst broker')\n"
        "  --out FILE.jsonl      write JSON Lines to FILE instead ('-' = stdout, the default\n"
        "                        when neither --bootstrap nor --out is given)\n"
        "  --partitions P        partitions to spread over (default: the topic's count on\n"
        "                        Kafka, 1 for a file)\n"
        "  --partition-mode M    rr (default: row i to partition i %% P), hash (key = seq,\n"
        "                        Kafka's murmur2) or auto (the transport's partitioner)\n"
        "  --tps R               send R records per second (default: as fast as possible)\n"
        "  --interval-ms M       or: one record every M ms ...\n"
        "  --jitter-ms J         ... plus a uniform random delay in [-J, J] ms\n"
        "  --seed S              seed of the jitter (default 1)\n"
        "  --label COL           label column (default output_rate; 'none' for no label)\n"
        "  --exclude A,B         columns that are not features (default input_rate,latency)\n"
        "  --format json|binary  payload encoding (default json; binary is drst-only)\n"
        "  -X key=value          librdkafka setting (repeatable), like kcat -X\n"
        "  --quiet               no progress line\n\n"
        "example:\n"
        "  drst produce --data combined.csv:tail=200 --data stage2.csv --topic telemetry \\\n"
        "      --bootstrap 127.0.0.1:9092 --tps 100\n");
}

struct stage {
    char *path;
    long head, tail;
    drst_table_t *t;
    long *map; /* schema feature -> column, -1 if absent */
    long label_col;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop_flag)
        ;
}

static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;
    if (!list)
        return 0;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, name, n) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static int parse_stage(const char *arg, struct stage *st)
{
    const char *c = strrchr(arg, ':');
    memset(st, 0, sizeof(*st));
    st->head = st->tail = -1;
    if (c && (!strncmp(c + 1, "head=", 5) || !strncmp(c + 1, "tail=", 5))) {
        char *end;
        long n = strtol(c + 6, &end, 10);
        if (*end || n < 0)
            return -1;
        if (c[1] == 'h')
            st->head = n;
        else
            st->tail = n;
        st->path = strndup(arg, (size_t)(c - arg));
    } else {
        st->path = strdup(arg);
    }
    return st->path ? 0 : -1;
}

static int unnamed(const char *name)
{
    return !*name || !strncmp(name, "Unnamed:", 8);
}

int cmd_produce(int argc, char **argv)
{
    struct stage stages[MAX_STAGES];
    int nst = 0, rc = TOOL_FAIL, quiet = 0, binary = 0;
    const char *topic = NULL, *bootstrap = NULL, *out = NULL, *label = "output_rate";
    const char *exclude = "input_rate,latency", *mode = "rr", *kv[MAX_KV];
    size_t nkv = 0;
    long partitions = 0;
    double tps = 0, interval_ms = -1, jitter_ms = 0;
    unsigned long long seed = 1;
    char err[DRST_ERRLEN];
    drst_schema_t *schema = NULL;
    drst_stream_t *h = NULL;
    char **names = NULL;
    size_t nf = 0;
    double *feat = NULL;
    char *buf = NULL;
    size_t bufcap = 0;
    uint64_t total = 0, seq = 0;
    tool_diag_t td;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return TOOL_OK;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!v)
            return tool_usage_error("produce", "unknown or incomplete option '%s'", a);
        i++;
        if (!strcmp(a, "--data")) {
            if (nst == MAX_STAGES)
                return tool_usage_error("produce", "at most %d --data stages", MAX_STAGES);
            if (parse_stage(v, &stages[nst]))
                return tool_usage_error("produce", "--data '%s': bad :head=N or :tail=N", v);
            nst++;
        } else if (!strcmp(a, "--topic")) {
            topic = v;
        } else if (!strcmp(a, "--bootstrap")) {
            bootstrap = v;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--partitions")) {
            partitions = strtol(v, &end, 10);
            if (*end || partitions < 1 || partitions > 100000)
                return tool_usage_error("produce", "--partitions: expected 1..100000, got '%s'", v);
        } else if (!strcmp(a, "--partition-mode")) {
            if (strcmp(v, "rr") && strcmp(v, "hash") && strcmp(v, "auto"))
                return tool_usage_error("produce", "--partition-mode: rr, hash or auto, not '%s'",
                                        v);
            mode = v;
        } else if (!strcmp(a, "--tps")) {
            tps = strtod(v, &end);
            if (*end || !(tps > 0))
                return tool_usage_error("produce", "--tps: expected a positive rate, got '%s'", v);
        } else if (!strcmp(a, "--interval-ms")) {
            interval_ms = strtod(v, &end);
            if (*end || !(interval_ms >= 0))
                return tool_usage_error("produce", "--interval-ms: expected >= 0, got '%s'", v);
        } else if (!strcmp(a, "--jitter-ms")) {
            jitter_ms = strtod(v, &end);
            if (*end || !(jitter_ms >= 0))
                return tool_usage_error("produce", "--jitter-ms: expected >= 0, got '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            seed = strtoull(v, &end, 10);
            if (*end)
                return tool_usage_error("produce", "--seed: expected an integer, got '%s'", v);
        } else if (!strcmp(a, "--label")) {
            label = strcmp(v, "none") ? v : NULL;
        } else if (!strcmp(a, "--exclude")) {
            exclude = v;
        } else if (!strcmp(a, "--format")) {
            if (strcmp(v, "json") && strcmp(v, "binary"))
                return tool_usage_error("produce", "--format: json or binary, not '%s'", v);
            binary = !strcmp(v, "binary");
        } else if (!strcmp(a, "-X")) {
            if (nkv == MAX_KV || !strchr(v, '='))
                return tool_usage_error("produce", "-X expects key=value, got '%s'", v);
            kv[nkv++] = v;
        } else {
            return tool_usage_error("produce", "unknown option '%s'", a);
        }
    }
    if (nst == 0)
        return tool_usage_error("produce", "at least one --data FILE.csv is required");
    if (bootstrap && out)
        return tool_usage_error("produce", "--bootstrap and --out are exclusive");
    if (bootstrap && !topic)
        return tool_usage_error("produce", "--topic is required with --bootstrap");
    if (tps > 0 && interval_ms >= 0)
        return tool_usage_error("produce", "--tps and --interval-ms are exclusive");
    if (binary && !bootstrap)
        return tool_usage_error("produce", "--format binary needs --bootstrap (JSON Lines "
                                           "files hold JSON)");
    if (!bootstrap && !out)
        out = "-";
    if (!topic)
        topic = "drst";

    if (tool_diag_init(&td, 0, NULL))
        return TOOL_FAIL;
    /* Read every stage first: a bad file fails before anything is sent. */
    for (int s = 0; s < nst; s++) {
        drst_err_t e =
            drst_table_read_csv(stages[s].path, NULL, &stages[s].t, &td.diag, err, sizeof(err));
        if (e) {
            tool_error("%s", err);
            goto out;
        }
        stages[s].label_col = label ? drst_table_col(stages[s].t, label) : -1;
        if (label && stages[s].label_col < 0) {
            tool_error("'%s': no label column '%s' (use --label COL or --label none)",
                       stages[s].path, label);
            goto out;
        }
    }
    /* The schema: the first stage's feature columns. */
    names = calloc(stages[0].t->ncols, sizeof(*names));
    if (!names)
        goto nomem;
    for (size_t c = 0; c < stages[0].t->ncols; c++) {
        const char *n = stages[0].t->names[c];
        if (unnamed(n) || (label && !strcmp(n, label)) || in_list(exclude, n))
            continue;
        names[nf++] = stages[0].t->names[c];
    }
    if (nf == 0) {
        tool_error("'%s': no feature columns left", stages[0].path);
        goto out;
    }
    schema = drst_schema_new((const char *const *)names, nf, NULL, err, sizeof(err));
    if (!schema) {
        tool_error("%s", err);
        goto out;
    }
    for (int s = 0; s < nst; s++) {
        size_t absent = 0;
        stages[s].map = malloc(nf * sizeof(long));
        if (!stages[s].map)
            goto nomem;
        for (size_t f = 0; f < nf; f++) {
            stages[s].map[f] = drst_table_col(stages[s].t, names[f]);
            absent += stages[s].map[f] < 0;
        }
        if (absent)
            fprintf(stderr,
                    "drst produce: '%s' lacks %zu of the %zu features; its records "
                    "leave them out\n",
                    stages[s].path, absent, nf);
        size_t n = stages[s].t->nrows, first = 0;
        if (stages[s].head >= 0 && (size_t)stages[s].head < n)
            n = (size_t)stages[s].head;
        if (stages[s].tail >= 0 && (size_t)stages[s].tail < n) {
            first = n - (size_t)stages[s].tail;
            n = (size_t)stages[s].tail;
        }
        stages[s].head = (long)first; /* reused: first row to send */
        stages[s].tail = (long)n;     /* reused: rows to send */
        total += n;
    }

    {
        drst_stream_conf_t conf = {.bootstrap = bootstrap, .path = out, .kv = kv, .nkv = nkv};
        h = drst_stream_open(bootstrap ? &drst_transport_kafka : &drst_transport_jsonl, &conf, err,
                             sizeof(err));
        if (!h) {
            tool_error("%s", err);
            goto out;
        }
    }
    if (partitions == 0) {
        int32_t np = 1;
        if (drst_stream_partitions(h, topic, &np, err, sizeof(err))) {
            tool_error("%s", err);
            goto out;
        }
        partitions = np;
    }
    feat = malloc(nf * sizeof(double));
    bufcap = 64 + nf * 64 + drst_record_bin_size(schema);
    for (size_t f = 0; f < nf; f++)
        bufcap += strlen(names[f]) * 6;
    buf = malloc(bufcap);
    if (!feat || !buf)
        goto nomem;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    {
        int tty = !quiet && isatty(STDERR_FILENO);
        double start = mono_s(), next = start, last_progress = start;
        uint64_t rng = seed ? seed : 1;
        drst_record_t r = {.features = feat, .offset = -1};
        for (int s = 0; s < nst && !stop_flag; s++) {
            const struct stage *st = &stages[s];
            for (size_t row = (size_t)st->head; row < (size_t)(st->head + st->tail) && !stop_flag;
                 row++) {
                size_t len;
                int32_t part;
                char key[24];
                size_t keylen = 0;
                drst_err_t e;

                if (tps > 0) {
                    next = start + (double)seq / tps;
                    sleep_until(next);
                } else if (interval_ms >= 0) {
                    double j = 0;
                    if (jitter_ms > 0) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        j = ((double)(rng >> 11) / 9007199254740992.0 * 2 - 1) * jitter_ms;
                    }
                    if (seq)
                        sleep_until(next + fmax(0, interval_ms + j) / 1000.0);
                    next = mono_s();
                }
                for (size_t f = 0; f < nf; f++)
                    feat[f] = st->map[f] >= 0 ? drst_table_at(st->t, row, (size_t)st->map[f]) : NAN;
                r.seq = seq;
                r.send_ts = now_s();
                r.ts = r.send_ts;
                r.has_label =
                    st->label_col >= 0 && !isnan(drst_table_at(st->t, row, (size_t)st->label_col));
                r.label = r.has_label ? drst_table_at(st->t, row, (size_t)st->label_col) : NAN;
                e = binary ? drst_record_encode_bin(schema, &r, buf, bufcap, &len)
                           : drst_record_encode_json(schema, &r, buf, bufcap, &len);
                if (e) {
                    tool_error("record %llu does not fit in %zu bytes", (unsigned long long)seq,
                               bufcap);
                    goto out;
                }
                part = -1;
                if (!strcmp(mode, "rr"))
                    part = (int32_t)(seq % (uint64_t)partitions);
                else if (!strcmp(mode, "hash"))
                    keylen = (size_t)snprintf(key, sizeof(key), "%llu", (unsigned long long)seq);
                e = drst_stream_produce(h, topic, part, keylen ? key : NULL, keylen, buf, len, err,
                                        sizeof(err));
                if (e) {
                    tool_error("%s", err);
                    goto out;
                }
                seq++;
                if (tty && mono_s() - last_progress > 0.5) {
                    last_progress = mono_s();
                    fprintf(stderr, "\rdrst produce: %llu/%llu records (%.0f/s)   ",
                            (unsigned long long)seq, (unsigned long long)total,
                            (double)seq / (last_progress - start + 1e-9));
                }
            }
        }
        if (tty)
            fputc('\n', stderr);
    }
    for (int32_t p = 0; p < (int32_t)partitions; p++) {
        size_t len;
        drst_record_t eos = {.eos = 1, .partition = p, .features = feat};
        drst_err_t e = binary ? drst_record_encode_bin(schema, &eos, buf, bufcap, &len)
                              : drst_record_encode_eos(p, buf, bufcap, &len);
        if (e || drst_stream_produce(h, topic, p, NULL, 0, buf, len, err, sizeof(err))) {
            tool_error("sentinel of partition %d: %s", (int)p, err);
            goto out;
        }
    }
    if (drst_stream_flush(h, 60000, err, sizeof(err))) {
        tool_error("%s", err);
        goto out;
    }
    {
        drst_stream_stats_t st;
        drst_stream_stats(h, &st);
        if (!quiet)
            fprintf(stderr,
                    "drst produce: %llu record(s) + %ld sentinel(s) to '%s' over %ld "
                    "partition(s); delivered %llu, failed %llu%s\n",
                    (unsigned long long)seq, partitions, bootstrap ? topic : out, partitions,
                    (unsigned long long)st.delivered, (unsigned long long)st.delivery_failed,
                    stop_flag ? " (interrupted)" : "");
        rc = st.delivery_failed ? TOOL_FAIL : TOOL_OK;
    }
    goto out;
nomem:
    tool_error("out of memory");
out:
    tool_diag_close(&td, "produce");
    drst_stream_close(h);
    drst_schema_free(schema);
    for (int s = 0; s < nst; s++) {
        drst_table_free(stages[s].t);
        free(stages[s].map);
        free(stages[s].path);
    }
    free(names);
    free(feat);
    free(buf);
    return rc;
}
