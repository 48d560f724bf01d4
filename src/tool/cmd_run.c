/* drst run: the whole loop in one process (library: include/drst/run.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drst/run.h"
#include "tool.h"

#define MAX_STAGES 32

static void help(void)
{
    printf("usage: drst run --train FILE.csv --stream FILE.csv[:head=N|:tail=N]... [options]\n\n"
           "Run the whole loop in one process: train offline on --train the static model\n"
           "(baseline) and adaptive version 1 (latest), publish both to the store, replay\n"
           "the --stream stages through a topic of P partitions to N inference consumers (each\n"
           "predicts every record with the static and the adaptive model), watch the records with\n"
           "the drift monitor (feature JSD + error Page-Hinkley), retrain on a trigger, publish\n"
           "the release and hot-swap it into the consumers. Ends with a summary, the run files\n"
           "(traces, drift, events, resources, metrics; docs/formats.md) and the report\n"
           "(report.md + PNG figures) under --out. Accuracies are prequential: every record is\n"
           "predicted before its label is used.\n\n"
           "Clock: at full speed (no --tps) the run is evaluated on the data's own clock: a\n"
           "release triggered at record i serves from record i+K, the producer holding back until\n"
           "it is ready: which model serves which record does not depend on scheduling, and\n"
           "with an explicit --retrain-lag the figures do not depend on the machine's speed\n"
           "either. With --tps every component runs asynchronously, as in production.\n\n"
           "Online learning: the adaptive path is a knn (instance-based) model by default, and\n"
           "every labelled record the monitor sees goes into an online memory that knn releases\n"
           "search from the next record on (on the data clock: the records before i+1-K). A\n"
           "state the chain met once is recognised at once; retrains consolidate the memory\n"
           "into releases and re-tune k. --online 0 --adaptive-model gbdt gives the\n"
           "retrain-only loop.\n\n");
    printf(
        "options:\n"
        "  --train FILE.csv       offline training data (required)\n"
        "  --stream FILE[:head=N|:tail=N]  a stage to stream (repeatable, in order; required)\n"
        "  --out DIR              run files and report (default ./out/run-<UTC time>)\n"
        "  --store DIR            model store (default <out>/store)\n"
        "  --partitions P         partitions of the topic (default 3)\n"
        "  --consumers N          inference consumers (default 3)\n"
        "  --tps R                pace the producer at R records/s: asynchronous run\n"
        "  --bootstrap HOST:PORT  use Kafka instead of the in-process log (the topic needs\n"
        "                         >= P partitions)\n"
        "  --topic T              topic name (default: a fresh drst-run-<ms>-<pid> on Kafka,\n"
        "                         auto-created by the broker; a given topic must be new, since\n"
        "                         an earlier run's records and sentinels would mix in)\n"
        "  --retrain-lag K        records between a trigger and its release serving\n"
        "                         (default: the records the data clock advances during the\n"
        "                         retrain's measured wall time, at least 1; exact figures\n"
        "                         across runs need an explicit K)\n"
        "  --data-rate R          data clock in records per second (default 1: DRST's data)\n"
        "  --model FAMILY         static (offline) model: gbdt (default), mlp, ridge, tree, knn\n"
        "  --adaptive-model F     family of adaptive version 1, trained on the same offline\n"
        "                         data (default knn)\n"
        "  --online N             online memory: the last N labelled records the monitor saw\n"
        "                         are searched by knn releases from the next record on, so\n"
        "                         the adaptive path learns between retrains (default 65536;\n"
        "                         0 = off: releases only)\n"
        "  --target COL           label column (default output_rate)\n"
        "  --exclude A,B          non-feature columns (default input_rate,latency)\n"
        "  --window W             monitor window in records (default 100)\n"
        "  --stride S             monitor evaluation stride (default 25)\n"
        "  --refresh N            also retrain after N records without a trigger (default off)\n"
        "  --families LIST        retrain candidates' families, e.g. gbdt,ridge (default:\n"
        "                         the adaptive family while the online memory is on, else\n"
        "                         the tier's whole search space: gbdt, ridge, mlp, tree, knn)\n"
        "  --seed N               seed of every model and of the monitor (default 42)\n"
        "  --metrics-addr A       serve Prometheus /metrics and /healthz on A (HOST:PORT,\n"
        "                         :PORT or PORT; loopback unless a host is given)\n"
        "  --json                 print one JSON summary object on stdout (table on stderr)\n"
        "  --no-report            do not write report.md and the figures\n"
        "  --quiet                no progress line and no table\n\n"
        "example:\n"
        "  drst simulate --scenario sweep --rows 1500 --seed 1 -o train.csv\n"
        "  drst simulate --scenario contention --rows 2000 --seed 2 -o stream.csv\n"
        "  drst run --train train.csv --stream stream.csv --out out/demo\n");
}

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct ui {
    int tty, shown;
} ui_t;

static void on_progress(void *opaque, const drst_run_progress_t *p)
{
    ui_t *u = opaque;
    if (!u->tty)
        return;
    fprintf(stderr,
            "\rdrst run: %llu/%llu records  %.0f/s  acc@0.2 static %.3f adaptive %.3f  drift "
            "%.3f  model v%d%s   ",
            (unsigned long long)p->inferred, (unsigned long long)p->total, p->rate, p->acc_static,
            p->acc_adaptive, p->drift_score, p->version, p->retraining ? " (retraining)" : "");
    u->shown = 1;
}

static void on_listen(void *opaque, uint16_t port)
{
    (void)opaque;
    fprintf(stderr, "drst run: metrics on port %u (/metrics, /healthz)\n", (unsigned)port);
}

static void table(FILE *f, const drst_run_opts_t *o, const drst_run_summary_t *s)
{
    fprintf(f, "\n%-24s %10s %10s\n", "", "static", "adaptive");
    fprintf(f, "%-24s %10.4f %10.4f\n", "acc@0.05", s->static_acc[0], s->adaptive_acc[0]);
    fprintf(f, "%-24s %10.4f %10.4f\n", "acc@0.1", s->static_acc[1], s->adaptive_acc[1]);
    fprintf(f, "%-24s %10.4f %10.4f\n", "acc@0.2", s->static_acc[2], s->adaptive_acc[2]);
    fprintf(f, "%-24s %10.4f %10.4f\n", "MAPE", s->static_mape, s->adaptive_mape);
    fprintf(f, "\n%-24s %llu (%llu labelled)\n", "records", (unsigned long long)s->records,
            (unsigned long long)s->labelled);
    fprintf(f, "%-24s %llu (+%llu skipped while one was in flight)\n", "triggers",
            (unsigned long long)s->triggers, (unsigned long long)s->suppressed);
    fprintf(f, "%-24s %llu (%.1f s, %llu failed, %llu gate-rejected)\n", "retrains",
            (unsigned long long)s->retrains, s->retrain_s_total,
            (unsigned long long)s->retrain_failures, (unsigned long long)s->rejected_gate);
    fprintf(f, "%-24s %llu (final model v%d)\n", "swaps", (unsigned long long)s->swaps,
            s->final_version);
    if (s->lag_min >= 0)
        fprintf(f, "%-24s %ld..%ld records\n", "retrain lag K", s->lag_min, s->lag_max);
    fprintf(f, "%-24s %llu records\n", "online memory", (unsigned long long)s->online_records);
    fprintf(f, "%-24s %s\n", "clock", s->async ? "wall (asynchronous, --tps)" : "data");
    fprintf(f, "%-24s %.2f s (offline training %.2f s)\n", "wall", s->wall_s, s->train_s);
    fprintf(f, "%-24s %.0f\n", "records/s", s->records_per_s);
    fprintf(f, "%-24s %llu errors, %llu dead letters\n", "errors", (unsigned long long)s->errors,
            (unsigned long long)s->dead_letters);
    if (o->no_report)
        fprintf(f, "%-24s not written (--no-report); run files in %s\n", "report", o->out_dir);
    else if (s->report_error[0])
        fprintf(f, "%-24s failed: %s\n", "report", s->report_error);
    else
        fprintf(f, "%-24s %s/report.md (%zu images)%s\n", "report", o->out_dir, s->report_images,
                s->gnuplot_missing ? " - gnuplot missing: no images" : "");
}

static int parse_long(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

int cmd_run(int argc, char **argv)
{
    drst_run_opts_t o;
    drst_run_stage_t stages[MAX_STAGES];
    char *storage[MAX_STAGES];
    size_t nst = 0;
    int json = 0, quiet = 0, rc = TOOL_FAIL;
    char err[DRST_ERRLEN], outbuf[256];
    ui_t ui = {0};

    drst_run_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            rc = TOOL_OK;
            goto out;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--no-report")) {
            o.no_report = 1;
            continue;
        }
        if (strncmp(a, "--", 2) || !strcmp(a, "--")) {
            rc = tool_usage_error("run", "unexpected argument '%s'", a);
            goto out;
        }
        if (!v) {
            rc = tool_usage_error("run", "option '%s' needs a value (or is unknown)", a);
            goto out;
        }
        i++;
        if (!strcmp(a, "--train")) {
            o.train_path = v;
        } else if (!strcmp(a, "--stream")) {
            if (nst == MAX_STAGES) {
                rc = tool_usage_error("run", "at most %d --stream stages", MAX_STAGES);
                goto out;
            }
            if (drst_run_stage_parse(v, &stages[nst], &storage[nst], err, sizeof(err))) {
                rc = tool_usage_error("run", "--stream %s", err);
                goto out;
            }
            nst++;
        } else if (!strcmp(a, "--out")) {
            o.out_dir = v;
        } else if (!strcmp(a, "--store")) {
            o.store = v;
        } else if (!strcmp(a, "--partitions") || !strcmp(a, "--consumers")) {
            if (parse_long(v, 1, 1024, &n)) {
                rc = tool_usage_error("run", "%s: expected 1..1024, got '%s'", a, v);
                goto out;
            }
            if (a[2] == 'p')
                o.partitions = (int)n;
            else
                o.consumers = (int)n;
        } else if (!strcmp(a, "--tps") || !strcmp(a, "--data-rate")) {
            errno = 0;
            double x = strtod(v, &end);
            if (!*v || *end || errno || !(x > 0) || !isfinite(x)) {
                rc = tool_usage_error("run", "%s: expected a positive number, got '%s'", a, v);
                goto out;
            }
            if (a[2] == 't')
                o.tps = x;
            else
                o.data_rate = x;
        } else if (!strcmp(a, "--bootstrap")) {
            o.bootstrap = v;
        } else if (!strcmp(a, "--topic")) {
            o.topic = v;
        } else if (!strcmp(a, "--retrain-lag")) {
            if (parse_long(v, 1, 10000000, &n)) {
                rc = tool_usage_error("run", "--retrain-lag: expected 1..10000000, got '%s'", v);
                goto out;
            }
            o.retrain_lag = n;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--adaptive-model")) {
            if (drst_model_family_parse(v, a[2] == 'm' ? &o.family : &o.adaptive_family)) {
                rc = tool_usage_error("run", "%s: gbdt, mlp, ridge, tree or knn, not '%s'", a, v);
                goto out;
            }
        } else if (!strcmp(a, "--online")) {
            if (parse_long(v, 0, 100000000, &n)) {
                rc =
                    tool_usage_error("run", "--online: expected 0..100000000 records, got '%s'", v);
                goto out;
            }
            o.online = (size_t)n;
        } else if (!strcmp(a, "--target")) {
            o.target = v;
        } else if (!strcmp(a, "--exclude")) {
            o.exclude = v;
        } else if (!strcmp(a, "--window") || !strcmp(a, "--stride")) {
            if (parse_long(v, 1, 1000000, &n)) {
                rc = tool_usage_error("run", "%s: expected 1..1000000, got '%s'", a, v);
                goto out;
            }
            if (a[2] == 'w')
                o.window = (size_t)n;
            else
                o.stride = (size_t)n;
        } else if (!strcmp(a, "--refresh")) {
            if (parse_long(v, 0, 100000000, &n)) {
                rc = tool_usage_error("run", "--refresh: expected a count >= 0, got '%s'", v);
                goto out;
            }
            o.refresh = (uint64_t)n;
        } else if (!strcmp(a, "--families")) {
            o.families = v;
        } else if (!strcmp(a, "--seed")) {
            errno = 0;
            unsigned long long x = strtoull(v, &end, 10);
            if (!*v || *end || errno || v[0] == '-') {
                rc = tool_usage_error("run", "--seed: expected an integer >= 0, got '%s'", v);
                goto out;
            }
            o.seed = x;
        } else if (!strcmp(a, "--metrics-addr")) {
            o.metrics_addr = v;
        } else {
            rc = tool_usage_error("run", "unknown option '%s'", a);
            goto out;
        }
    }
    if (!o.train_path) {
        rc = tool_usage_error("run", "--train FILE.csv is required");
        goto out;
    }
    if (nst == 0) {
        rc = tool_usage_error("run", "at least one --stream FILE.csv is required");
        goto out;
    }
    if (o.window < 2 || o.stride > o.window) {
        rc = tool_usage_error("run", "--window must be >= 2 and --stride <= --window");
        goto out;
    }
    if (o.metrics_addr) {
        char host[128];
        uint16_t port;
        if (drst_metrics_addr_parse(o.metrics_addr, host, sizeof(host), &port, err, sizeof(err))) {
            rc = tool_usage_error("run", "--metrics-addr: %s", err);
            goto out;
        }
    }
    if (!o.out_dir) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(outbuf, sizeof(outbuf), "out/run-%Y%m%dT%H%M%SZ", &tm);
        o.out_dir = outbuf;
    }
    o.stages = stages;
    o.nstages = nst;
    o.stop = &stop_flag;
    ui.tty = !quiet && isatty(STDERR_FILENO);
    o.progress = on_progress;
    o.opaque = &ui;
    o.on_listen = on_listen;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    {
        tool_diag_t td;
        drst_run_summary_t s;
        if (tool_diag_init(&td, 0, NULL))
            goto out;
        if (!quiet)
            fprintf(stderr, "drst run: training offline on '%s', streaming %zu stage(s) to %s\n",
                    o.train_path, nst, o.out_dir);
        drst_err_t e = drst_run_execute(&o, &s, &td.diag, err, sizeof(err));
        if (ui.shown)
            fputc('\n', stderr);
        tool_diag_close(&td, "run inputs");
        if (e) {
            rc = tool_error("%s", err);
            goto out;
        }
        if (s.report_error[0])
            fprintf(stderr, "drst run: warning: %s\n", s.report_error);
        if (json) {
            char *js = NULL;
            if (drst_run_summary_json(&s, &js, err, sizeof(err))) {
                rc = tool_error("%s", err);
                goto out;
            }
            printf("%s\n", js);
            free(js);
            if (!quiet)
                table(stderr, &o, &s);
        } else if (!quiet) {
            table(stdout, &o, &s);
        }
        rc = TOOL_OK;
    }
out:
    for (size_t i = 0; i < nst; i++)
        free(storage[i]);
    return rc;
}
