"""The fused training loop, in NumPy (twin of ``src_cython/training.pyx``).

``run_steps(plan, ...)`` runs a chunk of optimizer steps of a step plan
(``nncore/models/plan.py``: one entry per computing layer, holding the live
weight, gradient and optimizer-slot arrays).  Each step is the recipe every
path shares, spelled out with the other NumPy twins::

    gather      xb = x[order[start:start + batch]]   (labels, targets, weights too)
    forward     Dense:      z = xb . W  (gemm);  a = f(z + b)  (bias_act_forward)
                Conv2D:     a = f(conv(x, W) + b)               (conv2d_forward)
                MaxPooling: a = window maxima, argmax kept      (maxpool2d_forward)
                AvgPooling: a = window means                    (avgpool2d_forward)
                Dropout:    a = x * mask / (1 - rate)           (dropout_forward)
                Activation: a = f(x)                            (bias_act_forward)
                (rows are flat samples: an image layer sees each row as its
                 (H, W, C) image -- a reshape, no copy -- and Flatten is nothing)
    loss        sum_i loss_i, and g = dL/d(output) -- or dL/dz = (p - y) / batch
                when the loss starts from the last layer's logits (losses)
    backward    from the top down to the lowest trained Dense or Conv2D:
                Dense:      dz = g * f'(z) (act_backward);  dW = x^T . dz;
                            db = sum_rows dz (bias_grad);  g = dz . W^T (if needed)
                Conv2D:     dz = g * f'(z);  dW = sum_n im2col(x[n])^T . dz[n];
                            db = sum dz;  g = col2im(dz . W^T) (if needed)
                                                                (conv2d_backward)
                MaxPooling: g goes to each window's argmax      (maxpool2d_backward)
                AvgPooling: g shared by each window's inputs    (avgpool2d_backward)
                Dropout:    g = g * mask / (1 - rate)           (dropout_backward)
                Activation: g = g * f'(z)                       (act_backward)
    penalty     + l1 |W| + l2 W^2 of every regularized weight, gradients added
    update      every trained weight, in the optimizer's formula (optimizers)
    sums        loss * batch, batch size, and each metric's correct count

These are the same kernel calls, in the same order, as the per-batch path
(``Model._train_step`` with ``set_backend('numpy')``), so the two give bitwise
the same weights; the compiled loop gives the same to float rounding (its
GEMM sums in another order).  There are no threads here: ``max_threads`` is
accepted for the same signature and ignored.
"""
import copy
import numbers

import numpy as np

from nncore.activations import ACTIVATIONS
from nncore.layers.plan_entry import GEOMETRY_KEYS

from nncore.ops import activations as A
from nncore.ops import conv as CV
from nncore.ops import dropout as D
from nncore.ops import gemm as G
from nncore.ops import losses as LS
from nncore.ops import metrics as MT
from nncore.ops import optimizers as O

__all__ = ["FusedPlan", "run_steps"]

#: the entry kinds (nncore/layers/plan_entry.py): the built-in kernels, and
#: "layer", which runs the layer's own forward/backward
KINDS = ("dense", "conv2d", "maxpool", "avgpool", "dropout", "activation", "layer")
IMAGE_KINDS = ("conv2d", "maxpool", "avgpool")

# loss kind -> (kernel, does it also write probabilities?)
_LOSSES = {
    "softmax_sparse": (LS.softmax_crossentropy_sparse, True),
    "softmax_dense": (LS.softmax_crossentropy, True),
    "sigmoid_bce": (LS.sigmoid_binary_crossentropy, True),
    "probs_sparse": (LS.crossentropy_sparse_from_probs, False),
    "probs_dense": (LS.crossentropy_from_probs, False),
    "probs_bce": (LS.binary_crossentropy_from_probs, False),
    "mse": (LS.mean_squared_error, False),
}
_METRICS = {"sparse": MT.count_correct_sparse, "onehot": MT.count_correct_onehot,
            "binary": MT.count_correct_binary}


def required_slots(opt):
    """Which of the three slot arrays each optimizer's update reads (here
    and in the compiled loop, which imports this): a trained weight without
    them would make the kernel read NULL."""
    kind = opt["kind"]
    if kind == "sgd":
        return (0,) if opt.get("momentum", 0.0) else ()
    if kind == "adagrad":
        return (0,)
    if kind == "rmsprop":
        return (0,) + ((1,) if opt.get("centered") else ()) + \
            ((2,) if opt.get("momentum", 0.0) else ())
    if kind == "adam":
        return (0, 1) + ((2,) if opt.get("amsgrad") else ())
    raise ValueError(f"fused loop: unknown optimizer kind {kind!r}")


def _image(rows, e):
    """A batch of flat rows seen as the (batch, H, W, C) images of entry e."""
    return rows.reshape(rows.shape[0], e.in_h, e.in_w, e.in_c)


def check_geometry(e):
    """Raise ValueError unless an image entry's geometry is one the kernels
    can run without reading or writing outside its rows (here and in the
    compiled loop, which imports this: it runs no further checks per step)."""
    kind = e.kind
    if kind not in IMAGE_KINDS:
        return
    keys = GEOMETRY_KEYS + (("filters",) if kind == "conv2d" else ())
    values = [getattr(e, k) for k in keys]
    # whole numbers only: the compiled loop stores them as C longs
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise ValueError(f"fused loop: a {kind} entry without its integer geometry")
    h, w, c, kh, kw, sh, sw, pt, pl, oh, ow = (int(v) for v in values[:11])
    f = int(values[11]) if kind == "conv2d" else c
    if min(h, w, c, kh, kw, sh, sw, oh, ow, f) <= 0 or not (0 <= pt < kh and 0 <= pl < kw):
        raise ValueError(f"fused loop: {kind} geometry out of range")
    # every window starts inside the padded image, on a row / column of it
    if (oh - 1) * sh - pt >= h or (ow - 1) * sw - pl >= w:
        raise ValueError(f"fused loop: {kind} output {(oh, ow)} does not fit input {(h, w)}")
    if h * w >= 2 ** 31 - 1:
        raise ValueError(f"fused loop: {kind} image too large for int32 indices")
    if e.n_in != h * w * c or e.n_out != oh * ow * f:
        raise ValueError(f"fused loop: {kind} widths do not match its geometry")
    if kind == "conv2d":
        if e.W is None or e.W.size != kh * kw * c * f or \
                (e.b is not None and e.b.size != f):
            raise ValueError("fused loop: conv2d kernel / bias sizes do not match its geometry")


def check_entry(e, opt, dt):
    """What both executors check of an entry before running it: a known
    kind and activation, its geometry, Dropout's rate, and every parameter
    (dtype, shapes, and the optimizer slots its update reads)."""
    if e.kind not in KINDS:
        raise ValueError(f"fused loop: unknown layer kind {e.kind!r}")
    if e.act not in ACTIVATIONS:
        raise ValueError(f"fused loop: unknown activation {e.act!r}")
    check_geometry(e)
    if not 0.0 <= e.rate < 1.0:
        raise ValueError(f"fused loop: Dropout rate {e.rate!r} outside [0, 1)")
    if e.kind in ("dense", "conv2d") and len(e.params) not in (1, 2):
        raise ValueError(f"fused loop: a {e.kind} entry takes a kernel and an optional bias")
    needed = required_slots(opt)
    for p in e.params:
        for a in [p.value, p.grad] + [s for s in p.slots if s is not None]:
            if not isinstance(a, np.ndarray) or a.dtype != dt or a.shape != p.value.shape:
                raise ValueError(f"fused loop: parameter {p.name!r}: every array must be a "
                                 f"{dt} array of its shape {p.value.shape}")
        if p.trained and any(p.slots[k] is None for k in needed):
            raise ValueError(f"fused loop: a trained weight has no {opt['kind']} "
                             "slots (build the optimizer first)")


def penalty(entries):
    """The regularization penalty of every regularized parameter, its
    gradient added into the parameter's: summed per layer, then over layers
    (as Sequential._regularization adds them)."""
    total = 0
    for e in entries:
        pen = 0.0
        for p in e.params:
            if p.reg:
                pen += O.l1_l2_penalty_and_grad(p.value.reshape(-1), p.grad.reshape(-1),
                                                p.l1, p.l2)
        total += pen
    return total


def update(entries, o, step_number):
    """The optimizer's formula on every trained parameter, in entry order."""
    for e in entries:
        for p in e.params:
            if not p.trained:
                continue
            w, g = p.value.reshape(-1), p.grad.reshape(-1)
            s = [None if a is None else a.reshape(-1) for a in p.slots]
            if o["kind"] == "sgd":
                O.sgd_update(w, g, s[0], o["lr"], o["momentum"], o["nesterov"])
            elif o["kind"] == "adagrad":
                O.adagrad_update(w, g, s[0], o["lr"], o["epsilon"])
            elif o["kind"] == "rmsprop":
                O.rmsprop_update(w, g, s[0], s[1], s[2], o["lr"], o["rho"],
                                 o["momentum"], o["epsilon"])
            else:
                O.adam_update(w, g, s[0], s[1], s[2], o["lr"], o["beta_1"],
                              o["beta_2"], o["epsilon"], step_number)


class FusedPlan:
    """A step plan ready to run: the entries, the loss and metric kinds and
    the optimizer's parameters (same constructor as the compiled FusedPlan)."""

    def __init__(self, layers, opt, loss_kind, metrics, max_batch, n_features, n_outputs,
                 is_double, sparse_labels, has_sample_weight):
        if loss_kind not in _LOSSES:
            raise ValueError(f"fused loop: unknown loss kind {loss_kind!r}")
        if opt.get("kind") not in ("sgd", "adagrad", "rmsprop", "adam"):
            raise ValueError(f"fused loop: unknown optimizer kind {opt.get('kind')!r}")
        dt = np.dtype(np.float64 if is_double else np.float32)
        for e in layers:
            check_entry(e, opt, dt)
        self.layers = [copy.copy(e) for e in layers]     # own copies: steps change 'step'
        self.opt = dict(opt)
        self.loss_kind, self.metrics = loss_kind, list(metrics)
        self.max_batch, self.n_features, self.n_outputs = max_batch, n_features, n_outputs
        self.dtype, self.sparse = dt, sparse_labels

    def layout(self, batch):
        return {"threads": 1, "head": None}

    def reserve_team(self, nth):
        pass

    def set_learning_rate(self, lr):
        self.opt["lr"] = float(lr)

    def dropout_steps(self):
        return [e.step or 0 for e in self.layers]

    # ------------------------------------------------------------------ one step
    def _forward(self, xb, training=True):
        """Every entry's forward pass; returns (inputs, outputs) per entry."""
        inputs, outputs = [], []
        a = xb
        for e in self.layers:
            inputs.append(a)
            kind = e.kind
            if kind == "dense":
                z = np.empty((a.shape[0], e.n_out), self.dtype)
                G.gemm(a, e.W, z)
                A.bias_act_forward(z, e.b, "linear" if e.logits else e.act)
                a = z
            elif kind == "conv2d":
                z = np.empty((a.shape[0], e.oh, e.ow, e.filters), self.dtype)
                CV.conv2d_forward(_image(a, e), e.W, e.b, z, None, e.act,
                                  e.sh, e.sw, e.pt, e.pl)
                a = z.reshape(a.shape[0], -1)
            elif kind in ("maxpool", "avgpool"):
                z = np.empty((a.shape[0], e.oh, e.ow, e.in_c), self.dtype)
                geometry = (e.kh, e.kw, e.sh, e.sw, e.pt, e.pl)
                if kind == "maxpool":
                    e.argmax = np.empty(z.shape, np.int32)
                    CV.maxpool2d_forward(_image(a, e), z, e.argmax, *geometry)
                else:
                    CV.avgpool2d_forward(_image(a, e), z, *geometry)
                a = z.reshape(a.shape[0], -1)
            elif kind == "dropout":
                out = np.empty_like(a)
                e.mask = np.empty(a.size, np.uint8)
                D.dropout_forward(a.reshape(-1), out.reshape(-1), e.mask, e.rate,
                                  e.seed, e.step)
                e.step += 1
                a = out
            elif kind == "layer":                     # the layer's own forward
                out = np.empty((a.shape[0], e.n_out), self.dtype)
                e.layer_forward(a, out)
                a = out
            elif not (e.logits or e.act == "linear"):       # activation
                out = a.copy()
                A.bias_act_forward(out, None, e.act)
                a = out
            outputs.append(a)
        return inputs, outputs

    def _backward(self, grad, inputs, outputs):
        """From the top entry down to the lowest one the backward pass reaches."""
        first = next(i for i, e in enumerate(self.layers) if e.backprop)
        for i in range(len(self.layers) - 1, first - 1, -1):
            e = self.layers[i]
            if e.kind == "dense":
                if e.logits or e.act == "linear":
                    dz = grad
                else:
                    dz = np.empty_like(grad)
                    A.act_backward(grad, outputs[i], e.act, dz)
                G.gemm(inputs[i], dz, e.dW, trans_a=True)
                if e.b is not None:
                    A.bias_grad(dz, e.db)
                if e.need_dx:
                    grad = np.empty_like(inputs[i])
                    G.gemm(dz, e.W, grad, trans_b=True)
            elif e.kind == "conv2d":
                nb = grad.shape[0]
                dx = np.empty_like(inputs[i]) if e.need_dx else None
                CV.conv2d_backward(_image(inputs[i], e), e.W,
                                   outputs[i].reshape(nb, e.oh, e.ow, e.filters),
                                   grad.reshape(nb, e.oh, e.ow, e.filters),
                                   e.act, e.dW, e.db,
                                   None if dx is None else _image(dx, e), None,
                                   e.sh, e.sw, e.pt, e.pl)
                grad = dx
            elif e.kind in ("maxpool", "avgpool"):
                nb = grad.shape[0]
                g4 = grad.reshape(nb, e.oh, e.ow, e.in_c)
                dx = np.empty_like(inputs[i])
                geometry = (e.kh, e.kw, e.sh, e.sw, e.pt, e.pl)
                if e.kind == "maxpool":
                    CV.maxpool2d_backward(g4, e.argmax, _image(dx, e), *geometry)
                else:
                    CV.avgpool2d_backward(g4, _image(dx, e), *geometry)
                grad = dx
            elif e.kind == "dropout":
                dx = np.empty_like(grad)
                D.dropout_backward(grad.reshape(-1), e.mask, e.rate, dx.reshape(-1))
                grad = dx
            elif e.kind == "layer":
                dx = np.empty_like(inputs[i]) if e.need_dx else None
                e.layer_backward(grad, dx)
                grad = dx
            elif not (e.logits or e.act == "linear"):
                dx = np.empty_like(grad)
                A.act_backward(grad, outputs[i], e.act, dx)
                grad = dx

    def _penalty(self):
        return penalty(self.layers)

    def _update(self, step_number):
        update(self.layers, self.opt, step_number)

    def run(self, x, labels, targets, sample_weight, order, first_step, n_steps,
            batch_size, iterations, sums, max_threads=0):
        """Steps [first_step, first_step + n_steps) of the epoch ``order``.

        sums (in/out): [loss_total, count, correct_0, weight_0, correct_1, ...]
        Returns the number of optimizer steps taken (fewer when the epoch's
        samples run out)."""
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.n_features or x.dtype != self.dtype:
            raise ValueError("fused loop: inconsistent shapes")
        n = len(order)
        loss_fn, writes_probs = _LOSSES[self.loss_kind]
        done = 0
        for s in range(first_step, first_step + n_steps):
            start = s * batch_size
            if start >= n:
                break
            idx = order[start:start + batch_size]
            nb = len(idx)
            xb = x[idx]
            tb = labels[idx] if labels is not None else targets[idx]
            swb = None if sample_weight is None else sample_weight[idx]
            scale = 1.0 / nb
            inputs, outputs = self._forward(xb)
            values = outputs[-1]
            grad = np.empty_like(values)
            if writes_probs:
                probs = np.empty_like(values)
                loss_sum = loss_fn(values, tb, probs, grad, scale, swb)
            else:
                probs = None
                loss_sum = loss_fn(values, tb, grad, scale, swb)
            self._backward(grad, inputs, outputs)
            reg = self._penalty()
            self._update(iterations + done + 1)
            done += 1
            sums[0] += (loss_sum * scale + reg) * nb
            sums[1] += nb
            preds = probs if self.layers[-1].logits else values
            wsum = float(nb) if swb is None else float(swb.astype(np.float64).sum())
            for j, (kind, threshold, weighted) in enumerate(self.metrics):
                w = swb if weighted else None
                if kind == "binary":
                    correct = MT.count_correct_binary(preds, tb, w, threshold)
                else:
                    correct = _METRICS[kind](preds, tb, w)
                sums[2 + 2 * j] += correct
                sums[3 + 2 * j] += wsum if weighted else float(nb)
        return done


def run_steps(plan, x, labels, targets, sample_weight, order, first_step, n_steps,
              batch_size, iterations, sums, max_threads=0):
    """Run a chunk of training steps of ``plan`` (a FusedPlan); see the module
    docstring for what one step does.  Returns the number of steps taken."""
    return plan.run(x, labels, targets, sample_weight, order, first_step, n_steps,
                    batch_size, iterations, sums, max_threads)
