/* drst consume: print a topic's records as JSON lines (a debugging aid, like
 * kcat -C), as one member of a consumer group. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"

#define MAX_KV 64

static void help(void)
{
    printf("usage: drst consume --topic T --group G [--bootstrap HOST:PORT | --in FILE.jsonl]\n"
           "                    [--from-beginning] [--max N] [--idle-ms M] [options]\n\n"
           "Join consumer group G on topic T and print every record as one JSON line, as it\n"
           "arrived (a debugging aid, like kcat -C). Records are committed after they are\n"
           "printed (at-least-once). It stops when every partition it owns has delivered its\n"
           "end-of-stream sentinel, after --max records, after --idle-ms without records, or\n"
           "on SIGINT/SIGTERM; nothing printed is left uncommitted.\n\n"
           "Payloads that are not records (bad JSON, wrong types) are not printed: they go to\n"
           "the dead-letter file or topic with the reason, and are counted.\n\n"
           "options:\n"
           "  --topic T           topic to read (required with --bootstrap)\n"
           "  --group G           consumer group (default drst-consume)\n"
           "  --member ID         member/client id (default: librdkafka's)\n"
           "  --bootstrap H:P     Kafka bootstrap servers\n"
           "  --in FILE.jsonl     read a JSON Lines file instead ('-' = stdin)\n"
           "  --from-beginning    a new group starts at the oldest record (default: newest)\n"
           "  --max N             stop after N data records (default: no limit)\n"
           "  --idle-ms M         stop after M ms without records (default 10000; 0 = never)\n"
           "  --meta              print {\"partition\",\"offset\",\"recv_ts\",\"record\":...}\n"
           "  --no-eos            do not print sentinels (they are still honoured)\n"
           "  --dlq FILE          dead letters to FILE (JSON lines with reason and payload)\n"
           "  --dlq-topic T       dead letters to Kafka topic T\n"
           "  --assignor A        range (default) or roundrobin\n"
           "  -X key=value        librdkafka setting (repeatable), like kcat -X\n\n"
           "example:\n"
           "  drst consume --topic telemetry --group debug --bootstrap 127.0.0.1:9092 \\\n"
           "      --from-beginning --max 10\n");
}

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

int cmd_consume(int argc, char **argv)
{
    const char *topic = NULL, *group = "drst-consume", *member = NULL, *bootstrap = NULL;
    const char *in = NULL, *dlq_path = NULL, *dlq_topic = NULL, *kv[MAX_KV];
    size_t nkv = 0;
    int from_beginning = 0, meta = 0, print_eos = 1, rc = TOOL_FAIL;
    long long max = -1, idle_ms = 10000;
    drst_assignor_t assignor = DRST_ASSIGN_RANGE;
    char err[DRST_ERRLEN], source[256];
    drst_stream_t *h = NULL, *dlqprod = NULL;
    drst_dlq_t *dlq = NULL;
    drst_schema_t *schema = NULL;
    drst_eos_t eos = {0};
    uint64_t nrec = 0, neos = 0, nbad = 0;
    int eos_ok = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return TOOL_OK;
        }
        if (!strcmp(a, "--from-beginning")) {
            from_beginning = 1;
            continue;
        }
        if (!strcmp(a, "--meta")) {
            meta = 1;
            continue;
        }
        if (!strcmp(a, "--no-eos")) {
            print_eos = 0;
            continue;
        }
        if (!v)
            return tool_usage_error("consume", "unknown or incomplete option '%s'", a);
        i++;
        if (!strcmp(a, "--topic")) {
            topic = v;
        } else if (!strcmp(a, "--group")) {
            group = v;
        } else if (!strcmp(a, "--member")) {
            member = v;
        } else if (!strcmp(a, "--bootstrap")) {
            bootstrap = v;
        } else if (!strcmp(a, "--in")) {
            in = v;
        } else if (!strcmp(a, "--max")) {
            max = strtoll(v, &end, 10);
            if (*end || max < 0)
                return tool_usage_error("consume", "--max: expected N >= 0, got '%s'", v);
        } else if (!strcmp(a, "--idle-ms")) {
            idle_ms = strtoll(v, &end, 10);
            if (*end || idle_ms < 0)
                return tool_usage_error("consume", "--idle-ms: expected M >= 0, got '%s'", v);
        } else if (!strcmp(a, "--dlq")) {
            dlq_path = v;
        } else if (!strcmp(a, "--dlq-topic")) {
            dlq_topic = v;
        } else if (!strcmp(a, "--assignor")) {
            if (!strcmp(v, "range"))
                assignor = DRST_ASSIGN_RANGE;
            else if (!strcmp(v, "roundrobin"))
                assignor = DRST_ASSIGN_ROUNDROBIN;
            else
                return tool_usage_error("consume", "--assignor: range or roundrobin, not '%s'", v);
        } else if (!strcmp(a, "-X")) {
            if (nkv == MAX_KV || !strchr(v, '='))
                return tool_usage_error("consume", "-X expects key=value, got '%s'", v);
            kv[nkv++] = v;
        } else {
            return tool_usage_error("consume", "unknown option '%s'", a);
        }
    }
    if (!!bootstrap == !!in)
        return tool_usage_error("consume", "give exactly one of --bootstrap and --in");
    if (bootstrap && !topic)
        return tool_usage_error("consume", "--topic is required with --bootstrap");
    if (dlq_topic && !bootstrap)
        return tool_usage_error("consume", "--dlq-topic needs --bootstrap");
    if (!topic)
        topic = "drst";

    {
        /* Records are only checked, not aligned: any feature name is "unknown". */
        static const char *none[] = {"\x01"};
        schema = drst_schema_new(none, 1, NULL, err, sizeof(err));
        if (!schema)
            return tool_error("%s", err);
    }
    {
        drst_stream_conf_t conf = {.bootstrap = bootstrap,
                                   .path = in,
                                   .client_id = member,
                                   .kv = kv,
                                   .nkv = nkv,
                                   .from_beginning = from_beginning,
                                   .assignor = assignor};
        h = drst_stream_open(bootstrap ? &drst_transport_kafka : &drst_transport_jsonl, &conf, err,
                             sizeof(err));
        if (!h || drst_stream_subscribe(h, topic, group, member, err, sizeof(err))) {
            tool_error("%s", err);
            goto out;
        }
        if (dlq_topic) {
            conf.client_id = NULL;
            dlqprod = drst_stream_open(&drst_transport_kafka, &conf, err, sizeof(err));
            dlq = dlqprod ? drst_dlq_open_topic(dlqprod, dlq_topic, err, sizeof(err)) : NULL;
        } else if (dlq_path) {
            dlq = drst_dlq_open_file(dlq_path, err, sizeof(err));
        }
        if ((dlq_topic || dlq_path) && !dlq) {
            tool_error("%s", err);
            goto out;
        }
    }
    {
        int32_t np = 1;
        if (bootstrap && drst_stream_partitions(h, topic, &np, err, sizeof(err))) {
            tool_error("%s", err);
            goto out;
        }
        if (drst_eos_init(&eos, np)) {
            tool_error("out of memory");
            goto out;
        }
        eos_ok = 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    {
        double f[1];
        drst_record_t r = {.features = f};
        long long idle = 0;
        const int tick = 100;
        while (!stop_flag && !drst_eos_done(&eos) && (max < 0 || (long long)nrec < max)) {
            drst_stream_batch_t b;
            size_t want = max < 0 ? 1000 : (size_t)(max - (long long)nrec);
            drst_err_t e =
                drst_stream_poll(h, tick, want > 1000 ? 1000 : want, &b, err, sizeof(err));
            if (e == DRST_ERR_EOF)
                break;
            if (e) {
                tool_error("%s", err);
                goto out;
            }
            if (b.ev == DRST_STREAM_EV_NONE) {
                idle += tick;
                if (idle_ms && idle >= idle_ms)
                    break;
                continue;
            }
            idle = 0;
            drst_eos_apply(&eos, &b);
            if (b.ev != DRST_STREAM_EV_MSGS)
                continue;
            double recv = now_s();
            for (size_t i = 0; i < b.n; i++) {
                const drst_msg_t *m = &b.msgs[i];
                e = drst_record_decode(schema, m->payload, m->len, &r, err, sizeof(err));
                if (e == DRST_ERR_SCHEMA)
                    e = DRST_OK; /* a binary record of some schema: fine, not ours to check */
                if (e) {
                    char reason[DRST_ERRLEN];
                    snprintf(reason, sizeof(reason), "%s", err);
                    nbad++;
                    snprintf(source, sizeof(source), "%s/%d/%lld", topic, (int)m->partition,
                             (long long)m->offset);
                    if (dlq && drst_dlq_put(dlq, m->payload, m->len, source, reason, err,
                                            sizeof(err)) != DRST_OK) {
                        tool_error("dead letter: %s", err);
                        goto out;
                    }
                    if (nbad <= 50)
                        fprintf(stderr, "%s: rejected: %s\n", source, reason);
                    continue;
                }
                if (r.eos) {
                    neos++;
                    drst_eos_mark(&eos, m->partition);
                    if (!print_eos)
                        continue;
                } else {
                    nrec++;
                }
                if (meta)
                    printf("{\"partition\":%d,\"offset\":%lld,\"recv_ts\":%.6f,\"record\":",
                           (int)m->partition, (long long)m->offset, recv);
                if (m->len >= 4 && !memcmp(m->payload, "DRB1", 4))
                    printf("{\"binary\":true,\"seq\":%llu,\"bytes\":%zu}",
                           (unsigned long long)r.seq, m->len);
                else
                    fwrite(m->payload, 1, m->len, stdout);
                fputs(meta ? "}\n" : "\n", stdout);
            }
            /* Printed before committed: a crash can repeat lines, never lose them. */
            if (fflush(stdout) != 0) {
                tool_error("cannot write to stdout");
                goto out;
            }
            size_t nf;
            const int32_t *fin = drst_eos_pending(&eos, &nf);
            if (drst_stream_commit(h, fin, nf, err, sizeof(err))) {
                tool_error("%s", err);
                goto out;
            }
            drst_eos_committed(&eos);
        }
    }
    fprintf(stderr, "drst consume: %llu record(s), %llu sentinel(s), %llu rejected%s%s\n",
            (unsigned long long)nrec, (unsigned long long)neos, (unsigned long long)nbad,
            dlq ? " (dead-lettered)" : "", stop_flag ? " (interrupted)" : "");
    rc = TOOL_OK;
out:
    if (eos_ok)
        drst_eos_release(&eos);
    drst_stream_close(h);
    drst_dlq_free(dlq);
    if (dlqprod) {
        if (drst_stream_flush(dlqprod, 10000, err, sizeof(err)))
            rc = tool_error("dead-letter topic: %s", err);
        drst_stream_close(dlqprod);
    }
    drst_schema_free(schema);
    return rc;
}
