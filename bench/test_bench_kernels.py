"""pytest-benchmark: each nncore kernel vs its NumPy twin (GEMM vs np.matmul).

    PYTHONPATH=. pytest bench/test_bench_kernels.py --benchmark-group-by=group

Not part of the test suite (``pytest tests/`` does not collect bench/).  The
cases (book shapes: batch 32, 784 -> 100 -> 10; large shapes: 256x1024x1024
and 512x512x512 GEMM, element-wise ops on 1M elements) are defined once in
``kernel_ratios.py``, which also prints an interleaved side-by-side table.
Each case's two sides share a benchmark group, so the "compare" columns read
as the nncore / NumPy ratio.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_ratios  # noqa: E402

CASES = kernel_ratios.cases()


@pytest.mark.parametrize("side", ["nncore", "numpy"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel(benchmark, case, side):
    benchmark.group = f"{case.group}: {case.op} {case.shape}"
    benchmark.extra_info["flops"] = case.flops
    fn = case.nn if side == "nncore" else case.ref
    benchmark(fn)
