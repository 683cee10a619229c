"""RMSprop: divide the step by a running RMS of the gradient (see nncore.ops.optimizers)."""
from nncore.optimizers.optimizer import Optimizer


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
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
