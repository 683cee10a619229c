/*
 * nn_gemm_ukernel.h -- one GEMM microkernel.  No include guard: nn_gemm_impl.h
 * includes it once per variant, after defining
 *
 *   NN_UK_NAME   the function's name, e.g. NN_SFX(nn_uk2) -> nn_uk2_f32
 *   NN_UK_NV     how many vectors wide the C tile is (1 or 2)
 *   NN_UK_HALF   1: the vectors are half vectors (a thin right edge)
 *   NN_UK_ASK    stride between A's k-steps  } NN_MR and 1 for a packed A
 *   NN_UK_ASI    stride between A's rows     } (constants the compiler folds),
 *                                            } the parameters ask and asi for
 *                                            } an A read in place
 *
 * and NN_T / NN_SFX of the element type.  The parameters are #undef'd at
 * the end, ready for the next variant.
 *
 * The kernel: an MR x (NV vectors) tile of C,
 *     acc[i][:] = sum_k a[k][i] * b[k][:]      (a: MR rows, strides ask / asi,
 *                                              b: NV*VW columns, rows ldbk apart)
 * then written (or added) into C.  NV = 2 is the main kernel; NV = 1 and the
 * half-vector kernels serve a narrow right edge (see nn_strip_w).
 * b rows are loaded with unaligned loads: they come either from a packed,
 * aligned strip (ldbk = width) or straight from a row-major B (ldbk = ldb).
 */
#if !defined(NN_UK_NAME) || !defined(NN_UK_NV) || !defined(NN_UK_HALF) || !defined(NN_UK_ASK) || !defined(NN_UK_ASI)
#error "nn_gemm_ukernel.h: define NN_UK_NAME, NN_UK_NV, NN_UK_HALF, NN_UK_ASK, NN_UK_ASI first"
#endif

#if NN_HAVE_VEC

#if NN_UK_HALF
#define NN_UK_VT NN_SFX(nn_h)
#define NN_UK_VUT NN_SFX(nn_hu)
#define NN_UK_VB (NN_VBYTES / 2)
#else
#define NN_UK_VT NN_SFX(nn_v)
#define NN_UK_VUT NN_SFX(nn_vu)
#define NN_UK_VB NN_VBYTES
#endif

static inline void NN_UK_NAME(long kc, const NN_T *restrict a, long ask, long asi,
                              const NN_T *restrict b, long ldbk, NN_T *restrict c,
                              long ldc, int accumulate, long mr, long nr)
{
    enum { VW = (NN_UK_VB) / sizeof(NN_T), W = NN_UK_NV * ((NN_UK_VB) / sizeof(NN_T)) };
    NN_UK_VT acc[NN_UK_NV][NN_MR];
    _Pragma("GCC unroll 8")
    for (int i = 0; i < NN_MR; i++)
        for (int v = 0; v < NN_UK_NV; v++) acc[v][i] = (NN_UK_VT){0};
    for (long k = 0; k < kc; k++) {
        NN_UK_VT bv[NN_UK_NV];
        for (int v = 0; v < NN_UK_NV; v++)
            bv[v] = *(const NN_UK_VUT *)(b + k * ldbk + v * VW);
        const NN_T *ak = a + k * (NN_UK_ASK);
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NN_MR; i++)
            for (int v = 0; v < NN_UK_NV; v++) acc[v][i] += ak[i * (NN_UK_ASI)] * bv[v];
    }
    if (mr == NN_MR && nr == W) {
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NN_MR; i++)
            for (int v = 0; v < NN_UK_NV; v++) {
                NN_UK_VUT *cp = (NN_UK_VUT *)(c + i * ldc + v * VW);
                if (accumulate) *cp += acc[v][i]; else *cp = acc[v][i];
            }
    } else {
        NN_T tile[NN_MR * W] __attribute__((aligned(NN_VBYTES)));
        for (int i = 0; i < NN_MR; i++)
            for (int v = 0; v < NN_UK_NV; v++)
                *(NN_UK_VT *)(tile + i * W + v * VW) = acc[v][i];
        for (long i = 0; i < mr; i++)
            for (long j = 0; j < nr; j++) {
                if (accumulate) c[i * ldc + j] += tile[i * W + j];
                else c[i * ldc + j] = tile[i * W + j];
            }
    }
}

#undef NN_UK_VT
#undef NN_UK_VUT
#undef NN_UK_VB

#else /* !NN_HAVE_VEC: portable scalar kernel (no half-vector variants) */

#if NN_UK_HALF
#error "nn_gemm_ukernel.h: half-vector kernels need vector extensions (NN_HALF is 0 without them)"
#endif

static inline void NN_UK_NAME(long kc, const NN_T *a, long ask, long asi,
                              const NN_T *b, long ldbk, NN_T *c, long ldc,
                              int accumulate, long mr, long nr)
{
    enum { W = NN_UK_NV * (NN_VBYTES / sizeof(NN_T)) };
    NN_T tile[NN_MR * W];
    memset(tile, 0, sizeof(tile));
    for (long k = 0; k < kc; k++)
        for (int i = 0; i < NN_MR; i++)
            for (int j = 0; j < W; j++)
                tile[i * W + j] += a[k * (NN_UK_ASK) + i * (NN_UK_ASI)] * b[k * ldbk + j];
    for (long i = 0; i < mr; i++)
        for (long j = 0; j < nr; j++) {
            if (accumulate) c[i * ldc + j] += tile[i * W + j];
            else c[i * ldc + j] = tile[i * W + j];
        }
}

#endif /* NN_HAVE_VEC */

#undef NN_UK_NAME
#undef NN_UK_NV
#undef NN_UK_HALF
#undef NN_UK_ASK
#undef NN_UK_ASI
