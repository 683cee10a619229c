# cython: language_level=3
"""Losses with their gradients, computed in one pass.

Every kernel works on n rows (samples) of c columns (classes / outputs),
returns the *sum* over rows of ``w_i * loss_i`` (w = sample weights, 1 when
NULL) and, when ``d`` is not NULL, writes the gradient of
``scale * sum_i w_i loss_i`` into ``d``.  With ``scale = 1 / batch_size`` that
is Keras's "sum_over_batch_size" mean.  Per-row losses go to ``row_loss``
first and are summed in row order afterwards, so the total is the same for
any number of threads.

From logits (fused; what Keras on TensorFlow does for a softmax / sigmoid
output layer, with no clipping)::

    softmax CE      p = softmax(z);  loss = logsumexp(z) - sum_j y_j z_j
                    dL/dz = (p * sum_j y_j - y) * w * scale   (= p - y, one-hot)
    sigmoid BCE     p = sigmoid(z);  loss = mean_j [max(z,0) - z y + log(1 + e^-|z|)]
                    dL/dz = (p - y) * w * scale / c

From probabilities (Keras's other backends, and any output that is not a
softmax/sigmoid layer), with eps = 1e-7::

    CE          q = clip(p / sum_j p_j, eps, 1 - eps);  loss = -sum_j y_j log q_j
    sparse CE   q = clip(p, eps, 1 - eps);  loss = log(sum_j q_j) - log q_label
                (TensorFlow feeds log(q) to its sparse softmax-CE: that
                renormalises *after* clipping, unlike the dense form)
    BCE         q = clip(p, eps, 1 - eps);  loss = -mean_j [y log q + (1-y) log(1 - q)]
    MSE  loss = mean_j (p_j - y_j)^2;  dL/dp = 2 (p - y) * w * scale / c
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, log1p, fabs
from libc.stdint cimport int32_t
from k_common cimport nn_ftz_enter, nn_ftz_exit, par_threads

cdef enum LossKind:
    LOSS_SOFTMAX_SPARSE = 0    # softmax + sparse CE, from logits
    LOSS_SOFTMAX_DENSE = 1     # softmax + CE with one-hot / soft labels
    LOSS_SIGMOID_BCE = 2       # sigmoid + binary CE, from logits
    LOSS_PROBS_SPARSE = 3      # sparse CE on probabilities
    LOSS_PROBS_DENSE = 4       # CE on probabilities
    LOSS_PROBS_BCE = 5         # binary CE on probabilities
    LOSS_MSE = 6               # mean squared error

cdef inline double clipd(double v, double lo, double hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)

cdef inline void loss_rows(int kind, const floating *z, const int32_t *labels,
                             const floating *y, const floating *sw,
                             floating *p, floating *d, long lo, long hi,
                             long c, double scale,
                             double *row_loss) noexcept nogil:
    cdef long i, j, k
    cdef double mx, s, lse, ysum, w, l, zz, yy, q, g, gsum, qj
    cdef int32_t lab
    for i in range(lo, hi):
        k = i * c
        w = 1.0 if sw == NULL else sw[i]
        l = 0
        if kind == LOSS_SOFTMAX_SPARSE or kind == LOSS_SOFTMAX_DENSE:
            mx = z[k]
            for j in range(1, c):
                if z[k + j] > mx:
                    mx = z[k + j]
            s = 0
            for j in range(c):
                p[k + j] = <floating>exp(z[k + j] - mx)
                s += p[k + j]
            lse = mx + log(s)
            for j in range(c):
                p[k + j] = <floating>(p[k + j] / s)
            if kind == LOSS_SOFTMAX_SPARSE:
                lab = labels[i]
                l = lse - z[k + lab]
                if d != NULL:
                    for j in range(c):
                        d[k + j] = <floating>(p[k + j] * w * scale)
                    d[k + lab] = <floating>((p[k + lab] - 1.0) * w * scale)
            else:
                ysum = 0
                for j in range(c):
                    ysum += y[k + j]
                    l -= y[k + j] * z[k + j]
                l += ysum * lse
                if d != NULL:
                    for j in range(c):
                        d[k + j] = <floating>((p[k + j] * ysum - y[k + j]) * w * scale)
        elif kind == LOSS_SIGMOID_BCE:
            for j in range(c):
                zz = z[k + j]
                yy = y[k + j]
                l += (zz if zz > 0 else 0) - zz * yy + log1p(exp(-fabs(zz)))
                if zz >= 0:
                    q = 1.0 / (1.0 + exp(-zz))
                else:
                    q = exp(zz) / (1.0 + exp(zz))
                p[k + j] = <floating>q
                if d != NULL:
                    d[k + j] = <floating>((q - yy) * w * scale / c)
            l /= c
        elif kind == LOSS_PROBS_DENSE:
            # q = clip(p / S); L = -sum y log q;  dL/dp_k = (g_k - sum_j g_j q_j) / S
            # with g_j = dL/dq_j = -y_j / q_j where q_j is inside the clip range.
            s = 0
            for j in range(c):
                s += z[k + j]
            gsum = 0
            for j in range(c):
                qj = z[k + j] / s
                q = clipd(qj, 1e-7, 1 - 1e-7)
                yy = y[k + j]
                l -= yy * log(q)
                g = -yy / q if (qj > 1e-7 and qj < 1 - 1e-7) else 0.0
                gsum += g * qj
                if d != NULL:
                    d[k + j] = <floating>g       # temporarily g_j
            if d != NULL:
                for j in range(c):
                    d[k + j] = <floating>((d[k + j] - gsum) / s * w * scale)
        elif kind == LOSS_PROBS_SPARSE:
            # q = clip(p); L = log(sum q) - log q_y;
            # dL/dp_k = [p_k inside the clip range] * (1 / sum q - [k == y] / q_y)
            lab = labels[i]
            s = 0
            for j in range(c):
                s += clipd(z[k + j], 1e-7, 1 - 1e-7)
            q = clipd(z[k + lab], 1e-7, 1 - 1e-7)
            l = log(s) - log(q)
            if d != NULL:
                for j in range(c):
                    qj = z[k + j]
                    g = 1.0 / s - (1.0 / q if j == lab else 0.0)
                    if not (qj > 1e-7 and qj < 1 - 1e-7):
                        g = 0.0
                    d[k + j] = <floating>(g * w * scale)
        elif kind == LOSS_PROBS_BCE:
            for j in range(c):
                qj = z[k + j]
                q = clipd(qj, 1e-7, 1 - 1e-7)
                yy = y[k + j]
                l -= yy * log(q) + (1 - yy) * log(1 - q)
                if d != NULL:
                    if qj > 1e-7 and qj < 1 - 1e-7:
                        g = -yy / q + (1 - yy) / (1 - q)
                    else:
                        g = 0.0
                    d[k + j] = <floating>(g * w * scale / c)
            l /= c
        else:  # LOSS_MSE
            for j in range(c):
                g = z[k + j] - y[k + j]
                l += g * g
                if d != NULL:
                    d[k + j] = <floating>(2.0 * g * w * scale / c)
            l /= c
        row_loss[i] = l * w

cdef inline double loss_forward_backward(int kind, const floating *z,
                                         const int32_t *labels,
                                         const floating *y, const floating *sw,
                                         floating *p, floating *d, long n,
                                         long c, double scale,
                                         double *row_loss,
                                         int nthreads) noexcept nogil:
    """Fills row_loss[0:n], p (logit kinds) and d; returns sum(row_loss)."""
    cdef int nt = par_threads(n * c * 8, nthreads)
    cdef int t
    cdef long i
    cdef unsigned int fpu
    cdef double tot = 0
    if nt == 1:
        fpu = nn_ftz_enter()
        loss_rows(kind, z, labels, y, sw, p, d, 0, n, c, scale, row_loss)
        nn_ftz_exit(fpu)
    else:
        for t in prange(nt, num_threads=nt, schedule='static'):
            fpu = nn_ftz_enter()
            loss_rows(kind, z, labels, y, sw, p, d, t * n // nt,
                      (t + 1) * n // nt, c, scale, row_loss)
            nn_ftz_exit(fpu)
    for i in range(n):
        tot += row_loss[i]
    return tot
