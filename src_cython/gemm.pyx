# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Python entry point to nncore's GEMM (twin: ``nncore/ops/gemm.py``)."""
from cython cimport floating
from k_common cimport nn_omp_max_threads
from k_gemm cimport gemm as _gemm, NN_MR, NN_KC, NN_MC, NN_NC, NN_VBYTES


def gemm(const floating[:, ::1] a not None, const floating[:, ::1] b not None,
         floating[:, ::1] out not None,
         bint trans_a=False, bint trans_b=False, bint accumulate=False):
    """out (+)= op(a) @ op(b) with op = transpose when trans_a / trans_b.

    All three arrays: C-contiguous, same dtype (float32 or float64).
    """
    cdef long M = a.shape[1] if trans_a else a.shape[0]
    cdef long K = a.shape[0] if trans_a else a.shape[1]
    cdef long K2 = b.shape[1] if trans_b else b.shape[0]
    cdef long N = b.shape[0] if trans_b else b.shape[1]
    cdef int rc
    cdef int nt = nn_omp_max_threads()
    if K != K2:
        raise ValueError(
            f"gemm: inner dimensions differ: op(a) is ({M}, {K}) but op(b) is "
            f"({K2}, {N}) (trans_a={bool(trans_a)}, trans_b={bool(trans_b)})")
    if out.shape[0] != M or out.shape[1] != N:
        raise ValueError(f"gemm: out has shape ({out.shape[0]}, {out.shape[1]}), "
                         f"expected ({M}, {N})")
    if M == 0 or N == 0:
        return
    with nogil:
        rc = _gemm(trans_a, trans_b, M, N, K, &a[0, 0] if a.shape[0] * a.shape[1] else NULL,
                   a.shape[1], &b[0, 0] if b.shape[0] * b.shape[1] else NULL,
                   b.shape[1], &out[0, 0], N, accumulate, nt)
    if rc != 0:
        raise MemoryError("gemm: could not allocate its packing workspace")


def tile_sizes():
    """The compiled blocking parameters (for show_config and benchmarks)."""
    return {"MR": NN_MR, "NR_float32": 2 * NN_VBYTES // 4,
            "NR_float64": 2 * NN_VBYTES // 8, "KC": NN_KC, "MC": NN_MC,
            "NC": NN_NC, "vector_bytes": NN_VBYTES}
