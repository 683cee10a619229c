/*
 * nn_vmath.h -- the logistic function on float32 arrays, a vector at a time.
 *
 * Why: libm's expf is a scalar call, and a sigmoid layer also divides in
 * double and branches on the sign of each element; that made a 100-unit
 * sigmoid layer cost as much as its 784 x 100 product.  Written with GCC /
 * Clang vector extensions, the same code becomes SSE, AVX2 or AVX-512
 * instructions for the machine the extension is built for.
 *
 *     sigmoid(x) = 1 / (1 + e)        x >= 0        where e = exp(-|x|)
 *                = e / (1 + e)        x < 0         (never overflows)
 *
 * exp(t) for t <= 0:  t = n ln2 + r with n = round(t / ln2), |r| <= ln2 / 2
 * (ln2 split in a high part exact in float and a low part, so that n ln2 is
 * subtracted without rounding error), exp(r) by a degree-6 polynomial (the
 * published minimax coefficients of Moshier's Cephes expf), 2^n built in the
 * exponent bits.  Error: ~3 ulp; NaN stays NaN; |x| > 87.34 gives exactly 0 or
 * 1 (the true value is then below float's normal range or rounds to 1).
 *
 * Every element goes through the same vector code (a ragged tail is padded
 * into one more vector), so an element's result never depends on where it
 * sits in the array: any split of the work between threads or calls gives
 * bitwise the same numbers.
 */
#ifndef NN_VMATH_H
#define NN_VMATH_H

#ifndef NN_KERNEL_LEVEL
/* Callers get the copy for this CPU through nn_dispatch.h; the code below is
 * compiled once per CPU level, by nn_level.c only. */
#include "nn_dispatch.h"
#else

#include <string.h>
#include <math.h>

#if (defined(__GNUC__) || defined(__clang__))
#if defined(__AVX512F__)
#define NN_VM_BYTES 64
#elif defined(__AVX__)
#define NN_VM_BYTES 32
#else
#define NN_VM_BYTES 16
#endif
#define NN_VM_W (NN_VM_BYTES / 4)

typedef float nn_vmf __attribute__((vector_size(NN_VM_BYTES), aligned(4)));
typedef int nn_vmi __attribute__((vector_size(NN_VM_BYTES), aligned(4)));

/* mask ? a : b, lane by lane (mask lanes are all ones or all zeros: what a
 * vector comparison gives).  C has no ?: on vectors. */
static inline nn_vmf nn_vm_select(nn_vmi mask, nn_vmf a, nn_vmf b)
{
    nn_vmi ai, bi;
    memcpy(&ai, &a, sizeof(ai));
    memcpy(&bi, &b, sizeof(bi));
    ai = (ai & mask) | (bi & ~mask);
    memcpy(&a, &ai, sizeof(a));
    return a;
}

static inline nn_vmf nn_vm_sigmoid(nn_vmf x)
{
    const nn_vmf zero = {0}, one = zero + 1.0f;
    nn_vmf ax = nn_vm_select(x < 0, -x, x);     /* |x|; NaN stays NaN     */
    nn_vmf t = nn_vm_select(ax > 87.33654f, zero - 87.33654f, -ax);
    /* n = round(t / ln2): adding and removing 1.5 * 2^23 rounds to nearest */
    nn_vmf n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    nn_vmf r = t - n * 0.693359375f;            /* ln2, high part: exact  */
    r = r - n * -2.12194440e-4f;                /* ln2, low part          */
    nn_vmf p = zero + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + one;                  /* exp(r)                 */
    nn_vmi bits = (__builtin_convertvector(n, nn_vmi) + 127) << 23;
    nn_vmf scale;                               /* 2^n, n in [-126, 0]    */
    memcpy(&scale, &bits, sizeof(scale));
    /* exp(-|x|) in (0, 1]; 0 past ln(FLT_MIN) = -87.34: no normal float there */
    nn_vmf e = nn_vm_select(ax > 87.33654f, zero, p * scale);
    nn_vmf q = one / (one + e);
    return nn_vm_select(x >= 0, q, e * q);
}

/* NAME(z, n): z[0:n] <- VFN(z[0:n]) in place, a vector at a time; a ragged
 * tail is padded into one more vector, so every element goes through the
 * same code (shared by the sigmoid here and nn_rnn.h's tanh). */
#define NN_VM_ARRAY_FN(NAME, VFN)                                         \
static inline void NAME(float *z, long n)                                 \
{                                                                         \
    long i = 0;                                                           \
    for (; i + NN_VM_W <= n; i += NN_VM_W) {                              \
        nn_vmf v;                                                         \
        memcpy(&v, z + i, sizeof(v));                                     \
        v = VFN(v);                                                       \
        memcpy(z + i, &v, sizeof(v));                                     \
    }                                                                     \
    if (i < n) {                                                          \
        float tail[NN_VM_W] = {0};                                        \
        nn_vmf v;                                                         \
        memcpy(tail, z + i, sizeof(float) * (size_t)(n - i));             \
        memcpy(&v, tail, sizeof(v));                                      \
        v = VFN(v);                                                       \
        memcpy(tail, &v, sizeof(v));                                      \
        memcpy(z + i, tail, sizeof(float) * (size_t)(n - i));             \
    }                                                                     \
}

/* z[0:n] <- sigmoid(z[0:n]), in place. */
NN_VM_ARRAY_FN(nn_sigmoid_f32, nn_vm_sigmoid)
#define NN_HAVE_VSIGMOID 1

#else   /* no vector extensions: the scalar formula, in float */
static inline void nn_sigmoid_f32(float *z, long n)
{
    for (long i = 0; i < n; i++) {
        float e = expf(-fabsf(z[i]));
        float q = 1.0f / (1.0f + e);
        z[i] = z[i] >= 0 ? q : e * q;
    }
}
#define NN_HAVE_VSIGMOID 0
#endif

#endif /* NN_KERNEL_LEVEL */
#endif /* NN_VMATH_H */
