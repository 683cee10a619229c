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
    book's second convolution): the forward pass, the input gradient and the
    weight gradient by Winograd's F(2x2, 3x3) (nn_winograd.h): 16
    multiplications per 2x2 output tile instead of 36; the same sums to
    float rounding.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t
from k_common cimport nn_omp_max_threads, nn_ftz_enter, nn_ftz_exit
from k_activations cimport ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX
# the per-image pieces, shared with the fused training loop (training.pyx)
from k_conv cimport (DW_GROUP, WG_MIN_CHANNELS, conv_forward_image, conv_backward_image,
                     conv_cols_ones, conv_group_sum, conv_transpose_kernel,
                     conv_winograd, conv_wg_scratch, conv_wg_kernel_size, conv_part_size,
                     conv_wg_kernel, conv_wg_group_sum, conv_wg_finish,
                     maxpool_forward_image, maxpool_backward_image, avgpool_forward_image,
                     avgpool_backward_image)

# the one name -> code table (nncore/ops/activations.py), checked against the enum
from nncore.ops.activations import CODES as _ACTIVATIONS
if (_ACTIVATIONS["linear"], _ACTIVATIONS["relu"], _ACTIVATIONS["sigmoid"], _ACTIVATIONS["tanh"],
        _ACTIVATIONS["softmax"]) != (ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX):
    raise ImportError("nncore: activation codes differ from k_activations.pxd's")


cdef int _act_code(str name) except -1:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: "
                         f"{', '.join(_ACTIVATIONS)}") from None


cdef enum:
    # (DW_GROUP, the images per weight-gradient partial sum: k_conv.pxd)
    # pooling is a quick pass over memory, but a training batch of the
    # book's first pooling layer (800 K values) still takes ~0.3 ms on one
    # thread and half that on two; below this it is not worth waking the team
    POOL_PAR_MIN = 262144
    # elements of the weight gradient a thread reduces at a time
    RED_CHUNK = 256


# kept equal to nncore/ops/conv.py::WINOGRAD_MIN_CHANNELS (tests check it)
WINOGRAD_MIN_CHANNELS = WG_MIN_CHANNELS


def uses_winograd(long kh, long kw, long sh, long sw, long c, long f):
    """Does ``conv2d_forward`` / ``conv2d_backward`` compute this by Winograd?"""
    return conv_winograd(kh, kw, sh, sw, c, f)


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
    cdef long groups = (n + DW_GROUP - 1) // DW_GROUP
    # a 3x3 kernel may take the Winograd path (with stride 1): room for its
    # transformed kernel and per-thread tiles after the im2col scratch
    cdef bint wg = conv_winograd(kh, kw, 1, 1, c, f)
    cdef long extra = conv_wg_kernel_size(c, f) + t * conv_wg_scratch(c, f) if wg else 0
    if not backward:
        return t * rows * kk + extra
    if wg:
        # the weight gradient's partials in the Winograd domain, G^T dU G's rows
        extra += groups * conv_part_size(kh, kw, c, f, True, True) + 12 * f
    return t * (rows * (2 * kk + 1) + rows * f) + f * kk + groups * (kk + 1) * f + extra


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
    cdef bint wg = conv_winograd(KH, KW, stride_h, stride_w, C, F)
    cdef floating *U = NULL
    cdef floating *wg_ws = NULL
    cdef long wg_t = conv_wg_scratch(C, F)
    _check_conv("conv2d_forward", _shape4(x.shape), _shape4(kernel.shape),
                _shape4(out.shape), stride_h, stride_w, pad_top, pad_left)
    nt = _threads_for(N)
    # Winograd's scratch (if used) after the im2col one, as the size says
    cdef long need = nt * rows * kk + (conv_wg_kernel_size(C, F) + nt * wg_t if wg else 0)
    if ws.shape[0] < need:
        raise ValueError(f"conv2d_forward: workspace has {ws.shape[0]} elements, "
                         f"needs {need}")
    if bias is not None:
        if bias.shape[0] != F:
            raise ValueError(f"conv2d_forward: bias has {bias.shape[0]} entries for {F} filters")
        bp = &bias[0]
    if N == 0 or F == 0:
        return
    if wg:
        U = &ws[0] + nt * rows * kk
        wg_ws = U + conv_wg_kernel_size(C, F)
        with nogil:
            conv_wg_kernel(&kernel[0, 0, 0, 0], C, F, False, U)
    with nogil, parallel(num_threads=nt):
        fpu = nn_ftz_enter()
        t = threadid_()
        cols = &ws[0] + t * rows * kk
        # dynamic: on a busy machine a thread that loses its core leaves its
        # images to the other (results do not depend on who computes what)
        for n in prange(N, schedule="dynamic"):
            if conv_forward_image(&x[n, 0, 0, 0], H, W, C, KH, KW, stride_h, stride_w,
                                  pad_top, pad_left, OH, OW, &kernel[0, 0, 0, 0], F, bp,
                                  act, &out[n, 0, 0, 0], cols, U,
                                  (wg_ws + t * wg_t) if wg else NULL) != 0:
                rc += 1
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
    cdef long g, n, n0, n1, e
    cdef int t, nt, rc = 0
    cdef bint want_dx = dx is not None
    cdef unsigned int fpu
    cdef floating *cols
    cdef floating *dcols
    cdef floating *dzb
    cdef bint want_db = dbias is not None
    cdef int act = _act_code(activation)
    cdef floating *wt
    cdef floating *parts
    cdef floating *dw
    cdef const floating *kp
    cdef bint wg = conv_winograd(KH, KW, stride_h, stride_w, C, F)
    cdef floating *U = NULL
    cdef floating *wg_ws = NULL
    cdef floating *wparts = NULL
    cdef long wg_t = conv_wg_scratch(C, F), wpart = conv_part_size(KH, KW, C, F, True, True)
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
        need += conv_wg_kernel_size(C, F) + nt * wg_t + groups * wpart + 12 * F
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
        wg_ws = U + conv_wg_kernel_size(C, F)
        wparts = wg_ws + nt * wg_t
    with nogil:
        if wg:
            if want_dx:
                # dx = conv(dz, W turned by 180 degrees, in/out swapped), pad 2 - p
                conv_wg_kernel(kp, C, F, True, U)
        else:
            # W^T (F x kk) once, so dcols = dZ . W^T is a plain row-major product
            conv_transpose_kernel(kp, kk, F, wt, 0, kk * F)
    with nogil, parallel(num_threads=nt):
        fpu = nn_ftz_enter()
        t = threadid_()
        cols = &ws[0] + t * (rows * (2 * kk + 1) + rows * F)
        dcols = cols + rows * kk1
        dzb = dcols + rows * kk
        if want_db:
            conv_cols_ones(cols, rows, kk1)
        for g in prange(groups, schedule="dynamic"):
            n0 = g * DW_GROUP
            n1 = n0 + DW_GROUP if n0 + DW_GROUP < N else N
            for n in range(n0, n1):
                # partial[g] (+)= cols^T . dZ[n] (its last row: db), and dx[n]
                if conv_backward_image(&x[n, 0, 0, 0], &out[n, 0, 0, 0],
                                       &dout[n, 0, 0, 0], act, H, W, C, KH, KW, stride_h,
                                       stride_w, pad_top, pad_left, OH, OW, F, want_db,
                                       (wparts + g * wpart) if wg else (parts + g * kk1 * F),
                                       n > n0, cols, dzb, wt, dcols,
                                       &dx[n, 0, 0, 0] if want_dx else NULL, wg,
                                       U if want_dx else NULL,
                                       (wg_ws + t * wg_t) if wg else NULL) != 0:
                    rc += 1
        # dW = the partials added in group order (threads split the elements,
        # RED_CHUNK at a time)
        if wg:
            # into group 0's partial (16 C x F matrices and the bias row)
            for e in prange((16 * C * F + F + RED_CHUNK - 1) // RED_CHUNK,
                            schedule="static"):
                conv_wg_group_sum(wparts, groups, C, F, e * RED_CHUNK,
                                  min(e * RED_CHUNK + RED_CHUNK, 16 * C * F + F))
        else:
            for e in prange((kk * F + RED_CHUNK - 1) // RED_CHUNK, schedule="static"):
                conv_group_sum(parts, groups, kk1 * F, dw, e * RED_CHUNK,
                               min(e * RED_CHUNK + RED_CHUNK, kk * F))
        nn_ftz_exit(fpu)
    if wg:
        with nogil:
            fpu = nn_ftz_enter()
            conv_wg_finish(wparts, C, F, dw, &dbias[0] if want_db else NULL,
                           wparts + groups * wpart)
            nn_ftz_exit(fpu)
    elif want_db:
        conv_group_sum(parts + kk * F, groups, kk1 * F, &dbias[0], 0, F)
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
    cdef long n
    cdef int nt
    _check_pool("maxpool2d_forward", _shape4(x.shape), _shape4(out.shape),
                pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    if _shape4(argmax.shape) != _shape4(out.shape):
        raise ValueError("maxpool2d_forward: argmax must have the shape of out")
    if H * W >= 2147483647:
        raise ValueError("maxpool2d_forward: image too large for int32 indices")
    nt = _threads_for(N if N * H * W * C >= POOL_PAR_MIN else 1)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            maxpool_forward_image(&x[n, 0, 0, 0], H, W, C, pool_h, pool_w, stride_h,
                                  stride_w, pad_top, pad_left, OH, OW, &out[n, 0, 0, 0],
                                  &argmax[n, 0, 0, 0])


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
    cdef long n
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
            maxpool_backward_image(&dout[n, 0, 0, 0], &argmax[n, 0, 0, 0], H, W, C, OH, OW,
                                   tiled, pool_h, pool_w, &dx[n, 0, 0, 0])


def avgpool2d_forward(const floating[:, :, :, ::1] x not None,
                      floating[:, :, :, ::1] out not None,
                      long pool_h, long pool_w, long stride_h, long stride_w,
                      long pad_top, long pad_left):
    """out = the mean of each window over its inputs inside the image."""
    cdef long N = x.shape[0], H = x.shape[1], W = x.shape[2], C = x.shape[3]
    cdef long OH = out.shape[1], OW = out.shape[2]
    cdef long n
    cdef int nt
    _check_pool("avgpool2d_forward", _shape4(x.shape), _shape4(out.shape),
                pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    nt = _threads_for(N if N * H * W * C >= POOL_PAR_MIN else 1)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            avgpool_forward_image(&x[n, 0, 0, 0], H, W, C, pool_h, pool_w, stride_h,
                                  stride_w, pad_top, pad_left, OH, OW, &out[n, 0, 0, 0])


def avgpool2d_backward(const floating[:, :, :, ::1] dout not None,
                       floating[:, :, :, ::1] dx not None,
                       long pool_h, long pool_w, long stride_h, long stride_w,
                       long pad_top, long pad_left):
    """dx = each window's gradient shared equally by the inputs it averaged."""
    cdef long N = dx.shape[0], H = dx.shape[1], W = dx.shape[2], C = dx.shape[3]
    cdef long OH = dout.shape[1], OW = dout.shape[2]
    cdef long n
    cdef int nt
    _check_pool("avgpool2d_backward", _shape4(dx.shape), _shape4(dout.shape),
                pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    nt = _threads_for(N if N * H * W * C >= POOL_PAR_MIN else 1)
    with nogil:
        for n in prange(N, schedule="static", num_threads=nt):
            avgpool_backward_image(&dout[n, 0, 0, 0], H, W, C, pool_h, pool_w, stride_h,
                                   stride_w, pad_top, pad_left, OH, OW, &dx[n, 0, 0, 0])
