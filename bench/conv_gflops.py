#!/usr/bin/env python3
"""GFLOP/s of the convolution kernels on the book's chapter-8 layers (batch 32).

For each conv layer of the book's CNN it times ``conv2d_forward`` and
``conv2d_backward`` (weights, bias and -- for the second layer -- input
gradients) and prints GFLOP/s against wall time and against the process's
CPU time.  On a shared machine the second number is the steadier one: it
does not count time the threads spent waiting for a core.  One FMA = 2 FLOP;
forward = N*OH*OW*KH*KW*C*F FMA, backward = the same for dW plus again for dx.

The peak to compare with is measured in the same run: nncore's own GEMM on a
512 x 512 x 512 float32 product with the same thread count (the machine's
practical GEMM peak; NumPy/OpenBLAS reaches about the same, see README.md).
Layers on the Winograd path (3x3, stride 1, >= 8 channels) do 16/36 of the
direct method's multiplications in their matrix products; their GFLOP/s are
"direct-equivalent" (the FLOPs a direct convolution would need per second,
the number to compare with an im2col kernel) and can exceed the GEMM peak.

    python bench/conv_gflops.py [--threads 1] [--seconds 1]
"""
import argparse
import time

import numpy as np

import nncore
from nncore._ext import conv as K

LAYERS = [  # name, (N, H, W, C), (KH, KW, F), need dx
    ("conv1 28x28x1 -> 32", (32, 28, 28, 1), (3, 3, 32), False),
    ("conv2 14x14x32 -> 64", (32, 14, 14, 32), (3, 3, 64), True),
]


def timed(fn, seconds):
    fn()
    reps, w0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - w0 < seconds:
        fn()
        reps += 1
    return (time.perf_counter() - w0) / reps, (time.process_time() - c0) / reps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seconds", type=float, default=1.0)
    a = p.parse_args()
    if a.threads:
        nncore.set_num_threads(a.threads)
    threads = nncore.get_num_threads()
    rng = np.random.default_rng(0)
    print(f"threads={threads}")
    a_, b_ = rng.random((512, 512), dtype=np.float32), rng.random((512, 512), dtype=np.float32)
    c_ = np.empty((512, 512), np.float32)
    from nncore.backend import kernels
    gemm = kernels().gemm
    peak_wall, peak_cpu = timed(lambda: gemm(a_, b_, c_), a.seconds)
    peak = 2 * 512 ** 3 / peak_wall / 1e9
    print(f"GEMM peak (nncore, 512^3 float32): {peak:6.1f} GFLOP/s wall, "
          f"{2 * 512 ** 3 / peak_cpu / 1e9:6.1f} per CPU-second")
    for name, (n, h, w, c), (kh, kw, f), need_dx in LAYERS:
        x = rng.random((n, h, w, c), dtype=np.float32)
        k = rng.standard_normal((kh, kw, c, f)).astype(np.float32)
        b = np.zeros(f, np.float32)
        out = np.empty((n, h, w, f), np.float32)       # 'same', stride 1
        g = rng.standard_normal(out.shape).astype(np.float32)
        dk, db = np.empty_like(k), np.empty_like(b)
        dx = np.empty_like(x) if need_dx else None
        ws = np.empty(K.conv2d_workspace_size(n, h, w, kh, kw, c, f, True), np.float32)
        geo = (1, 1, (kh - 1) // 2, (kw - 1) // 2)
        fma = n * h * w * kh * kw * c * f
        fwd = timed(lambda: K.conv2d_forward(x, k, b, out, ws, "relu", *geo), a.seconds)
        bwd = timed(lambda: K.conv2d_backward(x, k, out, g, "relu", dk, db, dx, ws, *geo),
                    a.seconds)
        algo = ("winograd" if K.uses_winograd(kh, kw, 1, 1, c, f)
                else "direct" if c == 1 else "im2col")
        for what, (wall, cpu), flops in (("forward", fwd, 2 * fma),
                                         ("backward", bwd, 2 * fma * (2 if need_dx else 1))):
            print(f"{name:22s} {algo:8s} {what:8s} {wall * 1e3:7.3f} ms  "
                  f"{flops / wall / 1e9:6.1f} GFLOP/s wall ({flops / wall / 1e9 / peak:4.0%} "
                  f"of peak)  {flops / cpu / 1e9:6.1f} GFLOP/s per CPU-second")


if __name__ == "__main__":
    main()
