/* Record codec: schema lookup, JSON (fast path + jansson fallback), binary. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/error_int.h"
#include "drst/stream.h"
#include "stream/stream_int.h"

struct drst_schema {
    size_t n;
    char **names;
    size_t *namelen;
    uint8_t *plain; /* name needs no JSON escaping */
    double *defaults;
    uint32_t *slots; /* open addressing: index + 1, 0 = empty */
    size_t mask;
    uint64_t hash;
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
    if (!s->names || !s->namelen || !s->plain || !s->defaults || !s->slots)
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
    }
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

static void ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int fail(struct jp *j, const char *why)
{
    j->why = why;
    return FP_ERR;
}

static const double pow10tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number. Clinger's fast path (mantissa < 2^53, |exp10| <= 22) is
 * exact; anything else goes through strtod on a bounded copy. */
static int number(struct jp *j, double *out)
{
    const char *s = j->p, *q = j->p;
    uint64_t m = 0;
    int nd = 0, neg = 0, exp10 = 0, exact = 1;

    if (q < j->end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= j->end || *q < '0' || *q > '9')
        return fail(j, "expected a number");
    if (*q == '0') {
        q++;
    } else {
        while (q < j->end && *q >= '0' && *q <= '9') {
            if (nd < 19)
                m = m * 10 + (uint64_t)(*q - '0');
            else
                exact = 0;
            if (m || nd)
                nd++;
            q++;
        }
    }
    if (q < j->end && *q == '.') {
        q++;
        if (q >= j->end || *q < '0' || *q > '9')
            return fail(j, "bad number: digit expected after '.'");
        while (q < j->end && *q >= '0' && *q <= '9') {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                exp10--;
                if (m)
                    nd++;
            } else {
                exact = 0;
            }
            q++;
        }
    }
    if (q < j->end && (*q == 'e' || *q == 'E')) {
        int eneg = 0, e = 0;
        q++;
        if (q < j->end && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q >= j->end || *q < '0' || *q > '9')
            return fail(j, "bad number: digit expected in exponent");
        while (q < j->end && *q >= '0' && *q <= '9') {
            if (e < 100000)
                e = e * 10 + (*q - '0');
            q++;
        }
        exp10 += eneg ? -e : e;
    }
    j->p = q;
    if (exact && m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;
        d = exp10 < 0 ? d / pow10tab[-exp10] : d * pow10tab[exp10];
        *out = neg ? -d : d;
        return FP_OK;
    }
    {
        char tmp[512];
        size_t len = (size_t)(q - s);
        if (len >= sizeof(tmp))
            return fail(j, "number too long");
        memcpy(tmp, s, len);
        tmp[len] = 0;
        *out = strtod(tmp, NULL);
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
static int num_or_null(struct jp *j, double *out)
{
    ws(j);
    if (lit(j, "null", 4)) {
        *out = NAN;
        return FP_OK;
    }
    if (j->p < j->end && (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')))
        return number(j, out);
    return fail(j, "expected a number or null");
}

#define KEQ(k, kl, lit) ((kl) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

static int features(struct jp *j, const drst_schema_t *s, drst_record_t *rec)
{
    size_t next = 0; /* writers usually follow the schema order: try that first */
    ws(j);
    if (j->p >= j->end || *j->p != '{')
        return fail(j, "\"features\" must be an object");
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return FP_OK;
    }
    for (;;) {
        const char *k;
        size_t kl;
        double v;
        int rc;
        long idx;
        ws(j);
        idx = -1;
        if (next < s->n && s->plain[next] && (size_t)(j->end - j->p) > s->namelen[next] + 1 &&
            j->p[0] == '"' && j->p[s->namelen[next] + 1] == '"' &&
            memcmp(j->p + 1, s->names[next], s->namelen[next]) == 0) {
            /* the expected name, verbatim: no scan, no hash */
            idx = (long)next;
            j->p += s->namelen[next] + 2;
        } else {
            if ((rc = key(j, &k, &kl)) != FP_OK)
                return rc;
            idx = drst_schema_index(s, k, kl);
        }
        ws(j);
        if (j->p >= j->end || *j->p != ':')
            return fail(j, "expected ':'");
        j->p++;
        if ((rc = num_or_null(j, &v)) != FP_OK)
            return j->why ? fail(j, "feature value must be a number or null") : rc;
        if (idx >= 0) {
            rec->features[idx] = v;
            next = (size_t)idx + 1;
        } else {
            rec->n_unknown++;
        }
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
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

static int fast_decode(struct jp *j, const drst_schema_t *s, drst_record_t *rec, int *has_feat)
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
            if ((rc = features(j, s, rec)) != FP_OK)
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
    int has_feat = 0, rc;

    rec_reset(s, rec);
    rc = fast_decode(&j, s, rec, &has_feat);
    if (rc == FP_OK) {
        if (!rec->eos)
            rec_fill(s, rec);
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
