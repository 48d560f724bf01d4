/* The TCP forwarder behind `drst broker --port` (loopback only): bytes are
 * relayed unchanged and in order both ways through its bounded buffers,
 * half-closes are passed on, a port in use is refused with the address in
 * the message, a dead target closes the client, and free() with live
 * connections closes them. Test sockets time out after 10 s so a bug fails
 * instead of hanging. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "stream/tcpfwd_int.h"

#define UP_BYTES   (1u << 20)
#define DOWN_BYTES (3u << 20)

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Byte i of stream `seed`: a pattern that catches reordering and loss. */
static unsigned char pat(uint32_t seed, size_t i)
{
    uint32_t x = (uint32_t)i * 2654435761u + seed;
    return (unsigned char)(x >> 24 ^ x >> 8 ^ i / 4093);
}

static void timeouts(int fd)
{
    struct timeval tv = {10, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

/* A listening socket on 127.0.0.1:0; its port in *port. */
static int listener(int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Connect to "127.0.0.1:port" as printed by drst_tcpfwd_address(). */
static int dial(const char *addr)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    const char *colon = strrchr(addr, ':');
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_non_null(colon);
    sa.sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10));
    assert_true(fd >= 0);
    timeouts(fd);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

struct sender {
    int fd;
    uint32_t seed;
    size_t n;
    int shut; /* shutdown(SHUT_WR) when done */
    int ok;
};

static void *send_all(void *arg)
{
    struct sender *s = arg;
    unsigned char buf[8192];
    size_t done = 0;
    while (done < s->n) {
        size_t k = s->n - done < sizeof(buf) ? s->n - done : sizeof(buf);
        ssize_t w;
        for (size_t i = 0; i < k; i++)
            buf[i] = pat(s->seed, done + i);
        w = send(s->fd, buf, k, MSG_NOSIGNAL);
        if (w <= 0)
            return NULL;
        done += (size_t)w;
    }
    if (s->shut)
        shutdown(s->fd, SHUT_WR);
    s->ok = 1;
    return NULL;
}

/* Read until EOF; returns the byte count, or (size_t)-1 at the first byte
 * that differs from pattern `seed` (or on a read error). */
static size_t recv_check(int fd, uint32_t seed)
{
    unsigned char buf[10000];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0)
            return got;
        if (r < 0)
            return (size_t)-1;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != pat(seed, got + (size_t)i))
                return (size_t)-1;
        got += (size_t)r;
    }
}

static void wait_inactive(const drst_tcpfwd_t *f)
{
    drst_tcpfwd_stats_t st;
    for (int i = 0; i < 500; i++) {
        drst_tcpfwd_stats(f, &st);
        if (st.active == 0)
            return;
        msleep(10);
    }
    fail_msg("%llu connections still active after 5 s", (unsigned long long)st.active);
}

static void test_relay_both_ways(void **state)
{
    char err[DRST_ERRLEN];
    int tport, lfd = listener(&tport), cfd, sfd;
    drst_tcpfwd_t *f;
    drst_tcpfwd_stats_t st;
    struct sender up = {0}, down = {0};
    pthread_t th;
    (void)state;

    f = drst_tcpfwd_new("127.0.0.1", 0, "127.0.0.1", tport, err, sizeof(err));
    assert_non_null(f);
    cfd = dial(drst_tcpfwd_address(f));
    sfd = accept(lfd, NULL, NULL); /* the relay's connection to the target */
    assert_true(sfd >= 0);
    timeouts(sfd);

    /* client -> target, then a half-close that must reach the target */
    up = (struct sender){.fd = cfd, .seed = 7, .n = UP_BYTES, .shut = 1};
    assert_int_equal(pthread_create(&th, NULL, send_all, &up), 0);
    assert_int_equal(recv_check(sfd, 7), UP_BYTES);
    pthread_join(th, NULL);
    assert_true(up.ok);

    /* target -> client still flows after the client's half-close */
    down = (struct sender){.fd = sfd, .seed = 99, .n = DOWN_BYTES, .shut = 1};
    assert_int_equal(pthread_create(&th, NULL, send_all, &down), 0);
    assert_int_equal(recv_check(cfd, 99), DOWN_BYTES);
    pthread_join(th, NULL);
    assert_true(down.ok);
    close(sfd);
    close(cfd);

    wait_inactive(f);
    drst_tcpfwd_stats(f, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.connect_fail, 0);
    assert_int_equal(st.bytes_up, UP_BYTES);
    assert_int_equal(st.bytes_down, DOWN_BYTES);
    drst_tcpfwd_free(f);
    close(lfd);
}

static void test_port_in_use(void **state)
{
    char err[DRST_ERRLEN], want[64];
    int tport, lfd = listener(&tport);
    drst_tcpfwd_t *a, *b;
    const char *addr;
    (void)state;

    a = drst_tcpfwd_new("127.0.0.1", 0, "127.0.0.1", tport, err, sizeof(err));
    assert_non_null(a);
    addr = drst_tcpfwd_address(a);
    b = drst_tcpfwd_new("127.0.0.1", (int)strtol(strrchr(addr, ':') + 1, NULL, 10), "127.0.0.1",
                        tport, err, sizeof(err));
    assert_null(b);
    snprintf(want, sizeof(want), "cannot bind %s: ", addr);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, strerror(EADDRINUSE)));

    assert_null(drst_tcpfwd_new("127.0.0.1", 70000, "127.0.0.1", tport, err, sizeof(err)));
    assert_null(drst_tcpfwd_new("127.0.0.1", 0, "127.0.0.1", 0, err, sizeof(err)));
    assert_null(drst_tcpfwd_new(NULL, 0, "127.0.0.1", tport, NULL, 0));
    drst_tcpfwd_free(a);
    drst_tcpfwd_free(NULL);
    close(lfd);
}

static void test_dead_target(void **state)
{
    char err[DRST_ERRLEN], c;
    int tport, lfd = listener(&tport), cfd;
    drst_tcpfwd_t *f;
    drst_tcpfwd_stats_t st;
    (void)state;

    close(lfd); /* nobody listens on tport now */
    f = drst_tcpfwd_new("127.0.0.1", 0, "127.0.0.1", tport, err, sizeof(err));
    assert_non_null(f);
    cfd = dial(drst_tcpfwd_address(f));
    assert_true(recv(cfd, &c, 1, 0) <= 0); /* closed, not left hanging */
    close(cfd);
    wait_inactive(f);
    drst_tcpfwd_stats(f, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.connect_fail, 1);
    drst_tcpfwd_free(f);
}

static void test_free_with_live_connections(void **state)
{
    char err[DRST_ERRLEN], c;
    int tport, lfd = listener(&tport), cfd[10], sfd[10];
    drst_tcpfwd_t *f;
    drst_tcpfwd_stats_t st;
    (void)state;

    f = drst_tcpfwd_new("127.0.0.1", 0, "127.0.0.1", tport, err, sizeof(err));
    assert_non_null(f);
    for (int i = 0; i < 10; i++) {
        cfd[i] = dial(drst_tcpfwd_address(f));
        sfd[i] = accept(lfd, NULL, NULL);
        assert_true(sfd[i] >= 0);
        timeouts(sfd[i]);
        assert_int_equal(send(cfd[i], "ping", 4, 0), 4);
    }
    for (int i = 0; i < 10; i++) {
        char buf[4];
        assert_int_equal(recv(sfd[i], buf, 4, MSG_WAITALL), 4);
        assert_memory_equal(buf, "ping", 4);
    }
    drst_tcpfwd_stats(f, &st);
    assert_int_equal(st.active, 10);
    drst_tcpfwd_free(f); /* joins the relay thread, closes all 20 sockets */
    for (int i = 0; i < 10; i++) {
        assert_true(recv(cfd[i], &c, 1, 0) <= 0);
        assert_true(recv(sfd[i], &c, 1, 0) <= 0);
        close(cfd[i]);
        close(sfd[i]);
    }
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_both_ways),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_dead_target),
        cmocka_unit_test(test_free_with_live_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
