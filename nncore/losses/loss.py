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


def _kernel_array(a, dtype):
    """a as a C-contiguous, writable array of dtype: the kernels take Cython
    typed memoryviews, which refuse read-only buffers (np.memmap mode 'r',
    the memory-mapped arrays joblib hands to worker processes)."""
    out = np.ascontiguousarray(a, dtype=dtype)
    return out if out.flags.writeable else out.copy()


class Loss:
    #: the output activation whose pre-activation this loss can start from
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
        """'logits' when the loss starts from the output layer's pre-activation,
        'output_logits' when the output itself is logits, else 'probs'."""
        if self.natural_activation and output_activation == self.natural_activation:
            return "logits"
        if self.from_logits:
            return "output_logits"
        return "probs"

    def scale(self, batch_size):
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
        y = _kernel_array(y, dtype)
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
        return {"name": self.name, "reduction": self.reduction,
                "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer labels: loss = -log p[label]."""
    default_name = "sparse_categorical_crossentropy"
    natural_activation = "softmax"
    target_kind = "sparse"

    def __init__(self, from_logits=False, ignore_class=None,
                 reduction="sum_over_batch_size", name=None):
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported")
        super().__init__(name, reduction, from_logits)

    def prepare_targets(self, y, n_outputs, dtype=np.float32, what="y"):
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
        return _kernel_array(y, np.int32)

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        K = kernels()
        if path == "probs":
            return K.crossentropy_sparse_from_probs(values, targets, grad, scale, sample_weight)
        return K.softmax_crossentropy_sparse(values, targets, probs, grad, scale, sample_weight)


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or soft) labels: loss = -sum_j y_j log p_j."""
    default_name = "categorical_crossentropy"
    natural_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None):
        if axis != -1:
            raise ValueError("CategoricalCrossentropy: only axis=-1 is supported")
        super().__init__(name, reduction, from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, n_outputs, dtype=np.float32, what="y"):
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
        K = kernels()
        if path == "probs":
            return K.crossentropy_from_probs(values, targets, grad, scale, sample_weight)
        return K.softmax_crossentropy(values, targets, probs, grad, scale, sample_weight)

    def get_config(self):
        c = super().get_config()
        c["label_smoothing"] = self.label_smoothing
        return c


class BinaryCrossentropy(Loss):
    """loss = -mean_j [y log p + (1 - y) log(1 - p)] for 0/1 targets."""
    default_name = "binary_crossentropy"
    natural_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None):
        super().__init__(name, reduction, from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, n_outputs, dtype=np.float32, what="y"):
        y = super().prepare_targets(y, n_outputs, dtype, what)
        if self.label_smoothing:
            y = np.ascontiguousarray(y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing,
                                     dtype=dtype)
        return y

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        K = kernels()
        if path == "probs":
            return K.binary_crossentropy_from_probs(values, targets, grad, scale, sample_weight)
        return K.sigmoid_binary_crossentropy(values, targets, probs, grad, scale, sample_weight)

    def get_config(self):
        c = super().get_config()
        c["label_smoothing"] = self.label_smoothing
        return c


class MeanSquaredError(Loss):
    """loss = mean_j (p_j - y_j)^2."""
    default_name = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name=None):
        super().__init__(name, reduction, False)

    def compute(self, targets, values, path, grad, scale, sample_weight=None, probs=None):
        return kernels().mean_squared_error(values, targets, grad, scale, sample_weight)

    def get_config(self):
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
    """Per-sample losses (Keras's functional form)."""
    return _per_sample(SparseCategoricalCrossentropy(from_logits=from_logits), y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    return _per_sample(CategoricalCrossentropy(from_logits=from_logits,
                                               label_smoothing=label_smoothing), y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    return _per_sample(BinaryCrossentropy(from_logits=from_logits,
                                          label_smoothing=label_smoothing), y_true, y_pred)


def mean_squared_error(y_true, y_pred):
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
    """A Loss object from a name, a loss function, a config dict or an object."""
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
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
