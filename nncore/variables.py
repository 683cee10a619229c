"""Variable: a named NumPy array that training updates in place.

Keras returns ``Variable`` objects from ``layer.weights``; so does nncore.
``.numpy()`` gives a copy, ``.assign()`` writes in place, and the array
itself (``.value``) never changes identity, so the compiled training loop can
keep pointers to it.
"""
import numpy as np


class Variable:
    def __init__(self, value, name, trainable=True, path=None):
        self.value = np.ascontiguousarray(value)
        self.name = name
        self.path = path or name
        self.trainable = trainable

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    def numpy(self):
        return self.value.copy()

    def assign(self, value):
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(f"Variable {self.path}: cannot assign a value of shape "
                             f"{value.shape} to a variable of shape {self.value.shape}")
        self.value[...] = value
        return self

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self):
        return (f"<Variable path={self.path}, shape={self.shape}, "
                f"dtype={self.dtype}, value={self.value!r}>")
