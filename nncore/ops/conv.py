"""Convolution and pooling on NHWC images (twin of ``src_cython/conv.pyx``).

Shapes: x (N, H, W, C) -- N images, H x W pixels, C channels (channels last);
kernel (KH, KW, C, F) -- F filters of KH x KW x C weights (Keras's HWIO).

**A convolution is a matrix product.**  Copy every KH x KW x C patch the
filter visits into one row of a matrix (``im2col``)::

    cols[p, (i*KW + j)*C + c] = x[n, oh*sh - pad_top + i, ow*sw - pad_left + j, c]
                                (0 where the patch hangs over the border)
    p = oh*OW + ow  (one row per output pixel)

then every output pixel is a row of cols times the kernel, seen as a
(KH*KW*C) x F matrix (HWIO lies in memory exactly that way)::

    out[n].reshape(OH*OW, F) = cols . W

**Backward** (dZ = dL/dout[n] as an (OH*OW) x F matrix): the same product
differentiated, as for a Dense layer::

    dW    = sum over images of  cols^T . dZ
    dcols = dZ . W^T
    dx[n] = col2im(dcols): each entry of dcols is *added* back to the input
            pixel im2col copied it from (a pixel inside several patches
            collects from each)

Output size and padding (Keras's rules)::

    'valid'  OH = floor((H - KH) / sh) + 1,   no padding
    'same'   OH = ceil(H / sh),   pad_total = max((OH - 1)*sh + KH - H, 0),
             pad_top = pad_total // 2  (the extra row, if odd, goes at the bottom)

**Pooling** slides a PH x PW window (stride sh x sw) over each channel:
max pooling keeps the largest input (padding never wins) and remembers where
it was, so backward sends the whole gradient to that one input -- the first
maximum in row-major order when several tie, as TensorFlow does.  Average
pooling divides by the number of inputs the window covers inside the image
(with 'same' padding an edge window averages fewer), and backward shares
the gradient equally among them.

**Fewer multiplications: Winograd.**  For a 3x3 kernel with stride 1 (the
book's second convolution) the compiled kernel computes the same sums by
Winograd's F(2x2, 3x3) instead of im2col: 16 products per 2x2 output tile
instead of 36 (``winograd_conv3x3`` below spells it out).  The result
equals im2col's to float rounding, so these im2col twins stay the
reference; ``uses_winograd`` says which layers take that path.

The ``ws`` workspace arguments are scratch memory for the compiled kernels
(``conv2d_workspace_size`` elements); this NumPy version does not need them.
"""

__all__ = ['conv2d_workspace_size', 'conv2d_forward', 'conv2d_backward',
           'uses_winograd',
           'maxpool2d_forward', 'maxpool2d_backward',
           'avgpool2d_forward', 'avgpool2d_backward']
import numpy as np

from nncore.ops.activations import act_backward, bias_act_forward

DW_GROUP = 4   # images per weight-gradient partial sum in the compiled kernel


def conv2d_workspace_size(n, oh, ow, kh, kw, c, f, backward=False, threads=0):
    """Elements of scratch memory the compiled kernels need (same formula)."""
    from nncore._info import get_num_threads
    t = threads if threads > 0 else get_num_threads()
    kk, rows = kh * kw * c, oh * ow
    # the Winograd path's room (nn_winograd.h: transformed kernel, per-thread tiles)
    wg = 0
    if (kh, kw) == (3, 3) and min(c, f) >= WINOGRAD_MIN_CHANNELS:
        tiles = 16 * ((64 * c + 16) + (64 * f + 16)) + c + f + 4 * max(c, f)
        wg = 32 * (c * f + 16) + t * tiles
    groups = -(-n // DW_GROUP)
    if not backward:
        return t * rows * kk + wg
    if wg:   # the weight gradient's partials in the Winograd domain, G^T dU G's rows
        wg += groups * (16 * (c * f + 16) + f) + 12 * f
    return t * (rows * (2 * kk + 1) + rows * f) + f * kk + groups * (kk + 1) * f + wg


def _check_conv(name, x, kernel, out_shape, sh, sw, pt, pl):
    kh, kw = kernel.shape[:2]
    if sh <= 0 or sw <= 0:
        raise ValueError(f"{name}: strides must be positive, got ({sh}, {sw})")
    if pt < 0 or pl < 0 or pt >= kh or pl >= kw:
        raise ValueError(f"{name}: padding ({pt}, {pl}) out of range for a {kh}x{kw} kernel")
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(f"{name}: x has {x.shape[3]} channels, the kernel expects "
                         f"{kernel.shape[2]}")
    oh, ow = out_shape[1:3]
    if out_shape[0] != x.shape[0] or out_shape[3] != kernel.shape[3]:
        raise ValueError(f"{name}: out has shape {tuple(out_shape)}, expected "
                         f"({x.shape[0]}, ., ., {kernel.shape[3]})")
    if oh <= 0 or ow <= 0 or (oh - 1) * sh - pt + kh > x.shape[1] + kh - 1 \
            or (ow - 1) * sw - pl + kw > x.shape[2] + kw - 1:
        raise ValueError(f"{name}: output {(oh, ow)} does not fit input {x.shape[1:3]} with "
                         f"kernel {(kh, kw)}, strides ({sh}, {sw}), padding ({pt}, {pl})")


def _padded(x, kh, kw, oh, ow, sh, sw, pt, pl):
    """x with zeros around it: enough rows/columns for every patch."""
    n, h, w, c = x.shape
    hp = max((oh - 1) * sh + kh, pt + h)
    wp = max((ow - 1) * sw + kw, pl + w)
    xp = np.zeros((n, hp, wp, c), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w] = x
    return xp


def im2col(x, kh, kw, oh, ow, sh, sw, pt, pl):
    """cols (N, OH*OW, KH*KW*C): row p of image n is the patch under output p."""
    n, c = x.shape[0], x.shape[3]
    xp = _padded(x, kh, kw, oh, ow, sh, sw, pt, pl)
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
    return cols.reshape(n, oh * ow, kh * kw * c)


def col2im(dcols, x_shape, kh, kw, oh, ow, sh, sw, pt, pl):
    """The adjoint of im2col: add each patch entry back onto its input pixel."""
    n, h, w, c = x_shape
    dcols = dcols.reshape(n, oh, ow, kh, kw, c)
    hp = max((oh - 1) * sh + kh, pt + h)
    wp = max((ow - 1) * sw + kw, pl + w)
    dxp = np.zeros((n, hp, wp, c), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :] += dcols[:, :, :, i, j, :]
    return dxp[:, pt:pt + h, pl:pl + w]


def conv2d_forward(x, kernel, bias, out, ws, activation, stride_h, stride_w, pad_top,
                   pad_left):
    """out[n] = f(im2col(x[n]) . W + b), f and b as in a Dense layer (bias may be None)."""
    _check_conv("conv2d_forward", x, kernel, out.shape, stride_h, stride_w, pad_top, pad_left)
    kh, kw, c, f = kernel.shape
    n, oh, ow = out.shape[:3]
    if bias is not None and bias.shape[0] != f:
        raise ValueError(f"conv2d_forward: bias has {bias.shape[0]} entries for {f} filters")
    cols = im2col(x, kh, kw, oh, ow, stride_h, stride_w, pad_top, pad_left)
    out[...] = (cols @ kernel.reshape(kh * kw * c, f)).reshape(out.shape)
    # one row per output pixel: bias + activation exactly as after a Dense GEMM
    bias_act_forward(out.reshape(-1, f), bias, activation)


def conv2d_backward(x, kernel, out, dout, activation, dkernel, dbias, dx, ws,
                    stride_h, stride_w, pad_top, pad_left):
    """dZ = dout * f'(.) (through the forward output ``out``), then
    dkernel = sum_n cols[n]^T . dZ[n];  dbias = sum of dZ over images and pixels;
    dx = col2im(dZ . W^T).  dbias / dx may be None (not wanted)."""
    _check_conv("conv2d_backward", x, kernel, dout.shape, stride_h, stride_w, pad_top, pad_left)
    if out.shape != dout.shape:
        raise ValueError(f"conv2d_backward: out {out.shape} and dout {dout.shape} must "
                         f"have the same shape")
    if dkernel.shape != kernel.shape:
        raise ValueError(f"conv2d_backward: dkernel has shape {dkernel.shape}, "
                         f"expected {kernel.shape}")
    if dx is not None and dx.shape != x.shape:
        raise ValueError(f"conv2d_backward: dx has shape {dx.shape}, expected {x.shape}")
    kh, kw, c, f = kernel.shape
    n, oh, ow = dout.shape[:3]
    cols = im2col(x, kh, kw, oh, ow, stride_h, stride_w, pad_top, pad_left)
    dz = np.empty((n * oh * ow, f), dtype=dout.dtype)
    act_backward(dout.reshape(-1, f), out.reshape(-1, f), activation, dz)
    if dbias is not None:
        if dbias.shape[0] != f:
            raise ValueError(f"conv2d_backward: dbias has {dbias.shape[0]} entries for "
                             f"{f} filters")
        dbias[...] = dz.sum(axis=0)
    dkernel[...] = (cols.reshape(-1, kh * kw * c).T @ dz).reshape(kernel.shape)
    if dx is not None:
        dcols = dz @ kernel.reshape(kh * kw * c, f).T
        dx[...] = col2im(dcols, x.shape, kh, kw, oh, ow, stride_h, stride_w, pad_top, pad_left)


# ---------------------------------------------------------------- Winograd

# F(2x2, 3x3) (Lavin & Gray, 2015): in one dimension, two outputs of a 3-tap
# filter g over 4 inputs d are  y = AT @ ((G @ g) * (BT @ d))  -- 4 products
# instead of 6.  In two dimensions, per 2x2 output tile and its 4x4 input
# patch:  Y = AT @ [(G @ g @ G.T) * (BT @ d @ BT.T)] @ AT.T  (16 instead of 36).
WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
WINOGRAD_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], dtype=float)
WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)
# the compiled kernel's rule (conv.pyx::_winograd): 3x3, stride 1, and enough
# channels on both sides for its 16 small matrix products to pay
WINOGRAD_MIN_CHANNELS = 8


def uses_winograd(kh, kw, sh, sw, c, f):
    """Does the compiled kernel compute this convolution by Winograd?"""
    return (kh, kw, sh, sw) == (3, 3, 1, 1) and min(c, f) >= WINOGRAD_MIN_CHANNELS


def winograd_conv3x3(x, kernel, oh, ow, pad_top, pad_left):
    """The 3x3 stride-1 convolution of x (N, H, W, C) with kernel (3, 3, C, F)
    into (N, OH, OW, F), computed the compiled kernel's way (no bias, no
    activation):

        U[a, b]       = G . g . G^T           per (c, f): the kernel transform
        V[tile, a, b] = B^T . d . B           per tile and channel: the input
                                              transform of its 4x4 patch d
        M[a, b]       = V[:, a, b, :] . U[a, b]     16 matrix products over C
        Y[tile]       = A^T . M[tile] . A     per tile and filter: 2x2 outputs
    """
    n, h, w, c = x.shape
    f = kernel.shape[3]
    th, tw = -(-oh // 2), -(-ow // 2)
    # zero padding: pad_top/left above and left, enough below and right for
    # the last tile's 4x4 patch
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, c))
    hh, ww = min(h, 2 * th + 2 - pad_top), min(w, 2 * tw + 2 - pad_left)
    xp[:, pad_top:pad_top + hh, pad_left:pad_left + ww] = x[:, :hh, :ww]
    # every tile's 4x4 patch: (n, th, tw, 4, 4, c)
    d = np.empty((n, th, tw, 4, 4, c))
    for i in range(4):
        for j in range(4):
            d[:, :, :, i, j] = xp[:, i:i + 2 * th:2, j:j + 2 * tw:2]
    U = np.einsum("ai,ijcf,bj->abcf", WINOGRAD_G, kernel, WINOGRAD_G)
    V = np.einsum("ai,nyxijc,bj->nyxabc", WINOGRAD_BT, d, WINOGRAD_BT)
    M = np.einsum("nyxabc,abcf->nyxabf", V, U)          # the 16 products
    Y = np.einsum("ia,nyxabf,jb->nyxijf", WINOGRAD_AT, M, WINOGRAD_AT)
    out = Y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * th, 2 * tw, f)
    return out[:, :oh, :ow].astype(x.dtype)


def winograd_input_gradient(dz, kernel, h, w, pad_top, pad_left):
    """dx (N, H, W, C) of a 3x3 stride-1 convolution from dz (N, OH, OW, F):
    itself a convolution, of dz with the kernel turned by 180 degrees and its
    channel axes swapped, padded by 2 - pad:

        dx[i, j, c] = sum over (a, b, f) of dz[i - (2 - pad_top) + a, ...] * W[2-a, 2-b, c, f]
    """
    flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)
    return winograd_conv3x3(dz, flipped, h, w, 2 - pad_top, 2 - pad_left)


# ---------------------------------------------------------------- pooling

def _check_pool(name, x_shape, out_shape, ph, pw, sh, sw, pt, pl):
    if ph <= 0 or pw <= 0 or sh <= 0 or sw <= 0:
        raise ValueError(f"{name}: pool size and strides must be positive")
    if pt < 0 or pl < 0 or pt >= ph or pl >= pw:
        raise ValueError(f"{name}: padding ({pt}, {pl}) out of range for a {ph}x{pw} pool")
    if out_shape[0] != x_shape[0] or out_shape[3] != x_shape[3]:
        raise ValueError(f"{name}: out has shape {tuple(out_shape)}, input {tuple(x_shape)}")
    oh, ow = out_shape[1:3]
    if oh <= 0 or ow <= 0 or (oh - 1) * sh - pt >= x_shape[1] or (ow - 1) * sw - pl >= x_shape[2]:
        raise ValueError(f"{name}: output {(oh, ow)} does not fit input {tuple(x_shape[1:3])} "
                         f"with pool ({ph}, {pw}), strides ({sh}, {sw}), padding ({pt}, {pl})")


def _windows(h, oh, ph, sh, pt):
    """[start, stop) of each window along one axis, clipped to the image."""
    starts = np.arange(oh) * sh - pt
    return np.maximum(starts, 0), np.minimum(starts + ph, h)


def maxpool2d_forward(x, out, argmax, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left):
    """out = max over each window; argmax = ih*W + iw of the (first) maximum."""
    _check_pool("maxpool2d_forward", x.shape, out.shape, pool_h, pool_w, stride_h, stride_w,
                pad_top, pad_left)
    n, h, w, c = x.shape
    oh, ow = out.shape[1:3]
    h0, h1 = _windows(h, oh, pool_h, stride_h, pad_top)
    w0, w1 = _windows(w, ow, pool_w, stride_w, pad_left)
    for a in range(oh):
        for b in range(ow):
            win = x[:, h0[a]:h1[a], w0[b]:w1[b], :]            # (n, wh, ww, c)
            flat = win.reshape(n, -1, c)
            k = flat.argmax(axis=1)                             # first maximum
            out[:, a, b, :] = np.take_along_axis(flat, k[:, None, :], axis=1)[:, 0, :]
            ww = w1[b] - w0[b]
            argmax[:, a, b, :] = (h0[a] + k // ww) * w + (w0[b] + k % ww)


def maxpool2d_backward(dout, argmax, dx, pool_h=0, pool_w=0, stride_h=0, stride_w=0,
                       pad_top=0, pad_left=0):
    """dx = 0, then dx[where the maximum was] += dout (for each window).

    The pooling geometry is optional: the kernel uses it to skip clearing dx
    when the windows tile it; argmax alone says where each gradient goes."""
    if argmax.shape != dout.shape or dout.shape[0] != dx.shape[0] or dout.shape[3] != dx.shape[3]:
        raise ValueError(f"maxpool2d_backward: dout {dout.shape}, argmax {argmax.shape} "
                         f"and dx {dx.shape} do not match")
    n, h, w, c = dx.shape
    flat = np.zeros((n, h * w, c), dtype=dx.dtype)
    ni = np.arange(n)[:, None, None]
    ci = np.arange(c)[None, None, :]
    # np.add.at adds repeated indices (overlapping windows) instead of overwriting
    np.add.at(flat, (ni, argmax.reshape(n, -1, c), ci), dout.reshape(n, -1, c))
    dx[...] = flat.reshape(dx.shape)


def avgpool2d_forward(x, out, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left):
    """out = mean over each window's inputs inside the image."""
    _check_pool("avgpool2d_forward", x.shape, out.shape, pool_h, pool_w, stride_h, stride_w,
                pad_top, pad_left)
    h, w = x.shape[1:3]
    oh, ow = out.shape[1:3]
    h0, h1 = _windows(h, oh, pool_h, stride_h, pad_top)
    w0, w1 = _windows(w, ow, pool_w, stride_w, pad_left)
    for a in range(oh):
        for b in range(ow):
            count = (h1[a] - h0[a]) * (w1[b] - w0[b])
            total = x[:, h0[a]:h1[a], w0[b]:w1[b], :].sum(axis=(1, 2))
            out[:, a, b, :] = total * x.dtype.type(1.0 / count)


def avgpool2d_backward(dout, dx, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left):
    """dx = each window's gradient / (inputs it covers), added to each of them."""
    _check_pool("avgpool2d_backward", dx.shape, dout.shape, pool_h, pool_w, stride_h, stride_w,
                pad_top, pad_left)
    h, w = dx.shape[1:3]
    oh, ow = dout.shape[1:3]
    h0, h1 = _windows(h, oh, pool_h, stride_h, pad_top)
    w0, w1 = _windows(w, ow, pool_w, stride_w, pad_left)
    dx[...] = 0
    for a in range(oh):
        for b in range(ow):
            count = (h1[a] - h0[a]) * (w1[b] - w0[b])
            share = (dout[:, a, b, :] * (1.0 / count)).astype(dx.dtype)
            dx[:, h0[a]:h1[a], w0[b]:w1[b], :] += share[:, None, None, :]
