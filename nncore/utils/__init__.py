"""Utilities, as ``keras.utils``: seeding, one-hot labels, plotting, and the
teaching tools (gradient check, backprop trace)."""
import numpy as np

from nncore import naming
from nncore import random as nn_random


def set_random_seed(seed):
    """Seed everything nncore draws at random (initial weights, shuffling,
    dropout seeds) -- and Python's and NumPy's global generators, like Keras."""
    import random as py_random
    nn_random.seed(seed)
    py_random.seed(seed)
    np.random.seed(seed)


def to_categorical(x, num_classes=None):
    """Integer labels -> one-hot rows (float32)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biu" and not (x.dtype.kind == "f" and np.all(x == np.round(x))):
        raise ValueError("to_categorical: labels must be integers")
    x = x.astype(np.int64).reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: negative label {x.min()}")
    n = int(num_classes) if num_classes is not None else (int(x.max()) + 1 if x.size else 0)
    if x.size and x.max() >= n:
        raise ValueError(f"to_categorical: label {x.max()} >= num_classes {n}")
    out = np.zeros((x.shape[0], n), dtype=np.float32)
    out[np.arange(x.shape[0]), x] = 1
    return out


def clear_session():
    """Restart automatic layer names (dense, dense_1, ...) like Keras's clear_session."""
    naming.reset()


def plot_history(history, metrics=("loss",), ax=None):
    """Train vs validation curves of a History (needs matplotlib: nncore[plot])."""
    from nncore.utils.plotting import plot_history as _plot
    return _plot(history, metrics=metrics, ax=ax)


def __getattr__(name):
    # teaching tools live in their own modules; imported on first use
    if name in ("gradient_check", "trace"):
        from nncore.utils import teaching
        return getattr(teaching, name)
    raise AttributeError(f"module 'nncore.utils' has no attribute {name!r}")
