"""What SimpleRNN, LSTM and GRU share: arguments, weights, masks, dropout,
the time loop's call and the Keras file config.

Each recurrent layer kind is one small module (simple_rnn.py, lstm.py,
gru.py) that says its cell, its number of gate blocks and its own options;
the maths of the cells lives in ``nncore/ops/recurrent.py``.
"""
from __future__ import annotations

import numbers

import numpy as np

from nncore import activations, initializers, regularizers
from nncore import random as nn_random
from nncore.backend import kernels
from nncore.layers._onehot import OneHotBatch
from nncore.layers.embedding import Embedding
from nncore.layers.layer import Layer
from nncore.layers.plan_entry import Param, PlanEntry
from nncore.ops import recurrent as R


# whether the step plan folds an Embedding into the recurrent layer above it
# (_EmbeddedRecurrentEntry); tests and benchmarks compare with two entries
FOLD_EMBEDDING = True
# values of time-loop caches per forward call without training (2 M: 8 MB in
# float32, the size of a mid-range L3 share); see RecurrentLayer.inference_rows
INFERENCE_CACHE_VALUES = 1 << 21


def _compact(m):
    """A dropout mask shared by every gate block arrives broadcast to
    (G, batch, n) (stride 0); the time loop takes it once, as (1, batch, n)."""
    if m is None:
        return None
    if m.shape[0] > 1 and m.strides[0] == 0:
        m = m[:1]
    return np.ascontiguousarray(m)


def _rate(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


class _RecurrentEntry(PlanEntry):
    """A ``layer`` plan entry that also hands the recurrent layer the step
    mask of the layer below (its ``_state.out_mask`` of this very batch: the
    loop runs the layers in order, the one below just before)."""
    mask_source = None

    def layer_forward(self, rows, out_rows, training=True):
        layer = self.layer
        x = rows.reshape((rows.shape[0],) + tuple(layer.input_shape[1:]))
        mask = None
        if self.mask_source is not None:
            mask = getattr(self.mask_source._state, "out_mask", None)
        out = layer.forward(x, training=training, logits=bool(self.logits), mask=mask)
        out_rows[...] = np.asarray(out).reshape(out_rows.shape)


class _EmbeddedRecurrentEntry(_RecurrentEntry):
    """An Embedding and the recurrent layer just above it as one ``layer``
    entry (its params: the table, then the layer's weights).

    An embedded word's input projection ``E[i] . W`` is row i of ``E . W``.
    So when the table is smaller than the batch (the book's 500 words
    against 64 x 100 steps) the entry hands the layer the word indices with
    the table (``OneHotBatch(table=E)``) and the layer's kernel looks rows of
    ``E . W`` up; backward adds dL/dXW into the rows of the words used and
    forms dW and dE from that (vocabulary x gates) sum.  Per step this
    replaces three products over every one of the batch's B*T rows (x . W,
    x^T . dXW, dXW . W^T) and the Embedding's own gather and scatter by
    three over the table's rows.  Otherwise (a larger table, or input
    dropout, whose mask needs the embedded values) it runs the two layers
    one after the other, as two entries would."""
    fused_below = None

    def layer_forward(self, rows, out_rows, training=True):
        emb, layer = self.fused_below, self.layer
        x = rows.reshape((rows.shape[0],) + tuple(emb.input_shape[1:]))
        self._folded = (2 * emb.input_dim <= x.size and x.ndim == 2
                        and not (training and layer.dropout > 0))
        if self._folded:
            idx = emb.indices(x)                     # checked: 0..input_dim-1
            given = OneHotBatch(idx, emb.input_dim, layer.dtype, table=emb.embeddings.value)
            mask = idx != 0 if emb.mask_zero else None
            out = layer.forward(given, training=training, logits=bool(self.logits), mask=mask)
        else:
            e = emb.forward(x, training=training)
            out = layer.forward(e, training=training, logits=bool(self.logits),
                                mask=emb.compute_mask(x))
        out_rows[...] = np.asarray(out).reshape(out_rows.shape)

    def layer_backward(self, gout_rows, dx_rows):
        emb, layer = self.fused_below, self.layer
        g = gout_rows.reshape((gout_rows.shape[0],) + tuple(layer.output_shape[1:]))
        if self._folded:
            layer.backward(g, need_input_grad=False)
            emb.grads[0][...] = layer._state.table_grad
        else:
            emb.backward(layer.backward(g), need_input_grad=False)
        for p, grad in zip(self.params, emb.grads + layer.grads):
            if grad is not p.grad:
                p.grad[...] = grad
        if dx_rows is not None:                     # word indices have no gradient
            dx_rows[...] = 0


class RecurrentLayer(Layer):
    """The base of the recurrent layers (not used directly).

    Subclasses set ``cell`` (the name in ``nncore.ops.recurrent``), ``gates``
    (column blocks of the kernel) and ``keras_name``.
    """
    cell = None
    gates = 1
    keras_name = None
    #: Keras 3 stores an RNN's variables on its cell: layers/lstm/cell/vars/0..2
    keras_vars = "cell/vars"
    #: the model hands this layer the mask of the layer below (Embedding(mask_zero=True))
    supports_masking = True
    #: as a model's first layer, a big one-hot input reaches it as positions
    #: (``OneHotBatch``), not rows
    accepts_onehot_positions = True

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 **kwargs):
        kind = type(self).__name__
        kwargs.pop("use_cudnn", None)      # a device choice; the maths is the same
        kwargs.pop("implementation", None)  # Keras's loop layout; same maths
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError(f"{kind}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        for key, value in (("stateful", stateful), ("unroll", unroll)):
            if value:
                raise ValueError(f"{kind}: {key}=True is not supported by nncore "
                                 "(the whole sequence is processed in one call; "
                                 f"use {key}=False)")
        for key, value in (("activity_regularizer", activity_regularizer),
                           ("kernel_constraint", kernel_constraint),
                           ("recurrent_constraint", recurrent_constraint),
                           ("bias_constraint", bias_constraint)):
            if value is not None:
                raise ValueError(f"{kind}: {key} is not supported by nncore")
        self.activation = self._cell_activation(activation, "activation")
        self.recurrent_activation = self._cell_activation(recurrent_activation,
                                                          "recurrent_activation")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = _rate(dropout, f"{kind}: dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, f"{kind}: recurrent_dropout")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or seed < 0):
            raise ValueError(f"{kind}: seed must be a non-negative integer or None, got {seed!r}")
        self.seed = seed
        self._stream_seed = int(seed) if seed is not None else nn_random.draw_seed()
        self.step = 0       # dropout masks drawn so far; part of the mask generator's key
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.kernel = self.recurrent_kernel = self.bias = None

    def _cell_activation(self, value, key):
        name = activations.get(value)
        if name not in R.ACTIVATIONS:
            raise ValueError(f"{type(self).__name__}: {key}={value!r} is not supported in a "
                             f"recurrent cell (supported: {', '.join(R.ACTIVATIONS)})")
        return name

    # ------------------------------------------------------------ shapes
    @property
    def n_states(self):
        """How many state arrays the cell carries (2 for LSTM: h and c)."""
        return 1

    def bias_shape(self):
        """The bias's shape (one row of ``gates * units``; GRU overrides)."""
        return (self.gates * self.units,)

    def weight_shapes(self, input_shape):
        """The shapes ``build`` creates for inputs ``(batch, timesteps, features)``:
        kernel, recurrent_kernel (and bias)."""
        features = input_shape[-1]
        shapes = [(features, self.gates * self.units), (self.units, self.gates * self.units)]
        if self.use_bias:
            shapes.append(self.bias_shape())
        return shapes

    def _check_input_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"Input 0 of layer '{self.name}' ({type(self).__name__}) must be 3-D "
                f"(batch, timesteps, features); received shape {input_shape}. "
                "Sequences of word indices need an Embedding layer first.")
        if input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': the number of features "
                             "(last input dimension) must be known")
        return input_shape

    def _bias_initial(self, shape, dtype):
        return self.bias_initializer(shape, dtype=dtype)

    def build(self, input_shape):
        """Create kernel ``(features, gates*units)``, recurrent_kernel
        ``(units, gates*units)`` and bias, as Keras names and shapes them."""
        input_shape = self._check_input_shape(input_shape)
        shapes = self.weight_shapes(input_shape)
        self.kernel = self.add_weight("kernel", shapes[0], self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", shapes[1],
                                                self.recurrent_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", shapes[2], self._bias_initial)
        super().build(input_shape)

    @property
    def inference_rows(self):
        """Rows per forward call in predict/evaluate (see ``Layer``).  The time
        loop writes caches for backward on every step whether or not it is
        training (XW, gates, states: (2*gates + 4) * units values per row and
        step, 38 KB a row for the book's LSTM(8) over 100 steps).  Reused
        from batch to batch, the caches of a few hundred rows stay in L2/L3;
        those of predict's usual 4,096-row chunk (157 MB) go out to memory
        and back on every step (measured on Embedding+LSTM: 4,096-row chunks
        13 K-220 K sequences/s over a first few calls, 256-row ones 224 K
        from the first call)."""
        shape = self.input_shape
        T = shape[1] if shape is not None and len(shape) > 1 and shape[1] else 100
        per_row = T * (2 * self.gates + 4) * self.units
        # at least one of the kernels' 16-row blocks per thread
        return max(32, INFERENCE_CACHE_VALUES // max(per_row, 1))

    def compute_output_shape(self, input_shape):
        """``(batch, timesteps, units)`` with ``return_sequences``, else ``(batch, units)``."""
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def compute_mask(self, inputs, mask=None):
        """The mask for the next layer: the step mask while sequences are
        returned, none once the layer returns one vector per sample.  As in
        Keras 3 the mask is handed on as it came, even with go_backwards
        (whose outputs are in reversed order)."""
        if mask is None or not self.return_sequences:
            return None
        return mask

    # ------------------------------------------------------------ computing
    def _check_x(self, x, mask, initial_state):
        self._require_built()
        F = self.input_shape[-1]
        if x.ndim != 3 or x.shape[-1] != F:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"shape (None, timesteps, {F}), received shape {(None,) + tuple(x.shape[1:])}")
        if x.shape[1] == 0:
            raise ValueError(f"{type(self).__name__} '{self.name}': the sequences have no "
                             "time steps")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != x.shape[:2] or mask.dtype.kind not in "bui":
                raise ValueError(f"{type(self).__name__} '{self.name}': mask must be a "
                                 f"boolean array of shape {x.shape[:2]} (batch, timesteps), "
                                 f"got {mask.dtype} {mask.shape}")
            mask = mask.astype(bool)
        states = []
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)):
                initial_state = [initial_state]
            if len(initial_state) != self.n_states:
                raise ValueError(f"{type(self).__name__} '{self.name}': initial_state needs "
                                 f"{self.n_states} array(s), got {len(initial_state)}")
            for s in initial_state:
                s = np.asarray(s, dtype=self.dtype)
                if s.shape != (x.shape[0], self.units) or not np.all(np.isfinite(s)):
                    raise ValueError(f"{type(self).__name__} '{self.name}': each initial "
                                     f"state must be finite with shape {(x.shape[0], self.units)}")
                states.append(s)
        else:
            states = [np.zeros((x.shape[0], self.units), dtype=self.dtype)
                      for _ in range(self.n_states)]
        return mask, states

    def _dropout_masks(self, batch, features):
        """Keras's masks for one batch (0 or 1/(1-rate)), the same at every step:
        one mask per gate block when recurrent_dropout > 0 (Keras's
        implementation 1), else one input mask shared by all gates."""
        rng = np.random.default_rng([self._stream_seed, self.step])
        self.step += 1
        G = self.gates
        per_gate = self.recurrent_dropout > 0

        def draw(rate, width):
            n = G if per_gate else 1
            keep = rng.random((n, batch, width)) >= rate
            m = (keep / (1.0 - rate)).astype(self.dtype)
            return m if per_gate else np.broadcast_to(m, (G, batch, width))
        dp = draw(self.dropout, features) if self.dropout > 0 else None
        rdp = draw(self.recurrent_dropout, self.units) if self.recurrent_dropout > 0 else None
        return dp, rdp

    def _cell_options(self):
        return dict(activation=self.activation, recurrent_activation=self.recurrent_activation)

    def forward(self, x, training=False, logits=False, mask=None, initial_state=None):
        """Run the cell over every time step of ``x`` (batch, timesteps, features).

        ``mask`` (batch, timesteps) marks the real steps (a masked step keeps
        the previous state and output); ``training=True`` applies dropout.
        Returns the last output (batch, units), or every output with
        ``return_sequences``; the final states are kept in ``self.states``.
        """
        # one-hot rows given as the positions of their 1s (nncore/layers/
        # _onehot.py): the kernel looks the rows of W up; input dropout
        # multiplies the values, so it gets the rows themselves
        given = table = None
        if isinstance(x, OneHotBatch):
            if x.dtype == self.dtype and not (training and self.dropout > 0):
                given, table = x, x.table
            else:
                x = x.dense()
        if given is None:
            x = self._in_dtype(x)
        mask, h0 = self._check_x(x, mask, initial_state)
        if self.go_backwards:       # Keras: process reversed, return in processing order
            if given is None:
                x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        dp = rdp = None
        if training and (self.dropout > 0 or self.recurrent_dropout > 0):
            dp, rdp = self._dropout_masks(x.shape[0], x.shape[2])
        if given is None:
            x = np.ascontiguousarray(x)
        h0 = [np.ascontiguousarray(s) for s in h0]
        B, T, F = x.shape
        u, dtype = self.units, x.dtype
        buf = self._buffers(B, T, F, dtype, dp is not None)
        b_in, b_rec = self._bias_rows()
        outputs = np.empty((B, T, u), dtype=dtype)
        hT = np.empty((B, u), dtype=dtype)
        cT = np.empty((B, u), dtype=dtype) if self.n_states == 2 else None
        mask8 = None if mask is None else np.ascontiguousarray(mask).view(np.uint8)
        dp, rdp = _compact(dp), _compact(rdp)
        onehot = buf["onehot"] if given is None else given.kernel_positions(self.go_backwards)
        x_in = None if given is not None else x
        W = self.kernel.value
        if table is not None:
            # rows of a table (an Embedding folded in): row i times W is row i
            # of table . W, which the kernel then looks up like a one-hot row's
            W = np.empty((table.shape[0], W.shape[1]), dtype)
            kernels().gemm(table, self.kernel.value, W)
        # the whole time loop in one call: the compiled kernel, or its NumPy
        # twin under set_backend('numpy') (nncore/ops/recurrent.py)
        kernels().recurrent_forward(
            R.CELL_CODES[self.cell], R.ACT_CODES[self.activation],
            R.ACT_CODES[self.recurrent_activation], self._reset_after(), x_in,
            W, self.recurrent_kernel.value, b_in, b_rec, h0[0],
            h0[1] if self.n_states == 2 else None, mask8, dp, rdp, buf["XW"], outputs,
            buf["Hp"], buf["Cp"], hT, cT, buf["Gt"], buf["Ex"], buf["xd"], onehot)
        st = self._state
        st.x, st.mask8, st.dp, st.rdp, st.buf, st.T = x_in, mask8, dp, rdp, buf, T
        st.x_shape, st.onehot, st.table, st.W = (B, T, F), onehot, table, W
        self.states = [hT] if cT is None else [hT, cT]
        # the step mask for the layer above (the compiled loop asks for it)
        st.out_mask = self.compute_mask(None, mask if not self.go_backwards or mask is None
                                        else mask[:, ::-1])
        out = outputs if self.return_sequences else outputs[:, -1].copy()
        return out

    def _reset_after(self):
        return bool(getattr(self, "reset_after", True))

    def _bias_rows(self):
        """(input-side bias, recurrent-side bias) as 1-D views (None without)."""
        if not self.use_bias:
            return None, None
        b = self.bias.value
        if b.ndim == 2:             # GRU reset_after: rows b_x, b_h
            return b[0], b[1]
        return b, None

    def _buffers(self, B, T, F, dtype, dropout):
        """The time loop's caches for a batch of this size, made once and
        reused from batch to batch (a fit has at most a few batch sizes: the
        full one, the last one, validation).  Kept per thread, like the rest
        of what forward leaves for backward: a predict in another thread
        must not overwrite a training step's caches."""
        key = (B, T, F, np.dtype(dtype).str, bool(dropout))
        st = self._state
        cache = getattr(st, "rnn_buffers", None)
        if cache is None:
            cache = st.rnn_buffers = {}
        buf = cache.get(key)
        if buf is None:
            u, Gu = self.units, self.gates * self.units
            lstm = self.n_states == 2
            buf = {"XW": np.empty((B, T, Gu), dtype), "dXW": np.empty((B, T, Gu), dtype),
                   "Hp": np.empty((B, T, u), dtype), "Gt": np.empty((B, T, Gu), dtype),
                   "Ex": np.zeros((B, T, u), dtype),
                   "Cp": np.empty((B, T, u), dtype) if lstm else None,
                   "xd": np.empty((B * T, F), dtype) if dropout else None,
                   # where the kernel keeps the positions of one-hot inputs' 1s
                   "onehot": np.zeros(B * T + 1, np.int32)}
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = buf
        return buf

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """Backpropagation through time: fill grads = [dkernel, drecurrent_kernel, dbias]
        and return dL/dx (batch, timesteps, features).  Afterwards
        ``state_gradient_norms`` holds ||dL/dh_t|| for every step t: watch it
        shrink towards the first steps to see vanishing gradients."""
        st = self._state
        grad = self._in_dtype(np.asarray(grad))
        x, buf = st.x, st.buf
        B, T, F = st.x_shape
        if self.return_sequences:
            d_outputs = np.ascontiguousarray(grad)
        else:
            d_outputs = np.ascontiguousarray(grad).reshape(B, 1, self.units)
        table = st.table
        dx = None
        if need_input_grad:
            dx = self._input_grad_array((B, T, F), self.dtype)
        db_in = db_rec = None
        if self.use_bias:
            db = self.grads[2]
            db_in, db_rec = (db[0], db[1]) if db.ndim == 2 else (db, None)
        norms = np.empty(T)
        # with a table, the kernel's "dW" is dL/d(table . W) (its rows: the
        # sums of dXW over the steps that looked each one up)
        dW = self.grads[0] if table is None else np.empty_like(st.W)
        kernels().recurrent_backward(
            R.CELL_CODES[self.cell], R.ACT_CODES[self.activation],
            R.ACT_CODES[self.recurrent_activation], self._reset_after(), x,
            st.W, self.recurrent_kernel.value, st.mask8, st.dp, st.rdp,
            buf["Hp"], buf["Cp"], buf["Gt"], buf["Ex"], d_outputs, buf["dXW"],
            dx if table is None else None,
            dW, self.grads[1], db_in, db_rec, norms, buf["xd"], st.onehot)
        if table is not None:
            g = kernels().gemm
            g(table, dW, self.grads[0], trans_a=True)         # dL/dW = table^T . dL/d(table W)
            # dL/d(table) = dL/d(table W) . W^T, for the Embedding folded in
            st.table_grad = np.empty(table.shape, self.dtype)
            g(dW, self.kernel.value, st.table_grad, trans_b=True)
            if dx is not None:
                g(buf["dXW"].reshape(B * T, -1), self.kernel.value, dx.reshape(B * T, F),
                  trans_b=True)
        # the per-step observer: ||dL/dh_t|| for t = 0..T-1 (processing order)
        self.state_gradient_norms = norms
        if not need_input_grad:
            return None
        return np.ascontiguousarray(dx[:, ::-1] if self.go_backwards else dx)

    def __call__(self, x, training=False, mask=None, initial_state=None):
        """``layer(x)``: the output, or ``[output, *final_states]`` with
        ``return_state`` (as Keras)."""
        from nncore.layers.symbolic import KerasTensor
        if isinstance(x, KerasTensor):
            return self._call_symbolic(x)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        self._ensure_built(x)
        out = np.array(self.forward(x, training=training, mask=mask,
                                    initial_state=initial_state), copy=True)
        if self.return_state:
            return [out] + [np.array(s, copy=True) for s in self.states]
        return out

    def regularization(self, add_grads):
        """Penalty of the kernel, recurrent and bias regularizers; adds their
        gradients into self.grads when ``add_grads``."""
        K = kernels()
        pen = 0.0
        for k, (reg, var) in enumerate(((self.kernel_regularizer, self.kernel),
                                        (self.recurrent_regularizer, self.recurrent_kernel),
                                        (self.bias_regularizer, self.bias))):
            if reg is not None and var is not None:
                g = self.grads[k]
                pen += K.l1_l2_penalty_and_grad(var.value.reshape(-1),
                                                g.reshape(-1) if add_grads else None,
                                                reg.l1, reg.l2)
        return pen

    def plan_entry(self, ctx):
        """The compiled loop runs this layer's own forward/backward (whose
        time loops are the compiled kernels of src_cython/recurrent.pyx) and
        updates its weights with everyone's; the step mask comes from the
        layer below, as on the per-batch path (see ``_RecurrentEntry``).  An
        Embedding just below is folded into this entry
        (``_EmbeddedRecurrentEntry``, which replaces the Embedding's).

        (A fused kind inside training.pyx would save the GIL round trip per
        batch, ~10-20 us beside a step of ~1 ms: not worth it yet.)"""
        layers = list(ctx.model.layers)
        i = next(k for k, layer in enumerate(layers) if layer is self)
        regs = [self.kernel_regularizer, self.recurrent_regularizer, self.bias_regularizer]
        below = layers[i - 1] if i > 0 else None
        if FOLD_EMBEDDING and isinstance(below, Embedding) and below.built:
            # the Embedding below is folded into this entry (see the class)
            entry = _EmbeddedRecurrentEntry.run_layer(self, ctx, regularizers=regs)
            entry.params = ([Param.of(ctx, below.embeddings, below.grads[0],
                                      below.embeddings_regularizer)] + entry.params)
            entry.fused_below = below
            return entry
        entry = _RecurrentEntry.run_layer(self, ctx, regularizers=regs)
        # only Embedding(mask_zero=True) and RNNs returning sequences hand a
        # mask up (Sequential._forward asks the layer just below, and so do we)
        entry.mask_source = below if hasattr(below, "compute_mask") else None
        return entry

    # ------------------------------------------------------------ config
    def get_config(self):
        c = super().get_config()
        c.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                 kernel_initializer=initializers.serialize(self.kernel_initializer),
                 recurrent_initializer=initializers.serialize(self.recurrent_initializer),
                 bias_initializer=initializers.serialize(self.bias_initializer),
                 kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                 recurrent_regularizer=regularizers.serialize(self.recurrent_regularizer),
                 bias_regularizer=regularizers.serialize(self.bias_regularizer),
                 dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
                 seed=self.seed, return_sequences=self.return_sequences,
                 return_state=self.return_state, go_backwards=self.go_backwards)
        return c

    # ------------------------------------------------------------ Keras files
    #: Keras config keys that change the maths and nncore lacks
    _ABSENT = ("activity_regularizer", "kernel_constraint", "recurrent_constraint",
               "bias_constraint", "stateful", "unroll", "zero_output_for_mask")

    @classmethod
    def from_keras(cls, config, what):
        """Constructor keyword arguments from a Keras 2 or 3 layer config."""
        from nncore.saving.format import FormatError
        from nncore.saving.keras_layers import (common, read_activation, read_initializer,
                                                read_regularizer, require_absent)
        c = config
        require_absent(c, cls._ABSENT, what)
        units = c.get("units")
        if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= 2 ** 20:
            raise FormatError(f"{what}: units must be a positive integer, got {units!r}")
        out = dict(common(c, what), units=units)
        acts = ("activation", "recurrent_activation") if "recurrent_activation" in \
            cls._keras_keys() else ("activation",)
        for key in acts:
            if key in c:
                name = read_activation(c[key], what)
                if name not in R.ACTIVATIONS:
                    raise FormatError(f"{what}: {key} {name!r} is not supported in a "
                                      f"recurrent cell ({', '.join(R.ACTIVATIONS)})")
                out[key] = name
        for key in ("use_bias", "return_sequences", "return_state", "go_backwards"):
            if key in c:
                if not isinstance(c[key], bool):
                    raise FormatError(f"{what}: {key} must be true or false")
                out[key] = c[key]
        for key in ("dropout", "recurrent_dropout"):
            v = c.get(key, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise FormatError(f"{what}: {key} must be a number in [0, 1), got {v!r}")
            out[key] = float(v)
        seed = c.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or not 0 <= seed < 2 ** 63):
            raise FormatError(f"{what}: invalid seed {seed!r}")
        out["seed"] = seed
        for key in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer"):
            out[key] = read_regularizer(c.get(key), what)
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            init = read_initializer(c.get(key), what)
            if init is not None:
                out[key] = init
        out.update(cls._own_from_keras(c, what))
        return out

    @classmethod
    def _keras_keys(cls):
        return ("activation", "recurrent_activation")

    @classmethod
    def _own_from_keras(cls, c, what):
        """The kind's own keys (LSTM's unit_forget_bias, GRU's reset_after)."""
        return {}

    def describe(self, step):
        """(forward, backward) formulas for ``nncore.utils.trace``: the cell's
        recurrence, and backpropagation through time."""
        return (self._cell_formula(),
                "BPTT: from the last step back to the first, dL/dh_t = (g_t if the step is "
                "returned) + dL/dh_{t+1} . dh_{t+1}/dh_t; dW, dU, db summed over the steps; "
                "dx_t = dgates_t . W^T")

    def to_keras(self):
        """The Keras 3 config TensorFlow loads."""
        from nncore.saving.keras_layers import common_keras
        from nncore.saving.keras_layers import initializer_keras as _initializer_keras
        from nncore.saving.keras_layers import regularizer_keras as _regularizer_keras
        out = dict(common_keras(self), return_sequences=self.return_sequences,
                   return_state=self.return_state, go_backwards=self.go_backwards,
                   stateful=False, unroll=False, zero_output_for_mask=False,
                   units=self.units, activation=self.activation)
        if "recurrent_activation" in self._keras_keys():
            out["recurrent_activation"] = self.recurrent_activation
        out.update(use_bias=self.use_bias,
                   kernel_initializer=_initializer_keras(self.kernel_initializer),
                   recurrent_initializer=_initializer_keras(self.recurrent_initializer),
                   bias_initializer=_initializer_keras(self.bias_initializer),
                   kernel_regularizer=_regularizer_keras(self.kernel_regularizer),
                   recurrent_regularizer=_regularizer_keras(self.recurrent_regularizer),
                   bias_regularizer=_regularizer_keras(self.bias_regularizer),
                   activity_regularizer=None, kernel_constraint=None,
                   recurrent_constraint=None, bias_constraint=None,
                   dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
                   seed=self.seed)
        out.update(self._own_to_keras())
        return out

    def _own_to_keras(self):
        return {}
