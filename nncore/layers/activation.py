"""Activation: apply an activation function as a layer of its own
(``Dense(10) + Activation('softmax')`` is the same model as
``Dense(10, activation='softmax')``)."""
from __future__ import annotations

from nncore import activations
import numpy as np

from nncore.backend import kernels
from nncore.layers.layer import Layer, Unsupported
from nncore.layers.plan_entry import PlanEntry
from nncore.ops.activations import BACKWARD_FORMULA, FORWARD_FORMULA


class Activation(Layer):
    """Apply an activation function as a layer of its own.

    ``Dense(10) + Activation("softmax")`` is the same model as
    ``Dense(10, activation="softmax")``.

    Args:
        activation: ``"relu"`` (``max(z, 0)``), ``"sigmoid"`` (``1/(1+e^-z)``),
            ``"tanh"``, ``"softmax"`` (``e^z_j / sum_k e^z_k``), ``"linear"``...
        name: the layer's name.

    Example::

        keras.layers.Activation("relu")(np.array([[-1.0, 2.0]]))    # [[0., 2.]]
    """
    def __init__(self, activation: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False, logits=False):
        """``f(x)`` (with ``logits=True``: ``x`` unchanged, the loss applies f)."""
        if logits or self.activation == "linear":
            return x
        x = self._in_dtype(x)
        out = self._new(x.shape)
        out[...] = x
        # rows of the last axis: softmax normalises over it, as Keras does
        kernels().bias_act_forward(out.reshape(-1, out.shape[-1]), None, self.activation)
        self._state.out = out
        return out

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """``grad * f'(x)`` (softmax: the full Jacobian-vector product)."""
        if from_logits or self.activation == "linear":
            return grad
        grad = np.ascontiguousarray(self._in_dtype(grad))
        dz = self._new(grad.shape)
        rows = (-1, grad.shape[-1])
        kernels().act_backward(grad.reshape(rows), self._state.out.reshape(rows),
                               self.activation, dz.reshape(rows))
        return dz

    def plan_entry(self, ctx):
        if len(self.input_shape) != 2:
            raise Unsupported(f"Activation '{self.name}' on {len(self.input_shape)}-D input")
        return PlanEntry("activation", act=self.activation,
                         logits=int(ctx.is_last and ctx.path == "logits"))

    def weight_shapes(self, input_shape):
        return []

    def describe(self, step):
        """a = f(x) and dx = g * f'(x) (for ``utils.trace``)."""
        act = self.activation
        fwd = ("output = x  (" + act + " left to the loss)") \
            if step.forward_kwargs.get("logits", False) else \
            FORWARD_FORMULA[act].replace("(z)", "(x)").replace("z", "x")
        bwd = "dx = dL/dx from the loss kernel" \
            if step.backward_kwargs.get("from_logits", False) else \
            BACKWARD_FORMULA[act].replace("dz", "dx")
        return fwd, bwd

    # ------------------------------------------------------------ Keras files
    keras_name = "Activation"
    keras_has_build = False

    @classmethod
    def from_keras(cls, c, what):
        """A Keras config of this layer -> the constructor's arguments."""
        from nncore.saving import keras_layers as KL
        return dict(KL.common(c, what), activation=KL.read_activation(c.get("activation"), what))

    def to_keras(self):
        from nncore.saving import keras_layers as KL
        return dict(KL.common_keras(self), activation=self.activation)

    def get_config(self):
        c = super().get_config()
        c["activation"] = self.activation
        return c
