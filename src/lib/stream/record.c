/* Record codec: schema lookup, JSON (fast path + jansson fallback), binary. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error_int.h"
#include "drst/stream.h"
#include "stream/stream_int.h"
#include "telemetry/numparse_int.h"

struct drst_schema {
    size_t n;
    char **names;
    size_t *namelen;
    uint8_t *plain; /* name needs no JSON escaping */
    double *defaults;
    uint32_t *slots; /* open addressing: index + 1, 0 = empty */
    size_t mask;
    uint64_t hash;
    /* "name" with its quotes, for plain names: what a writer emits verbatim */
    char *quoted;
    size_t *qoff;
    /* Key-order prediction: succ[i] is the feature that followed feature i
     * in the last record that disagreed with the guess (succ[n]: the first
     * feature). Starts as the schema order. A hint only: every guess is
     * confirmed against the text, so any value is safe; relaxed atomics keep
     * concurrent decoders race-free, and in steady state (one key order per
     * producer) nobody writes. Not observable through the API, so the schema
     * stays immutable as far as callers can tell. */
    _Atomic uint32_t *succ;
};

static uint64_t fnv1a(const void *p, size_t len, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#define FNV_SEED 14695981039346656037ULL

void drst_schema_free(drst_schema_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s->namelen);
    free(s->plain);
    free(s->defaults);
    free(s->slots);
    free(s->quoted);
    free(s->qoff);
    free((void *)s->succ);
    free(s);
}

drst_schema_t *drst_schema_new(const char *const *names, size_t n, const double *defaults,
                               char *err, size_t errlen)
{
    drst_schema_t *s;
    size_t cap = 16;

    if (!names || n == 0 || n > 65535) {
        drst_seterr(err, errlen, DRST_ERR_INVAL, "schema needs 1..65535 feature names, got %zu", n);
        return NULL;
    }
    while (cap < 2 * n)
        cap <<= 1;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->names = calloc(n, sizeof(*s->names));
    s->namelen = calloc(n, sizeof(*s->namelen));
    s->plain = calloc(n, 1);
    s->defaults = malloc(n * sizeof(*s->defaults));
    s->slots = calloc(cap, sizeof(*s->slots));
    s->qoff = calloc(n + 1, sizeof(*s->qoff));
    s->succ = malloc((n + 1) * sizeof(*s->succ));
    if (!s->names || !s->namelen || !s->plain || !s->defaults || !s->slots || !s->qoff || !s->succ)
        goto nomem;
    s->mask = cap - 1;
    s->hash = FNV_SEED;
    for (size_t i = 0; i < n; i++) {
        size_t len = names[i] ? strlen(names[i]) : 0;
        if (len == 0) {
            drst_seterr(err, errlen, DRST_ERR_INVAL, "schema: feature %zu has an empty name", i);
            goto fail;
        }
        if (drst_schema_index(s, names[i], len) >= 0) {
            drst_seterr(err, errlen, DRST_ERR_INVAL, "schema: duplicate feature '%s'", names[i]);
            goto fail;
        }
        s->names[i] = strdup(names[i]);
        if (!s->names[i])
            goto nomem;
        s->namelen[i] = len;
        s->plain[i] = 1;
        for (size_t k = 0; k < len; k++)
            if (names[i][k] == '"' || names[i][k] == '\\' || (unsigned char)names[i][k] < 0x20)
                s->plain[i] = 0;
        s->defaults[i] = defaults ? defaults[i] : NAN;
        s->hash = fnv1a(names[i], len + 1, s->hash);
        size_t h = (size_t)fnv1a(names[i], len, FNV_SEED) & s->mask;
        while (s->slots[h])
            h = (h + 1) & s->mask;
        s->slots[h] = (uint32_t)(i + 1);
        s->n = i + 1;
        s->qoff[i + 1] = s->qoff[i] + len + 2;
    }
    s->quoted = malloc(s->qoff[n]);
    if (!s->quoted)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        char *q = s->quoted + s->qoff[i];
        q[0] = '"';
        memcpy(q + 1, s->names[i], s->namelen[i]);
        q[s->namelen[i] + 1] = '"';
    }
    for (size_t i = 0; i < n; i++)
        atomic_init(&s->succ[i], (uint32_t)(i + 1));
    atomic_init(&s->succ[n], 0u);
    return s;
nomem:
    drst_seterr(err, errlen, DRST_ERR_NOMEM, "schema: out of memory");
fail:
    drst_schema_free(s);
    return NULL;
}

size_t drst_schema_size(const drst_schema_t *s)
{
    return s->n;
}

const char *drst_schema_name(const drst_schema_t *s, size_t i)
{
    return i < s->n ? s->names[i] : NULL;
}

double drst_schema_default(const drst_schema_t *s, size_t i)
{
    return i < s->n ? s->defaults[i] : NAN;
}

uint64_t drst_schema_hash(const drst_schema_t *s)
{
    return s->hash;
}

long drst_schema_index(const drst_schema_t *s, const char *name, size_t len)
{
    size_t h = (size_t)fnv1a(name, len, FNV_SEED) & s->mask;
    uint32_t v;
    while ((v = s->slots[h]) != 0) {
        size_t i = v - 1;
        if (s->namelen[i] == len && memcmp(s->names[i], name, len) == 0)
            return (long)i;
        h = (h + 1) & s->mask;
    }
    return -1;
}

void drst_align_count(drst_align_stats_t *st, const drst_record_t *rec, drst_err_t rc)
{
    if (rc != DRST_OK) {
        st->malformed++;
        return;
    }
    if (rec->eos) {
        st->eos++;
        return;
    }
    st->records++;
    st->missing += rec->n_missing;
    st->unknown += rec->n_unknown;
}

/* ---------------------------------------------------------------- JSON decode */

/* Outcome of the fast path: OK, a definite parse error, or "not handled
 * here" (escaped keys and the like) that jansson decides. */
enum { FP_OK = 0, FP_ERR = 1, FP_FALLBACK = 2 };

struct jp {
    const char *p, *beg, *end;
    const char *why; /* static reason on FP_ERR */
};

static inline int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline void ws(struct jp *j)
{
    while (j->p < j->end && is_ws(*j->p))
        j->p++;
}

static int fail(struct jp *j, const char *why)
{
    j->why = why;
    return FP_ERR;
}

static inline int is_digit(char c)
{
    return (unsigned)(c - '0') < 10;
}

/* Longest JSON number the fast path takes (longer ones are rejected, as
 * before: no record writer produces them). */
#define NUMBER_MAX 512

/* A JSON number, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, converted
 * exactly (the result is strtod's): digits are gathered eight at a time
 * (SWAR), the value comes from Clinger's fast path or Eisel-Lemire
 * (telemetry/numparse_int.h, shared with the CSV reader), and the rare
 * inputs those cannot decide go to strtod on a bounded copy. */
static inline int number(struct jp *j, double *out)
{
    const char *s = j->p, *q = j->p, *e = j->end;
    uint64_t m = 0;
    int nd = 0, neg = 0, truncated = 0;
    int64_t exp10 = 0;

    if (q < e && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= e || !is_digit(*q))
        return fail(j, "expected a number");
    if (*q == '0') {
        q++;
    } else {
        while (DRST_SWAR && e - q >= 8 && nd <= 11 && drst_is8digits(drst_load8(q))) {
            m = m * 100000000 + drst_parse8(drst_load8(q));
            nd += 8;
            q += 8;
        }
        while (q < e && is_digit(*q)) {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                nd++;
            } else {
                exp10++; /* digit dropped from the integer part */
                truncated |= *q != '0';
            }
            q++;
        }
    }
    if (q < e && *q == '.') {
        q++;
        if (q >= e || !is_digit(*q))
            return fail(j, "bad number: digit expected after '.'");
        if (m == 0) {
            while (q < e && *q == '0') {
                q++;
                exp10--;
            }
        }
        while (DRST_SWAR && e - q >= 8 && nd <= 11 && drst_is8digits(drst_load8(q))) {
            m = m * 100000000 + drst_parse8(drst_load8(q));
            nd += 8;
            exp10 -= 8;
            q += 8;
        }
        while (q < e && is_digit(*q)) {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                nd++;
                exp10--;
            } else {
                truncated |= *q != '0';
            }
            q++;
        }
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        int eneg = 0;
        int64_t ev = 0;
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q >= e || !is_digit(*q))
            return fail(j, "bad number: digit expected in exponent");
        while (q < e && is_digit(*q)) {
            if (ev < 100000)
                ev = ev * 10 + (*q - '0');
            q++;
        }
        exp10 += eneg ? -ev : ev;
    }
    if (q - s >= NUMBER_MAX)
        return fail(j, "number too long");
    j->p = q;
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return FP_OK;
    }
    if (drst_decimal_to_double(m, exp10, truncated, out)) {
        if (neg)
            *out = -*out;
    } else {
        char tmp[NUMBER_MAX];
        size_t len = (size_t)(q - s);
        memcpy(tmp, s, len);
        tmp[len] = 0;
        *out = strtod(tmp, NULL);
    }
    /* Beyond DBL_MAX: jansson (the fallback) refuses it too, and a record
     * carrying it could not be written back (JSON has no infinity). */
    if (isinf(*out)) {
        j->p = s;
        return fail(j, "number out of range");
    }
    return FP_OK;
}

/* A string without escapes: [*k, *k + *klen). Escapes go to jansson. */
static int key(struct jp *j, const char **k, size_t *klen)
{
    const char *q;
    if (j->p >= j->end || *j->p != '"')
        return fail(j, "expected a string");
    q = ++j->p;
    q = memchr(q, '"', (size_t)(j->end - q));
    if (!q)
        return fail(j, "unterminated string");
    for (const char *c = j->p; c < q; c++) {
        if (*c == '\\')
            return FP_FALLBACK;
        if ((unsigned char)*c < 0x20)
            return fail(j, "control character in string");
    }
    *k = j->p;
    *klen = (size_t)(q - j->p);
    j->p = q + 1;
    return FP_OK;
}

static int lit(struct jp *j, const char *w, size_t n)
{
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, w, n) == 0) {
        j->p += n;
        return 1;
    }
    return 0;
}

/* Skip any JSON value (for keys we do not use). */
static int skip(struct jp *j, int depth)
{
    double d;
    if (depth > 64)
        return fail(j, "nesting too deep");
    ws(j);
    if (j->p >= j->end)
        return fail(j, "unexpected end of input");
    switch (*j->p) {
    case '"': {
        const char *q = j->p + 1;
        while (q < j->end && *q != '"') {
            if (*q == '\\')
                q++;
            q++;
        }
        if (q >= j->end)
            return fail(j, "unterminated string");
        j->p = q + 1;
        return FP_OK;
    }
    case '{':
    case '[': {
        char close = *j->p == '{' ? '}' : ']';
        int obj = close == '}';
        j->p++;
        ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return FP_OK;
        }
        for (;;) {
            int rc;
            if (obj) {
                const char *k;
                size_t kl;
                ws(j);
                if ((rc = key(j, &k, &kl)) != FP_OK)
                    return rc;
                ws(j);
                if (j->p >= j->end || *j->p != ':')
                    return fail(j, "expected ':'");
                j->p++;
            }
            if ((rc = skip(j, depth + 1)) != FP_OK)
                return rc;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return FP_OK;
            }
            return fail(j, "expected ',' or closing bracket");
        }
    }
    case 't':
        return lit(j, "true", 4) ? FP_OK : fail(j, "bad literal");
    case 'f':
        return lit(j, "false", 5) ? FP_OK : fail(j, "bad literal");
    case 'n':
        return lit(j, "null", 4) ? FP_OK : fail(j, "bad literal");
    default:
        return number(j, &d);
    }
}

/* A number or null (NaN). */
static inline int num_or_null(struct jp *j, double *out)
{
    ws(j);
    if (j->p < j->end && (*j->p == '-' || is_digit(*j->p)))
        return number(j, out);
    if (lit(j, "null", 4)) {
        *out = NAN;
        return FP_OK;
    }
    return fail(j, "expected a number or null");
}

#define KEQ(k, kl, lit) ((kl) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* n bytes at a and b equal; n >= 2 (a quoted name). Inlined word compares:
 * names are short, a libc call costs more than the comparison. */
static inline int same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    if (n < 8) {
        uint32_t u, v;
        if (n < 4) {
            for (size_t i = 0; i < n; i++)
                if (a[i] != b[i])
                    return 0;
            return 1;
        }
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v)
            return 0;
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return u == v;
    }
    for (size_t i = 0; i + 8 <= n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

/* Which schema features this record set (a bit per feature) and how many
 * distinct ones: missing ones are found without a pass over the values,
 * and only when some are missing. */
struct seen {
    uint64_t *bits;
    size_t count;
};

#define SEEN_WORDS ((65535 + 63) / 64) /* drst_schema_new() caps n at 65535 */

static inline int ctz64(uint64_t x) /* x != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while (!(x & 1)) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

/* Number of leading ASCII digits (0..8) in the 8 bytes w (first byte
 * lowest). A byte is a digit iff b ^ '0' <= 9: the high bit of
 * ((x & 0x7f) + 0x76) | x flags the others, without carries between bytes. */
static inline unsigned lead_digits(uint64_t w)
{
    uint64_t x = w ^ 0x3030303030303030ULL;
    uint64_t nd =
        (((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
    return nd ? (unsigned)ctz64(nd) / 8 : 8;
}

/* The k (1..8) leading digits of w as eight digits with leading zeros,
 * ready for drst_parse8(). */
static inline uint64_t pad_digits(uint64_t w, unsigned k)
{
    if (k == 8)
        return w;
    return (w << (8 * (8 - k))) | (0x3030303030303030ULL >> (8 * k));
}

static const uint64_t pow10u[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

static int features(struct jp *j, const drst_schema_t *s, drst_record_t *rec, struct seen *sn)
{
    /* The hot loop of the decoder: keep the cursor and the schema arrays in
     * locals (registers); j->p is synced only around the out-of-line helpers. */
    const char *p, *e = j->end;
    const char *quoted = s->quoted;
    const size_t *qoff = s->qoff;
    const uint8_t *plain = s->plain;
    double *feat = rec->features;
    uint64_t *bits = sn->bits;
    const uint32_t n = (uint32_t)s->n;
    uint32_t prev = n; /* succ[n]: guess for the first key */

    ws(j);
    if (j->p >= j->end || *j->p != '{')
        return fail(j, "\"features\" must be an object");
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return FP_OK;
    }
    p = j->p;
    for (;;) {
        double v;
        int rc, null = 0;
        long idx = -1;
        uint32_t guess = atomic_load_explicit(&s->succ[prev], memory_order_relaxed);
        while (p < e && is_ws(*p))
            p++;
        if (guess < n && plain[guess]) {
            size_t ql = qoff[guess + 1] - qoff[guess];
            if ((size_t)(e - p) >= ql && same_bytes(p, quoted + qoff[guess], ql)) {
                /* the predicted name, verbatim: one compare, no scan, no hash */
                idx = (long)guess;
                p += ql;
            }
        }
        if (idx < 0) {
            const char *k;
            size_t kl;
            j->p = p;
            if ((rc = key(j, &k, &kl)) != FP_OK)
                return rc;
            p = j->p;
            idx = drst_schema_index(s, k, kl);
            if (idx >= 0 && guess != (uint32_t)idx)
                atomic_store_explicit(&s->succ[prev], (uint32_t)idx, memory_order_relaxed);
        }
        if (p < e && *p == ':') {
            p++;
        } else {
            while (p < e && is_ws(*p))
                p++;
            if (p >= e || *p != ':') {
                j->p = p;
                return fail(j, "expected ':'");
            }
            p++;
        }
        /* Common case inline: an integer of at most 15 digits (exact as a
         * double) followed by ',' or '}'. Anything else: the full parser.
         * Both words are loaded and measured at once: where the value ends
         * (hence where the next key starts) then costs one load and a few
         * ALU ops, and the digit arithmetic stays off that critical path. */
        if (DRST_SWAR && e - p >= 18) {
            const char *q = p;
            int neg = 0;
            if (*q == '-') {
                neg = 1;
                q++;
            }
            if ((unsigned)(*q - '1') < 9) {
                uint64_t w1 = drst_load8(q), w2 = drst_load8(q + 8), m;
                unsigned k1 = lead_digits(w1), k2 = lead_digits(w2);
                unsigned k = k1 < 8 ? k1 : 8 + k2;
                if (k <= 15 && (q[k] == ',' || q[k] == '}')) {
                    m = drst_parse8(pad_digits(w1, k1));
                    if (k1 == 8 && k2 > 0)
                        m = m * pow10u[k2] + drst_parse8(pad_digits(w2, k2));
                    v = neg ? -(double)m : (double)m;
                    p = q + k;
                    goto have_value;
                }
            }
        }
        j->p = p;
        while (j->p < e && is_ws(*j->p))
            j->p++;
        if (j->p < e && (*j->p == '-' || is_digit(*j->p))) {
            if ((rc = number(j, &v)) != FP_OK)
                return rc;
        } else if (lit(j, "null", 4)) {
            null = 1;
            v = 0;
        } else {
            return fail(j, "feature value must be a number or null");
        }
        p = j->p;
    have_value:
        if (idx >= 0) {
            uint64_t bit = (uint64_t)1 << (idx & 63), *w = &bits[idx >> 6];
            if (!null) {
                feat[idx] = v;
                sn->count += !(*w & bit);
                *w |= bit;
            } else if (*w & bit) { /* a later null wins, like a later value */
                sn->count--;
                *w &= ~bit;
            }
            prev = (uint32_t)idx;
        } else {
            rec->n_unknown++;
        }
        if (p < e && *p == ',') {
            p++;
            continue;
        }
        while (p < e && is_ws(*p))
            p++;
        if (p < e && *p == ',') {
            p++;
            continue;
        }
        j->p = p;
        if (p < e && *p == '}') {
            j->p++;
            return FP_OK;
        }
        return fail(j, "expected ',' or '}' in features");
    }
}

static void rec_reset(const drst_schema_t *s, drst_record_t *rec)
{
    rec->seq = 0;
    rec->ts = rec->send_ts = NAN;
    rec->label = NAN;
    rec->has_label = 0;
    rec->eos = 0;
    rec->n_missing = rec->n_unknown = 0;
    for (size_t i = 0; i < s->n; i++)
        rec->features[i] = NAN;
}

/* After the features are in: defaults for the missing ones. */
static void rec_fill(const drst_schema_t *s, drst_record_t *rec)
{
    for (size_t i = 0; i < s->n; i++) {
        if (isnan(rec->features[i])) {
            rec->features[i] = s->defaults[i];
            rec->n_missing++;
        }
    }
}

static int fast_decode(struct jp *j, const drst_schema_t *s, drst_record_t *rec, struct seen *sn,
                       int *has_feat)
{
    int eos_seen = 0, eos = 0, part_seen = 0;
    double part = 0;

    ws(j);
    if (j->p >= j->end || *j->p != '{')
        return fail(j, "a record must be a JSON object");
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        goto done;
    }
    for (;;) {
        const char *k;
        size_t kl;
        int rc;
        double d;
        ws(j);
        if ((rc = key(j, &k, &kl)) != FP_OK)
            return rc;
        ws(j);
        if (j->p >= j->end || *j->p != ':')
            return fail(j, "expected ':'");
        j->p++;
        ws(j);
        if (KEQ(k, kl, "features")) {
            if ((rc = features(j, s, rec, sn)) != FP_OK)
                return rc;
            *has_feat = 1;
        } else if (KEQ(k, kl, "seq")) {
            if ((rc = num_or_null(j, &d)) != FP_OK)
                return rc;
            if (!(d >= 0 && d < 18446744073709551616.0) || d != floor(d))
                return fail(j, "\"seq\" must be a non-negative integer");
            rec->seq = (uint64_t)d;
        } else if (KEQ(k, kl, "ts")) {
            if ((rc = num_or_null(j, &rec->ts)) != FP_OK)
                return rc;
        } else if (KEQ(k, kl, "send_ts")) {
            if ((rc = num_or_null(j, &rec->send_ts)) != FP_OK)
                return rc;
        } else if (KEQ(k, kl, "label")) {
            if ((rc = num_or_null(j, &rec->label)) != FP_OK)
                return rc;
            rec->has_label = !isnan(rec->label);
        } else if (KEQ(k, kl, "eos")) {
            if (lit(j, "true", 4))
                eos = 1;
            else if (!lit(j, "false", 5))
                return fail(j, "\"eos\" must be true or false");
            eos_seen = 1;
        } else if (KEQ(k, kl, "partition")) {
            if ((rc = num_or_null(j, &part)) != FP_OK)
                return rc;
            if (!(part >= 0 && part < 2147483648.0) || part != floor(part))
                return fail(j, "\"partition\" must be a non-negative integer");
            part_seen = 1;
        } else {
            if ((rc = skip(j, 1)) != FP_OK)
                return rc;
        }
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }
        return fail(j, "expected ',' or '}'");
    }
done:
    ws(j);
    if (j->p != j->end)
        return fail(j, "trailing characters after the record");
    (void)eos_seen;
    if (eos) {
        rec->eos = 1;
        if (part_seen)
            rec->partition = (int32_t)part;
        return FP_OK;
    }
    if (!*has_feat)
        return fail(j, "record has no \"features\" object");
    return FP_OK;
}

/* The jansson path: same rules, for inputs the fast path declines. */
static drst_err_t slow_decode(const drst_schema_t *s, const void *buf, size_t len,
                              drst_record_t *rec, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je), *v, *f;
    drst_err_t rc = DRST_OK;
    const char *k;

    if (!root)
        return drst_seterr(err, errlen, DRST_ERR_PARSE, "byte %d: %s", je.position, je.text);
    rec_reset(s, rec);
    if (!json_is_object(root)) {
        rc = drst_seterr(err, errlen, DRST_ERR_PARSE, "byte 0: a record must be a JSON object");
        goto out;
    }
    v = json_object_get(root, "eos");
    if (v && !json_is_boolean(v)) {
        rc = drst_seterr(err, errlen, DRST_ERR_PARSE, "\"eos\" must be true or false");
        goto out;
    }
    if (json_is_true(v)) {
        json_t *p = json_object_get(root, "partition");
        rec->eos = 1;
        if (p) {
            if (!json_is_integer(p) || json_integer_value(p) < 0 ||
                json_integer_value(p) > INT32_MAX) {
                rc = drst_seterr(err, errlen, DRST_ERR_PARSE,
                                 "\"partition\" must be a non-negative integer");
                goto out;
            }
            rec->partition = (int32_t)json_integer_value(p);
        }
        goto out;
    }
    f = json_object_get(root, "features");
    if (!json_is_object(f)) {
        rc = drst_seterr(err, errlen, DRST_ERR_PARSE, "record has no \"features\" object");
        goto out;
    }
    json_object_foreach(f, k, v)
    {
        long idx;
        if (!json_is_number(v) && !json_is_null(v)) {
            rc = drst_seterr(err, errlen, DRST_ERR_PARSE,
                             "feature \"%s\": value must be a number or null", k);
            goto out;
        }
        idx = drst_schema_index(s, k, strlen(k));
        if (idx >= 0)
            rec->features[idx] = json_is_null(v) ? NAN : json_number_value(v);
        else
            rec->n_unknown++;
    }
    if ((v = json_object_get(root, "seq")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            rc = drst_seterr(err, errlen, DRST_ERR_PARSE, "\"seq\" must be a non-negative integer");
            goto out;
        }
        rec->seq = (uint64_t)json_integer_value(v);
    }
    if (json_is_number(v = json_object_get(root, "ts")))
        rec->ts = json_number_value(v);
    if (json_is_number(v = json_object_get(root, "send_ts")))
        rec->send_ts = json_number_value(v);
    if (json_is_number(v = json_object_get(root, "label"))) {
        rec->label = json_number_value(v);
        rec->has_label = 1;
    }
    rec_fill(s, rec);
out:
    json_decref(root);
    return rc;
}

drst_err_t drst_record_decode_json(const drst_schema_t *s, const void *buf, size_t len,
                                   drst_record_t *rec, char *err, size_t errlen)
{
    struct jp j = {buf, buf, (const char *)buf + len, NULL};
    uint64_t bits[SEEN_WORDS];
    struct seen sn = {bits, 0};
    size_t nw = (s->n + 63) / 64;
    int has_feat = 0, rc;

    /* No pass over the feature array up front: the seen bits say what to fill. */
    memset(bits, 0, nw * sizeof(bits[0]));
    rec->seq = 0;
    rec->ts = rec->send_ts = rec->label = NAN;
    rec->has_label = 0;
    rec->eos = 0;
    rec->n_missing = rec->n_unknown = 0;
    rc = fast_decode(&j, s, rec, &sn, &has_feat);
    if (rc == FP_OK) {
        if (rec->eos) {
            for (size_t i = 0; i < s->n; i++)
                rec->features[i] = NAN;
        } else if (sn.count < s->n) {
            for (size_t i = 0; i < s->n; i++)
                if (!(bits[i >> 6] & ((uint64_t)1 << (i & 63)))) {
                    rec->features[i] = s->defaults[i];
                    rec->n_missing++;
                }
        }
        return DRST_OK;
    }
    if (rc == FP_ERR)
        return drst_seterr(err, errlen, DRST_ERR_PARSE, "byte %zu: %s", (size_t)(j.p - j.beg),
                           j.why);
    return slow_decode(s, buf, len, rec, err, errlen);
}

/* ---------------------------------------------------------------- JSON encode */

struct out {
    char *p, *end;
    int full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        o->full = 1;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

#define PUTLIT(o, s) put((o), (s), sizeof(s) - 1)

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof(tmp) - (size_t)i);
}

/* Shortest of %.15g/%.16g/%.17g that reads back exactly; integers directly. */
static void put_double(struct out *o, double v)
{
    char tmp[40];
    int n;
    if (!isfinite(v)) {
        PUTLIT(o, "null");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        if (v < 0 || (v == 0 && signbit(v))) {
            if (v == 0) {
                PUTLIT(o, "-0.0");
                return;
            }
            PUTLIT(o, "-");
            v = -v;
        }
        put_u64(o, (uint64_t)v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    put(o, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates), or 0. */
static size_t utf8_ok(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

static void put_str(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    PUTLIT(o, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8_ok(s + i, n - i))) {
            /* control bytes and invalid UTF-8 become \u00XX: output stays JSON */
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, e, 6);
        } else if (c >= 0x80) {
            size_t k = utf8_ok(s + i, n - i);
            put(o, s + i, k);
            i += k - 1;
        } else {
            put(o, (const char *)&s[i], 1);
        }
    }
    PUTLIT(o, "\"");
}

drst_err_t drst_record_encode_eos(int32_t partition, char *buf, size_t cap, size_t *outlen)
{
    struct out o = {buf, buf + cap, 0};
    PUTLIT(&o, "{\"eos\":true,\"partition\":");
    put_u64(&o, (uint64_t)(partition < 0 ? 0 : partition));
    PUTLIT(&o, "}");
    if (o.full || o.p >= o.end)
        return DRST_ERR_TOOBIG;
    *o.p = 0;
    *outlen = (size_t)(o.p - buf);
    return DRST_OK;
}

drst_err_t drst_record_encode_json(const drst_schema_t *s, const drst_record_t *rec, char *buf,
                                   size_t cap, size_t *outlen)
{
    struct out o = {buf, buf + cap, 0};
    int first = 1;

    if (rec->eos)
        return drst_record_encode_eos(rec->partition, buf, cap, outlen);
    PUTLIT(&o, "{\"seq\":");
    put_u64(&o, rec->seq);
    if (!isnan(rec->ts)) {
        PUTLIT(&o, ",\"ts\":");
        put_double(&o, rec->ts);
    }
    if (!isnan(rec->send_ts)) {
        PUTLIT(&o, ",\"send_ts\":");
        put_double(&o, rec->send_ts);
    }
    PUTLIT(&o, ",\"features\":{");
    for (size_t i = 0; i < s->n && !o.full; i++) {
        if (isnan(rec->features[i]))
            continue;
        if (!first)
            PUTLIT(&o, ",");
        first = 0;
        put_str(&o, s->names[i], s->namelen[i]);
        PUTLIT(&o, ":");
        put_double(&o, rec->features[i]);
    }
    PUTLIT(&o, "}");
    if (rec->has_label && !isnan(rec->label)) {
        PUTLIT(&o, ",\"label\":");
        put_double(&o, rec->label);
    }
    PUTLIT(&o, "}");
    if (o.full || o.p >= o.end)
        return DRST_ERR_TOOBIG;
    *o.p = 0;
    *outlen = (size_t)(o.p - buf);
    return DRST_OK;
}

/* ---------------------------------------------------------------- binary */

/* Layout, little-endian (the only byte order drst builds for):
 *   0 magic "DRB1" | 4 u32 flags (1 eos, 2 label) | 8 u64 schema hash
 *  16 u64 seq | 24 f64 ts | 32 f64 send_ts | 40 f64 label
 *  48 i32 partition | 52 u32 nfeatures | 56 f64 features[n]          */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the binary record codec assumes a little-endian host"
#endif

#define BIN_HDR 56

size_t drst_record_bin_size(const drst_schema_t *s)
{
    return BIN_HDR + 8 * s->n;
}

drst_err_t drst_record_encode_bin(const drst_schema_t *s, const drst_record_t *rec, void *buf,
                                  size_t cap, size_t *outlen)
{
    unsigned char *b = buf;
    uint32_t flags = (rec->eos ? 1u : 0u) | (rec->has_label ? 2u : 0u);
    uint32_t n = (uint32_t)s->n;
    int32_t part = rec->partition;

    if (cap < drst_record_bin_size(s))
        return DRST_ERR_TOOBIG;
    memcpy(b, DRST_RECORD_BIN_MAGIC, 4);
    memcpy(b + 4, &flags, 4);
    memcpy(b + 8, &s->hash, 8);
    memcpy(b + 16, &rec->seq, 8);
    memcpy(b + 24, &rec->ts, 8);
    memcpy(b + 32, &rec->send_ts, 8);
    memcpy(b + 40, &rec->label, 8);
    memcpy(b + 48, &part, 4);
    memcpy(b + 52, &n, 4);
    if (rec->eos)
        memset(b + BIN_HDR, 0, 8 * s->n);
    else
        memcpy(b + BIN_HDR, rec->features, 8 * s->n);
    *outlen = drst_record_bin_size(s);
    return DRST_OK;
}

drst_err_t drst_record_decode_bin(const drst_schema_t *s, const void *buf, size_t len,
                                  drst_record_t *rec, char *err, size_t errlen)
{
    const unsigned char *b = buf;
    uint32_t flags, n;
    uint64_t h;

    if (len < BIN_HDR || memcmp(b, DRST_RECORD_BIN_MAGIC, 4) != 0)
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "binary record: bad magic or %zu bytes",
                           len);
    memcpy(&flags, b + 4, 4);
    memcpy(&h, b + 8, 8);
    memcpy(&n, b + 52, 4);
    if (h != s->hash || n != s->n)
        return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                           "binary record: written with another schema (%" PRIu32
                           " features, hash %016" PRIx64 ")",
                           n, h);
    if (len != drst_record_bin_size(s))
        return drst_seterr(err, errlen, DRST_ERR_FORMAT, "binary record: %zu bytes, expected %zu",
                           len, drst_record_bin_size(s));
    memcpy(&rec->seq, b + 16, 8);
    memcpy(&rec->ts, b + 24, 8);
    memcpy(&rec->send_ts, b + 32, 8);
    memcpy(&rec->label, b + 40, 8);
    memcpy(&rec->partition, b + 48, 4);
    rec->eos = (flags & 1u) != 0;
    rec->has_label = (flags & 2u) != 0;
    rec->n_missing = rec->n_unknown = 0;
    if (rec->eos)
        return DRST_OK;
    memcpy(rec->features, b + BIN_HDR, 8 * s->n);
    rec_fill(s, rec);
    return DRST_OK;
}

drst_err_t drst_record_decode(const drst_schema_t *s, const void *buf, size_t len,
                              drst_record_t *rec, char *err, size_t errlen)
{
    if (len >= 4 && memcmp(buf, DRST_RECORD_BIN_MAGIC, 4) == 0)
        return drst_record_decode_bin(s, buf, len, rec, err, errlen);
    return drst_record_decode_json(s, buf, len, rec, err, errlen);
}

size_t drst_json_escape(const char *s, size_t n, char *buf, size_t cap)
{
    struct out o = {buf, buf + cap, 0};
    put_str(&o, s, n);
    if (o.full)
        return 0;
    return (size_t)(o.p - buf);
}
