/* drst broker: a local Kafka-protocol broker (librdkafka's mock cluster) for
 * development and tests. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static void help(void)
{
    printf(
        "usage: drst broker [--brokers N] [--topic T --partitions P]...\n\n"
        "Start a local Kafka-protocol broker for DEVELOPMENT AND TESTS ONLY: librdkafka's\n"
        "built-in mock cluster, in memory, on loopback. Nothing is persisted; there is no\n"
        "security, no replication worth the name and no tuning. Production uses a real\n"
        "Kafka cluster (point --bootstrap of produce/consume at it).\n\n"
        "The first line printed is the bootstrap address (host:port[,host:port...]); the\n"
        "broker then runs until interrupted (SIGINT or SIGTERM).\n\n"
        "options:\n"
        "  --brokers N      number of mock brokers (default 1)\n"
        "  --topic T        create topic T (repeatable; topics are also auto-created on\n"
        "                   first use with the mock's default partition count)\n"
        "  --partitions P   partitions of the preceding --topic (default 3)\n"
        "  --port N         accepted only as 0: this librdkafka binds ephemeral ports\n\n"
        "example:\n"
        "  drst broker --topic telemetry --partitions 3 > broker.addr &\n"
        "  drst produce --data stage.csv --topic telemetry --bootstrap $(head -1 broker.addr)\n");
}

int cmd_broker(int argc, char **argv)
{
    char err[DRST_ERRLEN];
    const char *topics[64];
    long parts[64];
    int ntopics = 0, nbrokers = 1, sig = 0;
    drst_broker_t *b;
    sigset_t set;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return TOOL_OK;
        } else if (!strcmp(a, "--brokers") && v) {
            nbrokers = (int)strtol(v, &end, 10);
            if (*end || nbrokers < 1 || nbrokers > 16)
                return tool_usage_error("broker", "--brokers: expected 1..16, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--topic") && v) {
            if (ntopics == 64)
                return tool_usage_error("broker", "at most 64 topics");
            topics[ntopics] = v;
            parts[ntopics++] = 3;
            i++;
        } else if (!strcmp(a, "--partitions") && v) {
            long p = strtol(v, &end, 10);
            if (*end || p < 1 || p > 10000)
                return tool_usage_error("broker", "--partitions: expected 1..10000, got '%s'", v);
            if (ntopics == 0)
                return tool_usage_error("broker", "--partitions must follow a --topic");
            parts[ntopics - 1] = p;
            i++;
        } else if (!strcmp(a, "--port") && v) {
            if (strcmp(v, "0") != 0)
                return tool_usage_error("broker",
                                        "--port %s: this librdkafka's mock cluster only binds "
                                        "ephemeral ports; read the address from the first line",
                                        v);
            i++;
        } else {
            return tool_usage_error("broker", "unknown or incomplete option '%s'", a);
        }
    }
    /* Block the signals before librdkafka starts its threads so that only
     * sigwait() below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    b = drst_broker_new(nbrokers, err, sizeof(err));
    if (!b)
        return tool_error("%s", err);
    for (int i = 0; i < ntopics; i++) {
        if (drst_broker_create_topic(b, topics[i], (int32_t)parts[i], err, sizeof(err))) {
            drst_broker_free(b);
            return tool_error("%s", err);
        }
    }
    printf("%s\n", drst_broker_bootstraps(b));
    fflush(stdout);
    fprintf(stderr, "drst broker: listening on %s (development/test broker; Ctrl-C stops it)\n",
            drst_broker_bootstraps(b));
    sigwait(&set, &sig);
    drst_broker_free(b);
    return TOOL_OK;
}
