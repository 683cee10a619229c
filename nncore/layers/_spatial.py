"""Argument checking and output-size arithmetic shared by Conv2D and the pooling layers.

Keras's rules, per spatial axis (input size n, window k, stride s)::

    'valid'  out = floor((n - k) / s) + 1                 (windows inside the input)
    'same'   out = ceil(n / s);  pad_total = max((out - 1) * s + k - n, 0)
             pad_before = pad_total // 2, the odd one after (bottom / right)
"""
import numbers

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
