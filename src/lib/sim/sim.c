/* Scenario simulator of a chain of poll-mode (DPDK-like) VNFs.
 *
 * The model follows what DRST's real data shows (docs/simulate.md has the
 * derivation): every VNF busy-polls, so its cycle counter saturates at the
 * core's frequency; the fraction of empty polls falls as the rate grows, so
 * instructions per second FALL with load (empty polls retire more
 * instructions per cycle than packet work); cache references and LLC traffic
 * grow linearly with processed packets; a co-located stressor (contention
 * patterns A/B/C) steals a little CPU time and much more cache, which raises
 * cache misses and the cycles needed per unit of traffic. Chain throughput is
 * min(offered load, smallest VNF capacity); latency is a batching term plus an
 * M/M/1-like queueing term per VNF, and DRST's 15000 sentinel when the chain
 * is overloaded (packets time out).
 *
 * Only a local xoshiro256** PRNG is used, so the same seed gives the same
 * bytes on every run (no rand(), no time). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error_int.h"
#include "drst/sim.h"

#define MAX_VNFS      64
#define MAX_NAME      48
#define MAX_ROWS      100000000u
#define CPU_HZ        2.8917e9
#define LAT_SENTINEL  15000.0
#define BURST_BLOCK   20
#define SQUARE_PERIOD 60

static const char *const events[DRST_SIM_NEVENTS] = {
    "instructions",    "branches",         "branch-misses", "branch-load-misses",
    "cache-misses",    "cache-references", "cycles",        "L1-dcache-load-misses",
    "L1-dcache-loads", "LLC-load-misses",  "LLC-stores",    "LLC-loads"};
enum {
    EV_INSTR,
    EV_BR,
    EV_BRM,
    EV_BRLM,
    EV_CM,
    EV_CR,
    EV_CYC,
    EV_L1M,
    EV_L1,
    EV_LLCM,
    EV_LLCS,
    EV_LLCL
};

static const char *const default_vnfs[] = {"firewall", "nf_router", "ndpi_stats", "payload_scan",
                                           "bridge"};

/* Per-VNF constants, fitted by eye to the medians of DRST's combined.csv. */
struct vnfprof {
    double cpp;      /* cycles per rate unit per second of packet work */
    double cref;     /* cache references per rate unit */
    double ipc_idle; /* instructions per cycle while polling empty queues */
    double ipc_busy; /* instructions per cycle while processing */
    double x0;       /* rate at which empty polls fall by 1/e (batching) */
    double cm_base;  /* cache misses at idle */
    double cm_scale; /* extra cache misses at high rate */
    double qlat;     /* queueing latency scale (same unit as latency) */
    double lat;      /* fixed per-VNF latency */
};

struct known {
    const char *name;
    struct vnfprof p;
};

static const struct known known_vnfs[] = {
    {"firewall", {1.6e5, 4000, 3.90, 2.40, 3200, 600, 3500, 0.8, 1.2}},
    {"nf_router", {1.5e5, 3300, 3.95, 2.55, 3300, 550, 3400, 0.7, 1.1}},
    {"ndpi_stats", {1.7e5, 3800, 3.85, 2.45, 3100, 650, 3700, 0.9, 1.3}},
    {"payload_scan", {1.9e5, 4400, 3.90, 2.50, 3000, 800, 4800, 1.0, 1.4}},
    {"bridge", {1.4e5, 3400, 3.85, 2.35, 3400, 400, 2400, 0.6, 0.9}},
    /* Candidate replacements for structural changes: clearly different. */
    {"dpi_lite", {1.1e5, 2600, 3.60, 2.90, 2500, 300, 1800, 0.5, 0.8}},
    {"nat", {1.3e5, 5200, 3.70, 2.20, 2800, 900, 5200, 0.7, 1.0}},
    {"load_balancer", {1.2e5, 3000, 3.75, 2.65, 3600, 450, 2600, 0.6, 0.9}},
};

enum rate_kind { RATE_CONST, RATE_RANDOM, RATE_GAUSS, RATE_INC };
enum cont_kind { CONT_NONE, CONT_A, CONT_B, CONT_C };

struct segment {
    size_t rows;
    size_t line; /* 1-based line in the scenario text, 0 for built-ins */
    int rate;
    double a, b;
    size_t hold;
    int cont;
    char cont_vnfs[256]; /* '+'-separated, "*" = every VNF */
    char repl_old[MAX_NAME], repl_new[MAX_NAME];
};

struct drst_sim_scenario {
    char name[128];
    size_t nseg;
    struct segment *seg;
};

typedef struct rng {
    uint64_t s[4];
    int have_spare;
    double spare;
} rng_t;

struct drst_sim {
    drst_sim_scenario_t sc;
    size_t *seg_end; /* cumulative scaled row ends */
    size_t nunion;
    char uname[MAX_VNFS][MAX_NAME];
    struct vnfprof uprof[MAX_VNFS];
    size_t chain[MAX_VNFS]; /* active chain: indices into uname */
    size_t nchain;
    double cont[MAX_VNFS]; /* contention intensity per union VNF, this row */
    size_t ncols;
    char **cols;
    size_t nrows, row, cur_seg;
    double level, burst;
    rng_t rng;
    int header_done;
};

/* ---- PRNG: splitmix64 seeds xoshiro256** (Blackman & Vigna) ---- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

static double rng_unif(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_norm(rng_t *r)
{
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    double u1 = rng_unif(r), u2 = rng_unif(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    double m = sqrt(-2.0 * log(u1));
    r->spare = m * sin(2.0 * M_PI * u2);
    r->have_spare = 1;
    return m * cos(2.0 * M_PI * u2);
}

/* ---- public tables ---- */
const char *const *drst_sim_events(void)
{
    return events;
}

const char *const *drst_sim_default_vnfs(size_t *n)
{
    if (n)
        *n = sizeof(default_vnfs) / sizeof(default_vnfs[0]);
    return default_vnfs;
}

struct builtin {
    const char *name;
    const char *desc;
    const char *text;
};

static const struct builtin builtins[] = {
    {"steady", "constant offered rate of 4000 with measurement noise",
     "rows=2000 rate=const:4000\n"},
    {"sweep", "incremental rates 500..10000 in steps held 10 rows (like combined.csv)",
     "rows=2000 rate=inc:500:10000 hold=10\n"},
    {"random-rates", "a new uniform random rate in [200,10000] every 10 rows",
     "rows=2000 rate=random:200:10000 hold=10\n"},
    {"gaussian", "a new gaussian rate N(5000,1500) every 10 rows",
     "rows=2000 rate=gauss:5000:1500 hold=10\n"},
    {"contention", "rate ~2100 with CPU/cache contention phases A, B, C (like DRST stage 2)",
     "rows=400 rate=gauss:2100:40 hold=10\n"
     "rows=400 rate=gauss:2100:40 hold=10 contention=A:ndpi_stats\n"
     "rows=200 rate=gauss:2100:40 hold=10\n"
     "rows=400 rate=gauss:2100:40 hold=10 contention=B:payload_scan\n"
     "rows=200 rate=gauss:2100:40 hold=10\n"
     "rows=400 rate=gauss:2100:40 hold=10 contention=C:firewall+ndpi_stats\n"},
    {"structural", "random rates; half way, payload_scan is replaced by dpi_lite",
     "rows=1000 rate=random:200:10000 hold=10\n"
     "rows=1000 rate=random:200:10000 hold=10 replace=payload_scan:dpi_lite\n"},
};
#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

const char *const *drst_sim_builtins(void)
{
    static const char *const names[NBUILTINS + 1] = {
        "steady", "sweep", "random-rates", "gaussian", "contention", "structural", NULL};
    return names;
}

const char *drst_sim_builtin_describe(const char *name)
{
    for (size_t i = 0; i < NBUILTINS; i++)
        if (name && !strcmp(name, builtins[i].name))
            return builtins[i].desc;
    return NULL;
}

/* ---- scenario parsing ---- */
static int valid_vnf_name(const char *s, size_t n)
{
    if (n == 0 || n >= MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return 0;
    return 1;
}

static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > MAX_ROWS)
        return 0;
    *out = (size_t)v;
    return 1;
}

/* Parse "kind:a[:b]" into the segment; returns a reason or NULL. */
static const char *parse_rate(char *v, struct segment *sg)
{
    char *c1 = strchr(v, ':');
    if (!c1)
        return "rate needs kind:value (const:R, random:LO:HI, gauss:MEAN:SD, inc:START:END)";
    *c1++ = 0;
    char *c2 = strchr(c1, ':');
    if (c2)
        *c2++ = 0;
    int two = 1;
    if (!strcmp(v, "const")) {
        sg->rate = RATE_CONST;
        two = 0;
    } else if (!strcmp(v, "random")) {
        sg->rate = RATE_RANDOM;
    } else if (!strcmp(v, "gauss")) {
        sg->rate = RATE_GAUSS;
    } else if (!strcmp(v, "inc")) {
        sg->rate = RATE_INC;
    } else {
        return "unknown rate kind (const, random, gauss, inc)";
    }
    if (two != (c2 != NULL))
        return two ? "rate kind needs two numbers" : "rate=const takes one number";
    if (!parse_num(c1, &sg->a) || (two && !parse_num(c2, &sg->b)))
        return "rate: not a number";
    if (sg->a < 0 || sg->a > 1e9 || (two && (sg->b < 0 || sg->b > 1e9)))
        return "rate out of range [0, 1e9]";
    if (sg->rate == RATE_RANDOM && sg->b < sg->a)
        return "rate=random:LO:HI needs LO <= HI";
    return NULL;
}

static const char *parse_contention(char *v, struct segment *sg)
{
    if (!strcmp(v, "none")) {
        sg->cont = CONT_NONE;
        return NULL;
    }
    if (!((v[0] == 'A' || v[0] == 'B' || v[0] == 'C') && v[1] == ':'))
        return "contention needs none or A|B|C:vnf[+vnf...] (or A:*)";
    sg->cont = v[0] == 'A' ? CONT_A : v[0] == 'B' ? CONT_B : CONT_C;
    const char *list = v + 2;
    if (strlen(list) >= sizeof(sg->cont_vnfs))
        return "contention VNF list too long";
    if (strcmp(list, "*")) {
        const char *p = list;
        while (1) {
            const char *e = strchr(p, '+');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (!valid_vnf_name(p, n))
                return "contention: bad VNF name";
            if (!e)
                break;
            p = e + 1;
        }
    }
    memcpy(sg->cont_vnfs, list, strlen(list) + 1);
    return NULL;
}

static const char *parse_replace(char *v, struct segment *sg)
{
    char *c = strchr(v, ':');
    if (!c)
        return "replace needs OLD:NEW";
    *c++ = 0;
    if (!valid_vnf_name(v, strlen(v)) || !valid_vnf_name(c, strlen(c)))
        return "replace: bad VNF name";
    if (!strcmp(v, c))
        return "replace: OLD and NEW are the same";
    memcpy(sg->repl_old, v, strlen(v) + 1);
    memcpy(sg->repl_new, c, strlen(c) + 1);
    return NULL;
}

/* Parse one line (NUL-terminated, modifiable). Returns 1 segment made, 0 blank,
 * or -1 with *reason set. */
static int parse_line(char *s, struct segment *sg, const char **reason)
{
    char *hash = strchr(s, '#');
    if (hash)
        *hash = 0;
    memset(sg, 0, sizeof(*sg));
    sg->rate = RATE_CONST;
    sg->a = 4000;
    sg->hold = 10;
    int have_rows = 0, any = 0;
    char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p)
            break;
        char *tok = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r')
            p++;
        if (*p)
            *p++ = 0;
        any = 1;
        char *eq = strchr(tok, '=');
        if (!eq) {
            *reason = "expected key=value";
            return -1;
        }
        *eq = 0;
        char *v = eq + 1;
        const char *r = NULL;
        if (!strcmp(tok, "rows")) {
            if (!parse_size(v, &sg->rows) || sg->rows == 0)
                r = "rows must be an integer in [1, 100000000]";
            have_rows = 1;
        } else if (!strcmp(tok, "rate")) {
            r = parse_rate(v, sg);
        } else if (!strcmp(tok, "hold")) {
            if (!parse_size(v, &sg->hold) || sg->hold == 0)
                r = "hold must be a positive integer";
        } else if (!strcmp(tok, "contention")) {
            r = parse_contention(v, sg);
        } else if (!strcmp(tok, "replace")) {
            r = parse_replace(v, sg);
        } else {
            r = "unknown key (rows, rate, hold, contention, replace)";
        }
        if (r) {
            *reason = r;
            return -1;
        }
    }
    if (!any)
        return 0;
    if (!have_rows) {
        *reason = "missing rows=N";
        return -1;
    }
    return 1;
}

void drst_sim_scenario_free(drst_sim_scenario_t *sc)
{
    if (!sc)
        return;
    free(sc->seg);
    free(sc);
}

drst_err_t drst_sim_scenario_parse(const char *buf, size_t len, const char *name,
                                   drst_sim_scenario_t **out, drst_diag_t *diag, char *err,
                                   size_t errlen)
{
    drst_err_t rc = DRST_OK;
    char *line = NULL;
    size_t cap = 0;
    *out = NULL;
    if (!name)
        name = "scenario";
    drst_sim_scenario_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
    snprintf(sc->name, sizeof(sc->name), "%s", name);
    size_t segcap = 0, lineno = 0, pos = 0;
    while (pos < len) {
        size_t e = pos;
        while (e < len && buf[e] != '\n')
            e++;
        size_t n = e - pos;
        lineno++;
        if (n + 1 > cap) {
            char *nl = realloc(line, n + 1);
            if (!nl) {
                rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
                goto fail;
            }
            line = nl;
            cap = n + 1;
        }
        memcpy(line, buf + pos, n);
        line[n] = 0;
        const char *reason = NULL;
        struct segment sg;
        int r = memchr(buf + pos, 0, n) ? (reason = "NUL byte in line", -1)
                                        : parse_line(line, &sg, &reason);
        if (r < 0) {
            rc = drst_diag_reject(diag, name, lineno, buf + pos, n, err, errlen, "%s", reason);
            if (rc)
                goto fail;
        } else if (r > 0) {
            if (sc->nseg == segcap) {
                size_t nc = segcap ? segcap * 2 : 8;
                struct segment *ns = realloc(sc->seg, nc * sizeof(*ns));
                if (!ns) {
                    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
                    goto fail;
                }
                sc->seg = ns;
                segcap = nc;
            }
            sg.line = lineno;
            sc->seg[sc->nseg++] = sg;
        }
        pos = e + 1;
    }
    if (sc->nseg == 0) {
        rc = drst_seterr(err, errlen, DRST_ERR_EMPTY,
                         "%s: no segment (expected lines like "
                         "'rows=300 rate=random:200:6000')",
                         name);
        goto fail;
    }
    free(line);
    *out = sc;
    return DRST_OK;
fail:
    free(line);
    drst_sim_scenario_free(sc);
    return rc;
}

drst_err_t drst_sim_scenario_load(const char *path, drst_sim_scenario_t **out, drst_diag_t *diag,
                                  char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot open scenario '%s'", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    drst_err_t rc = DRST_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= (1u << 24)) {
                rc = drst_seterr(err, errlen, DRST_ERR_TOOBIG, "%s: scenario larger than 16 MiB",
                                 path);
                goto out;
            }
            size_t nc = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, nc);
            if (!nb) {
                rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
                goto out;
            }
            buf = nb;
            cap = nc;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "cannot read '%s'", path);
            break;
        }
    }
    if (!rc)
        rc = drst_sim_scenario_parse(buf, len, path, out, diag, err, errlen);
out:
    free(buf);
    fclose(f);
    return rc;
}

drst_sim_scenario_t *drst_sim_scenario_builtin(const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < NBUILTINS; i++) {
        if (name && !strcmp(name, builtins[i].name)) {
            drst_sim_scenario_t *sc = NULL;
            drst_diag_t d = {0};
            d.strict = 1;
            if (drst_sim_scenario_parse(builtins[i].text, strlen(builtins[i].text), name, &sc, &d,
                                        err, errlen))
                return NULL;
            for (size_t k = 0; k < sc->nseg; k++)
                sc->seg[k].line = 0;
            return sc;
        }
    }
    drst_seterr(err, errlen, DRST_ERR_NOTFOUND,
                "unknown scenario '%s' (built-ins: steady, sweep, random-rates, gaussian, "
                "contention, structural; or a scenario file)",
                name ? name : "");
    return NULL;
}

size_t drst_sim_scenario_rows(const drst_sim_scenario_t *sc)
{
    size_t n = 0;
    for (size_t i = 0; i < sc->nseg; i++)
        n += sc->seg[i].rows;
    return n;
}

/* ---- simulation ---- */
static void profile_for(const char *name, struct vnfprof *p)
{
    for (size_t i = 0; i < sizeof(known_vnfs) / sizeof(known_vnfs[0]); i++) {
        if (!strcmp(name, known_vnfs[i].name)) {
            *p = known_vnfs[i].p;
            return;
        }
    }
    /* Unknown VNF: a firewall-like profile perturbed by a hash of the name,
     * so different names behave differently but reproducibly. */
    uint64_t h = 1469598103934665603ull;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    rng_t r = {{0}, 0, 0};
    for (int i = 0; i < 4; i++)
        r.s[i] = splitmix64(&h);
    *p = known_vnfs[0].p;
    p->cpp *= 0.7 + 0.6 * rng_unif(&r);
    p->cref *= 0.6 + 0.8 * rng_unif(&r);
    p->ipc_busy *= 0.85 + 0.3 * rng_unif(&r);
    p->x0 *= 0.7 + 0.6 * rng_unif(&r);
    p->cm_scale *= 0.5 + rng_unif(&r);
    p->lat *= 0.6 + 0.8 * rng_unif(&r);
}

static long find_union(const drst_sim_t *s, const char *name)
{
    for (size_t i = 0; i < s->nunion; i++)
        if (!strcmp(s->uname[i], name))
            return (long)i;
    return -1;
}

void drst_sim_free(drst_sim_t *s)
{
    if (!s)
        return;
    if (s->cols)
        for (size_t i = 0; i < s->ncols; i++)
            free(s->cols[i]);
    free(s->cols);
    free(s->seg_end);
    free(s->sc.seg);
    free(s);
}

/* Apply segment i's replace= to the active chain (validated in _new). */
static void apply_replace(drst_sim_t *s, const struct segment *sg)
{
    if (!sg->repl_old[0])
        return;
    long o = find_union(s, sg->repl_old), n = find_union(s, sg->repl_new);
    for (size_t k = 0; k < s->nchain; k++)
        if ((long)s->chain[k] == o)
            s->chain[k] = (size_t)n;
}

drst_sim_t *drst_sim_new(const drst_sim_scenario_t *sc, const drst_sim_opts_t *opts, char *err,
                         size_t errlen)
{
    drst_sim_opts_t dflt = {0};
    if (!opts)
        opts = &dflt;
    if (!sc || sc->nseg == 0) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "empty scenario");
        return NULL;
    }
    drst_sim_t *s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->sc = *sc;
    s->sc.seg = malloc(sc->nseg * sizeof(*sc->seg));
    s->seg_end = malloc(sc->nseg * sizeof(*s->seg_end));
    if (!s->sc.seg || !s->seg_end)
        goto nomem;
    memcpy(s->sc.seg, sc->seg, sc->nseg * sizeof(*sc->seg));

    size_t nv = opts->vnfs ? opts->nvnfs : sizeof(default_vnfs) / sizeof(default_vnfs[0]);
    const char *const *vn = opts->vnfs ? opts->vnfs : default_vnfs;
    if (nv == 0 || nv > MAX_VNFS) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "the chain needs 1..%d VNFs, got %zu", MAX_VNFS,
                    nv);
        goto fail;
    }
    for (size_t i = 0; i < nv; i++) {
        if (!vn[i] || !valid_vnf_name(vn[i], strlen(vn[i]))) {
            drst_seterr(err, errlen, DRST_ERR_INVAL,
                        "bad VNF name '%s' (letters, digits, _ - . ; under %d bytes)",
                        vn[i] ? vn[i] : "", MAX_NAME);
            goto fail;
        }
        if (find_union(s, vn[i]) >= 0) {
            drst_seterr(err, errlen, DRST_ERR_INVAL, "VNF '%s' listed twice", vn[i]);
            goto fail;
        }
        memcpy(s->uname[s->nunion], vn[i], strlen(vn[i]) + 1);
        s->chain[s->nchain++] = s->nunion++;
    }
    /* Walk the replacements once to validate them and to lay out the union
     * of VNFs: a new VNF's columns go right after the one it replaces. */
    size_t chain0[MAX_VNFS], nchain0 = s->nchain;
    memcpy(chain0, s->chain, sizeof(chain0));
    for (size_t i = 0; i < sc->nseg; i++) {
        const struct segment *sg = &sc->seg[i];
        if (!sg->repl_old[0])
            continue;
        long o = find_union(s, sg->repl_old);
        int active = 0;
        for (size_t k = 0; o >= 0 && k < s->nchain; k++)
            active |= (long)s->chain[k] == o;
        long n = find_union(s, sg->repl_new);
        int nactive = 0;
        for (size_t k = 0; n >= 0 && k < s->nchain; k++)
            nactive |= (long)s->chain[k] == n;
        if (!active || nactive) {
            drst_seterr(err, errlen, DRST_ERR_INVAL,
                        "%s:%zu: replace=%s:%s: '%s' %s the chain at that point", sc->name,
                        sg->line, sg->repl_old, sg->repl_new, active ? sg->repl_new : sg->repl_old,
                        active ? "is already in" : "is not in");
            goto fail;
        }
        if (n < 0) {
            if (s->nunion == MAX_VNFS) {
                drst_seterr(err, errlen, DRST_ERR_INVAL, "more than %d distinct VNFs", MAX_VNFS);
                goto fail;
            }
            /* Insert after o, shifting names and chain indices. */
            size_t at = (size_t)o + 1;
            memmove(s->uname[at + 1], s->uname[at], (s->nunion - at) * MAX_NAME);
            s->nunion++;
            memcpy(s->uname[at], sg->repl_new, strlen(sg->repl_new) + 1);
            for (size_t k = 0; k < s->nchain; k++)
                if (s->chain[k] >= at)
                    s->chain[k]++;
            for (size_t k = 0; k < nchain0; k++)
                if (chain0[k] >= at)
                    chain0[k]++;
        }
        apply_replace(s, sg);
    }
    memcpy(s->chain, chain0, sizeof(chain0));
    s->nchain = nchain0;
    for (size_t i = 0; i < s->nunion; i++)
        profile_for(s->uname[i], &s->uprof[i]);

    /* Scale segments to the requested total. */
    size_t total = drst_sim_scenario_rows(sc);
    s->nrows = opts->rows ? opts->rows : total;
    if (s->nrows > MAX_ROWS) {
        drst_seterr(err, errlen, DRST_ERR_TOOBIG, "%zu rows requested; at most %u", s->nrows,
                    MAX_ROWS);
        goto fail;
    }
    size_t cum = 0;
    for (size_t i = 0; i < sc->nseg; i++) {
        cum += sc->seg[i].rows;
        s->seg_end[i] = (size_t)((double)s->nrows * (double)cum / (double)total + 0.5);
    }
    s->seg_end[sc->nseg - 1] = s->nrows;

    s->ncols = 3 + DRST_SIM_NEVENTS * s->nunion;
    s->cols = calloc(s->ncols, sizeof(*s->cols));
    if (!s->cols)
        goto nomem;
    const char *fixed[3] = {"input_rate", "output_rate", "latency"};
    for (size_t i = 0; i < s->ncols; i++) {
        char nm[128];
        if (i < 3)
            snprintf(nm, sizeof(nm), "%s", fixed[i]);
        else
            snprintf(nm, sizeof(nm), "%s_%s", s->uname[(i - 3) % s->nunion],
                     events[(i - 3) / s->nunion]);
        if (!(s->cols[i] = strdup(nm)))
            goto nomem;
    }
    uint64_t seed = opts->seed;
    for (int i = 0; i < 4; i++)
        s->rng.s[i] = splitmix64(&seed);
    s->cur_seg = (size_t)-1;
    return s;
nomem:
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "out of memory");
fail:
    drst_sim_free(s);
    return NULL;
}

size_t drst_sim_ncols(const drst_sim_t *s)
{
    return s->ncols;
}

const char *drst_sim_colname(const drst_sim_t *s, size_t i)
{
    return i < s->ncols ? s->cols[i] : NULL;
}

size_t drst_sim_nrows(const drst_sim_t *s)
{
    return s->nrows;
}

static int listed(const char *list, const char *name)
{
    if (!strcmp(list, "*"))
        return 1;
    size_t n = strlen(name);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, '+');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

drst_err_t drst_sim_next(drst_sim_t *s, double *row)
{
    if (s->row >= s->nrows)
        return DRST_ERR_EOF;
    /* Enter the segment this row belongs to (skipping segments scaled to 0 rows). */
    size_t seg = s->cur_seg == (size_t)-1 ? 0 : s->cur_seg;
    while (s->row >= s->seg_end[seg])
        seg++;
    size_t start = seg == 0 ? 0 : s->seg_end[seg - 1];
    if (seg != s->cur_seg) {
        for (size_t i = s->cur_seg == (size_t)-1 ? 0 : s->cur_seg + 1; i <= seg; i++)
            apply_replace(s, &s->sc.seg[i]);
        s->cur_seg = seg;
    }
    const struct segment *sg = &s->sc.seg[seg];
    size_t k = s->row - start, seglen = s->seg_end[seg] - start;
    rng_t *r = &s->rng;

    if (k % sg->hold == 0) {
        switch (sg->rate) {
        case RATE_CONST:
            s->level = sg->a;
            break;
        case RATE_RANDOM:
            s->level = sg->a + (sg->b - sg->a) * rng_unif(r);
            break;
        case RATE_GAUSS:
            s->level = fmax(1.0, sg->a + sg->b * rng_norm(r));
            break;
        default: {
            size_t nsteps = (seglen + sg->hold - 1) / sg->hold;
            double f = nsteps > 1 ? (double)(k / sg->hold) / (double)(nsteps - 1) : 0.0;
            s->level = sg->a + (sg->b - sg->a) * f;
        }
        }
    }
    /* Contention intensity of this row, 0..1. */
    double inten = 0.0;
    switch (sg->cont) {
    case CONT_A: /* constant heavy stressor */
        inten = clamp(0.9 + 0.03 * rng_norm(r), 0.0, 1.0);
        break;
    case CONT_B: /* square wave: 30 rows on, 30 off */
        inten = (k % SQUARE_PERIOD) < SQUARE_PERIOD / 2 ? 0.95 : 0.0;
        break;
    case CONT_C: /* random bursts of 20 rows */
        if (k % BURST_BLOCK == 0)
            s->burst = rng_unif(r) < 0.5 ? 0.5 + 0.5 * rng_unif(r) : 0.0;
        inten = s->burst;
        break;
    default:
        break;
    }
    for (size_t u = 0; u < s->nunion; u++)
        s->cont[u] = sg->cont != CONT_NONE && listed(sg->cont_vnfs, s->uname[u]) ? inten : 0.0;

    /* Chain throughput: min(offered, smallest capacity). */
    double offered = s->level * (1.0 + 1e-4 * rng_norm(r));
    double cap = INFINITY;
    for (size_t c = 0; c < s->nchain; c++) {
        size_t u = s->chain[c];
        const struct vnfprof *p = &s->uprof[u];
        double cs = s->cont[u];
        cap = fmin(cap, CPU_HZ * (1.0 - 0.15 * cs) / (p->cpp * (1.0 + 16.0 * cs)));
    }
    double x = fmin(offered, cap) * (1.0 + 1e-4 * rng_norm(r));
    double lat = 0.0;
    int overloaded = offered >= cap;
    for (size_t i = 0; i < s->ncols; i++)
        row[i] = NAN;
    for (size_t c = 0; c < s->nchain; c++) {
        size_t u = s->chain[c];
        const struct vnfprof *p = &s->uprof[u];
        double cs = s->cont[u];
        double f_eff = CPU_HZ * (1.0 - 0.15 * cs) * (1.0 + 2e-5 * rng_norm(r));
        double cpp = p->cpp * (1.0 + 16.0 * cs);
        double vcap = f_eff / cpp;
        double ipc_busy = p->ipc_busy / (1.0 + 0.5 * cs);
        double idle = exp(-x / p->x0);
        double instr =
            f_eff * (ipc_busy + (p->ipc_idle - ipc_busy) * idle) * (1.0 + 0.01 * rng_norm(r));
        double v[DRST_SIM_NEVENTS];
        v[EV_INSTR] = instr;
        v[EV_BR] = instr * 0.1975 * (1.0 + 0.002 * rng_norm(r));
        v[EV_BRM] = (2.5e6 + instr * 5.1e-4) * (1.0 + 0.1 * cs) * (1.0 + 0.03 * rng_norm(r));
        v[EV_BRLM] = v[EV_BRM] * (1.0 + 1e-4 * rng_norm(r));
        v[EV_CR] = (1e6 + x * p->cref) * (1.0 + 0.6 * cs) * (1.0 + 0.02 * rng_norm(r));
        v[EV_CM] = (p->cm_base + p->cm_scale * (1.0 - exp(-x / 3000.0))) * (1.0 + 8.0 * cs) *
                   exp(0.3 * rng_norm(r));
        v[EV_CYC] = f_eff;
        v[EV_L1M] = v[EV_CR] * 1.06 * (1.0 + 0.01 * rng_norm(r));
        v[EV_L1] = instr * 0.308 * (1.0 + 0.005 * rng_norm(r));
        v[EV_LLCM] = v[EV_CM] * 0.8 * exp(0.15 * rng_norm(r));
        v[EV_LLCS] = v[EV_CR] * 0.31 * (1.0 + 0.02 * rng_norm(r));
        v[EV_LLCL] = v[EV_CR] * 0.69 * (1.0 + 0.02 * rng_norm(r));
        for (size_t e = 0; e < DRST_SIM_NEVENTS; e++)
            row[3 + e * s->nunion + u] = fmax(0.0, v[e]);
        double rho = offered / vcap;
        lat += p->lat + (rho < 0.999 ? p->qlat * rho / (1.0 - rho) : LAT_SENTINEL);
    }
    lat += 480.0 * exp(-x / 480.0);
    lat = overloaded ? LAT_SENTINEL : fmin(LAT_SENTINEL, lat * exp(0.2 * rng_norm(r)));
    row[0] = offered;
    row[1] = x;
    row[2] = lat;
    s->row++;
    return DRST_OK;
}

drst_err_t drst_sim_write_csv(drst_sim_t *s, FILE *f, char *err, size_t errlen)
{
    double row[3 + DRST_SIM_NEVENTS * MAX_VNFS];
    if (!s->header_done && s->row == 0) {
        for (size_t i = 0; i < s->ncols; i++)
            fprintf(f, ",%s", s->cols[i]);
        fputc('\n', f);
        s->header_done = 1;
    }
    for (;;) {
        size_t idx = s->row;
        drst_err_t rc = drst_sim_next(s, row);
        if (rc == DRST_ERR_EOF)
            break;
        if (rc)
            return drst_seterr(err, errlen, rc, "simulation failed at row %zu", idx);
        fprintf(f, "%zu", idx);
        for (size_t i = 0; i < s->ncols; i++) {
            if (isnan(row[i]))
                fputs(",", f);
            else if (i < 2)
                fprintf(f, ",%.6f", row[i]);
            else if (i == 2)
                fprintf(f, ",%.3f", row[i]);
            else
                fprintf(f, ",%.0f", row[i]);
        }
        fputc('\n', f);
        if (ferror(f))
            return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "write failed at row %zu", idx);
    }
    if (fflush(f) != 0 || ferror(f))
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "write failed");
    return DRST_OK;
}
