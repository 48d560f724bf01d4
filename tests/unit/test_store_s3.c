/* The S3 store backend against a real S3-compatible server (s3rver from npm,
 * started by this test on 127.0.0.1 through scripts/s3-test-server.sh):
 * read-your-writes through the spool, upload and drain, ETag-validated reads
 * after another writer, publish / list / follow the pointer / roll back, a
 * consumer hot-swapping from S3, state/ locks, a 5 s server outage during
 * writes, and wrong credentials. Every "other machine" is a second handle
 * with its own spool directory. Exits 77 if node/npm/s3rver are missing. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "drst/control.h"
#include "drst/drst.h"
#include "drst/infer.h"
#include "store/s3_int.h"

static char g_tmp[256], g_srv[300], g_endpoint[300], g_port[300];
static int g_nspool;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 0 ok, 77 cannot run s3rver here, other = error */
static int server_start(const char *port)
{
    char cmd[1024];
    const char *src = getenv("DRST_SRC") ? getenv("DRST_SRC") : ".";
    snprintf(cmd, sizeof(cmd), "bash '%s/scripts/s3-test-server.sh' start '%s' %s", src, g_srv,
             port ? port : "");
    FILE *p = popen(cmd, "r");
    if (!p)
        return 1;
    char line[256] = "";
    if (!fgets(line, sizeof(line), p))
        line[0] = 0;
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    line[strcspn(line, "\r\n")] = 0;
    snprintf(g_endpoint, sizeof(g_endpoint), "%s", line);
    const char *c = strrchr(line, ':');
    snprintf(g_port, sizeof(g_port), "%s", c ? c + 1 : "");
    return 0;
}

static void server_stop(void)
{
    char cmd[1024];
    const char *src = getenv("DRST_SRC") ? getenv("DRST_SRC") : ".";
    snprintf(cmd, sizeof(cmd), "bash '%s/scripts/s3-test-server.sh' stop '%s'", src, g_srv);
    if (system(cmd) != 0)
        fprintf(stderr, "server stop failed\n");
}

/* A handle on "another machine": its own spool directory. */
static drst_store_t *open_store(const char *uri, char *spool, size_t n)
{
    char err[DRST_ERRLEN];
    snprintf(spool, n, "%s/spool%d", g_tmp, g_nspool++);
    setenv("DRST_S3_SPOOL", spool, 1);
    drst_store_t *s = drst_store_open(uri, err, sizeof(err));
    if (!s)
        fail_msg("open %s: %s", uri, err);
    return s;
}

static int spool_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void get_str(drst_store_t *s, const char *key, const char *want)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    char err[DRST_ERRLEN];
    drst_err_t rc = drst_store_get(s, key, &buf, &len, err, sizeof(err));
    if (rc)
        fail_msg("get %s: %s", key, err);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    free(buf);
}

typedef struct keys {
    char k[64][128];
    int n;
} keys_t;

static int collect(void *opaque, const char *key)
{
    keys_t *k = opaque;
    if (k->n < 64)
        snprintf(k->k[k->n], sizeof(k->k[0]), "%s", key);
    k->n++;
    return 0;
}

static void test_basic(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], spa[512], spb[512], spc[512];
    drst_store_t *a = open_store("s3://drst/basic", spa, sizeof(spa));
    assert_int_equal(drst_store_put_immutable(a, "datasets/x.csv", "hello", 5, err, sizeof(err)),
                     DRST_OK);
    get_str(a, "datasets/x.csv", "hello"); /* read-your-writes */
    assert_int_equal(drst_store_put_immutable(a, "datasets/x.csv", "other", 5, err, sizeof(err)),
                     DRST_ERR_BUSY);
    assert_int_equal(drst_store_put_atomic(a, "models/p", "v1", 2, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_put_atomic(a, "models/p", "v2", 2, err, sizeof(err)), DRST_OK);
    get_str(a, "models/p", "v2");
    assert_int_equal(drst_store_append(a, "models/log", "a\n", 2, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_append(a, "models/log", "b\n", 2, err, sizeof(err)), DRST_OK);
    get_str(a, "models/log", "a\nb\n");
    /* keys are validated on this backend too */
    static const char *const bad[] = {"../x", "/abs", "a/../b", "a\x01z", "models//x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(drst_store_put_atomic(a, bad[i], "z", 1, err, sizeof(err)),
                         DRST_ERR_INVAL);
        unsigned char *b = NULL;
        size_t l;
        assert_int_equal(drst_store_get(a, bad[i], &b, &l, err, sizeof(err)), DRST_ERR_INVAL);
    }
    keys_t k = {0};
    assert_int_equal(drst_store_list(a, "models/", collect, &k, err, sizeof(err)), DRST_OK);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.k[0], "models/log");
    assert_string_equal(k.k[1], "models/p");
    drst_store_close(a); /* drains */
    assert_int_equal(spool_entries(spa), 0);

    drst_store_t *b = open_store("s3://drst/basic", spb, sizeof(spb));
    get_str(b, "datasets/x.csv", "hello");
    get_str(b, "models/p", "v2");
    get_str(b, "models/log", "a\nb\n");
    /* an append queued on top of the object in S3 */
    assert_int_equal(drst_store_append(b, "models/log", "c\n", 2, err, sizeof(err)), DRST_OK);
    get_str(b, "models/log", "a\nb\nc\n");
    assert_int_equal(drst_store_exists(b, "models/p"), 1);
    assert_int_equal(drst_store_exists(b, "models/nope"), 0);
    unsigned char *buf = NULL;
    size_t len;
    assert_int_equal(drst_store_get(b, "models/nope", &buf, &len, err, sizeof(err)),
                     DRST_ERR_NOTFOUND);
    assert_int_equal(drst_store_delete(b, "datasets/x.csv", err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_get(b, "datasets/x.csv", &buf, &len, err, sizeof(err)),
                     DRST_ERR_NOTFOUND);
    assert_int_equal(drst_store_delete(b, "datasets/x.csv", err, sizeof(err)), DRST_ERR_NOTFOUND);
    drst_store_close(b);
    drst_store_t *c = open_store("s3://drst/basic", spc, sizeof(spc));
    assert_int_equal(drst_store_exists(c, "datasets/x.csv"), 0);
    k.n = 0;
    assert_int_equal(drst_store_list(c, "", collect, &k, err, sizeof(err)), DRST_OK);
    assert_int_equal(k.n, 2);
    get_str(c, "models/log", "a\nb\nc\n");
    drst_store_close(c);
}

/* A cached object is revalidated: another machine's replace is seen. */
static void test_etag_cache(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], spa[512], spb[512];
    drst_store_t *w = open_store("s3://drst/etag", spb, sizeof(spb));
    assert_int_equal(drst_store_put_atomic(w, "models/latest", "one", 3, err, sizeof(err)),
                     DRST_OK);
    drst_store_close(w);
    drst_store_t *a = open_store("s3://drst/etag", spa, sizeof(spa));
    get_str(a, "models/latest", "one");
    get_str(a, "models/latest", "one"); /* 304 -> cached bytes */
    w = open_store("s3://drst/etag", spb, sizeof(spb));
    assert_int_equal(drst_store_put_atomic(w, "models/latest", "two!", 4, err, sizeof(err)),
                     DRST_OK);
    drst_store_close(w);
    get_str(a, "models/latest", "two!");
    get_str(a, "models/latest", "two!");
    drst_store_close(a);
}

static drst_model_t *train(int variant)
{
    static const char *const names[] = {"a", "b", "output_rate"};
    char err[DRST_ERRLEN];
    drst_table_t *t = drst_table_new(names, 3, err, sizeof(err));
    assert_non_null(t);
    unsigned s = 12345u + (unsigned)variant;
    for (int i = 0; i < 200; i++) {
        s = s * 1103515245u + 12345u;
        double a = (double)(s >> 8 & 0xffff) / 65536.0;
        s = s * 1103515245u + 12345u;
        double b = (double)(s >> 8 & 0xffff) / 65536.0;
        double row[3] = {a, b, 3.0 * a - (1.0 + variant) * b + 5.0};
        assert_int_equal(drst_table_append(t, row, err, sizeof(err)), DRST_OK);
    }
    drst_train_opts_t o;
    drst_train_opts_init(&o);
    o.family = DRST_MODEL_RIDGE;
    o.exclude = NULL;
    o.n_exclude = 0;
    drst_model_t *m = NULL;
    if (drst_model_train(t, &o, &m, NULL, NULL, err, sizeof(err)) != DRST_OK)
        fail_msg("train: %s", err);
    drst_table_free(t);
    return m;
}

static void test_publish_follow_rollback(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], spa[512], spb[512], spc[512];
    drst_model_t *m1 = train(0), *m2 = train(1);
    drst_release_t r1, r2, r;
    drst_store_t *a = open_store("s3://drst/rel/x", spa, sizeof(spa));
    assert_int_equal(drst_store_publish_model(a, m1, DRST_PUBLISH_BOTH, &r1, err, sizeof(err)),
                     DRST_OK);
    sleep(1); /* release names carry a 1 s timestamp */
    assert_int_equal(drst_store_publish_model(a, m2, DRST_PUBLISH_LATEST, &r2, err, sizeof(err)),
                     DRST_OK);
    drst_store_close(a);
    assert_int_equal(spool_entries(spa), 0);

    drst_store_t *b = open_store("s3://drst/rel/x", spb, sizeof(spb));
    keys_t k = {0};
    assert_int_equal(drst_store_list(b, "models/", collect, &k, err, sizeof(err)), DRST_OK);
    assert_int_equal(k.n, 7); /* 2 models, 2 metrics, latest, baseline, history */
    assert_int_equal(drst_store_read_pointer(b, "latest", &r, err, sizeof(err)), DRST_OK);
    assert_string_equal(r.model_key, r2.model_key);
    assert_int_equal(drst_store_read_pointer(b, "baseline", &r, err, sizeof(err)), DRST_OK);
    assert_string_equal(r.model_key, r1.model_key);
    drst_model_t *got = NULL;
    assert_int_equal(drst_store_load_model(b, "latest", &got, &r, err, sizeof(err)), DRST_OK);
    assert_string_equal(drst_model_hash_hex(got), drst_model_hash_hex(m2));
    drst_model_free(got);
    assert_int_equal(drst_store_rollback(b, "latest", &r, err, sizeof(err)), DRST_OK);
    assert_string_equal(r.model_key, r1.model_key);
    drst_store_close(b);

    drst_store_t *c = open_store("s3://drst/rel/x", spc, sizeof(spc));
    assert_int_equal(drst_store_load_model(c, "latest", &got, &r, err, sizeof(err)), DRST_OK);
    assert_string_equal(drst_model_hash_hex(got), drst_model_hash_hex(m1));
    drst_model_free(got);
    drst_store_close(c);
    drst_model_free(m1);
    drst_model_free(m2);
}

/* A consumer on one machine hot-swaps the model another machine publishes. */
static void test_hot_swap(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], spa[512], spb[512];
    drst_model_t *m1 = train(2), *m2 = train(3);
    drst_store_t *pub = open_store("s3://drst/swap", spa, sizeof(spa));
    assert_int_equal(drst_store_publish_model(pub, m1, DRST_PUBLISH_BOTH, NULL, err, sizeof(err)),
                     DRST_OK);
    drst_store_close(pub);
    drst_store_t *cons = open_store("s3://drst/swap", spb, sizeof(spb));
    drst_model_t *base = NULL, *adapt = NULL;
    assert_int_equal(drst_store_load_model(cons, "baseline", &base, NULL, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_store_load_model(cons, "latest", &adapt, NULL, err, sizeof(err)),
                     DRST_OK);
    drst_model_slot_t *slot = drst_model_slot_new(base, adapt, err, sizeof(err));
    assert_non_null(slot);
    drst_guard_conf_t gc = {.pointer = "latest", .reload_s = 0.05, .gain_pp = -1000, .tau = 0.2};
    drst_guard_t *g = drst_guard_new(slot, cons, &gc, err, sizeof(err));
    if (!g)
        fail_msg("guard: %s", err);
    uint64_t v0 = drst_model_slot_version(slot);
    pub = open_store("s3://drst/swap", spa, sizeof(spa));
    sleep(1);
    assert_int_equal(drst_store_publish_model(pub, m2, DRST_PUBLISH_LATEST, NULL, err, sizeof(err)),
                     DRST_OK);
    drst_store_close(pub); /* uploaded */
    drst_guard_ev_t ev = DRST_GUARD_UNCHANGED;
    assert_int_equal(drst_guard_check(g, &ev, err, sizeof(err)), DRST_OK);
    assert_int_equal(ev, DRST_GUARD_SWAPPED);
    assert_int_equal(drst_model_slot_version(slot), v0 + 1);
    char hash[65];
    drst_model_slot_adaptive_hash(slot, hash);
    assert_string_equal(hash, drst_model_hash_hex(m2));
    drst_guard_free(g);
    drst_model_slot_free(slot);
    drst_store_close(cons);
    drst_model_free(m1);
    drst_model_free(m2);
}

/* state/ is written through: a lock created on one machine is seen by another. */
static void test_state_lock(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], spa[512], spb[512];
    drst_store_t *a = open_store("s3://drst/lock", spa, sizeof(spa));
    drst_store_t *b = open_store("s3://drst/lock", spb, sizeof(spb));
    assert_int_equal(drst_store_put_immutable(a, "state/retrain.lock", "a", 1, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_store_put_immutable(b, "state/retrain.lock", "b", 1, err, sizeof(err)),
                     DRST_ERR_BUSY);
    get_str(b, "state/retrain.lock", "a");
    assert_int_equal(drst_store_delete(a, "state/retrain.lock", err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_exists(b, "state/retrain.lock"), 0);
    assert_int_equal(drst_store_put_immutable(b, "state/retrain.lock", "b", 1, err, sizeof(err)),
                     DRST_OK);
    /* leases (src/lib/control/lease.c) across the two machines */
    drst_lease_info_t held;
    double t = drst_control_now();
    assert_int_equal(
        drst_lease_acquire(a, "state/leases/retrain", "host-a", 60, t, &held, err, sizeof(err)),
        DRST_OK);
    assert_int_equal(
        drst_lease_acquire(b, "state/leases/retrain", "host-b", 60, t, &held, err, sizeof(err)),
        DRST_ERR_BUSY);
    assert_string_equal(held.owner, "host-a");
    /* expired: b takes it over, a's renew then fails */
    assert_int_equal(drst_lease_acquire(b, "state/leases/retrain", "host-b", 60, t + 120, &held,
                                        err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(
        drst_lease_renew(a, "state/leases/retrain", "host-a", 60, t + 121, err, sizeof(err)),
        DRST_ERR_STATE);
    assert_int_equal(drst_lease_release(b, "state/leases/retrain", "host-b", err, sizeof(err)),
                     DRST_OK);
    drst_store_close(a);
    drst_store_close(b);
}

typedef struct order_chk {
    drst_store_t *r;
    int seen_pointer, violations, checks;
} order_chk_t;

/* The server stops while a writer keeps writing for 5 s; writes never wait on
 * it; after the restart everything arrives, in order (a reader never sees the
 * pointer before the object it names), and the spool drains. */
static void test_outage(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], spa[512], spb[512], key[128], val[128];
    drst_store_t *a = open_store("s3://drst/outage", spa, sizeof(spa));
    assert_int_equal(drst_store_put_atomic(a, "models/ptr", "none", 4, err, sizeof(err)), DRST_OK);
    server_stop();
    /* a publish while the server is down: spooled, never waits */
    drst_model_t *m = train(4);
    drst_release_t rel, got;
    double p0 = now_s();
    assert_int_equal(drst_store_publish_model(a, m, DRST_PUBLISH_BOTH, &rel, err, sizeof(err)),
                     DRST_OK);
    print_message("publish with the server down returned in %.1f ms\n", (now_s() - p0) * 1e3);
    assert_int_equal(drst_store_read_pointer(a, "latest", &got, err, sizeof(err)), DRST_OK);
    assert_string_equal(got.model_key, rel.model_key);
    double t0 = now_s(), maxlat = 0;
    int n = 0;
    while (now_s() - t0 < 5.0) {
        snprintf(key, sizeof(key), "results/r%05d", n);
        snprintf(val, sizeof(val), "value %d", n);
        double s0 = now_s();
        assert_int_equal(drst_store_put_atomic(a, key, val, strlen(val), err, sizeof(err)),
                         DRST_OK);
        if (n % 10 == 0) {
            /* an immutable object, then the pointer naming it */
            snprintf(key, sizeof(key), "models/obj%05d", n);
            assert_int_equal(drst_store_put_immutable(a, key, val, strlen(val), err, sizeof(err)),
                             DRST_OK);
            assert_int_equal(
                drst_store_put_atomic(a, "models/ptr", key, strlen(key), err, sizeof(err)),
                DRST_OK);
        }
        double lat = now_s() - s0;
        if (lat > maxlat)
            maxlat = lat;
        n++;
        usleep(20000);
    }
    int pending = spool_entries(spa);
    print_message("outage 5 s: %d write rounds, max put latency %.3f ms, %d spooled\n", n,
                  maxlat * 1e3, pending);
    assert_true(pending > 0);
    assert_int_equal(server_start(g_port), 0);
    /* another machine follows the pointer while the spool drains */
    drst_store_t *b = open_store("s3://drst/outage", spb, sizeof(spb));
    order_chk_t oc = {.r = b};
    double d0 = now_s();
    while (spool_entries(spa) > 0 && now_s() - d0 < 60) {
        unsigned char *p = NULL;
        size_t len;
        if (drst_store_get(b, "models/ptr", &p, &len, err, sizeof(err)) == DRST_OK) {
            if (len > 7 && !memcmp(p, "models/", 7)) {
                oc.seen_pointer++;
                if (!drst_store_exists(b, (const char *)p))
                    oc.violations++;
            }
            free(p);
        }
        oc.checks++;
        usleep(5000);
    }
    print_message("drained in %.2f s after the restart; pointer checks %d (named object "
                  "present %d times, missing %d)\n",
                  now_s() - d0, oc.checks, oc.seen_pointer, oc.violations);
    assert_int_equal(spool_entries(spa), 0);
    assert_int_equal(oc.violations, 0);
    drst_store_close(a);
    keys_t k = {0};
    assert_int_equal(drst_store_list(b, "results/", collect, &k, err, sizeof(err)), DRST_OK);
    assert_int_equal(k.n, n);
    snprintf(key, sizeof(key), "results/r%05d", n - 1);
    snprintf(val, sizeof(val), "value %d", n - 1);
    get_str(b, key, val);
    drst_model_t *lm = NULL;
    assert_int_equal(drst_store_load_model(b, "latest", &lm, &got, err, sizeof(err)), DRST_OK);
    assert_string_equal(got.model_key, rel.model_key);
    assert_string_equal(drst_model_hash_hex(lm), drst_model_hash_hex(m));
    unsigned char *h = NULL;
    size_t hl;
    assert_int_equal(drst_store_get(b, "models/history", &h, &hl, err, sizeof(err)), DRST_OK);
    assert_non_null(strstr((char *)h, rel.model_key));
    free(h);
    drst_model_free(lm);
    drst_model_free(m);
    drst_store_close(b);
}

/* A restart uploads what a previous process left in the spool. */
static void test_restart_drains(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], spa[512], spb[512];
    server_stop();
    setenv("DRST_S3_DRAIN_TIMEOUT", "0", 1);
    drst_store_t *a = open_store("s3://drst/restart", spa, sizeof(spa));
    assert_int_equal(drst_store_put_immutable(a, "models/m1", "M", 1, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_put_atomic(a, "models/latest", "models/m1", 9, err, sizeof(err)),
                     DRST_OK);
    drst_store_close(a); /* server down, no wait: entries stay */
    assert_int_equal(spool_entries(spa), 2);
    unsetenv("DRST_S3_DRAIN_TIMEOUT");
    assert_int_equal(server_start(g_port), 0);
    setenv("DRST_S3_SPOOL", spa, 1); /* the same machine comes back */
    a = drst_store_open("s3://drst/restart", err, sizeof(err));
    assert_non_null(a);
    drst_store_close(a);
    assert_int_equal(spool_entries(spa), 0);
    drst_store_t *b = open_store("s3://drst/restart", spb, sizeof(spb));
    get_str(b, "models/latest", "models/m1");
    get_str(b, "models/m1", "M");
    drst_store_close(b);
}

/* The backend's flush op: waits for the spool; on timeout it says how much
 * is left and why the uploads fail, without credentials. */
static void test_flush(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], sp[512];
    void *b = NULL;
    snprintf(sp, sizeof(sp), "%s/spool-flush", g_tmp);
    setenv("DRST_S3_SPOOL", sp, 1);
    assert_int_equal(drst_store_s3_ops.open("drst/flush", &b, err, sizeof(err)), DRST_OK);
    assert_int_equal(drst_store_s3_ops.put_atomic(b, "models/x", "1", 1, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_store_s3_ops.flush(b, 20, err, sizeof(err)), DRST_OK);
    server_stop();
    assert_int_equal(drst_store_s3_ops.put_atomic(b, "models/x", "2", 1, err, sizeof(err)),
                     DRST_OK);
    assert_int_equal(drst_store_s3_ops.flush(b, 0.5, err, sizeof(err)), DRST_ERR_TIMEOUT);
    print_message("flush during the outage: %s\n", err);
    assert_non_null(strstr(err, "1 write(s) still in the spool"));
    assert_non_null(strstr(err, g_endpoint));
    assert_null(strstr(err, "S3RVER"));
    assert_int_equal(server_start(g_port), 0);
    assert_int_equal(drst_store_s3_ops.flush(b, 30, err, sizeof(err)), DRST_OK);
    drst_store_s3_ops.close(b);
}

static void test_wrong_credentials(void **st)
{
    (void)st;
    char err[DRST_ERRLEN], sp[512];
    static const char secret[] = "SeCrEt-do-not-print-8c1f";
    static const char keyid[] = "AKIDWRONG0000XYZ";
    setenv("AWS_ACCESS_KEY_ID", keyid, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    snprintf(sp, sizeof(sp), "%s/spool-bad", g_tmp);
    setenv("DRST_S3_SPOOL", sp, 1);
    err[0] = 0;
    drst_store_t *s = drst_store_open("s3://drst/creds", err, sizeof(err));
    print_message("wrong credentials: %s\n", err);
    assert_null(s);
    assert_non_null(strstr(err, g_endpoint));
    assert_non_null(strstr(err, "ListObjectsV2"));
    assert_non_null(strstr(err, "403"));
    assert_null(strstr(err, secret));
    assert_null(strstr(err, keyid));
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
}

static int setup(void **st)
{
    (void)st;
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/drst-s3-test-XXXXXX");
    if (!mkdtemp(g_tmp))
        return -1;
    snprintf(g_srv, sizeof(g_srv), "%s/srv", g_tmp);
    setenv("HOME", g_tmp, 1); /* no ~/.aws of the machine */
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("DRST_S3_BACKOFF_MAX_MS", "400", 1);
    setenv("DRST_S3_DRAIN_TIMEOUT", "30", 1);
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_PROFILE");
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    server_stop();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    if (setup(NULL) != 0)
        return 1;
    int rc = server_start(NULL);
    if (rc != 0) {
        fprintf(stderr, "test_store_s3: cannot start s3rver (node/npm or the npm registry "
                        "missing?): skipped\n");
        teardown(NULL);
        return 77;
    }
    setenv("DRST_S3_ENDPOINT", g_endpoint, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_etag_cache),
        cmocka_unit_test(test_publish_follow_rollback),
        cmocka_unit_test(test_hot_swap),
        cmocka_unit_test(test_state_lock),
        cmocka_unit_test(test_outage),
        cmocka_unit_test(test_restart_drains),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_wrong_credentials),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    teardown(NULL);
    return rc;
}
