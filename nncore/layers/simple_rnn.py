"""SimpleRNN: ``h_t = activation(x_t . kernel + h_{t-1} . recurrent_kernel + bias)``.

The cell's maths and its backpropagation through time are in
``nncore/ops/recurrent.py``; what all recurrent layers share is in
``nncore/layers/_recurrent.py``.
"""
from __future__ import annotations

from nncore.layers._recurrent import RecurrentLayer


class SimpleRNN(RecurrentLayer):
    """A fully connected recurrent layer: the state is fed back at every step.

    For inputs ``(batch, timesteps, features)``, at each step ``t``::

        h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)

    starting from ``h_0 = 0``.  Weights: kernel ``(features, units)``,
    recurrent_kernel ``(units, units)``, bias ``(units,)``:
    ``features*units + units*units + units`` parameters.

    Args:
        units: size of the state (and output), a positive integer.
        activation: default ``"tanh"`` (also ``"relu"``, ``"sigmoid"``, ``"linear"``).
        use_bias: default True.
        kernel_initializer: default ``"glorot_uniform"``.
        recurrent_initializer: default ``"orthogonal"``.
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: default None.
        dropout: fraction of the inputs dropped while training (one mask per
            batch, the same at every step, as Keras).
        recurrent_dropout: fraction of the previous state dropped in the
            recurrent product while training.
        seed: seed of the dropout masks.
        return_sequences: return every step's output ``(batch, timesteps, units)``
            instead of the last ``(batch, units)``.
        return_state: calling the layer returns ``[output, final_state]``.
        go_backwards: process the sequence from its end (outputs come in
            processing order, as Keras).
        stateful, unroll: not supported (an error says so).

    Inputs may come with a step mask (``Embedding(mask_zero=True)`` below):
    a masked step keeps the previous state and output.

    Example (the book's chapter 9)::

        model = keras.Sequential([keras.Input(shape=(100, 200)),
                                  keras.layers.SimpleRNN(8),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.count_params()      # 200*8 + 8*8 + 8 + 9 = 1681
    """
    cell = "simple_rnn"
    gates = 1
    keras_name = "SimpleRNN"

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, **kwargs)

    @classmethod
    def _keras_keys(cls):
        return ("activation",)

    def _cell_formula(self):
        """The forward recurrence, one line (for ``describe``)."""
        return (f"SimpleRNN({self.units}): for each time step, h = {self.activation}"
                "(x_t·W + h·U + b); the next step sees h")
