# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Embedding index check, row gather and scatter-add gradient (twin:
``nncore/ops/embedding.py``).

The kernels are kept in this module (not a ``k_*.pxd``) because only the
Embedding layer calls them.  ``embedding_indices`` checks and converts the
indices (the layer raises its error when it reports a bad one), so the
gather and the scatter-add read the table without bounds checks.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy, memset
from k_common cimport nn_omp_max_threads, par_threads

# The index dtypes checked in C: what a model hands the layer (its float
# dtype, on the compiled loop) and what users' arrays hold (int32, int64).
# Other dtypes take the layer's NumPy check.
ctypedef fused index_t:
    float
    double
    int32_t
    int64_t


def _check(str name, long n, long n_idx, long d, long d2):
    if n != n_idx:
        raise ValueError(f"{name}: {n_idx} indices for {n} rows")
    if d != d2:
        raise ValueError(f"{name}: rows of {d} and {d2} values")


def embedding_indices(const index_t[::1] x not None, Py_ssize_t input_dim,
                      Py_ssize_t[::1] idx):
    """idx[n] = x[n] when every x[n] is an integer in 0..input_dim-1 (floats
    holding integers count); returns -1 then, else the position of the first
    bad value (idx is left partly written).  idx None: check only.

    One pass over the indices, instead of the several whole-array NumPy
    passes (isfinite, floor, min, max, the cast) a training step paid."""
    cdef Py_ssize_t N = x.shape[0], n, i, bad = -1
    cdef index_t v
    cdef double dv
    cdef bint store = idx is not None
    if store and idx.shape[0] != N:
        raise ValueError(f"embedding_indices: {N} values for {idx.shape[0]} indices")
    with nogil:
        for n in range(N):
            v = x[n]
            if index_t is float or index_t is double:
                # compared as doubles (exact for any input_dim below 2**53),
                # written so that NaN fails: a comparison with NaN is false
                dv = v
                if not (dv >= 0 and dv < input_dim):
                    bad = n
                    break
                i = <Py_ssize_t>dv
                if i != dv:             # 2.5: not a word index
                    bad = n
                    break
            else:
                if v < 0 or v >= input_dim:
                    bad = n
                    break
                i = <Py_ssize_t>v
            if store:
                idx[n] = i
    return bad


def embedding_forward(const floating[:, ::1] table not None, const Py_ssize_t[::1] idx not None,
                      floating[:, ::1] out not None):
    """out[n] = table[idx[n]] for every n (rows copied; threads split the rows)."""
    cdef Py_ssize_t N = out.shape[0], D = out.shape[1], n, j
    cdef int nt
    cdef floating *o
    cdef const floating *t
    _check("embedding_forward", N, idx.shape[0], D, table.shape[1])
    if N == 0 or D == 0:
        return
    nt = par_threads(N * D, nn_omp_max_threads())
    with nogil:
        if nt == 1 and D <= 32:
            # short rows (the book's 16 values): an inlined copy loop, not a
            # memcpy call per row
            for n in range(N):
                o = &out[n, 0]
                t = &table[idx[n], 0]
                for j in range(D):
                    o[j] = t[j]
        else:
            # each row is written by exactly one thread: any thread count
            # gives bitwise the same output
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
