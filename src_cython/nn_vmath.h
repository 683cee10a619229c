/*
 * nn_vmath.h -- the logistic function on float32 arrays, a vector at a time.
 *
 * Why: libm's expf is a scalar call, and a sigmoid layer also divides in
 * double and branches on the sign of each element; that made a 100-unit
 * sigmoid layer cost as much as its 784 x 100 product.  Written with GCC /
 * Clang vector extensions, the same code becomes SSE, AVX2 or AVX-512
 * instructions for the machine the extension is built for.
 *
 *     sigmoid(x) = 1 / (1 + e)        where e = exp(-x), -x clamped to +-87.34
 *
 * exp(t):  t = n ln2 + r with n = round(t / ln2), |r| <= ln2 / 2
 * (ln2 split in a high part exact in float and a low part, so that n ln2 is
 * subtracted without rounding error), exp(r) by a degree-6 polynomial (the
 * published minimax coefficients of Moshier's Cephes expf), 2^n built in the
 * exponent bits.  Error: ~3 ulp; NaN stays NaN; x < -87.34 gives exactly 0,
 * x > 87.34 exactly 1 (the true value is then below float's normal range or
 * rounds to 1).  NN_VM_DEFINE below has the details.
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
/* the array loops read and write floats through this (not memcpy: see nn_rnn8.h) */
typedef float nn_vmfu __attribute__((vector_size(NN_VM_BYTES), aligned(4), may_alias));

/* NN_VM_SELECT_GENERIC(VF, VI, SELECT) defines SELECT(mask, a, b): mask ? a : b
 * lane by lane (C has no ?: on vectors; mask lanes are all ones or all
 * zeros, as a vector comparison gives them).  Three bit operations; a level
 * with a blend instruction may define SELECT with it instead (nn_rnn8.h).
 *
 * NN_VM_DEFINE(VF, VI, SELECT, SIGMOID, TANH) defines, for the float vector
 * type VF, its int twin VI and that SELECT, two functions:
 *
 *   SIGMOID(x)           the logistic function
 *   TANH(x)              tanh
 *
 * nn_vmath.h instantiates them for its widest vector (nn_vmf, the array loops
 * below); nn_rnn8.h for one 8-float vector (one row of an 8-unit recurrent
 * cell), whatever the level's widest vector is.  One text, so both give the
 * same numbers.
 *
 * sigmoid(x) = 1 / (1 + exp(-x)), with exp(-x) as in the header comment and
 * -x clamped to [-87.34, 87.34] first (2^n then stays a normal float and 1 + e
 * never overflows); x < -87.34 gives exactly 0, x > 87.34 rounds to exactly 1.
 * For x < 0 the quotient 1 / (1 + e) with a large e keeps the ~3-ulp relative
 * accuracy of e, so no branch on the sign is needed.  The polynomial is
 * evaluated in Estrin's scheme (three independent pairs, then two steps):
 * the same coefficients as Horner's rule but a chain half as long, which is
 * what an LSTM step, waiting on its own gates, is bound by.
 *
 * tanh(|x|) = -m / (2 + m) with m = exp(-2|x|) - 1, the sign put back after.
 * exp(t) - 1 is formed as 2^n (exp(r) - 1) + (2^n - 1) from the same
 * polynomial: for |x| < ~0.17 (n = 0) that is the polynomial's own
 * r + r^2 P(r) with no cancellation, so tanh keeps its relative accuracy
 * near 0 (1 - 2 / (1 + exp(2x)) would lose it), and elsewhere |m| > 0.29
 * cancels nothing either. */
#define NN_VM_SELECT_GENERIC(VF, VI, SELECT)                                 \
static inline VF SELECT(VI mask, VF a, VF b)                                 \
{                                                                             \
    VI ai, bi;                                                                \
    memcpy(&ai, &a, sizeof(ai));                                              \
    memcpy(&bi, &b, sizeof(bi));                                              \
    ai = (ai & mask) | (bi & ~mask);                                          \
    memcpy(&a, &ai, sizeof(a));                                               \
    return a;                                                                 \
}

#define NN_VM_DEFINE(VF, VI, SELECT, SIGMOID, TANH)                          \
static inline VF SIGMOID(VF x)                                               \
{                                                                             \
    const VF zero = {0}, one = zero + 1.0f, lim = zero + 87.33654f;          \
    VF t = zero - x;                                /* exp(t), t = -x    */  \
    t = SELECT(t > lim, lim, t);                    /* NaN stays NaN     */  \
    t = SELECT(t < -lim, -lim, t);                                            \
    /* n = round(t / ln2): adding and removing 1.5 * 2^23 rounds to nearest */ \
    VF n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;          \
    VF r = t - n * 0.693359375f;                    /* ln2, high part: exact */ \
    r = r - n * -2.12194440e-4f;                    /* ln2, low part       */ \
    VF r2 = r * r;                                                            \
    VF p01 = r * 1.6666665459e-1f + 5.0000001201e-1f;                         \
    VF p23 = r * 8.3334519073e-3f + 4.1665795894e-2f;                         \
    VF p45 = r * 1.9875691500e-4f + 1.3981999507e-3f;                         \
    VF p = (p45 * r2 + p23) * r2 + p01;                                       \
    p = p * r2 + r + one;                           /* exp(r)            */  \
    VI bits = (__builtin_convertvector(n, VI) + 127) << 23;                  \
    VF scale;                                       /* 2^n, |n| <= 126   */  \
    memcpy(&scale, &bits, sizeof(scale));                                     \
    VF q = one / (one + p * scale);                                           \
    return SELECT(x < -lim, zero, q);                                         \
}                                                                             \
static inline VF TANH(VF x)                                                  \
{                                                                             \
    const VF zero = {0}, one = zero + 1.0f, two = zero + 2.0f;               \
    const VF lim = zero - 87.33654f;                                          \
    VF ax = SELECT(x < 0, -x, x);                                             \
    VF t = -two * ax;                               /* t = -2|x| <= 0    */  \
    t = SELECT(t < lim, lim, t);                    /* NaN stays NaN     */  \
    VF n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;          \
    VF r = t - n * 0.693359375f;                                              \
    r = r - n * -2.12194440e-4f;                                              \
    VF r2 = r * r;                                                            \
    VF p01 = r * 1.6666665459e-1f + 5.0000001201e-1f;                         \
    VF p23 = r * 8.3334519073e-3f + 4.1665795894e-2f;                         \
    VF p45 = r * 1.9875691500e-4f + 1.3981999507e-3f;                         \
    VF p = (p45 * r2 + p23) * r2 + p01;                                       \
    VF m = p * r2 + r;                              /* exp(r) - 1        */  \
    VI bits = (__builtin_convertvector(n, VI) + 127) << 23;                  \
    VF scale;                                                                 \
    memcpy(&scale, &bits, sizeof(scale));                                     \
    VF em = scale * m + (scale - one);              /* exp(t) - 1        */  \
    VF y = (zero - em) / (two + em);                /* tanh(|x|)         */  \
    return SELECT(x < 0, -y, y);                                              \
}

NN_VM_SELECT_GENERIC(nn_vmf, nn_vmi, nn_vm_select)
NN_VM_DEFINE(nn_vmf, nn_vmi, nn_vm_select, nn_vm_sigmoid, nn_vm_tanh)

/* NAME(z, n): z[0:n] <- VFN(z[0:n]) in place, a vector at a time; a ragged
 * tail is padded into one more vector, so every element goes through the
 * same code (shared by the sigmoid here and nn_rnn.h's tanh). */
#define NN_VM_ARRAY_FN(NAME, VFN)                                         \
static inline void NAME(float *z, long n)                                 \
{                                                                         \
    long i = 0;                                                           \
    for (; i + NN_VM_W <= n; i += NN_VM_W) {                              \
        *(nn_vmfu *)(z + i) = VFN(*(const nn_vmfu *)(z + i));             \
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
