/* TCP forwarder for the development broker (see tcpfwd_int.h).
 *
 * One thread, one poll() over a wake-up pipe, the listener and both sockets
 * of every relayed connection. Each connection owns two fixed buffers (one
 * per direction), allocated when it is accepted; nothing is allocated per
 * read. A socket is only polled for what can make progress (POLLIN when its
 * buffer has room, POLLOUT when the other direction has bytes to write), and
 * a socket that wants nothing is left out of the poll set so that a pending
 * hang-up cannot make poll() return in a loop. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/error_int.h"
#include "stream/tcpfwd_int.h"

/* One direction: read from one socket into buf[len..], write buf[off..len)
 * to the other. */
struct half {
    char *buf;
    size_t off, len;
    int eof;  /* the reading socket said end-of-file */
    int shut; /* shutdown(SHUT_WR) passed on to the writing socket */
};

struct conn {
    int cfd, tfd;   /* client, target */
    int connecting; /* non-blocking connect to the target in progress */
    struct half up; /* client -> target */
    struct half down;
};

struct drst_tcpfwd {
    int lfd;
    int wake[2];
    struct sockaddr_storage target;
    socklen_t tlen;
    char addr[96];
    pthread_t th;
    int started;
    struct conn *conns[DRST_TCPFWD_MAXCONN];
    size_t nconn;
    struct pollfd pfd[2 + 2 * DRST_TCPFWD_MAXCONN];
    _Atomic uint64_t accepted, connect_fail, active, bytes_up, bytes_down;
};

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ? -1 : 0;
}

static void set_nodelay(int fd)
{
    /* Kafka is request/response: without this Nagle and delayed ACKs add
     * tens of milliseconds per relayed round trip. Failure only costs
     * latency (e.g. on a non-TCP family), so it is ignored. */
    int on = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static void fmt_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
    char h[NI_MAXHOST], s[NI_MAXSERV];
    if (getnameinfo(sa, len, h, sizeof(h), s, sizeof(s), NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(buf, cap, "?");
        return;
    }
    snprintf(buf, cap, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, s);
}

static void conn_free(struct conn *c)
{
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->tfd >= 0)
        close(c->tfd);
    free(c->up.buf);
    free(c);
}

static void accept_one(drst_tcpfwd_t *f, int cfd)
{
    struct conn *c;
    int tfd;

    atomic_fetch_add_explicit(&f->accepted, 1, memory_order_relaxed);
    c = calloc(1, sizeof(*c));
    if (!c || !(c->up.buf = malloc(2 * (size_t)DRST_TCPFWD_BUFSZ))) {
        free(c);
        close(cfd);
        atomic_fetch_add_explicit(&f->connect_fail, 1, memory_order_relaxed);
        return;
    }
    c->down.buf = c->up.buf + DRST_TCPFWD_BUFSZ;
    c->cfd = cfd;
    c->tfd = -1;
    tfd = socket(f->target.ss_family, SOCK_STREAM, 0);
    if (tfd < 0 || set_nonblock(tfd) < 0) {
        if (tfd >= 0)
            close(tfd);
        goto fail;
    }
    c->tfd = tfd;
    set_nodelay(cfd);
    set_nodelay(tfd);
    if (connect(tfd, (const struct sockaddr *)&f->target, f->tlen) < 0) {
        if (errno != EINPROGRESS)
            goto fail;
        c->connecting = 1;
    }
    f->conns[f->nconn++] = c;
    atomic_fetch_add_explicit(&f->active, 1, memory_order_relaxed);
    return;
fail:
    atomic_fetch_add_explicit(&f->connect_fail, 1, memory_order_relaxed);
    conn_free(c);
}

/* Accept until the backlog is empty or the table is full. Returns 1 when
 * accept() failed for lack of resources (descriptors, memory): the caller
 * then stops polling the listener for a while instead of spinning on it. */
static int accept_all(drst_tcpfwd_t *f)
{
    while (f->nconn < DRST_TCPFWD_MAXCONN) {
        int cfd = accept(f->lfd, NULL, NULL);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return 1;
        }
        if (set_nonblock(cfd) < 0) {
            close(cfd);
            continue;
        }
        accept_one(f, cfd);
    }
    return 0;
}

/* Move bytes one way. Returns -1 if the connection must be dropped, else
 * whether anything happened (bytes moved or a state changed). */
static int pump(struct half *h, int rfd, int wfd, int can_read, int can_write,
                _Atomic uint64_t *counter)
{
    int progress = 0;
    if (can_read && !h->eof && h->len < DRST_TCPFWD_BUFSZ) {
        ssize_t n = recv(rfd, h->buf + h->len, DRST_TCPFWD_BUFSZ - h->len, 0);
        if (n > 0) {
            h->len += (size_t)n;
            progress = 1;
        } else if (n == 0) {
            h->eof = 1;
            progress = 1;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
    }
    /* Write right after reading: the other socket is usually writable, and
     * this saves a poll() round per chunk. */
    if ((can_write || progress) && h->off < h->len) {
        ssize_t n = send(wfd, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
        if (n > 0) {
            h->off += (size_t)n;
            atomic_fetch_add_explicit(counter, (uint64_t)n, memory_order_relaxed);
            progress = 1;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
    }
    if (h->off == h->len) {
        h->off = h->len = 0;
        if (h->eof && !h->shut) {
            /* Pass the half-close on; ENOTCONN means the peer is gone
             * already, which the other direction will notice. */
            (void)shutdown(wfd, SHUT_WR);
            h->shut = 1;
            progress = 1;
        }
    } else if (h->len == DRST_TCPFWD_BUFSZ && h->off > 0) {
        memmove(h->buf, h->buf + h->off, h->len - h->off);
        h->len -= h->off;
        h->off = 0;
    }
    return progress;
}

/* What each socket of c waits for; 0 means leave it out of the poll set. */
static void conn_events(const struct conn *c, short *ce, short *te)
{
    *ce = *te = 0;
    if (c->connecting) {
        *te = POLLOUT;
        return;
    }
    if (!c->up.eof && c->up.len < DRST_TCPFWD_BUFSZ)
        *ce |= POLLIN;
    if (c->down.off < c->down.len)
        *ce |= POLLOUT;
    if (!c->down.eof && c->down.len < DRST_TCPFWD_BUFSZ)
        *te |= POLLIN;
    if (c->up.off < c->up.len)
        *te |= POLLOUT;
}

/* Handle poll results for one connection. Returns 0 to keep it, -1 to drop. */
static int conn_step(drst_tcpfwd_t *f, struct conn *c, short cr, short tr)
{
    int a, b;
    if ((cr | tr) & POLLNVAL)
        return -1;
    if (c->connecting) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (!(tr & (POLLOUT | POLLERR | POLLHUP)))
            return 0;
        if (getsockopt(c->tfd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            atomic_fetch_add_explicit(&f->connect_fail, 1, memory_order_relaxed);
            return -1;
        }
        c->connecting = 0;
        return 0;
    }
    a = pump(&c->up, c->cfd, c->tfd, cr & (POLLIN | POLLHUP | POLLERR), tr & (POLLOUT | POLLERR),
             &f->bytes_up);
    if (a < 0)
        return -1;
    b = pump(&c->down, c->tfd, c->cfd, tr & (POLLIN | POLLHUP | POLLERR), cr & (POLLOUT | POLLERR),
             &f->bytes_down);
    if (b < 0)
        return -1;
    if (c->up.shut && c->down.shut)
        return -1; /* both directions finished: done */
    /* An error or hang-up that moved nothing will be reported again at
     * once; drop the connection rather than spin on it. */
    if (!a && !b && ((cr | tr) & (POLLERR | POLLHUP)))
        return -1;
    return 0;
}

static void *run(void *arg)
{
    drst_tcpfwd_t *f = arg;
    int paused = 0;

    for (;;) {
        nfds_t n = 2;
        int rc;
        f->pfd[0] = (struct pollfd){.fd = f->wake[0], .events = POLLIN};
        f->pfd[1] = (struct pollfd){.fd = (!paused && f->nconn < DRST_TCPFWD_MAXCONN) ? f->lfd : -1,
                                    .events = POLLIN};
        for (size_t i = 0; i < f->nconn; i++) {
            short ce, te;
            conn_events(f->conns[i], &ce, &te);
            f->pfd[n++] = (struct pollfd){.fd = ce ? f->conns[i]->cfd : -1, .events = ce};
            f->pfd[n++] = (struct pollfd){.fd = te ? f->conns[i]->tfd : -1, .events = te};
        }
        /* Paused after a resource failure in accept(): retry it in 100 ms
         * (or at the next wake-up), never in a tight loop. */
        rc = poll(f->pfd, n, paused ? 100 : -1);
        if (rc < 0) {
            /* ENOMEM is transient; back off rather than give up the relay. */
            struct timespec ts = {0, 100 * 1000000L};
            if (errno != EINTR)
                nanosleep(&ts, NULL);
            continue;
        }
        if (f->pfd[0].revents)
            break;
        paused = 0;
        {
            size_t keep = 0, nc = f->nconn;
            for (size_t i = 0; i < nc; i++) {
                struct conn *c = f->conns[i];
                if (conn_step(f, c, f->pfd[2 + 2 * i].revents, f->pfd[3 + 2 * i].revents) < 0) {
                    conn_free(c);
                    atomic_fetch_sub_explicit(&f->active, 1, memory_order_relaxed);
                } else {
                    f->conns[keep++] = c;
                }
            }
            f->nconn = keep;
        }
        if (f->pfd[1].revents & POLLIN)
            paused = accept_all(f);
    }
    return NULL;
}

static drst_err_t resolve(const char *host, int port, int passive, struct sockaddr_storage *ss,
                          socklen_t *len, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char ps[16];
    int rc;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    snprintf(ps, sizeof(ps), "%d", port);
    rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "cannot resolve '%s': %s", host,
                           rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return DRST_OK;
}

drst_tcpfwd_t *drst_tcpfwd_new(const char *host, int port, const char *target_host, int target_port,
                               char *err, size_t errlen)
{
    struct sockaddr_storage la;
    socklen_t ll;
    drst_tcpfwd_t *f;
    sigset_t all, old;
    int on = 1, e;

    if (!host || !target_host || port < 0 || port > 65535 || target_port <= 0 ||
        target_port > 65535) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "invalid address or port");
        return NULL;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    f->lfd = f->wake[0] = f->wake[1] = -1;
    if (resolve(target_host, target_port, 0, &f->target, &f->tlen, err, errlen) ||
        resolve(host, port, 1, &la, &ll, err, errlen))
        goto fail;
    f->lfd = socket(la.ss_family, SOCK_STREAM, 0);
    if (f->lfd < 0 || set_nonblock(f->lfd) < 0) {
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open a socket for %s:%d", host,
                      port);
        goto fail;
    }
    /* Lets a restarted broker rebind a port whose old connections sit in
     * TIME_WAIT; Linux still refuses a port that someone listens on. */
    (void)setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(f->lfd, (struct sockaddr *)&la, ll) < 0) {
        e = errno;
        fmt_addr((struct sockaddr *)&la, ll, f->addr, sizeof(f->addr));
        drst_seterrno(err, errlen, DRST_ERR_IO, e, "cannot bind %s", f->addr);
        goto fail;
    }
    if (listen(f->lfd, 128) < 0) {
        e = errno;
        fmt_addr((struct sockaddr *)&la, ll, f->addr, sizeof(f->addr));
        drst_seterrno(err, errlen, DRST_ERR_IO, e, "cannot listen on %s", f->addr);
        goto fail;
    }
    ll = sizeof(la);
    if (getsockname(f->lfd, (struct sockaddr *)&la, &ll) < 0) {
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read the bound address of %s:%d",
                      host, port);
        goto fail;
    }
    fmt_addr((struct sockaddr *)&la, ll, f->addr, sizeof(f->addr));
    if (pipe(f->wake) < 0 || set_nonblock(f->wake[0]) < 0 || set_nonblock(f->wake[1]) < 0) {
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot make the wake-up pipe of %s",
                      f->addr);
        goto fail;
    }
    /* The relay thread must never take the process's signals (the tool
     * waits for SIGINT/SIGTERM with sigwait()). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&f->th, NULL, run, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        drst_seterrno(err, errlen, DRST_ERR_NOMEM, e, "cannot start the relay thread of %s",
                      f->addr);
        goto fail;
    }
    f->started = 1;
    return f;
fail:
    drst_tcpfwd_free(f);
    return NULL;
}

const char *drst_tcpfwd_address(const drst_tcpfwd_t *f)
{
    return f->addr;
}

void drst_tcpfwd_stats(const drst_tcpfwd_t *f, drst_tcpfwd_stats_t *st)
{
    drst_tcpfwd_t *m = (drst_tcpfwd_t *)f; /* atomic loads take non-const */
    st->accepted = atomic_load_explicit(&m->accepted, memory_order_relaxed);
    st->connect_fail = atomic_load_explicit(&m->connect_fail, memory_order_relaxed);
    st->active = atomic_load_explicit(&m->active, memory_order_relaxed);
    st->bytes_up = atomic_load_explicit(&m->bytes_up, memory_order_relaxed);
    st->bytes_down = atomic_load_explicit(&m->bytes_down, memory_order_relaxed);
}

void drst_tcpfwd_free(drst_tcpfwd_t *f)
{
    if (!f)
        return;
    if (f->started) {
        ssize_t w;
        do
            w = write(f->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(f->th, NULL);
    }
    for (size_t i = 0; i < f->nconn; i++)
        conn_free(f->conns[i]);
    if (f->lfd >= 0)
        close(f->lfd);
    if (f->wake[0] >= 0)
        close(f->wake[0]);
    if (f->wake[1] >= 0)
        close(f->wake[1]);
    free(f);
}
