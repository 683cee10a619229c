"""Activation functions by name, as ``keras.activations``.

These NumPy functions are for users who call them directly; layers hand the
*name* to the fused bias+activation kernel (see ``nncore.ops.activations``
for the formulas and their derivatives).
"""
import numpy as np

from nncore.ops import activations as _ops
from nncore.ops.activations import ACTIVATIONS  # noqa: F401  (the one name table)


def _apply(x, name):
    z = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float32), copy=True)
    shape = z.shape
    z2 = z.reshape(-1, shape[-1]) if z.ndim != 2 else z
    _ops.bias_act_forward(z2, None, name)
    return z2.reshape(shape)


def linear(x):
    return np.asarray(x)


def relu(x):
    return _apply(x, "relu")


def sigmoid(x):
    return _apply(x, "sigmoid")


def tanh(x):
    return _apply(x, "tanh")


def softmax(x, axis=-1):
    if axis != -1:
        raise ValueError("softmax: only axis=-1 is supported")
    return _apply(x, "softmax")


ALL = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh,
       "softmax": softmax}


def get(identifier):
    """The activation's name: from None, a string or one of these functions."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        if identifier not in ALL:
            raise ValueError(f"unknown activation {identifier!r}; valid: "
                             f"{', '.join(ALL)} (or None)")
        return identifier
    for name, fn in ALL.items():
        if identifier is fn or getattr(identifier, "__name__", None) == name:
            return name
    raise ValueError(f"unsupported activation {identifier!r}; valid: "
                     f"{', '.join(ALL)} (or None)")


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
