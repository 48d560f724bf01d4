/* Capture source: pcap/pcapng files and live interfaces through libpcap.
 * The only file of drst that includes pcap.h; libpcap's errors are turned
 * into drst_err_t here, with libpcap's text in the error buffer. */
#include <errno.h>
#include <pcap/pcap.h>
#include <string.h>
#include <sys/stat.h>

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

static drst_err_t run_file(const drst_flow_capture_opts_t *o, drst_flow_engine_t *e,
                           volatile int *stop, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    struct stat st;
    drst_err_t rc = DRST_OK;

    if (stat(o->file, &st) != 0)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open '%s'", o->file);
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "'%s' is empty (0 bytes): not a pcap or pcapng capture", o->file);
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
        return drst_seterr(err, errlen, DRST_ERR_INVAL, "give exactly one of a file or an interface");
    drst_err_t rc = o->file ? run_file(o, e, stop, err, errlen) : run_live(o, e, stop, err, errlen);
    engine_flush_staged(e);
    return rc;
}
