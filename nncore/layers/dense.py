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
from __future__ import annotations

import numbers

import numpy as np

from nncore import activations, initializers, regularizers
from nncore.backend import kernels
from nncore.layers.layer import Layer, Unsupported


class Dense(Layer):
    """A fully connected layer: ``output = activation(x @ kernel + bias)``.

    Every output unit is a weighted sum of every input plus a bias, passed
    through the activation.  For inputs of shape ``(batch, n)`` the kernel is
    ``(n, units)`` and the bias ``(units,)``: ``n * units + units`` weights.

    Args:
        units: number of outputs (neurons), a positive integer.
        activation: ``None``/``"linear"`` (default), ``"relu"``, ``"sigmoid"``,
            ``"tanh"``, ``"softmax"``, ...
        use_bias: add the bias vector (default True).
        kernel_initializer: how the kernel starts (default ``"glorot_uniform"``:
            uniform in ``±sqrt(6 / (n + units))``).
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer: e.g. ``keras.regularizers.l2(1e-4)``;
            the penalty is added to the loss.
        name, trainable, dtype, input_shape: see :class:`~nncore.layers.Layer`.

    Input must be 2-D ``(batch, features)``: put a ``Flatten()`` before it for
    images.  Backward, given ``g = dL/da``::

        dz = g * f'(z)      dW = x^T @ dz      db = sum(dz, axis=0)      dx = dz @ W^T

    Example::

        layer = keras.layers.Dense(100, activation="relu")
        model = keras.Sequential([keras.Input(shape=(784,)), layer,
                                  keras.layers.Dense(10, activation="softmax")])
        layer.count_params()          # 784 * 100 + 100 = 78500
    """
    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str | object = "glorot_uniform",
                 bias_initializer: str | object = "zeros",
                 kernel_regularizer: str | object | None = None,
                 bias_regularizer: str | object | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self._kernel_options(activation, use_bias, kernel_initializer, bias_initializer,
                             kernel_regularizer, bias_regularizer)

    def _kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                        kernel_regularizer, bias_regularizer):
        """The options every kernel-and-bias layer shares (Dense, Conv2D),
        resolved from names, configs or objects."""
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel = self.bias = None

    def build(self, input_shape):
        """Create the kernel ``(features, units)`` and bias ``(units,)`` for 2-D inputs."""
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
        """``(batch, units)`` for inputs ``(batch, features)``."""
        return tuple(input_shape[:-1]) + (self.units,)

    def check_input(self, x):
        """Raise a ValueError (with a Flatten hint for images) if ``x`` does not fit."""
        self._require_built()
        expected = self.input_shape[-1]
        ndim = len(self.input_shape)
        if x.ndim != ndim or x.shape[-1] != expected:
            hint = " Add a Flatten() layer first." if x.ndim > ndim else ""
            want = ", ".join(["None"] * (ndim - 1) + [str(expected)])
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                f"expected shape ({want}), received shape "
                f"{(None,) + tuple(x.shape[1:])}.{hint}")

    def forward(self, x: np.ndarray, training: bool = False, logits: bool = False,
                _nd: bool = False) -> np.ndarray:
        """a = f(x . W + b); with logits=True stop before f (return z + b)."""
        x = self._in_dtype(x)
        if not _nd:
            self.check_input(x)
        if x.ndim > 2:      # N-D: the last axis is the features, the rest rows
            out = self.forward(x.reshape(-1, x.shape[-1]), training, logits, _nd=True)
            return out.reshape(x.shape[:-1] + (self.units,))
        K = kernels()
        z = self._new((x.shape[0], self.units))
        K.gemm(x, self.kernel.value, z)
        K.bias_act_forward(z, self.bias.value if self.use_bias else None,
                           "linear" if logits else self.activation)
        st = self._state
        st.x, st.out = x, z
        return z

    def backward(self, grad: np.ndarray, from_logits: bool = False,
                 need_input_grad: bool = True) -> np.ndarray | None:
        """Fill self.grads = [dW, db] and return dx (None if not needed)."""
        if grad.ndim > 2:
            dx = self.backward(grad.reshape(-1, self.units), from_logits, need_input_grad)
            return None if dx is None else dx.reshape(grad.shape[:-1] + (self._state.x.shape[-1],))
        K = kernels()
        grad = self._in_dtype(grad)
        st = self._state
        x, a = st.x, st.out
        if from_logits or self.activation == "linear":
            dz = grad
        else:
            dz = self._new(grad.shape)
            K.act_backward(grad, a, self.activation, dz)
        K.gemm(x, dz, self.grads[0], trans_a=True)
        if self.use_bias:
            K.bias_grad(dz, self.grads[1])
        if not need_input_grad:
            return None
        dx = self._new(x.shape)
        K.gemm(dz, self.kernel.value, dx, trans_b=True)
        return dx

    def plan_entry(self, ctx):
        """The fused loop's Dense: the same five kernels as forward/backward,
        on the live kernel, bias, gradient and optimizer-slot arrays."""
        if isinstance(self, Dense) and len(self.input_shape) != 2:
            raise Unsupported(f"Dense '{self.name}' on {len(self.input_shape)}-D input")
        kr, br = self.kernel_regularizer, self.bias_regularizer
        sW = ctx.slots(self.kernel)
        sb = ctx.slots(self.bias) if self.use_bias else None
        entry = dict(kind="dense", act=self.activation,
                     logits=int(ctx.is_last and ctx.path == "logits"),
                     W=self.kernel.value, dW=self.grads[0],
                     train_W=int(sW is not None), sW=list(sW or (None,) * 3),
                     reg_W=int(kr is not None), l1_W=kr.l1 if kr else 0.0,
                     l2_W=kr.l2 if kr else 0.0,
                     b=None, db=None, train_b=0, sb=[None] * 3, reg_b=0, l1_b=0.0, l2_b=0.0)
        if self.use_bias:
            entry.update(b=self.bias.value, db=self.grads[1], train_b=int(sb is not None),
                         sb=list(sb or (None,) * 3), reg_b=int(br is not None),
                         l1_b=br.l1 if br else 0.0, l2_b=br.l2 if br else 0.0)
        return entry

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
