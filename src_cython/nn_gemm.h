/*
 * nn_gemm.h -- nncore's own cache-blocked, register-tiled GEMM.
 *
 *     C[M x N]  =  op(A)[M x K] . op(B)[K x N]        (accumulate == 0)
 *     C[M x N] +=  op(A)[M x K] . op(B)[K x N]        (accumulate != 0)
 *
 * All matrices are row-major.  op(A) = A (stored M x K, row stride lda) or
 * A^T (stored K x M); op(B) = B (stored K x N) or B^T (stored N x K).  Those
 * three forms cover a dense layer:  Z = X.W,  dW = X^T.dZ,  dX = dZ.W^T.
 *
 * Why a C header and not Cython: the inner "microkernel" must keep an
 * MR x NR tile of C in vector registers for the whole K loop.  GCC/Clang's
 * vector extensions say exactly that, portably across SSE2 / AVX2 / AVX-512
 * (the vector width follows the -march the extension was built for).  The
 * Cython modules include this header; every kernel that needs a matrix
 * product (the per-batch wrappers and the fused training loop) calls these
 * same two functions, so there is one GEMM in nncore.
 *
 * The structure is the classic Goto/BLIS one:
 *   - the output is cut into fixed MC x NC tasks (fixed sizes, never derived
 *     from the thread count, so every C element is summed in the same order
 *     whatever the number of threads: results are bitwise reproducible);
 *   - for each KC-slice of K, the task packs its A block into MR-row strips
 *     and its B block into NR-column strips (zero padded), which makes the
 *     microkernel's loads contiguous and aligned whatever op(A)/op(B) are;
 *   - the microkernel multiplies one MR x KC strip by one KC x NR strip;
 *   - small products (a training batch: M = 32, or N = 100 units) skip most
 *     packing: when a strip would be reused only a few times, copying it
 *     costs more than it saves, so full strips of A and/or B are read in
 *     place through their strides and only the ragged edges are packed.
 *     Narrow kernels (one vector, half a vector) cover a thin right edge
 *     (N = 100 -> 104 columns computed, not 128).
 * Tasks are spread over OpenMP threads only when the product is large enough
 * to pay for waking them (see nn_gemm_threads).
 *
 * Every thread that runs it sets flush-to-zero / denormals-are-zero for the
 * duration of the call (see nn_fpu.h) and restores its previous mode.
 */
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <stdlib.h>
#include <string.h>
#include "nn_fpu.h"
#include "nn_omp.h"

#if defined(__AVX512F__)
#define NN_VBYTES 64
#define NN_MR 8
#elif defined(__AVX__)
#define NN_VBYTES 32
#define NN_MR 6
#else
#define NN_VBYTES 16
#define NN_MR 4
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NN_HAVE_VEC 1
#else
#define NN_HAVE_VEC 0
#endif

/* Block sizes (elements).  KC x NR strip of B ~ L1, MC x KC block of A ~ L2. */
#define NN_KC 256
#define NN_MC 96
#define NN_NC 512
/* With at most this many rows (e.g. a training batch), B is read in place:
 * each B strip is reused by only M / MR microkernel calls, too few to repay
 * copying it; so is a B small enough to stay in L1 (K * N <= 4096, e.g. the
 * dZ of a kernel gradient).  Otherwise B is packed (contiguous, TLB-friendly
 * strips). */
#define NN_DIRECT_B_MAX_M 128
/* Likewise A's full MR-row strips are read in place (through strides, for A
 * or its transpose) when few B strips reuse each of them: N <= 4 * NR. */
#define NN_DIRECT_A_MAX_N (8 * NN_VBYTES / 4)

/* Below this many multiply-adds a GEMM stays on the calling thread.  Waking
 * the OpenMP team and splitting a ~60 us product costs more than it saves:
 * measured on 2 cores, the book's 784-100-10 model trains at 0.26 s/epoch
 * single-threaded and 0.28 s with these GEMMs split (0.42 s with
 * OMP_WAIT_POLICY=passive); a spinning worker also slows the serial kernels
 * between GEMMs.  Big products (batch-256 1024-wide layers, evaluate/predict
 * chunks of 2048 rows) are far above it and scale ~1.9x on 2 cores. */
#define NN_GEMM_PARALLEL_MIN_FMA (1L << 23)

/* Read B in place?  Only row-major B (not B^T), and either small enough to
 * stay in L1 or with few rows of A to reuse each strip (M <= NN_DIRECT_B_MAX_M). */
static inline int nn_direct_b(int transB, long M, long N, long K)
{
    return !transB && (M <= NN_DIRECT_B_MAX_M || K * N <= 4096);
}

static inline int nn_gemm_threads(long M, long N, long K, int nthreads)
{
    if (nthreads <= 1 || M * N * K < NN_GEMM_PARALLEL_MIN_FMA)
        return 1;
    return nthreads;
}

/* Per-thread packing workspace, grown once and then reused: no allocation in
 * the steady state.  Never freed (it is a few hundred KB per thread). */
static NN_THREAD_LOCAL void *nn_gemm_ws = NULL;
static NN_THREAD_LOCAL size_t nn_gemm_ws_bytes = 0;

static inline void *nn_gemm_workspace(size_t bytes)
{
    if (bytes > nn_gemm_ws_bytes) {
        void *p = NULL;
        size_t rounded = (bytes + 63) & ~(size_t)63;
#if defined(_MSC_VER)
        p = _aligned_malloc(rounded, 64);
        if (nn_gemm_ws) _aligned_free(nn_gemm_ws);
#else
        if (posix_memalign(&p, 64, rounded) != 0) p = NULL;
        free(nn_gemm_ws);
#endif
        nn_gemm_ws = p;
        nn_gemm_ws_bytes = p ? rounded : 0;
    }
    return nn_gemm_ws;
}

/* Bytes of packing workspace one task needs: an MC x KC block of A and a
 * KC x NC block of B (plus a strip of slack for the ragged edge). */
#define NN_GEMM_WS_BYTES(T) \
    (sizeof(T) * (size_t)NN_KC * (NN_MC + NN_NC + 2 * 2 * (NN_VBYTES / sizeof(T))))

/*
 * NN_DEFINE_GEMM(T, SUFFIX) instantiates the packing routines, the
 * microkernel and the driver for one element type.
 */
#if NN_HAVE_VEC
#define NN_VEC_TYPES(T, SUFFIX)                                                   \
    typedef T nn_v##SUFFIX __attribute__((vector_size(NN_VBYTES), aligned(NN_VBYTES))); \
    typedef T nn_vu##SUFFIX __attribute__((vector_size(NN_VBYTES), aligned(sizeof(T)))); \
    typedef T nn_h##SUFFIX __attribute__((vector_size(NN_VBYTES / 2), aligned(NN_VBYTES / 2))); \
    typedef T nn_hu##SUFFIX __attribute__((vector_size(NN_VBYTES / 2), aligned(sizeof(T))));
#else
#define NN_VEC_TYPES(T, SUFFIX)
#endif

/* Half-vector edge strips (e.g. 8 float32 columns with AVX-512): N = 100 is
 * 6 vectors and 4 columns, computed as 6.5 vectors instead of 7.  A
 * half-width FMA costs half a full one where wide vectors are split in two
 * (AMD Zen 4) and no more than a full one elsewhere. */
#if NN_HAVE_VEC && NN_VBYTES >= 32
#define NN_HALF 1
#else
#define NN_HALF 0
#endif
#if NN_HALF
#define NN_HALF_CALL(NAME, SUFFIX, ...) nn_##NAME##h_##SUFFIX(__VA_ARGS__)
#else
#define NN_HALF_CALL(NAME, SUFFIX, ...) ((void)0)   /* never reached */
#endif

#if NN_HAVE_VEC
/* Microkernel: an MR x (NV vectors) tile of C,
 *     acc[i][:] = sum_k a[k][i] * b[k][:]      (a: packed MR-row strip,
 *                                              b: NV*VW columns, rows ldbk apart)
 * then written (or added) into C.  NV = 2 is the main kernel; NV = 1 and the
 * half-vector kernels serve a narrow right edge (see nn_strip_w).
 * b rows are loaded with unaligned loads: they come either from a packed,
 * aligned strip (ldbk = width) or straight from a row-major B (ldbk = ldb). */
#define NN_MICROKERNEL_V(T, SUFFIX, NV, NAME, ASK, ASI, VT, VUT, VB, TAG)         \
static inline void nn_##NAME##TAG##_##SUFFIX(long kc, const T *restrict a,        \
        long ask, long asi, const T *restrict b, long ldbk, T *restrict c,       \
        long ldc, int accumulate, long mr, long nr)                              \
{                                                                                \
    enum { VW = (VB) / sizeof(T), W = NV * ((VB) / sizeof(T)) };                \
    VT acc[NV][NN_MR];                                                           \
    _Pragma("GCC unroll 8")                                                      \
    for (int i = 0; i < NN_MR; i++)                                              \
        for (int v = 0; v < NV; v++) acc[v][i] = (VT){0};                        \
    for (long k = 0; k < kc; k++) {                                              \
        VT bv[NV];                                                               \
        for (int v = 0; v < NV; v++)                                             \
            bv[v] = *(const VUT *)(b + k * ldbk + v * VW);                       \
        const T *ak = a + k * (ASK);                                             \
        _Pragma("GCC unroll 8")                                                  \
        for (int i = 0; i < NN_MR; i++)                                          \
            for (int v = 0; v < NV; v++) acc[v][i] += ak[i * (ASI)] * bv[v];     \
    }                                                                            \
    if (mr == NN_MR && nr == W) {                                                \
        _Pragma("GCC unroll 8")                                                  \
        for (int i = 0; i < NN_MR; i++)                                          \
            for (int v = 0; v < NV; v++) {                                       \
                VUT *cp = (VUT *)(c + i * ldc + v * VW);                         \
                if (accumulate) *cp += acc[v][i]; else *cp = acc[v][i];          \
            }                                                                    \
    } else {                                                                     \
        T tile[NN_MR * W] __attribute__((aligned(NN_VBYTES)));                   \
        for (int i = 0; i < NN_MR; i++)                                          \
            for (int v = 0; v < NV; v++)                                         \
                *(VT *)(tile + i * W + v * VW) = acc[v][i];                      \
        for (long i = 0; i < mr; i++)                                            \
            for (long j = 0; j < nr; j++) {                                      \
                if (accumulate) c[i * ldc + j] += tile[i * W + j];               \
                else c[i * ldc + j] = tile[i * W + j];                           \
            }                                                                    \
    }                                                                            \
}
/* NV full vectors (tag 1 or 2), or one half vector (tag h). */
#define NN_MICROKERNEL(T, SUFFIX, NV, NAME, ASK, ASI)                             \
    NN_MICROKERNEL_V(T, SUFFIX, NV, NAME, ASK, ASI, nn_v##SUFFIX, nn_vu##SUFFIX, \
                     NN_VBYTES, NV)
#define NN_MICROKERNEL_HALF(T, SUFFIX, NAME, ASK, ASI)                            \
    NN_MICROKERNEL_V(T, SUFFIX, 1, NAME, ASK, ASI, nn_h##SUFFIX, nn_hu##SUFFIX,  \
                     NN_VBYTES / 2, h)
#else
/* Portable scalar microkernel for compilers without vector extensions. */
#define NN_MICROKERNEL(T, SUFFIX, NV, NAME, ASK, ASI)                             \
static inline void nn_##NAME##NV##_##SUFFIX(long kc, const T *a, long ask,        \
        long asi, const T *b, long ldbk, T *c, long ldc, int accumulate,         \
        long mr, long nr)                                                        \
{                                                                                \
    enum { W = NV * (NN_VBYTES / sizeof(T)) };                                   \
    T tile[NN_MR * W];                                                           \
    memset(tile, 0, sizeof(tile));                                               \
    for (long k = 0; k < kc; k++)                                                \
        for (int i = 0; i < NN_MR; i++)                                          \
            for (int j = 0; j < W; j++)                                          \
                tile[i * W + j] += a[k * (ASK) + i * (ASI)] * b[k * ldbk + j];   \
    for (long i = 0; i < mr; i++)                                                \
        for (long j = 0; j < nr; j++) {                                          \
            if (accumulate) c[i * ldc + j] += tile[i * W + j];                   \
            else c[i * ldc + j] = tile[i * W + j];                               \
        }                                                                        \
}
#endif

#define NN_DEFINE_GEMM(T, SUFFIX)                                                 \
NN_VEC_TYPES(T, SUFFIX)                                                          \
/* uk: A packed (strides MR, 1: compile-time).  ud: A read in place through   \
 * runtime strides (k: ask, row: asi) -- A itself, or its transpose. */        \
NN_MICROKERNEL(T, SUFFIX, 1, uk, NN_MR, 1)                                       \
NN_MICROKERNEL(T, SUFFIX, 2, uk, NN_MR, 1)                                       \
NN_MICROKERNEL(T, SUFFIX, 1, ud, ask, asi)                                       \
NN_MICROKERNEL(T, SUFFIX, 2, ud, ask, asi)                                       \
NN_MICROKERNEL_HALF(T, SUFFIX, uk, NN_MR, 1)                                     \
NN_MICROKERNEL_HALF(T, SUFFIX, ud, ask, asi)                                     \
/* Pack op(A)[i0:i0+mc, p0:p0+kc] into MR-row strips: dst[strip][k][r]. */       \
static inline void nn_pack_a_##SUFFIX(const T *A, long lda, int transA,          \
        long i0, long mc, long p0, long kc, T *dst)                              \
{                                                                                \
    for (long is = 0; is < mc; is += NN_MR) {                                    \
        long mr = mc - is < NN_MR ? mc - is : NN_MR;                             \
        T *d = dst + is * kc;                                                    \
        if (!transA) {                                                           \
            for (long k = 0; k < kc; k++) {                                      \
                for (long r = 0; r < mr; r++)                                    \
                    d[k * NN_MR + r] = A[(i0 + is + r) * lda + p0 + k];          \
                for (long r = mr; r < NN_MR; r++) d[k * NN_MR + r] = 0;          \
            }                                                                    \
        } else {                                                                 \
            for (long k = 0; k < kc; k++) {                                      \
                const T *src = A + (p0 + k) * lda + i0 + is;                     \
                for (long r = 0; r < mr; r++) d[k * NN_MR + r] = src[r];         \
                for (long r = mr; r < NN_MR; r++) d[k * NN_MR + r] = 0;          \
            }                                                                    \
        }                                                                        \
    }                                                                            \
}                                                                                \
/* Width of the strip starting at column js of an nc-wide block: NR (two     \
 * vectors), or at the right edge the narrowest of one vector / one vector    \
 * and a half / half a vector that covers what is left (e.g. 20 float32       \
 * columns: 16 + 8, not 32).  Strips follow each other, so js advances by    \
 * the width returned. */                                                       \
static inline long nn_strip_w_##SUFFIX(long nc, long js)                         \
{                                                                                \
    enum { VW = NN_VBYTES / sizeof(T) };                                         \
    long left = nc - js;                                                         \
    if (left > VW + (NN_HALF ? VW / 2 : 0)) return 2 * VW;                       \
    if (NN_HALF && left <= VW / 2) return VW / 2;                                \
    return VW;                                                                   \
}                                                                                \
/* Pack op(B)[p0:p0+kc, j0:j0+nc] into column strips: dst[strip][k][c], each    \
 * strip NR wide but for narrower ones at the right edge, zero padded. */       \
static inline void nn_pack_b_##SUFFIX(const T *B, long ldb, int transB,          \
        long p0, long kc, long j0, long nc, T *dst)                              \
{                                                                                \
    long w;                                                                      \
    for (long js = 0; js < nc; js += w) {                                        \
        w = nn_strip_w_##SUFFIX(nc, js);                                         \
        long nr = nc - js < w ? nc - js : w;                                     \
        T *d = dst + js * kc;                                                    \
        if (!transB) {                                                           \
            for (long k = 0; k < kc; k++) {                                      \
                const T *src = B + (p0 + k) * ldb + j0 + js;                     \
                for (long c = 0; c < nr; c++) d[k * w + c] = src[c];             \
                for (long c = nr; c < w; c++) d[k * w + c] = 0;                  \
            }                                                                    \
        } else {                                                                 \
            for (long c = 0; c < nr; c++) {                                      \
                const T *src = B + (j0 + js + c) * ldb + p0;                     \
                for (long k = 0; k < kc; k++) d[k * w + c] = src[k];             \
            }                                                                    \
            for (long c = nr; c < w; c++)                                        \
                for (long k = 0; k < kc; k++) d[k * w + c] = 0;                  \
        }                                                                        \
    }                                                                            \
}                                                                                \
/* One task: C[i0:i0+mc, j0:j0+nc] (+)= op(A) . op(B), nc <= NC (mc may span  \
 * several MC row blocks: each KC x nc block of B is packed once and used by  \
 * all of them, the Goto/BLIS loop order).                                     \
 * direct_b: read full-width strips of a row-major B in place instead of       \
 * packing them (pays when few MR strips reuse each B strip, i.e. small M).    \
 * direct_a: likewise full MR-row strips of A.                                  \
 * Returns 0, or -1 when the workspace could not be allocated. */               \
static inline int nn_gemm_task_##SUFFIX(int transA, int transB, long K,          \
        const T *A, long lda, const T *B, long ldb, T *C, long ldc,              \
        int accumulate, long i0, long mc, long j0, long nc, int direct_b,        \
        int direct_a)                                                            \
{                                                                                \
    enum { NR = 2 * (NN_VBYTES / sizeof(T)) };                                   \
    T *ws = (T *)nn_gemm_workspace(NN_GEMM_WS_BYTES(T));                         \
    if (!ws) return -1;                                                          \
    T *Ap = ws, *Bp = ws + (size_t)NN_KC * NN_MC;                                \
    long full = direct_b ? nc / NR * NR : 0;  /* columns read in place */       \
    long ask = transA ? lda : 1, asi = transA ? 1 : lda;                        \
    if (K == 0) {                                                                \
        if (!accumulate)                                                         \
            for (long i = 0; i < mc; i++)                                        \
                memset(C + (i0 + i) * ldc + j0, 0, sizeof(T) * nc);              \
        return 0;                                                                \
    }                                                                            \
    for (long p0 = 0; p0 < K; p0 += NN_KC) {                                     \
        long kc = K - p0 < NN_KC ? K - p0 : NN_KC;                               \
        int acc = accumulate || p0 > 0;                                          \
        if (full < nc)                                                           \
            nn_pack_b_##SUFFIX(B, ldb, transB, p0, kc, j0 + full, nc - full, Bp); \
        for (long ib = i0; ib < i0 + mc; ib += NN_MC) {                          \
            long mb = i0 + mc - ib < NN_MC ? i0 + mc - ib : NN_MC;               \
            long afull = direct_a ? mb / NN_MR * NN_MR : 0;  /* rows read in place */ \
            if (afull < mb)                                                      \
                nn_pack_a_##SUFFIX(A, lda, transA, ib + afull, mb - afull, p0, kc, Ap); \
            long w;                                                              \
            for (long js = 0; js < nc; js += w) {                                \
                const T *bp;                                                     \
                long ldbk;                                                       \
                if (js < full) {                                                 \
                    bp = B + p0 * ldb + j0 + js; w = NR; ldbk = ldb;             \
                } else {                                                         \
                    w = nn_strip_w_##SUFFIX(nc - full, js - full);               \
                    bp = Bp + (js - full) * kc; ldbk = w;                        \
                }                                                                \
                long nr = nc - js < w ? nc - js : w;                             \
                for (long is = 0; is < mb; is += NN_MR) {                        \
                    long mr = mb - is < NN_MR ? mb - is : NN_MR;                 \
                    T *cp = C + (ib + is) * ldc + j0 + js;                       \
                    if (is < afull) {                                            \
                        const T *ap = transA ? A + p0 * lda + ib + is            \
                                             : A + (ib + is) * lda + p0;         \
                        if (w == NR)                                             \
                            nn_ud2_##SUFFIX(kc, ap, ask, asi, bp, ldbk, cp, ldc, acc, mr, nr); \
                        else if (w == NR / 2)                                    \
                            nn_ud1_##SUFFIX(kc, ap, ask, asi, bp, ldbk, cp, ldc, acc, mr, nr); \
                        else                                                     \
                            NN_HALF_CALL(ud, SUFFIX, kc, ap, ask, asi, bp, ldbk, cp, ldc, acc, mr, nr); \
                    } else {                                                     \
                        const T *ap = Ap + (is - afull) * kc;                    \
                        if (w == NR)                                             \
                            nn_uk2_##SUFFIX(kc, ap, 0, 0, bp, ldbk, cp, ldc, acc, mr, nr); \
                        else if (w == NR / 2)                                    \
                            nn_uk1_##SUFFIX(kc, ap, 0, 0, bp, ldbk, cp, ldc, acc, mr, nr); \
                        else                                                     \
                            NN_HALF_CALL(uk, SUFFIX, kc, ap, 0, 0, bp, ldbk, cp, ldc, acc, mr, nr); \
                    }                                                            \
                }                                                                \
            }                                                                    \
        }                                                                        \
    }                                                                            \
    return 0;                                                                    \
}                                                                                \
/* Task t of the output grid: rows [ib*MC, +MC), columns [jb*ncb, +ncb). */     \
static inline int nn_gemm_tile_##SUFFIX(long t, long nt, long ncb, int transA,   \
        int transB, long M, long N, long K, const T *A, long lda, const T *B,    \
        long ldb, T *C, long ldc, int accumulate, int direct_b, int direct_a)    \
{                                                                                \
    long i0 = t / nt * NN_MC, j0 = t % nt * ncb;                                 \
    long mc = M - i0 < NN_MC ? M - i0 : NN_MC;                                   \
    long nc = N - j0 < ncb ? N - j0 : ncb;                                       \
    return nn_gemm_task_##SUFFIX(transA, transB, K, A, lda, B, ldb, C, ldc,      \
                                 accumulate, i0, mc, j0, nc, direct_b, direct_a); \
}                                                                                \
/* C[i_lo:i_hi, j_lo:j_hi] (+)= (op(A) . op(B)) restricted to that block, on   \
 * the calling thread only: one thread's share of a product in the fused      \
 * training loop's team (training.pyx), which splits a batch's rows, or a     \
 * kernel gradient's rows, between its threads.  Block bounds decide only who \
 * computes an element, never the order of its sum (fixed by KC), so any     \
 * partition gives bitwise the C of nn_gemm.  The caller sets FTZ/DAZ.        \
 * Returns 0, or -1 if the workspace could not be allocated. */                 \
static inline int nn_gemm_block_##SUFFIX(int transA, int transB, long K,         \
        const T *A, long lda, const T *B, long ldb, T *C, long ldc,              \
        int accumulate, long i_lo, long i_hi, long j_lo, long j_hi)              \
{                                                                                \
    long m = i_hi - i_lo, n = j_hi - j_lo;                                       \
    int direct_b = nn_direct_b(transB, m, n, K);                                 \
    int direct_a = n <= NN_DIRECT_A_MAX_N;                                       \
    if (m <= 0 || n <= 0) return 0;                                              \
    for (long j0 = j_lo; j0 < j_hi; j0 += NN_NC)                                 \
        if (nn_gemm_task_##SUFFIX(transA, transB, K, A, lda, B, ldb, C, ldc,     \
                accumulate, i_lo, m, j0, j_hi - j0 < NN_NC ? j_hi - j0 : NN_NC, \
                direct_b, direct_a))                                            \
            return -1;                                                           \
    return 0;                                                                    \
}                                                                                \
/* Allocate this thread's packing workspace now (a thread team does this      \
 * before its first step, so that no product can fail half-way through one). \
 * Returns 0, or -1 if out of memory. */                                        \
static inline int nn_gemm_reserve_##SUFFIX(void)                                 \
{                                                                                \
    return nn_gemm_workspace(NN_GEMM_WS_BYTES(T)) ? 0 : -1;                      \
}                                                                                \
/* The driver.  Returns 0 on success, -1 if a workspace allocation failed. */    \
static inline int nn_gemm_##SUFFIX(int transA, int transB, long M, long N,       \
        long K, const T *A, long lda, const T *B, long ldb, T *C, long ldc,      \
        int accumulate, int nthreads)                                            \
{                                                                                \
    enum { NR = 2 * (NN_VBYTES / sizeof(T)) };                                   \
    int nth = nn_gemm_threads(M, N, K, nthreads);                                \
    /* Task sizes only decide which thread computes a C element, never the    \
     * order of its sum (that is fixed by KC), so shrinking NC to give every   \
     * thread work keeps results bitwise identical for any thread count. */    \
    long ncb = NN_NC;                                                            \
    while (nth > 1 && ncb > 2 * NR &&                                            \
           ((M + NN_MC - 1) / NN_MC) * ((N + ncb - 1) / ncb) < 2 * nth)          \
        ncb /= 2;                                                                \
    long mt = (M + NN_MC - 1) / NN_MC, nt = (N + ncb - 1) / ncb;                 \
    long ntasks = mt * nt;                                                       \
    int failed = 0;                                                              \
    int direct_b = nn_direct_b(transB, M, N, K);                                 \
    int direct_a = N <= NN_DIRECT_A_MAX_N;                                       \
    if (M <= 0 || N <= 0) return 0;                                              \
    if (nth <= 1) {                                                              \
        unsigned int fpu = nn_ftz_enter();                                       \
        failed = nn_gemm_block_##SUFFIX(transA, transB, K, A, lda, B, ldb, C, ldc, \
                                        accumulate, 0, M, 0, N);                \
        nn_ftz_exit(fpu);                                                        \
        return failed;                                                           \
    }                                                                            \
    NN_OMP_PRAGMA(omp parallel num_threads(nth) reduction(|:failed))            \
    {                                                                            \
        unsigned int fpu = nn_ftz_enter();                                       \
        NN_OMP_PRAGMA(omp for schedule(static))                                  \
        for (long t = 0; t < ntasks; t++)                                        \
            failed |= nn_gemm_tile_##SUFFIX(t, nt, ncb, transA, transB, M, N, K, A, \
                          lda, B, ldb, C, ldc, accumulate, direct_b, direct_a);  \
        nn_ftz_exit(fpu);                                                        \
    }                                                                            \
    return failed ? -1 : 0;                                                      \
}

NN_DEFINE_GEMM(float, f32)
NN_DEFINE_GEMM(double, f64)

#endif /* NN_GEMM_H */
