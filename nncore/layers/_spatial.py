"""Argument checking and output-size arithmetic shared by Conv2D and the pooling layers.

Keras's rules, per spatial axis (input size n, window k, stride s)::

    'valid'  out = floor((n - k) / s) + 1                 (windows inside the input)
    'same'   out = ceil(n / s);  pad_total = max((out - 1) * s + k - n, 0)
             pad_before = pad_total // 2, the odd one after (bottom / right)
"""
import numbers

from nncore.layers.layer import Layer

PADDINGS = ("valid", "same")


def as_pair(value, what, layer):
    """An int or a pair of ints (each >= 1) as a tuple of two ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral)
                             or v < 1 for v in pair):
        raise ValueError(f"{layer}: {what} must be a positive integer or a tuple of 2 "
                         f"positive integers, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_padding(padding, layer):
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def check_data_format(data_format, layer):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer}: only data_format='channels_last' (NHWC, Keras's "
                         f"default) is supported, got {data_format!r}")
    return "channels_last"


def out_size(n, k, s, padding):
    """Output length along one axis (None when n is unknown)."""
    if n is None:
        return None
    if padding == "same":
        return -(-n // s)
    return (n - k) // s + 1 if n >= k else 0


def pad_before(n, k, s, padding):
    """Zeros (or ignored positions) added before the first input along one axis."""
    if padding != "same":
        return 0
    return max((out_size(n, k, s, padding) - 1) * s + k - n, 0) // 2


def check_4d(shape, layer, what="input"):
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(
            f"Input 0 of layer '{layer}' is incompatible with the layer: expected "
            f"ndim=4 (batch, height, width, channels), found ndim={len(shape)} "
            f"(shape {(None,) + tuple(shape[1:])}). For grayscale images of shape "
            f"(n, 28, 28) reshape to (n, 28, 28, 1).")
    return shape


class Spatial2D(Layer):
    """The base of Conv2D and the pooling layers: NHWC images, a window
    (``self.window``: kernel_size or pool_size) moved by ``self.strides``
    with ``self.padding``.  Subclasses say how many channels come out
    (``_out_channels``) and how a too-small image is reported
    (``_check_fits``)."""

    def _out_channels(self, input_shape):
        raise NotImplementedError

    def _check_fits(self, hw):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        """``(batch, OH, OW, channels out)`` by Keras's size rules (module docstring)."""
        input_shape = check_4d(input_shape, self.name)
        oh, ow = (out_size(n, k, s, self.padding)
                  for n, k, s in zip(input_shape[1:3], self.window, self.strides))
        return (input_shape[0], oh, ow, self._out_channels(input_shape))

    def _geometry(self, x):
        """(OH, OW, pad_top, pad_left) for this batch's images."""
        (h, w), (kh, kw), (sh, sw) = x.shape[1:3], self.window, self.strides
        return (out_size(h, kh, sh, self.padding), out_size(w, kw, sw, self.padding),
                pad_before(h, kh, sh, self.padding), pad_before(w, kw, sw, self.padding))

    def check_input(self, x):
        """Raise ValueError unless x is (batch, H, W, channels) with this layer's
        channels and an image large enough for the window."""
        self._require_built()
        channels = self.input_shape[-1]
        if x.ndim != 4 or (channels is not None and x.shape[3] != channels):
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"shape (None, H, W, {channels}), received shape {(None,) + tuple(x.shape[1:])}")
        self._check_fits(x.shape[1:3])

    def _image_entry(self, kind, **fields):
        """The plan entry of an image layer: ``kind``, ``fields`` and the
        per-image geometry the built input shape fixes (the loop sees each
        image as a flat row of H*W*C values, NHWC order)."""
        from nncore.layers.layer import Unsupported
        from nncore.layers.plan_entry import PlanEntry
        h, w, c = self.input_shape[1:]
        if h is None or w is None or c is None:
            raise Unsupported(f"{type(self).__name__} '{self.name}' on images of unknown size")
        (kh, kw), (sh, sw) = self.window, self.strides
        return PlanEntry(kind, in_h=h, in_w=w, in_c=c, kh=kh, kw=kw, sh=sh, sw=sw,
                         pt=pad_before(h, kh, sh, self.padding),
                         pl=pad_before(w, kw, sw, self.padding),
                         oh=out_size(h, kh, sh, self.padding),
                         ow=out_size(w, kw, sw, self.padding), **fields)
