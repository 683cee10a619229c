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
from nncore.layers.plan_entry import PlanEntry


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

    def forward(self, x, training=False, logits=False):
        """With ``training=True``: ``out = x * mask / (1 - rate)``, mask ~ Bernoulli(1 - rate);
        otherwise ``x`` itself.
        """
        st = self._state
        st.training = bool(training) and self.rate > 0
        if not st.training:
            return x
        x = self._in_dtype(x)
        K = kernels()
        out = self._new(x.shape)
        mask = self._new((x.size,), np.uint8)
        K.dropout_forward(np.ascontiguousarray(x).reshape(-1), out.reshape(-1), mask,
                          self.rate, self._stream_seed, self.step)
        self.step += 1
        st.mask = mask
        return out

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """``dx = grad * mask / (1 - rate)``: dropped inputs get no gradient."""
        st = self._state
        if not getattr(st, "training", False):
            return grad
        grad = self._in_dtype(grad)
        dx = self._new(grad.shape)
        kernels().dropout_backward(np.ascontiguousarray(grad).reshape(-1), st.mask,
                                   self.rate, dx.reshape(-1))
        return dx

    def plan_entry(self, ctx):
        """Rate 0 is the identity (no entry); otherwise the loop draws the
        masks from this layer's stream and hands the step counter back."""
        if self.rate == 0:
            return None
        return PlanEntry("dropout", rate=self.rate, seed=self._stream_seed, step=self.step)

    def weight_shapes(self, input_shape):
        return []

    def describe(self, step):
        """The mask and its scaling while training, the identity otherwise."""
        if step.forward_kwargs.get("training", False) and self.rate > 0:
            return (f"a = x * mask / (1 - {self.rate:g})   (mask: keep with p = "
                    f"{1 - self.rate:g})", f"dx = g * mask / (1 - {self.rate:g})")
        return "a = x  (inactive)", "dx = g"

    # ------------------------------------------------------------ Keras files
    keras_name = "Dropout"
    keras_has_build = False

    @classmethod
    def from_keras(cls, c, what):
        """A Keras config of this layer -> the constructor's arguments."""
        from nncore.saving import keras_layers as KL
        KL.require_absent(c, ("noise_shape",), what)
        rate = c.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise KL.FormatError(f"{what}: rate must be a number in [0, 1), got {rate!r}")
        seed = c.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or not 0 <= seed < 2 ** 63):
            raise KL.FormatError(f"{what}: invalid seed {seed!r}")
        return dict(KL.common(c, what), rate=float(rate), seed=seed)

    def to_keras(self):
        from nncore.saving import keras_layers as KL
        return dict(KL.common_keras(self), rate=self.rate, seed=self.seed, noise_shape=None)

    def get_config(self):
        c = super().get_config()
        c.update(rate=self.rate, seed=self.seed)
        return c
