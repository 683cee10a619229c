# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Convolution and pooling kernels, NHWC (twin: ``nncore/ops/conv.py``).

A 2-D convolution becomes a matrix product one image at a time::

    cols[p, (i*KW + j)*C + c] = x[n, oh*sh - pad_top + i, ow*sw - pad_left + j, c]
                                 (0 outside the image),   p = oh*OW + ow
    out[n] (OH*OW x F) = cols (OH*OW x KH*KW*C) . W (KH*KW*C x F)

(an HWIO kernel, Keras's (kh, kw, in, out), is that W matrix as it lies in
memory).  Backward, for the same image and dZ = dL/dout[n]::

    dW    += cols^T . dZ                      (summed over the images)
    dcols  = dZ . W^T,   dx[n] = col2im(dcols) (each entry added back where
                                                im2col copied it from)

Why per image: one image's cols (196 x 288 floats for the book's second
layer, 226 KB) stays in L2 between being written and being multiplied, where
the whole batch's (7 MB) would go to memory and back twice.  Images are
shared between the threads; each uses its own slice of the caller's
workspace, so nothing is allocated per call.  The weight gradient is summed
in fixed groups of ``DW_GROUP`` images into per-group partials that are then
added in group order: the split between threads decides who computes a sum,
never its order, so results are bitwise the same for any thread count.

Special paths (same sums, same results up to the order of additions, still
independent of the thread count):
  * one input channel (a grayscale first layer): the GEMM's inner dimension
    would be KH*KW = 9, so the convolution and its weight gradient are
    computed directly, with bias and relu fused into the forward pass
    (nn_conv1c.h);
  * bias + linear/relu epilogue and relu's gradient: vectorised loops
    (nn_bias_relu.h), bitwise the generic ones;
  * max pooling with every window inside the image, and its gradient when
    the windows tile the image (nn_maxpool.h), bitwise the general loops;
  * 3x3 kernels with stride 1 and at least 8 channels in and out (the
    book's second convolution): the forward pass and the input gradient by
    Winograd's F(2x2, 3x3) (nn_winograd.h): 16 multiplications per 2x2 output
    tile instead of 36; the same sums to float rounding.  The weight gradient
    stays im2col + GEMM.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t
from libc.string cimport memcpy, memset
from k_common cimport nn_omp_max_threads, nn_ftz_enter, nn_ftz_exit
from k_gemm cimport gemm_block
from k_activations cimport (bias_act_block, act_backward_block, bias_grad_cols,
                            ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX)

_ACTIVATIONS = {"linear": ACT_LINEAR, "relu": ACT_RELU, "sigmoid": ACT_SIGMOID,
                "tanh": ACT_TANH, "softmax": ACT_SOFTMAX}


cdef int _act_code(str name) except -1:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: "
                         f"{', '.join(_ACTIVATIONS)}") from None

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
                                        float *db, int accumulate)
    void nn_conv1c_backward_weights_f64(const double *x, long H, long W, long KH, long KW,
                                        long sh, long sw, long pt, long pl, long OH,
                                        long OW, const double *dz, long F, double *dk,
                                        double *db, int accumulate)


cdef extern from "nn_bias_relu.h" nogil:
    void nn_bias_relu_f32(float *z, long rows, long F, const float *bias, int relu)
    void nn_bias_relu_f64(double *z, long rows, long F, const double *bias, int relu)
    void nn_relu_backward_f32(const float *da, const float *a, float *dz, long n)
    void nn_relu_backward_f64(const double *da, const double *a, double *dz, long n)


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


cdef extern from "nn_winograd.h" nogil:
    long nn_wg_ws_size(long cin, long cout)
    long nn_wg_u_size(long cin, long cout)
    long nn_wg_dw_part_size(long cin, long cout)
    long NN_WG_USTRIDE(long cin, long cout)
    int nn_wg_dw_image_f32(const float *x, long H, long W, long cin, const float *dz,
                           long OH, long OW, long pt, long pl, long cout, float *dU,
                           int accumulate, float *ws)
    int nn_wg_dw_image_f64(const double *x, long H, long W, long cin, const double *dz,
                           long OH, long OW, long pt, long pl, long cout, double *dU,
                           int accumulate, double *ws)
    void nn_wg_kernel_grad_f32(const float *dU, long C, long F, float *dw, float *ws)
    void nn_wg_kernel_grad_f64(const double *dU, long C, long F, double *dw, double *ws)
    void nn_wg_kernel_f32(const float *k, long C, long F, int flip, float *U)
    void nn_wg_kernel_f64(const double *k, long C, long F, int flip, double *U)
    int nn_wg_conv3x3_f32(const float *x, long H, long W, long cin, long OH, long OW,
                          long pt, long pl, const float *U, long cout, const float *bias,
                          int relu, float *out, float *ws)
    int nn_wg_conv3x3_f64(const double *x, long H, long W, long cin, long OH, long OW,
                          long pt, long pl, const double *U, long cout, const double *bias,
                          int relu, double *out, double *ws)


# kept equal to nncore/ops/conv.py::WINOGRAD_MIN_CHANNELS (tests check it)
WINOGRAD_MIN_CHANNELS = 8

cdef inline bint _winograd(long KH, long KW, long sh, long sw, long C, long F) noexcept nogil:
    """Does this convolution take the Winograd path?  3x3 stride 1 only;
    with few channels its 16 small products cost more than im2col's one."""
    return KH == 3 and KW == 3 and sh == 1 and sw == 1 and C >= 8 and F >= 8


def uses_winograd(long kh, long kw, long sh, long sw, long c, long f):
    """Does ``conv2d_forward`` / ``conv2d_backward`` compute this by Winograd?"""
    return _winograd(kh, kw, sh, sw, c, f)


cdef inline void wg_kernel(const floating *k, long C, long F, bint flip,
                           floating *U) noexcept nogil:
    if floating is float:
        nn_wg_kernel_f32(k, C, F, flip, U)
    else:
        nn_wg_kernel_f64(k, C, F, flip, U)


cdef inline int wg_conv3x3(const floating *x, long H, long W, long cin, long OH, long OW,
                           long pt, long pl, const floating *U, long cout,
                           const floating *bias, bint relu, floating *out,
                           floating *ws) noexcept nogil:
    """One image: out (OH x OW x cout) = the 3x3 stride-1 convolution of x
    (H x W x cin) with the transformed kernel U (+ bias, relu); -1: no memory."""
    if floating is float:
        return nn_wg_conv3x3_f32(x, H, W, cin, OH, OW, pt, pl, U, cout, bias, relu, out, ws)
    else:
        return nn_wg_conv3x3_f64(x, H, W, cin, OH, OW, pt, pl, U, cout, bias, relu, out, ws)


cdef inline int wg_dw_image(const floating *x, long H, long W, long cin,
                            const floating *dz, long OH, long OW, long pt, long pl,
                            long cout, floating *dU, bint accumulate,
                            floating *ws) noexcept nogil:
    """dU (+)= one image's weight gradient in the Winograd domain; -1: no memory."""
    if floating is float:
        return nn_wg_dw_image_f32(x, H, W, cin, dz, OH, OW, pt, pl, cout, dU, accumulate, ws)
    else:
        return nn_wg_dw_image_f64(x, H, W, cin, dz, OH, OW, pt, pl, cout, dU, accumulate, ws)


cdef inline void wg_kernel_grad(const floating *dU, long C, long F, floating *dw,
                                floating *ws) noexcept nogil:
    """dW = G^T dU G."""
    if floating is float:
        nn_wg_kernel_grad_f32(dU, C, F, dw, ws)
    else:
        nn_wg_kernel_grad_f64(dU, C, F, dw, ws)


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
                                         bint accumulate) noexcept nogil:
    """dk (+)= taps^T . dz and db (+)= column sums of dz, one one-channel image."""
    if floating is float:
        nn_conv1c_backward_weights_f32(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, dz, F,
                                       dk, db, accumulate)
    else:
        nn_conv1c_backward_weights_f64(x, H, W, KH, KW, sh, sw, pt, pl, OH, OW, dz, F,
                                       dk, db, accumulate)


cdef enum:
    # images per weight-gradient partial sum (fixed: see the module docstring)
    DW_GROUP = 4
    # pooling is a quick pass over memory, but a training batch of the
    # book's first pooling layer (800 K values) still takes ~0.3 ms on one
    # thread and half that on two; below this it is not worth waking the team
    POOL_PAR_MIN = 262144


cdef tuple _shape4(Py_ssize_t *s):
    return (s[0], s[1], s[2], s[3])


def _threads_for(long n_items):
    cdef int nt = nn_omp_max_threads()
    return max(1, min(nt, n_items))


def conv2d_workspace_size(long n, long oh, long ow, long kh, long kw, long c,
                          long f, bint backward=False, long threads=0):
    """Elements of scratch memory ``conv2d_forward`` / ``conv2d_backward`` need
    (threads=0: the current kernel thread count)."""
    cdef long t = threads if threads > 0 else nn_omp_max_threads()
    cdef long kk = kh * kw * c, rows = oh * ow
    # a 3x3 kernel may take the Winograd path (with stride 1): room for its
    # transformed kernel and per-thread tiles, after the im2col scratch
    cdef long wg = _wg_size(kh, kw, c, f, t)
    cdef long groups = (n + DW_GROUP - 1) // DW_GROUP
    if not backward:
        return t * rows * kk + wg
    if wg:
        # the weight gradient's partials in the Winograd domain, and G^T dU G's rows
        wg += groups * nn_wg_dw_part_size(c, f) + 12 * f
    return t * (rows * (2 * kk + 1) + rows * f) + f * kk + groups * (kk + 1) * f + wg


cdef long _wg_size(long kh, long kw, long c, long f, long t) noexcept nogil:
    """Winograd scratch: the transformed kernel (either direction) and each
    thread's tiles (the larger of the two directions)."""
    if not _winograd(kh, kw, 1, 1, c, f):
        return 0
    return nn_wg_u_size(c, f) + t * max(nn_wg_ws_size(c, f), nn_wg_ws_size(f, c))


cdef inline void im2col_image(const floating *x, long H, long W, long C,
                              long KH, long KW, long sh, long sw, long pt, long pl,
                              long OH, long OW, floating *cols, long kk) noexcept nogil:
    """cols (OH*OW x KH*KW*C, rows kk >= KH*KW*C apart) of one image x (H x W x C)."""
    cdef long oh, ow, i, j, ih, iw, c
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
                    elif C == 1:
                        row[i * KW + j] = x[ih * W + iw]
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


def _check_conv(str name, tuple xs, tuple ks, tuple os, long sh, long sw, long pt, long pl):
    if sh <= 0 or sw <= 0:
        raise ValueError(f"{name}: strides must be positive, got ({sh}, {sw})")
    if pt < 0 or pl < 0 or pt >= ks[0] or pl >= ks[1]:
        raise ValueError(f"{name}: padding ({pt}, {pl}) out of range for a "
                         f"{ks[0]}x{ks[1]} kernel")
    if ks[2] != xs[3]:
        raise ValueError(f"{name}: x has {xs[3]} channels, the kernel expects {ks[2]}")
    if os[0] != xs[0] or os[3] != ks[3]:
        raise ValueError(f"{name}: out has shape {os}, expected ({xs[0]}, ., ., {ks[3]})")
    # every output position must read at least its top-left tap inside the
    # padded input: OH = (H + pad_total - KH) // sh + 1 with pad_total <= 2*pt+1
    if os[1] <= 0 or os[2] <= 0 or (os[1] - 1) * sh - pt + ks[0] > xs[1] + ks[0] - 1 \
            or (os[2] - 1) * sw - pl + ks[1] > xs[2] + ks[1] - 1:
        raise ValueError(f"{name}: output {os[1:3]} does not fit input {xs[1:3]} with "
                         f"kernel {ks[:2]}, strides ({sh}, {sw}), padding ({pt}, {pl})")


def conv2d_forward(const floating[:, :, :, ::1] x not None,
                   const floating[:, :, :, ::1] kernel not None, const floating[::1] bias,
                   floating[:, :, :, ::1] out not None, floating[::1] ws not None,
                   str activation, long stride_h, long stride_w, long pad_top,
                   long pad_left):
    """out[n] = f(im2col(x[n]) . kernel + bias)  (bias may be None).

    x (N, H, W, C), kernel (KH, KW, C, F), out (N, OH, OW, F); ws: scratch of
    ``conv2d_workspace_size(N, OH, OW, KH, KW, C, F)`` elements.  The bias and
    activation are the Dense layer's kernel (``bias_act_forward``), applied to
    each image's rows while they are still in cache."""
    cdef long N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef long KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3]
    cdef long OH = out.shape[1], OW = out.shape[2]
    cdef long kk = KH * KW * C, rows = OH * OW
    cdef long n
    cdef int t, nt, rc = 0
    cdef unsigned int fpu
    cdef floating *cols
    cdef const floating *bp = NULL
    cdef int act = _act_code(activation)
    cdef bint wino = _winograd(KH, KW, stride_h, stride_w, C, F)
    cdef bint wg_epilogue = act == ACT_LINEAR or act == ACT_RELU
    cdef floating *U = NULL
    cdef floating *wg_ws = NULL
    _check_conv("conv2d_forward", _shape4(x.shape), _shape4(kernel.shape),
                _shape4(out.shape), stride_h, stride_w, pad_top, pad_left)
    nt = _threads_for(N)
    # Winograd's scratch (if used) after the im2col one, as the size says
    cdef long need = nt * rows * kk + (nn_wg_u_size(C, F) + nt * nn_wg_ws_size(C, F)
                                       if wino else 0)
    if ws.shape[0] < need:
        raise ValueError(f"conv2d_forward: workspace has {ws.shape[0]} elements, "
                         f"needs {need}")
    if bias is not None:
        if bias.shape[0] != F:
            raise ValueError(f"conv2d_forward: bias has {bias.shape[0]} entries for {F} filters")
        bp = &bias[0]
    if N == 0 or F == 0:
        return
    if wino:
        U = &ws[0] + nt * rows * kk
        wg_ws = U + nn_wg_u_size(C, F)
        with nogil:
            wg_kernel(&kernel[0, 0, 0, 0], C, F, False, U)
    with nogil, parallel(num_threads=nt):
        fpu = nn_ftz_enter()
        t = threadid_()
        cols = &ws[0] + t * rows * kk
        # dynamic: on a busy machine a thread that loses its core leaves its
        # images to the other (results do not depend on who computes what)
        for n in prange(N, schedule="dynamic"):
            if wino:
                # bias and relu are added as the tiles are written; other
                # activations afterwards, as on the im2col path
                if wg_conv3x3(&x[n, 0, 0, 0], H, W, C, OH, OW, pad_top, pad_left, U, F,
                              bp if wg_epilogue else NULL, act == ACT_RELU,
                              &out[n, 0, 0, 0], wg_ws + t * nn_wg_ws_size(C, F)) != 0:
                    rc += 1
                if not wg_epilogue:
                    bias_act_image(&out[n, 0, 0, 0], rows, F, bp, act)
            elif C == 1 and (act == ACT_LINEAR or act == ACT_RELU):
                # one channel: the GEMM's inner dimension would be only
                # KH*KW; the direct loop is several times faster, and adds
                # the bias and relu before its sums leave the registers
                conv1c_forward(&x[n, 0, 0, 0], H, W, KH, KW, stride_h, stride_w,
                               pad_top, pad_left, OH, OW, &kernel[0, 0, 0, 0], F,
                               bp, act == ACT_RELU, &out[n, 0, 0, 0])
            elif C == 1:
                conv1c_forward(&x[n, 0, 0, 0], H, W, KH, KW, stride_h, stride_w,
                               pad_top, pad_left, OH, OW, &kernel[0, 0, 0, 0], F,
                               NULL, False, &out[n, 0, 0, 0])
                bias_act_image(&out[n, 0, 0, 0], rows, F, bp, act)
            else:
                im2col_image(&x[n, 0, 0, 0], H, W, C, KH, KW, stride_h, stride_w,
                             pad_top, pad_left, OH, OW, cols, kk)
                if gemm_block(False, False, kk, cols, kk, &kernel[0, 0, 0, 0], F,
                              &out[n, 0, 0, 0], F, False, 0, rows, 0, F) != 0:
                    rc += 1
                bias_act_image(&out[n, 0, 0, 0], rows, F, bp, act)
        nn_ftz_exit(fpu)
    if rc:
        raise MemoryError("conv2d_forward: could not allocate the GEMM workspace")


cdef extern from "nn_omp.h" nogil:
    int nn_omp_thread_num()

cdef inline int threadid_() noexcept nogil:
    return nn_omp_thread_num()


def conv2d_backward(const floating[:, :, :, ::1] x not None,
                    const floating[:, :, :, ::1] kernel not None,
                    const floating[:, :, :, ::1] out not None,
                    const floating[:, :, :, ::1] dout not None, str activation,
                    floating[:, :, :, ::1] dkernel not None, floating[::1] dbias,
                    floating[:, :, :, ::1] dx, floating[::1] ws not None,
                    long stride_h, long stride_w, long pad_top, long pad_left):
    """With dz[n] = dout[n] * f'(.) (through the forward output ``out``):
    dkernel = sum_n im2col(x[n])^T . dz[n];  dbias = sum of dz over images and
    pixels;  dx[n] = col2im(dz[n] . kernel^T).

    dbias and dx may be None (no bias; the first layer needs no input
    gradient).  ws: scratch of ``conv2d_workspace_size(N, OH, OW, KH, KW, C,
    F, backward=True)`` elements."""
    cdef long N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef long KH = kernel.shape[0], KW = kernel.shape[1], F = kernel.shape[3]
    cdef long OH = dout.shape[1], OW = dout.shape[2]
    cdef long kk = KH * KW * C, rows = OH * OW
    cdef long groups = (N + DW_GROUP - 1) // DW_GROUP
    cdef long g, n, n0, n1, e, q, i, j
    cdef int t, nt, rc = 0
    cdef bint want_dx = dx is not None
    cdef unsigned int fpu
    cdef floating *cols
    cdef floating *dcols
    cdef floating *dzb
    cdef const floating *dz
    cdef long p
    cdef bint want_db = dbias is not None
    cdef int act = _act_code(activation)
    cdef floating *wt
    cdef floating *parts
    cdef floating *dw
    cdef floating s
    cdef const floating *kp
    cdef bint wg = _winograd(KH, KW, stride_h, stride_w, C, F)
    cdef bint wino = want_dx and wg
    cdef floating *U = NULL
    cdef floating *wg_ws = NULL
    cdef floating *wparts = NULL
    cdef floating *bsum
    cdef long pp, jj, idx
    cdef long wpart = nn_wg_dw_part_size(C, F), su = NN_WG_USTRIDE(C, F), cf = C * F
    cdef long wg_tws = max(nn_wg_ws_size(C, F), nn_wg_ws_size(F, C))
    _check_conv("conv2d_backward", _shape4(x.shape), _shape4(kernel.shape),
                _shape4(dout.shape), stride_h, stride_w, pad_top, pad_left)
    if _shape4(dkernel.shape) != _shape4(kernel.shape):
        raise ValueError(f"conv2d_backward: dkernel has shape {_shape4(dkernel.shape)}, "
                         f"expected {_shape4(kernel.shape)}")
    if _shape4(out.shape) != _shape4(dout.shape):
        raise ValueError(f"conv2d_backward: out {_shape4(out.shape)} and dout "
                         f"{_shape4(dout.shape)} must have the same shape")
    if want_db and dbias.shape[0] != F:
        raise ValueError(f"conv2d_backward: dbias has {dbias.shape[0]} entries for {F} filters")
    if want_dx and _shape4(dx.shape) != _shape4(x.shape):
        raise ValueError(f"conv2d_backward: dx has shape {_shape4(dx.shape)}, "
                         f"expected {_shape4(x.shape)}")
    nt = _threads_for(groups)
    # cols carries a column of ones when dbias is wanted: the bias is a weight
    # on a constant input 1, so cols^T . dz gives db as one more row of dW
    cdef long kk1 = kk + 1 if want_db else kk
    need = nt * (rows * (2 * kk + 1) + rows * F) + F * kk + groups * (kk + 1) * F
    if wg:
        need += nn_wg_u_size(C, F) + nt * wg_tws + groups * wpart + 12 * F
    if ws.shape[0] < need:
        raise ValueError(f"conv2d_backward: workspace has {ws.shape[0]} elements, needs {need}")
    if kk == 0 or F == 0:
        return
    if N == 0:
        dkernel[...] = 0
        if want_db:
            dbias[...] = 0
        return
    wt = &ws[0] + nt * (rows * (2 * kk + 1) + rows * F)
    parts = wt + F * kk
    dw = &dkernel[0, 0, 0, 0]
    kp = &kernel[0, 0, 0, 0]
    if wg:
        U = parts + groups * (kk + 1) * F
        wg_ws = U + nn_wg_u_size(C, F)
        wparts = wg_ws + nt * wg_tws
    with nogil:
        if wino:
            # dx = conv(dz, W turned by 180 degrees, in/out swapped), pad 2 - p
            wg_kernel(kp, C, F, True, U)
        else:
            # W^T (F x kk) once, so dcols = dZ . W^T is a plain row-major product
            for i in range(kk):
                for j in range(F):
                    wt[j * kk + i] = kp[i * F + j]
    with nogil, parallel(num_threads=nt):
        fpu = nn_ftz_enter()
        t = threadid_()
        cols = &ws[0] + t * (rows * (2 * kk + 1) + rows * F)
        dcols = cols + rows * kk1
        dzb = dcols + rows * kk
        if want_db:
            for p in range(rows):
                cols[p * kk1 + kk] = 1
        for g in prange(groups, schedule="dynamic"):
            n0 = g * DW_GROUP
            n1 = n0 + DW_GROUP if n0 + DW_GROUP < N else N
            for n in range(n0, n1):
                if act == ACT_LINEAR:
                    dz = &dout[n, 0, 0, 0]
                else:
                    act_backward_image(&dout[n, 0, 0, 0], &out[n, 0, 0, 0], dzb,
                                       rows, F, act)
                    dz = dzb
                if C == 1:
                    # one channel: directly (the same sums, in the same
                    # fixed order whoever computes them; dx below as usual)
                    conv1c_backward_weights(&x[n, 0, 0, 0], H, W, KH, KW, stride_h,
                                            stride_w, pad_top, pad_left, OH, OW, dz, F,
                                            parts + g * kk1 * F,
                                            (parts + g * kk1 * F + kk * F) if want_db
                                            else NULL, n > n0)
                elif wg:
                    # Winograd: dU[g] (+)= V^T . dM over this image's tiles
                    if wg_dw_image(&x[n, 0, 0, 0], H, W, C, dz, OH, OW, pad_top, pad_left,
                                   F, wparts + g * wpart, n > n0, wg_ws + t * wg_tws) != 0:
                        rc += 1
                    if want_db:
                        bsum = wparts + g * wpart + 16 * su
                        if n == n0:
                            memset(bsum, 0, sizeof(floating) * F)
                        for pp in range(rows):
                            for jj in range(F):
                                bsum[jj] = bsum[jj] + dz[pp * F + jj]
                else:
                    im2col_image(&x[n, 0, 0, 0], H, W, C, KH, KW, stride_h, stride_w,
                                 pad_top, pad_left, OH, OW, cols, kk1)
                    # partial[g] (+)= cols^T . dZ[n]   (its last row: db, with the ones)
                    if gemm_block(True, False, rows, cols, kk1, dz, F,
                                  parts + g * kk1 * F, F, n > n0, 0, kk1, 0, F) != 0:
                        rc += 1
                if wino:
                    if wg_conv3x3(dz, OH, OW, F, H, W, 2 - pad_top, 2 - pad_left, U, C,
                                  NULL, False, &dx[n, 0, 0, 0], wg_ws + t * wg_tws) != 0:
                        rc += 1
                elif want_dx:
                    if gemm_block(False, False, F, dz, F, wt, kk,
                                  dcols, kk, False, 0, rows, 0, kk) != 0:
                        rc += 1
                    col2im_image(dcols, H, W, C, KH, KW, stride_h, stride_w,
                                 pad_top, pad_left, OH, OW, &dx[n, 0, 0, 0])
        # dW = the partials added in group order (threads split the elements)
        if wg:
            # into group 0's partial (its used entries: 16 C x F matrices, db)
            for e in prange(16 * cf + F, schedule="static"):
                idx = (e // cf) * su + e % cf if e < 16 * cf else 16 * su + e - 16 * cf
                s = wparts[idx]
                for q in range(1, groups):
                    s = s + wparts[q * wpart + idx]
                wparts[idx] = s
        else:
            for e in prange(kk * F, schedule="static"):
                s = parts[e]
                for q in range(1, groups):
                    s = s + parts[q * kk1 * F + e]
                dw[e] = s
        nn_ftz_exit(fpu)
    if wg:
        fpu = nn_ftz_enter()
        wg_kernel_grad(wparts, C, F, dw, wparts + groups * wpart)
        nn_ftz_exit(fpu)
        if want_db:
            for j in range(F):
                dbias[j] = wparts[16 * su + j]
    elif want_db:
        for j in range(F):
            s = parts[kk * F + j]
            for q in range(1, groups):
                s = s + parts[q * kk1 * F + kk * F + j]
            dbias[j] = s
    if rc:
        raise MemoryError("conv2d_backward: could not allocate the GEMM workspace")


# ---------------------------------------------------------------- pooling

def _check_pool(str name, tuple xs, tuple os, long ph, long pw, long sh, long sw,
                long pt, long pl):
    if ph <= 0 or pw <= 0 or sh <= 0 or sw <= 0:
        raise ValueError(f"{name}: pool size and strides must be positive")
    if pt < 0 or pl < 0 or pt >= ph or pl >= pw:
        raise ValueError(f"{name}: padding ({pt}, {pl}) out of range for a {ph}x{pw} pool")
    if os[0] != xs[0] or os[3] != xs[3]:
        raise ValueError(f"{name}: out has shape {os}, input {xs}")
    if os[1] <= 0 or os[2] <= 0 or (os[1] - 1) * sh - pt >= xs[1] or (os[2] - 1) * sw - pl >= xs[2]:
        raise ValueError(f"{name}: output {os[1:3]} does not fit input {xs[1:3]} with "
                         f"pool ({ph}, {pw}), strides ({sh}, {sw}), padding ({pt}, {pl})")


def maxpool2d_forward(const floating[:, :, :, ::1] x not None,
                      floating[:, :, :, ::1] out not None,
                      int32_t[:, :, :, ::1] argmax not None,
                      long pool_h, long pool_w, long stride_h, long stride_w,
                      long pad_top, long pad_left):
    """out = the maximum of each window (padding never wins); argmax = where it
    was, as ih*W + iw within the image (the first maximum in row-major order)."""
    cdef long N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef long OH = out.shape[1], OW = out.shape[2]
    cdef long n, oh, ow, c, i, j, ih, iw, h0, h1, w0, w1
    cdef const floating *src
    cdef floating *dst
    cdef int32_t *arg
    cdef int nt
    _check_pool("maxpool2d_forward", _shape4(x.shape), _shape4(out.shape),
                pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    if _shape4(argmax.shape) != _shape4(out.shape):
        raise ValueError("maxpool2d_forward: argmax must have the shape of out")
    if H * W >= 2147483647:
        raise ValueError("maxpool2d_forward: image too large for int32 indices")
    nt = _threads_for(N if N * H * W * C >= POOL_PAR_MIN else 1)
    # every window inside the image: the branch-free loops of nn_maxpool.h
    cdef bint inside = (pad_top == 0 and pad_left == 0 and (OH - 1) * stride_h + pool_h <= H
                        and (OW - 1) * stride_w + pool_w <= W)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            if inside:
                if floating is float:
                    nn_maxpool_inside_f32(&x[n, 0, 0, 0], W, C, pool_h, pool_w, stride_h,
                                          stride_w, OH, OW, &out[n, 0, 0, 0],
                                          &argmax[n, 0, 0, 0])
                else:
                    nn_maxpool_inside_f64(&x[n, 0, 0, 0], W, C, pool_h, pool_w, stride_h,
                                          stride_w, OH, OW, &out[n, 0, 0, 0],
                                          &argmax[n, 0, 0, 0])
                continue
            for oh in range(OH):
                h0 = oh * stride_h - pad_top
                h1 = h0 + pool_h
                if h0 < 0: h0 = 0
                if h1 > H: h1 = H
                for ow in range(OW):
                    w0 = ow * stride_w - pad_left
                    w1 = w0 + pool_w
                    if w0 < 0: w0 = 0
                    if w1 > W: w1 = W
                    dst = &out[n, oh, ow, 0]
                    arg = &argmax[n, oh, ow, 0]
                    src = &x[n, h0, w0, 0]
                    for c in range(C):
                        dst[c] = src[c]
                        arg[c] = <int32_t>(h0 * W + w0)
                    for i in range(h0, h1):
                        for j in range(w0, w1):
                            src = &x[n, i, j, 0]
                            for c in range(C):
                                # strictly greater: ties keep the first maximum
                                if src[c] > dst[c]:
                                    dst[c] = src[c]
                                    arg[c] = <int32_t>(i * W + j)


def maxpool2d_backward(const floating[:, :, :, ::1] dout not None,
                       const int32_t[:, :, :, ::1] argmax not None,
                       floating[:, :, :, ::1] dx not None, long pool_h=0, long pool_w=0,
                       long stride_h=0, long stride_w=0, long pad_top=0, long pad_left=0):
    """dx = 0, then each window's gradient goes to where its maximum was.

    The pooling geometry is optional (0: unknown); when given and the
    windows tile dx exactly (strides = pool size, no padding, no remainder),
    each dx element is written once instead of cleared and scattered into.
    It must then be the geometry ``argmax`` came from."""
    cdef long N = dx.shape[0], H = dx.shape[1], W = dx.shape[2], C = dx.shape[3]
    cdef long OH = dout.shape[1], OW = dout.shape[2]
    cdef long n, p, c
    cdef const floating *g
    cdef const int32_t *arg
    cdef floating *d
    cdef int nt
    if _shape4(argmax.shape) != _shape4(dout.shape) or dout.shape[0] != N or dout.shape[3] != C:
        raise ValueError(f"maxpool2d_backward: dout {_shape4(dout.shape)}, argmax "
                         f"{_shape4(argmax.shape)} and dx {_shape4(dx.shape)} do not match")
    cdef bint tiled = (pool_h > 0 and pool_w > 0 and stride_h == pool_h
                       and stride_w == pool_w and pad_top == 0 and pad_left == 0
                       and OH * pool_h == H and OW * pool_w == W)
    nt = _threads_for(N if N * H * W * C >= POOL_PAR_MIN else 1)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            if tiled:
                if floating is float:
                    nn_maxpool_backward_tiled_f32(&dout[n, 0, 0, 0], &argmax[n, 0, 0, 0],
                                                  W, C, pool_h, pool_w, OH, OW,
                                                  &dx[n, 0, 0, 0])
                else:
                    nn_maxpool_backward_tiled_f64(&dout[n, 0, 0, 0], &argmax[n, 0, 0, 0],
                                                  W, C, pool_h, pool_w, OH, OW,
                                                  &dx[n, 0, 0, 0])
                continue
            d = &dx[n, 0, 0, 0]
            memset(d, 0, sizeof(floating) * H * W * C)
            g = &dout[n, 0, 0, 0]
            arg = &argmax[n, 0, 0, 0]
            for p in range(OH * OW):
                for c in range(C):
                    d[arg[p * C + c] * C + c] += g[p * C + c]


def avgpool2d_forward(const floating[:, :, :, ::1] x not None,
                      floating[:, :, :, ::1] out not None,
                      long pool_h, long pool_w, long stride_h, long stride_w,
                      long pad_top, long pad_left):
    """out = the mean of each window over its inputs inside the image."""
    cdef long N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef long OH = out.shape[1], OW = out.shape[2]
    cdef long n, oh, ow, c, i, j, h0, h1, w0, w1
    cdef const floating *src
    cdef floating *dst
    cdef floating inv
    cdef int nt
    _check_pool("avgpool2d_forward", _shape4(x.shape), _shape4(out.shape),
                pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    nt = _threads_for(N if N * H * W * C >= POOL_PAR_MIN else 1)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            for oh in range(OH):
                h0 = oh * stride_h - pad_top
                h1 = h0 + pool_h
                if h0 < 0: h0 = 0
                if h1 > H: h1 = H
                for ow in range(OW):
                    w0 = ow * stride_w - pad_left
                    w1 = w0 + pool_w
                    if w0 < 0: w0 = 0
                    if w1 > W: w1 = W
                    dst = &out[n, oh, ow, 0]
                    for c in range(C):
                        dst[c] = 0
                    for i in range(h0, h1):
                        for j in range(w0, w1):
                            src = &x[n, i, j, 0]
                            for c in range(C):
                                dst[c] += src[c]
                    inv = <floating>(1.0 / ((h1 - h0) * (w1 - w0)))
                    for c in range(C):
                        dst[c] = dst[c] * inv


def avgpool2d_backward(const floating[:, :, :, ::1] dout not None,
                       floating[:, :, :, ::1] dx not None,
                       long pool_h, long pool_w, long stride_h, long stride_w,
                       long pad_top, long pad_left):
    """dx = each window's gradient shared equally by the inputs it averaged."""
    cdef long N = dx.shape[0], H = dx.shape[1], W = dx.shape[2], C = dx.shape[3]
    cdef long OH = dout.shape[1], OW = dout.shape[2]
    cdef long n, oh, ow, c, i, j, h0, h1, w0, w1
    cdef const floating *g
    cdef floating *d
    cdef double inv_count
    cdef int nt
    _check_pool("avgpool2d_backward", _shape4(dx.shape), _shape4(dout.shape),
                pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    nt = _threads_for(N if N * H * W * C >= POOL_PAR_MIN else 1)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            memset(&dx[n, 0, 0, 0], 0, sizeof(floating) * H * W * C)
            for oh in range(OH):
                h0 = oh * stride_h - pad_top
                h1 = h0 + pool_h
                if h0 < 0: h0 = 0
                if h1 > H: h1 = H
                for ow in range(OW):
                    w0 = ow * stride_w - pad_left
                    w1 = w0 + pool_w
                    if w0 < 0: w0 = 0
                    if w1 > W: w1 = W
                    g = &dout[n, oh, ow, 0]
                    inv_count = 1.0 / ((h1 - h0) * (w1 - w0))
                    for i in range(h0, h1):
                        for j in range(w0, w1):
                            d = &dx[n, i, j, 0]
                            for c in range(C):
                                d[c] += <floating>(g[c] * inv_count)
