"""Layer: the base of every layer, with Keras's names for things.

A layer owns its weights (``Variable`` objects) and two methods a learner can
call on plain NumPy arrays:

    forward(x, training=False)  -> output         (remembers what backward needs)
    backward(grad)              -> gradient w.r.t. the input, and fills
                                   ``layer.grads`` (one array per weight)

``Sequential`` chains them; ``fit`` adds the loss and the optimizer.
"""
import numpy as np

from nncore import config, naming
from nncore.variables import Variable


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
    ``compute_output_shape``, ``forward`` and ``backward``.
    """
    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 batch_input_shape=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string")
        self.name = name or naming.unique_name(naming.to_snake_case(type(self).__name__))
        self.trainable = trainable
        self._dtype = np.dtype(dtype) if dtype is not None else None
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

    def _ensure_built(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))

    # ----------------------------------------------------------- computing
    def forward(self, x, training=False):
        """Compute the layer's output for the batch ``x`` and remember what
        ``backward`` needs.  ``training=True`` turns on training-only behaviour
        (Dropout).
        """
        raise NotImplementedError

    def backward(self, grad):
        """Given ``grad`` = dL/d(output) of the last ``forward``, fill ``self.grads``
        (dL/d(each weight)) and return dL/d(input) for the layer below.
        """
        raise NotImplementedError

    def __call__(self, x, training=False):
        x = np.ascontiguousarray(x, dtype=self.dtype)
        self._ensure_built(x)
        return np.array(self.forward(x, training=training), copy=True)

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

    # buffers reused between calls with the same batch size, so the
    # per-batch path does not allocate every step
    def _buffer(self, key, shape, dtype=None):
        bufs = self.__dict__.setdefault("_buffers", {})
        dtype = np.dtype(dtype or self.dtype)
        buf = bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype=dtype)
            bufs[key] = buf
        return buf
