"""What every kernel-and-bias layer shares (Dense, Conv2D): options, penalty, plan parameters.

Both compute ``activation(x (*) kernel + bias)`` -- a product for Dense, a
convolution for Conv2D -- with the same options (activation, use_bias,
initializers, regularizers), the same penalty and the same two parameters in
the compiled loop (the kernel, then the bias).  A mixin, not a base layer:
Conv2D's shape rules come from the spatial base it shares with pooling.
"""
from nncore import activations, initializers, regularizers
from nncore.backend import kernels
from nncore.layers.plan_entry import Param


class KernelBias:
    """Mixin for layers with ``self.kernel`` and optional ``self.bias``."""

    def _kernel_options(self, activation, use_bias, kernel_initializer, bias_initializer,
                        kernel_regularizer, bias_regularizer):
        """Resolve the shared options from names, configs or objects."""
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel = self.bias = None

    def _kernel_bias_shapes(self, kernel_shape, bias_size):
        return [tuple(kernel_shape)] + ([(bias_size,)] if self.use_bias else [])

    def _regularized(self):
        """[(regularizer, variable, gradient)] of the kernel and the bias."""
        out = [(self.kernel_regularizer, self.kernel, self.grads[0])]
        if self.use_bias:
            out.append((self.bias_regularizer, self.bias, self.grads[1]))
        return out

    def regularization(self, add_grads):
        """Penalty of the regularizers (added to the loss); adds their gradients
        into self.grads when ``add_grads``."""
        K = kernels()
        pen = 0.0
        for reg, var, g in self._regularized():
            if reg is not None and var is not None:
                pen += K.l1_l2_penalty_and_grad(var.value.reshape(-1),
                                                g.reshape(-1) if add_grads else None,
                                                reg.l1, reg.l2)
        return pen

    def _regularizer_formulas(self):
        """The penalty gradients' formulas for ``describe``: dW += ..., db += ..."""
        out = []
        for n, r in (("W", self.kernel_regularizer), ("b", self.bias_regularizer)):
            if r is not None:
                terms = ([f"{r.l1:g} sign({n})"] if r.l1 else []) + \
                    ([f"2*{r.l2:g} {n}"] if r.l2 else [])
                out.append(f"d{n} += " + " + ".join(terms or ["0"]))
        return out

    def _plan_params(self, ctx):
        """The compiled loop's parameters: the kernel, then the bias."""
        return [Param.of(ctx, var, g, reg) for reg, var, g in self._regularized()]

    def _keras_kernel_bias(self):
        """The Keras 3 config keys of the shared options."""
        from nncore.saving import keras_layers as KC
        return dict(activation=self.activation, use_bias=self.use_bias,
                    kernel_initializer=KC.initializer_keras(self.kernel_initializer),
                    bias_initializer=KC.initializer_keras(self.bias_initializer),
                    kernel_regularizer=KC.regularizer_keras(self.kernel_regularizer),
                    bias_regularizer=KC.regularizer_keras(self.bias_regularizer),
                    kernel_constraint=None, bias_constraint=None)

    @staticmethod
    def _keras_kernel_bias_in(c, what):
        """Read the shared options from a Keras config."""
        from nncore.saving import keras_layers as KC
        use_bias = c.get("use_bias", True)
        if not isinstance(use_bias, bool):
            raise KC.FormatError(f"{what}: use_bias must be true or false")
        out = dict(activation=KC.read_activation(c.get("activation"), what), use_bias=use_bias,
                   kernel_regularizer=KC.read_regularizer(c.get("kernel_regularizer"), what),
                   bias_regularizer=KC.read_regularizer(c.get("bias_regularizer"), what))
        for key in ("kernel_initializer", "bias_initializer"):
            init = KC.read_initializer(c.get(key), what)
            if init is not None:
                out[key] = init
        return out
