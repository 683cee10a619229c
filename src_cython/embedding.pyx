# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Embedding row gather and scatter-add gradient (twin: ``nncore/ops/embedding.py``).

The kernels are kept in this module (not a ``k_*.pxd``) because only the
Embedding layer calls them; indices arrive checked (0 <= idx < V) from the
layer, so the loops read the table without bounds checks.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy, memset
from k_common cimport nn_omp_max_threads, par_threads


def _check(str name, long n, long n_idx, long d, long d2):
    if n != n_idx:
        raise ValueError(f"{name}: {n_idx} indices for {n} rows")
    if d != d2:
        raise ValueError(f"{name}: rows of {d} and {d2} values")


def embedding_forward(const floating[:, ::1] table not None, const Py_ssize_t[::1] idx not None,
                      floating[:, ::1] out not None):
    """out[n] = table[idx[n]] for every n (rows copied; threads split the rows)."""
    cdef Py_ssize_t N = out.shape[0], D = out.shape[1], n
    cdef int nt
    _check("embedding_forward", N, idx.shape[0], D, table.shape[1])
    if N == 0 or D == 0:
        return
    nt = par_threads(N * D, nn_omp_max_threads())
    with nogil:
        # each row is written by exactly one thread: any thread count gives
        # bitwise the same output
        for n in prange(N, schedule="static", num_threads=nt):
            memcpy(&out[n, 0], &table[idx[n], 0], D * sizeof(floating))


def embedding_backward(const floating[:, ::1] grad not None, const Py_ssize_t[::1] idx not None,
                       floating[:, ::1] dtable not None):
    """dtable = 0, then dtable[idx[n]] += grad[n] for n = 0, 1, ... in order.

    One thread: two samples may hit the same row, and adding in a fixed order
    keeps the result bitwise reproducible (and equal to the NumPy twin's
    np.add.at).  The work is N*D additions, tiny beside the layers above."""
    cdef Py_ssize_t N = grad.shape[0], D = grad.shape[1], V = dtable.shape[0], n, j
    cdef floating* row
    cdef const floating* g
    _check("embedding_backward", N, idx.shape[0], D, dtable.shape[1])
    with nogil:
        if V * D:
            memset(&dtable[0, 0], 0, V * D * sizeof(floating))
        for n in range(N):
            row = &dtable[idx[n], 0]
            g = &grad[n, 0]
            for j in range(D):
                row[j] += g[j]
