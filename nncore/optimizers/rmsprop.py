"""RMSprop: divide the step by a running RMS of the gradient (see nncore.ops.optimizers)."""
from __future__ import annotations

from nncore.optimizers.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop: divide each step by a running root-mean-square of the gradient.

    With ``a`` starting at 0::

        a <- rho * a + (1 - rho) * g²
        w <- w - lr * g / sqrt(a + epsilon)

    Weights with large gradients take smaller steps.  ``centered=True`` also
    tracks the mean gradient and divides by an estimate of the variance;
    ``momentum > 0`` adds a velocity as in SGD.  Keras's default optimizer.

    Args:
        learning_rate: step size (default 0.001).
        rho: decay of the average (default 0.9).
        momentum: default 0.0.
        epsilon: default 1e-7.
        centered: default False.
        **kwargs: ``weight_decay``, ``clipnorm``, ... (see :class:`Optimizer`).

    Example::

        model.compile(optimizer=keras.optimizers.RMSprop(),
                      loss="sparse_categorical_crossentropy")
    """
    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False,
                 **kwargs) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = self._check_range("RMSprop", "rho", rho, 0, 1)
        self.momentum = self._check_range("RMSprop", "momentum", momentum, 0, 1, hi_open=False)
        self.epsilon = self._check_positive("RMSprop", "epsilon", epsilon)
        self.centered = bool(centered)

    def slot_names(self):
        return [n for n in self.slot_names_for_kernel() if n]

    def slot_names_for_kernel(self):
        return ("velocity", "average_gradient" if self.centered else None,
                "momentum" if self.momentum > 0 else None)

    def update_step(self, K, w, g, slots):
        K.rmsprop_update(w, g, slots[0], slots[1], slots[2], self.learning_rate,
                         self.rho, self.momentum, self.epsilon)

    def kernel_params(self):
        return dict(kind="rmsprop", lr=self.learning_rate, rho=self.rho,
                    momentum=self.momentum, epsilon=self.epsilon,
                    centered=self.centered)

    def get_config(self):
        c = super().get_config()
        c.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                 centered=self.centered)
        return c
