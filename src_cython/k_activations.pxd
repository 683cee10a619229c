# cython: language_level=3
"""Fused bias + activation, forward and backward.

Forward, in place on the pre-activation ``z`` (n rows x m units)::

    a = f(z + b)          f in {linear, relu, sigmoid, tanh, softmax (per row)}

Backward, from the upstream gradient ``da`` and the forward *output* ``a``
(every supported f has a derivative expressible through its output)::

    linear   dz = da
    relu     dz = da * (a > 0)
    sigmoid  dz = da * a * (1 - a)
    tanh     dz = da * (1 - a^2)
    softmax  dz_i = a_i * (da_i - sum_j da_j a_j)

Bias gradient: db_j = sum_i dz_ij (column sums, always summed in row order so
the result does not depend on the number of threads).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, tanh, tanhf
from k_common cimport nn_ftz_enter, nn_ftz_exit, par_threads

cdef extern from "nn_vmath.h" nogil:
    void nn_sigmoid_f32(float *z, long n)

cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_SIGMOID = 2
    ACT_TANH = 3
    ACT_SOFTMAX = 4

cdef inline floating fexp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)

cdef inline floating sigmoid1(floating x) noexcept nogil:
    """Logistic function that never overflows exp()."""
    cdef floating e
    if x >= 0:
        return 1 / (1 + fexp(-x))
    e = fexp(x)
    return e / (1 + e)

cdef inline void softmax_row(floating *z, long m) noexcept nogil:
    """z <- exp(z - max z) / sum(...), in place, for one row."""
    cdef long j
    cdef floating mx = z[0]
    cdef double s = 0
    for j in range(1, m):
        if z[j] > mx:
            mx = z[j]
    for j in range(m):
        z[j] = fexp(z[j] - mx)
        s += z[j]
    for j in range(m):
        z[j] = <floating>(z[j] / s)

cdef inline void bias_act_block(floating *z, long ld, const floating *bias,
                                long lo, long hi, long c0, long c1,
                                int act) noexcept nogil:
    """Rows lo <= i < hi, columns c0 <= j < c1 of z (row stride ld) <- f(z + b).
    Element-wise, so any block gives the same numbers -- except softmax,
    which needs whole rows (c0 = 0, c1 = the row width)."""
    cdef long i, j
    cdef floating *row
    cdef floating v
    for i in range(lo, hi):
        row = z + i * ld
        if bias != NULL:
            for j in range(c0, c1):
                row[j] = row[j] + bias[j]
        if act == ACT_RELU:
            for j in range(c0, c1):
                v = row[j]
                row[j] = 0 if v < 0 else v      # NaN stays NaN, as in NumPy
        elif act == ACT_SIGMOID:
            if floating is float:
                nn_sigmoid_f32(row + c0, c1 - c0)      # vectorised (nn_vmath.h)
            else:
                for j in range(c0, c1):
                    row[j] = sigmoid1(row[j])
        elif act == ACT_TANH:
            for j in range(c0, c1):
                if floating is float:
                    row[j] = tanhf(row[j])
                else:
                    row[j] = tanh(row[j])
        elif act == ACT_SOFTMAX:
            softmax_row(row + c0, c1 - c0)

cdef inline void bias_act_rows(floating *z, const floating *bias, long lo,
                               long hi, long m, int act) noexcept nogil:
    """Rows lo <= i < hi of z (n x m) <- f(z + b)."""
    bias_act_block(z, m, bias, lo, hi, 0, m, act)

cdef inline void bias_act_forward(floating *z, const floating *bias, long n,
                                  long m, int act, int nthreads) noexcept nogil:
    """z (n x m) <- f(z + bias) in place; bias may be NULL."""
    cdef int nt = par_threads(n * m, nthreads)
    cdef int c
    cdef unsigned int fpu
    if nt == 1:
        fpu = nn_ftz_enter()
        bias_act_rows(z, bias, 0, n, m, act)
        nn_ftz_exit(fpu)
        return
    for c in prange(nt, num_threads=nt, schedule='static'):
        fpu = nn_ftz_enter()
        bias_act_rows(z, bias, c * n // nt, (c + 1) * n // nt, m, act)
        nn_ftz_exit(fpu)

cdef inline void act_backward_block(const floating *da, const floating *a,
                                    floating *dz, long ld, long lo, long hi,
                                    long c0, long c1, int act) noexcept nogil:
    """dz = da * f'(.) on rows [lo, hi) x columns [c0, c1) (row stride ld);
    softmax needs whole rows."""
    cdef long i, j, k
    cdef double dot
    cdef floating v, one = 1      # (a bare 1 - v would be computed in double)
    for i in range(lo, hi):
        k = i * ld
        if act == ACT_LINEAR:
            for j in range(k + c0, k + c1):
                dz[j] = da[j]
        elif act == ACT_RELU:
            for j in range(k + c0, k + c1):
                dz[j] = da[j] if a[j] > 0 else 0
        elif act == ACT_SIGMOID:
            for j in range(k + c0, k + c1):
                v = a[j]
                dz[j] = da[j] * v * (one - v)
        elif act == ACT_TANH:
            for j in range(k + c0, k + c1):
                v = a[j]
                dz[j] = da[j] * (one - v * v)
        elif act == ACT_SOFTMAX:
            dot = 0
            for j in range(k + c0, k + c1):
                dot += da[j] * a[j]
            for j in range(k + c0, k + c1):
                dz[j] = a[j] * (da[j] - <floating>dot)

cdef inline void act_backward_rows(const floating *da, const floating *a,
                                   floating *dz, long lo, long hi, long m,
                                   int act) noexcept nogil:
    act_backward_block(da, a, dz, m, lo, hi, 0, m, act)

cdef inline void act_backward(const floating *da, const floating *a,
                              floating *dz, long n, long m, int act,
                              int nthreads) noexcept nogil:
    """dz = da * f'(.) expressed through the output a; dz may alias da."""
    cdef int nt = par_threads(n * m, nthreads)
    cdef int c
    cdef unsigned int fpu
    if nt == 1:
        fpu = nn_ftz_enter()
        act_backward_rows(da, a, dz, 0, n, m, act)
        nn_ftz_exit(fpu)
        return
    for c in prange(nt, num_threads=nt, schedule='static'):
        fpu = nn_ftz_enter()
        act_backward_rows(da, a, dz, c * n // nt, (c + 1) * n // nt, m, act)
        nn_ftz_exit(fpu)

cdef inline void bias_grad_cols(const floating *dz, floating *db, long n,
                                long m, long j0, long j1,
                                bint accumulate) noexcept nogil:
    """db_j (+)= sum_i dz_ij for the columns j0 <= j < j1, rows summed in
    order (deterministic, and the same whichever thread owns which columns)."""
    cdef long i, j
    if not accumulate:
        for j in range(j0, j1):
            db[j] = 0
    for i in range(n):
        for j in range(j0, j1):
            db[j] += dz[i * m + j]

cdef inline void bias_grad(const floating *dz, floating *db, long n, long m,
                           bint accumulate) noexcept nogil:
    """db_j (+)= sum_i dz_ij, rows summed in order (deterministic)."""
    cdef unsigned int fpu = nn_ftz_enter()
    bias_grad_cols(dz, db, n, m, 0, m, accumulate)
    nn_ftz_exit(fpu)
