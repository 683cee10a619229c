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


class _Pooling2D(S.Spatial2D):
    """What both pooling layers share: arguments, shapes, plan entry, Keras form."""
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

    @property
    def window(self):
        """The window the spatial base slides: ``pool_size``."""
        return self.pool_size

    def _out_channels(self, input_shape):
        return input_shape[3]

    def weight_shapes(self, input_shape):
        return []

    def plan_entry(self, ctx):
        """The fused loop's pooling layer: its kind and the per-image geometry
        (no weights; max pooling's argmax lives in the loop's buffers)."""
        return self._image_entry(self._plan_kind)

    # ------------------------------------------------------------ Keras files
    @classmethod
    def from_keras(cls, c, what):
        """A Keras config of this layer -> the constructor's arguments."""
        from nncore.saving import keras_layers as KL
        KL.channels_last(c, what)
        pool = KL.pair(c.get("pool_size", 2), what, "pool_size")
        strides = c.get("strides")
        return dict(KL.common(c, what), pool_size=pool,
                    strides=pool if strides is None else KL.pair(strides, what, "strides"),
                    padding=KL.padding(c, what))

    def to_keras(self):
        from nncore.saving import keras_layers as KL
        return dict(KL.common_keras(self), pool_size=list(self.pool_size),
                    strides=list(self.strides or self.pool_size), padding=self.padding,
                    data_format="channels_last")

    def get_config(self):
        c = super().get_config()
        c.update(pool_size=list(self.pool_size), strides=list(self.strides),
                 padding=self.padding, data_format=self.data_format)
        return c


class MaxPooling2D(_Pooling2D):
    """Max pooling: each output pixel is the largest input of its window, per channel.

    The ``pool_size`` window (default 2x2) moves by ``strides`` (default:
    ``pool_size``, so windows tile the image); ``padding="valid"`` (default)
    or ``"same"``.  Inputs ``(batch, H, W, C)``, outputs ``(batch, OH, OW, C)``
    by Conv2D's size rules.  No weights.  Backward: each window's gradient
    goes, whole, to the input that was its maximum.

    Example::

        keras.layers.MaxPooling2D(2)(np.zeros((1, 28, 28, 32))).shape   # (1, 14, 14, 32)
    """
    _plan_kind = "maxpool"
    keras_name = "MaxPooling2D"

    def describe(self, step):
        ph, pw = self.pool_size
        return (f"a = max over each {ph}x{pw} window (strides {self.strides}), "
                "argmax kept", "dx = g sent to each window's argmax, 0 elsewhere")

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
    """Average pooling: each output pixel is the mean of its window, per channel.

    Arguments and shapes as :class:`MaxPooling2D`; with ``padding="same"``
    a window at the border averages only the pixels inside the image.
    Backward: each window's gradient is shared equally by its inputs.

    Example::

        keras.layers.AveragePooling2D(2)(np.ones((1, 4, 4, 1)))[0, :, :, 0]   # [[1, 1], [1, 1]]
    """
    _plan_kind = "avgpool"
    keras_name = "AveragePooling2D"

    def describe(self, step):
        ph, pw = self.pool_size
        return (f"a = mean over each {ph}x{pw} window (strides {self.strides})",
                "dx = g / (window size) shared by each window's inputs")

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
