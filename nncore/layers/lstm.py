"""LSTM: a recurrent layer with a cell state and input, forget and output gates.

The cell's maths and its backpropagation through time are in
``nncore/ops/recurrent.py``; what all recurrent layers share is in
``nncore/layers/_recurrent.py``.
"""
from __future__ import annotations

import numpy as np

from nncore import initializers
from nncore.layers._recurrent import RecurrentLayer


class LSTM(RecurrentLayer):
    """Long Short-Term Memory (Hochreiter & Schmidhuber, 1997), as Keras 3 computes it.

    At each step, with the kernel's four column blocks in Keras's order
    i (input), f (forget), c (candidate), o (output)::

        z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias
        i = sigmoid(z_i)   f = sigmoid(z_f)   o = sigmoid(z_o)   g = tanh(z_c)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    (sigmoid is ``recurrent_activation``, tanh ``activation``).  Weights:
    kernel ``(features, 4*units)``, recurrent_kernel ``(units, 4*units)``,
    bias ``(4*units,)``.

    Args:
        units: size of the state, a positive integer.
        activation: default ``"tanh"``.  recurrent_activation: default ``"sigmoid"``.
        use_bias: default True.
        kernel_initializer: ``"glorot_uniform"``; recurrent_initializer:
            ``"orthogonal"``; bias_initializer: ``"zeros"``.
        unit_forget_bias: default True: the forget gate's bias starts at 1
            (and the rest from bias_initializer), as Keras.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: default None.
        dropout, recurrent_dropout, seed, return_sequences, return_state,
        go_backwards: as :class:`SimpleRNN`; ``return_state`` gives
        ``[output, h, c]``.  stateful, unroll: not supported.

    Example (the book's chapter 9)::

        model = keras.Sequential([keras.Input(shape=(100,)),
                                  keras.layers.Embedding(500, 16),
                                  keras.layers.LSTM(8),
                                  keras.layers.Dense(1, activation="sigmoid")])
        # LSTM(8) on 16 features: 4 * (16*8 + 8*8 + 8) = 800 parameters
    """
    cell = "lstm"
    gates = 4
    keras_name = "LSTM"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, **kwargs):
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
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def n_states(self):
        """LSTM carries two states: h (the output) and c (the cell)."""
        return 2

    def _bias_initial(self, shape, dtype):
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype)
        u = self.units
        # Keras: [bias_initializer(u), ones(u), bias_initializer(2u)]
        return np.concatenate([self.bias_initializer((u,), dtype=dtype),
                               initializers.Ones()((u,), dtype=dtype),
                               self.bias_initializer((2 * u,), dtype=dtype)])

    def _cell_formula(self):
        """The forward recurrence, one line (for ``describe``)."""
        return (f"LSTM({self.units}): for each time step, gates i,f,o = sigmoid(...) and "
                "candidate g = tanh(...) from x_t·W + h·U + b; c = f*c + i*g; h = o*tanh(c)")

    def get_config(self):
        c = super().get_config()
        c.update(recurrent_activation=self.recurrent_activation,
                 unit_forget_bias=self.unit_forget_bias)
        return c

    @classmethod
    def _own_from_keras(cls, c, what):
        from nncore.saving.format import FormatError
        v = c.get("unit_forget_bias", True)
        if not isinstance(v, bool):
            raise FormatError(f"{what}: unit_forget_bias must be true or false")
        return {"unit_forget_bias": v}

    def _own_to_keras(self):
        return {"unit_forget_bias": self.unit_forget_bias}
