/*
 * nn_fpu.h -- flush-to-zero / denormals-are-zero for the duration of a kernel.
 *
 * Why: optimizer state (RMSprop's and Adam's running squares) decays towards
 * zero and, in float32, into the denormal range, where x86 arithmetic is up
 * to ~100x slower.  That alone can double an epoch.  FTZ+DAZ treat denormals
 * as zero, which changes results only below ~1e-38 (float32).
 *
 * The mode lives in each thread's MXCSR register, so every thread that runs
 * kernel code calls nn_ftz_enter() and restores the caller's mode with
 * nn_ftz_exit() before returning: Python code and other libraries in the
 * process never see a changed FPU mode.
 */
#ifndef NN_FPU_H
#define NN_FPU_H

#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
#define NN_HAVE_MXCSR 1
static inline unsigned int nn_ftz_enter(void)
{
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);  /* bit 15 = FTZ, bit 6 = DAZ */
    return old;
}
static inline void nn_ftz_exit(unsigned int old) { _mm_setcsr(old); }
static inline unsigned int nn_ftz_current(void) { return _mm_getcsr() & 0x8040u; }
#else
#define NN_HAVE_MXCSR 0
static inline unsigned int nn_ftz_enter(void) { return 0; }
static inline void nn_ftz_exit(unsigned int old) { (void)old; }
static inline unsigned int nn_ftz_current(void) { return 0; }
#endif

#endif /* NN_FPU_H */
