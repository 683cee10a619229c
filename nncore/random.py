"""nncore's global random state, reset by ``nncore.utils.set_random_seed``.

Weight initialisers, shuffling and dropout seeds all draw from one NumPy
Generator, so a fixed seed reproduces a whole run.  Dropout masks themselves
come from a counter-based generator keyed by a seed drawn here (see
``nncore.ops.dropout``), so they do not depend on the thread count.
"""
import numpy as np

_rng = np.random.default_rng()


def generator():
    return _rng


def seed(value):
    global _rng
    if value is None:
        _rng = np.random.default_rng()
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"set_random_seed: seed must be a non-negative integer, got {value!r}")
    _rng = np.random.default_rng(int(value))


def draw_seed():
    """A fresh 63-bit seed for an object that needs its own stream."""
    return int(_rng.integers(0, 2 ** 63 - 1))
