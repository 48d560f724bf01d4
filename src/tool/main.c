/* drst: git-style dispatch to one cmd_<name>.c per command.
 * See tool.h for the checklist to add a command. */
#include <stdlib.h>
#include <string.h>

#include "tool.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"version", cmd_version, "print the version of drst"},
    {"dataset", cmd_dataset, "build aligned datasets from raw DRST telemetry; inspect a CSV"},
    {"train", cmd_train, "train a model on a CSV and publish it to a store"},
    {"eval", cmd_eval, "score a model (store release or file) on a CSV"},
    {"models", cmd_models, "list, show, promote and roll back model releases"},
    {"flows", cmd_flows, "packets (pcap file or live) to per-flow statistics records"},
    {"simulate", cmd_simulate, "write a synthetic VNF-chain dataset in DRST's schema"},
    {"report", cmd_report, "write report.md and figures from a run's files"},
    {"produce", cmd_produce, "replay dataset stages as a record stream (Kafka or JSONL)"},
    {"consume", cmd_consume, "print a topic's records as JSON lines, as a group member"},
    {"broker", cmd_broker, "local Kafka-protocol broker for development and tests"},
    {"run", cmd_run, "the whole loop in one process: train, stream, infer, monitor, retrain"},
    {"monitor", cmd_monitor, "watch a stream for drift; freeze windows and request retrains"},
    {"retrain", cmd_retrain, "handle retrain requests: search, train, publish, gate, swap"},
    {"infer", cmd_infer, "predict a stream with baseline + hot-swapped adaptive models"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: drst [--version] [--help] [--s3-endpoint URL] <command> [<args>]\n\n"
                 "Non-intrusive, drift-aware performance analytics for softwarized networks.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "   %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'drst <command> --help' explains one command.\n"
                 "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    /* --s3-endpoint URL before the command: endpoint of s3:// stores
     * (exported as DRST_S3_ENDPOINT, which wins over AWS_ENDPOINT_URL) */
    while (argc > 1 && !strncmp(argv[1], "--s3-endpoint", 13) &&
           (argv[1][13] == 0 || argv[1][13] == '=')) {
        int eq = argv[1][13] == '=';
        const char *v = eq ? argv[1] + 14 : argc > 2 ? argv[2] : NULL;
        if (!v || !v[0]) {
            fprintf(stderr, "drst: --s3-endpoint needs a URL\n");
            return TOOL_USAGE;
        }
        setenv("DRST_S3_ENDPOINT", v, 1);
        argc -= eq ? 1 : 2;
        argv += eq ? 1 : 2;
    }
    if (argc < 2) {
        usage(stderr);
        return TOOL_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < NCOMMANDS; i++) {
                if (!strcmp(argv[2], commands[i].name)) {
                    char *hargv[] = {argv[2], "--help", NULL};
                    return commands[i].fn(2, hargv);
                }
            }
        }
        usage(stdout);
        return TOOL_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("drst %s\n", drst_version());
        return TOOL_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "drst: '%s' is not a drst command. See 'drst --help'.\n", argv[1]);
    return TOOL_USAGE;
}
