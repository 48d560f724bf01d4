/* /metrics and /healthz over libmicrohttpd: the only file including microhttpd.h.
 *
 * One internal polling thread serves requests; rendering reads the registry's
 * atomics and takes its mutex only to walk the series list, so serving never
 * blocks the components updating the metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/error_int.h"
#include "drst/obs.h"

struct drst_http {
    struct MHD_Daemon *d;
    drst_metrics_t *m;
    drst_health_fn health;
    void *opaque;
    uint16_t port;
};

drst_err_t drst_metrics_addr_parse(const char *s, char *host, size_t hostlen, uint16_t *port,
                                   char *err, size_t errlen)
{
    if (!s || !*s || hostlen < 2)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "empty metrics address");
    const char *ps;
    size_t hl;
    const char *h = s;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return drst_seterr(err, errlen, DRST_ERR_INVAL,
                               "bad address '%s' (expected [IPV6]:PORT)", s);
        h = s + 1;
        hl = (size_t)(rb - h);
        ps = rb + 2;
    } else {
        const char *c = strrchr(s, ':');
        if (c && strchr(s, ':') != c)
            return drst_seterr(err, errlen, DRST_ERR_INVAL,
                               "bad address '%s' (write IPv6 as [ADDR]:PORT)", s);
        if (c) {
            hl = (size_t)(c - s);
            ps = c + 1;
        } else {
            hl = 0;
            ps = s;
        }
    }
    if (hl == 0) {
        h = "127.0.0.1";
        hl = strlen(h);
    }
    if (hl >= hostlen)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "host too long in '%s'", s);
    char *end;
    if (*ps < '0' || *ps > '9')
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "bad port in '%s' (expected 0..65535)", s);
    errno = 0;
    unsigned long p = strtoul(ps, &end, 10);
    if (*end || errno || p > 65535)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "bad port in '%s' (expected 0..65535)", s);
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)p;
    return DRST_OK;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **req_cls)
{
    struct drst_http *h = cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)req_cls;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("method not allowed\n"), 19,
                     "text/plain");
    if (!strcmp(url, "/metrics")) {
        char *body = NULL;
        size_t len = 0;
        if (drst_metrics_render(h->m, &body, &len, NULL, 0))
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, 0, "text/plain");
        return reply(c, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8");
    }
    if (!strcmp(url, "/healthz")) {
        char msg[256] = "ok";
        int bad = h->health ? h->health(h->opaque, msg, sizeof(msg)) : 0;
        msg[sizeof(msg) - 1] = 0;
        size_t n = strlen(msg);
        char *body = malloc(n + 2);
        if (!body)
            return MHD_NO;
        memcpy(body, msg, n);
        body[n] = '\n';
        body[n + 1] = 0;
        return reply(c, bad ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, body, n + 1,
                     "text/plain");
    }
    return reply(c, MHD_HTTP_NOT_FOUND, strdup("not found: try /metrics or /healthz\n"), 36,
                 "text/plain");
}

drst_http_t *drst_http_start(const char *addr, drst_metrics_t *m, drst_health_fn health,
                             void *opaque, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (!m) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "no metrics registry");
        return NULL;
    }
    if (drst_metrics_addr_parse(addr, host, sizeof(host), &port, err, errlen))
        return NULL;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gr = getaddrinfo(host, NULL, &hints, &ai);
    if (gr || !ai) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "cannot resolve metrics host '%s': %s", host,
                    gai_strerror(gr));
        return NULL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    int v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (v6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);

    struct drst_http *h = calloc(1, sizeof(*h));
    if (!h) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    h->m = m;
    h->health = health;
    h->opaque = opaque;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (v6 ? MHD_USE_IPv6 : 0);
    errno = 0;
    h->d = MHD_start_daemon(flags, port, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_END);
    if (!h->d) {
        int e = errno;
        drst_seterr(err, errlen, DRST_ERR_IO, "cannot serve metrics on %s: %s", addr,
                    e ? strerror(e) : "libmicrohttpd failed to start");
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;
}

uint16_t drst_http_port(const drst_http_t *h)
{
    return h ? h->port : 0;
}

void drst_http_stop(drst_http_t *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
