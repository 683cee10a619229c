"""Conv2D: ``output = activation(conv(x, kernel) + bias)`` on NHWC images.

Shapes: x (batch, H, W, C), kernel (KH, KW, C, filters) as in Keras,
bias (filters,), output (batch, OH, OW, filters).

Forward, one kernel (see ``nncore.ops.conv`` for how a convolution becomes
a GEMM)::

    a = f(conv(x, W) + b)      conv2d_forward: per image, im2col, GEMM, then
                               Dense's bias + activation on its (OH*OW, filters) rows

Backward, given g = dL/da, one kernel::

    dz = g * f'(z)             (through a, as in Dense)
    db = sum of dz over the batch and every pixel
    dW = im2col(x)^T . dz,  dx = col2im(dz . W^T)
"""
import numbers

import numpy as np

from nncore import initializers, regularizers
from nncore.backend import kernels
from nncore.layers import _spatial as S
from nncore.layers.dense import Dense
from nncore.layers.layer import Layer, Unsupported


class Conv2D(Layer):
    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1), groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        what = f"Conv2D '{self.name}'"
        if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters <= 0:
            raise ValueError(f"{what}: filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = S.as_pair(kernel_size, "kernel_size", what)
        self.strides = S.as_pair(strides, "strides", what)
        self.padding = S.check_padding(padding, what)
        self.data_format = S.check_data_format(data_format, what)
        if S.as_pair(dilation_rate, "dilation_rate", what) != (1, 1):
            raise ValueError(f"{what}: dilation_rate other than 1 is not supported by nncore, "
                             f"got {dilation_rate!r}")
        self.dilation_rate = (1, 1)
        if groups != 1:
            raise ValueError(f"{what}: groups other than 1 is not supported by nncore, "
                             f"got {groups!r}")
        for name, value in (("activity_regularizer", activity_regularizer),
                            ("kernel_constraint", kernel_constraint),
                            ("bias_constraint", bias_constraint)):
            if value is not None:
                raise ValueError(f"{what}: {name} is not supported by nncore")
        self.groups = 1
        Dense._kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                              kernel_regularizer, bias_regularizer)

    # ------------------------------------------------------------ shapes
    def build(self, input_shape):
        input_shape = S.check_4d(input_shape, self.name)
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Conv2D '{self.name}': the channel dimension of the input "
                             f"must be known, got shape {input_shape}")
        self._check_fits(input_shape[1:3])
        kh, kw = self.kernel_size
        self.kernel = self.add_weight("kernel", (kh, kw, channels, self.filters),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer)
        super().build(input_shape)

    def _check_fits(self, hw):
        for n, k, axis in zip(hw, self.kernel_size, ("height", "width")):
            if n is not None and self.padding == "valid" and n < k:
                raise ValueError(
                    f"Conv2D '{self.name}': the kernel {self.kernel_size} is larger than "
                    f"the input ({axis} {n}) with padding='valid'; use padding='same' "
                    f"or a smaller kernel_size")

    def compute_output_shape(self, input_shape):
        input_shape = S.check_4d(input_shape, self.name)
        oh, ow = (S.out_size(n, k, s, self.padding)
                  for n, k, s in zip(input_shape[1:3], self.kernel_size, self.strides))
        return (input_shape[0], oh, ow, self.filters)

    def _geometry(self, x):
        """(OH, OW, pad_top, pad_left) for this batch's images."""
        (h, w), (kh, kw), (sh, sw) = x.shape[1:3], self.kernel_size, self.strides
        return (S.out_size(h, kh, sh, self.padding), S.out_size(w, kw, sw, self.padding),
                S.pad_before(h, kh, sh, self.padding), S.pad_before(w, kw, sw, self.padding))

    def check_input(self, x):
        """Raise ValueError unless x is (batch, H, W, channels) with this layer's channels
        and an image large enough for the kernel."""
        self._require_built()
        channels = self.input_shape[-1]
        if x.ndim != 4 or x.shape[3] != channels:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"shape (None, H, W, {channels}), received shape {(None,) + tuple(x.shape[1:])}")
        self._check_fits(x.shape[1:3])

    # ------------------------------------------------------------ maths
    def forward(self, x, training=False, logits=False):
        """a = f(conv(x, W) + b) (logits=True: stop before f)."""
        x = self._in_dtype(x)
        self.check_input(x)
        K = kernels()
        oh, ow, pt, pl = self._geometry(x)
        n, (kh, kw), f = x.shape[0], self.kernel_size, self.filters
        z = self._buffer("out", (n, oh, ow, f))
        ws = self._workspace("ws", K.conv2d_workspace_size(n, oh, ow, kh, kw, x.shape[3], f))
        K.conv2d_forward(x, self.kernel.value, self.bias.value if self.use_bias else None,
                         z, ws, "linear" if logits else self.activation, *self.strides, pt, pl)
        st = self._state
        st.x, st.out = x, z
        return z

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """Fill self.grads = [dW, db] and return dx (None if not needed)."""
        K = kernels()
        st = self._state
        x, a = st.x, st.out
        grad = self._in_dtype(grad)
        f = self.filters
        act = "linear" if from_logits else self.activation
        oh, ow, pt, pl = self._geometry(x)
        kh, kw = self.kernel_size
        ws = self._workspace("ws_back", K.conv2d_workspace_size(
            x.shape[0], oh, ow, kh, kw, x.shape[3], f, True))
        dx = self._buffer("dx", x.shape) if need_input_grad else None
        K.conv2d_backward(x, self.kernel.value, a, np.ascontiguousarray(grad), act,
                          self.grads[0], self.grads[1] if self.use_bias else None, dx, ws,
                          *self.strides, pt, pl)
        return dx

    def _workspace(self, key, size):
        """Kernel scratch of at least ``size`` elements; kept when a smaller one
        is needed (fewer threads, a last short batch), so fit does not
        reallocate it when the thread count or batch size changes."""
        # per thread, like every other per-call state (concurrent predicts)
        st = self._state
        bufs = st.__dict__.setdefault("buffers", {})
        buf = bufs.get(key)
        if buf is None or buf.size < size or buf.dtype != self.dtype:
            buf = bufs[key] = np.empty(size, dtype=self.dtype)
        return buf

    # the same attributes as Dense (kernel, bias and their regularizers), so
    # the same penalty code
    regularization = Dense.regularization

    def plan_entry(self, ctx):
        """The fused loop's Conv2D: Dense's entry (live kernel, bias, gradient
        and optimizer-slot arrays, regularizers) plus the per-image geometry
        the built input shape fixes (the loop sees each image as a flat row
        of H*W*C values, NHWC order)."""
        h, w, c = self.input_shape[1:]
        if h is None or w is None:
            raise Unsupported(f"Conv2D '{self.name}' on images of unknown size")
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        entry = Dense.plan_entry(self, ctx)
        entry.update(kind="conv2d", in_h=h, in_w=w, in_c=c, kh=kh, kw=kw,
                     filters=self.filters, sh=sh, sw=sw,
                     pt=S.pad_before(h, kh, sh, self.padding),
                     pl=S.pad_before(w, kw, sw, self.padding),
                     oh=S.out_size(h, kh, sh, self.padding),
                     ow=S.out_size(w, kw, sw, self.padding))
        return entry

    def get_config(self):
        c = super().get_config()
        c.update(filters=self.filters, kernel_size=list(self.kernel_size),
                 strides=list(self.strides), padding=self.padding,
                 data_format=self.data_format, dilation_rate=list(self.dilation_rate),
                 groups=self.groups, activation=self.activation, use_bias=self.use_bias,
                 kernel_initializer=initializers.serialize(self.kernel_initializer),
                 bias_initializer=initializers.serialize(self.bias_initializer),
                 kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                 bias_regularizer=regularizers.serialize(self.bias_regularizer))
        return c


Convolution2D = Conv2D
