# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Python entry points to the bias+activation kernels (twin: ``nncore/ops/activations.py``)."""
from cython cimport floating
from k_common cimport nn_omp_max_threads
from k_activations cimport (bias_act_forward as _fwd, act_backward as _bwd,
                            bias_grad as _bgrad, ACT_LINEAR, ACT_RELU,
                            ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX)

ACTIVATION_CODES = {"linear": ACT_LINEAR, "relu": ACT_RELU,
                    "sigmoid": ACT_SIGMOID, "tanh": ACT_TANH,
                    "softmax": ACT_SOFTMAX}


cpdef int activation_code(str name) except -1:
    try:
        return ACTIVATION_CODES[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: "
                         f"{', '.join(ACTIVATION_CODES)}") from None


def bias_act_forward(floating[:, ::1] z not None, floating[::1] bias, str activation):
    """z <- activation(z + bias), in place (bias may be None)."""
    cdef int act = activation_code(activation)
    cdef long n = z.shape[0], m = z.shape[1]
    cdef const floating *bp = NULL
    cdef int nt = nn_omp_max_threads()
    if bias is not None:
        if bias.shape[0] != m:
            raise ValueError(f"bias_act_forward: bias has {bias.shape[0]} "
                             f"entries, z has {m} columns")
        if m:
            bp = &bias[0]
    if n * m == 0:
        return
    with nogil:
        _fwd(&z[0, 0], bp, n, m, act, nt)


def act_backward(floating[:, ::1] grad not None, floating[:, ::1] out not None,
                 str activation, floating[:, ::1] dz not None):
    """dz = grad * activation'(.) written through the forward output ``out``."""
    cdef int act = activation_code(activation)
    cdef long n = grad.shape[0], m = grad.shape[1]
    cdef int nt = nn_omp_max_threads()
    if out.shape[0] != n or out.shape[1] != m or dz.shape[0] != n or dz.shape[1] != m:
        raise ValueError(
            f"act_backward: grad {(grad.shape[0], grad.shape[1])}, out "
            f"{(out.shape[0], out.shape[1])} and dz {(dz.shape[0], dz.shape[1])} must match")
    if n * m == 0:
        return
    with nogil:
        _bwd(&grad[0, 0], &out[0, 0], &dz[0, 0], n, m, act, nt)


def bias_grad(floating[:, ::1] dz not None, floating[::1] db not None, bint accumulate=False):
    """db (+)= dz.sum(axis=0), summed in row order."""
    cdef long n = dz.shape[0], m = dz.shape[1]
    if db.shape[0] != m:
        raise ValueError(f"bias_grad: db has {db.shape[0]} entries, dz has {m} columns")
    if m == 0:
        return
    if n == 0:
        if not accumulate:
            db[:] = 0
        return
    with nogil:
        _bgrad(&dz[0, 0], &db[0], n, m, accumulate)
