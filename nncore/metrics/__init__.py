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
    weighted = False

    def __init__(self, name=None, dtype=None):
        self.name = name or self.default_name
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def result(self):
        return self.total / self.count if self.count else 0.0

    def add(self, total, count):
        self.total += total
        self.count += count

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def fresh(self):
        """A new metric of the same kind and settings, with empty state."""
        m = type(self).from_config(self.get_config())
        m.weighted = self.weighted
        return m

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name} result={self.result():.4f}>"


class Mean(Metric):
    default_name = "mean"

    def update_state(self, values, sample_weight=None):
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        w = np.ones_like(v) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1)
        self.add(float((v * w).sum()), float(w.sum()))


class _Accuracy(Metric):
    #: 'sparse' (integer labels) or 'dense' (targets shaped like the output)
    target_kind = "dense"

    def count_correct(self, targets, probs, sample_weight=None):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
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
    """argmax(p) == label."""
    default_name = "sparse_categorical_accuracy"
    target_kind = "sparse"

    def count_correct(self, targets, probs, sample_weight=None):
        return kernels().count_correct_sparse(probs, targets, sample_weight)


class CategoricalAccuracy(_Accuracy):
    """argmax(p) == argmax(y)."""
    default_name = "categorical_accuracy"

    def count_correct(self, targets, probs, sample_weight=None):
        return kernels().count_correct_onehot(probs, targets, sample_weight)


class BinaryAccuracy(_Accuracy):
    """(p > threshold) == y, averaged over the outputs."""
    default_name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name, dtype)

    def count_correct(self, targets, probs, sample_weight=None):
        return kernels().count_correct_binary(probs, targets, sample_weight, self.threshold)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


ALL = {"sparse_categorical_accuracy": SparseCategoricalAccuracy,
       "categorical_accuracy": CategoricalAccuracy,
       "binary_accuracy": BinaryAccuracy}
_BY_CLASS = {c.__name__: c for c in ALL.values()}


def get(identifier, loss=None, n_outputs=None):
    """A metric object; 'accuracy'/'acc' resolved from the loss and output size."""
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
