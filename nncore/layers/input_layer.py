"""Input: declares the shape of one sample, e.g. ``Input(shape=(28, 28))``.

As in Keras, ``Input`` returns a symbolic tensor (``KerasTensor``) made by
an ``InputLayer``: put it first in a ``Sequential``, or call layers on it and
pass it to ``keras.Model(inputs, outputs)``.
"""
from __future__ import annotations

import numbers

from nncore.layers.layer import Layer


class InputLayer(Layer):
    """The layer :func:`Input` returns: it holds the shape of one sample.

    Args:
        shape: shape of one sample, without the batch dimension, e.g. ``(28, 28)``.
        batch_size: optional fixed batch size (informational).
        dtype: input dtype (default float32).
        name: the layer's name.
    """
    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, **kwargs):
        if shape is None:
            shape = kwargs.pop("input_shape", None)
        if shape is None:
            raise ValueError("Input: shape is required, e.g. Input(shape=(784,))")
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(shape)
        for d in shape:
            if d is not None and (isinstance(d, bool) or not isinstance(d, numbers.Integral) or d <= 0):
                raise ValueError(f"Input: shape dimensions must be positive integers (or None), "
                                 f"got {shape!r}")
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.shape = (None,) + shape
        self.batch_size = batch_size
        self.build(self.shape)

    def forward(self, x, training=False, logits=False):
        """The input itself."""
        return x

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """The gradient itself."""
        return grad

    def plan_entry(self, ctx):
        return None

    def weight_shapes(self, input_shape):
        return []

    def compute_output_shape(self, input_shape):
        """The declared sample shape (what the layers above are built for)."""
        return self.shape if self.__dict__.get("shape") is not None else tuple(input_shape)

    # (Keras files hold InputLayer as the model's own input: no converter)
    keras_name = "InputLayer"

    def get_config(self):
        return {"shape": list(self.shape[1:]), "batch_size": self.batch_size,
                "dtype": str(self.dtype), "name": self.name}


    @property
    def output(self):
        """The symbolic tensor this input layer feeds (a KerasTensor)."""
        t = self.__dict__.get("_tensor")
        if t is None:
            from nncore.layers.symbolic import KerasTensor
            t = self._tensor = KerasTensor(self.shape, self.dtype, layer=self, name=self.name)
        return t


def Input(shape: tuple[int | None, ...] | int | None = None, batch_size: int | None = None,
          dtype: str | None = None, name: str | None = None, **kwargs):
    """Declare the shape of one input sample; returns a symbolic tensor.

    As in Keras, ``Input`` returns a ``KerasTensor`` (made by an
    ``InputLayer``): put it first in a Sequential, so the weights are created
    (and ``summary()`` works) before any data is seen, or call layers on it
    and pass it to ``keras.Model(inputs, outputs)``.

    Args:
        shape: shape of one sample without the batch dimension, e.g. ``(28, 28)``
            for Fashion-MNIST images or ``(784,)`` for flat vectors.
        batch_size, dtype, name: optional, as in Keras.

    Example::

        model = keras.Sequential([keras.Input(shape=(784,)),
                                  keras.layers.Dense(10, activation="softmax")])
        inputs = keras.Input(shape=(784,))
        outputs = keras.layers.Dense(10, activation="softmax")(inputs)
        model = keras.Model(inputs, outputs)
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                      **kwargs).output
