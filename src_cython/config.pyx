# cython: language_level=3
"""What the compiled extension was built with, and its thread count."""
from k_common cimport nn_omp_enabled, nn_omp_max_threads, nn_omp_num_procs, NN_HAVE_MXCSR, nn_ftz_current

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static void nn_set_threads(int n) { omp_set_num_threads(n); }
    #else
    static void nn_set_threads(int n) { (void)n; }
    #endif
    #if defined(__AVX512F__)
    #define NN_SIMD "AVX-512"
    #elif defined(__AVX2__)
    #define NN_SIMD "AVX2"
    #elif defined(__AVX__)
    #define NN_SIMD "AVX"
    #elif defined(__SSE2__) || defined(_M_X64)
    #define NN_SIMD "SSE2"
    #elif defined(__ARM_NEON)
    #define NN_SIMD "NEON"
    #else
    #define NN_SIMD "scalar"
    #endif
    """
    void nn_set_threads(int n) nogil
    const char *NN_SIMD


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(nn_omp_enabled())


def get_num_threads():
    """Threads the kernels may use (OpenMP's max threads for this thread)."""
    return nn_omp_max_threads()


def set_num_threads(int n):
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    nn_set_threads(n)


def num_procs():
    return nn_omp_num_procs()


def simd_level():
    """The widest SIMD instruction set the compiler was allowed to use."""
    return NN_SIMD.decode()


def has_ftz():
    """True when kernels can set flush-to-zero / denormals-are-zero."""
    return bool(NN_HAVE_MXCSR)


def ftz_active():
    """Whether FTZ/DAZ is on in the calling thread right now (should be False
    outside kernels: they restore the caller's mode)."""
    return nn_ftz_current() != 0
