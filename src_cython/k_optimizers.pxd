# cython: language_level=3
"""Optimizer updates, in place, in Keras 3's order of operations.

Arithmetic is done in the parameter's own precision (as Keras does with
float32 variables); hyper-parameters arrive as doubles and are rounded once.

    SGD       momentum 0:  w -= lr * g
              else:        m = momentum * m - lr * g
                           w += m                         (plain)
                           w += momentum * m - lr * g     (nesterov, new m)
    Adagrad   a += g^2;   w -= lr * g / sqrt(a + eps)
    RMSprop   v = rho * v + (1 - rho) * g^2
              centered:  mg = rho * mg + (1 - rho) * g;  den = v - mg^2 + eps
              else:      den = v + eps
              inc = lr * g / sqrt(den)
              momentum:  mom = momentum * mom + inc;  w -= mom
              else:      w -= inc
    Adam      alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)   (t = step, from 1)
              m += (g - m) * (1 - beta1);  v += (g^2 - v) * (1 - beta2)
              amsgrad:  vhat = max(vhat, v), used in place of v
              w -= alpha * m / (sqrt(v) + eps)

Updates are element-wise, so splitting them over threads cannot change any
result.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf, fabs
from k_common cimport nn_ftz_enter, nn_ftz_exit, par_threads

cdef enum OptKind:
    OPT_SGD = 0
    OPT_ADAGRAD = 1
    OPT_RMSPROP = 2
    OPT_ADAM = 3

cdef inline floating fsqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)

cdef struct OptParams:
    int kind
    double lr
    double momentum      # SGD, RMSprop
    bint nesterov        # SGD
    bint centered        # RMSprop
    double rho           # RMSprop
    double beta_1        # Adam
    double beta_2        # Adam
    bint amsgrad         # Adam
    double epsilon
    double alpha         # Adam's step size for this step (set by the caller)

cdef inline void opt_update_range(const OptParams *o, floating *w,
                                  const floating *g, floating *s1,
                                  floating *s2, floating *s3, long lo,
                                  long hi) noexcept nogil:
    """s1, s2, s3: the optimizer's slots (NULL where unused):
    SGD (momentum); Adagrad (accumulator); RMSprop (velocity, average_gradient,
    momentum); Adam (m, v, vhat)."""
    cdef long i
    cdef floating lr = <floating>o.lr, mu = <floating>o.momentum
    cdef floating eps = <floating>o.epsilon, rho = <floating>o.rho
    cdef floating b1 = <floating>o.beta_1, b2 = <floating>o.beta_2
    cdef floating alpha = <floating>o.alpha
    # 1 - rho etc. in the parameter's precision, as Keras computes them (a bare
    # "1 - rho" here would be evaluated in double, element by element)
    cdef floating one = 1
    cdef floating omrho = one - rho, omb1 = one - b1, omb2 = one - b2
    cdef floating gi, m, den, inc, v
    if o.kind == OPT_SGD:
        if s1 == NULL:
            for i in range(lo, hi):
                w[i] = w[i] - g[i] * lr
        elif o.nesterov:
            for i in range(lo, hi):
                m = -g[i] * lr + s1[i] * mu
                s1[i] = m
                w[i] = w[i] + (-g[i] * lr + m * mu)
        else:
            for i in range(lo, hi):
                m = -g[i] * lr + s1[i] * mu
                s1[i] = m
                w[i] = w[i] + m
    elif o.kind == OPT_ADAGRAD:
        for i in range(lo, hi):
            gi = g[i]
            s1[i] = s1[i] + gi * gi
            w[i] = w[i] - lr * gi / fsqrt(s1[i] + eps)
    elif o.kind == OPT_RMSPROP:
        for i in range(lo, hi):
            gi = g[i]
            s1[i] = rho * s1[i] + omrho * gi * gi
            if s2 != NULL:
                s2[i] = rho * s2[i] + omrho * gi
                den = s1[i] - s2[i] * s2[i] + eps
            else:
                den = s1[i] + eps
            inc = lr * gi / fsqrt(den)
            if s3 != NULL:
                s3[i] = mu * s3[i] + inc
                w[i] = w[i] - s3[i]
            else:
                w[i] = w[i] - inc
    else:
        for i in range(lo, hi):
            gi = g[i]
            s1[i] = s1[i] + (gi - s1[i]) * omb1
            s2[i] = s2[i] + (gi * gi - s2[i]) * omb2
            v = s2[i]
            if s3 != NULL:
                if v > s3[i]:
                    s3[i] = v
                v = s3[i]
            w[i] = w[i] - (s1[i] * alpha) / (fsqrt(v) + eps)

cdef inline void opt_update(const OptParams *o, floating *w, const floating *g,
                            floating *s1, floating *s2, floating *s3, long n,
                            int nthreads) noexcept nogil:
    cdef int nt = par_threads(n, nthreads)
    cdef int c
    cdef unsigned int fpu
    if nt == 1:
        fpu = nn_ftz_enter()
        opt_update_range(o, w, g, s1, s2, s3, 0, n)
        nn_ftz_exit(fpu)
        return
    for c in prange(nt, num_threads=nt, schedule='static'):
        fpu = nn_ftz_enter()
        opt_update_range(o, w, g, s1, s2, s3, c * n // nt, (c + 1) * n // nt)
        nn_ftz_exit(fpu)

cdef inline double l1_l2_sum(const floating *w, long n, double l1,
                             double l2) noexcept nogil:
    """l1 * sum|w| + l2 * sum w^2 (the penalty itself; the caller sets FTZ).

    The sums keep 16 partial sums, element i going to sum i % 16: a fixed
    order (deterministic) whose inner loop the compiler turns into vector
    adds -- a single running sum would serialise on the add latency."""
    cdef long i, k, nb = n - n % 16
    cdef double s1[16]
    cdef double s2[16]
    cdef double a1 = 0, a2 = 0, wi
    for k in range(16):
        s1[k] = 0
        s2[k] = 0
    i = 0
    while i < nb:
        for k in range(16):
            wi = w[i + k]
            s1[k] += fabs(wi)
            s2[k] += wi * wi
        i += 16
    for i in range(nb, n):
        wi = w[i]
        a1 += fabs(wi)
        a2 += wi * wi
    for k in range(16):
        a1 += s1[k]
        a2 += s2[k]
    return l1 * a1 + l2 * a2

cdef inline void l1_l2_grad(const floating *w, floating *g, long n, double l1,
                            double l2) noexcept nogil:
    """g += l1 * sign(w) + 2 * l2 * w, element-wise (the caller sets FTZ)."""
    cdef long i
    cdef floating fl1 = <floating>l1, fl2 = <floating>(2 * l2)
    if l1 != 0:
        for i in range(n):
            g[i] = g[i] + (fl1 if w[i] > 0 else (-fl1 if w[i] < 0 else 0))
    if l2 != 0:
        for i in range(n):
            g[i] = g[i] + fl2 * w[i]

cdef inline double l1_l2_penalty(const floating *w, floating *g, long n,
                                 double l1, double l2) noexcept nogil:
    """Regularization: returns l1 * sum|w| + l2 * sum w^2 and, when g is not
    NULL, adds its gradient l1 * sign(w) + 2 * l2 * w into g."""
    # L2 pulls weights towards 0, where float32 turns denormal (and slow)
    cdef unsigned int fpu = nn_ftz_enter()
    cdef double pen = l1_l2_sum(w, n, l1, l2)
    if g != NULL:
        l1_l2_grad(w, g, n, l1, l2)
    nn_ftz_exit(fpu)
    return pen
