/* Fast exact decimal-to-double conversion (internal, inlined into parsers).
 *
 * Two exact fast paths, both giving the correctly rounded double that
 * strtod() returns:
 *  - Clinger: significand <= 2^53 and |power of ten| <= 22, so both operands
 *    are exact doubles and one IEEE multiplication/division rounds correctly;
 *  - Eisel-Lemire (as in fast_float): a 64x128-bit product with a table of
 *    truncated powers of five; it detects the rare cases it cannot decide
 *    and then gives up.
 * Significands longer than 19 digits are truncated to 19 and accepted only
 * when w and w+1 round to the same double. Anything the fast paths cannot
 * decide (and hex, inf, nan, junk) is left to strtod() by the caller. */
#ifndef DRST_TELEMETRY_NUMPARSE_INT_H
#define DRST_TELEMETRY_NUMPARSE_INT_H

#include <stdint.h>
#include <string.h>

#include "telemetry/pow5_table.h"

static const double drst_pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                            1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline void drst_mul64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
#ifdef __SIZEOF_INT128__
    __extension__ typedef unsigned __int128 u128;
    u128 p = (u128)a * b;
    *hi = (uint64_t)(p >> 64);
    *lo = (uint64_t)p;
#else
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    *lo = (mid << 32) | (uint32_t)p00;
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

static inline int drst_clz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_clzll(x);
#else
    int n = 0;
    while (!(x & ((uint64_t)1 << 63))) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

/* floor(q * log2(10)) + 63 without relying on signed right shifts. */
static inline int64_t drst_power2_of10(int64_t q)
{
    int64_t x = (152170 + 65536) * q;
    return (x >= 0 ? x / 65536 : -((-x + 65535) / 65536)) + 63;
}

/* Eisel-Lemire: w * 10^q (w != 0) as IEEE bits. Returns 0 when undecided. */
static inline int drst_eisel_lemire(uint64_t w, int64_t q, uint64_t *bits)
{
    uint64_t hi, lo, hi2, lo2, mant;
    int lz, upper, shift;
    int64_t p2;
    const uint64_t *t;

    if (q < DRST_POW5_MIN_Q) {
        *bits = 0;
        return 1;
    }
    if (q > DRST_POW5_MAX_Q) {
        *bits = (uint64_t)0x7FF << 52;
        return 1;
    }
    lz = drst_clz64(w);
    w <<= lz;
    t = drst_pow5_128 + 2 * (q - DRST_POW5_MIN_Q);
    drst_mul64(w, t[0], &hi, &lo);
    if ((hi & 0x1FF) == 0x1FF) { /* 64 + 55 bits needed: refine with the low half */
        drst_mul64(w, t[1], &hi2, &lo2);
        (void)lo2;
        lo += hi2;
        if (hi2 > lo)
            hi++;
    }
    if (lo == UINT64_MAX && (q < -27 || q > 55))
        return 0;
    upper = (int)(hi >> 63);
    shift = upper + 64 - 52 - 3;
    mant = hi >> shift;
    p2 = drst_power2_of10(q) + upper - lz + 1023;
    if (p2 <= 0) { /* subnormal */
        if (-p2 + 1 >= 64) {
            *bits = 0;
            return 1;
        }
        mant >>= -p2 + 1;
        mant += mant & 1;
        mant >>= 1;
        p2 = mant < ((uint64_t)1 << 52) ? 0 : 1;
        *bits = (mant & (((uint64_t)1 << 52) - 1)) | ((uint64_t)p2 << 52);
        return 1;
    }
    if (lo <= 1 && q >= -4 && q <= 23 && (mant & 3) == 1 && (mant << shift) == hi)
        mant &= ~(uint64_t)1; /* exactly halfway: round to even */
    mant += mant & 1;
    mant >>= 1;
    if (mant >= ((uint64_t)2 << 52)) {
        mant = (uint64_t)1 << 52;
        p2++;
    }
    mant &= ~((uint64_t)1 << 52);
    if (p2 >= 0x7FF) {
        p2 = 0x7FF;
        mant = 0;
    }
    *bits = mant | ((uint64_t)p2 << 52);
    return 1;
}

/* w * 10^q, exact; 0 when undecided. */
static inline int drst_decimal_to_double(uint64_t w, int64_t q, int truncated, double *out)
{
    uint64_t b1, b2;
    if (!truncated && w <= ((uint64_t)1 << 53) && q >= -22 && q <= 22) {
        double d = (double)w;
        *out = q < 0 ? d / drst_pow10_exact[-q] : d * drst_pow10_exact[q];
        return 1;
    }
    if (!drst_eisel_lemire(w, q, &b1))
        return 0;
    if (truncated && (!drst_eisel_lemire(w + 1, q, &b2) || b1 != b2))
        return 0;
    memcpy(out, &b1, sizeof(b1));
    return 1;
}

/* SWAR: eight ASCII digits at once (little-endian loads only). */
static inline uint64_t drst_load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline int drst_is8digits(uint64_t v)
{
    return ((v & 0xF0F0F0F0F0F0F0F0ULL) |
            (((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) == 0x3333333333333333ULL;
}

static inline uint64_t drst_parse8(uint64_t v)
{
    const uint64_t mask = 0x000000FF000000FFULL;
    const uint64_t mul1 = 0x000F424000000064ULL; /* 100 + (1000000 << 32) */
    const uint64_t mul2 = 0x0000271000000001ULL; /* 1 + (10000 << 32) */
    v -= 0x3030303030303030ULL;
    v = (v * 10) + (v >> 8);
    return (((v & mask) * mul1) + (((v >> 16) & mask) * mul2)) >> 32;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DRST_SWAR 1
#else
#define DRST_SWAR 0
#endif

/* Parse [sign]digits[.digits][(e|E)[sign]digits] starting at p (p < e).
 * Returns the end of the number, or NULL when the text is not in that form
 * or the fast paths cannot decide (caller then falls back to strtod). */
#if defined(__GNUC__) || defined(__clang__)
#define DRST_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define DRST_ALWAYS_INLINE inline
#endif

static DRST_ALWAYS_INLINE const char *drst_fast_number(const char *p, const char *e, double *out)
{
    uint64_t m = 0;
    int nd = 0, any = 0, neg = 0, truncated = 0;
    int64_t exp10 = 0;

    if (p < e && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    while (p < e && *p == '0') {
        p++;
        any = 1;
    }
    while (DRST_SWAR && e - p >= 8 && nd <= 11 && drst_is8digits(drst_load8(p))) {
        m = m * 100000000 + drst_parse8(drst_load8(p));
        nd += 8;
        any = 1;
        p += 8;
    }
    while (p < e && (unsigned)(*p - '0') < 10) {
        if (nd < 19) {
            m = m * 10 + (uint64_t)(*p - '0');
            nd++;
        } else {
            exp10++; /* digit dropped from the integer part */
            truncated |= *p != '0';
        }
        any = 1;
        p++;
    }
    if (p < e && *p == '.') {
        p++;
        if (m == 0) {
            while (p < e && *p == '0') {
                p++;
                exp10--;
                any = 1;
            }
        }
        while (DRST_SWAR && e - p >= 8 && nd <= 11 && drst_is8digits(drst_load8(p))) {
            m = m * 100000000 + drst_parse8(drst_load8(p));
            nd += 8;
            exp10 -= 8;
            any = 1;
            p += 8;
        }
        while (p < e && (unsigned)(*p - '0') < 10) {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                nd++;
                exp10--;
            } else {
                truncated |= *p != '0';
            }
            any = 1;
            p++;
        }
    }
    if (!any)
        return NULL;
    if (p < e && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        int64_t ev = 0;
        p++;
        if (p < e && (*p == '-' || *p == '+')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= e || (unsigned)(*p - '0') >= 10)
            return NULL;
        while (p < e && (unsigned)(*p - '0') < 10) {
            if (ev < 100000)
                ev = ev * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -ev : ev;
    }
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return p;
    }
    if (!drst_decimal_to_double(m, exp10, truncated, out))
        return NULL;
    if (neg)
        *out = -*out;
    return p;
}

#endif
