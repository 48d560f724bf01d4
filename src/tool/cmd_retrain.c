/* drst retrain: take the pending retrain request of a store and handle it. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"
#include "drst/control.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: drst retrain --store DIR [--once | --follow] [options]\n"
            "\n"
            "Handle the retrain request written by 'drst monitor' (state/retrain/request.json):\n"
            "take the lease state/locks/retrain (owner + expiry; a dead retrainer's lease\n"
            "expires and the request is retried once), search the tier's space (model family,\n"
            "layers, learning rate, batch, activation, loss, weight decay) by successive halving\n"
            "- every candidate scored with a short budget on held-back recent rows, the better\n"
            "half kept - on --threads workers, train the best fully (fine-tuning the serving\n"
            "mlp when schema and architecture match), publish an immutable release + metrics,\n"
            "move 'latest' only if the gain gate passes, mark the request done, release the\n"
            "lease, then store permutation importance next to the release. Training data: the\n"
            "frozen window (recent rows weighted), a replay reservoir of older labelled records\n"
            "and optionally the original training data (--base). A schema change (features of\n"
            "the release missing, or new ones) is reported and the model is trained on the new\n"
            "schema; rows of the old schema are left out, never zero-filled.\n"
            "\n"
            "options:\n"
            "  --store DIR          store (default $DRST_STORE)\n"
            "  --once               handle the pending request, if any, and exit (default)\n"
            "  --follow             keep polling for requests until interrupted\n"
            "  --poll-ms MS         --follow polling period (default 1000)\n"
            "  --base FILE.csv      original training data added to the replay\n"
            "  --families LIST      restrict the search, e.g. gbdt,ridge (default: the tier's)\n"
            "  --threads N          worker threads (default 2)\n"
            "  --seed N             seed (default 42)\n"
            "  --weight W           copies of each window row (default 3)\n"
            "  --min-gain G         gate: new acc@0.2+acc@0.05 >= serving + G (default 0)\n"
            "  --trees N            gbdt trees of the full training (default 100)\n"
            "  --epochs N           mlp epochs of the full training (default 120)\n"
            "  --lease-ttl SEC      lease duration, renewed every rung (default 60)\n"
            "  --owner NAME         lease owner (default retrainer-<pid>)\n"
            "\n"
            "exit status: 0 done (or nothing to do), 1 failure, 2 usage; 'busy' (lease held)\n"
            "is reported and exits 0 with --once.\n"
            "\n"
            "example:\n"
            "  drst retrain --store ./store --once --base combined.csv\n");
}

static void report(const drst_retrain_result_t *r)
{
    printf("{\"request\":\"%s\",\"tier\":%d,\"best\":\"%s\",\"candidates\":%zu,\"rungs\":%zu,"
           "\"release\":\"%s\",\"latest_moved\":%s,\"new_acc20\":%.4f,\"new_acc05\":%.4f,"
           "\"cur_acc20\":%.4f,\"cur_acc05\":%.4f,\"warm_started\":%s,\"schema_changed\":%s,"
           "\"search_s\":%.3f,\"wall_s\":%.3f,\"importance\":\"%s\"}\n",
           r->request_id, r->tier, r->best, r->candidates, r->rungs, r->release.model_key,
           r->latest_moved ? "true" : "false", r->new_val.acc20, r->new_val.acc05, r->cur_val.acc20,
           r->cur_val.acc05, r->warm_started ? "true" : "false",
           r->schema_changed ? "true" : "false", r->search_s, r->wall_s, r->importance_key);
    if (r->schema_changed)
        fprintf(stderr, "drst retrain: schema change: %s\n", r->schema_note);
    fflush(stdout);
}

int cmd_retrain(int argc, char **argv)
{
    const char *store_uri = getenv("DRST_STORE"), *base_path = NULL;
    int follow = 0, rc = TOOL_FAIL;
    long poll_ms = 1000;
    char err[DRST_ERRLEN];
    drst_retrain_config_t cfg = {0};
    static const struct option lo[] = {
        {"help", no_argument, 0, 'h'},           {"store", required_argument, 0, 's'},
        {"once", no_argument, 0, 'o'},           {"follow", no_argument, 0, 'f'},
        {"poll-ms", required_argument, 0, 'p'},  {"base", required_argument, 0, 'B'},
        {"families", required_argument, 0, 'F'}, {"threads", required_argument, 0, 't'},
        {"seed", required_argument, 0, 'S'},     {"weight", required_argument, 0, 'w'},
        {"min-gain", required_argument, 0, 'g'}, {"trees", required_argument, 0, 'T'},
        {"epochs", required_argument, 0, 'E'},   {"lease-ttl", required_argument, 0, 'l'},
        {"owner", required_argument, 0, 'O'},    {0, 0, 0, 0}};
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end = NULL;
        double v = 0;
        if (ch == 'p' || ch == 't' || ch == 'S' || ch == 'w' || ch == 'g' || ch == 'T' ||
            ch == 'E' || ch == 'l') {
            v = strtod(optarg, &end);
            if (end == optarg || *end || v < 0)
                return tool_usage_error("retrain", "'%s' is not a non-negative number", optarg);
        }
        switch (ch) {
        case 'h':
            usage(stdout);
            return TOOL_OK;
        case 's':
            store_uri = optarg;
            break;
        case 'o':
            follow = 0;
            break;
        case 'f':
            follow = 1;
            break;
        case 'p':
            poll_ms = (long)v;
            break;
        case 'B':
            base_path = optarg;
            break;
        case 'F':
            cfg.families = optarg;
            break;
        case 't':
            cfg.threads = (size_t)v;
            break;
        case 'S':
            cfg.seed = (uint64_t)v;
            break;
        case 'w':
            cfg.recent_weight = v;
            break;
        case 'g':
            cfg.min_gain = v;
            break;
        case 'T':
            cfg.full_trees = (int)v;
            break;
        case 'E':
            cfg.full_epochs = (int)v;
            break;
        case 'l':
            cfg.lease_ttl = v;
            break;
        case 'O':
            cfg.owner = optarg;
            break;
        default:
            return tool_usage_error("retrain", "unknown or incomplete option");
        }
    }
    if (optind < argc)
        return tool_usage_error("retrain", "unexpected argument '%s'", argv[optind]);
    if (!store_uri)
        return tool_usage_error("retrain", "--store is required");
    drst_store_t *store = drst_store_open(store_uri, err, sizeof(err));
    drst_table_t *base = NULL;
    drst_retrainer_t *r = NULL;
    if (!store)
        return tool_error("%s", err);
    if (base_path &&
        drst_table_read_csv(base_path, NULL, &base, NULL, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    cfg.base = base;
    r = drst_retrainer_new(store, &cfg, err, sizeof(err));
    if (!r) {
        tool_error("%s", err);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (;;) {
        drst_retrain_result_t res;
        drst_err_t e = drst_retrainer_run_once(r, &res, err, sizeof(err));
        if (e == DRST_OK) {
            report(&res);
        } else if (e == DRST_ERR_EMPTY) {
            if (!follow)
                fprintf(stderr, "drst retrain: nothing to do (%s)\n", err);
        } else if (e == DRST_ERR_BUSY) {
            fprintf(stderr, "drst retrain: busy: %s\n", err);
        } else {
            tool_error("%s", err);
            if (!follow)
                goto out;
        }
        if (!follow || stop_flag)
            break;
        struct timespec ts = {poll_ms / 1000, (poll_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (stop_flag)
            break;
    }
    rc = TOOL_OK;
out:
    drst_retrainer_free(r);
    drst_table_free(base);
    drst_store_close(store);
    return rc;
}
