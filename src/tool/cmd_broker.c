/* drst broker: a local Kafka-protocol broker (librdkafka's mock cluster) for
 * development and tests. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void help(void)
{
    printf(
        "usage: drst broker [--port N] [--host H] [--brokers N] [--topic T --partitions P]...\n\n"
        "Start a local Kafka-protocol broker for DEVELOPMENT AND TESTS ONLY: librdkafka's\n"
        "built-in mock cluster, in memory, on loopback. Nothing is persisted; there is no\n"
        "security, no replication worth the name and no tuning. Production uses a real\n"
        "Kafka cluster (point --bootstrap of produce/consume at it).\n\n"
        "The first line printed is the bootstrap address clients should use; the broker\n"
        "then runs until interrupted (SIGINT or SIGTERM, exit status 0).\n\n"
        "options:\n"
        "  --port N         fixed bootstrap port, 1..65535 (default: 0 = none, see below;\n"
        "                   environment DRST_BROKER_PORT)\n"
        "  --host H         address the --port listener binds (default 127.0.0.1)\n"
        "  --brokers N      number of mock brokers (default 1)\n"
        "  --topic T        create topic T (repeatable; topics are also auto-created on\n"
        "                   first use with the mock's default partition count)\n"
        "  --partitions P   partitions of the preceding --topic (default 3)\n\n"
        "What --port does: this librdkafka (2.0.2) gives its mock brokers ephemeral\n"
        "loopback ports and has no way to choose them. Without --port the first line lists\n"
        "those ports (127.0.0.1:EPHEMERAL[,...]). With --port N, drst binds H:N itself and\n"
        "relays every TCP connection made to it, byte for byte, to mock broker 1; the first\n"
        "line is then H:N. Kafka clients bootstrap through H:N, and the metadata they get\n"
        "back sends them to the brokers' own addresses (127.0.0.1:EPHEMERAL), so clients\n"
        "must run on this host. A port already in use is an error (exit status 1).\n\n"
        "examples:\n"
        "  drst broker --port 9092 --topic telemetry --partitions 3 &\n"
        "  drst produce --data stage.csv --topic telemetry --bootstrap 127.0.0.1:9092\n"
        "  kcat -b 127.0.0.1:9092 -C -t telemetry -e\n"
        "  drst broker --topic telemetry > broker.addr &     # ephemeral ports only\n"
        "  drst consume --topic telemetry --group g --bootstrap $(head -1 broker.addr)\n");
}

static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    unsigned char c = (unsigned char)sig;
    int saved = errno;
    /* A full pipe only means a stop is already pending. */
    if (write(stop_pipe[1], &c, 1) < 0) {
    }
    errno = saved;
}

static int parse_port(const char *v, long *port)
{
    char *end;
    *port = strtol(v, &end, 10);
    return !*v || *end || *port < 0 || *port > 65535 ? -1 : 0;
}

int cmd_broker(int argc, char **argv)
{
    char err[DRST_ERRLEN];
    const char *topics[64];
    const char *host = "127.0.0.1", *env = getenv("DRST_BROKER_PORT");
    long parts[64], port = 0;
    int ntopics = 0, nbrokers = 1, sig = 0;
    drst_broker_t *b;
    struct sigaction sa;

    if (env && *env && parse_port(env, &port))
        return tool_usage_error("broker", "DRST_BROKER_PORT: expected 0..65535, got '%s'", env);
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
            if (parse_port(v, &port))
                return tool_usage_error("broker", "--port: expected 0..65535, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--host") && v) {
            if (!*v)
                return tool_usage_error("broker", "--host: empty address");
            host = v;
            i++;
        } else {
            return tool_usage_error("broker", "unknown or incomplete option '%s'", a);
        }
    }
    /* A handler that writes to a pipe, not sigwait(): threads started before
     * this function (OpenBLAS's pool is created when the library loads) do
     * not block SIGINT, and a process-directed signal delivered to one of
     * them would otherwise take the default action and kill the broker. */
    if (pipe(stop_pipe) != 0)
        return tool_error("broker: pipe: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    b = drst_broker_new(nbrokers, err, sizeof(err));
    if (!b)
        return tool_error("%s", err);
    /* Bind before creating topics: a port in use fails fast, before any
     * client could mistake this broker for a working one. */
    if (port > 0 && drst_broker_listen(b, host, (int)port, err, sizeof(err))) {
        drst_broker_free(b);
        return tool_error("%s", err);
    }
    for (int i = 0; i < ntopics; i++) {
        if (drst_broker_create_topic(b, topics[i], (int32_t)parts[i], err, sizeof(err))) {
            drst_broker_free(b);
            return tool_error("%s", err);
        }
    }
    printf("%s\n", drst_broker_bootstraps(b));
    fflush(stdout);
    if (port > 0)
        fprintf(stderr,
                "drst broker: bootstrap %s, relayed to mock broker 1 of %s "
                "(development/test broker; Ctrl-C stops it)\n",
                drst_broker_bootstraps(b), drst_broker_cluster_bootstraps(b));
    else
        fprintf(stderr, "drst broker: listening on %s (development/test broker; Ctrl-C stops it)\n",
                drst_broker_bootstraps(b));
    for (;;) {
        unsigned char c;
        ssize_t n = read(stop_pipe[0], &c, 1);
        if (n == 1) {
            sig = c;
            break;
        }
        if (n < 0 && errno == EINTR)
            continue;
        sig = SIGTERM; /* the pipe cannot close while we hold its write end: stop anyway */
        break;
    }
    fprintf(stderr, "drst broker: %s, stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    drst_broker_free(b);
    return TOOL_OK;
}
