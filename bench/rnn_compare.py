#!/usr/bin/env python3
"""The book's chapter-9 models side by side: nncore vs TensorFlow/Keras vs PyTorch.

Like ``bench/compare.py`` this file is both the *driver* and the *worker*: the
driver makes the data once, then starts ``<interpreter> rnn_compare.py
--worker ...`` for every (model, framework variant) in its own process (so
each fit has its own peak RSS), interleaving the frameworks model by model so
that a slow phase of the shared machine hits all of them alike, and prints a
Markdown table with the ratios of that same run.

Models (the book's 9-2 and 9-3; RMSprop(learning_rate=1e-4), binary
cross-entropy, metrics accuracy, batch 64, sequences of 100 steps):

  onehot   SimpleRNN(8) on one-hot input (100, 200) -> Dense(1, sigmoid);
           the input is ``keras.utils.to_categorical(seq)`` as the book makes
           it (float64, 20,000 x 100 x 200 = 3.2 GB at full size)
  emb_rnn  Embedding(200, 16) -> SimpleRNN(8) -> Dense(1, sigmoid)
  lstm     Embedding(500, 16) -> LSTM(8) -> Dense(1, sigmoid)
  gru      Embedding(500, 16) -> GRU(8) -> Dense(1, sigmoid)

Data: synthetic reviews with a sentiment signal (``examples/ch9_synthetic_imdb.py``:
Zipf-distributed background words, 6 % of words are sentiment words on the
label's side with probability 0.8), processed as ``imdb.load_data(num_words=...)``
+ ``pad_sequences(maxlen=100)`` would; so the models learn something (the
epoch's training accuracy is reported) instead of timing random labels.

Each worker: a warm-up ``fit`` of one epoch on 640 sequences (graph tracing,
first calls), then ``fit(epochs=E)`` on all ``n`` sequences with a callback
that times every epoch (the table shows the fastest epoch), then ``predict``
(batch 64) on up to 5,000 sequences twice, the second timed (sequences/s),
then ``ru_maxrss`` of the process (peak RSS: data + model + fit).

Frameworks: nncore (this checkout); TensorFlow through ``/work/tfvenv`` with
its default threads and with intra/inter-op threads 1 (the table keeps its
faster setting, per model); PyTorch eager, also with its default threads and
with 1 thread (the faster is kept: under CPU contention its default OpenMP
threads spin and one run here took 50x longer than the 1-thread one) (``nn.RNN``/``nn.LSTM``/``nn.GRU``,
batch_first, ``nn.Embedding``, ``nn.Linear`` and ``BCEWithLogitsLoss``,
``RMSprop(lr=1e-4, alpha=0.9, eps=1e-7)`` = Keras's rho and epsilon; the loop
also counts accuracy as Keras's fit does) through ``/work/torchvenv``.

Usage::

    python bench/rnn_compare.py                          # 20,000 sequences, 2 timed epochs
    python bench/rnn_compare.py --n 2048 --epochs 1      # a quick run
    python bench/rnn_compare.py --only lstm,gru --frameworks nncore,torch --torch-default-only
    python bench/rnn_compare.py --out /tmp/rnn.md --json /tmp/rnn.json

A framework whose interpreter is absent is reported as "missing", a worker
that fails as "error: ..."; nothing is faked.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "examples"))

MODELS = {
    "onehot": dict(cell="simple_rnn", vocab=200, onehot=True,
                   text="one-hot (100, 200) → SimpleRNN(8) → Dense(1, sigmoid)"),
    "emb_rnn": dict(cell="simple_rnn", vocab=200, onehot=False,
                    text="Embedding(200, 16) → SimpleRNN(8) → Dense(1, sigmoid)"),
    "lstm": dict(cell="lstm", vocab=500, onehot=False,
                 text="Embedding(500, 16) → LSTM(8) → Dense(1, sigmoid)"),
    "gru": dict(cell="gru", vocab=500, onehot=False,
                text="Embedding(500, 16) → GRU(8) → Dense(1, sigmoid)"),
}
BATCH = 64
STEPS = 100
WARMUP_N = 640
PREDICT_N = 5000


class FrameworkMissing(Exception):
    pass


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def load_data(path, vocab):
    """The driver's padded sequences for a vocabulary of ``vocab`` words: the
    file holds them for 500 words; words >= ``vocab`` become the OOV index 2,
    as ``imdb.load_data(num_words=vocab)`` does."""
    import numpy as np
    with np.load(path) as f:
        x, y = f["x"], f["y"]
    return np.where(x < vocab, x, 2).astype("int32"), y


# ==========================================================================
# Workers
# ==========================================================================

def keras_worker(fw, args, res):
    """nncore and TF/Keras run this same Keras-3 code on ``keras``."""
    import numpy as np
    if fw == "tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
        except ImportError as e:
            raise FrameworkMissing(f"{type(e).__name__}: {e}")
        if args.threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        import keras
        res["versions"] = {"tensorflow": tf.__version__, "keras": keras.__version__}
    else:
        try:
            import nncore as keras
        except ImportError as e:
            raise FrameworkMissing(f"{type(e).__name__}: {e}")
        res["versions"] = {"nncore": getattr(keras, "__version__", "?")}
    spec = MODELS[args.model]
    x, y = load_data(args.data, spec["vocab"])
    keras.utils.set_random_seed(42)
    model = keras.Sequential()
    if spec["onehot"]:
        x = keras.utils.to_categorical(x)          # float64, as the book
        model.add(keras.Input(shape=(STEPS, spec["vocab"])))
    else:
        model.add(keras.Input(shape=(STEPS,)))
        model.add(keras.layers.Embedding(spec["vocab"], 16))
    cell = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
            "gru": keras.layers.GRU}[spec["cell"]]
    model.add(cell(8))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
                  loss="binary_crossentropy", metrics=["accuracy"])

    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    t0 = time.perf_counter()
    model.fit(x[:WARMUP_N], y[:WARMUP_N], batch_size=BATCH, epochs=1, verbose=0)
    res["warmup_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hist = model.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0,
                     callbacks=[EpochTimer()])
    # the whole call: the epochs and what fit does with the input first
    # (nncore: its one pass over the input; TF: making its dataset)
    res["fit_s"] = time.perf_counter() - t0
    res["epoch_times"] = times
    res["train_acc"] = float(hist.history["accuracy"][-1])
    res["maxrss_fit_mb"] = _maxrss_mb()
    xp = x[:PREDICT_N]
    model.predict(xp, batch_size=BATCH, verbose=0)
    t0 = time.perf_counter()
    p = np.asarray(model.predict(xp, batch_size=BATCH, verbose=0))
    res["predict_per_s"] = len(xp) / (time.perf_counter() - t0)
    res["predict_acc"] = float(((p[:, 0] > 0.5) == y[:PREDICT_N]).mean())


def torch_worker(args, res):
    import numpy as np
    try:
        import torch
        from torch import nn
    except ImportError as e:
        raise FrameworkMissing(f"{type(e).__name__}: {e}")
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    res["versions"] = {"torch": torch.__version__}
    res["threads"] = torch.get_num_threads()
    torch.manual_seed(42)
    spec = MODELS[args.model]
    x, y = load_data(args.data, spec["vocab"])
    if spec["onehot"]:
        # the same one-hot input in torch's dtype (float32; nn.RNN takes no float64
        # with float32 weights)
        X = torch.nn.functional.one_hot(torch.from_numpy(x).long(), spec["vocab"]).float()
    else:
        X = torch.from_numpy(x).long()
    Y = torch.from_numpy(y.astype("float32"))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            feat = spec["vocab"]
            self.emb = None
            if not spec["onehot"]:
                self.emb = nn.Embedding(spec["vocab"], 16)
                nn.init.uniform_(self.emb.weight, -0.05, 0.05)   # Keras's default
                feat = 16
            rnn = {"simple_rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[spec["cell"]]
            self.rnn = rnn(feat, 8, batch_first=True)
            self.out = nn.Linear(8, 1)

        def forward(self, xb):
            if self.emb is not None:
                xb = self.emb(xb)
            seq, _ = self.rnn(xb)
            return self.out(seq[:, -1]).squeeze(1)     # logits

    model = Net()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4, alpha=0.9, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()

    def epoch(Xe, Ye):
        model.train()
        n = len(Xe)
        perm = torch.randperm(n)
        correct = torch.zeros((), dtype=torch.int64)
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = Xe[idx], Ye[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                correct += ((logits > 0) == (yb > 0.5)).sum()
        return int(correct) / n

    t0 = time.perf_counter()
    epoch(X[:WARMUP_N], Y[:WARMUP_N])
    res["warmup_s"] = time.perf_counter() - t0
    times = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        acc = epoch(X, Y)
        times.append(time.perf_counter() - t0)
    res["epoch_times"] = times
    res["train_acc"] = acc
    res["maxrss_fit_mb"] = _maxrss_mb()

    def predict(Xp):
        model.eval()
        outs = []
        with torch.inference_mode():
            for i in range(0, len(Xp), BATCH):
                outs.append(torch.sigmoid(model(Xp[i:i + BATCH])))
        return torch.cat(outs).numpy()

    Xp = X[:PREDICT_N]
    predict(Xp)
    t0 = time.perf_counter()
    p = predict(Xp)
    res["predict_per_s"] = len(Xp) / (time.perf_counter() - t0)
    res["predict_acc"] = float(((p > 0.5) == y[:PREDICT_N]).mean())


def worker_main(args):
    res = {"framework": args.worker, "model": args.model, "status": "ok"}
    try:
        if args.worker == "torch":
            torch_worker(args, res)
        else:
            keras_worker(args.worker, args, res)
    except FrameworkMissing as e:
        res["status"], res["error"] = "missing", str(e)
    except Exception as e:  # reported, never hidden
        res["status"] = "error"
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc()[-3000:]
    with open(args.result, "w") as f:
        json.dump(res, f)
    return 0


# ==========================================================================
# Driver
# ==========================================================================

def variants(args):
    """(label, framework, python, threads) in run order."""
    out = []
    for fw in [f.strip() for f in args.frameworks.split(",") if f.strip()]:
        if fw == "nncore":
            out.append(("nncore", fw, args.nncore_python, None))
        elif fw == "tf":
            out.append(("tf", fw, args.tf_python, None))
            out.append(("tf (1 thread)", fw, args.tf_python, 1))
        elif fw == "torch":
            out.append(("torch", fw, args.torch_python, None))
            if not args.torch_default_only:
                out.append(("torch (1 thread)", fw, args.torch_python, 1))
        else:
            raise SystemExit(f"unknown framework {fw!r} (nncore, tf, torch)")
    return out


def run_worker(args, label, fw, py, threads, model, data):
    base = {"framework": fw, "label": label, "model": model}
    if not py or not os.path.exists(py):
        return dict(base, status="missing", error=f"no interpreter {py!r}")
    fd, result = tempfile.mkstemp(prefix="rnncmp-", suffix=".json")
    os.close(fd)
    cmd = [py, os.path.abspath(__file__), "--worker", fw, "--model", model,
           "--data", data, "--result", result, "--epochs", str(args.epochs)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ)
    if fw == "nncore":
        env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
    if fw == "tf":
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("CUDA_VISIBLE_DEVICES", "")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.unlink(result)
        return dict(base, status="error", error=f"timeout after {args.timeout} s")
    try:
        with open(result) as f:
            res = json.load(f)
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        res = dict(base, status="error", error=f"worker exit {proc.returncode}: "
                   + " | ".join(tail))
    finally:
        if os.path.exists(result):
            os.unlink(result)
    res.update(base, process_wall_s=time.perf_counter() - t0)
    return res


def _ok(r):
    return r is not None and r.get("status") == "ok"


def _best(rs, key, pick):
    ok = [r for r in rs if _ok(r)]
    if not ok:
        return None
    return pick(ok, key=key)


def epoch_s(r):
    return min(r["epoch_times"])


def render(args, results, started, elapsed):
    """The Markdown table (ratios pair by pair, from this run only)."""
    L = []
    L.append(f"Chapter-9 models, {args.n:,} synthetic sequences of {STEPS} steps "
             f"(`examples/ch9_synthetic_imdb.py`), batch {BATCH}, RMSprop(1e-4), binary "
             f"cross-entropy; fastest of {args.epochs} timed epoch(s) after a warm-up; "
             f"`bench/rnn_compare.py --n {args.n} --epochs {args.epochs}`, "
             f"{started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min, "
             f"{platform.machine()} with {os.cpu_count()} cores.")
    L.append("")
    L.append("| model | nncore s/epoch | TensorFlow best (default / 1 thread) | "
             "PyTorch eager best (default / 1 thread) | predict seq/s nncore / torch | peak RSS MB nncore / TF |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for m in args.models:
        rs = results[m]
        nn_ = rs.get("nncore")
        tfs = [rs.get("tf"), rs.get("tf (1 thread)")]
        tf_best = _best(tfs, epoch_s, min)
        tors = [rs.get("torch"), rs.get("torch (1 thread)")]
        tor = _best(tors, epoch_s, min)

        def cell(r, label=None):
            if r is None:
                return "–"
            if not _ok(r):
                return f"{r['status']}: {r.get('error', '')[:60]}"
            t = f"{epoch_s(r):.2f}"
            if _ok(nn_) and r is not nn_:
                t += f" ({epoch_s(r) / epoch_s(nn_):.1f}×)"
            if label:
                t += f" [{label}]"
            return t

        tf_cell = cell(tf_best, None if tf_best is None else
                       ("1 thread" if tf_best.get("label", "").endswith("(1 thread)")
                        else "default"))
        if not tf_best:
            tf_cell = cell(next((r for r in tfs if r is not None), None))
        pr = (f"{nn_['predict_per_s']:,.0f} / {tor['predict_per_s']:,.0f} "
              f"({nn_['predict_per_s'] / tor['predict_per_s']:.1f}×)"
              if _ok(nn_) and _ok(tor) else "–")
        tf_rss = _best(tfs, lambda r: r["maxrss_fit_mb"], min)
        rss = (f"{nn_['maxrss_fit_mb']:,.0f} / {tf_rss['maxrss_fit_mb']:,.0f}"
               if _ok(nn_) and tf_rss else "–")
        tor_cell = cell(tor, None if tor is None else
                        ("1 thread" if tor.get("label", "").endswith("(1 thread)")
                         else "default"))
        if not tor:
            tor_cell = cell(next((r for r in tors if r is not None), None))
        L.append(f"| {MODELS[m]['text']} | {cell(nn_)} | {tf_cell} | {tor_cell} | "
                 f"{pr} | {rss} |")
    L.append("")
    L.append(f"The whole timed `fit(epochs={args.epochs})` call, with what each framework "
             "does to the input before the first epoch (nncore: one pass over it; "
             "TensorFlow: its dataset), s:")
    L.append("")
    for m in args.models:
        rs = results[m]
        parts = [f"{label} {r['fit_s']:.2f}" for label, r in rs.items()
                 if _ok(r) and "fit_s" in r]
        if parts:
            L.append(f"* {m}: " + ", ".join(parts))
    L.append("")
    L.append("Ratios are the peer's epoch time over nncore's, measured in this run. "
             "Training accuracy of the last epoch, per framework:")
    L.append("")
    for m in args.models:
        parts = []
        for label, r in results[m].items():
            if _ok(r):
                parts.append(f"{label} {r['train_acc']:.3f}")
            else:
                parts.append(f"{label} {r['status']}")
        L.append(f"* {m}: " + ", ".join(parts))
    vers = {}
    for rs in results.values():
        for r in rs.values():
            if _ok(r):
                vers.update(r.get("versions", {}))
    L.append("")
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(vers.items())) + ".")
    return "\n".join(L) + "\n"


def driver_main(args):
    import numpy as np
    import ch9_synthetic_imdb as synth
    args.models = [m.strip() for m in args.only.split(",")] if args.only else list(MODELS)
    for m in args.models:
        if m not in MODELS:
            raise SystemExit(f"--only: unknown model {m!r} (choose from {', '.join(MODELS)})")
    started = _dt.datetime.now(_dt.timezone.utc)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnncmp-") as tmp:
        data = os.path.join(tmp, "seq.npz")
        x, y = synth.padded_sequences(args.n, num_words=500, maxlen=STEPS, seed=args.seed)
        np.savez(data, x=x, y=y)
        results = {m: {} for m in args.models}
        for m in args.models:
            for label, fw, py, threads in variants(args):
                r = run_worker(args, label, fw, py, threads, m, data)
                results[m][label] = r
                msg = (f"min epoch {epoch_s(r):.2f} s, predict {r['predict_per_s']:,.0f}/s, "
                       f"RSS {r['maxrss_fit_mb']:,.0f} MB, acc {r['train_acc']:.3f}"
                       if _ok(r) else f"{r['status']}: {r.get('error')}")
                print(f"[{m:8s}] {label:16s} {msg}", file=sys.stderr, flush=True)
    table = render(args, results, started, time.perf_counter() - t_start)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description="chapter-9 RNN benchmark: nncore vs TF vs torch")
    p.add_argument("--n", type=int, default=20000, help="training sequences (default 20,000)")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per worker (default 2)")
    p.add_argument("--only", default=None,
                   help="comma list of models: " + ", ".join(MODELS))
    p.add_argument("--frameworks", default="nncore,tf,torch")
    p.add_argument("--seed", type=int, default=0, help="data seed")
    p.add_argument("--nncore-python", default=sys.executable)
    p.add_argument("--tf-python", default="/work/tfvenv/bin/python")
    p.add_argument("--torch-python", default="/work/torchvenv/bin/python")
    p.add_argument("--torch-default-only", action="store_true",
                   help="run torch with its default threads only (not also with 1 thread)")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--out", default=None, help="also write the Markdown table here")
    p.add_argument("--json", default=None, help="write every worker's raw result here")
    p.add_argument("--worker", choices=["nncore", "tf", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.n < 1:
        p.error("--epochs and --n must be >= 1")
    return worker_main(args) if args.worker else driver_main(args)


if __name__ == "__main__":
    sys.exit(main())
