"""nncore's compiled kernels vs their NumPy twins (and GEMM vs np.matmul),
timed side by side in one process.

    PYTHONPATH=. python bench/kernel_ratios.py                 # all cases
    PYTHONPATH=. python bench/kernel_ratios.py --quick         # fewer reps
    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/kernel_ratios.py   # 1 thread both sides

Each case is a pair of zero-argument callables on preallocated float32 arrays.
The two are *interleaved*: a batch of nncore calls, a batch of NumPy calls, and
again, until each side has run for --seconds (default 0.2 s); the time per call
is the median over batches (time.perf_counter).  Prints a Markdown table:
ratio = NumPy time / nncore time (> 1: nncore is faster), and GFLOP/s for the
GEMMs (2*M*N*K per product).

The case list is shared with ``bench/test_bench_kernels.py`` (pytest-benchmark).
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

from nncore._ext import activations as k_act, config, dropout as k_drop
from nncore._ext import gemm as k_gemm, losses as k_loss, optimizers as k_opt
from nncore.ops import activations as t_act, dropout as t_drop
from nncore.ops import losses as t_loss, optimizers as t_opt

F32 = np.float32


class Case:
    """One op at one shape: nncore callable, NumPy callable, flops per call."""

    def __init__(self, group, op, shape, nn, ref, flops=0, book=False):
        self.group, self.op, self.shape = group, op, shape
        self.nn, self.ref, self.flops, self.book = nn, ref, flops, book

    @property
    def id(self):
        s = f"{self.op}[{self.shape}]"
        for a, b in ((" ", ""), ("·", "."), ("ᵀ", "T"), (",", ""), ("+", "_")):
            s = s.replace(a, b)
        return s


def _rng():
    return np.random.default_rng(0)


# --- GEMM ----------------------------------------------------------------------

def gemm_case(group, op, M, K, N, ta=False, tb=False, book=True):
    r = _rng()
    a = r.standard_normal((K, M) if ta else (M, K), dtype=F32)
    b = r.standard_normal((N, K) if tb else (K, N), dtype=F32)
    out = np.empty((M, N), F32)
    out2 = np.empty((M, N), F32)
    aa = a.T if ta else a
    bb = b.T if tb else b
    desc = f"{M}x{K}·{K}x{N}"
    return Case(group, op, desc,
                lambda: k_gemm.gemm(a, b, out, ta, tb),
                lambda: np.matmul(aa, bb, out=out2),
                flops=2 * M * N * K, book=book)


# --- element-wise / fused ------------------------------------------------------

def bias_act_case(group, n, m, act, book):
    r = _rng()
    z0 = r.standard_normal((n, m), dtype=F32)
    bias = (r.standard_normal(m, dtype=F32) * 0.01).astype(F32)
    z1, z2 = z0.copy(), z0.copy()
    return Case(group, f"bias+{act}", f"{n}x{m}",
                lambda: k_act.bias_act_forward(z1, bias, act),
                lambda: t_act.bias_act_forward(z2, bias, act), book=book)


def act_backward_case(group, n, m, act, book):
    r = _rng()
    a = r.uniform(0, 1, (n, m)).astype(F32)
    a[a < 0.3] = 0
    g = r.standard_normal((n, m), dtype=F32)
    d1, d2 = np.empty_like(g), np.empty_like(g)
    return Case(group, f"{act}_backward", f"{n}x{m}",
                lambda: k_act.act_backward(g, a, act, d1),
                lambda: t_act.act_backward(g, a, act, d2), book=book)


def bias_grad_case(group, n, m, book):
    dz = _rng().standard_normal((n, m), dtype=F32)
    d1, d2 = np.empty(m, F32), np.empty(m, F32)
    return Case(group, "bias_grad", f"{n}x{m}",
                lambda: k_act.bias_grad(dz, d1),
                lambda: t_act.bias_grad(dz, d2), book=book)


def softmax_ce_case(group, n, c, book):
    r = _rng()
    z = r.standard_normal((n, c), dtype=F32) * 3
    lab = r.integers(0, c, n).astype(np.int32)
    p1, p2, d1, d2 = (np.empty((n, c), F32) for _ in range(4))
    return Case(group, "softmax_CE_sparse", f"{n}x{c}",
                lambda: k_loss.softmax_crossentropy_sparse(z, lab, p1, d1, 1.0 / n),
                lambda: t_loss.softmax_crossentropy_sparse(z, lab, p2, d2, 1.0 / n), book=book)


def dropout_case(group, n, book):
    r = _rng()
    x = r.standard_normal(n, dtype=F32)
    o1, o2 = np.empty_like(x), np.empty_like(x)
    m1, m2 = np.empty(n, np.uint8), np.empty(n, np.uint8)
    return Case(group, "dropout_fwd(0.2)", f"{n:,}",
                lambda: k_drop.dropout_forward(x, o1, m1, 0.2, 1, 2),
                lambda: t_drop.dropout_forward(x, o2, m2, 0.2, 1, 2), book=book)


def optimizer_case(group, name, sizes, book):
    """One optimizer step over several parameter arrays (one call each)."""
    r = _rng()

    def state():
        params = []
        for n in sizes:
            w = r.standard_normal(n, dtype=F32)
            g = r.standard_normal(n, dtype=F32) * F32(0.01)
            params.append((w, g, np.zeros(n, F32), np.zeros(n, F32)))
        return params

    pk, pt = state(), state()
    if name == "adam":
        def run(mod, params):
            for w, g, m, v in params:
                mod.adam_update(w, g, m, v, None, 0.001, 0.9, 0.999, 1e-7, 10)
    else:
        def run(mod, params):
            for w, g, v, _ in params:
                mod.rmsprop_update(w, g, v, None, None, 0.001, 0.9, 0.0, 1e-7)
    shape = " + ".join(f"{n:,}" for n in sizes)
    return Case(group, name, shape, lambda: run(k_opt, pk), lambda: run(t_opt, pt), book=book)


BOOK_PARAMS = (78_400, 100, 1_000, 10)


def cases():
    c = [
        # the book's MLP, batch 32: 784 -> 100 -> 10
        gemm_case("book: gemm 784->100", "gemm Z=X·W", 32, 784, 100),
        gemm_case("book: gemm 784->100", "gemm dW=Xᵀ·dZ", 784, 32, 100, ta=True),
        gemm_case("book: gemm 784->100", "gemm dX=dZ·Wᵀ", 32, 100, 784, tb=True),
        gemm_case("book: gemm 100->10", "gemm Z=X·W", 32, 100, 10),
        gemm_case("book: gemm 100->10", "gemm dW=Xᵀ·dZ", 100, 32, 10, ta=True),
        gemm_case("book: gemm 100->10", "gemm dX=dZ·Wᵀ", 32, 10, 100, tb=True),
        bias_act_case("book: fused", 32, 100, "relu", True),
        act_backward_case("book: fused", 32, 100, "relu", True),
        bias_grad_case("book: fused", 32, 100, True),
        softmax_ce_case("book: fused", 32, 10, True),
        dropout_case("book: fused", 3_200, True),
        optimizer_case("book: optimizer", "rmsprop", BOOK_PARAMS, True),
        optimizer_case("book: optimizer", "adam", BOOK_PARAMS, True),
        # large
        gemm_case("large: gemm", "gemm", 256, 1024, 1024, book=False),
        gemm_case("large: gemm", "gemm", 512, 512, 512, book=False),
        bias_act_case("large: element-wise 1M", 1000, 1000, "relu", False),
        bias_act_case("large: element-wise 1M", 1000, 1000, "sigmoid", False),
        act_backward_case("large: element-wise 1M", 1000, 1000, "relu", False),
        softmax_ce_case("large: element-wise 1M", 100_000, 10, False),
        dropout_case("large: element-wise 1M", 1_000_000, False),
        optimizer_case("large: element-wise 1M", "rmsprop", (1_000_000,), False),
        optimizer_case("large: element-wise 1M", "adam", (1_000_000,), False),
    ]
    return c


def measure(case, seconds=0.2):
    """Interleaved median seconds per call: (nncore, numpy)."""
    fns = (case.nn, case.ref)
    for f in fns:          # warm up (workspaces, page faults)
        f(); f()
    # calibrate: calls per batch so that one batch takes ~2 ms on the slower side
    inner = []
    for f in fns:
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            dt = time.perf_counter() - t0
            if dt > 2e-3 or n >= 1 << 16:
                break
            n *= 2
        inner.append(max(1, int(n * 2e-3 / max(dt, 1e-9))))
    samples = ([], [])
    spent = [0.0, 0.0]
    while min(spent) < seconds or min(len(s) for s in samples) < 5:
        for side, f in enumerate(fns):
            n = inner[side]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            dt = time.perf_counter() - t0
            spent[side] += dt
            samples[side].append(dt / n)
    return statistics.median(samples[0]), statistics.median(samples[1])


def header():
    env = {k: os.environ.get(k, "(unset)") for k in
           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg["Build Dependencies"]["blas"]
        blas = f"{b.get('name')} {b.get('version')}"
    except Exception:  # noqa: BLE001
        pass
    lines = [
        f"- CPU: {cpu}, {os.cpu_count()} logical CPUs; nncore threads: "
        f"{config.get_num_threads()} ({config.simd_level()}, tiles {k_gemm.tile_sizes()})",
        f"- NumPy {np.__version__} with {blas}; Python {platform.python_version()}",
        "- environment: " + ", ".join(f"{k}={v}" for k, v in env.items()),
        "- load average (1/5/15 min) at start: " + " / ".join(f"{v:.2f}" for v in os.getloadavg())
        + " (other processes share these CPUs when it is above ~0)",
        "- float32 throughout; ratio = NumPy µs / nncore µs (> 1: nncore faster); "
        "interleaved median per call",
    ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.2, help="time per side per case")
    ap.add_argument("--quick", action="store_true", help="0.05 s per side")
    ap.add_argument("--label", default="", help="a title line for the table")
    ap.add_argument("-k", default="", help="only cases whose id contains this")
    args = ap.parse_args(argv)
    seconds = 0.05 if args.quick else args.seconds
    if args.label:
        print(f"### {args.label}\n")
    print(header() + "\n")
    print("| group | op | shape | nncore µs | NumPy µs | ratio | nncore GFLOP/s | NumPy GFLOP/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for c in cases():
        if args.k and args.k not in c.id:
            continue
        tn, tr = measure(c, seconds)
        gf = (f"{c.flops / tn / 1e9:.1f}", f"{c.flops / tr / 1e9:.1f}") if c.flops else ("", "")
        print(f"| {c.group} | {c.op} | {c.shape} | {tn * 1e6:.2f} | {tr * 1e6:.2f} | "
              f"{tr / tn:.2f} | {gf[0]} | {gf[1]} |", flush=True)
    print("\n- load average at end: " + " / ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    sys.exit(main())
