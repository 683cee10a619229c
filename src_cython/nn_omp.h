/*
 * nn_omp.h -- OpenMP when the compiler has it, a single thread when not.
 * The build passes -fopenmp (or /openmp) when a probe says it works; without
 * it _OPENMP is undefined, the pragmas vanish and these stubs report 1 thread.
 */
#ifndef NN_OMP_H
#define NN_OMP_H

#define NN_STR(x) #x
#if defined(_MSC_VER)
#define NN_OMP_PRAGMA(x) __pragma(x)
#define NN_THREAD_LOCAL __declspec(thread)
#else
#define NN_OMP_PRAGMA(x) _Pragma(NN_STR(x))
#define NN_THREAD_LOCAL __thread
#endif

#ifdef _OPENMP
#include <omp.h>
static inline int nn_omp_enabled(void) { return 1; }
/* At most 8 threads per processor (and at least 64 allowed): a huge
 * OMP_NUM_THREADS or set_num_threads value would otherwise make the OpenMP
 * runtime try to create that many threads, and abort when it cannot. */
static inline int nn_omp_max_threads(void)
{
    int n = omp_get_max_threads(), cap = 8 * omp_get_num_procs();
    if (cap < 64) cap = 64;
    return n < cap ? n : cap;
}
static inline int nn_omp_num_procs(void) { return omp_get_num_procs(); }
static inline int nn_omp_thread_num(void) { return omp_get_thread_num(); }
static inline int nn_omp_team_size(void) { return omp_get_num_threads(); }
/* Inside a parallel region: wait until every thread of the team gets here.
 * (An "orphaned" barrier: it binds to the enclosing region, which the caller
 * opened -- the fused training loop's team, see training.pyx.) */
static inline void nn_omp_barrier(void) { NN_OMP_PRAGMA(omp barrier) }
#else
static inline int nn_omp_enabled(void) { return 0; }
static inline int nn_omp_max_threads(void) { return 1; }
static inline int nn_omp_num_procs(void) { return 1; }
static inline int nn_omp_thread_num(void) { return 0; }
static inline int nn_omp_team_size(void) { return 1; }
static inline void nn_omp_barrier(void) { }
#endif

#endif /* NN_OMP_H */
