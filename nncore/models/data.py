"""Checking and converting user data once per fit/evaluate/predict call.

Everything a kernel will read is validated here, in Python, with a message
that names the argument and what was expected: kernels run with bounds
checks off, so a bad label or shape must never reach them.
"""
import numbers

import numpy as np


def as_features(x, dtype, what="x"):
    """x as a C-contiguous float array (one conversion per call)."""
    if x is None:
        raise ValueError(f"{what} is None; expected a NumPy array of samples")
    if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (numbers.Number, list, tuple, np.ndarray)):
        raise TypeError(f"{what}: expected a NumPy array, got a {type(x).__name__} "
                        f"of {type(x[0]).__name__}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected a numeric array, got dtype {arr.dtype} "
                        "(strings/objects cannot be fed to a model)")
    if arr.ndim < 2:
        raise ValueError(f"{what}: expected an array of shape (samples, features...), "
                         f"got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{what} contains NaN or inf (first at index {tuple(int(i) for i in bad)})")
    dtype = np.dtype(dtype)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > dtype.itemsize:
        big = np.abs(arr) > np.finfo(dtype).max
        if big.any():
            i = tuple(int(k) for k in np.argwhere(big)[0])
            raise ValueError(f"{what} has values too large for {dtype} (out of range: "
                             f"{arr[i]:g} at index {i}); rescale the data")
    out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.writeable:
        # the kernels take Cython typed memoryviews, which refuse read-only
        # buffers: copy read-only input once (np.memmap mode 'r', and the
        # memory-mapped arrays joblib hands to worker processes)
        out = out.copy()
    return out


def check_same_length(x, y, xname="x", yname="y"):
    ny = len(y)
    if ny != x.shape[0]:
        raise ValueError(f"{xname} and {yname} have different numbers of samples: "
                         f"{xname} has {x.shape[0]}, {yname} has {ny}")


def check_positive_int(value, what, allow_none=False):
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def sample_weights(sample_weight, class_weight, y_labels, n, dtype):
    """Per-sample weights from sample_weight and/or class_weight (or None)."""
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if w.shape[0] != n:
            raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} samples")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"sample_weight must be finite and >= 0; got {w[i]!r} at index {i}")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError("class_weight must be a dict {class index: weight}")
        labels = y_labels
        if labels.ndim == 2:
            labels = labels.argmax(axis=1) if labels.shape[1] > 1 else (labels[:, 0] > 0.5)
        labels = labels.astype(np.int64)
        cw = np.ones(int(labels.max()) + 1 if labels.size else 1)
        for k, v in class_weight.items():
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
                raise TypeError(f"class_weight keys must be class indices (integers >= 0); "
                                f"got {k!r}")
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
                raise ValueError(f"class_weight[{k}] must be a finite number >= 0; got {v!r}")
            if int(k) >= cw.shape[0]:
                cw = np.concatenate([cw, np.ones(int(k) + 1 - cw.shape[0])])
            cw[int(k)] = float(v)
        cwv = cw[labels]
        w = cwv if w is None else w * cwv
    return None if w is None else np.ascontiguousarray(w, dtype=dtype)
