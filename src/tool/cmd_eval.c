/* drst eval: score a model on a CSV. */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: drst eval --store DIR [--model KEY|latest|baseline] --data FILE.csv [--json]\n"
            "       drst eval --model-file MODEL.drst --data FILE.csv [--json]\n"
            "\n"
            "Predict every row of FILE.csv with a model and compare with the model's target\n"
            "column. Relative error e = |yhat - y| / max(|y|, 1e-9); accuracy@tau is the\n"
            "fraction of rows with e <= tau. Rows whose target is missing are not scored;\n"
            "a missing feature value is replaced by its training mean. The data must have\n"
            "every feature column of the model (any order).\n"
            "\n"
            "options:\n"
            "  --store DIR          store holding the model (directory or file://DIR;\n"
            "                       default $DRST_STORE)\n"
            "  --model REF          latest (default), baseline, or a model key\n"
            "                       (models/model_<ts>_<hash> or model_<ts>_<hash>)\n"
            "  --model-file FILE    a model file instead of a store release\n"
            "  --data FILE          CSV with a header row (required)\n"
            "  --json               print one JSON object: acc@0.05, acc@0.1, acc@0.2, mae,\n"
            "                       rmse, p50, p80, p90, p95, p99, rows, model\n"
            "  --predictions FILE   write 'row,y,yhat' for every data row (0-based row)\n"
            "  --rejects FILE       write rejected CSV lines here; --strict fails on the first\n"
            "\n"
            "output (text): accuracy at 0.05/0.1/0.2, MAE, RMSE, relative-error quantiles\n"
            "p50/p80/p90/p95/p99 and the row count.\n"
            "\n"
            "example:\n"
            "  drst eval --store ./store --model latest --data stage2.csv --json\n");
}

enum { O_STORE = 256, O_MODEL, O_MODEL_FILE, O_DATA, O_JSON, O_PRED, O_REJECTS, O_STRICT, O_HELP };

static const struct option longopts[] = {
    {"store", required_argument, NULL, O_STORE},
    {"model", required_argument, NULL, O_MODEL},
    {"model-file", required_argument, NULL, O_MODEL_FILE},
    {"data", required_argument, NULL, O_DATA},
    {"json", no_argument, NULL, O_JSON},
    {"predictions", required_argument, NULL, O_PRED},
    {"rejects", required_argument, NULL, O_REJECTS},
    {"strict", no_argument, NULL, O_STRICT},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void print_num(const char *key, double v)
{
    if (isfinite(v))
        printf("\"%s\": %.10g", key, v);
    else
        printf("\"%s\": null", key);
}

int cmd_eval(int argc, char **argv)
{
    const char *store_uri = NULL, *ref = NULL, *file = NULL, *data = NULL, *pred = NULL;
    const char *rejects = NULL;
    int json = 0, strict = 0, rc = TOOL_FAIL, c;
    char err[DRST_ERRLEN];

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
        case O_HELP:
            usage(stdout);
            return TOOL_OK;
        case O_STORE:
            store_uri = optarg;
            break;
        case O_MODEL:
            ref = optarg;
            break;
        case O_MODEL_FILE:
            file = optarg;
            break;
        case O_DATA:
            data = optarg;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_PRED:
            pred = optarg;
            break;
        case O_REJECTS:
            rejects = optarg;
            break;
        case O_STRICT:
            strict = 1;
            break;
        default:
            return tool_usage_error("eval", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return tool_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!data)
        return tool_usage_error("eval", "--data FILE is required");
    if (!file && !store_uri)
        store_uri = getenv("DRST_STORE");
    if (!file && !store_uri)
        return tool_usage_error("eval", "give --store DIR [--model REF] or --model-file FILE");
    if (file && (store_uri || ref))
        return tool_usage_error("eval", "--model-file excludes --store and --model");
    openblas_set_num_threads(1);

    drst_model_t *m = NULL;
    drst_store_t *st = NULL;
    drst_table_t *t = NULL;
    double *yhat = NULL;
    drst_release_t rel = {{0}, {0}};
    const char *name = file;
    if (file) {
        if (drst_model_load(file, &m, err, sizeof(err)) != DRST_OK) {
            tool_error("%s", err);
            goto out;
        }
    } else {
        st = drst_store_open(store_uri, err, sizeof(err));
        if (!st || drst_store_load_model(st, ref ? ref : "latest", &m, &rel, err, sizeof(err))) {
            tool_error("%s", err);
            goto out;
        }
        name = rel.model_key;
    }
    tool_diag_t td;
    if (tool_diag_init(&td, strict, rejects))
        goto out;
    drst_err_t trc = drst_table_read_csv(data, NULL, &t, &td.diag, err, sizeof(err));
    tool_diag_close(&td, data);
    if (trc) {
        tool_error("%s", err);
        goto out;
    }
    yhat = malloc((t->nrows + 1) * sizeof(*yhat));
    if (!yhat) {
        tool_error("out of memory");
        goto out;
    }
    drst_model_metrics_t met;
    if (drst_model_eval_table(m, t, yhat, &met, err, sizeof(err)) != DRST_OK) {
        tool_error("%s", err);
        goto out;
    }
    if (pred) {
        FILE *f = fopen(pred, "w");
        if (!f) {
            tool_error("cannot write '%s': %s", pred, strerror(errno));
            goto out;
        }
        long tc = drst_table_col(t, drst_model_target(m));
        fprintf(f, "row,y,yhat\n");
        for (size_t i = 0; i < t->nrows; i++) {
            char a[40] = "", b[40];
            if (tc >= 0)
                drst_format_double(drst_table_at(t, i, (size_t)tc), a, sizeof(a));
            drst_format_double(yhat[i], b, sizeof(b));
            fprintf(f, "%zu,%s,%s\n", i, a, b);
        }
        if (fclose(f) != 0) {
            tool_error("cannot write '%s': %s", pred, strerror(errno));
            goto out;
        }
    }
    if (json) {
        printf("{\"model\": \"%s\", ", name);
        print_num("acc@0.05", met.acc05);
        printf(", ");
        print_num("acc@0.1", met.acc10);
        printf(", ");
        print_num("acc@0.2", met.acc20);
        printf(", ");
        print_num("mae", met.mae);
        printf(", ");
        print_num("rmse", met.rmse);
        printf(", ");
        print_num("p50", met.p50);
        printf(", ");
        print_num("p80", met.p80);
        printf(", ");
        print_num("p90", met.p90);
        printf(", ");
        print_num("p95", met.p95);
        printf(", ");
        print_num("p99", met.p99);
        printf(", \"rows\": %llu}\n", (unsigned long long)met.rows);
    } else {
        printf("model     %s (%s, %zu features, target %s)\n", name,
               drst_model_family_name(drst_model_family(m)), drst_model_nfeatures(m),
               drst_model_target(m));
        printf("rows      %llu\n", (unsigned long long)met.rows);
        printf("acc@0.05  %.4f\nacc@0.1   %.4f\nacc@0.2   %.4f\n", met.acc05, met.acc10, met.acc20);
        printf("mae       %.6g\nrmse      %.6g\n", met.mae, met.rmse);
        printf("rel.err   p50 %.4g  p80 %.4g  p90 %.4g  p95 %.4g  p99 %.4g\n", met.p50, met.p80,
               met.p90, met.p95, met.p99);
    }
    rc = TOOL_OK;
out:
    drst_model_free(m);
    drst_store_close(st);
    drst_table_free(t);
    free(yhat);
    return rc;
}
