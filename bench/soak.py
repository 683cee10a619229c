"""Soak (issue 23): fit / predict / save+load loops on the chapter-8 CNN and
the chapter-9 Embedding+LSTM model, with varying batch sizes, kernel thread
counts and short-lived Python threads; reports where the memory goes.

    PYTHONPATH=. python bench/soak.py                              # both models, 3 minutes
    PYTHONPATH=. python bench/soak.py --seconds 600                # the issue's 10 minutes
    PYTHONPATH=. python bench/soak.py --model cnn --tracemalloc    # CNN only, Python heap too
    MALLOC_ARENA_MAX=2 PYTHONPATH=. python bench/soak.py ...       # fewer glibc arenas

Each round trains one model for one epoch (the models take turns with
``--model both``; batch size cycles through 16/32/64/128, kernel threads
through 1..cores), predicts from the main thread and from 4 fresh threads
(each ends after one predict, as a web server's would), saves and loads a
``.keras`` file and appends to a CSVLogger.

Besides RSS it samples what tells a leak from warm-up:

* ``in use``: bytes glibc's malloc has handed out and not got back
  (``mallinfo2().uordblks`` + mmapped blocks).  A leak grows this.
* ``free``: bytes free inside malloc's arenas, kept for reuse rather than
  returned to the system (``fordblks``).  Growth here is retention: RSS rises
  but nothing is lost, and ``--trim`` (``malloc_trim(0)`` before sampling)
  gives it back.
* ``py heap`` (``--tracemalloc``): what Python and NumPy allocated and still
  hold; a leak of arrays or objects grows this.
* threads and open file descriptors.

``--gc`` collects garbage cycles before each sample: without it the Python
heap rises and falls in a saw-tooth (each round's History, CallbackList and
loaded model form reference cycles that only the next full collection frees).

The slope is a least-squares fit over the samples after ``--warmup``
seconds.  Exit 1 if the RSS slope exceeds ``--max-slope`` MB/min or a
descriptor is left open.
"""
import argparse
import ctypes
import gc
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nncore as keras  # noqa: E402

L = keras.layers
MB = 1024 * 1024


# ------------------------------------------------------------------ probes
def status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def n_threads():
    return len(os.listdir("/proc/self/task"))


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


try:
    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallinfo2.restype = _Mallinfo2
    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):      # not glibc, or glibc < 2.33
    _libc = None


def malloc_mb():
    """(in use, free in arenas) in MB, or (nan, nan) without glibc's mallinfo2."""
    if _libc is None:
        return float("nan"), float("nan")
    mi = _libc.mallinfo2()
    return (mi.uordblks + mi.hblkhd) / MB, mi.fordblks / MB


def trim():
    if _libc is not None:
        _libc.malloc_trim(0)


# ------------------------------------------------------------------ models
def make_cnn():
    m = keras.Sequential([L.Input((28, 28, 1)), L.Conv2D(16, 3, activation="relu"),
                          L.MaxPooling2D(), L.Conv2D(32, 3, activation="relu"),
                          L.MaxPooling2D(), L.Flatten(), L.Dense(10, activation="softmax")])
    m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def make_rnn():
    m = keras.Sequential([L.Input((80,)), L.Embedding(1000, 32, mask_zero=True), L.LSTM(32),
                          L.Dense(1, activation="sigmoid")])
    m.compile("rmsprop", "binary_crossentropy", metrics=["accuracy"])
    return m


def data(kind, rng):
    if kind == "cnn":
        return rng.random((512, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 512)
    # reviews of random lengths, padded as chapter 9 does
    reviews = [rng.integers(1, 1000, rng.integers(5, 120)).tolist() for _ in range(256)]
    return keras.utils.pad_sequences(reviews, maxlen=80), rng.integers(0, 2, 256)


# ------------------------------------------------------------------ the loop
def one_round(r, kind, m, x, y, folder, cores):
    batches = [16, 32, 64, 128]
    keras.set_num_threads(1 + r % cores)
    csv = os.path.join(folder, f"{kind}.csv")
    m.fit(x, y, epochs=1, batch_size=batches[r % 4], verbose=0,
          callbacks=[keras.callbacks.CSVLogger(csv, append=True)])
    p = m.predict(x[:100], batch_size=batches[(r + 1) % 4], verbose=0)
    errors = []

    def once():
        try:
            assert np.allclose(m.predict(x[:100], verbose=0), p, atol=1e-5)
        except BaseException as e:       # noqa: BLE001
            errors.append(repr(e))
    ts = [threading.Thread(target=once) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    if errors:
        raise RuntimeError(f"predict from a thread failed: {errors[0]}")
    path = os.path.join(folder, f"{kind}.keras")
    m.save(path)
    m2 = keras.models.load_model(path)
    assert np.allclose(m2.predict(x[:10], verbose=0), p[:10], atol=1e-5)


def slope(samples, key):
    t = np.array([s["t"] for s in samples]) / 60
    v = np.array([s[key] for s in samples], dtype=float)
    if len(t) < 3 or not np.isfinite(v).all():
        return float("nan")
    return float(np.polyfit(t, v, 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["cnn", "rnn", "both"], default="both")
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--warmup", type=float, default=60, help="seconds not in the slope")
    ap.add_argument("--max-slope", type=float, default=2.0, help="MB per minute")
    ap.add_argument("--tracemalloc", action="store_true", help="also sample the Python heap")
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) before each sample")
    ap.add_argument("--gc", action="store_true",
                    help="gc.collect() before each sample (cycles freed now, not later)")
    ap.add_argument("--json", help="write every sample here")
    args = ap.parse_args(argv)

    if args.tracemalloc:
        import tracemalloc
        tracemalloc.start()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    kinds = ["cnn", "rnn"] if args.model == "both" else [args.model]
    work = {k: ((make_cnn if k == "cnn" else make_rnn)(), *data(k, rng)) for k in kinds}
    folder = tempfile.mkdtemp(prefix="soak_")
    cores = os.cpu_count() or 1
    samples, fds0 = [], None
    start = time.time()
    r = 0
    while time.time() - start < args.seconds:
        kind = kinds[r % len(kinds)]
        one_round(r, kind, *work[kind], folder, cores)
        r += 1
        if args.gc:
            gc.collect()
        if args.trim:
            trim()
        t = time.time() - start
        in_use, free = malloc_mb()
        s = {"round": r, "t": t, "rss": status_mb("VmRSS"), "vmsize": status_mb("VmSize"),
             "in_use": in_use, "free": free, "threads": n_threads(), "fds": open_fds()}
        if args.tracemalloc:
            s["py"] = tracemalloc.get_traced_memory()[0] / MB
        samples.append(s)
        if fds0 is None and t >= args.warmup:
            fds0 = s["fds"]
        print(f"round {r:4d} {kind}  t={t:6.1f}s  RSS {s['rss']:7.1f}  VmSize {s['vmsize']:8.1f}"
              f"  in use {in_use:7.1f}  free {free:6.1f}"
              + (f"  py heap {s['py']:6.1f}" if args.tracemalloc else "")
              + f"  threads {s['threads']}  fds {s['fds']}", flush=True)
    after = [s for s in samples if s["t"] >= args.warmup]
    if len(after) < 3:
        print("too few rounds after the warm-up; run longer")
        return 1
    slopes = {k: slope(after, k) for k in ["rss", "vmsize", "in_use", "free"]
              + (["py"] if args.tracemalloc else [])}
    leaked = after[-1]["fds"] - fds0
    summary = {"rounds": r, "seconds": round(time.time() - start), "model": args.model,
               "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"), "trim": args.trim,
               "gc": args.gc,
               "slopes_mb_per_min": {k: round(v, 3) for k, v in slopes.items()},
               "rss_first_last": [round(samples[0]["rss"], 1), round(after[0]["rss"], 1),
                                  round(samples[-1]["rss"], 1)],
               "fds_after_warmup_first_last": [fds0, after[-1]["fds"]],
               "threads_last": after[-1]["threads"]}
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "samples": samples}, f)
    ok = slopes["rss"] <= args.max_slope and leaked <= 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
