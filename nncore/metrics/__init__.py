"""Metrics, as ``keras.metrics``.

A metric is a running weighted mean: ``update_state`` adds to ``total`` and
``count``, ``result()`` is total / count, ``reset_state`` starts over.  During
``fit`` the model resets metrics at each epoch start, so the logged value is
the mean over the epoch so far (what Keras prints).

The string 'accuracy' (or 'acc') is resolved from the shapes, as Keras does:
one output unit -> BinaryAccuracy; integer labels -> SparseCategoricalAccuracy;
otherwise CategoricalAccuracy.  The logged name stays the string you passed.
"""
import numpy as np

from nncore.backend import kernels


class Metric:
    #: True for compile(weighted_metrics=...): sample weights apply
    """Base class of the metrics: a running weighted mean, ``result() = total / count``.

    ``update_state`` adds to ``total`` and ``count``; ``reset_state`` starts over.
    ``fit`` resets its metrics at the start of every epoch, so the logged value
    is the mean over the epoch so far.

    Args:
        name: the name in logs (default: the class's Keras name).
        dtype: accepted for Keras compatibility.
    """
    weighted = False

    def __init__(self, name=None, dtype=None):
        self.name = name or self.default_name
        self.reset_state()

    def reset_state(self):
        """Forget everything seen so far (total = count = 0)."""
        self.total = 0.0
        self.count = 0.0

    def result(self):
        """The current value: ``total / count`` (0.0 before any update)."""
        return self.total / self.count if self.count else 0.0

    def add(self, total, count):
        """Add ``total`` to the running total and ``count`` to the running count."""
        self.total += total
        self.count += count

    def get_config(self):
        """The constructor arguments as a dict."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        """A new metric from a ``get_config()`` dict."""
        return cls(**config)

    def fresh(self):
        """A new metric of the same kind and settings, with empty state."""
        m = type(self).from_config(self.get_config())
        m.weighted = self.weighted
        return m

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name} result={self.result():.4f}>"


class Mean(Metric):
    """The (weighted) mean of the values it is given.

    Example::

        m = keras.metrics.Mean()
        m.update_state([1.0, 2.0, 3.0])
        m.result()          # 2.0
    """
    default_name = "mean"

    def update_state(self, values, sample_weight=None):
        """Add ``values`` (optionally weighted by ``sample_weight``) to the mean."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        w = np.ones_like(v) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1)
        self.add(float((v * w).sum()), float(w.sum()))


class _Accuracy(Metric):
    #: 'sparse' (integer labels) or 'dense' (targets shaped like the output)
    target_kind = "dense"

    def count_correct(self, targets, probs, sample_weight=None):
        """Number (or weighted sum) of correct predictions in the batch."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add a batch: ``y_true`` (labels or targets) and ``y_pred`` (probabilities)."""
        p = np.ascontiguousarray(np.atleast_2d(np.asarray(y_pred, dtype=np.float64)))
        y = np.asarray(y_true)
        if self.target_kind == "sparse":
            y = np.ascontiguousarray(y.reshape(-1), dtype=np.int32)
        else:
            y = np.ascontiguousarray(y.reshape(p.shape), dtype=np.float64)
        sw = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)
        self.add(self.count_correct(y, p, sw),
                 float(p.shape[0] if sw is None else sw.sum()))


class SparseCategoricalAccuracy(_Accuracy):
    """Fraction of samples whose most likely class is the label: ``argmax(p) == label``.

    What ``metrics=["accuracy"]`` becomes with integer labels.

    Example::

        m = keras.metrics.SparseCategoricalAccuracy()
        m.update_state([2, 0], [[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])
        m.result()          # 0.5
    """
    default_name = "sparse_categorical_accuracy"
    target_kind = "sparse"

    def count_correct(self, targets, probs, sample_weight=None):
        """How many rows have ``argmax(p) == label`` (weighted)."""
        return kernels().count_correct_sparse(probs, targets, sample_weight)


class CategoricalAccuracy(_Accuracy):
    """Fraction of samples with ``argmax(p) == argmax(y)`` (one-hot targets).

    What ``metrics=["accuracy"]`` becomes with ``categorical_crossentropy``.

    Example::

        m = keras.metrics.CategoricalAccuracy()
        m.update_state([[0, 0, 1]], [[0.1, 0.2, 0.7]])
        m.result()          # 1.0
    """
    default_name = "categorical_accuracy"

    def count_correct(self, targets, probs, sample_weight=None):
        """How many rows have ``argmax(p) == argmax(y)`` (weighted)."""
        return kernels().count_correct_onehot(probs, targets, sample_weight)


class BinaryAccuracy(_Accuracy):
    """Fraction of outputs with ``(p > threshold) == y``, for 0/1 targets.

    What ``metrics=["accuracy"]`` becomes for a single sigmoid output.

    Args:
        name, dtype: see :class:`Metric`.
        threshold: probability above which the prediction is 1 (default 0.5).

    Example::

        m = keras.metrics.BinaryAccuracy()
        m.update_state([[1], [0]], [[0.8], [0.6]])
        m.result()          # 0.5
    """
    default_name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name, dtype)

    def count_correct(self, targets, probs, sample_weight=None):
        """How many outputs fall on the right side of the threshold (weighted)."""
        return kernels().count_correct_binary(probs, targets, sample_weight, self.threshold)

    def get_config(self):
        """The constructor arguments as a dict."""
        return {"name": self.name, "threshold": self.threshold}


ALL = {"sparse_categorical_accuracy": SparseCategoricalAccuracy,
       "categorical_accuracy": CategoricalAccuracy,
       "binary_accuracy": BinaryAccuracy}
_BY_CLASS = {c.__name__: c for c in ALL.values()}


def get(identifier, loss=None, n_outputs=None):
    """A metric object from a name, class, config dict or Metric.

    ``"accuracy"``/``"acc"`` is resolved as Keras does: one output unit ->
    BinaryAccuracy; integer-label loss -> SparseCategoricalAccuracy; otherwise
    CategoricalAccuracy.  The logged name stays the string you passed.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            if n_outputs == 1:
                return BinaryAccuracy(name=identifier)
            if loss is not None and loss.target_kind == "sparse":
                return SparseCategoricalAccuracy(name=identifier)
            return CategoricalAccuracy(name=identifier)
        if identifier in ALL:
            return ALL[identifier]()
        raise ValueError(f"unknown metric {identifier!r}; valid: accuracy, acc, "
                         f"{', '.join(ALL)}")
    if isinstance(identifier, type) and identifier.__name__ in _BY_CLASS:
        return identifier()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"unknown metric {identifier!r}; valid: accuracy, acc, {', '.join(ALL)}")


__all__ = ["Metric", "Mean", "SparseCategoricalAccuracy", "CategoricalAccuracy",
           "BinaryAccuracy", "get"]


def __getattr__(name):
    # a Keras name nncore lacks says "not in nncore yet"; a typo gets "did you mean"
    from nncore import _not_yet
    return _not_yet.module_getattr(__name__, name)
