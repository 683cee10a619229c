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

from nncore import initializers, regularizers
from nncore.backend import kernels
from nncore.layers._kernel_bias import KernelBias
from nncore.layers.layer import Layer, Unsupported
from nncore.layers.plan_entry import PlanEntry
from nncore.ops.activations import BACKWARD_FORMULA, FORWARD_FORMULA


class Dense(KernelBias, Layer):
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

    def weight_shapes(self, input_shape):
        """kernel ``(features, units)`` and bias ``(units,)``."""
        return self._kernel_bias_shapes((input_shape[-1], self.units), self.units)

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
        on the live kernel and bias (its two parameters)."""
        if len(self.input_shape) != 2:
            raise Unsupported(f"Dense '{self.name}' on {len(self.input_shape)}-D input")
        return PlanEntry("dense", act=self.activation,
                         logits=int(ctx.is_last and ctx.path == "logits"),
                         params=self._plan_params(ctx))

    def describe(self, step):
        """z = x.W + b; a = f(z), and its backward (for ``utils.trace``)."""
        act = self.activation
        logits = step.forward_kwargs.get("logits", False)
        b = " + b" if self.use_bias else ""
        if logits:
            fwd = f"z = x.W{b}  ({act} left to the loss: output = logits z)"
        elif act == "linear":
            fwd = f"z = x.W{b}; a = z"
        else:
            fwd = f"z = x.W{b}; {FORWARD_FORMULA[act]}"
        if step.backward_kwargs.get("from_logits", False):
            parts = ["dz = dL/dz from the loss kernel"]
        else:
            parts = [BACKWARD_FORMULA[act].replace("da", "g")]
        parts.append("dW = x^T.dz")
        if self.use_bias:
            parts.append("db = sum_batch dz")
        if step.backward_kwargs.get("need_input_grad", True):
            parts.append("dx = dz.W^T")
        return fwd, "; ".join(parts + self._regularizer_formulas())

    # ------------------------------------------------------------ Keras files
    keras_name = "Dense"

    @classmethod
    def from_keras(cls, c, what):
        """Keras's Dense config -> the constructor's arguments."""
        from nncore.saving import keras_layers as KL
        KL.require_absent(c, ("kernel_constraint", "bias_constraint", "activity_regularizer",
                              "lora_rank", "quantization_config"), what)
        units = c.get("units")
        if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= 2 ** 31:
            raise KL.FormatError(f"{what}: units must be a positive integer, got {units!r}")
        return dict(KL.common(c, what), units=units, **cls._keras_kernel_bias_in(c, what))

    def to_keras(self):
        from nncore.saving import keras_layers as KL
        return dict(KL.common_keras(self), units=self.units, **self._keras_kernel_bias(),
                    quantization_config=None)

    def get_config(self):
        c = super().get_config()
        c.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                 kernel_initializer=initializers.serialize(self.kernel_initializer),
                 bias_initializer=initializers.serialize(self.bias_initializer),
                 kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                 bias_regularizer=regularizers.serialize(self.bias_regularizer))
        return c
