"""Sequential: a plain stack of layers, each feeding the next.

    model = Sequential([Input(shape=(28, 28)), Flatten(),
                        Dense(100, activation='relu'), Dense(10, activation='softmax')])

Forward runs the layers in order; backward runs their ``backward`` in
reverse, passing each the gradient of the loss with respect to its output.
"""
import numpy as np

from nncore import config
from nncore.layers.input_layer import InputLayer
from nncore.layers.layer import Layer
from nncore.models.model import Model
from nncore.models.rollback import all_or_nothing
from nncore.models.summary import print_summary


class Sequential(Model):
    """A plain stack of layers, each feeding the next -- the model of chapter 7.

    Args:
        layers: list of layers, optionally starting with ``keras.Input(shape=...)``
            (which fixes the input shape so the weights are created at once).
        name: the model's name (default ``sequential``, ``sequential_1``, ...).
        trainable: False freezes every weight.

    The forward pass runs the layers in order, ``a_0 = x``, ``a_k = f_k(a_{k-1})``;
    backpropagation runs their ``backward`` in reverse, each turning
    ``dL/da_k`` into ``dL/da_{k-1}`` and the gradients of its own weights.

    Example::

        model = keras.Sequential([
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.summary()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    """
    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        super().__init__(name=name, **kwargs)
        self.trainable = trainable
        self._layers = []
        self._input_shape = None     # (None, ...) once known
        self.built = False
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------- layers
    def add(self, layer):
        """Append a layer on top of the stack (``model.add(keras.layers.Dense(10))``).

        An ``Input`` may only come first.  Layer names must be unique; a layer that
        does not fit the shapes is refused and the model left as it was.
        """
        from nncore.layers.symbolic import KerasTensor
        if isinstance(layer, KerasTensor):          # keras.Input(...) as the first entry
            if layer.parent is not None or not isinstance(layer.layer, InputLayer):
                raise TypeError("Sequential.add: a symbolic tensor can only be the model's "
                                "Input; add layers, not their outputs")
            layer = layer.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("Sequential: an Input must come before every other layer")
            self._input_shape = layer.shape
            self._input_layer = layer
            return
        if any(l.name == layer.name for l in self._layers):
            raise ValueError(f"Sequential: there is already a layer named {layer.name!r}; "
                             "layer names must be unique")
        if not self._layers and self._input_shape is None and layer._input_shape_arg is not None:
            self._input_shape = (None,) + tuple(layer._input_shape_arg)
        self._layers.append(layer)
        self.built = False
        self._metrics = None
        if self._input_shape is not None:
            try:
                self.build(self._input_shape)
            except Exception:
                self._layers.pop()      # a refused layer leaves the model as it was
                if self._layers:
                    self.build(self._input_shape)
                raise

    def pop(self):
        """Remove the last layer and return it (IndexError when there is none)."""
        if not self._layers:
            raise IndexError("Sequential.pop: there are no layers to remove")
        layer = self._layers.pop()
        self.built = False
        self._metrics = None
        if self._input_shape is not None and self._layers:
            self.build(self._input_shape)
        return layer

    @property
    def layers(self):
        """The layers, in order (a copy of the list; the Input is not a layer here)."""
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """A layer by ``name`` or by ``index`` (ValueError naming the layers if absent).

        Example::

            model.get_layer("hidden").get_weights()
        """
        layers = self.layers      # a functional model's starts with its InputLayer
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index {index} out of range for "
                                 f"{len(layers)} layers")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[l.name for l in layers]}.")

    # ------------------------------------------------------------- building
    def build(self, input_shape=None):
        """Create every layer's weights for inputs of ``input_shape`` (batch first, e.g.
        ``(None, 28, 28)``).  Called for you by ``add`` (after an Input) or on first use.
        """
        input_shape = tuple(input_shape if input_shape is not None else self._input_shape or ())
        if not input_shape:
            raise ValueError("Sequential.build: the input shape is unknown; pass it to "
                             "build(), give the first layer input_shape=..., or start "
                             "with Input(shape=...)")
        if input_shape[0] is not None:
            input_shape = (None,) + input_shape[1:]
        # a layer that refuses the shape may come after others were built for
        # it: then the model and every layer go back to how they were
        with all_or_nothing(self, *self._layers):
            self._input_shape = input_shape
            shape = input_shape
            for layer in self._layers:
                if not layer.built:
                    layer.build(shape)
                elif (layer.input_shape is not None
                      and tuple(layer.input_shape[1:]) != tuple(shape[1:])):
                    raise ValueError(f"Layer '{layer.name}' was built for inputs "
                                     f"{layer.input_shape} but receives {shape}")
                shape = layer.output_shape
            self.built = bool(self._layers)
            if self.built:
                self._make_graph()

    def _make_graph(self):
        """The symbolic history of the stack -- ``model.inputs``,
        ``layer.output`` for each layer, ``model.outputs`` -- so that parts
        of the model can be taken out as models of their own."""
        from nncore.layers.input_layer import InputLayer as _Input
        inp = self.__dict__.get("_input_layer")
        if inp is None or tuple(inp.shape) != tuple(self._input_shape):
            inp = self._input_layer = _Input(shape=self._input_shape[1:], dtype=self.dtype)
        t = inp.output
        for layer in self._layers:
            t = layer._call_symbolic(t)
        self._graph = ([inp.output], [t])

    @property
    def inputs(self):
        """[the model's input KerasTensor] (the model must be built)."""
        return list(self._graph_or_raise()[0])

    @property
    def outputs(self):
        """[the model's output KerasTensor] (the model must be built)."""
        return list(self._graph_or_raise()[1])

    @property
    def input(self):
        """The model's input KerasTensor (``inputs[0]``)."""
        return self.inputs[0]

    @property
    def output(self):
        """The model's output KerasTensor (``outputs[0]``)."""
        return self.outputs[0]

    def _graph_or_raise(self):
        graph = self.__dict__.get("_graph")
        if graph is None or not self.built:
            raise AttributeError(f"model '{self.name}' is not built yet, so it has no inputs "
                                 "or outputs: give it an Input or call it on data first")
        return graph

    def _ensure_built_for(self, x):
        if not self._layers:
            raise ValueError("The model has no layers: add some before using it")
        if not self.built:
            self.build(self._input_shape or (None,) + x.shape[1:])

    def _check_input(self, x, what="x"):
        expected = self._input_shape[1:]
        got = x.shape[1:]
        if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
            first = self._layers[0]
            hint = ""
            if len(got) > 1 and len(expected) == 1 and int(np.prod(got)) == expected[0]:
                hint = " Add a Flatten() layer first (or reshape x to (n, %d))." % expected[0]
            from nncore.models.data import missing_batch_hint
            hint = hint or missing_batch_hint(expected, x.shape)
            raise ValueError(
                f"{what}: input 0 of layer '{first.name}' is incompatible with the layer: "
                f"expected shape {(None,) + tuple(expected)}, received shape "
                f"{(None,) + tuple(got)}.{hint}")

    @property
    def input_shape(self):
        """The input shape with the batch dimension first, e.g. ``(None, 28, 28)``."""
        return self._input_shape

    @property
    def output_shape(self):
        """The output shape, e.g. ``(None, 10)`` (None before the model is built)."""
        return self._layers[-1].output_shape if self.built else None

    @property
    def output_units(self):
        """Number of outputs per sample (the last dimension of the output)."""
        shape = self.output_shape
        if shape is None or len(shape) != 2:
            raise ValueError(f"the model's output must be 2-D (batch, units); it is {shape}")
        return shape[1]

    @property
    def output_activation(self):
        """The last layer's activation name (``"softmax"`` ...), or None."""
        return getattr(self._layers[-1], "activation", None)

    @property
    def dtype(self):
        """The dtype inputs are converted to: the first weighted layer's."""
        for layer in self._layers:
            if layer.weights:
                return layer.weights[0].dtype
        return config.float_dtype()

    # ------------------------------------------------------------- weights
    @property
    def weights(self):
        """Every weight Variable of every layer, in layer order (kernel, bias, ...)."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        """The weights the optimizer updates."""
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        """The weights the optimizer leaves alone (frozen layers)."""
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    trainable_variables = trainable_weights

    def get_weights(self):
        """Copies of every weight as NumPy arrays, in layer order.

        Example::

            kernel, bias = model.get_weights()[:2]     # the first Dense layer
        """
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Replace every weight from a list of arrays (as ``get_weights`` returns).

        The number and shapes of the arrays are checked first; a refused call
        changes nothing.
        """
        weights = list(weights)
        expected = sum(len(l.weights) for l in self._layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: the model has {expected} weight arrays "
                             f"({', '.join(str(w.shape) for w in self.weights)}), "
                             f"got {len(weights)}")
        # check (and convert) every array first, so a refused call changes nothing
        checked, i = [], 0
        for layer in self._layers:
            k = len(layer.weights)
            checked += layer._check_weights(weights[i:i + k])
            i += k
        for var, value in zip(self.weights, checked):
            var.assign(value)

    def count_params(self):
        """Total number of weights.  A ``Dense(units)`` layer on ``n`` inputs has
        ``n * units + units`` (kernel plus bias).
        """
        return sum(l.count_params() for l in self._layers)

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """Print the table of layers, output shapes and parameter counts (as Keras 3).

        Args:
            line_length: total width (default: the terminal width, at most 88).
            positions: relative column ends, default ``[0.45, 0.80, 1.0]``.
            print_fn: a function receiving the whole text instead of printing it.

        Example::

            model.summary()
            model.summary(print_fn=lambda text: open("summary.txt", "w").write(text))
        """
        print_summary(self, line_length, positions, print_fn, **kwargs)

    def _trainable_pairs(self):
        variables, grads = [], []
        if not self.trainable:
            return variables, grads
        for layer in self._layers:
            if not layer.trainable:
                continue
            for var, g in zip(layer.weights, layer.grads):
                if var.trainable:
                    variables.append(var)
                    grads.append(g)
        return variables, grads

    # ------------------------------------------------------------- maths
    # Every layer takes the same keywords (see nncore/layers/layer.py), so
    # the stack is run without asking what kind each layer is.
    def _forward(self, x, training=False, logits_last=False):
        a = x
        last = len(self._layers) - 1
        observers = self._observers
        mask = None     # the step mask an Embedding(mask_zero=True) hands up
        for i, layer in enumerate(self._layers):
            kwargs = {"training": training, "logits": i == last and logits_last}
            if mask is not None and getattr(layer, "supports_masking", False):
                kwargs["mask"] = mask
            out = layer.forward(a, **kwargs)
            for ob in observers:
                ob.on_layer_forward(self, i, layer, a, out, kwargs)
            compute_mask = getattr(layer, "compute_mask", None)
            mask = compute_mask(a, mask) if compute_mask is not None else None
            a = out
        return a

    def _takes_onehot_positions(self):
        return bool(self._layers) and bool(getattr(self._layers[0], "accepts_onehot_positions",
                                                   False))

    def _first_trainable_index(self):
        for i, layer in enumerate(self._layers):
            if layer.weights and layer.trainable and self.trainable:
                return i
        return len(self._layers)

    def _backward(self, grad, from_logits=False):
        first = self._first_trainable_index()
        last = len(self._layers) - 1
        observers = self._observers
        for i in range(last, first - 1, -1):
            layer = self._layers[i]
            kwargs = {"from_logits": i == last and from_logits, "need_input_grad": i > first}
            out = layer.backward(grad, **kwargs)
            for ob in observers:
                ob.on_layer_backward(self, i, layer, grad, out, kwargs)
            grad = out

    def _regularization(self, add_grads):
        return sum(l.regularization(add_grads) for l in self._layers)

    # ------------------------------------------------------------- config
    def get_config(self):
        """The architecture as a dict (layer classes and configs; no weights)."""
        return {"name": self.name, "trainable": self.trainable,
                "input_shape": None if self._input_shape is None else list(self._input_shape[1:]),
                "layers": [{"class_name": type(l).__name__, "config": l.get_config()}
                           for l in self._layers]}

    # ------------------------------------------------------------- serialization
    # (added by nncore.saving: from_config / to_json; the logic lives there)
    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new Sequential (freshly initialised) from ``get_config()``'s dict."""
        from nncore.saving.serialization import sequential_from_config
        return sequential_from_config(config, custom_objects=custom_objects, model_cls=cls)

    def to_json(self, **kwargs):
        """The architecture as JSON (``nncore.models.model_from_json`` reads it)."""
        from nncore.saving.serialization import model_to_json
        return model_to_json(self, **kwargs)
