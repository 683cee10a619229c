/*
 * nn_bias_relu.h -- the convolution's epilogue and its gradient, vectorised:
 *
 *     z[p, f] <- relu(z[p, f] + b[f])           (or without relu / bias)
 *     dz[i]   =  da[i] if a[i] > 0 else 0       (relu's gradient through its
 *                                                output a)
 *
 * Why a C header: the generic element-wise loops (k_activations.pxd) cover
 * every activation with a branch per row of 32 or 64 values and are compiled
 * as scalar code; a conv layer's output is large (a training batch of the
 * book's first layer: 800 K values), so these two passes cost as much as the
 * convolution itself.  The results are bitwise those of the generic loops:
 * the same additions, and relu keeps NaN (v < 0 is false) like they do.
 */
#ifndef NN_KERNEL_LEVEL
/* Callers get the copy for this CPU through nn_dispatch.h; the code below is
 * compiled once per CPU level, by nn_level.c only. */
#include "nn_dispatch.h"
#elif !defined(NN_BIAS_RELU_H)
#define NN_BIAS_RELU_H

#include <stddef.h>

/* GCC / Clang vector extensions (scalar loops without them, or with
 * -DNN_HAVE_VEC=0), as in nn_gemm.h */
#include "nn_vec.h"

#if defined(__AVX512F__)
#define NN_BR_VB 64
#elif defined(__AVX__)
#define NN_BR_VB 32
#else
#define NN_BR_VB 16
#endif

#define NN_BR_T float
#define NN_BR_SFX(name) name##_f32
#include "nn_bias_relu.h"
#undef NN_BR_T
#undef NN_BR_SFX
#define NN_BR_T double
#define NN_BR_SFX(name) name##_f64
#include "nn_bias_relu.h"
#undef NN_BR_T
#undef NN_BR_SFX

#elif defined(NN_BR_T)   /* ------------ the per-type part ------------ */

#if NN_HAVE_VEC
typedef NN_BR_T NN_BR_SFX(nn_br_v) __attribute__((vector_size(NN_BR_VB)));
typedef NN_BR_T NN_BR_SFX(nn_br_vu) __attribute__((vector_size(NN_BR_VB),
                                                   aligned(sizeof(NN_BR_T)), may_alias));
#endif

/* rows x F matrix z (rows contiguous) <- z + bias (bias may be NULL), then
 * relu when relu != 0 */
static void NN_BR_SFX(nn_bias_relu)(NN_BR_T *restrict z, long rows, long F,
                                    const NN_BR_T *restrict bias, int relu)
{
    long p, f;
#if NN_HAVE_VEC
    typedef NN_BR_SFX(nn_br_v) V;
    typedef NN_BR_SFX(nn_br_vu) VU;
    const long L = (long)(NN_BR_VB / sizeof(NN_BR_T));
    const V zero = {0};
#endif
    if (bias == NULL && !relu)
        return;
    for (p = 0; p < rows; p++) {
        NN_BR_T *row = z + p * F;
        f = 0;
#if NN_HAVE_VEC
        for (; f + L <= F; f += L) {
            V v = *(VU *)(row + f);
            if (bias != NULL)
                v = v + *(const VU *)(bias + f);
            if (relu)
                v = (V)((__typeof__(v < zero))v & ~(v < zero));
            *(VU *)(row + f) = v;
        }
#endif
        for (; f < F; f++) {
            NN_BR_T v = row[f];
            if (bias != NULL)
                v = v + bias[f];
            if (relu)
                v = v < 0 ? 0 : v;
            row[f] = v;
        }
    }
}

/* dz[0:n] = da where a > 0, else 0 */
static void NN_BR_SFX(nn_relu_backward)(const NN_BR_T *restrict da,
                                        const NN_BR_T *restrict a,
                                        NN_BR_T *restrict dz, long n)
{
    long i = 0;
#if NN_HAVE_VEC
    typedef NN_BR_SFX(nn_br_v) V;
    typedef NN_BR_SFX(nn_br_vu) VU;
    const long L = (long)(NN_BR_VB / sizeof(NN_BR_T));
    const V zero = {0};
    for (; i + L <= n; i += L) {
        V g = *(const VU *)(da + i), v = *(const VU *)(a + i);
        *(VU *)(dz + i) = (V)((__typeof__(v > zero))g & (v > zero));
    }
#endif
    for (; i < n; i++)
        dz[i] = a[i] > 0 ? da[i] : 0;
}

#endif
