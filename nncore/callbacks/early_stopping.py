"""``EarlyStopping``: stop training when a monitored quantity stops improving.

Follows Keras 3.15: epochs before ``start_from_epoch`` and epochs where the
monitor is missing (a warning is issued) are skipped.  Otherwise ``wait`` grows
by one; an improvement over the best value (``min_delta`` counted) records the
new best (and, with ``restore_best_weights``, the weights) and resets ``wait``
only if it also beats ``baseline``.  Training stops when ``wait >= patience``
and ``epoch > 0``.  With ``restore_best_weights`` the best weights are put back
in ``on_train_end`` whenever some were stored -- also when training ran all its
epochs (Keras 3 behaviour; Keras 2.13 restored only on an early stop).
"""
import sys

from nncore.callbacks.monitor import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has stopped improving.

    Args:
        monitor: log key to watch (``"val_loss"``).
        min_delta: smallest change that counts as an improvement (0).
        patience: epochs without improvement before stopping (0).
        verbose: 1 prints the stop and restore messages.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        baseline: value the monitor must beat for ``wait`` to be reset.
        restore_best_weights: restore the weights of the best epoch at the end.
        start_from_epoch: epochs to skip before monitoring starts (0).

    After training: ``stopped_epoch`` (0-based epoch that stopped it, 0 if none),
    ``best``, ``best_epoch``, ``wait``.

    Example::

        early_stopping_cb = keras.callbacks.EarlyStopping(patience=2,
                                                          restore_best_weights=True)
        model.fit(x, y, epochs=20, validation_data=(x_val, y_val),
                  callbacks=[early_stopping_cb])
        early_stopping_cb.stopped_epoch        # e.g. 9: stopped after epoch 10
    """

    _missing_message = ("Early stopping conditioned on metric `{monitor}` which is not "
                        "available. Available metrics are: {available}")

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor=monitor, mode=mode, baseline=None, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # instances can be reused for several fits
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0
        self._reset_missing_warning()
        self._resolve_direction()

    def on_epoch_end(self, epoch, logs=None):
        self._resolve_direction()
        current = self._get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # nothing stored yet: the current weights are the best so far
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", file=sys.stdout)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.", file=sys.stdout)
            self.model.set_weights(self.best_weights)

    # Keras name
    def get_monitor_value(self, logs):
        """The monitored value in ``logs`` (None, with a warning, if absent)."""
        return self._get_monitor_value(logs)
