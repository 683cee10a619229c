"""``ReduceLROnPlateau``: multiply the learning rate by ``factor`` when the
monitored quantity has not improved for ``patience`` epochs.

Keras semantics: at each epoch end ``logs['learning_rate']`` is set to the rate
used in that epoch; during ``cooldown`` epochs after a reduction ``wait`` stays
0; an improvement needs ``min_delta`` (default 1e-4); the rate never goes below
``min_lr`` and is not touched once it is at ``min_lr``.  In 'auto' mode an
unknown monitor name falls back to Keras's rule ('max' if it contains 'acc').
"""
import sys

import numpy as np

from nncore.callbacks.monitor import MonitorCallback


class ReduceLROnPlateau(MonitorCallback):
    """Reduce the learning rate when a metric has stopped improving.

    Args: monitor ("val_loss"), factor (0.1, must be < 1), patience (10),
    verbose (0), mode ("auto"), min_delta (1e-4), cooldown (0), min_lr (0.0).
    """

    _missing_message = ("Learning rate reduction is conditioned on metric `{monitor}` "
                        "which is not available. Available metrics are: {available}.")

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        if "epsilon" in kwargs:             # old Keras name of min_delta
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected arguments: {sorted(kwargs)}")
        super().__init__(monitor=monitor, mode=mode, baseline=None, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.cooldown_counter = 0
        self.wait = 0

    def _fallback_direction(self):
        return "max" if "acc" in self.monitor else "min"

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0
        self._reset_missing_warning()

    def on_train_begin(self, logs=None):
        self._reset()
        self._resolve_direction()

    def in_cooldown(self):
        """True while the cooldown after a reduction is still running."""
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            logs = {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self._get_monitor_value(logs)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                              f"rate to {new_lr}.", file=sys.stdout)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
