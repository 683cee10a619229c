"""Utilities, as ``keras.utils``: seeding, one-hot labels, plotting, and the
teaching tools (gradient check, backprop trace, the per-step gradients of a
recurrent layer: ``plot_state_gradients``)."""
from __future__ import annotations

import numpy as np

from nncore import naming
from nncore import random as nn_random

__all__ = ["set_random_seed", "to_categorical", "clear_session", "plot_history",
           "plot_model", "model_to_dot", "gradient_check", "trace", "plot_state_gradients"]


def set_random_seed(seed: int) -> None:
    """Seed everything nncore draws at random, so a run can be repeated exactly.

    Covers initial weights, shuffling and dropout masks -- and Python's and
    NumPy's global generators, as Keras does.  Same seed, same data, same code:
    bitwise the same results (for any thread count).

    Args:
        seed: an integer.

    Example::

        keras.utils.set_random_seed(42)
    """
    import random as py_random
    nn_random.seed(seed)
    py_random.seed(seed)
    np.random.seed(seed)


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """Integer labels -> one-hot (float64, as Keras 3): label ``k`` becomes a
    row of zeros with a 1 in column ``k``.

    The result has the shape of ``x`` plus one axis of ``num_classes``; a
    last axis of size 1 (labels as a column, shape ``(n, 1)``) is dropped
    first, as Keras does.  So labels ``(n,)`` give ``(n, classes)`` and the
    book's padded reviews ``(20000, 100)`` give ``(20000, 100, 200)``.

    Args:
        x: integer labels (any shape), all >= 0; floats holding whole numbers
            are accepted.
        num_classes: number of classes (default, or 0: largest label + 1).

    Returns:
        A float64 array of shape ``x.shape + (num_classes,)``.

    Example::

        keras.utils.to_categorical([0, 2], num_classes=3)
        # array([[1., 0., 0.],
        #        [0., 0., 1.]])
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biu" and not (x.dtype.kind == "f" and np.all(x == np.round(x))):
        raise ValueError("to_categorical: labels must be integers")
    shape = x.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    x = x.astype(np.int64).reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: negative label {x.min()}")
    if num_classes is not None and (isinstance(num_classes, bool) or
                                    int(num_classes) != num_classes or num_classes < 0):
        raise ValueError(f"to_categorical: num_classes must be a positive integer, "
                         f"got {num_classes!r}")
    n = int(num_classes) if num_classes else (int(x.max()) + 1 if x.size else 0)
    if x.size and x.max() >= n:
        raise ValueError(f"to_categorical: label {x.max()} >= num_classes {n}")
    out = np.zeros((x.shape[0], n), dtype=np.float64)
    out[np.arange(x.shape[0]), x] = 1
    return out.reshape(shape + (n,))


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre",
                  truncating="pre", value=0.0):
    """Pad or cut sequences to one length, as ``keras.utils.pad_sequences``
    (the same function as ``nncore.preprocessing.sequence.pad_sequences``).

    Example::

        keras.utils.pad_sequences([[1, 2, 3], [4, 5]], maxlen=4)
        # array([[0, 1, 2, 3],
        #        [0, 0, 4, 5]], dtype=int32)
    """
    from nncore.preprocessing.sequence import pad_sequences as _pad
    return _pad(sequences, maxlen=maxlen, dtype=dtype, padding=padding,
                truncating=truncating, value=value)


def clear_session() -> None:
    """Restart automatic layer names (``dense``, ``dense_1``, ...) as Keras's
    ``clear_session`` does, e.g. between notebook experiments.
    """
    naming.reset()


def plot_history(history, metrics=("loss",), ax=None):
    """Plot training and validation curves of a History (needs matplotlib: ``pip install matplotlib``).

    Args:
        history: what ``model.fit`` returned (or its ``.history`` dict).
        metrics: which curves, e.g. ``("loss", "accuracy")``; one axes per
            metric, with the ``val_`` curve beside the training curve.
        ax: an existing matplotlib Axes to draw a single metric into.

    Returns:
        The matplotlib Figure.

    Example::

        history = model.fit(x, y, epochs=20, validation_split=0.2)
        fig = keras.utils.plot_history(history, metrics=("loss", "accuracy"))
        fig.savefig("curves.png")
    """
    from nncore.utils.plotting import plot_history as _plot
    return _plot(history, metrics=metrics, ax=ax)


def __getattr__(name):
    # teaching tools live in their own modules; imported on first use
    if name in ("gradient_check", "trace"):
        from nncore.utils import teaching
        return getattr(teaching, name)
    if name == "plot_state_gradients":
        from nncore.utils.state_gradients import plot_state_gradients
        return plot_state_gradients
    if name in ("plot_model", "model_to_dot"):
        from nncore.utils import model_visualization
        return getattr(model_visualization, name)
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
