"""``LearningRateScheduler``: set the learning rate from ``schedule(epoch, lr)``
at the start of every epoch (``schedule(epoch)`` is accepted too, as Keras's
old API), and record it as ``logs['learning_rate']`` at the epoch end."""
import inspect
import numbers
import sys

from nncore.callbacks.callback import Callback


def _takes_lr(schedule):
    """Whether ``schedule`` can be called as ``schedule(epoch, lr)``."""
    try:
        inspect.signature(schedule).bind(0, 0.1)
        return True
    except TypeError:
        return False
    except ValueError:          # no signature available (some builtins): try both
        return True


class LearningRateScheduler(Callback):
    """Learning rate scheduler.

    Args:
        schedule: function ``(epoch, lr) -> new_lr`` (epoch is 0-based).
        verbose: 1 prints the rate set at each epoch.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_args = _takes_lr(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        lr = float(optimizer.learning_rate)
        new_lr = self.schedule(epoch, lr) if self._two_args else self.schedule(epoch)
        if isinstance(new_lr, bool) or not isinstance(new_lr, numbers.Real):
            raise ValueError("The output of the `schedule` function should be a float. "
                             f"Got: {new_lr}")
        new_lr = float(new_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{new_lr}.", file=sys.stdout)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
