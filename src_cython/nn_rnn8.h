/*
 * nn_rnn8.h -- the time loops of 8-unit recurrent cells with each row's
 * state in one vector register: SimpleRNN, LSTM and GRU, forward and the
 * element-wise half of backpropagation through time.
 *
 * Why a kernel for one width.  The book's chapter-9 models all have 8 units.
 * The general loops of recurrent.pyx walk a block of rows gate by gate: per
 * step they copy every row into gate-major scratch, call the array sigmoid
 * and tanh on 128-element pieces and copy everything back out, and those
 * element loops are compiled for the baseline CPU.  For 8 units a row's h, c
 * and every gate are exactly one 8-float vector, so here a step is a handful
 * of vector instructions per row:
 *
 *   forward   z_g = XW[row, t, g] + b_g + sum_j h[j] * U[j, g]   (g: gate block)
 *             then the cell's gates, the new state, the caches
 *   backward  dL/dz_g from the cached gates, then dh_{t-1} = sum_g dz_g U_g^T
 *
 * with the scalars h[j] / dz[k] broadcast from the row just written.
 *
 * Why several rows at once.  One row's step is a chain: the product waits
 * for h, the gates for the product, the next step for the gates.  Four rows
 * (NN_R8_ROWS) are interleaved instruction by instruction, so one row's
 * latency is covered by the others' work, and each loaded vector of U or U^T
 * serves four rows.  A group of rows runs all T steps before the next group
 * starts: each row then streams through its own contiguous caches.
 *
 * Rows never interact, so how rows are grouped or split between threads
 * cannot change a single bit.  The weight gradients are not summed here:
 * recurrent.pyx gets dU = H^T . dZ as one GEMM over all B*T rows afterwards
 * (H: the cached states before each step), which is bitwise the same for any
 * thread count too.
 *
 * The maths is the general loops' (and the NumPy twin's, nncore/ops/
 * recurrent.py), in the same order of operations where that is natural;
 * sigmoid and tanh are nn_vmath.h's, instantiated for an 8-float vector.
 *
 * Compiled once per CPU level (nn_level.c) and reached through nn_dispatch.h;
 * without GCC/Clang vector extensions the entry points return 0 and the
 * caller runs the general loops.
 */
#ifndef NN_RNN8_H
#define NN_RNN8_H

#ifndef NN_KERNEL_LEVEL
#include "nn_dispatch.h"
#else

#include <string.h>
#include "nn_vmath.h"

#if NN_HAVE_VSIGMOID

typedef float nn_r8 __attribute__((vector_size(32), aligned(sizeof(float))));
typedef int nn_r8i __attribute__((vector_size(32), aligned(sizeof(int))));
/* what nn_r8_ld / nn_r8_st read and write through: any float address, as
 * nn_gemm_impl.h and nn_conv1c.h do.  Not memcpy: GCC 12 at generic tuning
 * copies 32 bytes by 16-byte pieces into a stack slot and reloads it as one
 * vector, a store-forwarding stall on every load (measured: the input
 * projection of an LSTM step 17x slower than its arithmetic). */
typedef float nn_r8u __attribute__((vector_size(32), aligned(sizeof(float)), may_alias));
#if defined(__AVX__)
#include <immintrin.h>
/* one blend instruction instead of three bit operations: the selects are a
 * good part of sigmoid and tanh, which are most of an LSTM step */
static inline nn_r8 nn_r8_select(nn_r8i mask, nn_r8 a, nn_r8 b)
{
    return (nn_r8)_mm256_blendv_ps((__m256)b, (__m256)a, (__m256)mask);
}
#else
NN_VM_SELECT_GENERIC(nn_r8, nn_r8i, nn_r8_select)
#endif
NN_VM_DEFINE(nn_r8, nn_r8i, nn_r8_select, nn_r8_sigmoid, nn_r8_tanh)

/* rows interleaved per group (see the header comment) */
#define NN_R8_ROWS 4
/* the per-(cell, group size) copies are specialised by the compiler */
#define NN_R8_INLINE static inline __attribute__((always_inline))
/* Loops over the rows of a group, the gate blocks and the 8 units must be
 * unrolled completely: only then do the per-row accumulators live in
 * registers instead of an indexed array on the stack (measured: 3x slower). */
#if defined(__clang__)
#define NN_R8_UNROLL _Pragma("unroll")
#else
#define NN_R8_UNROLL _Pragma("GCC unroll 8")
#endif

/* activation codes of recurrent.pyx and the twin (ACT_CODES) */
enum { NN_R8_LINEAR = 0, NN_R8_RELU = 1, NN_R8_SIGMOID = 2, NN_R8_TANH = 3 };

static inline nn_r8 nn_r8_ld(const float *p)
{
    return *(const nn_r8u *)p;
}

static inline void nn_r8_st(float *p, nn_r8 v)
{
    *(nn_r8u *)p = v;
}

static inline nn_r8 nn_r8_act(int code, nn_r8 v)
{
    const nn_r8 zero = {0};
    switch (code) {
    case NN_R8_SIGMOID: return nn_r8_sigmoid(v);
    case NN_R8_TANH: return nn_r8_tanh(v);
    case NN_R8_RELU: return nn_r8_select(v < 0, zero, v);     /* NaN stays NaN */
    default: return v;
    }
}

/* d act / dz written through the output a = act(z) */
static inline nn_r8 nn_r8_dact(int code, nn_r8 a)
{
    const nn_r8 zero = {0}, one = zero + 1.0f;
    switch (code) {
    case NN_R8_TANH: return one - a * a;
    case NN_R8_SIGMOID: return a * (one - a);
    case NN_R8_RELU: return nn_r8_select(a > 0, one, zero);
    default: return one;
    }
}

/* sum of squares in double: one step's share of ||dL/dh_t||^2 */
static inline double nn_r8_sumsq(nn_r8 v)
{
    float a[8];
    double s = 0;
    memcpy(a, &v, sizeof(a));
    for (int c = 0; c < 8; c++)
        s += (double)a[c] * (double)a[c];
    return s;
}

/* A masked step keeps the state and repeats the previous output (0 at t = 0). */
static inline void nn_r8_masked_out(float *out_row, long t)
{
    const nn_r8 zero = {0};
    nn_r8_st(out_row, t > 0 ? nn_r8_ld(out_row - 8) : zero);
}

/* ACC[q][g] += sum_{j<8} S[q*SQ + g*SG + j] * M[j*LDM + g*MG + 0:8] for q < R,
 * g < NG: the recurrent product of a group of rows, forward (S: the rows' h or
 * r*h, M: U) and backward (S: their dz, M: U^T).  Each loaded vector of M
 * serves all R rows, and every accumulator adds its terms in j order.  A
 * macro, not a function: the accumulators must stay the caller's registers. */
#define NN_R8_PRODUCT(R, NG, ACC, S, SQ, SG, M, LDM, MG)                        \
    do {                                                                       \
        NN_R8_UNROLL                                                           \
        for (int j_ = 0; j_ < 8; j_++) {                                       \
            nn_r8 m_[4];                                                       \
            NN_R8_UNROLL                                                       \
            for (int g_ = 0; g_ < (NG); g_++)                                  \
                m_[g_] = nn_r8_ld((M) + j_ * (LDM) + g_ * (MG));               \
            NN_R8_UNROLL                                                       \
            for (int q_ = 0; q_ < (R); q_++) {                                 \
                NN_R8_UNROLL                                                   \
                for (int g_ = 0; g_ < (NG); g_++)                              \
                    (ACC)[q_][g_] += (S)[q_ * (SQ) + g_ * (SG) + j_] * m_[g_]; \
            }                                                                  \
        }                                                                      \
    } while (0)

/* --------------------------------------------------- small row products */

/* Y[r, 0:8*NV] = sum_k X[r, k] * xm[k] * M[k, 0:8*NV] for r < n (xm: NULL for
 * none; row strides ldx, ldm, ldy): the input projection of a group's rows.  Two rows
 * share each loaded vector of M.  Each Y element is one sum in k order,
 * whatever rows are computed together. */
NN_R8_INLINE void nn_r8_rows_nv(const int NV, long n, const float *X, long ldx, long K,
                                const float *xm, const float *M, long ldm, float *Y,
                                long ldy)
{
    const nn_r8 zero = {0};
    long r = 0;
    for (; r < n; r += 2) {
        const int two = r + 1 < n;
        nn_r8 a0[4], a1[4];
        NN_R8_UNROLL
        for (int v = 0; v < NV; v++)
            a0[v] = a1[v] = zero;
        const float *x0 = X + r * ldx, *x1 = X + (r + two) * ldx;
        for (long k = 0; k < K; k++) {
            float s0 = x0[k], s1 = x1[k];
            if (xm) {
                s0 *= xm[k];
                s1 *= xm[k];
            }
            NN_R8_UNROLL
            for (int v = 0; v < NV; v++) {
                nn_r8 m = nn_r8_ld(M + k * ldm + 8 * v);
                a0[v] += s0 * m;
                a1[v] += s1 * m;
            }
        }
        NN_R8_UNROLL
        for (int v = 0; v < NV; v++) {
            nn_r8_st(Y + r * ldy + 8 * v, a0[v]);
            if (two)
                nn_r8_st(Y + (r + 1) * ldy + 8 * v, a1[v]);
        }
    }
}

/* nn_r8_rows_nv for NV = nv (1..4) */
static inline void nn_r8_rows(int nv, long n, const float *X, long ldx, long K,
                              const float *xm, const float *M, long ldm, float *Y, long ldy)
{
    switch (nv) {
    case 1: nn_r8_rows_nv(1, n, X, ldx, K, xm, M, ldm, Y, ldy); break;
    case 2: nn_r8_rows_nv(2, n, X, ldx, K, xm, M, ldm, Y, ldy); break;
    case 3: nn_r8_rows_nv(3, n, X, ldx, K, xm, M, ldm, Y, ldy); break;
    default: nn_r8_rows_nv(4, n, X, ldx, K, xm, M, ldm, Y, ldy); break;
    }
}

/* ------------------------------------------------------------------ forward */

NN_R8_INLINE void nn_r8_simple_fwd(const int R, int act, long i0, long T, const float *XW,
                                   const float *U, const float *b_in, const float *h0,
                                   const unsigned char *mask, float *out, float *Hp,
                                   float *hT, float *Gt)
{
    const nn_r8 zero = {0};
    const nn_r8 b = b_in ? nn_r8_ld(b_in) : zero;
    nn_r8 h[NN_R8_ROWS], z[NN_R8_ROWS][1];
    NN_R8_UNROLL
    for (int q = 0; q < R; q++)
        h[q] = nn_r8_ld(h0 + (i0 + q) * 8);
    for (long t = 0; t < T; t++) {
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            nn_r8_st(Hp + row * 8, h[q]);
            z[q][0] = nn_r8_ld(XW + row * 8) + b;
        }
        NN_R8_PRODUCT(R, 1, z, Hp + (i0 * T + t) * 8, T * 8, 0, U, 8, 0);
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            nn_r8 a = nn_r8_act(act, z[q][0]);
            nn_r8_st(Gt + row * 8, a);
            if (mask && !mask[row]) {
                nn_r8_masked_out(out + row * 8, t);
                continue;
            }
            h[q] = a;
            nn_r8_st(out + row * 8, a);
        }
    }
    NN_R8_UNROLL
    for (int q = 0; q < R; q++)
        nn_r8_st(hT + (i0 + q) * 8, h[q]);
}

NN_R8_INLINE void nn_r8_lstm_fwd(const int R, int act, int ract, long i0, long T,
                                 const float *XW, const float *U, const float *b_in,
                                 const float *h0, const float *c0,
                                 const unsigned char *mask, float *out, float *Hp,
                                 float *Cp, float *hT, float *cT, float *Gt, float *Ex)
{
    const nn_r8 zero = {0};
    nn_r8 b[4], h[NN_R8_ROWS], c[NN_R8_ROWS], z[NN_R8_ROWS][4];
    NN_R8_UNROLL
    for (int g = 0; g < 4; g++)
        b[g] = b_in ? nn_r8_ld(b_in + 8 * g) : zero;
    NN_R8_UNROLL
    for (int q = 0; q < R; q++) {
        h[q] = nn_r8_ld(h0 + (i0 + q) * 8);
        c[q] = nn_r8_ld(c0 + (i0 + q) * 8);
    }
    for (long t = 0; t < T; t++) {
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            nn_r8_st(Hp + row * 8, h[q]);
            nn_r8_st(Cp + row * 8, c[q]);
            NN_R8_UNROLL
            for (int g = 0; g < 4; g++)
                z[q][g] = nn_r8_ld(XW + row * 32 + 8 * g) + b[g];
        }
        NN_R8_PRODUCT(R, 4, z, Hp + (i0 * T + t) * 8, T * 8, 0, U, 32, 8);
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            nn_r8 ig = nn_r8_act(ract, z[q][0]), fg = nn_r8_act(ract, z[q][1]);
            nn_r8 gg = nn_r8_act(act, z[q][2]), og = nn_r8_act(ract, z[q][3]);
            nn_r8 cn = fg * c[q] + ig * gg;
            nn_r8 ac = nn_r8_act(act, cn);
            float *gt = Gt + row * 32;
            nn_r8_st(gt, ig);
            nn_r8_st(gt + 8, fg);
            nn_r8_st(gt + 16, gg);
            nn_r8_st(gt + 24, og);
            nn_r8_st(Ex + row * 8, ac);
            if (mask && !mask[row]) {
                nn_r8_masked_out(out + row * 8, t);
                continue;
            }
            h[q] = og * ac;
            c[q] = cn;
            nn_r8_st(out + row * 8, h[q]);
        }
    }
    NN_R8_UNROLL
    for (int q = 0; q < R; q++) {
        nn_r8_st(hT + (i0 + q) * 8, h[q]);
        nn_r8_st(cT + (i0 + q) * 8, c[q]);
    }
}

NN_R8_INLINE void nn_r8_gru_fwd(const int R, int act, int ract, int reset_after, long i0,
                                long T, const float *XW, const float *U, const float *b_in,
                                const float *b_rec, const float *h0,
                                const unsigned char *mask, float *out, float *Hp,
                                float *hT, float *Gt, float *Ex)
{
    const nn_r8 zero = {0}, one = zero + 1.0f;
    nn_r8 b[3], br[3], h[NN_R8_ROWS], x[NN_R8_ROWS][3], hu[NN_R8_ROWS][3];
    nn_r8 zg[NN_R8_ROWS], rg[NN_R8_ROWS], ng[NN_R8_ROWS];
    NN_R8_UNROLL
    for (int g = 0; g < 3; g++) {
        b[g] = b_in ? nn_r8_ld(b_in + 8 * g) : zero;
        br[g] = b_rec ? nn_r8_ld(b_rec + 8 * g) : zero;
    }
    NN_R8_UNROLL
    for (int q = 0; q < R; q++)
        h[q] = nn_r8_ld(h0 + (i0 + q) * 8);
    for (long t = 0; t < T; t++) {
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            nn_r8_st(Hp + row * 8, h[q]);
            NN_R8_UNROLL
            for (int g = 0; g < 3; g++)
                x[q][g] = nn_r8_ld(XW + row * 24 + 8 * g) + b[g];
        }
        if (reset_after) {
            /* z, r = ract(x + (h U + b_rec)),  n = act(x_n + r * (h U_n + b_rec_n)) */
            NN_R8_UNROLL
            for (int q = 0; q < R; q++)
                NN_R8_UNROLL
                for (int g = 0; g < 3; g++)
                    hu[q][g] = br[g];
            NN_R8_PRODUCT(R, 3, hu, Hp + (i0 * T + t) * 8, T * 8, 0, U, 24, 8);
            NN_R8_UNROLL
            for (int q = 0; q < R; q++) {
                long row = (i0 + q) * T + t;
                zg[q] = nn_r8_act(ract, x[q][0] + hu[q][0]);
                rg[q] = nn_r8_act(ract, x[q][1] + hu[q][1]);
                ng[q] = nn_r8_act(act, x[q][2] + rg[q] * hu[q][2]);
                nn_r8_st(Ex + row * 8, hu[q][2]);
            }
        } else {
            /* z, r = ract(x + h U),  n = act(x_n + (r * h) U_n) */
            NN_R8_PRODUCT(R, 2, x, Hp + (i0 * T + t) * 8, T * 8, 0, U, 24, 8);
            NN_R8_UNROLL
            for (int q = 0; q < R; q++) {
                long row = (i0 + q) * T + t;
                zg[q] = nn_r8_act(ract, x[q][0]);
                rg[q] = nn_r8_act(ract, x[q][1]);
                nn_r8_st(Ex + row * 8, rg[q] * h[q]);
                hu[q][0] = x[q][2];
            }
            NN_R8_PRODUCT(R, 1, hu, Ex + (i0 * T + t) * 8, T * 8, 0, U + 16, 24, 0);
            NN_R8_UNROLL
            for (int q = 0; q < R; q++)
                ng[q] = nn_r8_act(act, hu[q][0]);
        }
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            float *gt = Gt + row * 24;
            nn_r8_st(gt, zg[q]);
            nn_r8_st(gt + 8, rg[q]);
            nn_r8_st(gt + 16, ng[q]);
            if (mask && !mask[row]) {
                nn_r8_masked_out(out + row * 8, t);
                continue;
            }
            h[q] = zg[q] * h[q] + (one - zg[q]) * ng[q];
            nn_r8_st(out + row * 8, h[q]);
        }
    }
    NN_R8_UNROLL
    for (int q = 0; q < R; q++)
        nn_r8_st(hT + (i0 + q) * 8, h[q]);
}

NN_R8_INLINE void nn_r8_fwd_group(const int R, int cell, int act, int ract, int reset_after,
                                  long i0, long T, const float *XW, const float *U,
                                  const float *b_in, const float *b_rec, const float *h0,
                                  const float *c0, const unsigned char *mask, float *out,
                                  float *Hp, float *Cp, float *hT, float *cT, float *Gt,
                                  float *Ex)
{
    if (cell == 0)
        nn_r8_simple_fwd(R, act, i0, T, XW, U, b_in, h0, mask, out, Hp, hT, Gt);
    else if (cell == 1)
        nn_r8_lstm_fwd(R, act, ract, i0, T, XW, U, b_in, h0, c0, mask, out, Hp, Cp, hT, cT,
                       Gt, Ex);
    else
        nn_r8_gru_fwd(R, act, ract, reset_after, i0, T, XW, U, b_in, b_rec, h0, mask, out,
                      Hp, hT, Gt, Ex);
}

/* ----------------------------------------------------------------- backward */

/* The start of a backward step for one row: returns 1 with *dh = dL/dh_t for
 * a live step, 0 for a masked one.  A masked step passes dL/d(output) on to
 * the step before (its output was that step's) and leaves the carried
 * gradients alone; its dXW row is 0. */
NN_R8_INLINE int nn_r8_bwd_begin(long row, long i, long t, long T, int seq, const float *dO,
                                 const unsigned char *mask, nn_r8 *dout, nn_r8 dsh,
                                 nn_r8 *dh, float *dxw, int G, double *nrm)
{
    const nn_r8 zero = {0};
    const float *go = seq ? dO + row * 8 : (t == T - 1 ? dO + i * 8 : NULL);
    if (mask && !mask[row]) {
        if (go)
            *dout = *dout + nn_r8_ld(go);
        NN_R8_UNROLL
        for (int g = 0; g < G; g++)
            nn_r8_st(dxw + 8 * g, zero);
        nrm[row] = 0;
        return 0;
    }
    nn_r8 g = *dout;
    if (go)
        g = nn_r8_ld(go) + g;
    *dh = dsh + g;
    *dout = zero;
    nrm[row] = nn_r8_sumsq(*dh);
    return 1;
}

NN_R8_INLINE void nn_r8_simple_bwd(const int R, int act, long i0, long T, const float *UT,
                                   const unsigned char *mask, const float *Gt,
                                   const float *dO, int seq, float *dXW, double *nrm)
{
    const nn_r8 zero = {0};
    nn_r8 dsh[NN_R8_ROWS], dout[NN_R8_ROWS], acc[NN_R8_ROWS][1], dh;
    int live[NN_R8_ROWS];
    NN_R8_UNROLL
    for (int q = 0; q < R; q++)
        dsh[q] = dout[q] = zero;
    for (long t = T - 1; t >= 0; t--) {
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            live[q] = nn_r8_bwd_begin(row, i0 + q, t, T, seq, dO, mask, &dout[q], dsh[q], &dh,
                                      dXW + row * 8, 1, nrm);
            if (live[q])
                nn_r8_st(dXW + row * 8, dh * nn_r8_dact(act, nn_r8_ld(Gt + row * 8)));
            acc[q][0] = zero;
        }
        NN_R8_PRODUCT(R, 1, acc, dXW + (i0 * T + t) * 8, T * 8, 0, UT, 8, 0);
        NN_R8_UNROLL
        for (int q = 0; q < R; q++)
            if (live[q])
                dsh[q] = acc[q][0];
    }
}

NN_R8_INLINE void nn_r8_lstm_bwd(const int R, int act, int ract, long i0, long T,
                                 const float *UT, const unsigned char *mask, const float *Cp,
                                 const float *Gt, const float *Ex, const float *dO, int seq,
                                 float *dXW, double *nrm)
{
    const nn_r8 zero = {0};
    nn_r8 dsh[NN_R8_ROWS], dsc[NN_R8_ROWS], dout[NN_R8_ROWS], acc[NN_R8_ROWS][4], dh;
    int live[NN_R8_ROWS];
    NN_R8_UNROLL
    for (int q = 0; q < R; q++)
        dsh[q] = dsc[q] = dout[q] = zero;
    for (long t = T - 1; t >= 0; t--) {
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            float *dz = dXW + row * 32;
            NN_R8_UNROLL
            for (int g = 0; g < 4; g++)
                acc[q][g] = zero;
            live[q] = nn_r8_bwd_begin(row, i0 + q, t, T, seq, dO, mask, &dout[q], dsh[q], &dh,
                                      dz, 4, nrm);
            if (!live[q])
                continue;
            const float *gt = Gt + row * 32;
            nn_r8 ig = nn_r8_ld(gt), fg = nn_r8_ld(gt + 8);
            nn_r8 gg = nn_r8_ld(gt + 16), og = nn_r8_ld(gt + 24);
            nn_r8 ac = nn_r8_ld(Ex + row * 8), cp = nn_r8_ld(Cp + row * 8);
            nn_r8 dc = dsc[q] + dh * og * nn_r8_dact(act, ac);
            nn_r8_st(dz, dc * gg * nn_r8_dact(ract, ig));
            nn_r8_st(dz + 8, dc * cp * nn_r8_dact(ract, fg));
            nn_r8_st(dz + 16, dc * ig * nn_r8_dact(act, gg));
            nn_r8_st(dz + 24, dh * ac * nn_r8_dact(ract, og));
            dsc[q] = dc * fg;
        }
        /* dh_{t-1} = sum_g dz_g U_g^T, one accumulator per gate block */
        NN_R8_PRODUCT(R, 4, acc, dXW + (i0 * T + t) * 32, T * 32, 8, UT, 8, 64);
        NN_R8_UNROLL
        for (int q = 0; q < R; q++)
            if (live[q])
                dsh[q] = (acc[q][0] + acc[q][1]) + (acc[q][2] + acc[q][3]);
    }
}

NN_R8_INLINE void nn_r8_gru_bwd(const int R, int act, int ract, int reset_after, long i0,
                                long T, const float *UT, const unsigned char *mask,
                                const float *Hp, const float *Gt, const float *Ex,
                                const float *dO, int seq, float *dXW, float *DIn,
                                double *nrm)
{
    const nn_r8 zero = {0}, one = zero + 1.0f;
    nn_r8 dsh[NN_R8_ROWS], dout[NN_R8_ROWS], dhp[NN_R8_ROWS], dh;
    nn_r8 acc[NN_R8_ROWS][2], accn[NN_R8_ROWS][1];     /* z, r blocks; n block */
    int live[NN_R8_ROWS];
    NN_R8_UNROLL
    for (int q = 0; q < R; q++)
        dsh[q] = dout[q] = zero;
    for (long t = T - 1; t >= 0; t--) {
        NN_R8_UNROLL
        for (int q = 0; q < R; q++) {
            long row = (i0 + q) * T + t;
            float *dz = dXW + row * 24;
            acc[q][0] = acc[q][1] = accn[q][0] = zero;
            live[q] = nn_r8_bwd_begin(row, i0 + q, t, T, seq, dO, mask, &dout[q], dsh[q], &dh,
                                      dz, 3, nrm);
            if (!live[q]) {
                if (reset_after)
                    nn_r8_st(DIn + row * 8, zero);
                continue;
            }
            const float *gt = Gt + row * 24;
            nn_r8 zg = nn_r8_ld(gt), rg = nn_r8_ld(gt + 8), ng = nn_r8_ld(gt + 16);
            nn_r8 hp = nn_r8_ld(Hp + row * 8);
            nn_r8 dn = dh * (one - zg) * nn_r8_dact(act, ng);
            nn_r8_st(dz, dh * (hp - ng) * nn_r8_dact(ract, zg));
            nn_r8_st(dz + 16, dn);
            dhp[q] = dh * zg;
            if (reset_after) {
                /* n = act(x_n + r * hh), hh = h U_n + b_rec_n (cached in Ex) */
                nn_r8_st(dz + 8, dn * nn_r8_ld(Ex + row * 8) * nn_r8_dact(ract, rg));
                nn_r8_st(DIn + row * 8, dn * rg);
            }
        }
        if (reset_after) {
            NN_R8_PRODUCT(R, 1, accn, DIn + (i0 * T + t) * 8, T * 8, 0, UT + 128, 8, 0);
        } else {
            /* n = act(x_n + (r * h) U_n): d(r * h) = dn U_n^T */
            NN_R8_PRODUCT(R, 1, accn, dXW + (i0 * T + t) * 24 + 16, T * 24, 0, UT + 128, 8, 0);
            NN_R8_UNROLL
            for (int q = 0; q < R; q++) {
                if (!live[q])
                    continue;
                long row = (i0 + q) * T + t;
                nn_r8 rg = nn_r8_ld(Gt + row * 24 + 8), hp = nn_r8_ld(Hp + row * 8);
                nn_r8_st(dXW + row * 24 + 8, accn[q][0] * hp * nn_r8_dact(ract, rg));
                dhp[q] = dhp[q] + accn[q][0] * rg;
                accn[q][0] = zero;
            }
        }
        NN_R8_PRODUCT(R, 2, acc, dXW + (i0 * T + t) * 24, T * 24, 8, UT, 8, 64);
        NN_R8_UNROLL
        for (int q = 0; q < R; q++)
            if (live[q])
                dsh[q] = dhp[q] + ((acc[q][0] + acc[q][1]) + accn[q][0]);
    }
}

NN_R8_INLINE void nn_r8_bwd_group(const int R, int cell, int act, int ract, int reset_after,
                                  long i0, long T, const float *UT, const unsigned char *mask,
                                  const float *Hp, const float *Cp, const float *Gt,
                                  const float *Ex, const float *dO, int seq, float *dXW,
                                  float *DIn, double *nrm)
{
    if (cell == 0)
        nn_r8_simple_bwd(R, act, i0, T, UT, mask, Gt, dO, seq, dXW, nrm);
    else if (cell == 1)
        nn_r8_lstm_bwd(R, act, ract, i0, T, UT, mask, Cp, Gt, Ex, dO, seq, dXW, nrm);
    else
        nn_r8_gru_bwd(R, act, ract, reset_after, i0, T, UT, mask, Hp, Gt, Ex, dO, seq, dXW,
                      DIn, nrm);
}

#endif /* NN_HAVE_VSIGMOID */

/* --------------------------------------------------------- entry points
 * Without vector extensions (NN_HAVE_VSIGMOID 0) they do nothing and return
 * 0: recurrent.pyx asks nn_rnn8_available() first and runs its general loops. */

static inline int nn_rnn8_available(void)
{
    return NN_HAVE_VSIGMOID;
}

/* Forward of rows r0 <= i < r1, all T steps (cell 0 SimpleRNN, 1 LSTM, 2 GRU;
 * the buffers of recurrent_forward, units = 8, no recurrent dropout).
 * With x (B, T, F) given, the input projection XW = (x * dpm) . W of each
 * group's rows is computed here first, just before its time loop reads it
 * (dpm: the (B, F) dropout mask or NULL); with x NULL, XW is already filled.
 * Returns 1 (0: not built here, run the general loop). */
static inline int nn_rnn8_forward(int cell, int act, int ract, int reset_after, long r0,
                                  long r1, long T, const float *x, long F, const float *W,
                                  const float *dpm, float *XW, const float *U,
                                  const float *b_in, const float *b_rec, const float *h0,
                                  const float *c0, const unsigned char *mask, float *out,
                                  float *Hp, float *Cp, float *hT, float *cT, float *Gt,
                                  float *Ex)
{
#if NN_HAVE_VSIGMOID
    const int G = cell == 0 ? 1 : (cell == 1 ? 4 : 3);
    long i = r0;
    while (i < r1) {
        long nr = r1 - i >= NN_R8_ROWS ? NN_R8_ROWS : 1;
        if (x)
            for (long q = i; q < i + nr; q++)
                nn_r8_rows(G, T, x + q * T * F, F, F, dpm ? dpm + q * F : NULL, W, 8 * G,
                           XW + q * T * 8 * G, 8 * G);
        if (nr == NN_R8_ROWS)
            nn_r8_fwd_group(NN_R8_ROWS, cell, act, ract, reset_after, i, T, XW, U, b_in,
                            b_rec, h0, c0, mask, out, Hp, Cp, hT, cT, Gt, Ex);
        else
            nn_r8_fwd_group(1, cell, act, ract, reset_after, i, T, XW, U, b_in, b_rec, h0, c0,
                            mask, out, Hp, Cp, hT, cT, Gt, Ex);
        i += nr;
    }
    return 1;
#else
    return 0;
#endif
}

/* The element-wise half of BPTT for rows r0 <= i < r1 (units = 8, no
 * recurrent dropout): fills dXW (B, T, G*8) with dL/d(gate pre-activations),
 * for GRU reset_after DIn (B, T, 8) with dL/d(h U_n + b_rec_n) = dn * r, and
 * nrm (B, T) with each step's ||dL/dh_t||^2 per row.  UT: U transposed
 * (G*8, 8).  Returns 1 (0: not built here). */
static inline int nn_rnn8_backward(int cell, int act, int ract, int reset_after, long r0,
                                   long r1, long T, const float *UT,
                                   const unsigned char *mask, const float *Hp,
                                   const float *Cp, const float *Gt, const float *Ex,
                                   const float *dO, int seq, float *dXW, float *DIn,
                                   double *nrm)
{
#if NN_HAVE_VSIGMOID
    long i = r0;
    while (i < r1) {
        long nr = r1 - i >= NN_R8_ROWS ? NN_R8_ROWS : 1;
        if (nr == NN_R8_ROWS)
            nn_r8_bwd_group(NN_R8_ROWS, cell, act, ract, reset_after, i, T, UT, mask, Hp, Cp,
                            Gt, Ex, dO, seq, dXW, DIn, nrm);
        else
            nn_r8_bwd_group(1, cell, act, ract, reset_after, i, T, UT, mask, Hp, Cp, Gt, Ex,
                            dO, seq, dXW, DIn, nrm);
        i += nr;
    }
    return 1;
#else
    return 0;
#endif
}
#endif /* NN_KERNEL_LEVEL */
#endif /* NN_RNN8_H */
