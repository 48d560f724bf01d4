/* drst monitor: the drift monitor as a consumer group member of a topic. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "drst/control.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: drst monitor --store DIR (--bootstrap HOST:PORT | --input FILE.jsonl) "
            "[options]\n"
            "\n"
            "Watch a record stream for drift, in its own consumer group over every partition.\n"
            "Feature drift: per-feature histogram Jensen-Shannon divergence in bits between a\n"
            "baseline (the training data given with --baseline, else the first full window)\n"
            "and a sliding window, evaluated every --stride records; the mean over features\n"
            "selects tier A < B < C. Error drift: Page-Hinkley (or ADWIN) on the relative\n"
            "error of the store's 'latest' model when records carry labels. On a trigger the\n"
            "window (features + labels) and a replay reservoir of older labelled records are\n"
            "frozen into state/windows/, state/retrain/request.json gets the tier and the\n"
            "evidence, and the monitor cools down; when 'latest' moves it rebaselines. The\n"
            "whole state is kept in state/monitor.json: a restarted monitor resumes and does\n"
            "not fire the same drift again (with Kafka the group's committed offsets resume\n"
            "the stream; a JSONL file is read from its start).\n"
            "\n"
            "options:\n"
            "  --store DIR          store (default $DRST_STORE)\n"
            "  --bootstrap H:P      Kafka brokers; or --input FILE.jsonl (one record a line)\n"
            "  --topic T            topic (default drst)\n"
            "  --group G            consumer group (default drst-monitor)\n"
            "  --from-beginning     a new group starts at the oldest record\n"
            "  --baseline FILE.csv  baseline data (e.g. the training CSV)\n"
            "  --features A,B,...   monitored features (default: the latest model's, else the\n"
            "                       baseline's numeric columns but target/input_rate/latency)\n"
            "  --target NAME        label name in frozen windows (default output_rate)\n"
            "  --window W           window records (default 300)\n"
            "  --stride S           evaluate every S records (default 50)\n"
            "  --bins B             bins per feature (default 64)\n"
            "  --thresholds A,B,C   tier thresholds in bits (default 0.10,0.25,0.50)\n"
            "  --calibrate[=iid|block]  thresholds from the baseline's permutation null\n"
            "                       (block: contiguous rows, for autocorrelated data)\n"
            "  --cooldown N         records without a new trigger after one (default W)\n"
            "  --error-detector K   page_hinkley|adwin|none (default page_hinkley)\n"
            "  --refresh N          also request a tier-A retrain every N labelled records\n"
            "                       (default 0 = off)\n"
            "  --name NAME          monitor name in requests (default monitor)\n"
            "  --no-resume          ignore state/monitor.json\n"
            "  --idle-ms MS         stop after MS without records (default 5000)\n"
            "  --max N              stop after N records\n"
            "\n"
            "example:\n"
            "  drst monitor --store ./store --input stream.jsonl --baseline combined.csv "
            "--calibrate=block\n");
}

static int split_list(char *s, char **out, int max)
{
    int n = 0;
    for (char *p = s; p && *p && n < max;) {
        char *c = strchr(p, ',');
        if (c)
            *c = '\0';
        out[n++] = p;
        p = c ? c + 1 : NULL;
    }
    return n;
}

static void on_trigger(void *opaque, const drst_monitor_event_t *ev)
{
    (void)opaque;
    printf("{\"event\":\"trigger\",\"at\":%llu,\"tier\":%d,\"source\":\"%s\",\"score\":%.6g,"
           "\"n_drifted\":%zu,\"request\":\"%s\"}\n",
           (unsigned long long)ev->at, ev->tier, drst_trigger_source_name(ev->source), ev->score,
           ev->n_drifted, ev->request_id);
    fflush(stdout);
}

int cmd_monitor(int argc, char **argv)
{
    const char *store_uri = getenv("DRST_STORE"), *bootstrap = NULL, *input = NULL;
    const char *topic = "drst", *group = "drst-monitor", *baseline = NULL, *target = NULL;
    char *features = NULL;
    int from_beginning = 0, resume = 1, rc = TOOL_FAIL;
    long idle_ms = 5000;
    unsigned long long max = 0;
    char err[DRST_ERRLEN];
    drst_monitor_config_t mc = {0};
    enum { O_CAL = 256, O_NORES, O_FROM };
    static const struct option lo[] = {{"help", no_argument, 0, 'h'},
                                       {"store", required_argument, 0, 's'},
                                       {"bootstrap", required_argument, 0, 'b'},
                                       {"input", required_argument, 0, 'i'},
                                       {"topic", required_argument, 0, 't'},
                                       {"group", required_argument, 0, 'g'},
                                       {"from-beginning", no_argument, 0, O_FROM},
                                       {"baseline", required_argument, 0, 'B'},
                                       {"features", required_argument, 0, 'F'},
                                       {"target", required_argument, 0, 'T'},
                                       {"window", required_argument, 0, 'w'},
                                       {"stride", required_argument, 0, 'S'},
                                       {"bins", required_argument, 0, 'n'},
                                       {"thresholds", required_argument, 0, 'x'},
                                       {"calibrate", optional_argument, 0, O_CAL},
                                       {"cooldown", required_argument, 0, 'c'},
                                       {"error-detector", required_argument, 0, 'e'},
                                       {"refresh", required_argument, 0, 'r'},
                                       {"name", required_argument, 0, 'N'},
                                       {"no-resume", no_argument, 0, O_NORES},
                                       {"idle-ms", required_argument, 0, 'I'},
                                       {"max", required_argument, 0, 'm'},
                                       {0, 0, 0, 0}};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end = NULL;
        switch (ch) {
        case 'h':
            usage(stdout);
            return TOOL_OK;
        case 's':
            store_uri = optarg;
            break;
        case 'b':
            bootstrap = optarg;
            break;
        case 'i':
            input = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'g':
            group = optarg;
            break;
        case O_FROM:
            from_beginning = 1;
            break;
        case 'B':
            baseline = optarg;
            break;
        case 'F':
            features = optarg;
            break;
        case 'T':
            target = optarg;
            break;
        case 'w':
        case 'S':
        case 'n':
        case 'c':
        case 'r':
        case 'I':
        case 'm': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-')
                return tool_usage_error("monitor", "'%s' is not a count", optarg);
            if (ch == 'w')
                mc.window = (size_t)v;
            else if (ch == 'S')
                mc.stride = (size_t)v;
            else if (ch == 'n')
                mc.bins = (size_t)v;
            else if (ch == 'c')
                mc.cooldown = v;
            else if (ch == 'r')
                mc.refresh = v;
            else if (ch == 'I')
                idle_ms = (long)v;
            else
                max = v;
            break;
        }
        case 'x': {
            char *p = optarg;
            for (int k = 0; k < 3; k++) {
                mc.thresholds[k] = strtod(p, &end);
                if (end == p || (k < 2 && *end != ',') || (k == 2 && *end))
                    return tool_usage_error("monitor", "--thresholds wants A,B,C");
                p = end + 1;
            }
            break;
        }
        case O_CAL:
            if (!optarg || !strcmp(optarg, "iid"))
                mc.calibrate = 1;
            else if (!strcmp(optarg, "block"))
                mc.calibrate = 2;
            else
                return tool_usage_error("monitor", "--calibrate is iid or block");
            break;
        case 'e':
            mc.error_detector = optarg;
            break;
        case 'N':
            mc.name = optarg;
            break;
        case O_NORES:
            resume = 0;
            break;
        default:
            return tool_usage_error("monitor", "unknown or incomplete option");
        }
    }
    if (optind < argc)
        return tool_usage_error("monitor", "unexpected argument '%s'", argv[optind]);
    if (!store_uri)
        return tool_usage_error("monitor", "--store is required");
    if (!!bootstrap == !!input)
        return tool_usage_error("monitor", "give exactly one of --bootstrap or --input");
    mc.target = target;

    drst_store_t *store = NULL;
    drst_table_t *base = NULL;
    drst_model_t *model = NULL;
    drst_monitor_t *mon = NULL;
    drst_schema_t *schema = NULL;
    drst_stream_t *h = NULL;
    char *names[4096];
    int nf = 0;
    store = drst_store_open(store_uri, err, sizeof(err));
    if (!store)
        return tool_error("%s", err);
    if (baseline && drst_table_read_csv(baseline, NULL, &base, NULL, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    if (drst_store_load_model(store, "latest", &model, NULL, NULL, 0) != DRST_OK)
        model = NULL;
    if (features) {
        nf = split_list(features, names, 4096);
    } else if (model) {
        for (size_t j = 0; j < drst_model_nfeatures(model) && nf < 4096; j++)
            names[nf++] = (char *)drst_model_feature(model, j);
    } else if (base) {
        const char *tg = target ? target : "output_rate";
        for (size_t c = 0; c < base->ncols && nf < 4096; c++) {
            const char *n = base->names[c];
            if (!*n || !strncmp(n, "Unnamed", 7) || !strcmp(n, tg) || !strcmp(n, "input_rate") ||
                !strcmp(n, "latency") || base->n_text[c] == base->nrows)
                continue;
            names[nf++] = base->names[c];
        }
    }
    if (nf == 0) {
        tool_error("monitor: no features: give --features, --baseline or publish a model first");
        goto out;
    }
    mon = drst_monitor_new(&mc, (const char *const *)names, (size_t)nf, store, err, sizeof(err));
    if (!mon) {
        tool_error("%s", err);
        goto out;
    }
    if (base && drst_monitor_set_baseline(mon, base, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    if (model && drst_monitor_set_model(mon, model, err, sizeof(err)) != DRST_OK)
        fprintf(stderr, "drst monitor: no error monitoring: %s\n", err);
    if (resume) {
        drst_err_t e = drst_monitor_resume(mon, err, sizeof(err));
        if (e == DRST_OK) {
            drst_monitor_stats_t st;
            drst_monitor_stats(mon, &st);
            fprintf(stderr, "drst monitor: resumed after %llu record(s), %llu trigger(s)\n",
                    (unsigned long long)st.seen, (unsigned long long)st.triggers);
        } else if (e != DRST_ERR_NOTFOUND) {
            tool_error("%s (use --no-resume to start afresh)", err);
            goto out;
        }
    }
    if (drst_monitor_poll_release(mon, NULL, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    schema = drst_schema_new((const char *const *)names, (size_t)nf, NULL, err, sizeof(err));
    if (!schema) {
        tool_error("%s", err);
        goto out;
    }
    drst_stream_conf_t conf = {.bootstrap = bootstrap,
                               .path = input,
                               .client_id = mc.name ? mc.name : "monitor",
                               .from_beginning = from_beginning};
    h = drst_stream_open(bootstrap ? &drst_transport_kafka : &drst_transport_jsonl, &conf, err,
                         sizeof(err));
    if (!h || drst_stream_subscribe(h, topic, group, conf.client_id, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    if (drst_monitor_consume(mon, h, schema, (int)idle_ms, max, on_trigger, NULL, err,
                             sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    if (drst_monitor_save(mon, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    drst_monitor_stats_t st;
    drst_monitor_stats(mon, &st);
    fprintf(stderr,
            "drst monitor: %llu record(s) (%llu labelled), %llu evaluation(s), %llu trigger(s) "
            "(features %llu, error %llu, refresh %llu), %llu suppressed\n",
            (unsigned long long)st.seen, (unsigned long long)st.labelled,
            (unsigned long long)st.evaluations, (unsigned long long)st.triggers,
            (unsigned long long)st.triggers_by_source[1],
            (unsigned long long)st.triggers_by_source[2],
            (unsigned long long)st.triggers_by_source[3], (unsigned long long)st.suppressed);
    rc = TOOL_OK;
out:
    drst_stream_close(h);
    drst_schema_free(schema);
    drst_monitor_free(mon);
    drst_model_free(model);
    drst_table_free(base);
    drst_store_close(store);
    return rc;
}
