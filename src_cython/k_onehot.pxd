# cython: language_level=3
"""One-hot rows: finding the position of each row's single 1.

Shared by the recurrent time loop (``recurrent.pyx``: a batch of one-hot
words is looked up in W instead of multiplied) and the input passes
(``data.pyx``: the book's whole float64 one-hot input turned into int32
positions once per fit, 50 times smaller, so that no batch has to be
converted at all).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int32_t

cdef enum:
    # rows a thread scans at a time (the scan stops early for other inputs)
    ONEHOT_CHUNK = 128


cdef inline bint onehot_scan(const floating *x, long rows, long F, int32_t *idx,
                             int nt) noexcept nogil:
    """Whether every row of x (rows, F) is one-hot -- one 1 among zeros -- or all
    zeros; idx[r] becomes the position of the 1 (-1 for a zero row).  Gives up
    at the first other row (NaN included), so a dense input costs a row or two
    per thread."""
    cdef long nch = (rows + ONEHOT_CHUNK - 1) // ONEHOT_CHUNK, ch, r, r1
    cdef int f, nz, ps, v, nf = <int>F
    cdef int bad = 0
    cdef int *badp = &bad           # shared: written only to 1, read to stop early
    cdef const floating *p
    for ch in prange(nch, schedule="static", num_threads=nt):
        if badp[0]:
            continue
        r1 = (ch + 1) * ONEHOT_CHUNK
        if r1 > rows:
            r1 = rows
        for r in range(ch * ONEHOT_CHUNK, r1):
            p = x + r * F
            # count the nonzeros and add up their positions, without a branch
            # (so the compiler vectorises it); with one nonzero the sum is
            # its position
            nz = 0
            ps = 0
            for f in range(nf):
                v = p[f] != 0
                nz = nz + v
                ps = ps + (f & -v)
            if nz == 0:
                idx[r] = -1
            elif nz == 1 and p[ps] == 1:
                idx[r] = <int32_t>ps
            else:
                badp[0] = 1
                break
    return bad == 0


cdef inline long first_bad_position(const int32_t *idx, long n, long F) noexcept nogil:
    """The first i with idx[i] not in -1..F-1 (not a row of a (F, ...) matrix
    nor the zero row), else -1: positions are checked before they index."""
    cdef long i
    for i in range(n):
        if idx[i] < -1 or idx[i] >= F:
            return i
    return -1
