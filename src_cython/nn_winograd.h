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
 * nncore/ops/conv.py::winograd_conv3x3, spells the same steps).  Each image
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

#ifndef NN_KERNEL_LEVEL
/* Callers get the copy for this CPU through nn_dispatch.h; the code below is
 * compiled once per CPU level, by nn_level.c only.  (The sizes above are the
 * same at every level.) */
#include "nn_dispatch.h"
#else
#include "nn_gemm.h"

/*
 * The transforms are written once as bodies over a type TY with loads LD(p)
 * and stores ST(p, v), then run on vectors (GCC/Clang vector extensions,
 * NN_VBYTES wide, unaligned) and on scalars for the channels left over.
 * Why not plain loops: with 16 output rows a step the compiler gives up
 * proving they do not overlap and leaves the loop scalar (measured: the
 * weight gradient's dY transform took 19 us of a 64 us image).
 */
#define NN_WG_SLD(p) (*(p))
#define NN_WG_SST(p, v) (*(p) = (v))

/* v[xi * s + c] = (B^T d B)[xi]:  t = B^T d combines rows (0 - 2, 1 + 2,
 * 2 - 1, 1 - 3), then v = t B the same on columns */
#define NN_WG_IN_BODY(TY, LD, ST, c) do { \
    TY t00 = LD(d0 + c) - LD(d8 + c), t01 = LD(d1 + c) - LD(d9 + c); \
    TY t02 = LD(d2 + c) - LD(d10 + c), t03 = LD(d3 + c) - LD(d11 + c); \
    TY t10 = LD(d4 + c) + LD(d8 + c), t11 = LD(d5 + c) + LD(d9 + c); \
    TY t12 = LD(d6 + c) + LD(d10 + c), t13 = LD(d7 + c) + LD(d11 + c); \
    TY t20 = LD(d8 + c) - LD(d4 + c), t21 = LD(d9 + c) - LD(d5 + c); \
    TY t22 = LD(d10 + c) - LD(d6 + c), t23 = LD(d11 + c) - LD(d7 + c); \
    TY t30 = LD(d4 + c) - LD(d12 + c), t31 = LD(d5 + c) - LD(d13 + c); \
    TY t32 = LD(d6 + c) - LD(d14 + c), t33 = LD(d7 + c) - LD(d15 + c); \
    ST(v + 0 * s + c, t00 - t02);  ST(v + 1 * s + c, t01 + t02); \
    ST(v + 2 * s + c, t02 - t01);  ST(v + 3 * s + c, t01 - t03); \
    ST(v + 4 * s + c, t10 - t12);  ST(v + 5 * s + c, t11 + t12); \
    ST(v + 6 * s + c, t12 - t11);  ST(v + 7 * s + c, t11 - t13); \
    ST(v + 8 * s + c, t20 - t22);  ST(v + 9 * s + c, t21 + t22); \
    ST(v + 10 * s + c, t22 - t21); ST(v + 11 * s + c, t21 - t23); \
    ST(v + 12 * s + c, t30 - t32); ST(v + 13 * s + c, t31 + t32); \
    ST(v + 14 * s + c, t32 - t31); ST(v + 15 * s + c, t31 - t33); \
} while (0)

/* (y0 y1; y2 y3) = A^T m A + bias:  u = A^T m combines rows (0 + 1 + 2,
 * 1 - 2 - 3), then the same on columns; RELU(x) is identity or relu */
#define NN_WG_OUT_BODY(TY, LD, ST, RELU, f) do { \
    TY u00 = LD(m + 0 * s + f) + LD(m + 4 * s + f) + LD(m + 8 * s + f); \
    TY u01 = LD(m + 1 * s + f) + LD(m + 5 * s + f) + LD(m + 9 * s + f); \
    TY u02 = LD(m + 2 * s + f) + LD(m + 6 * s + f) + LD(m + 10 * s + f); \
    TY u03 = LD(m + 3 * s + f) + LD(m + 7 * s + f) + LD(m + 11 * s + f); \
    TY u10 = LD(m + 4 * s + f) - LD(m + 8 * s + f) - LD(m + 12 * s + f); \
    TY u11 = LD(m + 5 * s + f) - LD(m + 9 * s + f) - LD(m + 13 * s + f); \
    TY u12 = LD(m + 6 * s + f) - LD(m + 10 * s + f) - LD(m + 14 * s + f); \
    TY u13 = LD(m + 7 * s + f) - LD(m + 11 * s + f) - LD(m + 15 * s + f); \
    TY bb = LD(bias + f); \
    ST(y0 + f, RELU(u00 + u01 + u02 + bb)); ST(y1 + f, RELU(u01 - u02 - u03 + bb)); \
    ST(y2 + f, RELU(u10 + u11 + u12 + bb)); ST(y3 + f, RELU(u11 - u12 - u13 + bb)); \
} while (0)

/* m[xi * s + f] = (A dY A^T)[xi]:  r = A dY has rows (0, 0 + 1, 0 - 1, -1),
 * then the same on columns */
#define NN_WG_DOUT_BODY(TY, LD, ST, f) do { \
    TY r00 = LD(y0 + f), r01 = LD(y1 + f); \
    TY r10 = LD(y0 + f) + LD(y2 + f), r11 = LD(y1 + f) + LD(y3 + f); \
    TY r20 = LD(y0 + f) - LD(y2 + f), r21 = LD(y1 + f) - LD(y3 + f); \
    TY r30 = -LD(y2 + f), r31 = -LD(y3 + f); \
    ST(m + 0 * s + f, r00);  ST(m + 1 * s + f, r00 + r01); \
    ST(m + 2 * s + f, r00 - r01);  ST(m + 3 * s + f, -r01); \
    ST(m + 4 * s + f, r10);  ST(m + 5 * s + f, r10 + r11); \
    ST(m + 6 * s + f, r10 - r11);  ST(m + 7 * s + f, -r11); \
    ST(m + 8 * s + f, r20);  ST(m + 9 * s + f, r20 + r21); \
    ST(m + 10 * s + f, r20 - r21); ST(m + 11 * s + f, -r21); \
    ST(m + 12 * s + f, r30); ST(m + 13 * s + f, r30 + r31); \
    ST(m + 14 * s + f, r30 - r31); ST(m + 15 * s + f, -r31); \
} while (0)

/* u[xi * s + f] = (G g G^T)[xi]:  h = G g has rows (0, (0 + 1 + 2) / 2,
 * (0 - 1 + 2) / 2, 2), then the same on columns */
#define NN_WG_KER_BODY(TY, LD, ST, HALF, f) do { \
    TY h00 = LD(g00 + f), h01 = LD(g01 + f), h02 = LD(g02 + f); \
    TY h10 = (LD(g00 + f) + LD(g10 + f) + LD(g20 + f)) * HALF; \
    TY h11 = (LD(g01 + f) + LD(g11 + f) + LD(g21 + f)) * HALF; \
    TY h12 = (LD(g02 + f) + LD(g12 + f) + LD(g22 + f)) * HALF; \
    TY h20 = (LD(g00 + f) - LD(g10 + f) + LD(g20 + f)) * HALF; \
    TY h21 = (LD(g01 + f) - LD(g11 + f) + LD(g21 + f)) * HALF; \
    TY h22 = (LD(g02 + f) - LD(g12 + f) + LD(g22 + f)) * HALF; \
    TY h30 = LD(g20 + f), h31 = LD(g21 + f), h32 = LD(g22 + f); \
    ST(u + 0 * s + f, h00);  ST(u + 1 * s + f, (h00 + h01 + h02) * HALF); \
    ST(u + 2 * s + f, (h00 - h01 + h02) * HALF);  ST(u + 3 * s + f, h02); \
    ST(u + 4 * s + f, h10);  ST(u + 5 * s + f, (h10 + h11 + h12) * HALF); \
    ST(u + 6 * s + f, (h10 - h11 + h12) * HALF);  ST(u + 7 * s + f, h12); \
    ST(u + 8 * s + f, h20);  ST(u + 9 * s + f, (h20 + h21 + h22) * HALF); \
    ST(u + 10 * s + f, (h20 - h21 + h22) * HALF); ST(u + 11 * s + f, h22); \
    ST(u + 12 * s + f, h30); ST(u + 13 * s + f, (h30 + h31 + h32) * HALF); \
    ST(u + 14 * s + f, (h30 - h31 + h32) * HALF); ST(u + 15 * s + f, h32); \
} while (0)

#if NN_HAVE_VEC
typedef float nn_wg_vf __attribute__((vector_size(NN_VBYTES)));
typedef double nn_wg_vd __attribute__((vector_size(NN_VBYTES)));
typedef float nn_wg_vfu __attribute__((vector_size(NN_VBYTES), aligned(4), may_alias));
typedef double nn_wg_vdu __attribute__((vector_size(NN_VBYTES), aligned(8), may_alias));
#endif

#define NN_T float
#define NN_SFX(name) name##_f32
#define NN_WG_V nn_wg_vf
#define NN_WG_VU nn_wg_vfu
#include "nn_winograd.h"
#undef NN_T
#undef NN_SFX
#undef NN_WG_V
#undef NN_WG_VU
#define NN_T double
#define NN_SFX(name) name##_f64
#define NN_WG_V nn_wg_vd
#define NN_WG_VU nn_wg_vdu
#include "nn_winograd.h"
#undef NN_T
#undef NN_SFX
#undef NN_WG_V
#undef NN_WG_VU

#endif /* NN_KERNEL_LEVEL */

#elif defined(NN_T) && defined(NN_KERNEL_LEVEL)   /* --- the per-type part --- */

#undef NN_WG_L
#undef NN_WG_VLD
#undef NN_WG_VST
#undef NN_WG_VRELU
#undef NN_WG_SRELU
#undef NN_WG_ID
#define NN_WG_ID(x) (x)
#define NN_WG_SRELU(x) ((x) < 0 ? (NN_T)0 : (x))   /* keeps a NaN, like the others */
#if NN_HAVE_VEC
#define NN_WG_L ((long)(NN_VBYTES / sizeof(NN_T)))
#define NN_WG_VLD(p) ((NN_WG_V)(*(const NN_WG_VU *)(p)))
#define NN_WG_VST(p, v) (*(NN_WG_VU *)(p) = (v))
#define NN_WG_VRELU(v) ((NN_WG_V)((__typeof__((v) < (NN_WG_V){0}))(v) & ~((v) < (NN_WG_V){0})))
#endif

/* u[xi * s + f] = (G g G^T)[xi] for f in [0, n), g[i][j] = g_ij[f] (nine rows
 * of the kernel, contiguous over f) */
static void NN_SFX(nn_wg_kernel_rows)(
    const NN_T *restrict g00, const NN_T *restrict g01, const NN_T *restrict g02,
    const NN_T *restrict g10, const NN_T *restrict g11, const NN_T *restrict g12,
    const NN_T *restrict g20, const NN_T *restrict g21, const NN_T *restrict g22,
    long n, NN_T *restrict u, long s)
{
    const NN_T half = (NN_T)0.5;
    long f = 0;
#if NN_HAVE_VEC
    const NN_WG_V vhalf = (NN_WG_V){0} + half;
    for (; f + NN_WG_L <= n; f += NN_WG_L)
        NN_WG_KER_BODY(NN_WG_V, NN_WG_VLD, NN_WG_VST, vhalf, f);
#endif
    for (; f < n; f++)
        NN_WG_KER_BODY(NN_T, NN_WG_SLD, NN_WG_SST, half, f);
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
    long c = 0;
#if NN_HAVE_VEC
    for (; c + NN_WG_L <= n; c += NN_WG_L)
        NN_WG_IN_BODY(NN_WG_V, NN_WG_VLD, NN_WG_VST, c);
#endif
    for (; c < n; c++)
        NN_WG_IN_BODY(NN_T, NN_WG_SLD, NN_WG_SST, c);
}

/* The 2x2 outputs y0..y3 (row-major; one outside the image points at its
 * dump row) of one tile: y = A^T m A + bias, then relu if asked; m[xi * s + f]. */
static void NN_SFX(nn_wg_out_tile)(const NN_T *restrict m, long s, long n,
                                   const NN_T *restrict bias, int relu,
                                   NN_T *restrict y0, NN_T *restrict y1,
                                   NN_T *restrict y2, NN_T *restrict y3)
{
    long f = 0;
    if (relu) {
#if NN_HAVE_VEC
        for (; f + NN_WG_L <= n; f += NN_WG_L)
            NN_WG_OUT_BODY(NN_WG_V, NN_WG_VLD, NN_WG_VST, NN_WG_VRELU, f);
#endif
        for (; f < n; f++)
            NN_WG_OUT_BODY(NN_T, NN_WG_SLD, NN_WG_SST, NN_WG_SRELU, f);
    } else {
#if NN_HAVE_VEC
        for (; f + NN_WG_L <= n; f += NN_WG_L)
            NN_WG_OUT_BODY(NN_WG_V, NN_WG_VLD, NN_WG_VST, NN_WG_ID, f);
#endif
        for (; f < n; f++)
            NN_WG_OUT_BODY(NN_T, NN_WG_SLD, NN_WG_SST, NN_WG_ID, f);
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
    long f = 0;
#if NN_HAVE_VEC
    for (; f + NN_WG_L <= n; f += NN_WG_L)
        NN_WG_DOUT_BODY(NN_WG_V, NN_WG_VLD, NN_WG_VST, f);
#endif
    for (; f < n; f++)
        NN_WG_DOUT_BODY(NN_T, NN_WG_SLD, NN_WG_SST, f);
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
