/* Helpers shared by the command files: error printing and diagnostics. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "tool.h"

int tool_error(const char *fmt, ...)
{
    va_list ap;
    fputs("drst: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return TOOL_FAIL;
}

int tool_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "drst %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'drst %s --help'\n", cmd);
    return TOOL_USAGE;
}

static void diag_print(void *opaque, drst_diag_kind_t kind, const char *file, uint64_t line,
                       const char *reason, const char *text, size_t textlen)
{
    tool_diag_t *td = opaque;
    const char *what = kind == DRST_DIAG_REJECT ? "rejected" : "warning";

    if (kind == DRST_DIAG_REJECT && td->deadletter) {
        fprintf(td->deadletter, "%s:%llu: %s\t", file ? file : "-", (unsigned long long)line,
                reason);
        /* Keep the original bytes, but one dead letter per line. */
        for (size_t i = 0; i < textlen; i++)
            fputc(text[i] == '\n' || text[i] == '\r' ? ' ' : text[i], td->deadletter);
        fputc('\n', td->deadletter);
    }
    if (td->quiet || td->printed >= td->max_print) {
        if (td->printed == td->max_print && !td->quiet)
            fprintf(stderr, "drst: (further diagnostics not shown; see the summary)\n");
        td->printed++;
        return;
    }
    td->printed++;
    if (line)
        fprintf(stderr, "%s:%llu: %s: %s\n", file ? file : "-", (unsigned long long)line, what,
                reason);
    else
        fprintf(stderr, "%s: %s: %s\n", file ? file : "-", what, reason);
}

int tool_diag_init(tool_diag_t *td, int strict, const char *deadletter_path)
{
    memset(td, 0, sizeof(*td));
    td->diag.fn = diag_print;
    td->diag.opaque = td;
    td->diag.strict = strict;
    td->max_print = 50;
    if (deadletter_path) {
        td->deadletter = fopen(deadletter_path, "w");
        if (!td->deadletter)
            return tool_error("cannot open dead-letter file '%s': %s", deadletter_path,
                              strerror(errno));
    }
    return 0;
}

void tool_diag_close(tool_diag_t *td, const char *what)
{
    if (td->diag.rejected || td->diag.warnings)
        fprintf(stderr, "drst: %s: %llu line(s) rejected, %llu warning(s)\n", what,
                (unsigned long long)td->diag.rejected, (unsigned long long)td->diag.warnings);
    if (td->deadletter)
        fclose(td->deadletter);
    td->deadletter = NULL;
}
