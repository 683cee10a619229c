"""Flatten: (batch, d1, d2, ...) -> (batch, d1*d2*...).  No weights, no maths:
backward reshapes the gradient back to the input's shape."""
from __future__ import annotations

import math

import numpy as np

from nncore.layers.layer import Layer


class Flatten(Layer):
    """Reshape each sample into one row: ``(batch, 28, 28)`` -> ``(batch, 784)``.

    No weights and no arithmetic; ``backward`` reshapes the gradient back.
    Needed before a ``Dense`` layer when the samples are images.

    Args:
        data_format: accepted for Keras compatibility (``"channels_last"`` or
            ``"channels_first"``; the order of a flattened sample is C order).
        name: the layer's name.

    Example::

        keras.layers.Flatten()(np.zeros((2, 28, 28))).shape     # (2, 784)
    """
    def __init__(self, data_format: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"Flatten: data_format must be 'channels_last' or "
                             f"'channels_first', got {data_format!r}")
        self.data_format = data_format

    def compute_output_shape(self, input_shape):
        """``(batch, product of the other dimensions)``."""
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(math.prod(rest))
        return (input_shape[0], size)

    def forward(self, x, training=False, logits=False):
        """The batch reshaped to ``(batch, -1)`` (remembers the input shape)."""
        self._state.shape = x.shape
        return np.ascontiguousarray(x).reshape(x.shape[0], -1)

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """The gradient reshaped back to the input's shape."""
        return grad.reshape(self._state.shape)

    def plan_entry(self, ctx):
        # rows are row-major: flattening them changes nothing in memory
        return None

    def weight_shapes(self, input_shape):
        return []

    def describe(self, step):
        """A reshape each way (for ``utils.trace``)."""
        from nncore.utils.teaching import fmt_shape
        return (f"a = reshape(x) to {fmt_shape(step.output_shape)}",
                f"dx = reshape(g) to {fmt_shape(step.input_shape)}")

    # ------------------------------------------------------------ Keras files
    keras_name = "Flatten"

    @classmethod
    def from_keras(cls, c, what):
        """A Keras config of this layer -> the constructor's arguments."""
        from nncore.saving import keras_layers as KL
        KL.channels_last(c, what)
        return KL.common(c, what)

    def to_keras(self):
        from nncore.saving import keras_layers as KL
        return dict(KL.common_keras(self), data_format="channels_last")

    def get_config(self):
        c = super().get_config()
        c["data_format"] = self.data_format
        return c
