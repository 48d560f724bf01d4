/* drst version: the versions a bug report needs. */
#include <string.h>

#include "tool.h"

int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: drst version\n\nPrint the version of drst.\n");
        return TOOL_OK;
    }
    if (argc > 1)
        return tool_usage_error("version", "unexpected argument '%s'", argv[1]);
    printf("drst %s\n", drst_version());
    return TOOL_OK;
}
