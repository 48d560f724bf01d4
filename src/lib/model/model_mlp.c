/* mlp: dense feed-forward network, Adam, early stopping. Batched math goes
 * through OpenBLAS dgemm; one-row prediction uses plain loops (a BLAS call
 * costs more than the arithmetic at that size). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_ADAM 1
#endif

#include "common/error_int.h"
#include "model/model_int.h"

/* sqrt() may set errno, which stops GCC from vectorizing the Adam update
 * (the bulk of a training step at these sizes); nothing here reads errno. */

/* The portable build targets baseline x86-64 (SSE2); the few hot loops get
 * an AVX2 clone picked at load time when the CPU has it. */
/* Sanitizer builds define DRST_NO_CPU_DISPATCH: ifunc resolvers run before
 * the TSan runtime is initialised and crash it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) &&                  \
    !defined(DRST_NO_CPU_DISPATCH)
#define HOT __attribute__((target_clones("avx2", "default")))
#else
#define HOT
#endif

#define SMALL_BATCH 4

static size_t pad16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Two ping-pong activation rows; the padded float32 path fits in the same
 * (mlp_predict_f32 accounts for it). */
static size_t mlp_scratch_per_row(const drst_model_t *m)
{
    size_t w = 1;
    for (size_t l = 0; l <= m->nlayers; l++)
        if (m->sizes[l] > w)
            w = m->sizes[l];
    return 2 * pad16(w) + 16;
}

static inline double gelu(double z)
{
    return 0.5 * z * (1.0 + erf(z * 0.70710678118654752440));
}

static inline double gelu_grad(double z)
{
    return 0.5 * (1.0 + erf(z * 0.70710678118654752440)) +
           z * 0.39894228040143267794 * exp(-0.5 * z * z);
}

static void activate(double *z, size_t n, uint32_t act)
{
    if (act == DRST_ACT_GELU) {
        for (size_t i = 0; i < n; i++)
            z[i] = gelu(z[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            z[i] = z[i] > 0 ? z[i] : 0;
    }
}

/* One row through the network: in -> out, ping-pong in tmp. */
HOT static double forward_row(const drst_model_t *m, const double *x, double *tmp, size_t w)
{
    const double *in = x;
    double *bufs[2] = {tmp, tmp + w};
    for (size_t l = 0; l < m->nlayers; l++) {
        size_t ni = m->sizes[l], no = m->sizes[l + 1];
        double *restrict z = bufs[l & 1];
        const double *restrict W = m->W[l];
        memcpy(z, m->b[l], no * sizeof(*z));
        for (size_t i = 0; i < ni; i++) {
            double xi = in[i];
            const double *restrict row = W + i * no;
            for (size_t j = 0; j < no; j++)
                z[j] += xi * row[j];
        }
        if (l + 1 < m->nlayers)
            activate(z, no, m->hp.activation);
        in = z;
    }
    return in[0];
}

/* Batched forward; if keep != NULL, keep[l] receives the pre-activation of
 * layer l (B x sizes[l+1]) and acts[l+1] the activation (training). */
static void forward_batch(const drst_model_t *m, const double *x, size_t n, double *y, double *a,
                          double *b2)
{
    const double *in = x;
    double *bufs[2] = {a, b2};
    for (size_t l = 0; l < m->nlayers; l++) {
        size_t ni = m->sizes[l], no = m->sizes[l + 1];
        double *z = bufs[l & 1];
        for (size_t r = 0; r < n; r++)
            memcpy(z + r * no, m->b[l], no * sizeof(*z));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)no, (int)ni, 1.0, in,
                    (int)ni, m->W[l], (int)no, 1.0, z, (int)no);
        if (l + 1 < m->nlayers)
            activate(z, n * no, m->hp.activation);
        in = z;
    }
    memcpy(y, in, n * sizeof(*y));
}

static void mlp_predict(const drst_model_t *m, const double *xs, size_t n, double *y, double *tmp)
{
    size_t w = mlp_scratch_per_row(m) / 2;
    if (n <= SMALL_BATCH) {
        for (size_t r = 0; r < n; r++)
            y[r] = forward_row(m, xs + r * m->nf, tmp, w);
        return;
    }
    forward_batch(m, xs, n, y, tmp, tmp + n * w);
}

/* ------------------------------------------------------- float32 serving */

#define EXP_MASK 0x7ff0000000000000ULL /* exponent bits of a double */

/* The kernels: mlp_f32_kernel.h once per instruction set. FMA keeps one
 * rounding per multiply-add; the portable version rounds twice (a * b + c
 * under -ffp-contract=off), which is the only difference between them. */
#define KN(name) name##_scalar
#define KATTR
#define VT            float
#define VL            1
#define VLOAD(p)      (*(p))
#define VSTORE(p, v)  (*(p) = (v))
#define VSET1(x)      (x)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VRELU(v)      ((v) > 0.0f ? (v) : 0.0f)
#define VHSUM(v)      (v)
#define RA            2
#include "model/mlp_f32_kernel.h"

#ifdef HAVE_AVX2_ADAM
static inline __attribute__((always_inline, target("avx2,fma"))) float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#define KN(name)      name##_avx2
#define KATTR         __attribute__((target("avx2,fma")))
#define VT            __m256
#define VL            8
#define VLOAD(p)      _mm256_loadu_ps(p)
#define VSTORE(p, v)  _mm256_storeu_ps((p), (v))
#define VSET1(x)      _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VRELU(v)      _mm256_max_ps((v), _mm256_setzero_ps())
#define VHSUM(v)      hsum256(v)
#define RA            2
#include "model/mlp_f32_kernel.h"

#define KN(name)      name##_avx512
#define KATTR         __attribute__((target("avx512f")))
#define VT            __m512
#define VL            16
#define VLOAD(p)      _mm512_loadu_ps(p)
#define VSTORE(p, v)  _mm512_storeu_ps((p), (v))
#define VSET1(x)      _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VRELU(v)      _mm512_max_ps((v), _mm512_setzero_ps())
#define VHSUM(v)      _mm512_reduce_add_ps(v)
#define RA            4
#include "model/mlp_f32_kernel.h"
#endif

struct f32_kernels {
    void (*scale)(const double *x, size_t stride, size_t n, size_t nf, const double *mean,
                  const double *inv, float *out, size_t ldo);
    void (*dense)(const float *in, size_t ldi, size_t ni, const float *W, size_t ldw,
                  const float *b, float *out, size_t rows, int relu);
    void (*output)(const float *in, size_t ldi, const float *w, float b, double *y, size_t rows);
};
typedef struct f32_kernels f32_kernels_t;

/* The best kernel this CPU runs; DRST_MLP_KERNEL=scalar|avx2|avx512 asks
 * for another one (tests of every variant on one machine), never for one
 * the CPU lacks. Read when a model is derived, not per prediction. */
static const f32_kernels_t *f32_kernels(void)
{
    static const f32_kernels_t scalar = {scale_scalar, dense_scalar, output_scalar};
    const char *want = getenv("DRST_MLP_KERNEL");
    if (want && !strcmp(want, "scalar"))
        return &scalar;
#ifdef HAVE_AVX2_ADAM
    static const f32_kernels_t avx2 = {scale_avx2, dense_avx2, output_avx2};
    static const f32_kernels_t avx512 = {scale_avx512, dense_avx512, output_avx512};
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (__builtin_cpu_supports("avx512f") && !(want && !strcmp(want, "avx2")))
        return &avx512;
    if (has2)
        return &avx2;
#endif
    return &scalar;
}

/* Padded input width of layer l (the previous layer's padded output). */
static size_t f32_in(const drst_model_t *m, size_t l)
{
    return l == 0 ? pad16(m->sizes[0]) : m->fw[l - 1];
}

/* The float32 copy of the network, 64-byte aligned segments (mlp_f32_kernel.h
 * describes the layout). Derived after training or loading. */
static drst_err_t mlp_derive(drst_model_t *m)
{
    size_t L = m->nlayers, total = 0, off = 0;
    free(m->fblock);
    m->fblock = NULL;
    for (size_t l = 0; l < L; l++) {
        m->fw[l] = l + 1 < L ? pad16(m->sizes[l + 1]) : 16;
        total += (l + 1 < L ? m->sizes[l] * m->fw[l] : f32_in(m, l)) + m->fw[l];
    }
    m->fblock = aligned_alloc(64, total * sizeof(float));
    if (!m->fblock)
        return DRST_ERR_NOMEM;
    memset(m->fblock, 0, total * sizeof(float));
    m->f32k = f32_kernels();
    for (size_t l = 0; l < L; l++) {
        size_t ni = m->sizes[l], no = m->sizes[l + 1];
        size_t ld = l + 1 < L ? m->fw[l] : 1;
        m->fW[l] = m->fblock + off;
        off += l + 1 < L ? ni * m->fw[l] : f32_in(m, l);
        m->fb[l] = m->fblock + off;
        off += m->fw[l];
        for (size_t i = 0; i < ni; i++)
            for (size_t j = 0; j < no; j++)
                m->fW[l][i * ld + j] = (float)m->W[l][i * no + j];
        for (size_t j = 0; j < no; j++)
            m->fb[l][j] = (float)m->b[l][j];
    }
    return DRST_OK;
}

/* Raw rows -> predictions in target units. tmp holds k rows of the padded
 * scaled input and two padded activation buffers (mlp_scratch_per_row()). */
static void mlp_predict_f32(const drst_model_t *m, const double *x, size_t n, size_t stride,
                            double *y, double *tmp)
{
    const f32_kernels_t *k = m->f32k;
    size_t nf = m->nf, nfp = pad16(nf), L = m->nlayers, wp = 16;
    for (size_t l = 0; l + 1 < L; l++)
        wp = m->fw[l] > wp ? m->fw[l] : wp;
    float *xs = (float *)(((uintptr_t)tmp + 63) & ~(uintptr_t)63);
    float *h[2] = {xs + n * nfp, xs + n * nfp + n * wp};
    const float *in = xs;
    k->scale(x, stride, n, nf, m->mean, m->inv_scale, xs, nfp);
    for (size_t l = 0; l + 1 < L; l++) {
        float *out = h[l & 1];
        int gelu_act = m->hp.activation == DRST_ACT_GELU;
        k->dense(in, f32_in(m, l), m->sizes[l], m->fW[l], m->fw[l], m->fb[l], out, n, !gelu_act);
        if (gelu_act)
            for (size_t i = 0; i < n * m->fw[l]; i++)
                out[i] = (float)gelu(out[i]);
        in = out;
    }
    k->output(in, f32_in(m, L - 1), m->fW[L - 1], m->fb[L - 1][0], y, n);
    for (size_t r = 0; r < n; r++)
        y[r] = y[r] * m->y_std + m->y_mean;
}

/* ------------------------------------------------------------------ train */

typedef struct mlp_train {
    size_t L, B;
    double *A[DRST_MODEL_MAX_HIDDEN + 2]; /* activations, A[0] = batch input */
    double *Z[DRST_MODEL_MAX_HIDDEN + 2]; /* pre-activations of layer l (index l) */
    double *G, *G2;                       /* gradient wrt current layer output */
    double *gW[DRST_MODEL_MAX_HIDDEN + 1], *gb[DRST_MODEL_MAX_HIDDEN + 1];
    double *mW[DRST_MODEL_MAX_HIDDEN + 1], *vW[DRST_MODEL_MAX_HIDDEN + 1];
    double *mb[DRST_MODEL_MAX_HIDDEN + 1], *vb[DRST_MODEL_MAX_HIDDEN + 1];
    double *bestW[DRST_MODEL_MAX_HIDDEN + 1], *bestb[DRST_MODEL_MAX_HIDDEN + 1];
} mlp_train_t;

static void train_free(mlp_train_t *t)
{
    for (size_t l = 0; l < DRST_MODEL_MAX_HIDDEN + 2; l++) {
        free(t->A[l]);
        free(t->Z[l]);
    }
    for (size_t l = 0; l < DRST_MODEL_MAX_HIDDEN + 1; l++) {
        free(t->gW[l]);
        free(t->gb[l]);
        free(t->mW[l]);
        free(t->vW[l]);
        free(t->mb[l]);
        free(t->vb[l]);
        free(t->bestW[l]);
        free(t->bestb[l]);
    }
    free(t->G);
    free(t->G2);
}

static double loss_grad(uint32_t loss, const double *yh, const double *y, size_t n, double *g)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = yh[i] - y[i];
        if (loss == DRST_LOSS_MSE) {
            s += d * d;
            if (g)
                g[i] = 2 * d / (double)n;
        } else {
            double ad = fabs(d);
            s += ad < 1 ? 0.5 * d * d : ad - 0.5;
            if (g)
                g[i] = (ad < 1 ? d : (d > 0 ? 1 : -1)) / (double)n;
        }
    }
    return n ? s / (double)n : 0;
}

/* One Adam step with L2 weight decay added to the gradient (as torch's
 * Adam). The step scale 1 / (sqrt(v) + eps) is computed in single precision
 * (a relative error of ~1e-7 on the step size): sqrt and division are the
 * bulk of a training step at these sizes, and libm's sqrt (errno) keeps the
 * compiler from vectorizing, hence the AVX2 version below. Both versions
 * round identically (IEEE sqrt/div, no contraction), so the model bytes do
 * not depend on the CPU. */
static void adam_scalar(double *restrict w, const double *restrict g, double *restrict mo,
                        double *restrict ve, size_t i0, size_t n, double wd, double lr_t)
{
    const double b1 = 0.9, b2 = 0.999;
    for (size_t i = i0; i < n; i++) {
        double gi = g[i] + wd * w[i];
        mo[i] = b1 * mo[i] + (1 - b1) * gi;
        ve[i] = b2 * ve[i] + (1 - b2) * gi * gi;
        float r = 1.0f / (sqrtf((float)ve[i]) + 1e-8f);
        w[i] -= lr_t * mo[i] * (double)r;
    }
}

#ifdef HAVE_AVX2_ADAM
__attribute__((target("avx2"))) static void adam_avx2(double *restrict w, const double *restrict g,
                                                      double *restrict mo, double *restrict ve,
                                                      size_t n, double wd, double lr_t)
{
    const __m256d b1 = _mm256_set1_pd(0.9), c1 = _mm256_set1_pd(1 - 0.9);
    const __m256d b2 = _mm256_set1_pd(0.999), c2 = _mm256_set1_pd(1 - 0.999);
    const __m256d vwd = _mm256_set1_pd(wd), vlr = _mm256_set1_pd(lr_t);
    const __m128 one = _mm_set1_ps(1.0f), eps = _mm_set1_ps(1e-8f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d wi = _mm256_loadu_pd(w + i);
        __m256d gi = _mm256_add_pd(_mm256_loadu_pd(g + i), _mm256_mul_pd(vwd, wi));
        __m256d m =
            _mm256_add_pd(_mm256_mul_pd(b1, _mm256_loadu_pd(mo + i)), _mm256_mul_pd(c1, gi));
        __m256d v = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_loadu_pd(ve + i)),
                                  _mm256_mul_pd(c2, _mm256_mul_pd(gi, gi)));
        _mm256_storeu_pd(mo + i, m);
        _mm256_storeu_pd(ve + i, v);
        __m128 r = _mm_div_ps(one, _mm_add_ps(_mm_sqrt_ps(_mm256_cvtpd_ps(v)), eps));
        __m256d step = _mm256_mul_pd(_mm256_mul_pd(vlr, m), _mm256_cvtps_pd(r));
        _mm256_storeu_pd(w + i, _mm256_sub_pd(wi, step));
    }
    adam_scalar(w, g, mo, ve, i, n, wd, lr_t);
}
#endif

static void adam(double *w, const double *g, double *mo, double *ve, size_t n, double wd,
                 double lr_t, int avx2)
{
#ifdef HAVE_AVX2_ADAM
    if (avx2) {
        adam_avx2(w, g, mo, ve, n, wd, lr_t);
        return;
    }
#endif
    (void)avx2;
    adam_scalar(w, g, mo, ve, 0, n, wd, lr_t);
}

static drst_err_t mlp_train(drst_model_t *m, const train_data_t *d, const drst_train_opts_t *o,
                            char *err, size_t errlen)
{
    mlp_train_t t = {0};
    drst_err_t rc = DRST_OK;
    size_t nf = d->nf, nh = m->hp.n_hidden;
    size_t *perm = NULL;
    double *ybatch = NULL;
    double *pred = NULL, *ptmp = NULL;

    if (o->batch == 0 || o->max_epochs == 0 || !(o->lr > 0) || !(o->weight_decay >= 0))
        return drst_seterr(err, errlen, DRST_ERR_INVAL,
                           "mlp: batch, epochs and learning rate must be positive");
    m->nlayers = nh + 1;
    m->sizes[0] = nf;
    for (size_t l = 0; l < nh; l++) {
        if (m->hp.hidden[l] == 0 || m->hp.hidden[l] > 65536)
            return drst_seterr(err, errlen, DRST_ERR_INVAL, "mlp: hidden layer %zu has %u units",
                               l + 1, m->hp.hidden[l]);
        m->sizes[l + 1] = m->hp.hidden[l];
    }
    m->sizes[nh + 1] = 1;
    const drst_model_t *warm = o->warm_start;
    if (warm) {
        int ok = warm->nlayers == m->nlayers;
        for (size_t l = 0; ok && l <= m->nlayers; l++)
            ok = warm->sizes[l] == m->sizes[l];
        if (!ok)
            return drst_seterr(err, errlen, DRST_ERR_SCHEMA,
                               "mlp: warm-start model has a different layer layout");
    }

    uint64_t rng = m->seed * 0x9e3779b97f4a7c15ULL + 1;
    size_t B = o->batch < d->n_train ? o->batch : d->n_train;
    t.B = B;
    t.L = m->nlayers;
    for (size_t l = 0; l < t.L; l++) {
        size_t ni = m->sizes[l], no = m->sizes[l + 1];
        m->W[l] = malloc(ni * no * sizeof(double));
        m->b[l] = calloc(no, sizeof(double));
        t.gW[l] = malloc(ni * no * sizeof(double));
        t.gb[l] = malloc(no * sizeof(double));
        t.mW[l] = calloc(ni * no, sizeof(double));
        t.vW[l] = calloc(ni * no, sizeof(double));
        t.mb[l] = calloc(no, sizeof(double));
        t.vb[l] = calloc(no, sizeof(double));
        t.bestW[l] = malloc(ni * no * sizeof(double));
        t.bestb[l] = malloc(no * sizeof(double));
        t.Z[l + 1] = malloc(B * no * sizeof(double));
        t.A[l + 1] = malloc(B * no * sizeof(double));
        if (!m->W[l] || !m->b[l] || !t.gW[l] || !t.gb[l] || !t.mW[l] || !t.vW[l] || !t.mb[l] ||
            !t.vb[l] || !t.bestW[l] || !t.bestb[l] || !t.Z[l + 1] || !t.A[l + 1])
            goto nomem;
        if (warm) {
            memcpy(m->W[l], warm->W[l], ni * no * sizeof(double));
            memcpy(m->b[l], warm->b[l], no * sizeof(double));
        } else {
            /* He-uniform for ReLU-like hidden layers, Glorot for the output */
            double lim = l + 1 < t.L ? sqrt(6.0 / (double)ni) : sqrt(6.0 / (double)(ni + no));
            for (size_t i = 0; i < ni * no; i++)
                m->W[l][i] = (2 * model_rng_uniform(&rng) - 1) * lim;
        }
        memcpy(t.bestW[l], m->W[l], ni * no * sizeof(double));
        memcpy(t.bestb[l], m->b[l], no * sizeof(double));
    }
    size_t w = mlp_scratch_per_row(m) / 2;
    t.A[0] = malloc(B * nf * sizeof(double));
    t.G = malloc(B * w * sizeof(double));
    t.G2 = malloc(B * w * sizeof(double));
    perm = malloc(d->n_train * sizeof(*perm));
    ybatch = malloc(B * sizeof(*ybatch));
    size_t nmax = d->n_es > d->n_val ? d->n_es : d->n_val;
    pred = malloc((nmax + 1) * sizeof(double));
    ptmp = malloc((nmax + 1) * 2 * w * sizeof(double));
    if (!t.A[0] || !t.G || !t.G2 || !perm || !ybatch || !pred || !ptmp)
        goto nomem;
    for (size_t i = 0; i < d->n_train; i++)
        perm[i] = i;

    const double b1 = 0.9, b2 = 0.999;
    double b1t = 1, b2t = 1;
#ifdef HAVE_AVX2_ADAM
    int avx2 = __builtin_cpu_supports("avx2");
#else
    int avx2 = 0;
#endif
    double best = INFINITY;
    size_t best_epoch = 0, since = 0, epoch;
    for (epoch = 1; epoch <= o->max_epochs; epoch++) {
        for (size_t i = d->n_train; i > 1; i--) {
            size_t j = (size_t)(model_rng_next(&rng) % i);
            size_t tmp = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = tmp;
        }
        double eloss = 0;
        size_t nb = 0;
        for (size_t off = 0; off < d->n_train; off += B) {
            size_t n = d->n_train - off < B ? d->n_train - off : B;
            for (size_t r = 0; r < n; r++)
                memcpy(t.A[0] + r * nf, d->Xtr + perm[off + r] * nf, nf * sizeof(double));
            /* forward, keeping Z and A */
            for (size_t l = 0; l < t.L; l++) {
                size_t ni = m->sizes[l], no = m->sizes[l + 1];
                double *z = t.Z[l + 1];
                for (size_t r = 0; r < n; r++)
                    memcpy(z + r * no, m->b[l], no * sizeof(double));
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)no, (int)ni,
                            1.0, t.A[l], (int)ni, m->W[l], (int)no, 1.0, z, (int)no);
                memcpy(t.A[l + 1], z, n * no * sizeof(double));
                if (l + 1 < t.L)
                    activate(t.A[l + 1], n * no, m->hp.activation);
            }
            /* loss gradient (output is A[L], n x 1) */
            double *yt = ybatch;
            for (size_t r = 0; r < n; r++)
                yt[r] = d->ytr[perm[off + r]];
            eloss += loss_grad(m->hp.loss, t.A[t.L], yt, n, t.G);
            nb++;
            /* backward */
            for (size_t l = t.L; l-- > 0;) {
                size_t ni = m->sizes[l], no = m->sizes[l + 1];
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ni, (int)no, (int)n, 1.0,
                            t.A[l], (int)ni, t.G, (int)no, 0.0, t.gW[l], (int)no);
                for (size_t j = 0; j < no; j++)
                    t.gb[l][j] = 0;
                for (size_t r = 0; r < n; r++)
                    for (size_t j = 0; j < no; j++)
                        t.gb[l][j] += t.G[r * no + j];
                if (l > 0) {
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)ni, (int)no,
                                1.0, t.G, (int)no, m->W[l], (int)no, 0.0, t.G2, (int)ni);
                    const double *z = t.Z[l];
                    double *g2 = t.G2;
                    if (m->hp.activation == DRST_ACT_GELU) {
                        for (size_t i = 0; i < n * ni; i++)
                            g2[i] *= gelu_grad(z[i]);
                    } else {
                        for (size_t i = 0; i < n * ni; i++)
                            g2[i] = z[i] > 0 ? g2[i] : 0.0;
                    }
                    double *sw = t.G;
                    t.G = t.G2;
                    t.G2 = sw;
                }
            }
            /* Adam step, L2 weight decay on weights */
            b1t *= b1;
            b2t *= b2;
            double lr_t = o->lr * sqrt(1 - b2t) / (1 - b1t);
            for (size_t l = 0; l < t.L; l++) {
                size_t nw = m->sizes[l] * m->sizes[l + 1], no = m->sizes[l + 1];
                adam(m->W[l], t.gW[l], t.mW[l], t.vW[l], nw, o->weight_decay, lr_t, avx2);
                adam(m->b[l], t.gb[l], t.mb[l], t.vb[l], no, 0.0, lr_t, avx2);
            }
        }
        eloss /= (double)(nb ? nb : 1);
        if (!isfinite(eloss)) {
            rc = drst_seterr(err, errlen, DRST_ERR_NUMERIC,
                             "mlp: training loss is not finite at epoch %zu (lower the learning "
                             "rate?)",
                             epoch);
            goto out;
        }
        /* early stopping on the held-out training rows (or the training loss) */
        double score = eloss;
        if (d->n_es) {
            mlp_predict(m, d->Xes, d->n_es, pred, ptmp);
            score = loss_grad(m->hp.loss, pred, d->yes, d->n_es, NULL);
        }
        if (score < best - 1e-12) {
            best = score;
            best_epoch = epoch;
            since = 0;
            for (size_t l = 0; l < t.L; l++) {
                memcpy(t.bestW[l], m->W[l], m->sizes[l] * m->sizes[l + 1] * sizeof(double));
                memcpy(t.bestb[l], m->b[l], m->sizes[l + 1] * sizeof(double));
            }
        } else if (o->patience && ++since >= o->patience) {
            break;
        }
        if (o->progress) {
            drst_train_progress_t p = {epoch, o->max_epochs, eloss, 0};
            if (d->n_val) {
                mlp_predict(m, d->Xval, d->n_val, pred, ptmp);
                p.val_acc20 = model_acc20_scaled(m, pred, d->yval_raw, d->n_val);
            }
            o->progress(o->progress_opaque, &p);
        }
    }
    for (size_t l = 0; l < t.L; l++) {
        memcpy(m->W[l], t.bestW[l], m->sizes[l] * m->sizes[l + 1] * sizeof(double));
        memcpy(m->b[l], t.bestb[l], m->sizes[l + 1] * sizeof(double));
    }
    m->hp.epochs_run = best_epoch;
    goto out;
nomem:
    rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "mlp: out of memory");
out:
    train_free(&t);
    free(perm);
    free(ybatch);
    free(pred);
    free(ptmp);
    return rc;
}

/* ---------------------------------------------------------------- file */

static void mlp_save(const drst_model_t *m, wbuf_t *w)
{
    wbuf_u32(w, (uint32_t)m->nlayers);
    for (size_t l = 0; l <= m->nlayers; l++)
        wbuf_u32(w, (uint32_t)m->sizes[l]);
    for (size_t l = 0; l < m->nlayers; l++) {
        wbuf_f64s(w, m->W[l], m->sizes[l] * m->sizes[l + 1]);
        wbuf_f64s(w, m->b[l], m->sizes[l + 1]);
    }
}

static void mlp_load(drst_model_t *m, rbuf_t *r)
{
    uint32_t L = rbuf_u32(r, "mlp layer count");
    if (r->bad || L == 0 || L > DRST_MODEL_MAX_HIDDEN + 1 || L != m->hp.n_hidden + 1) {
        rbuf_fail(r, "mlp layer count");
        return;
    }
    m->nlayers = L;
    for (size_t l = 0; l <= L; l++) {
        m->sizes[l] = rbuf_u32(r, "mlp layer sizes");
        if (!r->bad && (m->sizes[l] == 0 || m->sizes[l] > 65536))
            rbuf_fail(r, "mlp layer sizes");
    }
    if (!r->bad && (m->sizes[0] != m->nf || m->sizes[L] != 1))
        rbuf_fail(r, "mlp layer sizes");
    for (size_t l = 0; l < L && !r->bad; l++) {
        m->W[l] = rbuf_f64s(r, m->sizes[l] * m->sizes[l + 1], "mlp weights");
        m->b[l] = rbuf_f64s(r, m->sizes[l + 1], "mlp biases");
    }
}

const struct drst_model_ops drst_model_mlp_ops = {
    .name = "mlp",
    .family = DRST_MODEL_MLP,
    .train = mlp_train,
    .save = mlp_save,
    .load = mlp_load,
    .predict = mlp_predict,
    .scratch_per_row = mlp_scratch_per_row,
    .derive = mlp_derive,
    .predict_f32 = mlp_predict_f32,
};
