#!/usr/bin/env python3
"""Framework comparison: nncore vs TensorFlow/Keras vs PyTorch on Fashion-MNIST.

The three frameworks live in different virtual environments, so this file is
both the *driver* and the *worker*:

* driver (default): for each repetition, for each workload, for each framework
  variant, it starts ``<interpreter> compare.py --worker ...`` as a subprocess
  (so every fit has its own process and its own peak RSS), collects the JSON
  the worker writes, and finally renders ``bench/RESULTS.md``.  Frameworks are
  interleaved (rep 1: nncore, tf, torch; rep 2: nncore, tf, torch; ...) so that
  slow phases of a noisy shared machine hit all of them alike.
* worker (``--worker nncore|tf|torch``): loads Fashion-MNIST from the IDX .gz
  files with gzip + numpy, builds the workload, and measures

  - the warm-up epoch: ``model.fit(..., epochs=1)`` (includes graph tracing /
    first-call costs) -- reported as "1st epoch";
  - the timed epoch: a second ``model.fit(..., epochs=1)`` on the same model,
    i.e. the time of one epoch after a 1-epoch warm-up;
  - ``evaluate`` and ``predict`` on the 12,000 validation samples (each
    called twice, the second call is timed), in samples/s;
  - peak RSS (``ru_maxrss`` of the worker process) right after the fits.

nncore and TF/Keras run *the same function* (``keras_worker``) with the module
passed in: ``import nncore as keras`` versus ``import keras`` (TensorFlow
backend).  The torch worker is an equivalent eager loop (``nn.Sequential``,
``CrossEntropyLoss`` on logits, Keras' default optimizer hyper-parameters,
Glorot-uniform kernels and zero biases like Keras, batching by an index
permutation each epoch).

Workloads (train = first 48,000 training images, validation = last 12,000,
x/255 float32, loss sparse categorical cross-entropy, metrics accuracy):

  W1          Flatten -> Dense(10, softmax)                     rmsprop  b32
  W2          784 -> Dense(100, sigmoid) -> Dense(10, softmax)  rmsprop  b32
  W3          Flatten -> Dense(100, relu) -> Dense(10, softmax) rmsprop  b32
  W3-sgd      W3 with sgd                                               b32
  W3-adagrad  W3 with adagrad                                           b32
  W4          W3 + Dropout(0.3), adam, validation_data each epoch       b32
  W5          784 -> Dense(1024, relu) x2 -> Dense(10, softmax) adam     b256
  W6          the book's chapter-8 CNN (input 28x28x1):                 adam     b32
              Conv2D(32, 3, relu, same) -> MaxPooling2D(2) -> Conv2D(64, 3, relu,
              same) -> MaxPooling2D(2) -> Flatten -> Dense(100, relu) ->
              Dropout(0.4) -> Dense(10, softmax); torch: the same in NCHW
              (nn.Conv2d padding=1, which is Keras's 'same' for 3x3 stride 1)

Usage::

    python bench/compare.py --quick                  # smoke run, a minute
    python bench/compare.py                          # all workloads, 3 reps
    python bench/compare.py -w W3 --reps 5 --tf-threads both
    python bench/compare.py --frameworks tf,torch --out /tmp/R.md
    python bench/compare.py -w W6 --n-train 9600     # the CNN on a fifth of an epoch

The book's chapter-9 recurrent models (IMDB-like sequences, not Fashion-MNIST)
have their own driver with the same design: ``bench/rnn_compare.py``; its
table goes into ``bench/RESULTS.md`` as well.

A framework whose interpreter or module is absent is reported as "missing";
a worker that fails is reported as "error: ..." -- nothing is ever faked.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import json
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data",
                                             "fashion-mnist"))

N_TRAIN = 48_000          # first 48k of the 60k training images
N_VAL = 12_000            # last 12k
QUICK_TRAIN = 2_048       # --quick: 64 steps at batch 32
QUICK_VAL = 1_024

# name: layer spec.  "flatten": input is (28, 28) + Flatten, else (784,).
WORKLOADS = {
    "W1": dict(flatten=True, hidden=[], optimizer="rmsprop", batch=32),
    "W2": dict(flatten=False, hidden=[(100, "sigmoid")], optimizer="rmsprop",
               batch=32),
    "W3": dict(flatten=True, hidden=[(100, "relu")], optimizer="rmsprop",
               batch=32),
    "W3-sgd": dict(flatten=True, hidden=[(100, "relu")], optimizer="sgd",
                   batch=32),
    "W3-adagrad": dict(flatten=True, hidden=[(100, "relu")],
                       optimizer="adagrad", batch=32),
    "W4": dict(flatten=True, hidden=[(100, "relu")], dropout=0.3,
               optimizer="adam", batch=32, validation=True),
    "W5": dict(flatten=False, hidden=[(1024, "relu"), (1024, "relu")],
               optimizer="adam", batch=256),
    "W6": dict(cnn=True, flatten=False, hidden=[(100, "relu")], dropout=0.4,
               optimizer="adam", batch=32),
}


def describe_workload(name):
    s = WORKLOADS[name]
    if s.get("cnn"):
        return ("Input(28x28x1) → Conv2D(32, 3, relu, same) → MaxPooling2D(2) → "
                "Conv2D(64, 3, relu, same) → MaxPooling2D(2) → Flatten → Dense(100, relu) → "
                "Dropout(0.4) → Dense(10, softmax); adam, batch 32 (the book's chapter 8)")
    parts = ["Flatten(28x28)" if s["flatten"] else "Input(784)"]
    for units, act in s["hidden"]:
        parts.append(f"Dense({units}, {act})")
        if s.get("dropout"):
            parts.append(f"Dropout({s['dropout']})")
    parts.append("Dense(10, softmax)")
    extra = ", validation_data each epoch" if s.get("validation") else ""
    return f"{' → '.join(parts)}; {s['optimizer']}, batch {s['batch']}{extra}"


# ==========================================================================
# Worker side
# ==========================================================================

def read_idx_gz(path):
    """Read one IDX file (optionally gzipped) into a numpy array."""
    import numpy as np
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4",
             0x0D: ">f4", 0x0E: ">f8"}[raw[2]]
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big")
                  for i in range(ndim))
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    return data.reshape(shape)


def load_fashion_mnist(data_dir, quick, n_train=None):
    """(x_train, y_train, x_val, y_val): x float32 in [0, 1], (n, 28, 28)."""
    import numpy as np
    x = read_idx_gz(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    y = read_idx_gz(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    x = x.astype(np.float32) / np.float32(255.0)
    y = y.astype(np.int64)
    x_tr, y_tr = x[:N_TRAIN], y[:N_TRAIN]
    x_va, y_va = x[N_TRAIN:], y[N_TRAIN:]
    if quick:
        x_tr, y_tr = x_tr[:QUICK_TRAIN], y_tr[:QUICK_TRAIN]
        x_va, y_va = x_va[:QUICK_VAL], y_va[:QUICK_VAL]
    if n_train:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    return (np.ascontiguousarray(x_tr), y_tr,
            np.ascontiguousarray(x_va), y_va)


def _rss_now_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


class FrameworkMissing(Exception):
    pass


def keras_worker(module_name, wl, args, res):
    """Shared by nncore and TF/Keras: the same Keras-3 code on ``keras``."""
    if module_name == "tf":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
        except ImportError as e:
            raise FrameworkMissing(f"{type(e).__name__}: {e}")
        if args.threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        import keras
        res["versions"] = {"tensorflow": tf.__version__,
                           "keras": keras.__version__,
                           "keras_backend": keras.backend.backend()}
        res["threads"] = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    else:
        try:
            import nncore as keras
        except ImportError as e:
            raise FrameworkMissing(f"{type(e).__name__}: {e}")
        res["versions"] = {"nncore": getattr(keras, "__version__", "?")}
        res["threads"] = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    import numpy as np
    res["versions"]["numpy"] = np.__version__

    spec = WORKLOADS[wl]
    x_tr, y_tr, x_va, y_va = load_fashion_mnist(args.data, args.quick, args.n_train)
    if spec.get("cnn"):
        x_tr = x_tr.reshape(len(x_tr), 28, 28, 1)
        x_va = x_va.reshape(len(x_va), 28, 28, 1)
    elif not spec["flatten"]:
        x_tr = x_tr.reshape(len(x_tr), 784)
        x_va = x_va.reshape(len(x_va), 784)
    seed = getattr(getattr(keras, "utils", None), "set_random_seed", None)
    if seed is not None:
        seed(0)

    layers = [keras.Input(shape=(28, 28) if spec["flatten"] else (784,))]
    if spec.get("cnn"):
        layers = [keras.Input(shape=(28, 28, 1)),
                  keras.layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
                  keras.layers.MaxPooling2D(2),
                  keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu",
                                      padding="same"),
                  keras.layers.MaxPooling2D(2),
                  keras.layers.Flatten()]
    if spec["flatten"]:
        layers.append(keras.layers.Flatten())
    for units, act in spec["hidden"]:
        layers.append(keras.layers.Dense(units, activation=act))
        if spec.get("dropout"):
            layers.append(keras.layers.Dropout(spec["dropout"]))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer=spec["optimizer"],
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    bs = spec["batch"]
    fit_kw = dict(batch_size=bs, epochs=1, verbose=0)
    if spec.get("validation"):
        fit_kw["validation_data"] = (x_va, y_va)

    res["rss_before_fit_kb"] = _rss_now_kb()
    t0 = time.perf_counter()
    model.fit(x_tr, y_tr, **fit_kw)                      # warm-up epoch
    t1 = time.perf_counter()
    hist = model.fit(x_tr, y_tr, **fit_kw)               # timed epoch
    t2 = time.perf_counter()
    res["maxrss_fit_kb"] = _maxrss_kb()
    res["first_epoch_s"] = t1 - t0
    res["epoch_s"] = t2 - t1
    h = getattr(hist, "history", {}) or {}
    res["train_acc"] = _last(h.get("accuracy"))
    res["train_loss"] = _last(h.get("loss"))

    model.evaluate(x_va, y_va, batch_size=bs, verbose=0)  # warm-up
    t0 = time.perf_counter()
    ev = model.evaluate(x_va, y_va, batch_size=bs, verbose=0)
    res["evaluate_s"] = time.perf_counter() - t0
    ev = ev if isinstance(ev, (list, tuple)) else [ev]
    res["val_loss"] = float(ev[0])
    res["val_acc"] = float(ev[1]) if len(ev) > 1 else None

    model.predict(x_va, batch_size=bs, verbose=0)         # warm-up
    t0 = time.perf_counter()
    pred = model.predict(x_va, batch_size=bs, verbose=0)
    res["predict_s"] = time.perf_counter() - t0
    pred = np.asarray(pred)
    res["predict_acc"] = float((pred.argmax(1) == y_va).mean())
    res["n_train"], res["n_val"], res["batch"] = len(x_tr), len(x_va), bs


def _last(v):
    if v is None:
        return None
    try:
        return float(v[-1])
    except (TypeError, IndexError):
        return float(v)


def torch_worker(wl, args, res):
    """Eager PyTorch loop equivalent to the Keras workload."""
    try:
        import torch
        from torch import nn
    except ImportError as e:
        raise FrameworkMissing(f"{type(e).__name__}: {e}")
    import numpy as np
    if args.threads:
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(args.threads)
    res["versions"] = {"torch": torch.__version__, "numpy": np.__version__}
    res["threads"] = {"intra_op": torch.get_num_threads(),
                      "inter_op": torch.get_num_interop_threads()}
    torch.manual_seed(0)

    spec = WORKLOADS[wl]
    x_tr, y_tr, x_va, y_va = load_fashion_mnist(args.data, args.quick, args.n_train)
    if spec.get("cnn"):
        x_tr = x_tr.reshape(len(x_tr), 28, 28, 1)
        x_va = x_va.reshape(len(x_va), 28, 28, 1)
    elif not spec["flatten"]:
        x_tr = x_tr.reshape(len(x_tr), 784)
        x_va = x_va.reshape(len(x_va), 784)
    if spec.get("cnn"):             # torch's convolutions take NCHW
        x_tr = np.ascontiguousarray(x_tr.reshape(len(x_tr), 1, 28, 28))
        x_va = np.ascontiguousarray(x_va.reshape(len(x_va), 1, 28, 28))
    X, Y = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    Xv, Yv = torch.from_numpy(x_va), torch.from_numpy(y_va)

    mods = [nn.Flatten()] if spec["flatten"] else []
    fan_in = 784
    if spec.get("cnn"):
        mods = [nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
        fan_in = 64 * 7 * 7
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    for units, act in spec["hidden"]:
        mods += [nn.Linear(fan_in, units), acts[act]()]
        if spec.get("dropout"):
            mods.append(nn.Dropout(spec["dropout"]))
        fan_in = units
    mods.append(nn.Linear(fan_in, 10))          # logits; softmax in the loss
    model = nn.Sequential(*mods)
    for m in model.modules():                   # Keras defaults
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    # Keras 3 default hyper-parameters of the string-named optimizers.
    p = model.parameters()
    opt = {
        "rmsprop": lambda: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-7),
        "adam": lambda: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999),
                                         eps=1e-7),
        "sgd": lambda: torch.optim.SGD(p, lr=0.01),
        "adagrad": lambda: torch.optim.Adagrad(
            p, lr=1e-3, initial_accumulator_value=0.1, eps=1e-7),
    }[spec["optimizer"]]()
    loss_fn = nn.CrossEntropyLoss()
    bs = spec["batch"]
    n = len(X)

    def evaluate():
        model.eval()
        tot_loss = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        with torch.inference_mode():
            for i in range(0, len(Xv), bs):
                xb, yb = Xv[i:i + bs], Yv[i:i + bs]
                out = model(xb)
                tot_loss += loss_fn(out, yb) * len(yb)
                correct += (out.argmax(1) == yb).sum()
        return float(tot_loss) / len(Xv), int(correct) / len(Xv)

    def predict():
        model.eval()
        outs = []
        with torch.inference_mode():
            for i in range(0, len(Xv), bs):
                outs.append(torch.softmax(model(Xv[i:i + bs]), dim=1))
        return torch.cat(outs).numpy()

    def epoch():
        model.train()
        perm = torch.randperm(n)
        tot_loss = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = X[idx], Y[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            # running loss / accuracy, as Keras' fit tracks them
            tot_loss += loss.detach() * len(yb)
            correct += (out.detach().argmax(1) == yb).sum()
        if spec.get("validation"):
            evaluate()                          # like validation_data=
        return float(tot_loss) / n, int(correct) / n

    res["rss_before_fit_kb"] = _rss_now_kb()
    t0 = time.perf_counter()
    epoch()
    t1 = time.perf_counter()
    tl, ta = epoch()
    t2 = time.perf_counter()
    res["maxrss_fit_kb"] = _maxrss_kb()
    res["first_epoch_s"], res["epoch_s"] = t1 - t0, t2 - t1
    res["train_loss"], res["train_acc"] = tl, ta

    evaluate()
    t0 = time.perf_counter()
    res["val_loss"], res["val_acc"] = evaluate()
    res["evaluate_s"] = time.perf_counter() - t0
    predict()
    t0 = time.perf_counter()
    pred = predict()
    res["predict_s"] = time.perf_counter() - t0
    res["predict_acc"] = float((pred.argmax(1) == y_va).mean())
    res["n_train"], res["n_val"], res["batch"] = n, len(Xv), bs


def worker_main(args):
    res = {"framework": args.worker, "workload": args.workload,
           "status": "ok", "python": sys.version.split()[0],
           "executable": sys.executable}
    try:
        if args.worker == "torch":
            torch_worker(args.workload, args, res)
        else:
            keras_worker(args.worker, args.workload, args, res)
    except FrameworkMissing as e:
        res["status"], res["error"] = "missing", str(e)
    except Exception as e:  # reported, never hidden
        res["status"] = "error"
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc()[-4000:]
    with open(args.result, "w") as f:
        json.dump(res, f)
    return 0


# ==========================================================================
# Driver side
# ==========================================================================

IMPORT_STMT = {"nncore": "import nncore",
               "tf": "import tensorflow, keras",
               "torch": "import torch"}


def framework_variants(args):
    """List of (label, framework, python, threads) in run order."""
    out = []
    wanted = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for fw in wanted:
        py = {"nncore": args.nncore_python, "tf": args.tf_python,
              "torch": args.torch_python}[fw]
        mode = {"nncore": "default", "tf": args.tf_threads,
                "torch": args.torch_threads}[fw]
        if mode in ("default", "both"):
            out.append((fw, fw, py, None))
        if mode in ("1", "both"):
            out.append((f"{fw} (1 thread)", fw, py, 1))
        if mode not in ("default", "both", "1"):
            out.append((f"{fw} ({mode} threads)", fw, py, int(mode)))
    return out


def worker_env(fw, threads):
    env = dict(os.environ)
    if fw == "nncore":
        env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"]
                                    if env.get("PYTHONPATH") else "")
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
    if fw == "tf":
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def run_worker(args, fw, py, threads, wl):
    """Run one measurement in a fresh process; always returns a dict."""
    base = {"framework": fw, "workload": wl, "threads_arg": threads}
    if not py or not os.path.exists(py):
        return dict(base, status="missing", error=f"no interpreter {py!r}")
    fd, result = tempfile.mkstemp(prefix="nncmp-", suffix=".json")
    os.close(fd)
    cmd = [py, os.path.abspath(__file__), "--worker", fw, "--workload", wl,
           "--data", args.data, "--result", result]
    if threads:
        cmd += ["--threads", str(threads)]
    if args.quick:
        cmd.append("--quick")
    if args.n_train:
        cmd += ["--n-train", str(args.n_train)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=worker_env(fw, threads), cwd=REPO,
                              capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.unlink(result)
        return dict(base, status="error",
                    error=f"timeout after {args.timeout} s")
    wall = time.perf_counter() - t0
    try:
        with open(result) as f:
            res = json.load(f)
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        res = dict(base, status="error",
                   error=f"worker exit {proc.returncode}: " + " | ".join(tail))
    finally:
        if os.path.exists(result):
            os.unlink(result)
    res.update(threads_arg=threads, process_wall_s=wall)
    return res


def measure_import(py, fw):
    if not py or not os.path.exists(py):
        return None
    code = ("import time;t=time.perf_counter();" + IMPORT_STMT[fw] +
            ";print(time.perf_counter()-t)")
    try:
        p = subprocess.run([py, "-c", code], env=worker_env(fw, None),
                           cwd=REPO, capture_output=True, text=True,
                           timeout=300)
        return float(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 \
            else None
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def machine_info():
    info = {"platform": platform.platform(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            info["memory"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        info["affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        info["loadavg_start"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    return info


# ---- rendering -----------------------------------------------------------

def _fmt(v, spec=".3f", none="–"):
    return none if v is None else format(v, spec)


def _summ(runs, key):
    vals = [r[key] for r in runs if r.get("status") == "ok"
            and r.get(key) is not None]
    if not vals:
        return None, None
    return statistics.median(vals), min(vals)


def _status_cell(runs):
    """'missing: …' / 'error: …' text if no rep succeeded."""
    bad = [r for r in runs if r.get("status") != "ok"]
    if len(bad) < len(runs) or not runs:
        return None
    r = bad[0]
    msg = (r.get("error") or "").replace("|", "/").replace("\n", " ")
    if len(msg) > 110:
        msg = msg[:107] + "..."
    return f"{r['status']}: {msg}"


def render(args, variants, results, imports, info, started, elapsed):
    L = []
    A = L.append
    A("# Framework comparison: nncore vs TensorFlow/Keras vs PyTorch")
    A("")
    A(f"Generated by `bench/compare.py` on {started} ({elapsed / 60:.1f} min)."
      f" Command: `{' '.join(shlex.quote(a) for a in sys.argv)}`")
    A("")
    if args.quick:
        A(f"**QUICK SMOKE RUN**: {QUICK_TRAIN} training / {QUICK_VAL} "
          "validation samples only; the numbers are not representative.")
        A("")
    A("## Method")
    A("")
    A(f"- Data: real Fashion-MNIST from `{os.path.relpath(args.data, REPO)}`"
      " (IDX .gz read with gzip + numpy), x/255 float32; training on the "
      f"first {args.n_train or N_TRAIN:,} training images, validation = the last {N_VAL:,}.")
    A("- Every measurement runs in its own subprocess (so peak RSS is per "
      "framework and run). Frameworks are interleaved: for each repetition, "
      "for each workload, one run of each framework variant.")
    A("- **Epoch time = one epoch after a 1-epoch warm-up**: the worker calls "
      "`fit(..., epochs=1)` twice on the same model and times the second "
      "call (the first, reported as *1st epoch*, includes tracing and "
      "other first-call costs). W4's epoch includes its validation pass "
      "over the 12,000 validation samples.")
    A("- evaluate / predict: on the validation samples with the workload's "
      "batch size; each called twice, the second call timed.")
    A("- Peak RSS: `ru_maxrss` of the worker process right after the two "
      "fits (includes the interpreter, the library and the dataset: "
      "'before fit' is the RSS after import + data loading).")
    A("- nncore and TF/Keras run the identical Keras-3 code "
      "(`import nncore as keras` vs `import keras` on the TensorFlow backend,"
      " oneDNN at its default). PyTorch runs an equivalent eager loop "
      "(`nn.Sequential`, `CrossEntropyLoss` on logits, Glorot-uniform "
      "kernels / zero biases, Keras' default hyper-parameters: RMSprop lr "
      "1e-3 alpha 0.9 eps 1e-7; Adam lr 1e-3 eps 1e-7; SGD lr 0.01; Adagrad "
      "lr 1e-3 initial accumulator 0.1 eps 1e-7; shuffling by a random index "
      "permutation per epoch, running loss/accuracy tracked like Keras).")
    A("- *ratio* = nncore median epoch time / this framework's median epoch "
      "time (> 1: nncore is slower). The machine is shared and noisy; "
      "compare medians and mins.")
    A("- Under CPU contention, OpenMP-threaded runtimes (PyTorch, nncore) "
      "can slow down by large factors (spin-waiting threads oversubscribe "
      "the cores); a median far above the min signals such a run. "
      "`--torch-threads both` adds single-threaded torch runs.")
    A(f"- Repetitions: {args.reps}.")
    A("")

    A("## Summary: median seconds per epoch")
    A("")
    labels = [v[0] for v in variants]
    A("| workload | " + " | ".join(labels) + " |")
    A("|---|" + "---:|" * len(labels))
    for wl in args.workloads:
        cells = []
        for lab in labels:
            runs = results[(wl, lab)]
            st = _status_cell(runs)
            if st:
                cells.append(st.split(":")[0])
            else:
                cells.append(_fmt(_summ(runs, "epoch_s")[0]))
        A(f"| {wl} | " + " | ".join(cells) + " |")
    A("")

    nn_label = next((v[0] for v in variants if v[1] == "nncore"), None)
    for wl in args.workloads:
        A(f"## {wl}: {describe_workload(wl)}")
        A("")
        A("| framework | epoch s (median) | epoch s (min) | 1st epoch s | "
          "ratio nncore/this | steps/s | evaluate samples/s | "
          "predict samples/s | peak RSS MB (before fit) | val acc |")
        A("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        nn_med = None
        if nn_label:
            nn_med = _summ(results[(wl, nn_label)], "epoch_s")[0]
        for lab in labels:
            runs = results[(wl, lab)]
            st = _status_cell(runs)
            if st:
                A(f"| {lab} | {st} |" + " |" * 8)
                continue
            ok = [r for r in runs if r.get("status") == "ok"]
            med, mn = _summ(runs, "epoch_s")
            first = _summ(runs, "first_epoch_s")[0]
            steps = math.ceil(ok[0]["n_train"] / ok[0]["batch"])
            ratio = (nn_med / med) if (nn_med and med and
                                       not lab.startswith("nncore")) else None
            ev = _summ(runs, "evaluate_s")[0]
            pr = _summ(runs, "predict_s")[0]
            nval = ok[0]["n_val"]
            rss = _summ(runs, "maxrss_fit_kb")[0]
            rss0 = _summ(runs, "rss_before_fit_kb")[0]
            acc = _summ(runs, "val_acc")[0]
            note = "" if len(ok) == len(runs) else \
                f" ({len(runs) - len(ok)} of {len(runs)} runs failed)"
            A(f"| {lab}{note} | {_fmt(med)} | {_fmt(mn)} | {_fmt(first)} | "
              f"{_fmt(ratio, '.2f')} | {_fmt(steps / med, '.0f')} | "
              f"{_fmt(nval / ev if ev else None, ',.0f')} | "
              f"{_fmt(nval / pr if pr else None, ',.0f')} | "
              f"{_fmt(rss / 1024 if rss else None, '.0f')} "
              f"({_fmt(rss0 / 1024 if rss0 else None, '.0f')}) | "
              f"{_fmt(acc, '.4f')} |")
        A("")

    A("## Import time (seconds, subprocess, median of the repetitions)")
    A("")
    A("| framework | statement | median s | min s |")
    A("|---|---|---:|---:|")
    for fw, times in imports.items():
        ok = [t for t in times if t is not None]
        if not ok:
            A(f"| {fw} | `{IMPORT_STMT[fw]}` | missing | |")
        else:
            A(f"| {fw} | `{IMPORT_STMT[fw]}` | {statistics.median(ok):.3f} | "
              f"{min(ok):.3f} |")
    A("")

    A("## Machine and versions")
    A("")
    for k, v in info.items():
        A(f"- {k}: {v}")
    seen = {}
    for (wl, lab), runs in results.items():
        for r in runs:
            if r.get("status") == "ok" and lab not in seen:
                seen[lab] = r
    for lab in labels:
        r = seen.get(lab)
        if r is None:
            A(f"- {lab}: no successful run")
            continue
        vers = ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).items())
        thr = ", ".join(f"{k}={v}" for k, v in r.get("threads", {}).items())
        A(f"- {lab}: {vers}; threads: {thr}; Python {r.get('python')} "
          f"(`{r.get('executable')}`)")
    A("")

    errors = [(k, r) for k, runs in results.items() for r in runs
              if r.get("status") == "error"]
    if errors:
        A("## Errors")
        A("")
        shown = set()
        for (wl, lab), r in errors:
            key = (lab, r.get("error"))
            if key in shown:
                continue
            shown.add(key)
            A(f"- {lab} / {wl}: `{r.get('error')}`")
        A("")
    return "\n".join(L)


def driver_main(args):
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    args.workloads = [w.strip() for w in args.workloads.split(",")
                      if w.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            sys.exit(f"unknown workload {w!r}; choose from "
                     f"{', '.join(WORKLOADS)}")
    args.data = os.path.abspath(args.data)
    variants = framework_variants(args)
    started = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    info = machine_info()
    t_start = time.perf_counter()

    results = {(wl, v[0]): [] for wl in args.workloads for v in variants}
    imports = {}
    for v in variants:
        imports.setdefault(v[1], [])
    for rep in range(1, args.reps + 1):
        for fw in imports:   # import times, interleaved too
            py = next(v[2] for v in variants if v[1] == fw)
            imports[fw].append(measure_import(py, fw))
        for wl in args.workloads:
            for label, fw, py, threads in variants:
                res = run_worker(args, fw, py, threads, wl)
                results[(wl, label)].append(res)
                if res.get("status") == "ok":
                    msg = (f"epoch {res['epoch_s']:.3f} s (1st "
                           f"{res['first_epoch_s']:.3f}), val acc "
                           f"{res['val_acc']:.4f}, peak RSS "
                           f"{res['maxrss_fit_kb'] / 1024:.0f} MB")
                else:
                    msg = f"{res['status']}: {res.get('error', '')[:150]}"
                print(f"[rep {rep}/{args.reps}] {wl:10s} {label:18s} {msg}",
                      flush=True)

    elapsed = time.perf_counter() - t_start
    try:
        info["loadavg_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    md = render(args, variants, results, imports, info, started, elapsed)
    with open(args.out, "w") as f:
        f.write(md + "\n")
    print(f"wrote {args.out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "machine": info,
                       "imports": imports,
                       "results": [dict(r, label=lab)
                                   for (wl, lab), runs in results.items()
                                   for r in runs]}, f, indent=1, default=str)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Compare nncore with TensorFlow/Keras and PyTorch "
                    "(see the module docstring).")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions (default 3, 1 with --quick)")
    p.add_argument("-w", "--workloads", default=",".join(WORKLOADS),
                   help="comma list of workloads (default: all): "
                        + ", ".join(WORKLOADS))
    p.add_argument("--frameworks", default="nncore,tf,torch",
                   help="comma list, subset of nncore,tf,torch")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_TRAIN} train / {QUICK_VAL} val "
                        "samples, 1 repetition unless --reps")
    p.add_argument("--n-train", type=int, default=None,
                   help="train on only the first N of the 48,000 training images "
                        "(shorter epochs, e.g. for the CNN workload W6)")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="folder with the Fashion-MNIST IDX .gz files")
    p.add_argument("--nncore-python", default=sys.executable,
                   help="interpreter for nncore (default: this one)")
    p.add_argument("--tf-python", default="/opt/tfvenv/bin/python")
    p.add_argument("--torch-python", default="/opt/torchvenv/bin/python")
    p.add_argument("--tf-threads", default="default",
                   help="'default', '1', 'both' (default and 1) or a number:"
                        " TF intra/inter op threads")
    p.add_argument("--torch-threads", default="default",
                   help="'default', '1', 'both' or a number "
                        "(torch.set_num_threads / set_num_interop_threads)")
    p.add_argument("--timeout", type=float, default=1800,
                   help="seconds allowed for one worker process")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--json", default=None,
                   help="also write the raw results to this JSON file")
    # worker mode (internal)
    p.add_argument("--worker", choices=["nncore", "tf", "torch"],
                   help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=None,
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker_main(args)
    return driver_main(args)


if __name__ == "__main__":
    sys.exit(main())
