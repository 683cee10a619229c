# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Python entry points to the optimizer kernels (twin: ``nncore/ops/optimizers.py``).

All arrays flat (ravel them: updates are element-wise), same dtype and size.
"""
from libc.math cimport sqrt, pow
from cython cimport floating
from k_common cimport nn_omp_max_threads
from k_optimizers cimport (OptParams, opt_update, l1_l2_penalty, OPT_SGD,
                           OPT_ADAGRAD, OPT_RMSPROP, OPT_ADAM)


cdef floating *_ptr(str name, str what, floating[::1] a, long n) except? NULL:
    if a is None:
        return NULL
    if a.shape[0] != n:
        raise ValueError(f"{name}: {what} has {a.shape[0]} elements, w has {n}")
    return &a[0] if n else NULL


cdef void _run(OptParams *o, floating[::1] w, floating *g, floating *s1,
               floating *s2, floating *s3):
    cdef long n = w.shape[0]
    cdef int nt = nn_omp_max_threads()
    if n == 0:
        return
    with nogil:
        opt_update(o, &w[0], g, s1, s2, s3, n, nt)


def sgd_update(floating[::1] w not None, floating[::1] g, floating[::1] momentum_slot,
               double learning_rate, double momentum=0.0, bint nesterov=False):
    cdef OptParams o
    cdef long n = w.shape[0]
    if g is None:
        raise ValueError("sgd_update: g is required")
    o.kind = OPT_SGD; o.lr = learning_rate; o.momentum = momentum; o.nesterov = nesterov
    _run(&o, w, _ptr("sgd_update", "g", g, n),
         _ptr("sgd_update", "momentum_slot", momentum_slot, n), NULL, NULL)


def adagrad_update(floating[::1] w not None, floating[::1] g, floating[::1] accumulator,
                   double learning_rate, double epsilon=1e-7):
    cdef OptParams o
    cdef long n = w.shape[0]
    if g is None or accumulator is None:
        raise ValueError("adagrad_update: g and accumulator are required")
    o.kind = OPT_ADAGRAD; o.lr = learning_rate; o.epsilon = epsilon
    _run(&o, w, _ptr("adagrad_update", "g", g, n),
         _ptr("adagrad_update", "accumulator", accumulator, n), NULL, NULL)


def rmsprop_update(floating[::1] w not None, floating[::1] g, floating[::1] velocity,
                   floating[::1] average_gradient, floating[::1] momentum_slot,
                   double learning_rate, double rho=0.9, double momentum=0.0,
                   double epsilon=1e-7):
    """average_gradient: only when centered; momentum_slot: only when momentum > 0."""
    cdef OptParams o
    cdef long n = w.shape[0]
    if g is None or velocity is None:
        raise ValueError("rmsprop_update: g and velocity are required")
    o.kind = OPT_RMSPROP; o.lr = learning_rate; o.rho = rho
    o.momentum = momentum; o.epsilon = epsilon
    _run(&o, w, _ptr("rmsprop_update", "g", g, n),
         _ptr("rmsprop_update", "velocity", velocity, n),
         _ptr("rmsprop_update", "average_gradient", average_gradient, n),
         _ptr("rmsprop_update", "momentum_slot", momentum_slot, n))


def adam_update(floating[::1] w not None, floating[::1] g, floating[::1] m,
                floating[::1] v, floating[::1] vhat, double learning_rate,
                double beta_1, double beta_2, double epsilon, long step):
    """step: the 1-based update count t. vhat: only with amsgrad."""
    cdef OptParams o
    cdef long n = w.shape[0]
    if g is None or m is None or v is None:
        raise ValueError("adam_update: g, m and v are required")
    if step < 1:
        raise ValueError(f"adam_update: step must be >= 1, got {step}")
    o.kind = OPT_ADAM; o.lr = learning_rate; o.beta_1 = beta_1
    o.beta_2 = beta_2; o.epsilon = epsilon
    o.alpha = adam_alpha(learning_rate, beta_1, beta_2, step)
    _run(&o, w, _ptr("adam_update", "g", g, n), _ptr("adam_update", "m", m, n),
         _ptr("adam_update", "v", v, n), _ptr("adam_update", "vhat", vhat, n))


cpdef double adam_alpha(double lr, double beta_1, double beta_2, long step):
    """lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."""
    return lr * sqrt(1.0 - pow(beta_2, step)) / (1.0 - pow(beta_1, step))


def l1_l2_penalty_and_grad(floating[::1] w not None, floating[::1] g, double l1, double l2):
    """Returns l1*sum|w| + l2*sum w^2; adds its gradient into g (if not None)."""
    cdef long n = w.shape[0]
    cdef floating *gp = _ptr("l1_l2_penalty_and_grad", "g", g, n)
    cdef double pen
    if n == 0:
        return 0.0
    with nogil:
        pen = l1_l2_penalty(&w[0], gp, n, l1, l2)
    return pen
