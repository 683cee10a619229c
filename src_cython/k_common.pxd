# cython: language_level=3
"""Shared C-level declarations for every kernel module.

Kernels are ``cdef inline ... noexcept nogil`` functions in the ``k_*.pxd``
files, so each extension module (the per-op wrappers and the fused training
loop) compiles the very same code: one implementation of every formula.
"""
from libc.stdint cimport int32_t, uint8_t, uint64_t
cimport cython
from cython cimport floating

cdef extern from "nn_fpu.h" nogil:
    unsigned int nn_ftz_enter()
    void nn_ftz_exit(unsigned int old)
    unsigned int nn_ftz_current()
    int NN_HAVE_MXCSR

cdef extern from "nn_omp.h" nogil:
    int nn_omp_enabled()
    int nn_omp_max_threads()
    int nn_omp_num_procs()

# Element-wise kernels use OpenMP only past this many elements: below it the
# cost of waking the thread team (a few microseconds) exceeds the work.
cdef enum:
    PAR_MIN_ELEMS = 262144

cdef inline int par_threads(long work, int nthreads) noexcept nogil:
    """Threads worth using for ``work`` elements of element-wise work."""
    if nthreads > 1 and work >= PAR_MIN_ELEMS:
        return nthreads
    return 1
