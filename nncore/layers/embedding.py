"""Embedding: word indices -> learned vectors (the book's chapter 9).

The layer holds a table ``E`` of shape ``(input_dim, output_dim)``: one row
of ``output_dim`` numbers per index.  Forward looks rows up; backward adds
each output gradient into the row it came from (``nncore/ops/embedding.py``
spells both).  Indices are checked before the gather (``embedding_indices``)
and a bad one raises here, naming the layer, the value and its position.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from nncore import initializers, regularizers
from nncore.backend import kernels
from nncore.layers.layer import Layer
from nncore.layers.plan_entry import PlanEntry


# the index dtypes the embedding_indices kernel checks (others: NumPy)
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32),
                  np.dtype(np.int64))


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"Embedding: `{what}` must be a positive integer. Received: "
                         f"{what}={value!r} (of type {type(value).__name__}).")
    return int(value)


class Embedding(Layer):
    """Turns word indices into dense vectors: index ``i`` becomes row ``i`` of a
    learned ``(input_dim, output_dim)`` table ``embeddings``.

    A one-hot vector of ``input_dim`` zeros times a Dense kernel gives the
    same result; the lookup skips the multiplications by zero.  Backward adds
    each output gradient into the row its index picked (rows of indices not in
    the batch get no gradient).

    Args:
        input_dim: number of distinct indices (vocabulary size): indices must
            be in ``0 .. input_dim - 1``.
        output_dim: length of each vector.
        embeddings_initializer: default ``"uniform"`` (uniform in ±0.05).
        embeddings_regularizer: e.g. ``keras.regularizers.l2(1e-4)``.
        mask_zero: index 0 means "padding": ``compute_mask`` returns
            ``inputs != 0`` for the recurrent layer that follows.  (Keras's
            convention: index 0 then stands for no word, so ``input_dim`` is
            the vocabulary size + 1.)
        weights: an initial table (a list holding one array, or the array).
        input_length: accepted and ignored with a warning, as Keras 3 does
            (the sequence length comes from the data or ``input_shape``).
        name, trainable, dtype, input_shape: see :class:`~nncore.layers.Layer`.

    Shapes: input ``(batch, steps)`` of integers (or floats holding integers,
    which is how a model passes them on) -> output ``(batch, steps, output_dim)``.

    Example::

        model = keras.Sequential()
        model.add(keras.layers.Embedding(200, 16, input_shape=(100,)))
        model.add(keras.layers.SimpleRNN(8))
        model.layers[0].count_params()          # 200 * 16 = 3200
    """

    keras_name = "Embedding"

    def __init__(self, input_dim: int, output_dim: int,
                 embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero: bool = False, weights=None,
                 lora_rank=None, input_length=None, **kwargs) -> None:
        if input_length is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.",
                          UserWarning, stacklevel=2)
        super().__init__(**kwargs)
        self.input_dim = _positive_int(input_dim, "input_dim")
        self.output_dim = _positive_int(output_dim, "output_dim")
        if embeddings_constraint is not None:
            raise ValueError(f"Embedding '{self.name}': embeddings_constraint is not "
                             "supported by nncore")
        if lora_rank is not None:
            raise ValueError(f"Embedding '{self.name}': lora_rank is not supported by nncore")
        if embeddings_initializer == "uniform":       # Keras's alias
            embeddings_initializer = initializers.RandomUniform()
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.embeddings = None
        if weights is not None:
            self.build((None, None))
            if not (isinstance(weights, list) and len(weights) == 1):
                weights = [weights]
            self.set_weights(weights)

    @property
    def supports_masking(self):
        """True when ``mask_zero``: the layer then produces a mask (Keras's flag)."""
        return self.mask_zero

    # ----------------------------------------------------------- contract
    def weight_shapes(self, input_shape):
        """The shapes ``build`` creates: ``[(input_dim, output_dim)]``."""
        return [(self.input_dim, self.output_dim)]

    def describe(self, step):
        """(forward, backward) formulas for ``nncore.utils.trace``."""
        return (f"a[n, t] = E[x[n, t]]: each index 0..{self.input_dim - 1} picks its row of "
                f"{self.output_dim} learned numbers (table E {self.input_dim}x{self.output_dim})"
                + ("; index 0 is masked padding" if self.mask_zero else ""),
                "dE[i] = sum of g[n, t] over the positions where x[n, t] = i "
                "(no gradient for the integer input)")

    @classmethod
    def from_keras(cls, config, what):
        """A Keras 2/3 ``Embedding`` config -> this class's keyword arguments."""
        from nncore.saving.format import FormatError
        from nncore.saving.keras_layers import (common, read_initializer, read_regularizer,
                                                require_absent)
        require_absent(config, ("embeddings_constraint", "activity_regularizer", "lora_rank",
                                "quantization_config", "sparse"), what)
        out = dict(common(config, what))
        for key in ("input_dim", "output_dim"):
            v = config.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 2 ** 31:
                raise FormatError(f"{what}: {key} must be a positive integer, got {v!r}")
            out[key] = v
        mask = config.get("mask_zero", False)
        if not isinstance(mask, bool):
            raise FormatError(f"{what}: mask_zero must be true or false")
        out["mask_zero"] = mask
        out["embeddings_regularizer"] = read_regularizer(config.get("embeddings_regularizer"),
                                                         what)
        init = read_initializer(config.get("embeddings_initializer"), what)
        if init is not None:
            out["embeddings_initializer"] = init
        return out

    def to_keras(self):
        """The Keras 3 config of this layer (what TensorFlow's loader reads)."""
        from nncore.saving.keras_layers import common_keras
        from nncore.saving.keras_layers import initializer_keras as _initializer_keras
        from nncore.saving.keras_layers import regularizer_keras as _regularizer_keras
        return dict(common_keras(self), input_dim=self.input_dim, output_dim=self.output_dim,
                    embeddings_initializer=_initializer_keras(self.embeddings_initializer),
                    embeddings_regularizer=_regularizer_keras(self.embeddings_regularizer),
                    activity_regularizer=None, embeddings_constraint=None,
                    mask_zero=self.mask_zero, quantization_config=None)

    def plan_entry(self, ctx):
        """The compiled loop runs this layer's own forward/backward (its row
        gather and scatter-add kernels) and updates ``embeddings`` with the
        other parameters.  The loop hands the indices as float rows of the
        model's dtype: exact for any index below 2**24 (float32)."""
        return _EmbeddingEntry.run_layer(self, ctx, regularizers=[self.embeddings_regularizer])

    # ----------------------------------------------------------- building
    def build(self, input_shape):
        """Create the table ``embeddings`` of shape ``(input_dim, output_dim)``."""
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        """``input_shape + (output_dim,)``."""
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, mask=None):
        """``inputs != 0`` when ``mask_zero`` (True = a real step), else None."""
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    # ----------------------------------------------------------- computing
    def indices(self, x):
        """``x`` as an intp index array, checked: integers in 0..input_dim-1.
        A ValueError names the layer, the bad value and where it is."""
        x = np.asarray(x)
        idx = np.empty(x.shape, dtype=np.intp)
        self._convert(x, idx.reshape(-1))
        return idx

    def _convert(self, x, flat_idx):
        """Check the indices ``x`` and write them into the 1-D intp array
        ``flat_idx`` (None: check only).  The common dtypes are checked in one
        pass by the ``embedding_indices`` kernel; others, and any batch it
        finds a bad index in, go through ``_check_slow``, which raises the
        error naming the layer, the value and its position."""
        if x.dtype in _KERNEL_DTYPES:
            flat = x.reshape(-1)
            if not flat.flags.c_contiguous:
                flat = np.ascontiguousarray(flat)
            if kernels().embedding_indices(flat, self.input_dim, flat_idx) < 0:
                return
            self._check_slow(x)
            raise AssertionError("embedding_indices found a bad index the check did not")
        self._check_slow(x)
        if flat_idx is not None:
            flat_idx[...] = x.reshape(-1)

    def _check_slow(self, x):
        """Raise the error for the first bad index of ``x``, as Keras users
        read it (the kernel only says that there is one, and where)."""
        if x.dtype.kind == "f":
            bad = ~np.isfinite(x) | (x != np.floor(x))
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"Embedding '{self.name}': input {float(x[where])!r} at index "
                                 f"{where} is not an integer word index")
        elif x.dtype.kind not in "biu":
            raise TypeError(f"Embedding '{self.name}': inputs must be integer indices, got "
                            f"dtype {x.dtype}")
        if x.size:
            lo, hi = x.min(), x.max()
            if lo < 0 or hi >= self.input_dim:
                bad = (x < 0) | (x >= self.input_dim)
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"Embedding '{self.name}': index {int(x[where])} at position {where} is "
                    f"out of range: indices must be in 0..{self.input_dim - 1} "
                    f"(input_dim={self.input_dim}); use a larger input_dim or the same "
                    "num_words as the data")

    def check_input_values(self, x):
        """The word indices of the whole input, before the first batch: a bad
        one found mid-fit would leave the batches before it trained, and its
        position would be one inside a shuffled batch."""
        self._convert(np.asarray(x), None)

    def forward(self, x, training=False, logits=False):
        """Rows of ``embeddings`` for the indices ``x``: shape ``x.shape + (output_dim,)``."""
        x = np.asarray(x)
        out = self._new((x.size, self.output_dim))
        self._lookup(x, out)
        return out.reshape(x.shape + (self.output_dim,))

    def _lookup(self, x, out):
        """out (x.size, output_dim) = the rows of the indices ``x``; keeps what
        backward needs.  The flat index array is this thread's, reused from
        batch to batch (only backward reads it, before the next forward)."""
        self._require_built()
        st = self._state
        n = x.size
        flat = getattr(st, "idx_buf", None)
        if flat is None or flat.shape[0] != n:
            flat = st.idx_buf = np.empty(n, dtype=np.intp)
        # a failed check may leave the reused buffer half rewritten: until a
        # forward succeeds, backward refuses (st.idx None) rather than read it
        st.idx = None
        self._convert(x, flat)
        kernels().embedding_forward(self.embeddings.value, flat, out)
        st.idx, st.shape, st.in_dtype = flat, x.shape, x.dtype
        # the step mask for the layer above, when the compiled loop runs the
        # stack (the per-batch path asks compute_mask itself)
        st.out_mask = flat.reshape(x.shape) != 0 if self.mask_zero else None

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """Fill ``grads[0]`` = dL/d(embeddings) (scatter-add of ``grad`` into the
        rows used); indices have no gradient: returns zeros (or None)."""
        st = self._state
        grad = np.asarray(grad)
        if grad.dtype != self.dtype or not grad.flags.c_contiguous:
            grad = np.ascontiguousarray(grad, dtype=self.dtype)
        g = grad.reshape(-1, self.output_dim)
        if getattr(st, "idx", None) is None:
            raise ValueError(f"Embedding '{self.name}': backward without a successful forward")
        if g.shape[0] != st.idx.shape[0]:
            raise ValueError(f"Embedding '{self.name}': gradient for {g.shape[0]} rows, the "
                             f"last forward had {st.idx.shape[0]}")
        kernels().embedding_backward(g, st.idx, self.grads[0])
        if not need_input_grad:
            return None
        kind = st.in_dtype if st.in_dtype.kind == "f" else self.dtype
        return np.zeros(st.shape, dtype=kind)

    def regularization(self, add_grads):
        """Penalty of ``embeddings_regularizer`` (its gradient added when asked)."""
        reg = self.embeddings_regularizer
        if reg is None or self.embeddings is None:
            return 0.0
        return kernels().l1_l2_penalty_and_grad(
            self.embeddings.value.reshape(-1),
            self.grads[0].reshape(-1) if add_grads else None, reg.l1, reg.l2)

    def get_config(self):
        """The constructor arguments (Keras names)."""
        c = super().get_config()
        c.update(input_dim=self.input_dim, output_dim=self.output_dim,
                 embeddings_initializer=initializers.serialize(self.embeddings_initializer),
                 embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
                 mask_zero=self.mask_zero)
        return c


class _EmbeddingEntry(PlanEntry):
    """The Embedding's ``layer`` plan entry: the rows are gathered straight
    into the loop's output buffer (the generic entry gathers into a new array
    and copies it over: 400 KB a step for the book's batch of 64 x 100 x 16)."""

    def layer_forward(self, rows, out_rows, training=True):
        layer = self.layer
        x = rows.reshape((rows.shape[0],) + tuple(layer.input_shape[1:]))
        layer._lookup(x, out_rows.reshape(-1, layer.output_dim))
