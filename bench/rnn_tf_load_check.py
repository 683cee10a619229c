#!/usr/bin/env python3
"""Cross-check (not in the test suite): the book's chapter-9 models, trained
and saved as ``.keras`` by nncore (as its ``best-*.keras`` checkpoints are),
load in TensorFlow's Keras with equal predictions.

    python3 bench/rnn_tf_load_check.py            # runs both halves

Under nncore's Python it trains each model of ``bench/rnn_parity.py`` for one
epoch on 512 synthetic sequences, saves it with ``model.save('<name>.keras')``
and records its predictions on 256 other sequences; then it runs itself under
TensorFlow's Python (``--tf-python``), which loads every file with
``keras.models.load_model`` and predicts the same sequences.  It prints the
largest difference per model; exit status 1 when one exceeds float32
round-off (1e-5).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "examples"))
TOL = 1e-5


def make(folder):
    if REPO not in sys.path:      # this checkout's nncore, as bench/compare.py's workers
        sys.path.insert(0, REPO)
    import nncore as keras
    import ch9_synthetic_imdb as synth
    from rnn_parity import MODELS, build, inputs
    x, y = synth.padded_sequences(768, num_words=500, seed=7)
    saved = {}
    for name in MODELS:
        keras.utils.set_random_seed(42)
        model = build(keras, name)
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
                      loss="binary_crossentropy", metrics=["accuracy"])
        model.fit(inputs(keras, name, x[:512]), y[:512], epochs=1, batch_size=64, verbose=0)
        path = os.path.join(folder, f"best-{name}-model.keras")
        model.save(path)
        np.save(os.path.join(folder, f"{name}.npy"),
                model.predict(inputs(keras, name, x[512:]), verbose=0))
        saved[name] = path
    np.save(os.path.join(folder, "x.npy"), x[512:])
    return saved


def check(folder):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from rnn_parity import MODELS, inputs
    x = np.load(os.path.join(folder, "x.npy"))
    out = {}
    for name in MODELS:
        model = keras.models.load_model(os.path.join(folder, f"best-{name}-model.keras"))
        got = np.asarray(model.predict(inputs(keras, name, x), verbose=0))
        want = np.load(os.path.join(folder, f"{name}.npy"))
        out[name] = float(np.max(np.abs(got - want)))
    print(json.dumps(out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tf-python", default="/work/tfvenv/bin/python")
    p.add_argument("--check", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.check:
        check(a.check)
        return 0
    if not os.path.exists(a.tf_python):
        print(f"no TensorFlow Python at {a.tf_python}: nothing checked")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        make(tmp)
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
        proc = subprocess.run([a.tf_python, os.path.abspath(__file__), "--check", tmp],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            return 1
        diffs = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = 0
    for name, d in diffs.items():
        ok = d <= TOL
        bad += not ok
        print(f"{name:10s} max |TF prediction - nncore prediction| = {d:.2e}  "
              f"{'ok' if ok else 'DIFFERENT'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
