"""KerasTensor: the symbolic value that flows through a model being defined.

``keras.Input(shape=(28, 28, 1))`` returns one; calling a layer on it
returns another, remembering which layer made it from which input::

    inputs = keras.Input(shape=(784,))
    hidden = keras.layers.Dense(100, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)          # the layers between them

No arithmetic happens: a KerasTensor holds a shape (batch first, ``None``),
a dtype, and its history.  A built Sequential makes the same history for its
layers, so ``model.inputs[0]`` and ``model.layers[i].output`` exist too
(chapter 8 reads feature maps with ``keras.Model(model.inputs[0],
model.layers[0].output)``).
"""
import numpy as np


class KerasTensor:
    """A symbolic tensor: ``shape``, ``dtype``, ``name`` and where it came
    from (``layer`` made it from ``parent``; an Input has no parent)."""

    def __init__(self, shape, dtype, layer=None, parent=None, name=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.layer = layer
        self.parent = parent
        self.name = name or (layer.name if layer is not None else "keras_tensor")

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return (f"<KerasTensor shape={self.shape}, dtype={self.dtype}, "
                f"name={self.name}>")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic: it has no values. Call the model "
                        "(or predict) on NumPy data to compute them")
