#!/usr/bin/env python3
"""Accuracy parity: the book's chapter-9 models trained in nncore and in
TensorFlow/Keras on the same data for the same epochs.

The issue asks that nncore's accuracies land within 3 points of TensorFlow's.
This driver writes one data set, then trains every model in a child process
per framework (``import nncore as keras`` / ``import keras`` on TensorFlow,
the same code), and prints a Markdown table of the validation accuracy of
each framework after the last epoch (and the best epoch), with the
difference.

Data: synthetic IMDB-like reviews with a sentiment signal
(``examples/ch9_synthetic_imdb.py``), processed as the book processes IMDB
(``load_data(num_words=200 or 500)`` + ``pad_sequences(maxlen=100)``): the
first ``--n`` sequences train, the next ``--n-val`` validate.  The initial
weights differ between the frameworks (each draws its own from seed 42), as
they would for a learner running the book in either: the comparison is of
what training reaches, not of bits.

Models (the book's 9-2 and 9-3, RMSprop(learning_rate), binary cross-entropy,
batch 64, Keras's default initializers):

  onehot      one-hot (100, 200) -> SimpleRNN(8) -> Dense(1, sigmoid)
  emb_rnn     Embedding(200, 16) -> SimpleRNN(8) -> Dense(1, sigmoid)
  lstm        Embedding(500, 16) -> LSTM(8) -> Dense(1, sigmoid)
  lstm_drop   Embedding(500, 16) -> LSTM(8, dropout=0.3) -> Dense(1, sigmoid)
  lstm2       Embedding(500, 16) -> LSTM(8, dropout=0.3, return_sequences=True)
              -> LSTM(8, dropout=0.3) -> Dense(1, sigmoid)
  gru         Embedding(500, 16) -> GRU(8) -> Dense(1, sigmoid)

Usage::

    python bench/rnn_parity.py                         # 8,000 + 2,000 sequences, 5 epochs, lr 1e-3
    python bench/rnn_parity.py --lr 1e-4 --epochs 20   # the book's learning rate
    python bench/rnn_parity.py --only lstm,gru --n 2000 --epochs 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "examples"))

MODELS = {
    "onehot": "one-hot (100, 200) → SimpleRNN(8)",
    "emb_rnn": "Embedding(200, 16) → SimpleRNN(8)",
    "lstm": "Embedding(500, 16) → LSTM(8)",
    "lstm_drop": "Embedding(500, 16) → LSTM(8, dropout=0.3)",
    "lstm2": "Embedding(500, 16) → LSTM(8, dropout=0.3, return_sequences=True) → LSTM(8, dropout=0.3)",
    "gru": "Embedding(500, 16) → GRU(8)",
}


def vocab_of(name):
    return 200 if name in ("onehot", "emb_rnn") else 500


def build(keras, name):
    """The book's model ``name`` (Sequential, not compiled)."""
    L = keras.layers
    model = keras.Sequential()
    if name == "onehot":
        model.add(keras.Input(shape=(100, 200)))
        model.add(L.SimpleRNN(8))
    else:
        model.add(keras.Input(shape=(100,)))
        model.add(L.Embedding(vocab_of(name), 16))
        if name == "emb_rnn":
            model.add(L.SimpleRNN(8))
        elif name == "lstm":
            model.add(L.LSTM(8))
        elif name == "lstm_drop":
            model.add(L.LSTM(8, dropout=0.3))
        elif name == "lstm2":
            model.add(L.LSTM(8, dropout=0.3, return_sequences=True))
            model.add(L.LSTM(8, dropout=0.3))
        elif name == "gru":
            model.add(L.GRU(8))
        else:
            raise ValueError(f"unknown model {name!r}")
    model.add(L.Dense(1, activation="sigmoid"))
    return model


def inputs(keras, name, x):
    """The model's input from padded word indices (one-hot for 'onehot', as the book)."""
    import numpy as np
    x = np.where(x < vocab_of(name), x, 2).astype("int32")
    return keras.utils.to_categorical(x, 200) if name == "onehot" else x


def import_keras(fw):
    if fw == "tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        return keras
    import nncore
    return nncore


def worker(args):
    import numpy as np
    res = {"framework": args.worker, "model": args.model, "status": "ok"}
    try:
        keras = import_keras(args.worker)
        with np.load(args.data) as f:
            x, y, xv, yv = f["x"], f["y"], f["xv"], f["yv"]
        keras.utils.set_random_seed(42)
        model = build(keras, args.model)
        if args.init:
            if args.worker == "nncore":
                model.save_weights(args.init)         # the start both frameworks share
            else:
                model.load_weights(args.init)
        # a fingerprint of the starting weights: equal in both with a shared init
        res["init_abs_sum"] = float(sum(np.abs(w).astype("float64").sum()
                                        for w in model.get_weights()))
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=args.lr),
                      loss="binary_crossentropy", metrics=["accuracy"])
        t0 = time.perf_counter()
        h = model.fit(inputs(keras, args.model, x), y, epochs=args.epochs, batch_size=64,
                      validation_data=(inputs(keras, args.model, xv), yv), verbose=0)
        res["fit_s"] = time.perf_counter() - t0
        res["val_accuracy"] = [float(v) for v in h.history["val_accuracy"]]
        res["accuracy"] = [float(v) for v in h.history["accuracy"]]
    except Exception as e:  # reported, never hidden
        res["status"] = "error"
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc()[-3000:]
    with open(args.result, "w") as f:
        json.dump(res, f)


def run(args, fw, py, model, data, init=None):
    if not os.path.exists(py):
        return {"status": "missing", "error": f"no interpreter {py}"}
    fd, result = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = dict(os.environ)
    if fw == "nncore":
        env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    cmd = [py, os.path.abspath(__file__), "--worker", fw, "--model", model, "--data", data,
           "--result", result, "--epochs", str(args.epochs), "--lr", str(args.lr)]
    if init:
        cmd += ["--init", init]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    try:
        with open(result) as f:
            return json.load(f)
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": "error", "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    finally:
        os.unlink(result)


def driver(args):
    import numpy as np
    import ch9_synthetic_imdb as synth
    models = args.only.split(",") if args.only else list(MODELS)
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"--only: unknown model {m!r} ({', '.join(MODELS)})")
    x, y = synth.padded_sequences(args.n + args.n_val, num_words=500, seed=args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.npz")
        np.savez(data, x=x[:args.n], y=y[:args.n], xv=x[args.n:], yv=y[args.n:])
        for m in models:
            # nncore first: it writes the initial weights TF then loads
            init = None if args.independent_init else os.path.join(tmp, f"{m}.weights.h5")
            r = {fw: run(args, fw, py, m, data, init)
                 for fw, py in (("nncore", args.nncore_python), ("tf", args.tf_python))}
            for fw, res in r.items():
                msg = (f"val acc {res['val_accuracy']}, fit {res['fit_s']:.1f} s, "
                       f"initial |w| sum {res['init_abs_sum']:.6f}"
                       if res["status"] == "ok" else res["error"])
                print(f"[{m}] {fw}: {msg}", file=sys.stderr, flush=True)
            rows.append((m, r))
    start = ("each framework's own initial weights (seed 42)" if args.independent_init
             else "the same initial weights in both (nncore's, loaded by TF)")
    L = [f"Validation accuracy after {args.epochs} epochs (best epoch in brackets), {start}, "
         f"{args.n:,} training + {args.n_val:,} validation synthetic sequences "
         f"(`examples/ch9_synthetic_imdb.py`, seed {args.seed}), RMSprop({args.lr:g}), "
         f"batch 64; `bench/rnn_parity.py --n {args.n} --n-val {args.n_val} "
         f"--epochs {args.epochs} --lr {args.lr:g}"
         f"{' --independent-init' if args.independent_init else ''}`.", "",
         "| model | nncore | TensorFlow 2.21 | difference (points) |",
         "| --- | ---: | ---: | ---: |"]
    worst = 0.0
    for m, r in rows:
        a, b = r["nncore"], r["tf"]
        if a["status"] == "ok" and b["status"] == "ok":
            d = 100 * (a["val_accuracy"][-1] - b["val_accuracy"][-1])
            worst = max(worst, abs(d))
            L.append(f"| {MODELS[m]} | {a['val_accuracy'][-1]:.4f} ({max(a['val_accuracy']):.4f}) "
                     f"| {b['val_accuracy'][-1]:.4f} ({max(b['val_accuracy']):.4f}) | {d:+.1f} |")
        else:
            L.append(f"| {MODELS[m]} | {a.get('error', 'ok')[:60]} | {b.get('error', 'ok')[:60]} | – |")
    L.append("")
    L.append(f"Largest difference: {worst:.1f} points (the issue's bound: 3).")
    print("\n".join(L))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description="chapter-9 accuracy parity, nncore vs TF")
    p.add_argument("--n", type=int, default=8000)
    p.add_argument("--n-val", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", default=None)
    p.add_argument("--independent-init", action="store_true",
                   help="each framework draws its own initial weights")
    p.add_argument("--init", help=argparse.SUPPRESS)
    p.add_argument("--nncore-python", default=sys.executable)
    p.add_argument("--tf-python", default="/work/tfvenv/bin/python")
    p.add_argument("--worker", choices=["nncore", "tf"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
