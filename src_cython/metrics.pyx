# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Python entry points to metric counting (twin: ``nncore/ops/metrics.py``)."""
from cython cimport floating
from libc.stdint cimport int32_t
from k_metrics cimport count_correct, METRIC_SPARSE, METRIC_ONEHOT, METRIC_BINARY


cdef double _count(int kind, str name, const floating[:, ::1] p, const int32_t[::1] labels,
                   const floating[:, ::1] y, const floating[::1] sw, double threshold) except? -1.0:
    cdef long n = p.shape[0], c = p.shape[1], i
    cdef const int32_t *lp = NULL
    cdef const floating *yp = NULL
    cdef const floating *swp = NULL
    cdef double tot
    if labels is not None:
        if labels.shape[0] != n:
            raise ValueError(f"{name}: {labels.shape[0]} labels for {n} rows")
        if n:
            lp = &labels[0]
    if y is not None:
        if y.shape[0] != n or y.shape[1] != c:
            raise ValueError(f"{name}: targets {(y.shape[0], y.shape[1])} vs predictions {(n, c)}")
        if n:
            yp = &y[0, 0]
    if sw is not None:
        if sw.shape[0] != n:
            raise ValueError(f"{name}: {sw.shape[0]} sample weights for {n} rows")
        if n:
            swp = &sw[0]
    if n == 0 or c == 0:
        return 0.0
    with nogil:
        tot = count_correct(kind, &p[0, 0], lp, yp, swp, n, c, threshold)
    return tot


def count_correct_sparse(const floating[:, ::1] probs not None, const int32_t[::1] labels not None,
                         const floating[::1] sample_weight=None):
    cdef const floating[:, ::1] none2d = None
    return _count(METRIC_SPARSE, "count_correct_sparse", probs, labels, none2d,
                  sample_weight, 0.5)


def count_correct_onehot(const floating[:, ::1] probs not None, const floating[:, ::1] targets not None,
                         const floating[::1] sample_weight=None):
    cdef const int32_t[::1] nolabels = None
    return _count(METRIC_ONEHOT, "count_correct_onehot", probs, nolabels, targets,
                  sample_weight, 0.5)


def count_correct_binary(const floating[:, ::1] probs not None, const floating[:, ::1] targets not None,
                         const floating[::1] sample_weight=None, double threshold=0.5):
    cdef const int32_t[::1] nolabels = None
    return _count(METRIC_BINARY, "count_correct_binary", probs, nolabels, targets,
                  sample_weight, threshold)
