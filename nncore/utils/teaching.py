"""Teaching tools: look inside backpropagation.

Two functions, both working on any model nncore builds::

    report = nncore.utils.gradient_check(model, x, y)
    print(report)              # one row per weight: max relative error, passed?

    record = nncore.utils.trace(model, x, y)
    print(record)              # layer by layer: shapes, formulas, norms
    record.layers[1].grads["kernel"]        # the arrays themselves

``gradient_check`` compares the gradients the model's own backward pass
computes with central finite differences of the loss that ``fit`` minimises
(mean loss over the batch + regularization penalties).  It works on a float64
copy of the model, so the comparison is not drowned in float32 rounding, and
leaves the model itself untouched.

``trace`` runs one training step through the model's own machinery (the same
calls ``train_on_batch`` makes) and records what each layer received and
produced on the way forward and on the way back.  With ``apply=False`` (the
default) the weights, the optimizer and the dropout streams are left exactly
as they were; with ``apply=True`` the step is applied, exactly as one
``train_on_batch(x, y)`` would apply it.
"""
import numpy as np

from nncore import config
from nncore import random as nn_random

__all__ = ["gradient_check", "trace", "GradientCheckReport", "WeightCheck",
           "TraceRecord", "LayerTrace"]


# ======================================================================
# shared helpers
# ======================================================================
def _trainable_entries(model):
    """(layer index, layer, weight index, Variable, grad array) for every
    trainable weight, in the order the optimizer sees them."""
    out = []
    if not getattr(model, "trainable", True):
        return out
    for li, layer in enumerate(model.layers):
        if not layer.trainable:
            continue
        for wi, (var, g) in enumerate(zip(layer.weights, layer.grads)):
            if var.trainable:
                out.append((li, layer, wi, var, g))
    return out


def _dropout_layers(model):
    return [l for l in model.layers if hasattr(l, "rate") and hasattr(l, "step")]


def _require_loss(model, loss, what):
    from nncore import losses as nn_losses
    if loss is not None:
        return nn_losses.get(loss)
    if getattr(model, "loss", None) is None:
        raise ValueError(f"{what}: the model has no loss; compile it first "
                         "(model.compile(loss=...)) or pass loss=...")
    return model.loss


def _norm(a):
    if a is None:
        return None
    return float(np.sqrt(np.sum(np.asarray(a, dtype=np.float64) ** 2)))


def _shape(a):
    return None if a is None else tuple(a.shape)


def _fmt_shape(s):
    if s is None:
        return "-"
    return str(tuple(s))


def _fmt_num(v):
    return "-" if v is None else f"{v:.4g}"


def _table(headers, rows):
    """A plain-text table (every cell converted with str)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(c.ljust(w) for c, w in zip(cells[0], widths)), line]
    for r in cells[1:]:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(out)


# ======================================================================
# gradient check
# ======================================================================
class WeightCheck:
    """The comparison for one weight array.

    Attributes: ``layer`` (name), ``layer_index``, ``weight`` (e.g. 'kernel'),
    ``shape``, ``indices`` (the flat indices checked), ``analytic`` and
    ``numeric`` (the gradients at those indices), ``abs_error``,
    ``rel_error`` (element-wise, see ``gradient_check``), ``max_rel_error``,
    ``max_abs_error``, ``passed``.
    """

    def __init__(self, layer, layer_index, weight, shape, indices, analytic, numeric,
                 floor, rtol):
        self.layer, self.layer_index, self.weight = layer, layer_index, weight
        self.shape = tuple(shape)
        self.indices = indices
        self.analytic = analytic
        self.numeric = numeric
        self.abs_error = np.abs(analytic - numeric)
        denom = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
        self.rel_error = self.abs_error / denom
        self.max_abs_error = float(self.abs_error.max()) if self.abs_error.size else 0.0
        self.max_rel_error = float(self.rel_error.max()) if self.rel_error.size else 0.0
        self.passed = bool(self.max_rel_error <= rtol)

    @property
    def n_checked(self):
        """How many entries of this weight were compared."""
        return int(self.indices.size)

    @property
    def size(self):
        """Number of entries in the weight."""
        return int(np.prod(self.shape))

    def __repr__(self):
        return (f"<WeightCheck {self.layer}/{self.weight} max_rel_error="
                f"{self.max_rel_error:.3g} passed={self.passed}>")


class GradientCheckReport:
    """What ``gradient_check`` returns.

    ``passed`` is True when every checked entry of every weight agrees;
    ``checks`` is the list of :class:`WeightCheck` (one per trainable weight);
    ``max_rel_error`` the worst of them; ``loss`` the loss at the checked
    weights; ``print(report)`` shows a table.  ``report[name]`` looks a check
    up by 'layer/weight'.
    """

    def __init__(self, checks, loss, eps, rtol, floor, path, skipped):
        self.checks = checks
        self.loss = loss
        self.eps, self.rtol, self.floor = eps, rtol, floor
        self.loss_path = path
        self.skipped = skipped          # names of weights not checked (not trainable)
        self.passed = all(c.passed for c in checks)
        self.max_rel_error = max((c.max_rel_error for c in checks), default=0.0)

    def __bool__(self):
        return self.passed

    def __getitem__(self, key):
        for c in self.checks:
            if f"{c.layer}/{c.weight}" == key:
                return c
        raise KeyError(key)

    def __iter__(self):
        return iter(self.checks)

    def __len__(self):
        return len(self.checks)

    def __str__(self):
        rows = []
        for c in self.checks:
            rows.append([f"{c.layer}/{c.weight}", _fmt_shape(c.shape),
                         f"{c.n_checked}/{c.size}",
                         f"{np.abs(c.analytic).max() if c.n_checked else 0:.3g}",
                         f"{c.max_abs_error:.2e}", f"{c.max_rel_error:.2e}",
                         "ok" if c.passed else "FAIL"])
        head = (f"Gradient check (float64, central differences, eps={self.eps:g}; "
                f"loss path '{self.loss_path}'; loss = {self.loss:.6g})")
        table = _table(["weight", "shape", "checked", "max|grad|", "max abs err",
                        "max rel err", ""], rows)
        verdict = (f"{'PASSED' if self.passed else 'FAILED'}: max relative error "
                   f"{self.max_rel_error:.2e} (threshold {self.rtol:g}; "
                   f"relative error = |analytic - numeric| / max(|analytic|, "
                   f"|numeric|, {self.floor:g}))")
        lines = [head, table, verdict]
        if self.skipped:
            lines.append("not checked (not trainable): " + ", ".join(self.skipped))
        return "\n".join(lines)

    def __repr__(self):
        return (f"<GradientCheckReport passed={self.passed} "
                f"max_rel_error={self.max_rel_error:.3g} weights={len(self.checks)}>")


def _float64_twin(model, loss):
    """A float64 Sequential with the same layers (from their configs) and the
    model's weights cast to float64.  Global state (floatx, the random stream
    that initialisers and Dropout seeds draw from) is left as it was."""
    from nncore.models.sequential import Sequential

    if not getattr(model, "built", False):
        raise ValueError("gradient_check: the model is not built yet; call it on "
                         "data or give it an Input first")
    state = nn_random.generator().bit_generator.state
    old_floatx = config.floatx()
    try:
        config.set_floatx("float64")
        layers = []
        for layer in model.layers:
            cfg = dict(layer.get_config())
            cfg["dtype"] = "float64"
            cfg.pop("input_shape", None)
            twin = type(layer).from_config(cfg)
            if hasattr(layer, "_stream_seed"):       # Dropout: the same mask stream
                twin._stream_seed = layer._stream_seed
                twin.step = layer.step
            twin.trainable = layer.trainable
            layers.append(twin)
        twin_model = Sequential(layers, name=model.name)
        twin_model.trainable = getattr(model, "trainable", True)
        twin_model.build(model.input_shape)
        for tl, layer in zip(twin_model.layers, model.layers):
            tl.set_weights([np.asarray(w, dtype=np.float64) for w in layer.get_weights()])
            for tv, v in zip(tl.weights, layer.weights):
                tv.trainable = v.trainable
    finally:
        config.set_floatx(old_floatx)
        nn_random.generator().bit_generator.state = state
    twin_model.loss = loss
    twin_model.compiled = True
    return twin_model


def gradient_check(model, x, y, eps=1e-5, max_checks_per_weight=None, seed=0,
                   rtol=1e-6, floor=1e-3, training=True, sample_weight=None,
                   loss=None, verbose=False):
    """Check the model's backward pass against finite differences.

    For every trainable weight ``w`` and every checked entry ``i``::

        numeric_i  = (J(w + eps e_i) - J(w - eps e_i)) / (2 eps)
        analytic_i = what forward -> loss -> backward -> regularization puts
                     into the layer's ``grads`` (the arrays the optimizer uses)

    where ``J`` is exactly what ``fit`` minimises on the batch (x, y): the
    loss reduced as compiled (the mean over the batch by default) plus the
    regularization penalties.  Everything runs on a float64 copy of the
    model (same layers, same weights, same loss), through the current
    backend's kernels; the model itself is not modified.

    Each entry's relative error is ``|analytic - numeric| / max(|analytic|,
    |numeric|, floor)``: relative for gradients larger than ``floor``,
    absolute (scaled by 1/floor) for tiny ones, whose finite differences are
    mostly rounding noise.  The check passes when every error is <= ``rtol``.

    Arguments:
        model: a built (and, unless ``loss`` is given, compiled) model.
        x, y: one batch of inputs and targets (keep it small: every checked
            entry costs two forward passes).
        eps: the finite-difference step.
        max_checks_per_weight: check at most this many entries of each
            weight, drawn at random with ``seed`` (None: all of them).
        training: run the forward pass in training mode.  Dropout is then
            active with one fixed mask (its counter-based stream is rewound
            before every evaluation, so the loss is a smooth function of the
            weights); with False, Dropout is the identity.
        sample_weight: optional per-sample weights, as in ``fit``.
        loss: check this loss instead of the compiled one.
        verbose: print the report.

    Returns a :class:`GradientCheckReport` (``.passed``, ``.checks``,
    ``print(report)`` for a table).
    """
    eps = float(eps)
    if not eps > 0:
        raise ValueError(f"gradient_check: eps must be > 0, got {eps!r}")
    if max_checks_per_weight is not None and int(max_checks_per_weight) < 1:
        raise ValueError("gradient_check: max_checks_per_weight must be >= 1 or None")
    loss_obj = _require_loss(model, loss, "gradient_check")
    if not getattr(model, "built", False):
        from nncore.models import data as D
        model._ensure_built_for(D.as_features(x, model.dtype))
    twin = _float64_twin(model, loss_obj)
    xb, tb, swb = twin._prepare(x, y, sample_weight)
    n = xb.shape[0]
    scale = loss_obj.scale(n)
    drop = _dropout_layers(twin)
    steps0 = [l.step for l in drop]

    def rewind():
        for l, s in zip(drop, steps0):
            l.step = s

    def objective():
        rewind()
        loss_sum, _, _, _ = twin._step_forward_loss(xb, tb, swb, training, False)
        return loss_sum * scale + twin._regularization(add_grads=False)

    # analytic: the model's own forward / backward / regularization
    rewind()
    loss_sum, _, grad, path = twin._step_forward_loss(xb, tb, swb, training, True)
    twin._backward(grad, from_logits=(path == "logits"))
    reg = twin._regularization(add_grads=True)
    j0 = loss_sum * scale + reg
    entries = _trainable_entries(twin)
    analytic = [g.copy() for (_, _, _, _, g) in entries]

    rng = np.random.default_rng(seed)
    checks = []
    for (li, layer, wi, var, _), ga in zip(entries, analytic):
        w = var.value.reshape(-1)
        if max_checks_per_weight is None or w.size <= max_checks_per_weight:
            idx = np.arange(w.size)
        else:
            idx = np.sort(rng.choice(w.size, size=int(max_checks_per_weight), replace=False))
        num = np.empty(idx.size)
        for k, i in enumerate(idx):
            orig = w[i]
            w[i] = orig + eps
            jp = objective()
            w[i] = orig - eps
            jm = objective()
            w[i] = orig
            num[k] = (jp - jm) / (2 * eps)
        checks.append(WeightCheck(layer.name, li, var.name, var.shape, idx,
                                  ga.reshape(-1)[idx].astype(np.float64), num,
                                  floor, rtol))
    skipped = [f"{l.name}/{v.name}" for l in model.layers for v in l.weights
               if not (l.trainable and v.trainable and getattr(model, "trainable", True))]
    report = GradientCheckReport(checks, float(j0), eps, rtol, floor, path, skipped)
    if verbose:
        print(report)
    return report


# ======================================================================
# backprop trace
# ======================================================================
_ACT_FORWARD = {
    "linear": "a = z",
    "relu": "a = relu(z) = max(z, 0)",
    "sigmoid": "a = sigmoid(z) = 1 / (1 + e^-z)",
    "tanh": "a = tanh(z)",
    "softmax": "a = softmax(z) = e^z / sum(e^z)  (per row)",
}
_ACT_BACKWARD = {
    "linear": "dz = da",
    "relu": "dz = da * [a > 0]",
    "sigmoid": "dz = da * a * (1 - a)",
    "tanh": "dz = da * (1 - a^2)",
    "softmax": "dz = a * (da - sum(da * a))  (per row)",
}


def _loss_formulas(loss, path):
    """(forward, gradient) formulas of the loss for the path the model uses."""
    name = getattr(loss, "name", type(loss).__name__)
    red = "mean over the batch" if loss.reduction == "sum_over_batch_size" else "sum over the batch"
    kind = type(loss).__name__
    if path in ("logits", "output_logits"):
        if kind == "SparseCategoricalCrossentropy":
            return (f"p = softmax(z); L = {red} of -log p[y]",
                    "dL/dz = (p - onehot(y)) / n   (softmax + CE fused)")
        if kind == "CategoricalCrossentropy":
            return (f"p = softmax(z); L = {red} of -sum_j y_j log p_j",
                    "dL/dz = (p * sum_j y_j - y) / n   (= (p - y) / n for one-hot y)")
        if kind == "BinaryCrossentropy":
            return (f"p = sigmoid(z); L = {red} of mean_j BCE(y_j, p_j)",
                    "dL/dz = (p - y) / (n * c)   (sigmoid + BCE fused)")
    if kind == "SparseCategoricalCrossentropy":
        return (f"q = clip(p, 1e-7, 1 - 1e-7); L = {red} of log(sum q) - log q[y]",
                "dL/dp = (1 / sum q - [j == y] / q[y]) / n   (0 where p is clipped)")
    if kind == "CategoricalCrossentropy":
        return (f"q = clip(p / sum p, 1e-7, 1 - 1e-7); L = {red} of -sum_j y_j log q_j",
                "dL/dp = (g - sum(g * q)) / (n * sum p),  g = -y / q")
    if kind == "BinaryCrossentropy":
        return (f"q = clip(p, 1e-7, 1 - 1e-7); L = {red} of -mean_j [y log q + (1-y) log(1-q)]",
                "dL/dp = (-y / q + (1 - y) / (1 - q)) / (n * c)")
    if kind == "MeanSquaredError":
        return (f"L = {red} of mean_j (p_j - y_j)^2", "dL/dp = 2 (p - y) / (n * c)")
    return (f"L = {name}", "dL/d(output) from the loss kernel")


class LayerTrace:
    """One layer's part of a :class:`TraceRecord`.

    Arrays (copies, safe to keep): ``forward_input`` (x), ``forward_output``
    (its output; the logits z for an output layer whose activation is fused
    into the loss), ``grad_output`` (dL/d output, what backward received;
    None when backprop stopped before this layer), ``grad_input`` (dL/dx,
    what it passed down; None when not needed), ``grads`` (weight name ->
    dL/dw, penalties' gradients included), ``weights`` (weight name -> value
    used in this step).  Text: ``forward_formula``, ``backward_formula``.
    """

    def __init__(self, index, layer):
        self.index = index
        self.name = layer.name
        self.kind = type(layer).__name__
        self.forward_input = self.forward_output = None
        self.grad_output = self.grad_input = None
        self.forward_kwargs, self.backward_kwargs = {}, {}
        self.grads = {}
        self.weights = {}
        self.forward_formula = self.backward_formula = ""

    @property
    def input_shape(self):
        """Shape of the array the layer received on the way forward."""
        return _shape(self.forward_input)

    @property
    def output_shape(self):
        """Shape of the array the layer produced on the way forward."""
        return _shape(self.forward_output)

    @property
    def norms(self):
        """Frobenius norms of every recorded array, by name."""
        d = {"forward_input": _norm(self.forward_input),
             "forward_output": _norm(self.forward_output),
             "grad_output": _norm(self.grad_output),
             "grad_input": _norm(self.grad_input)}
        for k, g in self.grads.items():
            d["d" + k] = _norm(g)
        return d

    def __repr__(self):
        return (f"<LayerTrace {self.index} {self.name} ({self.kind}) "
                f"{_fmt_shape(self.input_shape)} -> {_fmt_shape(self.output_shape)}>")


def _describe(lt, layer):
    """Fill the formulas of one LayerTrace from what the layer did."""
    kind = lt.kind
    logits = lt.forward_kwargs.get("logits", False)
    from_logits = lt.backward_kwargs.get("from_logits", False)
    reached = lt.grad_output is not None
    need_dx = lt.backward_kwargs.get("need_input_grad", True)
    if kind == "Dense":
        act = layer.activation
        b = " + b" if layer.use_bias else ""
        if logits:
            fwd = f"z = x.W{b}  ({act} left to the loss: output = logits z)"
        elif act == "linear":
            fwd = f"z = x.W{b}; a = z"
        else:
            fwd = f"z = x.W{b}; {_ACT_FORWARD[act]}"
        if from_logits:
            parts = ["dz = dL/dz from the loss kernel"]
        else:
            parts = [_ACT_BACKWARD[act].replace("da", "g")]
        parts.append("dW = x^T.dz")
        if layer.use_bias:
            parts.append("db = sum_batch dz")
        if need_dx:
            parts.append("dx = dz.W^T")
        regs = [n for n, r in (("W", layer.kernel_regularizer), ("b", layer.bias_regularizer))
                if r is not None]
        for n in regs:
            r = layer.kernel_regularizer if n == "W" else layer.bias_regularizer
            terms = []
            if r.l1:
                terms.append(f"{r.l1:g} sign({n})")
            if r.l2:
                terms.append(f"2*{r.l2:g} {n}")
            parts.append(f"d{n} += " + " + ".join(terms or ["0"]))
        bwd = "; ".join(parts)
    elif kind == "Activation":
        act = layer.activation
        fwd = ("output = x  (" + act + " left to the loss)") if logits else \
            _ACT_FORWARD[act].replace("(z)", "(x)").replace("z", "x")
        bwd = "dx = dL/dx from the loss kernel" if from_logits else \
            _ACT_BACKWARD[act].replace("dz", "dx")
    elif kind == "Dropout":
        active = lt.forward_kwargs.get("training", False) and layer.rate > 0
        if active:
            fwd = f"a = x * mask / (1 - {layer.rate:g})   (mask: keep with p = {1 - layer.rate:g})"
            bwd = f"dx = g * mask / (1 - {layer.rate:g})"
        else:
            fwd, bwd = "a = x  (inactive)", "dx = g"
    elif kind == "Flatten":
        fwd = f"a = reshape(x) to {_fmt_shape(lt.output_shape)}"
        bwd = f"dx = reshape(g) to {_fmt_shape(lt.input_shape)}"
    else:
        # layer kinds of the layer contract say themselves what they compute
        describe = getattr(layer, "describe", None)
        fwd = describe() if callable(describe) else f"{kind}.forward"
        bwd = f"{kind}.backward"
    if not reached:
        bwd = "(not reached: no trainable weights below)"
    lt.forward_formula, lt.backward_formula = fwd, bwd


class TraceRecord:
    """What ``trace`` returns: one training step, layer by layer.

    ``layers`` (list of :class:`LayerTrace`, input to output), ``loss`` (the
    batch's loss including penalties: what ``fit`` minimises), ``loss_path``
    ('logits' when the output activation is fused into the loss),
    ``loss_formula`` / ``loss_grad_formula``, ``loss_grad`` (the gradient the
    loss kernel wrote: dL/dz on the fused paths, dL/d output otherwise),
    ``predictions``, ``regularization``, ``applied`` (whether the optimizer
    step was applied), ``weights_before`` / ``weights_after`` (lists as
    ``model.get_weights()``; after == before when not applied), ``x``, ``y``.
    """

    def __init__(self):
        self.layers = []
        self.loss = None
        self.regularization = 0.0
        self.loss_path = None
        self.loss_formula = self.loss_grad_formula = ""
        self.loss_grad = None
        self.predictions = None
        self.applied = False
        self.weights_before = self.weights_after = None
        self.optimizer = None
        self.x = self.y = None

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __str__(self):
        n = self.x.shape[0] if self.x is not None else "?"
        lines = [f"Backprop trace: batch of {n}, loss path '{self.loss_path}'"
                 + ("" if not self.applied else f", step applied ({self.optimizer})")]
        lines.append("")
        lines.append("FORWARD (input -> output)")
        rows = []
        for lt in self.layers:
            rows.append([lt.index, f"{lt.name} ({lt.kind})", _fmt_shape(lt.input_shape),
                         _fmt_shape(lt.output_shape), _fmt_num(_norm(lt.forward_output)),
                         lt.forward_formula])
        lines.append(_table(["#", "layer", "input", "output", "|output|", "formula"], rows))
        lines.append("")
        lines.append(f"LOSS  {self.loss_formula}")
        lines.append(f"      loss = {self.loss:.6g}"
                     + (f"  (of which regularization {self.regularization:.6g})"
                        if self.regularization else ""))
        lines.append(f"      {self.loss_grad_formula};  |grad| = {_fmt_num(_norm(self.loss_grad))}")
        lines.append("")
        lines.append("BACKWARD (output -> input)")
        rows = []
        for lt in reversed(self.layers):
            gnorms = ", ".join(f"|d{k}|={_fmt_num(_norm(g))} {_fmt_shape(g.shape)}"
                               for k, g in lt.grads.items()) if lt.grad_output is not None else ""
            rows.append([lt.index, f"{lt.name} ({lt.kind})", _fmt_num(_norm(lt.grad_output)),
                         _fmt_num(_norm(lt.grad_input)), gnorms or "-", lt.backward_formula])
        lines.append(_table(["#", "layer", "|dL/dout|", "|dL/din|", "weight grads", "formula"],
                            rows))
        return "\n".join(lines)

    def __repr__(self):
        return (f"<TraceRecord layers={len(self.layers)} loss={self.loss!r} "
                f"applied={self.applied}>")


def _copy(a):
    return None if a is None else np.array(a, copy=True)


class _StepRecorder:
    """Copies what a training step computes, as the model reports it through
    its step-observer hooks (``Model.observe``): nothing is patched."""

    def __init__(self, rec, traces, captured):
        self.rec, self.traces, self.captured = rec, traces, captured

    def on_step_begin(self, model, x, y):
        self.rec.weights_before = model.get_weights()
        self.captured["xy"] = (x, y)

    def on_layer_forward(self, model, index, layer, inputs, output, kwargs):
        lt = self.traces[index]
        lt.forward_input, lt.forward_kwargs = _copy(inputs), dict(kwargs)
        lt.weights = {v.name: v.numpy() for v in layer.weights}
        lt.forward_output = _copy(output)

    def on_loss(self, model, grad, path):
        self.captured["grad"] = _copy(grad)

    def on_layer_backward(self, model, index, layer, grad_output, grad_input, kwargs):
        lt = self.traces[index]
        lt.grad_output, lt.backward_kwargs = _copy(grad_output), dict(kwargs)
        lt.grad_input = _copy(grad_input)

    def on_gradients(self, model, loss, predictions, regularization):
        # the weight gradients are final before the optimizer runs: copy them now
        for layer, lt in zip(model.layers, self.traces):
            if lt.grad_output is not None:
                lt.grads = {v.name: g.copy() for v, g in zip(layer.weights, layer.grads)}
        self.captured.update(loss=loss, preds=_copy(predictions), reg=regularization)


def trace(model, x, y, apply=False, sample_weight=None):
    """Record one training step, layer by layer.

    Runs exactly what ``train_on_batch(x, y)`` runs -- forward in training
    mode, the loss and its gradient in one kernel, backward through the
    layers, regularization -- and records, for every layer, its input and
    output, the gradient it received and the one it passed down, its weight
    gradients, and the formulas involved.

    ``apply=False`` (default): nothing about the model changes (weights,
    optimizer state and iteration count, dropout streams, train_on_batch's
    running metrics).  ``apply=True``: the step is taken by calling
    ``model.train_on_batch(x, y)`` itself, so the result is identical to it.

    Returns a :class:`TraceRecord`; ``print(record)`` shows it as tables.
    """
    if not getattr(model, "compiled", False) or getattr(model, "loss", None) is None:
        raise ValueError("trace: compile the model with a loss first, e.g. "
                         "model.compile(optimizer='rmsprop', "
                         "loss='sparse_categorical_crossentropy')")
    rec = TraceRecord()
    layers = model.layers
    traces = [LayerTrace(i, l) for i, l in enumerate(layers)]
    drop = _dropout_layers(model)
    steps0 = [l.step for l in drop]
    captured = {}
    recorder = _StepRecorder(rec, traces, captured)
    try:
        if apply:
            # the step is train_on_batch's own: identical to calling it
            with model.observe(recorder):
                model.train_on_batch(x, y, sample_weight=sample_weight)
            rec.applied = True
            rec.weights_after = model.get_weights()
            rec.optimizer = model.optimizer.name
            rec.regularization = _reg_value(model, rec.weights_before)
        else:
            xb, tb, swb = model._prepare(x, y, sample_weight)
            with model.observe(recorder):
                model._gradient_step(xb, tb, swb)
            rec.regularization = float(captured["reg"])
            rec.weights_after = [w.copy() for w in rec.weights_before]
    finally:
        if not apply:
            for l, s in zip(drop, steps0):
                l.step = s

    path = model._loss_path()
    rec.loss_path = path
    rec.loss_formula, rec.loss_grad_formula = _loss_formulas(model.loss, path)
    rec.loss = float(captured["loss"])
    rec.loss_grad = _copy(captured.get("grad"))
    rec.predictions = captured["preds"]
    rec.x, rec.y = _copy(captured["xy"][0]), _copy(captured["xy"][1])
    for layer, lt in zip(layers, traces):
        _describe(lt, layer)
    rec.layers = traces
    return rec


def _reg_value(model, weights_before):
    """The regularization penalty at the weights the step started from."""
    from nncore.backend import kernels
    K = kernels()
    total, i = 0.0, 0
    for layer in model.layers:
        ws = weights_before[i:i + len(layer.weights)]
        i += len(layer.weights)
        for name in (("kernel", "kernel_regularizer"), ("bias", "bias_regularizer")):
            reg = getattr(layer, name[1], None)
            if reg is None:
                continue
            for v, w in zip(layer.weights, ws):
                if v.name == name[0]:
                    total += K.l1_l2_penalty_and_grad(np.ascontiguousarray(w).reshape(-1),
                                                      None, reg.l1, reg.l2)
    return float(total)
