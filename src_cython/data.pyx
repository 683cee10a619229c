# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Passes over the user's input arrays (twin: ``nncore/ops/data.py``).

``nncore/models/data.py`` checks every input before a kernel reads it and
converts a big input of another dtype batch by batch (``CastOnRead``).  For
the book's chapter-9 one-hot words -- 20,000 x 100 x 200 float64, 3 GB --
those passes cost more than the training they feed: NumPy's isfinite, min
and max read the array three times, on one core, and a batch converted row by
row is a Python loop over 64 rows of 160 KB.  Here each is one pass, its rows
shared between threads (memory-bound work that a second core still speeds
up on this machine).
"""
from cython.parallel cimport prange
from libc.math cimport fabs
from libc.stdlib cimport malloc, free
from libc.stdint cimport int32_t
from k_common cimport nn_omp_max_threads, par_threads
from k_onehot cimport onehot_scan

__all__ = ["gather_rows", "first_bad_value", "onehot_positions"]

ctypedef fused src_t:
    float
    double

ctypedef fused dst_t:
    float
    double

cdef enum:
    # elements a thread checks at a time
    CHECK_CHUNK = 16384


def gather_rows(const src_t[:, ::1] src not None, const Py_ssize_t[::1] rows not None,
                dst_t[:, ::1] out not None, double limit):
    """out[k] = src[rows[k]], converted to out's dtype (each row is one
    thread's: any thread count gives the same bits), checking on the way what
    ``first_bad_value`` checks: returns the first flat index of out whose
    value is NaN, infinite or larger than ``limit`` in magnitude, or -1."""
    cdef Py_ssize_t n = rows.shape[0], F = src.shape[1], N = src.shape[0], k, f, r
    cdef Py_ssize_t first = -1
    if out.shape[0] != n or out.shape[1] != F:
        raise ValueError(f"gather_rows: out has shape {tuple(out.shape)[:2]}, "
                         f"expected ({n}, {F})")
    for k in range(n):
        if not 0 <= rows[k] < N:
            raise IndexError(f"gather_rows: row {rows[k]} is out of range for {N} rows")
    if n == 0 or F == 0:
        return -1
    cdef int nt = par_threads(n * F, nn_omp_max_threads())
    cdef unsigned char bad
    cdef src_t lim = <src_t>limit
    cdef unsigned char *flag = <unsigned char *>malloc(n)
    if flag == NULL:
        raise MemoryError("gather_rows: out of memory")
    try:
        with nogil:
            for k in prange(n, schedule="static", num_threads=nt):
                r = rows[k]
                bad = 0
                for f in range(F):
                    out[k, f] = <dst_t>src[r, f]
                    bad = bad | (not (fabs(src[r, f]) <= lim))
                flag[k] = bad
            for k in range(n):
                if flag[k]:
                    for f in range(F):
                        if not (fabs(src[rows[k], f]) <= lim):
                            first = k * F + f
                            break
                    break
    finally:
        free(flag)
    return first


def first_bad_value(const src_t[::1] x not None, double limit):
    """The index of the first element of x that is NaN, infinite or larger than
    ``limit`` in magnitude; -1 if there is none.

    One comparison per element, ``not |v| <= limit``, catches all three (NaN
    compares false).  Chunks are checked in parallel; the first bad chunk is
    then searched from its start, so the answer is the first index whatever
    the thread count."""
    cdef Py_ssize_t n = x.shape[0], nch = (n + CHECK_CHUNK - 1) // CHECK_CHUNK
    cdef Py_ssize_t ch, i, i0, i1, first = -1
    cdef int nt = par_threads(n, nn_omp_max_threads())
    cdef unsigned char bad
    cdef src_t lim = <src_t>limit
    cdef unsigned char *flag = <unsigned char *>malloc(nch + 1)
    if flag == NULL:
        raise MemoryError("first_bad_value: out of memory")
    try:
        with nogil:
            for ch in prange(nch, schedule="static", num_threads=nt):
                i0 = ch * CHECK_CHUNK
                i1 = i0 + CHECK_CHUNK if i0 + CHECK_CHUNK < n else n
                bad = 0
                for i in range(i0, i1):
                    # no branch in the loop: the compiler vectorises it
                    bad = bad | (not (fabs(x[i]) <= lim))
                flag[ch] = bad
            for ch in range(nch):
                if flag[ch]:
                    for i in range(ch * CHECK_CHUNK, n):
                        if not (fabs(x[i]) <= lim):
                            first = i
                            break
                    break
    finally:
        free(flag)
    return first


def onehot_positions(const src_t[:, ::1] x not None, int32_t[::1] positions not None):
    """Whether every row of x (rows, F) is one-hot -- a single 1.0 among zeros --
    or all zeros; if so positions[r] is the column of row r's 1 (-1 for a zero
    row).  Rows are shared between threads in chunks; the first row of
    another kind (a second nonzero, a value other than 1, NaN) stops the scan,
    so an input that is not one-hot costs a few rows.  (positions is only
    meaningful when the answer is True.)"""
    cdef Py_ssize_t n = x.shape[0], F = x.shape[1]
    cdef bint ok
    if positions.shape[0] != n:
        raise ValueError(f"onehot_positions: positions has {positions.shape[0]} entries "
                         f"for {n} rows")
    if n == 0:
        return True
    if F == 0 or F > 2147483647:
        return False
    cdef int nt = par_threads(n * F, nn_omp_max_threads())
    with nogil:
        ok = onehot_scan(&x[0, 0], n, F, &positions[0], nt)
    return ok
