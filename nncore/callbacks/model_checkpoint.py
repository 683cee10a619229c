"""``ModelCheckpoint``: save the model (or its weights) during training.

The suffix chooses the format: whole models as ``.npz`` (nncore's own) or
``.keras`` (Keras 3), weights as ``.weights.npz`` or ``.weights.h5``; the
constructor rejects other extensions with a ``ValueError`` (legacy ``.h5`` whole
models are read by ``load_model`` but not written).

The path is ``filepath.format(epoch=epoch + 1, **logs)`` (with ``batch=batch + 1``
too when saving every N batches), so ``"ckpt-{epoch:02d}-{val_loss:.2f}.npz"``
gives ``ckpt-03-0.41.npz``; a placeholder missing from the logs raises KeyError.

``save_freq="epoch"`` saves at each epoch end; an integer N saves every N
training batches, which needs per-batch hooks (``needs_batch_hooks('train')``
is True only then, so the fused training loop is kept otherwise).

``save_best_only`` compares ``logs[monitor]`` with the best value so far
(starting from ``initial_value_threshold`` if given); when the monitor is
missing it warns and saves anyway (as Keras).  Direction resolution for
``mode='auto'`` happens only when ``save_best_only`` is set.
"""
import os
import sys
import warnings

import numpy as np

from nncore.callbacks.monitor import MonitorCallback


def _check_extension(filepath, save_weights_only):
    path = filepath.lower()
    if save_weights_only:
        if path.endswith((".weights.npz", ".weights.h5")):
            return
        raise ValueError(
            "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
            "provided must end in `.weights.npz` (nncore weights format) or "
            f"`.weights.h5` (Keras weights format). Received: filepath={filepath}")
    if path.endswith((".weights.npz", ".weights.h5")):
        raise ValueError(
            "A filepath ending in `.weights.npz`/`.weights.h5` is for weights only: pass "
            "`save_weights_only=True`, or use a path ending in `.npz` or `.keras` to save "
            f"the whole model. Received: filepath={filepath}")
    if path.endswith((".npz", ".keras")):
        return
    hint = ""
    if path.endswith(".h5"):
        hint = " nncore writes whole Keras models as `.keras`, not legacy `.h5` (e.g. use 'best_model.keras')."
    raise ValueError(
        "The filepath provided to `ModelCheckpoint` must end in `.npz` (nncore model "
        f"format) or `.keras` (Keras model format).{hint} Received: filepath={filepath}")


class ModelCheckpoint(MonitorCallback):
    """Save the model or its weights at some frequency.

    Args:
        filepath: path (str or PathLike), may contain ``{epoch}``, ``{batch}`` and
            log-key placeholders; must end in ``.npz`` (``.weights.npz`` with
            ``save_weights_only=True``).
        monitor: log key for ``save_best_only`` (``"val_loss"``).
        verbose: 1 prints a line at each save decision.
        save_best_only: save only when ``monitor`` improves.
        save_weights_only: save with ``model.save_weights`` instead of ``model.save``.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        save_freq: ``"epoch"`` or a positive int (every N batches).
        initial_value_threshold: starting best value for ``save_best_only``.

    Example::

        checkpoint_cb = keras.callbacks.ModelCheckpoint("best-model.npz",
                                                        save_best_only=True)
        model.fit(x, y, epochs=20, validation_data=(x_val, y_val),
                  callbacks=[checkpoint_cb])
        model = keras.models.load_model("best-model.npz")
    """

    _missing_message = "Can save best model only with {monitor} available."

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor=monitor, mode=mode, baseline=initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, (int, np.integer))
                                     or save_freq <= 0):
            raise ValueError(f"Unrecognized save_freq: {save_freq}. Expected save_freq "
                             "are 'epoch' or positive integer values")
        self.save_freq = save_freq
        _check_extension(self.filepath, save_weights_only)
        self._current_epoch = 0
        self._batches_since_save = 0
        self._last_batch_seen = -1

    def needs_batch_hooks(self, mode="train"):
        return mode == "train" and self.save_freq != "epoch"

    def on_train_begin(self, logs=None):
        self._batches_since_save = 0
        self._last_batch_seen = -1
        self._reset_missing_warning()
        if self.save_best_only:
            self._resolve_direction()

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # batch indices restart at 0 each epoch; count batches actually seen
        if batch <= self._last_batch_seen:
            self._batches_since_save += batch + 1
        else:
            self._batches_since_save += batch - self._last_batch_seen
        self._last_batch_seen = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    # ------------------------------------------------------------ helpers
    def _get_file_path(self, epoch, batch, logs):
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {e}") from None

    def _should_save(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}", file=sys.stdout)
            return True
        current = self._get_monitor_value(logs)
        if current is None:
            return True
        if np.ndim(current) > 0:
            warnings.warn("Can save best model only when `monitor` is a scalar value. "
                          f"Received: {current}. Falling back to `save_best_only=False`.",
                          stacklevel=3)
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                      f"{current:.5f}, saving model to {filepath}", file=sys.stdout)
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}",
                  file=sys.stdout)
        return False

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
