"""Activation: apply an activation function as a layer of its own
(``Dense(10) + Activation('softmax')`` is the same model as
``Dense(10, activation='softmax')``)."""
from nncore import activations
from nncore.backend import kernels
from nncore.layers.layer import Layer


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False, logits=False):
        if logits or self.activation == "linear":
            self._out = x
            return x
        out = self._buffer("out", x.shape)
        out[...] = x
        kernels().bias_act_forward(out.reshape(out.shape[0], -1), None, self.activation)
        self._out = out
        return out

    def backward(self, grad, from_logits=False):
        if from_logits or self.activation == "linear":
            return grad
        dz = self._buffer("dz", grad.shape)
        kernels().act_backward(grad, self._out, self.activation, dz)
        return dz

    def get_config(self):
        c = super().get_config()
        c["activation"] = self.activation
        return c
