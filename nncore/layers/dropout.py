"""Dropout: while training, zero each input with probability ``rate`` and scale
the survivors by 1 / (1 - rate); at inference, pass inputs through unchanged.

The mask for call number ``step`` comes from a counter-based generator keyed
by (seed, step, element index) -- see ``nncore.ops.dropout`` -- so it is the
same for any thread count and for the per-batch and fused training loops.
"""
from __future__ import annotations

import numbers

import numpy as np

from nncore import random as nn_random
from nncore.backend import kernels
from nncore.layers.layer import Layer


class Dropout(Layer):
    """Randomly silence inputs while training, to reduce overfitting.

    While training, each input is set to 0 with probability ``rate`` and the
    others are multiplied by ``1 / (1 - rate)``, so the expected value of every
    output equals its input.  At inference (evaluate, predict) the layer passes
    its input through unchanged.  No weights.

    Args:
        rate: fraction of inputs to drop, in [0, 1) (e.g. 0.3).
        noise_shape: not supported (must be None).
        seed: seed of this layer's mask stream (default: drawn from
            ``keras.utils.set_random_seed``'s state).
        name: the layer's name.

    Example::

        model = keras.Sequential([
            keras.Input(shape=(28, 28)), keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10, activation="softmax"),
        ])
    """
    def __init__(self, rate: float, noise_shape: None = None, seed: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be a number in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise ValueError("Dropout: noise_shape is not supported by nncore")
        self.rate = float(rate)
        self.seed = seed
        # The stream: the given seed, or one drawn from the global state
        # (so utils.set_random_seed fixes it).
        self._stream_seed = int(seed) if seed is not None else nn_random.draw_seed()
        self.step = 0      # masks drawn so far; part of the RNG key

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """With ``training=True``: ``out = x * mask / (1 - rate)``, mask ~ Bernoulli(1 - rate);
        otherwise ``x`` itself.
        """
        self._training = bool(training) and self.rate > 0
        if not self._training:
            return x
        K = kernels()
        out = self._buffer("out", x.shape)
        mask = self._buffer("mask", (x.size,), np.uint8)
        K.dropout_forward(x.reshape(-1), out.reshape(-1), mask, self.rate,
                          self._stream_seed, self.step)
        self.step += 1
        self._mask = mask
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """``dx = grad * mask / (1 - rate)``: dropped inputs get no gradient."""
        if not self._training:
            return grad
        dx = self._buffer("dx", grad.shape)
        kernels().dropout_backward(grad.reshape(-1), self._mask, self.rate, dx.reshape(-1))
        return dx

    def get_config(self):
        c = super().get_config()
        c.update(rate=self.rate, seed=self.seed)
        return c
