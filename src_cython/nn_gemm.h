/*
 * nn_gemm.h -- nncore's own cache-blocked, register-tiled GEMM.
 *
 *     C[M x N]  =  op(A)[M x K] . op(B)[K x N]        (accumulate == 0)
 *     C[M x N] +=  op(A)[M x K] . op(B)[K x N]        (accumulate != 0)
 *
 * All matrices are row-major.  op(A) = A (stored M x K, row stride lda) or
 * A^T (stored K x M); op(B) = B (stored K x N) or B^T (stored N x K).  Those
 * three forms cover a dense layer:  Z = X.W,  dW = X^T.dZ,  dX = dZ.W^T.
 *
 * Why a C header and not Cython: the inner "microkernel" must keep an
 * MR x NR tile of C in vector registers for the whole K loop.  GCC/Clang's
 * vector extensions say exactly that, portably across SSE2 / AVX2 / AVX-512
 * (the vector width follows the instruction set it is compiled for: once
 * per CPU level, by nn_level.c -- see nn_kernels.h).  The Cython modules
 * include this header and get nn_dispatch.h's wrappers; every kernel that
 * needs a matrix product (the per-batch wrappers and the fused training
 * loop) calls these same two functions, so there is one GEMM in nncore.
 *
 * The structure is the classic Goto/BLIS one:
 *   - the output is cut into fixed MC x NC tasks (fixed sizes, never derived
 *     from the thread count, so every C element is summed in the same order
 *     whatever the number of threads: results are bitwise reproducible);
 *   - for each KC-slice of K, the task packs its A block into MR-row strips
 *     and its B block into NR-column strips (zero padded), which makes the
 *     microkernel's loads contiguous and aligned whatever op(A)/op(B) are;
 *   - the microkernel multiplies one MR x KC strip by one KC x NR strip;
 *   - small products (a training batch: M = 32, or N = 100 units) skip most
 *     packing: when a strip would be reused only a few times, copying it
 *     costs more than it saves, so full strips of A and/or B are read in
 *     place through their strides and only the ragged edges are packed.
 *     Narrow kernels (one vector, half a vector) cover a thin right edge
 *     (N = 100 -> 104 columns computed, not 128).
 * Tasks are spread over OpenMP threads only when the product is large enough
 * to pay for waking them (see nn_gemm_threads).
 *
 * Every thread that runs it sets flush-to-zero / denormals-are-zero for the
 * duration of the call (see nn_fpu.h) and restores its previous mode.
 *
 * Files: this header holds what both element types share (block sizes,
 * thread and workspace policy) and includes the code twice:
 *   nn_gemm_impl.h     packing, strip widths, task / block / threaded drivers,
 *                      written once over NN_T with names made by NN_SFX();
 *   nn_gemm_ukernel.h  one microkernel, included once per variant by
 *                      nn_gemm_impl.h (its parameters are macros so the
 *                      strides of a packed A stay compile-time constants).
 * Every line is plain C, so compiler messages, debuggers and sanitizers point
 * at the line that matters.
 */
#ifndef NN_GEMM_H
#define NN_GEMM_H

/* Below this many multiply-adds a GEMM stays on the calling thread.  Waking
 * the OpenMP team and splitting a ~60 us product costs more than it saves:
 * measured on 2 cores, the book's 784-100-10 model trains at 0.26 s/epoch
 * single-threaded and 0.28 s with these GEMMs split (0.42 s with
 * OMP_WAIT_POLICY=passive); a spinning worker also slows the serial kernels
 * between GEMMs.  Big products (batch-256 1024-wide layers, evaluate/predict
 * chunks of 2048 rows) are far above it and scale ~1.9x on 2 cores. */
#define NN_GEMM_PARALLEL_MIN_FMA (1L << 23)

#ifndef NN_KERNEL_LEVEL
/* Callers get the copy for this CPU through nn_dispatch.h; the code below is
 * compiled once per CPU level, by nn_level.c only. */
#include "nn_dispatch.h"
#else

#include <stdlib.h>
#include <string.h>
#include "nn_fpu.h"
#include "nn_omp.h"

#if defined(__AVX512F__)
#define NN_VBYTES 64
#define NN_MR 8
#elif defined(__AVX__)
#define NN_VBYTES 32
#define NN_MR 6
#else
#define NN_VBYTES 16
#define NN_MR 4
#endif

/* GCC/Clang vector extensions, or the portable scalar microkernel.  Building
 * with -DNN_HAVE_VEC=0 forces the scalar one (to test it on GCC). */
#include "nn_vec.h"

/* Block sizes (elements).  KC x NR strip of B ~ L1, MC x KC block of A ~ L2. */
#define NN_KC 256
#define NN_MC 96
#define NN_NC 512
/* With at most this many rows (e.g. a training batch), B is read in place:
 * each B strip is reused by only M / MR microkernel calls, too few to repay
 * copying it; so is a B small enough to stay in L1 (K * N <= 4096, e.g. the
 * dZ of a kernel gradient).  Otherwise B is packed (contiguous, TLB-friendly
 * strips). */
#define NN_DIRECT_B_MAX_M 128
/* Likewise A's full MR-row strips are read in place (through strides, for A
 * or its transpose) when few B strips reuse each of them: N <= 4 * NR. */
#define NN_DIRECT_A_MAX_N (8 * NN_VBYTES / 4)

/* Read B in place?  Only row-major B (not B^T), and either small enough to
 * stay in L1 or with few rows of A to reuse each strip (M <= NN_DIRECT_B_MAX_M). */
static inline int nn_direct_b(int transB, long M, long N, long K)
{
    return !transB && (M <= NN_DIRECT_B_MAX_M || K * N <= 4096);
}

static inline int nn_gemm_threads(long M, long N, long K, int nthreads)
{
    if (nthreads <= 1 || M * N * K < NN_GEMM_PARALLEL_MIN_FMA)
        return 1;
    return nthreads;
}

/* Per-thread packing workspace, grown once and then reused: no allocation in
 * the steady state.  The fast path reads a __thread pointer; the same block is
 * also registered under a pthread key whose destructor frees it when the
 * thread ends.  Without that, every short-lived thread that ran one predict
 * (web servers and notebook kernels recycle threads all day) kept its few
 * hundred KB for the life of the process, and after a few thousand threads
 * the allocation failed.  Windows: fiber-local storage with a callback does
 * the same job. */
static NN_THREAD_LOCAL void *nn_gemm_ws = NULL;
static NN_THREAD_LOCAL size_t nn_gemm_ws_bytes = 0;

#if defined(_MSC_VER)
#include <windows.h>
static DWORD nn_gemm_ws_fls = FLS_OUT_OF_INDEXES;
static INIT_ONCE nn_gemm_ws_once = INIT_ONCE_STATIC_INIT;
static void WINAPI nn_gemm_ws_release(void *p) { if (p) _aligned_free(p); }
static BOOL CALLBACK nn_gemm_ws_init(PINIT_ONCE o, void *a, void **c)
{
    (void)o; (void)a; (void)c;
    nn_gemm_ws_fls = FlsAlloc(nn_gemm_ws_release);
    return TRUE;
}
static inline int nn_gemm_ws_register(void *p)
{
    InitOnceExecuteOnce(&nn_gemm_ws_once, nn_gemm_ws_init, NULL, NULL);
    return nn_gemm_ws_fls != FLS_OUT_OF_INDEXES && FlsSetValue(nn_gemm_ws_fls, p) ? 0 : -1;
}
#define nn_gemm_ws_free_now(p) _aligned_free(p)
#else
#include <pthread.h>
static pthread_key_t nn_gemm_ws_key;
static int nn_gemm_ws_key_ok = 0;
static pthread_once_t nn_gemm_ws_once = PTHREAD_ONCE_INIT;
static void nn_gemm_ws_release(void *p) { free(p); }
static void nn_gemm_ws_init(void)
{
    nn_gemm_ws_key_ok = pthread_key_create(&nn_gemm_ws_key, nn_gemm_ws_release) == 0;
}
static inline int nn_gemm_ws_register(void *p)
{
    pthread_once(&nn_gemm_ws_once, nn_gemm_ws_init);
    return nn_gemm_ws_key_ok && pthread_setspecific(nn_gemm_ws_key, p) == 0 ? 0 : -1;
}
#define nn_gemm_ws_free_now(p) free(p)
#endif

static inline void *nn_gemm_workspace(size_t bytes)
{
    if (bytes > nn_gemm_ws_bytes) {
        void *p = NULL;
        size_t rounded = (bytes + 63) & ~(size_t)63;
#if defined(_MSC_VER)
        p = _aligned_malloc(rounded, 64);
#else
        if (posix_memalign(&p, 64, rounded) != 0) p = NULL;
#endif
        /* a block nobody would free at thread exit is refused: a failed
         * registration reports "could not allocate" like a failed malloc */
        if (p && nn_gemm_ws_register(p) != 0) {
            nn_gemm_ws_free_now(p);
            p = NULL;
        }
        if (!p)
            return NULL;    /* the smaller old block stays registered */
        if (nn_gemm_ws) nn_gemm_ws_free_now(nn_gemm_ws);
        nn_gemm_ws = p;
        nn_gemm_ws_bytes = rounded;
    }
    return nn_gemm_ws;
}

/* Bytes of packing workspace one task needs: an MC x KC block of A and a
 * KC x NC block of B (plus a strip of slack for the ragged edge). */
#define NN_GEMM_WS_BYTES(T) (sizeof(T) * (size_t)NN_KC * (NN_MC + NN_NC + 2 * 2 * (NN_VBYTES / sizeof(T))))

/* Half-vector edge strips (e.g. 8 float32 columns with AVX-512): N = 100 is
 * 6 vectors and 4 columns, computed as 6.5 vectors instead of 7.  A
 * half-width FMA costs half a full one where wide vectors are split in two
 * (AMD Zen 4) and no more than a full one elsewhere. */
#if NN_HAVE_VEC && NN_VBYTES >= 32
#define NN_HALF 1
#else
#define NN_HALF 0
#endif

/* One instantiation per element type: NN_T is the type, NN_SFX(name) makes
 * the public name (nn_gemm_f32, nn_gemm_block_f64, ...). */
#define NN_T float
#define NN_SFX(name) name##_f32
#include "nn_gemm_impl.h"
#undef NN_T
#undef NN_SFX

#define NN_T double
#define NN_SFX(name) name##_f64
#include "nn_gemm_impl.h"
#undef NN_T
#undef NN_SFX

#endif /* NN_KERNEL_LEVEL */
#endif /* NN_GEMM_H */
