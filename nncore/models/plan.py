"""The step plan: one training step of a compiled model, described once.

A training step is always the same recipe (``Model._train_step`` runs it with
live layers, one batch at a time)::

    gather the batch -> forward layer by layer -> loss and dL/d(output)
    -> backward down to the lowest trained layer -> regularization
    -> optimizer update of every trained weight -> running loss / metric sums

``make_plan(model)`` writes that recipe down for the fused loop: which loss
kernel, which metric counters, and one entry per layer -- each layer writes
its own entry (``Layer.plan_entry``, next to its forward/backward), holding
its live weight, gradient and optimizer-slot arrays.  The plan then runs
whole chunks of steps through ``kernels().run_steps``: compiled
(``src_cython/training.pyx``) or its NumPy twin (``nncore/ops/training.py``),
whichever backend is on.

Images travel as rows too: a batch of (H, W, C) images is a (batch, H*W*C)
array in NHWC order, so Flatten has nothing to do and every entry's width
(``n_in``/``n_out``) is the number of values per sample.  Conv2D and the
pooling layers add their per-image geometry to their entries (input size,
window, strides, padding, output size), fixed by the built input shape.

A model the plan cannot describe -- a layer kind without an entry, gradient
clipping, a custom loss, more metrics than the loop counts -- raises
``Unsupported`` with the reason, and ``fit`` trains it on the general
per-batch path instead (the same result, one Python round trip a step).
``explain(model)`` returns that reason (None when the plan applies).
"""
import numpy as np

from nncore import losses as L
from nncore import metrics as M
from nncore.layers.layer import SUPPORTED_DTYPES, Unsupported

__all__ = ["StepPlan", "Unsupported", "make_plan", "explain", "MAX_METRICS"]

# which loss kernel serves a loss class on each loss path (Loss.path)
LOSS_KINDS = {
    (L.SparseCategoricalCrossentropy, "logits"): "softmax_sparse",
    (L.SparseCategoricalCrossentropy, "output_logits"): "softmax_sparse",
    (L.SparseCategoricalCrossentropy, "probs"): "probs_sparse",
    (L.CategoricalCrossentropy, "logits"): "softmax_dense",
    (L.CategoricalCrossentropy, "output_logits"): "softmax_dense",
    (L.CategoricalCrossentropy, "probs"): "probs_dense",
    (L.BinaryCrossentropy, "logits"): "sigmoid_bce",
    (L.BinaryCrossentropy, "output_logits"): "sigmoid_bce",
    (L.BinaryCrossentropy, "probs"): "probs_bce",
    (L.MeanSquaredError, "probs"): "mse",
}
METRIC_KINDS = {M.SparseCategoricalAccuracy: "sparse", M.CategoricalAccuracy: "onehot",
                M.BinaryAccuracy: "binary"}
#: metric counters the compiled loop holds (more: the per-batch path)
MAX_METRICS = 8


def _width(shape):
    """Values per sample of a (batch, ...) shape (None if any is unknown)."""
    n = 1
    for d in shape[1:]:
        if d is None:
            return None
        n *= int(d)
    return n


class StepPlan:
    """What one training step of a model does, for ``run_steps``.

    Attributes: ``layers`` (the live layers that have an entry), ``entries``
    (their ``PlanEntry`` objects, nncore/layers/plan_entry.py, with
    ``n_in``/``n_out`` set: values per sample, so an image layer's are
    H*W*C), ``loss_kind``, ``path``,
    ``sparse`` (integer labels?), ``metrics`` ([(kind, threshold, weighted)]),
    ``optimizer`` (the optimizer's kernel parameters), ``dtype``,
    ``n_features``, ``n_outputs``, ``sample_shape`` (the per-sample input
    shape the image entries were written for; None without image layers).
    """

    def __init__(self, layers, entries, loss_kind, path, sparse, metrics, optimizer,
                 dtype, n_features, n_outputs):
        self.layers, self.entries = layers, entries
        self.loss_kind, self.path, self.sparse = loss_kind, path, sparse
        self.metrics, self.optimizer, self.dtype = metrics, optimizer, dtype
        self.n_features, self.n_outputs = n_features, n_outputs
        self.sample_shape = None

    def build(self, max_batch, has_sample_weight):
        """The backend's plan object (``kernels().FusedPlan``) for batches of
        at most ``max_batch`` rows: preallocated buffers, pointers to the
        live arrays.  Built per fit; nothing is allocated per step."""
        from nncore.backend import kernels
        return kernels().FusedPlan(
            self.entries, self.optimizer, self.loss_kind, self.metrics, max_batch,
            self.n_features, self.n_outputs, self.dtype == np.float64, self.sparse,
            has_sample_weight)

    def key(self):
        """What the thread chooser's timings depend on."""
        return (self.dtype, self.optimizer["kind"],
                tuple((e.kind, e.n_in, e.n_out, e.kh, e.kw, e.sh, e.sw)
                      for e in self.entries))

    def write_back(self, fused):
        """After a run: hand each entry's step counter (Dropout's masks
        drawn) back to its layer, so the next fit draws new masks."""
        for e, step in zip(self.entries, fused.dropout_steps()):
            if e.step is not None:
                e.layer.step = step


class _Context:
    """What a layer's ``plan_entry`` may ask: is it the last layer, the loss
    path, and the optimizer slots of a weight (None: the weight is not
    trained)."""

    def __init__(self, model, path, trained):
        self.model, self.path = model, path
        self._trained = trained           # id(variable) -> variable
        self.is_last = False

    def slots(self, var):
        if var is None or id(var) not in self._trained:
            return None
        if not self.model.optimizer.built:       # explain() before the first fit
            return (None, None, None)
        return self.model.optimizer.slots_for(var)


def make_plan(model):
    """The StepPlan of a compiled, built model, or raise Unsupported(reason)."""
    from nncore.models.sequential import Sequential
    if not isinstance(model, Sequential):
        raise Unsupported(f"{type(model).__name__} models train on the per-batch path")
    opt, loss = model.optimizer, model.loss
    if opt.needs_python_step:
        raise Unsupported("gradient clipping and weight decay run on the per-batch path")
    dtypes = {np.dtype(w.dtype) for w in model.weights}
    if len(dtypes) > 1:
        raise Unsupported(f"the layers mix weight dtypes ({', '.join(sorted(map(str, dtypes)))})")
    dtype = dtypes.pop() if dtypes else np.dtype(model.dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise Unsupported(f"weights of dtype {dtype}")
    path = model._loss_path()
    loss_kind = LOSS_KINDS.get((type(loss), path))
    if loss_kind is None:
        raise Unsupported(f"no fused kernel for loss {loss.name} on the {path!r} path")
    if loss.reduction != "sum_over_batch_size":
        raise Unsupported(f"loss reduction {loss.reduction!r}")
    metrics = model._resolve_metrics()
    for m in metrics:
        if type(m) not in METRIC_KINDS:
            raise Unsupported(f"metric {m.name!r} ({type(m).__name__}) has no fused counter")
    if len(metrics) > MAX_METRICS:
        raise Unsupported(f"{len(metrics)} metrics (the compiled loop counts at most "
                          f"{MAX_METRICS})")
    variables, _ = model._trainable_pairs()
    if not variables:
        raise Unsupported("no trainable weights")
    ctx = _Context(model, path, {id(v): v for v in variables})
    # the backward pass stops at the lowest trained layer (the model's own
    # rule, the same on the per-batch path): it passes no gradient down
    first_layer = model._first_trainable_index()
    layers, entries = [], []
    stack = model.layers
    for i, layer in enumerate(stack):
        ctx.is_last = i == len(stack) - 1
        entry = layer.plan_entry(ctx)
        if entry is None:
            continue
        lowest = i          # the lowest layer the entry computes
        if entry.fused_below is not None:
            # the entry computes the layer below as well (an Embedding folded
            # into a recurrent layer): it takes that layer's entry's place
            if not layers or layers[-1] is not entry.fused_below:
                raise Unsupported(f"layer '{layer.name}' folds in a layer that has no entry")
            layers.pop()
            entries.pop()
            lowest = i - 1
        # a layer's width is all of one sample's values: images travel as
        # flat NHWC rows (batch, H*W*C), which is what Flatten makes of them
        n_in = _width(stack[lowest].input_shape)
        n_out = _width(layer.output_shape)
        if n_in is None or n_out is None:
            raise Unsupported(f"layer '{layer.name}' has an unknown width")
        entry.layer = layer
        entry.n_in, entry.n_out = n_in, n_out
        entry.backprop = int(i >= first_layer)
        entry.need_dx = int(lowest > first_layer)
        layers.append(layer)
        entries.append(entry)
    if not entries:
        raise Unsupported("no layer does any arithmetic")
    if entries[-1].in_h is not None:
        raise Unsupported(f"the model's output comes from layer '{layers[-1].name}' "
                          f"({type(layers[-1]).__name__}); the loss reads it on the "
                          "per-batch path")
    if not any(e.trained for e in entries):
        raise Unsupported("no layer with trained weights has a compiled-loop entry")
    n_features = entries[0].n_in
    plan = StepPlan(layers, entries, loss_kind, path, loss.target_kind == "sparse",
                    [(METRIC_KINDS[type(m)], getattr(m, "threshold", 0.5), bool(m.weighted))
                     for m in metrics],
                    opt.kernel_params(), dtype, n_features, model.output_units)
    # the per-sample shape the image entries' geometry was written for (None:
    # no image layer, any input of n_features values will do)
    plan.sample_shape = (tuple(stack[0].input_shape[1:])
                         if any(e.in_h is not None for e in entries) else None)
    return plan


def explain(model):
    """Why ``fit`` trains this compiled model on the per-batch path (a
    string), or None when the compiled step plan applies."""
    try:
        make_plan(model)
    except Unsupported as e:
        return str(e)
    return None
