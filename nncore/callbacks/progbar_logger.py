"""``ProgbarLogger``: prints the progress bar of fit / evaluate / predict.

Contract with the model (nncore runs a fused compiled loop, so the bar must not
depend on per-batch hooks):

* The model calls ``callback_list.update_progress(step, logs)`` -- forwarded to
  ``ProgbarLogger.update_progress`` -- at a bounded rate (about 20 Hz at most)
  and once more after the last step, where ``step`` is the number of batches
  done so far in this epoch / evaluate / predict run (1-based, ``1..steps``)
  and ``logs`` the running metrics (``{}`` or None in predict).
* ``needs_batch_hooks()`` is False for this callback, so it never forces the
  slow per-batch loop; when the model does run batch hooks,
  ``on_train_batch_end(batch, logs)`` (and the test/predict ones) update the
  bar too (``batch`` is 0-based there).  The Progbar itself also throttles
  redraws (``interval=0.05`` s), so calling both is harmless.
* Epoch boundaries come from the usual hooks: ``on_epoch_begin`` prints
  ``Epoch i/N`` (only when ``epochs > 1``) and starts a bar, ``on_epoch_end``
  finalizes it with the epoch logs (``val_*`` and ``learning_rate`` included).
* Inside ``fit`` (between ``on_train_begin`` and ``on_train_end``) the
  validation pass (``on_test_begin`` ... ``on_test_end``) is silent, and
  progress updates during it are ignored; ``evaluate`` outside fit gets its
  own bar, finalized in ``on_test_end(logs)``; ``predict`` shows no values.

Metric order: the bar shows keys in the order Keras 3 prints them:
training keys alphabetically, then ``val_*`` keys alphabetically, then keys
added by callbacks (``learning_rate``).  Values are shown as given (nncore's
logs are already running means); Keras averages them again while in progress.
"""
from nncore.callbacks.callback import Callback
from nncore.utils.progbar import Progbar


def _display_rank(key):
    """Sort key giving Keras 3's display order of log keys."""
    if key == "learning_rate" or key.startswith("learning_rate_"):
        return (2, key)
    return (1 if key.startswith("val_") else 0, key)


def _display_order(logs):
    return [(k, logs[k]) for k in sorted(logs, key=_display_rank)]


class ProgbarLogger(Callback):
    """Callback that prints metrics to stdout (``verbose`` from ``params``)."""

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False
        self._in_validation = False
        self._phase = None          # 'train', 'test' or 'predict'

    def needs_batch_hooks(self, mode="train"):
        return False                # fed by update_progress()

    def set_params(self, params):
        """Read ``verbose``, ``epochs`` and ``steps`` from the model's params.

        ``verbose="auto"`` means the progress bar (1), as in Keras 3, which
        picks 2 only under a TensorFlow ParameterServerStrategy (nncore has
        none).  In a notebook the bar is redrawn in place; in a log file it
        prints plain lines (see ``nncore.utils.progbar``)."""
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1) or 1
        self.target = params.get("steps")

    # ------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        self._called_in_fit = True
        self._in_validation = False

    def on_train_end(self, logs=None):
        """End an unfinished bar line (fit calls this also after Ctrl-C)."""
        if self.progbar is not None:
            self.progbar.end_line()
        self._called_in_fit = False
        self._in_validation = False

    def on_epoch_begin(self, epoch, logs=None):
        self._phase = "train"
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}")

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch + 1, logs)

    def on_test_begin(self, logs=None):
        if self._called_in_fit:
            self._in_validation = True
            return
        self._phase = "test"
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_validation:
            self._update_progbar(batch + 1, logs)

    def on_test_end(self, logs=None):
        if self._in_validation:
            self._in_validation = False
            return
        self._finalize_progbar(logs)

    def on_predict_begin(self, logs=None):
        self._phase = "predict"
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch + 1, None)     # never show predictions

    def on_predict_end(self, logs=None):
        self._finalize_progbar(None)

    def end_progress_line(self):
        """End an unfinished bar line (evaluate/predict stopped by an exception
        or Ctrl-C), so the next print starts on a line of its own."""
        if self.progbar is not None:
            self.progbar.end_line()

    # ------------------------------------------------------------ fused-loop entry
    def update_progress(self, step, logs=None):
        """Show progress: ``step`` batches done (1-based) with running ``logs``."""
        if self._in_validation:
            return
        if self._phase == "predict":
            logs = None
        self._update_progbar(step, logs)

    # ------------------------------------------------------------ helpers
    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(target=self.target, verbose=self.verbose,
                                   unit_name="step", stateless_metrics=(),
                                   order_key=_display_rank)

    def _update_progbar(self, seen, logs):
        self._maybe_init_progbar()
        self.seen = seen
        if self.verbose == 1:
            self.progbar.update(seen, _display_order(logs or {}), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.seen
        target = self.progbar.target if self.progbar.target is not None else self.seen
        self.progbar.update(target, _display_order(logs or {}), finalize=True)
        self.progbar = None
