# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The fused training loop: many optimizer steps in one ``nogil`` call.

For a stack of Dense / Dropout / Activation layers (Flatten is a no-op on
row-major data) it runs, per step, exactly what the per-batch Python path
runs (``nncore/models/model.py::_train_step``), calling the same kernels in
the same order:

    gather the batch rows -> forward layer by layer -> loss + dL/d(out)
    -> backward layer by layer -> regularization -> optimizer update
    -> running loss / metric sums

so both paths produce bitwise the same weights.  All buffers are allocated
by ``FusedPlan`` once per ``fit`` (none in the loop).  Control returns to
Python after each chunk of steps so progress bars, Ctrl-C and callbacks
still work.
"""
import numpy as np
from cython cimport floating
from libc.stdint cimport int32_t, uint8_t, uint64_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free, calloc
from libc.math cimport sqrt, pow

from k_common cimport nn_omp_max_threads, nn_ftz_enter, nn_ftz_exit
from k_gemm cimport gemm
from k_activations cimport bias_act_forward, act_backward, bias_grad, ACT_LINEAR
from k_losses cimport (loss_forward_backward, LOSS_SOFTMAX_SPARSE,
                       LOSS_SOFTMAX_DENSE, LOSS_SIGMOID_BCE, LOSS_PROBS_SPARSE,
                       LOSS_PROBS_DENSE, LOSS_PROBS_BCE, LOSS_MSE)
from k_dropout cimport dropout_forward, dropout_backward
from k_optimizers cimport (OptParams, opt_update, l1_l2_penalty, OPT_SGD,
                           OPT_ADAGRAD, OPT_RMSPROP, OPT_ADAM)
from k_metrics cimport count_correct, METRIC_SPARSE, METRIC_ONEHOT, METRIC_BINARY

# The kernels' codes, by name, for nncore/models/fused.py (defined once, in the .pxd enums)
LOSS_KINDS = {"softmax_sparse": LOSS_SOFTMAX_SPARSE, "softmax_dense": LOSS_SOFTMAX_DENSE,
              "sigmoid_bce": LOSS_SIGMOID_BCE, "probs_sparse": LOSS_PROBS_SPARSE,
              "probs_dense": LOSS_PROBS_DENSE, "probs_bce": LOSS_PROBS_BCE, "mse": LOSS_MSE}
METRIC_KINDS = {"sparse": METRIC_SPARSE, "onehot": METRIC_ONEHOT, "binary": METRIC_BINARY}
OPTIMIZER_KINDS = {"sgd": OPT_SGD, "adagrad": OPT_ADAGRAD, "rmsprop": OPT_RMSPROP,
                   "adam": OPT_ADAM}

cdef enum LayerKind:
    LK_DENSE = 0
    LK_DROPOUT = 1
    LK_ACTIVATION = 2

LAYER_KINDS = {"dense": LK_DENSE, "dropout": LK_DROPOUT, "activation": LK_ACTIVATION}

cdef enum:
    MAX_METRICS = 8

cdef struct LayerC:
    int kind
    long n_in, n_out
    int act              # activation code (Dense, Activation)
    int logits           # last layer computing logits for the loss: skip act
    int need_dx          # compute the gradient w.r.t. the input
    void *W
    void *b              # NULL without bias
    void *dW
    void *db
    void *sW[3]          # optimizer slots of W / b (NULL where unused)
    void *sb[3]
    int train_W, train_b # updated by the optimizer?
    int reg_W, reg_b
    double l1_W, l2_W, l1_b, l2_b
    double rate          # Dropout
    uint64_t seed
    uint64_t step
    void *out            # (max_batch, n_out) activations
    void *dz             # (max_batch, n_out) scratch for act_backward
    void *dx             # (max_batch, n_in) gradient for the layer below
    uint8_t *mask        # (max_batch * n_out) Dropout mask


cdef struct PlanC:
    LayerC *layers
    int n_layers
    long max_batch, n_features, n_outputs
    int loss_kind
    int n_metrics
    int metric_kind[MAX_METRICS]
    double metric_threshold[MAX_METRICS]
    int metric_weighted[MAX_METRICS]      # weighted_metrics: sample weights apply
    OptParams opt
    void *xb
    void *yb
    int32_t *lb
    void *swb
    void *grad
    void *probs
    double *row_loss


cdef class FusedPlan:
    """Pointers to a model's weights, slots and preallocated buffers."""
    cdef PlanC c
    cdef object keep              # the arrays the pointers point into
    cdef public bint is_double

    def __cinit__(self):
        self.c.layers = NULL
        self.c.row_loss = NULL

    def __dealloc__(self):
        if self.c.layers != NULL:
            free(self.c.layers)
        if self.c.row_loss != NULL:
            free(self.c.row_loss)

    def __init__(self, list layers, dict opt, str loss_kind, list metrics,
                 long max_batch, long n_features, long n_outputs, bint is_double,
                 bint sparse_labels, bint has_sample_weight):
        """layers: dicts from nncore.models.fused (arrays already validated)."""
        cdef int i, k
        cdef LayerC *L
        dt = np.float64 if is_double else np.float32
        self.keep = []
        self.is_double = is_double
        self.c.max_batch, self.c.n_features, self.c.n_outputs = max_batch, n_features, n_outputs
        self.c.n_layers = len(layers)
        self.c.layers = <LayerC *>calloc(max(1, self.c.n_layers), sizeof(LayerC))
        self.c.row_loss = <double *>malloc(max_batch * sizeof(double))
        if self.c.layers == NULL or self.c.row_loss == NULL:
            raise MemoryError()
        for i, spec in enumerate(layers):
            L = &self.c.layers[i]
            L.kind = LAYER_KINDS[spec["kind"]]
            L.n_in, L.n_out = spec["n_in"], spec["n_out"]
            L.act = spec.get("act", ACT_LINEAR)
            L.logits = spec.get("logits", 0)
            L.need_dx = spec.get("need_dx", 0)
            L.rate = spec.get("rate", 0.0)
            L.seed = spec.get("seed", 0)
            L.step = spec.get("step", 0)
            L.out = self._ptr(np.empty((max_batch, L.n_out), dt))
            L.dz = self._ptr(np.empty((max_batch, L.n_out), dt))
            L.dx = self._ptr(np.empty((max_batch, L.n_in), dt))
            if L.kind == LK_DROPOUT:
                L.mask = <uint8_t *>self._ptr(np.empty(max_batch * L.n_out, np.uint8))
            if L.kind == LK_DENSE:
                L.W = self._ptr(spec["W"])
                L.dW = self._ptr(spec["dW"])
                L.train_W = spec["train_W"]
                L.reg_W = spec["reg_W"]
                L.l1_W, L.l2_W = spec["l1_W"], spec["l2_W"]
                for k in range(3):
                    L.sW[k] = self._ptr(spec["sW"][k])
                if spec["b"] is not None:
                    L.b = self._ptr(spec["b"])
                    L.db = self._ptr(spec["db"])
                    L.train_b = spec["train_b"]
                    L.reg_b = spec["reg_b"]
                    L.l1_b, L.l2_b = spec["l1_b"], spec["l2_b"]
                    for k in range(3):
                        L.sb[k] = self._ptr(spec["sb"][k])
        self.c.xb = self._ptr(np.empty((max_batch, n_features), dt))
        self.c.yb = self._ptr(np.empty((max_batch, n_outputs), dt))
        self.c.lb = <int32_t *>self._ptr(np.empty(max_batch, np.int32))
        self.c.swb = self._ptr(np.empty(max_batch, dt)) if has_sample_weight else NULL
        self.c.grad = self._ptr(np.empty((max_batch, n_outputs), dt))
        self.c.probs = self._ptr(np.empty((max_batch, n_outputs), dt))
        self.c.loss_kind = LOSS_KINDS[loss_kind]
        if len(metrics) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics in the fused loop")
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

    cdef void *_ptr(self, arr) except? NULL:
        if arr is None:
            return NULL
        if not arr.flags.c_contiguous:
            raise ValueError("fused loop: arrays must be C-contiguous")
        self.keep.append(arr)
        return <void *><size_t>arr.ctypes.data

    def set_learning_rate(self, double lr):
        self.c.opt.lr = lr

    def dropout_steps(self):
        return [self.c.layers[i].step for i in range(self.c.n_layers)]

    def run(self, x, labels, targets, sample_weight, const Py_ssize_t[::1] order,
            long first_step, long n_steps, long batch_size, long iterations,
            double[::1] sums):
        """Run steps [first_step, first_step + n_steps) of the epoch ``order``.

        sums (in/out): [loss_total, count, correct_0, weight_0, correct_1, ...]
        Returns the number of optimizer steps taken.
        """
        cdef long n = order.shape[0]
        if self.is_double:
            return _run[double](self, x, labels, targets, sample_weight, order,
                                first_step, n_steps, batch_size, iterations, sums, n)
        return _run[float](self, x, labels, targets, sample_weight, order,
                           first_step, n_steps, batch_size, iterations, sums, n)


cdef long _run(FusedPlan plan, floating[:, ::1] x, const int32_t[::1] labels,
               floating[:, ::1] targets, floating[::1] sample_weight,
               const Py_ssize_t[::1] order, long first_step, long n_steps,
               long batch_size, long iterations, double[::1] sums,
               long n) except -1:
    cdef PlanC *P = &plan.c
    cdef long nf = P.n_features, c = P.n_outputs
    cdef int nt = nn_omp_max_threads()
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
    for j in range(order.shape[0]):
        if order[j] < 0 or order[j] >= x.shape[0]:
            raise ValueError("fused loop: sample order out of range")
    if sums.shape[0] < 2 + 2 * P.n_metrics:
        raise ValueError("fused loop: sums too short")
    cdef unsigned int fpu
    with nogil:
        fpu = nn_ftz_enter()   # the loop's own arithmetic; kernels set theirs too
        done = _steps(P, &x[0, 0], &labels[0] if labels is not None else NULL,
                      &targets[0, 0] if targets is not None else NULL,
                      &sample_weight[0] if sample_weight is not None else NULL,
                      &order[0], n, first_step, n_steps, batch_size, iterations,
                      &sums[0], nt)
        nn_ftz_exit(fpu)
    if done < 0:
        raise MemoryError("fused loop: GEMM workspace allocation failed")
    return done


cdef inline floating *_input_of(PlanC *P, long li, floating *xb) noexcept nogil:
    """The array layer li received in the forward pass: the output of the
    nearest layer below that is not an identity (linear/logits Activation)."""
    cdef long j = li - 1
    while j >= 0 and P.layers[j].kind == LK_ACTIVATION and \
            (P.layers[j].logits != 0 or P.layers[j].act == ACT_LINEAR):
        j -= 1
    if j < 0:
        return xb
    return <floating *>P.layers[j].out


cdef long _steps(PlanC *P, const floating *x, const int32_t *labels,
                 const floating *targets, const floating *sw, const Py_ssize_t *order,
                 long n, long first_step, long n_steps, long batch_size,
                 long iterations, double *sums, int nt) noexcept nogil:
    cdef long nf = P.n_features, c = P.n_outputs
    cdef long s, i, r, nb, start, j, li
    cdef long done = 0
    cdef LayerC *L
    cdef floating *xb = <floating *>P.xb
    cdef floating *yb = <floating *>P.yb
    cdef floating *swb = <floating *>P.swb
    cdef floating *grad = <floating *>P.grad
    cdef floating *probs = <floating *>P.probs
    cdef floating *inp
    cdef floating *g
    cdef floating *values
    cdef floating *dz
    cdef double loss_sum, reg, scale, wsum, pen
    cdef long t
    cdef int last = P.n_layers - 1
    cdef int first_trainable = P.n_layers
    cdef bint logits_path, weighted
    for li in range(P.n_layers):
        if P.layers[li].kind == LK_DENSE and (P.layers[li].train_W != 0 or P.layers[li].train_b != 0):
            first_trainable = li
            break
    for s in range(first_step, first_step + n_steps):
        start = s * batch_size
        if start >= n:
            break
        nb = batch_size if start + batch_size <= n else n - start
        # ---- gather the batch (same rows as x[order[start:start+nb]])
        for i in range(nb):
            r = order[start + i]
            memcpy(xb + i * nf, x + r * nf, nf * sizeof(floating))
            if labels != NULL:
                P.lb[i] = labels[r]
            if targets != NULL:
                memcpy(yb + i * c, targets + r * c, c * sizeof(floating))
            if sw != NULL:
                swb[i] = sw[r]
        # ---- forward
        inp = xb
        for li in range(P.n_layers):
            L = &P.layers[li]
            if L.kind == LK_DENSE:
                if gemm(False, False, nb, L.n_out, L.n_in, inp, L.n_in,
                        <floating *>L.W, L.n_out, <floating *>L.out, L.n_out,
                        False, nt) != 0:
                    return -1
                bias_act_forward(<floating *>L.out, <floating *>L.b, nb, L.n_out,
                                 ACT_LINEAR if L.logits else L.act, nt)
                inp = <floating *>L.out
            elif L.kind == LK_DROPOUT:
                dropout_forward(inp, <floating *>L.out, L.mask, nb * L.n_out,
                                L.rate, L.seed, L.step, nt)
                L.step += 1
                inp = <floating *>L.out
            else:
                if L.logits != 0 or L.act == ACT_LINEAR:
                    pass                  # identity: keep inp
                else:
                    memcpy(L.out, inp, nb * L.n_out * sizeof(floating))
                    bias_act_forward(<floating *>L.out, <floating *>NULL, nb,
                                     L.n_out, L.act, nt)
                    inp = <floating *>L.out
        values = inp
        # ---- loss and its gradient
        scale = 1.0 / nb
        loss_sum = loss_forward_backward(P.loss_kind, values,
                                         P.lb if labels != NULL else NULL,
                                         yb if targets != NULL else NULL,
                                         swb if sw != NULL else NULL,
                                         probs, grad, nb, c, scale, P.row_loss, nt)
        logits_path = P.layers[last].logits != 0
        # ---- backward
        g = grad
        for li in range(last, first_trainable - 1, -1):
            L = &P.layers[li]
            if L.kind == LK_DENSE:
                if L.logits != 0 or L.act == ACT_LINEAR:
                    dz = g
                else:
                    dz = <floating *>L.dz
                    act_backward(g, <floating *>L.out, dz, nb, L.n_out, L.act, nt)
                inp = _input_of(P, li, xb)
                if gemm(True, False, L.n_in, L.n_out, nb, inp, L.n_in, dz, L.n_out,
                        <floating *>L.dW, L.n_out, False, nt) != 0:
                    return -1
                if L.b != NULL:
                    bias_grad(dz, <floating *>L.db, nb, L.n_out, False)
                if L.need_dx:
                    if gemm(False, True, nb, L.n_in, L.n_out, dz, L.n_out,
                            <floating *>L.W, L.n_out, <floating *>L.dx, L.n_in,
                            False, nt) != 0:
                        return -1
                    g = <floating *>L.dx
            elif L.kind == LK_DROPOUT:
                dropout_backward(g, L.mask, <floating *>L.dx, nb * L.n_out, L.rate)
                g = <floating *>L.dx
            else:
                if not (L.logits != 0 or L.act == ACT_LINEAR):
                    act_backward(g, <floating *>L.out, <floating *>L.dx, nb,
                                 L.n_out, L.act, nt)
                    g = <floating *>L.dx
        # ---- regularization (same order as Sequential._regularization)
        reg = 0.0
        for li in range(P.n_layers):
            L = &P.layers[li]
            if L.kind == LK_DENSE and (L.reg_W != 0 or L.reg_b != 0):
                pen = 0.0
                if L.reg_W:
                    pen += l1_l2_penalty(<floating *>L.W, <floating *>L.dW,
                                         L.n_in * L.n_out, L.l1_W, L.l2_W)
                if L.reg_b != 0 and L.b != NULL:
                    pen += l1_l2_penalty(<floating *>L.b, <floating *>L.db,
                                         L.n_out, L.l1_b, L.l2_b)
                reg += pen
        # ---- optimizer
        t = iterations + done + 1
        if P.opt.kind == OPT_ADAM:
            P.opt.alpha = P.opt.lr * sqrt(1.0 - pow(P.opt.beta_2, t)) / (1.0 - pow(P.opt.beta_1, t))
        for li in range(P.n_layers):
            L = &P.layers[li]
            if L.kind != LK_DENSE:
                continue
            if L.train_W:
                opt_update(&P.opt, <floating *>L.W, <floating *>L.dW,
                           <floating *>L.sW[0], <floating *>L.sW[1],
                           <floating *>L.sW[2], L.n_in * L.n_out, nt)
            if L.b != NULL and L.train_b != 0:
                opt_update(&P.opt, <floating *>L.b, <floating *>L.db,
                           <floating *>L.sb[0], <floating *>L.sb[1],
                           <floating *>L.sb[2], L.n_out, nt)
        done += 1
        # ---- running sums, in the order the Python path adds them
        sums[0] += (loss_sum * scale + reg) * nb
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
    return done


