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
from nncore.layers._kernel_bias import KernelBias
from nncore.ops.activations import BACKWARD_FORMULA, FORWARD_FORMULA


class Conv2D(KernelBias, S.Spatial2D):
    """A 2-D convolution: ``output = activation(conv(x, kernel) + bias)``.

    Each of the ``filters`` output channels slides a ``kernel_size`` window
    over the image (moved by ``strides``) and takes, at every position, the
    weighted sum of all the window's pixels and channels plus its bias.
    Images are NHWC (``channels_last``, Keras's default): inputs
    ``(batch, H, W, C)``, kernel ``(KH, KW, C, filters)``, bias
    ``(filters,)``, output ``(batch, OH, OW, filters)`` with
    ``OH = (H - KH) // SH + 1`` for ``padding="valid"`` and
    ``ceil(H / SH)`` for ``"same"`` (zeros around the image).

    Args:
        filters: number of output channels (feature maps).
        kernel_size: window size, an int or a pair (e.g. ``3`` or ``(3, 3)``).
        strides: window step (default 1).
        padding: ``"valid"`` (default) or ``"same"``.
        activation, use_bias, kernel_initializer, bias_initializer,
        kernel_regularizer, bias_regularizer: as in :class:`Dense`.
        data_format ``"channels_last"``, dilation_rate 1 and groups 1 only;
        constraints and activity regularizers are not supported.

    Backward, given ``g = dL/da``: ``dz = g * f'(z)``, ``db = sum(dz)``,
    ``dW = im2col(x)^T . dz``, ``dx = col2im(dz . W^T)``
    (``docs/chapter8_walkthrough.md``).

    Example (the book's first layer)::

        keras.layers.Conv2D(32, kernel_size=3, activation="relu", padding="same",
                            input_shape=(28, 28, 1))      # 3*3*1*32 + 32 = 320 weights
    """
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
        self._kernel_options(activation, use_bias, kernel_initializer, bias_initializer,
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

    @property
    def window(self):
        """The window the spatial base slides: ``kernel_size``."""
        return self.kernel_size

    def _out_channels(self, input_shape):
        return self.filters

    def weight_shapes(self, input_shape):
        """kernel ``(KH, KW, C, filters)`` and bias ``(filters,)``."""
        return self._kernel_bias_shapes(tuple(self.kernel_size) + (input_shape[-1], self.filters),
                                        self.filters)

    def _check_fits(self, hw):
        for n, k, axis in zip(hw, self.kernel_size, ("height", "width")):
            if n is not None and self.padding == "valid" and n < k:
                raise ValueError(
                    f"Conv2D '{self.name}': the kernel {self.kernel_size} is larger than "
                    f"the input ({axis} {n}) with padding='valid'; use padding='same' "
                    f"or a smaller kernel_size")

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

    def plan_entry(self, ctx):
        """The fused loop's Conv2D: its kernel and bias (two parameters) and
        the per-image geometry."""
        return self._image_entry("conv2d", act=self.activation, filters=self.filters,
                                 logits=int(ctx.is_last and ctx.path == "logits"),
                                 params=self._plan_params(ctx))

    def describe(self, step):
        """a = f(conv(x, W) + b), and its backward (for ``utils.trace``)."""
        act = "linear" if step.forward_kwargs.get("logits", False) else self.activation
        b = " + b" if self.use_bias else ""
        kh, kw = self.kernel_size
        fwd = (f"z = conv(x, W{kh}x{kw}, strides {self.strides}, {self.padding}){b}; "
               f"{FORWARD_FORMULA[act]}   (per image: im2col(x) . W)")
        parts = ["dz = dL/dz from the loss kernel"
                 if step.backward_kwargs.get("from_logits", False)
                 else BACKWARD_FORMULA[act].replace("da", "g"),
                 "dW = sum_images im2col(x)^T.dz"]
        if self.use_bias:
            parts.append("db = sum dz")
        if step.backward_kwargs.get("need_input_grad", True):
            parts.append("dx = col2im(dz.W^T)")
        return fwd, "; ".join(parts + self._regularizer_formulas())

    # ------------------------------------------------------------ Keras files
    keras_name = "Conv2D"

    @classmethod
    def from_keras(cls, c, what):
        """Keras's Conv2D config -> the constructor's arguments."""
        from nncore.saving import keras_layers as KL
        KL.require_absent(c, ("kernel_constraint", "bias_constraint", "activity_regularizer",
                              "lora_rank", "quantization_config"), what)
        KL.channels_last(c, what)
        if KL.pair(c.get("dilation_rate", 1), what, "dilation_rate") != (1, 1) or \
                c.get("groups", 1) != 1:
            raise KL.FormatError(f"{what}: dilated or grouped convolutions are not supported")
        filters = c.get("filters")
        if isinstance(filters, bool) or not isinstance(filters, int) or \
                not 0 < filters <= 2 ** 20:
            raise KL.FormatError(f"{what}: invalid filters {filters!r}")
        return dict(KL.common(c, what), filters=filters,
                    kernel_size=KL.pair(c.get("kernel_size"), what, "kernel_size"),
                    strides=KL.pair(c.get("strides", 1), what, "strides"),
                    padding=KL.padding(c, what), **cls._keras_kernel_bias_in(c, what))

    def to_keras(self):
        from nncore.saving import keras_layers as KL
        return dict(KL.common_keras(self), filters=self.filters,
                    kernel_size=list(self.kernel_size), strides=list(self.strides),
                    padding=self.padding, data_format="channels_last", dilation_rate=[1, 1],
                    groups=1, activity_regularizer=None, **self._keras_kernel_bias())

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
