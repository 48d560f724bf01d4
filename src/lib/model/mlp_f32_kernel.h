/* Single-precision forward pass of the mlp, written once over a small
 * vector vocabulary and included once per instruction set by model_mlp.c
 * (AVX-512, AVX2+FMA, portable scalar). Not a public or standalone header.
 *
 * The includer defines:
 *   KN(name)        suffixes a function name for this instruction set
 *   KATTR           the target attribute (or nothing)
 *   VT, VL          vector type and its lanes (floats)
 *   VLOAD(p)        unaligned load of VL floats; VSTORE(p, v) store
 *   VSET1(x)        broadcast; VFMA(a, b, c) = a * b + c; VRELU(v) = max(v, 0)
 *   VHSUM(v)        sum of the lanes (fixed order)
 *   RA              rows per block with 4 vectors of outputs (4 * RA accumulators)
 * and this header undefines them at its end, ready for the next set.
 *
 * Layout (mlp_derive()): layer l's weights are sizes[l] rows of
 * fw[l] floats (the output width rounded up to 16, padding zero), biases
 * padded likewise; the last layer (one output) is a vector of the previous
 * padded width. Every output accumulates its inputs in index order with the
 * same operations whatever block the row falls in, so a row's prediction
 * does not depend on the batch it is part of. */

/* Centre and scale raw rows in double (raw values may be large and close
 * to their mean), round once to float, pad each row to ldo with zeros; a
 * non-finite value becomes 0 (the training mean). Vectorized by the
 * compiler for this instruction set. */
static KATTR void KN(scale)(const double *x, size_t stride, size_t n, size_t nf,
                            const double *restrict mean, const double *restrict inv,
                            float *restrict out, size_t ldo)
{
    for (size_t r = 0; r < n; r++) {
        const double *restrict row = x + r * stride;
        float *restrict d = out + r * ldo;
        for (size_t j = 0; j < nf; j++) {
            double v = row[j], z = (v - mean[j]) * inv[j];
            uint64_t vb, zb;
            memcpy(&vb, &v, sizeof(vb));
            memcpy(&zb, &z, sizeof(zb));
            /* all-ones unless the exponent is all ones (Inf, NaN): a mask,
             * not a branch (GCC keeps a branch under -ftrapping-math) */
            zb &= (uint64_t)0 - (uint64_t)((vb & EXP_MASK) != EXP_MASK);
            memcpy(&z, &zb, sizeof(z));
            d[j] = (float)z;
        }
        for (size_t j = nf; j < ldo; j++)
            d[j] = 0.0f;
    }
}

/* Rows [0, rows) of in (stride ldi, ni inputs; rows a multiple of R)
 * through one dense layer: nv vectors of outputs from column c. Inlined
 * with constant nv and R so that the accumulators live in registers. */
static inline __attribute__((always_inline)) KATTR void
KN(block)(const float *in, size_t ldi, size_t ni, const float *W, size_t ldw, const float *b,
          float *out, size_t ldo, size_t rows, size_t c, int relu, const int nv, const int R)
{
    for (size_t r0 = 0; r0 < rows; r0 += (size_t)R) {
        VT acc[8][4];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) {
            VT bv = VLOAD(b + c + (size_t)v * VL);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                acc[r][v] = bv;
        }
        for (size_t i = 0; i < ni; i++) {
            VT w[4];
            const float *wr = W + i * ldw + c;
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                w[v] = VLOAD(wr + (size_t)v * VL);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                VT x = VSET1(in[(r0 + (size_t)r) * ldi + i]);
#pragma GCC unroll 8
                for (int v = 0; v < nv; v++)
                    acc[r][v] = VFMA(x, w[v], acc[r][v]);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++)
                VSTORE(out + (r0 + (size_t)r) * ldo + c + (size_t)v * VL,
                       relu ? VRELU(acc[r][v]) : acc[r][v]);
    }
}

/* One hidden layer, every padded output column: blocks of 8 (or RA) rows,
 * then the last rows % 8 one at a time (same operations per row). */
static KATTR void KN(dense)(const float *in, size_t ldi, size_t ni, const float *W, size_t ldw,
                            const float *b, float *out, size_t rows, int relu)
{
    size_t rm = rows - rows % 8, c = 0;
    const float *tin = in + rm * ldi;
    float *tout = out + rm * ldw;
    for (; c + 4 * VL <= ldw; c += 4 * VL) {
        KN(block)(in, ldi, ni, W, ldw, b, out, ldw, rm, c, relu, 4, RA);
        KN(block)(tin, ldi, ni, W, ldw, b, tout, ldw, rows - rm, c, relu, 4, 1);
    }
    for (; c + 2 * VL <= ldw; c += 2 * VL) {
        KN(block)(in, ldi, ni, W, ldw, b, out, ldw, rm, c, relu, 2, 8);
        KN(block)(tin, ldi, ni, W, ldw, b, tout, ldw, rows - rm, c, relu, 2, 1);
    }
    for (; c < ldw; c += VL) {
        KN(block)(in, ldi, ni, W, ldw, b, out, ldw, rm, c, relu, 1, 8);
        KN(block)(tin, ldi, ni, W, ldw, b, tout, ldw, rows - rm, c, relu, 1, 1);
    }
}

/* The output layer: one dot product per row over the padded width. */
static KATTR void KN(output)(const float *in, size_t ldi, const float *w, float b, double *y,
                             size_t rows)
{
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * ldi;
        VT s = VSET1(0.0f);
        for (size_t i = 0; i < ldi; i += VL)
            s = VFMA(VLOAD(x + i), VLOAD(w + i), s);
        y[r] = (double)(VHSUM(s) + b);
    }
}

#undef KN
#undef KATTR
#undef VT
#undef VL
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VFMA
#undef VRELU
#undef VHSUM
#undef RA
