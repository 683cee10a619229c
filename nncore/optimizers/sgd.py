"""SGD: ``w -= lr * g``; with momentum ``m = momentum*m - lr*g; w += m``
(Nesterov: ``w += momentum*m - lr*g``).  Formulas: nncore.ops.optimizers."""
from __future__ import annotations

from nncore.optimizers.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Plain: ``w <- w - lr * g``.  With momentum ``mu`` a velocity ``v`` (starting at
    0) remembers past steps::

        v <- mu * v - lr * g
        w <- w + v                       (Nesterov: w <- w + mu * v - lr * g)

    Args:
        learning_rate: step size (default 0.01).
        momentum: ``mu`` in [0, 1] (default 0.0: no momentum).
        nesterov: use Nesterov momentum (default False).
        **kwargs: ``weight_decay``, ``clipnorm``, ... (see :class:`Optimizer`).

    Example::

        sgd = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
        model.compile(optimizer=sgd, loss="sparse_categorical_crossentropy")
    """
    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = self._check_range("SGD", "momentum", momentum, 0, 1, hi_open=False)
        self.nesterov = bool(nesterov)

    def slot_names(self):
        return ["momentum"] if self.momentum != 0 else []

    def slot_names_for_kernel(self):
        return ("momentum" if self.momentum != 0 else None, None, None)

    def update_step(self, K, w, g, slots):
        K.sgd_update(w, g, slots[0], self.learning_rate, self.momentum, self.nesterov)

    def kernel_params(self):
        return dict(kind="sgd", lr=self.learning_rate, momentum=self.momentum,
                    nesterov=self.nesterov)

    def get_config(self):
        c = super().get_config()
        c.update(momentum=self.momentum, nesterov=self.nesterov)
        return c
