/*
 * nn_vec.h -- whether the kernels use GCC/Clang vector extensions.
 * Included by every header with vector code (nn_gemm.h, nn_bias_relu.h,
 * nn_conv1c.h) so the choice is made in one place; building with
 * -DNN_HAVE_VEC=0 forces the portable scalar loops (to test them on GCC).
 */
#ifndef NN_VEC_H
#define NN_VEC_H

#ifndef NN_HAVE_VEC
#if defined(__GNUC__) || defined(__clang__)
#define NN_HAVE_VEC 1
#else
#define NN_HAVE_VEC 0
#endif
#endif

#endif /* NN_VEC_H */
