/* The drst tool: shared declarations for main.c and the cmd_<name>.c files.
 * The tool sees only the public headers of libdrst (include/drst/). */
#ifndef DRST_TOOL_H
#define DRST_TOOL_H

#include <stdio.h>
#include "drst/drst.h"

/* Exit codes of every command. */
enum { TOOL_OK = 0, TOOL_FAIL = 1, TOOL_USAGE = 2 };

/* Adding a command:
 *  1. write src/tool/cmd_<name>.c with `int cmd_<name>(int argc, char **argv)`
 *     (argv[0] is the command name; handle --help / -h first);
 *  2. declare it below;
 *  3. add one line to commands[] in main.c (the help is generated from it);
 *  4. add a tests/cli/test_<name>.* that runs it. */
int cmd_version(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_flows(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_broker(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_retrain(int argc, char **argv);
int cmd_infer(int argc, char **argv);

/* Print "drst: error: <msg>" to stderr. Returns TOOL_FAIL for `return tool_error(...)`. */
int tool_error(const char *fmt, ...) DRST_PRINTF(1, 2);
/* Print "drst <cmd>: <msg>\n" and "try 'drst <cmd> --help'" to stderr. Returns TOOL_USAGE. */
int tool_usage_error(const char *cmd, const char *fmt, ...) DRST_PRINTF(2, 3);

/* A diagnostics sink that prints "file:line: reason" to stderr (at most
 * `max_print` lines, then only counts) and appends every rejected line to an
 * optional dead-letter file as "file:line: reason\t<text>". */
typedef struct tool_diag {
    drst_diag_t diag;
    FILE *deadletter; /* owned: closed by tool_diag_close() */
    uint64_t printed;
    uint64_t max_print;
    int quiet;
} tool_diag_t;

/* Initialise; `deadletter_path` may be NULL. Returns 0 or TOOL_FAIL (message printed). */
int tool_diag_init(tool_diag_t *td, int strict, const char *deadletter_path);
/* Print the summary line ("N lines rejected, M warnings") if any, close the file. */
void tool_diag_close(tool_diag_t *td, const char *what);

#endif
