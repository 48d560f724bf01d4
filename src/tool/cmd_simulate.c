/* drst simulate: write a SYNTHETIC dataset in DRST's schema from a scenario. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static void help(void)
{
    printf("usage: drst simulate --scenario NAME|FILE -o OUT.csv [--rows N] [--seed S]\n"
           "                     [--vnfs a,b,c,...] [--strict] [--list]\n\n"
           "Simulate a chain of poll-mode VNFs and write a SYNTHETIC dataset with the same\n"
           "columns as DRST's combined.csv (index, input_rate, output_rate, latency, then\n"
           "<vnf>_<event> for 12 perf events, event-major). The numbers come from a simple\n"
           "physical model (saturating cycles, queueing latency, contention on caches), not\n"
           "from a real network: use it to demonstrate and test drst; real data stays the\n"
           "judge of accuracy. Same scenario, rows and seed give byte-identical output.\n\n"
           "options:\n"
           "  --scenario NAME|FILE  a built-in scenario (below) or a scenario file: one\n"
           "                        segment per line, e.g.\n"
           "                          rows=300 rate=random:200:6000 hold=10\n"
           "                          rows=300 rate=const:2100 contention=A:ndpi_stats\n"
           "                          rows=300 rate=inc:500:9000 replace=bridge:nat\n"
           "                        (see docs/simulate.md); default: steady\n"
           "  -o, --output FILE     output CSV ('-' for stdout); required\n"
           "  --rows N              total rows; segments are scaled to fill N\n"
           "                        (default: the scenario's own total, 2000 for built-ins)\n"
           "  --seed S              PRNG seed (default 1)\n"
           "  --vnfs a,b,...        the chain (default firewall,nf_router,ndpi_stats,\n"
           "                        payload_scan,bridge)\n"
           "  --strict              fail on the first bad scenario line\n"
           "  --list                list the built-in scenarios and exit\n\n"
           "built-in scenarios:\n");
    for (const char *const *n = drst_sim_builtins(); *n; n++)
        printf("  %-13s %s\n", *n, drst_sim_builtin_describe(*n));
    printf("\nexample:\n  drst simulate --scenario contention --rows 3000 --seed 7 -o drift.csv\n");
}

static int split_vnfs(char *s, const char **out, size_t max, size_t *n)
{
    *n = 0;
    char *p = s;
    while (1) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        if (*n == max)
            return -1;
        out[(*n)++] = p;
        if (!c)
            break;
        p = c + 1;
    }
    return 0;
}

static int parse_u64(const char *s, unsigned long long *v)
{
    char *end;
    if (!*s || *s == '-')
        return -1;
    errno = 0;
    *v = strtoull(s, &end, 0);
    return (*end || errno) ? -1 : 0;
}

int cmd_simulate(int argc, char **argv)
{
    const char *scen = "steady", *outp = NULL;
    char *vnfarg = NULL;
    unsigned long long rows = 0, seed = 1;
    int strict = 0;
    char err[DRST_ERRLEN];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return TOOL_OK;
        } else if (!strcmp(a, "--list")) {
            for (const char *const *n = drst_sim_builtins(); *n; n++)
                printf("%-13s %s\n", *n, drst_sim_builtin_describe(*n));
            return TOOL_OK;
        } else if (!strcmp(a, "--strict")) {
            strict = 1;
        } else if (!more &&
                   (!strcmp(a, "--scenario") || !strcmp(a, "-o") || !strcmp(a, "--output") ||
                    !strcmp(a, "--rows") || !strcmp(a, "--seed") || !strcmp(a, "--vnfs"))) {
            return tool_usage_error("simulate", "option '%s' needs a value", a);
        } else if (!strcmp(a, "--scenario")) {
            scen = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            outp = argv[++i];
        } else if (!strcmp(a, "--rows")) {
            if (parse_u64(argv[++i], &rows) || rows == 0 || rows > 100000000ull)
                return tool_usage_error("simulate", "--rows must be in [1, 100000000], got '%s'",
                                        argv[i]);
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(argv[++i], &seed))
                return tool_usage_error("simulate", "--seed must be an unsigned integer, got '%s'",
                                        argv[i]);
        } else if (!strcmp(a, "--vnfs")) {
            vnfarg = argv[++i];
        } else {
            return tool_usage_error("simulate", "unknown argument '%s'", a);
        }
    }
    if (!outp)
        return tool_usage_error("simulate", "missing -o OUT.csv");

    const char *vnfs[64];
    size_t nvnfs = 0;
    char *vcopy = NULL;
    if (vnfarg) {
        vcopy = strdup(vnfarg);
        if (!vcopy)
            return tool_error("out of memory");
        if (split_vnfs(vcopy, vnfs, 64, &nvnfs)) {
            free(vcopy);
            return tool_usage_error("simulate", "--vnfs: at most 64 VNFs");
        }
    }

    int ret = TOOL_FAIL;
    drst_sim_scenario_t *sc = NULL;
    drst_sim_t *sim = NULL;
    FILE *f = NULL;
    tool_diag_t td;
    if (drst_sim_builtin_describe(scen)) {
        sc = drst_sim_scenario_builtin(scen, err, sizeof(err));
        if (!sc) {
            tool_error("%s", err);
            goto out;
        }
    } else {
        if (tool_diag_init(&td, strict, NULL))
            goto out;
        drst_err_t rc = drst_sim_scenario_load(scen, &sc, &td.diag, err, sizeof(err));
        tool_diag_close(&td, scen);
        if (rc) {
            if (rc == DRST_ERR_IO)
                tool_error("%s (not a built-in scenario either: see 'drst simulate --list')", err);
            else
                tool_error("%s", err);
            goto out;
        }
    }
    drst_sim_opts_t o = {.seed = seed, .rows = (size_t)rows};
    if (vnfarg) {
        o.vnfs = vnfs;
        o.nvnfs = nvnfs;
    }
    sim = drst_sim_new(sc, &o, err, sizeof(err));
    if (!sim) {
        tool_error("%s", err);
        goto out;
    }
    f = strcmp(outp, "-") ? fopen(outp, "w") : stdout;
    if (!f) {
        tool_error("cannot open '%s': %s", outp, strerror(errno));
        goto out;
    }
    if (drst_sim_write_csv(sim, f, err, sizeof(err))) {
        tool_error("%s: %s", outp, err);
        goto out;
    }
    if (f != stdout) {
        int cr = fclose(f);
        f = NULL;
        if (cr) {
            tool_error("cannot write '%s': %s", outp, strerror(errno));
            goto out;
        }
        fprintf(stderr, "drst simulate: wrote %zu synthetic rows x %zu columns to %s\n",
                drst_sim_nrows(sim), drst_sim_ncols(sim) + 1, outp);
    }
    ret = TOOL_OK;
out:
    if (f && f != stdout)
        fclose(f);
    drst_sim_free(sim);
    drst_sim_scenario_free(sc);
    free(vcopy);
    return ret;
}
