/* drst dataset build|pcm|inspect: raw DRST bundles -> aligned CSV datasets,
 * and a quick look at any CSV. The rules live in docs/dataset.md. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static const char usage_text[] =
    "usage: drst dataset build RAW_DIR... -o OUT.csv [options]\n"
    "       drst dataset pcm RAW_DIR -o OUT.csv [options]\n"
    "       drst dataset inspect FILE.csv [--json]\n"
    "\n"
    "build    the perf branch: one row per perf-stat interval of each bundle, bundles\n"
    "         concatenated in order. Columns: input_rate (tx_stats.csv), output_rate\n"
    "         (rx_stats.csv), latency (latency.csv, else latency_old.csv; microseconds\n"
    "         are detected (median > 1000) and converted to ms), then <vnf>_<event>\n"
    "         for each event (first appearance) and each VNF (VNF order).\n"
    "         VNF files are the *.csv that read as `perf stat -x,` output, except\n"
    "         tx_stats, rx_stats, latency, latency_old, nf_out, *-pcm*, pcm-*;\n"
    "         the VNF name is the file name without .csv. Rows follow the first\n"
    "         VNF's intervals; shorter series are padded with empty cells, longer\n"
    "         ones truncated (a warning each). <not counted>/<not supported> give an\n"
    "         empty cell. rx/tx: column Mbit (else PacketRate) when there is a header,\n"
    "         else the 5th field (Mbit in the testbed's layout).\n"
    "pcm      the PCM branch: one row per second over the window common to all\n"
    "         timestamped PCM files: time (UTC epoch s), input_rate, output_rate,\n"
    "         latency, then <file>_<group>_<metric> of every <x>-pcm.csv (VNF order)\n"
    "         and pcm-<x>.csv (pcm-pcie.csv: k-th block = k-th second; (Total) and\n"
    "         (Miss) rows kept, (Hit) = Total - Miss dropped).\n"
    "inspect  rows, columns, per column: type, empty and non-numeric cells,\n"
    "         min/median/max, constant columns.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE      output CSV ('-' = stdout); required for build and pcm\n"
    "  --vnf-order LIST       comma-separated VNF order (default, or $DRST_VNF_ORDER:\n"
    "                         " DRST_DEFAULT_VNF_ORDER ");\n"
    "                         VNFs not listed follow alphabetically. Orders only.\n"
    "  --utc-offset HOURS     pcm: PCM local time = UTC + HOURS (default: the whole\n"
    "                         hour in -12..14 that best overlaps rx/tx epoch times)\n"
    "  --strict               any rejected line is a failure (exit 1)\n"
    "  --rejects FILE         write every rejected line to FILE (dead letters)\n"
    "  -q, --quiet            do not print per-line diagnostics (summary only)\n"
    "  --json                 inspect: print one JSON object\n"
    "  -h, --help             this help\n"
    "\n"
    "Every unusable line is reported as file:line: rejected: reason (the first 50),\n"
    "counted in a summary, and the rest of the file is used. Exit status: 0 ok,\n"
    "1 failure (missing/unreadable file, no usable data, --strict rejection),\n"
    "2 usage error. Rules in full: docs/dataset.md.\n"
    "\n"
    "examples:\n"
    "  drst dataset build ../shared/data/drst/raw/perf-samples/* -o dataset.csv\n"
    "  drst dataset pcm ../shared/data/drst/raw/pcm-const-1gbps -o pcm.csv\n"
    "  drst dataset inspect dataset.csv --json\n";

enum { OPT_VNF_ORDER = 256, OPT_UTC, OPT_STRICT, OPT_REJECTS, OPT_JSON };

typedef struct args {
    const char *out, *vnf_order, *rejects;
    double utc;
    int utc_set, strict, quiet, json;
    int npos;
    char **pos;
} args_t;

static int parse_args(const char *cmd, int argc, char **argv, args_t *a)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"vnf-order", required_argument, NULL, OPT_VNF_ORDER},
        {"utc-offset", required_argument, NULL, OPT_UTC},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"rejects", required_argument, NULL, OPT_REJECTS},
        {"quiet", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    memset(a, 0, sizeof(*a));
    a->vnf_order = getenv("DRST_VNF_ORDER");
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->out = optarg;
            break;
        case OPT_VNF_ORDER:
            a->vnf_order = optarg;
            break;
        case OPT_UTC: {
            char *end;
            errno = 0;
            a->utc = strtod(optarg, &end);
            if (errno || end == optarg || *end || fabs(a->utc) > 26)
                return tool_usage_error(cmd, "bad --utc-offset '%s' (hours, -26..26)", optarg);
            a->utc_set = 1;
            break;
        }
        case OPT_STRICT:
            a->strict = 1;
            break;
        case OPT_REJECTS:
            a->rejects = optarg;
            break;
        case 'q':
            a->quiet = 1;
            break;
        case OPT_JSON:
            a->json = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return tool_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    a->npos = argc - optind;
    a->pos = argv + optind;
    return 0;
}

static int write_out(const drst_table_t *t, const char *out, const char *what)
{
    char err[DRST_ERRLEN];
    if (drst_table_write_csv(t, out, err, sizeof(err)) != DRST_OK)
        return tool_error("%s", err);
    fprintf(stderr, "drst dataset %s: wrote %s (%zu rows x %zu columns)\n", what,
            strcmp(out, "-") ? out : "<stdout>", t->nrows, t->ncols);
    return TOOL_OK;
}

static int run_build(int pcm, int argc, char **argv)
{
    const char *cmd = pcm ? "dataset pcm" : "dataset build";
    args_t a;
    tool_diag_t td;
    drst_dataset_opts_t o = {0};
    drst_table_t *t = NULL;
    char err[DRST_ERRLEN] = "";
    drst_err_t rc;
    int ret, r = parse_args(cmd, argc, argv, &a);
    if (r)
        return r < 0 ? TOOL_OK : r;
    if (a.npos < 1)
        return tool_usage_error(cmd, "missing RAW_DIR");
    if (pcm && a.npos > 1)
        return tool_usage_error(cmd, "takes exactly one RAW_DIR");
    if (!a.out)
        return tool_usage_error(cmd, "missing -o OUT.csv");
    if (tool_diag_init(&td, a.strict, a.rejects) != 0)
        return TOOL_FAIL;
    td.quiet = a.quiet;
    o.vnf_order = a.vnf_order;
    o.pcm_utc_offset = a.utc;
    o.pcm_utc_offset_set = a.utc_set;
    rc = pcm ? drst_dataset_build_pcm(a.pos[0], &o, &t, &td.diag, err, sizeof(err))
             : drst_dataset_build_perf((const char *const *)a.pos, (size_t)a.npos, &o, &t, &td.diag,
                                       err, sizeof(err));
    if (rc != DRST_OK) {
        tool_diag_close(&td, cmd);
        return tool_error("%s", err);
    }
    ret = write_out(t, a.out, pcm ? "pcm" : "build");
    tool_diag_close(&td, cmd);
    drst_table_free(t);
    return ret;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int run_inspect(int argc, char **argv)
{
    args_t a;
    tool_diag_t td;
    drst_table_t *t = NULL;
    drst_colstats_t *st = NULL;
    char err[DRST_ERRLEN] = "";
    int r = parse_args("dataset inspect", argc, argv, &a), ret = TOOL_OK;
    size_t nconst = 0;
    if (r)
        return r < 0 ? TOOL_OK : r;
    if (a.npos != 1)
        return tool_usage_error("dataset inspect", "expects exactly one FILE.csv");
    if (tool_diag_init(&td, a.strict, a.rejects) != 0)
        return TOOL_FAIL;
    td.quiet = a.quiet;
    if (drst_table_read_csv(a.pos[0], NULL, &t, &td.diag, err, sizeof(err)) != DRST_OK) {
        tool_diag_close(&td, "dataset inspect");
        return tool_error("%s", err);
    }
    st = calloc(t->ncols + 1, sizeof(*st));
    if (!st || drst_table_describe(t, st, err, sizeof(err)) != DRST_OK) {
        ret = tool_error("inspect: %s", st ? err : "out of memory");
        goto out;
    }
    for (size_t c = 0; c < t->ncols; c++)
        nconst += (size_t)st[c].constant;
    if (a.json) {
        json_t *root = json_object(), *cols = json_array(), *consts = json_array();
        char *s;
        json_object_set_new(root, "file", json_string(a.pos[0]));
        json_object_set_new(root, "rows", json_integer((json_int_t)t->nrows));
        json_object_set_new(root, "columns", json_integer((json_int_t)t->ncols));
        json_object_set_new(root, "rejected_lines", json_integer((json_int_t)td.diag.rejected));
        for (size_t c = 0; c < t->ncols; c++) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(t->names[c]));
            json_object_set_new(o, "type", json_string(drst_coltype_name(st[c].type)));
            json_object_set_new(o, "numeric", json_integer((json_int_t)st[c].n_numeric));
            json_object_set_new(o, "empty", json_integer((json_int_t)st[c].n_empty));
            json_object_set_new(o, "non_numeric", json_integer((json_int_t)st[c].n_text));
            json_object_set_new(o, "min", num_or_null(st[c].min));
            json_object_set_new(o, "median", num_or_null(st[c].median));
            json_object_set_new(o, "max", num_or_null(st[c].max));
            json_object_set_new(o, "constant", json_boolean(st[c].constant));
            json_array_append_new(cols, o);
            if (st[c].constant)
                json_array_append_new(consts, json_string(t->names[c]));
        }
        json_object_set_new(root, "column_stats", cols);
        json_object_set_new(root, "constant_columns", consts);
        s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_ENSURE_ASCII);
        json_decref(root);
        if (!s) {
            ret = tool_error("inspect: out of memory");
            goto out;
        }
        puts(s);
        free(s);
    } else {
        char mn[40], md[40], mx[40];
        printf("file:    %s\nrows:    %zu\ncolumns: %zu\nconstant columns: %zu\n\n", a.pos[0],
               t->nrows, t->ncols, nconst);
        printf("%-40s %-8s %8s %8s %8s %14s %14s %14s %s\n", "column", "type", "numeric", "empty",
               "text", "min", "median", "max", "constant");
        for (size_t c = 0; c < t->ncols; c++) {
            snprintf(mn, sizeof mn, "%.6g", st[c].min);
            snprintf(md, sizeof md, "%.6g", st[c].median);
            snprintf(mx, sizeof mx, "%.6g", st[c].max);
            printf("%-40s %-8s %8llu %8llu %8llu %14s %14s %14s %s\n", t->names[c],
                   drst_coltype_name(st[c].type), (unsigned long long)st[c].n_numeric,
                   (unsigned long long)st[c].n_empty, (unsigned long long)st[c].n_text,
                   isnan(st[c].min) ? "-" : mn, isnan(st[c].median) ? "-" : md,
                   isnan(st[c].max) ? "-" : mx, st[c].constant ? "yes" : "");
        }
    }
out:
    tool_diag_close(&td, "dataset inspect");
    free(st);
    drst_table_free(t);
    return ret;
}

int cmd_dataset(int argc, char **argv)
{
    if (argc < 2)
        return tool_usage_error("dataset", "missing subcommand (build, pcm or inspect)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, stdout);
        return TOOL_OK;
    }
    if (!strcmp(argv[1], "build"))
        return run_build(0, argc - 1, argv + 1);
    if (!strcmp(argv[1], "pcm"))
        return run_build(1, argc - 1, argv + 1);
    if (!strcmp(argv[1], "inspect"))
        return run_inspect(argc - 1, argv + 1);
    return tool_usage_error("dataset", "unknown subcommand '%s' (build, pcm or inspect)", argv[1]);
}
