/* drst report: report.md + figures from a run's files (docs/formats.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drst/obs.h"
#include "tool.h"

static void help(void)
{
    printf("usage: drst report --out DIR [--in DIR] [--tau LIST] [--window N] [--title TEXT]\n"
           "                   [--gnuplot PROG] [--strict]\n\n"
           "Write DIR/report.md and its figures (PNG, drawn by gnuplot) from the files a run\n"
           "left in its directory: trace*.csv (truth, baseline and adaptive predictions),\n"
           "drift.csv, events.csv, resources.csv, metrics.jsonl and run.json; see\n"
           "docs/formats.md. Only the trace is required; a missing file leaves its section\n"
           "out. The numbers behind every figure and the gnuplot script go to DIR/data/.\n\n"
           "options:\n"
           "  --out DIR       where report.md, the images and data/ go (created); required\n"
           "  --in DIR        the run's files (default: the --out directory)\n"
           "  --tau LIST      accuracy tolerances, comma-separated (default 0.05,0.1,0.2)\n"
           "  --window N      records per window for windowed accuracy (default 100)\n"
           "  --title TEXT    report title (default \"drst run report\")\n"
           "  --gnuplot PROG  gnuplot program (default: gnuplot from PATH)\n"
           "  --strict        fail on the first bad input line\n\n"
           "A prediction is accurate at tau when |prediction - truth| <= tau * |truth|.\n\n"
           "example:\n  drst report --out results/run1\n");
}

int cmd_report(int argc, char **argv)
{
    drst_report_opts_t o = {0};
    double taus[8];
    int strict = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return TOOL_OK;
        }
        if (!strcmp(a, "--strict")) {
            strict = 1;
            continue;
        }
        if (strcmp(a, "--out") && strcmp(a, "--in") && strcmp(a, "--tau") &&
            strcmp(a, "--window") && strcmp(a, "--title") && strcmp(a, "--gnuplot"))
            return tool_usage_error("report", "unknown argument '%s'", a);
        if (i + 1 >= argc)
            return tool_usage_error("report", "option '%s' needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) {
            o.out_dir = v;
        } else if (!strcmp(a, "--in")) {
            o.in_dir = v;
        } else if (!strcmp(a, "--title")) {
            o.title = v;
        } else if (!strcmp(a, "--gnuplot")) {
            o.gnuplot = v;
        } else if (!strcmp(a, "--window")) {
            char *end;
            errno = 0;
            unsigned long long w = strtoull(v, &end, 10);
            if (*v == '-' || !*v || *end || errno || w == 0 || w > 100000000ull)
                return tool_usage_error("report", "--window must be a positive integer, got '%s'",
                                        v);
            o.window = (size_t)w;
        } else {
            const char *p = v;
            o.ntaus = 0;
            while (*p) {
                char *end;
                errno = 0;
                double t = strtod(p, &end);
                if (end == p || errno || !(t >= 0 && t < 1e6) || (*end && *end != ',') ||
                    o.ntaus == 8)
                    return tool_usage_error("report",
                                            "--tau wants up to 8 numbers >= 0 like "
                                            "0.05,0.1,0.2, got '%s'",
                                            v);
                taus[o.ntaus++] = t;
                p = *end ? end + 1 : end;
            }
            if (!o.ntaus)
                return tool_usage_error("report", "--tau is empty");
            o.taus = taus;
        }
    }
    if (!o.out_dir)
        return tool_usage_error("report", "missing --out DIR");
    tool_diag_t td;
    if (tool_diag_init(&td, strict, NULL))
        return TOOL_FAIL;
    char err[DRST_ERRLEN];
    drst_report_info_t info;
    drst_err_t rc = drst_report_write(&o, &info, &td.diag, err, sizeof(err));
    tool_diag_close(&td, "report inputs");
    if (rc)
        return tool_error("%s", err);
    if (info.gnuplot_missing)
        fprintf(stderr, "drst report: gnuplot not found: report written without images\n");
    fprintf(stderr, "drst report: wrote %s/report.md (%zu records, %zu images)\n", o.out_dir,
            info.records, info.images);
    return TOOL_OK;
}
