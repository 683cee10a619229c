# cython: language_level=3
"""Inverted dropout with a counter-based random number generator.

Each element's uniform number is a pure function of (seed, step, index)::

    key = mix(seed * 0x9E3779B97F4A7C15 + step)
    u_i = (mix(key + i * 0xD1B54A32D192ED03) >> 11) * 2**-53      in [0, 1)
    keep_i = u_i < 1 - rate ;   out_i = x_i * keep_i / (1 - rate)

where ``mix`` is the splitmix64 finaliser.  No generator state is carried
between elements, so the mask is the same whichever thread computes which
element, and the backward pass can apply the saved mask exactly.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uint8_t, uint64_t
from k_common cimport par_threads, nn_ftz_enter, nn_ftz_exit

cdef inline uint64_t splitmix64_mix(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)

cdef inline uint64_t dropout_key(uint64_t seed, uint64_t step) noexcept nogil:
    return splitmix64_mix(seed * <uint64_t>0x9E3779B97F4A7C15ULL + step)

cdef inline double dropout_uniform(uint64_t key, uint64_t i) noexcept nogil:
    return <double>(splitmix64_mix(key + i * <uint64_t>0xD1B54A32D192ED03ULL) >> 11) * (1.0 / 9007199254740992.0)

cdef inline void dropout_rows(const floating *x, floating *out, uint8_t *mask,
                              long lo, long hi, double keep, floating scale,
                              uint64_t key) noexcept nogil:
    cdef long i
    cdef uint8_t k
    for i in range(lo, hi):
        k = dropout_uniform(key, <uint64_t>i) < keep
        mask[i] = k
        out[i] = x[i] * scale if k else 0

cdef inline void dropout_forward_range(const floating *x, floating *out,
                                       uint8_t *mask, long lo, long hi,
                                       double rate, uint64_t seed,
                                       uint64_t step) noexcept nogil:
    """Elements lo <= i < hi of dropout_forward, on the calling thread (the
    caller sets FTZ); the mask is the same whichever thread draws it."""
    cdef double keep = 1.0 - rate
    cdef floating scale = <floating>(1.0 / keep) if keep > 0 else 0
    dropout_rows(x, out, mask, lo, hi, keep, scale, dropout_key(seed, step))

cdef inline void dropout_forward(const floating *x, floating *out,
                                 uint8_t *mask, long n, double rate,
                                 uint64_t seed, uint64_t step,
                                 int nthreads) noexcept nogil:
    """out = x * mask / (1 - rate); mask[i] in {0, 1}.  out may alias x."""
    cdef double keep = 1.0 - rate
    cdef floating scale = <floating>(1.0 / keep) if keep > 0 else 0
    cdef uint64_t key = dropout_key(seed, step)
    cdef int nt = par_threads(n, nthreads)
    cdef int c
    cdef unsigned int fpu
    if nt == 1:
        fpu = nn_ftz_enter()
        dropout_rows(x, out, mask, 0, n, keep, scale, key)
        nn_ftz_exit(fpu)
        return
    for c in prange(nt, num_threads=nt, schedule='static'):
        fpu = nn_ftz_enter()
        dropout_rows(x, out, mask, c * n // nt, (c + 1) * n // nt, keep, scale, key)
        nn_ftz_exit(fpu)

cdef inline void dropout_backward(const floating *grad, const uint8_t *mask,
                                  floating *dx, long n,
                                  double rate) noexcept nogil:
    """dx = grad * mask / (1 - rate); dx may alias grad."""
    cdef long i
    cdef double keep = 1.0 - rate
    cdef floating scale = <floating>(1.0 / keep) if keep > 0 else 0
    cdef unsigned int fpu = nn_ftz_enter()
    for i in range(n):
        dx[i] = grad[i] * scale if mask[i] else 0
    nn_ftz_exit(fpu)
