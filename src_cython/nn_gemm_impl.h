/*
 * nn_gemm_impl.h -- the GEMM for one element type.  No include guard:
 * nn_gemm.h includes it once per type, after defining
 *
 *   NN_T          the element type (float, double)
 *   NN_SFX(name)  name with the type's suffix pasted on (name##_f32, ...)
 *
 * and #undef's both afterwards.  It defines, for that type: the vector types,
 * the microkernels (nn_gemm_ukernel.h, once per variant), the packing
 * routines, and the task / block / threaded drivers.  See nn_gemm.h for the
 * blocking scheme.
 */
#if !defined(NN_T) || !defined(NN_SFX)
#error "nn_gemm_impl.h: define NN_T and NN_SFX(name) first (nn_gemm.h does)"
#endif

#if NN_HAVE_VEC
/* v: a full vector (aligned: packed strips, the tile), vu: the same for an
 * unaligned address (rows of B, of C); h / hu: half vectors. */
typedef NN_T NN_SFX(nn_v) __attribute__((vector_size(NN_VBYTES), aligned(NN_VBYTES)));
typedef NN_T NN_SFX(nn_vu) __attribute__((vector_size(NN_VBYTES), aligned(sizeof(NN_T))));
typedef NN_T NN_SFX(nn_h) __attribute__((vector_size(NN_VBYTES / 2), aligned(NN_VBYTES / 2)));
typedef NN_T NN_SFX(nn_hu) __attribute__((vector_size(NN_VBYTES / 2), aligned(sizeof(NN_T))));
#endif

/* Microkernels.  uk: A packed (strides MR, 1: compile-time).  ud: A read in
 * place through runtime strides (k: ask, row: asi) -- A itself, or its
 * transpose.  Digit: vectors wide; h: half a vector (only with NN_HALF). */
#define NN_UK_NAME NN_SFX(nn_uk1)
#define NN_UK_NV 1
#define NN_UK_HALF 0
#define NN_UK_ASK NN_MR
#define NN_UK_ASI 1
#include "nn_gemm_ukernel.h"

#define NN_UK_NAME NN_SFX(nn_uk2)
#define NN_UK_NV 2
#define NN_UK_HALF 0
#define NN_UK_ASK NN_MR
#define NN_UK_ASI 1
#include "nn_gemm_ukernel.h"

#define NN_UK_NAME NN_SFX(nn_ud1)
#define NN_UK_NV 1
#define NN_UK_HALF 0
#define NN_UK_ASK ask
#define NN_UK_ASI asi
#include "nn_gemm_ukernel.h"

#define NN_UK_NAME NN_SFX(nn_ud2)
#define NN_UK_NV 2
#define NN_UK_HALF 0
#define NN_UK_ASK ask
#define NN_UK_ASI asi
#include "nn_gemm_ukernel.h"

#if NN_HALF
#define NN_UK_NAME NN_SFX(nn_ukh)
#define NN_UK_NV 1
#define NN_UK_HALF 1
#define NN_UK_ASK NN_MR
#define NN_UK_ASI 1
#include "nn_gemm_ukernel.h"

#define NN_UK_NAME NN_SFX(nn_udh)
#define NN_UK_NV 1
#define NN_UK_HALF 1
#define NN_UK_ASK ask
#define NN_UK_ASI asi
#include "nn_gemm_ukernel.h"
#endif

/* Pack op(A)[i0:i0+mc, p0:p0+kc] into MR-row strips: dst[strip][k][r]. */
static inline void NN_SFX(nn_pack_a)(const NN_T *A, long lda, int transA,
                                     long i0, long mc, long p0, long kc, NN_T *dst)
{
    for (long is = 0; is < mc; is += NN_MR) {
        long mr = mc - is < NN_MR ? mc - is : NN_MR;
        NN_T *d = dst + is * kc;
        if (!transA) {
            for (long k = 0; k < kc; k++) {
                for (long r = 0; r < mr; r++)
                    d[k * NN_MR + r] = A[(i0 + is + r) * lda + p0 + k];
                for (long r = mr; r < NN_MR; r++) d[k * NN_MR + r] = 0;
            }
        } else {
            for (long k = 0; k < kc; k++) {
                const NN_T *src = A + (p0 + k) * lda + i0 + is;
                for (long r = 0; r < mr; r++) d[k * NN_MR + r] = src[r];
                for (long r = mr; r < NN_MR; r++) d[k * NN_MR + r] = 0;
            }
        }
    }
}

/* Width of the strip starting at column js of an nc-wide block: NR (two
 * vectors), or at the right edge the narrowest of one vector / one vector
 * and a half / half a vector that covers what is left (e.g. 20 float32
 * columns: 16 + 8, not 32).  Strips follow each other, so js advances by
 * the width returned. */
static inline long NN_SFX(nn_strip_w)(long nc, long js)
{
    enum { VW = NN_VBYTES / sizeof(NN_T) };
    long left = nc - js;
    if (left > VW + (NN_HALF ? VW / 2 : 0)) return 2 * VW;
    if (NN_HALF && left <= VW / 2) return VW / 2;
    return VW;
}

/* Pack op(B)[p0:p0+kc, j0:j0+nc] into column strips: dst[strip][k][c], each
 * strip NR wide but for narrower ones at the right edge, zero padded. */
static inline void NN_SFX(nn_pack_b)(const NN_T *B, long ldb, int transB,
                                     long p0, long kc, long j0, long nc, NN_T *dst)
{
    long w;
    for (long js = 0; js < nc; js += w) {
        w = NN_SFX(nn_strip_w)(nc, js);
        long nr = nc - js < w ? nc - js : w;
        NN_T *d = dst + js * kc;
        if (!transB) {
            for (long k = 0; k < kc; k++) {
                const NN_T *src = B + (p0 + k) * ldb + j0 + js;
                for (long c = 0; c < nr; c++) d[k * w + c] = src[c];
                for (long c = nr; c < w; c++) d[k * w + c] = 0;
            }
        } else {
            for (long c = 0; c < nr; c++) {
                const NN_T *src = B + (j0 + js + c) * ldb + p0;
                for (long k = 0; k < kc; k++) d[k * w + c] = src[k];
            }
            for (long c = nr; c < w; c++)
                for (long k = 0; k < kc; k++) d[k * w + c] = 0;
        }
    }
}

/* One task: C[i0:i0+mc, j0:j0+nc] (+)= op(A) . op(B), nc <= NC (mc may span
 * several MC row blocks: each KC x nc block of B is packed once and used by
 * all of them, the Goto/BLIS loop order).
 * direct_b: read full-width strips of a row-major B in place instead of
 * packing them (pays when few MR strips reuse each B strip, i.e. small M).
 * direct_a: likewise full MR-row strips of A.
 * Returns 0, or -1 when the workspace could not be allocated. */
static inline int NN_SFX(nn_gemm_task)(int transA, int transB, long K,
                                       const NN_T *A, long lda, const NN_T *B, long ldb,
                                       NN_T *C, long ldc, int accumulate, long i0, long mc,
                                       long j0, long nc, int direct_b, int direct_a)
{
    enum { NR = 2 * (NN_VBYTES / sizeof(NN_T)) };
    NN_T *ws = (NN_T *)nn_gemm_workspace(NN_GEMM_WS_BYTES(NN_T));
    if (!ws) return -1;
    NN_T *Ap = ws, *Bp = ws + (size_t)NN_KC * NN_MC;
    long full = direct_b ? nc / NR * NR : 0;  /* columns read in place */
    long ask = transA ? lda : 1, asi = transA ? 1 : lda;
    if (K == 0) {
        if (!accumulate)
            for (long i = 0; i < mc; i++)
                memset(C + (i0 + i) * ldc + j0, 0, sizeof(NN_T) * nc);
        return 0;
    }
    for (long p0 = 0; p0 < K; p0 += NN_KC) {
        long kc = K - p0 < NN_KC ? K - p0 : NN_KC;
        int acc = accumulate || p0 > 0;
        if (full < nc)
            NN_SFX(nn_pack_b)(B, ldb, transB, p0, kc, j0 + full, nc - full, Bp);
        for (long ib = i0; ib < i0 + mc; ib += NN_MC) {
            long mb = i0 + mc - ib < NN_MC ? i0 + mc - ib : NN_MC;
            long afull = direct_a ? mb / NN_MR * NN_MR : 0;  /* rows read in place */
            if (afull < mb)
                NN_SFX(nn_pack_a)(A, lda, transA, ib + afull, mb - afull, p0, kc, Ap);
            long w;
            for (long js = 0; js < nc; js += w) {
                const NN_T *bp;
                long ldbk;
                if (js < full) {
                    bp = B + p0 * ldb + j0 + js; w = NR; ldbk = ldb;
                } else {
                    w = NN_SFX(nn_strip_w)(nc - full, js - full);
                    bp = Bp + (js - full) * kc; ldbk = w;
                }
                long nr = nc - js < w ? nc - js : w;
                for (long is = 0; is < mb; is += NN_MR) {
                    long mr = mb - is < NN_MR ? mb - is : NN_MR;
                    NN_T *cp = C + (ib + is) * ldc + j0 + js;
                    if (is < afull) {
                        const NN_T *ap = transA ? A + p0 * lda + ib + is
                                                : A + (ib + is) * lda + p0;
                        if (w == NR)
                            NN_SFX(nn_ud2)(kc, ap, ask, asi, bp, ldbk, cp, ldc, acc, mr, nr);
                        else if (w == NR / 2)
                            NN_SFX(nn_ud1)(kc, ap, ask, asi, bp, ldbk, cp, ldc, acc, mr, nr);
                        else {
#if NN_HALF  /* otherwise strips are never narrower than a vector */
                            NN_SFX(nn_udh)(kc, ap, ask, asi, bp, ldbk, cp, ldc, acc, mr, nr);
#endif
                        }
                    } else {
                        const NN_T *ap = Ap + (is - afull) * kc;
                        if (w == NR)
                            NN_SFX(nn_uk2)(kc, ap, 0, 0, bp, ldbk, cp, ldc, acc, mr, nr);
                        else if (w == NR / 2)
                            NN_SFX(nn_uk1)(kc, ap, 0, 0, bp, ldbk, cp, ldc, acc, mr, nr);
                        else {
#if NN_HALF
                            NN_SFX(nn_ukh)(kc, ap, 0, 0, bp, ldbk, cp, ldc, acc, mr, nr);
#endif
                        }
                    }
                }
            }
        }
    }
    return 0;
}

/* Task t of the output grid: rows [ib*MC, +MC), columns [jb*ncb, +ncb). */
static inline int NN_SFX(nn_gemm_tile)(long t, long nt, long ncb, int transA, int transB,
                                       long M, long N, long K, const NN_T *A, long lda,
                                       const NN_T *B, long ldb, NN_T *C, long ldc,
                                       int accumulate, int direct_b, int direct_a)
{
    long i0 = t / nt * NN_MC, j0 = t % nt * ncb;
    long mc = M - i0 < NN_MC ? M - i0 : NN_MC;
    long nc = N - j0 < ncb ? N - j0 : ncb;
    return NN_SFX(nn_gemm_task)(transA, transB, K, A, lda, B, ldb, C, ldc,
                                accumulate, i0, mc, j0, nc, direct_b, direct_a);
}

/* C[i_lo:i_hi, j_lo:j_hi] (+)= (op(A) . op(B)) restricted to that block, on
 * the calling thread only: one thread's share of a product in the fused
 * training loop's team (training.pyx), which splits a batch's rows, or a
 * kernel gradient's rows, between its threads.  Block bounds decide only who
 * computes an element, never the order of its sum (fixed by KC), so any
 * partition gives bitwise the C of nn_gemm.  The caller sets FTZ/DAZ.
 * Returns 0, or -1 if the workspace could not be allocated. */
static inline int NN_SFX(nn_gemm_block)(int transA, int transB, long K,
                                        const NN_T *A, long lda, const NN_T *B, long ldb,
                                        NN_T *C, long ldc, int accumulate,
                                        long i_lo, long i_hi, long j_lo, long j_hi)
{
    long m = i_hi - i_lo, n = j_hi - j_lo;
    int direct_b = nn_direct_b(transB, m, n, K);
    int direct_a = n <= NN_DIRECT_A_MAX_N;
    if (m <= 0 || n <= 0) return 0;
    for (long j0 = j_lo; j0 < j_hi; j0 += NN_NC)
        if (NN_SFX(nn_gemm_task)(transA, transB, K, A, lda, B, ldb, C, ldc,
                                 accumulate, i_lo, m, j0, j_hi - j0 < NN_NC ? j_hi - j0 : NN_NC,
                                 direct_b, direct_a))
            return -1;
    return 0;
}

/* Allocate this thread's packing workspace now (a thread team does this
 * before its first step, so that no product can fail half-way through one).
 * Returns 0, or -1 if out of memory. */
static inline int NN_SFX(nn_gemm_reserve)(void)
{
    return nn_gemm_workspace(NN_GEMM_WS_BYTES(NN_T)) ? 0 : -1;
}

/* The driver.  Returns 0 on success, -1 if a workspace allocation failed. */
static inline int NN_SFX(nn_gemm)(int transA, int transB, long M, long N, long K,
                                  const NN_T *A, long lda, const NN_T *B, long ldb,
                                  NN_T *C, long ldc, int accumulate, int nthreads)
{
    enum { NR = 2 * (NN_VBYTES / sizeof(NN_T)) };
    int nth = nn_gemm_threads(M, N, K, nthreads);
    /* Task sizes only decide which thread computes a C element, never the
     * order of its sum (that is fixed by KC), so shrinking NC to give every
     * thread work keeps results bitwise identical for any thread count. */
    long ncb = NN_NC;
    while (nth > 1 && ncb > 2 * NR &&
           ((M + NN_MC - 1) / NN_MC) * ((N + ncb - 1) / ncb) < 2 * nth)
        ncb /= 2;
    long mt = (M + NN_MC - 1) / NN_MC, nt = (N + ncb - 1) / ncb;
    long ntasks = mt * nt;
    int failed = 0;
    int direct_b = nn_direct_b(transB, M, N, K);
    int direct_a = N <= NN_DIRECT_A_MAX_N;
    if (M <= 0 || N <= 0) return 0;
    if (nth <= 1) {
        unsigned int fpu = nn_ftz_enter();
        failed = NN_SFX(nn_gemm_block)(transA, transB, K, A, lda, B, ldb, C, ldc,
                                       accumulate, 0, M, 0, N);
        nn_ftz_exit(fpu);
        return failed;
    }
    #pragma omp parallel num_threads(nth) reduction(|:failed)
    {
        unsigned int fpu = nn_ftz_enter();
        #pragma omp for schedule(static)
        for (long t = 0; t < ntasks; t++)
            failed |= NN_SFX(nn_gemm_tile)(t, nt, ncb, transA, transB, M, N, K, A,
                                           lda, B, ldb, C, ldc, accumulate, direct_b, direct_a);
        nn_ftz_exit(fpu);
    }
    return failed ? -1 : 0;
}
