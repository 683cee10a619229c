/*
 * nn_rnn.h -- the two vector kernels of the recurrent time loops
 * (src_cython/recurrent.pyx): tanh on float32 arrays, and the recurrent
 * product of a block of rows.
 *
 * tanh.  An LSTM step applies five transcendental functions per unit; with
 * libm's scalar tanhf they cost more than the step's products.  nn_vm_tanh
 * (nn_vmath.h) is vectorised like the sigmoid it is built from.
 *
 * The block product.  Written as plain loops, ``z[c] += h[j] * M[j, c]``
 * loads and stores z once per j, and each store must reach the next load
 * before it: a chain of ~10 cycles per (j, vector) that made this tiny
 * product cost more than everything else.  Here eight rows' accumulators
 * stay in vector registers across the whole j loop.
 *
 * Both are compiled once per CPU level (nn_level.c, under NN_KERNEL_LEVEL)
 * and reached through nn_dispatch.h like the other hot kernels.
 */
#ifndef NN_RNN_H
#define NN_RNN_H

#ifndef NN_KERNEL_LEVEL
#include "nn_dispatch.h"
#else

#include <string.h>
#include <math.h>
#include "nn_vmath.h"

#if NN_HAVE_VSIGMOID
/* z[0:n] <- tanh(z[0:n]), in place. */
NN_VM_ARRAY_FN(nn_tanh_f32, nn_vm_tanh)
#else
static inline void nn_tanh_f32(float *z, long n)
{
    for (long i = 0; i < n; i++)
        z[i] = tanhf(z[i]);
}
#endif


#if defined(__GNUC__) || defined(__clang__)
/* may_alias and element-aligned: the tile reads and writes rows of float or
 * double arrays through these directly (memcpy of a whole vector is split
 * into 16-byte pieces through the stack by GCC 12, see nn_rnn8.h) */
typedef float nn_rnn_vf32 __attribute__((vector_size(32), aligned(sizeof(float)), may_alias));
typedef double nn_rnn_vf64 __attribute__((vector_size(32), aligned(sizeof(double)), may_alias));
/* Z[r, 0:n] += sum_j H[r*hr + j*hj] * M[j*ldm + 0:n] for r < nr: eight rows
 * at a time share each loaded vector of M, and their eight accumulators
 * are independent chains (a whole block's recurrent product per step). */
#define NN_RNN_TILE(NAME, VNAME, T, VB)                                     \
static inline void NAME(const T *H, long hr, long hj, const T *M, long ldm, \
                        long nr, long m, long n, T *Z, long ldz)          \
{                                                                          \
    const long W = VB / (long)sizeof(T);                                   \
    long c, r, j, q;                                                       \
    for (c = 0; c + W <= n; c += W) {                                      \
        for (r = 0; r + 8 <= nr; r += 8) {                                 \
            VNAME a[8], mv;                                                \
            for (q = 0; q < 8; q++) a[q] = *(const VNAME *)(Z + (r + q) * ldz + c); \
            for (j = 0; j < m; j++) {                                      \
                const T *h = H + r * hr + j * hj;                          \
                mv = *(const VNAME *)(M + j * ldm + c);                    \
                a[0] += h[0] * mv; a[1] += h[hr] * mv;                     \
                a[2] += h[2 * hr] * mv; a[3] += h[3 * hr] * mv;            \
                a[4] += h[4 * hr] * mv; a[5] += h[5 * hr] * mv;            \
                a[6] += h[6 * hr] * mv; a[7] += h[7 * hr] * mv;            \
            }                                                              \
            for (q = 0; q < 8; q++) *(VNAME *)(Z + (r + q) * ldz + c) = a[q]; \
        }                                                                  \
        for (; r < nr; r++) {                                              \
            VNAME a0, mv;                                                  \
            a0 = *(const VNAME *)(Z + r * ldz + c);                        \
            for (j = 0; j < m; j++) {                                      \
                mv = *(const VNAME *)(M + j * ldm + c);                    \
                a0 += H[r * hr + j * hj] * mv;                             \
            }                                                              \
            *(VNAME *)(Z + r * ldz + c) = a0;                              \
        }                                                                  \
    }                                                                      \
    for (; c < n; c++)                                                     \
        for (r = 0; r < nr; r++) {                                         \
            T acc = Z[r * ldz + c];                                        \
            for (j = 0; j < m; j++)                                        \
                acc += H[r * hr + j * hj] * M[j * ldm + c];                \
            Z[r * ldz + c] = acc;                                          \
        }                                                                  \
}
NN_RNN_TILE(nn_rnn_tile_f32, nn_rnn_vf32, float, 32)
NN_RNN_TILE(nn_rnn_tile_f64, nn_rnn_vf64, double, 32)
#else
static inline void nn_rnn_tile_f32(const float *H, long hr, long hj, const float *M,
                                   long ldm, long nr, long m, long n, float *Z, long ldz)
{ for (long r = 0; r < nr; r++) for (long c = 0; c < n; c++) { float a = Z[r * ldz + c];
    for (long j = 0; j < m; j++) a += H[r * hr + j * hj] * M[j * ldm + c];
    Z[r * ldz + c] = a; } }
static inline void nn_rnn_tile_f64(const double *H, long hr, long hj, const double *M,
                                   long ldm, long nr, long m, long n, double *Z, long ldz)
{ for (long r = 0; r < nr; r++) for (long c = 0; c < n; c++) { double a = Z[r * ldz + c];
    for (long j = 0; j < m; j++) a += H[r * hr + j * hj] * M[j * ldm + c];
    Z[r * ldz + c] = a; } }
#endif

#endif /* NN_KERNEL_LEVEL */
#endif /* NN_RNN_H */
