# cython: language_level=3
"""Counting correct predictions (the numerator of accuracy).

    sparse     correct_i = [argmax_j p_ij == label_i]
    one-hot    correct_i = [argmax_j p_ij == argmax_j y_ij]
    binary     correct_i = mean_j [(p_ij > threshold) == y_ij]

argmax takes the first maximum, like NumPy.  Returns sum_i w_i correct_i
(w = sample weights, 1 when NULL), summed in row order.
"""
from cython cimport floating
from libc.stdint cimport int32_t

cdef enum MetricKind:
    METRIC_SPARSE = 0
    METRIC_ONEHOT = 1
    METRIC_BINARY = 2

cdef inline long argmax_row(const floating *r, long c) noexcept nogil:
    cdef long j, best = 0
    for j in range(1, c):
        if r[j] > r[best]:
            best = j
    return best

cdef inline double count_correct(int kind, const floating *p,
                                 const int32_t *labels, const floating *y,
                                 const floating *sw, long n, long c,
                                 double threshold) noexcept nogil:
    cdef long i, j
    cdef double tot = 0, ok, w
    cdef floating t
    for i in range(n):
        w = 1.0 if sw == NULL else sw[i]
        if kind == METRIC_SPARSE:
            ok = 1.0 if argmax_row(p + i * c, c) == labels[i] else 0.0
        elif kind == METRIC_ONEHOT:
            ok = 1.0 if argmax_row(p + i * c, c) == argmax_row(y + i * c, c) else 0.0
        else:
            ok = 0
            for j in range(c):
                t = 1 if p[i * c + j] > <floating>threshold else 0
                if t == y[i * c + j]:
                    ok += 1
            ok /= c
        tot += w * ok
    return tot
