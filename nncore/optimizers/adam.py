"""Adam: running means of g and g^2 with bias correction (see nncore.ops.optimizers)."""
from __future__ import annotations

from nncore.optimizers.optimizer import Optimizer


class Adam(Optimizer):
    """Adam: momentum and a per-weight step size, from running averages of g and g².

    With step count ``t`` (from 1) and ``m``, ``v`` starting at 0::

        m <- beta_1 * m + (1 - beta_1) * g
        v <- beta_2 * v + (1 - beta_2) * g²
        w <- w - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    (the square-root factor corrects the bias of averages that start at 0).
    AMSGrad uses the running maximum of ``v`` instead of ``v``.

    Args:
        learning_rate: step size (default 0.001).
        beta_1: decay of the gradient average (default 0.9).
        beta_2: decay of the squared-gradient average (default 0.999).
        epsilon: keeps the division finite (default 1e-7).
        amsgrad: use AMSGrad (default False).
        **kwargs: ``weight_decay``, ``clipnorm``, ... (see :class:`Optimizer`).

    Example::

        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    """
    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 **kwargs) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = self._check_range("Adam", "beta_1", beta_1, 0, 1)
        self.beta_2 = self._check_range("Adam", "beta_2", beta_2, 0, 1)
        self.epsilon = self._check_positive("Adam", "epsilon", epsilon)
        self.amsgrad = bool(amsgrad)

    def slot_names(self):
        return [n for n in self.slot_names_for_kernel() if n]

    def slot_names_for_kernel(self):
        return ("m", "v", "vhat" if self.amsgrad else None)

    def update_step(self, K, w, g, slots):
        K.adam_update(w, g, slots[0], slots[1], slots[2], self.learning_rate,
                      self.beta_1, self.beta_2, self.epsilon, self.iterations + 1)

    def kernel_params(self):
        return dict(kind="adam", lr=self.learning_rate, beta_1=self.beta_1,
                    beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad)

    def get_config(self):
        c = super().get_config()
        c.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                 amsgrad=self.amsgrad)
        return c
