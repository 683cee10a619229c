"""Dense: ``output = activation(x . kernel + bias)``.

Shapes: x (batch, inputs), kernel (inputs, units), bias (units,).  On N-D
input (batch, ..., inputs) the layer acts on the last axis, as in Keras: the
leading axes are viewed as more rows of one 2-D product.

Forward (two kernels)::

    z = x . W                      gemm(x, W, z)
    a = f(z + b)                   bias_act_forward(z, b, f)      (in place)

Backward, given g = dL/da (three more)::

    dz = g * f'(z)                 act_backward(g, a, f, dz)      (through a)
    dW = x^T . dz                  gemm(x, dz, dW, trans_a=True)
    db = sum over the batch of dz  bias_grad(dz, db)
    dx = dz . W^T                  gemm(dz, W, dx, trans_b=True)  (for the layer below)

When the loss kernel already produced dL/dz (softmax + cross-entropy give
``p - y``), the model calls ``backward(dz, from_logits=True)`` and the
activation step is skipped.
"""
import numbers

from nncore import activations, initializers, regularizers
from nncore.backend import kernels
from nncore.layers.layer import Layer


class Dense(Layer):
    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel = self.bias = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 2:
            raise ValueError(
                f"Input 0 of layer '{self.name}' (Dense) must be at least 2-D (batch, "
                f"features); received shape {input_shape}.")
        if input_shape[-1] is None:
            raise ValueError(f"Dense '{self.name}': the last input dimension must be known")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def check_input(self, x):
        expected = self.input_shape[-1]
        ndim = len(self.input_shape)
        if x.ndim != ndim or x.shape[-1] != expected:
            hint = " Add a Flatten() layer first." if x.ndim > ndim else ""
            want = ", ".join(["None"] * (ndim - 1) + [str(expected)])
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                f"expected shape ({want}), received shape "
                f"{(None,) + tuple(x.shape[1:])}.{hint}")

    def forward(self, x, training=False, logits=False, _nd=False):
        """a = f(x . W + b); with logits=True stop before f (return z + b)."""
        if not _nd:
            self.check_input(x)
        if x.ndim > 2:      # N-D: the last axis is the features, the rest rows
            out = self.forward(x.reshape(-1, x.shape[-1]), training, logits, _nd=True)
            return out.reshape(x.shape[:-1] + (self.units,))
        K = kernels()
        z = self._buffer("out", (x.shape[0], self.units))
        K.gemm(x, self.kernel.value, z)
        K.bias_act_forward(z, self.bias.value if self.use_bias else None,
                           "linear" if logits else self.activation)
        self._x, self._out = x, z
        return z

    def backward(self, grad, from_logits=False, need_input_grad=True):
        """Fill self.grads = [dW, db] and return dx (None if not needed)."""
        if grad.ndim > 2:
            dx = self.backward(grad.reshape(-1, self.units), from_logits, need_input_grad)
            return None if dx is None else dx.reshape(grad.shape[:-1] + (self._x.shape[-1],))
        K = kernels()
        x, a = self._x, self._out
        if from_logits or self.activation == "linear":
            dz = grad
        else:
            dz = self._buffer("dz", grad.shape)
            K.act_backward(grad, a, self.activation, dz)
        K.gemm(x, dz, self.grads[0], trans_a=True)
        if self.use_bias:
            K.bias_grad(dz, self.grads[1])
        if not need_input_grad:
            return None
        dx = self._buffer("dx", x.shape)
        K.gemm(dz, self.kernel.value, dx, trans_b=True)
        return dx

    def regularization(self, add_grads):
        """Penalty of the regularizers (added to the loss); adds their gradients
        into self.grads when ``add_grads``."""
        K = kernels()
        pen = 0.0
        for reg, var, g in ((self.kernel_regularizer, self.kernel, self.grads[0]),
                            (self.bias_regularizer, self.bias,
                             self.grads[1] if self.use_bias else None)):
            if reg is not None and var is not None:
                pen += K.l1_l2_penalty_and_grad(var.value.reshape(-1),
                                                g.reshape(-1) if add_grads else None,
                                                reg.l1, reg.l2)
        return pen

    def get_config(self):
        c = super().get_config()
        c.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                 kernel_initializer=initializers.serialize(self.kernel_initializer),
                 bias_initializer=initializers.serialize(self.bias_initializer),
                 kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                 bias_regularizer=regularizers.serialize(self.bias_regularizer))
        return c
