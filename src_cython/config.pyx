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
    """
    void nn_set_threads(int n) nogil

cdef extern from "nn_dispatch.h" nogil:
    struct nn_cpu_features:
        int sse2, avx, fma, avx2, avx512f, avx512bw, avx512dq, avx512vl
        int os_avx, os_avx512
    struct nn_kernels:
        const char *level
        const char *isa
    nn_cpu_features nn_cpu_detect()
    int nn_cpu_best_level()
    int nn_cpu_requested_level()
    const char *nn_cpu_level_name(int level)
    int nn_kernels_max_built()
    const nn_kernels *nn_kernels_table()


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
    """The vector instructions of the kernels in use, e.g. 'AVX2+FMA'."""
    return nn_kernels_table().isa.decode()


def cpu_level():
    """The CPU level the hot kernels run at: 'baseline', 'avx2', 'avx512'
    (or 'native' in an NNCORE_NATIVE=1 build)."""
    return nn_kernels_table().level.decode()


def cpu_best_level():
    """The best level this CPU and its OS can run, built or not."""
    return nn_cpu_level_name(nn_cpu_best_level()).decode()


def cpu_levels_built():
    """The levels compiled into this build, lowest first."""
    return [nn_cpu_level_name(i).decode() for i in range(nn_kernels_max_built() + 1)]


def cpu_requested_level():
    """What NNCORE_CPU_LEVEL asks for, as the kernels read it: a level's
    name, None when unset, or '?' when it names no level."""
    cdef int asked = nn_cpu_requested_level()
    if asked == -1:
        return None
    if asked < 0:
        return "?"
    return nn_cpu_level_name(asked).decode()


def cpu_features():
    """What the CPU (cpuid) and the OS (xgetbv) offer, as {name: bool}."""
    cdef nn_cpu_features f = nn_cpu_detect()
    return {"sse2": bool(f.sse2), "avx": bool(f.avx), "fma": bool(f.fma),
            "avx2": bool(f.avx2), "avx512f": bool(f.avx512f),
            "avx512bw": bool(f.avx512bw), "avx512dq": bool(f.avx512dq),
            "avx512vl": bool(f.avx512vl), "os_saves_ymm": bool(f.os_avx),
            "os_saves_zmm": bool(f.os_avx512)}


def has_ftz():
    """True when kernels can set flush-to-zero / denormals-are-zero."""
    return bool(NN_HAVE_MXCSR)


def ftz_active():
    """Whether FTZ/DAZ is on in the calling thread right now (should be False
    outside kernels: they restore the caller's mode)."""
    return nn_ftz_current() != 0
