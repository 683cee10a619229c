"""Flatten: (batch, d1, d2, ...) -> (batch, d1*d2*...).  No weights, no maths:
backward reshapes the gradient back to the input's shape."""
import math

import numpy as np

from nncore.layers.layer import Layer


class Flatten(Layer):
    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"Flatten: data_format must be 'channels_last' or "
                             f"'channels_first', got {data_format!r}")
        self.data_format = data_format

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(math.prod(rest))
        return (input_shape[0], size)

    def forward(self, x, training=False, logits=False):
        self._state.shape = x.shape
        return np.ascontiguousarray(x).reshape(x.shape[0], -1)

    def backward(self, grad, from_logits=False, need_input_grad=True):
        return grad.reshape(self._state.shape)

    def plan_entry(self, ctx):
        # rows are row-major: flattening them changes nothing in memory
        return None

    def get_config(self):
        c = super().get_config()
        c["data_format"] = self.data_format
        return c
