/*
 * nn_kernels.h -- the list of hot kernels that exist once per CPU level.
 *
 * Why: a wheel is built once and must be fast on every x86-64.  The kernels
 * whose speed comes from wide vectors (GEMM micro-kernels and packing, the
 * one-channel convolution, Winograd transforms, bias+relu, the vector
 * sigmoid and tanh, max pooling, the recurrent block product and the 8-unit
 * recurrent cells) are compiled
 * from nn_level.c three times -- baseline, AVX2+FMA, AVX-512 -- into tables
 * of this struct: nn_kernels_baseline, nn_kernels_avx2, nn_kernels_avx512.  The Cython modules call them through
 * nn_dispatch.h, which picks one table at first use (nn_cpu.h).
 *
 * NN_KERNEL_LIST(X) names every entry once: X(return type, "return" or
 * nothing, name, parameter list, argument list).  The struct's fields, each
 * level's table and the dispatching wrappers are all generated from it, so
 * they cannot drift apart.  The names are those the Cython code has always
 * called (nn_gemm_f32, ...).
 */
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include <stdint.h>

#define NN_KERNEL_LIST_T(X, T, S) \
    X(int, return, nn_gemm_##S, \
      (int transA, int transB, long M, long N, long K, const T *A, long lda, \
       const T *B, long ldb, T *C, long ldc, int accumulate, int nthreads), \
      (transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, nthreads)) \
    X(int, return, nn_gemm_block_##S, \
      (int transA, int transB, long K, const T *A, long lda, const T *B, long ldb, \
       T *C, long ldc, int accumulate, long i_lo, long i_hi, long j_lo, long j_hi), \
      (transA, transB, K, A, lda, B, ldb, C, ldc, accumulate, i_lo, i_hi, j_lo, j_hi)) \
    X(int, return, nn_gemm_reserve_##S, (void), ()) \
    X(void, , nn_conv1c_forward_##S, \
      (const T *x, long H, long W, long KH, long KW, long sh, long sw, long pt, \
       long pl, long OH, long OW, const T *k, long F, const T *bias, int relu, T *out), \
      (x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, k, F, bias, relu, out)) \
    X(void, , nn_conv1c_backward_weights_##S, \
      (const T *x, long H, long W, long KH, long KW, long sh, long sw, long pt, \
       long pl, long OH, long OW, const T *dz, long F, T *dk, T *db, int accumulate, \
       T *scratch), \
      (x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, dz, F, dk, db, accumulate, scratch)) \
    X(void, , nn_bias_relu_##S, (T *z, long rows, long F, const T *bias, int relu), \
      (z, rows, F, bias, relu)) \
    X(void, , nn_relu_backward_##S, (const T *da, const T *a, T *dz, long n), \
      (da, a, dz, n)) \
    X(void, , nn_wg_kernel_##S, (const T *k, long C, long F, int flip, T *U), \
      (k, C, F, flip, U)) \
    X(int, return, nn_wg_conv3x3_##S, \
      (const T *x, long H, long W, long cin, long OH, long OW, long pt, long pl, \
       const T *U, long cout, const T *bias, int relu, T *out, T *ws), \
      (x, H, W, cin, OH, OW, pt, pl, U, cout, bias, relu, out, ws)) \
    X(int, return, nn_wg_dw_image_##S, \
      (const T *x, long H, long W, long cin, const T *dz, long OH, long OW, long pt, \
       long pl, long cout, T *dU, int accumulate, T *ws), \
      (x, H, W, cin, dz, OH, OW, pt, pl, cout, dU, accumulate, ws)) \
    X(void, , nn_wg_kernel_grad_##S, (const T *dU, long C, long F, T *dw, T *ws), \
      (dU, C, F, dw, ws)) \
    X(void, , nn_maxpool_inside_##S, \
      (const T *x, long W, long C, long ph, long pw, long sh, long sw, long OH, \
       long OW, T *out, int32_t *arg), \
      (x, W, C, ph, pw, sh, sw, OH, OW, out, arg)) \
    X(void, , nn_maxpool_backward_tiled_##S, \
      (const T *dout, const int32_t *arg, long W, long C, long ph, long pw, long OH, \
       long OW, T *dx), \
      (dout, arg, W, C, ph, pw, OH, OW, dx)) \
    X(void, , nn_rnn_tile_##S, \
      (const T *H, long hr, long hj, const T *M, long ldm, long nr, long m, long n, \
       T *Z, long ldz), \
      (H, hr, hj, M, ldm, nr, m, n, Z, ldz))

#define NN_KERNEL_LIST(X) \
    NN_KERNEL_LIST_T(X, float, f32) \
    NN_KERNEL_LIST_T(X, double, f64) \
    X(void, , nn_sigmoid_f32, (float *z, long n), (z, n)) \
    X(void, , nn_tanh_f32, (float *z, long n), (z, n)) \
    X(int, return, nn_rnn8_available, (void), ()) \
    X(int, return, nn_rnn8_forward, \
      (int cell, int act, int ract, int reset_after, long r0, long r1, long T, \
       const float *x, long F, const float *W, const float *dpm, float *XW, const float *U, \
       const float *b_in, const float *b_rec, const float *h0, const float *c0, \
       const unsigned char *mask, float *out, float *Hp, float *Cp, float *hT, float *cT, \
       float *Gt, float *Ex), \
      (cell, act, ract, reset_after, r0, r1, T, x, F, W, dpm, XW, U, b_in, b_rec, h0, c0, \
       mask, out, Hp, Cp, hT, cT, Gt, Ex)) \
    X(int, return, nn_rnn8_backward, \
      (int cell, int act, int ract, int reset_after, long r0, long r1, long T, \
       const float *UT, const unsigned char *mask, const float *Hp, const float *Cp, \
       const float *Gt, const float *Ex, const float *dO, int seq, float *dXW, \
       float *DIn, double *nrm), \
      (cell, act, ract, reset_after, r0, r1, T, UT, mask, Hp, Cp, Gt, Ex, dO, seq, dXW, \
       DIn, nrm))

struct nn_kernels {
    const char *level;      /* "baseline", "avx2", "avx512" or "native" */
    const char *isa;        /* the vector instructions it uses, e.g. "AVX2+FMA" */
    /* GEMM tiling of this level (the training loop splits rows by mr) */
    int mr, kc, mc, nc, vbytes;
#define NN_KERNEL_FIELD(R, RET, name, params, args) R (*name) params;
    NN_KERNEL_LIST(NN_KERNEL_FIELD)
#undef NN_KERNEL_FIELD
};

/* The tables are shared by the objects of one extension module only. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
#define NN_KERNELS_HIDDEN __attribute__((visibility("hidden")))
#else
#define NN_KERNELS_HIDDEN
#endif

extern NN_KERNELS_HIDDEN const struct nn_kernels nn_kernels_baseline;
#if NN_CPU_DISPATCH
extern NN_KERNELS_HIDDEN const struct nn_kernels nn_kernels_avx2;
#if NN_CPU_DISPATCH_AVX512
extern NN_KERNELS_HIDDEN const struct nn_kernels nn_kernels_avx512;
#endif
#endif

#endif /* NN_KERNELS_H */
