/* Capture source: pcap/pcapng files and live interfaces through libpcap.
 * The only file of drst that includes pcap.h; libpcap's errors are turned
 * into drst_err_t here, with libpcap's text in the error buffer. */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <string.h>
#include <sys/mman.h>
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

/* Pages already walked are dropped so RSS stays small on big files. */
static void drop_pages(void *map, size_t done)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    (void)madvise(map, done / pg * pg, MADV_DONTNEED);
}

/* Classic pcap through mmap (pcapfile.c); *done = 0 when it is not one. */
static drst_err_t run_mapped(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e,
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
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return DRST_OK;
    (void)posix_madvise(map, len, POSIX_MADV_SEQUENTIAL);
    *done = 1;

    pcap_t *dead = NULL;
    struct bpf_program prog;
    int have_prog = 0;
    if (o->filter && *o->filter) {
        uint32_t lt;
        memcpy(&lt, magic + 20, 4);
        if (swap)
            lt = (lt >> 24) | ((lt >> 8) & 0xff00u) | ((lt << 8) & 0xff0000u) | (lt << 24);
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
    rc = pcapfile_scan(o->file, map, len, have_prog ? bpf_match : NULL, &prog, drop_pages, map, e,
                       o->max_packets, stop, &n, err, errlen);
    if (rc == DRST_OK && n == 0 && !have_prog)
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY, "'%s' holds no packet", o->file);
out:
    if (have_prog)
        pcap_freecode(&prog);
    if (dead)
        pcap_close(dead);
    munmap(map, len);
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
    rc = run_mapped(o, e, stop, &done, err, errlen);
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
    while (!(stop && *stop) && !(c.max && c.n >= c.max)) {
        int want = c.max ? (int)(c.max - c.n < 4096 ? c.max - c.n : 4096) : 4096;
        int n = pcap_dispatch(p, want, on_packet, (u_char *)&c);
        if (n < 0 && n != PCAP_ERROR_BREAK) {
            rc = drst_seterr(err, errlen, DRST_ERR_IO, "capture on '%s' failed: %s", o->iface,
                             pcap_geterr(p));
            goto out;
        }
        engine_flush_staged(e);
    }
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
