"""Global numeric settings, named as in ``keras.config``."""
import numpy as np

_FLOATX = "float32"
_EPSILON = 1e-7


def floatx():
    """The default float type of new weights: 'float32' (like Keras) or 'float64'."""
    return _FLOATX


def set_floatx(value):
    """Use 'float64' for gradient checks; 'float32' is Keras's default and the fast one."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"set_floatx: expected 'float32' or 'float64', got {value!r}")
    _FLOATX = value


def epsilon():
    """The fuzz factor Keras uses when clipping probabilities (1e-7)."""
    return _EPSILON


# made once: np.dtype('float32') costs ~0.7 us, and every layer asks for its
# dtype several times a training step
_FLOAT_DTYPES = {name: np.dtype(name) for name in ("float32", "float64")}


def float_dtype():
    """np.dtype of ``floatx()``."""
    return _FLOAT_DTYPES[_FLOATX]
