"""CNN soak (issue 23): fit / predict / save+load loops with varying batch
sizes, kernel thread counts and short-lived Python threads; reports the
memory slope and the open file descriptors.

    PYTHONPATH=. python bench/soak_cnn.py                  # 3 minutes
    PYTHONPATH=. python bench/soak_cnn.py --seconds 600    # the issue's 10 minutes

Each round: one epoch of fit on 512 random 28x28 images (batch size cycling
through 16/32/64/128), predict from the main thread and from 4 fresh threads
(each ends after one predict), a .keras save and load, a CSVLogger.  Kernel
threads cycle through 1..cores.  After a warm-up of ``--warmup`` rounds,
VmSize, VmRSS and the number of open descriptors are sampled every round;
the run fails (exit 1) if the least-squares RSS slope exceeds ``--max-slope``
MB per minute or a descriptor is left open.
"""
import argparse
import os
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nncore as keras  # noqa: E402

L = keras.layers


def status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def make_cnn():
    m = keras.Sequential([L.Input((28, 28, 1)), L.Conv2D(16, 3, activation="relu"),
                          L.MaxPooling2D(), L.Conv2D(32, 3, activation="relu"),
                          L.MaxPooling2D(), L.Flatten(), L.Dense(10, activation="softmax")])
    m.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--max-slope", type=float, default=2.0, help="MB per minute")
    args = ap.parse_args()

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((512, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 512)
    folder = tempfile.mkdtemp(prefix="soak_cnn_")
    path, csv = os.path.join(folder, "m.keras"), os.path.join(folder, "log.csv")
    m = make_cnn()
    cores = os.cpu_count() or 1
    batches = [16, 32, 64, 128]
    samples, fds0 = [], None
    start = time.time()
    r = 0
    while time.time() - start < args.seconds:
        keras.set_num_threads(1 + r % cores)
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
            print("predict from a thread failed:", errors[0])
            return 1
        m.save(path)
        m2 = keras.models.load_model(path)
        assert np.allclose(m2.predict(x[:10], verbose=0), p[:10], atol=1e-5)
        del m2
        r += 1
        if r == args.warmup:
            fds0 = open_fds()
        if r >= args.warmup:
            samples.append((time.time() - start, status_mb("VmSize"), status_mb("VmRSS"),
                            open_fds()))
            t, vm, rss, fds = samples[-1]
            print(f"round {r:4d}  t={t:6.1f}s  VmSize {vm:8.1f} MB  RSS {rss:7.1f} MB  fds {fds}",
                  flush=True)
    if len(samples) < 3:
        print("too few rounds after the warm-up; run longer")
        return 1
    t = np.array([s[0] for s in samples]) / 60
    rss_slope = np.polyfit(t, [s[2] for s in samples], 1)[0]
    vm_slope = np.polyfit(t, [s[1] for s in samples], 1)[0]
    leaked = samples[-1][3] - fds0
    print(f"{r} rounds in {time.time() - start:.0f} s; after warm-up: RSS slope "
          f"{rss_slope:+.2f} MB/min, VmSize slope {vm_slope:+.2f} MB/min, "
          f"RSS {samples[0][2]:.1f} -> {samples[-1][2]:.1f} MB, open fds {fds0} -> "
          f"{samples[-1][3]}")
    ok = rss_slope <= args.max_slope and leaked <= 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
