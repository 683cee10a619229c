"""Activation: apply an activation function as a layer of its own
(``Dense(10) + Activation('softmax')`` is the same model as
``Dense(10, activation='softmax')``)."""
from __future__ import annotations

from nncore import activations
from nncore.backend import kernels
from nncore.layers.layer import Layer


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
            self._out = x
            return x
        out = self._buffer("out", x.shape)
        out[...] = x
        kernels().bias_act_forward(out.reshape(out.shape[0], -1), None, self.activation)
        self._out = out
        return out

    def backward(self, grad, from_logits=False):
        """``grad * f'(x)`` (softmax: the full Jacobian-vector product)."""
        if from_logits or self.activation == "linear":
            return grad
        dz = self._buffer("dz", grad.shape)
        kernels().act_backward(grad, self._out, self.activation, dz)
        return dz

    def get_config(self):
        c = super().get_config()
        c["activation"] = self.activation
        return c
