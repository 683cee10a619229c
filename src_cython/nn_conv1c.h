/*
 * nn_conv1c.h -- direct convolution of a one-channel image (a grayscale
 * first layer), without im2col.
 *
 * Why: with one input channel the im2col matrix has only KH*KW columns (9
 * for a 3x3 kernel), so the GEMM's inner dimension is 9 and most of its time
 * goes to packing and to loading/storing its output tile.  Directly, one
 * output pixel is KH*KW multiply-adds per filter, and the filters are
 * contiguous (NHWC, HWIO), so the loop over filters is a vector loop:
 *
 *     out[p, f]  = sum over taps (i, j) inside the image of
 *                  x[oh*sh - pt + i, ow*sw - pl + j] * k[i, j, f]
 *     dk[i, j, f] += sum over pixels p = (oh, ow) reading inside the image of
 *                  x[oh*sh - pt + i, ow*sw - pl + j] * dz[p, f]
 *     db[f]       += sum over pixels p of dz[p, f]
 *
 * The filters are taken NN_C1_CB at a time into a local accumulator that the
 * compiler keeps in vector registers.  Every sum runs in a fixed order
 * (taps, then pixels in row-major order), so the result of one image never
 * depends on the thread that computes it.
 *
 * Included twice by nn_conv1c.h itself, once per element type.
 */
#ifndef NN_KERNEL_LEVEL
/* Callers get the copy for this CPU through nn_dispatch.h; the code below is
 * compiled once per CPU level, by nn_level.c only. */
#include "nn_dispatch.h"
#elif !defined(NN_CONV1C_H)
#define NN_CONV1C_H

#include <stddef.h>

/* Vector width in bytes, from the CPU level nn_level.c is compiled for; the
 * filters are taken two vectors at a time (32 floats with AVX-512).  GCC /
 * Clang vector extensions, like nn_gemm.h; without them (or with
 * -DNN_HAVE_VEC=0) the same loops run on scalars. */
#include "nn_vec.h"
#if defined(__AVX512F__)
#define NN_C1_VB 64
#elif defined(__AVX__)
#define NN_C1_VB 32
#else
#define NN_C1_VB 16
#endif

/* first o with o*s - p + i >= 0, and one past the last with o*s - p + i < n,
 * clipped to [0, o_count] */
static inline void nn_c1_range(long n, long s, long p, long i, long o_count,
                               long *lo, long *hi)
{
    long a = p - i, b = n - 1 + p - i;
    long l = a <= 0 ? 0 : (a + s - 1) / s;
    long h = b < 0 ? 0 : b / s + 1;
    if (h > o_count) h = o_count;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

#if NN_HAVE_VEC
typedef float nn_c1_vf __attribute__((vector_size(NN_C1_VB)));
typedef double nn_c1_vd __attribute__((vector_size(NN_C1_VB)));
/* the same, for loads and stores at any element-aligned address */
typedef float nn_c1_vfu __attribute__((vector_size(NN_C1_VB), aligned(4), may_alias));
typedef double nn_c1_vdu __attribute__((vector_size(NN_C1_VB), aligned(8), may_alias));
#else
typedef float nn_c1_vf;
typedef double nn_c1_vd;
typedef float nn_c1_vfu;
typedef double nn_c1_vdu;
#endif

#define NN_C1_T float
#define NN_C1_V nn_c1_vf
#define NN_C1_VU nn_c1_vfu
#define NN_C1_SFX(name) name##_f32
#include "nn_conv1c.h"
#undef NN_C1_T
#undef NN_C1_V
#undef NN_C1_VU
#undef NN_C1_SFX
#define NN_C1_T double
#define NN_C1_V nn_c1_vd
#define NN_C1_VU nn_c1_vdu
#define NN_C1_SFX(name) name##_f64
#include "nn_conv1c.h"
#undef NN_C1_T
#undef NN_C1_V
#undef NN_C1_VU
#undef NN_C1_SFX

#elif defined(NN_C1_T)   /* ------------ the per-type part ------------ */

/* lanes per vector, filters per block (two vectors) */
#undef NN_C1_L
#undef NN_C1_CB
#undef NN_C1_ZERO
#undef NN_C1_LOAD
#undef NN_C1_STORE
#undef NN_C1_RELU
#if NN_HAVE_VEC
#define NN_C1_L ((long)(NN_C1_VB / sizeof(NN_C1_T)))
#define NN_C1_ZERO ((NN_C1_V){0})
#define NN_C1_LOAD(p) ((NN_C1_V)(*(const NN_C1_VU *)(p)))
#define NN_C1_STORE(p, v) (*(NN_C1_VU *)(p) = (v))
/* relu keeping NaN (v < 0 is false for it), as the scalar v < 0 ? 0 : v */
#define NN_C1_RELU(v) ((NN_C1_V)((__typeof__((v) < NN_C1_ZERO))(v) & ~((v) < NN_C1_ZERO)))
#else
#define NN_C1_L 1L
#define NN_C1_ZERO ((NN_C1_T)0)
#define NN_C1_LOAD(p) (*(p))
#define NN_C1_STORE(p, v) (*(p) = (v))
#define NN_C1_RELU(v) ((v) < 0 ? (NN_C1_T)0 : (v))
#endif
#define NN_C1_CB (2 * NN_C1_L)

/* o[f0:F] of one output pixel, one filter at a time (the filters after the
 * last whole block) */
static void NN_C1_SFX(nn_c1_tail_pixel)(
    const NN_C1_T *restrict x, long W, long KW, long ih0, long iw0, long i_lo,
    long i_hi, long j_lo, long j_hi, const NN_C1_T *restrict k, long F, long f0,
    const NN_C1_T *restrict bias, int relu, NN_C1_T *restrict o)
{
    long f, i, j;
    for (f = f0; f < F; f++) {
        NN_C1_T acc = 0;
        for (i = i_lo; i < i_hi; i++)
            for (j = j_lo; j < j_hi; j++)
                acc += x[(ih0 + i) * W + iw0 + j] * k[(i * KW + j) * F + f];
        if (bias != NULL)
            acc = acc + bias[f];
        if (relu)
            acc = acc < 0 ? 0 : acc;
        o[f] = acc;
    }
}

/* out (OH*OW x F) = conv(x (H x W), k (KH*KW x F)), then + bias (unless
 * NULL) and relu (when relu != 0) while the sums are still in registers: the
 * same operations, in the same order, as nn_bias_relu.h applied afterwards */
static void NN_C1_SFX(nn_conv1c_forward)(
    const NN_C1_T *restrict x, long H, long W, long KH, long KW, long sh, long sw,
    long pt, long pl, long OH, long OW, const NN_C1_T *restrict k, long F,
    const NN_C1_T *restrict bias, int relu, NN_C1_T *restrict out)
{
    long oh, ow, i, j, f0, i_lo, i_hi, j_lo, j_hi;
    for (oh = 0; oh < OH; oh++) {
        long ih0 = oh * sh - pt;
        i_lo = ih0 < 0 ? -ih0 : 0;
        i_hi = H - ih0 < KH ? H - ih0 : KH;
        for (ow = 0; ow < OW; ow++) {
            long iw0 = ow * sw - pl;
            NN_C1_T *o = out + (oh * OW + ow) * F;
            j_lo = iw0 < 0 ? -iw0 : 0;
            j_hi = W - iw0 < KW ? W - iw0 : KW;
            if (j_lo == 0 && ow + 3 < OW && (ow + 3) * sw - pl + KW <= W) {
                /* four pixels whose taps all lie inside the row: eight
                 * independent sums (one pixel's two would wait on the
                 * multiply-add latency) */
                for (f0 = 0; f0 + NN_C1_CB <= F; f0 += NN_C1_CB) {
                    NN_C1_V a0 = NN_C1_ZERO, a1 = NN_C1_ZERO, b0 = NN_C1_ZERO,
                            b1 = NN_C1_ZERO, c0 = NN_C1_ZERO, c1 = NN_C1_ZERO,
                            d0 = NN_C1_ZERO, d1 = NN_C1_ZERO;
                    for (i = i_lo; i < i_hi; i++) {
                        const NN_C1_T *xr = x + (ih0 + i) * W + iw0;
                        for (j = 0; j < KW; j++) {
                            const NN_C1_T *w = k + (i * KW + j) * F + f0;
                            const NN_C1_V w0 = NN_C1_LOAD(w), w1 = NN_C1_LOAD(w + NN_C1_L);
                            const NN_C1_V xa = NN_C1_ZERO + xr[j];
                            const NN_C1_V xb = NN_C1_ZERO + xr[j + sw];
                            const NN_C1_V xc = NN_C1_ZERO + xr[j + 2 * sw];
                            const NN_C1_V xd = NN_C1_ZERO + xr[j + 3 * sw];
                            a0 += xa * w0; a1 += xa * w1;
                            b0 += xb * w0; b1 += xb * w1;
                            c0 += xc * w0; c1 += xc * w1;
                            d0 += xd * w0; d1 += xd * w1;
                        }
                    }
                    if (bias != NULL) {
                        const NN_C1_V e0 = NN_C1_LOAD(bias + f0);
                        const NN_C1_V e1 = NN_C1_LOAD(bias + f0 + NN_C1_L);
                        a0 += e0; b0 += e0; c0 += e0; d0 += e0;
                        a1 += e1; b1 += e1; c1 += e1; d1 += e1;
                    }
                    if (relu) {
                        a0 = NN_C1_RELU(a0); a1 = NN_C1_RELU(a1);
                        b0 = NN_C1_RELU(b0); b1 = NN_C1_RELU(b1);
                        c0 = NN_C1_RELU(c0); c1 = NN_C1_RELU(c1);
                        d0 = NN_C1_RELU(d0); d1 = NN_C1_RELU(d1);
                    }
                    NN_C1_STORE(o + f0, a0); NN_C1_STORE(o + f0 + NN_C1_L, a1);
                    NN_C1_STORE(o + F + f0, b0); NN_C1_STORE(o + F + f0 + NN_C1_L, b1);
                    NN_C1_STORE(o + 2 * F + f0, c0);
                    NN_C1_STORE(o + 2 * F + f0 + NN_C1_L, c1);
                    NN_C1_STORE(o + 3 * F + f0, d0);
                    NN_C1_STORE(o + 3 * F + f0 + NN_C1_L, d1);
                }
                if (f0 < F) {     /* the last filters: one pixel at a time, below */
                    long q;
                    for (q = 0; q < 4; q++)
                        NN_C1_SFX(nn_c1_tail_pixel)(x, W, KW, ih0, iw0 + q * sw, i_lo,
                                                    i_hi, 0, KW, k, F, f0, bias, relu,
                                                    o + q * F);
                }
                ow += 3;
                continue;
            }
            for (f0 = 0; f0 + NN_C1_CB <= F; f0 += NN_C1_CB) {
                NN_C1_V a0 = NN_C1_ZERO, a1 = NN_C1_ZERO;
                for (i = i_lo; i < i_hi; i++) {
                    const NN_C1_T *xr = x + (ih0 + i) * W + iw0;
                    for (j = j_lo; j < j_hi; j++) {
                        const NN_C1_T *w = k + (i * KW + j) * F + f0;
                        const NN_C1_V xv = NN_C1_ZERO + xr[j];
                        a0 += xv * NN_C1_LOAD(w);
                        a1 += xv * NN_C1_LOAD(w + NN_C1_L);
                    }
                }
                if (bias != NULL) {
                    a0 += NN_C1_LOAD(bias + f0);
                    a1 += NN_C1_LOAD(bias + f0 + NN_C1_L);
                }
                if (relu) {
                    a0 = NN_C1_RELU(a0);
                    a1 = NN_C1_RELU(a1);
                }
                NN_C1_STORE(o + f0, a0);
                NN_C1_STORE(o + f0 + NN_C1_L, a1);
            }
            if (f0 < F)
                NN_C1_SFX(nn_c1_tail_pixel)(x, W, KW, ih0, iw0, i_lo, i_hi, j_lo, j_hi,
                                            k, F, f0, bias, relu, o);
        }
    }
}

/* The 3x3, stride-1 weight gradient, pixel by pixel: each dz row (one
 * pixel's F values) is loaded once and meets its nine taps, so the nine
 * taps' sums (18 vectors) and the bias sum stay in registers for the whole
 * image.  Tap by tap (the general loop below) re-reads all of dz from L2
 * nine times, and that, not the arithmetic, bounded it.  Taps outside the
 * image read the zero border of xp, a copy of x padded to (OH+2) x (OW+2)
 * (scratch), so every pixel runs the same straight-line code; a zero tap
 * adds 0 * dz = +-0, which leaves every sum as it was.  Each sum runs over
 * the pixels in row-major order on one chain (db: exactly as below), so the
 * result is the same whichever thread computes it.  Filters f0 .. F-1
 * after the last whole block are left to the caller. */
static long NN_C1_SFX(nn_c1_dw3x3)(
    const NN_C1_T *restrict x, long H, long W, long pt, long pl, long OH, long OW,
    const NN_C1_T *restrict dz, long F, NN_C1_T *restrict dk, NN_C1_T *restrict db,
    int accumulate, NN_C1_T *restrict xp)
{
    const long Wp = OW + 2, Hp = OH + 2;
    long r, c, oh, ow, f0, t;
    for (r = 0; r < Hp; r++)
        for (c = 0; c < Wp; c++) {
            long ih = r - pt, iw = c - pl;
            xp[r * Wp + c] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? x[ih * W + iw]
                                                                       : (NN_C1_T)0;
        }
    for (f0 = 0; f0 + NN_C1_CB <= F; f0 += NN_C1_CB) {
        NN_C1_V s0[9], s1[9], b0 = NN_C1_ZERO, b1 = NN_C1_ZERO;
        for (t = 0; t < 9; t++)
            s0[t] = s1[t] = NN_C1_ZERO;
        if (db != NULL && accumulate) {   /* db's sum starts where the general loop's does */
            b0 = NN_C1_LOAD(db + f0);
            b1 = NN_C1_LOAD(db + f0 + NN_C1_L);
        }
        for (oh = 0; oh < OH; oh++) {
            const NN_C1_T *xr = xp + oh * Wp;
            const NN_C1_T *g = dz + oh * OW * F + f0;
            for (ow = 0; ow < OW; ow++) {
                const NN_C1_V g0 = NN_C1_LOAD(g + ow * F);
                const NN_C1_V g1 = NN_C1_LOAD(g + ow * F + NN_C1_L);
                const NN_C1_T *xq = xr + ow;
                b0 += g0;
                b1 += g1;
#define NN_C1_TAP(t, off) do { const NN_C1_V xv = NN_C1_ZERO + xq[off]; \
                               s0[t] += xv * g0; s1[t] += xv * g1; } while (0)
                NN_C1_TAP(0, 0); NN_C1_TAP(1, 1); NN_C1_TAP(2, 2);
                NN_C1_TAP(3, Wp); NN_C1_TAP(4, Wp + 1); NN_C1_TAP(5, Wp + 2);
                NN_C1_TAP(6, 2 * Wp); NN_C1_TAP(7, 2 * Wp + 1); NN_C1_TAP(8, 2 * Wp + 2);
#undef NN_C1_TAP
            }
        }
        for (t = 0; t < 9; t++) {
            NN_C1_T *d = dk + t * F + f0;
            if (accumulate) {
                s0[t] = NN_C1_LOAD(d) + s0[t];
                s1[t] = NN_C1_LOAD(d + NN_C1_L) + s1[t];
            }
            NN_C1_STORE(d, s0[t]);
            NN_C1_STORE(d + NN_C1_L, s1[t]);
        }
        if (db != NULL) {
            NN_C1_STORE(db + f0, b0);
            NN_C1_STORE(db + f0 + NN_C1_L, b1);
        }
    }
    return f0;
}

/* dk (KH*KW x F) (+)= x-taps^T . dz;  db (F) (+)= the column sums of dz when
 * db is not NULL; "+=" when accumulate, "=" otherwise.  scratch: NULL, or
 * (for a 3x3 kernel) room for (OH+2)*(OW+2) elements, which lets a 3x3
 * stride-1 kernel take the pixel-by-pixel path above; no other kernel
 * touches it. */
static void NN_C1_SFX(nn_conv1c_backward_weights)(
    const NN_C1_T *restrict x, long H, long W, long KH, long KW, long sh, long sw,
    long pt, long pl, long OH, long OW, const NN_C1_T *restrict dz, long F,
    NN_C1_T *restrict dk, NN_C1_T *restrict db, int accumulate, NN_C1_T *restrict scratch)
{
    long oh, ow, i, j, f, f0, p, oh_lo, oh_hi, ow_lo, ow_hi, fs = 0;
    if (scratch != NULL && KH == 3 && KW == 3 && sh == 1 && sw == 1 && F >= NN_C1_CB) {
        /* whole filter blocks there; the loops below do the filters after them */
        fs = NN_C1_SFX(nn_c1_dw3x3)(x, H, W, pt, pl, OH, OW, dz, F, dk, db, accumulate,
                                    scratch);
        if (fs == F)
            return;
    }
    for (i = 0; i < KH; i++) {
        nn_c1_range(H, sh, pt, i, OH, &oh_lo, &oh_hi);
        for (j = 0; j < KW; j++) {
            NN_C1_T *d = dk + (i * KW + j) * F;
            nn_c1_range(W, sw, pl, j, OW, &ow_lo, &ow_hi);
            for (f0 = fs; f0 + NN_C1_CB <= F; f0 += NN_C1_CB) {
                /* four partial sums (pixels ow = 0, 1, 2, 3 mod 4 of each row):
                 * independent chains hide the multiply-add latency; they are
                 * combined in one fixed order */
                NN_C1_V a0 = NN_C1_ZERO, a1 = NN_C1_ZERO, b0 = NN_C1_ZERO,
                        b1 = NN_C1_ZERO, c0 = NN_C1_ZERO, c1 = NN_C1_ZERO,
                        e0 = NN_C1_ZERO, e1 = NN_C1_ZERO;
                for (oh = oh_lo; oh < oh_hi; oh++) {
                    const NN_C1_T *xr = x + (oh * sh - pt + i) * W - pl + j;
                    const NN_C1_T *g = dz + oh * OW * F + f0;
                    for (ow = ow_lo; ow + 3 < ow_hi; ow += 4) {
                        const NN_C1_T *gr = g + ow * F;
                        const NN_C1_V xa = NN_C1_ZERO + xr[ow * sw];
                        const NN_C1_V xb = NN_C1_ZERO + xr[(ow + 1) * sw];
                        const NN_C1_V xc = NN_C1_ZERO + xr[(ow + 2) * sw];
                        const NN_C1_V xe = NN_C1_ZERO + xr[(ow + 3) * sw];
                        a0 += xa * NN_C1_LOAD(gr);
                        a1 += xa * NN_C1_LOAD(gr + NN_C1_L);
                        b0 += xb * NN_C1_LOAD(gr + F);
                        b1 += xb * NN_C1_LOAD(gr + F + NN_C1_L);
                        c0 += xc * NN_C1_LOAD(gr + 2 * F);
                        c1 += xc * NN_C1_LOAD(gr + 2 * F + NN_C1_L);
                        e0 += xe * NN_C1_LOAD(gr + 3 * F);
                        e1 += xe * NN_C1_LOAD(gr + 3 * F + NN_C1_L);
                    }
                    for (; ow < ow_hi; ow++) {
                        const NN_C1_V xa = NN_C1_ZERO + xr[ow * sw];
                        a0 += xa * NN_C1_LOAD(g + ow * F);
                        a1 += xa * NN_C1_LOAD(g + ow * F + NN_C1_L);
                    }
                }
                a0 = (a0 + b0) + (c0 + e0);
                a1 = (a1 + b1) + (c1 + e1);
                if (accumulate) {
                    a0 = NN_C1_LOAD(d + f0) + a0;
                    a1 = NN_C1_LOAD(d + f0 + NN_C1_L) + a1;
                }
                NN_C1_STORE(d + f0, a0);
                NN_C1_STORE(d + f0 + NN_C1_L, a1);
            }
            for (f = f0; f < F; f++) {            /* the last filters, one at a time */
                NN_C1_T acc = accumulate ? d[f] : 0;
                for (oh = oh_lo; oh < oh_hi; oh++)
                    for (ow = ow_lo; ow < ow_hi; ow++)
                        acc += x[(oh * sh - pt + i) * W + ow * sw - pl + j]
                               * dz[(oh * OW + ow) * F + f];
                d[f] = acc;
            }
        }
    }
    if (db == NULL)
        return;
    for (f0 = fs; f0 + NN_C1_CB <= F; f0 += NN_C1_CB) {
        NN_C1_V a0 = NN_C1_ZERO, a1 = NN_C1_ZERO;
        if (accumulate) {
            a0 = NN_C1_LOAD(db + f0);
            a1 = NN_C1_LOAD(db + f0 + NN_C1_L);
        }
        for (p = 0; p < OH * OW; p++) {
            a0 += NN_C1_LOAD(dz + p * F + f0);
            a1 += NN_C1_LOAD(dz + p * F + f0 + NN_C1_L);
        }
        NN_C1_STORE(db + f0, a0);
        NN_C1_STORE(db + f0 + NN_C1_L, a1);
    }
    for (f = f0; f < F; f++) {
        NN_C1_T acc = accumulate ? db[f] : 0;
        for (p = 0; p < OH * OW; p++)
            acc += dz[p * F + f];
        db[f] = acc;
    }
}

#endif
