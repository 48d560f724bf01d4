/* A small TCP forwarder: accepts connections on one address and relays each
 * byte-for-byte to one target address. Used by the development broker to
 * give librdkafka's mock cluster (which only binds ephemeral ports) a fixed
 * bootstrap address. Not public API; development and tests only. */
#ifndef DRST_TCPFWD_INT_H
#define DRST_TCPFWD_INT_H

#include <stdint.h>

#include "drst/common.h"

/** @brief Most connections relayed at once; further clients wait in the backlog. */
#define DRST_TCPFWD_MAXCONN 256
/** @brief Bytes buffered per direction of one connection. */
#define DRST_TCPFWD_BUFSZ (64 * 1024)

typedef struct drst_tcpfwd drst_tcpfwd_t;

/** @brief Counters since drst_tcpfwd_new() (read without a lock, monotonic). */
typedef struct drst_tcpfwd_stats {
    uint64_t accepted;     /**< client connections accepted */
    uint64_t connect_fail; /**< clients closed because the target refused or failed */
    uint64_t active;       /**< connections being relayed now */
    uint64_t bytes_up;     /**< client -> target */
    uint64_t bytes_down;   /**< target -> client */
} drst_tcpfwd_stats_t;

/**
 * @brief Bind and listen on `host`:`port` (numeric IPv4/IPv6 or a name;
 * port 0 picks an ephemeral one) and start one relay thread that connects
 * every accepted client to `target_host`:`target_port`.
 *
 * The listener sets SO_REUSEADDR (restarts do not wait for TIME_WAIT) but
 * fails with "address in use" if anyone listens there already. The relay
 * thread blocks every signal, sleeps in poll() and buffers at most
 * DRST_TCPFWD_BUFSZ bytes per direction of each connection; a half-close is
 * passed on (shutdown(SHUT_WR)) once the buffered bytes are written.
 *
 * @return the forwarder, or NULL with a message naming the address and the
 * errno text in err (no module prefix: the caller adds its own), e.g.
 * "cannot bind 127.0.0.1:9092: Address already in use".
 */
drst_tcpfwd_t *drst_tcpfwd_new(const char *host, int port, const char *target_host, int target_port,
                               char *err, size_t errlen);

/** @brief The bound address as "host:port" ("[v6]:port"), owned by f. */
const char *drst_tcpfwd_address(const drst_tcpfwd_t *f);

/** @brief Copy the counters (any thread). */
void drst_tcpfwd_stats(const drst_tcpfwd_t *f, drst_tcpfwd_stats_t *st);

/**
 * @brief Stop the relay thread (wakes it through a pipe, joins it), close
 * the listener and every relayed connection, free. NULL is a no-op.
 */
void drst_tcpfwd_free(drst_tcpfwd_t *f);

#endif
