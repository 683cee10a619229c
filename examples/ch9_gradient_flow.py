"""Chapter 9: watch the gradient vanish along a sequence -- SimpleRNN against LSTM and GRU.

No framework shows this out of the box.  nncore's recurrent layers record,
after every backward pass, ``layer.state_gradient_norms``: ``||dL/dh_t||``,
how much of the loss's gradient still reaches the hidden state at step ``t``.
This script feeds one batch to three small models that differ only in their
recurrent layer, runs one backward pass without changing any weight
(``keras.utils.trace``), and plots the three curves on a log scale
(``keras.utils.plot_state_gradients``) into ``ch9_gradient_flow.png``.

The batch: 64 sequences of 100 steps with 16 features each, drawn from a
standard normal distribution -- the scale an embedding's vectors reach once
trained (a fresh ``Embedding`` starts at +-0.05, where the SimpleRNN's state
stays small, its tanh stays in its linear part and hardly anything vanishes:
run with ``--input-scale 0.05`` to see it).  Every layer has Keras's default
initializers, from the same seed.

What to look for: each step back multiplies the SimpleRNN's gradient by
``tanh'(z_t) * U`` -- below 1 once the units saturate -- so its curve is a
steep straight line.  The LSTM's cell state carries the gradient back through
the forget gate ``f`` alone (about sigmoid(1) = 0.73 at Keras's
initialization, and training moves it towards 1 where memory pays), so its
line is flatter.  ``docs/chapter9_walkthrough.md`` explains the equations.

Options (environment variables as for the other examples)::

    --out DIR          NNCORE_EXAMPLE_OUT   folder for the PNG (default: a new temporary folder)
    --input-scale S    standard deviation of the inputs (default 1.0)
    --seed N           seed of the weights and the batch (default 42)

Run:  python examples/ch9_gradient_flow.py
"""
import argparse
import os
import tempfile

import numpy as np

import nncore as keras

TIMESTEPS, FEATURES, BATCH = 100, 16, 64


def state_gradients(cell_name, x, y, seed):
    """One backward pass of Input -> <cell>(8) -> Dense(1, sigmoid) on (x, y);
    returns the recurrent layer, whose state_gradient_norms are then set."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(TIMESTEPS, FEATURES)),
        getattr(keras.layers, cell_name)(8),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
                  loss="binary_crossentropy")
    keras.utils.trace(model, x, y)        # forward + backward, no weight changes
    return model.layers[0]


def main(argv=None):
    p = argparse.ArgumentParser(description="SimpleRNN vs LSTM vs GRU: ||dL/dh_t|| per step")
    p.add_argument("--out", default=os.environ.get("NNCORE_EXAMPLE_OUT"))
    p.add_argument("--input-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    out = a.out or tempfile.mkdtemp(prefix="nncore-ch9-")
    os.makedirs(out, exist_ok=True)

    rng = np.random.default_rng(a.seed)
    x = (a.input_scale * rng.standard_normal((BATCH, TIMESTEPS, FEATURES))).astype("float32")
    y = rng.integers(0, 2, BATCH).astype("float32")

    layers = {name: state_gradients(name, x, y, a.seed) for name in ("SimpleRNN", "LSTM", "GRU")}
    norms = {name: layer.state_gradient_norms for name, layer in layers.items()}
    for name, n in norms.items():
        # the average factor per step back, from the last step to the first
        per_step = (n[0] / n[-1]) ** (1.0 / (len(n) - 1))
        print(f"{name:9s} ||dL/dh_t|| at t=99: {n[-1]:.3g}, t=50: {n[50]:.3g}, t=0: {n[0]:.3g}"
              f"  (x{per_step:.3f} per step back)")

    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return norms
    fig = keras.utils.plot_state_gradients(
        layers, title=f"||dL/dh_t|| for one batch, inputs of scale {a.input_scale:g}")
    path = os.path.join(out, "ch9_gradient_flow.png")
    fig.savefig(path, dpi=100)
    print("saved", path)
    return norms


if __name__ == "__main__":
    main()
