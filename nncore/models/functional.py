"""Functional models: ``keras.Model(inputs, outputs)``.

    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)

    # chapter 8: the feature maps of a trained Sequential's first layer
    conv_acti = keras.Model(model.inputs[0], model.layers[0].output)

The model is the path of layers from ``outputs`` back to ``inputs``.  Every
layer nncore has takes one input, so that path is a chain and the model is a
``Sequential`` of those very layer objects (weights shared with wherever
else they are used): fit, evaluate, predict, summary and save work as for
any Sequential, and it is saved as one.  Graphs nncore cannot run yet --
several inputs or outputs, or an output not computed from the input -- are
refused with the reason.
"""
from nncore.layers.input_layer import InputLayer
from nncore.layers.symbolic import KerasTensor
from nncore.models.sequential import Sequential


def _one(value, what):
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"Model: {len(value)} {what} -- nncore runs models with one "
                             f"input and one output (multi-{what[:-1]} graphs are not "
                             "supported yet)")
        value = value[0]
    if isinstance(value, dict):
        raise ValueError(f"Model: {what} as a dict are not supported yet; pass one tensor")
    if not isinstance(value, KerasTensor):
        raise TypeError(f"Model: {what} must be symbolic tensors (from keras.Input and "
                        f"layer calls), got {type(value).__name__}")
    return value


class Functional(Sequential):
    """A model defined by its input and output tensors (see the module docstring)."""

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        inp = _one(inputs, "inputs")
        out = _one(outputs, "outputs")
        if inp.parent is not None or not isinstance(inp.layer, InputLayer):
            raise ValueError(f"Model: inputs must come from keras.Input(...); {inp!r} is the "
                             f"output of layer '{inp.layer.name}'")
        chain, t, seen = [], out, set()
        while t is not inp:
            if t.parent is None:
                raise ValueError(f"Model: the output {out!r} is not computed from the input "
                                 f"{inp!r} (it starts at {t!r})")
            if id(t.layer) in seen:
                raise ValueError(f"Model: layer '{t.layer.name}' is applied twice on the path; "
                                 "nncore runs each layer once per model")
            seen.add(id(t.layer))
            chain.append(t.layer)
            t = t.parent
        chain.reverse()
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._input_layer = inp.layer
        self._input_shape = inp.shape
        for layer in chain:
            self.add(layer)
        if not chain:
            raise ValueError("Model: the output is the input itself; add layers between them")
        # the user's own tensors, not new ones (a layer shared with another
        # model keeps the .output it had there)
        self._graph = ([inp], [out])

    def _make_graph(self):
        if self.__dict__.get("_graph") is None:
            super()._make_graph()

    @property
    def layers(self):
        """The model's layers, its ``InputLayer`` first (as Keras 3 lists a
        functional model's; a ``Sequential`` leaves it out)."""
        return [self._input_layer] + list(self._layers)
