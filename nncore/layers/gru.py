"""GRU: a gated recurrent layer with update and reset gates.

The cell's maths and its backpropagation through time are in
``nncore/ops/recurrent.py``; what all recurrent layers share is in
``nncore/layers/_recurrent.py``.
"""
from __future__ import annotations

from nncore.layers._recurrent import RecurrentLayer


class GRU(RecurrentLayer):
    """Gated Recurrent Unit (Cho et al., 2014), as Keras 3 computes it.

    Kernel column blocks in Keras's order z (update), r (reset), h (candidate).
    With ``reset_after=True`` (the default, bias of shape ``(2, 3*units)``:
    an input row b_x and a recurrent row b_h)::

        xz, xr, xh = x_t @ kernel + b_x
        hz, hr, hh = h_{t-1} @ recurrent_kernel + b_h
        z = sigmoid(xz + hz)    r = sigmoid(xr + hr)
        n = tanh(xh + r * hh)
        h_t = z * h_{t-1} + (1 - z) * n

    With ``reset_after=False`` (bias ``(3*units,)`` on the input side) the
    reset gate acts before the product: ``n = tanh(xh + (r * h_{t-1}) @ U_h)``.

    Args:
        units: size of the state, a positive integer.
        activation: default ``"tanh"``.  recurrent_activation: default ``"sigmoid"``.
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
        kernel_regularizer, recurrent_regularizer, bias_regularizer, dropout,
        recurrent_dropout, seed, return_sequences, return_state, go_backwards:
            as :class:`SimpleRNN`.
        reset_after: default True (see above).
        stateful, unroll: not supported.

    Example::

        model = keras.Sequential([keras.Input(shape=(100,)),
                                  keras.layers.Embedding(500, 16),
                                  keras.layers.GRU(8),
                                  keras.layers.Dense(1, activation="sigmoid")])
        # GRU(8) on 16 features: 16*24 + 8*24 + 2*24 = 624 parameters
    """
    cell = "gru"
    gates = 3
    keras_name = "GRU"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 reset_after=True, **kwargs):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, **kwargs)
        self.reset_after = bool(reset_after)

    def bias_shape(self):
        """``(2, 3*units)`` with reset_after (input and recurrent rows), else ``(3*units,)``."""
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _cell_options(self):
        return dict(super()._cell_options(), reset_after=self.reset_after)

    def _cell_formula(self):
        """The forward recurrence, one line (for ``describe``)."""
        return (f"GRU({self.units}): for each time step, gates z,r = sigmoid(...) from "
                "x_t·W + h·U + b; n = tanh(x_t·W_h + r*(h·U_h)); h = z*h + (1-z)*n")

    def get_config(self):
        c = super().get_config()
        c.update(recurrent_activation=self.recurrent_activation, reset_after=self.reset_after)
        return c

    @classmethod
    def _own_from_keras(cls, c, what):
        from nncore.saving.format import FormatError
        v = c.get("reset_after", True)
        if not isinstance(v, bool):
            raise FormatError(f"{what}: reset_after must be true or false")
        return {"reset_after": v}

    def _own_to_keras(self):
        return {"reset_after": self.reset_after}
