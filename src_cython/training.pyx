# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The fused training loop: many optimizer steps in one ``nogil`` call.

For a stack of Dense / Conv2D / MaxPooling2D / AveragePooling2D / Dropout /
Activation layers (Flatten is a no-op on row-major data: an image is a row of
H*W*C values, NHWC) it runs, per step, what the per-batch Python path runs
(``nncore/models/model.py::_train_step``), with the same kernels -- for the
image layers, the very per-image functions conv.pyx runs (k_conv.pxd):

    gather the batch rows -> forward layer by layer -> loss + dL/d(out)
    -> backward layer by layer -> regularization -> optimizer update
    -> running loss / metric sums

Every element of every array is computed by the same arithmetic as on the
per-batch path, so both paths produce bitwise the same weights.  All
buffers are allocated by ``FusedPlan`` once per ``fit`` (none in the loop).
Control returns to Python after each chunk of steps so progress bars,
Ctrl-C and callbacks still work.

Threads: one team for the whole chunk.  A batch-32 step of the book's model
is ~5 M multiply-adds, ~110 us of arithmetic on one core: opening an OpenMP
region per product (fork/join four times a step, workers spinning between
products) costs more than a second core saves.  So the loop opens *one*
parallel region per chunk and every thread runs the step loop on its share
of each step, meeting the others at two or three barriers a step: batch rows for
the forward pass and the loss, kernel rows for the gradients and updates,
and -- for the lowest wide Dense layer -- units, on private copies of its
columns, so that the largest kernel never travels between cores (``_steps``
explains the phases; bench/README.md the measurements behind them).

Image layers follow the rows: a thread's batch rows are its images, taken
through every convolution and pooling layer with its own scratch (im2col
columns etc.).  A convolution's weight gradient is summed, as in conv.pyx, in
fixed groups of DW_GROUP images (a thread's share is whole groups), and the
group partials are added in group order after the barrier, each thread
taking a share of the kernel's elements (tests/test_step_plan_conv.py).  A
convolution on the Winograd path (conv_winograd) is run as conv.pyx runs it:
its transformed kernels are recomputed after each update (one thread per
transform), its partials summed in the Winograd domain and transformed back
to dW by one thread, with a barrier either side.

Shares decide only which thread computes an element, never how, so results
are bitwise the same for any number of threads (tests/test_fused_team.py).
Small models stay on one thread (``_team_size``), where the barriers vanish,
and nncore/models/loop.py (ThreadChooser) picks the team size per chunk by timing.
"""
import numpy as np
from cython cimport floating
from libc.stdint cimport int32_t, uint8_t, uint64_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free, calloc
from libc.math cimport sqrt, pow
from cython.parallel cimport parallel, threadid

from k_common cimport nn_omp_max_threads, nn_ftz_enter, nn_ftz_exit
from k_gemm cimport gemm_block, gemm_reserve, NN_MR
from k_activations cimport (bias_act_block, act_backward_block, bias_grad_cols,
                            ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX)
from k_losses cimport (loss_rows, LOSS_SOFTMAX_SPARSE,
                       LOSS_SOFTMAX_DENSE, LOSS_SIGMOID_BCE, LOSS_PROBS_SPARSE,
                       LOSS_PROBS_DENSE, LOSS_PROBS_BCE, LOSS_MSE)
from k_dropout cimport dropout_forward_range, dropout_backward
# the per-image convolution / pooling code conv.pyx runs (same numbers)
from k_conv cimport (DW_GROUP, conv_forward_image, conv_backward_image, conv_cols_ones,
                     conv_group_sum, conv_transpose_kernel, maxpool_forward_image,
                     maxpool_backward_image, avgpool_forward_image, avgpool_backward_image,
                     conv_winograd, conv_wg_scratch, conv_wg_kernel_size, conv_part_size,
                     conv_wg_kernel, conv_wg_group_sum, conv_wg_finish)
from k_optimizers cimport (OptParams, opt_update_range, l1_l2_sum, l1_l2_grad,
                           OPT_SGD, OPT_ADAGRAD, OPT_RMSPROP, OPT_ADAM)

cdef extern from "nn_prefetch.h" nogil:
    void nn_prefetch(const void *p, size_t nbytes)

cdef extern from "nn_omp.h" nogil:
    int nn_omp_team_size()
    void nn_omp_barrier()
from k_metrics cimport count_correct, METRIC_SPARSE, METRIC_ONEHOT, METRIC_BINARY

# The kernels' codes, by name (defined once, in the .pxd enums)
LOSS_KINDS = {"softmax_sparse": LOSS_SOFTMAX_SPARSE, "softmax_dense": LOSS_SOFTMAX_DENSE,
              "sigmoid_bce": LOSS_SIGMOID_BCE, "probs_sparse": LOSS_PROBS_SPARSE,
              "probs_dense": LOSS_PROBS_DENSE, "probs_bce": LOSS_PROBS_BCE, "mse": LOSS_MSE}
METRIC_KINDS = {"sparse": METRIC_SPARSE, "onehot": METRIC_ONEHOT, "binary": METRIC_BINARY}
OPTIMIZER_KINDS = {"sgd": OPT_SGD, "adagrad": OPT_ADAGRAD, "rmsprop": OPT_RMSPROP,
                   "adam": OPT_ADAM}
# the one name -> code table (nncore/ops/activations.py), checked against the enum
from nncore.ops.activations import CODES as ACTIVATIONS
if (ACTIVATIONS["linear"], ACTIVATIONS["relu"], ACTIVATIONS["sigmoid"], ACTIVATIONS["tanh"],
        ACTIVATIONS["softmax"]) != (ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX):
    raise ImportError("nncore: activation codes differ from k_activations.pxd's")

__all__ = ["FusedPlan", "run_steps"]


# what an entry must hold before the loop may point into it (kind,
# activation, image geometry, every parameter's arrays and optimizer slots):
# one definition, in the twin, checked once per plan
from nncore.ops.training import check_entry


def run_steps(plan, x, labels, targets, sample_weight, order, long first_step,
              long n_steps, long batch_size, long iterations, sums, int max_threads=0):
    """Run steps [first_step, first_step + n_steps) of the epoch ``order``
    with ``plan`` (a FusedPlan); the NumPy twin is nncore/ops/training.py.
    Returns the number of optimizer steps taken (see FusedPlan.run)."""
    return plan.run(x, labels, targets, sample_weight, order, first_step, n_steps,
                    batch_size, iterations, sums, max_threads)

cdef enum LayerKind:
    LK_DENSE = 0
    LK_DROPOUT = 1
    LK_ACTIVATION = 2
    LK_CONV = 3
    LK_MAXPOOL = 4
    LK_AVGPOOL = 5
    LK_LAYER = 6         # the layer's own forward/backward, with the GIL (plan_entry.py)

LAYER_KINDS = {"dense": LK_DENSE, "dropout": LK_DROPOUT, "activation": LK_ACTIVATION,
               "conv2d": LK_CONV, "maxpool": LK_MAXPOOL, "avgpool": LK_AVGPOOL,
               "layer": LK_LAYER}

cdef enum:
    MAX_METRICS = 8
    # a Dense layer narrower than this is not worth splitting by columns
    HEAD_MIN_UNITS = 64
    # column shares are whole vectors (16 float32), so GEMM strips stay whole
    COL_UNIT = 16
    # elements of a conv weight gradient / update a thread takes at a time
    # (whole cache lines of float64 and float32)
    CONV_ELEM_UNIT = 16

cdef struct ParamC:
    # one weight of a layer (nncore/layers/plan_entry.py's Param): every
    # executor's update and penalty loop over these, whatever the layer kind
    void *value
    void *grad
    void *slots[3]       # the optimizer's slot arrays (NULL where unused)
    long size            # elements
    int trained          # updated by the optimizer?
    int reg              # regularized (l1, l2)?
    double l1, l2


cdef struct LayerC:
    int kind
    long n_in, n_out
    int act              # activation code (Dense, Activation)
    int logits           # last layer computing logits for the loss: skip act
    int need_dx          # compute the gradient w.r.t. the input
    int backprop         # the backward pass reaches this layer
    ParamC *params       # its weights (into PlanC.params), n_params of them
    int n_params
    # Dense / Conv2D read their kernel and bias as params[0] and params[1]:
    void *W
    void *b              # NULL without bias
    void *dW
    void *db
    void *entry          # the PlanEntry (LK_LAYER: its layer_forward/backward)
    double rate          # Dropout
    uint64_t seed
    uint64_t step
    void *out            # (max_batch, n_out) activations
    void *dz             # (max_batch, n_out) scratch for act_backward
    void *dx             # (max_batch, n_in) gradient for the layer below
    uint8_t *mask        # (max_batch * n_out) Dropout mask
    # the wiring, fixed by the stack (FusedPlan._wire):
    void *inp            # what the layer reads in the forward pass (NULL: the batch x)
    void *gout           # dL/d(its output) in the backward pass (NULL: not reached)
    void *dzp            # Dense: dL/d(pre-activation): gout itself, or dz
    int identity         # Activation that passes its input through
    # weights (Dense, Conv2D): elements of W and b
    long nW, nB
    # images (Conv2D, pooling): input H x W x C, window KH x KW (the pool
    # size), strides, padding before, output OH x OW x F (pooling: F = C)
    long H, Wd, C, KH, KW, sh, sw, pt, pl, OH, OW, F
    long kk1             # Conv2D: rows of a weight-gradient partial (kk, +1 with a bias)
    void *parts          # Conv2D: (max_batch / DW_GROUP groups, kk1, F) partials
    void *wt             # Conv2D with need_dx: W^T (F x kk), refreshed as W is updated
    # the Winograd path (k_conv.pxd's conv_winograd: 3x3, stride 1, enough
    # channels), as conv.pyx takes it: the transformed kernel U (forward)
    # and Uflip (dx; need_dx only), recomputed after each update; the group
    # partials in the Winograd domain (wpart elements each) and the scratch
    # of their final transform
    int wg
    void *U
    void *Uflip
    long wpart
    void *wg_fin
    int32_t *arg         # MaxPooling: (max_batch, n_out) where each maximum was
    int tiled            # MaxPooling: windows tile the image (faster backward)


cdef struct HeadC:
    # One thread's private copy of its columns [u0, u0 + w) of the head Dense
    # layer (see _steps): kernel, gradient and optimizer slots as (n_in, w)
    # arrays, bias and its gradient and slots as (w,) arrays.
    long u0, w
    void *W
    void *dW
    void *sW[3]
    void *b
    void *db
    void *sb[3]


cdef struct PlanC:
    LayerC *layers
    int n_layers
    ParamC *params       # every layer's parameters, layer by layer
    int n_params
    int has_layer_kind   # an LK_LAYER entry: the GIL is taken, one thread runs
    int failed           # an LK_LAYER call raised (FusedPlan._error): stop
    void *owner          # the FusedPlan (to store that exception)
    int is_double
    long max_batch, n_features, n_outputs
    int loss_kind
    int n_metrics
    int metric_kind[MAX_METRICS]
    double metric_threshold[MAX_METRICS]
    int metric_weighted[MAX_METRICS]      # weighted_metrics: sample weights apply
    OptParams opt
    void *xb             # (team, max_batch, n_features): each thread's own copy of the batch
    int team_cap         # threads xb has room for
    long xb_stride       # elements from one thread's copy to the next
    void *yb
    int32_t *lb
    void *swb
    void *grad
    void *probs
    void *values         # the model's output (the last non-identity layer's out)
    double *row_loss
    int first_trainable  # backward stops at the lowest trainable Dense
    int head, head_end   # layers [head, head_end) split by columns (head = -1: none)
    long row_unit        # batch rows (images) are shared in whole units of this
    void *cs             # (team, cs_stride): each thread's convolution scratch
    long cs_stride       # elements from one thread's scratch to the next (0: no Conv2D)
    long cs_wg           # where the Winograd scratch starts in a thread's
    int any_wg_trained   # a trained Winograd conv: its U, Uflip follow each update
    HeadC *heads         # per thread, for a team of heads_n (0: none); owned by FusedPlan._heads
    int heads_n


cdef class FusedPlan:
    """Pointers to a model's weights, slots and preallocated buffers."""
    cdef PlanC c
    cdef object keep              # the arrays the pointers point into
    cdef object _xb, _xb_dtype, _cs
    cdef dict _heads                 # team size -> its HeadC structs and arrays
    cdef public bint is_double
    cdef object _error               # what an LK_LAYER call raised
    cdef dict _views                 # _layer_call's NumPy views, by (buffer, rows)

    def __cinit__(self):
        self.c.layers = NULL
        self.c.params = NULL
        self.c.heads = NULL
        self.c.heads_n = 0
        self.c.row_loss = NULL

    def __dealloc__(self):
        if self.c.layers != NULL:
            free(self.c.layers)
        if self.c.params != NULL:
            free(self.c.params)
        if self.c.row_loss != NULL:
            free(self.c.row_loss)

    def __init__(self, list layers, dict opt, str loss_kind, list metrics,
                 long max_batch, long n_features, long n_outputs, bint is_double,
                 bint sparse_labels, bint has_sample_weight):
        """layers: the entries of a step plan (nncore/models/plan.py), each
        with its live arrays; every array is checked here (dtype, size,
        layout) before the loop may point into it."""
        cdef int i, k
        cdef long kw
        cdef LayerC *L
        dt = np.float64 if is_double else np.float32
        if len(metrics) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics in the fused loop")
        if max_batch < 1 or n_features < 1 or n_outputs < 1 or not layers:
            raise ValueError("fused loop: empty plan")
        self.keep = []
        self._views = {}
        self.is_double = is_double
        self.c.max_batch, self.c.n_features, self.c.n_outputs = max_batch, n_features, n_outputs
        self.c.n_layers = len(layers)
        self.c.layers = <LayerC *>calloc(max(1, self.c.n_layers), sizeof(LayerC))
        self.c.row_loss = <double *>malloc(max_batch * sizeof(double))
        if self.c.layers == NULL or self.c.row_loss == NULL:
            raise MemoryError()
        if opt.get("kind") not in OPTIMIZER_KINDS:
            raise ValueError(f"fused loop: unknown optimizer kind {opt.get('kind')!r}")
        for spec in layers:
            check_entry(spec, opt, np.dtype(dt))
        self.c.n_params = sum(len(spec.params) for spec in layers)
        self.c.params = <ParamC *>calloc(max(1, self.c.n_params), sizeof(ParamC))
        if self.c.params == NULL:
            raise MemoryError()
        self.c.owner = <void *>self
        self.c.is_double = is_double
        # each layer reads what the one below wrote: the widths must chain
        width = n_features
        for spec in layers:
            if spec.n_in != width or not isinstance(spec.n_out, int) or spec.n_out < 1:
                raise ValueError("fused loop: the layers' widths do not chain")
            width = spec.n_out
        if width != n_outputs:
            raise ValueError("fused loop: the last layer's width is not the output's")
        cdef long max_groups = (max_batch + DW_GROUP - 1) // DW_GROUP
        cdef long kk, cs_need = 0, wg_need = 0
        cdef ParamC *Pm
        cdef int np_used = 0
        self.c.row_unit = NN_MR
        for i, spec in enumerate(layers):
            L = &self.c.layers[i]
            L.kind = LAYER_KINDS[spec.kind]
            L.n_in, L.n_out = spec.n_in, spec.n_out
            L.act = ACTIVATIONS[spec.act]
            L.logits = spec.logits
            if L.logits and spec.kind == "conv2d":
                L.act = ACT_LINEAR      # the loss starts from its logits
            L.need_dx = spec.need_dx
            L.backprop = spec.backprop
            L.rate = spec.rate
            L.seed = spec.seed
            L.step = spec.step or 0
            L.entry = <void *>spec
            self.keep.append(spec)
            if L.kind == LK_LAYER:
                self.c.has_layer_kind = 1
            # the parameters, whatever the kind: checked, then pointed at
            L.params = &self.c.params[np_used]
            L.n_params = len(spec.params)
            for k, prm in enumerate(spec.params):
                Pm = &L.params[k]
                Pm.size = prm.value.size
                Pm.value = self._ptr(prm.value, dt, Pm.size)
                Pm.grad = self._ptr(prm.grad, dt, Pm.size)
                for kk in range(3):
                    Pm.slots[kk] = self._ptr(prm.slots[kk], dt, Pm.size)
                Pm.trained, Pm.reg = prm.trained, prm.reg
                Pm.l1, Pm.l2 = prm.l1, prm.l2
            np_used += L.n_params
            L.out = self._ptr(np.empty((max_batch, L.n_out), dt))
            if L.kind == LK_DENSE:       # (a Conv2D's dz lives in its thread's scratch)
                L.dz = self._ptr(np.empty((max_batch, L.n_out), dt))
            L.dx = self._ptr(np.empty((max_batch, L.n_in), dt))
            if L.kind == LK_DROPOUT:
                L.mask = <uint8_t *>self._ptr(np.empty(max_batch * L.n_out, np.uint8))
            if L.kind == LK_CONV or L.kind == LK_MAXPOOL or L.kind == LK_AVGPOOL:
                L.H, L.Wd, L.C = spec.in_h, spec.in_w, spec.in_c
                L.KH, L.KW, L.sh, L.sw = spec.kh, spec.kw, spec.sh, spec.sw
                L.pt, L.pl, L.OH, L.OW = spec.pt, spec.pl, spec.oh, spec.ow
                L.F = spec.filters if L.kind == LK_CONV else L.C
            if L.kind == LK_MAXPOOL:
                L.arg = <int32_t *>self._ptr(np.empty(max_batch * L.n_out, np.int32))
                L.tiled = (L.sh == L.KH and L.sw == L.KW and L.pt == 0 and L.pl == 0
                           and L.OH * L.KH == L.H and L.OW * L.KW == L.Wd)
            if L.kind == LK_DENSE or L.kind == LK_CONV:
                kw = L.n_in * L.n_out
                L.nB = L.n_out
                if L.kind == LK_CONV:
                    kk = L.KH * L.KW * L.C
                    kw, L.nB = kk * L.F, L.F
                    L.kk1 = kk + 1 if spec.b is not None else kk
                    L.wg = conv_winograd(L.KH, L.KW, L.sh, L.sw, L.C, L.F)
                    if L.wg:
                        L.wpart = conv_part_size(L.KH, L.KW, L.C, L.F, True, True)
                        L.parts = self._ptr(np.empty(max_groups * L.wpart, dt))
                        L.U = self._ptr(np.empty(conv_wg_kernel_size(L.C, L.F), dt))
                        if L.need_dx:
                            L.Uflip = self._ptr(np.empty(conv_wg_kernel_size(L.C, L.F), dt))
                        L.wg_fin = self._ptr(np.empty(12 * L.F, dt))
                        wg_need = max(wg_need, conv_wg_scratch(L.C, L.F))
                        if L.params[0].trained:
                            self.c.any_wg_trained = 1
                    else:
                        L.parts = self._ptr(np.empty(max_groups * L.kk1 * L.F, dt))
                        if L.need_dx:
                            L.wt = self._ptr(np.empty(kw, dt))
                    # images are shared in whole weight-gradient groups, so
                    # that each group's partial is one thread's sum
                    self.c.row_unit = DW_GROUP
                    # cols (rows x kk1), dcols (rows x kk), dz (rows x F)
                    cs_need = max(cs_need, L.OH * L.OW * (2 * kk + 1 + L.F))
                # the kernel and the bias: params[0] and params[1]
                L.nW = kw
                if L.params[0].size != kw or (L.n_params > 1 and L.params[1].size != L.nB):
                    raise ValueError("fused loop: kernel / bias sizes do not match the layer")
                L.W, L.dW = L.params[0].value, L.params[0].grad
                if L.n_params > 1:
                    L.b, L.db = L.params[1].value, L.params[1].grad
        self._xb_dtype = np.dtype(dt)
        self._heads = {}
        self.c.team_cap = 0
        unit_pad = 64 // self._xb_dtype.itemsize      # keep scratches a cache line apart
        self.c.cs_wg = (cs_need + unit_pad - 1) // unit_pad * unit_pad
        self.c.cs_stride = (self.c.cs_wg + wg_need + unit_pad - 1) // unit_pad * unit_pad
        self.reserve_team(1)
        self.c.yb = self._ptr(np.empty((max_batch, n_outputs), dt))
        self.c.lb = <int32_t *>self._ptr(np.empty(max_batch, np.int32))
        self.c.swb = self._ptr(np.empty(max_batch, dt)) if has_sample_weight else NULL
        self.c.grad = self._ptr(np.empty((max_batch, n_outputs), dt))
        self.c.probs = self._ptr(np.empty((max_batch, n_outputs), dt))
        self.c.loss_kind = LOSS_KINDS[loss_kind]
        self.c.n_metrics = len(metrics)
        for i, (kind, thr, weighted) in enumerate(metrics):
            self.c.metric_kind[i] = METRIC_KINDS[kind]
            self.c.metric_threshold[i] = thr
            self.c.metric_weighted[i] = weighted
        self.c.opt.kind = OPTIMIZER_KINDS[opt["kind"]]
        self.c.opt.lr = opt.get("lr", 0.0)
        self.c.opt.momentum = opt.get("momentum", 0.0)
        self.c.opt.nesterov = opt.get("nesterov", False)
        self.c.opt.centered = opt.get("centered", False)
        self.c.opt.rho = opt.get("rho", 0.0)
        self.c.opt.beta_1 = opt.get("beta_1", 0.0)
        self.c.opt.beta_2 = opt.get("beta_2", 0.0)
        self.c.opt.amsgrad = opt.get("amsgrad", False)
        self.c.opt.epsilon = opt.get("epsilon", 0.0)
        self._wire()

    cdef void _wire(self):
        """Which buffer each layer reads and writes, and which layers split by
        columns: fixed by the stack, so worked out once here instead of by
        every thread in every step."""
        cdef PlanC *P = &self.c
        cdef LayerC *L
        cdef int li
        cdef void *inp = NULL          # the batch (each thread's own copy)
        cdef void *g = P.grad
        for li in range(P.n_layers):
            L = &P.layers[li]
            L.identity = L.kind == LK_ACTIVATION and (L.logits != 0 or L.act == ACT_LINEAR)
            L.inp = inp
            if not L.identity:
                inp = L.out
        P.values = inp
        # where backward stops: decided once, by the plan (entry.backprop)
        P.first_trainable = P.n_layers
        for li in range(P.n_layers):
            if P.layers[li].backprop:
                P.first_trainable = li
                break
        for li in range(P.n_layers - 1, P.first_trainable - 1, -1):
            L = &P.layers[li]
            L.gout = g
            if L.kind == LK_DENSE:
                L.dzp = g if (L.logits != 0 or L.act == ACT_LINEAR) else L.dz
                if L.need_dx:
                    g = L.dx
            elif L.kind == LK_CONV:
                if L.need_dx:
                    g = L.dx
            elif L.kind != LK_ACTIVATION or not L.identity:
                g = L.dx
        # The column-split head: the lowest trainable Dense, when it reads the
        # batch itself (so it needs no dX), is not the output layer, is wide
        # enough to share, and has an element-wise activation -- plus the
        # element-wise Dropout / Activation layers right above it.
        P.head = P.head_end = -1
        li = P.first_trainable
        if li >= P.n_layers - 1:
            return
        L = &P.layers[li]
        if L.kind != LK_DENSE or L.inp != NULL or L.n_out < HEAD_MIN_UNITS or L.act == ACT_SOFTMAX or \
                P.has_layer_kind or _any_reg(L):
            return
        P.head = li
        li += 1
        while li < P.n_layers and (P.layers[li].kind == LK_DROPOUT or
                                   P.layers[li].kind == LK_ACTIVATION) and \
                P.layers[li].act != ACT_SOFTMAX and P.layers[li].logits == 0:
            li += 1
        P.head_end = li

    def reserve_team(self, int nth):
        """Buffers for a team of nth threads: a copy of the batch each (grows,
        never shrinks) and, with a column-split head, each thread's private
        columns of the head layer (made for exactly this team size)."""
        cdef PlanC *P = &self.c
        cdef long unit_pad = 64 // self._xb_dtype.itemsize   # keep copies a cache line apart
        if nth > P.team_cap:
            P.xb_stride = (P.max_batch * P.n_features + unit_pad - 1) // unit_pad * unit_pad
            self._xb = np.empty(nth * P.xb_stride, self._xb_dtype)
            P.xb = <void *><size_t>self._xb.ctypes.data
            # each thread's convolution scratch (im2col columns etc.), one
            # cache line into the array and cache lines apart
            self._cs = np.empty(nth * P.cs_stride + unit_pad, self._xb_dtype)
            P.cs = <void *>((<size_t>self._cs.ctypes.data + 63) // 64 * 64)
            P.team_cap = nth
        if P.head < 0 or nth < 2 or P.heads_n == nth:
            return
        if nth not in self._heads:       # kept: the thread chooser may come back
            self._heads[nth] = self._make_heads(nth)
        P.heads = <HeadC *><size_t>self._heads[nth][0].ctypes.data
        P.heads_n = nth

    def _make_heads(self, int nth):
        """Each thread's private columns of the head layer, for a team of nth:
        (the HeadC structs as bytes, the arrays they point into)."""
        cdef PlanC *P = &self.c
        cdef LayerC *L = &P.layers[P.head]
        cdef long unit_pad = 64 // self._xb_dtype.itemsize
        structs = np.zeros(nth * sizeof(HeadC), np.uint8)
        cdef HeadC *heads = <HeadC *><size_t>structs.ctypes.data
        cdef HeadC *H
        cdef int t, k
        cdef long u0, u1, kw
        cdef size_t base, isz = self._xb_dtype.itemsize
        arrays = []
        for t in range(nth):
            H = &heads[t]
            u0 = _share_lo(L.n_out, COL_UNIT, t, nth)
            u1 = _share_lo(L.n_out, COL_UNIT, t + 1, nth)
            H.u0, H.w = u0, u1 - u0
            kw = L.n_in * H.w
            # kernel, gradient and 3 slots, then the same for the bias: one
            # array per thread, a cache line of padding at both ends, so that
            # no line is shared with another thread's data
            buf = np.zeros(5 * (kw + H.w) + 3 * unit_pad, self._xb_dtype)
            arrays.append(buf)
            base = (<size_t>buf.ctypes.data + 63) // 64 * 64 + 64
            H.W = <void *>base
            H.dW = <void *>(base + kw * isz)
            for k in range(3):
                H.sW[k] = <void *>(base + (2 + k) * kw * isz) if L.params[0].slots[k] != NULL else NULL
            base += 5 * kw * isz
            if L.b != NULL:
                H.b = <void *>base
                H.db = <void *>(base + H.w * isz)
                for k in range(3):
                    H.sb[k] = <void *>(base + (2 + k) * H.w * isz) if L.params[1].slots[k] != NULL else NULL
        return structs, arrays

    cdef void *_ptr(self, arr, dtype=None, long size=-1) except? NULL:
        """A pointer into arr, kept alive by the plan -- after checking that
        it is what the loop will read and write there."""
        if arr is None:
            return NULL
        if not isinstance(arr, np.ndarray) or not arr.flags.c_contiguous \
                or not arr.flags.writeable:
            raise ValueError("fused loop: weights, gradients and slots must be writable "
                             "C-contiguous arrays")
        if dtype is not None and arr.dtype != dtype:
            raise ValueError(f"fused loop: an array of dtype {arr.dtype} in a "
                             f"{np.dtype(dtype)} plan")
        if size >= 0 and arr.size != size:
            raise ValueError(f"fused loop: an array of {arr.size} elements where the "
                             f"layer needs {size}")
        self.keep.append(arr)
        return <void *><size_t>arr.ctypes.data

    def layout(self, long batch):
        """How a run with this batch size shares out its work now:
        {"threads": team size, "head": (first, end) of the column-split
        layers (indices into the plan's layers) or None}."""
        cdef int nth = _team_size(&self.c, batch, nn_omp_max_threads())
        return {"threads": nth,
                "head": (self.c.head, self.c.head_end) if self.c.head >= 0 and nth > 1 else None}

    def set_learning_rate(self, double lr):
        self.c.opt.lr = lr

    def dropout_steps(self):
        return [self.c.layers[i].step for i in range(self.c.n_layers)]

    def run(self, x, labels, targets, sample_weight, const Py_ssize_t[::1] order,
            long first_step, long n_steps, long batch_size, long iterations,
            double[::1] sums, int max_threads=0):
        """Run steps [first_step, first_step + n_steps) of the epoch ``order``,
        on at most max_threads threads (0: nncore's thread setting).

        sums (in/out): [loss_total, count, correct_0, weight_0, correct_1, ...]
        Returns the number of optimizer steps taken.
        """
        cdef long n = order.shape[0]
        cdef long done
        self._error, self.c.failed = None, 0
        if self.is_double:
            done = _run[double](self, x, labels, targets, sample_weight, order,
                                first_step, n_steps, batch_size, iterations, sums, n,
                                max_threads)
        else:
            done = _run[float](self, x, labels, targets, sample_weight, order,
                               first_step, n_steps, batch_size, iterations, sums, n,
                               max_threads)
        if self._error is not None:
            # a layer's own forward/backward raised: the failed step was not
            # applied (the steps before it were, and are counted)
            err, self._error = self._error, None
            raise err
        return done

    cdef int _layer_call(self, LayerC *L, bint forward, void *inp, long nb) noexcept:
        """An LK_LAYER entry's forward (inp -> L.out) or backward (L.gout ->
        L.dx when need_dx; the layer fills its gradients) on nb rows, as
        NumPy views of the loop's buffers.  Returns -1 (and keeps the
        exception) when the layer raised."""
        entry = <object>L.entry
        try:
            if forward:
                entry.layer_forward(self._view(inp, nb, L.n_in),
                                    self._view(L.out, nb, L.n_out))
            else:
                entry.layer_backward(self._view(L.gout, nb, L.n_out),
                                     self._view(L.dx, nb, L.n_in) if L.need_dx else None)
        except BaseException as e:
            self._error = e
            self.c.failed = 1
            return -1
        return 0


    cdef object _view(self, void *p, long rows, long cols):
        """The (rows, cols) NumPy view of a loop buffer, made once per fit and
        batch size: making one costs a few microseconds, and a step of a
        model with layer entries asks for six to eight (the buffers never
        move while the plan lives; a layer may keep a view, as before)."""
        key = (<size_t>p, rows, cols)
        v = self._views.get(key)
        if v is None:
            v = self._views[key] = _view(p, rows, cols, self.is_double)
        return v


cdef object _view(void *p, long rows, long cols, bint is_double):
    """A NumPy (rows, cols) view of a loop buffer (no copy)."""
    if is_double:
        return np.asarray(<double[:rows, :cols]> <double *>p)
    return np.asarray(<float[:rows, :cols]> <float *>p)


cdef inline bint _any_reg(LayerC *L) noexcept nogil:
    cdef int k
    for k in range(L.n_params):
        if L.params[k].reg:
            return True
    return False


# Team sizing: each thread must bring TEAM_FMA_PER_THREAD multiply-adds a
# step (forward + backward products); below that its share is worth less
# than the barriers and the traffic between cores.  Measured on 2 cores:
# 784-10 at batch 32 (0.5 M a step) gains nothing from a second thread
# (37 vs 40 us a step when the two vCPUs sit close, 60 vs 37 when they do
# not), 784-100-10 (5 M) gains 1.5x.  (More: bench/README.md.)
cdef enum:
    TEAM_FMA_PER_THREAD = 1000000

cdef int _team_size(PlanC *P, long batch, int nt) noexcept nogil:
    cdef long fma = 0
    cdef int li
    cdef LayerC *L
    for li in range(P.n_layers):
        L = &P.layers[li]
        if L.kind == LK_DENSE:
            fma += batch * L.n_in * L.n_out * (1 + (li >= P.first_trainable) + L.need_dx)
        elif L.kind == LK_CONV:
            fma += batch * L.OH * L.OW * L.nW * (1 + (li >= P.first_trainable) + L.need_dx)
    if nt <= 1 or P.has_layer_kind:      # a layer's own code runs with the GIL
        return 1
    if fma // TEAM_FMA_PER_THREAD + 1 < nt:
        return <int>(fma // TEAM_FMA_PER_THREAD + 1)
    return nt


cdef inline long _share_lo(long n, long unit, int t, int nth) noexcept nogil:
    """Start of thread t's share of n items cut in whole units of ``unit``
    (e.g. MR rows, so that GEMM strips stay whole); thread t owns
    [_share_lo(.., t, ..), _share_lo(.., t + 1, ..))."""
    cdef long units = (n + unit - 1) // unit
    cdef long lo = units * t // nth * unit
    return lo if lo < n else n


cdef long _run(FusedPlan plan, const floating[:, ::1] x, const int32_t[::1] labels,
               const floating[:, ::1] targets, const floating[::1] sample_weight,
               const Py_ssize_t[::1] order, long first_step, long n_steps,
               long batch_size, long iterations, double[::1] sums,
               long n, int max_threads) except -1:
    cdef PlanC *P = &plan.c
    cdef long nf = P.n_features, c = P.n_outputs
    cdef int nt = nn_omp_max_threads()
    if 0 < max_threads < nt:
        nt = max_threads
    cdef long done = 0
    cdef int j
    if x.shape[1] != nf or order.shape[0] > x.shape[0] or min(batch_size, n) > P.max_batch:
        raise ValueError("fused loop: inconsistent shapes")
    # what the kernels will read must be there: labels for the sparse kinds,
    # targets (n, outputs) for the others
    if (P.loss_kind == LOSS_SOFTMAX_SPARSE or P.loss_kind == LOSS_PROBS_SPARSE) and labels is None:
        raise ValueError("fused loop: this loss needs integer labels")
    if not (P.loss_kind == LOSS_SOFTMAX_SPARSE or P.loss_kind == LOSS_PROBS_SPARSE) and \
            (targets is None or targets.shape[1] != c):
        raise ValueError("fused loop: this loss needs targets shaped like the output")
    for j in range(P.n_metrics):
        if P.metric_kind[j] == METRIC_SPARSE and labels is None:
            raise ValueError("fused loop: a sparse accuracy needs integer labels")
        if P.metric_kind[j] != METRIC_SPARSE and targets is None:
            raise ValueError("fused loop: this accuracy needs targets shaped like the output")
    if labels is not None and labels.shape[0] < x.shape[0] or \
            targets is not None and targets.shape[0] < x.shape[0] or \
            sample_weight is not None and sample_weight.shape[0] < x.shape[0]:
        raise ValueError("fused loop: labels/targets/weights shorter than x")
    if n_steps < 0 or first_step < 0 or batch_size < 1:
        raise ValueError("fused loop: negative step counts or batch size")
    # Check exactly the entries this call will read: the order of its steps'
    # rows and those rows' labels.  The work stays proportional to the steps
    # run, which matters when a callback wants every batch (one step a call:
    # checking the whole epoch's order and labels each time cost as much as
    # the step).  (fit validates all labels once, in prepare_targets.)
    cdef long epoch_steps = (n + batch_size - 1) // batch_size
    cdef long s0 = first_step if first_step < epoch_steps else epoch_steps
    cdef long s1 = s0 + n_steps if n_steps < epoch_steps - s0 else epoch_steps
    cdef long lo = s0 * batch_size
    cdef long hi = s1 * batch_size if s1 * batch_size < n else n
    cdef long i
    cdef Py_ssize_t r
    for i in range(lo, hi):
        r = order[i]
        if r < 0 or r >= x.shape[0]:
            raise ValueError("fused loop: sample order out of range")
        if labels is not None and (labels[r] < 0 or labels[r] >= c):
            raise ValueError(f"fused loop: label {labels[r]} out of range [0, {c})")
    if sums.shape[0] < 2 + 2 * P.n_metrics:
        raise ValueError("fused loop: sums too short")
    cdef int nth = _team_size(P, min(batch_size, n), nt)
    plan.reserve_team(nth)
    # per thread: workspace failure flag, and the number of steps it ran
    cdef int *fail = <int *>calloc(nth, sizeof(int))
    cdef long *ran = <long *>calloc(nth, sizeof(long))
    if fail == NULL or ran == NULL:
        free(fail)
        free(ran)
        raise MemoryError()
    cdef const floating *xp = &x[0, 0]
    cdef const int32_t *lp = &labels[0] if labels is not None else NULL
    cdef const floating *tp = &targets[0, 0] if targets is not None else NULL
    cdef const floating *wp = &sample_weight[0] if sample_weight is not None else NULL
    with nogil:
        if nth == 1:
            done = _steps(P, xp, lp, tp, wp, &order[0], n, first_step, n_steps,
                          batch_size, iterations, &sums[0], 0, 1, fail)
        else:
            with parallel(num_threads=nth):
                # every thread runs the loop (all take the same steps); the
                # team may be smaller than asked, so it sizes the shares itself
                ran[threadid()] = _steps(P, xp, lp, tp, wp, &order[0], n, first_step,
                                         n_steps, batch_size, iterations, &sums[0],
                                         threadid(), nn_omp_team_size(), fail)
            done = ran[0]
    free(fail)
    free(ran)
    if done < 0:
        raise MemoryError("fused loop: GEMM workspace allocation failed")
    return done


cdef inline void _param_work(const OptParams *o, ParamC *p, long lo, long hi,
                             const floating *like) noexcept nogil:
    """Elements [lo, hi) of one parameter, once its gradient is complete:
    the regularizer's gradient added, then the optimizer's update -- the
    same for every parameter of every layer kind.  (``like`` only selects
    the element type.)"""
    if hi <= lo:
        return
    if p.reg:
        l1_l2_grad(<floating *>p.value + lo, <floating *>p.grad + lo, hi - lo, p.l1, p.l2)
    if p.trained:
        opt_update_range(o, <floating *>p.value, <floating *>p.grad, <floating *>p.slots[0],
                         <floating *>p.slots[1], <floating *>p.slots[2], lo, hi)


cdef void _params_elems(LayerC *L, const OptParams *o, int tid, int nth,
                        const floating *like) noexcept nogil:
    """Thread tid's share of every parameter of a layer whose gradients are
    complete (kind LK_LAYER: its own backward filled them)."""
    cdef int k
    cdef ParamC *p
    for k in range(L.n_params):
        p = &L.params[k]
        _param_work(o, p, _share_lo(p.size, CONV_ELEM_UNIT, tid, nth),
                    _share_lo(p.size, CONV_ELEM_UNIT, tid + 1, nth), like)


cdef void _params_rows(LayerC *L, bint backprop, const floating *inp,
                       long nb, const OptParams *o, int tid, int nth) noexcept nogil:
    """Thread tid's share of a row-split layer's parameter work: kernel rows
    [a, b) (dW = inp[:, a:b]^T . dZ, regularization, update) and bias
    entries [a', b')."""
    cdef long a = _share_lo(L.n_in, NN_MR, tid, nth)
    cdef long b = _share_lo(L.n_in, NN_MR, tid + 1, nth)
    if backprop:
        gemm_block(True, False, nb, inp, L.n_in, <floating *>L.dzp, L.n_out,
                   <floating *>L.dW, L.n_out, False, a, b, 0, L.n_out)
    _param_work(o, &L.params[0], a * L.n_out, b * L.n_out, inp)
    if L.b == NULL:
        return
    a = _share_lo(L.n_out, 1, tid, nth)
    b = _share_lo(L.n_out, 1, tid + 1, nth)
    if backprop:
        bias_grad_cols(<floating *>L.dzp, <floating *>L.db, nb, L.n_out, a, b, False)
    _param_work(o, &L.params[1], a, b, inp)


cdef void _params_conv(LayerC *L, bint backprop, long nb, const OptParams *o, int tid,
                       int nth, const floating *like) noexcept nogil:
    """Thread tid's share of a Conv2D's parameter work: kernel elements
    [a, b) (dW = the group partials added in group order, regularization,
    update, and W^T refreshed for the next step's dx) and bias entries
    [a', b').  (``like`` only selects the element type.)"""
    cdef long groups = (nb + DW_GROUP - 1) // DW_GROUP
    cdef long stride = L.kk1 * L.F
    cdef long a, b, nwg
    if backprop and L.wg:
        # Winograd (as conv.pyx): the partials added in group order into
        # group 0's, threads splitting the elements; then dW = G^T dU G and
        # db from the sum, a whole-kernel transform, on one thread; barriers
        # between (every thread reaches them: the layers are the same for all)
        nwg = 16 * L.C * L.F + L.F
        conv_wg_group_sum(<floating *>L.parts, groups, L.C, L.F,
                          _share_lo(nwg, CONV_ELEM_UNIT, tid, nth),
                          _share_lo(nwg, CONV_ELEM_UNIT, tid + 1, nth))
        if nth > 1:
            nn_omp_barrier()
        if tid == 0:
            conv_wg_finish(<floating *>L.parts, L.C, L.F, <floating *>L.dW,
                           <floating *>L.db, <floating *>L.wg_fin)
        if nth > 1:
            nn_omp_barrier()
    a = _share_lo(L.nW, CONV_ELEM_UNIT, tid, nth)
    b = _share_lo(L.nW, CONV_ELEM_UNIT, tid + 1, nth)
    if backprop and not L.wg:
        conv_group_sum(<floating *>L.parts, groups, stride, <floating *>L.dW, a, b)
    _param_work(o, &L.params[0], a, b, like)
    if L.params[0].trained:
        if L.wt != NULL:
            conv_transpose_kernel(<floating *>L.W, L.nW // L.F, L.F, <floating *>L.wt, a, b)
    if L.b == NULL:
        return
    a = _share_lo(L.nB, 1, tid, nth)
    b = _share_lo(L.nB, 1, tid + 1, nth)
    if backprop and not L.wg:
        conv_group_sum(<floating *>L.parts + (L.kk1 - 1) * L.F, groups, stride,
                       <floating *>L.db, a, b)
    _param_work(o, &L.params[1], a, b, like)


cdef void _wg_kernels(PlanC *P, int tid, int nth, const floating *like,
                      bint trained_only) noexcept nogil:
    """U (and Uflip) of every Winograd Conv2D (only the trained ones'
    change), the transforms shared out between the threads, one each."""
    cdef int li, k = 0
    cdef LayerC *L
    for li in range(P.n_layers):
        L = &P.layers[li]
        if not L.wg or (trained_only and not L.params[0].trained):
            continue
        if k % nth == tid:
            conv_wg_kernel(<floating *>L.W, L.C, L.F, False, <floating *>L.U)
        k += 1
        if L.Uflip != NULL:
            if k % nth == tid:
                conv_wg_kernel(<floating *>L.W, L.C, L.F, True, <floating *>L.Uflip)
            k += 1


cdef void _params_head(LayerC *L, HeadC *H, const floating *xb, long nb,
                       const OptParams *o) noexcept nogil:
    """The head Dense layer's parameter work for this thread's units
    [u0, u0 + w), on its private copies: dW = x^T . dZ[:, U], db, update."""
    gemm_block(True, False, nb, xb, L.n_in, <floating *>L.dzp + H.u0, L.n_out,
               <floating *>H.dW, H.w, False, 0, L.n_in, 0, H.w)
    if L.params[0].trained:
        opt_update_range(o, <floating *>H.W, <floating *>H.dW, <floating *>H.sW[0],
                         <floating *>H.sW[1], <floating *>H.sW[2], 0, L.n_in * H.w)
    if L.b == NULL:
        return
    bias_grad_cols(<floating *>L.dzp + H.u0, <floating *>H.db, nb, L.n_out, 0, H.w, False)
    if L.params[1].trained:
        opt_update_range(o, <floating *>H.b, <floating *>H.db, <floating *>H.sb[0],
                         <floating *>H.sb[1], <floating *>H.sb[2], 0, H.w)


cdef inline void _cols_copy(floating *full, long ld, floating *part, long n_rows,
                            long u0, long w, bint to_part) noexcept nogil:
    """Columns [u0, u0 + w) of full (n_rows x ld) <-> part (n_rows x w)."""
    cdef long i
    if full == NULL or part == NULL:
        return
    for i in range(n_rows):
        if to_part:
            memcpy(part + i * w, full + i * ld + u0, w * sizeof(floating))
        else:
            memcpy(full + i * ld + u0, part + i * w, w * sizeof(floating))


cdef void _head_copy(LayerC *L, HeadC *H, const floating *like, bint to_private) noexcept nogil:
    """Copy this thread's columns of the head layer's kernel, bias, gradients
    and optimizer slots into its private arrays (start of a run) or back
    (end of a run).  (``like`` only selects the element type.)"""
    cdef int k
    _cols_copy(<floating *>L.W, L.n_out, <floating *>H.W, L.n_in, H.u0, H.w, to_private)
    _cols_copy(<floating *>L.dW, L.n_out, <floating *>H.dW, L.n_in, H.u0, H.w, to_private)
    _cols_copy(<floating *>L.b, L.n_out, <floating *>H.b, 1, H.u0, H.w, to_private)
    _cols_copy(<floating *>L.db, L.n_out, <floating *>H.db, 1, H.u0, H.w, to_private)
    for k in range(3):
        _cols_copy(<floating *>L.params[0].slots[k], L.n_out, <floating *>H.sW[k], L.n_in,
                   H.u0, H.w, to_private)
        if L.n_params > 1:
            _cols_copy(<floating *>L.params[1].slots[k], L.n_out, <floating *>H.sb[k], 1,
                       H.u0, H.w, to_private)


cdef void _forward(PlanC *P, LayerC *L, floating *xb, long nb, long r0, long r1,
                   long c0, long c1, floating *cs, long cs_wg) noexcept nogil:
    """Forward pass of one layer on rows [r0, r1) and (a column-split layer)
    columns [c0, c1) of its output (an image layer: images [r0, r1), whole;
    cs: this thread's convolution scratch)."""
    cdef floating *inp = xb if L.inp == NULL else <floating *>L.inp
    cdef long r
    if L.kind == LK_LAYER:              # (a team of one: rows [0, nb))
        with gil:
            (<FusedPlan>P.owner)._layer_call(L, True, inp, nb)
    elif L.kind == LK_CONV:
        for r in range(r0, r1):
            conv_forward_image(inp + r * L.n_in, L.H, L.Wd, L.C, L.KH, L.KW, L.sh, L.sw,
                               L.pt, L.pl, L.OH, L.OW, <floating *>L.W, L.F,
                               <floating *>L.b, L.act, <floating *>L.out + r * L.n_out,
                               cs, <floating *>L.U, cs + cs_wg)
    elif L.kind == LK_MAXPOOL:
        for r in range(r0, r1):
            maxpool_forward_image(inp + r * L.n_in, L.H, L.Wd, L.C, L.KH, L.KW, L.sh, L.sw,
                                  L.pt, L.pl, L.OH, L.OW, <floating *>L.out + r * L.n_out,
                                  L.arg + r * L.n_out)
    elif L.kind == LK_AVGPOOL:
        for r in range(r0, r1):
            avgpool_forward_image(inp + r * L.n_in, L.H, L.Wd, L.C, L.KH, L.KW, L.sh, L.sw,
                                  L.pt, L.pl, L.OH, L.OW, <floating *>L.out + r * L.n_out)
    elif L.kind == LK_DENSE:
        gemm_block(False, False, L.n_in, inp, L.n_in, <floating *>L.W, L.n_out,
                   <floating *>L.out, L.n_out, False, r0, r1, c0, c1)
        bias_act_block(<floating *>L.out, L.n_out, <floating *>L.b, r0, r1, c0, c1,
                       ACT_LINEAR if L.logits else L.act)
    elif L.kind == LK_DROPOUT:
        if c0 == 0 and c1 == L.n_out:      # whole rows: one contiguous range
            dropout_forward_range(inp, <floating *>L.out, L.mask, r0 * L.n_out,
                                  r1 * L.n_out, L.rate, L.seed, L.step)
        else:
            for r in range(r0, r1):
                dropout_forward_range(inp, <floating *>L.out, L.mask, r * L.n_out + c0,
                                      r * L.n_out + c1, L.rate, L.seed, L.step)
    elif not L.identity:
        for r in range(r0, r1):
            memcpy(<floating *>L.out + r * L.n_out + c0, inp + r * L.n_out + c0,
                   (c1 - c0) * sizeof(floating))
        bias_act_block(<floating *>L.out, L.n_out, <floating *>NULL, r0, r1, c0, c1, L.act)


cdef void _backward(PlanC *P, LayerC *L, floating *xb, long r0, long r1, long c0,
                    long c1, floating *cs, long cs_wg) noexcept nogil:
    """Back-propagation through one layer's activation / Dropout (and, for a
    Dense layer that needs it, the dX product) on rows [r0, r1), columns
    [c0, c1) of its output.  Dense kernel gradients come later, in _params_*;
    a Conv2D's per-group partials are made here, on images [r0, r1) (whole
    groups of DW_GROUP: P.row_unit), and added up in _params_conv."""
    cdef long r, g, n0, n1, rows, kk
    cdef floating *inp
    cdef floating *dx
    if L.kind == LK_LAYER:
        with gil:
            (<FusedPlan>P.owner)._layer_call(L, False, NULL, r1 - r0)
    elif L.kind == LK_CONV:
        inp = xb if L.inp == NULL else <floating *>L.inp
        rows = L.OH * L.OW
        kk = L.KH * L.KW * L.C
        if L.b != NULL:
            conv_cols_ones(cs, rows, L.kk1)
        # the thread's scratch: cols (rows x kk1), dcols (rows x kk), dz (rows x F)
        for g in range(r0 // DW_GROUP, (r1 + DW_GROUP - 1) // DW_GROUP):
            n0 = g * DW_GROUP
            n1 = n0 + DW_GROUP if n0 + DW_GROUP < r1 else r1
            for r in range(n0, n1):
                dx = <floating *>L.dx + r * L.n_in if L.need_dx else NULL
                conv_backward_image(inp + r * L.n_in, <floating *>L.out + r * L.n_out,
                                    <floating *>L.gout + r * L.n_out, L.act, L.H, L.Wd,
                                    L.C, L.KH, L.KW, L.sh, L.sw, L.pt, L.pl, L.OH, L.OW,
                                    L.F, L.b != NULL,
                                    <floating *>L.parts + g * (L.wpart if L.wg
                                                               else L.kk1 * L.F),
                                    r > n0, cs, cs + rows * (L.kk1 + kk), <floating *>L.wt,
                                    cs + rows * L.kk1, dx, L.wg,
                                    <floating *>L.Uflip if dx != NULL else NULL,
                                    cs + cs_wg)
    elif L.kind == LK_MAXPOOL:
        for r in range(r0, r1):
            maxpool_backward_image(<floating *>L.gout + r * L.n_out, L.arg + r * L.n_out,
                                   L.H, L.Wd, L.C, L.OH, L.OW, L.tiled, L.KH, L.KW,
                                   <floating *>L.dx + r * L.n_in)
    elif L.kind == LK_AVGPOOL:
        for r in range(r0, r1):
            avgpool_backward_image(<floating *>L.gout + r * L.n_out, L.H, L.Wd, L.C, L.KH,
                                   L.KW, L.sh, L.sw, L.pt, L.pl, L.OH, L.OW,
                                   <floating *>L.dx + r * L.n_in)
    elif L.kind == LK_DENSE:
        if L.dzp != L.gout:
            act_backward_block(<floating *>L.gout, <floating *>L.out, <floating *>L.dzp,
                               L.n_out, r0, r1, c0, c1, L.act)
        if L.need_dx:                       # never in the column-split head
            gemm_block(False, True, L.n_out, <floating *>L.dzp, L.n_out,
                       <floating *>L.W, L.n_out, <floating *>L.dx, L.n_in,
                       False, r0, r1, 0, L.n_in)
    elif L.kind == LK_DROPOUT:
        for r in range(r0, r1):
            dropout_backward(<floating *>L.gout + r * L.n_out + c0, L.mask + r * L.n_out + c0,
                             <floating *>L.dx + r * L.n_out + c0, c1 - c0, L.rate)
    elif not L.identity:
        act_backward_block(<floating *>L.gout, <floating *>L.out, <floating *>L.dx,
                           L.n_out, r0, r1, c0, c1, L.act)


cdef long _steps(PlanC *P, const floating *x, const int32_t *labels,
                 const floating *targets, const floating *sw, const Py_ssize_t *order,
                 long n, long first_step, long n_steps, long batch_size,
                 long iterations, double *sums, int tid, int nth,
                 int *fail) noexcept nogil:
    """The step loop as run by thread ``tid`` of a team of ``nth``.

    Each step, with R = this thread's batch rows and U = its units of the
    column-split head (if the model has one):

      gather     the whole batch into this thread's own copy of x (so that
                 no thread ever reads rows another one wrote), and labels /
                 targets / weights of rows R; then prefetch the next batch
      head       forward of the head layers on columns U, every row
                 -- barrier (the layer above needs whole rows) --
      rows       forward of the other layers on rows R, the loss of rows R,
                 and back-propagation of rows R down to the head (with the
                 dX products); image layers work on the images R, and a
                 Conv2D also writes the weight-gradient partials of R's
                 groups of DW_GROUP images (R is whole groups)
                 -- barrier (kernel gradients need every row) --
      head       back-propagation of columns U through the head, then
                 dW[:, U] = x^T . dZ[:, U] and the update of W[:, U], b[U]
      params     of the other layers: a share of each kernel's rows and
                 bias entries (dW rows, regularization, update); of a
                 Conv2D's, a share of its elements (dW = the partials added
                 in group order, regularization, update, W^T for dx)
      sums       (thread 0) the step's loss and metrics, in row order
                 -- barrier (the next forward needs every updated weight) --

    Splitting the head by columns keeps the biggest kernel (784 x 100 for
    the book) in the cache of the one core that updates each column:
    splitting its rows instead would ship half of it between cores twice a
    step, which on a 2-core VM costs more than the second core gains."""
    cdef long nf = P.n_features, c = P.n_outputs
    cdef long s, i, r, nb, start, r0, r1, nxt, pre
    cdef int j, li
    cdef long done = 0
    cdef LayerC *L
    cdef floating *xb = <floating *>P.xb + tid * P.xb_stride    # this thread's copy
    cdef floating *cs = <floating *>P.cs + tid * P.cs_stride    # its conv scratch
    cdef floating *yb = <floating *>P.yb
    cdef floating *swb = <floating *>P.swb
    cdef floating *grad = <floating *>P.grad
    cdef floating *probs = <floating *>P.probs
    cdef floating *values = <floating *>P.values
    cdef double loss_sum, reg, pen, scale, wsum
    cdef volatile double batch_loss
    cdef bint logits_path = P.layers[P.n_layers - 1].logits != 0
    cdef bint weighted
    # the column-split head only pays with a team (and needs its private
    # columns, made for this team size)
    cdef bint use_head = P.head >= 0 and nth > 1 and P.heads_n == nth
    cdef HeadC *H = &P.heads[tid] if use_head else NULL
    cdef int rows_from = P.head_end if use_head else 0   # first row-split layer
    cdef int rows_down = rows_from if rows_from > P.first_trainable else P.first_trainable
    cdef OptParams opt = P.opt          # this thread's copy (alpha changes per step)
    cdef unsigned int fpu = nn_ftz_enter()
    if values == NULL:
        values = xb
    # allocate every GEMM workspace before the first step, so that no thread
    # can fail (and leave the others waiting at a barrier) inside one
    fail[tid] = gemm_reserve(xb)
    # W^T of each Conv2D that passes a gradient down, for the first step's
    # dx (later steps' comes with each update): Python may have changed W
    # since the last call
    for li in range(P.n_layers):
        L = &P.layers[li]
        if L.wt != NULL:
            conv_transpose_kernel(<floating *>L.W, L.nW // L.F, L.F, <floating *>L.wt,
                                  _share_lo(L.nW, CONV_ELEM_UNIT, tid, nth),
                                  _share_lo(L.nW, CONV_ELEM_UNIT, tid + 1, nth))
    _wg_kernels(P, tid, nth, xb, False)
    if nth > 1:
        nn_omp_barrier()
    for j in range(nth):
        if fail[j] != 0:
            nn_ftz_exit(fpu)
            return -1
    if use_head:
        _head_copy(&P.layers[P.head], H, xb, True)
    for s in range(first_step, first_step + n_steps):
        start = s * batch_size
        if start >= n:
            break
        nb = batch_size if start + batch_size <= n else n - start
        scale = 1.0 / nb
        r0 = _share_lo(nb, P.row_unit, tid, nth)
        r1 = _share_lo(nb, P.row_unit, tid + 1, nth)
        # ---- gather: all of x[order[start:start + nb]], labels etc. of rows R
        # (the next batch's rows are requested as we go, a row per row copied:
        # they arrive during this step, and spreading the requests keeps the
        # memory system from stalling on a burst of them)
        nxt = start + batch_size
        pre = min(batch_size, n - nxt) if s + 1 < first_step + n_steps else 0
        for i in range(nb):
            memcpy(xb + i * nf, x + order[start + i] * nf, nf * sizeof(floating))
            if i < pre:
                nn_prefetch(x + order[nxt + i] * nf, nf * sizeof(floating))
        for i in range(r0, r1):
            r = order[start + i]
            if labels != NULL:
                P.lb[i] = labels[r]
            if targets != NULL:
                memcpy(yb + i * c, targets + r * c, c * sizeof(floating))
            if sw != NULL:
                swb[i] = sw[r]
        # ---- head: forward on units U, every row
        if use_head:
            L = &P.layers[P.head]
            gemm_block(False, False, L.n_in, xb, L.n_in, <floating *>H.W, H.w,
                       <floating *>L.out + H.u0, L.n_out, False, 0, nb, 0, H.w)
            bias_act_block(<floating *>L.out + H.u0, L.n_out, <floating *>H.b, 0, nb,
                           0, H.w, L.act)
            for li in range(P.head + 1, P.head_end):
                _forward(P, &P.layers[li], xb, nb, 0, nb, H.u0, H.u0 + H.w, cs, P.cs_wg)
            if nth > 1:
                nn_omp_barrier()
        # ---- rows R: forward, loss, back-propagation down to the head
        for li in range(rows_from, P.n_layers):
            _forward(P, &P.layers[li], xb, nb, r0, r1, 0, P.layers[li].n_out, cs, P.cs_wg)
        if P.failed:
            break
        loss_rows(P.loss_kind, values, P.lb if labels != NULL else NULL,
                  yb if targets != NULL else NULL, swb if sw != NULL else NULL,
                  probs, grad, r0, r1, c, scale, P.row_loss)
        for li in range(P.n_layers - 1, rows_down - 1, -1):
            _backward(P, &P.layers[li], xb, r0, r1, 0, P.layers[li].n_out, cs, P.cs_wg)
        if P.failed:            # a layer's own code raised (only with a team of one)
            break
        # the regularization penalty (thread 0), before any weight changes;
        # summed per layer, then over layers, as Sequential._regularization does
        reg = 0.0
        if tid == 0:
            for li in range(P.n_layers):
                L = &P.layers[li]
                if _any_reg(L):
                    pen = 0.0
                    for j in range(L.n_params):
                        if L.params[j].reg:
                            pen += l1_l2_sum(<floating *>L.params[j].value, L.params[j].size,
                                             L.params[j].l1, L.params[j].l2)
                    reg += pen
        if nth > 1:
            nn_omp_barrier()
        # ---- parameters (Adam's step size first: t counts from 1)
        if opt.kind == OPT_ADAM:
            opt.alpha = opt.lr * sqrt(1.0 - pow(opt.beta_2, iterations + done + 1)) / \
                (1.0 - pow(opt.beta_1, iterations + done + 1))
        if use_head:
            # (every head layer has the head Dense's width: units H.u0 + [0, w))
            for li in range(P.head_end - 1, P.head - 1, -1):
                _backward(P, &P.layers[li], xb, 0, nb, H.u0, H.u0 + H.w, cs, P.cs_wg)
            _params_head(&P.layers[P.head], H, xb, nb, &opt)
        for li in range(P.n_layers):
            L = &P.layers[li]
            if L.kind == LK_DENSE and not (use_head and li == P.head):
                _params_rows(L, li >= P.first_trainable,
                             xb if L.inp == NULL else <floating *>L.inp, nb, &opt, tid, nth)
            elif L.kind == LK_CONV:
                _params_conv(L, li >= P.first_trainable, nb, &opt, tid, nth, xb)
            elif L.n_params > 0:
                _params_elems(L, &opt, tid, nth, xb)
        if P.any_wg_trained:
            # the Winograd kernels transform the whole updated kernel
            if nth > 1:
                nn_omp_barrier()
            _wg_kernels(P, tid, nth, xb, True)
        done += 1
        if tid == 0:
            # ---- running sums, in the order the Python path adds them
            loss_sum = 0.0
            for i in range(nb):
                loss_sum += P.row_loss[i]
            # each product rounded on its own, as Python rounds them: a
            # volatile stops the compiler fusing a multiply into the next add
            # (an FMA rounds once, and the logged loss would drift in the
            # last bit from the per-batch path's)
            batch_loss = loss_sum * scale
            batch_loss = batch_loss + reg
            batch_loss = batch_loss * nb
            sums[0] += batch_loss
            sums[1] += nb
            wsum = 0
            if sw != NULL:
                for i in range(nb):
                    wsum += swb[i]
            for j in range(P.n_metrics):
                weighted = sw != NULL and P.metric_weighted[j] != 0
                sums[2 + 2 * j] += count_correct(P.metric_kind[j],
                                                 probs if logits_path else values,
                                                 P.lb if labels != NULL else NULL,
                                                 yb if targets != NULL else NULL,
                                                 swb if weighted else NULL, nb, c,
                                                 P.metric_threshold[j])
                sums[3 + 2 * j] += wsum if weighted else nb
            for li in range(P.n_layers):
                if P.layers[li].kind == LK_DROPOUT:
                    P.layers[li].step += 1
        if nth > 1:
            nn_omp_barrier()
    if use_head:
        _head_copy(&P.layers[P.head], H, xb, False)
    nn_ftz_exit(fpu)
    return done
