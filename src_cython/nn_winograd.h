/*
 * nn_winograd.h -- 3x3, stride-1 convolution by Winograd's minimal
 * filtering F(2x2, 3x3): the same sums as im2col + GEMM with 2.25x fewer
 * multiplications.
 *
 * Why: in the book's chapter-8 CNN the second convolution (14x14x32 -> 64)
 * is two thirds of a training step, and its im2col GEMM already runs near
 * the cores' peak.  Only doing less arithmetic makes it faster.
 *
 * The idea (Lavin & Gray, 2015).  Cut the output into 2x2 tiles.  A tile
 * reads a 4x4 patch d of the (zero-padded) input; in one dimension, two
 * outputs of a 3-tap filter g over 4 inputs are
 *
 *     y = A^T [ (G g) * (B^T d) ]        (* : elementwise, 4 products, not 6)
 *
 *     B^T = | 1  0 -1  0 |    G = | 1    0    0  |    A^T = | 1  1  1  0 |
 *           | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *           | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *           | 0  1  0 -1 |        | 0    0    1  |
 *
 * and in two dimensions Y = A^T [ (G g G^T) * (B^T d B) ] A: 16 products
 * per tile instead of 36.  With channels, the elementwise product summed
 * over input channels is, for each of the 16 positions xi of the 4x4
 * transformed tile, a matrix product:
 *
 *     M[xi] (tiles x Cout) = V[xi] (tiles x Cin) . U[xi] (Cin x Cout)
 *
 * with V = B^T d B of every tile (the input transform), U = G g G^T of
 * every (input, output) channel pair (the kernel transform, once a call),
 * then Y = A^T M A per tile (the output transform).  The 16 products are
 * nncore's own GEMM (nn_gemm.h), so the heavy part runs in its microkernel.
 *
 * The input gradient of a stride-1 convolution is itself a convolution:
 * dx = conv(dz, W') with W'[a, b, f, c] = W[2-a, 2-b, c, f] and padding
 * 2 - pad (nn_wg_kernel's flip), so one routine serves both directions.
 *
 * The weight gradient follows the same three steps backwards (each step is
 * linear, so its gradient is its transpose):
 *
 *     dM[tile] = A . dY[tile] . A^T          (dY: the tile's 2x2 of dz)
 *     dU[xi]  += V[xi]^T . dM[xi]            16 products over the tiles
 *     dW       = G^T . dU . G                once, after summing the images
 *
 * again 16 products per tile where im2col's dW = cols^T . dz has 36.
 *
 * Numerics: the transforms only add, subtract and halve; the result equals
 * the direct sum to within a few float roundings (the NumPy twin,
 * nncore/ops/conv.py::conv2d_winograd, spells the same steps).  Each image
 * is computed alone, in a fixed order, so results never depend on the
 * number of threads.
 *
 * Transforms loop over channels innermost (NHWC keeps them contiguous), with
 * restrict pointers, so the compiler vectorises them.  Tiles go through in
 * blocks of NN_WG_TB so V and M stay in the core's L2 cache.
 */
#ifndef NN_WINOGRAD_H
#define NN_WINOGRAD_H

#include <string.h>
#include "nn_gemm.h"

/* tiles per block: 16 * 64 * (32 + 64) floats = 384 KB for the book's conv2 */
#define NN_WG_TB 64L

/* Distance between the 16 matrices V[xi] (M[xi]): a block's rows plus 16
 * elements.  Without the extra 16, the 16 matrices of the book's conv2 start
 * exactly 8 KB apart, so the 16 rows a tile writes (reads) fall into the
 * same L1 cache set and evict each other: the input transform ran 6x slower. */
#define NN_WG_STRIDE(ch) (NN_WG_TB * (ch) + 16)
/* likewise between the 16 matrices U[xi] of the transformed kernel */
#define NN_WG_USTRIDE(cin, cout) ((cin) * (cout) + 16)

/* scratch elements one thread needs: V, M, a zero row (padding pixels and
 * a missing bias read it) and four dump rows (a tile's outputs past the
 * image's edge: each its own, as the writes go through restrict pointers) */
static inline long nn_wg_ws_size(long cin, long cout)
{
    return 16 * (NN_WG_STRIDE(cin) + NN_WG_STRIDE(cout)) + (cin + cout) + 4 * cout;
}

/* elements of the transformed kernel U (and the scratch its flip needs) */
static inline long nn_wg_u_size(long cin, long cout)
{
    return 32 * NN_WG_USTRIDE(cin, cout);
}

/* elements of one weight-gradient partial: dU (16 matrices) and a bias row */
static inline long nn_wg_dw_part_size(long cin, long cout)
{
    return 16 * NN_WG_USTRIDE(cin, cout) + cout;
}

#define NN_T float
#define NN_SFX(name) name##_f32
#include "nn_winograd.h"
#undef NN_T
#undef NN_SFX
#define NN_T double
#define NN_SFX(name) name##_f64
#include "nn_winograd.h"
#undef NN_T
#undef NN_SFX

#elif defined(NN_T)   /* ------------ the per-type part ------------ */

/* u[xi * s + f] = (G g G^T)[xi] for f in [0, n), g[i][j] = g_ij[f] (nine rows
 * of the kernel, contiguous over f) */
static void NN_SFX(nn_wg_kernel_rows)(
    const NN_T *restrict g00, const NN_T *restrict g01, const NN_T *restrict g02,
    const NN_T *restrict g10, const NN_T *restrict g11, const NN_T *restrict g12,
    const NN_T *restrict g20, const NN_T *restrict g21, const NN_T *restrict g22,
    long n, NN_T *restrict u, long s)
{
    const NN_T half = (NN_T)0.5;
    long f;
    for (f = 0; f < n; f++) {
        /* h = G g: rows (0, (0 + 1 + 2) / 2, (0 - 1 + 2) / 2, 2) */
        NN_T h00 = g00[f], h01 = g01[f], h02 = g02[f];
        NN_T h10 = (g00[f] + g10[f] + g20[f]) * half, h11 = (g01[f] + g11[f] + g21[f]) * half,
             h12 = (g02[f] + g12[f] + g22[f]) * half;
        NN_T h20 = (g00[f] - g10[f] + g20[f]) * half, h21 = (g01[f] - g11[f] + g21[f]) * half,
             h22 = (g02[f] - g12[f] + g22[f]) * half;
        NN_T h30 = g20[f], h31 = g21[f], h32 = g22[f];
        /* u = h G^T: the same on columns */
        u[0 * s + f] = h00;  u[1 * s + f] = (h00 + h01 + h02) * half;
        u[2 * s + f] = (h00 - h01 + h02) * half;  u[3 * s + f] = h02;
        u[4 * s + f] = h10;  u[5 * s + f] = (h10 + h11 + h12) * half;
        u[6 * s + f] = (h10 - h11 + h12) * half;  u[7 * s + f] = h12;
        u[8 * s + f] = h20;  u[9 * s + f] = (h20 + h21 + h22) * half;
        u[10 * s + f] = (h20 - h21 + h22) * half; u[11 * s + f] = h22;
        u[12 * s + f] = h30; u[13 * s + f] = (h30 + h31 + h32) * half;
        u[14 * s + f] = (h30 - h31 + h32) * half; u[15 * s + f] = h32;
    }
}

/*
 * U[xi][ci][co] = (G g G^T)[xi] for each input channel ci and output channel
 * co of the 3x3 kernel k (HWIO, as Keras stores it: k[i][j][c][f]), the
 * matrix U[xi] at U + xi * NN_WG_USTRIDE(Cin, Cout); U holds nn_wg_u_size(C, F)
 * elements (its second half is scratch).
 *   flip == 0: the forward convolution, Cin = C, Cout = F, g = k[:, :, ci, co]
 *   flip == 1: the input-gradient convolution, Cin = F, Cout = C,
 *              g[i][j] = k[2-i][2-j][co][ci]
 * Both read k along f, where it is contiguous (vector loops); the flipped
 * one then transposes each of the 16 matrices.
 */
static void NN_SFX(nn_wg_kernel)(const NN_T *k, long C, long F, int flip, NN_T *U)
{
    long c, f, xi, i;
    long cf = C * F, su = NN_WG_USTRIDE(C, F);
    NN_T *T = flip ? U + 16 * su : U;
    const NN_T *g[9];
    for (c = 0; c < C; c++) {
        for (i = 0; i < 9; i++)
            g[i] = k + (flip ? 8 - i : i) * cf + c * F;
        NN_SFX(nn_wg_kernel_rows)(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8],
                                  F, T + c * F, su);
    }
    if (!flip)
        return;
    for (xi = 0; xi < 16; xi++)        /* U[xi] (F x C) = T[xi]^T */
        for (f = 0; f < F; f++)
            for (c = 0; c < C; c++)
                U[xi * su + f * C + c] = T[xi * su + c * F + f];
}

/* v[xi * s + c] = (B^T d B)[xi] for every channel c of one tile, d given as
 * its 16 input pixels (row-major in the 4x4 patch; a pixel in the padding
 * points at a row of zeros). */
static void NN_SFX(nn_wg_in_tile)(
    const NN_T *restrict d0, const NN_T *restrict d1, const NN_T *restrict d2,
    const NN_T *restrict d3, const NN_T *restrict d4, const NN_T *restrict d5,
    const NN_T *restrict d6, const NN_T *restrict d7, const NN_T *restrict d8,
    const NN_T *restrict d9, const NN_T *restrict d10, const NN_T *restrict d11,
    const NN_T *restrict d12, const NN_T *restrict d13, const NN_T *restrict d14,
    const NN_T *restrict d15, long n, NN_T *restrict v, long s)
{
    long c;
    for (c = 0; c < n; c++) {
        /* t = B^T d: rows combine (0 - 2, 1 + 2, 2 - 1, 1 - 3) */
        NN_T t00 = d0[c] - d8[c], t01 = d1[c] - d9[c], t02 = d2[c] - d10[c], t03 = d3[c] - d11[c];
        NN_T t10 = d4[c] + d8[c], t11 = d5[c] + d9[c], t12 = d6[c] + d10[c], t13 = d7[c] + d11[c];
        NN_T t20 = d8[c] - d4[c], t21 = d9[c] - d5[c], t22 = d10[c] - d6[c], t23 = d11[c] - d7[c];
        NN_T t30 = d4[c] - d12[c], t31 = d5[c] - d13[c], t32 = d6[c] - d14[c], t33 = d7[c] - d15[c];
        /* v = t B: the same on columns */
        v[0 * s + c] = t00 - t02;  v[1 * s + c] = t01 + t02;
        v[2 * s + c] = t02 - t01;  v[3 * s + c] = t01 - t03;
        v[4 * s + c] = t10 - t12;  v[5 * s + c] = t11 + t12;
        v[6 * s + c] = t12 - t11;  v[7 * s + c] = t11 - t13;
        v[8 * s + c] = t20 - t22;  v[9 * s + c] = t21 + t22;
        v[10 * s + c] = t22 - t21; v[11 * s + c] = t21 - t23;
        v[12 * s + c] = t30 - t32; v[13 * s + c] = t31 + t32;
        v[14 * s + c] = t32 - t31; v[15 * s + c] = t31 - t33;
    }
}

/* The 2x2 outputs y0..y3 (row-major; one outside the image points at its
 * dump row) of one tile: y = A^T m A + bias, then relu if asked; m[xi * s + f]. */
static void NN_SFX(nn_wg_out_tile)(const NN_T *restrict m, long s, long n,
                                   const NN_T *restrict bias, int relu,
                                   NN_T *restrict y0, NN_T *restrict y1,
                                   NN_T *restrict y2, NN_T *restrict y3)
{
    long f;
    for (f = 0; f < n; f++) {
        /* u = A^T m: rows (0 + 1 + 2, 1 - 2 - 3) */
        NN_T u00 = m[0 * s + f] + m[4 * s + f] + m[8 * s + f];
        NN_T u01 = m[1 * s + f] + m[5 * s + f] + m[9 * s + f];
        NN_T u02 = m[2 * s + f] + m[6 * s + f] + m[10 * s + f];
        NN_T u03 = m[3 * s + f] + m[7 * s + f] + m[11 * s + f];
        NN_T u10 = m[4 * s + f] - m[8 * s + f] - m[12 * s + f];
        NN_T u11 = m[5 * s + f] - m[9 * s + f] - m[13 * s + f];
        NN_T u12 = m[6 * s + f] - m[10 * s + f] - m[14 * s + f];
        NN_T u13 = m[7 * s + f] - m[11 * s + f] - m[15 * s + f];
        /* y = u A: the same on columns */
        NN_T a = u00 + u01 + u02 + bias[f], b = u01 - u02 - u03 + bias[f];
        NN_T c = u10 + u11 + u12 + bias[f], e = u11 - u12 - u13 + bias[f];
        if (relu) {
            /* v < 0 ? 0 : v keeps a NaN, like the other relu kernels */
            a = a < 0 ? 0 : a;  b = b < 0 ? 0 : b;
            c = c < 0 ? 0 : c;  e = e < 0 ? 0 : e;
        }
        y0[f] = a; y1[f] = b; y2[f] = c; y3[f] = e;
    }
}

/*
 * out (OH x OW x cout) = the 3x3 stride-1 convolution of one image x
 * (H x W x cin) zero-padded by pt rows above and pl columns left (and as
 * many below / right as the sizes need), + bias (NULL: none), then relu if
 * asked.  U: nn_wg_kernel's transform; ws: nn_wg_ws_size(cin, cout)
 * elements.  Returns -1 if the GEMM could not allocate its workspace.
 */
static int NN_SFX(nn_wg_conv3x3)(const NN_T *x, long H, long W, long cin, long OH,
                                 long OW, long pt, long pl, const NN_T *U, long cout,
                                 const NN_T *bias, int relu, NN_T *out, NN_T *ws)
{
    long TH = (OH + 1) / 2, TW = (OW + 1) / 2, ntiles = TH * TW;
    long t0, nb, t, xi, i, j;
    long sv = NN_WG_STRIDE(cin), sm = NN_WG_STRIDE(cout), su = NN_WG_USTRIDE(cin, cout);
    NN_T *V = ws, *M = V + 16 * sv;
    NN_T *zero = M + 16 * sm, *dump = zero + cin + cout;
    const NN_T *d[16];
    NN_T *y[4];
    const NN_T *b = bias ? bias : zero;
    memset(zero, 0, sizeof(NN_T) * (cin + cout));
    for (t0 = 0; t0 < ntiles; t0 += NN_WG_TB) {
        nb = ntiles - t0 < NN_WG_TB ? ntiles - t0 : NN_WG_TB;
        for (t = 0; t < nb; t++) {
            long ty = (t0 + t) / TW, tx = (t0 + t) % TW;
            for (i = 0; i < 4; i++) {
                long r = 2 * ty - pt + i;
                for (j = 0; j < 4; j++) {
                    long c = 2 * tx - pl + j;
                    d[i * 4 + j] = (r >= 0 && r < H && c >= 0 && c < W)
                                   ? x + (r * W + c) * cin : zero;
                }
            }
            NN_SFX(nn_wg_in_tile)(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8],
                                  d[9], d[10], d[11], d[12], d[13], d[14], d[15], cin,
                                  V + t * cin, sv);
        }
        for (xi = 0; xi < 16; xi++)
            if (NN_SFX(nn_gemm_block)(0, 0, cin, V + xi * sv, cin, U + xi * su,
                                      cout, M + xi * sm, cout, 0, 0, nb, 0,
                                      cout) != 0)
                return -1;
        for (t = 0; t < nb; t++) {
            long ty = (t0 + t) / TW, tx = (t0 + t) % TW;
            for (i = 0; i < 2; i++)
                for (j = 0; j < 2; j++) {
                    long r = 2 * ty + i, c = 2 * tx + j;
                    y[i * 2 + j] = (r < OH && c < OW) ? out + (r * OW + c) * cout
                                                        : dump + (i * 2 + j) * cout;
                }
            NN_SFX(nn_wg_out_tile)(M + t * cout, sm, cout, b, relu,
                                   y[0], y[1], y[2], y[3]);
        }
    }
    return 0;
}

/* m[xi * s + f] = (A dY A^T)[xi], the gradient of the 16 products of one
 * tile from its 2x2 output gradients y0..y3 (row-major; outside the image:
 * a zero row) */
static void NN_SFX(nn_wg_dout_tile)(const NN_T *restrict y0, const NN_T *restrict y1,
                                    const NN_T *restrict y2, const NN_T *restrict y3,
                                    long n, NN_T *restrict m, long s)
{
    long f;
    for (f = 0; f < n; f++) {
        /* r = A dY: rows (0, 0 + 1, 0 - 1, -1) */
        NN_T r00 = y0[f], r01 = y1[f];
        NN_T r10 = y0[f] + y2[f], r11 = y1[f] + y3[f];
        NN_T r20 = y0[f] - y2[f], r21 = y1[f] - y3[f];
        NN_T r30 = -y2[f], r31 = -y3[f];
        /* m = r A^T: the same on columns */
        m[0 * s + f] = r00;  m[1 * s + f] = r00 + r01;  m[2 * s + f] = r00 - r01;  m[3 * s + f] = -r01;
        m[4 * s + f] = r10;  m[5 * s + f] = r10 + r11;  m[6 * s + f] = r10 - r11;  m[7 * s + f] = -r11;
        m[8 * s + f] = r20;  m[9 * s + f] = r20 + r21;  m[10 * s + f] = r20 - r21; m[11 * s + f] = -r21;
        m[12 * s + f] = r30; m[13 * s + f] = r30 + r31; m[14 * s + f] = r30 - r31; m[15 * s + f] = -r31;
    }
}

/*
 * dU (+)= the Winograd-domain weight gradient of one image: x (H x W x cin)
 * as in nn_wg_conv3x3, dz (OH x OW x cout) the gradient of its output.
 * dU[xi] (cin x cout) at dU + xi * NN_WG_USTRIDE(cin, cout); accumulate == 0
 * overwrites it.  ws: nn_wg_ws_size(cin, cout).  -1: out of memory.
 */
static int NN_SFX(nn_wg_dw_image)(const NN_T *x, long H, long W, long cin,
                                  const NN_T *dz, long OH, long OW, long pt, long pl,
                                  long cout, NN_T *dU, int accumulate, NN_T *ws)
{
    long TH = (OH + 1) / 2, TW = (OW + 1) / 2, ntiles = TH * TW;
    long t0, nb, t, xi, i, j;
    long sv = NN_WG_STRIDE(cin), sm = NN_WG_STRIDE(cout), su = NN_WG_USTRIDE(cin, cout);
    NN_T *V = ws, *M = V + 16 * sv;
    NN_T *zero = M + 16 * sm;
    const NN_T *d[16];
    memset(zero, 0, sizeof(NN_T) * (cin + cout));
    for (t0 = 0; t0 < ntiles; t0 += NN_WG_TB) {
        nb = ntiles - t0 < NN_WG_TB ? ntiles - t0 : NN_WG_TB;
        for (t = 0; t < nb; t++) {
            long ty = (t0 + t) / TW, tx = (t0 + t) % TW;
            for (i = 0; i < 4; i++) {
                long r = 2 * ty - pt + i;
                for (j = 0; j < 4; j++) {
                    long c = 2 * tx - pl + j;
                    d[i * 4 + j] = (r >= 0 && r < H && c >= 0 && c < W)
                                   ? x + (r * W + c) * cin : zero;
                }
            }
            NN_SFX(nn_wg_in_tile)(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8],
                                  d[9], d[10], d[11], d[12], d[13], d[14], d[15], cin,
                                  V + t * cin, sv);
            for (i = 0; i < 2; i++)
                for (j = 0; j < 2; j++) {
                    long r = 2 * ty + i, c = 2 * tx + j;
                    d[i * 2 + j] = (r < OH && c < OW) ? dz + (r * OW + c) * cout : zero;
                }
            NN_SFX(nn_wg_dout_tile)(d[0], d[1], d[2], d[3], cout, M + t * cout, sm);
        }
        for (xi = 0; xi < 16; xi++)
            if (NN_SFX(nn_gemm_block)(1, 0, nb, V + xi * sv, cin, M + xi * sm, cout,
                                      dU + xi * su, cout, accumulate || t0 > 0,
                                      0, cin, 0, cout) != 0)
                return -1;
    }
    return 0;
}

/* out[f] = a * p0[f] + b * (p1[f] + p2[f]) + c * p3[f] -- one row of G^T X */
static void NN_SFX(nn_wg_gt_rows)(const NN_T *restrict x0, const NN_T *restrict x1,
                                  const NN_T *restrict x2, const NN_T *restrict x3,
                                  long n, NN_T *restrict r0, NN_T *restrict r1,
                                  NN_T *restrict r2)
{
    const NN_T half = (NN_T)0.5;
    long f;
    for (f = 0; f < n; f++) {
        /* G^T rows: (1, 1/2, 1/2, 0), (0, 1/2, -1/2, 0), (0, 1/2, 1/2, 1) */
        r0[f] = x0[f] + (x1[f] + x2[f]) * half;
        r1[f] = (x1[f] - x2[f]) * half;
        r2[f] = (x1[f] + x2[f]) * half + x3[f];
    }
}

/*
 * dW (3 x 3 x C x F, HWIO) = G^T dU G from the summed Winograd-domain
 * gradient dU (nn_wg_dw_image's layout); ws: 12 * F elements.
 */
static void NN_SFX(nn_wg_kernel_grad)(const NN_T *dU, long C, long F, NN_T *dw, NN_T *ws)
{
    long su = NN_WG_USTRIDE(C, F), cf = C * F;
    long c, b, i;
    NN_T *h = ws;                       /* h[i][b] = (G^T dU)[i][b]: 3 x 4 rows of F */
    for (c = 0; c < C; c++) {
        const NN_T *u = dU + c * F;
        for (b = 0; b < 4; b++)         /* rows: over a, for each column b */
            NN_SFX(nn_wg_gt_rows)(u + (0 * 4 + b) * su, u + (1 * 4 + b) * su,
                                  u + (2 * 4 + b) * su, u + (3 * 4 + b) * su, F,
                                  h + (0 * 4 + b) * F, h + (1 * 4 + b) * F,
                                  h + (2 * 4 + b) * F);
        for (i = 0; i < 3; i++)         /* columns: over b, for each row i */
            NN_SFX(nn_wg_gt_rows)(h + (i * 4 + 0) * F, h + (i * 4 + 1) * F,
                                  h + (i * 4 + 2) * F, h + (i * 4 + 3) * F, F,
                                  dw + (i * 3 + 0) * cf + c * F,
                                  dw + (i * 3 + 1) * cf + c * F,
                                  dw + (i * 3 + 2) * cf + c * F);
    }
}

#endif /* NN_WINOGRAD_H / NN_T */
