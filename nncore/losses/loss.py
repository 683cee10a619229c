"""Loss classes.  Each knows which kernel computes it and how to check targets.

How a loss meets the output layer (as Keras on TensorFlow does it):
  * the output layer's activation is the loss's natural one (softmax for the
    cross-entropies, sigmoid for binary cross-entropy): the loss is computed
    from the layer's pre-activation z ("logits") and its gradient is dL/dz
    directly -- the activation's backward step is skipped;
  * ``from_logits=True``: the model's output is taken as z;
  * otherwise the loss is computed from the output probabilities, clipped to
    [1e-7, 1 - 1e-7], and the gradient flows back through the activation.
"""
import numpy as np

from nncore.backend import kernels

REDUCTIONS = ("sum_over_batch_size", "sum")


class Loss:
    #: the output activation whose pre-activation this loss can start from
    """Base class of the losses: how wrong a batch of predictions is.

    ``fit`` minimises the mean over the batch of a per-sample loss
    (``reduction="sum_over_batch_size"``; ``"sum"`` adds them up instead).

    Args:
        name: the loss's name in logs.
        reduction: ``"sum_over_batch_size"`` (default, the mean) or ``"sum"``.
        from_logits: the model outputs raw scores rather than probabilities.

    Calling a loss object gives the reduced loss of ``(y_true, y_pred)``::

        keras.losses.SparseCategoricalCrossentropy()([0, 1], [[0.9, 0.1], [0.2, 0.8]])
        # mean(-log 0.9, -log 0.8) = 0.164...
    """
    natural_activation = None
    #: 'sparse' (integer labels) or 'dense' (targets shaped like the output)
    target_kind = "dense"

    def __init__(self, name=None, reduction="sum_over_batch_size", from_logits=False):
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"{REDUCTIONS}, got {reduction!r}")
        self.name = name or self.default_name
        self.reduction = reduction
        self.from_logits = bool(from_logits)

    # -- the two ways to compute: from logits (fused) or from outputs ------
    def path(self, output_activation):
        """``"logits"``, ``"output_logits"`` or ``"probs"``: where the loss starts computing."""
        if self.natural_activation and output_activation == self.natural_activation:
            return "logits"
        if self.from_logits:
            return "output_logits"
        return "probs"

    def scale(self, batch_size):
        """The factor turning the summed loss into the reported one (1/batch for a mean)."""
        return 1.0 / batch_size if self.reduction == "sum_over_batch_size" else 1.0

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        """Sum of per-sample losses; writes the gradient w.r.t. ``values``
        (the logits for the logits paths, the outputs otherwise) into grad."""
        raise NotImplementedError

    def prepare_targets(self, y, n_outputs, dtype=np.float32, what="y"):
        """Validate and convert targets once per fit/evaluate call."""
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{what}: targets must be numeric, got dtype {y.dtype}")
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"{what}: {self.name} expects targets of shape "
                             f"(n, {n_outputs}) like the model's output; got {y.shape}")
        y = np.ascontiguousarray(y, dtype=dtype)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{what}: targets contain NaN or inf")
        return y

    # -- Keras's call API ---------------------------------------------------
    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = np.ascontiguousarray(np.atleast_2d(np.asarray(y_pred, dtype=np.float64)))
        t = self.prepare_targets(y_true, y_pred.shape[1], y_pred.dtype)
        sw = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)
        path = "output_logits" if self.from_logits else "probs"
        n = y_pred.shape[0]
        probs = np.empty_like(y_pred)
        total = self.compute(t, y_pred, path, None, 1.0, sw, probs)
        return total * self.scale(n)

    def get_config(self):
        """The constructor arguments as a dict."""
        return {"name": self.name, "reduction": self.reduction,
                "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config):
        """A new loss from a ``get_config()`` dict."""
        return cls(**config)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels: ``loss = -log p[label]``.

    The loss of chapter 7: labels are class indices ``0..9`` (no one-hot needed)
    and the model ends in ``Dense(10, activation="softmax")``.  Together with
    softmax, the gradient with respect to the last layer's pre-activation is
    simply ``p - onehot(label)`` (divided by the batch size).

    Args:
        from_logits: the model outputs raw scores (no softmax); default False.
        ignore_class: a label whose samples count zero.
        reduction, name: see :class:`Loss`.

    Example::

        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        keras.losses.SparseCategoricalCrossentropy()([2], [[0.1, 0.2, 0.7]])   # -log 0.7
    """
    default_name = "sparse_categorical_crossentropy"
    natural_activation = "softmax"
    target_kind = "sparse"

    def __init__(self, from_logits=False, ignore_class=None,
                 reduction="sum_over_batch_size", name=None):
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported")
        super().__init__(name, reduction, from_logits)

    def prepare_targets(self, y, n_outputs, dtype=np.float32, what="y"):
        """Check integer labels in ``0..classes-1`` and convert them once per call."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                f"{what}: sparse_categorical_crossentropy expects integer labels of "
                f"shape (n,), got shape {y.shape}" +
                (" (these look one-hot: use loss='categorical_crossentropy')"
                 if y.ndim == 2 and y.shape[1] == n_outputs else ""))
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)):
                raise ValueError(f"{what}: labels contain NaN or inf")
            if np.any(y != np.round(y)):
                raise ValueError(f"{what}: labels must be whole numbers (class indices); "
                                 f"got fractional values such as {y[y != np.round(y)][0]}")
        elif y.dtype.kind not in "biu":
            raise TypeError(f"{what}: labels must be integers, got dtype {y.dtype}")
        if y.size:
            lo, hi = y.min(), y.max()
            if lo < 0 or hi >= n_outputs:
                bad = int(lo if lo < 0 else hi)
                raise ValueError(f"{what}: label {bad} is out of range: the model "
                                 f"has {n_outputs} output units, so labels must be "
                                 f"in [0, {n_outputs - 1}]")
        return np.ascontiguousarray(y, dtype=np.int32)

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        """Summed loss of the batch; writes dL/d(values) into ``grad`` (see Loss.compute)."""
        K = kernels()
        if path == "probs":
            return K.crossentropy_sparse_from_probs(values, targets, grad, scale, sample_weight)
        return K.softmax_crossentropy_sparse(values, targets, probs, grad, scale, sample_weight)


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or soft) labels: ``loss = -sum_j y_j log p_j``.

    Args:
        from_logits: the model outputs raw scores (no softmax); default False.
        label_smoothing: mix the targets with the uniform distribution,
            ``y <- y * (1 - s) + s / classes``.
        axis, reduction, name: as in Keras.

    Example::

        y_onehot = keras.utils.to_categorical(y_train, 10)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
    """
    default_name = "categorical_crossentropy"
    natural_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None):
        if axis != -1:
            raise ValueError("CategoricalCrossentropy: only axis=-1 is supported")
        super().__init__(name, reduction, from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, n_outputs, dtype=np.float32, what="y"):
        """Check targets shaped like the output and convert them once per call."""
        y = np.asarray(y)
        if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and n_outputs > 1):
            raise ValueError(f"{what}: categorical_crossentropy expects one-hot targets of "
                             f"shape (n, {n_outputs}); got shape {y.shape}. For integer "
                             f"labels use loss='sparse_categorical_crossentropy'")
        y = super().prepare_targets(y, n_outputs, dtype, what)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + self.label_smoothing / n_outputs
            y = np.ascontiguousarray(y, dtype=dtype)
        return y

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        """Summed loss of the batch; writes dL/d(values) into ``grad`` (see Loss.compute)."""
        K = kernels()
        if path == "probs":
            return K.crossentropy_from_probs(values, targets, grad, scale, sample_weight)
        return K.softmax_crossentropy(values, targets, probs, grad, scale, sample_weight)

    def get_config(self):
        """The constructor arguments as a dict."""
        c = super().get_config()
        c["label_smoothing"] = self.label_smoothing
        return c


class BinaryCrossentropy(Loss):
    """Binary cross-entropy for 0/1 targets:
    ``loss = -mean_j [y_j log p_j + (1 - y_j) log(1 - p_j)]``.

    Used with a ``Dense(1, activation="sigmoid")`` output (two classes).

    Args:
        from_logits: the model outputs raw scores (no sigmoid); default False.
        label_smoothing: pull targets towards 0.5 by this amount.
        axis, reduction, name: as in Keras.

    Example::

        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    """
    default_name = "binary_crossentropy"
    natural_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None):
        super().__init__(name, reduction, from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, n_outputs, dtype=np.float32, what="y"):
        """Check 0..1 targets shaped like the output and convert them once per call."""
        y = super().prepare_targets(y, n_outputs, dtype, what)
        if self.label_smoothing:
            y = np.ascontiguousarray(y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing,
                                     dtype=dtype)
        return y

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        """Summed loss of the batch; writes dL/d(values) into ``grad`` (see Loss.compute)."""
        K = kernels()
        if path == "probs":
            return K.binary_crossentropy_from_probs(values, targets, grad, scale, sample_weight)
        return K.sigmoid_binary_crossentropy(values, targets, probs, grad, scale, sample_weight)

    def get_config(self):
        """The constructor arguments as a dict."""
        c = super().get_config()
        c["label_smoothing"] = self.label_smoothing
        return c


class MeanSquaredError(Loss):
    """Mean squared error for regression: ``loss = mean_j (p_j - y_j)²``.

    Args:
        reduction, name: see :class:`Loss`.

    Example::

        keras.losses.MeanSquaredError()([[1.0, 2.0]], [[1.5, 2.0]])    # 0.125
    """
    default_name = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name=None):
        super().__init__(name, reduction, False)

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        """Summed loss of the batch; writes dL/d(values) into ``grad`` (see Loss.compute)."""
        return kernels().mean_squared_error(values, targets, grad, scale, sample_weight)

    def get_config(self):
        """The constructor arguments as a dict."""
        return {"name": self.name, "reduction": self.reduction}


def _per_sample(loss, y_true, y_pred):
    y_pred = np.ascontiguousarray(np.atleast_2d(np.asarray(y_pred, dtype=np.float64)))
    t = loss.prepare_targets(y_true, y_pred.shape[1], y_pred.dtype)
    out = np.empty(y_pred.shape[0])
    probs = np.empty_like(y_pred)
    path = "output_logits" if loss.from_logits else "probs"
    for i in range(y_pred.shape[0]):
        out[i] = loss.compute(t[i:i + 1], y_pred[i:i + 1], path, None, 1.0, None, probs[i:i + 1])
    return out


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample cross-entropy ``-log p[label]`` (Keras's functional form).

    Example::

        keras.losses.sparse_categorical_crossentropy([0, 1], [[0.9, 0.1], [0.2, 0.8]])
        # array([0.105..., 0.223...])
    """
    return _per_sample(SparseCategoricalCrossentropy(from_logits=from_logits), y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample cross-entropy ``-sum_j y_j log p_j`` for one-hot ``y_true``.

    Example::

        keras.losses.categorical_crossentropy([[0, 1]], [[0.2, 0.8]])    # [0.223...]
    """
    return _per_sample(CategoricalCrossentropy(from_logits=from_logits,
                                               label_smoothing=label_smoothing), y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample binary cross-entropy ``-mean_j [y log p + (1 - y) log(1 - p)]``.

    Example::

        keras.losses.binary_crossentropy([[1.0]], [[0.9]])    # [0.105...]
    """
    return _per_sample(BinaryCrossentropy(from_logits=from_logits,
                                          label_smoothing=label_smoothing), y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error ``mean_j (p_j - y_j)²`` (also ``keras.losses.mse``).

    Example::

        keras.losses.mean_squared_error([[1.0, 2.0]], [[1.5, 2.0]])    # [0.125]
    """
    return _per_sample(MeanSquaredError(), y_true, y_pred)


mse = mean_squared_error

ALL = {"sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
       "categorical_crossentropy": CategoricalCrossentropy,
       "binary_crossentropy": BinaryCrossentropy,
       "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError}
_FUNCS = {sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
          categorical_crossentropy: CategoricalCrossentropy,
          binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError}
_BY_CLASS = {c.__name__: c for c in ALL.values()}


def get(identifier):
    """A Loss object from a name (``"sparse_categorical_crossentropy"``...), a loss
    function, a config dict or a Loss (returned as is).
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier in ALL:
            return ALL[identifier]()
        raise ValueError(f"unknown loss {identifier!r}; valid: {', '.join(ALL)}")
    if identifier in _FUNCS:
        return _FUNCS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"unknown loss {identifier!r}; valid: {', '.join(ALL)} "
                     "or an nncore.losses object")


def serialize(loss):
    """``{"class_name": ..., "config": ...}`` for a loss (``get`` reads it back)."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
