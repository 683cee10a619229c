"""MaxPooling2D and AveragePooling2D on NHWC images (no weights).

Each output pixel summarises one pool_size window of one channel; the
windows move by ``strides`` (default: pool_size, so they tile the image).
Max pooling remembers which input was the largest and sends it the whole
gradient; average pooling shares the gradient among the window's inputs
(see ``nncore.ops.conv`` for the formulas, padding included).
"""
import numpy as np

from nncore.backend import kernels
from nncore.layers import _spatial as S
from nncore.layers.layer import Layer, Unsupported


class _Pooling2D(Layer):
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        what = f"{type(self).__name__} '{self.name}'"
        self.pool_size = S.as_pair(pool_size, "pool_size", what)
        self.strides = self.pool_size if strides is None else S.as_pair(strides, "strides", what)
        self.padding = S.check_padding(padding, what)
        self.data_format = S.check_data_format(data_format, what)

    def build(self, input_shape):
        input_shape = S.check_4d(input_shape, self.name)
        self._check_fits(input_shape[1:3])
        super().build(input_shape)

    def _check_fits(self, hw):
        for n, k, axis in zip(hw, self.pool_size, ("height", "width")):
            if n is not None and self.padding == "valid" and n < k:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': pool_size {self.pool_size} is "
                    f"larger than the input ({axis} {n}) with padding='valid'")

    def compute_output_shape(self, input_shape):
        input_shape = S.check_4d(input_shape, self.name)
        oh, ow = (S.out_size(n, k, s, self.padding)
                  for n, k, s in zip(input_shape[1:3], self.pool_size, self.strides))
        return (input_shape[0], oh, ow, input_shape[3])

    def _geometry(self, x):
        (h, w), (ph, pw), (sh, sw) = x.shape[1:3], self.pool_size, self.strides
        return (S.out_size(h, ph, sh, self.padding), S.out_size(w, pw, sw, self.padding),
                S.pad_before(h, ph, sh, self.padding), S.pad_before(w, pw, sw, self.padding))

    def check_input(self, x):
        """Raise ValueError unless x is (batch, H, W, channels) and each pooling
        window fits the image."""
        self._require_built()
        channels = self.input_shape[-1]
        if x.ndim != 4 or (channels is not None and x.shape[3] != channels):
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"shape (None, H, W, {channels}), received shape {(None,) + tuple(x.shape[1:])}")
        self._check_fits(x.shape[1:3])

    def plan_entry(self, ctx):
        """The fused loop's pooling layer: its kind and the per-image geometry
        the built input shape fixes (no weights; max pooling's argmax lives
        in the loop's buffers)."""
        h, w, c = self.input_shape[1:]
        if h is None or w is None or c is None:
            raise Unsupported(f"{type(self).__name__} '{self.name}' on images of unknown size")
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return dict(kind=self._plan_kind, in_h=h, in_w=w, in_c=c, kh=ph, kw=pw,
                    sh=sh, sw=sw, pt=S.pad_before(h, ph, sh, self.padding),
                    pl=S.pad_before(w, pw, sw, self.padding),
                    oh=S.out_size(h, ph, sh, self.padding),
                    ow=S.out_size(w, pw, sw, self.padding))

    def get_config(self):
        c = super().get_config()
        c.update(pool_size=list(self.pool_size), strides=list(self.strides),
                 padding=self.padding, data_format=self.data_format)
        return c


class MaxPooling2D(_Pooling2D):
    _plan_kind = "maxpool"

    def forward(self, x, training=False, logits=False):
        """The maximum of each pool_size window (remembers where it was)."""
        x = self._in_dtype(x)
        self.check_input(x)
        oh, ow, pt, pl = self._geometry(x)
        shape = (x.shape[0], oh, ow, x.shape[3])
        out = self._buffer("out", shape)
        argmax = self._buffer("argmax", shape, np.int32)
        kernels().maxpool2d_forward(x, out, argmax, *self.pool_size, *self.strides, pt, pl)
        st = self._state
        st.x_shape, st.argmax, st.pads = x.shape, argmax, (pt, pl)
        return out

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """Each window's gradient goes to the input that was its maximum."""
        st = self._state
        dx = self._buffer("dx", st.x_shape)
        kernels().maxpool2d_backward(np.ascontiguousarray(self._in_dtype(grad)), st.argmax, dx,
                                     *self.pool_size, *self.strides, *st.pads)
        return dx


class AveragePooling2D(_Pooling2D):
    _plan_kind = "avgpool"

    def forward(self, x, training=False, logits=False):
        """The mean of each pool_size window (inside the image, for 'same')."""
        x = self._in_dtype(x)
        self.check_input(x)
        oh, ow, pt, pl = self._geometry(x)
        out = self._buffer("out", (x.shape[0], oh, ow, x.shape[3]))
        kernels().avgpool2d_forward(x, out, *self.pool_size, *self.strides, pt, pl)
        st = self._state
        st.x_shape, st.pads = x.shape, (pt, pl)
        return out

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """Each window's gradient shared equally by the inputs it averaged."""
        st = self._state
        dx = self._buffer("dx", st.x_shape)
        kernels().avgpool2d_backward(np.ascontiguousarray(self._in_dtype(grad)), dx,
                                     *self.pool_size, *self.strides, *st.pads)
        return dx


# Keras's short names
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
