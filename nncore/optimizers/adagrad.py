"""Adagrad: ``a += g^2; w -= lr * g / sqrt(a + eps)``, a starting at 0.1."""
from nncore.optimizers.optimizer import Optimizer


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1,
                 epsilon=1e-7, **kwargs):
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
