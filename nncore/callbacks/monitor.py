"""Shared "monitor a logged quantity" logic of EarlyStopping, ModelCheckpoint
and ReduceLROnPlateau: the ``mode`` ('auto' / 'min' / 'max'), the direction
inferred in 'auto' mode, the improvement test with ``min_delta``, and the
warning when the monitored key is missing from the logs.

Direction in 'auto' mode (Keras 3 asks the compiled metric for its
``_direction``; nncore does the same when the model's metric objects carry one,
and otherwise knows the names it logs):

* ``loss`` and anything ending in ``loss`` (also with ``val_``): minimized;
* accuracy-like names (``accuracy``, ``acc``, ``*_accuracy``, ``auc``,
  ``precision``, ``recall``, ``f1_score``, ...): maximized;
* error-like names (``mse``, ``mae``, ``*_error``, ``*_crossentropy``,
  ``hinge``, ...): minimized;
* anything else: ``ValueError`` asking for ``mode='min'`` or ``'max'`` (as
  Keras), except where a subclass supplies a fallback (ReduceLROnPlateau keeps
  Keras's rule there: 'max' if ``'acc'`` is in the name, else 'min').

Improvement: in 'min' mode ``current < reference - min_delta``, in 'max' mode
``current > reference + min_delta`` (``min_delta`` is taken as ``abs``).  A
reference of None (nothing seen yet) is always beaten.
"""
import warnings

import numpy as np

from nncore.callbacks.callback import Callback

_MAXIMIZED = frozenset({
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "auc", "prc", "precision", "recall",
    "f1_score", "fbeta_score", "r2_score", "iou", "mean_iou", "one_hot_iou",
    "one_hot_mean_iou", "binary_iou", "cosine_similarity", "true_positives",
    "true_negatives", "specificity", "sensitivity",
})
_MINIMIZED = frozenset({
    "mse", "mae", "mape", "msle", "rmse", "mean_squared_error", "mean_absolute_error",
    "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
    "root_mean_squared_error", "crossentropy", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "hinge",
    "squared_hinge", "categorical_hinge", "kl_divergence", "kld", "kullback_leibler_divergence",
    "poisson", "log_cosh", "logcosh", "huber", "false_positives", "false_negatives",
})


def _model_metric_objects(model):
    for attr in ("metrics", "_metrics"):
        try:
            found = getattr(model, attr, None)
        except Exception:        # a property that fails before compile
            found = None
        if found:
            try:
                yield from list(found)
            except TypeError:
                pass


def metric_direction(monitor, model=None):
    """'min', 'max' or None (unknown) for a logged key such as ``val_accuracy``."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    for metric in _model_metric_objects(model):
        if getattr(metric, "name", None) != name:
            continue
        direction = getattr(metric, "_direction", None) or getattr(metric, "direction", None)
        if direction in ("up", "max"):
            return "max"
        if direction in ("down", "min"):
            return "min"
    if name.endswith("loss"):
        return "min"
    if name in _MAXIMIZED or name.endswith("accuracy") or name.endswith("_acc"):
        return "max"
    if name in _MINIMIZED or name.endswith("_error") or name.endswith("crossentropy"):
        return "min"
    return None


class MonitorCallback(Callback):
    """Base of callbacks that watch ``logs[monitor]`` for improvement.

    Attributes: ``monitor``, ``mode``, ``min_delta`` (>= 0), ``best`` (None until
    a value is seen, or the given baseline), ``direction`` ('min'/'max' once
    resolved), ``monitor_op`` (``np.less`` / ``np.greater``).
    """

    #: text of the missing-key warning; ``{monitor}`` and ``{available}`` are filled in
    _missing_message = ("{cls} is conditioned on metric `{monitor}` which is not "
                        "available. Available metrics are: {available}")

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, "
                          "fallback to auto mode.", stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.best = baseline
        self.direction = None
        self.monitor_op = None
        self._warned_missing = False

    # -- direction
    def _fallback_direction(self):
        """Direction used in 'auto' mode for an unknown name (None: raise)."""
        return None

    def _resolve_direction(self):
        if self.direction is not None:
            return self.direction
        if self.mode in ("min", "max"):
            direction = self.mode
        else:
            direction = metric_direction(self.monitor, self.model) or self._fallback_direction()
        if direction is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but "
                "nncore isn't able to automatically determine whether that metric "
                "should be maximized or minimized. Pass `mode='max'` in order to "
                "monitor based on the highest metric value, or pass `mode='min'` in "
                "order to use the lowest value.")
        self.direction = direction
        self.monitor_op = np.less if direction == "min" else np.greater
        return direction

    # -- comparison
    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        self._resolve_direction()
        if self.direction == "min":
            return bool(value + self.min_delta < reference)
        return bool(value - self.min_delta > reference)

    # -- reading the logs
    def _reset_missing_warning(self):
        self._warned_missing = False

    def _get_monitor_value(self, logs):
        """``logs[monitor]``, or None with a warning (once per training run)."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            if not self._warned_missing:
                self._warned_missing = True
                warnings.warn(self._missing_message.format(
                    cls=type(self).__name__, monitor=self.monitor,
                    available=",".join(logs.keys())), stacklevel=3)
            return None
        return value
