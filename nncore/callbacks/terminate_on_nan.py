"""``TerminateOnNaN``: stop training when the loss becomes NaN or infinite.

It checks ``logs['loss']`` after every training batch (so it asks for batch
hooks, like Keras) and, as a fallback for loops that report only at epoch end,
also in ``on_epoch_end``.  It prints ``"Batch N: Invalid loss, terminating
training"`` (``"Epoch N: ..."`` from the epoch check) and sets
``model.stop_training``; with ``raise_error=True`` it raises RuntimeError.
"""
import math
import sys

import numpy as np

from nncore.callbacks.callback import Callback


def _invalid(loss):
    try:
        return not math.isfinite(float(np.mean(loss)))
    except (TypeError, ValueError):
        return False


class TerminateOnNaN(Callback):
    """Terminate training when a NaN or Inf loss is seen."""

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error
        self._stopped = False

    def on_train_begin(self, logs=None):
        self._stopped = False

    def _trigger(self, where, loss):
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at {where.lower()}. "
                               f"Loss value: {loss}. Terminating training immediately.")
        print(f"{where}: Invalid loss, terminating training", file=sys.stdout)
        self._stopped = True
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and _invalid(loss):
            self._trigger(f"Batch {batch}", loss)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if not self._stopped and loss is not None and _invalid(loss):
            self._trigger(f"Epoch {epoch + 1}", loss)
