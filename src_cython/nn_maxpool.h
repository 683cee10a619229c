/*
 * nn_maxpool.h -- max pooling for the common case: every window lies inside
 * the image (padding 'valid', or 'same' that pads nothing).
 *
 * Same results as the general loops in conv.pyx (the first maximum in
 * row-major order wins, comparisons "strictly greater", so NaN never wins
 * over the window's first value), written so the compiler turns the loop
 * over channels into vector compares and blends: no bounds to clip, no
 * branch per element.
 *
 * The backward pass, when the windows tile the image exactly (strides equal
 * to the pool size, no remainder), writes every input once -- its window's
 * gradient or 0 -- instead of clearing dx and then scattering into it.
 */
#ifndef NN_KERNEL_LEVEL
/* Callers get the copy for this CPU through nn_dispatch.h; the code below is
 * compiled once per CPU level, by nn_level.c only. */
#include "nn_dispatch.h"
#elif !defined(NN_MAXPOOL_H)
#define NN_MAXPOOL_H

#include <stdint.h>

#define NN_MP_T float
#define NN_MP_SFX(name) name##_f32
#include "nn_maxpool.h"
#undef NN_MP_T
#undef NN_MP_SFX
#define NN_MP_T double
#define NN_MP_SFX(name) name##_f64
#include "nn_maxpool.h"
#undef NN_MP_T
#undef NN_MP_SFX

#elif defined(NN_MP_T)   /* ------------ the per-type part ------------ */

/* one image x (H x W x C) -> out, arg (OH x OW x C); every window inside */
static void NN_MP_SFX(nn_maxpool_inside)(
    const NN_MP_T *restrict x, long W, long C, long ph, long pw, long sh, long sw,
    long OH, long OW, NN_MP_T *restrict out, int32_t *restrict arg)
{
    long oh, ow, i, j, c;
    for (oh = 0; oh < OH; oh++) {
        for (ow = 0; ow < OW; ow++) {
            const long h0 = oh * sh, w0 = ow * sw;
            NN_MP_T *restrict o = out + (oh * OW + ow) * C;
            int32_t *restrict a = arg + (oh * OW + ow) * C;
            const NN_MP_T *restrict first = x + (h0 * W + w0) * C;
            for (c = 0; c < C; c++) {
                o[c] = first[c];
                a[c] = (int32_t)(h0 * W + w0);
            }
            for (i = 0; i < ph; i++) {
                for (j = 0; j < pw; j++) {
                    const NN_MP_T *restrict s = x + ((h0 + i) * W + w0 + j) * C;
                    const int32_t pos = (int32_t)((h0 + i) * W + w0 + j);
                    if (i == 0 && j == 0)
                        continue;
                    for (c = 0; c < C; c++) {
                        const int bigger = s[c] > o[c];
                        o[c] = bigger ? s[c] : o[c];
                        a[c] = bigger ? pos : a[c];
                    }
                }
            }
        }
    }
}

/* one image: dx (H x W x C, H = OH*ph, W = OW*pw, strides = pool) from dout,
 * arg (OH x OW x C); every dx element written exactly once */
static void NN_MP_SFX(nn_maxpool_backward_tiled)(
    const NN_MP_T *restrict dout, const int32_t *restrict arg, long W, long C,
    long ph, long pw, long OH, long OW, NN_MP_T *restrict dx)
{
    long oh, ow, i, j, c;
    for (oh = 0; oh < OH; oh++) {
        for (i = 0; i < ph; i++) {
            for (ow = 0; ow < OW; ow++) {
                const NN_MP_T *restrict g = dout + (oh * OW + ow) * C;
                const int32_t *restrict a = arg + (oh * OW + ow) * C;
                for (j = 0; j < pw; j++) {
                    const long h = oh * ph + i, w = ow * pw + j;
                    const int32_t pos = (int32_t)(h * W + w);
                    NN_MP_T *restrict d = dx + (h * W + w) * C;
                    /* g + 0: what "0, then += g" gives (-0 becomes +0) */
                    for (c = 0; c < C; c++)
                        d[c] = a[c] == pos ? g[c] + (NN_MP_T)0 : (NN_MP_T)0;
                }
            }
        }
    }
}

#endif
