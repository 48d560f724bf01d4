/* Capture source: pcap/pcapng files and live interfaces through libpcap.
 * The only file of drst that includes pcap.h; libpcap's errors are turned
 * into drst_err_t here, with libpcap's text in the error buffer. */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error_int.h"
#include "flow/flow_int.h"

struct loopctx {
    drst_flow_engine_t *e;
    int linktype;
    uint64_t n, max;
    int nsec;
};

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct loopctx *c = (struct loopctx *)user;
    uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000ull +
                  (uint64_t)h->ts.tv_usec * (c->nsec ? 1ull : 1000ull);
    if (drst_flow_engine_packet(c->e, c->linktype, bytes, h->caplen, h->len, ts) == DRST_OK)
        c->n++;
}

static drst_err_t set_filter(pcap_t *p, const char *filter, char *err, size_t errlen)
{
    struct bpf_program prog;
    if (!filter || !*filter)
        return DRST_OK;
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "bad BPF filter '%s': %s", filter,
                           pcap_geterr(p));
    int rc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (rc != 0)
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "cannot set BPF filter '%s': %s", filter,
                           pcap_geterr(p));
    return DRST_OK;
}

static int bpf_match(void *ctx, const uint8_t *pkt, uint32_t caplen, uint32_t wirelen)
{
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof(h));
    h.caplen = caplen;
    h.len = wirelen;
    return pcap_offline_filter(ctx, &h, pkt) != 0;
}

/* A reader of its own over a shared descriptor (pread: no shared offset). */
struct preader {
    int fd;
    uint64_t off;
};

static long fd_read(void *ctx, uint8_t *buf, size_t n)
{
    struct preader *r = ctx;
    for (;;) {
        ssize_t k = pread(r->fd, buf, n, (off_t)r->off);
        if (k >= 0) {
            r->off += (uint64_t)k;
            return (long)k;
        }
        if (errno != EINTR)
            return -1;
    }
}

/* One reader thread of replica mode. */
struct replica {
    pthread_t th;
    const drst_flow_capture_opts_t *o;
    int fd;
    uint64_t flen;
    pcapfile_filter_fn flt;
    void *fctx;
    engine_worker_t *w;
    volatile int *stop;
    uint64_t n;
    drst_err_t rc;
    char err[DRST_ERRLEN];
};

static void *replica_main(void *arg)
{
    struct replica *r = arg;
    struct preader rd = {r->fd, 0};
    r->rc = pcapfile_scan(r->o->file, r->flen, fd_read, &rd, r->flt, r->fctx, engine_replica_packet,
                          r->w, r->o->max_packets, r->stop, &r->n, r->err, sizeof(r->err));
    return NULL;
}

/* Scan the file once per worker, in parallel (engine.c: replica mode).
 * Every scan meets the same errors at the same offsets: the first one's
 * result is reported. */
static drst_err_t scan_replicas(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e, int fd,
                                uint64_t flen, pcapfile_filter_fn flt, void *fctx,
                                volatile int *stop, uint64_t *n, char *err, size_t errlen)
{
    unsigned nw = 0;
    while (engine_replica_worker(e, nw))
        nw++;
    struct replica *r = calloc(nw, sizeof(*r));
    if (!r)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory starting the readers");
    drst_err_t rc = DRST_OK;
    unsigned started = 0;
    for (unsigned i = 0; i < nw; i++) {
        r[i] = (struct replica){.o = o,
                                .fd = fd,
                                .flen = flen,
                                .flt = flt,
                                .fctx = fctx,
                                .w = engine_replica_worker(e, i),
                                .stop = stop};
        int prc = pthread_create(&r[i].th, NULL, replica_main, &r[i]);
        if (prc) {
            /* the flows of the workers without a reader would be missing */
            rc =
                drst_seterrno(err, errlen, DRST_ERR_NOMEM, prc, "cannot start reader thread %u", i);
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(r[i].th, NULL);
    if (rc == DRST_OK && started) {
        rc = r[0].rc;
        *n = r[0].n;
        if (rc != DRST_OK)
            drst_seterr(err, errlen, rc, "%s", r[0].err);
    }
    free(r);
    return rc;
}

/* Classic pcap files through pcapfile.c; *done = 0 when it is not one. */
static drst_err_t run_classic(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e,
                              volatile int *stop, int *done, char *err, size_t errlen)
{
    struct stat st;
    int swap, nsec;
    uint8_t magic[24];
    drst_err_t rc = DRST_OK;
    *done = 0;
    int fd = open(o->file, O_RDONLY);
    if (fd < 0)
        return DRST_OK; /* libpcap reports it */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 24 ||
        pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
        !pcapfile_probe(magic, sizeof(magic), &swap, &nsec)) {
        close(fd);
        return DRST_OK;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    *done = 1;

    pcap_t *dead = NULL;
    struct bpf_program prog;
    int have_prog = 0;
    if (o->filter && *o->filter) {
        uint32_t lt = pcap_get32(magic + 20, swap);
        dead = pcap_open_dead((int)(lt & 0xffff), 262144);
        if (!dead) {
            rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "cannot compile the BPF filter");
            goto out;
        }
        if (pcap_compile(dead, &prog, o->filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            rc = drst_seterr(err, errlen, DRST_ERR_INVAL, "bad BPF filter '%s': %s", o->filter,
                             pcap_geterr(dead));
            goto out;
        }
        have_prog = 1;
    }
    uint64_t n = 0;
    pcapfile_filter_fn flt = have_prog ? bpf_match : NULL;
    if (engine_replica_begin(e, NULL, 0) == DRST_OK) {
        rc = scan_replicas(o, e, fd, (uint64_t)st.st_size, flt, &prog, stop, &n, err, errlen);
    } else {
        struct preader rd = {fd, 0};
        rc = pcapfile_scan(o->file, (uint64_t)st.st_size, fd_read, &rd, flt, &prog, engine_feed, e,
                           o->max_packets, stop, &n, err, errlen);
    }
    if (rc == DRST_OK && n == 0 && !have_prog)
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY, "'%s' holds no packet", o->file);
out:
    if (have_prog)
        pcap_freecode(&prog);
    if (dead)
        pcap_close(dead);
    close(fd);
    return rc;
}

static drst_err_t run_file(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e,
                           volatile int *stop, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    struct stat st;
    drst_err_t rc = DRST_OK;
    int done;

    if (stat(o->file, &st) != 0)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open '%s'", o->file);
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "'%s' is empty (0 bytes): not a pcap or pcapng capture", o->file);
    rc = run_classic(o, e, stop, &done, err, errlen);
    if (done)
        return rc;
    pcap_t *p = pcap_open_offline_with_tstamp_precision(o->file, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (!p)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "'%s': not a readable capture: %s",
                           o->file, ebuf);
    if ((rc = set_filter(p, o->filter, err, errlen)) != DRST_OK)
        goto out;

    struct loopctx c = {e, pcap_datalink(p), 0, o->max_packets, 1};
    c.nsec = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    for (;;) {
        int want = 4096;
        if (c.max && c.max - c.n < (uint64_t)want)
            want = (int)(c.max - c.n);
        if (want == 0 || (stop && *stop))
            break;
        int n = pcap_dispatch(p, want, on_packet, (u_char *)&c);
        if (n == 0 || n == PCAP_ERROR_BREAK)
            break; /* end of file */
        if (n < 0) {
            FILE *f = pcap_file(p);
            long off = f ? ftell(f) : -1;
            rc = drst_seterr(err, errlen, DRST_ERR_FORMAT,
                             "'%s': corrupt or truncated after packet %llu (byte offset %ld): %s",
                             o->file, (unsigned long long)c.n, off, pcap_geterr(p));
            goto out;
        }
    }
    /* A filter that matched nothing is fine; a file with no packet is not. */
    if (c.n == 0 && (!o->filter || !*o->filter))
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY, "'%s' holds no packet", o->file);
out:
    pcap_close(p);
    return rc;
}

static drst_err_t run_live(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e,
                           volatile int *stop, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    drst_err_t rc = DRST_OK;
    pcap_t *p = pcap_create(o->iface, ebuf);
    if (!p)
        return drst_seterr(err, errlen, DRST_ERR_IO, "cannot open interface '%s': %s", o->iface,
                           ebuf);
    (void)pcap_set_snaplen(p, o->snaplen > 0 ? o->snaplen : 256);
    (void)pcap_set_immediate_mode(p, 1);
    (void)pcap_set_timeout(p, 100);
    (void)pcap_set_buffer_size(p, 32 << 20);
    (void)pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO);
    int a = pcap_activate(p);
    if (a < 0) {
        rc = drst_seterr(err, errlen, DRST_ERR_IO, "cannot capture on '%s': %s", o->iface,
                         a == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(a));
        goto out;
    }
    if ((rc = set_filter(p, o->filter, err, errlen)) != DRST_OK)
        goto out;
    struct loopctx c = {e, pcap_datalink(p), 0, o->max_packets, 0};
    c.nsec = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    if (o->on_ready)
        o->on_ready(o->ready_ctx, o->iface);
    /* Non-blocking reads and our own poll() with a 100 ms timeout: in
     * immediate mode libpcap's read timeout does not apply, so a blocking
     * pcap_dispatch() on a quiet link (or one whose traffic the filter
     * rejects) never returned, and a stop request was never seen. */
    int fd = pcap_get_selectable_fd(p);
    if (fd >= 0 && pcap_setnonblock(p, 1, ebuf) != 0)
        fd = -1; /* blocking reads then; the read timeout is all we have */
    while (!(stop && *stop) && !(c.max && c.n >= c.max)) {
        int want = c.max ? (int)(c.max - c.n < 4096 ? c.max - c.n : 4096) : 4096;
        int n = pcap_dispatch(p, want, on_packet, (u_char *)&c);
        if (n < 0 && n != PCAP_ERROR_BREAK) {
            rc = drst_seterr(err, errlen, DRST_ERR_IO, "capture on '%s' failed: %s", o->iface,
                             pcap_geterr(p));
            goto out;
        }
        engine_flush_staged(e);
        if (n == 0 && fd >= 0) {
            struct pollfd pfd = {fd, POLLIN, 0};
            (void)poll(&pfd, 1, 100); /* EINTR (the stop signal) ends it early */
        }
    }
    /* Never lose packets silently: what the kernel's buffer or the
     * interface dropped is counted (TPACKET_V3 reports it on Linux). */
    struct pcap_stat ps;
    if (pcap_stats(p, &ps) == 0)
        engine_note_capture_drops(e, (uint64_t)ps.ps_drop + ps.ps_ifdrop);
out:
    pcap_close(p);
    return rc;
}

drst_err_t drst_flow_capture_run(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e,
                                 volatile int *stop, char *err, size_t errlen)
{
    if (!o || !e || (!o->file == !o->iface))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "give exactly one of a file or an interface");
    drst_err_t rc = o->file ? run_file(o, e, stop, err, errlen) : run_live(o, e, stop, err, errlen);
    engine_flush_staged(e);
    return rc;
}

/* ---- dead letters: rejected packets as a pcap file ---- */

struct drst_flow_rejects {
    char *path;
    pcap_t *dead;
    pcap_dumper_t *d;
    int linktype;
    uint64_t written, lost;
    char why[PCAP_ERRBUF_SIZE + 64];
};

drst_flow_rejects_t *drst_flow_rejects_open(const char *path, char *err, size_t errlen)
{
    /* the file exists (empty) from the start, as the other outputs do */
    FILE *f = fopen(path, "w");
    if (!f) {
        drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", path);
        return NULL;
    }
    fclose(f);
    drst_flow_rejects_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->path = strdup(path))) {
        free(r);
        drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return r;
}

void drst_flow_rejects_write(drst_flow_rejects_t *r, int linktype, const uint8_t *data,
                             uint32_t caplen, uint32_t wirelen, uint64_t ts_ns)
{
    if (!r->d && !r->why[0]) {
        r->linktype = linktype;
        r->dead =
            pcap_open_dead_with_tstamp_precision(linktype, 262144, PCAP_TSTAMP_PRECISION_NANO);
        if (r->dead && !(r->d = pcap_dump_open(r->dead, r->path)))
            snprintf(r->why, sizeof(r->why), "cannot write '%s': %s", r->path,
                     pcap_geterr(r->dead));
        else if (!r->dead)
            snprintf(r->why, sizeof(r->why), "cannot write '%s': out of memory", r->path);
    }
    if (!r->d || linktype != r->linktype) {
        r->lost++;
        return;
    }
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(ts_ns / 1000000000u);
    h.ts.tv_usec = (suseconds_t)(ts_ns % 1000000000u); /* nanoseconds: see the precision */
    h.caplen = caplen;
    h.len = wirelen;
    pcap_dump((u_char *)r->d, &h, data);
    r->written++;
}

drst_err_t drst_flow_rejects_close(drst_flow_rejects_t *r, uint64_t *written, uint64_t *lost,
                                   char *err, size_t errlen)
{
    if (!r)
        return DRST_OK;
    drst_err_t rc = DRST_OK;
    if (!r->d && !r->why[0]) { /* nothing rejected: still a valid (empty) capture */
        r->dead = pcap_open_dead_with_tstamp_precision(1, 262144, PCAP_TSTAMP_PRECISION_NANO);
        if (r->dead && !(r->d = pcap_dump_open(r->dead, r->path)))
            snprintf(r->why, sizeof(r->why), "cannot write '%s': %s", r->path,
                     pcap_geterr(r->dead));
    }
    if (r->d && pcap_dump_flush(r->d) != 0)
        rc = drst_seterr(err, errlen, DRST_ERR_IO, "writing '%s' failed", r->path);
    else if (r->why[0])
        rc = drst_seterr(err, errlen, DRST_ERR_IO, "%s", r->why);
    if (written)
        *written = r->written;
    if (lost)
        *lost = r->lost;
    if (r->d)
        pcap_dump_close(r->d);
    if (r->dead)
        pcap_close(r->dead);
    free(r->path);
    free(r);
    return rc;
}
