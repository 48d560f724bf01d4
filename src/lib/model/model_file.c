/* The model file: little-endian fields after a magic, version and length,
 * closed by a SHA-256 of everything before it. Layout in docs/model-file.md.
 * The reader is fed untrusted bytes (stores, fuzzers): every read is bounds
 * checked and every count is limited before allocating. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "common/error_int.h"
#include "model/model_int.h"

#define MAGIC          "DRSTMODL"
#define FORMAT_VERSION 1u
#define HEAD_LEN       24u
#define SUM_LEN        32u
#define MAX_FEATURES   100000u
#define MAX_NAME       4096u

/* ---------------------------------------------------------------- writer */

void wbuf_put(wbuf_t *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        unsigned char *q = realloc(w->p, cap);
        if (!q) {
            w->oom = 1;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

void wbuf_u64(wbuf_t *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    wbuf_put(w, b, 8);
}

void wbuf_u32(wbuf_t *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    wbuf_put(w, b, 4);
}

void wbuf_f64(wbuf_t *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    wbuf_u64(w, u);
}

void wbuf_f64s(wbuf_t *w, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wbuf_f64(w, v[i]);
}

void wbuf_str(wbuf_t *w, const char *s)
{
    size_t n = strlen(s);
    wbuf_u32(w, (uint32_t)n);
    wbuf_put(w, s, n);
}

/* ---------------------------------------------------------------- reader */

void rbuf_fail(rbuf_t *r, const char *what)
{
    if (!r->bad) {
        r->bad = 1;
        r->bad_at = r->pos;
        r->what = what;
    }
}

static const unsigned char *take(rbuf_t *r, size_t n, const char *what)
{
    if (r->bad)
        return NULL;
    if (n > r->len - r->pos) {
        rbuf_fail(r, what);
        return NULL;
    }
    const unsigned char *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint64_t rbuf_u64(rbuf_t *r, const char *what)
{
    const unsigned char *b = take(r, 8, what);
    uint64_t v = 0;
    for (int i = 0; b && i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

uint32_t rbuf_u32(rbuf_t *r, const char *what)
{
    const unsigned char *b = take(r, 4, what);
    uint32_t v = 0;
    for (int i = 0; b && i < 4; i++)
        v |= (uint32_t)b[i] << (8 * i);
    return v;
}

double rbuf_f64(rbuf_t *r, const char *what)
{
    uint64_t u = rbuf_u64(r, what);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

char *rbuf_str(rbuf_t *r, size_t max, const char *what)
{
    uint32_t n = rbuf_u32(r, what);
    if (r->bad)
        return NULL;
    if (n > max) {
        rbuf_fail(r, what);
        return NULL;
    }
    const unsigned char *p = take(r, n, what);
    if (!p)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            rbuf_fail(r, what);
            return NULL;
        }
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        rbuf_fail(r, "out of memory");
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

double *rbuf_f64s(rbuf_t *r, size_t n, const char *what)
{
    if (r->bad)
        return NULL;
    if (n > (r->len - r->pos) / 8) {
        rbuf_fail(r, what);
        return NULL;
    }
    double *v = malloc((n ? n : 1) * sizeof(*v));
    if (!v) {
        rbuf_fail(r, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = rbuf_f64(r, what);
        if (!isfinite(v[i]))
            rbuf_fail(r, what);
    }
    return v;
}

/* ------------------------------------------------------------------ save */

static void put_metrics(wbuf_t *w, const drst_model_metrics_t *v)
{
    double d[10] = {v->acc05, v->acc10, v->acc20, v->mae, v->rmse,
                    v->p50,   v->p80,   v->p90,   v->p95, v->p99};
    wbuf_f64s(w, d, 10);
    wbuf_u64(w, v->rows);
}

static void get_metrics(rbuf_t *r, drst_model_metrics_t *v)
{
    double d[10];
    for (int i = 0; i < 10; i++)
        d[i] = rbuf_f64(r, "metrics");
    v->acc05 = d[0];
    v->acc10 = d[1];
    v->acc20 = d[2];
    v->mae = d[3];
    v->rmse = d[4];
    v->p50 = d[5];
    v->p80 = d[6];
    v->p90 = d[7];
    v->p95 = d[8];
    v->p99 = d[9];
    v->rows = rbuf_u64(r, "metrics");
}

drst_err_t drst_model_save_buffer(const drst_model_t *m, unsigned char **buf, size_t *len,
                                  char *err, size_t errlen)
{
    wbuf_t w = {0}, pl = {0};
    const model_hparams_t *h = &m->hp;

    wbuf_put(&w, MAGIC, 8);
    wbuf_u32(&w, FORMAT_VERSION);
    wbuf_u32(&w, (uint32_t)m->family);
    wbuf_u64(&w, 0); /* total length, patched below */
    wbuf_str(&w, m->target);
    wbuf_u32(&w, (uint32_t)m->nf);
    for (size_t i = 0; i < m->nf; i++) {
        wbuf_str(&w, m->features[i]);
        wbuf_f64(&w, m->mean[i]);
        wbuf_f64(&w, m->scale[i]);
    }
    wbuf_f64(&w, m->y_mean);
    wbuf_f64(&w, m->y_std);
    wbuf_u32(&w, h->n_hidden);
    for (int i = 0; i < DRST_MODEL_MAX_HIDDEN; i++)
        wbuf_u32(&w, h->hidden[i]);
    wbuf_u32(&w, h->activation);
    wbuf_u32(&w, h->loss);
    wbuf_u32(&w, h->split);
    wbuf_u32(&w, h->standardize_target);
    double hd[6] = {h->lr, h->weight_decay, h->alpha, h->eta, h->val_frac, h->es_frac};
    wbuf_f64s(&w, hd, 6);
    uint64_t hu[8] = {h->batch,     h->max_epochs,       h->patience, h->epochs_run,
                      h->max_depth, h->min_samples_leaf, h->n_trees,  h->topk};
    for (int i = 0; i < 8; i++)
        wbuf_u64(&w, hu[i]);
    wbuf_u64(&w, m->seed);
    wbuf_u64(&w, m->n_train);
    wbuf_u64(&w, m->n_val);
    wbuf_put(&w, m->data_hash, 32);
    put_metrics(&w, &m->val);
    m->ops->save(m, &pl);
    wbuf_u64(&w, pl.len);
    if (pl.len)
        wbuf_put(&w, pl.p, pl.len);
    free(pl.p);
    if (w.oom || pl.oom) {
        free(w.p);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "model save: out of memory");
    }
    uint64_t total = w.len + SUM_LEN;
    for (int i = 0; i < 8; i++)
        w.p[16 + i] = (unsigned char)(total >> (8 * i));
    unsigned char sum[SUM_LEN];
    SHA256(w.p, w.len, sum);
    wbuf_put(&w, sum, SUM_LEN);
    if (w.oom) {
        free(w.p);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "model save: out of memory");
    }
    *buf = w.p;
    *len = w.len;
    return DRST_OK;
}

drst_err_t drst_model_save(const drst_model_t *m, const char *path, char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    drst_err_t rc = drst_model_save_buffer(m, &buf, &len, err, errlen);
    if (rc)
        return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        free(buf);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "model save: out of memory");
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot create '%s'", tmp);
        goto out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, buf + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot write '%s'", tmp);
            close(fd);
            unlink(tmp);
            goto out;
        }
        off += (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot sync '%s'", tmp);
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc =
            drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot rename '%s' to '%s'", tmp, path);
        unlink(tmp);
    }
out:
    free(tmp);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ load */

drst_err_t drst_model_load_buffer(const void *buf, size_t len, drst_model_t **out, char *err,
                                  size_t errlen)
{
    const unsigned char *p = buf;
    *out = NULL;
    if (!p || len < HEAD_LEN + SUM_LEN)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "model file: truncated (%zu bytes, header needs %u)", len,
                           HEAD_LEN + SUM_LEN);
    if (memcmp(p, MAGIC, 8) != 0)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "model file: bad magic (not a drst model)");
    rbuf_t r = {.p = p, .len = len, .pos = 8};
    uint32_t version = rbuf_u32(&r, "version");
    uint32_t family = rbuf_u32(&r, "family");
    uint64_t total = rbuf_u64(&r, "length");
    if (version != FORMAT_VERSION)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "model file: format version %u, this drst reads version %u", version,
                           FORMAT_VERSION);
    if (total != len)
        return drst_seterr(
            err, errlen, DRST_ERR_FORMAT, "model file: length field says %llu bytes, have %zu (%s)",
            (unsigned long long)total, len, total > len ? "truncated" : "trailing bytes");
    unsigned char sum[SUM_LEN];
    SHA256(p, len - SUM_LEN, sum);
    if (memcmp(sum, p + len - SUM_LEN, SUM_LEN) != 0)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT,
                           "model file: checksum mismatch (corrupt file)");
    const struct drst_model_ops *ops = drst_model_ops_find((drst_model_family_t)family);
    if (!ops)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "model file: unknown family %u", family);

    drst_model_t *m = calloc(1, sizeof(*m));
    if (!m)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "model load: out of memory");
    m->family = (drst_model_family_t)family;
    m->ops = ops;
    r.len = len - SUM_LEN;
    m->target = rbuf_str(&r, MAX_NAME, "target name");
    uint32_t nf = rbuf_u32(&r, "feature count");
    if (!r.bad && (nf == 0 || nf > MAX_FEATURES || nf > (r.len - r.pos) / 20))
        rbuf_fail(&r, "feature count");
    if (!r.bad) {
        m->features = calloc(nf, sizeof(char *));
        m->mean = malloc(nf * sizeof(double));
        m->scale = malloc(nf * sizeof(double));
        m->inv_scale = malloc(nf * sizeof(double));
        if (!m->features || !m->mean || !m->scale || !m->inv_scale)
            rbuf_fail(&r, "out of memory");
        else
            m->nf = nf;
    }
    for (size_t i = 0; !r.bad && i < nf; i++) {
        m->features[i] = rbuf_str(&r, MAX_NAME, "feature name");
        m->mean[i] = rbuf_f64(&r, "feature mean");
        m->scale[i] = rbuf_f64(&r, "feature scale");
        if (!r.bad && !(isfinite(m->mean[i]) && isfinite(m->scale[i]) && m->scale[i] > 0))
            rbuf_fail(&r, "feature scaler");
        if (!r.bad && !m->features[i][0])
            rbuf_fail(&r, "empty feature name");
        m->inv_scale[i] = r.bad ? 0 : 1.0 / m->scale[i];
    }
    m->y_mean = rbuf_f64(&r, "target scaler");
    m->y_std = rbuf_f64(&r, "target scaler");
    if (!r.bad && !(isfinite(m->y_mean) && isfinite(m->y_std) && m->y_std > 0))
        rbuf_fail(&r, "target scaler");
    model_hparams_t *h = &m->hp;
    h->n_hidden = rbuf_u32(&r, "hyperparameters");
    for (int i = 0; i < DRST_MODEL_MAX_HIDDEN; i++)
        h->hidden[i] = rbuf_u32(&r, "hyperparameters");
    h->activation = rbuf_u32(&r, "hyperparameters");
    h->loss = rbuf_u32(&r, "hyperparameters");
    h->split = rbuf_u32(&r, "hyperparameters");
    h->standardize_target = rbuf_u32(&r, "hyperparameters");
    h->lr = rbuf_f64(&r, "hyperparameters");
    h->weight_decay = rbuf_f64(&r, "hyperparameters");
    h->alpha = rbuf_f64(&r, "hyperparameters");
    h->eta = rbuf_f64(&r, "hyperparameters");
    h->val_frac = rbuf_f64(&r, "hyperparameters");
    h->es_frac = rbuf_f64(&r, "hyperparameters");
    h->batch = rbuf_u64(&r, "hyperparameters");
    h->max_epochs = rbuf_u64(&r, "hyperparameters");
    h->patience = rbuf_u64(&r, "hyperparameters");
    h->epochs_run = rbuf_u64(&r, "hyperparameters");
    h->max_depth = rbuf_u64(&r, "hyperparameters");
    h->min_samples_leaf = rbuf_u64(&r, "hyperparameters");
    h->n_trees = rbuf_u64(&r, "hyperparameters");
    h->topk = rbuf_u64(&r, "hyperparameters");
    if (!r.bad && (h->n_hidden > DRST_MODEL_MAX_HIDDEN || h->activation > 1 || h->loss > 1))
        rbuf_fail(&r, "hyperparameters");
    m->seed = rbuf_u64(&r, "metadata");
    m->n_train = rbuf_u64(&r, "metadata");
    m->n_val = rbuf_u64(&r, "metadata");
    const unsigned char *dh = take(&r, 32, "data hash");
    if (dh)
        memcpy(m->data_hash, dh, 32);
    get_metrics(&r, &m->val);
    uint64_t plen = rbuf_u64(&r, "payload length");
    if (!r.bad && plen != r.len - r.pos)
        rbuf_fail(&r, "payload length");
    if (!r.bad)
        ops->load(m, &r);
    if (!r.bad && r.pos != r.len)
        rbuf_fail(&r, "payload (trailing bytes)");
    if (r.bad) {
        drst_err_t rc = strcmp(r.what, "out of memory") == 0 ? DRST_ERR_NOMEM : DRST_ERR_FORMAT;
        drst_seterr(err, errlen, rc, "model file: bad or truncated %s at byte offset %zu", r.what,
                    r.bad_at);
        drst_model_free(m);
        return rc;
    }
    SHA256(p, len, m->hash); /* the content hash is of the bytes we were given */
    if (model_derive(m) != DRST_OK) {
        drst_model_free(m);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "model file: out of memory");
    }
    *out = m;
    return DRST_OK;
}

drst_err_t drst_model_load(const char *path, drst_model_t **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open model '%s'", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fclose(f);
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot stat '%s'", path);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "model load: out of memory");
    }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    if (got != len) {
        free(buf);
        return drst_seterr(err, errlen, DRST_ERR_IO, "cannot read '%s'", path);
    }
    char e2[DRST_ERRLEN];
    drst_err_t rc = drst_model_load_buffer(buf, len, out, e2, sizeof(e2));
    free(buf);
    if (rc)
        return drst_seterr(err, errlen, rc, "%s: %s", path, e2);
    return DRST_OK;
}
