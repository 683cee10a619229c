"""Cross-check: TensorFlow's Keras loads nncore-written .keras / .weights.h5 files.

Not part of the pytest suite (TensorFlow is never a test dependency).  Run it
with a TensorFlow venv's Python, naming the Python that has nncore:

    /opt/tfvenv/bin/python tests/tf_check_nncore_keras.py \\
        --nncore-python /path/to/venv/bin/python

It (1) runs itself under nncore's Python with ``--make DIR``: trains small
models in nncore, saves them as .keras / .weights.h5, records nncore's
predictions, and its predictions after one more epoch of training
(shuffle=False, no Dropout) from the saved state; then (2) under TensorFlow
loads each file with ``keras.models.load_model`` / ``load_weights`` and
compares predictions, and the one-more-epoch predictions (which only agree
if the optimizer state crossed over).  Without TensorFlow it says so and
exits 0.  Exit status 1 when a difference exceeds the tolerance.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-5          # float32 rounding of two differently ordered computations
TOL_TRAIN = 1e-4    # after an epoch of training in each framework


def make(folder):
    import nncore as keras
    L = keras.layers
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(3)
    out = {}
    x = rng.normal(size=(40, 3, 4)).astype("float32")
    y = rng.integers(0, 3, size=40)
    out["x"], out["y"] = x, y
    cases = {
        "adam_dropout": (lambda: [L.Flatten(), L.Dense(8, activation="relu"), L.Dropout(0.3),
                                  L.Activation("tanh"), L.Dense(3, activation="softmax")],
                         lambda: keras.optimizers.Adam(0.01), False),
        "adam_amsgrad": (lambda: [L.Flatten(), L.Dense(8, activation="relu"),
                                  L.Dense(3, activation="softmax")],
                         lambda: keras.optimizers.Adam(0.01, amsgrad=True), True),
        "rmsprop_centered": (lambda: [L.Flatten(), L.Dense(6, activation="sigmoid"),
                                      L.Dense(3, activation="softmax")],
                             lambda: keras.optimizers.RMSprop(0.01, momentum=0.5,
                                                              centered=True), True),
        "sgd_momentum": (lambda: [L.Flatten(), L.Dense(5, activation="tanh"),
                                  L.Dense(3, activation="softmax")],
                         lambda: keras.optimizers.SGD(0.05, momentum=0.9), True),
        "adagrad": (lambda: [L.Flatten(), L.Dense(5, activation="relu"),
                             L.Dense(3, activation="softmax")],
                    lambda: keras.optimizers.Adagrad(0.05), True),
        # recurrent layers: the samples are 3 time steps of 4 features
        "rnn_lstm_gru": (lambda: [L.LSTM(5, return_sequences=True, unit_forget_bias=False),
                                  L.GRU(4, reset_after=False, go_backwards=True),
                                  L.Dense(3, activation="softmax")],
                         lambda: keras.optimizers.RMSprop(0.01), True),
        "rnn_simple_gru": (lambda: [L.SimpleRNN(6, activation="relu", return_sequences=True),
                                    L.GRU(4), L.Dense(3, activation="softmax")],
                           lambda: keras.optimizers.Adam(0.01), True),
    }
    for name, (layers, opt, continue_training) in cases.items():
        m = keras.Sequential([keras.Input(shape=(3, 4))] + layers())
        m.compile(optimizer=opt(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
        m.save(os.path.join(folder, f"{name}.keras"))
        m.save_weights(os.path.join(folder, f"{name}.weights.h5"))
        out[f"{name}_pred"] = m.predict(x, verbose=0)
        if continue_training:
            m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
            out[f"{name}_after"] = m.predict(x, verbose=0)
    # compiled but never trained (optimizer not built), and never compiled
    for name, compiled in (("untrained", True), ("uncompiled", False)):
        m = keras.Sequential([keras.Input(shape=(3, 4)), L.Flatten(),
                              L.Dense(4, activation="relu"), L.Dense(3)])
        if compiled:
            m.compile(optimizer="rmsprop", loss="mse")
        m.save(os.path.join(folder, f"{name}.keras"))
        out[f"{name}_pred"] = m.predict(x, verbose=0)
    np.savez(os.path.join(folder, "nncore_predictions.npz"), **out)


def check(folder):
    import keras
    p = np.load(os.path.join(folder, "nncore_predictions.npz"))
    x, y = p["x"], p["y"]
    worst, failed = 0.0, []
    rows = []
    for key in sorted(p.files):
        if not key.endswith("_pred"):
            continue
        name = key[:-5]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = keras.models.load_model(os.path.join(folder, f"{name}.keras"))
        diff = float(np.abs(m.predict(x, verbose=0) - p[key]).max())
        notes = [str(w.message)[:120] for w in caught]
        row = [name, ".keras", diff]
        if os.path.exists(os.path.join(folder, f"{name}.weights.h5")):
            fresh = keras.models.load_model(os.path.join(folder, f"{name}.keras"),
                                            compile=False)
            fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
            fresh.load_weights(os.path.join(folder, f"{name}.weights.h5"))
            row.append(float(np.abs(fresh.predict(x, verbose=0) - p[key]).max()))
        else:
            row.append(None)
        after = p[f"{name}_after"] if f"{name}_after" in p.files else None
        if after is not None:
            m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
            row.append(float(np.abs(m.predict(x, verbose=0) - after).max()))
        else:
            row.append(None)
        row.append(notes)
        rows.append(row)
        for value, tol in ((row[2], TOL), (row[3], TOL), (row[4], TOL_TRAIN)):
            if value is not None:
                worst = max(worst, value) if tol == TOL else worst
                if value > tol:
                    failed.append(name)
    print(f"TensorFlow {__import__('tensorflow').__version__}, Keras {keras.__version__}")
    print(f"{'model':<18} {'load_model':>12} {'load_weights':>13} {'+1 epoch':>10}  warnings")
    for name, _, d, dw, da, notes in rows:
        fmt = lambda v: "-" if v is None else f"{v:.2e}"
        print(f"{name:<18} {fmt(d):>12} {fmt(dw):>13} {fmt(da):>10}  {len(notes)} {notes[:1]}")
    print(f"max |TF - nncore| on predictions: {worst:.3g} (tolerance {TOL})")
    if failed:
        print("FAILED:", sorted(set(failed)))
        return 1
    print("all equal within tolerance")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make", metavar="DIR", help="(internal) write the nncore files to DIR")
    ap.add_argument("--nncore-python", default=sys.executable,
                    help="Python that can import nncore (default: this one)")
    args = ap.parse_args()
    if args.make:
        make(args.make)
        return 0
    try:
        import tensorflow  # noqa: F401
        import keras  # noqa: F401
    except ImportError:
        print("skipped: TensorFlow is not installed in this Python")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        subprocess.run([args.nncore_python, os.path.abspath(__file__), "--make", folder],
                       check=True, env=env)
        return check(folder)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
