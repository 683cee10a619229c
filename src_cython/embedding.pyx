# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Embedding index check, row gather and scatter-add gradient (twin:
``nncore/ops/embedding.py``).

The kernels are kept in this module (not a ``k_*.pxd``) because only the
Embedding layer calls them.  ``embedding_indices`` checks and converts the
indices (the layer raises its error when it reports a bad one), so the
gather and the scatter-add read the table without bounds checks.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy, memset
from k_common cimport nn_omp_max_threads, par_threads

# The row loops in C.  Measured on the 2-core VM, 6400 rows of 16 floats
# (one batch of the book's model): a constant-size memcpy per row gathers in
# ~25 us, and the compiler's own vectorization of a row loop took ~85 us (its
# per-row setup); the scatter-add as a plain loop took ~100 us, with
# explicit 16-byte vectors ~30 us.  A vector add is the
# same IEEE addition per lane, and the rows are still added in order n = 0,
# 1, ..., so dtable is bitwise what the plain loop (and np.add.at) gives.
cdef extern from *:
    """
    #include <stddef.h>
    #include <stdint.h>
    #include <string.h>
    #if defined(__GNUC__) || defined(__clang__)
    typedef float nn_emb_vf __attribute__((vector_size(16)));
    typedef double nn_emb_vd __attribute__((vector_size(16)));
    #define NN_EMB_VEC 1
    #else
    #define NN_EMB_VEC 0
    #endif
    /* The loops over rows; each is instantiated for the common row lengths
       as constants (a switch on D), so that the copy or add of a row is a few
       inlined vector moves, not a libc memcpy call or a loop of unknown
       length (measured: a third of the time of the general form). */
    #define NN_EMB_GATHER_LOOP(T, W)                                               \
        for (ptrdiff_t n = n0; n < n1; n++)                                        \
            memcpy(out + n * (W), table + idx[n] * (W), (W) * sizeof(T));
    #define NN_EMB_SCATTER_LOOP(T, VT, W)                                          \
        for (ptrdiff_t n = 0; n < N; n++) {                                        \
            T *r = dtable + idx[n] * (W);                                          \
            const T *g = grad + n * (W);                                           \
            ptrdiff_t j = 0;                                                       \
            for (; j + L <= (W); j += L) {   /* memcpy: no alignment assumed */   \
                VT a, b;                                                           \
                memcpy(&a, r + j, sizeof a);                                       \
                memcpy(&b, g + j, sizeof b);                                       \
                a += b;                                                            \
                memcpy(r + j, &a, sizeof a);                                       \
            }                                                                      \
            for (; j < (W); j++)                                                   \
                r[j] += g[j];                                                      \
        }
    #define NN_EMB_ROWS(T, S, VT)                                                  \
    static void nn_emb_gather_##S(const T *table, const ptrdiff_t *idx,           \
                                  ptrdiff_t n0, ptrdiff_t n1, ptrdiff_t D, T *out)  \
    {                                                                              \
        switch (D) {                                                               \
        case 8:  NN_EMB_GATHER_LOOP(T, 8)  break;                                  \
        case 16: NN_EMB_GATHER_LOOP(T, 16) break;                                  \
        case 32: NN_EMB_GATHER_LOOP(T, 32) break;                                  \
        case 64: NN_EMB_GATHER_LOOP(T, 64) break;                                  \
        default: NN_EMB_GATHER_LOOP(T, D)  break;                                  \
        }                                                                          \
    }                                                                              \
    static void nn_emb_scatter_add_##S(const T *grad, const ptrdiff_t *idx,       \
                                       ptrdiff_t N, ptrdiff_t D, T *dtable)        \
    {                                                                              \
        const ptrdiff_t L = NN_EMB_VEC ? (ptrdiff_t)(16 / sizeof(T)) : D + 1;     \
        switch (D) {                                                               \
        case 8:  NN_EMB_SCATTER_LOOP(T, VT, 8)  break;                             \
        case 16: NN_EMB_SCATTER_LOOP(T, VT, 16) break;                             \
        case 32: NN_EMB_SCATTER_LOOP(T, VT, 32) break;                             \
        case 64: NN_EMB_SCATTER_LOOP(T, VT, 64) break;                             \
        default: NN_EMB_SCATTER_LOOP(T, VT, D)  break;                             \
        }                                                                          \
    }
    #if NN_EMB_VEC
    NN_EMB_ROWS(float, f, nn_emb_vf)
    NN_EMB_ROWS(double, d, nn_emb_vd)
    #else
    NN_EMB_ROWS(float, f, float)
    NN_EMB_ROWS(double, d, double)
    #endif

    /* The index checks: a block of values is tested without branches (the
       test vectorizes), and only a block holding a bad value is searched
       value by value for the first one.  float32: used when input_dim <= 2**24,
       so the bound and every valid index are exact floats and a value that
       passes the range test converts through int32 exactly (others are
       replaced by 0 before the conversion, which would be undefined). */
    #define NN_EMB_BLOCK 256
    static ptrdiff_t nn_emb_first_bad_f(const float *x, ptrdiff_t n0, ptrdiff_t n1, ptrdiff_t V)
    {
        for (ptrdiff_t n = n0; n < n1; n++) {
            double v = x[n];
            if (!(v >= 0 && v < (double)V) || (double)(ptrdiff_t)v != v)
                return n;
        }
        return -1;
    }
    /* Any bad value in x[b:e]?  A value out of [0, fV) (NaN too: comparisons
       with NaN are false) becomes -1; one in range converts exactly.  GCC
       vectorizes this only without trapping math (the FP exception flags,
       which nothing reads); the results are the same either way. */
    #if defined(__GNUC__) && !defined(__clang__)
    __attribute__((optimize("no-trapping-math")))
    #endif
    static int nn_emb_block_bad_f(const float *restrict x, ptrdiff_t b, ptrdiff_t e, float fV)
    {
        int32_t bad = 0;
        for (ptrdiff_t n = b; n < e; n++) {
            float v = x[n];
            float lo = v >= 0.0f ? v : -1.0f;
            float c = lo < fV ? lo : -1.0f;
            int32_t i = (int32_t)(c >= 0.0f ? c : 0.0f);
            bad |= (c < 0.0f) | ((float)i != c);
        }
        return bad != 0;
    }
    static ptrdiff_t nn_emb_index_f(const float *x, ptrdiff_t N, ptrdiff_t V, ptrdiff_t *idx)
    {
        if (V > (1L << 24)) {
            ptrdiff_t bad = nn_emb_first_bad_f(x, 0, N, V);
            if (bad < 0 && idx)
                for (ptrdiff_t n = 0; n < N; n++)
                    idx[n] = (ptrdiff_t)x[n];
            return bad;
        }
        const float fV = (float)V;
        for (ptrdiff_t b = 0; b < N; b += NN_EMB_BLOCK) {
            ptrdiff_t e = b + NN_EMB_BLOCK < N ? b + NN_EMB_BLOCK : N;
            if (nn_emb_block_bad_f(x, b, e, fV))
                return nn_emb_first_bad_f(x, b, e, V);
            if (idx)
                for (ptrdiff_t n = b; n < e; n++)
                    idx[n] = (int32_t)x[n];
        }
        return -1;
    }
    /* integers: one unsigned comparison also rejects the negative ones */
    static ptrdiff_t nn_emb_index_i32(const int32_t *x, ptrdiff_t N, ptrdiff_t V, ptrdiff_t *idx)
    {
        const uint32_t U = V > INT32_MAX ? 0x80000000u : (uint32_t)V;
        for (ptrdiff_t b = 0; b < N; b += NN_EMB_BLOCK) {
            ptrdiff_t e = b + NN_EMB_BLOCK < N ? b + NN_EMB_BLOCK : N;
            int bad = 0;
            for (ptrdiff_t n = b; n < e; n++)
                bad |= (uint32_t)x[n] >= U;
            if (bad)
                for (ptrdiff_t n = b; n < e; n++)
                    if ((uint32_t)x[n] >= U)
                        return n;
            if (idx)
                for (ptrdiff_t n = b; n < e; n++)
                    idx[n] = x[n];
        }
        return -1;
    }
    static ptrdiff_t nn_emb_index_i64(const int64_t *x, ptrdiff_t N, ptrdiff_t V, ptrdiff_t *idx)
    {
        const uint64_t U = (uint64_t)V;
        for (ptrdiff_t b = 0; b < N; b += NN_EMB_BLOCK) {
            ptrdiff_t e = b + NN_EMB_BLOCK < N ? b + NN_EMB_BLOCK : N;
            int bad = 0;
            for (ptrdiff_t n = b; n < e; n++)
                bad |= (uint64_t)x[n] >= U;
            if (bad)
                for (ptrdiff_t n = b; n < e; n++)
                    if ((uint64_t)x[n] >= U)
                        return n;
            if (idx)
                for (ptrdiff_t n = b; n < e; n++)
                    idx[n] = (ptrdiff_t)x[n];
        }
        return -1;
    }
    """
    Py_ssize_t nn_emb_index_f(const float *x, Py_ssize_t N, Py_ssize_t V,
                              Py_ssize_t *idx) nogil
    Py_ssize_t nn_emb_index_i32(const int32_t *x, Py_ssize_t N, Py_ssize_t V,
                                Py_ssize_t *idx) nogil
    Py_ssize_t nn_emb_index_i64(const int64_t *x, Py_ssize_t N, Py_ssize_t V,
                                Py_ssize_t *idx) nogil
    void nn_emb_gather_f(const float *table, const Py_ssize_t *idx, Py_ssize_t n0,
                         Py_ssize_t n1, Py_ssize_t D, float *out) nogil
    void nn_emb_gather_d(const double *table, const Py_ssize_t *idx, Py_ssize_t n0,
                         Py_ssize_t n1, Py_ssize_t D, double *out) nogil
    void nn_emb_scatter_add_f(const float *grad, const Py_ssize_t *idx, Py_ssize_t N,
                              Py_ssize_t D, float *dtable) nogil
    void nn_emb_scatter_add_d(const double *grad, const Py_ssize_t *idx, Py_ssize_t N,
                              Py_ssize_t D, double *dtable) nogil


# The index dtypes checked in C: what a model hands the layer (its float
# dtype, on the compiled loop) and what users' arrays hold (int32, int64).
# Other dtypes take the layer's NumPy check.
ctypedef fused index_t:
    float
    double
    int32_t
    int64_t


def _check(str name, long n, long n_idx, long d, long d2):
    if n != n_idx:
        raise ValueError(f"{name}: {n_idx} indices for {n} rows")
    if d != d2:
        raise ValueError(f"{name}: rows of {d} and {d2} values")


def embedding_indices(const index_t[::1] x not None, Py_ssize_t input_dim,
                      Py_ssize_t[::1] idx):
    """idx[n] = x[n] when every x[n] is an integer in 0..input_dim-1 (floats
    holding integers count); returns -1 then, else the position of the first
    bad value (idx is left partly written).  idx None: check only.

    One vectorized pass over the indices (C, above), instead of the several
    whole-array NumPy passes (isfinite, floor, min, max, the cast) a training
    step paid."""
    cdef Py_ssize_t N = x.shape[0], n, i, bad = -1
    cdef double dv
    cdef Py_ssize_t *out = NULL
    if idx is not None:
        if idx.shape[0] != N:
            raise ValueError(f"embedding_indices: {N} values for {idx.shape[0]} indices")
        if N:
            out = &idx[0]
    if N == 0:
        return -1
    if index_t is float:
        return nn_emb_index_f(&x[0], N, input_dim, out)
    elif index_t is int32_t:
        return nn_emb_index_i32(&x[0], N, input_dim, out)
    elif index_t is int64_t:
        return nn_emb_index_i64(&x[0], N, input_dim, out)
    else:
        # float64 (a float64 model's rows): value by value, in doubles (exact
        # for any input_dim below 2**53); written so that NaN fails
        for n in range(N):
            dv = x[n]
            if not (dv >= 0 and dv < input_dim):
                return n
            i = <Py_ssize_t>dv
            if i != dv:             # 2.5: not a word index
                return n
            if out != NULL:
                out[n] = i
        return -1


def embedding_forward(const floating[:, ::1] table not None, const Py_ssize_t[::1] idx not None,
                      floating[:, ::1] out not None):
    """out[n] = table[idx[n]] for every n (rows copied; threads split the rows)."""
    cdef Py_ssize_t N = out.shape[0], D = out.shape[1], n0, n1
    cdef int nt, c
    _check("embedding_forward", N, idx.shape[0], D, table.shape[1])
    if N == 0 or D == 0:
        return
    nt = par_threads(N * D, nn_omp_max_threads())
    with nogil:
        # each row is written by exactly one thread: any thread count gives
        # bitwise the same output
        if nt == 1:                     # no parallel region to open
            if floating is float:
                nn_emb_gather_f(&table[0, 0], &idx[0], 0, N, D, &out[0, 0])
            else:
                nn_emb_gather_d(&table[0, 0], &idx[0], 0, N, D, &out[0, 0])
        else:
            for c in prange(nt, schedule="static", num_threads=nt):
                n0 = c * N // nt
                n1 = (c + 1) * N // nt
                if floating is float:
                    nn_emb_gather_f(&table[0, 0], &idx[0], n0, n1, D, &out[0, 0])
                else:
                    nn_emb_gather_d(&table[0, 0], &idx[0], n0, n1, D, &out[0, 0])


def embedding_backward(const floating[:, ::1] grad not None, const Py_ssize_t[::1] idx not None,
                       floating[:, ::1] dtable not None):
    """dtable = 0, then dtable[idx[n]] += grad[n] for n = 0, 1, ... in order.

    One thread: two samples may hit the same row, and adding in a fixed order
    keeps the result bitwise reproducible (and equal to the NumPy twin's
    np.add.at).  The work is N*D additions, tiny beside the layers above."""
    cdef Py_ssize_t N = grad.shape[0], D = grad.shape[1], V = dtable.shape[0]
    _check("embedding_backward", N, idx.shape[0], D, dtable.shape[1])
    with nogil:
        if V * D:
            memset(&dtable[0, 0], 0, V * D * sizeof(floating))
        if N and D:
            if floating is float:
                nn_emb_scatter_add_f(&grad[0, 0], &idx[0], N, D, &dtable[0, 0])
            else:
                nn_emb_scatter_add_d(&grad[0, 0], &idx[0], N, D, &dtable[0, 0])
