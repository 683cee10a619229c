"""Wall time of one small grid search on 1 and 2 worker processes, side by side.

The search: ``GridSearchCV`` over a 2 x 2 grid (hidden units x learning
rate) with 2-fold cross-validation -- 8 fits -- of
``SKLearnClassifier`` (784 -> Dense(hidden, relu) -> Dense(10, softmax),
Adam, batch 32) on real Fashion-MNIST (flattened, /255, float32).
``refit=False``: only the search is timed.

Configurations, all in this one run and on the same data:

    1 worker,  2 threads   n_jobs=1: fits run one after another in this
                           process, kernels on nncore's default threads
    1 worker,  1 thread    n_jobs=1 with nncore.set_num_threads(1)
    2 workers, 1 thread    n_jobs=2 (joblib's loky processes), the wrapper's
                           default: one kernel thread per worker
    2 workers, 2 threads   n_jobs=2 with set_worker_threads(2): 4 threads on
                           a 2-core machine (oversubscribed)
    dask, 2 x 1 thread     the 2-worker search on a distributed.LocalCluster
                           (only with --dask and dask installed)

Before the timed searches of each configuration an untimed search on 600
images warms it up (worker processes import nncore and scikit-learn), so
the process-start cost, printed on its own line, is not in the table.  Every configuration
must give the same mean test scores (same seeds, ``random_state``): the
script checks that and says so.

Run from the repository root (in-place build: PYTHONPATH=.):

    PYTHONPATH=. python bench/bench_grid_search.py          # all 60,000 images, 3 epochs
    PYTHONPATH=. python bench/bench_grid_search.py --samples 12000 --epochs 2 --dask

Prints a Markdown table; writes nothing.
"""
import argparse
import os
import sys
import time

import numpy as np

import nncore
from nncore.wrappers import SKLearnClassifier, set_worker_threads

HERE = os.path.dirname(os.path.abspath(__file__))


def model_fn(X, y, hidden=64, lr=1e-3):
    model = nncore.Sequential([
        nncore.Input(shape=(X.shape[1],)),
        nncore.layers.Dense(hidden, activation="relu"),
        nncore.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=nncore.optimizers.Adam(lr),
                  loss="sparse_categorical_crossentropy")
    return model


def load(samples, data):
    # the four IDX .gz files: --data, else $NNCORE_DATA_DIR, else
    # ../shared/data/fashion-mnist beside the checkout
    default = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data",
                           "fashion-mnist")
    if data:
        os.environ["NNCORE_DATA_DIR"] = data
    elif "NNCORE_DATA_DIR" not in os.environ and os.path.isdir(default):
        os.environ["NNCORE_DATA_DIR"] = default
    (x, y), _ = nncore.datasets.fashion_mnist.load_data()
    if samples:
        x, y = x[:samples], y[:samples]
    return (x.reshape(len(x), -1) / np.float32(255.0)).astype(np.float32), y


def search(n_jobs, epochs):
    from sklearn.model_selection import GridSearchCV
    grid = {"model_kwargs": [{"hidden": h, "lr": lr} for h in (50, 100)
                             for lr in (1e-3, 3e-3)]}
    est = SKLearnClassifier(model_fn, fit_kwargs={"epochs": epochs}, random_state=0)
    return GridSearchCV(est, grid, cv=2, n_jobs=n_jobs, refit=False)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=0, help="first N images (default all)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=1, help="timed searches per configuration")
    ap.add_argument("--dask", action="store_true", help="also on a 2-worker LocalCluster")
    ap.add_argument("--data", help="folder with the Fashion-MNIST .gz files")
    args = ap.parse_args()

    import joblib
    X, y = load(args.samples, args.data)
    print(f"data {X.shape}, {args.epochs} epochs, 2x2 grid x 2 folds = 8 fits, "
          f"{os.cpu_count()} CPUs, nncore threads {nncore.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")

    rows, scores = [], {}
    default_threads = nncore.get_num_threads()

    def run(name, n_jobs, worker_threads=1, kernel_threads=None):
        set_worker_threads(worker_threads)
        if kernel_threads:
            nncore.set_num_threads(kernel_threads)
        try:
            # untimed warm-up on 600 images: workers import nncore and
            # scikit-learn, nncore's thread team starts
            search(n_jobs, 1).fit(X[:600], y[:600])
            times = []
            for rep in range(args.reps):
                seconds, gs = timed(lambda: search(n_jobs, args.epochs).fit(X, y))
                times.append(seconds)
                scores[f"{name} #{rep + 1}"] = gs.cv_results_["mean_test_score"]
        finally:
            nncore.set_num_threads(default_threads)
            set_worker_threads(1)
        rows.append((name, min(times), float(np.median(times))))
        print(f"  {name}: " + ", ".join(f"{t:.2f}" for t in times) + " s", flush=True)

    run("1 worker, 2 threads", 1)
    run("1 worker, 1 thread", 1, kernel_threads=1)
    start, _ = timed(lambda: joblib.Parallel(n_jobs=2)(
        joblib.delayed(os.getpid)() for _ in range(4)))
    print(f"  (loky pool start: {start:.2f} s)")
    run("2 workers, 1 thread each", 2, worker_threads=1)
    run("2 workers, 2 threads each", 2, worker_threads=2)
    if args.dask:
        try:
            import distributed
        except ImportError:
            print("  dask: not installed (pip install '.[dask]'), skipped")
        else:
            t0 = time.perf_counter()
            with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                          host="127.0.0.1", dashboard_address=None) as c, \
                    distributed.Client(c):
                print(f"  (dask cluster start: {time.perf_counter() - t0:.2f} s)")
                # scatter: X goes to each worker once, not with every task
                with joblib.parallel_backend("dask", scatter=[X, y]):
                    run("dask LocalCluster, 2 workers x 1 thread", -1)

    base = rows[0][1]
    print(f"\n| configuration | wall time, best of {args.reps} (s) | median (s) "
          "| speed-up vs 1 worker, 2 threads |")
    print("|---|---:|---:|---:|")
    for name, best, median in rows:
        print(f"| {name} | {best:.2f} | {median:.2f} | {base / best:.2f}x |")
    first = next(iter(scores.values()))
    same = all(np.array_equal(first, s) for s in scores.values())
    print(f"\nmean test scores per candidate: {np.round(first, 4).tolist()}; "
          f"identical in all {len(scores)} timed searches: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
