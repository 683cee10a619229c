/*
 * nn_level.c -- the hot kernels for one CPU level, as one table.
 *
 * setup.py compiles this file once per level, each time with that level's
 * instruction-set flags and NN_KERNEL_LEVEL set:
 *
 *   NN_KERNEL_LEVEL=0   nn_kernels_baseline   default flags (SSE2 on x86-64)
 *   NN_KERNEL_LEVEL=1   nn_kernels_avx2       -mavx2 -mfma
 *   NN_KERNEL_LEVEL=2   nn_kernels_avx512     -mavx512f -mavx512bw -mavx512dq
 *                                             -mavx512vl (and AVX2, FMA)
 *
 * The kernel headers pick their vector width from the compiler's predefined
 * macros (__AVX2__, __AVX512F__), exactly as they did when the whole
 * extension was built with -march=native, so each copy is the code that
 * -march=<that CPU> would have produced.  Everything else in nncore is built
 * for the baseline and calls these tables through nn_dispatch.h.
 */
#ifndef NN_KERNEL_LEVEL
#error "nn_level.c: compile with -DNN_KERNEL_LEVEL=0, 1 or 2 (setup.py does)"
#endif

#include "nn_gemm.h"
#include "nn_conv1c.h"
#include "nn_bias_relu.h"
#include "nn_winograd.h"
#include "nn_maxpool.h"
#include "nn_vmath.h"
#include "nn_rnn.h"
#include "nn_rnn8.h"
#include "nn_kernels.h"

#if NN_KERNEL_LEVEL == 0
#define NN_LEVEL_TABLE nn_kernels_baseline
#ifdef NN_NATIVE_BUILD
#define NN_LEVEL_NAME "native"
#else
#define NN_LEVEL_NAME "baseline"
#endif
#elif NN_KERNEL_LEVEL == 1
#if !defined(__AVX2__) || !defined(__FMA__)
#error "nn_level.c: the avx2 level needs -mavx2 -mfma"
#endif
#define NN_LEVEL_TABLE nn_kernels_avx2
#define NN_LEVEL_NAME "avx2"
#elif NN_KERNEL_LEVEL == 2
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VL__)
#error "nn_level.c: the avx512 level needs -mavx512f -mavx512bw -mavx512dq -mavx512vl"
#endif
#define NN_LEVEL_TABLE nn_kernels_avx512
#define NN_LEVEL_NAME "avx512"
#else
#error "nn_level.c: NN_KERNEL_LEVEL must be 0, 1 or 2"
#endif

/* the widest vector instructions the compiler was allowed to use here */
#if !NN_HAVE_VEC
#define NN_LEVEL_ISA "scalar C"
#elif defined(__AVX512F__)
#define NN_LEVEL_ISA "AVX-512 F/BW/DQ/VL"
#elif defined(__AVX2__) && defined(__FMA__)
#define NN_LEVEL_ISA "AVX2+FMA"
#elif defined(__AVX__)
#define NN_LEVEL_ISA "AVX"
#elif defined(__SSE2__) || defined(_M_X64)
#define NN_LEVEL_ISA "SSE2"
#elif defined(__ARM_NEON)
#define NN_LEVEL_ISA "NEON"
#else
#define NN_LEVEL_ISA "scalar C"
#endif

#define NN_KERNEL_ENTRY(R, RET, name, params, args) .name = name,

NN_KERNELS_HIDDEN const struct nn_kernels NN_LEVEL_TABLE = {
    .level = NN_LEVEL_NAME,
    .isa = NN_LEVEL_ISA,
    .mr = NN_MR, .kc = NN_KC, .mc = NN_MC, .nc = NN_NC, .vbytes = NN_VBYTES,
    NN_KERNEL_LIST(NN_KERNEL_ENTRY)
};
