/* drst train: CSV -> model -> store release (or a model file). */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: drst train --data FILE.csv --store DIR [options]\n"
            "       drst train --data FILE.csv --output MODEL.drst [options]\n"
            "\n"
            "Train a model that predicts --target from the other numeric columns, then\n"
            "publish it to a store as models/model_<UTC-ts>_<hash> + models/metrics_<...>.json\n"
            "and move the pointers. Prints the new model key (or file) on stdout. Features:\n"
            "every numeric column except the target, the excluded ones and unnamed (index)\n"
            "columns; columns constant on the training rows and rows with a missing or\n"
            "non-finite value are dropped and reported. Features are standard-scaled on the\n"
            "training rows; the target is standardized too. Same data and seed give a\n"
            "byte-identical model file. Progress is shown on a terminal only.\n"
            "\n"
            "data and output:\n"
            "  --data FILE          CSV with a header row (required)\n"
            "  --target NAME        column to predict (default output_rate)\n"
            "  --exclude A,B,...    columns that are not features (default input_rate,latency;\n"
            "                       --exclude '' uses every column)\n"
            "  --topk N             keep the N features most correlated (|Pearson r|) with the\n"
            "                       target (default 0 = all)\n"
            "  --store DIR          store to publish to (directory or file://DIR; default\n"
            "                       $DRST_STORE when --output is not given)\n"
            "  --publish WHICH      baseline|latest|both|none (default: both if the store has\n"
            "                       no baseline yet, else latest)\n"
            "  --output FILE        also write the model file here\n"
            "  --save-split FILE    write 'row,set' (0-based data row, train|val) for every\n"
            "                       row used, so others can reproduce the split\n"
            "  --rejects FILE       write rejected CSV lines here; --strict fails on the first\n"
            "  --quiet              no summary on stderr\n"
            "\n"
            "split:\n"
            "  --split chrono|shuffled  validation = the last rows in file order (default\n"
            "                       chrono) or a seeded random sample\n"
            "  --val-frac F         validation fraction (default 0.2)\n"
            "  --seed N             seed of split, initialization and batches (default 42)\n"
            "\n"
            "model:\n"
            "  --model FAMILY       mlp|ridge|tree|gbdt|knn (default mlp)\n"
            "  mlp:   --hidden 64,32 (default)  --activation relu|gelu (relu)\n"
            "         --loss smoothl1|mse (smoothl1)  --lr 0.001  --batch 32\n"
            "         --weight-decay 0.0001  --epochs 300 (max)  --patience 0 (N > 0: stop after\n"
            "         N epochs without progress on 10%% of the training rows; 0 = off)  "
            "--warm-start REF (store ref or\n"
            "         file of a compatible mlp to start from)\n"
            "  ridge: --alpha 1.0 (as sklearn StandardScaler + Ridge(alpha))\n"
            "  tree:  --max-depth 10  --min-leaf 5\n"
            "  gbdt:  --trees 300  --eta 0.1  --max-depth 6  --min-leaf 1 (min child weight)\n"
            "         --threads 1 (xgboost threads; 1 keeps results reproducible)\n"
            "  knn:   --k 3  --knn-agg median|mean  (distance on log1p counters scaled by\n"
            "         their std; the model stores its training rows, at most 100000)\n"
            "\n"
            "example:\n"
            "  drst train --data ../shared/data/drst/combined.csv --model mlp --store ./store\n"
            "  drst train --data combined.csv --model gbdt --split shuffled --output gbdt.drst\n");
}

typedef struct progress_ctx {
    int tty;
    int shown;
} progress_ctx_t;

static void on_progress(void *opaque, const drst_train_progress_t *p)
{
    progress_ctx_t *c = opaque;
    if (!c->tty)
        return;
    if (isnan(p->train_loss))
        fprintf(stderr, "\rtree %zu/%zu", p->epoch, p->max_epochs);
    else
        fprintf(stderr, "\repoch %zu/%zu  train loss %.5f  val acc@0.2 %.4f   ", p->epoch,
                p->max_epochs, p->train_loss, p->val_acc20);
    c->shown = 1;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* split "a,b,c" into a NULL-terminated array of pointers into a copy */
static char **split_list(const char *s, size_t *n, char **storage)
{
    char *c = strdup(s);
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap + 1, sizeof(*v));
    if (!c || !v) {
        free(c);
        free(v);
        return NULL;
    }
    *n = 0;
    char *p = c;
    while (*p) {
        char *e = strchr(p, ',');
        if (e)
            *e = 0;
        if (*p)
            v[(*n)++] = p;
        if (!e)
            break;
        p = e + 1;
    }
    *storage = c;
    return v;
}

enum {
    O_DATA = 256,
    O_TARGET,
    O_EXCLUDE,
    O_TOPK,
    O_STORE,
    O_PUBLISH,
    O_OUTPUT,
    O_SAVE_SPLIT,
    O_REJECTS,
    O_STRICT,
    O_QUIET,
    O_SPLIT,
    O_VAL_FRAC,
    O_SEED,
    O_MODEL,
    O_HIDDEN,
    O_ACT,
    O_LOSS,
    O_LR,
    O_BATCH,
    O_WD,
    O_EPOCHS,
    O_PATIENCE,
    O_WARM,
    O_ALPHA,
    O_MAX_DEPTH,
    O_MIN_LEAF,
    O_TREES,
    O_ETA,
    O_THREADS,
    O_KNN_K,
    O_KNN_AGG,
    O_HELP
};

static const struct option longopts[] = {
    {"data", required_argument, NULL, O_DATA},
    {"target", required_argument, NULL, O_TARGET},
    {"exclude", required_argument, NULL, O_EXCLUDE},
    {"topk", required_argument, NULL, O_TOPK},
    {"store", required_argument, NULL, O_STORE},
    {"publish", required_argument, NULL, O_PUBLISH},
    {"output", required_argument, NULL, O_OUTPUT},
    {"save-split", required_argument, NULL, O_SAVE_SPLIT},
    {"rejects", required_argument, NULL, O_REJECTS},
    {"strict", no_argument, NULL, O_STRICT},
    {"quiet", no_argument, NULL, O_QUIET},
    {"split", required_argument, NULL, O_SPLIT},
    {"val-frac", required_argument, NULL, O_VAL_FRAC},
    {"seed", required_argument, NULL, O_SEED},
    {"model", required_argument, NULL, O_MODEL},
    {"hidden", required_argument, NULL, O_HIDDEN},
    {"activation", required_argument, NULL, O_ACT},
    {"loss", required_argument, NULL, O_LOSS},
    {"lr", required_argument, NULL, O_LR},
    {"batch", required_argument, NULL, O_BATCH},
    {"weight-decay", required_argument, NULL, O_WD},
    {"epochs", required_argument, NULL, O_EPOCHS},
    {"patience", required_argument, NULL, O_PATIENCE},
    {"warm-start", required_argument, NULL, O_WARM},
    {"alpha", required_argument, NULL, O_ALPHA},
    {"max-depth", required_argument, NULL, O_MAX_DEPTH},
    {"min-leaf", required_argument, NULL, O_MIN_LEAF},
    {"trees", required_argument, NULL, O_TREES},
    {"eta", required_argument, NULL, O_ETA},
    {"threads", required_argument, NULL, O_THREADS},
    {"k", required_argument, NULL, O_KNN_K},
    {"knn-agg", required_argument, NULL, O_KNN_AGG},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

int cmd_train(int argc, char **argv)
{
    const char *data = NULL, *store_uri = NULL, *output = NULL, *save_split = NULL;
    const char *rejects = NULL, *publish = NULL, *warm_ref = NULL;
    int strict = 0, quiet = 0, rc = TOOL_FAIL;
    char *excl_store = NULL, **excl = NULL;
    char err[DRST_ERRLEN];
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    size_t v;
    double d;

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
        case O_HELP:
            usage(stdout);
            return TOOL_OK;
        case O_DATA:
            data = optarg;
            break;
        case O_TARGET:
            o.target = optarg;
            break;
        case O_EXCLUDE:
            free(excl);
            free(excl_store);
            excl = split_list(optarg, &o.n_exclude, &excl_store);
            if (!excl)
                return tool_error("out of memory");
            o.exclude = (const char *const *)excl;
            break;
        case O_TOPK:
            if (parse_size(optarg, &o.topk))
                return tool_usage_error("train", "--topk wants a count, got '%s'", optarg);
            break;
        case O_STORE:
            store_uri = optarg;
            break;
        case O_PUBLISH:
            publish = optarg;
            break;
        case O_OUTPUT:
            output = optarg;
            break;
        case O_SAVE_SPLIT:
            save_split = optarg;
            break;
        case O_REJECTS:
            rejects = optarg;
            break;
        case O_STRICT:
            strict = 1;
            break;
        case O_QUIET:
            quiet = 1;
            break;
        case O_SPLIT:
            if (!strcmp(optarg, "chrono"))
                o.split = DRST_SPLIT_CHRONO;
            else if (!strcmp(optarg, "shuffled"))
                o.split = DRST_SPLIT_SHUFFLED;
            else
                return tool_usage_error("train", "--split is chrono or shuffled, not '%s'", optarg);
            break;
        case O_VAL_FRAC:
            if (parse_double(optarg, &o.val_frac) || o.val_frac < 0 || o.val_frac >= 1)
                return tool_usage_error("train", "--val-frac wants a number in [0, 1), got '%s'",
                                        optarg);
            break;
        case O_SEED:
            if (parse_size(optarg, &v))
                return tool_usage_error("train", "--seed wants a number, got '%s'", optarg);
            o.seed = v;
            break;
        case O_MODEL:
            if (drst_model_family_parse(optarg, &o.family) != DRST_OK)
                return tool_usage_error("train", "--model is mlp, ridge, tree or gbdt, not '%s'",
                                        optarg);
            break;
        case O_HIDDEN: {
            char *p = optarg;
            o.n_hidden = 0;
            while (*p) {
                char *end;
                unsigned long h = strtoul(p, &end, 10);
                if (end == p || h == 0 || h > 65536 || o.n_hidden == DRST_MODEL_MAX_HIDDEN ||
                    (*end && *end != ','))
                    return tool_usage_error("train",
                                            "--hidden wants up to %d sizes like 64,32, got '%s'",
                                            DRST_MODEL_MAX_HIDDEN, optarg);
                o.hidden[o.n_hidden++] = h;
                p = *end ? end + 1 : end;
            }
            break;
        }
        case O_ACT:
            if (!strcmp(optarg, "relu"))
                o.activation = DRST_ACT_RELU;
            else if (!strcmp(optarg, "gelu"))
                o.activation = DRST_ACT_GELU;
            else
                return tool_usage_error("train", "--activation is relu or gelu");
            break;
        case O_LOSS:
            if (!strcmp(optarg, "smoothl1"))
                o.loss = DRST_LOSS_SMOOTHL1;
            else if (!strcmp(optarg, "mse"))
                o.loss = DRST_LOSS_MSE;
            else
                return tool_usage_error("train", "--loss is smoothl1 or mse");
            break;
        case O_LR:
            if (parse_double(optarg, &o.lr) || o.lr <= 0)
                return tool_usage_error("train", "--lr wants a positive number");
            break;
        case O_BATCH:
            if (parse_size(optarg, &o.batch) || o.batch == 0)
                return tool_usage_error("train", "--batch wants a positive count");
            break;
        case O_WD:
            if (parse_double(optarg, &o.weight_decay) || o.weight_decay < 0)
                return tool_usage_error("train", "--weight-decay wants a number >= 0");
            break;
        case O_EPOCHS:
            if (parse_size(optarg, &o.max_epochs) || o.max_epochs == 0)
                return tool_usage_error("train", "--epochs wants a positive count");
            break;
        case O_PATIENCE:
            if (parse_size(optarg, &o.patience))
                return tool_usage_error("train", "--patience wants a count");
            break;
        case O_WARM:
            warm_ref = optarg;
            break;
        case O_ALPHA:
            if (parse_double(optarg, &o.alpha) || o.alpha < 0)
                return tool_usage_error("train", "--alpha wants a number >= 0");
            break;
        case O_MAX_DEPTH:
            if (parse_size(optarg, &o.max_depth) || o.max_depth == 0 || o.max_depth > 64)
                return tool_usage_error("train", "--max-depth wants a count in 1..64");
            break;
        case O_MIN_LEAF:
            if (parse_size(optarg, &o.min_samples_leaf) || o.min_samples_leaf == 0)
                return tool_usage_error("train", "--min-leaf wants a positive count");
            break;
        case O_TREES:
            if (parse_size(optarg, &o.n_trees) || o.n_trees == 0 || o.n_trees > 100000)
                return tool_usage_error("train", "--trees wants a count in 1..100000");
            break;
        case O_ETA:
            if (parse_double(optarg, &d) || d <= 0 || d > 1)
                return tool_usage_error("train", "--eta wants a number in (0, 1]");
            o.eta = d;
            break;
        case O_THREADS:
            if (parse_size(optarg, &v) || v == 0 || v > 256)
                return tool_usage_error("train", "--threads wants a count in 1..256");
            o.nthread = (int)v;
            break;
        case O_KNN_K:
            if (parse_size(optarg, &o.knn_k) || o.knn_k == 0 || o.knn_k > DRST_KNN_MAX_K)
                return tool_usage_error("train", "--k wants a count in 1..32");
            break;
        case O_KNN_AGG:
            if (strcmp(optarg, "median") && strcmp(optarg, "mean"))
                return tool_usage_error("train", "--knn-agg wants median or mean");
            o.knn_mean = strcmp(optarg, "mean") == 0;
            break;
        default:
            free(excl);
            free(excl_store);
            return tool_usage_error("train", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return tool_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!data)
        return tool_usage_error("train", "--data FILE is required");
    if (!store_uri && !output)
        store_uri = getenv("DRST_STORE");
    if (!store_uri && !output)
        return tool_usage_error("train", "give --store DIR (publish) and/or --output FILE");
    drst_publish_t which = DRST_PUBLISH_BOTH;
    int publish_auto = publish == NULL;
    if (publish) {
        if (!strcmp(publish, "latest"))
            which = DRST_PUBLISH_LATEST;
        else if (!strcmp(publish, "baseline"))
            which = DRST_PUBLISH_BASELINE;
        else if (!strcmp(publish, "both"))
            which = DRST_PUBLISH_BOTH;
        else if (!strcmp(publish, "none"))
            which = DRST_PUBLISH_NONE;
        else
            return tool_usage_error("train", "--publish is baseline, latest, both or none");
    }

    /* small matrices: BLAS threads only cost here, and one thread keeps the
     * arithmetic order (and so the file bytes) fixed */
    openblas_set_num_threads(1);

    drst_table_t *t = NULL;
    drst_model_t *m = NULL, *warm = NULL;
    drst_store_t *st = NULL;
    unsigned char *split = NULL;
    tool_diag_t td;
    if (tool_diag_init(&td, strict, rejects))
        goto out;
    if (quiet)
        td.quiet = 1;
    if (drst_table_read_csv(data, NULL, &t, &td.diag, err, sizeof(err)) != DRST_OK) {
        tool_diag_close(&td, data);
        tool_error("%s", err);
        goto out;
    }
    if (quiet)
        td.diag.warnings = td.diag.rejected = 0; /* the summary line only */
    tool_diag_close(&td, data);
    if (store_uri) {
        st = drst_store_open(store_uri, err, sizeof(err));
        if (!st) {
            tool_error("%s", err);
            goto out;
        }
    }
    if (warm_ref) {
        drst_err_t wr = (st && access(warm_ref, F_OK) != 0)
                            ? drst_store_load_model(st, warm_ref, &warm, NULL, err, sizeof(err))
                            : drst_model_load(warm_ref, &warm, err, sizeof(err));
        if (wr) {
            tool_error("warm start: %s", err);
            goto out;
        }
        o.warm_start = warm;
    }
    split = calloc(t->nrows + 1, 1);
    if (!split) {
        tool_error("out of memory");
        goto out;
    }
    o.split_out = split;
    o.data_name = data;
    progress_ctx_t pc = {isatty(STDERR_FILENO) && !quiet, 0};
    o.progress = on_progress;
    o.progress_opaque = &pc;
    drst_train_report_t rep;
    tool_diag_t tdw;
    if (tool_diag_init(&tdw, 0, NULL))
        goto out;
    tdw.quiet = quiet;
    tdw.max_print = 10;
    drst_err_t trc = drst_model_train(t, &o, &m, &rep, &tdw.diag, err, sizeof(err));
    if (pc.shown)
        fputc('\n', stderr);
    if (!quiet && (rep.rows_dropped || rep.cols_dropped))
        fprintf(stderr, "drst train: %zu row(s) and %zu column(s) dropped\n", rep.rows_dropped,
                rep.cols_dropped);
    if (quiet)
        tdw.diag.warnings = 0;
    tool_diag_close(&tdw, "train");
    if (trc) {
        tool_error("%s", err);
        goto out;
    }
    if (save_split) {
        FILE *f = fopen(save_split, "w");
        if (!f) {
            tool_error("cannot write '%s': %s", save_split, strerror(errno));
            goto out;
        }
        fprintf(f, "row,set\n");
        for (size_t i = 0; i < t->nrows; i++)
            if (split[i])
                fprintf(f, "%zu,%s\n", i, split[i] == 1 ? "train" : "val");
        if (fclose(f) != 0) {
            tool_error("cannot write '%s': %s", save_split, strerror(errno));
            goto out;
        }
    }
    if (!quiet) {
        fprintf(stderr, "drst train: %s on %zu features, %zu train / %zu validation rows (%s)\n",
                drst_model_family_name(drst_model_family(m)), rep.n_features, rep.n_train,
                rep.n_val, drst_model_describe(m));
        if (rep.has_val)
            fprintf(stderr,
                    "drst train: validation acc@0.05 %.4f  acc@0.1 %.4f  acc@0.2 %.4f  mae %.6g  "
                    "rmse %.6g\n",
                    rep.val.acc05, rep.val.acc10, rep.val.acc20, rep.val.mae, rep.val.rmse);
    }
    if (output && drst_model_save(m, output, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    if (st) {
        drst_release_t rel;
        if (publish_auto && drst_store_exists(st, "models/baseline"))
            which = DRST_PUBLISH_LATEST;
        if (drst_store_publish_model(st, m, which, &rel, err, sizeof(err)) != DRST_OK) {
            tool_error("%s", err);
            goto out;
        }
        printf("%s\n", rel.model_key);
    } else {
        printf("%s\n", output);
    }
    rc = TOOL_OK;
out:
    drst_model_free(m);
    drst_model_free(warm);
    drst_store_close(st);
    drst_table_free(t);
    free(split);
    free(excl);
    free(excl_store);
    return rc;
}
