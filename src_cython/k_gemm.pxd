# cython: language_level=3
"""GEMM: C (+)= op(A) . op(B), row-major, in the three forms a Dense layer needs.

The register-tiled implementation is in ``nn_gemm.h`` (see its header comment
for the blocking scheme); this file gives it a fused-type face.
"""
from cython cimport floating

cdef extern from "nn_gemm.h" nogil:
    int nn_gemm_f32(int transA, int transB, long M, long N, long K,
                    const float *A, long lda, const float *B, long ldb,
                    float *C, long ldc, int accumulate, int nthreads)
    int nn_gemm_f64(int transA, int transB, long M, long N, long K,
                    const double *A, long lda, const double *B, long ldb,
                    double *C, long ldc, int accumulate, int nthreads)
    int nn_gemm_block_f32(int transA, int transB, long K, const float *A, long lda,
                          const float *B, long ldb, float *C, long ldc,
                          int accumulate, long i_lo, long i_hi, long j_lo, long j_hi)
    int nn_gemm_block_f64(int transA, int transB, long K, const double *A, long lda,
                          const double *B, long ldb, double *C, long ldc,
                          int accumulate, long i_lo, long i_hi, long j_lo, long j_hi)
    int nn_gemm_reserve_f32()
    int nn_gemm_reserve_f64()
    int NN_MR, NN_KC, NN_MC, NN_NC, NN_VBYTES
    long NN_GEMM_PARALLEL_MIN_FMA

cdef inline int gemm(bint trans_a, bint trans_b, long M, long N, long K,
                     const floating *A, long lda, const floating *B, long ldb,
                     floating *C, long ldc, bint accumulate,
                     int nthreads) noexcept nogil:
    """C[M,N] (+)= op(A)[M,K] . op(B)[K,N]; returns -1 if out of memory."""
    if floating is float:
        return nn_gemm_f32(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc,
                           accumulate, nthreads)
    else:
        return nn_gemm_f64(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc,
                           accumulate, nthreads)

cdef inline int gemm_block(bint trans_a, bint trans_b, long K, const floating *A,
                           long lda, const floating *B, long ldb, floating *C,
                           long ldc, bint accumulate, long i_lo, long i_hi,
                           long j_lo, long j_hi) noexcept nogil:
    """Block C[i_lo:i_hi, j_lo:j_hi] of gemm(), on the calling thread only
    (the caller has set FTZ/DAZ); returns -1 if out of memory."""
    if floating is float:
        return nn_gemm_block_f32(trans_a, trans_b, K, A, lda, B, ldb, C, ldc,
                                 accumulate, i_lo, i_hi, j_lo, j_hi)
    else:
        return nn_gemm_block_f64(trans_a, trans_b, K, A, lda, B, ldb, C, ldc,
                                 accumulate, i_lo, i_hi, j_lo, j_hi)

cdef inline int gemm_reserve(const floating *like) noexcept nogil:
    """Allocate the calling thread's packing workspace for this element type
    (``like`` only selects the type); returns -1 if out of memory."""
    if floating is float:
        return nn_gemm_reserve_f32()
    else:
        return nn_gemm_reserve_f64()
