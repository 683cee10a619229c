"""Checking and converting user data once per fit/evaluate/predict call.

Everything a kernel will read is validated here, in Python, with a message
that names the argument and what was expected: kernels run with bounds
checks off, so a bad label or shape must never reach them.
"""
import numbers

import numpy as np

from nncore.backend import kernels
from nncore.layers._onehot import OneHotBatch


# Inputs at least this big whose dtype differs from the model's are converted
# batch by batch (see CastOnRead) instead of all at once: the book's chapter 9
# feeds a 3.2 GB float64 one-hot array, whose float32 copy would be 1.6 GB more.
LAZY_CAST_BYTES = 1 << 26
# fit trains such an input on the compiled step plan (whose loop reads one
# array of the model's dtype: a full converted copy) when that copy is at most
# this big -- the book's chapter-7 images / 255.0 (150 MB as float32) -- and on
# the per-batch path above it -- the chapter-9 one-hot array (1.6 GB).
PLAN_COPY_BYTES = 1 << 30
# the dtypes the compiled gather_rows converts between (others: a NumPy loop)
_GATHER_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# A lazily converted input whose rows are this wide or wider is looked at for
# one-hot rows when the model's first layer takes their positions (OneHotRows)
ONEHOT_MIN_DEPTH = 32
# Finite/range checks of a big input run over this many elements at a time,
# so their temporaries stay small.
_CHECK_CHUNK = 1 << 18


class CastOnRead:
    """A big input array of another dtype, converted to the model's dtype
    only where it is read: ``x[rows]`` gives a C-contiguous array of those
    rows in ``dtype`` (slices too, so batches read as before); a ``CastOnRead`` over the
    same memory (no copy) comes from ``x.rows(a, b)``.  Anything that needs the whole array at once
    (``np.asarray(x)``, ``x.reshape``) gets a full converted copy -- the
    compiled step plan does, so only the per-batch path avoids the copy.
    """

    def __init__(self, base, dtype, check_as=None):
        self.base = base
        self.dtype = np.dtype(dtype)
        # check_as: the argument's name when its values are checked here, as
        # rows are read (predict: the batches it reads, no separate pass
        # over the whole input), else None (checked before, by as_features)
        self.check_as = check_as
        self.shape = base.shape
        self.ndim = base.ndim
        self.size = base.size

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, idx):
        if isinstance(idx, slice) and idx.step in (None, 1) and _gathers(self.base, self.dtype):
            # a batch of predict / evaluate: the same, rows in order
            idx = np.arange(*idx.indices(self.shape[0]))
        if isinstance(idx, np.ndarray) and idx.ndim == 1 and idx.dtype.kind in "iu":
            # a shuffled batch: gather and convert in one pass (the compiled
            # gather_rows, rows shared between threads).  base[idx] would
            # first copy the rows in the source dtype (a 64-row batch of the
            # book's float64 one-hot input is 10 MB) and then convert that
            # copy: two passes and a big temporary, twice as slow.
            out = np.empty((len(idx),) + self.shape[1:], dtype=self.dtype)
            if len(idx) == 0:
                return out
            rows = np.ascontiguousarray(idx, dtype=np.intp)
            if rows.min() < 0:
                rows = np.where(rows < 0, rows + self.shape[0], rows)   # NumPy's meaning
            if _gathers(self.base, self.dtype):
                flat = out.reshape(len(idx), -1)
                bad = kernels().gather_rows(self.base.reshape(self.shape[0], -1), rows, flat,
                                            _limit(self.base.dtype, self.dtype))
                if bad >= 0 and self.check_as is not None:
                    k, c = divmod(bad, flat.shape[1])
                    _raise_bad_value(self.check_as, self.base, (int(rows[k]),) + tuple(
                        int(i) for i in np.unravel_index(c, self.shape[1:])), self.dtype)
            else:
                for k, i in enumerate(rows):
                    out[k] = self.base[i]
            return out
        return np.ascontiguousarray(self.base[idx], dtype=self.dtype)

    def rows(self, start, stop):
        """Rows ``start:stop`` as another CastOnRead over the same memory."""
        return CastOnRead(self.base[start:stop], self.dtype, self.check_as)

    def materialize(self):
        """The whole array in the model's dtype (one full copy)."""
        if _gathers(self.base, self.dtype):
            return self[0:self.shape[0]]           # checked as read, if check_as
        return np.ascontiguousarray(self.base, dtype=self.dtype)

    def __array__(self, dtype=None, copy=None):
        out = self.materialize()
        return out if dtype is None else out.astype(dtype, copy=False)

    def reshape(self, *shape):
        return self.materialize().reshape(*shape)


class OneHotRows(CastOnRead):
    """A big input of one-hot rows (``to_categorical`` words: one 1.0 among
    zeros in every row of the last axis, or only zeros) kept as the positions
    of the 1s, found once (``positions``: int32, one entry per row).

    ``x[rows]`` (a batch) is a :class:`~nncore.layers._onehot.OneHotBatch`
    of those positions: no row is read or converted per step, and a first
    layer that takes positions (``Layer.accepts_onehot_positions``) looks its
    weights up.  Everything else reads as a ``CastOnRead`` does (the whole
    array converted, ``np.asarray(x)``), and a batch reads as its rows."""

    def __init__(self, base, dtype, positions):
        super().__init__(base, dtype)
        self.positions = positions

    def __getitem__(self, idx):
        if isinstance(idx, slice) or (isinstance(idx, np.ndarray) and idx.ndim == 1
                                      and idx.dtype.kind in "iu"):
            return OneHotBatch(self.positions[idx], self.shape[-1], self.dtype)
        return super().__getitem__(idx)

    def rows(self, start, stop):
        return OneHotRows(self.base[start:stop], self.dtype, self.positions[start:stop])

    def materialize(self):
        return OneHotBatch(self.positions, self.shape[-1], self.dtype).dense()


def _onehot_rows(arr, dtype):
    """``arr`` as :class:`OneHotRows` if every row of its last axis is one-hot
    (or zero), else None: one compiled pass, which stops at the first row of
    another kind.  One-hot rows hold only 0 and 1, so nothing else about
    their values needs checking."""
    if not (arr.ndim == 3 and arr.shape[-1] >= ONEHOT_MIN_DEPTH and _gathers(arr, dtype)):
        return None
    positions = np.empty(arr.shape[:2], np.int32)
    if not kernels().onehot_positions(arr.reshape(-1, arr.shape[-1]), positions.reshape(-1)):
        return None
    return OneHotRows(arr, dtype, positions)


def _gathers(base, dtype):
    """Whether the compiled gather_rows converts ``base`` to ``dtype``."""
    return (base.flags.c_contiguous and base.ndim >= 2
            and base.dtype in _GATHER_DTYPES and np.dtype(dtype) in _GATHER_DTYPES)


def _limit(src_dtype, dtype):
    """The largest magnitude an input of src_dtype may hold for a model of
    dtype: the smaller of the two types' largest finite values."""
    narrower = np.dtype(src_dtype).itemsize > np.dtype(dtype).itemsize
    return float(np.finfo(dtype if narrower else src_dtype).max)


def _raise_bad_value(what, arr, index, dtype):
    """The error for arr[index]: NaN or inf, or too large for dtype."""
    v = arr[index]
    if not np.isfinite(v):
        raise ValueError(f"{what} contains NaN or inf (first at index {index})")
    raise ValueError(f"{what} has values too large for {dtype} (out of range: "
                     f"{v:g} at index {index}); rescale the data")


def rows(x, start, stop):
    """Rows ``start:stop`` of ``x`` without converting a CastOnRead."""
    return x.rows(start, stop) if isinstance(x, CastOnRead) else x[start:stop]


def materialize(x):
    """``x`` as an ndarray (a CastOnRead converted whole)."""
    return x.materialize() if isinstance(x, CastOnRead) else x


def as_features(x, dtype, what="x", lazy=False, check_later=False, onehot=False):
    """x as a C-contiguous float array (one conversion per call).

    With ``lazy=True`` a big array of another dtype is returned as a
    :class:`CastOnRead`, converted per batch (for fit/evaluate/predict); with
    ``check_later`` too (predict) its values are checked as each batch is
    converted instead of in a pass of their own.  With ``onehot`` too (the
    model's first layer takes positions) an input of one-hot rows becomes
    :class:`OneHotRows`."""
    if x is None:
        raise ValueError(f"{what} is None; expected a NumPy array of samples")
    if _is_stream(x):
        raise TypeError(
            f"{what}: got a {type(x).__name__}; nncore takes NumPy arrays, not generators, "
            "iterators, tf.data datasets or PyDataset/Sequence objects. Load the data "
            "into arrays first (e.g. x = np.concatenate([xb for xb, yb in batches])) "
            "and pass batch_size= to fit.")
    if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (numbers.Number, list, tuple, np.ndarray)):
        raise TypeError(f"{what}: expected a NumPy array, got a {type(x).__name__} "
                        f"of {type(x[0]).__name__}")
    try:
        arr = np.asarray(x)
    except ValueError as e:
        # NumPy's "inhomogeneous shape" names neither the argument nor the cure
        raise ValueError(f"{what}: the samples have different lengths (a ragged list); "
                         "make them one length first, e.g. keras.utils.pad_sequences("
                         f"sequences, maxlen=...) ({e})") from None
    if arr.dtype.kind not in "biuf":
        hint = ""
        if arr.dtype == object and arr.size and isinstance(arr.flat[0], (list, tuple, np.ndarray)):
            hint = (" -- an array of sequences (e.g. imdb.load_data's reviews) is first padded "
                    "to one length: keras.utils.pad_sequences(x, maxlen=...)")
        raise TypeError(f"{what}: expected a numeric array, got dtype {arr.dtype} "
                        f"(strings/objects cannot be fed to a model){hint}")
    if arr.ndim < 2:
        one = (" To pass one sample, add the batch dimension: x[None] (or x[i:i+1] "
               "on the whole array).") if arr.ndim == 1 else ""
        raise ValueError(f"{what}: expected an array of shape (samples, features...), "
                         f"got shape {arr.shape}.{one}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    if arr.size == 0:
        # samples with nothing in them (e.g. sequences of length 0): no layer
        # can take them, and the row checks below cannot even reshape them
        raise ValueError(f"{what} has shape {arr.shape}: every sample is empty (a dimension "
                         "of size 0, e.g. sequences of length 0); pad short sequences "
                         "with keras.utils.pad_sequences(..., maxlen=...) instead")
    dtype = np.dtype(dtype)
    lazy = lazy and arr.dtype != dtype and arr.nbytes >= LAZY_CAST_BYTES
    if lazy and onehot:
        kept = _onehot_rows(arr, dtype)
        if kept is not None:
            return kept
    if lazy and check_later and arr.dtype.kind == "f" and _gathers(arr, dtype):
        return CastOnRead(arr, dtype, check_as=what)
    if arr.dtype.kind == "f":
        # in chunks of rows: a whole-array isfinite()/abs() would allocate
        # temporaries as big as the input
        row = int(np.prod(arr.shape[1:]))
        step = max(1, _CHECK_CHUNK // max(1, row))
        narrower = arr.dtype.itemsize > dtype.itemsize
        if _gathers(arr, dtype):
            # one compiled pass (both cores) finds the first bad element; the
            # loop below then only runs over the chunk that holds it, to say
            # what is wrong there
            first = kernels().first_bad_value(arr.reshape(-1), _limit(arr.dtype, dtype))
            starts = [] if first < 0 else [first // row // step * step]
        else:
            starts = range(0, arr.shape[0], step)
        for start in starts:
            part = arr[start:start + step].reshape(-1, row)
            bad = ~np.isfinite(part)
            if narrower and not bad.any() and max(-part.min(), part.max()) > np.finfo(dtype).max:
                bad = np.abs(part) > np.finfo(dtype).max
            if bad.any():
                r, c = (int(v) for v in np.argwhere(bad)[0])
                _raise_bad_value(what, arr, (start + r,) + tuple(
                    int(i) for i in np.unravel_index(c, arr.shape[1:])), dtype)
    if lazy:
        return CastOnRead(arr, dtype)
    # read-only input (np.memmap mode 'r', the memory-mapped arrays joblib
    # hands to worker processes) is used as it is: kernels only read inputs
    # (const memoryviews), so it is never copied just for being read-only
    return np.ascontiguousarray(arr, dtype=dtype)


def _is_stream(x):
    """True for data nncore cannot take: generators, iterators, and dataset
    objects that hand out batches (tf.data, PyDataset/Sequence, DataLoader).

    Checked before ``np.asarray``: NumPy would iterate such an object forever
    (a PyDataset's ``__getitem__`` never raises IndexError) or wrap it in an
    object array."""
    import inspect
    if isinstance(x, (np.ndarray, list, tuple, numbers.Number, str, bytes, dict, set)):
        return False            # arrays, or mistakes the checks below explain
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):
        return False            # array-likes (pandas, torch tensors...) convert fine
    if inspect.isgenerator(x) or hasattr(x, "__next__"):
        return True
    name = type(x).__name__
    if any(k in name for k in ("Dataset", "Sequence", "Loader")):
        return True
    return hasattr(x, "__iter__") or (hasattr(x, "__getitem__") and hasattr(x, "__len__"))


def missing_batch_hint(sample_shape, x_shape):
    """A hint when ``x`` has exactly the shape of one sample, i.e. a single
    sample passed without its batch dimension (``predict(x_test[0])``)."""
    sample_shape, x_shape = tuple(sample_shape), tuple(x_shape)
    if len(x_shape) == len(sample_shape) and all(
            e is None or e == g for e, g in zip(sample_shape, x_shape)):
        return (" This looks like a single sample without its batch dimension: "
                "use x[None] (e.g. x_test[0][None]) or a slice such as x_test[:1].")
    return ""


def check_same_length(x, y, xname="x", yname="y"):
    if np.ndim(y) == 0:
        raise ValueError(f"{yname} is a single value ({y!r}); expected one target per "
                         f"sample: an array of length {x.shape[0]}")
    ny = len(y)
    if ny != x.shape[0]:
        raise ValueError(f"{xname} and {yname} have different numbers of samples: "
                         f"{xname} has {x.shape[0]}, {yname} has {ny}")


def check_positive_int(value, what, allow_none=False):
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def sample_weights(sample_weight, class_weight, y_labels, n, dtype, n_classes=None):
    """Per-sample weights from sample_weight and/or class_weight (or None)."""
    w = None
    if sample_weight is not None:
        raw = np.asarray(sample_weight)
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight must hold numbers (one weight per sample); got "
                            f"dtype {raw.dtype}")
        w = raw.astype(np.float64).reshape(-1)
        if w.shape[0] != n:
            raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} samples")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"sample_weight must be finite and >= 0; got {w[i]!r} at index {i}")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError("class_weight must be a dict {class index: weight}")
        labels = y_labels
        if labels.ndim == 2:
            labels = labels.argmax(axis=1) if labels.shape[1] > 1 else (labels[:, 0] > 0.5)
        labels = labels.astype(np.int64)
        # one output unit is a binary model: classes 0 and 1
        classes = max(2, n_classes or 0) if n_classes is not None else None
        cw = np.ones(int(labels.max()) + 1 if labels.size else 1)
        for k, v in class_weight.items():
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
                raise TypeError(f"class_weight keys must be class indices (integers >= 0); "
                                f"got {k!r}")
            if classes is not None and k >= classes:
                raise ValueError(f"class_weight key {k} is not a class of this model: it has "
                                 f"{classes} classes (0..{classes - 1})")
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
                raise ValueError(f"class_weight[{k}] must be a finite number >= 0; got {v!r}")
            if int(k) >= cw.shape[0]:
                cw = np.concatenate([cw, np.ones(int(k) + 1 - cw.shape[0])])
            cw[int(k)] = float(v)
        cwv = cw[labels]
        w = cwv if w is None else w * cwv
    if w is None:
        return None
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(w, dtype=dtype)
    if not np.isfinite(out).all():
        i = int(np.argmax(~np.isfinite(out)))
        raise ValueError(f"sample_weight/class_weight: weight {w[i]:g} at index {i} does not "
                         f"fit in {np.dtype(dtype)}; use weights of a sensible size (e.g. <= 1e6)")
    return out
