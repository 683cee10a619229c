/*
 * nn_rnn.h -- tanh on float32 arrays, a vector at a time, for the recurrent
 * kernels (src_cython/recurrent.pyx).
 *
 * Why: an LSTM step applies five transcendental functions per unit; with
 * libm's scalar tanhf they cost more than the step's products.  The logistic
 * function of nn_vmath.h is already vectorised, and
 *
 *     tanh(x) = 2 * sigmoid(2x) - 1
 *
 * holds exactly.  Near 0 that difference of two numbers close to 1 loses
 * relative precision (the absolute error stays ~1e-7), so for |x| < 0.125 the
 * odd Taylor polynomial x - x^3/3 + 2x^5/15 - 17x^7/315 is used instead
 * (its truncation error there is below 3e-11 relative).
 *
 * As in nn_vmath.h every element goes through the same vector code, so a
 * result never depends on where the element sits or which thread computes it.
 */
#ifndef NN_RNN_H
#define NN_RNN_H

#include <string.h>
#include <math.h>
#include "nn_vmath.h"

#if NN_HAVE_VSIGMOID
static inline nn_vmf nn_vm_tanh(nn_vmf x)
{
    const nn_vmf zero = {0}, one = zero + 1.0f, two = zero + 2.0f;
    nn_vmf big = two * nn_vm_sigmoid(two * x) - one;
    nn_vmf x2 = x * x;
    nn_vmf p = zero - 17.0f / 315.0f;
    p = p * x2 + 2.0f / 15.0f;
    p = p * x2 - 1.0f / 3.0f;
    p = x + x * x2 * p;
    nn_vmf ax = nn_vm_select(x < 0, -x, x);
    return nn_vm_select(ax < 0.125f, p, big);
}

/* z[0:n] <- tanh(z[0:n]), in place. */
static inline void nn_tanh_f32(float *z, long n)
{
    long i = 0;
    for (; i + NN_VM_W <= n; i += NN_VM_W) {
        nn_vmf v;
        memcpy(&v, z + i, sizeof(v));
        v = nn_vm_tanh(v);
        memcpy(z + i, &v, sizeof(v));
    }
    if (i < n) {
        float tail[NN_VM_W] = {0};
        nn_vmf v;
        memcpy(tail, z + i, sizeof(float) * (size_t)(n - i));
        memcpy(&v, tail, sizeof(v));
        v = nn_vm_tanh(v);
        memcpy(tail, &v, sizeof(v));
        memcpy(z + i, tail, sizeof(float) * (size_t)(n - i));
    }
}
#else
static inline void nn_tanh_f32(float *z, long n)
{
    for (long i = 0; i < n; i++)
        z[i] = tanhf(z[i]);
}
#endif

#endif /* NN_RNN_H */
