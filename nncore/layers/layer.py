"""Layer: the base of every layer, with Keras's names for things.

A layer owns its weights (``Variable`` objects) and two methods a learner can
call on plain NumPy arrays.  The protocol every layer implements -- the model
calls exactly these, with exactly these keywords, for every layer kind:

    forward(x, training=False, logits=False) -> output
        ``training``: Dropout drops only while training.  ``logits``: only
        ever True for the model's last layer, when the loss starts from its
        pre-activation (softmax + cross-entropy): stop before the activation.
        Remembers what backward needs; returns a new array on every call.
    backward(grad, from_logits=False, need_input_grad=True) -> dL/dx or None
        ``grad`` is dL/d(output) -- or dL/dz when ``from_logits``.  Fills
        ``layer.grads`` (one array per weight, same order as ``weights``);
        returns None when ``need_input_grad`` is False (the lowest trained
        layer: nothing below it needs dx).
    regularization(add_grads) -> penalty added to the loss (0.0 without
        regularizers); adds the penalty's gradient into ``grads`` when asked.
    plan_entry(ctx) -> this layer's part of the compiled training loop's step
        plan (a ``PlanEntry`` with its list of ``Param``, see
        ``nncore/layers/plan_entry.py``; None when the layer does nothing on
        flat rows, like Flatten), or raise ``Unsupported`` naming why (see
        ``nncore/models/plan.py``).  The default says "per-batch path only",
        so a new layer kind trains correctly before it is taught to the loop;
        ``PlanEntry.run_layer(self, ctx)`` runs its own forward/backward
        inside the loop.

The layer-kind contract: everything about a kind lives in its module, on
its class, and the rest of nncore asks the class -- never tests for it:

    keras_name          the Keras class name; a class that sets it (in its
                        own body) joins ``LAYER_KINDS``, the registry that
                        saving, loading and the Keras-file converters read
    from_keras(config, what) / to_keras()
                        Keras config <-> constructor arguments (``.keras``,
                        ``.h5``); None: not in Keras files
    keras_has_build     Keras writes a build_config for it
    weight_shapes(input_shape)
                        the shapes build() would create (parameter counts
                        before anything is allocated; None: unknown)
    describe(step)      (forward, backward) formulas for ``utils.trace``
    plan_entry(ctx)     the compiled loop's entry (above)

``Sequential`` chains them; ``fit`` adds the loss and the optimizer.
"""
import threading

import numpy as np

from nncore import config, naming
from nncore.variables import Variable

# The dtypes nncore's kernels compute in.  (Keras also has float16/bfloat16
# policies; the kernels have no such paths, so say so instead of failing in C.)
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


#: the layer kinds by Keras name: every class whose body sets ``keras_name``
#: (filled as the layer modules are imported; nncore.layers imports them all)
LAYER_KINDS = {}


class Unsupported(Exception):
    """Raised by ``plan_entry``: the compiled training loop cannot run this
    layer (the model then trains on the per-batch path; the message is the
    reason, kept for tests and ``nncore.models.plan.explain``)."""


def _accept_protocol(fn, neutral):
    """fn, taking the protocol's keywords even if it does not declare them."""
    import functools
    import inspect
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()) or \
            all(k in params for k in neutral):
        fn._nncore_protocol = True
        return fn
    missing = [k for k in neutral if k not in params]

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        for k in missing:
            if k in kwargs:
                value = kwargs.pop(k)
                # need_input_grad=False only says dx will not be read: a layer
                # that computes it anyway is still right
                if value != neutral[k] and k not in _IGNORABLE:
                    raise TypeError(f"{type(self).__name__}.{fn.__name__}() does not take "
                                    f"{k}={value!r}; add the keyword (see nncore.layers.Layer)")
        return fn(self, *args, **kwargs)
    call._nncore_protocol = True
    return call


#: protocol keywords a short-protocol layer may ignore whatever their value
_IGNORABLE = ("need_input_grad",)


def check_dtype(dtype, owner):
    """np.dtype(dtype) if nncore computes in it, else a ValueError naming it."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    # (dt None must not reach the `in`: numpy compares None equal to float64)
    if dt is None or dt not in SUPPORTED_DTYPES:
        raise ValueError(f"{owner}: dtype {dtype!r} is not supported; nncore's kernels "
                         "compute in 'float32' (the default) or 'float64'")
    return dt


class Layer:
    """The base class of every layer: its weights and its forward / backward passes.

    A layer can be used by hand on NumPy arrays, which is how backpropagation is
    best learned::

        out = layer.forward(x, training=True)     # remembers what backward needs
        dx = layer.backward(dL_dout)              # fills layer.grads, returns dL/dx

    Args:
        name: the layer's name (default: from the class, ``dense``, ``dense_1``...).
        trainable: False freezes the layer's weights.
        dtype: the weights' dtype (default float32, ``keras.config.floatx()``).
        input_shape: shape of one sample, for the first layer of a Sequential
            (``keras.Input(shape=...)`` is the preferred way).

    Subclasses implement ``build`` (create weights with ``add_weight``),
    ``compute_output_shape``, ``forward`` and ``backward`` -- the protocol in
    this module's docstring -- and, to run in the compiled loop, ``plan_entry``.
    """

    #: the layer-kind contract (module docstring); a class setting
    #: keras_name in its own body is registered in LAYER_KINDS
    keras_name = None
    from_keras = None
    keras_has_build = True
    #: the most rows a forward pass without training should take at once
    #: (predict and evaluate cut their internal batches to it); None: no
    #: limit.  A layer whose per-row working set is large sets it so that a
    #: batch's buffers stay in the CPU's caches (the recurrent layers).
    inference_rows = None
    #: True: as the first layer of a Sequential, a big one-hot input of
    #: another dtype reaches forward as ``nncore.layers._onehot.OneHotBatch``
    #: (the positions of its 1s) instead of converted rows
    accepts_onehot_positions = False

    def __init_subclass__(cls, **kwargs):
        # A layer written against the older, shorter protocol -- forward(x,
        # training=False), backward(grad) -- still works: the keywords it does
        # not take are dropped while they hold their neutral values.
        super().__init_subclass__(**kwargs)
        if "keras_name" in cls.__dict__ and cls.keras_name:
            LAYER_KINDS[cls.keras_name] = cls
        for name, neutral in (("forward", {"logits": False}),
                              ("backward", {"from_logits": False, "need_input_grad": True})):
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "_nncore_protocol", False):
                setattr(cls, name, _accept_protocol(fn, neutral))

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 batch_input_shape=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string")
        self.name = name or naming.unique_name(naming.to_snake_case(type(self).__name__))
        self.trainable = trainable
        self._dtype = (check_dtype(dtype, f"{type(self).__name__} '{self.name}'")
                       if dtype is not None else None)
        if batch_input_shape is not None and input_shape is None:
            input_shape = tuple(batch_input_shape)[1:]
        self._input_shape_arg = (tuple(input_shape) if input_shape is not None else None)
        self.built = False
        self.input_shape = None      # (None, ...) once built
        self.output_shape = None
        self._weights = []
        self.grads = []

    # ----------------------------------------------------------- weights
    @property
    def dtype(self):
        """The dtype of this layer's weights and outputs (float32 by default)."""
        return self._dtype or config.float_dtype()

    def add_weight(self, name, shape, initializer, trainable=True):
        """Create a weight Variable of ``shape`` filled by ``initializer``, with a
        gradient array of the same shape in ``layer.grads``.
        """
        value = initializer(tuple(shape), dtype=self.dtype)
        var = Variable(value, name=name, trainable=trainable, path=f"{self.name}/{name}")
        self._weights.append(var)
        self.grads.append(np.zeros_like(var.value))
        return var

    @property
    def weights(self):
        """Every weight Variable of the layer (e.g. ``[kernel, bias]`` for Dense)."""
        return list(self._weights)

    @property
    def trainable_weights(self):
        """The weights the optimizer updates (none when ``trainable`` is False)."""
        return [w for w in self._weights if self.trainable and w.trainable]

    @property
    def non_trainable_weights(self):
        """The weights the optimizer leaves alone."""
        return [w for w in self._weights if not (self.trainable and w.trainable)]

    def get_weights(self):
        """Copies of the weights as NumPy arrays, e.g. ``kernel, bias = dense.get_weights()``."""
        return [w.numpy() for w in self._weights]

    def set_weights(self, weights):
        """Replace the weights from a list of arrays of the same shapes (checked first:
        a refused call changes nothing).
        """
        weights = self._check_weights(weights)
        for var, value in zip(self._weights, weights):
            var.assign(value)

    def _check_weights(self, weights):
        """The arrays, converted, if they fit this layer's weights (else raise)."""
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(
                f"Layer '{self.name}' expects {len(self._weights)} weight arrays "
                f"({', '.join(str(w.shape) for w in self._weights) or 'none'}), "
                f"got {len(weights)}")
        out = []
        for var, value in zip(self._weights, weights):
            value = np.asarray(value)
            if value.shape != var.shape:
                raise ValueError(
                    f"Layer '{self.name}' weight '{var.name}' has shape {var.shape}; "
                    f"the provided array has shape {value.shape}")
            if value.dtype.kind not in "biuf":
                raise TypeError(f"Layer '{self.name}' weight '{var.name}': expected a numeric "
                                f"(float) array, got dtype {value.dtype}")
            with np.errstate(over="ignore"):
                cast = value.astype(var.dtype)
            if not np.all(np.isfinite(cast)):
                raise ValueError(f"Layer '{self.name}' weight '{var.name}': the provided "
                                 f"array contains NaN or inf (or values that overflow {var.dtype})")
            out.append(cast)
        return out

    def count_params(self):
        """Number of weights (scalars) in the layer."""
        return int(sum(w.value.size for w in self._weights))

    # ----------------------------------------------------------- building
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch dim first)."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        """The output shape for inputs of ``input_shape`` (batch dimension first)."""
        return tuple(input_shape)

    def check_input_values(self, x):
        """Refuse values this layer cannot take anywhere in ``x`` (the whole
        input of a fit/evaluate/predict, checked once before the first
        batch).  Most layers take any finite number: nothing to check."""

    def _ensure_built(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))

    def _require_built(self):
        """forward() is the step the model runs on a built layer; called
        directly on an unbuilt one it would find no weights or shapes, so say
        what to do instead of failing deep inside."""
        if not self.built:
            raise RuntimeError(
                f"Layer '{self.name}' ({type(self).__name__}) is not built yet: call it on "
                "data (layer(x)), call layer.build(input_shape), or add it to a model "
                "before calling forward()")

    # ----------------------------------------------------------- computing
    def forward(self, x, training=False, logits=False):
        """Compute the layer's output for the batch ``x`` and remember what
        ``backward`` needs.  ``training=True`` turns on training-only behaviour
        (Dropout); ``logits=True`` stops before the activation.
        """
        raise NotImplementedError

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """Given ``grad`` = dL/d(output) of the last ``forward``, fill ``self.grads``
        (dL/d(each weight)) and return dL/d(input) for the layer below (None
        when ``need_input_grad`` is False).
        """
        raise NotImplementedError

    def regularization(self, add_grads):
        """The regularizers' penalty (none here)."""
        return 0.0

    def weight_shapes(self, input_shape):
        """The shapes of the weights ``build(input_shape)`` would create,
        without creating them (None: this layer cannot say)."""
        return None

    def describe(self, step):
        """(forward, backward) formulas of one training step for
        ``nncore.utils.trace``; ``step`` is its LayerTrace (``forward_kwargs``,
        ``backward_kwargs``, ``input_shape``, ``output_shape``)."""
        kind = type(self).__name__
        return f"{kind}.forward", f"{kind}.backward"

    def to_keras(self):
        """The Keras 3 config of this layer (kinds that Keras files hold)."""
        raise NotImplementedError(f"{type(self).__name__} has no Keras file form")

    def plan_entry(self, ctx):
        """This layer's part of the fused loop's step plan (see the module
        docstring); by default the layer runs on the per-batch path only."""
        raise Unsupported(f"layer '{self.name}' ({type(self).__name__}) has no "
                          "compiled-loop entry; it trains on the per-batch path")

    def __getstate__(self):
        # per-thread call state is not part of the layer (and cannot be copied)
        state = self.__dict__.copy()
        state.pop("_tls", None)
        return state

    @property
    def _state(self):
        """What forward keeps for backward, per thread: a predict in another
        thread must not replace the input a training step's backward reads."""
        tls = self.__dict__.get("_tls")
        if tls is None:
            tls = self.__dict__.setdefault("_tls", threading.local())
        return tls

    def _in_dtype(self, a):
        """``a`` in this layer's dtype: a layer computes in its own precision
        (as Keras autocasts), so a float64 layer in a float32 model works."""
        return a if a.dtype == self.dtype else np.ascontiguousarray(a, dtype=self.dtype)

    def __call__(self, x, training=False):
        from nncore.layers.symbolic import KerasTensor
        if isinstance(x, KerasTensor):
            return self._call_symbolic(x)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        self._ensure_built(x)
        return np.array(self.forward(x, training=training), copy=True)

    def _call_symbolic(self, x):
        """Layer on a KerasTensor: build for its shape (or check it), and
        return the KerasTensor of the output, remembering where it came from."""
        from nncore.layers.symbolic import KerasTensor
        if not self.built:
            self.build(x.shape)
        elif self.input_shape is not None and tuple(self.input_shape[1:]) != tuple(x.shape[1:]):
            raise ValueError(f"Layer '{self.name}' was built for inputs {self.input_shape} "
                             f"but is called on {x.shape}")
        out = KerasTensor(self.output_shape, self.dtype, layer=self, parent=x)
        self.__dict__["_input_tensor"], self.__dict__["_output_tensor"] = x, out
        return out

    @property
    def output(self):
        """The KerasTensor this layer last produced in a model definition
        (a Sequential's layers get one when the model is built)."""
        t = self.__dict__.get("_output_tensor")
        if t is None:
            raise AttributeError(f"Layer '{self.name}' has never been called on a symbolic "
                                 "input, so it has no output yet (build the model first)")
        return t

    @property
    def input(self):
        """The KerasTensor this layer was last called on in a model definition."""
        t = self.__dict__.get("_input_tensor")
        if t is None:
            raise AttributeError(f"Layer '{self.name}' has never been called on a symbolic "
                                 "input, so it has no input yet (build the model first)")
        return t

    # ----------------------------------------------------------- config
    def get_config(self):
        """The constructor arguments as a dict (``from_config`` rebuilds the layer)."""
        config_ = {"name": self.name, "trainable": self.trainable,
                   "dtype": str(self.dtype)}
        if self._input_shape_arg is not None:
            config_["input_shape"] = list(self._input_shape_arg)
        return config_

    @classmethod
    def from_config(cls, config_):
        """A new layer from a ``get_config()`` dict (fresh weights)."""
        return cls(**config_)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    def _new(self, shape, dtype=None):
        """A new output array.  Layers never hand out a shared buffer: results
        a learner keeps stay valid, and predict/evaluate may run in several
        threads at once (see docs/threads_and_files.md)."""
        return np.empty(shape, dtype=np.dtype(dtype or self.dtype))

    def _input_grad_array(self, shape, dtype):
        """The array backward writes dL/dx into: the compiled loop's own
        buffer when its plan entry handed one for this very call
        (``_state.dx_target``, see ``PlanEntry.layer_backward``: the result
        then needs no copy), else a new array."""
        target = getattr(self._state, "dx_target", None)
        if target is not None and target.shape == tuple(shape) and target.dtype == dtype:
            return target
        return np.empty(shape, dtype=dtype)

    # (older name, kept for layer code written against it: a fresh array too)
    def _buffer(self, key, shape, dtype=None):
        return self._new(shape, dtype)
