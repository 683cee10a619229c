"""Making sequences of different lengths into one rectangular array.

``pad_sequences`` is what the book's chapter 9 uses to turn IMDB reviews
(lists of word indices of any length) into a ``(reviews, maxlen)`` array a
model can take.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre",
                  truncating="pre", value=0.0):
    """Pad (or cut) every sequence to the same length, as Keras 3 does.

    Sequences longer than ``maxlen`` lose values at the start
    (``truncating='pre'``, the default: the *end* of a review is kept) or at
    the end (``'post'``); shorter ones get ``value`` in front
    (``padding='pre'``, the default) or behind (``'post'``).

    Args:
        sequences: a list (or object array) of sequences, each a list or
            array; the values may themselves be arrays of one common shape.
        maxlen: the length of every row (default: the longest sequence).
        dtype: of the result (default ``'int32'``).
        padding: ``'pre'`` or ``'post'``: where the padding goes.
        truncating: ``'pre'`` or ``'post'``: where long sequences are cut.
        value: the padding value (default 0).

    Returns:
        An array of shape ``(len(sequences), maxlen) + value shape``.

    Example::

        pad_sequences([[1, 2, 3], [4, 5]], maxlen=4)
        # array([[0, 1, 2, 3],
        #        [0, 0, 4, 5]], dtype=int32)
        pad_sequences([[1, 2, 3], [4, 5]], maxlen=2)     # cut at the front
        # array([[2, 3],
        #        [4, 5]], dtype=int32)
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood: use "pre" or "post"')
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood: use "pre" or "post"')
    if not hasattr(sequences, "__len__") or isinstance(sequences, (str, bytes)):
        raise ValueError("pad_sequences: `sequences` must be a list of sequences "
                         f"(lists of numbers), got {type(sequences).__name__}")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, numbers.Integral)
                               or maxlen < 0):
        raise ValueError(f"pad_sequences: maxlen must be None or an integer >= 0, got {maxlen!r}")
    lengths, sample_shape, found = [], (), False
    for i, s in enumerate(sequences):
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError("pad_sequences: `sequences` must be a list of iterables; "
                             f"sequence {i} is {s!r}") from None
        if not found and len(s):
            # every value of every sequence must have the first one's shape
            sample_shape, found = _values(s, i, None).shape[1:], True
    if maxlen is None:
        maxlen = max(lengths, default=0)
    maxlen = int(maxlen)
    dt = np.dtype(dtype)
    if isinstance(value, str) and dt.kind not in "OUS":
        raise ValueError(f"pad_sequences: dtype {dt} cannot hold the string value {value!r}; "
                         "use dtype=object for strings")
    shape = (len(lengths), maxlen) + tuple(sample_shape)
    try:
        out = np.full(shape, value, dtype=dt)
    except MemoryError:
        raise MemoryError(f"pad_sequences: maxlen={maxlen} makes a {shape} array of {dt} "
                          f"({np.prod(shape, dtype=float) * dt.itemsize / 2**30:.3g} GiB), "
                          "more than this machine can allocate; choose a smaller maxlen") from None
    if maxlen == 0:
        return out
    for i, s in enumerate(sequences):
        if not lengths[i]:
            continue
        cut = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        cut = _values(cut, i, dt)
        if cut.shape[1:] != tuple(sample_shape):
            raise ValueError(f"pad_sequences: the values of sequence {i} have shape "
                             f"{cut.shape[1:]}, those of the first have {tuple(sample_shape)}")
        if padding == "pre":
            out[i, maxlen - len(cut):] = cut
        else:
            out[i, :len(cut)] = cut
    return out


def _values(seq, i, dtype):
    """Sequence ``i`` as an array, or an error that says which sequence and
    why (NumPy's own message names neither)."""
    try:
        return np.asarray(seq, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as e:
        what = f"{dtype} values" if dtype is not None else "an array"
        raise type(e)(f"pad_sequences: sequence {i} cannot be made into {what} (nested "
                      f"lists of different lengths, or values that are not numbers?): {e}") from None
