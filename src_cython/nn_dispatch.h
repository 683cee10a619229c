/*
 * nn_dispatch.h -- what the Cython modules see of the hot kernels: one
 * wrapper per kernel, with the name it always had (nn_gemm_f32, ...), that
 * calls the copy compiled for the CPU level chosen at first use.
 *
 * The hot headers (nn_gemm.h, nn_conv1c.h, nn_bias_relu.h, nn_winograd.h,
 * nn_maxpool.h, nn_vmath.h) include this file instead of their code unless
 * NN_KERNEL_LEVEL is set, which only nn_level.c does; so a module written
 * against "nn_gemm.h" keeps working and gets the dispatched kernels.
 *
 * The choice (nn_kernels_choose) is made once per extension module: the best
 * level the CPU and OS support (nn_cpu.h) among those built, lowered to
 * NNCORE_CPU_LEVEL when that names a lower one.  Every module of a process
 * reads the same CPU and the same variable, so they all agree; the Python
 * side (nncore/_ext/__init__.py) checks the variable and warns when it asks
 * for more than the CPU has.  Results are bitwise reproducible for a given
 * level; two levels may differ in the last bits (FMA rounds once, and the
 * vector width changes the order of some sums).
 */
#ifndef NN_DISPATCH_H
#define NN_DISPATCH_H

#ifdef NN_KERNEL_LEVEL
#error "nn_dispatch.h is for the callers of the kernels, not for nn_level.c"
#endif

#include "nn_cpu.h"
#include "nn_kernels.h"

/* the highest level compiled into this build */
static inline int nn_kernels_max_built(void)
{
#if NN_CPU_DISPATCH && NN_CPU_DISPATCH_AVX512
    return NN_LEVEL_AVX512;
#elif NN_CPU_DISPATCH
    return NN_LEVEL_AVX2;
#else
    return NN_LEVEL_BASELINE;
#endif
}

static inline const struct nn_kernels *nn_kernels_for_level(int level)
{
#if NN_CPU_DISPATCH
#if NN_CPU_DISPATCH_AVX512
    if (level >= NN_LEVEL_AVX512) return &nn_kernels_avx512;
#endif
    if (level >= NN_LEVEL_AVX2) return &nn_kernels_avx2;
#else
    (void)level;
#endif
    return &nn_kernels_baseline;
}

/* The level the kernels will run at: the best the CPU supports and the build
 * has, or a lower one asked for by NNCORE_CPU_LEVEL. */
static inline int nn_kernels_level_to_use(void)
{
    int level = nn_cpu_best_level();
    int asked = nn_cpu_requested_level();
    if (level > nn_kernels_max_built()) level = nn_kernels_max_built();
    if (asked >= 0 && asked < level) level = asked;
    return level;
}

static const struct nn_kernels *nn_kernels_chosen = 0;

static const struct nn_kernels *nn_kernels_choose(void)
{
    const struct nn_kernels *t = nn_kernels_for_level(nn_kernels_level_to_use());
    /* two threads racing here store the same pointer */
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(&nn_kernels_chosen, t, __ATOMIC_RELEASE);
#else
    nn_kernels_chosen = t;
#endif
    return t;
}

static inline const struct nn_kernels *nn_kernels_table(void)
{
#if defined(__GNUC__) || defined(__clang__)
    const struct nn_kernels *t = __atomic_load_n(&nn_kernels_chosen, __ATOMIC_ACQUIRE);
#else
    const struct nn_kernels *t = nn_kernels_chosen;
#endif
    return t ? t : nn_kernels_choose();
}

#define NN_KERNEL_WRAPPER(R, RET, name, params, args) \
    static inline R name params { RET nn_kernels_table()->name args; }
NN_KERNEL_LIST(NN_KERNEL_WRAPPER)
#undef NN_KERNEL_WRAPPER

/* The GEMM tiling of the chosen level, under the names nn_gemm.h gives them
 * (k_gemm.pxd; the training loop splits rows between threads by NN_MR). */
#define NN_MR (nn_kernels_table()->mr)
#define NN_KC (nn_kernels_table()->kc)
#define NN_MC (nn_kernels_table()->mc)
#define NN_NC (nn_kernels_table()->nc)
#define NN_VBYTES (nn_kernels_table()->vbytes)

#endif /* NN_DISPATCH_H */
