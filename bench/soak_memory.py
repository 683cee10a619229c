"""Memory soak: hundreds of fit / predict / evaluate / build / save+load rounds,
RSS printed over time; exits non-zero when memory keeps growing.

    PYTHONPATH=. python bench/soak_memory.py                 # 400 rounds
    PYTHONPATH=. python bench/soak_memory.py --rounds 1000 --limit-mb 20
    PYTHONPATH=. python bench/soak_memory.py --only fit_fused,predict

Every round runs each selected workload once.  After ``--warmup`` rounds the
RSS is sampled every ``--every`` rounds; the run fails (exit 1) if the RSS at
the end exceeds the post-warm-up RSS by more than ``--limit-mb``, or if the
least-squares slope over the second half of the samples, extrapolated over
that half, exceeds half the limit (steady creep that has not yet reached
the limit).  A per-workload pass (``--per-workload``) runs each workload
alone to name the one that leaks.

RSS comes from psutil when installed, else /proc/self/statm (Linux).
"""
import argparse
import gc
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nncore as keras  # noqa: E402


def rss_mb():
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2 ** 20
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        import resource   # peak, not current: a weaker check, but something
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


RNG = np.random.default_rng(0)
X = RNG.normal(0, 1, (2048, 128)).astype(np.float32)
Y = RNG.integers(0, 10, 2048)
Y1H = np.eye(10, dtype=np.float32)[Y]


def build(dropout=0.2, optimizer="adam", loss="sparse_categorical_crossentropy"):
    m = keras.Sequential([keras.Input(shape=(128,)), keras.layers.Dense(256, activation="relu"),
                          keras.layers.Dropout(dropout), keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return m


class Workloads:
    def __init__(self, tmp):
        self.tmp = tmp
        self.model = build()
        self.model_pb = build(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        self.model_pb.use_fused = False
        self.model_cce = build(loss="categorical_crossentropy", optimizer="rmsprop")

    def fit_fused(self):
        self.model.fit(X, Y, epochs=1, batch_size=64, verbose=0, validation_split=0.1)

    def fit_per_batch(self):
        self.model_pb.fit(X[:512], Y[:512], epochs=1, batch_size=64, verbose=0)

    def fit_callbacks(self):
        cbs = [keras.callbacks.EarlyStopping(patience=1), keras.callbacks.TerminateOnNaN(),
               keras.callbacks.ReduceLROnPlateau(patience=1)]
        self.model_cce.fit(X[:512], Y1H[:512], epochs=2, batch_size=64, verbose=0,
                           validation_split=0.2, callbacks=cbs)

    def fit_progbar(self):
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            self.model.fit(X[:256], Y[:256], epochs=1, batch_size=64, verbose=1)

    def predict(self):
        self.model.predict(X, verbose=0)
        self.model(X[:32])

    def evaluate(self):
        self.model.evaluate(X, Y, verbose=0)

    def on_batch(self):
        self.model_pb.train_on_batch(X[:64], Y[:64])
        self.model_pb.test_on_batch(X[:64], Y[:64])

    def build(self):
        m = build()
        m.predict(X[:8], verbose=0)

    def save_load(self):
        p = os.path.join(self.tmp, "soak.npz")
        self.model.save(p)
        keras.models.load_model(p).predict(X[:8], verbose=0)
        w = os.path.join(self.tmp, "soak.weights.npz")
        self.model.save_weights(w)
        self.model.load_weights(w)

    def bad_input(self):
        # refused calls must not leak either
        for call in (lambda: self.model.predict(X[:, :5], verbose=0),
                     lambda: self.model.fit(X, np.where(Y == 0, 99, Y), verbose=0),
                     lambda: self.model.fit(np.where(X > 3, np.nan, X), Y, verbose=0)):
            try:
                call()
            except ValueError:
                pass


ALL = ["fit_fused", "fit_per_batch", "fit_callbacks", "fit_progbar", "predict", "evaluate",
       "on_batch", "build", "save_load", "bad_input"]


def slope(xs, ys):
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    if len(xs) < 2:
        return 0.0
    return float(np.polyfit(xs, ys, 1)[0])


def soak(names, rounds, warmup, every, limit, label="all"):
    with tempfile.TemporaryDirectory() as tmp:
        w = Workloads(tmp)
        fns = [getattr(w, n) for n in names]
        samples = []
        base = None
        t0 = time.perf_counter()
        for r in range(rounds):
            for fn in fns:
                fn()
            if r + 1 == warmup:
                gc.collect()
                base = rss_mb()
                print(f"[{label}] round {r + 1:5d}  RSS {base:8.1f} MB  (baseline after warm-up)")
            elif r + 1 > warmup and (r + 1) % every == 0:
                gc.collect()
                now = rss_mb()
                samples.append((r + 1, now))
                print(f"[{label}] round {r + 1:5d}  RSS {now:8.1f} MB  {now - base:+7.1f} MB  "
                      f"{time.perf_counter() - t0:6.1f} s", flush=True)
        gc.collect()
        end = rss_mb()
    growth = end - base
    half = samples[len(samples) // 2:]
    creep = slope([s[0] for s in half], [s[1] for s in half]) * (half[-1][0] - half[0][0]) \
        if len(half) >= 2 else 0.0
    ok = growth <= limit and creep <= limit / 2
    print(f"[{label}] growth after warm-up {growth:+.1f} MB (limit {limit}), creep over the "
          f"second half {creep:+.1f} MB (limit {limit / 2}) -> {'OK' if ok else 'GROWING'}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--limit-mb", type=float, default=25.0)
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated: " + ", ".join(ALL))
    ap.add_argument("--per-workload", action="store_true",
                    help="also soak each workload alone (names the leaking one)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; valid: {ALL}")
    if args.rounds <= args.warmup + 2 * args.every:
        ap.error("--rounds must exceed --warmup by at least two sampling intervals")
    if args.threads:
        keras.set_num_threads(args.threads)
    keras.utils.set_random_seed(0)
    print(f"nncore soak: {args.rounds} rounds of {names}, threads={keras.get_num_threads()}")
    ok = soak(names, args.rounds, args.warmup, args.every, args.limit_mb)
    if args.per_workload:
        for n in names:
            ok &= soak([n], max(args.rounds // 2, args.warmup + 3 * args.every), args.warmup,
                       args.every, args.limit_mb, label=n)
    print("RESULT:", "OK" if ok else "MEMORY GROWTH DETECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
