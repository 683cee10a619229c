# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The time loops of SimpleRNN, LSTM and GRU, forward and backpropagation
through time, in C (twin: ``recurrent_forward`` / ``recurrent_backward`` in
``nncore/ops/recurrent.py``, whose docstring has the equations).

Layout of one call (a batch of B sequences of T steps, u units, G gate blocks):

* the input projection of every step is one GEMM, ``XW = x . W`` over the
  B*T rows (with dropout: ``(x * dp[k]) . W_k`` per mask);
* the batch is cut into blocks of ``BLOCK_ROWS`` rows, independent of the
  thread count; each block runs all T steps on its own (``prange`` over
  blocks): per step the recurrent product ``h . U`` (u = 8: a tight loop the
  compiler vectorises), the gates, the state update and the mask;
* backward walks the steps in reverse per block, keeps dL/d(gates) of every
  step in ``dXW`` and adds the recurrent-weight gradient into a per-block
  partial; the partials are summed in block order afterwards, so one thread
  or many give bitwise the same numbers;  ``dW = x^T . dXW`` and
  ``dx = dXW . W^T`` are again one GEMM each over B*T rows.

Caches (filled by forward, read by backward; the layer owns them and reuses
them from batch to batch): ``Hp``/``Cp`` (B, T, u) the state *before* each
step, ``Gt`` (B, T, G*u) the gate activations (SimpleRNN: the output a;
LSTM: i, f, g, o; GRU: z, r, n), ``Ex`` (B, T, u) one extra value per unit
(LSTM: act(c_t); GRU reset_after: the recurrent candidate hh; GRU
reset_after=False: r * h_{t-1}).

Activations: linear, relu, sigmoid, tanh (codes ``ACT_CODES`` of the twin).
Any other is refused by the layer before it gets here.

Cells of 8 units in float32 without recurrent dropout -- every model of the
book's chapter 9 -- take a faster way (``nn_rnn8.h``): a row's state and each
of its gates is one 8-float vector, four rows run their time loops
interleaved, a narrow input (up to 64 features) is projected inside the same
parallel loop, and backward forms dx there as well; dU comes from one tiled
product ``H^T . dZ`` afterwards instead of per-block partials.  Rows never
meet, so the split between threads changes no bit there either.  The loops
below serve every other case (and float64, for gradient checks).

One-hot inputs (the book's first chapter-9 model feeds ``to_categorical``
words, 200 wide): the forward pass reads each row of x anyway, and when every
row holds a single 1 among zeros (or only zeros) it keeps the position of the
1 (``onehot``) instead of multiplying -- ``XW[r] = W[idx[r]]`` is exactly what
the product gives for such a row -- and backward adds the rows of dXW into
the rows of dW they came from (``dW[idx[r]] += dXW[r]``, in double, in row
order) instead of the product ``x^T . dXW``.  The first row that is not
one-hot sends the call back to the product.  Same numbers up to the order of
dW's additions; 2 x 6,400 x 200 x 8 multiply-adds a step become 2 x 51,200
copies and additions.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport tanh, tanhf, exp, fabs, sqrt
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from libc.stdint cimport int32_t
from k_common cimport nn_ftz_enter, nn_ftz_exit, nn_omp_max_threads
from k_gemm cimport gemm
from k_onehot cimport onehot_scan, first_bad_position

cdef extern from "nn_rnn.h" nogil:
    void nn_tanh_f32(float *z, long n)
    void nn_sigmoid_f32(float *z, long n)
    void nn_rnn_tile_f32(const float *H, long hr, long hj, const float *M, long ldm,
                         long nr, long m, long n, float *Z, long ldz)
    void nn_rnn_tile_f64(const double *H, long hr, long hj, const double *M, long ldm,
                         long nr, long m, long n, double *Z, long ldz)


cdef extern from "nn_rnn8.h" nogil:
    int nn_rnn8_available()
    int nn_rnn8_forward(int cell, int act, int ract, int reset_after, long r0, long r1, long T,
                        const float *x, long F, const float *W, const float *dpm, float *XW,
                        const float *U, const float *b_in, const float *b_rec,
                        const float *h0, const float *c0, const unsigned char *mask,
                        float *out, float *Hp, float *Cp, float *hT, float *cT, float *Gt,
                        float *Ex)
    int nn_rnn8_backward(int cell, int act, int ract, int reset_after, long r0, long r1,
                         long T, const float *UT, const unsigned char *mask, const float *Hp,
                         const float *Cp, const float *Gt, const float *Ex, const float *dO,
                         int seq, float *dXW, float *DIn, double *nrm)


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define nn_rnn_prefetch(p, w) __builtin_prefetch((const void *)(p), (w), 3)
    #else
    #define nn_rnn_prefetch(p, w) ((void)0)
    #endif
    """
    void nn_rnn_prefetch(const void *p, int w) nogil


cdef inline void copyn(floating *dst, const floating *src, long n) noexcept nogil:
    """dst[0:n] = src[0:n]: a loop the compiler inlines (n is a handful of
    units; a libc memcpy call per row cost more than the copy)."""
    cdef long j
    for j in range(n):
        dst[j] = src[j]


cdef inline void tile(const floating *H, long hr, long hj, const floating *M, long ldm,
                      long nr, long m, long n, floating *Z, long ldz) noexcept nogil:
    """Z[r, 0:n] += sum_j H[r*hr + j*hj] * M[j, 0:n] for r < nr (Z row stride
    ldz, M row stride ldm): hr = m, hj = 1 reads H as (nr, m); hr = 1, hj = nr
    reads it transposed."""
    if floating is float:
        nn_rnn_tile_f32(H, hr, hj, M, ldm, nr, m, n, Z, ldz)
    else:
        nn_rnn_tile_f64(H, hr, hj, M, ldm, nr, m, n, Z, ldz)


# the twin's codes (nncore/ops/recurrent.py: CELL_CODES, ACT_CODES)
cdef enum:
    CELL_SIMPLE = 0
    CELL_LSTM = 1
    CELL_GRU = 2
    A_LINEAR = 0
    A_RELU = 1
    A_SIGMOID = 2
    A_TANH = 3
    # rows per block: fixed, so the split (and every sum) is the same for any
    # number of threads; 16 rows x u units keeps a block's working set in L1
    BLOCK_ROWS = 16

BLOCK = BLOCK_ROWS


cdef inline long _block_end(long r0, long B) noexcept nogil:
    """The end of the block of rows starting at r0 (the last one may be short)."""
    return r0 + BLOCK_ROWS if r0 + BLOCK_ROWS < B else B

# float32 cells of 8 units without recurrent dropout (the book's chapter 9)
# run nn_rnn8.h's register kernels; tests turn this off to compare them with
# the general loops below on the same inputs
cdef bint _use_rnn8 = True
cdef enum:
    # inputs up to this many features are projected inside the 8-unit kernels
    RNN8_INPROJ_MAX_F = 64


# inputs at least this wide are looked at for one-hot rows (narrower ones gain
# little: their product is cheap, or inside the 8-unit kernels)
cdef bint _use_onehot = True
cdef enum:
    ONEHOT_MIN_F = 32


def use_onehot(bint flag):
    """Let the kernels take the one-hot shortcut (True, the default) or always
    multiply (False, for tests).  Returns the old value."""
    global _use_onehot
    old = _use_onehot
    _use_onehot = flag
    return old


cdef void _onehot_gather(const int32_t *idx, long rows, const floating *W, long Gu,
                         floating *XW, int nt) noexcept nogil:
    """XW[r] = W[idx[r]] (zeros where idx[r] = -1): x . W for one-hot rows."""
    cdef long r, j
    cdef const floating *w
    for r in prange(rows, schedule="static", num_threads=nt):
        if idx[r] < 0:
            for j in range(Gu):
                XW[r * Gu + j] = 0
        else:
            w = W + idx[r] * Gu
            for j in range(Gu):
                XW[r * Gu + j] = w[j]


cdef int _onehot_scatter(const int32_t *idx, long rows, const floating *D, long Gu,
                         long F, floating *dW, int nt) noexcept nogil:
    """dW = x^T . D for one-hot rows: dW[idx[r]] += D[r], summed in double in row
    order.  Threads share the rows of dW (ranges of positions), each walking
    all of idx and adding the rows of D that fall in its range: an element's
    sum is the same whatever the thread count, and each row of D is read
    once.  Returns -1 without memory."""
    cdef double *acc = <double *>calloc(F * Gu, sizeof(double))
    cdef long r, j, k, p, k0, k1
    cdef double *a
    cdef const floating *d
    if acc == NULL:
        return -1
    if nt > F:
        nt = <int>F
    for p in prange(nt, schedule="static", num_threads=nt):
        k0 = F * p // nt
        k1 = F * (p + 1) // nt
        for r in range(rows):
            k = idx[r]
            if k0 <= k < k1:
                a = acc + k * Gu
                d = D + r * Gu
                for j in range(Gu):
                    a[j] = a[j] + d[j]
        for j in range(k0 * Gu, k1 * Gu):
            dW[j] = <floating>acc[j]
    free(acc)
    return 0


def use_rnn8(bint flag):
    """Run float32 8-unit cells on the register kernels of nn_rnn8.h (True, the
    default) or on the general loops (False, for tests).  Returns the old value."""
    global _use_rnn8
    old = _use_rnn8
    _use_rnn8 = flag
    return old


cdef inline bint _rnn8(long units, long n_rdp) noexcept nogil:
    """Whether a float32 call runs the 8-unit register kernels (n_rdp: the
    number of recurrent-dropout masks, 0 without)."""
    return _use_rnn8 and units == 8 and n_rdp == 0 and nn_rnn8_available()


def rnn8_applies(int units, dtype, bint recurrent_dropout):
    """Whether a call with these units, dtype and recurrent dropout runs the
    8-unit register kernels."""
    import numpy as np
    return np.dtype(dtype) == np.float32 and _rnn8(units, 1 if recurrent_dropout else 0)


cdef inline void act_inplace(int code, floating *z, long n) noexcept nogil:
    """z[0:n] <- act(z) (float32: vectorised sigmoid/tanh, nn_rnn.h)."""
    cdef long j
    cdef floating e, r
    if code == A_SIGMOID:
        if floating is float:
            nn_sigmoid_f32(z, n)
        else:
            for j in range(n):
                e = exp(-fabs(z[j]))
                r = 1.0 / (1.0 + e)
                z[j] = r if z[j] >= 0 else e * r
    elif code == A_TANH:
        if floating is float:
            nn_tanh_f32(z, n)
        else:
            for j in range(n):
                z[j] = tanh(z[j])
    elif code == A_RELU:
        for j in range(n):
            if z[j] < 0:
                z[j] = 0


cdef inline floating dact(int code, floating a) noexcept nogil:
    """d act/dz written through the output a = act(z)."""
    if code == A_TANH:
        return 1 - a * a
    if code == A_SIGMOID:
        return a * (1 - a)
    if code == A_RELU:
        return 1 if a > 0 else 0
    return 1


cdef void fwd_block(int cell, int act, int ract, bint reset_after, long r0, long r1,
                    long B, long T, long u, const floating *XW, const floating *U,
                    const floating *b_in, const floating *b_rec, const floating *h0,
                    const floating *c0, const unsigned char *mask, const floating *rdp,
                    long nrd, floating *outputs, floating *Hp, floating *Cp, floating *hT,
                    floating *cT, floating *Gt, floating *Ex, floating *ws) noexcept nogil:
    """All T steps for rows r0 <= i < r1.  ``ws``: 2*G*nr*u + 3*nr*u scratch."""
    cdef long G = 1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3)
    cdef long Gu = G * u, nr = r1 - r0, nru = nr * u
    cdef floating *zb = ws                      # gate-major: zb[(k*nr + r)*u + c]
    cdef floating *rb = ws + G * nru            # GRU reset_after: h.U + b_h
    cdef floating *cn = ws + 2 * G * nru        # LSTM: new c, then act(c)
    cdef floating *ex = cn + nru                # the Ex row values of this step
    cdef floating *hd = ex + nru                # the block's h * rdp (nr, u)
    cdef floating *target
    cdef const floating *hp
    cdef const floating *cp
    cdef const floating *xw
    cdef const floating *rd
    cdef const floating *Uj
    cdef floating *dst
    cdef floating *hn
    cdef floating *cnx
    cdef floating *out
    cdef floating v, hnew, zg
    cdef long t, r, i, k, k2, j, c, nk, row
    cdef bint m, sep = cell == CELL_GRU and reset_after
    cdef unsigned int fpu = nn_ftz_enter()
    for r in range(nr):
        i = r0 + r
        copyn(Hp + i * T * u, h0 + i * u, u)
        if cell == CELL_LSTM:
            copyn(Cp + i * T * u, c0 + i * u, u)
    nk = 2 if (cell == CELL_GRU and not reset_after) else G
    for t in range(T):
        # z = x_t W (+ b_in) + (h_{t-1} * rdp_k) U_k, gate-major
        for r in range(nr):
            i = r0 + r
            row = i * T + t
            hp = Hp + row * u
            xw = XW + row * Gu
            if t + 1 < T:
                # each row is its own stream through XW and the caches, too
                # many streams for the hardware prefetcher: ask for the next
                # step's lines now (the GEMM's XW has left the L2 by then)
                for c in range(0, Gu, 16):
                    nn_rnn_prefetch(xw + Gu + c, 0)
                    nn_rnn_prefetch(Gt + (row + 1) * Gu + c, 1)
                nn_rnn_prefetch(Ex + (row + 1) * u, 1)
                nn_rnn_prefetch(outputs + (row + 1) * u, 1)
                nn_rnn_prefetch(Hp + (row + 1) * u, 1)
            for k in range(G):
                dst = zb + (k * nr + r) * u
                for c in range(u):
                    dst[c] = xw[k * u + c]
                if b_in != NULL:
                    for c in range(u):
                        dst[c] = dst[c] + b_in[k * u + c]
                if sep:
                    dst = rb + (k * nr + r) * u
                    if b_rec != NULL:
                        for c in range(u):
                            dst[c] = b_rec[k * u + c]
                    else:
                        for c in range(u):
                            dst[c] = 0
        # the recurrent product of the whole block: (h * rdp_k) . U_k, one
        # tile product per gate block (one for all when the mask is shared)
        target = rb if sep else zb
        for k in range(nk if (rdp != NULL and nrd > 1) else 1):
            for r in range(nr):
                i = r0 + r
                hp = Hp + (i * T + t) * u
                if rdp != NULL:
                    rd = rdp + ((k if nrd > 1 else 0) * B + i) * u
                    for j in range(u):
                        hd[r * u + j] = hp[j] * rd[j]
                else:
                    for j in range(u):
                        hd[r * u + j] = hp[j]
            if rdp != NULL and nrd > 1:
                tile(hd, u, 1, U + k * u, Gu, nr, u, u, target + k * nru, u)
            else:
                for k2 in range(nk):
                    tile(hd, u, 1, U + k2 * u, Gu, nr, u, u, target + k2 * nru, u)
        # gates and the new state, per cell
        if cell == CELL_SIMPLE:
            act_inplace(act, zb, nru)
        elif cell == CELL_LSTM:
            act_inplace(ract, zb, 2 * nru)              # i, f
            act_inplace(act, zb + 2 * nru, nru)         # g
            act_inplace(ract, zb + 3 * nru, nru)        # o
            for r in range(nr):
                cp = Cp + ((r0 + r) * T + t) * u
                for c in range(u):
                    cn[r * u + c] = zb[nru + r * u + c] * cp[c] + zb[r * u + c] * zb[2 * nru + r * u + c]
            copyn(ex, cn, nru)
            act_inplace(act, ex, nru)                   # act(c_t)
        elif reset_after:
            for j in range(2 * nru):
                zb[j] = zb[j] + rb[j]
            act_inplace(ract, zb, 2 * nru)              # z, r
            for j in range(nru):
                zb[2 * nru + j] = zb[2 * nru + j] + zb[nru + j] * rb[2 * nru + j]
            act_inplace(act, zb + 2 * nru, nru)         # n
            copyn(ex, rb + 2 * nru, nru)
        else:
            act_inplace(ract, zb, 2 * nru)              # z, r
            for r in range(nr):
                i = r0 + r
                hp = Hp + (i * T + t) * u
                rd = NULL
                if rdp != NULL:
                    rd = rdp + ((2 if nrd > 1 else 0) * B + i) * u
                for j in range(u):
                    v = hp[j] * rd[j] if rd != NULL else hp[j]
                    ex[r * u + j] = zb[nru + r * u + j] * v      # r * h
            tile(ex, u, 1, U + 2 * u, Gu, nr, u, u, zb + 2 * nru, u)
            act_inplace(act, zb + 2 * nru, nru)         # n
        # caches, masks and the carried state
        for r in range(nr):
            i = r0 + r
            row = i * T + t
            hp = Hp + row * u
            for k in range(G):
                copyn(Gt + row * Gu + k * u, zb + (k * nr + r) * u, u)
            if cell != CELL_SIMPLE:
                copyn(Ex + row * u, ex + r * u, u)
            hn = Hp + (row + 1) * u if t + 1 < T else hT + i * u
            out = outputs + row * u
            m = mask == NULL or mask[row] != 0
            if not m:
                copyn(hn, hp, u)
                if t > 0:
                    copyn(out, out - u, u)
                else:
                    memset(out, 0, u * sizeof(floating))
                if cell == CELL_LSTM:
                    cnx = Cp + (row + 1) * u if t + 1 < T else cT + i * u
                    copyn(cnx, Cp + row * u, u)
                continue
            if cell == CELL_SIMPLE:
                for c in range(u):
                    hn[c] = zb[r * u + c]
            elif cell == CELL_LSTM:
                for c in range(u):
                    hn[c] = zb[3 * nru + r * u + c] * ex[r * u + c]
                cnx = Cp + (row + 1) * u if t + 1 < T else cT + i * u
                copyn(cnx, cn + r * u, u)
            else:
                for c in range(u):
                    zg = zb[r * u + c]
                    hn[c] = zg * hp[c] + (1 - zg) * zb[2 * nru + r * u + c]
            copyn(out, hn, u)
    nn_ftz_exit(fpu)


cdef inline void rec_back_block(const floating *H, long hj, const floating *rdp, long nrd,
                                long B, long r0, long nr, const floating *DZ, long ngates,
                                long k0, const floating *UT, long Gu, long u, floating *dU,
                                floating *dHp, floating *hd, floating *tmp) noexcept nogil:
    """The recurrent part of BPTT for a block of nr rows and gate blocks
    k0..k0+ngates-1: dU[:, cols] += (h*rd_k)^T dZ_k and dH += (dZ_k U_k^T) * rd_k.
    H: the rows' h_{t-1} (row r at H + r*hj); DZ: (nr, Gu) row-major; UT: U^T."""
    cdef long k, r, j, nk, width, off
    cdef const floating *rd
    cdef bint per_gate = rdp != NULL and nrd > 1
    nk = ngates if per_gate else 1
    width = u if per_gate else ngates * u
    for k in range(nk):
        off = (k0 + k) * u if per_gate else k0 * u
        if rdp == NULL:
            tile(H, 1, hj, DZ + off, Gu, u, nr, width, dU + off, Gu)
            tile(DZ + off, Gu, 1, UT + off * u, u, nr, width, u, dHp, u)
            continue
        for r in range(nr):
            rd = rdp + (((k0 + k) if per_gate else 0) * B + r0 + r) * u
            for j in range(u):
                hd[r * u + j] = H[r * hj + j] * rd[j]
        tile(hd, 1, u, DZ + off, Gu, u, nr, width, dU + off, Gu)
        memset(tmp, 0, nr * u * sizeof(floating))
        tile(DZ + off, Gu, 1, UT + off * u, u, nr, width, u, tmp, u)
        for r in range(nr):
            rd = rdp + (((k0 + k) if per_gate else 0) * B + r0 + r) * u
            for j in range(u):
                dHp[r * u + j] = dHp[r * u + j] + tmp[r * u + j] * rd[j]


cdef void bwd_block(int cell, int act, int ract, bint reset_after, long r0, long r1,
                    long B, long T, long u, const floating *UT, const unsigned char *mask,
                    const floating *rdp, long nrd, const floating *Hp, const floating *Cp,
                    const floating *Gt, const floating *Ex, const floating *dO, bint seq,
                    floating *dXW, floating *dU, floating *dbr, double *nrm,
                    floating *ws) noexcept nogil:
    """BPTT for rows r0 <= i < r1.  dU (u, G*u), dbr (G*u) and nrm (T) are this
    block's partials (zeroed by the caller).  ``UT``: U transposed (G*u, u).
    Per step: the element-wise gate gradients row by row into DZ (nr, G*u),
    then the recurrent products for the whole block (``rec_back_block``).
    ``ws``: 8*nr*u + 2*nr*G*u + nr."""
    cdef long G = 1 if cell == CELL_SIMPLE else (4 if cell == CELL_LSTM else 3)
    cdef long Gu = G * u, nr = r1 - r0, nru = nr * u
    cdef floating *ds_h = ws
    cdef floating *ds_c = ws + nru
    cdef floating *dout = ws + 2 * nru
    cdef floating *dHp = ws + 3 * nru
    cdef floating *hd = ws + 4 * nru
    cdef floating *tmp = ws + 5 * nru
    cdef floating *drh = ws + 6 * nru
    cdef floating *dhb = ws + 7 * nru          # dh of each row
    cdef floating *DZ = ws + 8 * nru           # (nr, Gu): dL/d(gate pre-activations)
    cdef floating *DI = DZ + nr * Gu           # GRU reset_after: dL/d(h.U + b_h)
    cdef floating *live = DI + nr * Gu         # 1: the row's step is not masked
    cdef const floating *hp
    cdef const floating *cp
    cdef const floating *gt
    cdef const floating *ex
    cdef const floating *rd
    cdef const floating *go
    cdef const floating *D
    cdef floating *dz
    cdef floating *dh
    cdef floating g, a, dn, dc, hh
    cdef double nsum
    cdef long t, r, i, j, c, row, base
    cdef bint m
    cdef unsigned int fpu = nn_ftz_enter()
    memset(ws, 0, 3 * nru * sizeof(floating))
    for t in range(T - 1, -1, -1):
        nsum = 0
        base = (r0 * T + t) * u                # row r's caches at base + r*T*u
        memset(dHp, 0, nru * sizeof(floating))
        # 1. element-wise, row by row: dh, the gate gradients, the mask
        for r in range(nr):
            i = r0 + r
            row = i * T + t
            dz = DZ + r * Gu
            go = NULL
            if seq:
                go = dO + row * u
            elif t == T - 1:
                go = dO + i * u
            if t > 0:
                # the step before, next: one stream per row (see fwd_block)
                for c in range(0, Gu, 16):
                    nn_rnn_prefetch(Gt + (row - 1) * Gu + c, 0)
                    nn_rnn_prefetch(dXW + (row - 1) * Gu + c, 1)
                nn_rnn_prefetch(Hp + (row - 1) * u, 0)
                nn_rnn_prefetch(Ex + (row - 1) * u, 0)
                if Cp != NULL:
                    nn_rnn_prefetch(Cp + (row - 1) * u, 0)
            m = mask == NULL or mask[row] != 0
            live[r] = 1 if m else 0
            if not m:
                # a masked step passes dL/d(output) and dL/d(state) through
                if go != NULL:
                    for c in range(u):
                        dout[r * u + c] = dout[r * u + c] + go[c]
                memset(dz, 0, Gu * sizeof(floating))
                if cell == CELL_GRU and reset_after:
                    memset(DI + r * Gu, 0, Gu * sizeof(floating))
                continue
            dh = dhb + r * u
            for c in range(u):
                g = dout[r * u + c]
                if go != NULL:
                    g = go[c] + g
                dh[c] = ds_h[r * u + c] + g
                dout[r * u + c] = 0
                nsum += <double>dh[c] * <double>dh[c]
            hp = Hp + row * u
            gt = Gt + row * Gu
            ex = Ex + row * u
            if cell == CELL_SIMPLE:
                for c in range(u):
                    dz[c] = dh[c] * dact(act, gt[c])
            elif cell == CELL_LSTM:
                cp = Cp + row * u
                for c in range(u):
                    dc = ds_c[r * u + c] + dh[c] * gt[3 * u + c] * dact(act, ex[c])
                    dz[c] = dc * gt[2 * u + c] * dact(ract, gt[c])
                    dz[u + c] = dc * cp[c] * dact(ract, gt[u + c])
                    dz[2 * u + c] = dc * gt[c] * dact(act, gt[2 * u + c])
                    dz[3 * u + c] = dh[c] * ex[c] * dact(ract, gt[3 * u + c])
                    ds_c[r * u + c] = dc * gt[u + c]
            else:
                for c in range(u):
                    a = gt[c]
                    dz[c] = dh[c] * (hp[c] - gt[2 * u + c]) * dact(ract, a)
                    dn = dh[c] * (1 - a) * dact(act, gt[2 * u + c])
                    dz[2 * u + c] = dn
                    dHp[r * u + c] = dh[c] * a
                    if reset_after:
                        dz[u + c] = dn * ex[c] * dact(ract, gt[u + c])
                        DI[r * Gu + c] = dz[c]
                        DI[r * Gu + u + c] = dz[u + c]
                        DI[r * Gu + 2 * u + c] = dn * gt[u + c]
                if reset_after and dbr != NULL:
                    for c in range(Gu):
                        dbr[c] = dbr[c] + DI[r * Gu + c]
        # 2. the recurrent products of the block
        if cell == CELL_SIMPLE or cell == CELL_LSTM:
            rec_back_block(Hp + base, T * u, rdp, nrd, B, r0, nr, DZ, G, 0, UT, Gu, u, dU,
                           dHp, hd, tmp)
        elif reset_after:
            rec_back_block(Hp + base, T * u, rdp, nrd, B, r0, nr, DI, 3, 0, UT, Gu, u, dU,
                           dHp, hd, tmp)
        else:
            # n = act(xh + (r*h_h) U_h): drh = dn U_h^T, dU_h += (r*h_h)^T dn
            memset(drh, 0, nru * sizeof(floating))
            tile(DZ + 2 * u, Gu, 1, UT + 2 * u * u, u, nr, u, u, drh, u)
            tile(Ex + base, 1, T * u, DZ + 2 * u, Gu, u, nr, u, dU + 2 * u, Gu)
            for r in range(nr):
                if live[r] == 0:
                    continue
                i = r0 + r
                row = i * T + t
                hp = Hp + row * u
                gt = Gt + row * Gu
                rd = NULL
                if rdp != NULL:
                    rd = rdp + ((2 if nrd > 1 else 0) * B + i) * u
                for j in range(u):
                    hh = hp[j] * rd[j] if rd != NULL else hp[j]
                    DZ[r * Gu + u + j] = drh[r * u + j] * hh * dact(ract, gt[u + j])
                    g = drh[r * u + j] * gt[u + j]
                    dHp[r * u + j] = dHp[r * u + j] + (g * rd[j] if rd != NULL else g)
            rec_back_block(Hp + base, T * u, rdp, nrd, B, r0, nr, DZ, 2, 0, UT, Gu, u, dU,
                           dHp, hd, tmp)
        # 3. the carried gradient and dXW rows
        for r in range(nr):
            row = (r0 + r) * T + t
            copyn(dXW + row * Gu, DZ + r * Gu, Gu)
            if live[r] != 0:
                copyn(ds_h + r * u, dHp + r * u, u)
        nrm[t] = nsum
    nn_ftz_exit(fpu)


# ------------------------------------------------------------ Python faces
cdef long _gates(int cell):
    if cell == CELL_SIMPLE:
        return 1
    if cell == CELL_LSTM:
        return 4
    if cell == CELL_GRU:
        return 3
    raise ValueError(f"recurrent kernel: unknown cell code {cell}")


def _need(name, arr, shape):
    if arr is None:
        raise ValueError(f"recurrent kernel: {name} is required")
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(f"recurrent kernel: {name} has shape {tuple(arr.shape)}, "
                         f"expected {tuple(shape)}")


def _maybe(name, arr, shape):
    if arr is not None and tuple(arr.shape) != tuple(shape):
        raise ValueError(f"recurrent kernel: {name} has shape {tuple(arr.shape)}, "
                         f"expected {tuple(shape)}")


# The entry points.  Cython picks a fused function's float or double copy from
# its first array argument, x; with x None (one-hot positions given) the copy
# is picked here from W instead.
def _copy_for(impl, x, W):
    if x is not None or W is None:
        return impl
    return impl["double" if W.dtype.char == "d" else "float"]


def recurrent_forward(int cell, int act, int ract, bint reset_after, x, W, U, b_in, b_rec,
                      h0, c0, mask, dp, rdp, XW, outputs, Hp, Cp, hT, cT, Gt, Ex, xd,
                      onehot=None):
    """Forward of a whole sequence: see ``_recurrent_forward`` below."""
    return _copy_for(_recurrent_forward, x, W)(
        cell, act, ract, reset_after, x, W, U, b_in, b_rec, h0, c0, mask, dp, rdp, XW,
        outputs, Hp, Cp, hT, cT, Gt, Ex, xd, onehot)


def recurrent_backward(int cell, int act, int ract, bint reset_after, x, W, U, mask, dp, rdp,
                       Hp, Cp, Gt, Ex, d_outputs, dXW, dx, dW, dU, db_in, db_rec, dh_norms,
                       xd, onehot=None):
    """Backpropagation through time: see ``_recurrent_backward`` below."""
    return _copy_for(_recurrent_backward, x, W)(
        cell, act, ract, reset_after, x, W, U, mask, dp, rdp, Hp, Cp, Gt, Ex, d_outputs,
        dXW, dx, dW, dU, db_in, db_rec, dh_norms, xd, onehot)


def _given_positions(const int32_t[::1] onehot, long n, long F, long nd):
    """Refuse one-hot positions that could not be used safely: none given,
    not marked as taken (last entry 1), under input dropout (its mask needs
    the values), or one that is not a row of W (-1: a zero row)."""
    cdef long bad
    if onehot is None or onehot[n] != 1:
        raise ValueError("recurrent kernel: x is None but onehot holds no positions "
                         "(its last entry must be 1)")
    if nd:
        raise ValueError("recurrent kernel: input dropout needs the input's values, "
                         "not the positions of its 1s")
    with nogil:
        bad = first_bad_position(&onehot[0], n, F)
    if bad >= 0:
        raise ValueError(f"recurrent kernel: onehot[{bad}] = {onehot[bad]} is not a "
                         f"position in 0..{F - 1} (or -1)")


def _check_masks(dp, rdp, G, B, F, u):
    if dp is not None and (dp.shape[0] not in (1, G) or tuple(dp.shape[1:]) != (B, F)):
        raise ValueError(f"recurrent kernel: dp has shape {tuple(dp.shape)}, "
                         f"expected (1 or {G}, {B}, {F})")
    if rdp is not None and (rdp.shape[0] not in (1, G) or tuple(rdp.shape[1:]) != (B, u)):
        raise ValueError(f"recurrent kernel: rdp has shape {tuple(rdp.shape)}, "
                         f"expected (1 or {G}, {B}, {u})")


cdef int _project(const floating *x, const floating *W, const floating *dp, long nd,
                  long B, long T, long F, long u, long G, floating *XW, floating *xd,
                  int nt) noexcept nogil:
    """XW = x . W over B*T rows; with dropout masks (nd of them, each (B, F),
    the same at every step) gate block k uses x * dp[k]."""
    cdef long Gu = G * u, BT = B * T, i, t, f, k, kk
    cdef const floating *mk
    cdef int rc = 0
    if dp == NULL:
        return gemm(False, False, BT, Gu, F, x, F, W, Gu, XW, Gu, False, nt)
    for kk in range(nd):
        for i in range(B):
            mk = dp + (kk * B + i) * F
            for t in range(T):
                for f in range(F):
                    xd[(i * T + t) * F + f] = x[(i * T + t) * F + f] * mk[f]
        if nd == 1:
            return gemm(False, False, BT, Gu, F, xd, F, W, Gu, XW, Gu, False, nt)
        rc |= gemm(False, False, BT, u, F, xd, F, W + kk * u, Gu, XW + kk * u, Gu, False, nt)
    return rc


cdef void _colsums(const floating *D, long rows, long ld, long ncol, double *out,
                   int nt) noexcept nogil:
    """out[j] = sum over rows r of D[r*ld + j] for j < ncol, in double and in row
    order (so bitwise the same for any thread count); columns in chunks of 8
    whose sums stay in registers, the chunks shared out between threads."""
    cdef long nch = (ncol + 7) // 8, ch, r, j, j0, nj
    cdef double a0, a1, a2, a3, a4, a5, a6, a7
    cdef const floating *p
    for ch in prange(nch, schedule="static", num_threads=nt):
        j0 = ch * 8
        nj = ncol - j0
        if nj < 8:
            # a ragged last chunk: plain sums
            for j in range(j0, ncol):
                a0 = 0
                for r in range(rows):
                    a0 = a0 + D[r * ld + j]
                out[j] = a0
        else:
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0
            for r in range(rows):
                p = D + r * ld + j0
                a0 = a0 + p[0]
                a1 = a1 + p[1]
                a2 = a2 + p[2]
                a3 = a3 + p[3]
                a4 = a4 + p[4]
                a5 = a5 + p[5]
                a6 = a6 + p[6]
                a7 = a7 + p[7]
            out[j0] = a0
            out[j0 + 1] = a1
            out[j0 + 2] = a2
            out[j0 + 3] = a3
            out[j0 + 4] = a4
            out[j0 + 5] = a5
            out[j0 + 6] = a6
            out[j0 + 7] = a7


cdef int _gemm_tiles(bint ta, bint tb, long M, long N, long K, const floating *A, long lda,
                     const floating *Bm, long ldb, floating *C, long ldc,
                     int nt) noexcept nogil:
    """C = op(A) . op(B) in fixed tiles, shared out between nt threads: 32 x 16
    for a reduction over many rows (dW, dU: 16 x 32 over 6,400 rows), 512 rows
    x all columns for a tall product (dx: 6,400 x 16).  A tile is the same
    product whatever the thread count, so the result is bitwise the same for
    any; and these products, each below NN_GEMM_PARALLEL_MIN_FMA, use both
    cores, which a single GEMM call of that size would not."""
    cdef long mt = 32 if ta else 512, ntl = 16 if ta else N
    cdef long nmt = (M + mt - 1) // mt, nnt = (N + ntl - 1) // ntl, task, m0, n0, mm, nn
    cdef int rc = 0
    if M <= 0 or N <= 0:
        return 0
    for task in prange(nmt * nnt, schedule="static", num_threads=nt):
        m0 = (task // nnt) * mt
        n0 = (task % nnt) * ntl
        mm = M - m0
        if mm > mt:
            mm = mt
        nn = N - n0
        if nn > ntl:
            nn = ntl
        rc |= gemm(ta, tb, mm, nn, K, A + (m0 if ta else m0 * lda), lda,
                   Bm + (n0 * ldb if tb else n0), ldb, C + m0 * ldc + n0, ldc, False, 1)
    return rc


def _recurrent_forward(int cell, int act, int ract, bint reset_after,
                       const floating[:, :, ::1] x, const floating[:, ::1] W not None,
                      const floating[:, ::1] U not None, const floating[::1] b_in,
                      const floating[::1] b_rec, const floating[:, ::1] h0 not None,
                      const floating[:, ::1] c0, const unsigned char[:, ::1] mask,
                      const floating[:, :, ::1] dp, const floating[:, :, ::1] rdp,
                      floating[:, :, ::1] XW not None, floating[:, :, ::1] outputs not None,
                      floating[:, :, ::1] Hp not None, floating[:, :, ::1] Cp,
                      floating[:, ::1] hT not None, floating[:, ::1] cT,
                      floating[:, :, ::1] Gt not None, floating[:, :, ::1] Ex not None,
                      floating[:, ::1] xd, int32_t[::1] onehot=None):
    """Forward of a whole sequence (see the module docstring for the buffers).

    x (B, T, F); W (F, G*u); U (u, G*u); b_in (G*u,) or None; b_rec (G*u,)
    (GRU reset_after) or None; h0 (B, u); c0 (B, u) for LSTM; mask (B, T) uint8
    or None; dp (1 or G, B, F) / rdp (1 or G, B, u) dropout masks or None;
    xd (B*T, F) scratch when dp is given; onehot (B*T + 1,) int32 or None:
    where the one-hot shortcut keeps the positions of the 1s for backward (its
    last entry 1 when taken).  x None: the input is one-hot and ``onehot``
    already holds its positions (-1: a zero row; last entry 1), no dropout;
    B and T then come from ``outputs``, F from W.  Fills XW (input
    projection, no bias), outputs, Hp, Cp, hT, cT, Gt, Ex."""
    cdef long B = outputs.shape[0], T = outputs.shape[1], F = W.shape[0], u = U.shape[0]
    cdef long G = _gates(cell), nblk, blk, r0, r1, nd = 0, nrd = 0
    cdef int nt, rc
    cdef floating *ws
    cdef floating *wsb
    cdef long wsz
    cdef bint given = x is None
    if not given:
        _need("x", x, (B, T, F))
    _need("W", W, (F, G * u))
    _need("U", U, (u, G * u))
    _maybe("b_in", b_in, (G * u,))
    _maybe("b_rec", b_rec, (G * u,))
    _need("h0", h0, (B, u))
    _need("XW", XW, (B, T, G * u))
    _need("outputs", outputs, (B, T, u))
    _need("Hp", Hp, (B, T, u))
    _need("hT", hT, (B, u))
    _need("Gt", Gt, (B, T, G * u))
    _need("Ex", Ex, (B, T, u))
    if cell == CELL_LSTM:
        _need("c0", c0, (B, u))
        _need("Cp", Cp, (B, T, u))
        _need("cT", cT, (B, u))
    _maybe("mask", mask, (B, T))
    _check_masks(dp, rdp, G, B, F, u)
    if dp is not None:
        nd = dp.shape[0]
        _need("xd", xd, (B * T, F))
    if rdp is not None:
        nrd = rdp.shape[0]
    _maybe("onehot", onehot, (B * T + 1,))
    if given:
        _given_positions(onehot, B * T, F, nd)
    elif onehot is not None:
        onehot[B * T] = 0
    if B == 0 or T == 0:
        return
    nt = nn_omp_max_threads()
    cdef bint fast = False, inproj = False, oh = given
    if floating is float:
        fast = _rnn8(u, nrd)
        # a narrow input is projected inside the time-loop kernel, group by
        # group, on every thread (a wide one, e.g. one-hot words, by the GEMM)
        inproj = fast and 0 < F <= RNN8_INPROJ_MAX_F and nd <= 1 and not given
    if given:
        with nogil:
            _onehot_gather(&onehot[0], B * T, &W[0, 0], G * u, &XW[0, 0, 0], nt)
    elif not inproj and onehot is not None and _use_onehot and nd == 0 and F >= ONEHOT_MIN_F:
        with nogil:
            oh = onehot_scan(&x[0, 0, 0], B * T, F, &onehot[0], nt)
            if oh:
                _onehot_gather(&onehot[0], B * T, &W[0, 0], G * u, &XW[0, 0, 0], nt)
        onehot[B * T] = oh
    if not inproj and not oh:
        with nogil:
            rc = _project(&x[0, 0, 0], &W[0, 0] if F else NULL, &dp[0, 0, 0] if nd else NULL,
                          nd, B, T, F, u, G, &XW[0, 0, 0], &xd[0, 0] if nd else NULL, nt)
        if rc != 0:
            raise MemoryError("recurrent_forward: the GEMM could not allocate its workspace")
    nblk = (B + BLOCK_ROWS - 1) // BLOCK_ROWS
    cdef const floating *p_bin = &b_in[0] if b_in is not None else NULL
    cdef const floating *p_brec = &b_rec[0] if b_rec is not None else NULL
    cdef const floating *p_c0 = &c0[0, 0] if cell == CELL_LSTM else NULL
    cdef const unsigned char *p_mask = &mask[0, 0] if mask is not None else NULL
    cdef const floating *p_rdp = &rdp[0, 0, 0] if nrd else NULL
    cdef floating *p_Cp = &Cp[0, 0, 0] if cell == CELL_LSTM else NULL
    cdef floating *p_cT = &cT[0, 0] if cell == CELL_LSTM else NULL
    cdef const float *p_x = NULL
    cdef const float *p_W = NULL
    cdef const float *p_dpm = NULL
    if floating is float:
        if fast:
            if inproj:
                p_x = &x[0, 0, 0]
                p_W = &W[0, 0]
                p_dpm = &dp[0, 0, 0] if nd else NULL
            # rows are independent here: blocks split between threads as below
            with nogil:
                for blk in prange(nblk, schedule="static",
                                  num_threads=(nt if nt < nblk else nblk)):
                    r0 = blk * BLOCK_ROWS
                    r1 = _block_end(r0, B)
                    nn_rnn8_forward(cell, act, ract, reset_after, r0, r1, T, p_x, F, p_W,
                                    p_dpm, &XW[0, 0, 0], &U[0, 0], p_bin, p_brec, &h0[0, 0],
                                    p_c0, p_mask, &outputs[0, 0, 0], &Hp[0, 0, 0], p_Cp,
                                    &hT[0, 0], p_cT, &Gt[0, 0, 0], &Ex[0, 0, 0])
            return
    wsz = 2 * G * BLOCK_ROWS * u + 3 * BLOCK_ROWS * u
    ws = <floating *>malloc(nblk * wsz * sizeof(floating))
    if ws == NULL:
        raise MemoryError("recurrent_forward: out of memory")
    nt = nt if nt < nblk else nblk
    try:
        with nogil:
            for blk in prange(nblk, schedule="static", num_threads=nt):
                r0 = blk * BLOCK_ROWS
                r1 = _block_end(r0, B)
                fwd_block(cell, act, ract, reset_after, r0, r1, B, T, u, &XW[0, 0, 0],
                          &U[0, 0], p_bin, p_brec, &h0[0, 0], p_c0, p_mask, p_rdp, nrd,
                          &outputs[0, 0, 0], &Hp[0, 0, 0], p_Cp, &hT[0, 0], p_cT,
                          &Gt[0, 0, 0], &Ex[0, 0, 0], ws + blk * wsz)
    finally:
        free(ws)


def _recurrent_backward(int cell, int act, int ract, bint reset_after,
                        const floating[:, :, ::1] x, const floating[:, ::1] W not None,
                       const floating[:, ::1] U not None, const unsigned char[:, ::1] mask,
                       const floating[:, :, ::1] dp, const floating[:, :, ::1] rdp,
                       const floating[:, :, ::1] Hp not None, const floating[:, :, ::1] Cp,
                       const floating[:, :, ::1] Gt not None, const floating[:, :, ::1] Ex not None,
                       const floating[:, :, ::1] d_outputs not None,
                       floating[:, :, ::1] dXW not None, floating[:, :, ::1] dx,
                       floating[:, ::1] dW not None, floating[:, ::1] dU not None,
                       floating[::1] db_in, floating[::1] db_rec,
                       double[::1] dh_norms not None, floating[:, ::1] xd,
                       const int32_t[::1] onehot=None):
    """Backpropagation through time for ``recurrent_forward`` (same buffers).

    d_outputs: (B, T, u) dL/d(outputs), or (B, 1, u): dL/d(last output) only.
    Fills dXW (dL/d(gate pre-activations), every step), dx (B, T, F) unless
    None, dW, dU, db_in (G*u,) / db_rec (G*u,) unless None, dh_norms (T,):
    ||dL/dh_t|| over the batch.  xd (B*T, F): scratch when dp is given.
    onehot: forward's (dW by the one-hot shortcut when forward took it); x
    None as in forward: the positions in ``onehot`` are the input."""
    cdef long B = Hp.shape[0], T = Hp.shape[1], F = W.shape[0], u = U.shape[0]
    cdef long G = _gates(cell), Gu, BT, nblk, blk, r0, r1, nd = 0, nrd = 0, t, j, q, i, f, kk
    cdef int nt, rc = 0
    cdef bint seq
    cdef floating *ws = NULL
    cdef floating *dUp = NULL
    cdef floating *dbp = NULL
    cdef double *nrm = NULL
    cdef double *colsum = NULL
    cdef floating *UT = NULL
    cdef double s
    cdef long wsz
    cdef const floating *mk
    Gu = G * u
    BT = B * T
    if x is not None:
        _need("x", x, (B, T, F))
    _need("W", W, (F, Gu))
    _need("U", U, (u, Gu))
    _need("Hp", Hp, (B, T, u))
    _need("Gt", Gt, (B, T, Gu))
    _need("Ex", Ex, (B, T, u))
    if cell == CELL_LSTM:
        _need("Cp", Cp, (B, T, u))
    _maybe("mask", mask, (B, T))
    _check_masks(dp, rdp, G, B, F, u)
    if d_outputs.shape[0] != B or d_outputs.shape[2] != u or d_outputs.shape[1] not in (1, T):
        raise ValueError(f"recurrent kernel: d_outputs has shape {tuple(d_outputs.shape)}, "
                         f"expected ({B}, {T} or 1, {u})")
    seq = d_outputs.shape[1] == T
    _need("dXW", dXW, (B, T, Gu))
    _maybe("dx", dx, (B, T, F))
    _need("dW", dW, (F, Gu))
    _need("dU", dU, (u, Gu))
    _maybe("db_in", db_in, (Gu,))
    _maybe("db_rec", db_rec, (Gu,))
    _need("dh_norms", dh_norms, (T,))
    if dp is not None:
        nd = dp.shape[0]
        _need("xd", xd, (BT, F))
    if rdp is not None:
        nrd = rdp.shape[0]
    _maybe("onehot", onehot, (BT + 1,))
    cdef bint oh = onehot is not None and nd == 0 and onehot[BT] == 1
    if x is None or oh:
        # the positions index dW's rows (with x None they are the input too):
        # never trust them blindly
        _given_positions(onehot, BT, F, nd)
    if B == 0 or T == 0:
        return
    nt = nn_omp_max_threads()
    nblk = (B + BLOCK_ROWS - 1) // BLOCK_ROWS
    wsz = 8 * BLOCK_ROWS * u + 2 * BLOCK_ROWS * Gu + BLOCK_ROWS
    ws = <floating *>malloc(nblk * wsz * sizeof(floating))
    dUp = <floating *>calloc(nblk * u * Gu, sizeof(floating))
    dbp = <floating *>calloc(nblk * Gu, sizeof(floating))
    nrm = <double *>calloc(nblk * T, sizeof(double))
    colsum = <double *>calloc(Gu, sizeof(double))
    UT = <floating *>malloc(Gu * u * sizeof(floating))
    cdef const unsigned char *p_mask = &mask[0, 0] if mask is not None else NULL
    cdef const floating *p_rdp = &rdp[0, 0, 0] if nrd else NULL
    cdef const floating *p_Cp = &Cp[0, 0, 0] if cell == CELL_LSTM else NULL
    cdef bint has_dx = dx is not None, has_dbin = db_in is not None
    cdef bint has_dbrec = db_rec is not None
    cdef bint fast = False
    cdef floating *DIn = NULL
    cdef double *nrow = NULL
    if floating is float:
        fast = _rnn8(u, nrd)
    if fast:
        # the register kernels (nn_rnn8.h): per row and step ||dh||^2 in nrow,
        # GRU reset_after's dL/d(h U_n + b_rec_n) in DIn
        nrow = <double *>malloc(BT * sizeof(double))
        if cell == CELL_GRU and reset_after:
            DIn = <floating *>malloc(BT * u * sizeof(floating))
    try:
        if (ws == NULL or dUp == NULL or dbp == NULL or nrm == NULL or colsum == NULL
                or UT == NULL or (fast and (nrow == NULL or
                                            (cell == CELL_GRU and reset_after and DIn == NULL)))):
            raise MemoryError("recurrent_backward: out of memory")
        with nogil:
            for j in range(u):
                for q in range(Gu):
                    UT[q * u + j] = U[j, q]
        if fast:
            if floating is float:
                with nogil:
                    for blk in prange(nblk, schedule="static",
                                      num_threads=(nt if nt < nblk else nblk)):
                        r0 = blk * BLOCK_ROWS
                        r1 = _block_end(r0, B)
                        nn_rnn8_backward(cell, act, ract, reset_after, r0, r1, T, UT, p_mask,
                                         &Hp[0, 0, 0], p_Cp, &Gt[0, 0, 0], &Ex[0, 0, 0],
                                         &d_outputs[0, 0, 0], seq, &dXW[0, 0, 0], DIn, nrow)
                    # dU = H^T . dZ over all B*T rows, H the state before each
                    # step (GRU's candidate block: r * h, or dZ = dn * r)
                    if cell == CELL_GRU and not reset_after:
                        rc |= _gemm_tiles(True, False, u, 2 * u, BT, &Hp[0, 0, 0], u,
                                          &dXW[0, 0, 0], Gu, &dU[0, 0], Gu, nt)
                        rc |= _gemm_tiles(True, False, u, u, BT, &Ex[0, 0, 0], u,
                                          &dXW[0, 0, 0] + 2 * u, Gu, &dU[0, 0] + 2 * u, Gu, nt)
                    elif cell == CELL_GRU:
                        rc |= _gemm_tiles(True, False, u, 2 * u, BT, &Hp[0, 0, 0], u,
                                          &dXW[0, 0, 0], Gu, &dU[0, 0], Gu, nt)
                        rc |= _gemm_tiles(True, False, u, u, BT, &Hp[0, 0, 0], u, DIn, u,
                                          &dU[0, 0] + 2 * u, Gu, nt)
                    else:
                        rc |= _gemm_tiles(True, False, u, Gu, BT, &Hp[0, 0, 0], u,
                                          &dXW[0, 0, 0], Gu, &dU[0, 0], Gu, nt)
                    if has_dbrec:
                        # column sums in double, in row order
                        _colsums(&dXW[0, 0, 0], BT, Gu, 2 * u, colsum, nt)
                        _colsums(DIn, BT, u, u, colsum + 2 * u, nt)
                        for j in range(Gu):
                            db_rec[j] = <floating>colsum[j]
                    for t in range(T):
                        s = 0
                        for i in range(B):
                            s = s + nrow[i * T + t]
                        dh_norms[t] = sqrt(s)
        else:
            with nogil:
                for blk in prange(nblk, schedule="static",
                                  num_threads=(nt if nt < nblk else nblk)):
                    r0 = blk * BLOCK_ROWS
                    r1 = _block_end(r0, B)
                    bwd_block(cell, act, ract, reset_after, r0, r1, B, T, u, UT,
                              p_mask, p_rdp, nrd, &Hp[0, 0, 0], p_Cp, &Gt[0, 0, 0],
                              &Ex[0, 0, 0], &d_outputs[0, 0, 0], seq, &dXW[0, 0, 0],
                              dUp + blk * u * Gu, dbp + blk * Gu, nrm + blk * T, ws + blk * wsz)
                # the per-block partials, summed in block order (thread-count independent)
                for j in range(u * Gu):
                    dU[j // Gu, j % Gu] = dUp[j]
                for blk in range(1, nblk):
                    for j in range(u * Gu):
                        dU[j // Gu, j % Gu] = dU[j // Gu, j % Gu] + dUp[blk * u * Gu + j]
                if has_dbrec:
                    for j in range(Gu):
                        db_rec[j] = dbp[j]
                    for blk in range(1, nblk):
                        for j in range(Gu):
                            db_rec[j] = db_rec[j] + dbp[blk * Gu + j]
                for t in range(T):
                    s = 0
                    for blk in range(nblk):
                        s = s + nrm[blk * T + t]
                    dh_norms[t] = sqrt(s)
        with nogil:
            # db_in: column sums of dXW over the B*T rows, in row order, in double
            if has_dbin:
                _colsums(&dXW[0, 0, 0], BT, Gu, Gu, colsum, nt)
                for j in range(Gu):
                    db_in[j] = <floating>colsum[j]
            # dW = (x * dp_k)^T . dXW_k and dx = sum_k (dXW_k . W_k^T) * dp_k
            if nd == 0:
                if oh:      # one-hot rows: dXW's rows added into the rows of dW
                    rc |= _onehot_scatter(&onehot[0], BT, &dXW[0, 0, 0], Gu, F, &dW[0, 0], nt)
                else:
                    rc |= _gemm_tiles(True, False, F, Gu, BT, &x[0, 0, 0], F, &dXW[0, 0, 0],
                                      Gu, &dW[0, 0], Gu, nt)
                if has_dx:
                    rc |= _gemm_tiles(False, True, BT, F, Gu, &dXW[0, 0, 0], Gu, &W[0, 0], Gu,
                                      &dx[0, 0, 0], F, nt)
            else:
                for kk in range(nd):
                    for i in range(B):
                        mk = &dp[kk, i, 0]
                        for t in range(T):
                            for f in range(F):
                                xd[i * T + t, f] = x[i, t, f] * mk[f]
                    if nd == 1:
                        rc |= _gemm_tiles(True, False, F, Gu, BT, &xd[0, 0], F, &dXW[0, 0, 0], Gu,
                                          &dW[0, 0], Gu, nt)
                    else:
                        rc |= gemm(True, False, F, u, BT, &xd[0, 0], F, &dXW[0, 0, 0] + kk * u,
                                   Gu, &dW[0, 0] + kk * u, Gu, False, nt)
                if has_dx:
                    for kk in range(nd):
                        if nd == 1:
                            rc |= gemm(False, True, BT, F, Gu, &dXW[0, 0, 0], Gu, &W[0, 0],
                                       Gu, &xd[0, 0], F, False, nt)
                        else:
                            rc |= gemm(False, True, BT, F, u, &dXW[0, 0, 0] + kk * u, Gu,
                                       &W[0, 0] + kk * u, Gu, &xd[0, 0], F, False, nt)
                        for i in range(B):
                            mk = &dp[kk, i, 0]
                            for t in range(T):
                                for f in range(F):
                                    if kk == 0:
                                        dx[i, t, f] = xd[i * T + t, f] * mk[f]
                                    else:
                                        dx[i, t, f] = dx[i, t, f] + xd[i * T + t, f] * mk[f]
        if rc != 0:
            raise MemoryError("recurrent_backward: the GEMM could not allocate its workspace")
    finally:
        free(ws)
        free(dUp)
        free(dbp)
        free(nrm)
        free(colsum)
        free(UT)
        free(nrow)
        free(DIn)
