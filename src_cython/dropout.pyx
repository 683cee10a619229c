# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Python entry points to the dropout kernels (twin: ``nncore/ops/dropout.py``)."""
from cython cimport floating
from libc.stdint cimport uint8_t, uint64_t
from k_common cimport nn_omp_max_threads
from k_dropout cimport dropout_forward as _fwd, dropout_backward as _bwd


def _check(str name, long n, long n2, double rate):
    if n2 != n:
        raise ValueError(f"{name}: arrays have {n} and {n2} elements")
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"{name}: rate must be in [0, 1), got {rate}")


def dropout_forward(const floating[::1] x not None, floating[::1] out not None,
                    uint8_t[::1] mask not None,
                    double rate, unsigned long long seed, unsigned long long step):
    """out = x * keep / (1 - rate), keep[i] = u(seed, step, i) < 1 - rate (flat arrays)."""
    cdef long n = x.shape[0]
    cdef int nt = nn_omp_max_threads()
    _check("dropout_forward", n, out.shape[0], rate)
    _check("dropout_forward", n, mask.shape[0], rate)
    if n == 0:
        return
    with nogil:
        _fwd(&x[0], &out[0], &mask[0], n, rate, seed, step, nt)


def dropout_backward(floating[::1] grad not None, const uint8_t[::1] mask not None,
                     double rate, floating[::1] dx not None):
    """dx = grad * mask / (1 - rate) (flat arrays)."""
    cdef long n = grad.shape[0]
    _check("dropout_backward", n, mask.shape[0], rate)
    _check("dropout_backward", n, dx.shape[0], rate)
    if n == 0:
        return
    with nogil:
        _bwd(&grad[0], &mask[0], &dx[0], n, rate)
