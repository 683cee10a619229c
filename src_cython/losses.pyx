# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Python entry points to the fused loss kernels (twin: ``nncore/ops/losses.py``).

Each returns sum_i w_i * loss_i and writes the gradient of
``scale * sum_i w_i loss_i`` into ``d`` (skipped when d is None).
Label ranges are the caller's responsibility *here*, but every wrapper checks
them anyway: an out-of-range label would index outside the row.
"""
import numpy as np
from cython cimport floating
from libc.stdint cimport int32_t
from k_common cimport nn_omp_max_threads
from k_losses cimport (loss_forward_backward, LOSS_SOFTMAX_SPARSE,
                       LOSS_SOFTMAX_DENSE, LOSS_SIGMOID_BCE, LOSS_PROBS_SPARSE,
                       LOSS_PROBS_DENSE, LOSS_PROBS_BCE, LOSS_MSE)


cdef double _run(int kind, str name, floating[:, ::1] z, const int32_t[::1] labels, const floating[:, ::1] y, floating[:, ::1] p, floating[:, ::1] d, double scale, const floating[::1] sw) except? -1.0:
    cdef long n = z.shape[0], c = z.shape[1], i
    cdef const int32_t *lp = NULL
    cdef const floating *yp = NULL
    cdef const floating *swp = NULL
    cdef floating *pp = NULL
    cdef floating *dp = NULL
    cdef double[::1] rows
    cdef double tot
    cdef int nt = nn_omp_max_threads()
    if c == 0:
        raise ValueError(f"{name}: predictions have 0 columns")
    if labels is not None:
        if labels.shape[0] != n:
            raise ValueError(f"{name}: {labels.shape[0]} labels for {n} rows")
        for i in range(n):
            if labels[i] < 0 or labels[i] >= c:
                raise ValueError(f"{name}: label {labels[i]} at row {i} is "
                                 f"outside [0, {c})")
        if n:
            lp = &labels[0]
    if y is not None:
        if y.shape[0] != n or y.shape[1] != c:
            raise ValueError(f"{name}: targets have shape {(y.shape[0], y.shape[1])}, "
                             f"predictions {(n, c)}")
        if n:
            yp = &y[0, 0]
    for arr, what in ((p, "p"), (d, "d")):
        if arr is not None and (arr.shape[0] != n or arr.shape[1] != c):
            raise ValueError(f"{name}: {what} has shape {(arr.shape[0], arr.shape[1])}, "
                             f"expected {(n, c)}")
    if sw is not None:
        if sw.shape[0] != n:
            raise ValueError(f"{name}: {sw.shape[0]} sample weights for {n} rows")
        if n:
            swp = &sw[0]
    if n == 0:
        return 0.0
    if p is not None:
        pp = &p[0, 0]
    if d is not None:
        dp = &d[0, 0]
    rows = np.empty(n, dtype=np.float64)
    with nogil:
        tot = loss_forward_backward(kind, &z[0, 0], lp, yp, swp, pp, dp, n, c,
                                    scale, &rows[0], nt)
    return tot


def softmax_crossentropy_sparse(floating[:, ::1] logits not None,
                                const int32_t[::1] labels not None,
                                floating[:, ::1] probs not None, floating[:, ::1] dlogits,
                                double scale, const floating[::1] sample_weight=None):
    cdef const floating[:, ::1] none2d = None
    cdef floating[:, ::1] noout = None
    return _run(LOSS_SOFTMAX_SPARSE, "softmax_crossentropy_sparse", logits, labels, none2d, probs, dlogits, scale, sample_weight)


def softmax_crossentropy(floating[:, ::1] logits not None, const floating[:, ::1] targets not None,
                         floating[:, ::1] probs not None, floating[:, ::1] dlogits,
                         double scale, const floating[::1] sample_weight=None):
    cdef floating[:, ::1] none2d = None
    cdef const int32_t[::1] nolabels = None
    return _run(LOSS_SOFTMAX_DENSE, "softmax_crossentropy", logits, nolabels, targets, probs, dlogits, scale, sample_weight)


def sigmoid_binary_crossentropy(floating[:, ::1] logits not None,
                                const floating[:, ::1] targets not None,
                                floating[:, ::1] probs not None, floating[:, ::1] dlogits,
                                double scale, const floating[::1] sample_weight=None):
    cdef floating[:, ::1] none2d = None
    cdef const int32_t[::1] nolabels = None
    return _run(LOSS_SIGMOID_BCE, "sigmoid_binary_crossentropy", logits, nolabels, targets, probs, dlogits, scale, sample_weight)


def crossentropy_sparse_from_probs(floating[:, ::1] probs not None,
                                   const int32_t[::1] labels not None,
                                   floating[:, ::1] dprobs, double scale,
                                   const floating[::1] sample_weight=None):
    cdef const floating[:, ::1] none2d = None
    cdef floating[:, ::1] noout = None
    return _run(LOSS_PROBS_SPARSE, "crossentropy_sparse_from_probs", probs, labels, none2d, noout, dprobs, scale, sample_weight)


def crossentropy_from_probs(floating[:, ::1] probs not None, const floating[:, ::1] targets not None,
                            floating[:, ::1] dprobs, double scale,
                            const floating[::1] sample_weight=None):
    cdef floating[:, ::1] noout = None
    cdef const int32_t[::1] nolabels = None
    return _run(LOSS_PROBS_DENSE, "crossentropy_from_probs", probs, nolabels, targets, noout, dprobs, scale, sample_weight)


def binary_crossentropy_from_probs(floating[:, ::1] probs not None,
                                   const floating[:, ::1] targets not None,
                                   floating[:, ::1] dprobs, double scale,
                                   const floating[::1] sample_weight=None):
    cdef floating[:, ::1] noout = None
    cdef const int32_t[::1] nolabels = None
    return _run(LOSS_PROBS_BCE, "binary_crossentropy_from_probs", probs, nolabels, targets, noout, dprobs, scale, sample_weight)


def mean_squared_error(floating[:, ::1] preds not None, const floating[:, ::1] targets not None,
                       floating[:, ::1] dpreds, double scale,
                       const floating[::1] sample_weight=None):
    cdef floating[:, ::1] noout = None
    cdef const int32_t[::1] nolabels = None
    return _run(LOSS_MSE, "mean_squared_error", preds, nolabels, targets, noout, dpreds, scale, sample_weight)
