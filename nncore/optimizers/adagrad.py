"""Adagrad: ``a += g^2; w -= lr * g / sqrt(a + eps)``, a starting at 0.1."""
from __future__ import annotations

from nncore.optimizers.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad: each weight's step shrinks with the sum of its past squared gradients.

    With the accumulator ``a`` starting at ``initial_accumulator_value``::

        a <- a + g²
        w <- w - lr * g / sqrt(a + epsilon)

    Args:
        learning_rate: step size (default 0.001).
        initial_accumulator_value: start of ``a`` (default 0.1).
        epsilon: default 1e-7.
        **kwargs: ``weight_decay``, ``clipnorm``, ... (see :class:`Optimizer`).

    Example::

        model.compile(optimizer=keras.optimizers.Adagrad(), loss="mse")
    """
    def __init__(self, learning_rate: float = 0.001,
                 initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 **kwargs) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value = self._check_range(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, 0, float("inf"))
        self.epsilon = self._check_positive("Adagrad", "epsilon", epsilon)

    def slot_names(self):
        return ["accumulator"]

    def slot_names_for_kernel(self):
        return ("accumulator", None, None)

    def _slot_init(self, name):
        return self.initial_accumulator_value

    def update_step(self, K, w, g, slots):
        K.adagrad_update(w, g, slots[0], self.learning_rate, self.epsilon)

    def kernel_params(self):
        return dict(kind="adagrad", lr=self.learning_rate, epsilon=self.epsilon)

    def get_config(self):
        c = super().get_config()
        c.update(initial_accumulator_value=self.initial_accumulator_value,
                 epsilon=self.epsilon)
        return c
