# cython: language_level=3
"""Convolution and pooling, one image at a time (NHWC; twin: nncore/ops/conv.py).

The per-batch kernels (conv.pyx) and the fused training loop (training.pyx)
both share a batch's images between threads and call these functions on
each image, so the two compute every number with the same code in the same
order -- which is what makes them bitwise equal.  The formulas are in
conv.pyx's module docstring.

Entry points a caller uses (and must not open up: a faster algorithm for
some geometries can replace what happens inside them without touching the
callers):

  conv_forward_image        out = f(conv(x) + b) of one image
  conv_backward_image       one image's backward step: dz = dout * f'(.),
                            its weight-gradient partial, and (if asked) dx
  conv_backward_data_image  dx of one image from its dz
  conv_group_sum            the weight gradient: per-group partials added in
                            group order (elements [e0, e1) only, so threads
                            can split them)
  conv_winograd / conv_wg_* whether a convolution takes the Winograd path
                            (3x3, stride 1, >= 8 channels: nn_winograd.h),
                            its once-per-call kernel transforms, scratch
                            sizes, partial layout and final dW = G^T dU G
  maxpool_* / avgpool_*     pooling of one image, forward and backward
"""
from cython cimport floating
from libc.stdint cimport int32_t
from libc.string cimport memcpy, memset
from k_gemm cimport gemm_block
from k_activations cimport (bias_act_block, act_backward_block,
                            ACT_LINEAR, ACT_RELU)

cdef extern from "nn_conv1c.h" nogil:
    void nn_conv1c_forward_f32(const float *x, long H, long W, long KH, long KW,
                               long sh, long sw, long pt, long pl, long OH, long OW,
                               const float *k, long F, const float *bias, int relu,
                               float *out)
    void nn_conv1c_forward_f64(const double *x, long H, long W, long KH, long KW,
                               long sh, long sw, long pt, long pl, long OH, long OW,
                               const double *k, long F, const double *bias, int relu,
                               double *out)
    void nn_conv1c_backward_weights_f32(const float *x, long H, long W, long KH, long KW,
                                        long sh, long sw, long pt, long pl, long OH,
                                        long OW, const float *dz, long F, float *dk,
                                        float *db, int accumulate, float *scratch)
    void nn_conv1c_backward_weights_f64(const double *x, long H, long W, long KH, long KW,
                                        long sh, long sw, long pt, long pl, long OH,
                                        long OW, const double *dz, long F, double *dk,
                                        double *db, int accumulate, double *scratch)

cdef extern from "nn_bias_relu.h" nogil:
    void nn_bias_relu_f32(float *z, long rows, long F, const float *bias, int relu)
    void nn_bias_relu_f64(double *z, long rows, long F, const double *bias, int relu)
    void nn_relu_backward_f32(const float *da, const float *a, float *dz, long n)
    void nn_relu_backward_f64(const double *da, const double *a, double *dz, long n)

cdef extern from "nn_winograd.h" nogil:
    long nn_wg_ws_size(long cin, long cout)
    long nn_wg_u_size(long cin, long cout)
    long nn_wg_dw_part_size(long cin, long cout)
    long NN_WG_USTRIDE(long cin, long cout)
    void nn_wg_kernel_f32(const float *k, long C, long F, int flip, float *U)
    void nn_wg_kernel_f64(const double *k, long C, long F, int flip, double *U)
    int nn_wg_conv3x3_f32(const float *x, long H, long W, long cin, long OH, long OW,
                          long pt, long pl, const float *U, long cout, const float *bias,
                          int relu, float *out, float *ws)
    int nn_wg_conv3x3_f64(const double *x, long H, long W, long cin, long OH, long OW,
                          long pt, long pl, const double *U, long cout, const double *bias,
                          int relu, double *out, double *ws)
    int nn_wg_dw_image_f32(const float *x, long H, long W, long cin, const float *dz,
                           long OH, long OW, long pt, long pl, long cout, float *dU,
                           int accumulate, float *ws)
    int nn_wg_dw_image_f64(const double *x, long H, long W, long cin, const double *dz,
                           long OH, long OW, long pt, long pl, long cout, double *dU,
                           int accumulate, double *ws)
    void nn_wg_kernel_grad_f32(const float *dU, long C, long F, float *dw, float *ws)
    void nn_wg_kernel_grad_f64(const double *dU, long C, long F, double *dw, double *ws)

cdef extern from "nn_maxpool.h" nogil:
    void nn_maxpool_inside_f32(const float *x, long W, long C, long ph, long pw, long sh,
                               long sw, long OH, long OW, float *out, int32_t *arg)
    void nn_maxpool_inside_f64(const double *x, long W, long C, long ph, long pw, long sh,
                               long sw, long OH, long OW, double *out, int32_t *arg)
    void nn_maxpool_backward_tiled_f32(const float *dout, const int32_t *arg, long W,
                                       long C, long ph, long pw, long OH, long OW,
                                       float *dx)
    void nn_maxpool_backward_tiled_f64(const double *dout, const int32_t *arg, long W,
                                       long C, long ph, long pw, long OH, long OW,
                                       double *dx)

cdef enum:
    # images per weight-gradient partial sum: fixed, so that the order of
    # every addition is fixed whichever thread computes a group
    DW_GROUP = 4
    # the Winograd path's minimum channels in and out (ops/conv.py keeps the
    # same number): below it its 16 small products cost more than im2col's one
    WG_MIN_CHANNELS = 8


# ---------------------------------------------------------------- Winograd

cdef inline bint conv_winograd(long KH, long KW, long sh, long sw, long C,
                               long F) noexcept nogil:
    """Does this convolution take the Winograd F(2x2, 3x3) path?"""
    return (KH == 3 and KW == 3 and sh == 1 and sw == 1 and C >= WG_MIN_CHANNELS
            and F >= WG_MIN_CHANNELS)


cdef inline long conv_wg_scratch(long C, long F) noexcept nogil:
    """Per-thread scratch of the Winograd path (either direction)."""
    return max(nn_wg_ws_size(C, F), nn_wg_ws_size(F, C))


cdef inline long conv_wg_kernel_size(long C, long F) noexcept nogil:
    """Elements of a transformed kernel (conv_wg_kernel's U)."""
    return nn_wg_u_size(C, F)


cdef inline long conv_part_size(long KH, long KW, long C, long F, bint want_db,
                                bint wg) noexcept nogil:
    """Elements of one group's weight-gradient partial: [cols | 1]^T . dz's
    rows, or on the Winograd path 16 (C x F) matrices and a bias row."""
    if wg:
        return nn_wg_dw_part_size(C, F)
    return (KH * KW * C + (1 if want_db else 0)) * F


cdef inline void conv_wg_kernel(const floating *k, long C, long F, bint flip,
                                floating *U) noexcept nogil:
    """U = G g G^T of every channel pair (once a call / step); flip: of the
    input-gradient convolution (kernel turned by 180 degrees, in/out swapped)."""
    if floating is float:
        nn_wg_kernel_f32(k, C, F, flip, U)
    else:
        nn_wg_kernel_f64(k, C, F, flip, U)


cdef inline int _wg_conv(const floating *x, long H, long W, long cin, long OH, long OW,
                         long pt, long pl, const floating *U, long cout,
                         const floating *bias, bint relu, floating *out,
                         floating *ws) noexcept nogil:
    if floating is float:
        return nn_wg_conv3x3_f32(x, H, W, cin, OH, OW, pt, pl, U, cout, bias, relu, out, ws)
    else:
        return nn_wg_conv3x3_f64(x, H, W, cin, OH, OW, pt, pl, U, cout, bias, relu, out, ws)


cdef inline int _wg_dw(const floating *x, long H, long W, long cin, const floating *dz,
                       long OH, long OW, long pt, long pl, long cout, floating *dU,
                       bint accumulate, floating *ws) noexcept nogil:
    if floating is float:
        return nn_wg_dw_image_f32(x, H, W, cin, dz, OH, OW, pt, pl, cout, dU, accumulate, ws)
    else:
        return nn_wg_dw_image_f64(x, H, W, cin, dz, OH, OW, pt, pl, cout, dU, accumulate, ws)


cdef inline void conv_wg_group_sum(floating *parts, long groups, long C, long F,
                                   long e0, long e1) noexcept nogil:
    """Group 0's Winograd partial += the others, in group order, for its
    used entries [e0, e1) of 16*C*F + F (the matrices' padding is skipped)."""
    cdef long cf = C * F, su = NN_WG_USTRIDE(C, F), stride = nn_wg_dw_part_size(C, F)
    cdef long e, q, i
    cdef floating s
    for e in range(e0, e1):
        i = (e // cf) * su + e % cf if e < 16 * cf else 16 * su + e - 16 * cf
        s = parts[i]
        for q in range(1, groups):
            s = s + parts[q * stride + i]
        parts[i] = s


cdef inline void conv_wg_finish(const floating *dU, long C, long F, floating *dw,
                                floating *db, floating *scratch) noexcept nogil:
    """dW (3 x 3 x C x F) = G^T dU G and db (unless NULL) from the summed
    Winograd partial; scratch: 12 * F elements."""
    cdef long j, su = NN_WG_USTRIDE(C, F)
    if floating is float:
        nn_wg_kernel_grad_f32(dU, C, F, dw, scratch)
    else:
        nn_wg_kernel_grad_f64(dU, C, F, dw, scratch)
    if db != NULL:
        for j in range(F):
            db[j] = dU[16 * su + j]


cdef inline void bias_act_image(floating *z, long rows, long F, const floating *bias,
                                int act) noexcept nogil:
    """One image's rows (rows x F) <- f(z + bias): linear and relu through the
    vectorised nn_bias_relu.h (bitwise the same numbers), the others through
    Dense's element-wise kernel."""
    if act == ACT_LINEAR or act == ACT_RELU:
        if floating is float:
            nn_bias_relu_f32(z, rows, F, bias, act == ACT_RELU)
        else:
            nn_bias_relu_f64(z, rows, F, bias, act == ACT_RELU)
    else:
        bias_act_block(z, F, bias, 0, rows, 0, F, act)


cdef inline void act_backward_image(const floating *da, const floating *a, floating *dz,
                                    long rows, long F, int act) noexcept nogil:
    """dz = da * f'(.) for one image (not for ACT_LINEAR: the caller uses da)."""
    if act == ACT_RELU:
        if floating is float:
            nn_relu_backward_f32(da, a, dz, rows * F)
        else:
            nn_relu_backward_f64(da, a, dz, rows * F)
    else:
        act_backward_block(da, a, dz, F, 0, rows, 0, F, act)


cdef inline void conv1c_forward(const floating *x, long H, long W, long KH, long KW,
                                long sh, long sw, long pt, long pl, long OH, long OW,
                                const floating *k, long F, const floating *bias, bint relu,
                                floating *out) noexcept nogil:
    """One one-channel image, directly (nn_conv1c.h: no im2col), with the
    bias (unless NULL) and relu (if asked) added as it goes."""
    if floating is float:
        nn_conv1c_forward_f32(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, k, F, bias, relu,
                              out)
    else:
        nn_conv1c_forward_f64(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, k, F, bias, relu,
                              out)


cdef inline void conv1c_backward_weights(const floating *x, long H, long W, long KH,
                                         long KW, long sh, long sw, long pt, long pl,
                                         long OH, long OW, const floating *dz, long F,
                                         floating *dk, floating *db,
                                         bint accumulate, floating *scratch) noexcept nogil:
    """dk (+)= taps^T . dz and db (+)= column sums of dz, one one-channel image.
    scratch: NULL, or (for a 3x3 kernel) room for (OH+2)*(OW+2) elements: a
    3x3 stride-1 kernel then runs pixel by pixel on a zero-padded copy of x;
    no other kernel touches it."""
    if floating is float:
        nn_conv1c_backward_weights_f32(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, dz, F,
                                       dk, db, accumulate, scratch)
    else:
        nn_conv1c_backward_weights_f64(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, dz, F,
                                       dk, db, accumulate, scratch)


cdef inline void im2col_image(const floating *x, long H, long W, long C,
                              long KH, long KW, long sh, long sw, long pt, long pl,
                              long OH, long OW, floating *cols, long kk) noexcept nogil:
    """cols (OH*OW x KH*KW*C, rows kk >= KH*KW*C apart) of one image x (H x W x C)."""
    cdef long oh, ow, i, j, ih, iw
    cdef floating *row
    cdef const floating *src
    cdef long base
    if C == 1:
        # one channel (a grayscale first layer): patches are KW-long runs of
        # an image row; copy them without a test per element where the
        # patch lies inside the row
        for oh in range(OH):
            for i in range(KH):
                ih = oh * sh - pt + i
                for ow in range(OW):
                    row = cols + (oh * OW + ow) * kk + i * KW
                    base = ow * sw - pl
                    if ih < 0 or ih >= H:
                        for j in range(KW):
                            row[j] = 0
                    elif base >= 0 and base + KW <= W:
                        src = x + ih * W + base
                        for j in range(KW):
                            row[j] = src[j]
                    else:
                        for j in range(KW):
                            iw = base + j
                            row[j] = x[ih * W + iw] if 0 <= iw < W else 0
        return
    for oh in range(OH):
        for ow in range(OW):
            row = cols + (oh * OW + ow) * kk
            for i in range(KH):
                ih = oh * sh - pt + i
                if ih < 0 or ih >= H:
                    memset(row + i * KW * C, 0, sizeof(floating) * KW * C)
                    continue
                for j in range(KW):
                    iw = ow * sw - pl + j
                    if iw < 0 or iw >= W:
                        memset(row + (i * KW + j) * C, 0, sizeof(floating) * C)
                    else:
                        memcpy(row + (i * KW + j) * C, x + (ih * W + iw) * C,
                               sizeof(floating) * C)


cdef inline void col2im_image(const floating *cols, long H, long W, long C,
                              long KH, long KW, long sh, long sw, long pt, long pl,
                              long OH, long OW, floating *dx) noexcept nogil:
    """dx (H x W x C) = the sum of every cols entry at the place im2col read it."""
    cdef long oh, ow, i, j, ih, iw, c
    cdef long kk = KH * KW * C
    cdef const floating *row
    cdef const floating *src
    cdef floating *dst
    memset(dx, 0, sizeof(floating) * H * W * C)
    for oh in range(OH):
        for ow in range(OW):
            row = cols + (oh * OW + ow) * kk
            for i in range(KH):
                ih = oh * sh - pt + i
                if ih < 0 or ih >= H:
                    continue
                for j in range(KW):
                    iw = ow * sw - pl + j
                    if iw < 0 or iw >= W:
                        continue
                    src = row + (i * KW + j) * C
                    dst = dx + (ih * W + iw) * C
                    for c in range(C):
                        dst[c] += src[c]


cdef inline int conv_forward_image(const floating *x, long H, long W, long C, long KH,
                                   long KW, long sh, long sw, long pt, long pl, long OH,
                                   long OW, const floating *k, long F,
                                   const floating *bias, int act, floating *out,
                                   floating *cols, const floating *U,
                                   floating *wg_ws) noexcept nogil:
    """out (OH*OW x F) = f(conv(x, k) + bias) for one image x (H x W x C);
    bias may be NULL; cols: scratch of OH*OW*KH*KW*C elements.  U: NULL, or
    on the Winograd path (conv_winograd) the transformed kernel
    (conv_wg_kernel) with wg_ws this thread's conv_wg_scratch.  Returns
    nonzero when the GEMM could not get its workspace."""
    cdef long kk = KH * KW * C, rows = OH * OW
    cdef bint epilogue = act == ACT_LINEAR or act == ACT_RELU
    if U != NULL:
        # Winograd: bias and relu added as the tiles are written; other
        # activations afterwards, as on the im2col path
        if _wg_conv(x, H, W, C, OH, OW, pt, pl, U, F, bias if epilogue else NULL,
                    act == ACT_RELU, out, wg_ws) != 0:
            return 1
        if not epilogue:
            bias_act_image(out, rows, F, bias, act)
        return 0
    if C == 1 and (act == ACT_LINEAR or act == ACT_RELU):
        # one channel: the GEMM's inner dimension would be only KH*KW; the
        # direct loop is several times faster, and adds the bias and relu
        # before its sums leave the registers
        conv1c_forward(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, k, F, bias,
                       act == ACT_RELU, out)
        return 0
    if C == 1:
        conv1c_forward(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, k, F, NULL, False, out)
        bias_act_image(out, rows, F, bias, act)
        return 0
    im2col_image(x, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW, cols, kk)
    if gemm_block(False, False, kk, cols, kk, k, F, out, F, False, 0, rows, 0, F) != 0:
        return 1
    bias_act_image(out, rows, F, bias, act)
    return 0


cdef inline int conv_backward_data_image(const floating *dz, const floating *wt, long H,
                                         long W, long C, long KH, long KW, long sh,
                                         long sw, long pt, long pl, long OH, long OW,
                                         long F, floating *dcols,
                                         floating *dx, const floating *Uflip,
                                         floating *wg_ws) noexcept nogil:
    """dx (H x W x C) of one image from its dz (OH*OW x F): col2im(dz . W^T),
    with wt = W^T (F x KH*KW*C) and dcols scratch of OH*OW*KH*KW*C elements;
    on the Winograd path (Uflip: conv_wg_kernel(flip=True), wt unused) the
    convolution of dz with the turned kernel, padded by 2 - pad.  Returns
    nonzero when the GEMM could not get its workspace."""
    cdef long kk = KH * KW * C
    if Uflip != NULL:
        return _wg_conv(dz, OH, OW, F, H, W, 2 - pt, 2 - pl, Uflip, C, NULL, False, dx,
                        wg_ws)
    if gemm_block(False, False, F, dz, F, wt, kk, dcols, kk, False, 0, OH * OW, 0, kk) != 0:
        return 1
    col2im_image(dcols, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW, dx)
    return 0


cdef inline void conv_cols_ones(floating *cols, long rows, long kk1) noexcept nogil:
    """The column of ones conv_backward_image's cols carry (last of kk1) when
    the bias gradient is wanted: the bias is a weight on a constant input 1,
    so cols^T . dz gives db as one more row of the partial.  Set once per
    scratch before a run of conv_backward_image calls (im2col never writes it)."""
    cdef long p
    for p in range(rows):
        cols[p * kk1 + kk1 - 1] = 1


cdef inline int conv_backward_image(const floating *x, const floating *out,
                                    const floating *dout, int act, long H, long W, long C,
                                    long KH, long KW, long sh, long sw, long pt, long pl,
                                    long OH, long OW, long F, bint want_db,
                                    floating *part, bint accumulate, floating *cols,
                                    floating *dzb, const floating *wt, floating *dcols,
                                    floating *dx, bint wg, const floating *Uflip,
                                    floating *wg_ws) noexcept nogil:
    """One image's backward step:  dz = dout * f'(.) (through the forward
    output ``out``);  part (+)= [cols | 1]^T . dz  (the kernel gradient's
    (kk x F) rows, then the bias gradient's row when want_db: kk1 = kk + 1
    rows);  dx = conv_backward_data_image(dz) unless dx is NULL.

    cols: scratch of OH*OW*kk1 elements (with conv_cols_ones done when
    want_db), dzb: OH*OW*F, dcols: OH*OW*kk; ``accumulate``: add into part
    (every image of a group but its first).  On the Winograd path (wg:
    conv_winograd) part is the Winograd-domain partial (conv_part_size), dx
    uses Uflip (NULL when dx is), and wg_ws is this thread's conv_wg_scratch.
    Returns nonzero when a GEMM could not get its workspace."""
    cdef long kk = KH * KW * C, rows = OH * OW
    cdef long kk1 = kk + 1 if want_db else kk
    cdef const floating *dz
    cdef floating *bsum
    cdef long p, j
    if act == ACT_LINEAR:
        dz = dout
    else:
        act_backward_image(dout, out, dzb, rows, F, act)
        dz = dzb
    if wg:
        # Winograd: part (+)= dU of this image, then its bias row
        if _wg_dw(x, H, W, C, dz, OH, OW, pt, pl, F, part, accumulate, wg_ws) != 0:
            return 1
        if want_db:
            bsum = part + 16 * NN_WG_USTRIDE(C, F)
            if not accumulate:
                memset(bsum, 0, sizeof(floating) * F)
            for p in range(rows):
                for j in range(F):
                    bsum[j] = bsum[j] + dz[p * F + j]
    elif C == 1:
        # one channel: directly (the same sums, in the same fixed order
        # whoever computes them); dcols (rows x kk) is free until the dx
        # step below: for a 3x3 kernel that is 9*OH*OW >= (OH+2)*(OW+2)
        # elements, room for the 3x3 path's padded copy of x
        conv1c_backward_weights(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, dz, F, part,
                                (part + kk * F) if want_db else NULL, accumulate, dcols)
    else:
        im2col_image(x, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW, cols, kk1)
        if gemm_block(True, False, rows, cols, kk1, dz, F, part, F, accumulate,
                      0, kk1, 0, F) != 0:
            return 1
    if dx != NULL:
        return conv_backward_data_image(dz, wt, H, W, C, KH, KW, sh, sw, pt, pl, OH, OW,
                                        F, dcols, dx, Uflip, wg_ws)
    return 0


cdef inline void conv_group_sum(const floating *parts, long groups, long stride,
                                floating *dst, long e0, long e1) noexcept nogil:
    """dst[e] = parts[e] + parts[stride + e] + ... (groups terms, in group
    order) for e in [e0, e1): a gradient from its per-group partials."""
    cdef long e, q
    cdef floating s
    for e in range(e0, e1):
        s = parts[e]
        for q in range(1, groups):
            s = s + parts[q * stride + e]
        dst[e] = s


cdef inline void conv_transpose_kernel(const floating *k, long kk, long F, floating *wt,
                                       long e0, long e1) noexcept nogil:
    """wt (F x kk) = k^T for the kernel's elements [e0, e1) (k is kk x F)."""
    cdef long e
    for e in range(e0, e1):
        wt[(e % F) * kk + e // F] = k[e]


# ---------------------------------------------------------------- pooling

cdef inline void maxpool_forward_image(const floating *x, long H, long W, long C,
                                       long ph, long pw, long sh, long sw, long pt,
                                       long pl, long OH, long OW, floating *out,
                                       int32_t *argmax) noexcept nogil:
    """out = the maximum of each window of one image (padding never wins);
    argmax = where it was, as ih*W + iw (the first maximum in row-major order)."""
    cdef long oh, ow, c, i, j, h0, h1, w0, w1
    cdef const floating *src
    cdef floating *dst
    cdef int32_t *arg
    if pt == 0 and pl == 0 and (OH - 1) * sh + ph <= H and (OW - 1) * sw + pw <= W:
        # every window inside the image: the branch-free loops of nn_maxpool.h
        if floating is float:
            nn_maxpool_inside_f32(x, W, C, ph, pw, sh, sw, OH, OW, out, argmax)
        else:
            nn_maxpool_inside_f64(x, W, C, ph, pw, sh, sw, OH, OW, out, argmax)
        return
    for oh in range(OH):
        h0 = oh * sh - pt
        h1 = h0 + ph
        if h0 < 0: h0 = 0
        if h1 > H: h1 = H
        for ow in range(OW):
            w0 = ow * sw - pl
            w1 = w0 + pw
            if w0 < 0: w0 = 0
            if w1 > W: w1 = W
            dst = out + (oh * OW + ow) * C
            arg = argmax + (oh * OW + ow) * C
            src = x + (h0 * W + w0) * C
            for c in range(C):
                dst[c] = src[c]
                arg[c] = <int32_t>(h0 * W + w0)
            for i in range(h0, h1):
                for j in range(w0, w1):
                    src = x + (i * W + j) * C
                    for c in range(C):
                        # strictly greater: ties keep the first maximum
                        if src[c] > dst[c]:
                            dst[c] = src[c]
                            arg[c] = <int32_t>(i * W + j)


cdef inline void maxpool_backward_image(const floating *dout, const int32_t *argmax,
                                        long H, long W, long C, long OH, long OW,
                                        bint tiled, long ph, long pw,
                                        floating *dx) noexcept nogil:
    """dx = 0, then each window's gradient goes to where its maximum was.
    ``tiled``: the windows (ph x pw, strides = pool size, no padding) tile
    dx exactly, so each element is written once instead of cleared and
    scattered into."""
    cdef long p, c
    if tiled:
        if floating is float:
            nn_maxpool_backward_tiled_f32(dout, argmax, W, C, ph, pw, OH, OW, dx)
        else:
            nn_maxpool_backward_tiled_f64(dout, argmax, W, C, ph, pw, OH, OW, dx)
        return
    memset(dx, 0, sizeof(floating) * H * W * C)
    for p in range(OH * OW):
        for c in range(C):
            dx[argmax[p * C + c] * C + c] += dout[p * C + c]


cdef inline void avgpool_forward_image(const floating *x, long H, long W, long C,
                                       long ph, long pw, long sh, long sw, long pt,
                                       long pl, long OH, long OW,
                                       floating *out) noexcept nogil:
    """out = the mean of each window of one image over its inputs inside it."""
    cdef long oh, ow, c, i, j, h0, h1, w0, w1
    cdef const floating *src
    cdef floating *dst
    cdef floating inv
    for oh in range(OH):
        h0 = oh * sh - pt
        h1 = h0 + ph
        if h0 < 0: h0 = 0
        if h1 > H: h1 = H
        for ow in range(OW):
            w0 = ow * sw - pl
            w1 = w0 + pw
            if w0 < 0: w0 = 0
            if w1 > W: w1 = W
            dst = out + (oh * OW + ow) * C
            for c in range(C):
                dst[c] = 0
            for i in range(h0, h1):
                for j in range(w0, w1):
                    src = x + (i * W + j) * C
                    for c in range(C):
                        dst[c] += src[c]
            inv = <floating>(1.0 / ((h1 - h0) * (w1 - w0)))
            for c in range(C):
                dst[c] = dst[c] * inv


cdef inline void avgpool_backward_image(const floating *dout, long H, long W, long C,
                                        long ph, long pw, long sh, long sw, long pt,
                                        long pl, long OH, long OW,
                                        floating *dx) noexcept nogil:
    """dx = each window's gradient shared equally by the inputs it averaged."""
    cdef long oh, ow, c, i, j, h0, h1, w0, w1
    cdef const floating *g
    cdef floating *d
    cdef double inv_count
    memset(dx, 0, sizeof(floating) * H * W * C)
    for oh in range(OH):
        h0 = oh * sh - pt
        h1 = h0 + ph
        if h0 < 0: h0 = 0
        if h1 > H: h1 = H
        for ow in range(OW):
            w0 = ow * sw - pl
            w1 = w0 + pw
            if w0 < 0: w0 = 0
            if w1 > W: w1 = W
            g = dout + (oh * OW + ow) * C
            inv_count = 1.0 / ((h1 - h0) * (w1 - w0))
            for i in range(h0, h1):
                for j in range(w0, w1):
                    d = dx + (i * W + j) * C
                    for c in range(C):
                        d[c] += <floating>(g[c] * inv_count)
